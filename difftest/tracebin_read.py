"""Reading the binary trace format (difftest.tracebin has the layout and the writer): chunk
decoding with validation, the table of distinct translations, Step materialisation and
``BinTraceReader`` -- which ``trace.TraceReader`` returns for a file with the binary magic."""
from __future__ import annotations

import bisect
import json
import os
import struct
import zlib
from collections import OrderedDict

import numpy as np

from difftest.trace import (ACCESSES, Footer, Header, SCHEMA_VERSION, Step, Trap, TraceError, TraceReader, WalkLevel,
                            Xlat, _bad, _bad_footer, _bad_step, _fast_new, _TRAP_INFO, _WALK_INFO as _WALK,
                            step_from_json)
from difftest.tracebin import (F_INSN, F_KNOWN, F_ODD, F_RAW, F_REGS, F_TRAP, F_UART, MAGIC, STAGES, T_FC_NONE,
                               T_GL_NONE, T_GPA_NONE, T_IMPLICIT, T_PA_NONE, T_STALE, T_V_NONE, T_VSL_NONE, VERSION, _CHUNK_HEAD,
                               _END, _FRAME, _MEMO_MAX, _SEC, _TAB_COLS, _TAB_WIDTH)


class Chunk:
    """One decoded STEP chunk: numpy columns for steps ``first .. first+n-1`` (validated)."""
    __slots__ = ("first", "n", "pc", "insn", "priv", "v", "flags", "xcount", "xoff", "refs", "side", "_secs",
                 "_uart", "_raw", "_odd", "_trap")

    def end(self) -> int:
        return self.first + self.n


def _bounds(data: bytes, k: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) of the ``k`` strings of a string column, its counts and lengths checked."""
    if len(data) < 4 or struct.unpack_from("<I", data)[0] != k or len(data) < 4 + 4 * k:
        raise ValueError(f"{what} column has the wrong count")
    lens = np.frombuffer(data, "<u4", k, 4).astype(np.int64)
    ends = np.cumsum(lens) + 4 + 4 * k
    if k and int(ends[-1]) != len(data) or not k and len(data) != 4:
        raise ValueError(f"{what} column has the wrong length")
    starts = np.concatenate(([4 + 4 * k], ends[:-1])) if k else ends
    return starts, ends


def _strings(data: bytes, k: int, what: str) -> list[str]:
    starts, ends = _bounds(data, k, what)
    return [data[a:b].decode("utf-8", "surrogatepass") for a, b in zip(starts.tolist(), ends.tolist())]


class _LazyStrings:
    """A chunk's RAW column by step offset, each string decoded when it is read: a report or a
    comparison around a divergence reads a few of a chunk's 65,536 log lines, not all of them."""

    __slots__ = ("data", "js", "starts", "ends")

    def __init__(self, data: bytes, js: np.ndarray, what: str):
        self.data, self.js = data, js
        self.starts, self.ends = _bounds(data, len(js), what)

    def __getitem__(self, j: int) -> str:
        k = int(np.searchsorted(self.js, j))
        if k >= len(self.js) or self.js[k] != j:
            raise KeyError(j)
        return self.data[int(self.starts[k]):int(self.ends[k])].decode("utf-8", "surrogatepass")


class Table:
    """The distinct translations of a trace, as columns (``va``, ``gpa``, ...), plus their walks
    and raw lines; ``xlat(ref)`` builds (once) the Xlat a row stands for."""

    def __init__(self):
        self.parts: list[bytes] = []
        self.n = 0
        self.walk: dict[int, list] = {}
        self.xraw: dict[int, str] = {}
        self._objs: dict[int, Xlat] = {}
        self.cols: dict[str, np.ndarray] = {}

    def add(self, data: bytes, k: int) -> None:
        if len(data) != k * _TAB_WIDTH:
            raise ValueError("translation table section has the wrong size")
        off = 0
        new = {}
        for name, d in _TAB_COLS:
            w = np.dtype(d).itemsize
            new[name] = np.frombuffer(data, d, k, off)
            off += w * k
        if k and (new["access"].max() >= len(ACCESSES) or new["fstage"].max() >= len(STAGES)
                  or new["vsl"].min() < 0 or new["gl"].min() < 0):
            raise ValueError("translation table has an invalid code")
        for name, a in new.items():
            self.cols[name] = np.concatenate((self.cols[name], a)) if name in self.cols else a.copy()
        self.n += k

    def xlat(self, r: int) -> Xlat:
        x = self._objs.get(r)
        if x is None:
            c = self.cols
            b = int(c["bits"][r])
            d = {"access": ACCESSES[c["access"][r]], "va": int(c["va"][r]), "priv": int(c["priv"][r]),
                 "v": None if b & T_V_NONE else int(c["v"][r]), "gpa": None if b & T_GPA_NONE else int(c["gpa"][r]),
                 "pa": None if b & T_PA_NONE else int(c["pa"][r]), "fault_stage": STAGES[c["fstage"][r]],
                 "fault_cause": None if b & T_FC_NONE else int(c["fcause"][r]), "implicit": bool(b & T_IMPLICIT),
                 "vs_leaf_level": None if b & T_VSL_NONE else int(c["vsl"][r]),
                 "g_leaf_level": None if b & T_GL_NONE else int(c["gl"][r]), "maybe_stale": bool(b & T_STALE),
                 "walk": None, "raw": self.xraw.get(r)}
            w = self.walk.get(r)
            if w is not None:
                d["walk"] = [_fast_new(WalkLevel, e, *_WALK) for e in w]
            x = object.__new__(Xlat)
            x.__dict__ = d
            if len(self._objs) > _MEMO_MAX:
                self._objs.clear()
            self._objs[r] = x
        return x



def _check_side(side, n: int, ntab_lo: int, ntab_hi: int) -> None:
    if type(side) is not dict or not side.keys() <= {"trap", "regs", "odd", "walk", "xraw"}:
        raise ValueError("side table is not the expected object")
    for key, lst in side.items():
        if type(lst) is not list:
            raise ValueError(f"side table {key} is not a list")
        lo, hi = (ntab_lo, ntab_hi) if key in ("walk", "xraw") else (0, n)
        for e in lst:
            if type(e) is not list or len(e) != 2 or type(e[0]) is not int or not lo <= e[0] < hi:
                raise ValueError(f"side table {key} has a bad entry")
            val = e[1]
            why = None
            if key == "trap":
                why = _bad(val, Trap)
            elif key == "regs" and type(val) is not dict:
                why = "regs is not an object"
            elif key == "walk":
                why = "walk is not a list" if type(val) is not list else next(
                    (w for w in map(lambda x: _bad(x, WalkLevel), val) if w), None)
            elif key == "xraw" and type(val) is not str:
                why = "xlat raw is not a string"
            if why:
                raise ValueError(why)


def decode_chunk(payload: bytes, first_due: int, table: Table | None, ntab_before: int) -> tuple[Chunk, bytes, int]:
    """Validate and decode one STEP payload; returns (chunk, its TAB section bytes, new rows)."""
    if len(payload) < _CHUNK_HEAD.size:
        raise ValueError("chunk too short")
    first, n, nrows, ntab = _CHUNK_HEAD.unpack_from(payload)
    if first != first_due:
        raise ValueError(f"chunk starts at step {first} where {first_due} was due")
    off = _CHUNK_HEAD.size
    secs = []
    for _ in range(5):
        if off + _SEC.size > len(payload):
            raise ValueError("chunk section header cut")
        z, ln = _SEC.unpack_from(payload, off)
        off += _SEC.size
        data = payload[off:off + ln]
        if len(data) != ln or z not in (0, 1):
            raise ValueError("chunk section cut or of unknown encoding")
        off += ln
        secs.append(zlib.decompress(data) if z else data)
    if off != len(payload):
        raise ValueError("data after the chunk's sections")
    cols = secs[0]
    if len(cols) != n * 17 + nrows * 4:
        raise ValueError("column section has the wrong size")
    c = Chunk()
    c.first, c.n = first, n
    c.pc = np.frombuffer(cols, "<u8", n, 0)
    c.insn = np.frombuffer(cols, "<u4", n, 8 * n)
    c.priv = np.frombuffer(cols, "i1", n, 12 * n)
    c.v = np.frombuffer(cols, "i1", n, 13 * n)
    c.flags = np.frombuffer(cols, "u1", n, 14 * n)
    c.xcount = np.frombuffer(cols, "<u2", n, 15 * n)
    c.refs = np.frombuffer(cols, "<u4", nrows, 17 * n)
    c.xoff = np.zeros(n + 1, np.int64)
    np.cumsum(c.xcount, out=c.xoff[1:])
    ntab_after = ntab_before + ntab
    if (c.flags & ~np.uint8(F_KNOWN)).any() or c.xoff[-1] != nrows or (nrows and int(c.refs.max()) >= ntab_after) \
            or c.priv.min(initial=0) < -1 or c.v.min(initial=0) < -1:
        raise ValueError("columns hold invalid values")
    side = json.loads(secs[2]) if secs[2] else {}
    _check_side(side, n, ntab_before, ntab_after)
    c.side = side
    c._secs = (secs[3], secs[4])
    c._uart = c._raw = None
    c._trap = {j: t for j, t in side.get("trap", ())}
    c._odd = {j: s for j, s in side.get("odd", ())}
    fl = c.flags
    if sorted(c._trap) != np.flatnonzero(fl & F_TRAP).tolist() or sorted(c._odd) != np.flatnonzero(fl & F_ODD).tolist() \
            or (c.xcount[(fl & F_ODD) != 0]).any() or ((fl & F_ODD) & (fl & ~np.uint8(F_ODD))).any():
        raise ValueError("flags disagree with the side tables")
    for j, s in c._odd.items():
        why = _bad_step(s, first + j)
        if why:
            raise ValueError(f"step {first + j}: {why}")
    c._uart = dict(zip(np.flatnonzero(fl & F_UART).tolist(), _strings(secs[3], int(np.count_nonzero(fl & F_UART)), "uart")))
    if any(not s for s in c._uart.values()):
        raise ValueError("empty uart entry")
    c._raw = None
    c._secs = secs[4]
    if len(secs[4]) < 4 or struct.unpack_from("<I", secs[4])[0] != int(np.count_nonzero(fl & F_RAW)):
        raise ValueError("raw column has the wrong count")
    return c, secs[1], ntab


def chunk_raw(c: Chunk) -> _LazyStrings:
    """The RAW string column of a chunk by step offset (QEMU's log lines: only reports and the steps
    around a divergence need them), each line decoded when it is read."""
    if c._raw is None:
        c._raw = _LazyStrings(c._secs, np.flatnonzero(c.flags & F_RAW), "raw")
    return c._raw


def chunk_step(c: Chunk, j: int, table: Table) -> Step:
    """Step ``c.first + j`` as the Step object the JSON-lines reader gave."""
    fl = int(c.flags[j])
    if fl & F_ODD:
        return step_from_json(c._odd[j])
    p, v = int(c.priv[j]), int(c.v[j])
    a, b = int(c.xoff[j]), int(c.xoff[j + 1])
    t = c._trap.get(j) if fl & F_TRAP else None
    d = {"i": c.first + j, "pc": int(c.pc[j]), "insn": int(c.insn[j]) if fl & F_INSN else None,
         "priv": None if p < 0 else p, "v": None if v < 0 else v,
         "trap": _fast_new(Trap, t, *_TRAP_INFO) if t else None,
         "xlats": [table.xlat(r) for r in c.refs[a:b].tolist()] if b > a else [],
         "uart": c._uart.get(j, "") if fl & F_UART else "", "regs": None, "raw": None}
    if fl & F_REGS:
        d["regs"] = next(r for k, r in c.side["regs"] if k == j)
    if fl & F_RAW:
        d["raw"] = chunk_raw(c)[j]
    st = object.__new__(Step)
    st.__dict__ = d
    return st


class BinTraceReader(TraceReader):
    """Reads a binary trace: ``.header`` and ``.footer`` at once, ``steps()`` lazily (Step objects),
    and the columnar view: ``.n`` steps, ``chunk_at(i)`` / ``chunk(k)`` (decoded, a few cached),
    ``step(i)``, ``.table`` (distinct translations) and ``columns()`` (everything concatenated).

    Opening checks every frame's CRC, their order and the trailer (``TraceError`` unless
    ``verify=False``, which keeps the chunks before the first bad frame); a chunk's contents are
    validated when it is decoded (``steps()`` then ends with an error footer, as the JSON reader did)."""

    CACHE = 6

    def __init__(self, path, *, verify: bool = True):
        self.path = os.fspath(path)
        self.error: str | None = None
        self.footer: Footer | None = None
        try:
            self._file = open(self.path, "rb")
        except OSError as e:
            raise TraceError(f"{self.path}: cannot open the trace ({e.strerror or e})") from None
        try:
            self._open(verify)
        except TraceError:
            self._file.close()
            raise
        except (ValueError, OSError, struct.error, zlib.error) as e:
            self._file.close()
            raise TraceError(f"{self.path}: damaged or not a difftest trace ({e})") from None
        self._cache: OrderedDict[int, Chunk] = OrderedDict()

    def _damaged(self, why: str, verify: bool) -> bool:
        if verify:
            raise TraceError(f"{self.path}: damaged trace ({why})")
        self.error = why
        return True

    def _open(self, verify: bool) -> None:
        f = self._file
        head = f.read(12)
        if head[:8] != MAGIC:
            raise TraceError(f"{self.path}: not a difftest binary trace")
        if struct.unpack("<I", head[8:])[0] != VERSION:
            raise TraceError(f"{self.path}: binary trace version {struct.unpack('<I', head[8:])[0]} but this "
                             f"difftest reads {VERSION}")
        self._chunks: list[tuple[int, int, int, int, int]] = []     # (offset, length, first, n, ntab_before)
        self._starts: list[int] = []
        crcs: list[int] = []
        hdr = ftr = None
        ended = False
        n = ntab = 0
        pos = 12
        while True:
            fh = f.read(_FRAME.size)
            if not fh:
                if not ended:
                    self._damaged("truncated: no trailer", verify)
                break
            if ended:
                self._damaged("data after the trailer", verify)
                break
            if len(fh) < _FRAME.size:
                self._damaged("truncated frame header", verify)
                break
            tag, ln, crc = _FRAME.unpack(fh)
            if ln > (1 << 34):
                self._damaged(f"frame length {ln} at byte {pos}", verify)
                break
            payload = f.read(ln)
            if len(payload) != ln or zlib.crc32(payload, zlib.crc32(fh[:12])) != crc:
                self._damaged(f"frame at byte {pos} fails its CRC-32" if len(payload) == ln else "truncated", verify)
                break
            order_ok = (tag == b"HEAD") == (not crcs) and (tag in (b"STEP", b"FOOT") and hdr is not None and ftr is None
                                                         or tag == b"HEAD" or tag == b"END\0" and ftr is not None)
            if not order_ok:
                self._damaged(f"frame {tag!r} out of order at byte {pos}", verify)
                break
            if tag == b"HEAD":
                hdr = self._header(payload)
            elif tag == b"STEP":
                first, cn, _, cnt = _CHUNK_HEAD.unpack_from(payload)
                if first != n or cn == 0:
                    self._damaged(f"chunk at byte {pos} starts at step {first} where {n} was due", verify)
                    break
                self._chunks.append((pos + _FRAME.size, ln, first, cn, ntab))
                self._starts.append(first)
                n += cn
                ntab += cnt
            elif tag == b"FOOT":
                ftr = self._footer_of(payload)
            elif tag == b"END\0":
                k, steps, c = _END.unpack(payload)
                if k != len(crcs) or steps != n or c != zlib.crc32(struct.pack(f"<{len(crcs)}I", *crcs)):
                    self._damaged("trailer disagrees with the frames", verify)
                    break
                ended = True
                continue
            else:
                self._damaged(f"unknown frame {tag!r}", verify)
                break
            crcs.append(crc)
            pos += _FRAME.size + ln
        if hdr is None:
            raise TraceError(f"{self.path}: damaged trace (no header)")
        self.header = hdr
        self.n = n
        self.footer = ftr if self.error is None else None
        self._ntab = ntab
        self.table = Table()
        for k, (off, ln, first, cn, tb) in enumerate(self._chunks):
            if self._chunk_ntab(k):
                c, tab, cnt = self._decode(k)
                self.table.add(tab, cnt)
                for r, w in c.side.get("walk", ()):
                    self.table.walk[r] = w
                for r, s in c.side.get("xraw", ()):
                    self.table.xraw[r] = s

    def _chunk_ntab(self, k: int) -> int:
        nxt = self._chunks[k + 1][4] if k + 1 < len(self._chunks) else self._ntab
        return nxt - self._chunks[k][4]

    def _header(self, payload: bytes) -> Header:
        try:
            head = json.loads(payload)
        except ValueError as e:
            raise TraceError(f"{self.path}: bad trace header ({e})") from None
        if type(head) is not dict:
            raise TraceError(f"{self.path}: bad trace header (not an object)")
        if head.get("schema") != SCHEMA_VERSION:
            raise TraceError(f"{self.path}: trace schema {head.get('schema')!r} but this difftest reads {SCHEMA_VERSION}")
        why = _bad(head, Header)
        if why:
            raise TraceError(f"{self.path}: bad trace header: {why}")
        return Header(**head)

    def _footer_of(self, payload: bytes) -> Footer:
        try:
            d = json.loads(payload)
        except ValueError as e:
            raise TraceError(f"{self.path}: bad trace footer ({e})") from None
        why = _bad_footer(d)
        if why:
            raise TraceError(f"{self.path}: bad trace footer: {why}")
        return Footer(**d)

    def _decode(self, k: int) -> tuple[Chunk, bytes, int]:
        off, ln, first, cn, tb = self._chunks[k]
        payload = os.pread(self._file.fileno(), ln, off)
        try:
            return decode_chunk(payload, first, self.table, tb)
        except (ValueError, zlib.error, struct.error, UnicodeDecodeError, TypeError, KeyError) as e:
            raise TraceError(f"{self.path}: damaged trace (chunk at step {first}: {e})") from None

    # ---- columnar access
    def chunk(self, k: int) -> Chunk:
        c = self._cache.get(k)
        if c is None:
            c = self._decode(k)[0]
            self._cache[k] = c
            if len(self._cache) > self.CACHE:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(k)
        return c

    def nchunks(self) -> int:
        return len(self._chunks)

    def chunk_index(self, i: int) -> int:
        return bisect.bisect_right(self._starts, i) - 1

    def chunk_at(self, i: int) -> Chunk:
        return self.chunk(self.chunk_index(i))

    def step(self, i: int) -> Step:
        if not 0 <= i < self.n:
            raise IndexError(i)
        c = self.chunk_at(i)
        return chunk_step(c, i - c.first, self.table)

    def columns(self) -> dict:
        """The whole trace's columns concatenated (pc, insn, priv, v, flags, xcount, refs) -- for
        tools and tests on small traces; the comparator works chunk by chunk."""
        names = ("pc", "insn", "priv", "v", "flags", "xcount", "refs")
        parts = {k: [] for k in names}
        for k in range(len(self._chunks)):
            c = self.chunk(k)
            for nm in names:
                parts[nm].append(getattr(c, nm))
        out = {nm: np.concatenate(p) if p else np.zeros(0) for nm, p in parts.items()}
        out["table"] = self.table.cols
        return out

    # ---- the TraceReader interface
    def steps(self):
        try:
            for k in range(len(self._chunks)):
                try:
                    c = self.chunk(k)
                except TraceError as e:
                    self.error = str(e).split(": ", 1)[-1]
                    self.footer = Footer(status="error", message=f"trace file damaged: {self.error}", truncated=True)
                    return
                tab = self.table
                for j in range(c.n):
                    yield chunk_step(c, j, tab)
        finally:
            pass            # the file stays open: step(i) and chunk(k) still read it (closed by close())
        if self.footer is None:
            self.footer = Footer(status="error", message=f"trace file damaged ({self.error or 'no footer'})",
                                 truncated=True)

    def read_all(self):
        steps = list(self.steps())
        return self.header, steps, self.footer

    def verify_all(self) -> None:
        """Decode and validate every chunk (``trace.verify``): TraceError on the first bad one."""
        if self.error is not None:
            raise TraceError(f"{self.path}: damaged trace ({self.error})")
        for k in range(len(self._chunks)):
            self._decode(k)

    def close(self) -> None:
        try:
            self._file.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
