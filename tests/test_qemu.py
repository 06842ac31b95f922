"""End-to-end tests of the QEMU backend: real QEMU 7.2 and 10.0, a real guest that maps
memory through the G stage, enters VS and takes guest-page faults (tests/data/qemu_guest)."""
from pathlib import Path

import pytest

from difftest.backends import binaries, run
from difftest.backends.binaries import KNOWN
from difftest.trace import read_trace

from qemu_fixtures import MODES, build, build_hang

QEMUS = [q for q in ("qemu-7.2", "qemu-10.0") if KNOWN[q][0].exists()]
pytestmark = pytest.mark.skipif(not QEMUS, reason="no QEMU installed (run scripts/setup)")


@pytest.fixture(scope="module")
def elfs(tmp_path_factory):
    d = tmp_path_factory.mktemp("qemu_guest")
    return {name: build(d, m) for name, m in MODES.items()} | {"reserved4": build(d, 4), "hang": build_hang(d), "spin": build_hang(d, "spin")}


def by_pc(steps):
    out = {}
    for s in steps:
        out.setdefault(s.pc, []).append(s)
    return out


@pytest.mark.parametrize("qemu", ["qemu-7.2", "qemu-10.0"])
@pytest.mark.parametrize("mode", list(MODES))
def test_guest_facts(qemu, mode, elfs, tmp_path):
    if qemu not in QEMUS:
        pytest.skip(f"{qemu} is not installed")
    r = run(elfs[mode], backend=qemu, hgatp_mode=mode, out_path=tmp_path / "t.gz", timeout=60, max_steps=10_000,
            use_cache=False)
    assert r.status == "ok", r.message
    h, steps, f = read_trace(r.trace_path)
    assert (f.status, f.exit_code, f.steps) == ("exit", 0, len(steps))
    assert h.backend == qemu and h.backend_version.startswith(qemu.split("-")[1])
    assert h.hgatp_mode == mode and h.cpu == "default" and "h=true" in h.cpu_config
    assert h.command[0] == "env" if qemu == "qemu-10.0" else h.command[0].endswith("qemu-system-riscv64")
    # htval/GVA/target/tinst come from the trap-detail pass (difftest/backends/trap_detail.py, gdbstub.py)
    assert all(h.exposes[k] for k in ("trap.htval", "trap.gva", "trap.tval", "trap.tinst", "trap.target"))
    assert f.extra["trap_detail"]["matched"] == f.extra["trap_detail"]["traps"] == sum(1 for s in steps if s.trap)
    assert steps[0].pc == 0x1000
    p = by_pc(steps)
    g = mode != "bare"
    # ld from GPA 0xC0002000: the G stage maps it to SPA 0x80002000; Bare: no memory -> access fault 5
    (alias,) = p[0x8000001C]
    if g:
        assert alias.trap is None
        x = next(x for x in alias.xlats if x.access == "load")
        assert (x.va, x.gpa, x.pa, x.v) == (0xC0002000, 0xC0002000, 0x80002000, 1)
    else:
        assert (alias.trap.cause, alias.trap.tval) == (5, 0xC0002000)
    # unmapped GPA 0x100000000: guest-page faults 21/23/20 (Priv. 20240411, 9.6.2), Bare: access faults
    (ld,) = p[0x80000028]
    assert (ld.trap.cause, ld.trap.tval) == ((21 if g else 5), 0x100000000)
    (sd,) = p[0x8000002C]
    assert (sd.trap.cause, sd.trap.tval) == ((23 if g else 7), 0x100000008)
    (jump,) = p[0x100000000]
    assert (jump.trap.cause, jump.trap.tval) == ((20 if g else 1), 0x100000000)
    assert p[0x80000034][0].trap.cause == 10
    if g:
        assert ld.xlats[-1].fault_stage == "g"
    assert steps[-1].pc == 0x8000007C          # the finisher store is the last step


def test_header_is_reproducible(elfs, tmp_path):
    import hashlib
    import shlex
    import subprocess
    qemu = QEMUS[-1]
    r = run(elfs["sv39x4"], backend=qemu, hgatp_mode="sv39x4", out_path=tmp_path / "t.gz", timeout=60,
            max_steps=10_000, use_cache=False)
    h = r.header
    assert h.elf_sha256 == hashlib.sha256(Path(elfs["sv39x4"]).read_bytes()).hexdigest()
    # the recorded command reproduces the run (it writes qemu.log/uart.txt in the cwd)
    rc = subprocess.run(shlex.split(h.extra["command_line"]), cwd=tmp_path, timeout=60).returncode
    assert rc == 0 and (tmp_path / "qemu.log").stat().st_size > 0


def test_missing_binary(elfs, tmp_path):
    r = run(elfs["bare"], backend=str(tmp_path / "qemu-system-riscv64"), out_path=tmp_path / "t.gz", timeout=5,
            max_steps=100)
    assert (r.status, r.error_class) == ("error", "missing-backend")
    assert "run scripts/setup" in r.message


def test_known_backend_missing(monkeypatch, elfs, tmp_path):
    monkeypatch.setitem(KNOWN, "qemu-10.0", (tmp_path / "nothing", {}))
    monkeypatch.setattr(binaries, "_CACHE", {})
    r = run(elfs["bare"], backend="qemu-10.0", out_path=tmp_path / "t.gz", timeout=5, max_steps=100)
    assert r.error_class == "missing-backend" and "scripts/setup" in r.message


@pytest.mark.parametrize("kind", ["text", "x86", "truncated", "absent"])
def test_bad_elf(kind, elfs, tmp_path):
    p = tmp_path / "bad.elf"
    if kind == "text":
        p.write_text("not an elf\n")
    elif kind == "x86":
        p.write_bytes(Path("/bin/true").read_bytes())
    elif kind == "truncated":
        p.write_bytes(Path(elfs["bare"]).read_bytes()[:600])
    r = run(p, backend=QEMUS[0], out_path=tmp_path / "t.gz", timeout=5, max_steps=100)
    assert (r.status, r.error_class) == ("error", "bad-elf"), r.message
    assert str(p) in r.message


def test_a_guest_that_never_finishes_is_a_timeout_with_partial_trace(elfs, tmp_path):
    r = run(elfs["spin"], backend=QEMUS[0], out_path=tmp_path / "t.gz", timeout=1, max_steps=10**7,
            use_cache=False)
    assert (r.status, r.error_class) == ("error", "timeout")
    h, steps, f = read_trace(r.trace_path)
    assert f.status == "timeout" and steps and steps[0].pc == 0x1000


def test_a_wfi_nothing_can_end_is_the_end_wfi_not_a_timeout(elfs, tmp_path):
    """hang (``1: wfi; j 1b``, mie = 0 from reset) used to run into the timeout; it is the end "wfi"
    (difftest/backends/wfi_end.py; tests/test_wfi_end.py), with no exit code."""
    r = run(elfs["hang"], backend=QEMUS[0], out_path=tmp_path / "t.gz", timeout=60, max_steps=10**7,
            use_cache=False)
    assert (r.status, r.footer.exit_code, r.footer.end) == ("ok", None, "wfi"), r.message


def test_step_limit(elfs, tmp_path):
    r = run(elfs["sv48x4"], backend=QEMUS[0], out_path=tmp_path / "t.gz", timeout=60, max_steps=10,
            use_cache=False)
    assert r.error_class == "step-limit"
    h, steps, f = read_trace(r.trace_path)
    assert len(steps) == 10 and f.status == "step-limit"


@pytest.mark.skipif("qemu-7.2" not in QEMUS, reason="QEMU 7.2 is not installed")
def test_reserved_hgatp_mode_aborts_qemu_7_2(elfs, tmp_path):
    """hgatp.MODE=4 is reserved (Priv. 20240411, 9.2.10: WARL); 7.2 keeps it and then reaches
    g_assert_not_reached() in get_physical_address: exit 134, classified as a crash."""
    r = run(elfs["reserved4"], backend="qemu-7.2", out_path=tmp_path / "t.gz", timeout=30, max_steps=10_000,
            use_cache=False)
    assert (r.status, r.error_class) == ("error", "crash")
    assert "get_physical_address" in r.message
    h, steps, f = read_trace(r.trace_path)
    assert f.status == "crash" and f.truncated and steps[0].pc == 0x1000


def test_unknown_cpu_variant(elfs, tmp_path):
    r = run(elfs["bare"], backend=QEMUS[0], cpu="sv99", out_path=tmp_path / "t.gz", timeout=5, max_steps=100)
    assert r.status == "error" and "sv99" in r.message


def test_runaway_guest_stops_at_step_limit_not_timeout(elfs, tmp_path):
    """QEMU is stopped once its log holds more than max_steps steps, long before the timeout."""
    r = run(elfs["spin"], backend=QEMUS[-1], out_path=tmp_path / "t.gz", timeout=120, max_steps=5000,
            use_cache=False)
    assert r.error_class == "step-limit", r.message
    h, steps, f = read_trace(r.trace_path)
    assert len(steps) == 5000 and f.status == "step-limit" and steps[-1].pc == 0x80000000


def test_guest_failure_exit_code_is_not_a_crash(tmp_path):
    """The finisher's failure code ((code << 16) | 0x3333) is the run's exit code, status exit."""
    from qemu_fixtures import CC, SRC
    import subprocess
    src = tmp_path / "fail.S"
    src.write_text(".section .text.start\n.globl _start\n_start:\n li t0, 0x100000\n li t1, 0x73333\n"
                   " sw t1, 0(t0)\n1: j 1b\n")
    elf = tmp_path / "fail.elf"
    subprocess.run([CC, "-nostdlib", "-march=rv64imac", "-mabi=lp64", "-Wl,--no-warn-rwx-segments", "-T",
                    str(SRC / "link.ld"), str(src), "-o", str(elf)], check=True)
    for q in QEMUS:
        r = run(elf, backend=q, out_path=tmp_path / f"{q}.gz", timeout=60, max_steps=1000, use_cache=False)
        assert (r.status, r.footer.status, r.footer.exit_code) == ("ok", "exit", 7), (q, r.message)
