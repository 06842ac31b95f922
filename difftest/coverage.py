"""`difftest coverage` (issue 4): which two-stage translation situations the suite reaches.

A situation is the tuple (V, HGATP mode, VS-stage mode, access, VS/S leaf level, G leaf level,
outcome), outcome = "ok" or "<stage>:<cause>" ("g-implicit:<cause>" for a guest-page fault on the
implicit access to a VS-stage PTE).  It is read from the model's traces (the model logs every
translation, TLB hits included) and set against the tuples the spec allows per mode:

* V=1 (Priv. 20240411 21.5 Two-stage address translation): VS-stage leaf levels 0..L-1 for
  Sv39/48/57 (L = 3/4/5; none for Bare, 12.3-12.5 superpages at any level), G-stage leaf levels
  0..L-1 for Sv39x4/48x4/57x4 (21.5.1), none for Bare.  Faults: VS-stage page faults 12/13/15 when
  VS is not Bare, guest-page faults 20/21/23 when G is not Bare (with the implicit variant when VS is
  not Bare, 21.5.1: reported as the original access type), access faults 1/5/7 (PMP on the final
  address, 3.7).
* V=0: the S stage (satp, hgatp does not apply): leaf 0..4 or none, page faults 12/13/15, 1/5/7.

The tuple uses the case's configured modes (a guest that switches modes at run time adds tuples
outside its configured mode's list; they are counted as "other").  Accessed/dirty and permission
sub-cases are not separated (they share the fault codes).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LEVELS = {"bare": 0, "sv39": 3, "sv48": 4, "sv57": 5, "sv39x4": 3, "sv48x4": 4, "sv57x4": 5}
ACCESS = ("fetch", "load", "store")
PF = {"fetch": 12, "load": 13, "store": 15}
GPF = {"fetch": 20, "load": 21, "store": 23}
AF = {"fetch": 1, "load": 5, "store": 7}


def reachable(hgatp: str, vs: str) -> set[tuple]:
    """All situations the spec allows for V=1 under (hgatp, vs), and for V=0 (hgatp='-')."""
    out = set()
    vl = [None] if LEVELS[vs] == 0 else list(range(LEVELS[vs]))
    gl = [None] if LEVELS[hgatp] == 0 else list(range(LEVELS[hgatp]))
    for a in ACCESS:
        for x in vl:
            for g in gl:
                out.add((1, hgatp, vs, a, x, g, "ok"))
        out.add((1, hgatp, vs, a, None, None, f"pmp:{AF[a]}"))
        if vs != "bare":
            out.add((1, hgatp, vs, a, None, None, f"vs:{PF[a]}"))
        if hgatp != "bare":
            out.add((1, hgatp, vs, a, None, None, f"g:{GPF[a]}"))
            if vs != "bare":
                out.add((1, hgatp, vs, a, None, None, f"g-implicit:{GPF[a]}"))
    return out


def reachable_v0() -> set[tuple]:
    out = set()
    for a in ACCESS:
        for lv in [None] + list(range(5)):
            out.add((0, "-", "-", a, lv, None, "ok"))
        out.add((0, "-", "-", a, None, None, f"s:{PF[a]}"))
        out.add((0, "-", "-", a, None, None, f"pmp:{AF[a]}"))
    return out


def situation(x, hgatp: str, vs: str) -> tuple:
    if x.fault_stage:
        stage = "g-implicit" if x.fault_stage == "g" and x.implicit else x.fault_stage
        outcome = f"{stage}:{x.fault_cause}"
        lv = gv = None
    else:
        outcome, lv, gv = "ok", x.vs_leaf_level, x.g_leaf_level
    if x.v:
        return (1, hgatp or "bare", vs or "bare", x.access, lv, gv, outcome)
    return (0, "-", "-", x.access, lv, None, outcome)


def reached_in(trace_path) -> set[tuple]:
    from difftest.trace import TraceReader
    r = TraceReader(trace_path)
    hdr = r.header
    out = set()
    for s in r.steps():
        for x in s.xlats or ():
            out.add(situation(x, hdr.hgatp_mode, hdr.vs_mode))
    return out


def model_traces(out_dir: Path, guests=None) -> list[Path]:
    """Run the model on every guest x declared HGATP mode x declared VS mode (model only)."""
    from difftest import engine
    from difftest import guests as G
    paths = []
    for g in guests or G.nightly_guests():      # the nightly's guests (ptest_bigram needs --ram 256M)
        declared = G.declared_modes(G.build(g)) or ([""], [""])
        for m in declared[0] or [""]:
            for v in declared[1] or [""]:
                d = out_dir / f"{g}-{m or 'default'}-{v or 'default'}"
                c = engine.run_case(g, hgatp_mode=m, vs_mode=v, backends=["model"], out_dir=d)
                r = c.runs.get("model")
                if r is not None and r.trace_path:
                    paths.append(Path(r.trace_path))
    return paths


def report(traces) -> dict:
    reached: set[tuple] = set()
    for t in traces:
        reached |= reached_in(t)
    return report_from(reached, len(traces))


def report_from(reached: set[tuple], ntraces: int) -> dict:
    allmodes = {(h, v) for h in ("bare", "sv39x4", "sv48x4", "sv57x4") for v in ("bare", "sv39", "sv48", "sv57")}
    per = {}
    for h, v in sorted(allmodes):
        want = reachable(h, v)
        got = want & reached
        per[f"{h}/{v}"] = {"reachable": len(want), "reached": len(got),
                           "missing": sorted(_fmt(t) for t in want - reached)}
    v0 = reachable_v0()
    per["V=0"] = {"reachable": len(v0), "reached": len(v0 & reached), "missing": sorted(_fmt(t) for t in v0 - reached)}
    known = set().union(*(reachable(h, v) for h, v in allmodes)) | v0
    return {"traces": ntraces, "per_mode": per, "other": sorted(_fmt(t) for t in reached - known),
            "reached_total": len(reached & known), "reachable_total": len(known)}


def summarise_reached(reached: set[tuple]) -> dict:
    """{"reached": n, "reachable": m, "per_mode": {mode: "r/m"}} of a set of situations (the fuzzer's)."""
    r = report_from(reached, 0)
    return {"reached": r["reached_total"], "reachable": r["reachable_total"],
            "per_mode": {k: f"{v['reached']}/{v['reachable']}" for k, v in r["per_mode"].items()}}


def fuzz_reached(path) -> set[tuple]:
    """The situations a `difftest fuzz` run reached (its summary.json, or the directory holding it)."""
    p = Path(path)
    p = p / "summary.json" if p.is_dir() else p
    data = json.loads(p.read_text())
    return {tuple(t) for t in data.get("reached", [])}


def fmt(t) -> str:
    return _fmt(t)


def _fmt(t) -> str:
    v, h, vs, a, lv, gv, o = t
    lv = "-" if lv is None else lv
    gv = "-" if gv is None else gv
    return f"V={v} {h}/{vs} {a} vs-leaf={lv} g-leaf={gv} {o}"


def run(args) -> int:
    from difftest.cli import UserError
    if args.traces:
        traces = sorted(Path(args.traces).rglob("model*.trace.*"))
        if not traces:
            raise UserError(f"{args.traces}: no model traces (model*.trace.*) under it")
    else:
        try:
            traces = model_traces(Path(args.out) if args.out else ROOT / "build" / "coverage",
                                  [g.strip() for g in args.guests.split(",")] if args.guests else None)
        except Exception as e:
            raise UserError(f"cannot run the model over the guests: {e}", 125)
    fuzz = None
    if getattr(args, "fuzz", None):
        try:
            fuzz = fuzz_reached(args.fuzz)
        except (OSError, ValueError, TypeError) as e:
            raise UserError(f"{args.fuzz}: not the results of `difftest fuzz` ({e})")
    r = report(traces)
    if fuzz is not None:
        hand = set()
        for t in traces:
            hand |= reached_in(t)
        both = report_from(hand | fuzz, len(traces))
        fz = report_from(fuzz, 0)
        r["fuzz"] = {"reached_total": fz["reached_total"], "combined_total": both["reached_total"],
                     "only_fuzz": sorted(_fmt(t) for t in (fuzz - hand) if _fmt(t) not in r["other"]),
                     "per_mode": {k: {"guests": r["per_mode"][k]["reached"], "fuzz": v["reached"],
                                      "combined": both["per_mode"][k]["reached"], "reachable": v["reachable"]}
                                  for k, v in fz["per_mode"].items()}}
    if args.json:
        print(json.dumps(r, indent=1))
        return 0
    print(f"{r['reached_total']}/{r['reachable_total']} reachable translation situations reached "
          f"({r['traces']} model traces)")
    for k, v in r["per_mode"].items():
        print(f"{k:<16} {v['reached']:>4}/{v['reachable']:<4}")
        if args.verbose:
            for m in v["missing"]:
                print(f"    missing: {m}")
    if fuzz is not None:
        f = r["fuzz"]
        print(f"fuzzer: {f['reached_total']}/{r['reachable_total']} reached; guests + fuzzer: "
              f"{f['combined_total']}/{r['reachable_total']}")
        for k, v in f["per_mode"].items():
            print(f"  {k:<16} guests {v['guests']:>4}  fuzz {v['fuzz']:>4}  both {v['combined']:>4} / {v['reachable']}")
        for m in f["only_fuzz"] if args.verbose else []:
            print(f"    only the fuzzer: {m}")
    if r["other"]:
        print(f"other (outside the configured mode's list, e.g. mode switches): {len(r['other'])}")
    return 0


def add_subcommand(sub) -> None:
    p = sub.add_parser("coverage", help="which two-stage translation situations the suite reaches, per mode",
                       formatter_class=argparse.RawDescriptionHelpFormatter, description=__doc__,
                       epilog="examples:\n  difftest coverage -v\n  difftest coverage --traces results/20261125T0600Z --json")
    p.add_argument("--traces", help="read model traces under this dir (e.g. a nightly results dir) instead of running")
    p.add_argument("--guests", help="comma-separated guests (default all)")
    p.add_argument("--out", help="where the model traces go (default build/coverage)")
    p.add_argument("--fuzz", metavar="RESULTS", help="also count what a `difftest fuzz` run reached (its --out dir "
                   "or summary.json), next to the guests")
    p.add_argument("-v", "--verbose", action="store_true", help="list the missing situations")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)
