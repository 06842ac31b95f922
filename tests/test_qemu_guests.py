"""The QEMU backend on helper A's gstage_basic guest, both QEMUs x four hgatp modes: the parsed
trace agrees with what the guest itself printed on its console (ARCHITECTURE section 3)."""
import re
from pathlib import Path

import pytest

from difftest.backends import run
from difftest.backends.binaries import KNOWN
from difftest.trace import TraceReader

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not (ROOT / "guests" / "gstage_basic").is_dir(), reason="guest not landed")
P_TRAP = re.compile(r"^P \d+ \S+ (\S+) va=0x([0-9a-f]+) mode=VS trap cause=(\d+) tval=0x([0-9a-f]+)", re.M)
P_OK = re.compile(r"^P \d+ (ram|leaf-4k|leaf-2m|leaf-1g) ld va=0x([0-9a-f]+) mode=VS ok", re.M)


@pytest.fixture(scope="module")
def elf():
    from difftest import guests
    return guests.build("gstage_basic")


@pytest.mark.parametrize("qemu", ["qemu-7.2", "qemu-10.0"])
@pytest.mark.parametrize("mode", ["bare", "sv39x4", "sv48x4", "sv57x4"])
def test_gstage_basic(qemu, mode, elf, tmp_path):
    if not KNOWN[qemu][0].exists():
        pytest.skip(f"{qemu} is not installed")
    from difftest import config_block
    patched = config_block.patch_copy(elf, tmp_path, hgatp_mode=mode)
    r = run(patched.path, backend=qemu, hgatp_mode=mode, vs_mode="bare", out_path=tmp_path / "t.gz", timeout=120,
            max_steps=2_000_000)
    assert r.footer is not None and r.footer.status == "exit", r.message
    rd = TraceReader(r.trace_path)
    traps, loads, first = [], {}, None
    for s in rd.steps():
        first = first or s
        if s.trap is not None:
            traps.append((s.trap.cause, s.trap.tval, s.pc))
        for x in s.xlats:
            if x.access == "load" and x.pa is not None and (x.v or x.va not in loads):
                loads[x.va] = x          # the VS access's fill (QEMU keeps one TLB per mmu_idx)
    uart = rd.footer.uart
    assert first.pc == 0x1000 and f"hgatp={mode}" in uart and "DONE" in uart
    # every trap the guest reports (cause, tval) is a step of the trace, in the same order
    reported = [(int(c), int(t, 16)) for _, _, c, t in P_TRAP.findall(uart)]
    assert reported or mode == "bare", uart
    it = iter((c, t) for c, t, _ in traps)
    assert all(any(rep == got for got in it) for rep in reported), (reported, traps[:40])
    if mode != "bare":
        assert any(c == 21 for c, _ in reported)
    # G stage: the data page sits at SPA tgt (probe "ram" ld, GPA = SPA there); every leaf maps it
    oks = [(w, int(v, 16)) for w, v in P_OK.findall(uart)]
    tgt = next(v for w, v in oks if w == "ram") & ~0xFFF
    for w, va in oks:
        x = loads.get(va)
        assert x is not None, f"{w}: no logged translation of GVA {va:#x}"
        assert x.pa == tgt | (va & 0xFFF), f"{w}: GVA {va:#x} -> {x.pa:#x}"
        if mode != "bare":
            assert x.v == 1 and x.gpa == va       # vsatp Bare: GPA = GVA
