"""Run a batch of fuzz scenarios through the differential engine and say which operation each finding
belongs to.

One batch = one copy of guests/fuzz_interp carrying K scenarios that share their starting HGATP x VS
modes (the case's modes, which coverage and the report name), run by ``difftest.engine.run_case`` on
every backend.  The oracle is that comparison -- no expected values: the model's profile decides the
implementation's choices (A/D update or fault, htinst, ...) and its stale-TLB bookkeeping
(``maybe_stale``, the comparator's ``accepted-stale``) what an unfenced rewrite may legally give, so a
difference the spec allows is not reported.  Probe ids are numbered through the batch (1, 2, ...), so
a finding's probe names its scenario and operation.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from difftest.fuzz import scenario as S

GUEST = "fuzz_interp"


@dataclass
class FuzzFinding:
    cls: str                    # "what|a~b": the class findings are deduplicated and shrunk by
    what: str
    pair: str
    kind: str
    scenario: int | None        # index in the batch (None: outside every scenario's operations)
    op: int | None              # index into that scenario's ops
    summary: str = ""
    report: str = ""            # the pair's HTML report
    # an earlier operation of the same scenario differed already on this pair: this one may only follow
    # from it (a store one side did and the other faulted on, read back later) -- a class seen only
    # this way is reported as "follows", never as new, and is not shrunk (its cause is)
    secondary: bool = False

    @property
    def fingerprint(self) -> str:
        return f"{GUEST}|{self.what}|{self.pair}"


@dataclass
class BatchResult:
    status: str                 # match | mismatch | accepted-stale | error
    findings: list[FuzzFinding] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    steps: int = 0
    stale: int = 0              # permitted stale translations the comparator accepted
    model_trace: str | None = None
    case_dir: str = ""
    timing: dict = field(default_factory=dict)   # seconds per backend run and per comparison


def interp_elf() -> Path:
    from difftest import guests as G
    return G.build(GUEST)


def probe_index(batch: list[dict]) -> dict[str, tuple[int, int]]:
    """probe id (as findings name it) -> (scenario index, op index)."""
    out, pid = {}, 0
    for si, s in enumerate(batch):
        for oi in S.probes(s):
            pid += 1
            out[str(pid)] = (si, oi)
    return out


def run_batch(batch: list[dict], *, backends: list[str], out_dir: Path, timeout: float = 300,
              max_steps: int = 4_000_000, keep: bool = False) -> BatchResult:
    """Run ``batch`` (same starting modes) on ``backends``; ``keep``: leave the traces for coverage."""
    from difftest import engine
    t0 = time.monotonic()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    elf = S.patch(interp_elf(), batch, out_dir)
    try:
        # the log trace source: the fuzz classes (guests/fuzz_interp/known-fuzz.toml, the corpus's .finding
        # files) were reviewed as it names them (the plugin source sees a fault it cannot show as the trap)
        case = engine.run_case(elf, hgatp_mode=batch[0]["hgatp"], vs_mode=batch[0]["vs"], backends=backends,
                               out_dir=out_dir, timeout=timeout, max_steps=max_steps, use_cache=False,
                               qemu_trace="log")
    finally:
        try:
            os.unlink(elf)
        except OSError:
            pass
    index = probe_index(batch)
    res = BatchResult(case.status, case_dir=str(out_dir), timing={**case.seconds, **case.compare_seconds})
    for p in case.pairs:
        res.steps = max(res.steps, p.steps_run or 0)
        res.stale += getattr(p, "accepted_stale", 0) or 0
        if p.status == "error":
            res.errors.append(f"{p.a}~{p.b}: {p.summary}")
            continue
        for f in p.findings:
            si, oi = index.get(f.probe, (None, None))
            res.findings.append(FuzzFinding(f"{f.what}|{f.a}~{f.b}", f.what, f"{f.a}~{f.b}", f.kind, si, oi,
                                            f.summary, (p.report or {}).get("html", "")))
    first: dict = {}
    for f in res.findings:
        if f.scenario is not None:
            k = (f.scenario, f.pair)
            first[k] = min(first.get(k, f.op), f.op)
    for f in res.findings:
        f.secondary = f.scenario is not None and f.op > first[(f.scenario, f.pair)]
    for f in case.findings:          # the interpreter failing on the model (a malformed block): never ok
        res.findings.append(FuzzFinding(f"{f.what}|{f.a}~{f.b}", f.what, f"{f.a}~{f.b}", f.kind, None, None,
                                        f.summary))
    for name, r in case.runs.items():
        if r.footer is not None and r.footer.status == "exit" and r.footer.exit_code == 2:
            res.errors.append(f"{name}: the interpreter rejected the block: "
                              f"{(r.footer.uart or '').strip().splitlines()[-1:]}")
        if engine.is_model(name) and r.trace_path:
            res.model_trace = r.trace_path
    res.seconds = round(time.monotonic() - t0, 2)
    return res


def coverage_of(trace_path) -> set[tuple]:
    """The translation situations (difftest.coverage) a model trace reached."""
    from difftest import coverage
    return coverage.reached_in(trace_path)
