"""Hypothesis strategies for two-stage translation scenarios (difftest.fuzz.scenario).

A scenario is drawn as *chains* -- a data page reached through a G-stage leaf and a VS-stage leaf of
chosen levels, bits and address ranges -- plus CSR context and a list of operations on them.  Every
choice is drawn so that Hypothesis's shrinking moves toward the plain case: booleans toward False,
lists toward fewer items, ``sampled_from`` toward its first (simplest) element, PTE bits as *flips* of
a valid leaf (no flip = a valid RWX leaf with A/D set).  Addresses are concrete: GPAs in the widened
root index range and at the top of each mode's width, above it (where the guest's builder writes the
alias slot, so an implementation that does not check the width translates), canonical and
non-canonical GVAs.  Nothing is ever mapped over guest RAM's identity GiB (scenario.safe_span), and a
translated address is only ever a data page, so no access reaches a device.
"""
from __future__ import annotations

from hypothesis import strategies as st

from difftest.fuzz import scenario as S

V, R, W, X, U, G, A, D = (1 << i for i in range(8))
N, PBMT_NC, PBMT_IO, RSV54, RSV60 = 1 << 63, 1 << 61, 1 << 62, 1 << 54, 1 << 60
G_LEAF = V | R | W | X | U | A | D
VS_LEAF = V | R | W | X | A | D
LEAF_FLIPS = [A, D, W, R, X, U, V, G, "misalign", RSV54, RSV60, N, PBMT_NC, PBMT_IO]
TABLE_FLIPS = ["unmapped", W, A, D, R, U, V, X]
X4 = ["sv39x4", "sv48x4", "sv57x4"]
VSM = ["sv39", "sv48", "sv57"]
HOLE = 1 << 37               # [2^37, 2^38): never covered by a leaf the generator writes
MPRV, MPV = 1 << 17, 1 << 39


def _flags(default: int, flips) -> tuple[int, int]:
    """(PTE flag bits, PPN bits to OR in) from a default leaf and the drawn flips."""
    f, ppn_or = default, 0
    for x in flips:
        if x == "misalign":
            ppn_or = 1
        else:
            f ^= x
    return f, ppn_or


def _pte(pa: int, level: int, flags: int, ppn_or: int) -> int:
    base = pa & ~(S.leaf_size(level) - 1)
    return ((base >> 12 | (ppn_or if level else 0)) << 10) | flags


@st.composite
def _flips(draw) -> list:
    """PTE bit flips of a valid leaf: none half of the time (so walks get deep), else one to three --
    Hypothesis's own list sizes left 9 in 10 leaves valid, and rules that need a flipped bit (U=0 at
    the G stage, X-only pages for HLVX and MXR) went untested in a two-minute run."""
    if not draw(st.booleans()):
        return []
    return draw(st.lists(st.sampled_from(LEAF_FLIPS), min_size=1, max_size=3, unique=True))


NONLEAF_BITS = [A, D, U, G, RSV54, N, PBMT_NC]


@st.composite
def _region(draw, kind_list, mode: str, level: int) -> int:
    """A leaf base of ``level`` in ``mode``'s address space (GPA for x4 modes, GVA for VS modes)."""
    size, w, top = S.leaf_size(level), S.width(mode), S.top_level(mode)
    kind = draw(st.sampled_from(kind_list))
    if kind == "low" and size < 1 << 36:
        return (1 << 32) + draw(st.integers(0, ((1 << 36) - (1 << 32)) // size - 1)) * size
    if kind == "high" and not mode.endswith("x4"):
        return (1 << 64) - (1 << (w - 1)) + draw(st.integers(0, (1 << (w - 1)) // size - 1)) * size
    if kind == "rootidx":
        idx = draw(st.sampled_from([511, 512, 1023, 1024, 2047] if mode.endswith("x4") else [1, 256, 511]))
        va = idx << (12 + 9 * top)
        if not mode.endswith("x4") and va >> (w - 1):
            va |= ((1 << 64) - 1) ^ ((1 << w) - 1)          # sign-extended: canonical
        return va & ~(size - 1)
    if kind == "edge":
        return (1 << w) - size if mode.endswith("x4") else (1 << 64) - size
    if kind == "above" and mode.endswith("x4"):
        return (1 << w) + (1 << (w - 1)) + draw(st.integers(0, 7)) * size
    # "top" (and the fallback): the upper half of the width, bit width-1 set (x4: root index >= 1024)
    half = 1 << (w - 1)
    base = half + draw(st.integers(0, max(0, half // size - 1))) * size
    return base if mode.endswith("x4") else base | (((1 << 64) - 1) ^ ((1 << w) - 1))


def _reachable(base: int, level: int) -> int:
    """A base a VS PTE can name (below 2^56), outside guest RAM's GiB, for one that cannot."""
    if not base >> 55:
        return base
    size = S.leaf_size(level)
    return size if size >= 1 << 32 else (1 << 32) + (((base >> 12) % 4096) << 12 & ~(size - 1))


def _modes(names, va: int, level: int, canonical=False) -> list[str]:
    out = []
    for m in names:
        if level > S.top_level(m) or not S.safe_span(va, level, m):
            continue
        if canonical:
            w = S.width(m)
            hi = va >> (w - 1)
            if hi not in (0, (1 << (65 - w)) - 1):
                continue
        out.append(m)
    return out


@st.composite
def chain(draw, hgatp: str, vs: str) -> dict:
    """One data page reached through both stages: its setup items and the addresses to use it by."""
    d = draw(st.integers(0, S.DATA_PAGES - 1))
    off = draw(st.sampled_from([0, 8, 0x10, 0xff8]))
    spa = S.DATA + d * 4096 + off
    items, c = [], {"spa": spa, "page": spa & ~0xfff, "maps": {}}
    gpa = spa
    if hgatp != "bare":
        lg = draw(st.integers(0, S.top_level(hgatp)))
        base = draw(_region(["low", "top", "rootidx", "edge", "above"], hgatp, lg))
        if vs != "bare" and base >> 55:
            base = _reachable(base, lg)       # a VS PTE names GPAs below 2^56 only (44-bit PPN)
        gpa = base + (spa - (spa & ~(S.leaf_size(lg) - 1)))
        flags, ppn_or = _flags(G_LEAF, draw(_flips()))
        modes = _modes(X4, base, lg)
        if modes:
            it = {"t": "map", "stage": "g", "va": base, "level": lg, "pte": _pte(spa, lg, flags, ppn_or), "modes": modes}
            items.append(it)
            c["maps"]["g"] = it
    c["gpa"] = gpa
    gva = gpa
    if vs != "bare":
        lv = draw(st.integers(0, S.top_level(vs)))
        user = draw(st.booleans())
        vbase = draw(_region(["low", "high", "rootidx", "top", "edge"], vs, lv))
        gb = gpa & ~(S.leaf_size(lv) - 1)
        gva = vbase + (gpa - gb)
        flags, ppn_or = _flags(VS_LEAF | (U if user else 0),
                               draw(_flips()))
        leaf = _pte(gpa, lv, flags, ppn_or)
        vmodes = _modes(VSM, vbase, lv, canonical=True)
        reloc = hgatp != "bare" and lv < S.top_level(vs) and draw(st.booleans())
        if reloc and _modes(VSM, vbase, lv + 1, canonical=True):
            tgpa = _reachable(draw(_region(["low", "top", "above", "rootidx"], hgatp, 0)), 0)
            flips = draw(st.lists(st.sampled_from(TABLE_FLIPS), max_size=2, unique=True))
            tflags, _ = _flags(G_LEAF, [x for x in flips if x != "unmapped"])
            it = {"t": "reloc", "va": vbase, "level": lv, "gpa": tgpa, "leaf": leaf,
                  "gflags": 0 if "unmapped" in flips else tflags,
                  "vs_modes": _modes(VSM, vbase, lv + 1, canonical=True), "g_modes": _modes(X4, tgpa, 0)}
            items.append(it)
            c["maps"]["reloc"] = it
        elif vmodes:
            it = {"t": "map", "stage": "vs", "va": vbase, "level": lv, "pte": leaf, "modes": vmodes}
            items.append(it)
            c["maps"]["vs"] = it
    c["gva"] = gva
    # a non-leaf PTE on the chain's walk with bits ORed in (A/D/U and reserved bits are reserved there;
    # G marks the mappings below global at the VS stage)
    if draw(st.booleans()) and draw(st.booleans()):
        stage, mode, va, lv = ("vs", vs, c["maps"]["vs"]["va"], c["maps"]["vs"]["level"]) if "vs" in c["maps"] \
            else ("g", hgatp, c["maps"]["g"]["va"], c["maps"]["g"]["level"]) if "g" in c["maps"] else (None,) * 4
        if stage and lv + 1 <= S.top_level(mode):
            names = VSM if stage == "vs" else X4
            modes = _modes(names, va, lv + 1, canonical=stage == "vs")
            bits = sum(draw(st.lists(st.sampled_from(NONLEAF_BITS), min_size=1, max_size=2, unique=True)))
            if modes:
                items.append({"t": "or", "stage": stage, "va": va, "level": lv + 1, "pte": bits, "modes": modes})
    c["items"] = items
    return c


# CSR context: (csr, bits a scenario may set); the runtime's defaults are restored between scenarios
CSR_BITS = {
    "mstatus": [1 << 19, 1 << 18],                      # MXR, SUM
    "vsstatus": [1 << 19, 1 << 18],
    "hstatus": [1 << 8, 1 << 9, 1 << 20],                # SPVP, HU, VTVM
    "henvcfg": [1 << 61, 1 << 62],                       # ADUE, PBMTE
    "menvcfg": [1 << 61, 1 << 62],
    # never ecalls (8-11): the runtime's probes return to M through them
    "medeleg": [1 << c for c in (21, 13, 23, 15, 20, 12, 5, 7, 1, 2, 22)],
    "hedeleg": [1 << c for c in (13, 15, 12, 5, 7, 1, 2)],
}
ACC_ORDER = ["ld", "sd", "fetch", "lw", "lbu", "sw", "amoadd.d", "lr.d", "hlv.d", "hsv.d", "hlvx.wu",
             "mprv-ld", "mprv-sd", "sfence.vma", "hfence.vvma", "hfence.gvma"]
MODE_ORDER = ["VS", "VU", "HS", "U", "M"]


@st.composite
def csr_item(draw) -> dict:
    csr = draw(st.sampled_from(list(CSR_BITS)))
    bits = draw(st.lists(st.sampled_from(CSR_BITS[csr]), min_size=1, max_size=3, unique=True))
    on = draw(st.booleans())
    return {"t": "csr", "csr": csr, "set": sum(bits) if not on else 0, "clear": sum(bits) if on else 0}


def _address(c: dict | None, where: str, acc: str, phys: bool) -> int:
    """The address an access uses: the chain's data (or its fetch code at 0x800), or a hole no leaf
    covers; physical accesses (M, HS, U with satp Bare) only ever to the data page itself."""
    if c is None or where == "hole":
        return HOLE + 0x1230 if not phys else S.DATA
    base = c["spa"] if phys else c["gva"]
    if acc == "fetch":
        return (base & ~0xfff) + 0x800
    if where == "noncanon" and not phys:
        return base ^ (1 << 58)
    if where == "alias" and not phys:
        return (base + (1 << 59)) & ((1 << 64) - 1)
    if where == "next" :
        return base + 8 if (base & 0xfff) != 0xff8 else base - 8
    return base


@st.composite
def op_items(draw, hgatp: str, vs: str, chains: list[dict]) -> list[dict]:
    kind = draw(st.sampled_from(["access", "access", "access", "rewrite", "fence", "atp", "csr"]))
    ci = draw(st.integers(0, 7))
    c = chains[ci % len(chains)] if chains else None
    if kind == "access" or (kind == "rewrite" and (c is None or not c["maps"])):
        acc = draw(st.sampled_from(ACC_ORDER))
        mode = "M" if acc.startswith("mprv") else draw(st.sampled_from(MODE_ORDER))
        where = draw(st.sampled_from(["data", "next", "hole", "noncanon", "alias"]))
        hyp = acc.startswith(("hlv", "hsv", "mprv"))
        phys = mode in ("M", "HS", "U") and not hyp and not acc.endswith("fence.vma") \
            and not acc.startswith("hfence")
        ms = 0
        if acc.startswith("mprv"):
            ms = MPRV | (MPV if draw(st.booleans()) else 0) | (draw(st.sampled_from([1, 0, 3])) << 11)
            # MPV=0 (satp Bare) or MPP=M: a physical address -- only ever the data page: QEMU's virt has
            # devices and a PCIe window where the model has nothing, a platform difference, not the spec's
            phys = not ms & MPV or (ms >> 11) & 3 == 3
        addr = _address(c, where, acc, phys)
        if acc == "hfence.gvma":
            addr = (c["gpa"] if c else HOLE) >> 2
        it = {"t": "access", "acc": acc, "mode": mode, "addr": addr, "value": draw(st.integers(0, 3))}
        if ms:
            it["mstatus"] = ms
        return [it]
    if kind == "rewrite":
        stage = draw(st.sampled_from(sorted(c["maps"])))
        old = c["maps"][stage]
        how = draw(st.sampled_from(["flags", "invalid", "retarget"]))
        key = "leaf" if stage == "reloc" else "pte"
        pte = old[key]
        if how == "invalid":
            pte = 0
        elif how == "retarget":
            pte ^= (draw(st.integers(1, S.DATA_PAGES - 1)) << 10) if old.get("level", 0) == 0 or stage == "reloc" else 0
        else:
            for x in draw(st.lists(st.sampled_from(LEAF_FLIPS), min_size=1, max_size=2, unique=True)):
                pte ^= (1 << 10) if x == "misalign" else x
        if stage == "reloc":
            # rewriting a relocated table's leaf goes through its table page: the guest writes it as a
            # map of the whole chain again (a new table at the same GPA)
            return [dict(old, leaf=pte)]
        return [dict(old, pte=pte)]
    if kind == "fence":
        insn = draw(st.sampled_from(["hfence.vvma", "hfence.gvma", "sfence.vma"]))
        by_addr, by_id = draw(st.booleans()), draw(st.booleans())
        a = None
        if by_addr:
            a = (c["gpa"] >> 2) if insn == "hfence.gvma" and c else (c["gva"] if c else HOLE)
        return [{"t": "fence", "insn": insn, "rs1": a, "rs2": draw(st.integers(0, 3)) if by_id else None}]
    if kind == "atp":
        which = draw(st.sampled_from(["hgatp", "vsatp"]))
        mode = draw(st.sampled_from((["bare"] + X4) if which == "hgatp" else (["bare"] + VSM)))
        return [{"t": "atp", "which": which, "mode": mode, "id": draw(st.integers(0, 3))}]
    return [draw(csr_item())]


MODE_PAIRS = [(h, v) for h in ["sv39x4", "bare", "sv48x4", "sv57x4"] for v in ["sv39", "bare", "sv48", "sv57"]]


@st.composite
def scenario(draw, hgatp: str, vs: str, max_ops: int = 8) -> dict:
    chains = draw(st.lists(chain(hgatp, vs), min_size=1, max_size=3))
    setup = [draw(csr_item()) for _ in range(draw(st.integers(0, 2)))]
    for c in chains:
        setup += c["items"]
    ops: list[dict] = []
    for _ in range(draw(st.integers(1, max_ops))):
        ops += draw(op_items(hgatp, vs, chains))
    if not any(o["t"] == "access" for o in ops):
        ops.append({"t": "access", "acc": "ld", "mode": "VS", "addr": _address(chains[0], "data", "ld", False),
                    "value": 0})
    return _only_used_modes({"fuzz_scenario": 1, "hgatp": hgatp, "vs": vs, "vmid": draw(st.integers(0, 3)),
                             "asid": draw(st.integers(0, 3)), "setup": setup, "ops": ops})


def _only_used_modes(s: dict) -> dict:
    """Table writes only for the modes the scenario starts in or switches to: each mode's copy costs
    the guest a walk of its own (the table builder was half of every run's steps)."""
    used = {s["hgatp"], s["vs"]} | {o["mode"] for o in s["ops"] if o["t"] == "atp"}
    keys = {"map": ["modes"], "or": ["modes"], "reloc": ["vs_modes", "g_modes"]}
    for part in ("setup", "ops"):
        out = []
        for it in s[part]:
            if it["t"] in keys:
                it = dict(it, **{k: [m for m in it[k] if m in used] for k in keys[it["t"]]})
                if not any(it[k] for k in keys[it["t"]]) and part == "setup":
                    continue
            out.append(it)
        s[part] = out
    return s


@st.composite
def batch(draw, size: int, modes=None, max_ops: int = 8) -> list[dict]:
    """``size`` scenarios sharing one (hgatp, vs) pair drawn from ``modes`` (default: all 16)."""
    hgatp, vs = draw(st.sampled_from(modes or MODE_PAIRS))
    # one slot per scenario, empty when its integer is 0: generation fills ~15 of 16 (the runs are what
    # costs, so batches are full), and shrinking empties slots by moving integers toward 0
    out = [draw(scenario(hgatp, vs, max_ops)) for _ in range(size) if draw(st.integers(0, 15))]
    return out or [draw(scenario(hgatp, vs, max_ops))]
