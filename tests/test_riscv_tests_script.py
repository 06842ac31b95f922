"""scripts/thirdparty/riscv-tests (issue 12, third-party programs): builds a riscv-tests-shaped tree with
Debian's GCC 12 and runs every ELF in lockstep on both QEMUs against the model.

CI has no riscv-tests checkout, so the tree here is our own, in riscv-tests' layout: isa/<suite>/Makefrag
with its ``<suite>_sc_tests`` list, isa/macros/scalar/, env/p/riscv_test.h and link.ld (a minimal p
environment of ours: M-mode start, tohost end, 1 = pass, (N << 1) | 1 = test N failed).  Real
toolchain, real QEMU 7.2 and 10.0, real model."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from difftest.backends.binaries import KNOWN

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "thirdparty" / "riscv-tests"
CC = shutil.which("riscv64-unknown-elf-gcc")

ENV_H = r"""
#define RVTEST_RV64U .macro init; .endm
#define RVTEST_RV64M .macro init; .endm
#define TESTNUM gp
#define RVTEST_CODE_BEGIN .section .text.init; .globl _start; _start: \
        la t0, trap; csrw mtvec, t0; li TESTNUM, 0; init; j 1f; \
        .align 2; trap: csrr t0, mcause; li t1, 11; bne t0, t1, fail_here; \
        csrr t0, mepc; addi t0, t0, 4; csrw mepc, t0; mret; \
        fail_here: li TESTNUM, 99; j fail_tohost; 1:
#define RVTEST_CODE_END unimp
#define RVTEST_PASS li TESTNUM, 1; j write_tohost; \
        fail_tohost: sll TESTNUM, TESTNUM, 1; or TESTNUM, TESTNUM, 1; \
        write_tohost: sw TESTNUM, tohost, t5; sw zero, tohost + 4, t5; 2: j 2b
#define RVTEST_FAIL j fail_tohost
#define RVTEST_DATA_BEGIN .pushsection .tohost,"aw",@progbits; .align 6; .global tohost; tohost: .dword 0; \
        .align 6; .global fromhost; fromhost: .dword 0; .popsection
#define RVTEST_DATA_END
"""
LINK_LD = """OUTPUT_ARCH("riscv")
ENTRY(_start)
SECTIONS { . = 0x80000000; .text.init : { *(.text.init) } . = ALIGN(0x1000); .tohost : { *(.tohost) }
  . = ALIGN(0x1000); .text : { *(.text) } . = ALIGN(0x1000); .data : { *(.data) } .bss : { *(.bss) } _end = .; }
"""
# test 2 adds, test 3 takes an ecall trap into M and comes back (csr instructions: -march=rv64g's Zicsr)
PASS_S = r"""#include "riscv_test.h"
RVTEST_RV64U
RVTEST_CODE_BEGIN
  li TESTNUM, 2; li a0, 40; addi a0, a0, 2; li a1, 42; bne a0, a1, fail
  li TESTNUM, 3; ecall; csrr a2, mcause; li a1, 11; bne a2, a1, fail
  RVTEST_PASS
fail: RVTEST_FAIL
RVTEST_CODE_END
.data
RVTEST_DATA_BEGIN
RVTEST_DATA_END
"""
FAIL3_S = PASS_S.replace("li a1, 11; bne a2, a1, fail", "li a1, 12; bne a2, a1, fail")
# the hypervisor suite's instructions: GCC 12 rejects -march=rv64gh, the script gives the `h` to the assembler
HFENCE_S = PASS_S.replace("RVTEST_RV64U", "RVTEST_RV64M").replace("li TESTNUM, 2;", "hfence.gvma; hfence.vvma; li TESTNUM, 2;")


def fake_tree(root: Path, with_env: bool = True) -> Path:
    """A riscv-tests-shaped source tree of our own (see the module docstring)."""
    isa = root / "isa"
    (isa / "macros" / "scalar").mkdir(parents=True)
    (isa / "macros" / "scalar" / "test_macros.h").write_text("")
    for suite, tests in {"rv64ui": {"good": PASS_S, "bad": FAIL3_S}, "hypervisor": {"hfence": HFENCE_S},
                         "rv64uf": {"fadd": PASS_S}}.items():
        (isa / suite).mkdir()
        var = suite
        (isa / suite / "Makefrag").write_text(f"{var}_sc_tests = \\\n\t" + " \\\n\t".join(tests) + " \\\n\n"
                                              f"{var}_p_tests = $(addprefix {suite}-p-, $({var}_sc_tests))\n")
        for name, text in tests.items():
            (isa / suite / f"{name}.S").write_text(text)
    # isa/Makefile's per-suite flags, as upstream writes them (GCC 12 rejects rv64gh: the script splits it)
    (isa / "Makefile").write_text("".join(f"$(eval $(call compile_template,{s},-march={m} -mabi=lp64d))\n" for s, m in
                                          (("rv64ui", "rv64g"), ("rv64uf", "rv64g"), ("hypervisor", "rv64gh"))))
    if with_env:
        (root / "env" / "p").mkdir(parents=True)
        (root / "env" / "p" / "riscv_test.h").write_text(ENV_H)
        (root / "env" / "p" / "link.ld").write_text(LINK_LD)
    return root


def script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=600)


@pytest.mark.skipif(CC is None, reason="riscv64-unknown-elf-gcc is not installed (run scripts/setup)")
def test_build_compiles_each_suite_and_skips_fp(tmp_path):
    src = fake_tree(tmp_path / "src")
    r = script("build", str(src), str(tmp_path / "elf"), "--suites", "rv64ui,hypervisor,rv64uf")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "rv64ui-p: 2/2 built" in r.stdout and "hypervisor-p: 1/1 built" in r.stdout
    assert "rv64uf: skipped -- F/D are off" in r.stdout
    assert sorted(p.name for p in (tmp_path / "elf").iterdir() if p.is_file()) == \
        ["hypervisor-p-hfence", "rv64ui-p-bad", "rv64ui-p-good"]


def test_build_without_the_env_submodule_is_a_usage_error(tmp_path):
    src = fake_tree(tmp_path / "src", with_env=False)
    r = script("build", str(src), str(tmp_path / "elf"))
    assert r.returncode == 2 and "the env submodule" in r.stderr and "Traceback" not in r.stderr
    r = script("build", str(tmp_path / "nowhere"), str(tmp_path / "elf"))
    assert r.returncode == 2 and "not a riscv-tests tree" in r.stderr
    r = script("run", str(tmp_path / "empty"))
    assert r.returncode == 2 and "no ELFs" in r.stderr


@pytest.mark.skipif(CC is None or not all(KNOWN[q][0].exists() for q in ("qemu-7.2", "qemu-10.0")),
                    reason="QEMU 7.2, 10.0 and the cross compiler are needed (run scripts/setup)")
@pytest.mark.parametrize("qemu", ["qemu-7.2", "qemu-10.0"])
def test_run_matches_to_the_tohost_end_on_both_qemus(tmp_path, qemu):
    src = fake_tree(tmp_path / "src")
    elf = tmp_path / "elf"
    assert script("build", str(src), str(elf), "--suites", "rv64ui,hypervisor").returncode == 0
    out = tmp_path / "res.json"
    r = script("run", str(elf), "--backend", f"{qemu},model", "--out", str(tmp_path / "runs"), "--json", str(out),
               "--timeout", "60", "--max-steps", "2000")
    assert r.returncode == 0, r.stdout + r.stderr
    res = {t["test"]: t for t in json.loads(out.read_text())["tests"]}
    assert set(res) == {"hypervisor-p-hfence", "rv64ui-p-bad", "rv64ui-p-good"}
    for t in res.values():       # every step of every test compared, both sides ended at their tohost write
        assert t["status"] == "match", t
        (pair,) = t["pairs"]
        assert pair["steps_compared"] == pair["steps_run"] > 10
    assert res["rv64ui-p-good"]["ends"] == {qemu: "exit 0 (tohost)", "model": "exit 0 (tohost)"}
    assert res["rv64ui-p-bad"]["ends"] == {qemu: "exit 3 (tohost)", "model": "exit 3 (tohost)"}
    # the summary: lockstep to the end, and which tests did not pass their own checks
    assert f"rv64ui-p: 2/2 to the end ({qemu},model); not 'exit 0 (tohost)' on every side: bad" in r.stdout
    t = script("table", str(out))
    assert t.returncode == 0 and "| rv64ui-p | 2/2 |" in t.stdout
