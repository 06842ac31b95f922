"""End to end: a real guest under real QEMU 10.0 and the real model, per HGATP mode,
compared step by step by the engine (ARCHITECTURE section 7).

A mismatch here is either a model bug or a QEMU finding; the assertion message
carries the whole text report so the failure says which.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from difftest.engine import run_case
from helpers import explain

GUEST = "smoke"
ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("mode", ["bare", "sv39x4", "sv48x4", "sv57x4"])
def test_smoke_qemu72_vs_model(mode, tmp_path):
    case = run_case(GUEST, hgatp_mode=mode, backends=["qemu-7.2", "model"], out_dir=tmp_path, timeout=120,
                    max_steps=2_000_000)
    assert case.status == "match", explain(case)
    p = case.pairs[0]
    assert p.steps_compared > 1000 and p.xlats_compared > 100


@pytest.mark.parametrize("mode", ["bare", "sv39x4", "sv48x4", "sv57x4"])
def test_smoke_qemu10_vs_model(mode, tmp_path):
    # QEMU 10.0 writes the transformed instruction to mtinst/htinst on access faults too (smoke's
    # Bare case: tinst=0x3583, cause 5); the qemu-10.0 profile says tinst_policy="transformed".
    case = run_case(GUEST, hgatp_mode=mode, vs_mode="", backends=["qemu-10.0", "model"], out_dir=tmp_path,
                    timeout=120, max_steps=2_000_000)
    assert case.hgatp_mode == mode
    assert all(r.status == "ok" for r in case.runs.values()), explain(case)
    p = case.pairs[0]
    assert p.status in ("match", "accepted-stale"), explain(case)
    # it really compared something: every step, and translations QEMU logged in both stages
    assert p.steps_compared > 100
    assert "pc" in p.compared and "trap.cause" in p.compared
    if mode != "bare":
        assert p.xlats_compared > 0, explain(case)
    # both ran the same guest to the same end
    fq, fm = case.runs["qemu-10.0"].footer, case.runs["model"].footer
    assert fq.exit_code == fm.exit_code == 0 and fq.steps == fm.steps
    assert "DONE" in fm.uart and "fails=0" in fm.uart


def test_cli_run_json_all_modes(tmp_path):
    r = subprocess.run([sys.executable, "-m", "difftest", "run", GUEST, "--mode", "sv39x4,sv57x4",
                        "--backend", "qemu-7.2,model", "--out", str(tmp_path), "--json"],
                       capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert "Traceback" not in r.stderr
    res = json.loads(r.stdout)
    assert [c["hgatp_mode"] for c in res] == ["sv39x4", "sv57x4"]
    assert r.returncode == (0 if all(c["status"] in ("match", "accepted-stale") for c in res) else 1), r.stdout
    assert r.returncode == 0, r.stdout


def test_cli_third_party_elf_without_config_block(tmp_path):
    """Any M-mode ELF runs as is (mode '') on both QEMU and the model."""
    src = tmp_path / "tp.S"
    src.write_text("""
    .globl _start
_start:
    li t0, 0x10000000
    li t1, 'h'
    sb t1, 0(t0)
    li t1, 10
    sb t1, 0(t0)
    li t0, 0x100000
    li t1, 0x5555
    sw t1, 0(t0)
1:  j 1b
""")
    elf = tmp_path / "third_party.elf"
    subprocess.run(["riscv64-unknown-elf-gcc", "-march=rv64imac_zicsr_zifencei", "-mabi=lp64", "-nostdlib",
                    "-nostartfiles", "-Wl,-Ttext=0x80000000", "-o", str(elf), str(src)], check=True)
    r = subprocess.run([sys.executable, "-m", "difftest", "run", str(elf), "--backend", "qemu-10.0,model",
                        "--out", str(tmp_path / "out"), "--json"], capture_output=True, text=True, cwd=ROOT,
                       timeout=300)
    assert "Traceback" not in r.stderr
    res = json.loads(r.stdout)
    assert res[0]["hgatp_mode"] == "" and res[0]["guest"] == "third_party"
    assert r.returncode == 0, r.stdout
    assert res[0]["pairs"][0]["steps_compared"] >= 9
