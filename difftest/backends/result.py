"""The result of one backend run (ARCHITECTURE section 5) and its error classes.

A run never raises for a user-level problem: it returns a ``RunResult`` whose
``error_class`` says what went wrong in words a user can act on.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from difftest.trace import Footer, Header

# error_class values (ARCHITECTURE section 5)
MISSING_BACKEND = "missing-backend"   # QEMU binary (or model) not installed
BAD_ELF = "bad-elf"                   # not an ELF, not RISC-V, truncated
TIMEOUT = "timeout"                   # guest never finished: QEMU killed, partial trace kept
CRASH = "crash"                       # QEMU aborted or died on a signal
TRUNCATED_LOG = "truncated-log"       # the -d log ended in the middle of a record
STEP_LIMIT = "step-limit"             # more steps than max_steps (or a log past its size bound)
NO_TRACE = "no-trace"                 # the binary exited without logging a step: it ran nothing
EXIT_UNKNOWN = "exit-unknown"         # the guest's finisher write was seen but its value could not be read
BAD_TRACE = "bad-trace"               # QEMU's trace sources do not fit together (plugin: a trap it cannot place)
ERROR_CLASSES = (MISSING_BACKEND, BAD_ELF, TIMEOUT, CRASH, TRUNCATED_LOG, STEP_LIMIT, NO_TRACE, EXIT_UNKNOWN,
                 BAD_TRACE)


@dataclass
class RunResult:
    status: str                       # "ok" | "error"
    trace_path: str | None
    header: Header | None
    footer: Footer | None
    message: str = ""
    error_class: str | None = None
    cached: bool = False              # the trace came from difftest.cache


class BackendError(Exception):
    """A classified, user-facing failure before or while running a backend."""

    def __init__(self, error_class: str, message: str):
        super().__init__(message)
        self.error_class = error_class


def error_result(e: BackendError) -> RunResult:
    return RunResult(status="error", trace_path=None, header=None, footer=None, message=str(e),
                     error_class=e.error_class)


def sha256_file(path) -> str:
    """The SHA-256 of a file's bytes: the ELF identity a trace header records (Header.elf_sha256)
    and the trace cache keys on."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
