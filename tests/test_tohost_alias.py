"""A program that writes tohost through a virtual address other than tohost's physical one (riscv-tests'
`v` environment does: its kernel's high mapping) ends there on every QEMU trace source.  A gdbstub
watchpoint matches virtual addresses only, so the log source (and the trap-detail passes) found it in
QEMU's TLB-fill log and runs again watching the alias too (difftest/backends/tohost.py).  Before:
QEMU 7.2 ran into --max-steps after every step up to the model's end had matched.
Real QEMU 7.2 and 10.0, the real guest guests/ptests/alias.S, the real model."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from difftest import guests as G
from difftest.backends.binaries import KNOWN
from difftest.backends.tohost import AliasScan, addrs, hit

QEMUS = ("qemu-7.2", "qemu-10.0")
need_qemu = pytest.mark.skipif(not all(KNOWN[q][0].exists() for q in QEMUS) or shutil.which(G.CC) is None,
                               reason="QEMU 7.2, 10.0 and the cross compiler are needed (run scripts/setup)")

TOHOST = 0x80001000


def test_alias_scan_reads_one_and_two_stage_fills_across_chunks():
    s = AliasScan(TOHOST)
    # 1:1 (translation off, or a 1:1 map): not an alias
    assert not s.feed(b"\nriscv_cpu_tlb_fill ad 80001000 rw 1 mmu_idx 3\n"
                      b"riscv_cpu_tlb_fill address=80001000 ret 0 physical 80001000 prot 7\n")
    # the fill line in one chunk, its result in the next
    assert not s.feed(b"\nriscv_cpu_tlb_fill ad ffffffffffe01008 rw 0 mmu_idx 1\n")
    assert s.feed(b"\nriscv_cpu_tlb_fill address=ffffffffffe01008 ret 0 physical 80001000 prot 3\n")
    # a failed fill and another page: nothing
    assert not s.feed(b"\nriscv_cpu_tlb_fill ad 1000 rw 1 mmu_idx 1\n"
                      b"riscv_cpu_tlb_fill address=1000 ret 1 physical 0 prot 0\n"
                      b"riscv_cpu_tlb_fill ad 2000 rw 1 mmu_idx 1\n"
                      b"riscv_cpu_tlb_fill address=2000 ret 0 physical 80002000 prot 3\n")
    # two stages: the 2nd-stage line's SPA decides, the 1st-stage GPA does not
    assert s.feed(b"\nriscv_cpu_tlb_fill ad 4000 rw 1 mmu_idx 9\n"
                  b"riscv_cpu_tlb_fill 1st-stage address=4000 ret 0 physical 80001000 prot 7\n"
                  b"riscv_cpu_tlb_fill 2nd-stage address=80001000 ret 0 physical 80001000 prot 7\n")
    assert s.found == [0xffffffffffe01000, 0x4000]
    # a run that watches an alias already sees its fill again (before the store): not new, no restart
    again = AliasScan(TOHOST, known=(0xffffffffffe01000,))
    assert not again.feed(b"\nriscv_cpu_tlb_fill ad ffffffffffe01000 rw 0 mmu_idx 1\n"
                          b"riscv_cpu_tlb_fill address=ffffffffffe01000 ret 0 physical 80001000 prot 3\n")
    assert again.found == []
    assert addrs(TOHOST) == (TOHOST,) and addrs((TOHOST, 0x4000)) == (TOHOST, 0x4000)
    assert hit("T05thread:p01.01;watch:4000;", (TOHOST, 0x4000)) == 0x4000
    assert hit("T05thread:p01.01;", (TOHOST, 0x4000)) == TOHOST


@need_qemu
@pytest.mark.parametrize("backend,source", [("qemu-7.2", "log"), ("qemu-10.0", "log"), ("qemu-10.0", "plugin")])
def test_ptest_alias_ends_at_its_tohost_write_on_every_source(tmp_path, backend, source):
    r = subprocess.run([sys.executable, "-m", "difftest", "run", "ptest_alias", "--backend", f"{backend},model",
                        "--qemu-trace", source, "--no-cache", "--json", "--max-steps", "20000", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    (res,) = json.loads(r.stdout)
    assert res["status"] == "match"
    (pair,) = res["pairs"]
    assert pair["steps_compared"] == pair["steps_run"] > 50
    q = res["runs"][backend]["footer"]
    assert (q["end"], q["exit_code"]) == ("tohost", 0)
    if source == "log":      # found the alias VA 0 + tohost's offset (VA 0 maps PA 0x80000000)
        assert q["extra"]["tohost"]["aliases"] == [q["extra"]["tohost"]["pa"] - 0x80000000]
