"""The KVM-style mode probe (refmodel.kvm) predicted for a profile vs the same probe run as a guest
on QEMU with each CPU variant (Priv. 20240411 H "hgatp": MODE is WARL -- an unsupported MODE must not
read back).  The guest writes only MODE 8/9/10 (never a reserved value: QEMU 7.2 aborts on those) and
exits with code v4_mask | merged_mode << 3."""
import os
import subprocess

import pytest

from difftest.asm import assemble, have_cc
from difftest.backends.binaries import KNOWN

from refmodel import kvm
from refmodel.profile import PROFILES

QEMU72 = str(KNOWN["qemu-7.2"][0])
QEMU10, QEMU10_ENV = str(KNOWN["qemu-10.0"][0]), KNOWN["qemu-10.0"][1]   # the project-local unpacked backport
pytestmark = pytest.mark.skipif(not have_cc(), reason="riscv64-unknown-elf-gcc not installed")

PROBE = """
.option norvc
.section .text
.globl _start
_start:
  li s0, 0                    /* v4: ascending, no early exit, bitmask */
  li s1, 1
  li t2, 8
1:
  slli t0, t2, 60
  csrw hgatp, t0
  csrr t1, hgatp
  srli t1, t1, 60
  bne t1, t2, 2f
  or s0, s0, s1
2:
  slli s1, s1, 1
  addi t2, t2, 1
  li t3, 11
  bne t2, t3, 1b
  csrw hgatp, zero
  li s2, 0                    /* merged: top-down, first that sticks */
  li t2, 10
3:
  slli t0, t2, 60
  csrw hgatp, t0
  csrr t1, hgatp
  srli t1, t1, 60
  beq t1, t2, 4f
  addi t2, t2, -1
  li t3, 7
  bne t2, t3, 3b
  li t2, 0
4:
  mv s2, t2
  csrw hgatp, zero
  hfence.gvma zero, zero
  slli t5, s2, 3
  or t5, t5, s0
  slli t5, t5, 16
  li t1, 0x3333
  or t5, t5, t1
  li t6, 0x100000
  sw t5, 0(t6)
6: j 6b
"""

CASES = [  # (binary, cpu option, model profile)
    ("qemu-10.0", "", "qemu-10.0"),
    ("qemu-10.0", "sv39=on", "qemu-10.0-sv39"),
    ("qemu-10.0", "sv48=on", "qemu-10.0-sv48"),
    ("qemu-10.0", "sv57=on", "qemu-10.0-sv57"),
    ("qemu-7.2", "", "qemu-7.2"),
]


@pytest.fixture(scope="module")
def elf(tmp_path_factory):
    d = tmp_path_factory.mktemp("probe")
    return assemble(PROBE, d / "p.elf")


@pytest.mark.parametrize("binary,cpuopt,profile", CASES, ids=[c[2] for c in CASES])
def test_probe_prediction_matches_qemu(elf, binary, cpuopt, profile):
    path, env = (QEMU10, QEMU10_ENV) if binary == "qemu-10.0" else (QEMU72, {})
    cpu = ",".join(x for x in ("rv64,h=true,mmu=on,pmp=on", cpuopt) if x)
    extra = ["-display", "none", "-audio", "none"] if binary == "qemu-10.0" else []
    p = subprocess.run([path, "-M", "virt", "-bios", "none", "-nographic", "-monitor", "none", *extra,
                        "-cpu", cpu, "-kernel", str(elf)], capture_output=True, timeout=60,
                       env={**os.environ, **env})
    got = {"v4": p.returncode & 7, "merged": p.returncode >> 3}
    prof = PROFILES[profile]
    pred = {"v4": kvm.probe(kvm.HartHost(prof), "v4").mask,
            "merged": kvm.LEVEL_MODE.get(kvm.probe(kvm.HartHost(prof), "merged").max_levels, 0)}
    assert got == pred, p.stderr.decode()[-300:]
