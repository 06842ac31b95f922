"""refmodel.mmu against the RISC-V Privileged Architecture 20240411 (S "Virtual Address Translation
Process", H "Two-Stage Address Translation", H "Guest Physical Address Translation", H "Guest-Page Faults").

Page tables live in a plain dict: that is the model's own memory interface (read_pte/write_pte).
"""
from __future__ import annotations

import pytest

from refmodel.mmu import AccessFault, translate
from refmodel.profile import BASE

V, R, W, X, U, G, A, D = (1 << i for i in range(8))
MODE = {"sv39": 8, "sv48": 9, "sv57": 10}
LEVELS = {8: 3, 9: 4, 10: 5}


class Ctx:
    def __init__(self, profile=BASE, **kw):
        self.mem: dict[int, int] = {}
        self.satp = self.vsatp = self.hgatp = 0
        self.mstatus = self.vsstatus = self.menvcfg = self.henvcfg = 0
        self.profile = profile
        self.pmp_deny: set[int] = set()       # pages where implicit accesses fail PMP
        self.writes: list = []
        self.next_page = 0x8010_0000
        for k, v in kw.items():
            setattr(self, k, v)

    def read_pte(self, pa):
        if pa >> 12 == 0xDEAD:
            raise AccessFault(pa)
        return self.mem.get(pa, 0)

    def write_pte(self, pa, old, new):
        if self.mem.get(pa, 0) != old:
            return False
        self.mem[pa] = new
        self.writes.append(pa)
        return True

    def pmp_ok(self, pa, size, access, priv):
        return pa >> 12 not in self.pmp_deny

    def alloc(self, size=0x1000):
        a = (self.next_page + size - 1) & ~(size - 1)
        self.next_page = a + size
        return a


def pte(pa, flags):
    return ((pa >> 12) << 10) | flags


def map_page(ctx, root, levels, addr, pa, flags, leaf_level=0, root_extra=0, table_addr=None):
    """Map addr -> pa in a table whose addresses are the dict's keys.  table_addr(gpa) turns a table
    address into the key (identity: tables already at SPA)."""
    ta = table_addr or (lambda x: x)
    a = root
    for level in range(levels - 1, leaf_level, -1):
        width = 9 + (root_extra if level == levels - 1 else 0)
        slot = ta(a + ((addr >> (12 + 9 * level)) & ((1 << width) - 1)) * 8)
        if not ctx.mem.get(slot, 0) & V:
            ctx.mem[slot] = pte(ctx.alloc(), V)
        a = (ctx.mem[slot] >> 10) << 12
    width = 9 + (root_extra if leaf_level == levels - 1 else 0)
    slot = ta(a + ((addr >> (12 + 9 * leaf_level)) & ((1 << width) - 1)) * 8)
    ctx.mem[slot] = pte(pa, flags)
    return slot


def g_setup(ctx, mode, identity_for=()):
    """hgatp in `mode` with a 16 KiB root; identity G-stage maps for the pages in identity_for."""
    root = ctx.alloc(0x4000)
    ctx.hgatp = (mode << 60) | (root >> 12)
    for page in identity_for:
        map_page(ctx, root, LEVELS[mode], page, page, V | R | W | X | U | A | D, root_extra=2)
    return root


LEAF = V | R | W | X | A | D


# ---------------------------------------------------------------- Bare and satp (V=0)
def test_bare_and_mmode_pass_through():
    ctx = Ctx()
    assert translate(ctx, 0x1234_5678, "load", 1, 0).pa == 0x1234_5678
    ctx.satp = 8 << 60
    assert translate(ctx, 0xFFFF_FFFF_FFFF_0000, "load", 3, 0).pa == 0xFFFF_FFFF_FFFF_0000


@pytest.mark.parametrize("mode", [8, 9, 10])
@pytest.mark.parametrize("leaf_level", [0, 1, 2])
def test_satp_leaf_at_every_level(mode, leaf_level):
    """S "Virtual Address Translation Process" step 4/8: a leaf may be at any level (superpages)."""
    ctx = Ctx()
    root = ctx.alloc()
    ctx.satp = (mode << 60) | (root >> 12)
    va = 0x4000_0000 + 0x12345
    size = 1 << (12 + 9 * leaf_level)
    pa = 0x8000_0000 + 0x4000_0000
    map_page(ctx, root, LEVELS[mode], va, pa, LEAF, leaf_level)
    t = translate(ctx, va, "load", 1, 0, record_walk=True)
    assert t.fault is None and t.pa == pa + (va & (size - 1))
    assert t.vs_leaf_level == leaf_level
    assert t.walk[-1].decision == "leaf" and len(t.walk) == LEVELS[mode] - leaf_level
    assert t.to_xlat("load", va, 1, 0).pa == t.pa


@pytest.mark.parametrize("mode,bits", [(8, 39), (9, 48), (10, 57)])
def test_satp_canonical_rule(mode, bits):
    """S "Sv39": bits 63..39 must equal bit 38, else page fault (same for Sv48/Sv57)."""
    ctx = Ctx()
    root = ctx.alloc()
    ctx.satp = (mode << 60) | (root >> 12)
    top = (1 << 64) - (1 << (bits - 1))           # lowest canonical "negative" address
    map_page(ctx, root, LEVELS[mode], top, 0x8000_0000, LEAF)
    assert translate(ctx, top, "load", 1, 0).fault is None
    bad = 1 << (bits - 1)
    f = translate(ctx, bad, "store", 1, 0).fault
    assert (f.cause, f.tval, f.htval, f.gva) == (15, bad, 0, False)


def _one(ctx_kw=None, flags=LEAF, leaf_level=0, profile=BASE):
    ctx = Ctx(profile, **(ctx_kw or {}))
    root = ctx.alloc()
    ctx.satp = (8 << 60) | (root >> 12)
    va = 0x4000_0000
    slot = map_page(ctx, root, 3, va, 0x8020_0000, flags, leaf_level)
    return ctx, va, slot


@pytest.mark.parametrize("flags,why", [
    (R | W | X | A | D, "V=0"),
    (V | W | A | D, "W=1,R=0"),
    (LEAF | (1 << 54), "reserved bit 54"),
    (LEAF | (1 << 60), "reserved bit 60"),
    (LEAF | (1 << 61), "PBMT without Svpbmt"),
    (LEAF | (1 << 63), "N without Svnapot"),
])
def test_invalid_and_reserved_leaf_fault(flags, why):
    """S step 3: V=0, R=0&W=1, or reserved bits/encodings -> page fault of the access type."""
    ctx, va, _ = _one(flags=flags)
    for access, cause in (("fetch", 12), ("load", 13), ("store", 15)):
        f = translate(ctx, va, access, 1, 0).fault
        assert f is not None and f.cause == cause and f.tval == va, why


def test_pbmt_and_napot_allowed_by_profile():
    ctx, va, _ = _one(flags=LEAF | (1 << 61), profile=BASE.with_(svpbmt=True))
    assert translate(ctx, va, "load", 1, 0).fault is None
    ctx, va, _ = _one(flags=LEAF | (3 << 61), profile=BASE.with_(svpbmt=True))
    assert translate(ctx, va, "load", 1, 0).fault.cause == 13          # PBMT=3 reserved


@pytest.mark.parametrize("bit", [A, D, U])
def test_nonleaf_dau_reserved(bit):
    """S "Sv32": for non-leaf PTEs the D, A and U bits are reserved -> page fault."""
    ctx, va, _ = _one()
    root = ctx.satp << 12 & ((1 << 56) - 1)
    slot = root + ((va >> 30) & 511) * 8
    ctx.mem[slot] |= bit
    assert translate(ctx, va, "load", 1, 0).fault.cause == 13


def test_pointer_at_level0_faults():
    ctx, va, slot = _one(flags=V)
    assert translate(ctx, va, "load", 1, 0).fault.cause == 13


@pytest.mark.parametrize("leaf_level", [1, 2])
def test_misaligned_superpage(leaf_level):
    """S step 6: i > 0 and pte.ppn[i-1:0] != 0 -> misaligned superpage, page fault."""
    ctx, va, slot = _one(leaf_level=leaf_level)
    ctx.mem[slot] = pte(0x8020_1000, LEAF)
    assert translate(ctx, va, "fetch", 1, 0).fault.cause == 12


def test_permissions_u_sum_mxr():
    """S step 5 and "Memory Privilege in sstatus Register" (SUM, MXR)."""
    ctx, va, slot = _one(flags=V | X | A | D)               # execute-only
    assert translate(ctx, va, "load", 1, 0).fault.cause == 13
    ctx.mstatus = 1 << 19                                    # MXR
    assert translate(ctx, va, "load", 1, 0).fault is None
    assert translate(ctx, va, "store", 1, 0).fault.cause == 15
    ctx.mem[slot] = pte(0x8020_0000, LEAF)                   # U=0
    assert translate(ctx, va, "load", 0, 0).fault.cause == 13
    ctx.mem[slot] |= U
    assert translate(ctx, va, "load", 0, 0).fault is None
    ctx.mstatus = 0
    assert translate(ctx, va, "load", 1, 0).fault.cause == 13      # S on U page, SUM=0
    ctx.mstatus = 1 << 18
    assert translate(ctx, va, "load", 1, 0).fault is None
    assert translate(ctx, va, "fetch", 1, 0).fault.cause == 12     # S never executes U pages


def test_ad_svade_fault_and_hw_update():
    """S step 7: A=0 or (store and D=0): Svade -> page fault; hardware update -> atomic write."""
    ctx, va, slot = _one(flags=V | R | W)
    assert translate(ctx, va, "load", 1, 0).fault.cause == 13
    ctx.mem[slot] |= A
    assert translate(ctx, va, "load", 1, 0).fault is None
    assert translate(ctx, va, "store", 1, 0).fault.cause == 15
    ctx, va, slot = _one(flags=V | R | W, profile=BASE.with_(hw_ad_update=True))
    assert translate(ctx, va, "store", 1, 0).fault is None
    assert ctx.mem[slot] & (A | D) == A | D and ctx.writes == [slot]


def test_pte_access_fault_and_pmp():
    """M "PMP": implicit page-table reads are checked; failure -> access fault of the original type."""
    ctx, va, slot = _one()
    ctx.pmp_deny.add(slot >> 12)
    f = translate(ctx, va, "store", 1, 0).fault
    assert (f.cause, f.tval, f.stage) == (7, va, "pmp")
    ctx, va, slot = _one()
    ctx.satp = (8 << 60) | 0xDEAD
    assert translate(ctx, va, "fetch", 1, 0).fault.cause == 1


# ---------------------------------------------------------------- G-stage (hgatp)
@pytest.mark.parametrize("mode,bits", [(8, 41), (9, 50), (10, 59)])
def test_gpa_width_boundary(mode, bits):
    """H "Guest Physical Address Translation": GPA bits above 41/50/59 must be zero, else guest-page
    fault with htval = GPA >> 2 and tval = the GVA."""
    ctx = Ctx()
    root = g_setup(ctx, mode)
    top = (1 << bits) - 0x1000
    map_page(ctx, root, LEVELS[mode], top, 0x8030_0000, LEAF | U, root_extra=2)
    t = translate(ctx, top + 0xFF8, "load", 1, 1)
    assert t.fault is None and t.pa == 0x8030_0FF8 and t.gpa == top + 0xFF8 and t.g_leaf_level == 0
    for b in range(12, 64):
        gpa = 1 << b
        f = translate(ctx, gpa, "store", 1, 1).fault
        assert f is not None, b
        if b >= bits:
            assert (f.cause, f.tval, f.htval, f.gva, f.stage) == (23, gpa, gpa >> 2, True, "g"), b
            assert not f.implicit


@pytest.mark.parametrize("mode", [8, 9, 10])
def test_widened_root_indices(mode):
    """H: the G-stage root is 16 KiB, indexed by 11 bits (2 extra); indices 512..2047 reach entries
    at root + 8*index."""
    ctx = Ctx()
    root = g_setup(ctx, mode)
    shift = 12 + 9 * (LEVELS[mode] - 1)
    for idx in (0, 511, 512, 1023, 1024, 2047):
        gpa = idx << shift
        slot = root + idx * 8
        ctx.mem[slot] = pte(0x8000_0000 + idx * 0 + ((idx & 3) << 30), LEAF | U)
        mis = shift > 30                                  # 512 GiB+ superpage from 0x80000000: misaligned
        t = translate(ctx, gpa + 0x40, "load", 1, 1, record_walk=True)
        assert t.walk[0].pte_addr == slot
        if not mis:
            assert t.fault is None and t.pa == 0x8000_0000 + ((idx & 3) << 30) + 0x40
        else:
            assert t.fault.cause == 21
    # hgatp.PPN[1:0] are ignored: root stays 16 KiB aligned
    ctx.hgatp |= 3
    assert translate(ctx, (2047 << shift) + 0x40, "load", 1, 1, record_walk=True).walk[0].pte_addr == root + 2047 * 8


def test_g_stage_u_bit_and_permissions():
    """H: G-stage accesses are U-mode: U=0 leaf -> guest-page fault; mstatus.MXR applies."""
    ctx = Ctx()
    root = g_setup(ctx, 8)
    slot = map_page(ctx, root, 3, 0x1000, 0x8030_0000, LEAF, root_extra=2)
    f = translate(ctx, 0x1000, "fetch", 0, 1).fault
    assert (f.cause, f.htval, f.stage) == (20, 0x1000 >> 2, "g")
    ctx.mem[slot] = pte(0x8030_0000, V | X | U | A | D)
    assert translate(ctx, 0x1000, "load", 0, 1).fault.cause == 21
    ctx.vsstatus = 1 << 19                                  # vsstatus.MXR: VS stage only
    assert translate(ctx, 0x1000, "load", 0, 1).fault.cause == 21
    ctx.mstatus = 1 << 19                                   # mstatus.MXR: both stages
    assert translate(ctx, 0x1000, "load", 0, 1).fault is None


def _two_stage(mode_vs=8, mode_g=8, vs_flags=LEAF, g_flags=LEAF | U, profile=BASE):
    """VS tables at GPAs 0x1000_0000.. mapped by the G-stage to SPAs 0x8040_0000.."""
    ctx = Ctx(profile)
    groot = g_setup(ctx, mode_g)
    gbase, sbase = 0x1000_0000, 0x8040_0000
    for i in range(8):
        map_page(ctx, groot, LEVELS[mode_g], gbase + i * 0x1000, sbase + i * 0x1000, LEAF | U, root_extra=2)
    nxt = iter(range(1, 8))

    def gpa_to_spa(g):
        return g - gbase + sbase
    vroot = gbase
    ctx.vsatp = (mode_vs << 60) | (vroot >> 12)
    va, gpa = 0x4000_2000, 0x2000_0000
    a = vroot
    levels = LEVELS[mode_vs]
    for level in range(levels - 1, 0, -1):
        slot = gpa_to_spa(a + ((va >> (12 + 9 * level)) & 511) * 8)
        a = gbase + next(nxt) * 0x1000
        ctx.mem[slot] = pte(a, V)
    vslot = gpa_to_spa(a + ((va >> 12) & 511) * 8)
    ctx.mem[vslot] = pte(gpa, vs_flags)
    gslot = map_page(ctx, groot, LEVELS[mode_g], gpa, 0x8050_0000, g_flags, root_extra=2)
    return ctx, va, gpa, vslot, gslot, gbase, sbase


@pytest.mark.parametrize("mode_vs", [8, 9, 10])
@pytest.mark.parametrize("mode_g", [8, 9, 10])
def test_two_stage_success(mode_vs, mode_g):
    ctx, va, gpa, *_ = _two_stage(mode_vs, mode_g)
    t = translate(ctx, va + 0x10, "store", 1, 1, record_walk=True)
    assert t.fault is None and t.gpa == gpa + 0x10 and t.pa == 0x8050_0010
    assert {w.stage for w in t.walk} == {"vs", "g"}
    # every VS PTE read went through an implicit G-stage walk: vs levels + g walks
    assert sum(w.stage == "vs" for w in t.walk) == LEVELS[mode_vs]
    assert sum(w.stage == "g" for w in t.walk) == LEVELS[mode_g] * (LEVELS[mode_vs] + 1)


@pytest.mark.parametrize("access,cause", [("fetch", 20), ("load", 21), ("store", 23)])
def test_implicit_guest_page_fault_reports_original_type(access, cause):
    """H "Guest-Page Faults": a G-stage fault on a VS-stage PTE access is reported as the original
    access type's guest-page fault, htval = PTE GPA >> 2, tval = GVA, GVA=1."""
    ctx, va, gpa, vslot, gslot, gbase, sbase = _two_stage()
    # unmap the G-stage page holding the VS root
    groot = (ctx.hgatp & ((1 << 44) - 1)) << 12
    slot = map_page(ctx, groot, 3, gbase, 0, 0, root_extra=2)
    f = translate(ctx, va, access, 1, 1).fault
    pte_gpa = gbase + ((va >> 30) & 511) * 8
    assert (f.cause, f.tval, f.htval, f.gva, f.implicit, f.stage) == (cause, va, pte_gpa >> 2, True, True, "g")
    del slot


def test_implicit_pte_read_needs_r_not_x_and_hlvx():
    """Implicit VS PTE reads are loads at the G-stage: R needed; HLVX's X rule is only for the final access."""
    ctx, va, gpa, vslot, gslot, gbase, sbase = _two_stage()
    t = translate(ctx, va, "load", 1, 1, hlvx=True)
    assert t.fault is None                                # PTE pages are RWX, leaf has X
    ctx.mem[vslot] = pte(gpa, V | R | A | D)              # VS leaf without X
    assert translate(ctx, va, "load", 1, 1, hlvx=True).fault.cause == 13
    ctx.mem[vslot] = pte(gpa, V | X | A | D)              # execute-only: HLVX ok, plain load not
    assert translate(ctx, va, "load", 1, 1, hlvx=True).fault is None
    assert translate(ctx, va, "load", 1, 1).fault.cause == 13
    ctx.mem[gslot] = pte(0x8050_0000, V | R | U | A | D)  # G leaf without X: HLVX guest-page fault
    f = translate(ctx, va, "load", 1, 1, hlvx=True).fault
    assert (f.cause, f.htval, f.implicit) == (21, gpa >> 2, False)


def test_vs_stage_page_fault_and_sum():
    ctx, va, gpa, vslot, *_ = _two_stage(vs_flags=LEAF | U)
    f = translate(ctx, va, "load", 1, 1).fault
    assert (f.cause, f.tval, f.htval, f.stage) == (13, va, 0, "vs")
    ctx.mstatus = 1 << 18                                 # mstatus.SUM does not act on the VS stage
    assert translate(ctx, va, "load", 1, 1).fault.cause == 13
    ctx.vsstatus = 1 << 18
    assert translate(ctx, va, "load", 1, 1).fault is None
    assert translate(ctx, va, "load", 0, 1).fault is None


def test_vs_noncanonical_is_page_fault():
    ctx, va, *_ = _two_stage()
    f = translate(ctx, 1 << 38, "fetch", 1, 1).fault
    assert (f.cause, f.stage, f.gva) == (12, "vs", True)


def test_hw_ad_update_vs_pte_is_g_stage_store():
    """A/D update of a VS PTE is a store at the G-stage: a read-only G page -> store-type guest-page fault."""
    prof = BASE.with_(hw_ad_update=True)
    ctx, va, gpa, vslot, gslot, gbase, sbase = _two_stage(vs_flags=V | R | W, profile=prof)
    groot = (ctx.hgatp & ((1 << 44) - 1)) << 12
    # make the G-stage page holding the VS leaf table read-only
    leaf_table_gpa = gbase + 2 * 0x1000
    map_page(ctx, groot, 3, leaf_table_gpa, sbase + 2 * 0x1000, V | R | U | A | D, root_extra=2)
    f = translate(ctx, va, "load", 1, 1).fault
    assert (f.cause, f.implicit, f.htval) == (21, True, (leaf_table_gpa + ((va >> 12) & 511) * 8) >> 2)
    map_page(ctx, groot, 3, leaf_table_gpa, sbase + 2 * 0x1000, LEAF | U, root_extra=2)
    assert translate(ctx, va, "store", 1, 1).fault is None
    assert ctx.mem[vslot] & (A | D) == A | D


def test_vsatp_bare_gpa_is_gva():
    ctx = Ctx()
    root = g_setup(ctx, 9)
    map_page(ctx, root, 4, 0x7000, 0x8060_0000, LEAF | U, root_extra=2)
    t = translate(ctx, 0x7123, "load", 1, 1)
    assert (t.gpa, t.pa, t.vs_leaf_level) == (0x7123, 0x8060_0123, None)
    ctx.hgatp = 0
    assert translate(ctx, 0x7123, "load", 1, 1).pa == 0x7123


def test_g_stage_pte_pmp_access_fault():
    ctx = Ctx()
    root = g_setup(ctx, 8)
    ctx.pmp_deny.add(root >> 12)
    f = translate(ctx, 0x1000, "load", 1, 1).fault
    assert (f.cause, f.tval, f.htval, f.gva) == (5, 0x1000, 0, True)


def test_mstatus_mxr_applies_to_vs_stage():
    """H "vsstatus": mstatus.MXR makes execute-only pages readable at both stages; vsstatus.MXR VS only."""
    ctx, va, gpa, vslot, *_ = _two_stage(vs_flags=V | X | A | D)
    assert translate(ctx, va, "load", 1, 1).fault.cause == 13
    ctx.mstatus = 1 << 19
    assert translate(ctx, va, "load", 1, 1).fault is None
    ctx.mstatus, ctx.vsstatus = 0, 1 << 19
    assert translate(ctx, va, "load", 1, 1).fault is None


@pytest.mark.parametrize("mode,bits", [(8, 41), (9, 50), (10, 59)])
def test_gpa_bits_below_width_are_walked(mode, bits):
    """Below the GPA width every bit reaches the walk (unmapped -> invalid PTE), above it the width rule."""
    ctx = Ctx()
    g_setup(ctx, mode)
    for b in range(12, 64):
        t = translate(ctx, 1 << b, "load", 1, 1, record_walk=True)
        assert t.fault.cause == 21 and t.fault.htval == (1 << b) >> 2
        expect = "invalid (V=0)" if b < bits else f"GPA bits above {bits} set"
        assert t.walk[-1].decision == expect, b


@pytest.mark.parametrize("access,cause", [("fetch", 1), ("load", 5), ("store", 7)])
def test_vs_pte_pmp_access_fault_follows_original_type(access, cause):
    ctx, va, gpa, vslot, gslot, gbase, sbase = _two_stage()
    ctx.pmp_deny.add(vslot >> 12)
    f = translate(ctx, va, access, 1, 1).fault
    assert (f.cause, f.tval, f.htval, f.gva, f.stage) == (cause, va, 0, True, "pmp")


def test_vs_pte_pointing_above_gpa_width_is_implicit_guest_page_fault():
    ctx, va, gpa, vslot, gslot, gbase, sbase = _two_stage()
    root_slot = sbase + ((va >> 30) & 511) * 8                     # VS root entry: GPA gbase -> SPA sbase
    far = 1 << 45                                                   # above Sv39x4's 41 bits
    ctx.mem[root_slot] = pte(far, V)
    f = translate(ctx, va, "load", 1, 1).fault
    pte_gpa = far + ((va >> 21) & 511) * 8
    assert (f.cause, f.htval, f.implicit, f.implicit_write) == (21, pte_gpa >> 2, True, False)


def test_vsatp_with_hgatp_bare_reads_ptes_at_gpa():
    ctx = Ctx()
    root = ctx.alloc()
    ctx.vsatp = (8 << 60) | (root >> 12)
    map_page(ctx, root, 3, 0x4000_0000, 0x8070_0000, LEAF)
    t = translate(ctx, 0x4000_0abc, "store", 1, 1)
    assert (t.gpa, t.pa, t.g_leaf_level, t.vs_leaf_level) == (0x8070_0abc, 0x8070_0abc, None, 0)


def test_walk_restarts_when_pte_changes_under_ad_update():
    """The A/D update is atomic (compare-and-swap): a lost race restarts the walk."""
    ctx, va, slot = _one(flags=V | R | W, profile=BASE.with_(hw_ad_update=True))
    orig = ctx.write_pte
    state = {"n": 0}

    def racy(pa, old, new):
        state["n"] += 1
        if state["n"] == 1:
            ctx.mem[pa] = old | (1 << 8)      # someone else touched RSW
            return False
        return orig(pa, old, new)
    ctx.write_pte = racy
    t = translate(ctx, va, "store", 1, 0)
    assert t.fault is None and state["n"] == 2 and ctx.mem[slot] & (A | D | (1 << 8)) == A | D | (1 << 8)


def test_record_walk_off_keeps_pte_addrs():
    ctx, va, slot = _one()
    t = translate(ctx, va, "load", 1, 0)
    assert t.walk == [] and t.pte_addrs[-1] == slot and len(t.pte_addrs) == 3


def test_svnapot_64k_only():
    prof = BASE.with_(svnapot=True)
    ctx, va, slot = _one(flags=LEAF, profile=prof)
    ctx.mem[slot + 5 * 8] = pte(0x8020_8000, LEAF | (1 << 63))  # ppn[3:0] = 1000: 64 KiB (one of 16 PTEs)
    t = translate(ctx, va + 0x5123, "load", 1, 0)
    assert t.fault is None and t.pa == 0x8020_0000 + 0x5123      # 64 KiB-aligned base, 16-bit offset
    ctx.mem[slot] = pte(0x8020_4000, LEAF | (1 << 63))          # other sizes reserved
    assert translate(ctx, va, "load", 1, 0).fault.cause == 13
    ctx, va, slot = _one(flags=LEAF | (1 << 63), leaf_level=1, profile=prof)
    assert translate(ctx, va, "load", 1, 0).fault.cause == 13    # N on a superpage: reserved


def test_svadu_adue_enables_hardware_update_on_base_profile():
    """Svadu: menvcfg.ADUE enables hardware A/D update for S/G stages, henvcfg.ADUE for the VS stage."""
    prof = BASE.with_(svadu=True)
    ctx, va, slot = _one(flags=V | R | W, profile=prof)
    assert translate(ctx, va, "load", 1, 0).fault.cause == 13
    ctx.menvcfg = 1 << 61
    assert translate(ctx, va, "store", 1, 0).fault is None and ctx.mem[slot] & D
    ctx, va, gpa, vslot, *_ = _two_stage(vs_flags=V | R | W, profile=prof)
    ctx.menvcfg = 1 << 61
    assert translate(ctx, va, "load", 1, 1).fault.cause == 13    # henvcfg.ADUE=0: VS stage faults
    ctx.henvcfg = 1 << 61
    assert translate(ctx, va, "load", 1, 1).fault is None and ctx.mem[vslot] & A


# ---------------------------------------------------------------- Svadu (menvcfg.ADUE / henvcfg.ADUE)
def test_svadu_adue_per_stage():
    """Svadu chapter: menvcfg.ADUE enables hardware A/D updating for the S and G stages, henvcfg.ADUE
    for the VS stage (and reads as zero unless menvcfg.ADUE is set); with ADUE=0 the Svade rule
    applies (page fault / guest-page fault).  The profile's hw_ad_update is not consulted."""
    from refmodel.profile import PROFILES
    prof = PROFILES["qemu-10.0"]
    assert prof.svadu and prof.menvcfg_reset == 1 << 61
    adue = 1 << 61
    # VS leaf with A clear; G leaf with A clear
    ctx, va, gpa, vslot, gslot, *_ = _two_stage(vs_flags=V | R | W, g_flags=V | R | W | U, profile=prof)
    ctx.menvcfg, ctx.henvcfg = adue, 0
    f = translate(ctx, va, "load", 1, 1).fault
    assert (f.cause, f.stage) == (13, "vs")                      # VS stage: henvcfg.ADUE = 0 -> Svade
    ctx.henvcfg = adue
    assert translate(ctx, va, "store", 1, 1).fault is None         # both stages updated by hardware
    assert ctx.mem[vslot] & (A | D) == A | D and ctx.mem[gslot] & (A | D) == A | D
    ctx, va, gpa, vslot, gslot, *_ = _two_stage(vs_flags=LEAF, g_flags=V | R | W | U, profile=prof)
    ctx.menvcfg, ctx.henvcfg = 0, adue                           # henvcfg.ADUE alone does not enable it
    f = translate(ctx, va, "load", 1, 1).fault
    assert (f.cause, f.stage) == (21, "g")
    ctx.menvcfg = adue
    assert translate(ctx, va, "load", 1, 1).fault is None and ctx.mem[gslot] & A


def test_qemu72_profile_updates_ad_in_hardware():
    """QEMU 7.2 has no Svadu: the profile picks the hardware-update scheme once (hw_ad_update)."""
    from refmodel.profile import PROFILES
    prof = PROFILES["qemu-7.2"]
    ctx, va, slot = _one(flags=V | R | W, profile=prof)
    assert translate(ctx, va, "store", 1, 0).fault is None and ctx.mem[slot] & (A | D) == A | D
