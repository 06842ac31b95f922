"""The hart's trap-raise sites and bookkeeping against the spec, one instruction at a time.

Spec: RISC-V Privileged Architecture 20240411 -- 3.7.1 (PMP priority and matching), 10.2.1
(SFENCE.VMA scoping), the H chapter "Transformed instruction or pseudoinstruction for mtinst or
htinst" (which causes may write a transformed instruction) and "Hypervisor Memory-Management Fence
Instructions", and the Svade/Svadu chapters (menvcfg.ADUE reset is implementation-defined).
"""
from __future__ import annotations

import pytest

from refmodel import pmp
from refmodel.hart import Hart
from refmodel.profile import PROFILES

P10, P72 = PROFILES["qemu-10.0"], PROFILES["qemu-7.2"]
BASE = P10.ram_base
ROOT = BASE + 0x10000                  # Sv39 root table of the tests that translate
V, R, W, X, U, G, A, D = (1 << i for i in range(8))
A0, A1, A2, A3, A4 = 10, 11, 12, 13, 14
LD_A0_A1 = 0x0005B503                  # ld a0, 0(a1)
SD_A2_A1 = 0x00C5B023                  # sd a2, 0(a1)
C_LD_A0_A1 = 0x6188                    # c.ld a0, 0(a1)
AMOADD_D = 0x00C5B52F                  # amoadd.d a0, a2, (a1)


def sfence(rs1=0, rs2=0):
    return 0x12000073 | (rs2 << 20) | (rs1 << 15)


def make(profile=P10, *, pmp_block=None, satp=False):
    h = Hart(profile)
    h.pc, h.priv, h.v = BASE, 3, 0
    c = h.csr
    if pmp_block is None:
        c[0x3B0], c[0x3A0] = (1 << 54) - 1, 0x1F
    else:
        # entry 0: NAPOT 4 KiB, no permission, not locked; entry 1: all memory RWX (guest `faults`)
        c[0x3B0], c[0x3B1] = (pmp_block >> 2) | 0x1FF, (1 << 54) - 1
        c[0x3A0] = (0x1F << 8) | 0x18
    h.pmp_changed()
    c[0x305] = c[0x105] = c[0x205] = BASE + 0x800
    if satp:
        # two 1 GiB leaves: VA 0x8000_0000 (code) and VA 0xC000_0000 (data alias), both -> PA 0x8000_0000
        h.mem.write(ROOT + 2 * 8, 8, ((BASE >> 12) << 10) | V | R | W | X | A | D)
        h.mem.write(ROOT + 3 * 8, 8, ((BASE >> 12) << 10) | V | R | W | A | D)
        c[0x180] = (8 << 60) | (ROOT >> 12)
    h.flush_tlb()
    return h


def run(h, insn, priv=None, size=4):
    if priv is not None:
        h.priv = priv
        h.flush_tlb()
    h.mem.write(h.pc, size, insn)
    h.icache.clear()
    h.tlb.clear()
    return h.step()


# ---------------------------------------------------------------- PMP (Priv. 3.7.1)
def test_pmp_lowest_numbered_match_decides():
    """A 4 KiB NAPOT entry without permissions ahead of an all-memory RWX entry denies S/U/VS
    accesses to its page (the lowest-numbered matching entry decides) and nothing else; M-mode
    is not affected because the entry is not locked."""
    page = BASE + 0x7000
    rs = pmp.regions([0x18, 0x1F], [(page >> 2) | 0x1FF, (1 << 54) - 1])
    assert [(r.lo, r.hi) for r in rs][0] == (page, page + 0x1000)
    for priv in (0, 1):
        for acc in ("load", "store", "fetch"):
            assert not pmp.check(rs, page + 8, 8, acc, priv, 16)
            assert pmp.check(rs, page + 0x1000, 8, acc, priv, 16)
            assert pmp.check(rs, page - 8, 8, acc, priv, 16)
    assert pmp.check(rs, page + 8, 8, "load", 3, 16)
    assert not pmp.check(rs, page - 4, 8, "load", 1, 16)      # straddles: must match all bytes


def test_pmp_final_address_fault_is_recorded_in_the_translation():
    """Guest `faults` probe 40: S-mode load from a blocked page through satp -> access fault 5, and the
    step's translation record says the PMP check of the final address failed (as QEMU logs it)."""
    page = BASE + 0x7000
    h = make(pmp_block=page, satp=True)
    h.x[A1] = 0xC000_0000 + 0x7008
    st = run(h, LD_A0_A1, priv=1)
    assert (st.trap.cause, st.trap.tval) == (5, 0xC000_7008)
    ld = [x for x in st.xlats if x.access == "load"]
    assert (ld[0].fault_stage, ld[0].fault_cause) == ("pmp", 5)
    h2 = make(pmp_block=page, satp=True)
    h2.x[A1] = 0xC000_0000 + 0x8008                           # next page: allowed by entry 1
    st = run(h2, LD_A0_A1, priv=1)
    assert st.trap is None and st.xlats[-1].fault_stage is None


# ---------------------------------------------------------------- htinst/mtinst
@pytest.mark.parametrize("insn,size,access,want", [
    (LD_A0_A1, 4, "load", 0x00003503),                        # ld: imm and rs1 zeroed
    (SD_A2_A1, 4, "store", 0x00C03023),                       # sd: imm zeroed, rs2 kept
    (C_LD_A0_A1, 2, "load", 0x00003501),                      # c.ld -> ld a0 with bit 1 cleared
])
def test_tinst_on_access_fault(insn, size, access, want):
    """H table of tinst values: an access fault (cause 5/7) may write the transformed instruction.
    QEMU 10.0 does (profile tinst_policy="transformed"); QEMU 7.2 writes zero."""
    page = BASE + 0x7000
    for prof, expect in ((P10, want), (P72, 0)):
        h = make(prof, pmp_block=page)
        h.x[A1] = page + 8
        st = run(h, insn, priv=1, size=size)
        assert st.trap.cause == (5 if access == "load" else 7)
        assert st.trap.tinst == expect and h.csr[0x34A] == expect


def test_tinst_on_misaligned_amo():
    """A misaligned AMO raises store/AMO address-misaligned (6); the table allows the transformed
    instruction (an AMO keeps every field but rs1, which becomes the address offset 0)."""
    h = make()
    h.x[A1] = BASE + 0x7004
    st = run(h, AMOADD_D, priv=1)
    assert (st.trap.cause, st.trap.tinst) == (6, AMOADD_D & ~(31 << 15))


def test_tinst_zero_for_other_causes():
    """Illegal instruction, ecall: not in the table -> zero even with tinst_policy="transformed"."""
    h = make()
    st = run(h, 0x00000073, priv=1)                           # ecall from HS
    assert st.trap.cause == 9 and st.trap.tinst == 0


# ---------------------------------------------------------------- menvcfg reset (Svadu)
def test_menvcfg_reset_per_profile():
    assert Hart(P10).csr[0x30A] >> 61 & 1 == 1 and Hart(P10).csr[0x60A] == 0
    assert Hart(P72).csr[0x30A] == 0


# ---------------------------------------------------------------- maybe_stale scoping
def _stale_after(fence_rs1_val, fence_rs2_val, *, glob=False):
    """Load through VA 0xC000_0008 (leaf PTE at ROOT+24), rewrite that PTE from M-mode, execute
    SFENCE.VMA with the given operands (None = x0) in HS, load again: is it maybe_stale?"""
    h = make(satp=True)
    if glob:
        h.mem.write(ROOT + 24, 8, h.mem.read(ROOT + 24, 8) | G)
    h.x[A1] = 0xC000_0008
    assert run(h, LD_A0_A1, priv=1).trap is None
    h.x[A1], h.x[A2] = ROOT + 24, h.mem.read(ROOT + 24, 8)   # same value, but a store to a PTE
    assert run(h, SD_A2_A1, priv=3).trap is None
    assert h.dirty_ptes
    h.x[A3] = fence_rs1_val or 0
    h.x[A4] = fence_rs2_val or 0
    st = run(h, sfence(A3 if fence_rs1_val is not None else 0, A4 if fence_rs2_val is not None else 0), priv=1)
    assert st.trap is None
    h.x[A1] = 0xC000_0008
    st = run(h, LD_A0_A1, priv=1)
    assert st.trap is None
    return [x for x in st.xlats if x.access == "load"][0].maybe_stale


def test_sfence_all_orders_every_pte_store():
    assert _stale_after(None, None) is False


def test_sfence_for_the_address_orders_its_leaf():
    """Priv. 10.2.1: rs1 != x0 orders stores to leaf PTEs for that VA (any address in the 1 GiB page)."""
    assert _stale_after(0xC123_4000, None) is False


def test_sfence_for_another_address_does_not():
    assert _stale_after(0x8000_0000, None) is True


def test_sfence_for_an_asid_does_not_order_global_mappings():
    """Priv. 10.2.1: rs2 != x0 orders only that ASID's mappings, never global ones."""
    assert _stale_after(None, 0) is False
    assert _stale_after(None, 0, glob=True) is True
    assert _stale_after(None, 5) is True                      # another ASID


def test_hfence_gvma_does_not_order_hs_stage_pte_stores():
    """H "Hypervisor Memory-Management Fence Instructions": HFENCE.GVMA orders G-stage structures only."""
    h = make(satp=True)
    h.x[A1] = 0xC000_0008
    run(h, LD_A0_A1, priv=1)
    h.x[A1], h.x[A2] = ROOT + 24, h.mem.read(ROOT + 24, 8)
    run(h, SD_A2_A1, priv=3)
    assert run(h, 0x62000073, priv=1).trap is None             # hfence.gvma x0, x0
    h.x[A1] = 0xC000_0008
    st = run(h, LD_A0_A1, priv=1)
    assert [x for x in st.xlats if x.access == "load"][0].maybe_stale is True


def test_tinst_addr_offset_of_a_misaligned_access_done_in_pieces():
    """H "Transformed instruction": Addr. Offset = faulting VA minus the original VA (non-zero only
    for a misaligned access).  An 8-byte load 4 bytes before a blocked page faults on the page's
    first byte: tval = that byte's address, rs1 field of the transformed ld = 4."""
    page = BASE + 0x7000
    h = make(pmp_block=page)
    h.x[A1] = page - 4
    st = run(h, LD_A0_A1, priv=1)
    assert (st.trap.cause, st.trap.tval) == (5, page)
    assert st.trap.tinst == 0x00003503 | (4 << 15)
