"""Privilege rules of the model, one instruction at a time (no toolchain needed).

Spec: RISC-V Privileged Architecture 20240411, chapters 2 (CSR access), 3 (M-mode: MRET,
medeleg, TVM/TW/TSR, MPRV) and 9 (H extension: hstatus, hedeleg, virtual-instruction
exception 9.6.1, trap entry 9.5.2, trap return 9.5.3, HLV/HSV 9.3).
"""
import pytest

from refmodel import csr as C
from refmodel.hart import Hart
from refmodel.profile import PROFILES
from refmodel.trap import ECALL_S, ECALL_U, ECALL_VS, ILLEGAL, VIRTUAL_INSN

PROF = PROFILES["qemu-10.0"]
BASE = PROF.ram_base


def csrrs(rd, csr, rs1=0):
    return (csr << 20) | (rs1 << 15) | (2 << 12) | (rd << 7) | 0x73


def csrrw(rd, csr, rs1):
    return (csr << 20) | (rs1 << 15) | (1 << 12) | (rd << 7) | 0x73


ECALL, MRET, SRET, WFI = 0x73, 0x30200073, 0x10200073, 0x10500073
SFENCE, HFENCE_VVMA, HFENCE_GVMA = 0x12000073, 0x22000073, 0x62000073
HLV_D_A0_A1 = 0x6C05C573          # hlv.d a0, (a1)
HSV_D_A0_A1 = 0x6EA5C073          # hsv.d a0, (a1)


def hart(priv=3, v=0, **csrs):
    h = Hart(PROF)
    h.pc = BASE
    h.priv, h.v = priv, v
    # an all-RWX PMP entry so S/U fetches succeed (Priv. 3.7.1: no match fails below M)
    h.csr[0x3B0] = (1 << 54) - 1
    h.csr[0x3A0] = 0x1F
    h.pmp_changed()
    for name, val in csrs.items():
        h.csr[C.NUMBERS[name]] = val
    h.csr[0x305] = h.csr[0x105] = h.csr[0x205] = BASE + 0x800
    h.flush_tlb()                    # CSRs poked directly: drop derived state as a CSR write would
    return h


def step(h, insn):
    h.mem.write(h.pc, 4, insn)
    h.icache.clear()
    return h.step()


# ---------------------------------------------------------------- CSR access (Priv. 2.1, H 9.6.1)
@pytest.mark.parametrize("priv,v,csr,cause", [
    (1, 0, 0x300, ILLEGAL),        # M CSR from HS
    (1, 1, 0x300, ILLEGAL),        # M CSR from VS: never virtual-instruction
    (1, 1, 0x600, VIRTUAL_INSN),   # hstatus from VS: HS could access it
    (1, 1, 0x680, VIRTUAL_INSN),   # hgatp from VS
    (0, 1, 0x100, VIRTUAL_INSN),   # sstatus from VU
    (0, 1, 0x600, VIRTUAL_INSN),   # hypervisor CSR from VU
    (0, 0, 0x100, ILLEGAL),        # sstatus from U
    (0, 0, 0x600, ILLEGAL),
])
def test_csr_access_faults(priv, v, csr, cause):
    s = step(hart(priv, v), csrrs(10, csr))
    assert s.trap is not None and s.trap.cause == cause


@pytest.mark.parametrize("csr", [0x600, 0x602, 0x680, 0x200, 0x280, 0x643, 0x64A, 0x100, 0x180])
def test_hs_reaches_hypervisor_and_vs_csrs(csr):
    # H 9.2/9.3: hypervisor and VS CSRs are accessible from HS-mode (V=0)
    h = hart(1, 0)
    assert step(h, csrrs(10, csr)).trap is None
    assert step(hart(0, 0), csrrs(10, csr)).trap.cause == ILLEGAL


def test_hs_write_to_vsatp_reaches_vsatp_not_satp():
    h = hart(1, 0)
    h.x[10] = (8 << 60) | 0x1234
    assert step(h, csrrw(0, 0x280, 10)).trap is None
    assert h.csr[0x280] == (8 << 60) | 0x1234 and h.csr[0x180] == 0


def test_write_to_read_only_csr_is_illegal_even_from_vs():
    # hgeip (0xE12) is read-only: HS could not write it either, so V=1 gives illegal, not virtual
    s = step(hart(1, 1), csrrw(0, 0xE12, 10))
    assert s.trap.cause == ILLEGAL


def test_vs_csr_substitution():
    # H 9.2: with V=1, an access to an S CSR reaches the VS CSR
    h = hart(1, 1)
    h.x[10] = 0x1234
    assert step(h, csrrw(0, 0x140, 10)).trap is None      # sscratch -> vsscratch
    assert h.csr[0x240] == 0x1234 and h.csr[0x140] == 0


def test_tvm_and_vtvm():
    h = hart(1, 0, mstatus=C.TVM)
    assert step(h, csrrs(10, 0x180)).trap.cause == ILLEGAL              # Priv. 3.1.6.5
    h = hart(1, 0, mstatus=C.TVM)
    assert step(h, SFENCE).trap.cause == ILLEGAL
    h = hart(1, 0, mstatus=C.TVM)
    assert step(h, HFENCE_GVMA).trap.cause == ILLEGAL                   # H 9.2.10
    h = hart(1, 1, hstatus=C.H_VTVM)
    assert step(h, csrrs(10, 0x180)).trap.cause == VIRTUAL_INSN         # H 9.2.1 VTVM
    h = hart(1, 1, hstatus=C.H_VTVM)
    assert step(h, SFENCE).trap.cause == VIRTUAL_INSN


@pytest.mark.parametrize("insn", [HFENCE_VVMA, HFENCE_GVMA])
def test_hfence_rules(insn):
    assert step(hart(1, 1), insn).trap.cause == VIRTUAL_INSN
    assert step(hart(0, 1), insn).trap.cause == VIRTUAL_INSN
    assert step(hart(0, 0), insn).trap.cause == ILLEGAL
    assert step(hart(1, 0), insn).trap is None


def test_wfi_rules():
    assert step(hart(1, 0), WFI).trap is None                            # a no-op is allowed
    assert step(hart(1, 0, mstatus=C.TW), WFI).trap.cause == ILLEGAL
    assert step(hart(1, 1, hstatus=C.H_VTW), WFI).trap.cause == VIRTUAL_INSN
    assert step(hart(0, 1), WFI).trap.cause == VIRTUAL_INSN
    assert step(hart(0, 0), WFI).trap.cause == ILLEGAL


# ---------------------------------------------------------------- delegation (Priv. 3.1.8, H 9.4.2)
@pytest.mark.parametrize("priv,v,medeleg,hedeleg,cause,target", [
    (0, 0, 0, 0, ECALL_U, "M"),
    (0, 0, 1 << ECALL_U, 0, ECALL_U, "HS"),
    (0, 1, 1 << ECALL_U, 1 << ECALL_U, ECALL_U, "VS"),
    (1, 1, 1 << ECALL_VS, 0, ECALL_VS, "HS"),
    (1, 0, 1 << ECALL_S, 0, ECALL_S, "HS"),
    (1, 1, 0, 0, ECALL_VS, "M"),
])
def test_ecall_delegation(priv, v, medeleg, hedeleg, cause, target):
    h = hart(priv, v, medeleg=medeleg, hedeleg=hedeleg)
    s = step(h, ECALL)
    assert (s.trap.cause, s.trap.target) == (cause, target)
    assert h.pc == BASE + 0x800
    assert (h.priv, h.v) == {"M": (3, 0), "HS": (1, 0), "VS": (1, 1)}[target]


def test_trap_entry_to_hs_records_spv_spvp():
    h = hart(1, 1, medeleg=1 << ECALL_VS)
    step(h, ECALL)
    assert h.csr[0x600] & C.H_SPV and h.csr[0x600] & C.H_SPVP
    assert h.csr[0x300] & C.SPP and h.csr[0x141] == BASE and h.csr[0x142] == ECALL_VS


def test_trap_entry_to_m_records_mpv_mpp():
    h = hart(0, 1)
    step(h, ECALL)
    s = h.csr[0x300]
    assert s & C.MPV and (s >> C.MPP_SHIFT) & 3 == 0 and h.csr[0x342] == ECALL_U


def test_hedeleg_read_only_bits():
    h = hart()
    h.x[10] = (1 << 64) - 1
    step(h, csrrw(0, 0x602, 10))
    for c in (9, 10, 11, 20, 21, 22, 23):            # H 9.2.2: read-only zero
        assert not (h.csr[0x602] >> c) & 1


# ---------------------------------------------------------------- trap return (Priv. 3.3.2, H 9.5.3)
def test_mret_to_vs_and_sret_from_hs_to_vu():
    h = hart(3, 0, mstatus=(1 << C.MPP_SHIFT) | C.MPV, mepc=BASE + 0x40)
    step(h, MRET)
    assert (h.priv, h.v, h.pc) == (1, 1, BASE + 0x40)
    assert not h.csr[0x300] & C.MPV
    h = hart(1, 0, hstatus=C.H_SPV, sepc=BASE + 0x80)
    step(h, SRET)
    assert (h.priv, h.v, h.pc) == (0, 1, BASE + 0x80) and not h.csr[0x600] & C.H_SPV


def test_sret_in_vs_uses_vsstatus_and_stays_virtual():
    h = hart(1, 1, vsstatus=C.SPP, vsepc=BASE + 0x20)
    step(h, SRET)
    assert (h.priv, h.v, h.pc) == (1, 1, BASE + 0x20)
    assert not h.csr[0x200] & C.SPP


def test_sret_rules():
    assert step(hart(1, 1, hstatus=C.H_VTSR), SRET).trap.cause == VIRTUAL_INSN
    assert step(hart(0, 1), SRET).trap.cause == VIRTUAL_INSN
    assert step(hart(1, 0, mstatus=C.TSR), SRET).trap.cause == ILLEGAL
    assert step(hart(0, 0), SRET).trap.cause == ILLEGAL
    assert step(hart(1, 0), MRET).trap.cause == ILLEGAL
    assert step(hart(1, 1), MRET).trap.cause == ILLEGAL        # MRET is not allowed in HS: never virtual


# ---------------------------------------------------------------- HLV/HSV (H 9.3)
def test_hlv_hsv_rules():
    assert step(hart(1, 1), HLV_D_A0_A1).trap.cause == VIRTUAL_INSN
    assert step(hart(0, 1), HSV_D_A0_A1).trap.cause == VIRTUAL_INSN
    assert step(hart(0, 0), HLV_D_A0_A1).trap.cause == ILLEGAL          # U without hstatus.HU
    h = hart(0, 0, hstatus=C.H_HU)                                       # U with HU: allowed (as VU, Bare)
    h.x[11] = BASE + 0x100
    h.mem.write(BASE + 0x100, 8, 0xABCDEF)
    s = step(h, HLV_D_A0_A1)
    assert s.trap is None and h.x[10] == 0xABCDEF


def test_hsv_stores_through_guest_translation():
    h = hart(1, 0)
    h.x[10], h.x[11] = 0x55AA, BASE + 0x200
    assert step(h, HSV_D_A0_A1).trap is None
    assert h.mem.read(BASE + 0x200, 8) == 0x55AA


def test_mprv_with_mpv_uses_guest_privilege_for_data_only():
    # Priv. 3.1.6.3 with H 9.4.1: MPRV=1, MPP=S, MPV=1 -> loads act as VS; fetch stays M.
    h = hart(3, 0, mstatus=C.MPRV | (1 << C.MPP_SHIFT) | C.MPV)
    assert h.eff_ls() == (1, 1)
    h = hart(3, 0, mstatus=C.MPRV | (3 << C.MPP_SHIFT) | C.MPV)
    assert h.eff_ls() == (3, 0)


def test_counters_gated_by_counteren():
    # Priv. 3.1.11 / H 9.2.4: instret from VS needs mcounteren and hcounteren
    assert step(hart(1, 0), csrrs(10, 0xC02)).trap.cause == ILLEGAL
    assert step(hart(1, 1, mcounteren=4), csrrs(10, 0xC02)).trap.cause == VIRTUAL_INSN
    assert step(hart(1, 1, mcounteren=4, hcounteren=4), csrrs(10, 0xC02)).trap is None


def test_hgatp_warl():
    h = hart()
    h.x[10] = (8 << 60) | (((1 << 16) - 1) << 44) | 0x80003
    step(h, csrrw(0, 0x680, 10))
    v = h.csr[0x680]
    assert v >> 60 == 8 and (v >> 44) & 0xFFFF == (1 << PROF.vmidlen) - 1 and v & 3 == 0
    # reserved MODE: H "hgatp": "not ignored as it is for satp ... the fields of hgatp are WARL" -- PPN and
    # VMID are written, MODE keeps its value under profile hgatp_unsupported_mode="keep"
    h.x[10] = (5 << 60) | (3 << 44) | 0x90007
    step(h, csrrw(0, 0x680, 10))
    assert h.csr[0x680] == (8 << 60) | (3 << 44) | 0x90004


LD_A0_1_A1 = 0x0015B503          # ld a0, 1(a1)


def test_misaligned_load_profile_choice():
    # Unpriv. 2.6: misaligned accesses may be performed or raise address-misaligned (a profile field)
    h = hart(3, 0)
    h.x[11] = BASE + 0x100
    h.mem.write(BASE + 0x100, 8, 0x1122334455667788)
    h.mem.write(BASE + 0x108, 8, 0x99)
    assert step(h, LD_A0_1_A1).trap is None and h.x[10] == 0x9911223344556677
    h = Hart(PROF.with_(misaligned_ls="trap"))
    h.pc, h.x[11] = BASE, BASE + 0x100
    s = step(h, LD_A0_1_A1)
    assert (s.trap.cause, s.trap.tval) == (4, BASE + 0x101)


def test_trap_to_hs_from_vs_guest_page_fault_writes_htval_and_hstatus_gva():
    # H "Trap entry": a trap into HS from V=1 sets hstatus.SPV, SPVP and GVA, htval = GPA >> 2
    from refmodel.trap import Exc
    h = hart(1, 1, medeleg=1 << 21)
    t = h.take_trap(Exc(21, 0x1234, htval=0x5678 >> 2, gva=True), BASE)
    assert (t.target, t.htval, t.gva) == ("HS", 0x5678 >> 2, True)
    assert h.csr[0x643] == 0x5678 >> 2 and h.csr[0x143] == 0x1234
    hs = h.csr[0x600]
    assert hs & C.H_GVA and hs & C.H_SPV and hs & C.H_SPVP


def test_state_dict_has_gprs_and_every_h_csr():
    d = hart().state_dict()
    for name in ("a0", "sp", "pc", "hstatus", "hgatp", "vsatp", "htinst", "mtval2", "mtinst", "vsstatus",
                 "hgeip", "henvcfg", "hvip", "vstvec"):
        assert name in d


SD_A0_0_A1 = 0x00A5B023          # sd a0, 0(a1)
NOP = 0x00000013


def test_pte_store_marks_translations_maybe_stale_until_fence():
    # Priv. 10.2.1 "SFENCE.VMA": a PTE store is only guaranteed visible to later walks after a
    # fence; translations that used a PTE written since the last fence are flagged maybe_stale.
    root = BASE + 0x10000
    pte = ((BASE >> 12) << 10) | 0xCF            # gigapage leaf: D|A|X|W|R|V (S-mode)
    h = hart(1, 0, satp=(8 << 60) | (root >> 12))
    h.mem.write(root + 16, 8, pte)
    h.x[10], h.x[11] = pte, root + 16
    for i, w in enumerate([SD_A0_0_A1, NOP, SFENCE, NOP]):
        h.mem.write(BASE + 4 * i, 4, w)
    steps = [h.step() for _ in range(4)]
    assert all(s.trap is None for s in steps)
    fetch = [[x for x in s.xlats if x.access == "fetch"][0] for s in steps]
    assert [x.vs_leaf_level for x in fetch] == [2, 2, 2, 2] and fetch[1].pa == BASE + 4
    store = [x for x in steps[0].xlats if x.access == "store"][0]
    assert store.pa == root + 16 and not store.maybe_stale
    assert [x.maybe_stale for x in fetch] == [False, True, True, False]


def test_ebreak_tval_is_a_profile_choice():
    # Priv. 3.1.16: on EBREAK, mtval is zero or the instruction's virtual address
    h = hart(3, 0)
    assert step(h, 0x00100073).trap.tval == BASE
    h = Hart(PROFILES["qemu-7.2"])
    h.pc = BASE
    assert step(h, 0x00100073).trap.tval == 0


# ---------------------------------------------------------------- htimedelta (H 9.2.7)
def test_htimedelta_is_an_hs_csr_and_offsets_time_in_vs():
    """Real H software writes htimedelta (0x605) early; it is a full 64-bit HS CSR, a virtual-
    instruction trap from VS, and time read with V=1 is time + htimedelta (mod 2^64)."""
    h = hart(1, 0, hcounteren=7, mcounteren=7, scounteren=7)
    h.x[5] = (1 << 64) - 3
    step(h, csrrw(0, 0x605, 5))
    step(h, csrrs(6, 0x605))
    assert h.x[6] == (1 << 64) - 3 and h.csr[0x605] == (1 << 64) - 3
    # time = mtime: the instruction with step index k reads floor((k + 1) * 2^S / 100) (refmodel.aclint)
    base = (h.steps + 1) * (1 << h.profile.icount_shift) // 100
    h.v = 1
    step(h, csrrs(7, 0xC01))
    assert h.x[7] == (base + (1 << 64) - 3) & ((1 << 64) - 1)
    assert step(h, csrrs(8, 0x605)).trap.cause == VIRTUAL_INSN
