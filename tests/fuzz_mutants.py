"""Deliberately wrong models: one rule of the two-stage walk or of trap entry broken each, to measure
what `difftest fuzz` and the hand-written guests kill (tests/test_fuzz.py uses one; the kill-rate
figures come from ``python tests/fuzz_mutants.py``).  Each mutant is ``apply(setattr)`` -- pytest's
``monkeypatch.setattr`` or a plain setter -- and names the spec rule it breaks and the hand-written
guests whose probes exercise that rule.

    python tests/fuzz_mutants.py fuzz MUTANT [--time 120] [--backend qemu-10.0,model]
    python tests/fuzz_mutants.py guests MUTANT            # its guests, every declared mode, vs QEMU 10.0
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from refmodel import mmu, trap_entry  # noqa: E402


def _permitted(set_, rule):
    orig = mmu._Walker.permitted

    def wrong(self, stage, pte, access, hlvx):
        r = rule(self, stage, pte, access, hlvx, orig)
        return orig(self, stage, pte, access, hlvx) if r is ... else r
    set_(mmu._Walker, "permitted", wrong)


def _reserved(set_, rule):
    orig = mmu._Walker.reserved

    def wrong(self, pte, leaf):
        r = orig(self, pte, leaf)
        return rule(pte, leaf, r)
    set_(mmu._Walker, "reserved", wrong)


def _fault(set_, rule):
    """Rewrite the Fault a translation returns."""
    orig = mmu.translate

    def wrong(ctx, va, access, priv, v, **kw):
        t = orig(ctx, va, access, priv, v, **kw)
        if t.fault is not None:
            t.fault = rule(t.fault, access) or t.fault
        return t
    set_(mmu, "translate", wrong)
    import refmodel.hart as H
    if getattr(H, "translate", None) is orig:
        set_(H, "translate", wrong)


def _stage(set_, root_extra=None, addr_delta=0):
    Stage = mmu.Stage

    class WrongG(Stage):
        @property
        def addr_bits(self) -> int:
            return 12 + 9 * self.levels + 2 + addr_delta

    def make(name, levels, extra):
        if name != "g":
            return Stage(name, levels, extra)
        return WrongG(name, levels, extra if root_extra is None else root_extra)
    set_(mmu, "Stage", make)


def _gva(set_, rule):
    orig = trap_entry.TrapEntry.take_trap

    def wrong(self, e, pc, insn=None):
        t = orig(self, e, pc, insn)
        if t.gva is not None:
            new = rule(t)
            if new is not None and new != t.gva:
                c = self.csr
                if t.target == "M":
                    c[0x300] ^= 1 << 38
                else:
                    c[0x600] ^= 1 << 6
                t.gva = new
        return t
    set_(trap_entry.TrapEntry, "take_trap", wrong)


# name -> (apply, rule broken, hand-written guests that probe it)
MUTANTS = {
    "none": (lambda s: None, "the control: the model as committed", ["smoke"]),
    "g-store-w-inverted": (lambda s: _permitted(s, lambda w, st, pte, a, h, o: "wrong: W=1 G store" if st == "g" and a == "store" and pte & mmu.PTE_W else ...),
                           "G-stage store needs W", ["gstage_basic", "pte_bits"]),
    "g-u-not-required": (lambda s: _permitted(s, lambda w, st, pte, a, h, o: o(w, st, pte | mmu.PTE_U, a, h) if st == "g" else ...),
                         "G-stage leaves need U=1", ["gstage_basic"]),
    "gpa-width-narrow": (lambda s: _stage(s, addr_delta=-1), "GPA width 41/50/59 (bit width-1 is valid)",
                         ["gpa_width", "gstage_basic", "implicit_width"]),
    "gpa-width-unchecked": (lambda s: _stage(s, addr_delta=64), "GPA bits above the width fault",
                            ["gpa_width", "implicit_width"]),
    "g-root-narrow": (lambda s: _stage(s, root_extra=0), "x4 root index has 2 extra bits", ["gstage_basic", "gpa_width"]),
    "implicit-fault-as-load": (lambda s: _fault(s, lambda f, a: dataclasses.replace(f, cause=21) if f.implicit else None),
                               "implicit G fault reported as the original access type", ["vs_modes", "implicit_width"]),
    "vs-user-u-ignored": (lambda s: _permitted(s, lambda w, st, pte, a, h, o: o(w, st, pte | mmu.PTE_U, a, h) if st == "vs" and w.priv == 0 else ...),
                          "VU accesses need U=1 at the VS stage", ["vs_modes", "pte_bits"]),
    "vs-sum-ignored": (lambda s: _permitted(s, lambda w, st, pte, a, h, o: o(w, st, pte & ~mmu.PTE_U, a, h) if st == "vs" and w.priv == 1 and a != "fetch" else ...),
                       "VS-mode access to a U=1 page needs vsstatus.SUM", ["pte_bits"]),
    "hlvx-needs-r": (lambda s: _permitted(s, lambda w, st, pte, a, h, o: (None if pte & mmu.PTE_R else "wrong: HLVX R") if h and a == "load" else ...),
                     "HLVX needs X, not R", ["accessors"]),
    "mxr-g-ignored": (lambda s: _permitted(s, lambda w, st, pte, a, h, o: ("wrong: no MXR" if not pte & mmu.PTE_R and not h else None) if st == "g" and a == "load" and not pte & mmu.PTE_R else ...),
                      "HS-level MXR makes X-only G pages readable", ["pte_bits"]),
    "reserved-bits-ignored": (lambda s: _reserved(s, lambda pte, leaf, r: None if r == "reserved bits 60:54 set" else r),
                              "PTE bits 60:54 reserved", ["pte_formats"]),
    "nonleaf-ad-allowed": (lambda s: _reserved(s, lambda pte, leaf, r: None if r == "reserved D/A/U in non-leaf PTE" else r),
                           "non-leaf A/D/U reserved", ["pte_bits"]),
    "gpf-htval-unshifted": (lambda s: _fault(s, lambda f, a: dataclasses.replace(f, htval=f.htval << 2) if f.stage == "g" and f.htval else None),
                            "htval = GPA >> 2", ["gstage_basic", "faults", "vs_modes"]),
    "gva-zero-on-gpf": (lambda s: _gva(s, lambda t: False if t.cause in (20, 21, 23) else None),
                        "GVA=1 when tval holds a guest virtual address", ["smoke", "faults", "gstage_basic"]),
    "gva-zero-on-vs-pf": (lambda s: _gva(s, lambda t: False if t.cause in (12, 13, 15) else None),
                          "GVA=1 on page faults from V=1 / MPRV+MPV / HLV", ["vs_modes", "accessors"]),
}


def main(argv) -> int:
    import argparse
    import json
    import time
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["fuzz", "guests", "list"])
    ap.add_argument("mutant", nargs="?")
    ap.add_argument("--time", type=float, default=120)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--backend", default="qemu-10.0,model")
    ap.add_argument("--out", default="/tmp/fuzz-mutants")
    a = ap.parse_args(argv)
    if a.what == "list":
        print("\n".join(MUTANTS))
        return 0

    def set_(obj, name, val):
        setattr(obj, name, val)
    apply, rule, guests = MUTANTS[a.mutant]
    apply(set_)
    out = Path(a.out) / a.what / a.mutant
    t0 = time.monotonic()
    if a.what == "fuzz":
        from difftest import known as K
        from difftest.fuzz import search
        cfg = search.Config(seed=a.seed, seconds=a.time, backends=a.backend.split(","), jobs=a.jobs,
                            out=str(out), corpus=str(out / "corpus"), shrink=False)
        s = search.fuzz(cfg)
        killed = [f["what"] for f in s["findings"] if f["status"] == "new"]
        del K
        res = {"mutant": a.mutant, "by": "fuzz", "killed": bool(killed), "classes": killed,
               "scenarios": s["scenarios"], "seconds": s["search_seconds"]}
    else:
        from difftest import engine
        from difftest import guests as G
        from difftest import known as K
        known = K.load()
        killed = []
        for g in guests:
            hg, vs = G.declared_modes(G.build(g))
            for m in [x for x in hg if x != "bare"][:2] or hg[:1]:     # a sample of the modes, for time
                c = engine.run_case(g, hgatp_mode=m, vs_mode=vs[0] if len(vs) == 1 else vs[min(1, len(vs) - 1)],
                                    backends=a.backend.split(","), out_dir=out / f"{g}-{m}", timeout=300)
                for p in c.pairs:
                    for f in p.findings:
                        if not K.classify(g, f.probe, f.what, f"{f.a}~{f.b}", known, c.hgatp_mode, c.vs_mode):
                            killed.append(f"{g} {m} {f.probe}: {f.what}")
                for f in c.findings:
                    killed.append(f"{g} {m} {f.probe}: {f.what} (self-check on the model)")
        res = {"mutant": a.mutant, "by": "guests", "guests": guests, "killed": bool(killed), "classes": killed[:8]}
    res["wall"] = round(time.monotonic() - t0, 1)
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
