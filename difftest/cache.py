"""Trace cache: record a QEMU run once, check it many times.

Entries live under ``.cache/traces/<key>.trace.jsonl.gz`` (+ ``.json`` with the
RunResult's status/message).  The key hashes the QEMU binary's identity (path,
size, mtime, version), the ELF's sha256, the CPU variant, the step limit and
the full command line and environment, and the backend's own source (qemu.py,
qemu_log.py), so any change re-runs QEMU.  Writes are
atomic (temp file + ``os.replace``) so concurrent xdist workers never see a
half-written entry; two workers racing on one key both write the same bytes.
Timeouts and crashes are never cached.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

from difftest.backends.result import RunResult, sha256_file
from difftest.trace import Footer, TraceError, TraceReader

CACHE_DIR = Path(os.environ.get("DIFFTEST_TRACE_CACHE", Path(__file__).resolve().parents[1] / ".cache" / "traces"))


def _backend_code() -> str:
    """The QEMU backend's own source: a parser change must not serve traces parsed the old way.
    (A change of the trace file format itself bumps the "v" of ``key``.)"""
    here = Path(__file__).resolve().parent / "backends"
    h = hashlib.sha256()
    for f in sorted(here.glob("*.py")):     # every backend module: a new one cannot be forgotten here
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def key(binary, elf, cpu: str, max_steps: int, hgatp_mode: str, vs_mode: str, cmd: list[str]) -> str:
    ident = {"qemu": binary.identity(), "env": binary.env, "elf": sha256_file(elf), "cpu": cpu, "code": _backend_code(),
             "max_steps": max_steps, "modes": [hgatp_mode, vs_mode], "cmd": cmd, "v": 2}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:40]


def _atomic_copy(src, dst) -> None:
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=dst.name + ".", suffix=".tmp")
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _atomic_write(dst: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=dst.name + ".", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, dst)


def fetch(k: str, out_path, guest: str | None = None) -> RunResult | None:
    """Copy a cached trace to ``out_path`` and return its RunResult, or None on a miss."""
    trace, meta = CACHE_DIR / f"{k}.trace.jsonl.gz", CACHE_DIR / f"{k}.json"
    try:
        m = json.loads(meta.read_text())
        _atomic_copy(trace, out_path)
        r = TraceReader(out_path)
        header = r.header
        footer = Footer(**m["footer"])
    except (OSError, ValueError, KeyError, TypeError, TraceError):
        return None
    if guest and header.guest != guest:
        return None     # same bytes under another name: re-run so the header names this guest
    return RunResult(m["status"], os.fspath(out_path), header, footer, m.get("message", ""), m.get("error_class"),
                     cached=True)


def store(k: str, trace_path, res: RunResult) -> None:
    try:
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        _atomic_copy(trace_path, CACHE_DIR / f"{k}.trace.jsonl.gz")
        _atomic_write(CACHE_DIR / f"{k}.json", json.dumps({
            "status": res.status, "message": res.message, "error_class": res.error_class,
            "footer": asdict(res.footer) if res.footer else None}))
    except OSError:
        pass            # a cache that cannot be written is only slower
