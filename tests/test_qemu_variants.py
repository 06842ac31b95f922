"""CPU variants of QEMU 10.0: sv39/sv48/sv57 cap satp -- and, measured, hgatp too.

With ``sv39=on`` a write of Sv48x4 (MODE 9) or Sv57x4 (10) to hgatp is ignored (hgatp is
WARL, Priv. 20240411, 9.2.10) so hgatp stays Bare and the guest's load of the unmapped
address 0x100000000 becomes an access fault (5) instead of a load guest-page fault (21)."""
import pytest

from difftest.backends import run
from difftest.backends.binaries import KNOWN
from difftest.trace import read_trace

from qemu_fixtures import MODES, build

pytestmark = pytest.mark.skipif(not KNOWN["qemu-10.0"][0].exists(), reason="QEMU 10.0 is not installed")


@pytest.fixture(scope="module")
def elfs(tmp_path_factory):
    d = tmp_path_factory.mktemp("qemu_guest")
    return {name: build(d, m) for name, m in MODES.items() if name != "bare"}


EXPECT = {  # (cpu, guest hgatp mode) -> cause of the load from GPA 0x100000000
    ("sv39", "sv39x4"): 21, ("sv39", "sv48x4"): 5, ("sv39", "sv57x4"): 5,
    ("sv48", "sv48x4"): 21, ("sv48", "sv57x4"): 5,
    ("sv57", "sv57x4"): 21,
}


@pytest.mark.parametrize("cpu,mode", list(EXPECT))
def test_variant_limits_hgatp(cpu, mode, elfs, tmp_path):
    r = run(elfs[mode], backend="qemu-10.0", cpu=cpu, hgatp_mode=mode, out_path=tmp_path / "t.gz", timeout=60,
            max_steps=10_000, use_cache=False)
    assert r.status == "ok", r.message
    h, steps, f = read_trace(r.trace_path)
    assert h.cpu == cpu and h.cpu_config.endswith(f"{cpu}=on")
    (ld,) = [s for s in steps if s.pc == 0x80000028]
    assert ld.trap.cause == EXPECT[(cpu, mode)]


def test_variant_needs_qemu_8(tmp_path, elfs):
    if not KNOWN["qemu-7.2"][0].exists():
        pytest.skip("QEMU 7.2 is not installed")
    r = run(elfs["sv39x4"], backend="qemu-7.2", cpu="sv39", out_path=tmp_path / "t.gz", timeout=5, max_steps=10)
    assert r.status == "error" and "7.2" in r.message
