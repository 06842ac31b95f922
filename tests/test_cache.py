"""difftest.cache: a QEMU run is recorded once and reused while nothing that matters changed."""
import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from difftest import cache
from difftest.backends import run
from difftest.backends.binaries import KNOWN
from difftest.trace import read_trace

from qemu_fixtures import build

QEMU = next((q for q in ("qemu-7.2", "qemu-10.0") if KNOWN[q][0].exists()), None)
pytestmark = pytest.mark.skipif(QEMU is None, reason="no QEMU installed (run scripts/setup)")


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    d = tmp_path / "traces"
    monkeypatch.setattr(cache, "CACHE_DIR", d)
    return d


def test_record_once_check_many(cache_dir, tmp_path):
    elf = build(tmp_path, 8)
    a = run(elf, backend=QEMU, hgatp_mode="sv39x4", out_path=tmp_path / "a.gz", timeout=60, max_steps=10_000)
    assert a.status == "ok" and not a.cached
    assert len(list(cache_dir.glob("*.trace.bin"))) == 1
    b = run(elf, backend=QEMU, hgatp_mode="sv39x4", out_path=tmp_path / "b.gz", timeout=60, max_steps=10_000)
    assert b.status == "ok" and b.cached
    ha, sa, fa = read_trace(a.trace_path)
    hb, sb, fb = read_trace(b.trace_path)
    assert (ha, sa, fa) == (hb, sb, fb)
    c = run(elf, backend=QEMU, hgatp_mode="sv39x4", out_path=tmp_path / "c.gz", timeout=60, max_steps=10_000,
            use_cache=False)
    assert not c.cached


def test_key_changes_with_elf_and_limits(cache_dir, tmp_path):
    e8, e9 = build(tmp_path, 8), build(tmp_path, 9)
    run(e8, backend=QEMU, out_path=tmp_path / "a.gz", timeout=60, max_steps=10_000)
    assert not run(e9, backend=QEMU, out_path=tmp_path / "b.gz", timeout=60, max_steps=10_000).cached
    assert not run(e8, backend=QEMU, out_path=tmp_path / "c.gz", timeout=60, max_steps=9_999).cached
    # a changed ELF byte (same path) is a miss too
    data = bytearray(e8.read_bytes())
    data[-1] ^= 1
    e8.write_bytes(bytes(data))
    assert not run(e8, backend=QEMU, out_path=tmp_path / "d.gz", timeout=60, max_steps=10_000).cached


def test_timeouts_are_not_cached(cache_dir, tmp_path):
    from qemu_fixtures import build_hang
    elf = build_hang(tmp_path, "spin")        # "hang" (a WFI nothing ends) is an end now: "wfi"
    r = run(elf, backend=QEMU, out_path=tmp_path / "a.gz", timeout=0.5, max_steps=10**7)
    assert r.error_class == "timeout"
    assert not list(cache_dir.glob("*.json"))


def test_concurrent_writers(cache_dir, tmp_path):
    elf = build(tmp_path, 10)

    def one(i):
        return run(elf, backend=QEMU, out_path=tmp_path / f"{i}.gz", timeout=60, max_steps=10_000)

    with ThreadPoolExecutor(4) as ex:
        rs = list(ex.map(one, range(4)))
    assert all(r.status == "ok" for r in rs)
    assert not [p for p in os.listdir(cache_dir) if p.endswith(".tmp")]
    # same steps; raw exec lines differ only in QEMU's host code pointer (tb->tc.ptr)
    steps = [[(s.pc, s.trap, [(x.va, x.gpa, x.pa) for x in s.xlats]) for s in read_trace(r.trace_path)[1]] for r in rs]
    assert all(s == steps[0] for s in steps)


def test_corrupt_entry_is_a_miss(cache_dir, tmp_path):
    elf = build(tmp_path, 8)
    run(elf, backend=QEMU, out_path=tmp_path / "a.gz", timeout=60, max_steps=10_000)
    for p in cache_dir.glob("*.trace.bin"):
        p.write_bytes(b"garbage")
    r = run(elf, backend=QEMU, out_path=tmp_path / "b.gz", timeout=60, max_steps=10_000)
    assert r.status == "ok" and not r.cached
