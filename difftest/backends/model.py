"""Backend "model": runs the reference model (``refmodel.hart.Hart``) on an ELF
and writes its trace with ``difftest.trace`` (ARCHITECTURE sections 4 and 5).

The model records every translation with its walk, so it exposes everything
the schema has except full register state (that is for bisect windows).
It runs in-process, which is what lets ``tests/test_wrong_model.py`` break one
translation rule with monkeypatch and watch the comparator find it.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from difftest.trace import EXPOSABLE, Footer, Header, TraceWriter

from difftest.backends.result import RunResult, sha256_file

MODEL_VERSION = "refmodel 0.1"
EXPOSES = {k: k != "regs" for k in EXPOSABLE}
CHECK_EVERY = 2048                       # steps between wall-clock checks


class ModelError(Exception):
    """A user-facing error of the model backend (bad ELF, unknown CPU variant)."""

    def __init__(self, error_class: str, message: str):
        super().__init__(message)
        self.error_class = error_class


def _result(status, trace_path, header, footer, message, error_class):
    return RunResult(status=status, trace_path=trace_path, header=header, footer=footer, message=message,
                     error_class=error_class)


def _io_message(path, e: OSError) -> str:
    return f"cannot write the trace {path}: {e.strerror or e}"


def check_backend_name(backend: str) -> None:
    """``model@X`` names the profile X explicitly: an unknown X is a usage error, never silently
    the qemu-10.0 profile (plain ``model`` takes its case's QEMU, defaulting to qemu-10.0)."""
    from refmodel.profile import PROFILES
    like = backend.partition("@")[2]
    if backend.startswith("model@") and like not in PROFILES:
        raise ModelError("usage", f"unknown model profile in backend {backend!r} (known: {', '.join(PROFILES)})")


def profile_for(cpu: str = "default", like: str | None = None):
    """The model profile mirroring a QEMU CPU variant ("default", "sv39", ...) or a profile name.
    ``like`` is the QEMU the model is compared with ("qemu-7.2", "qemu-10.0"): its profile
    holds that QEMU's spec-allowed choices (e.g. htinst policy); default qemu-10.0."""
    from refmodel.profile import PROFILES
    base = like if like in PROFILES else "qemu-10.0"
    if cpu in ("", "default", None):
        return PROFILES[base]
    for name in (cpu, f"{base}-{cpu}", f"qemu-10.0-{cpu}"):
        if name in PROFILES:
            return PROFILES[name]
    raise ModelError("missing-backend", f"no model profile for CPU variant {cpu!r} "
                                         f"(known: default, {', '.join(sorted(PROFILES))})")


def make_hart(elf_path, profile, platform=None, dtb: bytes | None = None):
    """The hart at reset with ``elf_path`` loaded -- or, on a platform with a firmware
    (refmodel/loader.py FirmwarePlatform), as QEMU virt starts ``-bios firmware -kernel elf_path``
    with QEMU's device tree ``dtb`` (difftest/firmware.py)."""
    from refmodel.hart import Hart
    try:
        if getattr(platform, "firmware", None):
            from refmodel.loader import boot_firmware
            if dtb is None:
                raise ModelError("usage", "a firmware run needs QEMU's device tree (difftest/firmware.py)")
            h = Hart(profile)
            boot_firmware(h, platform.firmware, os.fspath(elf_path), dtb)
            return h
        return Hart.from_elf(os.fspath(elf_path), profile)
    except (OSError, ValueError) as e:
        raise ModelError("bad-elf", f"{elf_path}: cannot load ({e})") from None
    except Exception as e:          # elftools raises its own error types for malformed files
        if type(e).__module__.startswith("elftools"):
            raise ModelError("bad-elf", f"{elf_path}: not a loadable ELF ({e})") from None
        raise


def run(elf_path, *, backend: str = "model", hgatp_mode: str = "", vs_mode: str = "", cpu: str = "default",
        timeout: float = 60, max_steps: int = 5_000_000, out_path, guest: str | None = None,
        command: list[str] | None = None, profile=None, cancel=None, platform=None, dtb: bytes | None = None,
        irq_schedule=None, irq_bound: int = 64, **_ignored) -> RunResult:
    """Run the model; write the trace to ``out_path``.  Never raises for a user-level problem.
    ``cancel`` (a threading.Event): set by the engine when it unwinds while the model runs in its
    thread beside QEMU; the run stops within CHECK_EVERY steps and leaves no trace file.
    ``backend`` is the name the trace header carries: "model", or "model@qemu-7.2" when the
    engine runs one model per QEMU profile (ARCHITECTURE section 7).  ``platform``: the hart and
    machine (refmodel/platform.py) -- the profile's misa, RAM and FDT address come from it, as
    QEMU's command line does.  ``irq_schedule`` ({step: mip bit}): the interrupt points of the QEMU
    run the model is compared with, which the model then follows (refmodel.interrupts.InterruptSync,
    ``irq_bound`` steps of holding back at most)."""
    from refmodel.platform import DEFAULT
    elf_path = Path(elf_path)
    platform = platform or DEFAULT
    try:
        prof = (profile or profile_for(cpu)).on(platform)
        if not elf_path.is_file():
            raise ModelError("bad-elf", f"{elf_path}: no such file")
        hart = make_hart(elf_path, prof, platform, dtb)
        if irq_schedule is not None:
            hart.sync_interrupts(irq_schedule, irq_bound)
    except ModelError as e:
        return _result("error", None, None, None, str(e), e.error_class)
    header = Header(guest=guest or elf_path.name.split(".")[0], elf_sha256=sha256_file(elf_path),
                    hgatp_mode=hgatp_mode, vs_mode=vs_mode, backend=backend or "model",
                    backend_version=MODEL_VERSION,
                    cpu=cpu or "default", cpu_config=prof.name,
                    command=command or ["difftest", "run", str(elf_path), "--backend", "model"],
                    exposes=dict(EXPOSES), platform=platform.describe())
    out_path = Path(out_path)
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        w = TraceWriter(out_path, header)
    except OSError as e:
        return _result("error", None, header, None, _io_message(out_path, e), "io-error")
    n = 0
    batch: list = []
    status, message = "exit", ""
    deadline = time.monotonic() + timeout
    try:
        add = batch.append
        for r in hart.records(max_steps=max_steps):     # compact records: no Step objects on this path
            add(r)
            n += 1
            if n % CHECK_EVERY == 0:
                w.extend(batch)
                batch.clear()
                if time.monotonic() > deadline:
                    status, message = "timeout", f"the model did not finish within {timeout:g} s ({n} steps)"
                    break
                if cancel is not None and cancel.is_set():      # the engine is unwinding (Ctrl-C, SIGTERM)
                    w.abort()
                    return _result("error", None, header, None, "cancelled", "interrupted")
        else:
            w.extend(batch)
            if not getattr(hart, "halted", True):
                status, message = "step-limit", f"stopped after {n} steps (--max-steps)"
    except OSError as e:     # the trace file cannot be written (disk full): no trace, nothing half-written
        w.abort()
        return _result("error", None, header, None, _io_message(out_path, e), "io-error")
    except Exception as e:   # a model bug must give a classified error and a readable trace, not a traceback
        status, message = "crash", f"the model raised {type(e).__name__}: {e} at step {n}"
        try:
            w.extend(batch)          # the steps before the crash stand
        except OSError as e2:
            w.abort()
            return _result("error", None, header, None, _io_message(out_path, e2), "io-error")
    end = getattr(hart, "end", "") if status == "exit" else ""
    if end == "wfi":                 # an end, but no pass/fail value: exit code None, never 0
        from difftest.backends.wfi_end import ENDED
        message = ENDED
    # uart_output: one character per UART byte (chr(byte)), the lossless form trace.py documents
    footer = Footer(status=status, exit_code=getattr(hart, "exit_code", None) if status == "exit" else None,
                    steps=n, uart=getattr(hart, "uart_output", "") or "", message=message,
                    end=end)
    try:
        w.close(footer)
    except OSError as e:
        return _result("error", None, header, None, _io_message(out_path, e), "io-error")
    ok = status == "exit"
    return _result("ok" if ok else "error", str(out_path), header, footer, message, None if ok else status)


def hart_at(elf_path, step: int, *, profile, platform=None, dtb: bytes | None = None, irq_schedule=None,
            irq_bound: int = 64):
    """The model's hart as it stood before ``step`` of a run: re-runs the model there on the run's
    platform, following the run's interrupt points when it followed them (``irq_schedule``, as
    ``run``): without them a run that took an interrupt would be re-run to a different instruction."""
    hart = make_hart(elf_path, profile, platform, dtb)
    if irq_schedule:
        hart.sync_interrupts(irq_schedule, irq_bound)
    if step > 0:
        for _ in hart.records(max_steps=step):
            pass
    return hart


def walk_at(elf_path, *, step: int, va: int, access: str, priv: int, v: int, cpu: str = "default", profile=None,
            platform=None, dtb: bytes | None = None, irq_schedule=None, irq_bound: int = 64):
    """The model's page-table walk for one translation as the hart stood before ``step``:
    re-runs the model to that step (``hart_at``) and asks ``hart.translate(..., record_walk=True)``
    (side-effect free).  Returns a list of ``trace.WalkLevel`` or None."""
    try:
        hart = hart_at(elf_path, step, profile=profile or profile_for(cpu), platform=platform, dtb=dtb,
                       irq_schedule=irq_schedule, irq_bound=irq_bound)
        try:
            t = hart.translate(va, access, priv, v, record_walk=True)
        except TypeError:
            t = hart.translate(va, access, priv, v)
        walk = getattr(t, "walk", None)
        return list(walk) if walk else None
    except Exception:        # a report without the walk is still a report
        return None
