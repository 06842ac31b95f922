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


def _both(path, **kw):
    sa, sb = {}, {}
    a = [_norm(s) for s in qemu_log.parse_file(path, stats=sa, **kw)]
    b = [_norm(s) for s in qemu_log.parse_file_fast(path, stats=sb, **kw)]
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
        plain += sum(1 for s in qemu_log.parse_file_fast(log, layout=layout) if type(s) is tuple)
    assert plain > total // 2          # the fast path is what most steps take
