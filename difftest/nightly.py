"""`difftest nightly` and `difftest merge` (issue 5): the whole matrix, in parallel, resumable.

Matrix (documented subset): every guest x every HGATP mode it declares x {lowest, highest} VS mode it
declares, on qemu-7.2, qemu-10.0 and the model in one case (so all three pairs: each QEMU against the
model and the QEMUs against each other).  CPU variants: QEMU 10.0's ``sv39`` and ``sv48`` CPUs
(which cap hgatp, Priv. 20240411 21.2.10: Sv39x4 needs Sv39, Sv48x4 needs Sv48) against the model,
for the HGATP modes within the variant's cap and the lowest VS mode.  ``sv57`` is the default CPU.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from difftest import known as K
from difftest.atomic import write_atomic
from difftest import results as R

ROOT = Path(__file__).resolve().parent.parent
ALL_BACKENDS = ["qemu-7.2", "qemu-10.0", "model"]
MODE_ORDER = ["bare", "sv39x4", "sv48x4", "sv57x4"]
VARIANT_CAP = {"sv39": "sv39x4", "sv48": "sv48x4"}


@dataclass(frozen=True)
class Case:
    guest: str
    hgatp_mode: str
    vs_mode: str
    cpu: str
    backends: tuple[str, ...]

    @property
    def id(self) -> str:
        return f"{self.guest}|{self.hgatp_mode or 'default'}|{self.vs_mode or 'default'}|{self.cpu}|" \
               f"{','.join(self.backends)}"


def shard_of(case_id: str, n: int) -> int:
    """Stable across runs and machines (not Python's salted hash)."""
    return int.from_bytes(hashlib.sha256(case_id.encode()).digest()[:8], "big") % n


def matrix(guests: list[str] | None = None, backends: list[str] | None = None) -> list[Case]:
    from difftest import guests as G
    names = guests or G.nightly_guests()
    backends = backends or ALL_BACKENDS
    out: list[Case] = []
    for g in names:
        declared = G.declared_modes(G.build(g))
        hg, vs = declared if declared else ([""], [""])
        hg = hg or [""]
        vs = vs or [""]
        vsel = sorted({vs[0], vs[-1]}, key=vs.index)
        for m in hg:
            for v in vsel:
                out.append(Case(g, m, v, "default", tuple(backends)))
        if "qemu-10.0" in backends and "model" in backends:
            for cpu, cap in VARIANT_CAP.items():
                for m in hg:
                    if m in MODE_ORDER and MODE_ORDER.index(m) <= MODE_ORDER.index(cap):
                        out.append(Case(g, m, vs[0], cpu, ("qemu-10.0", "model")))
    return out


def _case_dict(c, case: Case) -> dict:
    from difftest.cli import _case_json
    d = _case_json(c)
    d["id"] = case.id
    return d


def longest_first(todo: list, out: Path) -> list:
    """The cases in the order the workers should take them: longest first, so that the last minutes
    do not leave a worker idle beside one long case.  A case's length is its wall time in the
    previous results dir next to ``out`` when it ran there; otherwise the number of its backends
    (a case with QEMU 7.2's single-stepped log and two models is the long kind) -- cases never seen
    go first among equals, in matrix order."""
    prev = R.previous_summary(out)
    walls: dict[str, float] = {}
    if prev:
        try:
            walls = {c["id"]: float(c.get("wall") or 0) for c in R.load_cases([Path(prev["out"])])}
        except (OSError, ValueError, KeyError, TypeError):
            walls = {}
    return sorted(todo, key=lambda c: (-walls.get(c.id, float("inf")), -len(c.backends)))


def run_one(case: Case, out: str, timeout: float, max_steps: int, qemu_trace: str = "auto") -> dict:
    """Worker: one case; its JSON is written atomically before returning (a killed nightly loses
    only cases still running)."""
    from difftest import engine
    d = Path(out) / "runs" / R.case_file(Path("."), case.id).stem
    t0 = time.monotonic()
    try:
        c = engine.run_case(case.guest, hgatp_mode=case.hgatp_mode, vs_mode=case.vs_mode,
                            backends=list(case.backends), cpu=case.cpu, out_dir=d, timeout=timeout,
                            max_steps=max_steps, qemu_trace=qemu_trace)
        res = _case_dict(c, case)
    except Exception as e:           # engine errors and anything else become an "error" case, never a crash
        import errno
        full = isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
        res = {"id": case.id, "guest": case.guest, "hgatp_mode": case.hgatp_mode, "vs_mode": case.vs_mode,
               "cpu": case.cpu, "backends": list(case.backends), "status": "error", "seconds": {},
               "pairs": [{"a": case.backends[0], "b": case.backends[-1], "status": "error", "kind": "error",
                          "summary": f"{type(e).__name__}: {e}", "fingerprint":
                          f"{case.guest}|{case.hgatp_mode}|{case.vs_mode}|setup|error|{type(e).__name__}"}]}
        if full:                     # the machine's fault, not the revision's: the job exits 125
            res["write_error"] = f"cannot write its traces: {e.strerror or e}"
    res["wall"] = round(time.monotonic() - t0, 3)
    for pr in res.get("pairs", []):      # relative to the results dir, so shards merge and dirs move
        pr["report"] = {k: os.path.relpath(v, out) for k, v in (pr.get("report") or {}).items()}
    try:
        write_atomic(R.case_file(Path(out), case.id), json.dumps(res, indent=1))
    except OSError as e:                 # a full disk: the case is lost, said, and the job goes on
        res["write_error"] = f"cannot write its result: {e.strerror or e}"
    return res


# Two QEMUs that differ while each matches the model under its own profile made different choices
# the specification leaves to the implementation (engine.profile_choice_note): shown, counted, not a
# failure -- each QEMU is still held to the spec by its own-profile model pair.
ALLOWED_CHOICE = "spec-allowed-choice"
EXPLAINED = "explained-by-model-pairs"


def _is_qemu_pair(p: dict) -> bool:
    return not any(n == "model" or n.startswith("model@") for n in (p["a"], p["b"]))


def tag_known(cases: list[dict], known: list[K.Known]) -> None:
    """Each finding gets the id of the one entry that lists it (difftest.known), or None (new).

    A QEMU~QEMU finding is accounted for probe by probe through the model under each QEMU's own
    profile: where both QEMUs agree with their own-profile model at that probe, the two differ by a
    choice the specification leaves open (``spec-allowed-choice``); where each either agrees or
    differs by a listed finding, it is ``explained-by-model-pairs``; else it is new."""
    for c in cases:
        pairs = c.get("pairs", [])
        for p in pairs:
            if _is_qemu_pair(p):
                continue
            for f in p.get("findings") or []:
                k = K.classify(c["guest"], f["probe"], f["what"], f"{f['a']}~{f['b']}", known,
                               c.get("hgatp_mode", ""), c.get("vs_mode", ""))
                f["known"] = k.id if k else None
                if k:
                    k.hits += 1
                    k.seen.add((c["guest"], f["probe"], f["what"], f"{f['a']}~{f['b']}"))
        own = {p["a"]: p for p in pairs if not _is_qemu_pair(p)}
        for p in pairs:
            if not _is_qemu_pair(p):
                continue
            for f in p.get("findings") or []:
                verdicts = []
                for q in (p["a"], p["b"]):
                    mp = own.get(q)
                    if mp is None or mp.get("status") == "error":
                        verdicts.append(None)
                        continue
                    at = [g for g in mp.get("findings") or [] if g["probe"] == f["probe"]]
                    verdicts.append("agrees" if not at else "known" if all(g.get("known") for g in at) else None)
                f["known"] = (None if None in verdicts else ALLOWED_CHOICE if verdicts == ["agrees", "agrees"]
                              else EXPLAINED)
        for p in pairs:
            fs = p.get("findings") or []
            p["known"] = (fs[0]["known"] if fs and all(f.get("known") for f in fs)
                          and p.get("status") == "mismatch" else None)
        for f in c.get("findings") or []:          # a model failing its guest's self-checks: never known
            f["known"] = None


def canonical_pair(a: str, b: str) -> str:
    return f"{a}~model@{a}" if b == "model" else f"{a}~{b}"


def finish(out: Path, cases: list[dict], known: list[K.Known], selection: dict | None = None) -> dict:
    tag_known(cases, known)
    ran = {(c["guest"], canonical_pair(p["a"], p["b"])) for c in cases for p in c.get("pairs", [])
           if p.get("status") != "error"}
    entries = {}
    for k in known:
        st, missing = K.fixed_status(k, lambda g, pair: (g, pair) in ran)
        if k.required and not any((g, pair) in ran for g, _, _, pair in k.required):
            st = "not exercised"
        entries[k.id] = {"hits": k.hits, "status": st or "seen", "missing": missing}
    s = R.summarise(cases, entries, R.previous_summary(out), selection)
    s["out"] = str(out)
    s.setdefault("write_errors", [])
    # each file on its own: a full disk costs what it cannot hold, not the rest (summary.json last,
    # so it can say what was lost)
    for name, make in (("junit.xml", lambda: R.junit(cases)), ("report.html", lambda: R.html_report(cases, s, out))):
        try:
            write_atomic(out / name, make())
        except OSError as e:
            s["write_errors"].append(f"{out / name}: {e.strerror or e}")
    try:
        write_atomic(out / "summary.json", json.dumps(s, indent=1))
    except OSError as e:
        s["write_errors"].append(f"{out / 'summary.json'}: {e.strerror or e}")
    return s


def case_line(r: dict) -> str:
    """One line per finished case: its status and, per pair, steps compared of steps run and findings."""
    parts = []
    for p in r.get("pairs", []):
        run = p.get("steps_run") or p.get("steps_compared") or 0
        pct = f" ({p.get('steps_compared', 0) / run:.1%})" if run else ""
        parts.append(f"{p['a']}~{p['b']} {p.get('steps_compared', 0)}/{run}{pct}"
                     + (f" {len(p.get('findings') or [])} finding(s)" if p.get("findings") else "")
                     + (f" {p['status']}" if p.get("status") == "error" else ""))
    return f"{r['status']:<9} {r['id']}: steps compared " + "; ".join(parts)


def _bar(done: int, total: int, last: str) -> None:
    if sys.stderr.isatty():
        w = 30
        f = int(w * done / max(total, 1))
        sys.stderr.write(f"\r[{'#' * f}{'.' * (w - f)}] {done}/{total} {last[:60]:<60}")
        sys.stderr.flush()


def print_summary(s: dict, wall: float | None) -> None:
    esc = R.term_safe
    print(f"{'status':<12} cases   (a case is a mismatch if any backend pair differs, known or not)")
    for k, v in sorted(s["counts"].items()):
        print(f"{k:<12} {v}")
    for fam, t in sorted(s["steps"].items()):
        print(f"steps {fam}: compared {t['compared']} of {t['run']} ({t['compared_pct']}%); "
              f"printing lines that differ {t['printing']} ({t['printing_pct']}%, checked as console text); "
              f"skipped {t['skipped']} ({t['skipped_pct']}%)")
    fs = s["findings"]
    n_new = sum(1 for f in fs if f["status"] == "new")
    print(f"findings: {len(fs)} ({n_new} new, {len(fs) - n_new} known or explained); "
          f"errors: {len(s['errors'])}")
    for k, e in sorted(s["entries"].items()):
        extra = ""
        if e["status"] in ("fixed", "partly fixed"):
            extra = f"  -- {e['status'].upper()}: not seen " + ", ".join(e["missing"][:4]) + \
                (f" (+{len(e['missing']) - 4})" if len(e["missing"]) > 4 else "")
        elif e["status"] == "not exercised":
            extra = "  (not exercised by this selection)"
        print(f"known {k}: {e['hits']} hit(s){extra}")
    for f in fs:
        if f["status"] == "new":
            print(f"NEW {esc(f['fingerprint'])}  [{len(f['hits'])} case(s)] {esc(f['summary'])[:160]}")
    for e in s["errors"]:
        print(f"ERROR {e['case']} {e['pair']}: {esc(e['summary'])[:200]}")
    if s.get("trend"):
        t = s["trend"]
        print(f"trend vs {t['previous']}: new {len(t['new'])}, fixed {len(t['fixed'])}, "
              f"still failing {len(t['still_failing'])}" + (f" ({t['note']})" if t.get("note") else ""))
    if wall is not None:
        print(f"wall time {wall:.1f} s; backend time shares: " + ", ".join(
            f"{b} {s['backend_seconds'][b]:.1f} s ({v:.0%})" for b, v in s["backend_share"].items()))
    print(f"report: {Path(s['out']) / 'report.html'}")


def exit_code(s: dict) -> int:
    """0 only when every finding of every run is listed by a reviewed entry (or explained by the
    model pairs) and no backend failed to run."""
    return 1 if any(f["status"] == "new" for f in s["findings"]) or s["errors"] else 0


def plugin_traced(qemu_trace: str, backends) -> set:
    """The QEMUs of ``backends`` whose traces come from the plugin source under ``--qemu-trace``."""
    from difftest.backends import auto_source
    qemus = [b for b in backends if b.startswith("qemu-")]
    if qemu_trace == "plugin":
        return set(qemus)
    if qemu_trace == "auto":
        return {b for b in qemus if auto_source(b) == "plugin"}
    return set()


def run(args) -> int:
    from difftest.cli import UserError
    try:
        known = K.load(args.known, plugin_for=plugin_traced(args.qemu_trace, ALL_BACKENDS))
    except K.KnownError as e:
        raise UserError(str(e))
    if args.resume:
        out = Path(args.resume)
    else:
        out = Path(args.out) if args.out else ROOT / "results" / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    shard = (0, 1)
    if args.shard:
        try:
            k, n = (int(x) for x in args.shard.split("/"))
            assert 1 <= k <= n
        except (ValueError, AssertionError):
            raise UserError(f"--shard wants K/N with 1 <= K <= N, got {args.shard!r}")
        shard = (k - 1, n)
    backends = [b.strip() for b in args.backends.split(",")] if args.backends else None
    guests = [g.strip() for g in args.guests.split(",")] if args.guests else None
    t0 = time.monotonic()
    try:
        cases = [c for c in matrix(guests, backends) if shard_of(c.id, shard[1]) == shard[0]]
    except Exception as e:
        raise UserError(f"cannot build the matrix: {e}", 125)
    out.mkdir(parents=True, exist_ok=True)
    done = {c["id"] for c in R.load_cases([out])}
    todo = longest_first([c for c in cases if c.id not in done], out)
    jobs = args.jobs or os.cpu_count() or 1
    n = 0
    lost: list[str] = []                  # results the disk could not hold
    if not args.json:
        print(f"nightly: {len(cases)} cases ({len(cases) - len(todo)} already done) -> {out}, {jobs} workers",
              file=sys.stderr)
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futs = {pool.submit(run_one, c, str(out), args.timeout, args.max_steps, args.qemu_trace): c for c in todo}
        for f in as_completed(futs):
            n += 1
            r = f.result()
            if r.get("write_error"):
                lost.append(f"case {r['id']}: {r['write_error']}")
            if not args.json:
                if sys.stderr.isatty():
                    sys.stderr.write("\r\x1b[K")
                print(case_line(r), file=sys.stderr)
            _bar(n, len(todo), f"{r['status']:<9} {r['id']}")
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    ids = {c.id for c in cases}
    s = finish(out, [c for c in R.load_cases([out]) if c["id"] in ids], known,
               {"guests": sorted({c.guest for c in cases}), "backends": backends or ALL_BACKENDS,
                "qemu_trace": args.qemu_trace})
    s["write_errors"] = lost + s["write_errors"]
    s["wall_seconds"] = round(time.monotonic() - t0, 1)
    try:
        write_atomic(out / "summary.json", json.dumps(s, indent=1))
    except OSError:
        pass                               # already listed by finish
    if args.json:
        print(json.dumps(s, indent=1))
    else:
        print_summary(s, s["wall_seconds"])
    if s["write_errors"]:
        # what the disk could not hold is said, and the job cannot vouch for a result it lost
        print("nightly: could not write " + "; ".join(s["write_errors"]) + " -- free space and run again "
              "with --resume", file=sys.stderr)
        return 125
    return exit_code(s)


def run_merge(args) -> int:
    from difftest.cli import UserError
    try:
        # shards of one nightly share its --qemu-trace; merge takes the default's (auto)
        known = K.load(args.known, plugin_for=plugin_traced(getattr(args, "qemu_trace", "auto"), ALL_BACKENDS))
    except K.KnownError as e:
        raise UserError(str(e))
    dirs = [Path(d) for d in args.dirs]
    for d in dirs:
        if not (d / R.CASES).is_dir():
            raise UserError(f"{d}: not a nightly results dir (no {R.CASES}/)")
    out = Path(args.out)
    cases = []
    for d in dirs:               # copy case files and their reports so the merged dir is self-contained
        for c in R.load_cases([d]):
            for pr in c.get("pairs", []):
                for k, v in (pr.get("report") or {}).items():
                    src = Path(v) if os.path.isabs(v) else d / v
                    rel = Path(v).name if os.path.isabs(v) else v
                    if src.is_file() and not (out / rel).exists():
                        (out / rel).parent.mkdir(parents=True, exist_ok=True)
                        shutil.copyfile(src, out / rel)
                    pr["report"][k] = str(rel)
            write_atomic(R.case_file(out, c["id"]), json.dumps(c, indent=1))
            cases.append(c)
    s = finish(out, cases, known)
    if args.json:
        print(json.dumps(s, indent=1))
    else:
        print_summary(s, None)
    return exit_code(s)


def add_subcommand(sub) -> None:
    F = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser("nightly", help="the whole matrix in parallel; results dir with HTML/JUnit report",
                       formatter_class=F, description=__doc__,
                       epilog="examples:\n  difftest nightly --jobs 2\n  difftest nightly --shard 1/4 --out r/s1\n"
                              "  difftest nightly --resume results/20261125T0600Z\n"
                              "exit: 0 nothing new (known divergences allowed), 1 a new mismatch or error")
    p.add_argument("--out", help="results dir (default results/<UTC timestamp>)")
    p.add_argument("--jobs", type=int, default=0, help="worker processes (default: all cores)")
    p.add_argument("--shard", help="K/N: run only shard K of N (stable hash of the case id)")
    p.add_argument("--resume", help="results dir of a killed run: skip the cases already written")
    p.add_argument("--guests", help="comma-separated guests (default all)")
    p.add_argument("--backends", help=f"comma-separated (default {','.join(ALL_BACKENDS)})")
    p.add_argument("--known", help="known divergences file (default known-divergences.toml)")
    p.add_argument("--timeout", type=float, default=120)
    p.add_argument("--max-steps", type=int, default=5_000_000)
    p.add_argument("--qemu-trace", choices=("auto", "log", "plugin"), default="auto",
                   help="QEMU trace source: auto (default: plugin on QEMU >= 9.2 -- one QEMU run per case --, "
                        "log on 7.2), log or plugin; see difftest run --help")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)
    m = sub.add_parser("merge", help="combine shard results dirs into one report", formatter_class=F,
                       epilog="example:\n  difftest merge r/s1 r/s2 --out r/all")
    m.add_argument("dirs", nargs="+")
    m.add_argument("--out", required=True)
    m.add_argument("--known")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=run_merge)
