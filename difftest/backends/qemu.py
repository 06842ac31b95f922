"""Backend "qemu-7.2" / "qemu-10.0" / <path>: run a guest ELF under QEMU and turn
its ``-d exec,int,mmu,nochain`` log into a trace (ARCHITECTURE sections 1 and 5).

The CPU configuration is pinned (machine, CPU properties, RAM, hart count, no
firmware, no network, no monitor) and recorded in the header, together with the
exact command line and environment that reproduce the run.
"""
from __future__ import annotations

import os
import shlex
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from difftest.backends import qemu_log, trap_detail
from difftest.backends.binaries import QemuBinary, locate
from difftest.backends.result import (BAD_ELF, CRASH, STEP_LIMIT, TIMEOUT, TRUNCATED_LOG, BackendError,
                                      RunResult, error_result, sha256_file)
from difftest.trace import EXPOSABLE, Footer, Header, TraceWriter, console_text

# Pinned CPU: H on, MMU and PMP on (PMP is needed for mret to a lower mode on 7.2).
BASE_CPU = "rv64,h=true,mmu=on,pmp=on"
# CPU variants.  sv39/sv48/sv57 (>= 8.x) cap satp's modes; measured on 10.0.2: they cap
# hgatp too -- with sv39=on a write of Sv48x4 or Sv57x4 to hgatp is ignored (WARL), with
# sv48=on Sv57x4 is ignored (tests/test_qemu_variants.py).
CPU_VARIANTS = {"default": "", "sv39": "sv39=on", "sv48": "sv48=on", "sv57": "sv57=on"}
VARIANT_MIN_VERSION = {"sv39": (8, 0), "sv48": (8, 0), "sv57": (8, 0)}
MACHINE = ["-M", "virt", "-smp", "1", "-m", "128M", "-bios", "none", "-nic", "none", "-monitor", "none",
           "-display", "none"]
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


def cpu_config(binary: QemuBinary, cpu: str) -> str:
    if cpu not in CPU_VARIANTS:
        raise BackendError("missing-backend", f"unknown CPU variant {cpu!r} (known: {', '.join(CPU_VARIANTS)})")
    need = VARIANT_MIN_VERSION.get(cpu)
    if need and binary.version_tuple < need:
        raise BackendError("missing-backend", f"CPU variant {cpu!r} needs QEMU >= {need[0]}.{need[1]}; "
                                              f"{binary.name} is {binary.version}")
    return ",".join(x for x in (BASE_CPU, CPU_VARIANTS[cpu]) if x)


def command(binary: QemuBinary, elf: Path, cpu: str, log: Path, uart: Path) -> list[str]:
    return base_command(binary, elf, cpu) + ["-serial", f"file:{uart}", "-d", "exec,int,mmu,nochain", "-D", str(log)]


def base_command(binary: QemuBinary, elf: Path, cpu: str) -> list[str]:
    """The pinned machine running ``elf``, one instruction per TB, without console or logging."""
    extra = ["-audio", "none"] if binary.version_tuple >= (8, 0) else []
    return ([str(binary.path)] + MACHINE + extra + ["-cpu", cpu_config(binary, cpu)] + binary.one_insn_per_tb
            + ["-kernel", str(elf)])


def printable_command(binary: QemuBinary, cmd: list[str]) -> list[str]:
    return ["env"] + [f"{k}={v}" for k, v in sorted(binary.env.items())] + cmd if binary.env else list(cmd)


FINISHER = range(0x100000, 0x101000)     # sifive_test on virt (ARCHITECTURE section 3)


def until_finisher(steps, stats: dict):
    """Stop after the step that stores to the finisher.  QEMU >= 8 exits asynchronously (the
    shutdown request is served by the main loop), so the hart runs a few more instructions
    that the guest never meant to run; the model stops at the store.  The store's TLB fill
    is logged right after its exec line, so it identifies the step."""
    for s in steps:
        yield s
        if any(x.access == "store" and x.pa is not None and x.pa in FINISHER for x in s.xlats):
            stats["finisher_step"] = s.i
            return


POLL = 0.05        # seconds between looks at a running QEMU
STEP_LIMIT_GRACE = 2.0   # seconds a QEMU past max_steps may take to exit by itself


def _stop(p: subprocess.Popen) -> None:
    p.send_signal(signal.SIGTERM)          # SIGTERM lets QEMU flush its log
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def _wait(p: subprocess.Popen, log: Path, timeout: float, max_steps: int) -> str:
    """Wait for QEMU; stop it on timeout or once its log holds more exec lines than
    max_steps (counted incrementally, so a runaway guest does not fill the disk)."""
    deadline = time.monotonic() + timeout
    seen, pos, tail = 0, 0, b""
    while True:
        try:
            p.wait(timeout=POLL)
            return "exit"
        except subprocess.TimeoutExpired:
            pass
        if time.monotonic() > deadline:
            _stop(p)
            return "timeout"
        try:
            with open(log, "rb") as f:
                f.seek(pos)
                chunk = f.read()
        except OSError:
            continue
        pos += len(chunk)
        seen += (tail + chunk).count(b"\nTrace ")
        tail = chunk[-7:]
        if seen > max_steps + 1:
            # QEMU >= 8 serves the finisher's shutdown request asynchronously, so a guest that
            # has already written the finisher keeps spinning for a while -- longer on a loaded
            # machine.  Give it a moment to exit on its own before calling it a step limit.
            try:
                p.wait(timeout=STEP_LIMIT_GRACE)
                return "exit"
            except subprocess.TimeoutExpired:
                _stop(p)
                return "step-limit"


def _exit_code(rc: int) -> int:
    # sifive_test finisher: 0x5555 -> exit 0; (code << 16) | 0x3333 -> exit code.
    return rc


def run(elf_path, *, backend: str, hgatp_mode: str = "", vs_mode: str = "", cpu: str = "default",
        timeout: float = 60, max_steps: int = 5_000_000, out_path, guest: str | None = None,
        use_cache: bool = True, **_ignored) -> RunResult:
    """Run ``elf_path`` under QEMU ``backend``; write the trace to ``out_path``.  Never raises
    for a user-level problem: every failure is a classified RunResult."""
    elf = Path(elf_path)
    try:
        binary = locate(backend)
        check_elf(elf)
        cpu = cpu or "default"
        cpu_config(binary, cpu)
    except BackendError as e:
        return error_result(e)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    key = None
    if use_cache:       # True: read and fill the cache; "refresh" (--no-cache): re-run, then replace the entry
        from difftest import cache
        key = cache.key(binary, elf, cpu, max_steps, hgatp_mode, vs_mode, command(binary, Path("ELF"), cpu,
                                                                                   Path("LOG"), Path("UART")))
        hit = cache.fetch(key, out_path, guest=guest) if use_cache != "refresh" else None
        if hit is not None:
            return hit
    res = _run_uncached(binary, elf, hgatp_mode=hgatp_mode, vs_mode=vs_mode, cpu=cpu, timeout=timeout,
                        max_steps=max_steps, out_path=out_path, guest=guest)
    if key is not None and res.trace_path and res.error_class not in (TIMEOUT, CRASH):
        from difftest import cache
        cache.store(key, out_path, res)
    return res


def _run_uncached(binary, elf, *, hgatp_mode, vs_mode, cpu, timeout, max_steps, out_path, guest) -> RunResult:
    with tempfile.TemporaryDirectory(prefix="difftest-qemu-") as tmp:
        tmp = Path(tmp)
        log, uart = tmp / "qemu.log", tmp / "uart.txt"
        cmd = command(binary, elf.resolve(), cpu, log, uart)
        shown = printable_command(binary, command(binary, elf.resolve(), cpu, Path("qemu.log"), Path("uart.txt")))
        header = Header(guest=guest or elf.name.split(".")[0], elf_sha256=sha256_file(elf), hgatp_mode=hgatp_mode,
                        vs_mode=vs_mode, backend=binary.name, backend_version=binary.version, cpu=cpu,
                        cpu_config=cpu_config(binary, cpu), command=shown,
                        exposes={**EXPOSES, "priv": qemu_log.flags_layout(binary.version) is not None},
                        extra={"qemu_path": str(binary.path), "command_line": shlex.join(shown)})
        status, message, exit_code = "exit", "", None
        errf = open(tmp / "stderr.txt", "w+b")
        try:
            p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errf,
                                 env={**os.environ, **binary.env}, start_new_session=True)
        except OSError as e:
            errf.close()
            return error_result(BackendError("missing-backend", f"cannot start {binary.path}: {e}; run scripts/setup"))
        why = _wait(p, log, timeout, max_steps)
        if why == "timeout":
            status, message = "timeout", f"the guest did not finish within {timeout:g} s; QEMU was stopped"
        elif why == "step-limit":
            status, message = "step-limit", f"stopped after {max_steps} steps (--max-steps); QEMU was stopped"
        errf.seek(0)
        err = errf.read()
        errf.close()
        err = (err or b"").decode("utf-8", "replace").strip()
        rc = p.returncode
        if status == "exit":
            if rc < 0 or rc >= 128:
                sig = -rc if rc < 0 else rc - 128
                status = "crash"
                message = f"QEMU died (signal {sig}, exit {rc})" + (f": {err[-2000:]}" if err else "")
            elif rc == 1 and err and (not log.exists() or log.stat().st_size == 0):
                # QEMU refused to start (bad option, unloadable kernel): not a guest's exit code 1
                status, message = "crash", f"QEMU failed to start: {err[-2000:]}"
            else:
                exit_code = _exit_code(rc)
        stats: dict = {}
        detail = None
        if status == "exit" and log.exists():
            detail = trap_detail.collect(base_command(binary, elf.resolve(), cpu), binary.env, log, tmp, timeout)
            header.exposes.update(detail.exposes())
        w = TraceWriter(out_path, header)
        try:
            if log.exists():
                steps = qemu_log.parse_file(log, max_steps=max_steps, stats=stats,
                                            layout=qemu_log.flags_layout(binary.version))
                for s in until_finisher(steps, stats):
                    if s.trap is not None and detail is not None:
                        detail.fill(s.trap)
                    w.step(s)
        except BaseException:
            w.abort()
            raise
        uart_text = console_text(uart.read_bytes()) if uart.exists() else ""    # bytes, losslessly (trace.py)
        truncated = bool(stats.get("truncated")) or status == "crash"
        if stats.get("step_limit") and status in ("exit", "step-limit"):
            status, message, exit_code = "step-limit", f"stopped after {max_steps} steps (--max-steps)", None
        elif stats.get("truncated") and status == "exit":
            status, message = "error", "QEMU's log ends inside a record (truncated log)"
        nsteps = stats["finisher_step"] + 1 if "finisher_step" in stats else stats.get("steps", 0)
        footer = Footer(status=status, exit_code=exit_code, steps=nsteps, uart=uart_text,
                        message=message, truncated=truncated,
                        extra={"trap_detail": detail.summary()} if detail is not None else {})
        w.close(footer)
    if status == "exit":
        return RunResult("ok", str(out_path), header, footer, "", None)
    cls = {"timeout": TIMEOUT, "crash": CRASH, "step-limit": STEP_LIMIT, "error": TRUNCATED_LOG}[status]
    return RunResult("error", str(out_path), header, footer, message, cls)
