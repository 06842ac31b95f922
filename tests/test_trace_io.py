"""Trace (de)serialisation fast paths store and read exactly what the plain dataclass
route does (difftest/trace.py: ``_drop_none(asdict(step))`` per line, ``Step(**...)`` back) -- the
deprecated gzip JSON lines, still read; the binary format's own tests are tests/test_tracebin.py."""
from __future__ import annotations

import gzip
import json
from dataclasses import asdict

import pytest

from difftest.trace import (Footer, Header, Step, TraceError, TraceReader, Trap, WalkLevel, Xlat, _drop_none, step_from_json,
                            step_to_json, write_trace)
from difftest import bench
from refmodel.hart import Hart
from refmodel.profile import PROFILES

HEADER = Header(guest="g", elf_sha256="0" * 64, hgatp_mode="sv39x4", vs_mode="bare", backend="model",
                backend_version="t", cpu="default", cpu_config="qemu-7.2", command=["x"], exposes={"uart": True})


def reference_line(step: Step) -> str:
    return json.dumps(_drop_none(asdict(step)), separators=(",", ":"))


def hand_steps() -> list[Step]:
    walk = [WalkLevel("vs", 2, 0x80001000, 0x200000cf, "pointer"), WalkLevel("g", 0, 0x80002000, 0, "invalid (V=0)")]
    return [
        Step(0, 0x1000),
        Step(1, 0x80000000, insn=0x13, priv=3, v=0, uart="h\n", raw="Trace 0"),
        Step(2, 0x2000, insn=0, priv=0, v=1,
             trap=Trap(cause=21, interrupt=False, epc=0x2000, tval=0, htval=0x800, tinst=0, gva=False, target="HS"),
             xlats=[Xlat("fetch", 0x2000, 0, 1, gpa=0, pa=0, fault_stage="g", fault_cause=20, implicit=True,
                         vs_leaf_level=0, g_leaf_level=None, maybe_stale=True, walk=walk, raw="")],
             regs={"a0": 0, "a1": None, "pc": 5}),
        Step(3, 4, trap=Trap(cause=2, gva=True, tval=None), xlats=[Xlat("load", 0, 1, 0, walk=[])], regs={}),
        Step(4, 8, insn=None, priv=1, v=0, xlats=[Xlat("store", 8, 1, 0, pa=8)], uart="x"),
        Step(5, 9, insn=3, priv=0, v=0, xlats=[Xlat("load", 9, 0, 0, pa=9), Xlat("load", 9, 0, 0, pa=9)], raw="r"),
        Step(6, 10, insn=1, priv=True, v=False, xlats=[Xlat("fetch", 10, 1, 1, gpa=10, pa=10)]),
        Step(7, 11, insn=2, priv=3, v=0, uart="\u00e9\n"),
        Step(8, 12, insn=2, priv=3, v=0, xlats=[Xlat("fetch", 12, 3, 0, pa=12)]),
    ]


def numbered(steps: list[Step]) -> list[Step]:
    """Copies of ``steps`` numbered 0, 1, 2, ...: a reader accepts only consecutive step indices."""
    import copy
    out = []
    for k, s in enumerate(steps):
        s = copy.copy(s)
        s.i = k
        out.append(s)
    return out


def test_step_to_json_is_drop_none_of_asdict():
    for s in hand_steps():
        assert step_to_json(s) == _drop_none(asdict(s))
        assert json.dumps(step_to_json(s), separators=(",", ":")) == reference_line(s)   # same key order


def test_written_lines_are_the_reference_lines_and_read_back_equal(tmp_path):
    steps = numbered(hand_steps() * 300)   # more than one write batch
    p = tmp_path / "t.trace.jsonl.gz"
    write_trace(p, HEADER, steps, Footer("exit", 0, len(steps)), json_lines=True)
    lines = gzip.decompress(p.read_bytes()).decode().splitlines()
    assert lines[1:-1] == [reference_line(s) for s in steps]
    h, back, f = TraceReader(p).read_all()
    assert h == HEADER and f == Footer("exit", 0, len(steps))
    assert [step_to_json(s) for s in back] == [step_to_json(s) for s in steps]
    for s in back:   # objects are real dataclass instances with every field, in declaration order
        for x in s.xlats:
            assert list(vars(x)) == list(Xlat.__dataclass_fields__)
            assert x == Xlat(**{k: getattr(x, k) for k in Xlat.__dataclass_fields__})


def test_bad_line_mid_batch_keeps_the_good_lines_before_it(tmp_path):
    steps = numbered(hand_steps() * 100)
    good = [reference_line(s) for s in steps]
    body = "\n".join([json.dumps({"header": asdict(HEADER)})] + good[:150] + ['{"i": 1}, {"i": 2}'] + good[150:])
    p = tmp_path / "bad.trace.jsonl.gz"
    p.write_bytes(gzip.compress(body.encode()))
    _, back, f = TraceReader(p).read_all()
    assert len(back) == 150 and f.status == "error" and f.truncated and "Extra data" in f.message


def test_truncated_gzip_keeps_what_was_readable(tmp_path):
    """Opening checks the whole gzip stream (a truncated file is a TraceError, nothing is compared);
    read without that check, the steps before the cut still come back and the footer says error."""
    steps = numbered(hand_steps() * 2000)
    p = tmp_path / "t.trace.jsonl.gz"
    write_trace(p, HEADER, steps, Footer("exit", 0, len(steps)), json_lines=True)
    data = p.read_bytes()
    q = tmp_path / "cut.trace.jsonl.gz"
    q.write_bytes(data[: len(data) // 2])
    with pytest.raises(TraceError, match="damaged"):
        TraceReader(q)
    _, back, f = TraceReader(q, verify=False).read_all()
    assert 0 < len(back) < len(steps) and f.status == "error" and f.truncated
    assert [step_to_json(s) for s in back] == [step_to_json(s) for s in steps[:len(back)]]


def test_model_steps_serialise_like_the_reference(tmp_path):
    elf = bench.build_guest(str(tmp_path), 50, 8)
    h = Hart.from_elf(elf, PROFILES["qemu-7.2"])
    steps = list(h.run(max_steps=10_000))
    assert h.exit_code == 0 and any(s.xlats for s in steps)
    for s in steps:
        d = step_to_json(s)
        assert json.dumps(d, separators=(",", ":")) == reference_line(s)
        assert step_from_json(d) == s
    # the writer memoises the JSON of the model's shared Xlat objects: still the reference lines
    p = tmp_path / "m.trace.jsonl.gz"
    write_trace(p, HEADER, steps, Footer("exit", 0, len(steps)), json_lines=True)
    lines = gzip.decompress(p.read_bytes()).decode().splitlines()
    assert lines[1:-1] == [reference_line(s) for s in steps]


def test_compact_records_write_the_same_lines_as_steps(tmp_path):
    """The model backend writes its trace from Hart.records tuples (TraceWriter.record): the
    file must be byte-for-byte the one TraceWriter.step writes from the equivalent Steps."""
    from difftest import config_block, guests
    from difftest.trace import JsonTraceWriter as TraceWriter, step_from_record
    elf = str(config_block.patch_copy(guests.build("faults"), tmp_path, hgatp_mode="sv39x4", vs_mode="sv39").path)
    recs = list(Hart.from_elf(elf, PROFILES["qemu-7.2"]).records(max_steps=300_000))
    steps = list(Hart.from_elf(elf, PROFILES["qemu-7.2"]).run(max_steps=300_000))
    assert len(recs) == len(steps) and any(r[6] is not None for r in recs) and any(r[7] for r in recs)
    assert [step_from_record(r) for r in recs] == steps
    # hand records beside the model's: insn None (fetch fault), a trap, UART bytes, a non-Xlat entry
    hand = [(s.i, s.pc, s.insn, s.priv, s.v, s.xlats, s.trap, s.uart) for s in hand_steps() if s.regs is None
            and s.raw is None]
    for name, rs in (("model", recs), ("hand", hand * 200)):
        a, b = tmp_path / f"{name}-r.trace.jsonl.gz", tmp_path / f"{name}-s.trace.jsonl.gz"
        wa, wb = TraceWriter(a, HEADER), TraceWriter(b, HEADER)
        for r in rs:
            wa.record(r)
            wb.step(step_from_record(r))
        wa.close(Footer("exit", 0, len(rs)))
        wb.close(Footer("exit", 0, len(rs)))
        la = gzip.decompress(a.read_bytes()).decode().splitlines()
        assert la == gzip.decompress(b.read_bytes()).decode().splitlines()
        assert la[1:-1] == [reference_line(step_from_record(r)) for r in rs]
