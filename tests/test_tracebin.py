"""The binary trace format (difftest/tracebin.py): lossless round trips (model records, Steps,
odd values stored as JSON), random access, and integrity -- every bit flip and every truncation
is a TraceError, never a trace that reads back different."""
from __future__ import annotations

import copy

import pytest

from difftest import tracebin
from difftest.trace import Footer, Step, TraceError, TraceReader, Trap, Xlat, verify, write_trace
from test_trace_io import HEADER, hand_steps, numbered


def _norm(s: Step) -> Step:
    """What a reader gives back for ``s``: bools in int columns read back as ints; dict values None
    are not stored (the JSON rule, ``trace._value``)."""
    s = copy.copy(s)
    for k in ("priv", "v", "insn"):
        if type(getattr(s, k)) is bool:
            setattr(s, k, int(getattr(s, k)))
    if s.regs is not None:
        s.regs = {k: v for k, v in s.regs.items() if v is not None}
    return s


def test_hand_steps_round_trip_across_chunks(tmp_path):
    steps = numbered(hand_steps() * (tracebin.CHUNK // 9 + 400))
    p = tmp_path / "t.trace.bin"
    write_trace(p, HEADER, steps, Footer("exit", 0, len(steps)))
    r = TraceReader(p)
    assert isinstance(r, tracebin.BinTraceReader) and r.n == len(steps) and r.nchunks() == 2
    assert r.header == HEADER and r.footer == Footer("exit", 0, len(steps))
    for i in (0, 5, tracebin.CHUNK - 1, tracebin.CHUNK, len(steps) - 1):
        assert r.step(i) == _norm(steps[i])
    h, back, f = r.read_all()
    assert back == [_norm(s) for s in steps]
    verify(p)


def test_odd_values_are_stored_whole_and_validated(tmp_path):
    ok = [Step(0, 4, priv=200, v=0), Step(1, 8, xlats=[Xlat("load", 8, 1, 0, fault_stage="zz")]),
          Step(2, 1 << 64, insn=1 << 40), Step(3, 12, trap=Trap(cause=5, fields={"mstatus.MPP": 3}))]
    p = tmp_path / "odd.trace.bin"
    write_trace(p, HEADER, ok, Footer("exit", 0, 4))
    assert TraceReader(p).read_all()[1] == ok
    bad = tmp_path / "bad.trace.bin"
    write_trace(bad, HEADER, [Step(0, 4), Step(1, "x")], Footer("exit", 0, 2))
    with pytest.raises(TraceError, match="pc"):
        verify(bad)
    h, steps, f = TraceReader(bad).read_all()
    assert steps == [] and f.status == "error" and f.truncated
    gap = tmp_path / "gap.trace.bin"
    write_trace(gap, HEADER, [Step(0, 4), Step(2, 8)], Footer("exit", 0, 2))
    with pytest.raises(TraceError, match="step index"):
        verify(gap)


def test_model_records_and_steps_write_the_same_bytes(tmp_path):
    from difftest import bench
    from difftest.trace import TraceWriter, step_from_record
    from refmodel.hart import Hart
    from refmodel.profile import PROFILES
    elf = bench.build_guest(str(tmp_path), 8000, 8)
    recs = list(Hart.from_elf(elf, PROFILES["qemu-7.2"]).records(max_steps=200_000))
    assert len(recs) > tracebin.CHUNK
    a, b = tmp_path / "r.trace.bin", tmp_path / "s.trace.bin"
    wa, wb = TraceWriter(a, HEADER), TraceWriter(b, HEADER)
    for rec in recs:
        wa.record(rec)
        wb.step(step_from_record(rec))
    wa.close(Footer("exit", 0, len(recs)))
    wb.close(Footer("exit", 0, len(recs)))
    assert a.read_bytes() == b.read_bytes()
    assert TraceReader(a).read_all()[1] == [step_from_record(rec) for rec in recs]


def _small(tmp_path):
    steps = numbered(hand_steps() * 50)
    p = tmp_path / "s.trace.bin"
    write_trace(p, HEADER, steps, Footer("exit", 0, len(steps), uart="hi"))
    return p


def test_every_bit_flip_is_refused(tmp_path):
    p = _small(tmp_path)
    data = p.read_bytes()
    q = tmp_path / "flip.trace.bin"
    for bit in range(0, len(data) * 8, 7):
        b = bytearray(data)
        b[bit // 8] ^= 1 << (bit % 8)
        q.write_bytes(bytes(b))
        with pytest.raises(TraceError):
            verify(q)


def test_truncation_is_refused_and_verify_false_keeps_whole_chunks(tmp_path):
    steps = numbered(hand_steps() * (tracebin.CHUNK // 9 + 10))
    p = tmp_path / "t.trace.bin"
    write_trace(p, HEADER, steps, Footer("exit", 0, len(steps)))
    data = p.read_bytes()
    q = tmp_path / "cut.trace.bin"
    for cut in (5, 12, 30, len(data) // 2, len(data) - 1):
        q.write_bytes(data[:cut])
        with pytest.raises(TraceError):
            TraceReader(q)
    q.write_bytes(data + b"x")
    with pytest.raises(TraceError, match="after the trailer"):
        TraceReader(q)
    q.write_bytes(data[:len(data) // 2])          # inside the first chunk: nothing of it is trusted
    assert TraceReader(q, verify=False).read_all()[1] == []
    q.write_bytes(data[:len(data) - 100])          # the footer and trailer cut off
    h, back, f = TraceReader(q, verify=False).read_all()
    assert len(back) in (tracebin.CHUNK, len(steps)) and f.status == "error" and f.truncated
    assert back == [_norm(s) for s in steps[:len(back)]]
