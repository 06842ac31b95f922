"""The one trace schema every backend emits (QEMU 7.2, QEMU 10.0, refmodel).

A trace is a header followed by one record per *step*.  A step is one
instruction attempt: the instruction at ``pc`` either retires or traps.  The
records are data classes.  On disk a trace is the binary format (``.trace.bin``,
difftest.tracebin: numpy columns per chunk; ``TraceWriter`` writes it); the gzip-compressed JSON
lines of before (``.trace.jsonl.gz``: line 1 the header, every further line one step) are still
read by ``TraceReader`` -- which dispatches on the magic bytes -- for a deprecation period, and
written only by ``JsonTraceWriter`` (tests, conversions).
Streaming both ways: ``write_trace`` takes any iterable of steps and
``read_trace`` yields them lazily, so a 10 M-step trace never sits in memory.

Values a backend cannot show are ``None`` -- never a guess -- and the header's
``exposes`` map says which fields the backend can show at all, so the
comparator can say precisely what it did not compare.

Conventions
-----------
* ``priv`` is the nominal privilege level: 0 U, 1 S (HS when v=0, VS when
  v=1), 3 M.  ``v`` is the virtualisation mode (Privileged spec, H chapter).
* ``access`` is one of ``"fetch"``, ``"load"``, ``"store"`` ("store" covers
  AMOs and SC, as the spec reports their faults as store/AMO faults).
* Addresses are plain ints.  Physical addresses are system-physical (SPA).
* Console text (``Step.uart``, ``Footer.uart``) is the guest's UART *bytes*, carried losslessly:
  each byte is one character of the str (``bytes.decode("latin-1")``; get the bytes back with
  ``s.encode("latin-1")``).  No UTF-8 decoding, no newline translation (a ``\r`` stays), so two
  backends that wrote the same bytes have equal strings.  Show it to a person only through
  ``escape_console`` (guest-controlled terminal escapes are never printed raw).

Integrity: a file is written to a unique temporary name beside it and renamed into place
complete, gzip header without name or time (same trace -> same bytes).  ``TraceReader`` first
decompresses the whole file (gzip's CRC-32 and length are checked at its end) and checks the
header's fields and types, raising ``TraceError`` -- so no comparison ever starts on a damaged
file; then every record is validated as it is read (an object with known fields of the right
types, step indices 0, 1, 2, ..., nothing after the footer): a bad record ends the steps with a
``Footer(status="error", truncated=True)`` naming the line, never a made-up value.
"""
from __future__ import annotations

import contextlib
import copy
import gzip
import io
import json
import os
import tempfile
import zlib
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Iterable, Iterator

# the record types are the model's (refmodel.records: the model must not import the harness);
# the schema re-exports them
from refmodel.records import RECORD_FIELDS, Step, Trap, WalkLevel, Xlat, step_from_record  # noqa: F401
_REEXPORTS = (RECORD_FIELDS,)   # part of the schema's names (the compact record's fields) though unused here

SCHEMA_VERSION = 1

ACCESSES = ("fetch", "load", "store")

# Exposure keys used in Header.exposes.  A backend sets each to True when its
# steps carry that value; the comparator compares a field only when both
# sides expose it, and lists the rest as "not compared".
EXPOSABLE = (
    "priv",          # Step.priv / Step.v
    "insn",          # Step.insn
    "trap.tval",
    "trap.htval",    # htval / mtval2
    "trap.tinst",    # htinst / mtinst
    "trap.gva",      # mstatus.GVA / hstatus.GVA written on trap entry
    "trap.target",   # which mode took the trap
    "trap.fields",   # Trap.fields: the status fields trap entry writes (MPP/MPV/MPIE/MIE, SPV/SPVP, SPP/SPIE/SIE)
    "xlat.all",      # every translation is recorded (model); QEMU only logs TLB fills
    "xlat.access",   # every explicit load/store with the physical address used, TLB hits included
    "xlat.gpa",      # first-stage result (guest-physical address)
    "xlat.walk",     # page-table walk detail
    "uart",
    "regs",          # full register state (bisect only)
)


@dataclass
class Header:
    guest: str                      # guest name, or ELF file name for third-party ELFs
    elf_sha256: str                 # hash of the exact bytes run (config block patched in)
    hgatp_mode: str                 # "bare" | "sv39x4" | "sv48x4" | "sv57x4" | "" (ELF without config block)
    vs_mode: str                    # "bare" | "sv39" | "sv48" | "sv57" | ""
    backend: str                    # "qemu-7.2" | "qemu-10.0" | "model" | path
    backend_version: str            # e.g. "7.2.22", "10.0.2", "refmodel 0.1"
    cpu: str                        # CPU variant name, e.g. "default", "sv39"
    cpu_config: str                 # the full -cpu string or the model profile's name
    command: list[str] = field(default_factory=list)   # what reproduces this run
    exposes: dict[str, bool] = field(default_factory=dict)
    schema: int = SCHEMA_VERSION
    extra: dict = field(default_factory=dict)
    # the hart and machine run (refmodel/platform.py Platform.describe: ISA/misa, RAM, FDT address,
    # Sstc, PMP, memory map); empty in traces written before it was recorded
    platform: dict = field(default_factory=dict)


@dataclass
class Footer:
    """Last line of a trace: how the run ended."""
    status: str                     # "exit" | "timeout" | "crash" | "step-limit" | "error"
    exit_code: int | None = None    # finisher code: 0 pass, N fail
    steps: int = 0
    uart: str = ""                  # the whole console output
    message: str = ""               # human-readable reason for non-"exit" statuses
    truncated: bool = False         # the backend's log ended early (e.g. QEMU abort)
    # how the program ended (status "exit"): "finisher" (sifive_test), "tohost" (a non-zero write to
    # the ELF's tohost symbol); "" in traces written before it was recorded
    end: str = ""
    extra: dict = field(default_factory=dict)   # backend notes known only at the end (e.g. trap_detail counts)


# ---------------------------------------------------------------------------
# (de)serialisation

def _drop_none(d):
    """The reference rule, on ``asdict`` output: a value that says nothing is not stored -- None,
    "", [] and False, except False in a field whose default is None (``Trap.gva``: False there
    means "GVA written 0", which must not read back as "not shown").  Dict keys in ``KEEP_FALSE``
    name those fields; the fast path below (``_record``) applies the same rule per class."""
    if isinstance(d, dict):
        return {k: _drop_none(v) for k, v in d.items()
                if v is not None and v != [] and v != "" and (v is not False or k in _KEEP_FALSE_NAMES)}
    if isinstance(d, list):
        return [_drop_none(x) for x in d]
    return d


def _value(v):
    t = type(v)
    if t is int or t is str or v is None or t is bool:
        return v
    if t is list:
        return [_value(x) for x in v]
    if t is dict:
        return {k: _value(x) for k, x in v.items() if x is not None and x != [] and x is not False and x != ""}
    if hasattr(type(v), "__dataclass_fields__"):
        return _record(v, _KEYS.get(type(v)) or tuple(type(v).__dataclass_fields__))
    return copy.deepcopy(v)           # what asdict does with any other value


def _record(o, keys):
    d = {}
    od = o.__dict__
    keep = _KEEP_FALSE.get(type(o), ())
    for k in keys:
        v = od.get(k, _ABSENT)
        if v is _ABSENT:               # a field left to its class-level default (the model's lean Steps)
            v = getattr(o, k)
        if v is None or (v is False and k not in keep) or v == "" or v == []:
            continue
        t = type(v)
        d[k] = v if (t is int or t is str or t is bool) else _value(v)
    return d


def step_to_json(step: Step) -> dict:
    return _record(step, _STEP_KEYS)


def _defaults(cls) -> tuple[dict, frozenset, frozenset]:
    """Field defaults in declaration order, all field names, required field names."""
    d, req = {}, set()
    for f in fields(cls):
        if f.default is not MISSING:
            d[f.name] = f.default
        else:                         # no default, or a factory: must be given (else cls(**x))
            d[f.name] = None
            req.add(f.name)
    return d, frozenset(d), frozenset(req)


def _fast_new(cls, x: dict, defaults, names, required):
    """``cls(**x)`` for a dataclass without default factories, without running ``__init__``
    (its keyword parsing dominated reading); anything unusual goes through ``cls(**x)``."""
    keys = x.keys()
    if not (required <= keys <= names):
        return cls(**x)                # raises the usual TypeError
    d = defaults.copy()
    d.update(x)
    o = _new(cls)
    o.__dict__ = d
    return o


_new = object.__new__


def step_from_json(d: dict) -> Step:
    if not d.keys() <= _STEP_NAMES or "i" not in d or "pc" not in d:
        return _step_from_json_checked(d)
    sd = _STEP_BLANK.copy()
    sd.update(d)                       # declaration order kept: every key is already in the blank
    trap = sd["trap"]
    if trap is not None:
        sd["trap"] = _fast_new(Trap, trap, *_TRAP_INFO) if trap else None
    xs = sd["xlats"]
    if xs:
        xl = []
        xdef, xnames, xreq = _XLAT_INFO
        for x in xs:
            keys = x.keys()
            if "walk" in x or not (xreq <= keys <= xnames):
                xl.append(_xlat_from_json(x))
                continue
            xd = xdef.copy()
            xd.update(x)
            o = _new(Xlat)
            o.__dict__ = xd
            xl.append(o)
        sd["xlats"] = xl
    else:
        sd["xlats"] = []
    st = _new(Step)
    st.__dict__ = sd
    return st


def _xlat_from_json(x: dict) -> Xlat:
    walk = x.get("walk")
    if walk is not None:
        x = dict(x)
        x["walk"] = [_fast_new(WalkLevel, w, *_WALK_INFO) for w in walk]
    return _fast_new(Xlat, x, *_XLAT_INFO)


def _step_from_json_checked(d: dict) -> Step:
    """The general route (unknown keys ignored, a missing i/pc a KeyError), as before."""
    trap = d.get("trap")
    xl = [_xlat_from_json(x) for x in d.get("xlats", ())]
    st = _new(Step)
    st.__dict__ = {"i": d["i"], "pc": d["pc"], "insn": d.get("insn"), "priv": d.get("priv"), "v": d.get("v"),
                   "trap": _fast_new(Trap, trap, *_TRAP_INFO) if trap else None, "xlats": xl,
                   "uart": d.get("uart", ""), "regs": d.get("regs"), "raw": d.get("raw")}
    return st


_STEP_KEYS = tuple(f.name for f in fields(Step))
_STEP_NAMES = frozenset(_STEP_KEYS)
_STEP_BLANK = {"i": None, "pc": None, "insn": None, "priv": None, "v": None, "trap": None, "xlats": None,
               "uart": "", "regs": None, "raw": None}
_KEYS = {c: tuple(f.name for f in fields(c)) for c in (Step, Trap, Xlat, WalkLevel, Footer, Header)}
_XLAT_INFO, _TRAP_INFO, _WALK_INFO = _defaults(Xlat), _defaults(Trap), _defaults(WalkLevel)
# bool fields whose default is None: there False is a value ("written 0"), not "not shown"
_KEEP_FALSE = {c: frozenset(f.name for f in fields(c) if f.default is None and "bool" in str(f.type))
               for c in (Step, Trap, Xlat, WalkLevel)}
_KEEP_FALSE_NAMES = frozenset().union(*_KEEP_FALSE.values())
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode
_ESC = json.encoder.encode_basestring_ascii      # a str as json writes it (ensure_ascii)
_ABSENT = object()
try:
    # JSONEncoder.encode builds a C encoder per call; build it once (same output: no indent,
    # ensure_ascii, allow_nan; no circular check -- records are trees)
    from json.encoder import c_make_encoder as _cme, encode_basestring_ascii as _eba
    if _cme is not None:
        _C_ENCODE = _cme(None, json.JSONEncoder().default, _eba, None, ":", ",", False, False, True)
        _ENCODE = lambda o: "".join(_C_ENCODE(o, 0))   # noqa: E731
except ImportError:      # pragma: no cover - pure-Python json
    pass
_XLAT_KEYS = tuple(f.name for f in fields(Xlat))
_BEFORE_XLATS = _STEP_KEYS[:_STEP_KEYS.index("xlats")]
_AFTER_XLATS = _STEP_KEYS[_STEP_KEYS.index("xlats") + 1:]
_MEMO_MAX = 8192
_UMASK = os.umask(0o022)
os.umask(_UMASK)
_BATCH = 512                                                  # lines joined per write()


@contextlib.contextmanager
def finishing(writer):
    """A trace writer's close(): any error aborts it (no temporary file, no half-written trace is
    left) and propagates; an OSError names the trace file.  Both writers (this module's JSON lines,
    tracebin's binary) finish through here."""
    try:
        yield
    except OSError as e:
        writer.abort()
        raise OSError(e.errno, e.strerror, e.filename or writer.path) from None
    except BaseException:
        writer.abort()
        raise


class JsonTraceWriter:
    """The gzip JSON-lines writer of schema 1 (deprecated since the binary format, difftest.tracebin:
    kept to write legacy traces in tests and conversions).  Streams a trace to ``path`` atomically: written to ``path.part`` then renamed.

    Lines are buffered and written ``_BATCH`` at a time.  gzip level 3: measured on a
    185k-step QEMU trace (24 MB of JSON), levels 1-3 all compress at ~450 MB/s (0.05 s), so
    the smaller files of level 3 cost nothing; serialisation was the slow part."""

    def __init__(self, path: str | os.PathLike, header: Header):
        self.path = os.fspath(path)
        d, name = os.path.split(self.path)
        # a unique temporary name: two runs writing the same trace at once each write their own
        # file and the last complete one wins the rename (never a mix of both)
        fd, self._part = tempfile.mkstemp(dir=d or ".", prefix=f".{name}.", suffix=".part")
        os.fchmod(fd, 0o666 & ~_UMASK)          # mkstemp's 0600 would make results private
        self._file = os.fdopen(fd, "wb")
        try:
            # no file name and mtime 0 in the gzip header: the same trace gives the same bytes
            self._gz = gzip.GzipFile(filename="", mode="wb", compresslevel=3, fileobj=self._file, mtime=0)
            self._raw = io.TextIOWrapper(self._gz, encoding="utf-8", newline="\n")
            self._raw.write(json.dumps({"header": asdict(header)}) + "\n")
        except BaseException:
            self._file.close()
            os.unlink(self._part)
            raise
        self._buf: list[str] = []
        self._memo: dict[int, tuple[Xlat, str]] = {}

    def step(self, step: Step) -> None:
        buf = self._buf
        buf.append(self._line(step))
        if len(buf) >= _BATCH:
            self._flush()

    def record(self, r: tuple) -> None:
        """Writes a compact record (RECORD_FIELDS) as the line ``step(step_from_record(r))`` writes."""
        i, pc, insn, priv, v, xl, trap, uart = r
        if (trap is not None or uart or type(xl) is not list or type(insn) is not int or type(priv) is not int
                or type(v) is not int or type(i) is not int or type(pc) is not int):
            line = self._line(step_from_record(r))
        else:
            head = f'{{"i":{i},"pc":{pc},"insn":{insn},"priv":{priv},"v":{v}'
            parts = self._xlat_json(xl)
            if parts is None:
                line = self._line(step_from_record(r))
            elif parts:
                line = head + ',"xlats":[' + ",".join(parts) + "]}"
            else:
                line = head + "}"
        buf = self._buf
        buf.append(line)
        if len(buf) >= _BATCH:
            self._flush()

    def _xlat_json(self, xl: list) -> list[str] | None:
        """The JSON text of each Xlat, memoised by object: the model yields one shared (immutable) Xlat
        for repeated accesses (ARCHITECTURE section 4).  None if an entry is not an Xlat (general route)."""
        parts = []
        memo = self._memo
        for x in xl:
            m = memo.get(id(x))
            if m is None or m[0] is not x:
                if type(x) is not Xlat:
                    return None
                if len(memo) >= _MEMO_MAX:
                    memo.clear()
                m = memo[id(x)] = (x, _ENCODE(_record(x, _XLAT_KEYS)))
            parts.append(m[1])
        return parts

    def _line(self, step: Step) -> str:
        """``_ENCODE(step_to_json(step))``, faster for the usual records (same text)."""
        xl = step.xlats
        if type(xl) is not list:
            return _ENCODE(_record(step, _STEP_KEYS))
        parts = self._xlat_json(xl)
        if parts is None:
            return _ENCODE(_record(step, _STEP_KEYS))
        i, pc, insn, priv, v = step.i, step.pc, step.insn, step.priv, step.v
        if (insn is None and step.trap is None and type(i) is int and type(pc) is int and not step.uart
                and step.regs is None and (priv is None or type(priv) is int) and (v is None or type(v) is int)
                and (step.raw is None or type(step.raw) is str)):
            # a QEMU step (no instruction bits, its log line as raw): the whole line as text
            head = (f'{{"i":{i},"pc":{pc}' + ("" if priv is None else f',"priv":{priv}')
                    + ("" if v is None else f',"v":{v}'))
            tail = "}" if not step.raw else '"raw":' + _ESC(step.raw) + "}"
            if parts:
                return head + ',"xlats":[' + ",".join(parts) + "]" + ("," + tail if tail != "}" else "}")
            return head + ("," + tail if tail != "}" else "}")
        if (type(i) is int and type(pc) is int and type(insn) is int and type(priv) is int and type(v) is int
                and step.trap is None):
            # ints are written as repr(int) by json; trap absent: the head as text
            head = f'{{"i":{i},"pc":{pc},"insn":{insn},"priv":{priv},"v":{v}'
        else:
            head = _ENCODE(_record(step, _BEFORE_XLATS))[:-1]
        if step.uart or step.regs is not None or step.raw is not None:
            tail = _ENCODE(_record(step, _AFTER_XLATS))[1:]
        else:
            tail = "}"
        if parts:
            xs = (',"xlats":[' if len(head) > 1 else '"xlats":[') + ",".join(parts) + "]"
            return head + xs + ("," + tail if tail != "}" else "}")
        if tail == "}":
            return head + "}"
        return head + ("," + tail if len(head) > 1 else tail)

    def _flush(self) -> None:
        if self._buf:
            self._buf.append("")
            try:
                self._raw.write("\n".join(self._buf))
            except OSError as e:                 # name the file (disk full says nothing else)
                raise OSError(e.errno, e.strerror, self.path) from None
            self._buf = []

    def close(self, footer: Footer) -> None:
        """Finish the file and rename it into place; on any error (disk full) nothing is left
        behind, neither the temporary file nor a half-written trace, and the error propagates."""
        with finishing(self):
            self._flush()
            self._raw.write(json.dumps({"footer": asdict(footer)}) + "\n")
            self._raw.close()
            self._file.close()
            os.replace(self._part, self.path)
        self._memo = {}

    def abort(self) -> None:
        self._buf = []
        self._memo = {}
        for f in (self._raw, self._file):
            try:
                f.close()
            except (OSError, ValueError):      # disk full again while flushing: the file goes anyway
                pass
        if os.path.exists(self._part):
            os.unlink(self._part)


def __getattr__(name):
    # TraceWriter is the binary format's writer (difftest.tracebin imports this module: loaded lazily)
    if name in ("TraceWriter", "BinTraceWriter"):
        from difftest.tracebin import BinTraceWriter
        return BinTraceWriter
    raise AttributeError(name)


def write_trace(path, header: Header, steps: Iterable[Step], footer: Footer, *, json_lines: bool = False) -> None:
    """Write a whole trace: the binary format (difftest.tracebin), or with ``json_lines`` the
    deprecated gzip JSON lines."""
    if json_lines:
        w = JsonTraceWriter(path, header)
    else:
        from difftest.tracebin import BinTraceWriter
        w = BinTraceWriter(path, header)
    try:
        for s in steps:
            w.step(s)
    except BaseException:
        w.abort()
        raise
    w.close(footer)


def _parse_lines(lines: list[str]):
    """The JSON value of each line, in order: one ``json.loads`` of the lines joined as an
    array (one C call instead of one per line); on a bad line, line by line so every good
    line before it is still returned and the error is the bad line's own."""
    if not lines:
        return []
    try:
        out = json.loads("[" + ",".join(lines) + "]")
        if len(out) == len(lines):
            return out
    except ValueError:
        pass
    return _parse_each(lines)


def _parse_each(lines):
    for line in lines:
        yield json.loads(line)


class TraceError(Exception):
    """A trace file that cannot be trusted: missing, truncated, damaged (gzip CRC), not a trace,
    wrong schema, or a header without its fields.  An input error (exit 2) where a user named the
    file (``difftest diff``/``show``)."""


_NONE = type(None)
_I, _S, _B = (int,), (str,), (bool,)
# field -> allowed types, per record class (bool is an int: flags written as true/false read back)
_SPEC = {
    Header: {"guest": _S, "elf_sha256": _S, "hgatp_mode": _S, "vs_mode": _S, "backend": _S,
             "backend_version": _S, "cpu": _S, "cpu_config": _S, "command": (list,), "exposes": (dict,),
             "schema": _I, "extra": (dict,), "platform": (dict,)},
    Step: {"i": _I, "pc": _I, "insn": (int, _NONE), "priv": (int, _NONE), "v": (int, _NONE),
           "trap": (dict, _NONE), "xlats": (list,), "uart": _S, "regs": (dict, _NONE), "raw": (str, _NONE)},
    Trap: {"cause": _I, "interrupt": _B, "epc": (int, _NONE), "tval": (int, _NONE), "htval": (int, _NONE),
           "tinst": (int, _NONE), "gva": (bool, _NONE), "target": (str, _NONE), "fields": (dict, _NONE), "raw": (str, _NONE)},
    Xlat: {"access": _S, "va": _I, "priv": _I, "v": (int, _NONE), "gpa": (int, _NONE), "pa": (int, _NONE),
           "fault_stage": (str, _NONE), "fault_cause": (int, _NONE), "implicit": _B,
           "vs_leaf_level": (int, _NONE), "g_leaf_level": (int, _NONE), "maybe_stale": _B,
           "walk": (list, _NONE), "raw": (str, _NONE)},
    WalkLevel: {"stage": _S, "level": _I, "pte_addr": _I, "pte": _I, "decision": _S},
    Footer: {"status": _S, "exit_code": (int, _NONE), "steps": _I, "uart": _S, "message": _S,
             "truncated": _B, "extra": (dict,), "end": _S},
}
_REQUIRED = {Header: ("guest", "elf_sha256", "hgatp_mode", "vs_mode", "backend", "backend_version", "cpu",
                      "cpu_config"),
             Step: ("i", "pc"), Trap: ("cause",), Xlat: ("access", "va", "priv"),
             WalkLevel: ("stage", "level", "pte_addr", "pte", "decision"), Footer: ("status",)}
FOOTER_STATUSES = ("exit", "timeout", "crash", "step-limit", "error")


def _exact(types) -> frozenset:
    t = set(types)
    if int in t:
        t.add(bool)                   # isinstance(True, int): a flag stored as true/false
    return frozenset(t)


_FAST = {c: {k: _exact(t) for k, t in spec.items()} for c, spec in _SPEC.items()}
_FAST_REQ = {c: frozenset(r) for c, r in _REQUIRED.items()}
_STEP_T, _XLAT_T, _XLAT_REQ = _FAST[Step], _FAST[Xlat], _FAST_REQ[Xlat]


def _bad(d, cls) -> str | None:
    """Why ``d`` is not a valid stored ``cls`` record, or None (fast path: exact types)."""
    if type(d) is dict:
        spec = _FAST[cls]
        try:
            for k, v in d.items():
                if type(v) not in spec[k]:
                    break
            else:
                if _FAST_REQ[cls] <= d.keys():
                    return None
        except KeyError:
            pass
    return _bad_why(d, cls)


def _bad_why(d, cls) -> str | None:
    if type(d) is not dict:
        return f"{cls.__name__.lower()} is not a JSON object"
    spec = _SPEC[cls]
    for k, v in d.items():
        t = spec.get(k)
        if t is None:
            return f"{cls.__name__.lower()} has an unknown field {k!r}"
        if not isinstance(v, t) or (type(v) is float):
            return f"{cls.__name__.lower()} field {k!r} is a {type(v).__name__}"
    for k in _REQUIRED[cls]:
        if k not in d:
            return f"{cls.__name__.lower()} lacks the field {k!r}"
    return None


def _bad_step(d, expect_i: int) -> str | None:
    """Why ``d`` is not step ``expect_i``, or None.  The common case inline (it runs per step)."""
    if type(d) is dict:
        st, xt, xreq = _STEP_T, _XLAT_T, _XLAT_REQ
        try:
            for k, v in d.items():
                if type(v) not in st[k]:
                    break
            else:
                if d.get("i") == expect_i and "pc" in d:
                    for x in d.get("xlats", ()):
                        if type(x) is not dict or x.get("walk") is not None:
                            break
                        for k, v in x.items():
                            if type(v) not in xt[k]:
                                break
                        else:
                            if xreq <= x.keys() and x["access"] in ACCESSES:
                                continue
                        break
                    else:
                        t = d.get("trap")
                        if t is None or _bad(t, Trap) is None:
                            return None
        except KeyError:
            pass
    return _bad_step_why(d, expect_i)


def _bad_step_why(d, expect_i: int) -> str | None:
    why = _bad(d, Step)
    if why:
        return why
    if d["i"] != expect_i:
        return f"step index {d['i']} where {expect_i} was due (steps are numbered 0, 1, 2, ...)"
    t = d.get("trap")
    if t is not None and (why := _bad(t, Trap)):
        return why
    for x in d.get("xlats", ()):
        if (why := _bad(x, Xlat)):
            return why
        if x["access"] not in ACCESSES:
            return f"xlat access {x['access']!r}"
        for w in x.get("walk") or ():
            if (why := _bad(w, WalkLevel)):
                return why
    return None


def _bad_footer(d) -> str | None:
    why = _bad(d, Footer)
    if why is None and d["status"] not in FOOTER_STATUSES:
        why = f"footer status {d['status']!r}"
    return why


_GZ_ERRORS = (OSError, EOFError, zlib.error, ValueError)


def _check_gzip(f) -> None:
    """Decompress the whole file: gzip checks the CRC-32 and length of every member at its end."""
    g = gzip.GzipFile(fileobj=f, mode="rb")
    while g.read(1 << 20):
        pass


class TraceReader:
    """Lazily reads a trace: ``.header`` at once, ``steps()`` as a generator,
    ``.footer`` once the steps are exhausted.

    Opening verifies the whole file's gzip integrity and the header (else ``TraceError``);
    ``steps()`` validates each record and ends with an error footer (``.error`` says why) at
    the first bad one (module docstring, "Integrity")."""

    def __new__(cls, path=None, *args, **kwargs):
        # one reader for both formats: the binary one (difftest.tracebin) by its magic bytes, else
        # the deprecated gzip JSON lines (old caches and saved traces)
        if cls is TraceReader:
            from difftest.tracebin import MAGIC
            from difftest.tracebin_read import BinTraceReader
            try:
                with open(os.fspath(path), "rb") as f:
                    magic = f.read(len(MAGIC))
            except (OSError, TypeError):
                magic = b""                     # __init__ reports it
            if magic == MAGIC:
                return object.__new__(BinTraceReader)
        return object.__new__(cls)

    def __init__(self, path, *, verify: bool = True):
        self.path = os.fspath(path)
        self.error: str | None = None
        try:
            self._file = open(self.path, "rb")
        except OSError as e:
            raise TraceError(f"{self.path}: cannot open the trace ({e.strerror or e})") from None
        try:
            if verify:
                try:
                    _check_gzip(self._file)
                except _GZ_ERRORS as e:
                    raise TraceError(f"{self.path}: damaged or not a difftest trace (gzip: {e or type(e).__name__})"
                                     ) from None
                self._file.seek(0)
            self._fh = io.TextIOWrapper(gzip.GzipFile(fileobj=self._file, mode="rb"), encoding="utf-8", newline="\n")
            try:
                first = json.loads(self._fh.readline())
            except _GZ_ERRORS as e:
                raise TraceError(f"{self.path}: not a difftest trace ({e or type(e).__name__})") from None
            head = first.get("header") if type(first) is dict else None
            if type(head) is not dict:
                raise TraceError(f"{self.path}: not a difftest trace (line 1 is not a {{\"header\": {{...}}}} object)")
            if head.get("schema") != SCHEMA_VERSION:
                raise TraceError(f"{self.path}: trace schema {head.get('schema')!r} but this difftest reads "
                                 f"{SCHEMA_VERSION}")
            why = _bad(head, Header)
            if why:
                raise TraceError(f"{self.path}: bad trace header: {why}")
        except BaseException:
            self._file.close()
            raise
        self.header = Header(**head)
        self.footer: Footer | None = None

    def close(self) -> None:
        self._fh.close()
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _fail(self, line: int, why: str) -> None:
        self.error = f"line {line}: {why}"
        self.footer = Footer(status="error", message=f"trace file damaged at line {line}: {why}", truncated=True)

    def steps(self) -> Iterator[Step]:
        batch: list[str] = []
        n = 0                               # steps handed out = the index the next step must have
        after: list[str] = []               # lines after the footer (must be none)
        ended = False

        def parse(lines):
            nonlocal n, ended, after
            for k, d in enumerate(_parse_lines(lines)):
                if type(d) is dict and "footer" in d:
                    why = _bad_footer(d["footer"]) or ("footer line has other keys" if len(d) != 1 else None)
                    if why:
                        self._fail(n + 2, why)
                    else:
                        self.footer = Footer(**d["footer"])
                    after = lines[k + 1:]
                    ended = True
                    return
                why = _bad_step(d, n)
                if why:
                    self._fail(n + 2, why)
                    ended = True
                    return
                yield step_from_json(d)
                n += 1

        try:
            read_error = None
            lines = iter(self._fh)
            while not ended:
                try:
                    line = next(lines, None)
                except _GZ_ERRORS as e:
                    line, read_error = None, e      # the lines read before the error still count
                if line is None:
                    yield from parse(batch)
                    break
                batch.append(line)
                if len(batch) >= _BATCH:
                    yield from parse(batch)
                    batch = []
            if read_error is not None:
                raise read_error
            if ended and self.error is None and (any(ln.strip() for ln in after)
                                                 or any(ln.strip() for ln in self._fh)):
                self._fail(n + 3, "data after the footer")
        except _GZ_ERRORS as e:
            if self.error is None:
                self._fail(n + 2, f"unreadable ({e or type(e).__name__})")
            return
        finally:
            self._fh.close()
            self._file.close()
        if self.footer is None:
            self.error = "no footer"
            self.footer = Footer(status="error", message="trace file has no footer (truncated)", truncated=True)

    def read_all(self) -> tuple[Header, list[Step], Footer]:
        steps = list(self.steps())
        return self.header, steps, self.footer


def read_trace(path) -> tuple[Header, list[Step], Footer]:
    return TraceReader(path).read_all()


def verify(path) -> tuple[Header, Footer]:
    """Read a whole trace and raise ``TraceError`` unless every byte and record is sound (gzip
    CRC, header, each step, the footer, nothing after it).  Returns its header and footer."""
    r = TraceReader(path)
    if hasattr(r, "verify_all"):          # binary: decode and validate every chunk, no Step objects
        try:
            r.verify_all()
        finally:
            r.close()
        return r.header, r.footer
    for _ in r.steps():
        pass
    if r.error is not None:
        raise TraceError(f"{r.path}: damaged trace ({r.error})")
    return r.header, r.footer


def console_text(data: bytes) -> str:
    """UART bytes as the str the trace carries: one character per byte (module docstring)."""
    return data.decode("latin-1")


def escape_console(s: str, *, keep_newlines: bool = True) -> str:
    r"""Console text as it may be shown to a person: valid UTF-8 that prints is shown as itself;
    every other byte -- control characters, ESC sequences, a lone ``\r``, invalid UTF-8 -- as
    ``\xNN`` (a backslash as ``\\``), so a guest can never drive the terminal or a report's
    reader.  ``keep_newlines`` keeps ``\n`` (a ``\r\n`` shows as ``\x0d`` and a newline)."""
    try:
        data = s.encode("latin-1")
    except UnicodeEncodeError:            # not console bytes (already decoded text): escape it as UTF-8
        data = s.encode("utf-8", "surrogateescape")
    out = []
    for ch in data.decode("utf-8", "surrogateescape"):
        o = ord(ch)
        if 0xDC80 <= o <= 0xDCFF:                          # a byte that is not valid UTF-8
            out.append(f"\\x{o - 0xDC00:02x}")
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n" and keep_newlines:
            out.append("\n")
        elif ch.isprintable():
            out.append(ch)
        elif o < 0x100:
            out.append(f"\\x{o:02x}")
        else:                                              # a non-printing code point (bidi override, ...)
            out.append("".join(f"\\x{b:02x}" for b in ch.encode("utf-8")))
    return "".join(out)


# ---------------------------------------------------------------------------
# mode names shared by the whole project

HGATP_MODES = {"bare": 0, "sv39x4": 8, "sv48x4": 9, "sv57x4": 10}
SATP_MODES = {"bare": 0, "sv39": 8, "sv48": 9, "sv57": 10}
HGATP_MODE_NAMES = {v: k for k, v in HGATP_MODES.items()}
SATP_MODE_NAMES = {v: k for k, v in SATP_MODES.items()}
PRIV_NAMES = {(3, 0): "M", (1, 0): "HS", (0, 0): "U", (1, 1): "VS", (0, 1): "VU"}
