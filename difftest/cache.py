"""Trace cache: record a QEMU run once, check it many times.

Entries live under ``.cache/traces/<key>.trace.bin`` (the binary format, difftest.tracebin) (+ ``.json`` with the
RunResult's status/message).  The key hashes the QEMU binary's identity (path,
size, mtime, version), the ELF's sha256, the CPU variant, the step limit and
the full command line and environment, and the backend's own source (qemu.py,
qemu_log.py), so any change re-runs QEMU.  Timeouts and crashes are never cached.

Nothing damaged is ever used or stored:

* ``store`` copies the trace to a unique temporary file in the cache, reads it whole
  (``trace.verify``: gzip CRC, header, every record, footer) and only then renames it into
  place; the ``.json`` records the trace file's sha256 and a sha256 of its own content.
* ``fetch`` checks both sums and the trace's header before handing out a copy; an entry that
  fails is moved to ``.cache/traces/quarantine/`` (kept for a post-mortem, never read again),
  a warning goes to stderr, and the caller re-records -- whose ``store`` replaces the entry.
* ``--no-cache`` (``use_cache="refresh"`` in the QEMU backend) does not read the cache but
  does store the fresh, verified result: it replaces a bad entry instead of leaving it.

Writes are atomic (unique temp file + ``os.replace``) and an entry's two files are replaced
together under an flock (``fetch`` reads them under a shared one), so concurrent runs and xdist
workers never see a half-written entry or a record paired with another run's trace.
"""
from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from difftest.backends.result import RunResult, sha256_file
from difftest.trace import Footer, TraceError, TraceReader, _bad_footer, verify
from difftest.tracebin import SUFFIX   # v3 of the key: entries are binary traces (gzip JSON entries are never looked up)

CACHE_DIR = Path(os.environ.get("DIFFTEST_TRACE_CACHE", Path(__file__).resolve().parents[1] / ".cache" / "traces"))
META_VERSION = 3


@functools.lru_cache(maxsize=None)
def _backend_code() -> str:
    """The QEMU backend's own source: a parser change must not serve traces parsed the old way.
    (A change of the trace file format itself bumps the "v" of ``key``.)  Hashed once per process,
    at its first run: a long nightly whose files are edited under it keeps running its old code, and
    must keep storing under its old code's key -- hashing the files at every call once stored traces
    made by the old parser under the new parser's key (seen: a 7.2 PA fix served unfixed traces)."""
    here = Path(__file__).resolve().parent / "backends"
    h = hashlib.sha256()
    for f in sorted(here.glob("*.py")):     # every backend module: a new one cannot be forgotten here
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def key(binary, elf, cpu: str, max_steps: int, hgatp_mode: str, vs_mode: str, cmd: list[str],
        platform: dict | None = None) -> str:
    """``platform``: the hart and machine description (refmodel/platform.py Platform.describe) --
    a trace of one RAM size or ISA is never served for another."""
    ident = {"qemu": binary.identity(), "env": binary.env, "elf": sha256_file(elf), "cpu": cpu, "code": _backend_code(),
             "max_steps": max_steps, "modes": [hgatp_mode, vs_mode], "cmd": cmd, "platform": platform or {}, "v": 4}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:40]


class _Bad(Exception):
    """A cache entry that fails its checks."""


def _tmp_beside(dst: Path) -> str:
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".tmp")
    os.close(fd)
    return tmp


def _copy_hashing(src, dst) -> str:
    """Copy ``src`` to ``dst``; the sha256 of the bytes written."""
    h = hashlib.sha256()
    with open(src, "rb") as fi, open(dst, "wb") as fo:
        while chunk := fi.read(1 << 20):
            h.update(chunk)
            fo.write(chunk)
    return h.hexdigest()


def _meta_sum(m: dict) -> str:
    return hashlib.sha256(json.dumps({k: v for k, v in m.items() if k != "check"}, sort_keys=True).encode()).hexdigest()


def _read_meta(meta: Path) -> dict:
    try:
        m = json.loads(meta.read_text("utf-8"))
    except (OSError, ValueError) as e:
        raise _Bad(f"unreadable entry record ({e})") from None
    if type(m) is not dict or m.get("v") != META_VERSION or m.get("check") != _meta_sum(m):
        raise _Bad("entry record fails its checksum")
    if m.get("status") not in ("ok", "error") or not isinstance(m.get("trace_sha256"), str) \
            or (m.get("footer") is not None and _bad_footer(m["footer"])):
        raise _Bad("entry record has bad fields")
    return m


def quarantine(k: str, why: str) -> None:
    """Move entry ``k`` aside (never read again, kept to look at) and say so on stderr."""
    q = CACHE_DIR / "quarantine"
    stamp = f"{time.strftime('%Y%m%dT%H%M%S')}.{os.getpid()}.{os.urandom(4).hex()}"    # never overwrites one
    moved = False
    for suffix in (SUFFIX, ".json"):
        p = CACHE_DIR / f"{k}{suffix}"
        try:
            q.mkdir(parents=True, exist_ok=True)
            os.replace(p, q / f"{k}.{stamp}{suffix}")
            moved = True
        except FileNotFoundError:
            pass
        except OSError:
            try:
                p.unlink()
            except OSError:
                pass
    if moved:
        print(f"difftest: cached QEMU trace {k} is damaged ({why}); moved to {q}/ and re-running QEMU",
              file=sys.stderr)


@contextlib.contextmanager
def _locked(k: str, how: int):
    """An flock on the entry: fetch reads the pair (record + trace) under a shared lock, store
    and quarantine replace it under an exclusive one -- never a record of one run with the trace
    of another (two QEMU runs of one case differ in their raw log lines)."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with open(CACHE_DIR / f".{k}.lock", "a") as f:
        fcntl.flock(f, how)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _meta_bytes(meta: Path) -> bytes | None:
    try:
        return meta.read_bytes()
    except OSError:
        return None


def fetch(k: str, out_path, guest: str | None = None) -> RunResult | None:
    """Copy a cached trace to ``out_path`` and return its RunResult, or None on a miss.  An entry
    that fails a check is quarantined (a miss: the caller re-records and replaces it)."""
    trace, meta = CACHE_DIR / f"{k}{SUFFIX}", CACHE_DIR / f"{k}.json"
    if not trace.exists() and not meta.exists():
        return None
    out_path = Path(out_path)
    tmp = None
    try:
        with _locked(k, fcntl.LOCK_SH):
            seen = _meta_bytes(meta)
            try:
                m = _read_meta(meta)
                out_path.parent.mkdir(parents=True, exist_ok=True)
                tmp = _tmp_beside(out_path)
                try:
                    got = _copy_hashing(trace, tmp)
                except FileNotFoundError:
                    raise _Bad("the trace file is missing") from None
                if got != m["trace_sha256"]:
                    raise _Bad("trace file checksum differs from the one recorded")
                try:
                    with TraceReader(tmp) as r:         # checks the whole gzip stream and the header
                        header = r.header
                except TraceError as e:
                    raise _Bad(str(e)) from None
                footer = Footer(**m["footer"]) if m.get("footer") is not None else None
                why = None
            except _Bad as e:
                why = str(e)
        if why is not None:
            with _locked(k, fcntl.LOCK_EX):
                if _meta_bytes(meta) == seen:           # not replaced meanwhile by a fresh store
                    quarantine(k, why)
            return None
        if guest and header.guest != guest:
            return None     # same bytes under another name: re-run so the header names this guest
        os.replace(tmp, out_path)
        tmp = None
        return RunResult(m["status"], os.fspath(out_path), header, footer, m.get("message", ""),
                         m.get("error_class"), cached=True)
    except OSError:
        return None         # cannot copy out or lock (e.g. a read-only cache): a miss; the run reports it
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def store(k: str, trace_path, res: RunResult) -> None:
    """Store a verified copy of ``trace_path`` (never a damaged one; a failure is only slower)."""
    tmp = mtmp = None
    try:
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        dst = CACHE_DIR / f"{k}{SUFFIX}"
        tmp = _tmp_beside(dst)
        digest = _copy_hashing(trace_path, tmp)
        try:
            verify(tmp)
        except TraceError as e:
            print(f"difftest: not caching {trace_path}: {e}", file=sys.stderr)
            return
        m = {"v": META_VERSION, "status": res.status, "message": res.message, "error_class": res.error_class,
             "footer": asdict(res.footer) if res.footer else None, "trace_sha256": digest}
        m["check"] = _meta_sum(m)
        mtmp = _tmp_beside(CACHE_DIR / f"{k}.json")
        with open(mtmp, "w", encoding="utf-8") as f:
            f.write(json.dumps(m))
        with _locked(k, fcntl.LOCK_EX):
            os.replace(tmp, dst)
            tmp = None
            os.replace(mtmp, CACHE_DIR / f"{k}.json")
            mtmp = None
    except OSError:
        pass            # a cache that cannot be written is only slower
    finally:
        for t in (tmp, mtmp):
            if t is not None and os.path.exists(t):
                os.unlink(t)
