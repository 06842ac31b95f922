"""The binary trace format, version 1 (``.trace.bin``): what every backend writes since issue 14.

Why: a 10 M-step trace as gzip JSON lines cost ~100 s to parse into Step objects; here the common
per-step values are fixed-width numpy columns, so the comparator reads them in bulk
(difftest.compare_bulk) and builds Step objects only where it must look closer.

Layout (little-endian throughout)::

    magic b"DTTRACE\\0", u32 version (= 1)
    frames: tag (4 bytes) | u64 payload length | u32 CRC-32 of (tag, length, payload) | payload
      b"HEAD"  the header as JSON (dataclasses.asdict(Header))
      b"STEP"  one chunk of up to CHUNK consecutive steps (below); any number, in step order
      b"FOOT"  the footer as JSON
      b"END\\0" trailer: u32 frames before it, u64 steps, u32 CRC-32 of those frames' CRCs
    nothing after the trailer.

A STEP payload: ``u64 first step index, u32 n steps, u32 n translation rows, u32 n new table rows``,
then five sections, each ``u8 compressed (zlib) | u64 stored length | bytes``:

* COLS: pc u64[n], insn u32[n], priv i8[n], v i8[n] (-1 = None), flags u8[n] (``F_*``),
  xlat count u16[n], then the translation rows u32[rows] in step order: references into the
  trace's table of distinct translations.
* TAB: the table rows first used in this chunk (the table grows chunk by chunk): va, gpa, pa u64,
  fault_cause i64, access u8 (``ACCESS_CODES``), priv i8, v i8 (T_V_NONE: not shown), fault_stage u8 (``STAGE_CODES``),
  vs_leaf_level i8, g_leaf_level i8, bits u8 (``T_*``: bools and None flags) -- one array each.
  The model shares one Xlat object across every step that repeats an access through a soft-TLB
  entry (refmodel.hart.access_pa), so the writer interns by object identity: a row costs 4 bytes.
* SIDE: JSON {"trap": [[j, trap]], "regs": [[j, regs]], "odd": [[j, step]], "walk": [[row, walk]],
  "xraw": [[row, raw]]} (j = index in the chunk).  Traps stay JSON so that new Trap fields pass
  through without a format change.  An *odd* step (a value a column cannot hold exactly: a str
  pc, a priv of 200, an unknown fault stage, a step index out of order) is stored whole as its
  JSON record and validated on reading exactly as the JSON-lines reader validated it.
* UART, RAW: string columns for the steps flagged F_UART / F_RAW: u32 count, u32 lengths,
  UTF-8 bytes (surrogatepass) -- no JSON parsing when a step is built.

Integrity: the reader checks every frame's CRC, the frame order and the trailer when it opens a
file (a truncated or bit-flipped file is a ``TraceError``: never compared), and validates each
chunk's contents (sizes, codes, references, the side tables' record types) when it decodes it.
"""
from __future__ import annotations

import itertools
import json
import operator
import os
import struct
import tempfile
import zlib
from dataclasses import asdict

import numpy as np

from difftest.trace import ACCESSES, Footer, Header, Step, Trap, Xlat, _value, finishing, step_to_json

MAGIC = b"DTTRACE\0"
VERSION = 1
SUFFIX = ".trace.bin"
CHUNK = 65536                     # steps per chunk: the writer's memory bound and the reader's unit
BATCH = 4096                      # step tuples buffered before they become columns (the writer's GC cost)
ZLEVEL = 1                        # measured (docs/ARCHITECTURE 5): level 1 gives most of the size win

F_TRAP, F_UART, F_RAW, F_REGS, F_ODD, F_INSN = 1, 2, 4, 8, 16, 32
F_KNOWN = 63
T_IMPLICIT, T_STALE, T_GPA_NONE, T_PA_NONE, T_FC_NONE, T_VSL_NONE, T_GL_NONE, T_V_NONE = 1, 2, 4, 8, 16, 32, 64, 128
ACCESS_CODES = {a: k for k, a in enumerate(ACCESSES)}
STAGES = (None, "vs", "g", "s", "pmp")
STAGE_CODES = {s: k for k, s in enumerate(STAGES)}

_FRAME = struct.Struct("<4sQI")
_CHUNK_HEAD = struct.Struct("<QIII")
_SEC = struct.Struct("<BQ")
_END = struct.Struct("<IQI")
_U64 = 1 << 64
_UMASK = os.umask(0o022)
os.umask(_UMASK)
_TAB_COLS = (("va", "<u8"), ("gpa", "<u8"), ("pa", "<u8"), ("fcause", "<i8"), ("access", "u1"), ("priv", "i1"),
             ("v", "i1"), ("fstage", "u1"), ("vsl", "i1"), ("gl", "i1"), ("bits", "u1"))
_TAB_WIDTH = sum(np.dtype(d).itemsize for _, d in _TAB_COLS)
_MEMO_MAX = 1 << 18               # interned objects remembered; past it a repeat costs one more row


def _frame(tag: bytes, payload: bytes) -> bytes:
    head = _FRAME.pack(tag, len(payload), 0)[:12]
    return head + struct.pack("<I", zlib.crc32(payload, zlib.crc32(head))) + payload


def _section(data: bytes) -> bytes:
    if len(data) > 64:
        z = zlib.compress(data, ZLEVEL)
        if len(z) < len(data):
            return _SEC.pack(1, len(z)) + z
    return _SEC.pack(0, len(data)) + data


def _strcol(strs: list[str]) -> bytes:
    enc = [s.encode("utf-8", "surrogatepass") for s in strs]
    return (struct.pack("<I", len(enc)) + np.array(list(map(len, enc)), dtype="<u4").tobytes() + b"".join(enc))


def _is_int(x, lo, hi) -> bool:
    return (type(x) is int or type(x) is bool) and lo <= x < hi


def _opt_int(x, lo, hi) -> bool:
    return x is None or _is_int(x, lo, hi)


def _xlat_row(x) -> tuple | None:
    """The table row of an Xlat, or None when a column cannot hold it exactly (the step goes odd)."""
    if type(x) is not Xlat:
        return None
    d = x.__dict__
    g = d.get
    acc, fs = g("access", x.access), g("fault_stage", x.fault_stage)
    va, priv, v, gpa, pa = g("va", x.va), g("priv", x.priv), g("v", x.v), g("gpa", x.gpa), g("pa", x.pa)
    fc, imp, vsl, gl = g("fault_cause", x.fault_cause), g("implicit", x.implicit), g("vs_leaf_level",
                                                                                   x.vs_leaf_level), g("g_leaf_level", x.g_leaf_level)
    st, walk, raw = g("maybe_stale", x.maybe_stale), g("walk", x.walk), g("raw", x.raw)
    if (acc not in ACCESS_CODES or fs not in STAGE_CODES or not _is_int(va, 0, _U64) or not _is_int(priv, -128, 128)
            or not _opt_int(v, -128, 128) or not _opt_int(gpa, 0, _U64) or not _opt_int(pa, 0, _U64)
            or not _opt_int(fc, -(1 << 63), 1 << 63) or type(imp) is not bool or type(st) is not bool
            or not _opt_int(vsl, 0, 128) or not _opt_int(gl, 0, 128) or not (walk is None or type(walk) is list)
            or not (raw is None or type(raw) is str)):
        return None
    bits = ((T_IMPLICIT if imp else 0) | (T_STALE if st else 0) | (T_GPA_NONE if gpa is None else 0)
            | (T_PA_NONE if pa is None else 0) | (T_FC_NONE if fc is None else 0)
            | (T_VSL_NONE if vsl is None else 0) | (T_GL_NONE if gl is None else 0) | (T_V_NONE if v is None else 0))
    return (va, gpa or 0, pa or 0, fc or 0, ACCESS_CODES[acc], priv, v or 0, STAGE_CODES[fs], vsl or 0, gl or 0, bits,
            walk, raw)


def _where(flags_iter, n: int) -> list[int]:
    """Indices where an iterator of n truth values is true (built in C, not a Python loop)."""
    return np.flatnonzero(np.fromiter(flags_iter, bool, n)).tolist()


def _plain(t) -> bool:
    """Can the columns hold step tuple ``t`` (i checked by the caller) exactly?"""
    _, pc, insn, priv, v, xl, trap, uart, regs, raw = t
    return (_is_int(pc, 0, _U64) and _opt_int(insn, 0, 1 << 32) and _opt_int(priv, 0, 128) and _opt_int(v, 0, 128)
            and type(xl) is list and len(xl) < 65536 and all(_xlat_row(x) is not None for x in xl)
            and (trap is None or type(trap) is Trap) and type(uart) is str and (regs is None or type(regs) is dict)
            and (raw is None or type(raw) is str))


class _NotPlain(Exception):
    pass


class BinTraceWriter:
    """``TraceWriter(path, header)`` in the binary format: ``.record(tuple)`` (the model's compact
    records), ``.step(Step)``, ``.close(footer)``, ``.abort()``.  Steps are buffered as tuples and
    turned into columns a chunk at a time (bounded memory); the file is written under a unique
    temporary name beside ``path`` and renamed into place complete."""

    def __init__(self, path, header: Header):
        self.path = os.fspath(path)
        d, name = os.path.split(self.path)
        fd, self._part = tempfile.mkstemp(dir=d or ".", prefix=f".{name}.", suffix=".part")
        os.fchmod(fd, 0o666 & ~_UMASK)
        self._file = os.fdopen(fd, "wb")
        self._crcs: list[int] = []
        self._buf: list[tuple] = []
        self._parts: list[dict] = []
        self._n = 0                       # steps written in chunks
        self._pn = 0                      # steps in self._parts
        self._memo: dict[int, int] = {}
        self._keep: list = []
        self._ntab = 0
        try:
            self._file.write(MAGIC + struct.pack("<I", VERSION))
            self._put(b"HEAD", json.dumps(asdict(header)).encode())
        except BaseException:
            self._file.close()
            os.unlink(self._part)
            raise

    def _put(self, tag: bytes, payload: bytes) -> None:
        fr = _frame(tag, payload)
        self._crcs.append(struct.unpack_from("<I", fr, 12)[0])
        try:
            self._file.write(fr)
        except OSError as e:
            raise OSError(e.errno, e.strerror, self.path) from None

    def record(self, r: tuple) -> None:
        """A compact record (refmodel.records.RECORD_FIELDS): one list append per step."""
        buf = self._buf
        buf.append(r)
        if len(buf) >= BATCH:
            self._flush()

    def extend(self, recs: list) -> None:
        """Many compact records at once: the model backend hands over a batch every few thousand
        steps (a method call per step was a tenth of the model's time); parts stay BATCH long."""
        buf = self._buf
        k = 0
        while len(recs) - k >= BATCH - len(buf):
            take = BATCH - len(buf)
            buf.extend(recs[k:k + take])
            k += take
            self._flush()
            buf = self._buf
        buf.extend(recs[k:])

    def bulk(self, pc, insn, has_insn, priv, v, xcount, refs, table: dict, traps: dict) -> None:
        """Steps a backend already holds as numpy columns (the plugin backend, plugin_columns.Columns),
        after anything written so far, chunk by chunk without a Python object per step.  ``refs``
        index ``table`` (columns access, va, priv, v (-1: None), pa, pa_none), whose rows are
        numbered by first use; ``traps``: {step index within these columns: Trap}."""
        self._flush()
        self._emit()
        n = len(pc)
        base = self._ntab                                   # table rows written before: refs shift by it
        start = np.concatenate(([0], np.cumsum(xcount, dtype=np.int64)))
        tab_done = 0
        for k in range(0, n, CHUNK):
            m = min(CHUNK, n - k)
            r0, r1 = int(start[k]), int(start[k + m])
            crefs = refs[r0:r1].astype("<u4")
            upto = max(int(crefs.max()) + 1 if r1 > r0 else 0, tab_done)
            flags = np.where(has_insn[k:k + m], np.uint8(F_INSN), np.uint8(0)).astype("u1")
            side = {}
            tj = sorted(j - k for j in traps if k <= j < k + m)
            if tj:
                side["trap"] = [[j, _value(traps[k + j])] for j in tj]
                flags[tj] |= F_TRAP
            cols = b"".join((np.ascontiguousarray(pc[k:k + m], "<u8").tobytes(),
                             np.ascontiguousarray(insn[k:k + m], "<u4").tobytes(),
                             np.ascontiguousarray(priv[k:k + m], "i1").tobytes(),
                             np.ascontiguousarray(v[k:k + m], "i1").tobytes(), flags.tobytes(),
                             np.ascontiguousarray(xcount[k:k + m], "<u2").tobytes(), (crefs + base).tobytes()))
            tab = b""
            nt = upto - tab_done
            if nt:
                sl = slice(tab_done, upto)
                vnone = table["v"][sl] < 0
                bits = (np.uint8(T_GPA_NONE | T_FC_NONE | T_VSL_NONE | T_GL_NONE)
                        | np.where(table["pa_none"][sl], np.uint8(T_PA_NONE), np.uint8(0))
                        | np.where(vnone, np.uint8(T_V_NONE), np.uint8(0))).astype("u1")
                parts = {"va": table["va"][sl], "gpa": np.zeros(nt, "<u8"),
                         "pa": np.where(table["pa_none"][sl], 0, table["pa"][sl]), "fcause": np.zeros(nt, "<i8"),
                         "access": table["access"][sl], "priv": table["priv"][sl],
                         "v": np.where(vnone, 0, table["v"][sl]), "fstage": np.zeros(nt, "u1"),
                         "vsl": np.zeros(nt, "i1"), "gl": np.zeros(nt, "i1"), "bits": bits}
                tab = b"".join(np.ascontiguousarray(parts[name], d).tobytes() for name, d in _TAB_COLS)
            payload = (_CHUNK_HEAD.pack(self._n, m, r1 - r0, nt) + _section(cols) + _section(tab)
                       + _section(json.dumps(side, separators=(",", ":")).encode() if side else b"")
                       + _section(_strcol([])) + _section(_strcol([])))
            self._put(b"STEP", payload)
            self._n += m
            self._ntab += nt
            tab_done = upto
        self._memo, self._keep = {}, []                     # interning restarts after the bulk rows

    def step(self, s: Step) -> None:
        buf = self._buf
        buf.append((s.i, s.pc, s.insn, s.priv, s.v, s.xlats, s.trap, s.uart, s.regs, s.raw))
        if len(buf) >= BATCH:
            self._flush()

    def plain(self, pc: list, priv: list | None, v: list | None, raw: list) -> None:
        """Steps that are nothing but a logged line (qemu_log.Plain: no instruction bits, translation,
        trap or console byte), after what was written so far, as columns straight from the lists --
        no tuple per step.  ``priv``/``v`` None: not shown."""
        self._flush()
        n, k = len(pc), 0
        while k < n:
            m = min(n - k, CHUNK - self._pn)
            sl = slice(k, k + m)
            self._parts.append({
                "n": m, "pc": np.array(pc[sl], dtype="<u8"), "insn": np.zeros(m, "<u4"),
                "priv": np.full(m, -1, "i1") if priv is None else np.array(priv[sl], dtype="i1"),
                "v": np.full(m, -1, "i1") if v is None else np.array(v[sl], dtype="i1"),
                "flags": np.full(m, F_RAW, "u1"), "counts": np.zeros(m, "<u2"), "refs": np.zeros(0, np.int64),
                "side": {}, "new": [], "uart": [], "raw": list(raw[sl])})
            self._pn += m
            if self._pn >= CHUNK:
                self._emit()
            k += m

    def columns(self, pc, insn=None, priv=None, v=None) -> None:
        """Bulk steps without translations, traps or console bytes (a backend that already has
        columns): ``insn``/``priv``/``v`` None or sequences with None where not shown."""
        n = len(pc)
        i0 = self._n + len(self._buf)
        for k in range(0, n, CHUNK):
            m = min(CHUNK, n - k)
            for j in range(m):
                self.step(Step(i0 + k + j, int(pc[k + j]), None if insn is None else insn[k + j],
                               None if priv is None else priv[k + j], None if v is None else v[k + j]))

    def _flush(self) -> None:
        """Turn the buffered step tuples (at most BATCH) into a part of the next chunk's columns: the
        tuples -- and the model's per-step lists they hold -- die young, so Python's cyclic GC
        never walks a chunk's worth of them (it cost 1.7 us a step when a whole chunk was kept)."""
        buf, self._buf = self._buf, []
        if not buf:
            return
        first = self._n + self._pn
        lens = set(map(len, buf))
        if lens != {8} and lens != {10}:          # records and Steps mixed in one part: the long form
            buf = [t if len(t) == 10 else (*t, None, None) for t in buf]
        try:
            part = self._encode(buf, {}, first)
        except _NotPlain:
            odd = {}
            clean = []
            for j, t in enumerate(buf):
                if t[0] == first + j and _plain(t):
                    clean.append(t)
                else:
                    odd[j] = t
                    clean.append((first + j, 0, None, None, None, [], None, "", None, None))
            part = self._encode(clean, odd, first)
        self._parts.append(part)
        self._pn += len(buf)
        if self._pn >= CHUNK:
            self._emit()

    def _emit(self) -> None:
        """Write the parts as one STEP chunk."""
        parts, self._parts = self._parts, []
        if not parts:
            return
        n, first = self._pn, self._n
        side: dict = {}
        base = 0
        for p in parts:
            for key, lst in p["side"].items():
                if key in ("walk", "xraw"):           # table rows: already global
                    side.setdefault(key, []).extend(lst)
                else:
                    side.setdefault(key, []).extend([[j + base, v] for j, v in lst])
            base += p["n"]
        cat = {k: np.concatenate([p[k] for p in parts]) for k in ("pc", "insn", "priv", "v", "flags", "counts", "refs")}
        new = [r for p in parts for r in p["new"]]
        cols = b"".join((cat["pc"].tobytes(), cat["insn"].tobytes(), cat["priv"].tobytes(), cat["v"].tobytes(),
                         cat["flags"].tobytes(), cat["counts"].tobytes(), cat["refs"].astype("<u4").tobytes()))
        tab = b""
        if new:
            tcols = list(zip(*new))
            tab = b"".join(np.array(tcols[k], dtype=d).tobytes() for k, (_, d) in enumerate(_TAB_COLS))
        payload = (_CHUNK_HEAD.pack(first, n, len(cat["refs"]), len(new)) + _section(cols) + _section(tab)
                   + _section(json.dumps(side, separators=(",", ":")).encode() if side else b"")
                   + _section(_strcol([u for p in parts for u in p["uart"]]))
                   + _section(_strcol([r for p in parts for r in p["raw"]])))
        self._put(b"STEP", payload)
        self._n += n
        self._pn = 0

    def _encode(self, buf: list[tuple], odd: dict, first: int) -> dict:
        """One part's columns (numpy arrays), side entries (indices within the part), console and
        raw strings and new table rows; the table grows here (row numbers are global)."""
        n = len(buf)
        cols = tuple(zip(*buf))
        if len(cols) == 8:                         # the model's compact records: no regs, no raw
            cols += ((None,) * n, (None,) * n)
        idx, pc, insn, priv, v, xl, trap, uart, regs, raw = cols
        if idx != tuple(range(first, first + n)):
            raise _NotPlain
        try:
            pcs = np.array(pc, dtype="<u8")
            if insn.count(None) == n:
                ins, has_insn = np.zeros(n, "<u4"), None
            elif None in insn:
                ins = np.array([0 if x is None else x for x in insn], dtype="<u4")
                has_insn = np.array([x is not None for x in insn])
            else:
                ins, has_insn = np.array(insn, dtype="<u4"), True
            prv = np.array([-1 if x is None else x for x in priv] if None in priv else priv, dtype="i1")
            vv = np.array([-1 if x is None else x for x in v] if None in v else v, dtype="i1")
        except (OverflowError, TypeError, ValueError):
            raise _NotPlain from None
        # numpy converts str and float silently: the types must be exactly int (bool counts as int)
        for col in (pc, insn, priv, v):
            if not set(map(type, col)) <= {int, bool, type(None)}:
                raise _NotPlain
        # -1 stands for None: a stored value must not be negative
        if int(np.count_nonzero(prv < 0)) != priv.count(None) or int(np.count_nonzero(vv < 0)) != v.count(None):
            raise _NotPlain
        if set(map(type, xl)) - {list}:
            raise _NotPlain
        counts = list(map(len, xl))
        if max(counts, default=0) >= 65536:
            raise _NotPlain
        flat = list(itertools.chain.from_iterable(xl))
        # interned by identity: id -> table row; the objects are kept alive in _keep while their id
        # is in the memo, so an id there always names the same object
        memo, keep = self._memo, self._keep
        refs = np.fromiter(map(memo.get, map(id, flat), itertools.repeat(-1)), np.int64, len(flat))
        new = []
        miss = np.flatnonzero(refs < 0).tolist()      # only the misses are looked at in Python
        for k in miss:
            x = flat[k]
            r = memo.get(id(x))                   # interned earlier in this chunk
            if r is not None:
                refs[k] = r
                continue
            row = _xlat_row(x)
            if row is None:
                raise _NotPlain
            if len(memo) >= _MEMO_MAX:
                memo.clear()
                keep.clear()
            refs[k] = memo[id(x)] = self._ntab + len(new)
            keep.append(x)
            new.append(row)
        flags = np.zeros(n, "u1")
        if has_insn is True:
            flags |= F_INSN
        elif has_insn is not None:
            flags[has_insn] |= F_INSN
        side: dict = {}
        if trap.count(None) != n:
            tj = _where(map(operator.is_not, trap, itertools.repeat(None)), n)
            if any(type(trap[j]) is not Trap for j in tj):
                raise _NotPlain
            side["trap"] = [[j, _value(trap[j])] for j in tj]
            flags[tj] |= F_TRAP
        if set(map(type, uart)) != {str} or set(map(type, raw)) - {str, type(None)} \
                or set(map(type, regs)) - {dict, type(None)}:
            raise _NotPlain
        uj = [] if uart.count("") == n else _where(map(bool, uart), n)
        flags[uj] |= F_UART
        rj = [] if raw.count(None) == n else _where(map(operator.is_not, raw, itertools.repeat(None)), n)
        flags[rj] |= F_RAW
        if regs.count(None) != n:
            gj = _where(map(operator.is_not, regs, itertools.repeat(None)), n)
            side["regs"] = [[j, _value(regs[j])] for j in gj]
            flags[gj] |= F_REGS
        if odd:
            side["odd"] = [[j, step_to_json(_as_step(t))] for j, t in odd.items()]
            flags[list(odd)] = F_ODD
        walks = [[self._ntab + k, [_value(w) for w in r[11]]] for k, r in enumerate(new) if r[11] is not None]
        if walks:
            side["walk"] = walks
        xraw = [[self._ntab + k, r[12]] for k, r in enumerate(new) if r[12] is not None]
        if xraw:
            side["xraw"] = xraw
        self._ntab += len(new)
        return {"n": n, "pc": pcs, "insn": ins, "priv": prv, "v": vv, "flags": flags,
                "counts": np.array(counts, dtype="<u2"), "refs": refs, "side": side, "new": new,
                "uart": [uart[j] for j in uj], "raw": [raw[j] for j in rj]}

    def close(self, footer: Footer) -> None:
        """Finish the file and rename it into place; on any error nothing is left behind."""
        with finishing(self):
            self._flush()
            self._emit()
            self._put(b"FOOT", json.dumps(asdict(footer)).encode())
            crcs = struct.pack(f"<{len(self._crcs)}I", *self._crcs)
            self._put(b"END\0", _END.pack(len(self._crcs), self._n, zlib.crc32(crcs)))
            self._file.close()
            os.replace(self._part, self.path)
        self._memo, self._keep = {}, []

    def abort(self) -> None:
        self._buf, self._parts = [], []
        self._memo, self._keep = {}, []
        try:
            self._file.close()
        except (OSError, ValueError):
            pass
        if os.path.exists(self._part):
            os.unlink(self._part)


def _as_step(t: tuple) -> Step:
    st = object.__new__(Step)
    st.__dict__ = dict(zip(("i", "pc", "insn", "priv", "v", "xlats", "trap", "uart", "regs", "raw"), t))
    return st


# the reading side lives in difftest.tracebin_read (module size); its names are served from here
_READ_NAMES = ("BinTraceReader", "Chunk", "Table", "decode_chunk", "chunk_step", "chunk_raw")


def __getattr__(name):
    if name in _READ_NAMES:
        from difftest import tracebin_read
        return getattr(tracebin_read, name)
    raise AttributeError(name)
