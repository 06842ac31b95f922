"""refmodel.tinst: Priv. 20240411, H "Transformed Instruction or Pseudoinstruction for mtinst or htinst"."""
from refmodel.mmu import Fault
from refmodel.profile import BASE
from refmodel.tinst import expand_compressed, pseudo, tinst_for, transform

T = BASE.with_(tinst_policy="transformed")


def gpf(cause, implicit=False, write=False):
    return Fault(cause, 0x1000, 0x400, True, implicit, "g", implicit_write=write)


def test_zero_policy_and_non_guest_page_faults():
    assert tinst_for(0x0005B503, gpf(21), "load", BASE) == 0
    assert tinst_for(0x0005B503, Fault(12, 0), "fetch", T) == 0          # instruction page fault: zero


def test_load_store_amo_transformed():
    ld = 0x0085B503            # ld a0, 8(a1): imm and rs1 cleared
    assert transform(ld) == 0x00003503
    sd = 0x00A5B423            # sd a0, 8(a1): imm[11:5], imm[4:0], rs1 cleared
    assert transform(sd) == 0x00A03023
    amo = 0x00B5302F           # amoadd.d zero, a1, (a0)
    assert transform(amo) == amo & ~(31 << 15)
    assert transform(ld, addr_offset=4) == 0x00003503 | (4 << 15)
    assert tinst_for(ld, gpf(21), "load", T) == 0x00003503
    assert tinst_for(sd, gpf(23), "store", T) == 0x00A03023


def test_hlv_hsv_transformed():
    hlv_d = (0x36 << 25) | (10 << 15) | (4 << 12) | (11 << 7) | 0x73
    assert transform(hlv_d) == hlv_d & ~(31 << 15)
    hsv_w = (0x35 << 25) | (12 << 20) | (10 << 15) | (4 << 12) | 0x73
    assert transform(hsv_w) == hsv_w & ~(31 << 15)


def test_compressed_expanded_with_bit1_clear():
    c_ld = 0x6508              # c.ld a0, 8(a0) -> ld a0,0(x0) with bit1 clear
    assert expand_compressed(c_ld) == (3 << 12) | (10 << 7) | 0x03
    assert transform(c_ld) == ((3 << 12) | (10 << 7) | 0x03) & ~2
    c_sdsp = 0xE42A            # c.sdsp a0, 8(sp)
    assert transform(c_sdsp) == ((10 << 20) | (3 << 12) | 0x23) & ~2
    assert transform(0x0001) == 0           # c.nop: no memory access
    assert transform(c_ld) & 3 == 1


def test_implicit_pseudoinstructions():
    assert pseudo(False) == 0x3000 and pseudo(True) == 0x3020
    assert pseudo(False, 32) == 0x2000 and pseudo(True, 32) == 0x2020
    assert tinst_for(0x0085B503, gpf(21, implicit=True), "load", T) == 0x3000
    assert tinst_for(0x0085B503, gpf(23, implicit=True, write=True), "store", T) == 0x3020
    assert tinst_for(None, gpf(20, implicit=True), "fetch", T) == 0x3000
    assert tinst_for(0x13, gpf(20), "fetch", T) == 0


def test_mmu_marks_implicit_write_for_ad_update():
    """An A/D update that faults at the G-stage is an implicit write -> 0x3020."""
    from test_mmu import A, D, LEAF, U, V, R, W, _two_stage, map_page
    ctx, va, gpa, vslot, gslot, gbase, sbase = _two_stage(vs_flags=V | R | W, profile=BASE.with_(hw_ad_update=True))
    groot = (ctx.hgatp & ((1 << 44) - 1)) << 12
    map_page(ctx, groot, 3, gbase + 0x2000, sbase + 0x2000, V | R | U | A | D, root_extra=2)
    from refmodel.mmu import translate
    f = translate(ctx, va, "store", 1, 1).fault
    assert f.implicit and f.implicit_write and tinst_for(0x00A5B423, f, "store", T) == 0x3020
    assert LEAF


def test_table_of_allowed_values_per_cause():
    """H table of values mtinst/htinst may hold: transformed for load/store/AMO misaligned (4, 6),
    access faults (5, 7), page faults (13, 15) and guest-page faults (21, 23); zero for the rest."""
    ld = 0x0085B503
    for cause in (4, 5, 13, 21):
        assert tinst_for(ld, Fault(cause, 0), "load", T) == 0x00003503, cause
    for cause in (0, 1, 2, 3, 8, 9, 10, 12, 20, 22):
        assert tinst_for(ld, Fault(cause, 0), "load", T) == 0, cause
    assert tinst_for(ld, Fault(13, 0, implicit=True), "load", T) == 0       # pseudo only for guest-page faults
