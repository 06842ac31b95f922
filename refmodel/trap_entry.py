"""Trap entry and trap return: the hart's side of refmodel.trap's exception codes.

Priv. 20240411 3.1.6 (mstatus), 3.3.2 "Trap-Return Instructions", and the H chapter's
"Trap Entry" (which of M/HS/VS takes it; SPV, SPVP, MPV, GVA; htval/mtval2, htinst/mtinst)
and "Trap Return" (MRET/SRET restoring V).  Mixed into ``refmodel.hart.Hart``.
"""
from __future__ import annotations

from refmodel.records import Trap
from refmodel import csr as C
from refmodel import tinst as _tinst
from refmodel.trap import ACCESS_OF_CAUSE, ADDRESS_CAUSES, GUEST_PAGE_CAUSES, VIRTUAL_INSN, Exc, trap_target

M64 = (1 << 64) - 1


def status_fields(target: str | None, mstatus: int | None, hstatus: int | None, vsstatus: int | None) -> dict:
    """The status fields trap entry writes, as the CSRs stand after it (``Trap.fields``), for a
    trap taken into ``target``.  Priv. 20240411 3.1.6.1: M: "MPIE is set to the value of MIE; MIE is
    set to 0; MPP is set to y" (and, H 9.4.1, MPV to the previous V); S: SPIE/SIE/SPP likewise.
    H "Trap Entry" / 9.2.1: a trap into HS writes hstatus.SPV with the previous V and, only when
    V was 1, SPVP with the nominal privilege (SPVP is not written from V=0, so its value after
    entry is also compared: a write it should not have done shows).  A trap into VS writes vsstatus.
    A CSR given as None (not shown) gives no keys."""
    out = {}
    if target == "M" and mstatus is not None:
        out = {"mstatus.MPP": (mstatus >> C.MPP_SHIFT) & 3, "mstatus.MPV": int(bool(mstatus & C.MPV)),
               "mstatus.MPIE": int(bool(mstatus & C.MPIE)), "mstatus.MIE": int(bool(mstatus & C.MIE))}
    elif target == "HS":
        if hstatus is not None:
            out = {"hstatus.SPV": int(bool(hstatus & C.H_SPV)), "hstatus.SPVP": int(bool(hstatus & C.H_SPVP))}
        if mstatus is not None:
            out.update({"sstatus.SPP": int(bool(mstatus & C.SPP)), "sstatus.SPIE": int(bool(mstatus & C.SPIE)),
                        "sstatus.SIE": int(bool(mstatus & C.SIE))})
    elif target == "VS" and vsstatus is not None:
        out = {"vsstatus.SPP": int(bool(vsstatus & C.SPP)), "vsstatus.SPIE": int(bool(vsstatus & C.SPIE)),
               "vsstatus.SIE": int(bool(vsstatus & C.SIE))}
    return out


class TrapEntry:
    def mret(self, insn):
        """Priv. 3.3.2 MRET with H 9.5.3: V = MPV when MPP != M."""
        if self.priv != 3:
            raise self._illegal(insn)          # not an HS instruction either: illegal, never virtual
        s = self.csr[0x300]
        mpp = (s >> C.MPP_SHIFT) & 3
        self.v = 1 if (mpp != 3 and s & C.MPV) else 0
        self.priv = mpp
        s = (s & ~(C.MIE | (3 << C.MPP_SHIFT) | C.MPV)) | C.MPIE | (C.MIE if s & C.MPIE else 0)
        if mpp != 3:
            s &= ~C.MPRV
        self.csr[0x300] = s
        self.irq_now = True                    # Priv. 3.1.9: interrupts evaluated right after an xRET
        self.flush_tlb()
        return self.csr[0x341]

    def sret(self, insn):
        """Priv. 3.3.2 SRET / H 9.5.3: from HS uses sstatus and hstatus.SPV; from VS uses vsstatus
        (V stays 1); TSR -> illegal, VTSR -> virtual-instruction, U -> illegal, VU -> virtual."""
        c = self.csr
        if self.v:
            if self.priv == 0 or c[0x600] & C.H_VTSR:
                raise Exc(VIRTUAL_INSN, insn)
            s = c[0x200]
            self.priv = 1 if s & C.SPP else 0
            c[0x200] = (s & ~(C.SIE | C.SPP)) | C.SPIE | (C.SIE if s & C.SPIE else 0)
            self.irq_now = True
            self.flush_tlb()
            return c[0x241]
        if self.priv == 0 or (self.priv == 1 and c[0x300] & C.TSR):
            raise self._illegal(insn)
        s = c[0x300]
        self.priv = 1 if s & C.SPP else 0
        self.v = 1 if c[0x600] & C.H_SPV else 0
        c[0x600] &= ~C.H_SPV
        c[0x300] = (s & ~(C.SIE | C.SPP | C.MPRV)) | C.SPIE | (C.SIE if s & C.SPIE else 0)
        self.irq_now = True
        self.flush_tlb()
        return c[0x141]

    def take_trap(self, e: Exc, pc: int, insn: int | None = None) -> Trap:
        """``insn``: the raw bits of the trapping instruction (16 or 32 bits), None if not fetched."""
        c = self.csr
        priv, v = self.priv, self.v
        # GVA: "set when the trap writes a guest virtual address to xtval" (3.1.6, H 9.2.1)
        if e.cause == VIRTUAL_INSN and self.profile.illegal_tval != "insn":
            # H "Virtual instruction exception": xtval is written as for an illegal-instruction trap
            e.tval = 0
        gva = bool(e.gva) or (bool(self.acc_v) and (e.cause in ADDRESS_CAUSES or (e.cause == 3 and e.tval != 0)))
        htval = e.htval if e.cause in GUEST_PAGE_CAUSES else 0
        target = trap_target(e.cause, priv, v, c[0x302], c[0x602])
        tinst = e.tinst
        if tinst is None:
            # H "Transformed instruction or pseudoinstruction for mtinst or htinst": on every trap into
            # M or HS the CSR gets zero or, for the causes its table allows (misaligned, access, page
            # and guest-page faults of loads/stores/AMOs), the transformed instruction -- per profile.
            tinst = 0 if target == "VS" else _tinst.tinst_for(
                insn, e, ACCESS_OF_CAUSE.get(e.cause, "fetch"), self.profile, addr_offset=e.addr_offset)
        self._enter(target, e.cause, pc, e.tval & M64, htval, tinst, gva)
        return Trap(cause=e.cause, interrupt=False, epc=pc, tval=e.tval & M64,
                    htval=htval if target != "VS" else None, tinst=tinst if target != "VS" else None,
                    gva=gva if target != "VS" else None, target=target,
                    fields=status_fields(target, c[0x300], c[0x600], c[0x200]))

    def take_interrupt(self, cause: int, target: str, pc: int) -> Trap:
        """An interrupt (``cause`` = its bit in mip) taken before the instruction at ``pc`` runs
        (refmodel.interrupts decides which and where).  Priv. 3.1.15/3.1.16: xepc = the pc of the
        instruction that did not run, xtval = 0 ("mtval is ... set to zero" for traps that do not
        write it), the Interrupt bit of xcause set; H: htval/mtval2 and htinst/mtinst are written
        with zero, GVA with 0 (no address); VS-level codes are translated for VS (H "hideleg")."""
        from refmodel.interrupts import xcause_code
        code = xcause_code(cause, target)
        self._enter(target, code | (1 << 63), pc, 0, 0, 0, False, vectored=code)
        c = self.csr
        return Trap(cause=cause, interrupt=True, epc=pc, tval=0,
                    htval=0 if target != "VS" else None, tinst=0 if target != "VS" else None,
                    gva=False if target != "VS" else None, target=target,
                    fields=status_fields(target, c[0x300], c[0x600], c[0x200]))

    def _enter(self, target: str, xcause: int, pc: int, tval: int, htval: int, tinst: int, gva: bool,
               vectored: int | None = None) -> None:
        """Trap entry proper: the CSR writes of Priv. 3.1.6.1 / H "Trap Entry" into ``target`` and
        the jump to its xtvec.  ``vectored``: the interrupt's code for xtvec.MODE=1 (Priv. 3.1.7:
        "asynchronous interrupts set pc to BASE+4*cause"); exceptions always go to BASE."""
        c = self.csr
        priv, v = self.priv, self.v
        if target == "M":
            s = c[0x300]
            s = (s & ~(C.MPV | (3 << C.MPP_SHIFT) | C.MPIE | C.MIE | C.GVA)) | (priv << C.MPP_SHIFT)
            s |= (C.MPV if v else 0) | (C.MPIE if s & C.MIE else 0) | (C.GVA if gva else 0)
            s |= C.MPIE if c[0x300] & C.MIE else 0
            c[0x300] = s
            c[0x341], c[0x342], c[0x343], c[0x34B], c[0x34A] = pc, xcause, tval, htval, tinst
            self.priv, self.v = 3, 0
            vec = c[0x305]
        elif target == "HS":
            h = c[0x600] & ~(C.H_SPV | C.H_GVA)
            h |= (C.H_SPV if v else 0) | (C.H_GVA if gva else 0)
            if v:
                h = (h & ~C.H_SPVP) | (C.H_SPVP if priv else 0)
            c[0x600] = h
            s = c[0x300]
            c[0x300] = (s & ~(C.SPP | C.SPIE | C.SIE)) | (C.SPP if priv else 0) | (C.SPIE if s & C.SIE else 0)
            c[0x141], c[0x142], c[0x143], c[0x643], c[0x64A] = pc, xcause, tval, htval, tinst
            self.priv, self.v = 1, 0
            vec = c[0x105]
        else:
            s = c[0x200]
            c[0x200] = (s & ~(C.SPP | C.SPIE | C.SIE)) | (C.SPP if priv else 0) | (C.SPIE if s & C.SIE else 0)
            c[0x241], c[0x242], c[0x243] = pc, xcause, tval
            self.priv, self.v = 1, 1
            vec = c[0x205]
        base = vec & ~3
        self.pc = base + 4 * vectored if vectored is not None and vec & 3 == 1 else base
        self.reservation = None
        self.flush_tlb()
