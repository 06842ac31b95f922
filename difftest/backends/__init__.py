"""Backends: ``run(elf, backend=...)`` dispatches to QEMU or the model (ARCHITECTURE section 5)."""
from __future__ import annotations

from difftest.backends.result import RunResult


def run(elf_path, *, backend: str, hgatp_mode: str = "", vs_mode: str = "", cpu: str = "default",
        timeout: float = 60, max_steps: int = 5_000_000, out_path, use_cache: bool = True, **kw) -> RunResult:
    """Run one backend on one ELF; always a RunResult, never a traceback."""
    args = dict(backend=backend, hgatp_mode=hgatp_mode, vs_mode=vs_mode, cpu=cpu, timeout=timeout,
                max_steps=max_steps, out_path=out_path, **kw)
    if backend == "model" or backend.startswith("model@"):
        # "model@qemu-7.2": the model with that QEMU's spec-allowed choices (ARCHITECTURE section 7)
        from difftest.backends import model
        if "profile" not in args:
            try:
                model.check_backend_name(backend)
                args["profile"] = model.profile_for(cpu, like=backend.partition("@")[2] or None)
            except model.ModelError as e:
                return RunResult("error", None, None, None, str(e), e.error_class)
        return model.run(elf_path, **args)
    trace_source = kw.get("qemu_trace") or "log"
    if trace_source == "auto":
        trace_source = auto_source(backend)
        args["qemu_trace"] = trace_source
    if trace_source == "plugin":
        # the difftrace TCG plugin instead of the -d exec,int,mmu log (qemu_plugin.py)
        from difftest.backends import qemu_plugin
        return qemu_plugin.run(elf_path, use_cache=use_cache, **args)
    if trace_source != "log":
        return RunResult("error", None, None, None, f"unknown QEMU trace source {trace_source!r} (auto, log or plugin)",
                         "usage")
    from difftest.backends import qemu
    return qemu.run(elf_path, use_cache=use_cache, **args)


def auto_source(backend: str) -> str:
    """``--qemu-trace auto``: the plugin where its API reads registers (QEMU >= 9.2: privilege, V and
    every trap-entry CSR from the one run), the log elsewhere (7.2: its log shows priv-less but
    faulting translations with their GPA, which the plugin API cannot; the catalogue's 7.2 findings
    are written as the log shows them)."""
    try:
        from difftest.backends.binaries import locate
        from difftest.backends.qemu_plugin import api_version
        return "plugin" if api_version(locate(backend)) >= 4 else "log"
    except Exception:          # an unknown binary: the log source reports what is wrong with it
        return "log"
