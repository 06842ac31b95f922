"""`difftest bisect` (issue 5): first state divergence, probe minimiser, QEMU binary bisection.

``first-divergence``: the first step where traces differ is often later than the first step where
machine state differs (a CSR written wrong is only seen when read).  QEMU is re-run with ``-d cpu``
and one instruction per TB, which dumps pc, V, the GPRs and the trap CSRs before every instruction;
the model is stepped with ``hart.state_dict()`` before every instruction; the earliest step where any
register both sides show differs is reported with both values.  ``mip`` is not compared (interrupt
pending bits depend on time, Priv. 20240411 3.1.9), nor CSRs QEMU's dump does not show; while V=1
QEMU's dump shows the VS copies in the supervisor fields, so those are compared with vs* and the
HS supervisor CSRs, mstatus and vsstatus are not compared at those steps.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from difftest.backends.qemu_cpu import parse_cpu_log, unswap
from difftest.minimise import add_minimise, add_qemu

NOT_COMPARED = {"mip"}


@dataclass
class StateDivergence:
    step: int | None
    pc: int | None
    diffs: dict = field(default_factory=dict)      # name -> (qemu value, model value)
    compared: list[str] = field(default_factory=list)
    steps_compared: int = 0
    message: str = ""
    reset_diff: dict = field(default_factory=dict)   # differ before step 0: not compared


def qemu_states(backend: str, elf: Path, cpu: str, work: Path, timeout: float, platform=None):
    from difftest.backends import binaries as B
    from difftest.backends import qemu as Q
    b = B.locate(backend)
    log, uart = work / f"{backend}.cpu.log", work / "uart"
    # exec too: its "Stopped execution"/"rewound" lines mark dumps of TBs that did not run (-icount)
    cmd = [("cpu,exec,nochain" if c == "exec,int,mmu,nochain" else c)
           for c in (Q.command(b, Path(elf), cpu, log, uart, platform) if platform is not None
                     else Q.command(b, Path(elf), cpu, log, uart))]
    from difftest.backends import proc
    # dies with us (ARCHITECTURE section 5); on timeout the dumps so far are still usable
    proc.run(cmd, env=dict(os.environ, **b.env), timeout=timeout, stdin=subprocess.DEVNULL,
             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(log, errors="replace") as f:
        yield from parse_cpu_log(f)


def first_state_divergence(elf: Path, *, backend: str, cpu: str = "default", limit: int = 2_000_000,
                           timeout: float = 120, platform=None) -> StateDivergence:
    """``platform``: a firmware platform (``--firmware``: refmodel/loader.py FirmwarePlatform) or None."""
    from difftest.backends import model as M
    from difftest.engine import model_dtb
    prof = M.profile_for(cpu, like=backend)
    if platform is not None:
        prof = prof.on(platform)
    hart = M.make_hart(elf, prof, platform, model_dtb(elf, cpu, platform, backend))
    run = hart.run(limit)
    skipped = 0             # one generator for the whole run, as the model backend does
    with tempfile.TemporaryDirectory() as td:
        compared = None
        reset_diff: dict = {}       # registers that already differ at reset (set aside, reported)
        n = 0
        for q in qemu_states(backend, elf, cpu, Path(td), timeout, platform):
            if n >= limit or hart.halted:
                break
            m = hart.state_dict()
            if q.get("pc") != m["pc"]:
                # QEMU raises an instruction-fetch fault while translating the TB, before any dump, so
                # a fetch-fault step has no -d cpu block: step the model over it when that is the case.
                st = next(run, None)
                if st is not None and st.trap is not None and st.insn is None:
                    skipped += 1
                    n += 1
                    m = hart.state_dict()
                else:
                    return StateDivergence(n, q.get("pc"), {"pc": (q.get("pc"), m["pc"])}, compared or [], n,
                                           reset_diff=reset_diff)
            if compared is None:
                # Priv. 20240411 3.4 Reset: most CSRs are UNSPECIFIED at reset, and QEMU's dump shows its raw
                # fields (e.g. mideleg without the H-forced VS bits), so a register that already differs
                # before the first instruction is set aside (reported), not compared.
                common = sorted(k for k in q if k in m and k not in NOT_COMPARED)
                reset_diff = {k: (q[k], m[k]) for k in common if q[k] != m[k]}
                compared = [k for k in common if k not in reset_diff]
            q = unswap(q)
            diffs = {k: (q[k], m[k]) for k in compared if k in q and q[k] != m[k]}
            if diffs:
                return StateDivergence(n, q.get("pc"), diffs, compared, n, reset_diff=reset_diff)
            next(run, None)
            n += 1
        return StateDivergence(None, None, {}, compared or [], n, "no register or CSR differs",
                               reset_diff=reset_diff)


def _fmt(d: StateDivergence, backend: str) -> str:
    if d.step is None:
        return f"no state divergence in {d.steps_compared} steps ({len(d.compared)} registers/CSRs compared)"
    out = [f"first state divergence at step {d.step} pc={d.pc:#x} (before executing it):"]
    for k, (q, m) in d.diffs.items():
        out.append(f"  {k:<9} {backend}={q:#018x} model={m:#018x}")
    for k, (q, m) in d.reset_diff.items():
        out.append(f"  not compared ({k} differs at reset, UNSPECIFIED or shown raw): {backend}={q:#x} model={m:#x}")
    out.append(f"compared each step: {', '.join(d.compared)}; not compared: mip (time-dependent) and CSRs "
               f"{backend}'s -d cpu dump does not show")
    return "\n".join(out)


def run_first(args) -> int:
    from difftest import engine
    from difftest import firmware as F
    from difftest.cli import UserError, _firmware_args
    from refmodel.platform import DEFAULT
    platform = _firmware_args(args, DEFAULT) if getattr(args, "firmware", None) else None
    try:
        name, elf = engine.resolve_guest(args.guest)
        with tempfile.TemporaryDirectory() as td:
            elf2, hg, vs = engine.patch_modes(elf, args.mode or "", args.vs_mode or "", Path(td))
            d = first_state_divergence(elf2, backend=args.backend, cpu=args.cpu, timeout=args.timeout,
                                       platform=platform)
    except engine.EngineError as e:
        raise UserError(str(e), e.exit_code)
    except F.FirmwareError as e:
        raise UserError(str(e))
    if args.json:
        print(json.dumps({"guest": name, "hgatp_mode": hg, "vs_mode": vs, "backend": args.backend,
                          "step": d.step, "pc": d.pc, "diffs": {k: list(v) for k, v in d.diffs.items()},
                          "compared": d.compared, "reset_diff": {k: list(v) for k, v in d.reset_diff.items()}, "steps_compared": d.steps_compared}, indent=1))
    else:
        print(f"{name} hgatp={hg or '-'} vs={vs or '-'} {args.backend} ~ model")
        print(_fmt(d, args.backend))
    return 0 if d.step is None else 1


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
    f.add_argument("--firmware", metavar="FW", help="as `difftest run --firmware`: the guest is this firmware's payload")
    f.set_defaults(func=run_first)
    add_minimise(bs)
    add_qemu(bs)
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])
