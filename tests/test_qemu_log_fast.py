"""qemu_log.parse_file_fast gives exactly parse_file's steps and stats (issue 14: the single-stepped
QEMU 7.2 log was the nightly's largest cost, most of it one Step object per bare exec line) -- on
the checked-in logs, on real logs of the guests that trap the most (both QEMUs, an interrupt
included), with every step limit around the piece boundaries, on logs cut at arbitrary bytes
(truncated records), and with the streaming fallback for long stretches without a cut."""
from __future__ import annotations

import dataclasses

import pytest

from difftest.backends import qemu_log
from difftest.backends.binaries import locate

from test_bad_input_qemu import EBREAK_AND_TIMER, PARSER_GUESTS, _real_log, asm_guest
from test_qemu_log import DATA, LOGS


def _norm(s):
    if type(s) is tuple:
        i, pc, insn, priv, v, xl, trap, uart, regs, raw = s
    else:
        i, pc, insn, priv, v, xl, trap, uart, regs, raw = (s.i, s.pc, s.insn, s.priv, s.v, s.xlats, s.trap,
                                                          s.uart, s.regs, s.raw)
    return (i, pc, insn, priv, v, [dataclasses.asdict(x) for x in xl],
            None if trap is None else dataclasses.asdict(trap), uart, regs, raw)


def _flat(items):
    for it in items:
        if type(it) is qemu_log.Plain:
            yield from it.tuples()
        else:
            yield it


def _both(path, **kw):
    sa, sb = {}, {}
    a = [_norm(s) for s in qemu_log.parse_file(path, stats=sa, **kw)]
    b = [_norm(s) for s in _flat(qemu_log.parse_file_fast(path, stats=sb, **kw))]
    return a, b, sa, sb


def _assert_same(path, **kw):
    a, b, sa, sb = _both(path, **kw)
    assert b == a
    assert sb == sa
    return a


@pytest.mark.parametrize("log", LOGS)
def test_checked_in_logs(log):
    steps = _assert_same(DATA / log)
    n = len(steps)
    for limit in sorted({1, 2, 3, n // 2, n - 2, n - 1, n, n + 1}):
        if limit > 0:
            _assert_same(DATA / log, max_steps=limit)


def test_cut_anywhere_and_streaming_fallback(tmp_path, monkeypatch):
    data = (DATA / LOGS[0]).read_bytes()
    for k, cut in enumerate(range(101, len(data), max(1, len(data) // 40))):
        p = tmp_path / f"cut{k}.log"
        p.write_bytes(data[:cut])
        _assert_same(p)
    monkeypatch.setattr(qemu_log, "PIECE_MAX", 2)          # every stretch longer than 2 lines streams
    _assert_same(DATA / LOGS[0])
    _assert_same(DATA / LOGS[1], max_steps=50)
    monkeypatch.setattr(qemu_log, "PLAIN_RUN", 3)          # runs end at their size limit too
    _assert_same(DATA / LOGS[1], max_steps=40)


def test_written_trace_is_the_same(tmp_path):
    """BinTraceWriter.plain writes exactly what step() writes for the same steps."""
    from difftest.trace import Footer, Header, Step, TraceReader
    from difftest.tracebin import BinTraceWriter
    hdr = Header(guest="g", elf_sha256="0", hgatp_mode="", vs_mode="", backend="qemu-7.2", backend_version="7.2",
                 cpu="default", cpu_config="x", exposes={})
    for log, layout in ((LOGS[0], None), (LOGS[1], (21, 22))):
        a, b = BinTraceWriter(tmp_path / "a.trace.bin", hdr), BinTraceWriter(tmp_path / "b.trace.bin", hdr)
        n = 0
        for it in qemu_log.parse_file_fast(DATA / log, layout=layout):
            if type(it) is qemu_log.Plain:
                a.plain(it.pc, it.priv, it.v, it.raw)
                for t in it.tuples():
                    b.step(Step(t[0], t[1], priv=t[3], v=t[4], raw=t[9]))
                n += len(it)
            else:
                a.step(it)
                b.step(it)
                n += 1
        for w in (a, b):
            w.close(Footer("exit", 0, n))
        ra, rb = TraceReader(tmp_path / "a.trace.bin"), TraceReader(tmp_path / "b.trace.bin")
        assert list(ra.steps()) == list(rb.steps()) and len(list(ra.steps())) == n


@pytest.mark.parametrize("q", ["qemu-7.2", "qemu-10.0"])
def test_real_logs(tmp_path, q):
    b = locate(q)
    if not b.path.exists():
        pytest.skip(f"{q} not installed (scripts/setup)")
    layout = qemu_log.flags_layout(b.version)
    plain = total = 0
    for guest in PARSER_GUESTS + [asm_guest(tmp_path, "ebreak_timer", EBREAK_AND_TIMER)]:
        log = _real_log(tmp_path, q, guest)
        steps = _assert_same(log, layout=layout)
        n = len(steps)
        _assert_same(log, layout=layout, max_steps=n // 3)
        total += n
        plain += sum(len(s) for s in qemu_log.parse_file_fast(log, layout=layout) if type(s) is qemu_log.Plain)
    assert plain > total // 2          # the fast path is what most steps take
