"""Comparison of two traces, step by step and to their ends (ARCHITECTURE sections 7, 7a).

Both traces are streamed in lock-step; only a small window of preceding steps
is kept for the report.  The rules for one step pair are in difftest.compare_step;
after a divergence both runs skip to the next probe mark they share
(difftest.marks) and the comparison goes on, so every probe's difference becomes
a finding (difftest.findings).  What is compared depends on what *both* headers
expose (``Header.exposes``); everything else is listed in ``not_compared``,
so a green result says exactly what it vouches for.

Kinds of divergence, in the order they are checked at each step:

* ``control-flow`` -- pc, instruction bits, privilege level and V differ.
* ``first-stage`` / ``second-stage`` -- a translation differs, or one side
  faulted on a translation and the other did not.  The stage is the one that
  decided: VS-stage (or single-stage satp, V=0) is first-stage, G-stage is
  second-stage (Priv. 20240411, 9.5 Two-stage address translation).
* ``trap`` -- both took a trap but cause/epc/tval/htval/tinst/GVA/target differ
  (or one trapped and no translation explains it).
* ``output`` -- UART output differs.
* ``exit`` -- one run ended earlier, or the exit codes differ.

Stale translations the spec permits until the guest fences are accepted and
counted (difftest.compare_step).
"""
from __future__ import annotations

import collections
import os
from dataclasses import dataclass, field
from typing import Iterable, Iterator

from difftest import findings as F
from difftest.compare_step import Ctx, Mismatch, StaleStop, _exposes, cmp_step, show, what_of
from difftest.marks import Marks
from difftest.trace import (EXPOSABLE, Footer, Header, Step, TraceError, TraceReader, Xlat)

WINDOW = 8          # preceding steps kept for the report

KINDS = ("control-flow", "trap", "first-stage", "second-stage", "output", "exit", "error")

ERROR_STATUSES = {"timeout", "crash", "error"}


@dataclass
class PairResult:
    """One backend pair on one case (ARCHITECTURE section 7)."""
    a: str
    b: str
    status: str                      # "match" | "mismatch" | "error" | "accepted-stale"
    kind: str | None = None
    step: int | None = None
    pc: int | None = None
    summary: str = ""
    compared: list[str] = field(default_factory=list)
    not_compared: list[str] = field(default_factory=list)
    fingerprint: str | None = None
    report: dict[str, str] = field(default_factory=dict)
    # additions (defaulted, so the section-7 contract is unchanged for users)
    steps_compared: int = 0
    accepted_stale: int = 0          # translations accepted as permitted-stale
    xlats_compared: int = 0          # translation pairs checked
    xlats_unmatched: int = 0         # logged translations with no counterpart at that step
    trap_csr: list[dict] = field(default_factory=list)   # trap-entry CSR differences (difftest.trap_csr)
    findings: list = field(default_factory=list)         # difftest.findings.Finding, one per probe
    steps_run: int = 0               # the longer run's steps
    steps_skipped: tuple = (0, 0)    # steps of a, b not compared (between a divergence and the next shared mark)
    steps_printing: tuple = (0, 0)   # of those not compared: printing a probe's P/X lines after its outcome
                                     # differed (the lines themselves are compared as console text)
    resyncs: int = 0                 # times the comparison re-synchronised at a probe mark
    sled: bool = False               # the guest had probe marks (else no resynchronisation was possible)


@dataclass
class Divergence:
    """Everything a report needs about the first divergent step."""
    kind: str
    step: int | None
    field: str                      # what differed, e.g. "pc", "trap.cause", "xlat.pa"
    value_a: object = None
    value_b: object = None
    explanation: str = ""
    window: list[tuple[Step | None, Step | None]] = field(default_factory=list)   # preceding, oldest first
    step_a: Step | None = None
    step_b: Step | None = None
    xlat_a: Xlat | None = None
    xlat_b: Xlat | None = None
    header_a: Header | None = None
    header_b: Header | None = None
    footer_a: Footer | None = None
    footer_b: Footer | None = None


class _Source:
    """A trace given as a path, a TraceReader, or (header, steps, footer)."""

    def __init__(self, t):
        if isinstance(t, (str, os.PathLike)):
            t = TraceReader(t)
        if isinstance(t, TraceReader):
            self._reader = t
            self.header = t.header
            self._steps = t.steps()
            self._footer = None
        else:
            header, steps, footer = t
            self._reader = None
            self.header = header
            self._steps = iter(steps)
            self._footer = footer

    def steps(self) -> Iterator[Step]:
        return self._steps

    @property
    def footer(self) -> Footer:
        if self._reader is not None:
            return self._reader.footer or Footer(status="error", message="trace not read to the end", truncated=True)
        f = self._footer
        return f() if callable(f) else f


def _name(h: Header) -> str:
    return h.backend


def what_is_compared(ha: Header, hb: Header) -> tuple[list[str], list[str]]:
    """The ``compared`` and ``not_compared`` lists for two headers."""
    compared = ["pc", "trap.cause", "trap.epc", "exit", "console output (whole run)"]
    not_compared = []
    for key in EXPOSABLE:
        ea, eb = _exposes(ha, key), _exposes(hb, key)
        if key == "regs":
            continue
        if key == "uart":
            if not (ea and eb):
                missing = [_name(h) for h, e in ((ha, ea), (hb, eb)) if not e]
                not_compared.append(f"uart per step (not shown by {', '.join(missing)}; the whole output is compared)")
            else:
                compared.append("uart per step")
            continue                         # only in bisect windows
        if key == "xlat.all":
            if ea and eb:
                compared.append("xlat.all (every translation, in order)")
            elif ea or eb:
                other = hb if ea else ha
                if _exposes(other, "xlat.access"):
                    compared.append(f"xlat (every explicit access {_name(other)} made, its physical address against "
                                    f"the model's translation at that step, and every model access it did not make)")
                    not_compared.append(f"fetch translations and GPAs (not shown by {_name(other)})")
                else:
                    compared.append(f"xlat (each translation {_name(other)} logged, against the model's answer at that step)")
                    not_compared.append(f"translations {_name(other)} did not log (TLB hits)")
            else:
                compared.append("xlat (fills both sides logged at the same step)")
                not_compared.append("translations only one side logged, and TLB hits")
            continue
        if ea and eb:
            compared.append(key)
        else:
            missing = [_name(h) for h, e in ((ha, ea), (hb, eb)) if not e]
            not_compared.append(f"{key} (not shown by {', '.join(missing)})")
    return compared, not_compared


def _first_diff(a: str, b: str) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def _canonical(name: str, h: Header, other: Header) -> str:
    """A model run named by the QEMU whose profile it ran with (findings module docstring); the
    CPU variant (a profile like qemu-10.0-sv39) is an attribute of the case, as the modes are."""
    if name == "model" and not other.backend.startswith("model"):
        return f"model@{other.backend}"
    return name


class _Pass:
    """The state of one comparison and the two things both paths share: one step pair's rules with
    what a divergence records (``pair``), and the ending (``finish``).  The step-by-step loop
    (``_compare_steps``) and the bulk pass over columns (difftest.compare_bulk) drive it, so they
    cannot differ in what a compared step pair means."""

    def __init__(self, ha: Header, hb: Header, guest, sled, window=None, history=None):
        self.ha, self.hb = ha, hb
        self.marks = Marks(sled)
        self.compared, self.not_compared = what_is_compared(ha, hb)
        self.both = {k for k in EXPOSABLE if _exposes(ha, k) and _exposes(hb, k)}
        self.window = window if window is not None else collections.deque(maxlen=WINDOW)
        self.ctx = Ctx(ha, hb, self.both, window=self.window, guest=guest or ha.guest)
        if history is not None:
            self.ctx.history = history
            self.ctx.history_any = history.any_view()
        self.n = 0                                # step pairs compared
        self.first: Divergence | None = None
        self.probes: dict[str, F.ProbeDiff] = {}
        self.seg = F.SETUP
        self.resyncs = 0
        self.stale_parts = 0
        self.region_print = False                 # the last shared mark was a print mark
        self.printing = {"a": 0, "b": 0}          # skipped steps that printed a probe's P/X lines

    def pair(self, sa: Step, sb: Step) -> bool:
        """Compare one step pair: True when they agree (the comparison goes on in step), False
        after a divergence was recorded (the caller re-synchronises at the next shared mark)."""
        marks, ctx = self.marks, self.ctx
        ma = marks.of(sa.pc)
        if ma is not None and ma == marks.of(sb.pc):
            self.region_print = ma[0] == Marks.PRINT
            if ma[0] == Marks.START:
                self.seg = Marks.seg(ma)
                ctx.seg = self.seg
        try:
            cmp_step(ctx, sa, sb)
            self.window.append((sa, sb))
            self.n += 1
            return True
        except Mismatch as m:
            ha, hb, both = self.ha, self.hb, self.both
            why = m.explanation
            hidden = [k.split(".")[1] for k in ("trap.htval", "trap.tinst", "trap.gva", "trap.tval")
                      if k not in both]
            if m.kind == "control-flow" and ctx.last_trap and hidden and self.first is None:
                why += (f" (note: the trap at step {ctx.last_trap[0]}, cause {ctx.last_trap[1]}, wrote "
                        f"{'/'.join(hidden)}, which were not compared; a guest that reads them diverges later)")
            summ = (f"{m.kind} mismatch at step {sa.i} pc={show(sa.pc)}: {why}: {m.field} "
                    f"{_name(ha)}={show(m.va)} {_name(hb)}={show(m.vb)}")
            pdiff = self.probes.setdefault(self.seg, F.ProbeDiff())
            entry = (m.kind, what_of(m), sa.i, sb.i, sa.pc, summ)
            if pdiff.hard is None:
                pdiff.hard = entry
            else:
                pdiff.extra.append((entry[1], entry))
            if self.first is None:
                self.first = Divergence(m.kind, sa.i, m.field, m.va, m.vb, why, list(self.window), sa, sb, m.xa, m.xb)
            self.n += 1                           # compared: it is where the difference was found
        except StaleStop:
            self.n += 1
            self.stale_parts += 1
        self.window.clear()
        return False

    def finish(self, run_a: int, run_b: int, desynced_at_end: bool, fa: Footer, fb: Footer,
               uart_steps) -> tuple[PairResult, Divergence | None]:
        """The result once both runs are read to their ends.  ``uart_steps()`` -> {"a": [(offset,
        step)], "b": ...}: where each side's per-step console bytes begin (asked only for an
        output-only difference)."""
        ha, hb, ctx, n, first, probes = self.ha, self.hb, self.ctx, self.n, self.first, self.probes
        window, printing, marks = self.window, self.printing, self.marks
        not_compared = self.not_compared + _trap_detail_gaps(ha, fa) + _trap_detail_gaps(hb, fb)
        ctx.trap_csr.to_probes(probes)
        can_a, can_b = _canonical(_name(ha), ha, hb), _canonical(_name(hb), hb, ha)
        # A run that stopped early (crash, timeout, truncated log, step limit) is an error of that
        # backend, never a finding and never a green result: what did not run was not compared.
        err_side = [(h, f) for h, f in ((ha, fa), (hb, fb))
                    if f.status in ERROR_STATUSES or f.truncated or f.status == "step-limit"]
        both_exit = fa.status == fb.status == "exit"
        findings = F.assemble(ctx.guest, can_a, can_b, probes,
                              fa.uart if both_exit else None, fb.uart if both_exit else None,
                              (fa.status, fa.exit_code), (fb.status, fb.exit_code)) if not err_side else \
            F.assemble(ctx.guest, can_a, can_b, probes, None, None, ("-", None), ("-", None))
        if not err_side and both_exit and not findings and run_a != run_b and not desynced_at_end:
            # every compared step agreed but one run went on: a finding of how the runs ended
            what = f"exit length {run_a}~{run_b}"
            findings.append(F.Finding(F.DONE, what, "exit", can_a, can_b,
                                      F.fingerprint(ctx.guest, F.DONE, what, can_a, can_b), step=n,
                                      summary=f"{_name(ha)} ended after {run_a} steps, {_name(hb)} after {run_b}"))
        res = PairResult(_name(ha), _name(hb), "match", None, None, None, "", self.compared, not_compared)
        res.findings = findings
        res.steps_run = max(run_a, run_b)
        res.steps_printing = (printing["a"], printing["b"])
        res.steps_skipped = (run_a - n - printing["a"], run_b - n - printing["b"])
        res.resyncs = self.resyncs
        res.sled = bool(marks.n)
        if err_side:
            h, f = err_side[0]
            res.status, res.kind, res.step = "error", "error", n
            res.summary = (f"{_name(h)} did not finish: {f.status}" + (f" ({f.message})" if f.message else "")
                           + f"; {n} steps compared" + (f", {len(findings)} finding(s) before it" if findings else ""))
            res.fingerprint = f"{ctx.guest}|-|error {f.status}|{can_a}~{can_b}"
            div = first or Divergence("error", n, "footer.status", fa.status, fb.status, res.summary,
                                      list(window), None, None)
            div.header_a, div.header_b, div.footer_a, div.footer_b = ha, hb, fa, fb
            return _finish(res, ctx, n), div
        if not findings:
            res.status = "accepted-stale" if ctx.stale or self.stale_parts else "match"
            res.summary = f"match: {n} steps compared of {res.steps_run}, {ctx.xl_cmp} translations compared"
            if res.status == "accepted-stale":
                res.summary = (f"accepted-stale: {n} steps agree; {ctx.stale + self.stale_parts} difference(s) are "
                               f"stale translations the spec permits until the guest fences (Priv. 10.3.2 / 9.3.2)")
                if self.stale_parts:
                    res.summary += ("; where the runs parted on one, the comparison stopped there until the next "
                                    "probe mark")
            return _finish(res, ctx, n), None
        f0 = findings[0]
        if first is None:
            # console-only or trap-entry-CSR-only findings: the report opens on the first of them
            if ctx.trap_csr.first is not None:
                step, pc, fld, va, vb, win = ctx.trap_csr.first
                sa_, sb_ = win[-1]
                first = Divergence("trap-csr", step, f"trap.{fld}", va, vb,
                                   f"trap {sa_.trap.cause}: {fld} differs (the runs agree on every other value)",
                                   win[:-1], sa_, sb_)
            elif f0.kind == "exit":
                first = Divergence("exit", n, "exit", f"{fa.status} {fa.exit_code}", f"{fb.status} {fb.exit_code}",
                                   f0.summary, [], None, None)
            else:
                off = _first_diff(fa.uart, fb.uart)
                st = None
                us = uart_steps()
                for tag in ("a", "b"):
                    for o, i in us[tag]:
                        if o <= off:
                            st = i
                first = Divergence("output", st, "uart", fa.uart[max(0, off - 40):off + 40],
                                   fb.uart[max(0, off - 40):off + 40], f"console output differs at byte {off}",
                                   [], None, None)
        first.header_a, first.header_b, first.footer_a, first.footer_b = ha, hb, fa, fb
        res.status, res.kind, res.pc = "mismatch", f0.kind, f0.pc
        res.step = f0.step if f0.step is not None else first.step
        res.fingerprint = f0.fingerprint
        res.summary = (f"{len(findings)} finding(s) in {len(findings)} probe(s); first: probe {f0.probe}: "
                       f"{f0.what} ({f0.summary})")
        return _finish(res, ctx, n), first


def compare_full(trace_a, trace_b, *, guest: str | None = None, sled=None,
                 bulk: bool = True) -> tuple[PairResult, Divergence | None]:
    """Compare two traces to their ends; returns the result and, unless they match, the first
    divergence (for the report).  ``sled`` = (address, count) of the guest's probe marks
    (``config_block.probe_sled``): after a divergence both sides skip to the next probe mark they
    share and the comparison goes on, so every probe's difference becomes a finding
    (difftest.findings); without marks the comparison cannot resynchronise and the rest of the run
    is counted as skipped.  Two binary traces are compared in bulk on their columns
    (difftest.compare_bulk: the same results, Step objects only where a step needs a closer look);
    ``bulk=False``, JSON-lines traces and in-memory steps go step by step."""
    try:
        A, B = _Source(trace_a), _Source(trace_b)
    except TraceError as e:
        return PairResult(a="?", b="?", status="error", kind="error", summary=str(e)), None
    sled = sled or (A.header.extra or {}).get("probe_sled") or (B.header.extra or {}).get("probe_sled")
    if bulk and hasattr(A._reader, "chunk") and hasattr(B._reader, "chunk"):
        from difftest.compare_bulk import compare_columns
        try:
            return compare_columns(A._reader, B._reader, guest=guest, sled=sled)
        except TraceError as e:      # a chunk that fails its checks when decoded: nothing is trusted
            return PairResult(a=A.header.backend, b=B.header.backend, status="error", kind="error",
                              summary=str(e)), None
    return _compare_steps(A, B, guest, sled)


def _compare_steps(A: _Source, B: _Source, guest, sled) -> tuple[PairResult, Divergence | None]:
    """The step-by-step comparison (both traces streamed in lock-step)."""
    P = _Pass(A.header, B.header, guest, sled)
    marks = P.marks
    uart_steps = {"a": [], "b": []}          # (offset, step) where per-step uart begins
    uart_len = {"a": 0, "b": 0}
    run = {"a": 0, "b": 0}                    # steps seen on each side
    it_a, it_b = A.steps(), B.steps()
    pending = None
    printing = P.printing

    def pull(it, tag):
        s = next(it, None)
        if s is not None:
            run[tag] += 1
            if s.uart:
                uart_steps[tag].append((uart_len[tag], s.i))
                uart_len[tag] += len(s.uart)
        return s

    def to_mark(it, tag, s, in_print):
        """Advance one side to its next start/print/end mark (s itself if it is one); the steps
        passed after a print mark (or an rt_fail mark) printed lines that the console comparison
        checks."""
        while s is not None:
            m = marks.of(s.pc)
            if m is not None and m[0] in (Marks.START, Marks.PRINT, Marks.END):
                return s
            if m is not None:
                in_print = m[0] == Marks.FAIL
            if in_print:
                printing[tag] += 1
            s = pull(it, tag)
        return s

    desynced_at_end = False
    while True:
        if pending is not None:
            sa, sb = pending
            pending = None
        else:
            sa, sb = pull(it_a, "a"), pull(it_b, "b")
        if sa is None or sb is None:
            break
        if P.pair(sa, sb):
            continue
        # resynchronise: both sides to the next probe mark they share (probe ids ascend in a run;
        # a side whose mark is behind the other's goes on to its next one)
        sa = to_mark(it_a, "a", pull(it_a, "a"), P.region_print)
        sb = to_mark(it_b, "b", pull(it_b, "b"), P.region_print)
        while sa is not None and sb is not None and marks.of(sa.pc) != marks.of(sb.pc):
            if Marks.order(marks.of(sa.pc)) < Marks.order(marks.of(sb.pc)):
                sa = to_mark(it_a, "a", pull(it_a, "a"), False)
            else:
                sb = to_mark(it_b, "b", pull(it_b, "b"), False)
        if sa is None or sb is None:
            desynced_at_end = True
            break
        P.resyncs += 1
        pending = (sa, sb)
    # what remains of either side was not compared
    for it, tag in ((it_a, "a"), (it_b, "b")):      # (counted in run, so in steps_skipped)
        while pull(it, tag) is not None:
            pass
    return P.finish(run["a"], run["b"], desynced_at_end, A.footer, B.footer, lambda: uart_steps)


def _trap_detail_gaps(h: Header, f: Footer) -> list[str]:
    """What a QEMU trace's trap-detail pass could not show (backends/trap_detail.py): traps whose
    handler-entry dump or gdbstub read did not match, which keep None and are skipped."""
    td = (f.extra or {}).get("trap_detail") if f is not None else None
    if not td:
        return []
    out = []
    if td.get("matched", 0) < td.get("traps", 0):
        out.append(f"htval/GVA/target of {td['traps'] - td['matched']} of {td['traps']} {_name(h)} traps "
                   f"(no handler-entry dump matched)")
    if td.get("message"):
        out.append(f"{_name(h)}: {td['message']}")
    return out


def _finish(res: PairResult, ctx: Ctx, n: int) -> PairResult:
    res.trap_csr = ctx.trap_csr.finish(ctx.guest, ctx.ha.hgatp_mode, ctx.ha.vs_mode, res.a, res.b)
    res.steps_compared = n
    res.accepted_stale = ctx.stale
    res.xlats_compared = ctx.xl_cmp
    res.xlats_unmatched = ctx.xl_unmatched
    if ctx.xl_unmatched:
        res.not_compared = res.not_compared + [
            f"{ctx.xl_unmatched} logged translation(s) with no model translation of that page at the same step"]
    return res


def compare(trace_a, trace_b, *, guest: str | None = None) -> PairResult:
    return compare_full(trace_a, trace_b, guest=guest)[0]


def fingerprint(guest, hgatp, vs, a, b, kind, pc) -> str:
    """Stable identity of a finding: no step number, so it survives guest edits before it."""
    return f"{guest}|{hgatp}|{vs}|{a}~{b}|{kind}|{show(pc)}"


# ---------------------------------------------------------------------------
# N-way

def odd_one_out(names: list[str], pairs: list[PairResult]) -> str | None:
    """The backend that disagrees with every other while all others agree among themselves."""
    if len(names) < 3:
        return None
    bad = {(p.a, p.b) for p in pairs if p.status in ("mismatch", "error")}
    bad |= {(b, a) for a, b in bad}
    if not bad:
        return None
    for cand in names:
        others = [n for n in names if n != cand]
        if all((cand, o) in bad for o in others) and not any(
                (x, y) in bad for x in others for y in others if x != y):
            return cand
    return None


STATUS_ORDER = {"match": 0, "accepted-stale": 1, "mismatch": 2, "error": 3}


def worst(statuses: Iterable[str]) -> str:
    return max(statuses, key=lambda s: STATUS_ORDER.get(s, 3), default="match")
