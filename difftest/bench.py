"""``difftest bench``: the model's speed, measured next to QEMU 7.2 on the same guest.

The bench guest (assembled here with riscv64-unknown-elf-gcc, difftest.asm) enters VS-mode
with hgatp = Sv39x4 (identity gigapages, so every fetch, load and store takes the two-stage
path).  It runs a loop of ALU ops, loads and stores, then writes the finisher.
QEMU 7.2 runs the same ELF with ``-singlestep -d exec,nochain`` (one log line per
instruction), the model with tracing on: its run loop builds, for every instruction, the
compact record the model backend writes the trace from (``Hart.records``: pc, instruction
bits, privilege and V, each translation with its walk, the trap, the UART bytes).  A second
model figure is for ``Hart.run``, which turns each record into a ``difftest.trace.Step``.
Rates are given by wall clock and by CPU time (the process's own, QEMU's from its rusage):
on a shared machine the CPU-time figures are the steadier ones.  Then the model runs again
writing its trace file as ``difftest run`` does, and the file is read back.
``--pipeline``: the whole ``difftest run`` of a ~9.9 M-step bench guest against QEMU 10.0, end to end
(issue 14's figure: wall time, each stage's share, peak RSS, translations compared).
This is a benchmark, not a test: nothing asserts a rate.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

def guest_source(iters: int, mode: int) -> str:
    from difftest.asm import ENTER_VS, FINISH_PASS, GPT_DATA, M_PROLOGUE, hgatp_identity_gigapage
    return (M_PROLOGUE + hgatp_identity_gigapage(mode, io_leaf="0xdf") + ENTER_VS + f"""vs:
  li s0, {iters}
  la s1, buf
1:
  ld a0, 0(s1)
  addi a0, a0, 3
  sd a0, 8(s1)
  xor a1, a0, s0
  lw a2, 16(s1)
  add a2, a2, a1
  sw a2, 16(s1)
  addi s0, s0, -1
  bnez s0, 1b
""" + FINISH_PASS + """3: j 3b            # stay after the pass write (QEMU >= 8 serves it asynchronously)
mtrap:
  li a0, 0x100000
  li a1, 0x13333
  sw a1, 0(a0)
2: j 2b
""" + GPT_DATA + "buf: .fill 8, 8, 0\n")


def build_guest(workdir: str, iters: int, mode: int) -> str:
    from difftest.asm import assemble
    return str(assemble(guest_source(iters, mode), os.path.join(workdir, "bench.elf")))


def bench_model(elf: str, profile_name: str = "qemu-7.2", steps: bool = False) -> dict:
    """Model steps/s with a trace record built per instruction: the compact records the model
    backend writes its trace from (``Hart.records``), or with ``steps`` Step objects (``Hart.run``)."""
    from refmodel.hart import Hart
    from refmodel.profile import PROFILES
    h = Hart.from_elf(elf, PROFILES[profile_name])
    loop = h.run if steps else h.records
    t, c = time.perf_counter(), time.process_time()
    n = 0
    for _ in loop(max_steps=50_000_000):
        n += 1
    dt, dc = time.perf_counter() - t, time.process_time() - c
    return {"steps": n, "seconds": dt, "rate": n / dt, "cpu_seconds": dc, "cpu_rate": n / dc,
            "exit_code": h.exit_code}


def bench_trace_io(elf: str, workdir: str, profile_name: str = "qemu-7.2") -> dict:
    """The model run writing its trace file (difftest.trace.TraceWriter, as the model backend
    does), then that file read back (TraceReader)."""
    from difftest.trace import Footer, Header, TraceReader, TraceWriter
    from refmodel.hart import Hart
    from refmodel.profile import PROFILES
    path = os.path.join(workdir, "bench.trace.bin")
    h = Hart.from_elf(elf, PROFILES[profile_name])
    w = TraceWriter(path, Header("bench", "", "sv39x4", "bare", "model", "", "default", profile_name))
    t = time.perf_counter()
    n = 0
    record = w.record
    for r in h.records(max_steps=50_000_000):
        record(r)
        n += 1
    w.close(Footer("exit", h.exit_code, n))
    dw = time.perf_counter() - t
    t = time.perf_counter()
    m = sum(1 for _ in TraceReader(path).steps())
    dr = time.perf_counter() - t
    return {"steps": n, "model_and_write_seconds": dw, "model_and_write_rate": n / dw,
            "read_seconds": dr, "read_rate": m / dr, "bytes": os.path.getsize(path)}


def bench_qemu(elf: str, binary: str = "/usr/bin/qemu-system-riscv64") -> dict | None:
    if not shutil.which(binary):
        return None
    with tempfile.TemporaryDirectory() as d:
        log = os.path.join(d, "q.log")
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        p = subprocess.run([binary, "-M", "virt", "-bios", "none", "-kernel", elf, "-nographic", "-monitor", "none",
                            "-singlestep", "-d", "exec,nochain", "-D", log], capture_output=True, timeout=600)
        dt = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        dc = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        with open(log, "rb") as f:
            n = sum(1 for line in f if line.startswith(b"Trace "))
    return {"steps": n, "seconds": dt, "rate": n / dt, "cpu_seconds": dc, "cpu_rate": n / dc if dc else None,
            "exit_code": p.returncode}


def measure(iters: int = 100_000, trace_io: bool = True) -> dict:
    mode, mode_name = 8, "sv39x4"
    with tempfile.TemporaryDirectory() as d:
        elf = build_guest(d, iters, mode)
        model = bench_model(elf)
        model_steps = bench_model(elf, steps=True)
        qemu = bench_qemu(elf)
        io = bench_trace_io(elf, d) if trace_io else None
    out = {"hgatp": mode_name, "model": model, "model_step_objects": model_steps, "qemu-7.2": qemu, "trace_io": io,
           "ratio_model_over_qemu": (model["rate"] / qemu["rate"]) if qemu else None,
           "cpu_ratio_model_over_qemu": (model["cpu_rate"] / qemu["cpu_rate"]) if qemu and qemu["cpu_rate"] else None,
           "python": sys.version.split()[0], "implementation": sys.implementation.name}
    return out


def _print(r: dict) -> None:
    m, q, io = r["model"], r["qemu-7.2"], r["trace_io"]
    print(f"bench guest: VS-mode loop, hgatp {r['hgatp']}, tracing on ({r['implementation']} {r['python']})")
    print(f"model     : {m['steps']:>10} steps in {m['seconds']:.2f} s = {m['rate']:,.0f} instr/s "
          f"(CPU {m['cpu_rate']:,.0f} instr/s; exit {m['exit_code']}; compact trace records)")
    ms = r.get("model_step_objects")
    if ms:
        print(f"model     : {ms['steps']:>10} steps in {ms['seconds']:.2f} s = {ms['rate']:,.0f} instr/s "
              f"(CPU {ms['cpu_rate']:,.0f} instr/s; difftest.trace.Step objects, Hart.run)")
    if q:
        cpu = f"CPU {q['cpu_rate']:,.0f} instr/s; " if q["cpu_rate"] else ""
        print(f"qemu-7.2  : {q['steps']:>10} steps in {q['seconds']:.2f} s = {q['rate']:,.0f} instr/s "
              f"({cpu}-singlestep -d exec,nochain, whole process)")
        print(f"ratio     : model / qemu-7.2 = {r['ratio_model_over_qemu']:.2f} wall"
              + (f", {r['cpu_ratio_model_over_qemu']:.2f} CPU time" if r["cpu_ratio_model_over_qemu"] else ""))
    else:
        print("qemu-7.2  : not installed, no ratio")
    if io:
        print(f"trace file: model + TraceWriter {io['model_and_write_rate']:,.0f} steps/s "
              f"({io['model_and_write_seconds']:.2f} s, {io['bytes']:,} bytes, binary format); "
              f"TraceReader {io['read_rate']:,.0f} steps/s ({io['read_seconds']:.2f} s)")


PIPELINE_ITERS = 1_100_000          # 9 instructions each: about 9.9 M steps, the issue-14 figure


def pipeline(iters: int = PIPELINE_ITERS, qemu_trace: str | None = None, keep: str | None = None) -> dict:
    """The whole ``difftest run`` of the bench guest, QEMU 10.0 against the model, as a user runs it
    (a child process, no trace cache): wall time, each stage's seconds (the QEMU backend and the
    model run side by side, so their shares overlap), the comparison's, peak RSS (the largest
    process: difftest itself or QEMU), steps and translations compared."""
    d = keep or tempfile.mkdtemp(prefix="difftest-bench-")
    try:
        elf = build_guest(d, iters, 8)
        cmd = [sys.executable, "-m", "difftest", "run", elf, "--backend", "qemu-10.0,model",
               "--max-steps", str(max(20_000_000, iters * 12)), "--timeout", "3600", "--no-cache", "--json",
               "--out", os.path.join(d, "run")]
        if qemu_trace:
            cmd += ["--qemu-trace", qemu_trace]
        t = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t
        rss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        try:
            out = json.loads(p.stdout)
        except ValueError:
            raise OSError(f"difftest run failed (exit {p.returncode}): {p.stderr.strip()[-400:]}") from None
        case = out["cases"][0] if isinstance(out, dict) and "cases" in out else (out[0] if isinstance(out, list) else out)
        pair = case["pairs"][0]
        qemu = next(b for b in case["seconds"] if not b.startswith("model"))
        foot = (case["runs"][qemu].get("footer") or {})
        return {"iters": iters, "exit": p.returncode, "status": case["status"], "wall_seconds": wall,
                "backend_seconds": case["seconds"], "compare_seconds": case.get("compare_seconds", {}),
                "peak_rss_mb": rss_kb / 1024, "steps": pair.get("steps_run"), "steps_compared": pair.get("steps_compared"),
                "xlats_compared": pair.get("xlats_compared"),
                "explicit_accesses": (foot.get("extra") or {}).get("mem_accesses"),
                "qemu_trace": qemu_trace or "auto", "summary": pair.get("summary")}
    finally:
        if keep is None:
            shutil.rmtree(d, ignore_errors=True)


def _print_pipeline(r: dict) -> None:
    w = r["wall_seconds"]
    print(f"pipeline  : difftest run of the bench guest ({r['steps']:,} steps), qemu-10.0 ({r['qemu_trace']}) "
          f"vs model: {r['status']}, exit {r['exit']}")
    print(f"wall      : {w:.1f} s, peak RSS {r['peak_rss_mb']:.0f} MB (largest process)")
    for b, s in r["backend_seconds"].items():
        print(f"  {b:<22} {s:7.1f} s  {s / w:6.1%} of wall (backends run side by side)")
    for ab, s in r["compare_seconds"].items():
        print(f"  compare {ab:<14} {s:7.1f} s  {s / w:6.1%} of wall")
    acc = r["explicit_accesses"]
    print(f"compared  : {r['steps_compared']:,} steps, {r['xlats_compared']:,} translations"
          + (f"; explicit memory accesses executed (QEMU): {acc:,}" if acc is not None else
             "; explicit memory accesses executed: not counted by this QEMU trace source"))


def bench_compare(trace_a, trace_b, *, step_by_step: bool = False, sled=None) -> dict:
    """``difftest diff`` of two saved traces, timed: the bulk comparison of two binary traces
    (difftest.compare_bulk), or with ``step_by_step`` the Step-object loop.  Peak RSS is the
    process's (ru_maxrss: the peak of everything this process did, so run it in a fresh process
    for a clean figure)."""
    from difftest.compare import compare_full
    from difftest.trace import TraceReader
    t, c = time.perf_counter(), time.process_time()
    pr, _ = compare_full(trace_a, trace_b, bulk=not step_by_step, sled=sled)
    dt, dc = time.perf_counter() - t, time.process_time() - c
    n = max(pr.steps_run, 1)
    kinds = [type(TraceReader(p)).__name__ for p in (trace_a, trace_b)]
    return {"status": pr.status, "summary": pr.summary, "steps_run": pr.steps_run, "steps_compared": pr.steps_compared,
            "xlats_compared": pr.xlats_compared, "findings": len(pr.findings), "seconds": dt, "cpu_seconds": dc,
            "steps_per_second": n / dt, "bytes": [os.path.getsize(p) for p in (trace_a, trace_b)], "readers": kinds,
            "bulk": not step_by_step and kinds == ["BinTraceReader"] * 2,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run(args) -> int:
    if getattr(args, "pipeline", False):
        try:
            r = pipeline(args.iters if args.iters != 100_000 else PIPELINE_ITERS, getattr(args, "qemu_trace", None))
        except (OSError, subprocess.CalledProcessError, StopIteration, KeyError) as e:
            print(f"bench: the pipeline run failed: {e}", file=sys.stderr)
            return 125
        print(json.dumps(r, indent=2)) if getattr(args, "json", False) else _print_pipeline(r)
        return 0
    if getattr(args, "compare", None):
        r = bench_compare(*args.compare, step_by_step=args.step_by_step)
        if args.json:
            print(json.dumps(r, indent=2))
        else:
            print(f"compare   : {r['steps_run']:,} steps ({'bulk' if r['bulk'] else 'step by step'}) in "
                  f"{r['seconds']:.2f} s = {r['steps_per_second']:,.0f} steps/s (CPU {r['cpu_seconds']:.2f} s), "
                  f"peak RSS {r['peak_rss_mb']:.0f} MB; files {r['bytes'][0]:,} + {r['bytes'][1]:,} bytes\n"
                  f"result    : {r['summary']}")
        return 0
    try:
        r = measure(args.iters, trace_io=not getattr(args, "no_trace_io", False))
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"bench: cannot build or run the bench guest: {e}", file=sys.stderr)
        return 2
    if getattr(args, "json", False):
        print(json.dumps(r, indent=2))
    else:
        _print(r)
    return 0


def add_subcommand(subparsers) -> None:
    p = subparsers.add_parser("bench", help="measure the model's instructions/s next to QEMU 7.2 on one guest",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--iters", type=int, default=100_000, help="loop iterations (9 instructions each)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--no-trace-io", action="store_true", help="skip the trace file write/read figures")
    p.add_argument("--pipeline", action="store_true",
                   help="the whole `difftest run` of the bench guest (default 1100000 iterations, ~9.9 M steps), "
                        "QEMU 10.0 against the model: wall time, each stage's share, peak RSS, translations compared")
    p.add_argument("--qemu-trace", choices=("log", "plugin"), default=None,
                   help="with --pipeline: the QEMU trace source (default: difftest run's)")
    p.add_argument("--compare", nargs=2, metavar=("TRACE_A", "TRACE_B"),
                   help="instead: time the comparison of two saved traces (bulk for two binary traces)")
    p.add_argument("--step-by-step", action="store_true", help="with --compare: the Step-object loop (bulk=False)")
    p.set_defaults(func=run)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="difftest.bench")
    sub = ap.add_subparsers()
    add_subcommand(sub)
    return run(ap.parse_args(["bench", *(argv if argv is not None else sys.argv[1:])]))


if __name__ == "__main__":
    sys.exit(main())
