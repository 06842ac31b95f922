"""`difftest bisect` (issue 5): first state divergence, probe minimiser, QEMU binary bisection.

``first-divergence``: the first step where traces differ is often later than the first step where
machine state differs (a CSR written wrong is only seen when read).  QEMU is re-run with ``-d cpu``
and one instruction per TB, which dumps pc, V, the GPRs and the trap CSRs before every instruction;
the model is stepped with ``hart.state_dict()`` before every instruction; the earliest step where any
register both sides show differs is reported with both values.  ``mip`` is not compared (interrupt
pending bits depend on time, Priv. 20240411 3.1.9), nor CSRs QEMU's dump does not show; while V=1
QEMU's dump shows the VS copies in the supervisor fields, so those are compared with vs* and the
HS supervisor CSRs, mstatus and vsstatus are not compared at those steps.

The run is the run ``difftest run`` makes: its platform (``--ram``, ``--firmware``) reaches QEMU's
command line and the model, and the model follows the interrupts this QEMU run takes (its ``-d int``
lines; docs/ARCHITECTURE.md 7b) -- an interrupt is a divergence only where the model cannot take the
same one at the same step.  A tohost program's QEMU is stopped at its write; a QEMU stopped at
``--timeout`` is said, and is not a match (exit 125).  ``--all`` goes on past a register that
differs until control flow parts.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from difftest.backends.qemu_cpu import parse_cpu_log, unswap
from difftest.minimise import add_minimise, add_qemu
from refmodel.platform import DEFAULT as DEFAULT_PLATFORM

NOT_COMPARED = {"mip"}
MAX_LATER = 200         # --all: state divergences reported after the first, at most


@dataclass
class StateDivergence:
    step: int | None
    pc: int | None
    diffs: dict = field(default_factory=dict)      # name -> (qemu value, model value)
    compared: list[str] = field(default_factory=list)
    steps_compared: int = 0
    message: str = ""
    reset_diff: dict = field(default_factory=dict)   # differ before step 0: not compared
    interrupts: int = 0                              # QEMU's interrupts the model followed (same step, cause)
    later: list = field(default_factory=list)        # --all: (step, pc, diffs) after the first
    qemu_cut: bool = False                           # QEMU was stopped at --timeout: only its first steps


def qemu_states(backend: str, elf: Path, cpu: str, work: Path, timeout: float, platform=None, ended=None):
    """QEMU's state before every instruction (``-d cpu``, one instruction per TB) and, in between,
    ``{"interrupt": mip bit, "epc": pc}`` where it took an asynchronous interrupt (``-d int``).
    ``ended`` (a dict) gets ``cut`` = True when QEMU was stopped at ``timeout`` rather than ending."""
    from difftest.backends import binaries as B
    from difftest.backends import qemu as Q
    b = B.locate(backend)
    log, uart = work / f"{backend}.cpu.log", work / "uart"
    # exec too: its "Stopped execution"/"rewound" lines mark dumps of TBs that did not run (-icount);
    # int: where QEMU took an interrupt, which the model then takes at the same step
    cmd = [("cpu,exec,int,nochain" if c == "exec,int,mmu,nochain" else c)
           for c in Q.command(b, Path(elf), cpu, log, uart, platform or DEFAULT_PLATFORM)]
    from difftest.backends import proc
    from difftest.backends import tohost as T
    quiet = dict(stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.monotonic()
    end = Q.program_end(Path(elf))
    # dies with us (ARCHITECTURE section 5); on timeout the dumps so far are still usable.  A program
    # that ends through tohost spins after its write: QEMU is stopped there, as in `difftest run`
    if end is not None:
        cut = T.run(cmd, b.env, end, work, timeout, **quiet).value is None and proc_timed_out(timeout, t0)
    else:
        cut = proc.run(cmd, env=dict(os.environ, **b.env), timeout=timeout, **quiet) is None
    if ended is not None:
        ended["cut"] = cut
    if not log.exists():
        if cut:                 # stopped before it logged anything: nothing compared (said by the caller)
            return
        from difftest.engine import EngineError
        raise EngineError(f"{backend} ended without writing its -d cpu log ({shlex.join(cmd)})", 125)
    with open(log, errors="replace") as f:
        yield from parse_cpu_log(f, interrupts=True)


def proc_timed_out(timeout: float, t0: float) -> bool:
    return time.monotonic() - t0 >= timeout


def _irq(st) -> int | None:
    """The mip bit of the interrupt a model step took, None if the step ran an instruction."""
    t = st.trap if st is not None else None
    return t.cause if t is not None and t.interrupt else None


def first_state_divergence(elf: Path, *, backend: str, cpu: str = "default", limit: int = 2_000_000,
                           timeout: float = 120, platform=None, keep_going: bool = False) -> StateDivergence:
    """``platform``: the run's hart and machine (refmodel/platform.py: ``--ram``; a FirmwarePlatform
    for ``--firmware``), default the default platform -- QEMU's command line and the model's profile,
    RAM and device tree come from it as in ``difftest run``.  The model follows the interrupts this
    QEMU run takes (docs/ARCHITECTURE.md 7b, ``Hart.sync_interrupts``): QEMU's ``-d int`` line says
    where, and the model must take its own highest-priority pending-and-enabled interrupt at that
    step, with the same cause, or the step is the divergence; an interrupt the model takes where QEMU
    ran an instruction (held back longer than ``engine.IRQ_BOUND`` steps, or right after a CSR write
    or xRET as Priv. 3.1.9 requires) is a divergence too.  ``keep_going`` (``--all``): after a
    register differs, set it aside until both sides agree on it again, and go on to the next; a pc or
    interrupt difference ends the comparison (control flow has parted)."""
    from difftest.backends import model as M
    from difftest.engine import IRQ_BOUND, model_dtb
    platform = platform or DEFAULT_PLATFORM
    prof = M.profile_for(cpu, like=backend).on(platform)
    hart = M.make_hart(elf, prof, platform, model_dtb(elf, cpu, platform, backend))
    sched: dict[int, int] = {}
    hart.sync_interrupts(sched, IRQ_BOUND)      # filled from QEMU's log as the comparison reaches it
    run = hart.run(limit)
    out = StateDivergence(None, None)
    aside: set = set()                          # --all: registers that differ now, compared again once equal

    def diverged(n, pc, diffs):
        if out.step is None:
            out.step, out.pc, out.diffs = n, pc, diffs
        else:
            out.later.append((n, pc, diffs))
        out.steps_compared = n
        return out

    ended: dict = {}
    with tempfile.TemporaryDirectory() as td:
        n = 0
        for q in qemu_states(backend, elf, cpu, Path(td), timeout, platform, ended):
            out.qemu_cut = ended.get("cut", False)
            if n >= limit or hart.halted:
                break
            if "interrupt" in q:
                # QEMU took an interrupt before its next instruction: so must the model, at this step
                sched[hart.steps] = q["interrupt"]
                hart.sync_interrupts(sched, IRQ_BOUND)
                st = next(run, None)
                if _irq(st) != q["interrupt"]:
                    return diverged(n, q["epc"], {"interrupt": (q["interrupt"], _irq(st))})
                out.interrupts += 1
                n += 1
                continue
            m = hart.state_dict()
            if q.get("pc") != m["pc"]:
                # QEMU raises an instruction-fetch fault while translating the TB, before any dump, so
                # a fetch-fault step has no -d cpu block: step the model over it when that is the case.
                st = next(run, None)
                if st is not None and st.trap is not None and st.insn is None and not st.trap.interrupt:
                    n += 1
                    m = hart.state_dict()
                else:
                    return diverged(n, q.get("pc"), {"pc": (q.get("pc"), m["pc"])})
            if not out.compared:
                # Priv. 20240411 3.4 Reset: most CSRs are UNSPECIFIED at reset, and QEMU's dump shows its raw
                # fields (e.g. mideleg without the H-forced VS bits), so a register that already differs
                # before the first instruction is set aside (reported), not compared.
                common = sorted(k for k in q if k in m and k not in NOT_COMPARED)
                out.reset_diff = {k: (q[k], m[k]) for k in common if q[k] != m[k]}
                out.compared = [k for k in common if k not in out.reset_diff]
            q = unswap(q)
            aside -= {k for k in aside if k in q and q[k] == m[k]}
            diffs = {k: (q[k], m[k]) for k in out.compared if k in q and q[k] != m[k] and k not in aside}
            if diffs:
                diverged(n, q.get("pc"), diffs)
                if not keep_going or len(out.later) >= MAX_LATER:
                    out.message = "" if not keep_going else f"--all stopped after {MAX_LATER + 1} state divergences"
                    return out
                aside |= set(diffs)
            st = next(run, None)
            if _irq(st) is not None:
                # the model took an interrupt where QEMU ran the instruction at this pc
                return diverged(n, q.get("pc"), {"interrupt": (None, _irq(st))})
            n += 1
        out.steps_compared = n
        out.qemu_cut = ended.get("cut", False)
        if out.step is None:
            out.message = "no register or CSR differs"
        return out


def _hex(v) -> str:
    return "none" if v is None else f"{v:#018x}"


def _fmt_diffs(step, pc, diffs, backend) -> list[str]:
    if "interrupt" in diffs:
        q, m = diffs["interrupt"]
        return [f"interrupt divergence at step {step} pc={pc:#x}: {backend} took "
                f"{'no interrupt' if q is None else f'interrupt {q}'}, the model "
                f"{'none (none pending and enabled there)' if m is None else f'interrupt {m}'}"]
    out = [f"state divergence at step {step} pc={pc:#x} (before executing it):"]
    for k, (q, m) in diffs.items():
        out.append(f"  {k:<9} {backend}={_hex(q)} model={_hex(m)}")
    return out


def _fmt(d: StateDivergence, backend: str) -> str:
    irq = (f"; the model took {backend}'s {d.interrupts} interrupt(s) at the same steps"
           if d.interrupts else "")
    cut = (f"\nnote: {backend} was stopped at --timeout before the program ended: only its first "
           f"{d.steps_compared} steps were compared (a larger --timeout reaches further)") if d.qemu_cut else ""
    if d.step is None:
        return (f"no state divergence in {d.steps_compared} steps ({len(d.compared)} registers/CSRs "
                f"compared{irq}){cut}")
    out = _fmt_diffs(d.step, d.pc, d.diffs, backend)
    out[0] = "first " + out[0]
    for st, pc, diffs in d.later:
        out += ["then " + x if i == 0 else x for i, x in enumerate(_fmt_diffs(st, pc, diffs, backend))]
    if d.message:
        out.append(d.message)
    for k, (q, m) in d.reset_diff.items():
        out.append(f"  not compared ({k} differs at reset, UNSPECIFIED or shown raw): {backend}={q:#x} model={m:#x}")
    out.append(f"compared each step: {', '.join(d.compared)}; not compared: mip (time-dependent) and CSRs "
               f"{backend}'s -d cpu dump does not show{irq}{cut}")
    return "\n".join(out)


def add_platform_arguments(p) -> None:
    """``--ram`` and ``--firmware`` as ``difftest run`` takes them: the run's hart and machine."""
    p.add_argument("--ram", default="", help="as `difftest run --ram`: RAM size of the virt machine, e.g. 256M "
                                             "(QEMU -m and the model's RAM and FDT address alike)")
    p.add_argument("--firmware", metavar="FW", help="as `difftest run --firmware`: the guest is this firmware's payload")


def platform_of(args):
    """The platform ``--ram``/``--firmware`` name (refmodel/platform.py), as ``difftest run`` builds it."""
    from difftest.cli import UserError, _firmware_args
    from refmodel.platform import platform_for
    try:
        platform = platform_for(getattr(args, "ram", "") or None)
    except ValueError as e:
        raise UserError(f"--ram: {e}")
    return _firmware_args(args, platform)


def run_first(args) -> int:
    from difftest import engine
    from difftest import firmware as F
    from difftest.cli import UserError
    platform = platform_of(args)
    try:
        name, elf = engine.resolve_guest(args.guest, platform)
        with tempfile.TemporaryDirectory() as td:
            elf2, hg, vs = engine.patch_modes(elf, args.mode or "", args.vs_mode or "", Path(td))
            d = first_state_divergence(elf2, backend=args.backend, cpu=args.cpu, timeout=args.timeout,
                                       platform=platform, keep_going=args.all)
    except engine.EngineError as e:
        raise UserError(str(e), e.exit_code)
    except F.FirmwareError as e:
        raise UserError(str(e))
    if args.json:
        print(json.dumps({"guest": name, "hgatp_mode": hg, "vs_mode": vs, "backend": args.backend,
                          "step": d.step, "pc": d.pc, "diffs": {k: list(v) for k, v in d.diffs.items()},
                          "later": [{"step": s, "pc": pc, "diffs": {k: list(v) for k, v in df.items()}}
                                    for s, pc, df in d.later],
                          "interrupts_followed": d.interrupts, "platform": platform.describe(),
                          "qemu_stopped_at_timeout": d.qemu_cut,
                          "compared": d.compared, "reset_diff": {k: list(v) for k, v in d.reset_diff.items()},
                          "steps_compared": d.steps_compared}, indent=1))
    else:
        print(f"{name} hgatp={hg or '-'} vs={vs or '-'} {args.backend} ~ model")
        print(_fmt(d, args.backend))
    # 0 only for a comparison to the program's end: a QEMU run cut at --timeout is not a match (125, as
    # for a run that cannot be completed; `git bisect run` skips it)
    return 1 if d.step is not None else 125 if d.qemu_cut else 0


def add_subcommand(sub) -> None:
    F = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser("bisect", help="first state divergence, minimise a failing guest, bisect QEMU binaries",
                       formatter_class=F, description=__doc__)
    bs = p.add_subparsers(dest="bisect_cmd", metavar="{first-divergence,minimise,qemu}")
    f = bs.add_parser("first-divergence", help="earliest step where any register or CSR differs (QEMU vs model)",
                      formatter_class=F,
                      epilog="example:\n  difftest bisect first-divergence hgatp_reserved --backend qemu-7.2")
    from difftest.cli import add_case_arguments
    add_case_arguments(f, "qemu-7.2")
    add_platform_arguments(f)
    f.add_argument("--all", action="store_true",
                   help="go on after a register differs (set aside until both sides agree on it again) and "
                        "report every state divergence up to the first pc or interrupt difference")
    f.set_defaults(func=run_first)
    add_minimise(bs)
    add_qemu(bs)
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])
