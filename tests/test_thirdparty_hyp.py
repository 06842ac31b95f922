"""scripts/thirdparty/riscv-hyp-tests: classified errors without the suite's sources (CI has only a clean
clone), and -- only where a copy of josecm/riscv-hyp-tests is on this machine (HYP_TESTS_SRC, or the
mirror under /work/.mirror) -- the real build run in lockstep.  The sources are never committed; the
measured figures are in README "riscv-hyp-tests (josecm) in lockstep"."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts/thirdparty/riscv-hyp-tests"
MIRROR = Path("/work/.mirror/josecm+riscv-hyp-tests/repo")
SRC = Path(os.environ.get("HYP_TESTS_SRC", MIRROR))


def _run(*args, env=None, timeout=300):
    return subprocess.run([str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, **(env or {})))


def test_usage_error():
    r = _run()
    assert r.returncode == 2 and "usage:" in r.stderr


def test_not_a_suite(tmp_path):
    (tmp_path / "src").mkdir()
    r = _run(tmp_path / "src", tmp_path / "out")
    assert r.returncode == 1 and "neither a riscv-hyp-tests checkout" in r.stderr


def test_changed_upstream_text_is_refused(tmp_path):
    """A patch whose upstream text is not there stops the build (it never builds something else)."""
    src = tmp_path / "src"
    (src / "platform/qemu").mkdir(parents=True)
    (src / "Makefile").write_text("all:\n")
    (src / "test_register.c").write_text("TEST_REGISTER(a);\n")
    (src / "platform/qemu/retarget_qemu.c").write_text("void _exit(int c) { for (;;); }\n")
    (src / "linker.ld").write_text("SECTIONS { .text : { *(.text) } }\n")      # no .test_table
    r = _run(src, tmp_path / "out")
    assert r.returncode == 1 and "expected one '*(.test_table)', found 0" in r.stderr, r.stderr


needs_src = pytest.mark.skipif(not SRC.exists(), reason="needs a copy of josecm/riscv-hyp-tests "
                               "(HYP_TESTS_SRC or the mirror): its sources are never committed")


@needs_src
def test_unknown_test_name_is_refused(tmp_path):
    r = _run(SRC, tmp_path / "out", env={"TESTS": "no_such_test"})
    assert r.returncode == 1 and "no TEST_REGISTER(no_such_test)" in r.stderr


@needs_src
def test_interrupt_tests_match_qemu10_to_the_end(tmp_path):
    """One test of the suite built alone, in lockstep with QEMU 10.0: every step compared, both ends
    through tohost, the two interrupts QEMU took followed by the model."""
    r = _run(SRC, tmp_path / "hyp", env={"TESTS": "interrupt_tests"})
    assert r.returncode == 0, r.stderr
    assert "(1 tests in the table" in r.stdout
    d = subprocess.run([sys.executable, "-m", "difftest", "run", str(tmp_path / "hyp/rvh_test.elf"), "--ram", "256M",
                        "--backend", "qemu-10.0,model", "--out", str(tmp_path / "run"), "--no-cache"],
                       capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert d.returncode == 0, d.stdout + d.stderr
    assert "MATCH" in d.stdout and "exit 0 (tohost)" in d.stdout
    assert "steps compared 13148 of 13148 (100.0%)" in d.stdout, d.stdout
    assert "model followed the 2 interrupt(s)" in d.stdout
