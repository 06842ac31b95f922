"""One RV64 hart with the H extension: the reference model of the harness.

ARCHITECTURE section 4.  Privilege modes M, HS/S, U, VS, VU (Priv. 20240411, H chapter 9.1);
address translation through ``refmodel.mmu.translate`` (helper C's one walk for both stages).
Interrupts: refmodel.interrupts (which one, where; the boundary check in the step loop) and
refmodel.aclint (MSWI/MTIMER; time follows instructions as under QEMU's -icount).
Not modelled: F/D (no FP state: FP instructions are illegal), Zicbo*, debug mode.  cycle and
instret are derived from the step count so runs are deterministic, from the last value written
(refmodel.csr.counter_write); they are compared only through what the program does with them.
"""
from __future__ import annotations

from refmodel.records import Xlat, step_from_record
from refmodel import csr as C
from refmodel import mmu as _mmu
from refmodel import pmp as _pmp
from refmodel import tinst as _tinst
from refmodel.decode import expand_c
from refmodel.devices import MROM_BASE, reset_stub
from refmodel.execute import decode, illegal, shared_xlat
from refmodel.fence import Fences
from refmodel.interrupts import STOP, InterruptSync
from refmodel.loader import load_elf, symbol_address
from refmodel.memory import _U, BusError, Memory
from refmodel.trap_entry import TrapEntry
from refmodel.trap import (ILLEGAL, INSN_ACCESS, LOAD_ACCESS, LOAD_MISALIGNED, STORE_ACCESS, STORE_MISALIGNED,
                           VIRTUAL_INSN, Exc)


M64 = (1 << 64) - 1
_MASK = {1: 0xFF, 2: 0xFFFF, 4: 0xFFFFFFFF, 8: M64}
ACCESS_FAULT = {"fetch": INSN_ACCESS, "load": LOAD_ACCESS, "store": STORE_ACCESS}


def _xlat_template(access, va, priv, v, vs_leaf_level, g_leaf_level, maybe_stale, walk) -> dict:
    """The fields of a successful translation's Xlat that a soft-TLB entry shares between the accesses
    through it (execute.shared_xlat fills in va, pa and gpa per access)."""
    return {"access": access, "va": va, "priv": priv, "v": v, "gpa": None, "pa": None, "fault_stage": None,
            "fault_cause": None, "implicit": False, "vs_leaf_level": vs_leaf_level, "g_leaf_level": g_leaf_level,
            "maybe_stale": maybe_stale, "walk": walk, "raw": None}


class MMUContext:
    """What the walk may see and do (ARCHITECTURE section 4)."""

    def __init__(self, hart, commit: bool):
        c = hart.csr
        self.satp, self.vsatp, self.hgatp = c[0x180], c[0x280], c[0x680]
        self.mstatus, self.vsstatus, self.hstatus = c[0x300], c[0x200], c[0x600]
        self.menvcfg, self.henvcfg = c[0x30A], c[0x60A]
        self.profile = hart.profile
        self._hart, self._commit = hart, commit
        self.no_ad = hart.sc_no_ad      # a failed SC's walk under profile.failed_sc_ad = "none"

    def read_pte(self, pa):
        try:
            return self._hart.mem.read(pa, 8)
        except BusError:
            raise _mmu.AccessFault(pa) from None

    def write_pte(self, pa, old, new):
        if not self._commit:
            return True               # side-effect-free translate(): pretend the update happened
        mem = self._hart.mem
        if mem.read(pa, 8) != old:
            return False
        mem.write(pa, 8, new)
        return True

    def pmp_ok(self, pa, size, access, priv):
        return self._hart.pmp_ok(pa, size, access, priv)


class Hart(Fences, TrapEntry, InterruptSync):
    def __init__(self, profile):
        self.profile = profile
        self.mem = Memory(profile.ram_base, profile.ram_size)
        self.x = [0] * 32
        self.csr = C.initial_csrs(profile)
        self.pc = MROM_BASE
        self.priv, self.v = 3, 0
        self.steps = 0
        self.reservation = None
        self.sc_no_ad = False            # the SC being translated may fail: A/D left alone (failed_sc_ad)
        self.record_walk = False
        self.icache: dict = {}
        self.code_pages: set = set()
        self.tlb: dict = {}
        self.pte_pages: set = set()
        self.dirty_ptes: set = set()
        self.pte_uses: dict = {}         # PTE SPA -> {(stage, leaf page, level, leaf, global, asid, vmid)}
        self.pmp_rules: list = []
        self.xl = None
        self.acc_v = 0
        self.last_pa = 0
        self.ls = (3, 0)
        self.tohost_pa = -1              # the ELF's tohost doubleword (riscv-tests convention), if any
        self._init_interrupts(profile)

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_elf(cls, path, profile):
        h = cls(profile)
        entry = load_elf(path, h.mem)
        tohost = symbol_address(path, "tohost")
        if tohost is not None and h.mem.is_ram(tohost & ~7, 8):
            h.tohost_pa = tohost & ~7
        if profile.reset_stub:
            h.mem.load_bytes(MROM_BASE, reset_stub(entry, profile.fdt_addr))
            h.pc = MROM_BASE
        else:
            h.pc = entry
        return h

    @property
    def halted(self):
        return self.mem.finisher.halted or self.stalled

    @property
    def exit_code(self):
        return self.mem.finisher.exit_code

    @property
    def end(self):
        """How the program ended: "finisher", "tohost", "semihosting", "wfi" (a WFI no interrupt can
        ever end, refmodel.interrupts.wfi_never_resumes; no exit code) or "" (it has not)."""
        return self.mem.finisher.end or ("wfi" if self.stalled else "")

    @property
    def uart_output(self):
        return "".join(self.mem.uart.out)

    # ------------------------------------------------------------------ the step loop
    def records(self, max_steps: int):
        """The run loop.  Yields one compact record per instruction attempt (retired or trapped):
        the tuple ``(i, pc, insn, priv, v, xlats, trap, uart)`` of refmodel.records.RECORD_FIELDS,
        holding everything the step's trace line holds (the translations with their walks, the
        trap, the UART bytes).  A tuple costs a third of a Step dataclass per instruction; the
        model backend writes its trace straight from these (TraceWriter.record), and ``run``
        turns them into Steps for everyone else."""
        mem = self.mem
        fin = mem.finisher
        tlb = self.tlb
        regs = self.x                   # never rebound (only its elements are written)
        i = self.steps
        end = i + max(int(max_steps), 0)
        while i < end:
            if fin.halted:
                break
            if i >= self.irq_at:
                # interrupt boundary (refmodel.interrupts): only when something that decides an
                # interrupt may have changed -- a CSR write, trap, xRET, fence, ACLINT write, a
                # timer deadline, a WFI or a step of the implementation's schedule -- so the fast
                # path pays one comparison per step
                r = self.irq_boundary(i)
                if r is not None:
                    if r is STOP:
                        break
                    self.steps = i + 1
                    yield r
                    i += 1
                    continue
            pc, priv, v = self.pc, self.priv, self.v
            self.acc_v = v
            trap = None
            # Fast path: the decoded instruction and its fetch Xlat by virtual pc, in a per-(priv, V)
            # table that lives *inside* the soft TLB under the int key priv*2+V, so every TLB flush
            # (CSR write, trap, xRET, fence, PMP change, store into a page table) drops it too;
            # fence.i and stores into code pages flush the TLB as well (see fence_i, store_pa).
            vc = tlb.get(priv * 2 + v)
            ent = vc.get(pc) if vc is not None else None
            if ent is not None:
                insn, fn, fx = ent
                self.xl = xl = [fx] if fx is not None else []
                try:
                    self.pc = fn(self, pc) & M64
                except Exc as e:
                    trap = self.take_trap(e, pc, insn)
            else:
                self.xl = xl = []
                insn = None
                try:
                    insn, fn, ilen = self.fetch(pc)
                    self._remember_fetch(pc, priv, v, insn, fn, ilen, xl)
                    self.pc = fn(self, pc) & M64
                except Exc as e:
                    trap = self.take_trap(e, pc, insn)
            regs[0] = 0
            uart = mem.last_uart
            if uart:
                mem.last_uart = ""
            self.steps = i + 1
            yield (i, pc, insn, priv, v, xl, trap, uart)
            i += 1

    def run(self, max_steps: int):
        """Yields one refmodel.records.Step per instruction attempt (retired or trapped)."""
        for r in self.records(max_steps):
            yield step_from_record(r)

    def _remember_fetch(self, pc, priv, v, insn, fn, ilen, xl):
        """Enters a fetch that went through a cached TLB entry whose page PMP allows as a whole
        into the run loop's per-(priv, V) table.  Never a page-crossing instruction, never a
        fetch whose translation was not cached (maybe_stale), so what the table returns is what
        ``fetch`` would return.  Its Xlat object is shared by the steps that hit it (records
        are never mutated once yielded)."""
        if (pc & 0xFFF) + ilen > 0x1000:
            return
        e = self.tlb.get((priv, v, "fetch", False, pc >> 12))
        if e is None or not e[3] or len(xl) > 1:
            return
        pv = priv * 2 + v
        vc = self.tlb.get(pv)
        if vc is None:
            vc = self.tlb[pv] = {}
        vc[pc] = (insn, fn, xl[0] if xl else None)

    def step(self):
        """One step (convenience for tests)."""
        return next(self.run(1))

    # ------------------------------------------------------------------ privilege helpers
    def eff_ls(self):
        """Effective privilege and V of explicit loads/stores: MPRV (Priv. 3.1.6.3) with MPV (H 9.4.1)."""
        if self.priv == 3 and self.csr[0x300] & C.MPRV:
            mpp = (self.csr[0x300] >> C.MPP_SHIFT) & 3
            return mpp, (1 if (mpp != 3 and self.csr[0x300] & C.MPV) else 0)
        return self.priv, self.v

    def _xlate_active(self, priv, v):
        c = self.csr
        if v:
            return bool(c[0x280] >> 60 or c[0x680] >> 60)
        return priv < 3 and bool(c[0x180] >> 60)

    def _illegal(self, insn):
        return Exc(ILLEGAL, insn if self.profile.illegal_tval == "insn" else 0)

    # ------------------------------------------------------------------ translation
    def access_pa(self, va, access, priv, v, size, insn=0, hlvx=False):
        """va -> pa for one access of ``size`` bytes: translation (recording an Xlat when a page
        table is in use), then PMP on the final address (Priv. 3.7); raises Exc on a fault.

        The soft TLB keyed by (priv, V, access, HLVX, page) is invisible: it holds only what a
        fresh walk would return -- it is flushed on every CSR write, trap, xRET and fence and on
        any store into a page that held a PTE; a store translation is only ever cached after a
        successful store walk (D already set, or set by that walk), so A/D stay exact."""
        self.acc_v = v
        e = self.tlb.get((priv, v, access, hlvx, va >> 12))
        if e is None:
            e = self._fill(va, access, priv, v, insn, hlvx)
        off = va & 0xFFF
        pa = e[0] + off
        tmpl = e[1]
        if tmpl is not None:
            # one Xlat object per (TLB entry, va), shared by every step that repeats the access:
            # its fields are all determined by the entry and va (records are never mutated)
            x = e[4].get(va)
            if x is None:
                x = shared_xlat(e, va)
            self.xl.append(x)
        if not e[3] and not _pmp.check(self.pmp_rules, pa, size, access, priv, self.profile.pmp_entries):
            # Priv. 3.7.1: the PMP check of the final physical address failed -- the translation
            # itself ends in an access fault of the original access type (QEMU logs it the same way)
            if tmpl is not None:      # a record of its own: the shared Xlat stays the successful one
                fx = object.__new__(Xlat)
                fx.__dict__ = dict(x.__dict__, fault_stage="pmp", fault_cause=ACCESS_FAULT[access])
                self.xl[-1] = fx
            raise Exc(ACCESS_FAULT[access], va, gva=bool(v))
        return pa

    def _fill(self, va, access, priv, v, insn, hlvx):
        page = va & ~0xFFF
        if not self._xlate_active(priv, v):
            pa, tmpl, gpa = page, None, None
            stale = False
            if v or priv < 3:
                # Bare below M: VA = (GPA =) PA, recorded like any other translation, so the
                # comparator checks QEMU's fills of these pages and coverage sees the Bare situations
                # (M-mode without MPRV is not translated at all: no record, Priv. 3.1.6.3)
                gpa = page if v else None
                tmpl = _xlat_template(access, va, priv, v, None, None, False, None)
        else:
            t = self._translate(va, access, priv, v, commit=True, hlvx=hlvx)
            f = t.fault
            stale = bool(self.dirty_ptes) and any(a in self.dirty_ptes for a in t.pte_addrs)
            for a in t.pte_addrs:
                self.pte_pages.add(a >> 12)
            self._note_pte_uses(t)
            if f is not None:
                self.xl.append(Xlat(access, va, priv, v, t.gpa, None, f.stage, f.cause, bool(f.implicit),
                                    t.vs_leaf_level, t.g_leaf_level, stale, list(t.walk) or None))
                # htinst/mtinst: the pseudoinstruction of an implicit access is decided here; for explicit
                # accesses trap entry derives the transformed instruction from the raw instruction bits
                raise Exc(f.cause, f.tval, htval=f.htval or 0, gva=bool(f.gva),
                          tinst=self._tinst(f, insn, access) if f.implicit else None)
            off = va & 0xFFF
            pa = t.pa - off
            gpa = None if t.gpa is None else t.gpa - off
            tmpl = _xlat_template(access, va, priv, v, t.vs_leaf_level, t.g_leaf_level, stale,
                                  list(t.walk) or None)
        # PMP decided once for the whole page when the page lies inside one region (or none):
        # then every access within it gets the same answer (Priv. 3.7.1 priority rule).
        page_ok = self.pmp_ok(pa, 0x1000, access, priv)
        mem = self.mem
        ram_off = pa - mem.ram_base if page_ok and mem.is_ram(pa, 0x1000) else None
        e = (pa, tmpl, gpa, page_ok, {}, ram_off)
        if not stale and not self.sc_no_ad:     # a walk that skipped A/D is never a store's entry
            self.tlb[(priv, v, access, hlvx, va >> 12)] = e
            if ram_off is not None and access != "fetch" and not hlvx and (priv, v) == self.ls:
                # the decoded load/store closures' own table for the current effective privilege of
                # loads/stores (self.ls), under int key -1 (load) / -2 (store) inside the soft TLB,
                # so it is dropped by every flush -- including the one that changes self.ls
                k = -1 if access == "load" else -2
                t = self.tlb.get(k)
                if t is None:
                    t = self.tlb[k] = {}
                t[va >> 12] = e
        return e

    def _translate(self, va, access, priv, v, *, commit, hlvx=False, record_walk=None):
        rw = self.record_walk if record_walk is None else record_walk
        return _mmu.translate(MMUContext(self, commit), va, access, priv, v, record_walk=rw, hlvx=hlvx)

    def _tinst(self, fault, insn, access):
        """htinst/mtinst per profile.tinst_policy (H "Transformed instruction or pseudoinstruction")."""
        return _tinst.tinst_for(insn if access != "fetch" else None, fault, access, self.profile)

    def translate(self, va, access, priv, v, record_walk=True):
        """Side-effect-free translation (no A/D writes, no TLB fill) -> refmodel.mmu.Translation."""
        return self._translate(va, access, priv, v, commit=False, record_walk=record_walk)

    # ------------------------------------------------------------------ PMP (Priv. 3.7)
    def pmp_changed(self):
        c = self.csr
        n = self.profile.pmp_entries
        cfgs = _pmp.cfg_bytes([c[0x3A0 + 2 * k] for k in range(8)], n)
        self.pmp_rules = _pmp.regions(cfgs, [c[0x3B0 + i] for i in range(n)], self.profile.pmp_granularity)
        self.flush_tlb()

    def pmp_ok(self, pa, size, access, priv):
        """Priv. 3.7.1 (refmodel.pmp): lowest-numbered match decides; no match fails below M."""
        return _pmp.check(self.pmp_rules, pa, size, access, priv, self.profile.pmp_entries)

    # ------------------------------------------------------------------ memory accesses
    def fetch(self, pc):
        priv, v = self.priv, self.v
        pa = self.access_pa(pc, "fetch", priv, v, 2)
        e = self.icache.get(pa)
        if e is not None and (e[2] == 2 or (pc & 0xFFF) != 0xFFE):
            if e[2] == 4 and not self.pmp_ok(pa, 4, "fetch", priv):
                raise Exc(INSN_ACCESS, pc, gva=bool(v))
            return e
        try:
            lo = self.mem.read(pa, 2)
        except BusError:
            raise Exc(INSN_ACCESS, pc, gva=bool(v)) from None
        if lo & 3 != 3:
            x = expand_c(lo)
            e = (lo, decode(x, 2) if x is not None else illegal(lo), 2)
        else:
            pa2 = pa + 2 if (pc & 0xFFF) != 0xFFE else self.access_pa(pc + 2, "fetch", priv, v, 2)
            if pa2 == pa + 2 and not self.pmp_ok(pa, 4, "fetch", priv):
                raise Exc(INSN_ACCESS, pc, gva=bool(v))
            try:
                hi = self.mem.read(pa2, 2)
            except BusError:
                raise Exc(INSN_ACCESS, pc + 2, gva=bool(v)) from None
            insn = lo | (hi << 16)
            e = (insn, decode(insn, 4), 4)
            if pa2 != pa + 2:
                return e                       # page-crossing: not cached
        self.icache[pa] = e
        self.code_pages.add(pa >> 12)
        return e

    def load(self, va, size, insn, priv=None, v=None, hlvx=False):
        if priv is None:
            priv, v = self.ls
        if not va & (size - 1):
            # fast path: an aligned access through a cached TLB entry of a page that is all RAM and
            # that PMP allows as a whole (e[5] = its RAM offset) -- what access_pa + mem.read do
            e = self.tlb.get((priv, v, "load", hlvx, va >> 12))
            if e is not None and e[5] is not None:
                if e[1] is not None:
                    self.xl.append(e[4].get(va) or shared_xlat(e, va))
                self.acc_v = v
                off = va & 0xFFF
                self.last_pa = e[0] + off
                return _U[size].unpack_from(self.mem.ram, e[5] + off)[0]
        if va & (size - 1) and self.profile.misaligned_ls == "trap":
            raise Exc(LOAD_MISALIGNED, va, gva=bool(v))
        if va & (size - 1) and ((va & 0xFFF) + size > 0x1000):
            try:
                return sum(self.load(va + i, 1, insn, priv, v, hlvx) << (8 * i) for i in range(size))
            except Exc as e:
                e.addr_offset = (e.tval - va) & M64     # H "Transformed instruction": Addr. Offset
                raise
        pa = self.access_pa(va, "load", priv, v, size, insn, hlvx)
        self.last_pa = pa
        try:
            return self.mem.read(pa, size)
        except BusError:
            raise Exc(LOAD_ACCESS, va, gva=bool(v)) from None

    def translate_store(self, va, size, insn, priv=None, v=None):
        if priv is None:
            priv, v = self.ls
        return self.access_pa(va, "store", priv, v, size, insn)

    def translate_sc(self, va, size, insn):
        """An SC's physical address (Unpriv. "Zalrsc"): its faults are a store's whether or not it
        would succeed; with profile.failed_sc_ad = "none" the walk leaves A/D alone until the
        reservation says the SC succeeds, and the store is then translated again, A/D included."""
        if self.profile.failed_sc_ad == "store":
            return self.translate_store(va, size, insn)
        n = len(self.xl) if self.xl is not None else 0
        self.sc_no_ad = True
        try:
            pa = self.translate_store(va, size, insn)
        finally:
            self.sc_no_ad = False
        if self.reservation == (pa, size):
            if self.xl is not None:
                del self.xl[n:]          # one record of the access: the store's
            pa = self.translate_store(va, size, insn)
        return pa

    def read_pa(self, va, pa, size, store=True):
        try:
            return self.mem.read(pa, size)
        except BusError:
            raise Exc(STORE_ACCESS, va, gva=bool(self.acc_v)) from None

    def store(self, va, size, val, insn, priv=None, v=None):
        if priv is None:
            priv, v = self.ls
        if not va & (size - 1):
            # fast path as in load(); a store entry exists only after a store walk found D set
            e = self.tlb.get((priv, v, "store", False, va >> 12))
            if e is not None and e[5] is not None:
                if e[1] is not None:
                    self.xl.append(e[4].get(va) or shared_xlat(e, va))
                self.acc_v = v
                off = va & 0xFFF
                _U[size].pack_into(self.mem.ram, e[5] + off, val & _MASK[size])
                self._stored(e[0] + off)
                return
        if va & (size - 1) and self.profile.misaligned_ls == "trap":
            raise Exc(STORE_MISALIGNED, va, gva=bool(v))
        if va & (size - 1) and ((va & 0xFFF) + size > 0x1000):
            try:
                pas = [self.translate_store(va + i, 1, insn, priv, v) for i in range(size)]   # all faults first
            except Exc as e:
                e.addr_offset = (e.tval - va) & M64     # H "Transformed instruction": Addr. Offset
                raise
            for i, pa in enumerate(pas):
                self.store_pa(va + i, pa, 1, val >> (8 * i), insn)
            return
        self.store_pa(va, self.access_pa(va, "store", priv, v, size, insn), size, val, insn)

    def store_pa(self, va, pa, size, val, insn):
        try:
            self.mem.write(pa, size, val)
        except BusError:
            raise Exc(STORE_ACCESS, va, gva=bool(self.acc_v)) from None
        self._stored(pa)

    def _stored(self, pa):
        """After a store to ``pa``: LR reservation, page-table and code-page bookkeeping."""
        page = pa >> 12
        if pa & ~7 == self.tohost_pa:    # a program that ends through tohost (refmodel/devices.py)
            self.mem.finisher.tohost(self.mem.read(self.tohost_pa, 8))
        if self.reservation is not None and self.reservation[0] >> 3 == pa >> 3:
            self.reservation = None
        if page in self.pte_pages:
            # a store into a page table: later walks see it at once (the model has no
            # visible TLB), but a real TLB may keep the old entry until a covering fence.
            self.dirty_ptes.add(pa & ~7)
            self.tlb.clear()
        if page in self.code_pages:
            self.icache.clear()
            self.code_pages.clear()
            self.tlb.clear()      # drops the run loop's decoded-by-pc tables too

    # ------------------------------------------------------------------ H loads/stores
    def _hlsv_check(self, insn):
        """H 9.3 "Hypervisor virtual-machine load and store instructions": virtual-instruction
        when V=1, illegal in U-mode unless hstatus.HU=1."""
        tval = insn if self.profile.hlsv_trap_tval == "insn" else 0
        if self.v:
            raise Exc(VIRTUAL_INSN, tval)
        if self.priv == 0 and not self.csr[0x600] & C.H_HU:
            raise Exc(ILLEGAL, tval if self.profile.illegal_tval == "insn" else 0)
        return (1 if self.csr[0x600] & C.H_SPVP else 0) if self.priv else 0

    def hlv(self, va, size, hlvx, insn):
        p = self._hlsv_check(insn)
        return self.load(va, size, insn, p, 1, hlvx)

    def hsv(self, va, size, val, insn):
        p = self._hlsv_check(insn)
        self.store(va, size, val, insn, p, 1)

    # ------------------------------------------------------------------ WFI (fences: refmodel.fence; xRET: refmodel.trap_entry)
    def flush_tlb(self):
        """Called on every CSR write, trap, xRET, fence and PMP change: also re-derives the
        effective privilege of loads/stores (MPRV/MPP/MPV) cached in ``self.ls``."""
        self.tlb.clear()
        self.ls = self.eff_ls()
        self.irq_at = 0               # and re-evaluates interrupts at the next boundary

    def wfi(self, insn):
        """Priv. 3.3.3 / H 9.6.1: TW=1 -> illegal below M; U -> illegal; VTW=1 in VS and any WFI in VU
        -> virtual-instruction.  Otherwise it waits for an interrupt (refmodel.interrupts.wfi_wait)."""
        priv, v, c = self.priv, self.v, self.csr
        if priv < 3 and c[0x300] & C.TW:
            raise self._illegal(insn)
        if v and (priv == 0 or c[0x600] & C.H_VTW):
            raise Exc(VIRTUAL_INSN, insn)
        if priv == 0 and not v:
            raise self._illegal(insn)
        self.wfi_wait()

    # ------------------------------------------------------------------ state (bisect)
    def state_dict(self) -> dict:
        from refmodel.disasm import REG_NAMES
        d = {REG_NAMES[i]: self.x[i] for i in range(32)}
        d["pc"] = self.pc
        d["priv"] = self.priv
        d["v"] = self.v
        for num, name in C.NAMES.items():
            if num in (0x001, 0x002, 0x003):
                continue
            d[name] = C.read(self, num)
        return d

