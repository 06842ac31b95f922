"""Backend "qemu-7.2" / "qemu-10.0" / <path>: run a guest ELF under QEMU and turn
its ``-d exec,int,mmu,nochain`` log into a trace (ARCHITECTURE sections 1 and 5).

The CPU configuration is pinned (machine, CPU properties, RAM, hart count, no
firmware, no network, no monitor) and recorded in the header, together with the
exact command line and environment that reproduce the run.
"""
from __future__ import annotations

import itertools
import os
import shlex
import subprocess
import tempfile
import time
from pathlib import Path

from difftest.backends import finisher, proc, qemu_log, semihosting, tohost as tohost_watch, trap_detail, wfi_end
from difftest.backends.binaries import QemuBinary, locate
from difftest.backends.result import (BAD_ELF, BAD_TRACE, CRASH, EXIT_UNKNOWN, NO_TRACE, STEP_LIMIT, TIMEOUT,
                                      TRUNCATED_LOG, BackendError, RunResult, error_result, sha256_file)
from difftest.trace import EXPOSABLE, Footer, Header, TraceWriter, console_text
from refmodel.devices import tohost_exit_code
from refmodel.platform import DEFAULT as DEFAULT_PLATFORM, Platform

# The hart and machine come from one description shared with the model (refmodel/platform.py):
# H on, MMU and PMP on (PMP is needed for mret to a lower mode on 7.2), F/D off (the model has none),
# Sstc off, -m from its RAM size.  Options are lists built from the description, so one more QEMU
# option (e.g. -icount) is one more entry in ``machine_options``.
# CPU variants.  sv39/sv48/sv57 (>= 8.x) cap satp's modes; measured on 10.0.2: they cap
# hgatp too -- with sv39=on a write of Sv48x4 or Sv57x4 to hgatp is ignored (WARL), with
# sv48=on Sv57x4 is ignored (tests/test_qemu_variants.py).
CPU_VARIANTS = {"default": "", "sv39": "sv39=on", "sv48": "sv48=on", "sv57": "sv57=on"}
VARIANT_MIN_VERSION = {"sv39": (8, 0), "sv48": (8, 0), "sv57": (8, 0)}


# Time follows instructions (docs/ARCHITECTURE.md 7b): each instruction 2^7 ns of virtual time, and a
# halted hart (WFI) jumps to the next timer deadline instead of sleeping, so mtime, the timer interrupt
# and WFI's wake-up are deterministic -- and the model computes them the same way (refmodel/aclint.py;
# refmodel.profile.Profile.icount_shift must equal this shift).
ICOUNT = ["-icount", "shift=7,sleep=off"]
MACHINE = DEFAULT_PLATFORM.qemu_machine() + ICOUNT     # the default platform's machine options


def machine_options(binary: QemuBinary, platform: Platform = DEFAULT_PLATFORM) -> list[str]:
    """QEMU's machine options for ``platform`` (no -cpu, no -kernel): what every run of it shares."""
    return platform.qemu_machine() + ICOUNT + (["-audio", "none"] if binary.version_tuple >= (8, 0) else [])


# What the log shows (trace.EXPOSABLE): traps' cause/epc/tval and TLB fills with the GPA
# between the stages; not htinst (neither -d int nor -d cpu prints it), not priv/V (only decoded
# where qemu_log.FLAGS_LAYOUT is verified, i.e. 10.0), not every translation (only TLB fills), no
# per-step UART.  htval/mtval2, GVA and the trap's target mode come from the trap-detail pass
# (trap_detail.py) when the main run exited normally, and trap.tinst when its gdbstub run
# that reads htinst/mtinst worked (TrapDetail.exposes).
EXPOSES = {k: False for k in EXPOSABLE}
EXPOSES.update({"trap.tval": True, "xlat.gpa": True})


def check_elf(path: Path) -> None:
    """BackendError(bad-elf) unless ``path`` is a complete little-endian RISC-V ELF64."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise BackendError(BAD_ELF, f"{path}: cannot read it ({e.strerror})") from None
    if data[:4] != b"\x7fELF":
        raise BackendError(BAD_ELF, f"{path}: not an ELF file")
    if len(data) < 64 or data[4] != 2 or data[5] != 1:
        raise BackendError(BAD_ELF, f"{path}: not a 64-bit little-endian ELF")
    if int.from_bytes(data[18:20], "little") != 243:     # EM_RISCV
        raise BackendError(BAD_ELF, f"{path}: not a RISC-V ELF (e_machine={int.from_bytes(data[18:20], 'little')})")
    phoff, phentsize, phnum = (int.from_bytes(data[32:40], "little"), int.from_bytes(data[54:56], "little"),
                               int.from_bytes(data[56:58], "little"))
    if phnum == 0 or phoff + phentsize * phnum > len(data):
        raise BackendError(BAD_ELF, f"{path}: truncated ELF (program headers past the end of the file)")
    for k in range(phnum):
        ph = data[phoff + k * phentsize: phoff + (k + 1) * phentsize]
        if int.from_bytes(ph[0:4], "little") == 1:        # PT_LOAD
            off, filesz = int.from_bytes(ph[8:16], "little"), int.from_bytes(ph[32:40], "little")
            if off + filesz > len(data):
                raise BackendError(BAD_ELF, f"{path}: truncated ELF (a PT_LOAD segment ends past the file)")


def cpu_config(binary: QemuBinary, cpu: str, platform: Platform = DEFAULT_PLATFORM) -> str:
    """The -cpu value: rv64 with the description's properties (per QEMU version) and the variant's."""
    if cpu not in CPU_VARIANTS:
        raise BackendError("missing-backend", f"unknown CPU variant {cpu!r} (known: {', '.join(CPU_VARIANTS)})")
    need = VARIANT_MIN_VERSION.get(cpu)
    if need and binary.version_tuple < need:
        raise BackendError("missing-backend", f"CPU variant {cpu!r} needs QEMU >= {need[0]}.{need[1]}; "
                                              f"{binary.name} is {binary.version}")
    return ",".join(["rv64"] + platform.qemu_cpu_props(binary.version_tuple) + [x for x in (CPU_VARIANTS[cpu],) if x])


def command(binary: QemuBinary, elf: Path, cpu: str, log: Path, uart: Path,
            platform: Platform = DEFAULT_PLATFORM) -> list[str]:
    return base_command(binary, elf, cpu, platform) + ["-serial", f"file:{uart}", "-d", "exec,int,mmu,nochain",
                                                       "-D", str(log)]


def base_command(binary: QemuBinary, elf: Path, cpu: str, platform: Platform = DEFAULT_PLATFORM) -> list[str]:
    """The described machine running ``elf``, one instruction per TB, without console or logging."""
    return ([str(binary.path)] + machine_options(binary, platform) + ["-cpu", cpu_config(binary, cpu, platform)]
            + binary.one_insn_per_tb + ["-kernel", str(elf)])


def printable_command(binary: QemuBinary, cmd: list[str]) -> list[str]:
    return ["env"] + [f"{k}={v}" for k, v in sorted(binary.env.items())] + cmd if binary.env else list(cmd)


FINISHER = range(0x100000, 0x101000)     # sifive_test on virt (ARCHITECTURE section 3)


def program_end(elf: Path) -> int | None:
    """The physical address of the ELF's ``tohost`` doubleword (the riscv-tests convention: the
    program ends when it writes a non-zero value there; refmodel/devices.py tohost_exit_code), or
    None.  Its symbol value is taken as the physical address, as QEMU's ELF loader and the model
    place p-environment programs (vaddr = paddr)."""
    from refmodel.loader import symbol_address
    try:
        a = symbol_address(str(elf), "tohost")
    except Exception:                   # an ELF check_elf accepted but elftools cannot read: no tohost
        return None
    return a & ~7 if a is not None else None


def until_finisher(steps, stats: dict):
    """Stop after the step that stores to the finisher.  QEMU >= 8 exits asynchronously (the
    shutdown request is served by the main loop), so the hart runs a few more instructions
    that the guest never meant to run; the model stops at the store.  The store's TLB fill
    is logged right after its exec line, so it identifies the step."""
    for s in steps:
        yield s
        if type(s) is qemu_log.Plain:   # exec lines alone: no translation
            continue
        x = next((x for x in s.xlats if x.access == "store" and x.pa is not None and x.pa in FINISHER), None)
        if x is not None:
            stats.update(finisher_step=s.i, finisher_pc=s.pc, finisher_va=x.va)
            return


def tail_is_safe(rest, look: int = 64) -> bool:
    """Whether the steps QEMU logged after the finisher store (``rest``) cannot hold a second
    finisher write: none at all, or all at one pc without a trap (an instruction that comes back
    to itself, ``j .``, stores nothing).  Then QEMU's status is the first write's (low 8 bits)."""
    pcs, n = set(), 0
    for s in rest:
        for trap, pc in zip(itertools.repeat(None), s.pc) if type(s) is qemu_log.Plain else ((s.trap, s.pc),):
            n += 1
            if trap is not None or n > look:
                return False
            pcs.add(pc)
            if len(pcs) > 1:
                return False
    return n != 1


POLL = 0.05        # seconds between looks at a running QEMU
# The -d log is bounded while QEMU runs (ARCHITECTURE section 5): QEMU is stopped once the log holds
# more than max_steps + 1 exec lines or more than max_steps + 1 trap lines (a fetch-fault storm has
# no exec line at all; every exec line and every trap line is in a step of its own, so the log then
# really holds more than max_steps steps) -- or more than log_bound(max_steps) bytes.
LOG_BYTES_MIN = 16 << 20
LOG_BYTES_PER_STEP = 512
_STEP_LINES = (b"\nTrace ", b"\nriscv_cpu_do_interrupt")


# What QEMU may write between two looks of the watcher (POLL; it logs ~25 MB/s here) and before
# it acts on SIGTERM: the log's peak size is at most log_bound(max_steps) + LOG_LIMIT_SLACK.
LOG_LIMIT_SLACK = 8 << 20


def log_bound(max_steps: int) -> int:
    """The log size past which QEMU is stopped (its peak: at most LOG_LIMIT_SLACK more)."""
    return LOG_BYTES_MIN + LOG_BYTES_PER_STEP * max_steps


def _stop(p: subprocess.Popen) -> None:
    proc.stop(p)                           # SIGTERM lets QEMU flush its log


def _wait(p: subprocess.Popen, log: Path, deadline: float, max_steps: int, stats: dict,
          step_lines: tuple = None, stop_line: bytes | None = None, on_chunk=None) -> str:
    """Wait for QEMU; stop it at ``deadline``, once its log holds more than max_steps steps (lines
    starting with one of ``step_lines`` -- exec or trap lines --, counted incrementally), a
    ``stop_line`` (one line start or a tuple of them: the plugin's "L" at its limit, its "T" at a
    tohost end; then "stop-line") or more than log_bound(max_steps) bytes.
    ``stats`` gets the peak log size seen.  ``on_chunk(lines)``: called with each new run of whole
    lines; True stops QEMU ("on-chunk": tohost.AliasScan found a tohost alias)."""
    step_lines = step_lines or _STEP_LINES
    line_limit, byte_limit = max_steps + 1, log_bound(max_steps)
    seen, pos, rest = [0] * len(step_lines), 0, b""
    stats.setdefault("log_bytes", 0)
    while True:
        if proc.exited(p, POLL):         # not reaped yet: the caller kills what is left of its group
            return "exit"
        if time.monotonic() > deadline:
            _stop(p)
            return "timeout"
        try:
            size = os.stat(log).st_size
        except OSError:
            continue
        stats["log_bytes"] = max(stats["log_bytes"], size)
        if size > byte_limit:
            _stop(p)
            return "log-limit"
        try:
            with open(log, "rb") as f:
                f.seek(pos)
                chunk = f.read(min(size - pos, 64 << 20)) if size > pos else b""
        except OSError:
            continue
        pos += len(chunk)
        buf = rest + chunk
        cut = buf.rfind(b"\n") + 1
        whole, rest = b"\n" + buf[:cut], buf[cut:]
        seen = [n + whole.count(k) for n, k in zip(seen, step_lines)]
        hit = stop_line is not None and next((x for x in ((stop_line,) if isinstance(stop_line, bytes)
                                                           else stop_line) if x in whole), None)
        if hit:
            stats["stop_line"] = hit
            _stop(p)
            return "stop-line"
        if on_chunk is not None and on_chunk(whole):
            _stop(p)
            return "on-chunk"
        if max(seen) > line_limit:
            # No grace for QEMU >= 8 serving a finisher write asynchronously: whether the guest
            # finished is decided from the log (the finisher store within max_steps) and the
            # exit code from the write itself (finisher.py), not from how QEMU ended.  A grace
            # let a fault storm write 80 MB/s on.
            _stop(p)
            return "step-limit"


def run(elf_path, *, backend: str, hgatp_mode: str = "", vs_mode: str = "", cpu: str = "default",
        timeout: float = 60, max_steps: int = 5_000_000, out_path, guest: str | None = None,
        use_cache: bool = True, platform: Platform | None = None, **_ignored) -> RunResult:
    """Run ``elf_path`` under QEMU ``backend``; write the trace to ``out_path``.  Never raises
    for a user-level problem: every failure is a classified RunResult.  ``timeout`` bounds the
    whole run: QEMU, reading its log and the trap-detail and finisher passes."""
    deadline = time.monotonic() + timeout
    elf = Path(elf_path)
    try:
        binary = locate(backend)
        check_elf(elf)
        cpu = cpu or "default"
        platform = platform or DEFAULT_PLATFORM
        cpu_config(binary, cpu, platform)
        end = program_end(elf)
        wfis = wfi_end.wfi_pcs(elf)
    except BackendError as e:
        return error_result(e)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    key = None
    if use_cache:       # True: read and fill the cache; "refresh" (--no-cache): re-run, then replace the entry
        from difftest import cache
        key = cache.key(binary, elf, cpu, max_steps, hgatp_mode, vs_mode,
                        command(binary, Path("ELF"), cpu, Path("LOG"), Path("UART"), platform), platform.describe())
        hit = cache.fetch(key, out_path, guest=guest) if use_cache != "refresh" else None
        if hit is not None:
            return hit
    with proc.sigterm_unwinds():
        res = _run_uncached(binary, elf, hgatp_mode=hgatp_mode, vs_mode=vs_mode, cpu=cpu, timeout=timeout,
                            deadline=deadline, max_steps=max_steps, out_path=out_path, guest=guest,
                            platform=platform, end=end, wfis=wfis)
    return store_if_deterministic(key, out_path, res, max_steps)


def store_if_deterministic(key, out_path, res: RunResult, max_steps: int) -> RunResult:
    """Caches ``res`` under ``key`` (None: no cache) when QEMU and the guest decided it: a finished
    run, or a guest that ran past max_steps (its first max_steps steps).  Timeouts, crashes,
    truncated logs, a log stopped by its byte bound (how many steps it holds depends on timing), runs
    without a trace or an unknown exit code depend on the machine or on the binary's health: never
    served again.  Both trace sources (this module, qemu_plugin) store through here."""
    deterministic = res.status == "ok" or (res.error_class == STEP_LIMIT and res.footer is not None
                                           and res.footer.steps == max_steps)
    if key is not None and res.trace_path and deterministic:
        from difftest import cache
        cache.store(key, out_path, res)
    return res


def _classify_exit(rc: int, err: str, stats: dict, binary: QemuBinary, finisher_value) -> tuple[str, str, int | None]:
    """(status, message, exit_code) of a QEMU that exited by itself with ``rc``."""
    if rc < 0:                       # subprocess: killed by signal -rc (QEMU's abort() included)
        return "crash", f"QEMU died (signal {-rc})" + (f": {err[-2000:]}" if err else ""), None
    if "finisher_step" in stats:
        code = finisher_value
        if code is None and (binary.version_tuple < (8, 0) or stats.get("tail_safe")) and rc < 256:
            # 7.2 exits synchronously at the write; 10.0 logged nothing after it that could write
            # again: QEMU's status is the code's low 8 bits
            code = rc
        if code is None:
            return "error", (f"QEMU exited with status {rc} after the guest's finisher write, whose exit code could "
                             f"not be read ({stats.get('finisher_why', '')}); QEMU >= 8 exits asynchronously, "
                             f"so its status may come from a later write"), None
        return "exit", "", code
    if stats.get("steps", 0) == 0:
        return "no-trace", (f"{binary.path} exited with status {rc} without logging a single step: it ran no "
                            f"guest instruction (is it a working qemu-system-riscv64?)" + (f": {err[-2000:]}" if err else "")), None
    if rc >= 128:
        return "crash", f"QEMU exited with status {rc} before the guest's finisher write" + (
            f": {err[-2000:]}" if err else ""), None
    if rc == 1 and err:
        return "crash", f"QEMU failed: {err[-2000:]}", None
    return "exit", "", rc


MAX_ALIASES = 16                 # virtual aliases of tohost a log-source run looks for (tohost.AliasScan)
TMP_PREFIX = "difftest-qemu-"    # each run's temp dir (-d log, UART, passes); a killed run's is swept


def _run_uncached(binary, elf, *, hgatp_mode, vs_mode, cpu, timeout, deadline, max_steps, out_path, guest,
                  platform: Platform = DEFAULT_PLATFORM, end=None, wfis: frozenset = frozenset(),
                  aliases: tuple = ()) -> RunResult:
    """``end``: tohost's address (a tohost program); ``aliases``: other VAs through which the run
    reaches it, found by a first run's TLB fills (tohost.AliasScan): this run watches them too."""
    proc.sweep_stale(TMP_PREFIX)
    with tempfile.TemporaryDirectory(prefix=TMP_PREFIX) as tmp:
        tmp = Path(tmp)
        proc.claim(tmp)
        log, uart = tmp / "qemu.log", tmp / "uart.txt"
        cmd = command(binary, elf.resolve(), cpu, log, uart, platform)
        shown = printable_command(binary, command(binary, elf.resolve(), cpu, Path("qemu.log"), Path("uart.txt"),
                                                  platform))
        header = Header(guest=guest or elf.name.split(".")[0], elf_sha256=sha256_file(elf), hgatp_mode=hgatp_mode,
                        vs_mode=vs_mode, backend=binary.name, backend_version=binary.version, cpu=cpu,
                        cpu_config=cpu_config(binary, cpu, platform), command=shown,
                        exposes={**EXPOSES, "priv": qemu_log.flags_layout(binary.version) is not None},
                        extra={"qemu_path": str(binary.path), "command_line": shlex.join(shown)},
                        platform=platform.describe())
        stats: dict = {}
        errf = open(tmp / "stderr.txt", "w+b")
        watch = None
        try:
            if end is not None or wfis:
                # a tohost program, or one with WFIs: QEMU runs under the program-end watch (tohost.py:
                # a write watchpoint on tohost and its aliases, breakpoints on the WFIs, wfi_end.py)
                p, watch = tohost_watch.start(cmd, binary.env, (end, *aliases) if end is not None else None, tmp,
                                              deadline, wfis, stdin=subprocess.DEVNULL,
                                              stdout=subprocess.DEVNULL, stderr=errf)
            else:
                p = proc.popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errf,
                               env={**os.environ, **binary.env})
        except OSError as e:
            errf.close()
            return error_result(BackendError("missing-backend", f"cannot start {binary.path}: {e}; run scripts/setup"))
        # a store to tohost through another VA would not stop the watch: look for one in the TLB fills
        # (each run again adds an alias; a program with more than MAX_ALIASES runs into its limits)
        scan = tohost_watch.AliasScan(end, aliases) if end is not None and len(aliases) < MAX_ALIASES else None
        try:
            why = _wait(p, log, deadline, max_steps, stats,
                        on_chunk=(lambda whole: scan.feed(whole) and not watch.end) if scan else None)
        finally:
            proc.kill(p)        # reaps it; on an exception (Ctrl-C) QEMU must not outlive us either
            if watch is not None:
                watch.join(5)
        if why == "on-chunk" and not watch.end:
            errf.close()        # again from the start, watching the aliases too (deterministic under -icount)
            return _run_uncached(binary, elf, hgatp_mode=hgatp_mode, vs_mode=vs_mode, cpu=cpu, timeout=timeout,
                                 deadline=deadline, max_steps=max_steps, out_path=out_path, guest=guest,
                                 platform=platform, end=end, wfis=wfis, aliases=(*aliases, *scan.found))
        if why == "on-chunk":
            why = "exit"        # the watch stopped QEMU at the program's end while the scan saw the alias
        if watch is not None and watch.end and why == "exit":
            why = watch.end     # "tohost" / "wfi": the program ended its own way; the watch stopped QEMU there
        errf.seek(0)
        err = (errf.read() or b"").decode("utf-8", "replace").strip()
        errf.close()
        if log.exists():
            stats["log_bytes"] = max(stats.get("log_bytes", 0), log.stat().st_size)
        detail = None
        if (why == "exit" and log.exists() and p.returncode >= 0) or (why in ("tohost", "wfi") and log.exists()):
            detail = trap_detail.collect(base_command(binary, elf.resolve(), cpu, platform), binary.env, log, tmp,
                                         deadline - time.monotonic(),
                                         tohost=(end, *aliases) if end is not None else None,
                                         wfis=wfis if why == "wfi" else frozenset())
            header.exposes.update(detail.exposes())
        w = TraceWriter(out_path, header)
        parse_timeout, written, checked, last_pc = False, 0, 0, None
        try:
            if log.exists():
                steps = qemu_log.parse_file_fast(log, max_steps=max_steps, stats=stats,
                                                 layout=qemu_log.flags_layout(binary.version))
                if why == "tohost":
                    steps = tohost_watch.drop_replayed_store(steps)
                for s in until_finisher(steps, stats):
                    if type(s) is qemu_log.Plain:          # a run of bare exec lines, as columns
                        w.plain(s.pc, s.priv, s.v, s.raw)
                        written += len(s)
                        last_pc = s.pc[-1]
                    else:
                        if s.trap is not None and detail is not None:
                            detail.fill(s.trap)
                        w.step(s)
                        written += 1
                        last_pc = s.pc if s.trap is None else None
                    if written - checked >= 4096:
                        checked = written
                        if time.monotonic() > deadline:
                            parse_timeout = True
                            break
                if "finisher_step" in stats:
                    stats["tail_safe"] = tail_is_safe(steps)
        except BaseException:
            w.abort()
            raise
        stats.setdefault("steps", 0)
        uart_text = console_text(uart.read_bytes()) if uart.exists() else ""    # bytes, losslessly (trace.py)
        finished = "finisher_step" in stats and not parse_timeout
        finisher_value = None
        if finished:
            v, stats["finisher_why"] = finisher.read_value(base_command(binary, elf.resolve(), cpu, platform), binary.env,
                                                           stats["finisher_pc"], stats["finisher_va"], tmp, deadline)
            finisher_value = finisher.exit_code_of(v) if v is not None else None
            if v is not None and finisher_value is None:
                stats["finisher_why"] = f"the guest wrote {v:#x}, which ends nothing (not a pass/fail value)"
        rc = p.returncode
        exit_code = None
        semi = None
        if why == "exit" and platform.semihosting and not finished and not parse_timeout:
            semi = semihosting.end_of(base_command(binary, elf.resolve(), cpu, platform), binary.env, rc, last_pc,
                                      tmp, deadline, stats)
        if why == "tohost" and not parse_timeout and not stats.get("truncated"):
            # the program wrote a non-zero tohost; QEMU, which spins there, was stopped by the watch
            status, message, exit_code = "exit", "", tohost_exit_code(watch.value)
        elif why == "wfi" and not parse_timeout and not stats.get("truncated"):
            # halted in a WFI that never resumes (wfi_end.py); QEMU, which sleeps there, was stopped
            status, message, exit_code = "exit", wfi_end.ENDED, None
        elif semi is not None:          # QEMU exited at the guest's semihosting exit call
            status, message, exit_code = semihosting.classify(semi, rc)
        elif rc is not None and rc < 0 and why == "exit":
            status, message, _ = _classify_exit(rc, err, stats, binary, None)
        elif finished:
            status, message, exit_code = finisher_end(rc, why, err, stats, binary, finisher_value)
        elif why == "timeout" or parse_timeout:
            status, message = timeout_end(why, parse_timeout, timeout, written, "QEMU's log", "log")
        elif why == "log-limit" or (why == "step-limit" and not stats.get("step_limit")):
            status, message = "step-limit", (f"QEMU was stopped: its log passed {stats['log_bytes']} bytes "
                                             f"(bound {log_bound(max_steps)} for --max-steps {max_steps})"
                                             if why == "log-limit" else
                                             f"stopped after more than {max_steps} steps (--max-steps); QEMU was stopped")
        elif stats.get("step_limit"):
            status, message = "step-limit", f"stopped after {max_steps} steps (--max-steps)"
        elif why in ("tohost", "wfi"):     # stopped by us at its end, but its log cannot be trusted
            status, message = "error", f"QEMU was stopped at the program's end ({why}), but its log ends inside a record"
        else:
            status, message, exit_code = _classify_exit(rc, err, stats, binary, None)
        if status == "exit" and stats.get("truncated"):
            status, message, exit_code = "error", "QEMU's log ends inside a record (truncated log)", None
        truncated = bool(stats.get("truncated")) or status == "crash"
        nsteps = written
        extra = {"log_bytes": stats.get("log_bytes", 0)}
        if detail is not None:
            extra["trap_detail"] = detail.summary()
        if finished:
            extra["finisher"] = {"pc": stats["finisher_pc"], "qemu_status": rc, "value_read": finisher_value is not None}
        if watch is not None and watch.error:
            extra["program_end_watch"] = watch.error
        end_how = (why if why in ("tohost", "wfi") else "semihosting" if semi is not None else "finisher" if finished
                   else "") if status == "exit" else ""
        if semi is not None:
            extra["semihosting"] = {**semi, "qemu_status": rc}
        elif "semihosting_why" in stats:
            extra["semihosting_why"] = stats["semihosting_why"]
        if end_how == "tohost":
            extra["tohost"] = {"pa": end, "value": watch.value, "pc_after": watch.pc, "qemu_status": rc,
                               **({"aliases": list(aliases)} if aliases else {})}
        if end_how == "wfi":
            extra["wfi"] = {**watch.wfi, "pc_after": watch.pc, "qemu_status": rc}
        footer = Footer(status="error" if status == "no-trace" else status, exit_code=exit_code, steps=nsteps,
                        uart=uart_text, message=message, truncated=truncated, extra=extra, end=end_how)
        w.close(footer)
    return result_of(status, out_path, header, footer, message, truncated=bool(stats.get("truncated")))


def finisher_end(rc, why: str, err: str, stats: dict, binary: QemuBinary, finisher_value):
    """(status, message, exit code) of a run whose guest wrote the finisher within max_steps: complete
    however QEMU ended (by itself, or stopped by us while it served the shutdown asynchronously) --
    unless it was stopped and the written value could not be read.  Both trace sources end here."""
    status, message, exit_code = _classify_exit(rc if why == "exit" else 0, err, stats, binary, finisher_value)
    if why != "exit" and finisher_value is None:
        status, message = "error", (f"QEMU was stopped ({why}) after the guest's finisher write, whose exit "
                                    f"code could not be read ({stats.get('finisher_why', '')})")
    return status, message, exit_code


def timeout_end(why: str, parse_timeout: bool, timeout: float, written: int, what: str,
                its: str) -> tuple[str, str]:
    """(status, message) when --timeout ran out: QEMU did not finish (``why == "timeout"``), or reading
    ``what`` (QEMU's log, the plugin trace; ``its``: "log", "trace") did not."""
    if why == "timeout":
        return "timeout", f"the guest did not finish within {timeout:g} s; QEMU was stopped" + (
            f" (its {its} read up to step {written} within the same deadline)" if parse_timeout else "")
    return "timeout", f"reading {what} did not finish within --timeout {timeout:g} s (read up to step {written})"


def result_of(status: str, out_path, header, footer, message: str, *, truncated: bool,
              bad_trace: bool = False) -> RunResult:
    """The RunResult of a finished QEMU run whose trace is written (both trace sources)."""
    if status == "exit":
        return RunResult("ok", str(out_path), header, footer, "", None)
    if status == "no-trace":
        # nothing ran: no trace to compare (a comparison would call the empty run a finding)
        os.unlink(out_path)
        return RunResult("error", None, header, footer, message, NO_TRACE)
    cls = {"timeout": TIMEOUT, "crash": CRASH, "step-limit": STEP_LIMIT}.get(status)
    if cls is None:
        cls = TRUNCATED_LOG if truncated else BAD_TRACE if bad_trace else EXIT_UNKNOWN
    return RunResult("error", str(out_path), header, footer, message, cls)
