"""Where the QEMU binaries are and what version they are (ARCHITECTURE section 5).

``qemu-7.2`` is Debian's /usr/bin/qemu-system-riscv64; ``qemu-10.0`` is the
unpacked Debian backport under .cache/qemu-10.0 which needs QEMU_MODULE_DIR.
Any other backend name is taken as a path to a qemu-system-riscv64.
"""
from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from difftest.backends.result import MISSING_BACKEND, BackendError

ROOT = Path(__file__).resolve().parents[2]
QEMU10_ROOT = ROOT / ".cache" / "qemu-10.0"
KNOWN = {
    "qemu-7.2": (Path("/usr/bin/qemu-system-riscv64"), {}),
    "qemu-10.0": (QEMU10_ROOT / "usr/bin/qemu-system-riscv64",
                  {"QEMU_MODULE_DIR": str(QEMU10_ROOT / "usr/lib/x86_64-linux-gnu/qemu")}),
}
_VERSION_RE = re.compile(r"QEMU emulator version (\d+)\.(\d+)\.(\d+)")


@dataclass(frozen=True)
class QemuBinary:
    name: str                 # backend name as the user gave it
    path: Path
    env: dict = field(default_factory=dict)   # extra environment QEMU needs
    version: str = ""         # e.g. "7.2.22"

    @property
    def version_tuple(self) -> tuple[int, ...]:
        return tuple(int(x) for x in self.version.split(".")) if self.version else (0,)

    @property
    def one_insn_per_tb(self) -> list[str]:
        # 7.2 has -singlestep; 8.1 moved it to the TCG accelerator property.
        if self.version_tuple >= (8, 1):
            return ["-accel", "tcg,one-insn-per-tb=on"]
        return ["-singlestep"]

    def identity(self) -> dict:
        st = self.path.stat()
        return {"path": str(self.path), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "version": self.version}


def _version(path: Path, env: dict) -> str:
    try:
        out = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=30,
                             env={**os.environ, **env}).stdout
    except (OSError, subprocess.TimeoutExpired) as e:
        raise BackendError(MISSING_BACKEND, f"{path}: cannot run it ({e}); run scripts/setup") from None
    m = _VERSION_RE.search(out)
    if not m:
        raise BackendError(MISSING_BACKEND, f"{path}: `--version` does not look like QEMU ({out.strip()[:80]!r})")
    return ".".join(m.groups())


_CACHE: dict[str, QemuBinary] = {}


def locate(backend: str) -> QemuBinary:
    """The QEMU binary for a backend name or path; BackendError(missing-backend) naming the fix."""
    if backend in _CACHE:
        return _CACHE[backend]
    if backend in KNOWN:
        path, env = KNOWN[backend]
    else:
        path, env = Path(backend), {}
        if path.name.startswith("qemu-system-") is False and not path.exists():
            raise BackendError(MISSING_BACKEND, f"unknown backend {backend!r}: use qemu-7.2, qemu-10.0, model "
                                                 f"or the path of a qemu-system-riscv64")
    if not path.is_file() or not os.access(path, os.X_OK):
        raise BackendError(MISSING_BACKEND, f"{backend}: QEMU binary {path} is missing; run scripts/setup")
    b = QemuBinary(name=backend, path=path, env=dict(env), version=_version(path, env))
    _CACHE[backend] = b
    return b
