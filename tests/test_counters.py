"""minstret writes (Priv. 3.1.11; Unpriv. Zicsr "CSR Access Ordering": "a value written to instret by
one instruction will be the value read by the following instruction").  The model was wrong (it
ignored writes: minstret read the step count); found with riscv-tests rv64mi instret_overflow, which
then failed alike on the model and both QEMUs.  Now the model passes guests/ptests/counters.S and each
QEMU's difference is a reviewed catalogue finding.  Real QEMU 7.2 and 10.0, the real guest and model."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from difftest import engine, guests as G
from difftest.backends.binaries import KNOWN
from refmodel import csr as C
from refmodel.hart import Hart
from refmodel.profile import PROFILES

QEMUS = ("qemu-7.2", "qemu-10.0")


def test_a_written_minstret_is_what_the_next_instruction_reads():
    h = Hart(PROFILES["qemu-10.0"])
    h.steps = 40
    assert C.read(h, 0xB02) == C.read(h, 0xC02) == 40       # the instructions before this one
    C.write(h, 0xB02, 1000)                                  # at step 40
    h.steps = 41
    assert C.read(h, 0xB02) == 1000 and C.read(h, 0xC02) == 1000
    h.steps = 44
    assert C.read(h, 0xB02) == 1003
    C.write(h, 0xB00, (1 << 64) - 1)                         # mcycle alike, modulo 2^64
    h.steps = 46
    assert C.read(h, 0xB00) == 0 and C.read(h, 0xB02) == 1005


@pytest.mark.skipif(shutil.which(G.CC) is None, reason="the cross compiler is needed (run scripts/setup)")
def test_ptest_counters_passes_on_the_model(tmp_path):
    r = engine.run_case(G.build("ptest_counters"), backends=["model"], out_dir=tmp_path, timeout=60,
                        use_cache=False).runs["model"]
    assert (r.status, r.footer.end, r.footer.exit_code) == ("ok", "tohost", 0)


@pytest.mark.skipif(not all(KNOWN[q][0].exists() for q in QEMUS) or shutil.which(G.CC) is None,
                    reason="QEMU 7.2, 10.0 and the cross compiler are needed (run scripts/setup)")
def test_each_qemus_minstret_finding_is_the_catalogued_one(tmp_path):
    r = subprocess.run([sys.executable, "-m", "difftest", "run", "ptest_counters", "--backend",
                        "qemu-7.2,qemu-10.0,model", "--no-cache", "--json", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=300)
    (res,) = json.loads(r.stdout)
    got = {(f["fingerprint"], f["known"]) for p in res["pairs"] for f in p["findings"]}
    want = {(f"ptest_counters|{probe}|{what}|{q}~model@{q}", entry)
            for q, entry in (("qemu-7.2", "qemu72-minstret-counts-icount-time"),
                             ("qemu-10.0", "qemu10-minstret-write-then-increment"))
            for probe, what in (("-", "control-flow pc"), ("done", "exit exit 1~exit 0"))}
    assert got == want
    assert {(p["a"], p["b"]): p["status"] for p in res["pairs"]}[("qemu-7.2", "qemu-10.0")] == "match"
