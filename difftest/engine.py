"""The differential engine (ARCHITECTURE section 7): one case = one guest x
HGATP mode x VS mode x CPU variant, run on every backend and compared
pairwise.  Used by ``difftest run``, nightly and bisect.
"""
from __future__ import annotations

import itertools
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from difftest.compare import Divergence, PairResult, compare_full, odd_one_out, worst
from refmodel.platform import DEFAULT as DEFAULT_PLATFORM, size_text

__all__ = ["PairResult", "CaseResult", "run_case", "EngineError", "resolve_guest", "pair_command",
           "expand_backends", "case_pairs", "case_odd_one_out"]


class EngineError(Exception):
    """A case that cannot be set up: unknown guest, build failure, bad mode.
    ``exit_code`` follows ARCHITECTURE section 6 (2 input error, 125 cannot build/run)."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class CaseResult:
    guest: str
    hgatp_mode: str
    vs_mode: str
    cpu: str
    backends: list[str]
    runs: dict = field(default_factory=dict)          # backend -> RunResult
    pairs: list[PairResult] = field(default_factory=list)
    odd_one_out: str | None = None
    status: str = "match"
    seconds: dict[str, float] = field(default_factory=dict)
    elf: str = ""                                      # the (patched) ELF every backend ran
    note: str = ""                                     # e.g. two QEMUs differ by a spec-allowed choice
    compare_seconds: dict[str, float] = field(default_factory=dict)   # "a~b" -> seconds its comparison took
    findings: list = field(default_factory=list)       # of single runs: a model that fails its guest's
                                                       # self-checks (difftest.findings.model_findings)
    platform: object = None                            # refmodel.platform.Platform (None: the default)
    irq_schedules: dict = field(default_factory=dict)  # model run -> the {step: mip bit} it followed (7b)


def _is_path(guest) -> bool:
    g = os.fspath(guest)
    return isinstance(guest, Path) or os.sep in g or g.endswith(".elf") or os.path.isfile(g)


def resolve_guest(guest: str | Path, platform=None) -> tuple[str, Path]:
    """(name, ELF path): a guest name is built on demand; a path is taken as is.  Either way the
    ELF must be one both backends can run on ``platform``'s RAM (``elfcheck``), else an input error
    before any runs."""
    from difftest import elfcheck
    ram = (platform or DEFAULT_PLATFORM).ram_size
    if _is_path(guest):
        p = Path(guest)
        if not p.is_file():
            raise EngineError(f"{p}: no such ELF file")
        try:
            elfcheck.check(p, ram)
        except elfcheck.ElfError as e:
            raise EngineError(str(e), 2) from None
        return p.name.split(".")[0], p
    from difftest import guests as G
    names = G.list_guests()
    if guest not in names:
        raise EngineError(f"unknown guest {guest!r}; `difftest list` shows the guests ({', '.join(names)})")
    try:
        elf = G.build(guest)
    except Exception as e:      # BuildError carries the compiler's message
        raise EngineError(f"cannot build guest {guest!r}: {e}", 125) from None
    try:
        elfcheck.check(elf, ram)
    except elfcheck.ElfError as e:      # e.g. a guest whose link script moved it out of RAM
        raise EngineError(f"guest {guest!r} built, but {e}", 125) from None
    return guest, Path(elf)


def patch_modes(elf: Path, hgatp_mode: str, vs_mode: str, out_dir: Path) -> tuple[Path, str, str]:
    """Write the modes into a copy of the ELF (ARCHITECTURE section 2); an ELF without
    the config block runs as is with mode ''.  Returns (elf, hgatp_mode, vs_mode)."""
    from difftest import config_block as CB
    try:
        r = CB.patch_copy(elf, out_dir, hgatp_mode=hgatp_mode or None, vs_mode=vs_mode or None)
    except CB.ConfigBlockError as e:
        raise EngineError(str(e), 2) from None
    return Path(r.path), r.hgatp_mode, r.vs_mode


def pair_command(guest: str, hgatp_mode: str, vs_mode: str, backends, cpu: str, platform=None) -> list[str]:
    cmd = ["difftest", "run", guest]
    if hgatp_mode:
        cmd += ["--mode", hgatp_mode]
    if vs_mode:
        cmd += ["--vs-mode", vs_mode]
    cmd += ["--backend", ",".join(backends)]
    if cpu and cpu != "default":
        cmd += ["--cpu", cpu]
    if platform is not None and platform.ram_size != DEFAULT_PLATFORM.ram_size:
        cmd += ["--ram", size_text(platform.ram_size)]
    if getattr(platform, "firmware", None):
        cmd += ["--firmware", platform.firmware]
    return cmd


def is_model(name: str) -> bool:
    return name == "model" or name.startswith("model@")


def model_like(name: str, backends) -> str | None:
    """The QEMU whose spec-allowed choices a model backend takes: ``model@X`` -> X; plain
    ``model`` -> the first ``qemu-*`` backend of the case (None: the default profile)."""
    if name.startswith("model@"):
        return name.partition("@")[2]
    return next((q for q in backends if q.startswith("qemu-")), None)


def expand_backends(backends) -> list[str]:
    """The runs of a case.  With two or more QEMUs, "model" becomes one model per QEMU,
    ``model@<qemu>``, each with that QEMU's profile: the spec lets implementations choose
    (htinst values, EBREAK tval, A/D update or fault, ...) and each QEMU is judged against
    the model making *its* choices (Priv. 20240411, 9.6.3 for htinst; 12.3.1.2 A/D)."""
    qemus = [b for b in backends if not is_model(b)]
    out: list[str] = []
    for b in backends:
        names = [f"model@{q}" for q in qemus] if b == "model" and len(qemus) >= 2 else [b]
        out += [n for n in names if n not in out]
    return out


def case_pairs(names: list[str]) -> list[tuple[str, str]]:
    """The pairs compared: every QEMU against every other, and each model against the
    QEMU whose profile it runs (plain "model", or ``model@X`` with no X in the case: against
    every QEMU).  Two models with
    different profiles, or a QEMU against another QEMU's model, differ by design."""
    qemus = {n for n in names if not is_model(n)}
    out = []
    for a, b in itertools.combinations(names, 2):
        if is_model(a) and is_model(b):
            continue
        m, q = (a, b) if is_model(a) else (b, a)
        like = m.partition("@")[2] if is_model(m) else ""
        if like in qemus and like != q:     # an explicit model@X without X in the case: against every QEMU
            continue
        out.append((a, b))
    return out


def logical(name: str) -> str:
    return "model" if name.startswith("model@") else name


def case_odd_one_out(names: list[str], pairs: list[PairResult]) -> str | None:
    """``compare.odd_one_out`` over the case's participants, every ``model@X`` counted as
    the one spec model: a QEMU that disagrees with the other QEMU *and* with the model
    under its own profile is the odd one out; "model" is when every QEMU agrees with every
    other and none with its model."""
    parts = list(dict.fromkeys(logical(n) for n in names))
    lp = [PairResult(logical(p.a), logical(p.b), p.status) for p in pairs]
    return odd_one_out(parts, lp)


def profile_choice_note(names: list[str], pairs: list[PairResult]) -> str:
    """Two QEMUs that differ while each matches the model under its own profile made
    different spec-allowed choices: say so, so nobody files it as a bug."""
    st = {(p.a, p.b): p.status for p in pairs}
    ok = ("match", "accepted-stale")
    for (a, b), s in st.items():
        if s == "mismatch" and not is_model(a) and not is_model(b) \
                and st.get((a, f"model@{a}")) in ok and st.get((b, f"model@{b}")) in ok:
            return (f"{a} and {b} differ, but each matches the model under its own profile: a choice the "
                    f"spec leaves to the implementation (see refmodel/profile.py)")
    return ""


def model_dtb(elf: Path, cpu: str, platform, like: str | None) -> bytes | None:
    """The device tree a model run on a firmware platform is given: the one QEMU ``like`` (the
    QEMU it is compared with; qemu-10.0 for a model alone) generates for the same run
    (difftest/firmware.py).  None without a firmware."""
    if not getattr(platform, "firmware", None):
        return None
    from difftest import firmware as F
    return F.dtb(like or F.DEFAULT_QEMU, elf, cpu, platform)


# Interrupt synchronisation (docs/ARCHITECTURE.md "Interrupts and time"): how many steps the model may
# hold back an interrupt that is pending and enabled while the implementation has not taken it.
# QEMU decides interrupt points at TB ends; under -icount its timer fires within a couple of
# instructions of mtime >= mtimecmp (measured: 2 steps on guest interrupts), so 64 is generous.
IRQ_BOUND = 64


def interrupt_schedule(trace_path) -> dict[int, int]:
    """{step: mip bit} of every interrupt a trace shows (Trap.interrupt): the points the model
    follows when it is synchronised with that run.  Reads only the trap column of a binary trace."""
    from difftest.trace import TraceReader
    out: dict[int, int] = {}
    r = TraceReader(trace_path)
    try:
        if hasattr(r, "nchunks"):
            for k in range(r.nchunks()):
                c = r.chunk(k)
                for j, t in (c._trap or {}).items():
                    if t.get("interrupt"):
                        out[c.first + j] = t["cause"]
        else:
            out = {st.i: st.trap.cause for st in r.steps() if st.trap is not None and st.trap.interrupt}
    finally:
        r.close()
    return out


def _run_backend(name: str, elf: Path, *, hgatp_mode, vs_mode, cpu, timeout, max_steps, out_path,
                 use_cache, guest, command, like=None, cancel=None, qemu_trace: str = "auto", platform=None,
                 irq_schedule=None):
    if is_model(name):
        from difftest import firmware as F
        from difftest.backends import model
        try:
            model.check_backend_name(name)
            prof = model.profile_for(cpu, like=like)
            dtb = model_dtb(elf, cpu, platform, like)
        except (model.ModelError, F.FirmwareError) as e:
            return model._result("error", None, None, None, str(e), e.error_class)
        return model.run(elf, backend=name, hgatp_mode=hgatp_mode, vs_mode=vs_mode, cpu=cpu, timeout=timeout,
                         max_steps=max_steps, out_path=out_path, guest=guest, command=command, profile=prof,
                         cancel=cancel, platform=platform, dtb=dtb, irq_schedule=irq_schedule,
                         irq_bound=IRQ_BOUND)
    from difftest import backends as B
    kw = dict(backend=name, hgatp_mode=hgatp_mode, vs_mode=vs_mode, cpu=cpu, timeout=timeout,
              max_steps=max_steps, out_path=out_path)
    if platform is not None:
        kw["platform"] = platform
    if qemu_trace and qemu_trace != "log":
        kw["qemu_trace"] = qemu_trace       # the QEMU trace source (backends.run; qemu_plugin.py)
    try:
        return B.run(elf, use_cache=use_cache, **kw)
    except TypeError:
        return B.run(elf, **kw)


def _walk_for(div: Divergence, elf: Path, cpu: str, names: tuple[str, str], backends, platform=None,
              irq_schedules=None):
    """The model's walk for the translation in question, from the trace or by re-running the model
    (with the profile of the model in this pair, on the run's platform, following the interrupt
    points that model run followed: ``irq_schedules`` by run name)."""
    for x in (div.xlat_a, div.xlat_b):
        if x is not None and x.walk:
            return x.walk
    x = div.xlat_a or div.xlat_b
    mname = next((n for n in names if is_model(n)), None)
    if x is None or div.step is None or mname is None:
        # a trap without a logged translation: walk the faulting address if the model trapped on it
        s = div.step_b if names[1] == mname else div.step_a
        if mname is None or s is None or not s.xlats or div.kind not in ("first-stage", "second-stage", "trap"):
            return None
        x = next((y for y in s.xlats if y.fault_stage), s.xlats[-1])
    from difftest.backends import model
    try:
        prof = model.profile_for(cpu, like=model_like(mname, backends)).on(platform or DEFAULT_PLATFORM)
    except model.ModelError:
        return None
    try:
        dtb = model_dtb(elf, cpu, platform, model_like(mname, backends))
    except Exception:            # a report without the walk is still a report
        return None
    return model.walk_at(elf, step=div.step, va=x.va, access=x.access, priv=x.priv, v=x.v, cpu=cpu, profile=prof,
                         platform=platform, dtb=dtb, irq_schedule=(irq_schedules or {}).get(mname),
                         irq_bound=IRQ_BOUND)


def run_case(guest, *, hgatp_mode: str = "", vs_mode: str = "", backends: list[str], cpu: str = "default",
             out_dir: Path, timeout: float = 60, max_steps: int = 5_000_000, use_cache: bool = True,
             progress=None, qemu_trace: str = "auto", platform=None) -> CaseResult:
    """Run one case on every backend and compare the pairs of ``case_pairs``.  Raises EngineError
    only when the case cannot be set up; backend failures become "error" pairs.  With two or more
    QEMUs, "model" runs once per QEMU profile (``expand_backends``).  ``platform``: the hart and
    machine every backend runs (refmodel/platform.py; default: DEFAULT_PLATFORM)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name, elf = resolve_guest(guest, platform)
    elf, hgatp_mode, vs_mode = patch_modes(elf, hgatp_mode, vs_mode, out_dir)
    names = expand_backends(backends)
    case = CaseResult(guest=name, hgatp_mode=hgatp_mode, vs_mode=vs_mode, cpu=cpu, backends=names,
                      elf=str(elf), platform=platform)
    guest_arg = os.fspath(guest) if _is_path(guest) else name

    def one(b, cancel=None, irq_schedule=None):
        if progress:
            progress(f"{name} {hgatp_mode or '-'}/{vs_mode or '-'}: running {b}"
                     + (" (following its QEMU's interrupts)" if irq_schedule else ""))
        t0 = time.monotonic()
        safe = b.replace("/", "_")
        r = _run_backend(b, elf, hgatp_mode=hgatp_mode, vs_mode=vs_mode, cpu=cpu, timeout=timeout,
                         max_steps=max_steps, out_path=out_dir / f"{safe}.trace.bin", use_cache=use_cache,
                         guest=name, command=pair_command(guest_arg, hgatp_mode, vs_mode, [b], cpu, platform),
                         like=model_like(b, names) if is_model(b) else None, cancel=cancel,
                         qemu_trace=qemu_trace, platform=platform, irq_schedule=irq_schedule)
        case.seconds[b] = round(time.monotonic() - t0, 3)
        case.runs[b] = r

    # The models run in a thread of their own while QEMU runs in its process: the QEMU side is
    # mostly waiting (its process, then reading its output), the model is pure Python, so the
    # case takes about the longer of the two instead of their sum.  QEMU stays in the main thread,
    # which owns the signal handling that stops it (backends/proc.py); on any unwinding the model
    # thread is told to stop and is joined before the exception goes on.
    models = [b for b in names if is_model(b)]
    cancel = threading.Event()
    crashed: list[BaseException] = []

    def model_side():
        try:
            for b in models:
                one(b, cancel)
        except BaseException as e:          # noqa: BLE001 -- re-raised in the main thread
            crashed.append(e)

    th = threading.Thread(target=model_side, name="difftest-model", daemon=True) if models else None
    if th is not None:
        th.start()
    try:
        for b in names:
            if not is_model(b):
                one(b)
    except BaseException:
        cancel.set()
        raise
    finally:
        if th is not None:
            th.join()
    if crashed:
        raise crashed[0]
    # A QEMU run that took interrupts decides where they happen (it checks at TB ends): each model
    # compared with it runs again, following that run's interrupt points (refmodel.interrupts
    # InterruptSync) -- only these cases pay for a second model run.
    synced = []
    for b in models:
        q = model_like(b, names)
        rq = case.runs.get(q) if q else None
        if rq is None or not rq.trace_path or not os.path.exists(rq.trace_path):
            continue
        try:
            sched = interrupt_schedule(rq.trace_path)
        except Exception:       # noqa: BLE001 -- a damaged trace is reported by its comparison
            continue
        if sched:
            t_first = case.seconds.get(b, 0.0)
            one(b, None, sched)
            case.irq_schedules[b] = sched        # the walk re-run of its report follows them too
            case.seconds[b] = round(case.seconds[b] + t_first, 3)
            synced.append(f"{b} followed the {len(sched)} interrupt(s) {q} took (docs/ARCHITECTURE.md 7b)")
    case.runs = {b: case.runs[b] for b in names}              # in the case's order, whoever finished first
    case.seconds = {b: case.seconds[b] for b in names}
    # QEMU~model pairs first: whether two QEMUs that differ each match their own-profile
    # model decides what the QEMU~QEMU report says (profile_choice_note)
    pairs = case_pairs(names)
    done: dict[tuple[str, str], PairResult] = {}
    for a, b in sorted(pairs, key=lambda ab: not (is_model(ab[0]) or is_model(ab[1]))):
        if progress:
            progress(f"{name} {hgatp_mode or '-'}/{vs_mode or '-'}: comparing {a} ~ {b}")
        note = ""
        if not is_model(a) and not is_model(b):
            probe = [PairResult(a, b, "mismatch")] + list(done.values())
            note = profile_choice_note(names, probe)
        t0 = time.monotonic()
        done[(a, b)] = _compare_pair(case, a, b, elf, out_dir, guest_arg, note_if_mismatch=note)
        case.compare_seconds[f"{a}~{b}"] = round(time.monotonic() - t0, 3)
    case.pairs = [done[ab] for ab in pairs]
    from difftest.findings import model_findings
    for b in names:
        r = case.runs[b]
        if is_model(b) and r.footer is not None:
            case.findings += model_findings(name, b if "@" in b else f"model@{model_like(b, names) or 'spec'}",
                                            r.footer.status, r.footer.exit_code, r.footer.uart)
    case.odd_one_out = case_odd_one_out(names, case.pairs)
    case.note = "; ".join(x for x in [profile_choice_note(names, case.pairs)] + synced if x)
    case.status = worst(p.status for p in case.pairs) if case.pairs else _single_status(case)
    if case.findings:
        case.status = worst([case.status, "mismatch"])
    return case


def _single_status(case: CaseResult) -> str:
    return "match" if all(r.trace_path and r.footer and r.footer.status == "exit" for r in case.runs.values()) \
        else "error"


def _compare_pair(case: CaseResult, a: str, b: str, elf: Path, out_dir: Path, guest_arg: str,
                  note_if_mismatch: str = "") -> PairResult:
    ra, rb = case.runs[a], case.runs[b]
    cmd = pair_command(guest_arg, case.hgatp_mode, case.vs_mode, [a, b], case.cpu, case.platform)
    for name, r in ((a, ra), (b, rb)):
        if not r.trace_path or not os.path.exists(r.trace_path):
            pr = PairResult(a, b, "error", "error", None, None,
                            f"{name} could not run: {r.message or r.error_class}", [], [])
            pr.fingerprint = f"{case.guest}|{case.hgatp_mode}|{case.vs_mode}|{a}~{b}|error|{r.error_class}"
            return pr
    from difftest.config_block import probe_sled
    pr, div = compare_full(ra.trace_path, rb.trace_path, guest=case.guest, sled=probe_sled(elf))
    if pr.status == "error" and pr.a == "?":       # a trace that failed its integrity check (TraceError)
        pr.a, pr.b = a, b
    if pr.status in ("mismatch", "error"):
        if pr.fingerprint is None:
            pr.fingerprint = f"{case.guest}|{case.hgatp_mode}|{case.vs_mode}|{a}~{b}|{pr.kind}|-"
        walk = None
        if div is not None and pr.status == "mismatch":
            walk = _walk_for(div, elf, case.cpu, (a, b), case.backends, case.platform, case.irq_schedules)
        stem = f"{a}~{b}".replace("/", "_")
        info = {"guest": case.guest, "hgatp": case.hgatp_mode or "-", "vs": case.vs_mode or "-",
                "cpu": case.cpu, "elf": str(elf)}
        if note_if_mismatch and pr.status == "mismatch":
            info["note"] = note_if_mismatch
        pr.report = _write(pr, div, out_dir / "reports", stem, cmd, walk, info)
    return pr


def _write(pr, div, d, stem, cmd, walk, case):
    from difftest.report import write_reports
    return write_reports(pr, div, d, stem=stem, command=cmd, walk=walk, case=case)
