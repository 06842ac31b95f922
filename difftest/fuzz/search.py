"""The fuzz loop: Hypothesis-generated batches on J worker processes, findings deduplicated by class,
each new class shrunk once (difftest.fuzz.shrink) and written to the corpus.

``fuzz(cfg)`` is what ``difftest fuzz`` and the nightly call.  Worker j runs Hypothesis with seed
``cfg.seed + j`` (the same seed gives the same batches), one batch (K scenarios, one HGATP x VS pair) per
example, until ``cfg.count`` scenarios or ``cfg.seconds`` are spent.  A class (``what|a~b``) is
shrunk by the first worker that claims it (an O_EXCL file), so two workers never shrink the same thing.
Events go to the parent through a queue; the parent prints the progress line and builds the summary.
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import shutil
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
CORPUS = ROOT / "guests" / "fuzz_interp" / "corpus"


@dataclass
class Config:
    seed: int = 0
    count: int | None = None           # scenarios in all (None: until seconds)
    seconds: float | None = None
    backends: list[str] = field(default_factory=lambda: ["qemu-10.0", "model"])
    modes: list[tuple[str, str]] | None = None     # (hgatp, vs) pairs; None = all 16
    jobs: int = 1
    batch: int = 32                    # scenarios per guest run
    max_ops: int = 8
    out: str = ""
    corpus: str = str(CORPUS)
    shrink_budget: float = 180.0       # seconds per class
    shrink: bool = True
    shrink_only: list[str] | None = None   # fnmatch patterns over "what|a~b": shrink only these classes


class _Stop(BaseException):
    """Ends a worker's Hypothesis loop without it being taken for a failure to shrink."""


def _wanted(cls: str, patterns) -> bool:
    import fnmatch
    return not patterns or any(fnmatch.fnmatchcase(cls, p) for p in patterns)


def class_id(cls: str) -> str:
    return hashlib.sha256(cls.encode()).hexdigest()[:12]


def _worker(cfg: Config, j: int, q) -> None:
    from hypothesis import HealthCheck, Verbosity, given, seed, settings

    from difftest.fuzz import runner as R
    from difftest.fuzz import scenario as S
    from difftest.fuzz import shrink as SH
    from difftest.fuzz import strategies as F
    out = Path(cfg.out)
    work = out / "work" / f"w{j}"
    claims = out / "claims"
    claims.mkdir(parents=True, exist_ok=True)
    t_end = time.monotonic() + cfg.seconds if cfg.seconds else None
    quota = -(-cfg.count // cfg.jobs) if cfg.count else None
    done = [0, 0]                          # scenarios, batches

    def over() -> bool:
        return (t_end is not None and time.monotonic() >= t_end) or (quota is not None and done[0] >= quota)

    def run(b):
        done[1] += 1
        d = work / f"b{done[1]}"
        try:
            r = R.run_batch(b, backends=cfg.backends, out_dir=d)
            cov = [list(t) for t in R.coverage_of(r.model_trace)] if r.model_trace else []
        except Exception as e:        # a broken batch is reported, never the end of the search
            q.put(("error", j, f"{type(e).__name__}: {e}", traceback.format_exc(limit=3)))
            shutil.rmtree(d, ignore_errors=True)
            return
        done[0] += len(b)
        fl = []
        for f in r.findings:
            rec = asdict(f)
            rec["fingerprint"] = f.fingerprint
            if f.scenario is not None:
                rec["scenario_json"] = b[f.scenario]
            fl.append(rec)
        q.put(("batch", j, {"scenarios": len(b), "probes": sum(len(S.probes(s)) for s in b), "status": r.status,
                            "seconds": r.seconds, "steps": r.steps, "stale": r.stale, "errors": r.errors,
                            "modes": [b[0]["hgatp"], b[0]["vs"]], "timing": r.timing, "findings": fl,
                            "coverage": cov}))
        for f in r.findings:
            if f.scenario is None or f.secondary or not cfg.shrink or not _wanted(f.cls, cfg.shrink_only):
                continue
            try:
                fd = os.open(claims / class_id(f.cls), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                continue
            os.close(fd)
            to_shrink.append((f.cls, b[f.scenario], f.op))
        # traces are large and the reports hold what a person reads: keep those of batches with findings
        for p in d.glob("*.trace.jsonl.gz"):
            p.unlink()
        if not r.findings:
            shutil.rmtree(d, ignore_errors=True)

    # Hypothesis draws one scenario per example (it mutates earlier examples: as single scenarios ~92%
    # of them are new, as whole batches a tenth); new ones queue per starting mode pair and a full queue
    # is one guest run -- the runs are what costs (each ~2 s of fixed QEMU and start-up work)
    seen: set[str] = set()
    queues: dict[tuple, list] = {}
    to_shrink: list[tuple[str, dict, int]] = []      # classes this worker claimed first, shrunk after the search

    def one(b):
        if over():
            raise _Stop()
        key = json.dumps(b[0], sort_keys=True)
        if key in seen:
            return
        seen.add(key)
        qq = queues.setdefault((b[0]["hgatp"], b[0]["vs"]), [])
        qq.append(b[0])
        want = cfg.batch if quota is None else min(cfg.batch, quota - done[0])
        if len(qq) >= want:
            queues[(b[0]["hgatp"], b[0]["vs"])] = []
            run(qq)

    test = given(F.batch(1, cfg.modes, cfg.max_ops))(one)
    test = settings(max_examples=10**9, database=None, deadline=None, verbosity=Verbosity.quiet,
                    suppress_health_check=list(HealthCheck), print_blob=False)(test)
    test = seed(cfg.seed + j)(test)
    try:
        test()
    except _Stop:
        pass
    except Exception as e:
        q.put(("error", j, f"{type(e).__name__}: {e}", traceback.format_exc(limit=5)))
    if quota is not None:                     # --count: the scenarios still queued run too
        for qq in queues.values():
            if qq and done[0] < quota:
                run(qq[:quota - done[0]])
    import resource
    # CPU seconds of the search (this worker, its model threads and its QEMUs): the machine may be
    # shared, and scenarios per CPU-second is the figure that does not depend on who else runs
    cpu = sum(getattr(resource.getrusage(w), f) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
              for f in ("ru_utime", "ru_stime"))
    q.put(("searched", j, done[0], cpu))
    # Shrinking comes after the search (--time is the search's), each class by the worker that
    # claimed it, so a run's scenario count does not depend on how many classes it found
    for cls, sc, op in to_shrink:
        t0 = time.monotonic()
        try:
            m, runs = SH.shrink(sc, cls, backends=cfg.backends, work=work / "shrink", budget=cfg.shrink_budget,
                               op=op)
        except Exception as e:
            q.put(("error", j, f"shrinking {cls}: {type(e).__name__}: {e}", traceback.format_exc(limit=5)))
            continue
        q.put(("shrunk", j, {"cls": cls, "scenario": m or sc, "shrunk": m is not None, "runs": runs,
                             "seconds": round(time.monotonic() - t0, 1), "original_ops": len(sc["ops"])}))
    q.put(("done", j, done[0]))


def fuzz(cfg: Config, progress=None) -> dict:
    """Run the search; return the summary (also written to <out>/summary.json)."""
    from difftest import known as K
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    from difftest.fuzz import runner as R
    R.interp_elf()                                 # build once, before the workers race for it
    t0 = time.monotonic()
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(cfg, j, q), daemon=True) for j in range(cfg.jobs)]
    for p in procs:
        p.start()
    st = {"scenarios": 0, "probes": 0, "batches": 0, "steps": 0, "stale": 0, "run_seconds": 0.0,
          "modes": {}, "errors": [], "classes": {}, "shrunk": {}, "coverage": set(), "search_seconds": None,
          "cpu_seconds": 0.0}
    running = searching = len(procs)
    try:
        while running:
            try:
                ev = q.get(timeout=5)
            except Exception:
                if not any(p.is_alive() for p in procs):
                    break
                continue
            kind = ev[0]
            if kind == "done":
                running -= 1
            elif kind == "searched":
                searching -= 1
                st["cpu_seconds"] += ev[3]
                if not searching:
                    st["search_seconds"] = time.monotonic() - t0
            elif kind == "error":
                st["errors"].append(ev[2])
            elif kind == "batch":
                b = ev[2]
                st["scenarios"] += b["scenarios"]
                st["probes"] += b["probes"]
                st["batches"] += 1
                st["steps"] += b["steps"]
                st["stale"] += b["stale"]
                st["run_seconds"] += b["seconds"]
                key = "/".join(b["modes"])
                st["modes"][key] = st["modes"].get(key, 0) + b["scenarios"]
                st["errors"] += b["errors"]
                st["coverage"] |= {tuple(c) for c in b["coverage"]}
                for f in b["findings"]:
                    c = st["classes"].setdefault(f["cls"], {"cls": f["cls"], "what": f["what"], "pair": f["pair"],
                                                            "kind": f["kind"], "count": 0, "primary": 0,
                                                            "fingerprint": f["fingerprint"],
                                                            "example": f.get("scenario_json"),
                                                            "report": f["report"], "summary": f["summary"]})
                    c["count"] += 1
                    c["primary"] += not f["secondary"]
                    if not f["secondary"] and c["example"] is None:
                        c["example"] = f.get("scenario_json")
            elif kind == "shrunk":
                s = ev[2]
                st["shrunk"][s["cls"]] = s
            if progress and searching:
                el = time.monotonic() - t0
                progress(f"{st['scenarios']} scenarios in {el:.0f} s ({st['scenarios'] / max(el, 1e-9):.2f}/s), "
                         f"{st['batches']} runs, {len(st['classes'])} finding classes, {len(st['shrunk'])} shrunk")
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.terminate()
    elapsed = time.monotonic() - t0
    return summarise(cfg, st, elapsed, K)


def summarise(cfg: Config, st: dict, elapsed: float, K) -> dict:
    from difftest.fuzz import scenario as S
    from difftest.fuzz.report import classify, resembles, write_html
    from difftest.fuzz.report import load_known
    try:
        known = load_known()
    except K.KnownError as e:
        known, st["errors"] = [], st["errors"] + [str(e)]
    corpus = Path(cfg.corpus)
    findings = []
    for cls, c in sorted(st["classes"].items()):
        entry = classify(c["what"], c["pair"], known)
        rec = dict(c, known=entry, status="known" if entry else "new" if c["primary"] else "follows",
                   resembles=None if entry else resembles(c["what"], c["pair"], known))
        s = st["shrunk"].get(cls)
        if s is not None:
            corpus.mkdir(parents=True, exist_ok=True)
            path = corpus / f"{class_id(cls)}.json"
            sc = dict(s["scenario"])
            path.write_text(S.dumps(sc))
            (corpus / f"{class_id(cls)}.finding").write_text(cls + "\n")
            rec.update(corpus=str(path), shrunk_ops=len(sc["ops"]), shrunk=s["shrunk"], shrink_runs=s["runs"],
                       shrink_seconds=s["seconds"], original_ops=s["original_ops"],
                       replay=f"difftest fuzz --replay {path} --backend {','.join(cfg.backends)}")
        findings.append(rec)
    cov = st.pop("coverage")
    search_s = st["search_seconds"] or elapsed
    from difftest import coverage as C
    summary = {"seed": cfg.seed, "backends": cfg.backends, "jobs": cfg.jobs, "batch": cfg.batch,
               "seconds": round(elapsed, 1), "search_seconds": round(search_s, 1),
               "shrink_seconds": round(elapsed - search_s, 1), "scenarios": st["scenarios"], "probes": st["probes"],
               "runs": st["batches"], "scenarios_per_second": round(st["scenarios"] / max(search_s, 1e-9), 2),
               "search_cpu_seconds": round(st["cpu_seconds"], 1),
               "scenarios_per_cpu_second": round(st["scenarios"] / max(st["cpu_seconds"], 1e-9), 2),
               "steps": st["steps"], "accepted_stale": st["stale"], "modes": st["modes"],
               "errors": st["errors"][:50], "findings": findings,
               "new": sum(1 for f in findings if f["status"] == "new"),
               "known": sum(1 for f in findings if f["status"] == "known"),
               "follows": sum(1 for f in findings if f["status"] == "follows"),
               "coverage": C.summarise_reached(cov),
               "reached": sorted((list(t) for t in cov), key=C.fmt)}
    if cfg.out:
        out = Path(cfg.out)
        (out / "summary.json").write_text(json.dumps(summary, indent=1))
        write_html(summary, out / "report.html")
    return summary


# ---------------------------------------------------------------------------------------- nightly hook
NIGHTLY_SEEDS = (1, 2, 3)


def replay_corpus(corpus: Path = CORPUS, out: Path | None = None) -> list[dict]:
    """Run every saved minimal scenario on the QEMU its .finding names (and the model): each still
    showing its class is a QEMU bug still there; one that stopped is fixed (or the model changed)."""
    import tempfile

    from difftest.fuzz import runner as R
    from difftest.fuzz import scenario as S
    rows = []
    for path in sorted(Path(corpus).glob("*.json")):
        rec = path.with_suffix(".finding")
        cls = rec.read_text().strip() if rec.is_file() else ""
        qemu = cls.rsplit("|", 1)[-1].split("~")[0] if cls else "qemu-10.0"
        try:
            s = S.load(path)
        except S.ScenarioError as e:
            rows.append({"scenario": str(path), "class": cls, "status": "error", "message": str(e)})
            continue
        d = Path(out or tempfile.mkdtemp(prefix="fuzz-corpus-")) / path.stem
        r = R.run_batch([s], backends=[qemu, "model"], out_dir=d)
        got = sorted({f.cls for f in r.findings})
        rows.append({"scenario": str(path), "class": cls, "status": "reproduced" if cls in got else
                     ("error" if r.errors else "gone"), "classes": got, "errors": r.errors})
    return rows


def nightly(out: Path, *, rolling_seed: int | None = None, seconds: float = 300, jobs: int = 2,
            backends=("qemu-10.0", "model"), shrink_budget: float = 120) -> dict:
    """What the nightly calls: the fixed seeds (the same scenarios every night: a regression in QEMU or
    the model shows as a new class) and one rolling seed (default: today's date, new ground every night),
    ``seconds`` of search each, minimal scenarios into <out>/corpus (reviewed before they join
    guests/fuzz_interp/corpus), and the committed corpus replayed.  ``new`` > 0 means a red night."""
    out = Path(out)
    seeds = list(NIGHTLY_SEEDS) + [rolling_seed if rolling_seed is not None else int(time.strftime("%Y%m%d"))]
    runs = []
    for s in seeds:
        cfg = Config(seed=s, seconds=seconds, backends=list(backends), jobs=jobs, out=str(out / f"seed-{s}"),
                     corpus=str(out / "corpus"), shrink_budget=shrink_budget)
        runs.append(fuzz(cfg))
    corpus = replay_corpus(CORPUS, out / "corpus-replay")
    new = {f["cls"]: f for r in runs for f in r["findings"] if f["status"] == "new"}
    summary = {"seeds": seeds, "scenarios": sum(r["scenarios"] for r in runs), "new": len(new),
               "new_classes": sorted(new), "corpus": corpus,
               "corpus_gone": [c["scenario"] for c in corpus if c["status"] == "gone"],
               "runs": [{k: r[k] for k in ("seed", "scenarios", "search_seconds", "new", "known", "coverage")}
                        for r in runs]}
    (out / "fuzz-nightly.json").write_text(json.dumps(summary, indent=1))
    return summary
