"""The multi-letter extensions of the hart (refmodel/platform.py): QEMU runs with the ones its rv64 CPU
turns on by default and the model does not implement switched off, so both are the same hart.  Found
with riscv-tests (rv64uzba/zbb/zbc/zbs, rv64mzicbo: QEMU ran the instruction, the model trapped;
docs/third-party.md).  Real QEMU 7.2 and 10.0, the real guest guests/ptests/ext.S, the real model."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest

from difftest import guests as G
from difftest.backends.binaries import KNOWN
from refmodel.platform import DEFAULT, QEMU_EXTENSIONS_OFF

QEMUS = ("qemu-7.2", "qemu-10.0")
pytestmark = pytest.mark.skipif(not all(KNOWN[q][0].exists() for q in QEMUS) or shutil.which(G.CC) is None,
                                reason="QEMU 7.2, 10.0 and the cross compiler are needed (run scripts/setup)")


@pytest.mark.parametrize("backend", QEMUS)
def test_qemu_device_tree_names_no_extension_the_model_lacks(backend):
    """The riscv,isa string QEMU generates for the run's own command line (-machine dumpdtb)."""
    from difftest import firmware
    data = firmware.dtb(backend, G.build("ptest_ext"), "default", DEFAULT)
    isa = re.search(rb"rv64imach[a-z0-9_]*", data).group().decode()       # riscv,isa (10.0 also has -base "rv64i")
    assert isa.startswith("rv64imach_") and "_zicsr" in isa and "_zifencei" in isa, isa
    for ext, _ in QEMU_EXTENSIONS_OFF:
        assert f"_{ext}_" not in isa + "_", (ext, isa)


def test_ptest_ext_traps_alike_on_both_qemus_and_the_model(tmp_path):
    """Zba, Zbb, Zbc, Zbs, Zicboz, Zicbom, Zawrs encodings are illegal instructions everywhere; a
    Zicbop prefetch is a HINT everywhere; every step compared, both ends at tohost with 0."""
    r = subprocess.run([sys.executable, "-m", "difftest", "run", "ptest_ext", "--backend",
                        "qemu-7.2,qemu-10.0,model", "--no-cache", "--json", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    (res,) = json.loads(r.stdout)
    assert res["status"] == "match"
    for run in res["runs"].values():
        assert (run["footer"]["end"], run["footer"]["exit_code"]) == ("tohost", 0)
    for pair in res["pairs"]:
        assert pair["steps_compared"] == pair["steps_run"] > 100, pair
        assert not pair["findings"]
