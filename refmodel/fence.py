"""Fences: FENCE.I, SFENCE.VMA, HFENCE.VVMA and HFENCE.GVMA, and the bookkeeping that says
which earlier page-table stores a fence orders (the ``maybe_stale`` flag of trace.Xlat).

Priv. 20240411 3.1.6.5 (TVM), 10.2.1 "Supervisor Memory-Management Fence Instruction", and the
H chapter's "Hypervisor Memory-Management Fence Instructions" and hstatus.VTVM.  The model has
no visible TLB: a walk always reads the page tables as they are, and a translation that used a
PTE stored since the last fence covering it is marked ``maybe_stale`` -- a real TLB may still
answer with the old entry there, so the comparator does not count such a difference.
Mixed into ``refmodel.hart.Hart``.
"""
from __future__ import annotations

from refmodel import csr as C
from refmodel.trap import VIRTUAL_INSN, Exc


class Fences:
    def fence_i(self):
        self.icache.clear()
        self.code_pages.clear()
        self.tlb.clear()          # drops the run loop's decoded-by-pc tables too

    def fence_vma(self, kind, rs1, rs2, insn):
        priv, v, c = self.priv, self.v, self.csr
        if kind == "sfence.vma":
            # Priv. 3.1.6.5 TVM, H 9.2.1 VTVM; U/VU mode
            if priv == 0:
                raise Exc(VIRTUAL_INSN, insn) if v else self._illegal(insn)
            if v and c[0x600] & C.H_VTVM:
                raise Exc(VIRTUAL_INSN, insn)
            if not v and priv == 1 and c[0x300] & C.TVM:
                raise self._illegal(insn)
        else:
            # H 9.3.2: HFENCE.* are virtual-instruction with V=1, illegal in U; GVMA illegal with TVM=1 in HS
            if v:
                raise Exc(VIRTUAL_INSN, insn)
            if priv == 0:
                raise self._illegal(insn)
            if kind == "hfence.gvma" and priv == 1 and c[0x300] & C.TVM:
                raise self._illegal(insn)
        self._order_pte_stores(kind, rs1, rs2)
        self.tlb.clear()

    def _note_pte_uses(self, t):
        """Remember which translations each PTE served (stage, the leaf's page at its level, ASID,
        VMID, G), so a fence orders exactly the PTE stores its operands scope."""
        c = self.csr
        asid = {"s": (c[0x180] >> 44) & 0xFFFF, "vs": (c[0x280] >> 44) & 0xFFFF, "g": None}
        vmid = (c[0x680] >> 44) & 0x3FFF
        uses = self.pte_uses
        for spa, stage, addr, level, leaf, glob in t.pte_uses:
            u = (stage, addr >> (12 + 9 * level) if leaf else None, level, leaf, glob, asid[stage],
                 None if stage == "s" else vmid)
            uses.setdefault(spa & ~7, set()).add(u)

    def _order_pte_stores(self, kind, rs1, rs2):
        """Which earlier stores to PTEs this fence orders before later walks (those stop being
        maybe_stale).  Priv. 20240411 10.2.1 SFENCE.VMA: rs1!=x0 orders only stores to *leaf* PTEs
        for that virtual address; rs2!=x0 only that ASID's, never global mappings.  H "Hypervisor
        Memory-Management Fence Instructions": SFENCE.VMA with V=1 and HFENCE.VVMA order VS-stage
        structures of the current VMID (hgatp.VMID); HFENCE.GVMA orders G-stage structures, rs1 =
        guest physical address >> 2, rs2 = VMID (its address form is read like SFENCE.VMA's:
        leaf PTEs for that address).  A PTE store is ordered once every translation the PTE
        served is covered; one no walk has used yet is ordered by any fence."""
        x, c = self.x, self.csr
        vmid = (c[0x680] >> 44) & 0x3FFF
        if kind == "hfence.gvma":
            stage, addr = "g", (x[rs1] << 2) & ((1 << 64) - 1) if rs1 else None
            asid, want_vmid = None, (x[rs2] & 0x3FFF) if rs2 else None
        else:
            stage = "vs" if (kind == "hfence.vvma" or self.v) else "s"
            addr = x[rs1] if rs1 else None
            asid = x[rs2] & 0xFFFF if rs2 else None
            want_vmid = vmid if stage == "vs" else None

        def covers(u):
            ust, page, level, leaf, glob, uasid, uvmid = u
            if ust != stage or (want_vmid is not None and uvmid != want_vmid):
                return False
            if asid is not None and (glob or uasid != asid):
                return False
            return addr is None or (leaf and addr >> (12 + 9 * level) == page)

        uses = self.pte_uses
        for pa in [pa for pa in self.dirty_ptes if all(covers(u) for u in uses.get(pa, ()))]:
            self.dirty_ptes.discard(pa)
