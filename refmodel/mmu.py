"""The one page-table walk for every stage: satp (V=0), vsatp (VS-stage) and hgatp (G-stage).

Spec references (RISC-V Privileged Architecture 20240411):
  S "Virtual Address Translation Process" (Sv32 algorithm, extended by Sv39/Sv48/Sv57),
  S "Sv39/Sv48/Sv57: Page-Based Virtual-Memory System" (canonical VA rule),
  H "Two-Stage Address Translation", H "Guest Physical Address Translation",
  H "Guest-Page Faults", H "Memory-Management Fences", Svnapot / Svpbmt chapters,
  M "Physical Memory Protection" (implicit page-table accesses are checked at S privilege).

The walk is parameterised by a :class:`Stage` (levels, root-index width, which
fault a failure raises), like Spike's ``mmu.cc`` walk and Sail's ``vmem``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from refmodel.records import WalkLevel, Xlat

M64 = (1 << 64) - 1
PAGE_FAULT = {"fetch": 12, "load": 13, "store": 15}
GUEST_PAGE_FAULT = {"fetch": 20, "load": 21, "store": 23}
ACCESS_FAULT = {"fetch": 1, "load": 5, "store": 7}

# MODE -> number of levels (S "Sv39/48/57"; H "hgatp": Sv39x4/48x4/57x4 use the same encodings 8/9/10).
LEVELS = {8: 3, 9: 4, 10: 5}

# PTE fields (S "Sv39", figure "Sv39 page table entry").
PTE_V, PTE_R, PTE_W, PTE_X, PTE_U, PTE_G, PTE_A, PTE_D = (1 << i for i in range(8))
PPN_MASK = (1 << 44) - 1
RESERVED_MASK = ((1 << 7) - 1) << 54          # bits 60:54 "reserved for future standard use"
PBMT_SHIFT = 61
N_BIT = 1 << 63

MSTATUS_SUM = 1 << 18
MSTATUS_MXR = 1 << 19


class AccessFault(Exception):
    """Raised by ``ctx.read_pte`` when the PTE's physical address has no memory behind it."""

    def __init__(self, pa: int = 0):
        super().__init__(f"access fault at {pa:#x}")
        self.pa = pa


@dataclass
class Fault:
    cause: int
    tval: int
    htval: int = 0                 # GPA >> 2 for guest-page faults, else 0 (H "htval")
    gva: bool = False              # tval holds a guest virtual address
    implicit: bool = False         # raised by the G-stage translation of a VS-stage PTE address
    stage: str = "s"               # "vs" | "g" | "s" | "pmp"
    tinst: int = 0                 # filled by the hart through refmodel.tinst
    implicit_write: bool = False   # the implicit access was the A/D update of a VS PTE (a write)


@dataclass
class Translation:
    pa: int | None
    gpa: int | None = None
    fault: Fault | None = None
    vs_leaf_level: int | None = None   # first-stage leaf (satp for V=0, vsatp for V=1)
    g_leaf_level: int | None = None
    walk: list = field(default_factory=list)
    pte_addrs: list = field(default_factory=list)
    # one (pte_spa, stage, translated address, level, leaf, global) per PTE the walk used: which
    # translations a PTE serves, so the hart can tell which fences order a store to it
    # (Priv. 10.2.1 SFENCE.VMA; H "Hypervisor Memory-Management Fence Instructions")
    pte_uses: list = field(default_factory=list)

    def to_xlat(self, access: str, va: int, priv: int, v: int) -> Xlat:
        f = self.fault
        return Xlat(access=access, va=va, priv=priv, v=v, gpa=self.gpa, pa=self.pa,
                    fault_stage=None if f is None else f.stage, fault_cause=None if f is None else f.cause,
                    implicit=bool(f and f.implicit), vs_leaf_level=self.vs_leaf_level,
                    g_leaf_level=self.g_leaf_level, walk=list(self.walk) or None)


@dataclass(frozen=True)
class Stage:
    name: str          # "s" | "vs" | "g"
    levels: int
    root_extra: int    # extra root-index bits: 2 for the G-stage (16 KiB root, H "Guest Physical Address Translation")

    @property
    def addr_bits(self) -> int:
        return 12 + 9 * self.levels + self.root_extra


class _Fail(Exception):
    """Internal: one stage failed.  kind = "page" (page/guest-page fault by stage) or "access"."""

    def __init__(self, kind: str, stage: str, gpa: int | None = None, implicit: bool = False):
        self.kind, self.stage, self.gpa, self.implicit = kind, stage, gpa, implicit
        self.write = False


class _Walker:
    def __init__(self, ctx, access, priv, v, hlvx, record):
        self.ctx, self.access, self.priv, self.v, self.hlvx = ctx, access, priv, v, hlvx
        self.record = record
        self.walk: list[WalkLevel] = []
        self.pte_addrs: list[int] = []
        self.pte_uses: list[tuple] = []
        self.prof = ctx.profile
        self.hw_ad = bool(getattr(self.prof, "hw_ad_update", False))
        # Svadu: hardware A/D updating is enabled per stage by menvcfg.ADUE (S and G stages) and
        # henvcfg.ADUE (VS stage; read-only zero when menvcfg.ADUE=0).  Profiles without Svadu
        # choose once through hw_ad_update (the pre-Svadu "either behaviour" of the spec).
        self.svadu = bool(getattr(self.prof, "svadu", False))
        # a failed SC's walk under profile.failed_sc_ad = "none": A/D neither set nor faulted on
        self.no_ad = bool(getattr(ctx, "no_ad", False))

    def note(self, stage, level, addr, pte, decision):
        if self.record:
            self.walk.append(WalkLevel(stage, level, addr, pte, decision))

    def hw_update(self, stage: str) -> bool:
        if not self.svadu:
            return self.hw_ad
        adue = 1 << 61
        m = bool(self.ctx.menvcfg & adue)
        return m and bool(self.ctx.henvcfg & adue) if stage == "vs" else m

    # ---------------------------------------------------------------- PTE checks
    def reserved(self, pte: int, leaf: bool) -> str | None:
        """S "Virtual Address Translation Process" step 3: V=0, R=0&W=1, or any reserved bit/encoding set."""
        if not pte & PTE_V:
            return "invalid (V=0)"
        if pte & PTE_W and not pte & PTE_R:
            return "reserved W=1,R=0"
        if pte & RESERVED_MASK:
            return "reserved bits 60:54 set"
        pbmt = (pte >> PBMT_SHIFT) & 3
        if pbmt and (not self.prof.svpbmt or pbmt == 3 or not leaf):
            # Svpbmt: PBMT=3 is reserved; without Svpbmt bits 62:61 are reserved; for non-leaf PTEs too.
            return f"reserved PBMT={pbmt}"
        if pte & N_BIT and (not self.prof.svnapot or not leaf):
            return "reserved N=1"
        if not leaf and pte & (PTE_D | PTE_A | PTE_U):
            # S "Sv32": "For non-leaf PTEs, the D, A, and U bits are reserved for future standard use".
            return "reserved D/A/U in non-leaf PTE"
        return None

    def permitted(self, stage: str, pte: int, access: str, hlvx: bool) -> str | None:
        """S step 5 (permission) with the H-chapter rules for VS/G stages."""
        ms = self.ctx.mstatus
        if stage == "g":
            # H "Guest Physical Address Translation": G-stage accesses are treated as U-mode; U must be 1.
            if not pte & PTE_U:
                return "U=0 in G-stage leaf"
            mxr = bool(ms & MSTATUS_MXR)
        else:
            st = self.ctx.vsstatus if stage == "vs" else ms
            # H "vsstatus": vsstatus.MXR acts on the VS stage together with mstatus.MXR.
            mxr = bool(st & MSTATUS_MXR) or (stage == "vs" and bool(ms & MSTATUS_MXR))
            sum_ = bool(st & MSTATUS_SUM)
            if self.priv == 0 and not pte & PTE_U:
                return "U=0 for U-mode access"
            if self.priv == 1 and pte & PTE_U and (access == "fetch" or not sum_):
                return "U=1 for S-mode access" + ("" if access == "fetch" else " (SUM=0)")
        if hlvx and access == "load":
            # H "HLVX": needs execute permission in both stages; R alone is not enough.
            return None if pte & PTE_X else "HLVX needs X"
        if access == "fetch":
            return None if pte & PTE_X else "X=0"
        if access == "load":
            return None if pte & PTE_R or (mxr and pte & PTE_X) else "R=0" + (" (MXR=0)" if pte & PTE_X else "")
        return None if pte & PTE_W else "W=0"

    # ---------------------------------------------------------------- memory
    def read(self, stage, level, spa) -> int:
        """An implicit page-table read: PMP-checked at S privilege (M "PMP": implicit
        address-translation accesses use S-mode), access-fault of the original type."""
        self.pte_addrs.append(spa)
        if not self.ctx.pmp_ok(spa, 8, "load", 1):
            self.note(stage, level, spa, 0, "PMP denies PTE read")
            raise _Fail("access", "pmp")
        try:
            return self.ctx.read_pte(spa)
        except AccessFault:
            self.note(stage, level, spa, 0, "no memory at PTE address")
            raise _Fail("access", "pmp") from None

    # ---------------------------------------------------------------- one stage
    def walk_stage(self, st: Stage, root_ppn: int, addr: int, access: str, pte_spa=None, hlvx=False):
        """Walk one stage.  ``pte_spa(gpa, for_store)`` maps a VS-stage PTE's GPA to an SPA
        (G-stage translation); None for satp and hgatp walks (PTE addresses are SPAs)."""
        while True:
            r = self._walk_once(st, root_ppn, addr, access, pte_spa, hlvx)
            if r is not None:
                return r

    def _walk_once(self, st, root_ppn, addr, access, pte_spa, hlvx):
        a = root_ppn << 12
        level = st.levels - 1
        glob = False
        while True:
            width = 9 + (st.root_extra if level == st.levels - 1 else 0)
            idx = (addr >> (12 + 9 * level)) & ((1 << width) - 1)
            pte_addr = a + idx * 8
            spa = pte_spa(pte_addr, False) if pte_spa else pte_addr
            pte = self.read(st.name, level, spa)
            leaf = bool(pte & (PTE_R | PTE_X))
            # S "Sv32": a G bit in a non-leaf PTE makes every mapping below it global (G-stage: unused)
            glob = glob or (st.name != "g" and bool(pte & PTE_G))
            self.pte_uses.append((spa, st.name, addr, level, leaf, glob))
            bad = self.reserved(pte, leaf)
            if bad:
                self.note(st.name, level, spa, pte, bad)
                raise _Fail("page", st.name)
            ppn = (pte >> 10) & PPN_MASK
            if not leaf:
                if level == 0:
                    self.note(st.name, level, spa, pte, "pointer at level 0")
                    raise _Fail("page", st.name)
                self.note(st.name, level, spa, pte, "pointer")
                a = ppn << 12
                level -= 1
                continue
            bad = self.permitted(st.name, pte, access, hlvx)
            if bad:
                self.note(st.name, level, spa, pte, bad)
                raise _Fail("page", st.name)
            if level and ppn & ((1 << (9 * level)) - 1):
                # S step 6: "if i > 0 and pte.ppn[i-1:0] != 0, this is a misaligned superpage".
                self.note(st.name, level, spa, pte, "misaligned superpage")
                raise _Fail("page", st.name)
            if pte & N_BIT:                          # only reached with Svnapot (else reserved above)
                # Svnapot: only the 64 KiB size (level 0, ppn[3:0] = 1000) is defined; other encodings reserved.
                if level != 0 or ppn & 0xF != 0x8:
                    self.note(st.name, level, spa, pte, "reserved NAPOT size")
                    raise _Fail("page", st.name)
                ppn &= ~0xF
                off_bits = 16
            else:
                off_bits = 12 + 9 * level
            need = PTE_A | (PTE_D if access == "store" else 0)
            if pte & need != need and self.no_ad:
                # Zalrsc: A/D side effects of a failed SC are UNSPECIFIED (profile.failed_sc_ad)
                self.note(st.name, level, spa, pte, "leaf (A/D clear: left alone, SC may fail)")
            elif pte & need != need:
                if not self.hw_update(st.name):
                    # S step 7 (Svade): A=0, or store with D=0 -> page fault.
                    self.note(st.name, level, spa, pte, "A/D clear (Svade: fault)")
                    raise _Fail("page", st.name)
                # Hardware A/D update: atomic; for VS-stage PTEs the G-stage sees a store
                # (H "Guest Physical Address Translation": A/D updates are writes).
                wspa = pte_spa(pte_addr, True) if pte_spa else spa
                if not self.ctx.pmp_ok(wspa, 8, "store", 1):
                    self.note(st.name, level, wspa, pte, "PMP denies A/D update")
                    raise _Fail("access", "pmp")
                if not self.ctx.write_pte(wspa, pte, pte | need):
                    self.note(st.name, level, spa, pte, "PTE changed: walk restarts")
                    return None
                pte |= need
                self.note(st.name, level, spa, pte, "leaf (A/D updated)")
            else:
                self.note(st.name, level, spa, pte, "leaf")
            out = ((ppn << 12) & ~((1 << off_bits) - 1)) | (addr & ((1 << off_bits) - 1))
            return out, level

    # ---------------------------------------------------------------- G-stage
    def g_translate(self, gpa: int, access: str, implicit: bool):
        """H "Guest Physical Address Translation": hgatp walk of one GPA, -> (spa, leaf level)."""
        hgatp = self.ctx.hgatp
        mode = hgatp >> 60
        if mode == 0:
            return gpa, None
        st = Stage("g", LEVELS[mode], 2)
        if gpa >> st.addr_bits:
            # "address bits above the GPA width (41/50/59) must all be zero, or else a guest-page fault".
            self.note("g", st.levels - 1, 0, 0, f"GPA bits above {st.addr_bits} set")
            e = _Fail("page", "g", gpa=gpa, implicit=implicit)
            e.write = implicit and access == "store"
            raise e
        # hgatp.PPN[1:0] are zero: the root is 16 KiB aligned (H "hgatp").
        root = (hgatp & PPN_MASK) & ~3
        try:
            # Implicit PTE accesses are plain reads/writes: HLVX's X rule is for the original access only.
            return self.walk_stage(st, root, gpa, access, hlvx=self.hlvx and not implicit)
        except _Fail as e:
            e.gpa, e.implicit, e.write = gpa, implicit, implicit and access == "store"
            raise


def _canonical(va: int, bits: int) -> bool:
    top = va >> (bits - 1)
    return top == 0 or top == (M64 >> (bits - 1))


def translate(ctx, va: int, access: str, priv: int, v: int, *, record_walk: bool = False,
              hlvx: bool = False) -> Translation:
    """Translate one access.  ``priv`` is the effective privilege (after MPRV/HLV), ``v`` is 1 for
    two-stage translation.  Never raises for architectural faults: they come back in ``fault``."""
    hlvx = hlvx or bool(getattr(ctx, "hlvx", False))
    va &= M64
    w = _Walker(ctx, access, priv, v, hlvx, record_walk)
    t = Translation(pa=None, walk=w.walk, pte_addrs=w.pte_addrs, pte_uses=w.pte_uses)
    gpa = None
    try:
        if not v:
            mode = ctx.satp >> 60
            if priv == 3 or mode == 0:
                t.pa = va
                return t
            st = Stage("s", LEVELS[mode], 0)
            if not _canonical(va, st.addr_bits):
                w.note("s", st.levels - 1, 0, 0, "non-canonical VA")
                raise _Fail("page", "s")
            t.pa, t.vs_leaf_level = w.walk_stage(st, ctx.satp & PPN_MASK, va, access, hlvx=hlvx)
            return t
        mode = ctx.vsatp >> 60
        if mode == 0:
            gpa = va
        else:
            st = Stage("vs", LEVELS[mode], 0)
            if not _canonical(va, st.addr_bits):
                w.note("vs", st.levels - 1, 0, 0, "non-canonical GVA")
                raise _Fail("page", "vs")
            # Every VS-stage PTE address is a GPA, translated by the G-stage as an implicit
            # access; a failure reports the ORIGINAL access type (H "Guest-Page Faults").
            def pte_spa(pte_gpa, for_store):
                return w.g_translate(pte_gpa, "store" if for_store else "load", implicit=True)[0]
            gpa, t.vs_leaf_level = w.walk_stage(st, ctx.vsatp & PPN_MASK, va, access, pte_spa, hlvx)
        t.gpa = gpa
        t.pa, t.g_leaf_level = w.g_translate(gpa, access, implicit=False)
        return t
    except _Fail as e:
        t.pa = None
        if e.kind == "access":
            t.fault = Fault(ACCESS_FAULT[access], va, 0, bool(v), False, "pmp")
        elif e.stage == "g":
            t.fault = Fault(GUEST_PAGE_FAULT[access], va, (e.gpa or 0) >> 2, True, e.implicit, "g",
                            implicit_write=e.write)
            if e.implicit:
                t.gpa = None
        else:
            t.fault = Fault(PAGE_FAULT[access], va, 0, bool(v), False, e.stage)
            t.gpa = None
        return t
