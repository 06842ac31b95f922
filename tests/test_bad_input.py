"""Bad input gets a clear, classified answer -- exit 2 (usage/input) or 125 (cannot build or run),
never 1 (a real mismatch), never a traceback -- and nothing damaged is trusted, cached or left
half-written.  Real guests, real QEMU, the real model.  README "What happens when things go wrong"."""
from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from difftest import asm, cache, elfcheck, engine
from difftest.backends import run as backend_run
from difftest.backends.binaries import KNOWN
from difftest.cli import main
from difftest.trace import Footer, TraceError, escape_console, read_trace, verify, write_trace

ROOT = Path(__file__).resolve().parent.parent
QEMU = "qemu-10.0" if KNOWN["qemu-10.0"][0].exists() else None
need_qemu = pytest.mark.skipif(QEMU is None, reason="QEMU 10.0 is not unpacked in .cache/ (run scripts/setup)")
need_cc = pytest.mark.skipif(not asm.have_cc(), reason="no riscv64-unknown-elf-gcc (run scripts/setup)")


def cli(*args, cache_dir=None, timeout=300):
    """``difftest ARGS`` as a user runs it: (exit code, stdout, stderr)."""
    env = dict(os.environ)
    if cache_dir is not None:
        env["DIFFTEST_TRACE_CACHE"] = str(cache_dir)
    p = subprocess.run([sys.executable, "-m", "difftest", *map(str, args)], capture_output=True, text=True,
                       timeout=timeout, cwd=ROOT, env=env)
    return p.returncode, p.stdout, p.stderr


def assert_classified(rc, out, err, code, *words):
    assert rc == code, f"exit {rc}, wanted {code}\nstdout: {out}\nstderr: {err}"
    assert "Traceback" not in out + err, err
    for w in words:
        assert w.lower() in (out + err).lower(), f"{w!r} not in the message:\n{err}"


def leftovers(d: Path) -> list[str]:
    """Half-written files under ``d``: temporary trace/report/cache files."""
    return [str(p) for p in Path(d).rglob("*") if p.name.endswith((".part", ".tmp"))]


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    d = tmp_path / "trace-cache"
    monkeypatch.setattr(cache, "CACHE_DIR", d)
    return d


# ---------------------------------------------------------------------------
# 1 and 14: console bytes are carried losslessly and shown escaped

CONSOLE = "h\u00e9llo \u2713\r\n\x1b[31mred\x1b[0m\r\n\xff\x00end\n".encode("utf-8", "surrogateescape")
CONSOLE = CONSOLE.replace("\xff".encode(), b"\xff")           # one raw invalid-UTF-8 byte too


def console_guest(tmp_path) -> Path:
    """M-mode: write CONSOLE byte by byte to the ns16550 THR, then the finisher's pass."""
    data = ", ".join(str(b) for b in CONSOLE)
    src = f"""
.section .text
.globl _start
_start:
  la t0, msg
  la t1, msg_end
  li t2, 0x10000000
1:
  beq t0, t1, 2f
  lbu t3, 0(t0)
  sb t3, 0(t2)
  addi t0, t0, 1
  j 1b
2:
  li t0, 0x100000
  li t1, 0x5555
  sw t1, 0(t0)
3:
  j 3b
.section .rodata
msg: .byte {data}
msg_end:
"""
    return asm.assemble(src, tmp_path / "console.elf")


@need_qemu
@need_cc
def test_console_bytes_are_lossless_and_identical_on_every_backend(tmp_path, cache_dir):
    """UTF-8, CRLF, ESC sequences, an invalid byte and a NUL: QEMU 7.2, QEMU 10.0 and the model
    carry the same bytes, one character per byte, and the run matches (it mismatched against
    itself when QEMU's UART file was decoded as UTF-8 text with newline translation)."""
    elf = console_guest(tmp_path)
    backends = [b for b in ("qemu-7.2", "qemu-10.0") if KNOWN[b][0].exists()] + ["model"]
    case = engine.run_case(str(elf), backends=backends, out_dir=tmp_path / "out", timeout=60, max_steps=10_000)
    assert case.status == "match", [p.summary for p in case.pairs]
    for name, r in case.runs.items():
        f = read_trace(r.trace_path)[2]
        assert f.uart.encode("latin-1") == CONSOLE, name
    # the model's per-step uart adds up to the same bytes
    steps = read_trace(case.runs["model" if "model" in case.runs else "model@qemu-10.0"].trace_path)[1]
    assert "".join(s.uart for s in steps).encode("latin-1") == CONSOLE


def test_escape_console():
    s = CONSOLE.decode("latin-1")
    shown = escape_console(s)
    assert "\x1b" not in shown and "\r" not in shown and "\x00" not in shown
    assert shown == "h\u00e9llo \u2713\\x0d\n\\x1b[31mred\\x1b[0m\\x0d\n\\xff\\x00end\n"
    assert escape_console("a\\b\u202e", keep_newlines=False) == "a\\\\b\\xe2\\x80\\xae"
    assert escape_console("x\ny", keep_newlines=False) == "x\\x0ay"


@need_qemu
@need_cc
def test_console_escapes_never_reach_the_terminal_or_reports(tmp_path, cache_dir, capsys):
    """Item 14: an output mismatch whose console text carries ESC sequences: the diff's terminal
    output and the .txt/.md reports show them as \\x1b, never raw."""
    elf = console_guest(tmp_path)
    case = engine.run_case(str(elf), backends=[QEMU, "model"], out_dir=tmp_path / "out", timeout=60,
                           max_steps=10_000)
    a = case.runs[QEMU].trace_path
    h, steps, f = read_trace(a)
    f.uart = f.uart.replace("red", "\x1b]0;pwned\x07RED")
    b = tmp_path / "other.trace.bin"
    write_trace(b, h, steps, f)
    rc = main(["diff", a, str(b), "--out", str(tmp_path / "rep")])
    out = capsys.readouterr().out
    assert rc == 1 and "output" in out
    assert "\x1b" not in out and "\x07" not in out and "\\x1b" in out
    for ext in ("txt", "md"):
        text = next((tmp_path / "rep").glob(f"*.{ext}")).read_text()
        assert "\x1b" not in text and "\x07" not in text and "\\x1b" in text


# ---------------------------------------------------------------------------
# 2: a damaged trace is never trusted; a damaged cache entry is replaced

def _flip(data: bytes, bit: int) -> bytes:
    b = bytearray(data)
    b[bit // 8] ^= 1 << (bit % 8)
    return bytes(b)


def _content(path):
    h, steps, f = read_trace(path)
    return h, steps, f


@need_qemu
def test_forty_bit_flips_in_a_cached_trace_are_all_caught(tmp_path, cache_dir, capsys):
    """Before: of 40 single-bit flips in a cached trace, 31 errors blaming QEMU, 4 false
    mismatches, 4 silent matches, 1 traceback.  Now every flip is caught: the cache quarantines
    the entry (the run re-records), and read directly (``difftest diff``) the file is refused
    (exit 2) -- or, for a flip in a gzip header byte no reader looks at, reads back identical."""
    case = engine.run_case("smoke", hgatp_mode="sv39x4", backends=[QEMU, "model"], out_dir=tmp_path / "rec",
                           timeout=60, max_steps=1_000_000)
    assert case.status == "match"
    (meta,) = cache_dir.glob("*.json")
    k = meta.name[:-len(".json")]
    entry = cache_dir / f"{k}.trace.bin"
    pristine, pristine_meta = entry.read_bytes(), meta.read_bytes()
    want = _content(entry)
    model_trace = case.runs["model"].trace_path
    nbits = len(pristine) * 8
    outcomes = {"quarantined": 0, "refused": 0, "identical": 0}
    for n in range(40):
        bit = n * (nbits - 1) // 39
        bad = _flip(pristine, bit)
        entry.write_bytes(bad)
        meta.write_bytes(pristine_meta)
        # through the cache: never handed out, moved aside
        assert cache.fetch(k, tmp_path / f"fetched{n}.gz", guest="smoke") is None, bit
        assert not entry.exists() and not meta.exists(), bit
        outcomes["quarantined"] += 1
        assert "damaged" in capsys.readouterr().err
        # read directly, as `difftest diff` does
        loose = tmp_path / f"flip{n}.trace.bin"
        loose.write_bytes(bad)
        try:
            got = _content(loose)
            verify(loose)
        except TraceError:
            outcomes["refused"] += 1
            rc = main(["diff", str(loose), model_trace])
            cap = capsys.readouterr()
            assert rc == 2 and "damaged" in cap.err, (bit, rc, cap.err)
            continue
        assert got == want, f"bit {bit}: a damaged trace read back different data without an error"
        outcomes["identical"] += 1
    print("bit-flip outcomes:", outcomes)
    assert outcomes["quarantined"] == 40 and outcomes["refused"] >= 36, outcomes
    assert not (tmp_path / "fetched0.gz").exists()
    assert len(list((cache_dir / "quarantine").glob("*.trace.bin"))) == 40


@need_qemu
def test_a_damaged_cache_entry_is_re_recorded_by_the_next_run(tmp_path, cache_dir):
    out = tmp_path / "runs"
    rc, o, e = cli("run", "smoke", "--mode", "sv39x4", "--backend", f"{QEMU},model", "--out", out,
                   cache_dir=cache_dir)
    assert_classified(rc, o, e, 0)
    (entry,) = cache_dir.glob("*.trace.bin")
    data = entry.read_bytes()
    entry.write_bytes(_flip(data, len(data) * 4))              # a bit in the middle of the deflate data
    rc, o, e = cli("run", "smoke", "--mode", "sv39x4", "--backend", f"{QEMU},model", "--out", out,
                   cache_dir=cache_dir)
    assert_classified(rc, o, e, 0, "damaged", "re-running QEMU")
    assert list((cache_dir / "quarantine").glob("*.trace.bin"))
    r = cache.fetch(entry.name.split(".")[0], tmp_path / "check.gz", guest="smoke")
    assert r is not None and r.cached                          # a fresh, verified entry replaced it


@need_qemu
def test_no_cache_replaces_the_entry(tmp_path, cache_dir):
    """A bad entry that passes every check (e.g. recorded by an older, buggy difftest) is
    replaced by ``--no-cache``, which used to neither read nor write the cache."""
    out = tmp_path / "runs"
    assert cli("run", "smoke", "--mode", "sv39x4", "--backend", f"{QEMU},model", "--out", out,
               cache_dir=cache_dir)[0] == 0
    (meta,) = cache_dir.glob("*.json")
    entry = meta.with_name(meta.name[:-5] + ".trace.bin")
    h, steps, f = read_trace(entry)
    steps[5].pc += 4                                           # a wrong but well-formed trace
    write_trace(entry, h, steps, f)
    m = json.loads(meta.read_text())
    m["trace_sha256"] = hashlib.sha256(entry.read_bytes()).hexdigest()
    m["check"] = cache._meta_sum(m)
    meta.write_text(json.dumps(m))
    planted = m["trace_sha256"]
    rc, o, e = cli("run", "smoke", "--mode", "sv39x4", "--backend", f"{QEMU},model", "--out", out, "--no-cache",
                   cache_dir=cache_dir)
    assert_classified(rc, o, e, 0)
    m2 = json.loads(meta.read_text())
    assert m2["trace_sha256"] != planted
    assert m2["trace_sha256"] == hashlib.sha256(entry.read_bytes()).hexdigest()
    assert read_trace(entry)[1][5].pc == steps[5].pc - 4


def test_store_refuses_a_damaged_trace(tmp_path, cache_dir, capsys):
    from difftest.backends.result import RunResult
    p = tmp_path / "t.trace.bin"
    _write_lines(p, [_header_line(), '{"i":0,"pc":4096}', '{"pc":4100}', _footer_line()])
    cache.store("k" * 40, p, RunResult("ok", str(p), None, Footer("exit", 0, 2), "", None))
    assert not list(cache_dir.glob("k*")) and not leftovers(cache_dir)
    assert "not caching" in capsys.readouterr().err


# ---------------------------------------------------------------------------
# 3: two runs of one case at once

@need_qemu
def test_two_concurrent_runs_of_one_case(tmp_path, cache_dir):
    out = tmp_path / "same"
    env = dict(os.environ, DIFFTEST_TRACE_CACHE=str(cache_dir))
    cmd = [sys.executable, "-m", "difftest", "run", "smoke", "--mode", "sv39x4", "--backend", f"{QEMU},model",
           "--out", str(out), "--no-cache"]
    ps = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
          for _ in range(3)]
    res = [(p.wait(timeout=300), *p.communicate()) for p in ps]
    for rc, o, e in res:
        assert_classified(rc, o, e, 0)
    assert not leftovers(out) and not leftovers(cache_dir)
    for t in out.rglob("*.trace.bin"):
        verify(t)
    (meta,) = cache_dir.glob("*.json")
    assert cache.fetch(meta.name[:-5], tmp_path / "c.gz", guest="smoke") is not None


def test_trace_writer_uses_unique_temporary_names(tmp_path):
    from difftest.trace import Header, TraceWriter
    h = Header("g", "0" * 64, "", "", "model", "t", "default", "x")
    p = tmp_path / "t.trace.bin"
    a, b = TraceWriter(p, h), TraceWriter(p, h)
    assert a._part != b._part
    a.close(Footer("exit", 0, 0))
    b.abort()
    verify(p)
    assert not leftovers(tmp_path)


# ---------------------------------------------------------------------------
# 4: ELFs the backends cannot run alike are rejected before any backend runs

def _no_load(src: Path, dst: Path) -> Path:
    data = bytearray(src.read_bytes())
    phoff, = struct.unpack_from("<Q", data, 32)
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    for k in range(phnum):
        if struct.unpack_from("<I", data, phoff + k * phentsize)[0] == elfcheck.PT_LOAD:
            struct.pack_into("<I", data, phoff + k * phentsize, 0)     # PT_NULL
    dst.write_bytes(bytes(data))
    return dst


@need_cc
@pytest.mark.parametrize("kind,words", [
    ("rel", ["ET_REL"]), ("noload", ["no loadable segment"]), ("low", ["outside RAM"]),
    ("rv32", ["64-bit"]), ("x86", ["not a RISC-V ELF"]), ("text", ["not an ELF"])])
def test_unrunnable_elfs_are_input_errors(tmp_path, kind, words):
    from difftest import guests
    src = tmp_path / "a.S"
    src.write_text(".globl _start\n_start: j _start\n")
    cc = [guests.CC, "-nostdlib"]
    p = tmp_path / f"{kind}.elf"
    if kind == "rel":
        subprocess.run([*cc, "-c", str(src), "-o", str(p)], check=True)
    elif kind == "noload":
        _no_load(guests.build("smoke"), p)
    elif kind == "low":
        subprocess.run([*cc, "-Wl,-Ttext=0x10000", str(src), "-o", str(p)], check=True)
    elif kind == "rv32":
        subprocess.run([*cc, "-march=rv32i", "-mabi=ilp32", "-Wl,-Ttext=0x80000000", str(src), "-o", str(p)],
                       check=True)
    elif kind == "x86":
        p.write_bytes(Path(sys.executable).resolve().read_bytes()[:1 << 16])
    else:
        p.write_text("not an elf\n")
    out = tmp_path / "out"
    rc, o, e = cli("run", p, "--backend", "qemu-10.0,model", "--out", out)
    assert_classified(rc, o, e, 2, *words)
    assert not list(out.rglob("*.trace.bin"))                 # no backend ran


# ---------------------------------------------------------------------------
# 6: diff refuses traces of different runs

def test_diff_refuses_traces_of_different_guests(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert cli("run", "smoke", "--mode", "sv39x4", "--backend", "model", "--out", a)[0] == 0
    assert cli("run", "gstage_basic", "--mode", "sv39x4", "--backend", "model", "--out", b)[0] == 0
    ta, tb = next(a.rglob("model.trace.bin")), next(b.rglob("model.trace.bin"))
    rc, o, e = cli("diff", ta, tb)
    assert_classified(rc, o, e, 2, "not of the same run", "guest 'smoke' vs 'gstage_basic'", "--force")
    rc, o, e = cli("diff", ta, tb, "--force")
    assert rc == 1 and "warning" in e and "Traceback" not in e


def test_diff_refuses_traces_of_different_modes(tmp_path):
    a = tmp_path / "a"
    assert cli("run", "smoke", "--mode", "sv39x4,sv48x4", "--backend", "model", "--out", a)[0] == 0
    t1, t2 = sorted(a.rglob("model.trace.bin"))
    rc, o, e = cli("diff", t1, t2)
    assert_classified(rc, o, e, 2, "hgatp_mode", "elf_sha256")


# ---------------------------------------------------------------------------
# 10: tracebacks with exit 1 become classified errors

def _header_line(**over) -> str:
    h = {"guest": "g", "elf_sha256": "0" * 64, "hgatp_mode": "", "vs_mode": "", "backend": "model",
         "backend_version": "t", "cpu": "default", "cpu_config": "x", "command": [], "exposes": {}, "schema": 1,
         "extra": {}}
    h.update(over)
    return json.dumps({"header": {k: v for k, v in h.items() if v is not None}})


def _footer_line() -> str:
    return json.dumps({"footer": {"status": "exit", "exit_code": 0, "steps": 2}})


def _write_lines(p: Path, lines: list[str]) -> Path:
    p.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    return p


@pytest.mark.parametrize("name,lines,words", [
    ("header-list", ['[1, 2]'], ["not a difftest trace"]),
    ("header-string", ['{"header": "x"}'], ["not a difftest trace"]),
    ("header-missing-field", [_header_line(backend=None)], ["lacks the field 'backend'"]),
    ("header-wrong-type", [_header_line(command="x")], ["'command' is a str"]),
    ("step-without-index", [_header_line(), '{"pc":4096}', _footer_line()], ["lacks the field 'i'"]),
    ("step-index-gap", [_header_line(), '{"i":0,"pc":4096}', '{"i":2,"pc":4100}', _footer_line()],
     ["step index 2 where 1 was due"]),
    ("step-not-object", [_header_line(), '[0, 4096]', _footer_line()], ["not a JSON object"]),
    ("step-bad-xlat", [_header_line(), '{"i":0,"pc":4096,"xlats":[{"access":"load","va":"0x10","priv":0,"v":0}]}',
                       _footer_line()], ["'va' is a str"]),
    ("no-footer", [_header_line(), '{"i":0,"pc":4096}'], ["no footer"]),
    ("after-footer", [_header_line(), '{"i":0,"pc":4096}', _footer_line(), '{"i":1,"pc":4100}'],
     ["after the footer"]),
])
def test_malformed_traces_are_input_errors(tmp_path, name, lines, words):
    p = _write_lines(tmp_path / f"{name}.trace.bin", lines)
    ok = _write_lines(tmp_path / "ok.trace.bin",
                      [_header_line(), '{"i":0,"pc":4096}', '{"i":1,"pc":4100}', _footer_line()])
    for args in (("diff", p, ok), ("diff", ok, p), ("show", p), ("show", p, "--json")):
        rc, o, e = cli(*args)
        assert_classified(rc, o, e, 2, *words)


def test_damaged_deflate_data_is_an_input_error(tmp_path):
    a = tmp_path / "a"
    assert cli("run", "smoke", "--mode", "sv39x4", "--backend", "model", "--out", a)[0] == 0
    t = next(a.rglob("model.trace.bin"))
    data = bytearray(t.read_bytes())
    data[len(data) // 2: len(data) // 2 + 8] = b"\xff" * 8
    bad = tmp_path / "bad.trace.bin"
    bad.write_bytes(bytes(data))
    for args in (("diff", bad, t), ("show", bad)):
        rc, o, e = cli(*args)
        assert_classified(rc, o, e, 2, "damaged")


@contextlib.contextmanager
def small_fs(path: Path, size: str, *, ro: bool = False):
    """A tmpfs of ``size`` at ``path`` (read-only with ``ro``); None when mounting is not allowed."""
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}" + (",ro" if ro else ""), "tmpfs", str(path)],
                       capture_output=True)
    if r.returncode != 0:
        yield None
        return
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def test_read_only_out_is_an_input_error(tmp_path):
    with small_fs(tmp_path / "ro", "1m", ro=True) as d:
        if d is None:                       # not root: a directory without write permission
            d = tmp_path / "ro"
            d.chmod(0o555)
        rc, o, e = cli("run", "smoke", "--mode", "sv39x4", "--backend", "model", "--out", d / "x")
        assert_classified(rc, o, e, 2, "--out", "cannot write there")
        rc, o, e = cli("diff", "a", "b", "--out", d / "x")
        assert rc == 2 and "Traceback" not in e


@need_qemu
@pytest.mark.parametrize("size", ["128k", "184k"])     # full at the ELF copy / at the traces (binary traces with the log source: ELF 135 KiB + QEMU 44 KiB + model 11 KiB do not fit; which of the two traces, written side by side, hits it first varies)
def test_disk_full_is_cannot_run_and_leaves_nothing_half_written(tmp_path, cache_dir, size):
    """A file system that fills up while the run writes: exit 125 naming the problem, no temporary
    or partial file left, only verified traces cached (used to be a traceback with exit 1)."""
    with small_fs(tmp_path / "full", size) as d:
        cmd = ["run", "smoke", "--mode", "sv39x4", "--backend", f"{QEMU},model", "--out", tmp_path / "full" / "x",
               "--no-cache", "--qemu-trace", "log"]
        if d is not None:
            rc, o, e = cli(*cmd, cache_dir=cache_dir)
        else:                               # no mount: a file size limit gives EFBIG the same way
            import resource

            def limit():
                resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
            env = dict(os.environ, DIFFTEST_TRACE_CACHE=str(cache_dir))
            p = subprocess.run([sys.executable, "-m", "difftest", *map(str, cmd)], capture_output=True, text=True,
                               cwd=ROOT, env=env, preexec_fn=limit, timeout=300)
            rc, o, e = p.returncode, p.stdout, p.stderr
        assert_classified(rc, o, e, 125, "cannot write")
        assert "no space left" in (o + e).lower() or "too large" in (o + e).lower(), o + e
        assert not leftovers(tmp_path / "full")
        for t in (tmp_path / "full").rglob("*.trace.bin"):
            verify(t)                                   # what is there is complete
        for t in cache_dir.glob("*.trace.bin") if cache_dir.exists() else ():
            verify(t)


def test_an_internal_error_is_125_without_traceback(monkeypatch, capsys):
    from difftest import cli as C

    def boom(args):
        raise ZeroDivisionError("x")
    monkeypatch.setattr(C, "cmd_build", boom)          # a bug anywhere in a subcommand
    assert main(["build", "smoke"]) == 125
    err = capsys.readouterr().err
    assert "internal error: ZeroDivisionError" in err and "Traceback" not in err


# ---------------------------------------------------------------------------
# 13 and 15: usage errors are exit 2 (125 made `git bisect run` skip every revision on a typo),
# and no silent fallback

@pytest.mark.parametrize("args,words", [
    (["run", "smoke", "--backend", "qemu-10"], ["unknown backend 'qemu-10'"]),
    (["run", "smoke", "--backend", "qemu-10.0,modle"], ["unknown backend 'modle'"]),
    (["run", "smoke", "--backend", "/no/such/qemu-system-riscv64"], ["no such QEMU binary"]),
    (["run", "smoke", "--cpu", "sv40"], ["unknown CPU variant", "sv39"]),
    (["run", "smoke", "--backend", "model", "--cpu", "sv40"], ["no model profile"]),
    (["run", "smoke", "--backend", "model@qemu-9.9"], ["unknown model profile", "qemu-10.0"]),
    (["run", "smoke", "--max-steps", "-5"], ["--max-steps -5"]),
    (["run", "smoke", "--max-steps", "0"], ["--max-steps 0"]),
    (["run", "smoke", "--timeout", "nan"], ["--timeout nan"]),
    (["run", "smoke", "--timeout", "inf"], ["--timeout inf"]),
    (["run", "smoke", "--timeout", "-1"], ["--timeout -1"]),
    (["build", "smokee"], ["unknown guest 'smokee'"]),
    (["nightly", "--guests", "smoke,nope", "--out", "{tmp}/n"], ["unknown guest 'nope'"]),
    (["nightly", "--jobs", "-1", "--out", "{tmp}/n"], ["--jobs -1"]),
    (["nightly", "--backends", "qemu-10.0,qemu-9.9", "--out", "{tmp}/n"], ["unknown backend 'qemu-9.9'"]),
    (["nightly", "--resume", "{tmp}/no-such-results"], ["--resume", "no such results directory"]),
    (["nightly", "--known", "{tmp}/no-such.toml", "--out", "{tmp}/n"], ["--known", "no such file"]),
    (["bisect", "first-divergence", "smoke", "--backend", "qemu-7"], ["unknown backend 'qemu-7'"]),
    (["show", "{tmp}/none.trace.bin", "--step", "-3"], ["--step -3"]),
])
def test_usage_errors_exit_2(tmp_path, args, words):
    rc, o, e = cli(*[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert_classified(rc, o, e, 2, *words)
    assert not (tmp_path / "n").exists() or not any((tmp_path / "n").iterdir())   # nothing started


def test_model_with_an_unknown_profile_never_runs_another_profile(tmp_path):
    """``model@qemu-9.9`` through the API (nightly, bisect) too: a usage error, not the 10.0 profile."""
    from difftest import guests
    r = backend_run(guests.build("smoke"), backend="model@qemu-9.9", out_path=tmp_path / "t.gz")
    assert (r.status, r.error_class, r.trace_path) == ("error", "usage", None)
    c = engine.run_case("smoke", backends=["model@qemu-9.9"], out_dir=tmp_path / "c")
    assert c.status == "error" and c.runs["model@qemu-9.9"].error_class == "usage"


def test_a_known_qemu_that_is_not_installed_is_still_125(tmp_path, cache_dir, monkeypatch, capsys):
    """The line between 2 and 125: a mistyped name is the user's; a known QEMU that this machine
    lacks means this revision cannot run here (what `git bisect run` should skip)."""
    from difftest.backends import binaries
    monkeypatch.setitem(KNOWN, "qemu-10.0", (tmp_path / "nothing" / "qemu-system-riscv64", {}))
    monkeypatch.setattr(binaries, "_CACHE", {})
    rc = main(["run", "smoke", "--mode", "sv39x4", "--backend", "qemu-10.0,model", "--out", str(tmp_path / "o")])
    out = capsys.readouterr().out
    assert rc == 125 and "is missing; run scripts/setup" in out


# ---------------------------------------------------------------------------
# 16: reproducible guest builds

@need_cc
def test_guest_builds_are_bit_reproducible(tmp_path, monkeypatch):
    """Same sources -> same bytes: built twice into different directories, from different working
    directories (a temporary object name used to land in the symbol table, so every rebuild
    changed the ELF's hash and missed the trace cache)."""
    from difftest import guests
    elfs = []
    for n in (1, 2):
        d = tmp_path / f"build{n}"
        d.mkdir()
        monkeypatch.setattr(guests, "BUILD_DIR", d)
        monkeypatch.chdir(d)
        elfs.append(guests.build("faults", force=True).read_bytes())
    assert elfs[0] == elfs[1]
    assert str(tmp_path).encode() not in elfs[0] and str(ROOT).encode() not in elfs[0]
