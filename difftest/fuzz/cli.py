"""`difftest fuzz`: random two-stage translation scenarios against QEMU and the model, with shrinking.

Hypothesis draws scenarios -- G-stage and VS-stage leaves at every level with chosen PTE bits, GPAs at
the top of each mode's width, above it and in the widened root index range, VS tables at GPAs of their
own, CSR context (MXR/SUM, SPVP/HU/VTVM, ADUE/PBMTE, medeleg/hedeleg), and operations: loads, stores,
AMOs, LR, fetches, HLV/HLVX/HSV, MPRV+MPV from M, PTE rewrites, hgatp/vsatp MODE/VMID/ASID switches,
fences by all/address/ID -- and the guest guests/fuzz_interp performs them, K per run.  The oracle is
the differential comparison (difftest.engine.run_case): no expected values; the model's profile and
stale-TLB rules decide what the implementations may legally answer differently.  Each finding class
(what differs, backend pair) is shrunk once to a minimal scenario written to
guests/fuzz_interp/corpus/ with the command that replays it.

exit: 0 nothing new (every class is explained by known-divergences.toml), 1 a new class,
2 usage, 125 nothing could run
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from difftest.fuzz import scenario as S

ROOT = Path(__file__).resolve().parent.parent.parent
G_ALL = ["bare", "sv39x4", "sv48x4", "sv57x4"]
V_ALL = ["bare", "sv39", "sv48", "sv57"]


def _modes(text: str, allowed: list[str], what: str) -> list[str]:
    from difftest.cli import UserError
    if not text or text == "all":
        return allowed
    out = [m.strip().lower() for m in text.split(",") if m.strip()]
    bad = [m for m in out if m not in allowed]
    if bad:
        raise UserError(f"unknown {what} {', '.join(bad)}; choose from {', '.join(allowed)} or all")
    return out


def _backends(text: str) -> list[str]:
    from difftest.cli import UserError
    names = [b.strip() for b in text.split(",") if b.strip()]
    ok = {"qemu-7.2", "qemu-10.0"}
    bad = [b for b in names if b not in ok and not b.startswith("model") and not Path(b).is_file()]
    if bad or len(names) < 2:
        raise UserError(f"--backend wants two or more of qemu-7.2, qemu-10.0, model (or a QEMU path): {text!r}")
    return names


def replay(path: str, backends: list[str], out: Path, as_json: bool) -> int:
    """Run one saved scenario; say whether the class recorded beside it (NAME.finding) reappears."""
    from difftest.cli import UserError
    from difftest.fuzz import runner as R
    from difftest.fuzz.report import classify, load_known
    try:
        s = S.load(path)
    except S.ScenarioError as e:
        raise UserError(str(e))
    rec = Path(path).with_suffix(".finding")
    expected = rec.read_text().strip() if rec.is_file() else None
    r = R.run_batch([s], backends=backends, out_dir=out)
    known = load_known()
    classes = sorted({f.cls for f in r.findings})
    res = {"scenario": str(path), "status": r.status, "classes": classes, "expected": expected,
           "reproduced": expected in classes if expected else None, "errors": r.errors,
           "known": {c: classify(c.rsplit("|", 1)[0], c.rsplit("|", 1)[1], known) for c in classes},
           "reports": sorted({f.report for f in r.findings if f.report})}
    if as_json:
        print(json.dumps(res, indent=1))
    else:
        print(f"{path}: {r.status}, {len(S.probes(s))} probe(s)")
        for c in classes:
            print(f"  {c}   [{res['known'][c] or 'new'}]")
        if expected:
            print(f"  recorded finding {'reproduced' if res['reproduced'] else 'NOT reproduced'}: {expected}")
        for e in r.errors:
            print(f"  error: {e}")
    if r.errors and not classes:
        return 125
    return 1 if classes else 0


def run(args) -> int:
    from difftest.cli import UserError
    from difftest.fuzz import search
    backends = _backends(args.backend)
    out = Path(args.out) if args.out else ROOT / "results" / time.strftime("fuzz-%Y%m%dT%H%M%SZ", time.gmtime())
    if args.replay:
        return replay(args.replay, backends, out, args.json)
    if args.count is not None and args.count < 1 or args.time is not None and args.time <= 0:
        raise UserError("--count and --time must be positive")
    if args.jobs < 1 or not 1 <= args.batch <= 64:
        raise UserError("--jobs must be >= 1 and --batch 1..64")
    hg, vs = _modes(args.mode, G_ALL, "HGATP mode"), _modes(args.vs_mode, V_ALL, "VS mode")
    cfg = search.Config(seed=args.seed, count=args.count, seconds=args.time if args.count is None or args.time else None,
                        backends=backends, modes=[(h, v) for h in hg for v in vs], jobs=args.jobs, batch=args.batch,
                        out=str(out), corpus=args.corpus or str(search.CORPUS), shrink=not args.no_shrink,
                        shrink_budget=args.shrink_budget,
                        shrink_only=[x.strip() for x in args.shrink_only.split(",") if x.strip()] if args.shrink_only else None)
    if cfg.count is None and cfg.seconds is None:
        cfg.seconds = 60
    tty = sys.stderr.isatty()
    last = [0.0]

    def progress(line: str) -> None:
        if args.json:
            return
        now = time.monotonic()
        if tty:
            print("\r" + line, end="", file=sys.stderr, flush=True)
        elif now - last[0] > 10:
            print(line, file=sys.stderr, flush=True)
            last[0] = now

    summary = search.fuzz(cfg, progress)
    if tty and not args.json:
        print(file=sys.stderr)
    if args.json:
        print(json.dumps({k: v for k, v in summary.items() if k != "reached"}, indent=1))
    else:
        print_summary(summary, out)
    if summary["new"]:
        return 1
    return 125 if summary["scenarios"] == 0 and summary["errors"] else 0


def print_summary(s: dict, out: Path) -> None:
    print(f"{s['scenarios']} scenarios ({s['probes']} probes) in {s['runs']} runs, {s['search_seconds']} s of search: "
          f"{s['scenarios_per_second']} scenarios/s ({s['scenarios_per_cpu_second']} per CPU-second); {s['accepted_stale']} permitted stale translations accepted; "
          f"shrinking {sum(1 for f in s['findings'] if f.get('replay'))} classes: {s['shrink_seconds']} s")
    c = s["coverage"]
    print(f"coverage: {c['reached']}/{c['reachable']} translation situations   "
          + "  ".join(f"{k} {v}" for k, v in c["per_mode"].items() if not v.startswith("0/")))
    for f in s["findings"]:
        tag = f"known: {f['known']}" if f["known"] else "follows an earlier difference" if f["status"] == "follows" \
            else "NEW" + (f", resembles {f['resembles']}" if f.get("resembles") else "")
        print(f"  [{tag}] {f['what']}  ({f['pair']}, seen {f['count']}x)")
        if f.get("replay"):
            print(f"      minimal: {f['shrunk_ops']} op(s) (from {f['original_ops']}): {f['replay']}")
    for e in s["errors"][:10]:
        print(f"  error: {e}")
    print(f"{s['new']} new, {s['known']} known finding classes, {s['follows']} only after an earlier difference; {out}/summary.json, {out}/report.html")


def add_subcommand(sub) -> None:
    p = sub.add_parser("fuzz", help="random two-stage translation scenarios vs the model, shrunk to minimal ones",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="examples:\n  difftest fuzz --time 600 --jobs 2\n"
                              "  difftest fuzz --seed 7 --count 200 --backend qemu-7.2,model --mode sv39x4\n"
                              "  difftest fuzz --replay guests/fuzz_interp/corpus/<id>.json --backend qemu-7.2,model")
    p.add_argument("--seed", type=int, default=0, help="Hypothesis seed of worker 0 (worker j: seed + j)")
    p.add_argument("--count", type=int, help="stop after this many scenarios")
    p.add_argument("--time", type=float, help="stop after this many seconds (default 60 without --count)")
    p.add_argument("--mode", default="all", help="starting HGATP modes, comma-separated or all")
    p.add_argument("--vs-mode", default="all", help="starting VS modes, comma-separated or all")
    p.add_argument("--backend", default="qemu-10.0,model", help="default qemu-10.0,model")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--batch", type=int, default=32, help="scenarios per guest run (default 32)")
    p.add_argument("--out", help="results directory (default results/fuzz-<UTC time>)")
    p.add_argument("--corpus", help="where minimal scenarios go (default guests/fuzz_interp/corpus)")
    p.add_argument("--no-shrink", action="store_true", help="report classes without shrinking them")
    p.add_argument("--shrink-budget", type=float, default=180.0, help="seconds of shrinking per class (default 180)")
    p.add_argument("--shrink-only", metavar="GLOBS", help="shrink only classes matching these fnmatch patterns over "
                   "'what|a~b', comma-separated (e.g. '*g21~ok*')")
    p.add_argument("--replay", metavar="FILE", help="run one saved scenario and report its findings")
    p.add_argument("--json", action="store_true", help="the summary as JSON on stdout")
    p.set_defaults(func=run)
