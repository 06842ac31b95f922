"""`difftest modes`: the hgatp_probe guest on real QEMUs next to the model's prediction."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from difftest import modes
from difftest.backends.binaries import KNOWN

ROOT = Path(__file__).resolve().parents[1]
HAVE = [q for q in ("qemu-7.2", "qemu-10.0") if KNOWN[q][0].exists()]
pytestmark = pytest.mark.skipif(not (ROOT / "guests" / "hgatp_probe").is_dir() or not HAVE,
                                reason="hgatp_probe guest or QEMU missing")


def cli(*args):
    p = subprocess.run([sys.executable, "-m", "difftest", "modes", *args], cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
    return p.returncode, p.stdout, p.stderr


def test_json_all_variants():
    rc, out, err = cli("--json", "--no-cache")
    assert "Traceback" not in err
    rows = json.loads(out)
    got = {(r["backend"], r["cpu"]): r for r in rows}
    for b in HAVE:
        for cpu in modes.VARIANTS[b]:
            r = got[(b, cpu)]
            assert r["qemu"].startswith("HGATP supported=")
            s = modes.parse_summary(r["qemu"])
            assert s["supported"] & 1                       # Bare is always supported
            assert r["status"] in ("match", "mismatch")
    if "qemu-10.0" in HAVE:
        # measured on 10.0.2: sv39=on leaves only Bare and Sv39x4 in hgatp, sv48=on adds Sv48x4
        assert modes.parse_summary(got[("qemu-10.0", "sv39")]["qemu"])["supported"] == 0x101
        assert modes.parse_summary(got[("qemu-10.0", "sv48")]["qemu"])["supported"] == 0x301
        assert modes.parse_summary(got[("qemu-10.0", "default")]["qemu"])["v4"] == 0x7
    assert rc == (1 if any(r["status"] == "mismatch" for r in rows) else 0)


def test_text_output_and_unknown_variant():
    b = HAVE[0]
    rc, out, err = cli("--backend", b, "--cpu", "sv99")
    # a mistyped CPU variant is a usage error (2); 125 would make `git bisect run` skip the revision
    assert rc == 2 and "unknown CPU variant --cpu 'sv99'" in err and "Traceback" not in err


def test_model_not_available(monkeypatch):
    monkeypatch.setattr(modes, "predict", lambda backend, cpu: None)
    (row,) = modes.run_modes([HAVE[0]], ["default"])
    assert row.status == "no-model" and row.model is None and "not available" in row.message
    assert row.qemu.startswith("HGATP ")


def test_parse_summary():
    assert modes.parse_summary("x\nHGATP supported=0x701 v4=0x7 merged=10 vmidlen=14\n") == \
        {"supported": 0x701, "v4": 7, "merged": 10, "vmidlen": 14}
    assert modes.parse_summary("HGATP supported=zz") is None
    assert modes.parse_summary("DONE probes=3 fails=0") is None


def test_summary_read_whatever_the_exit(capsys):
    """hgatp_probe exits 1 on both QEMUs (its hgatp PPN[1:0] self-check, Priv. 20240411 9.2.10);
    its HGATP line is still read and the exit is said."""
    from difftest.modes import run as modes_run
    import argparse
    b = HAVE[-1]
    rc = modes_run(argparse.Namespace(backend=b, cpu="default", no_cache=False, timeout=60, json=False))
    out = capsys.readouterr().out
    (row,) = modes.run_modes([b], ["default"])
    assert row.qemu.startswith("HGATP supported=") and row.status in ("match", "mismatch")
    assert row.exit.startswith("exit ")
    assert f"guest: {row.exit}" in out and "qemu : HGATP supported=" in out
    if row.exit.startswith("exit 1"):
        assert "self-check failure" in row.exit and "X " in row.exit
    assert rc == (1 if row.status == "mismatch" else 0)
