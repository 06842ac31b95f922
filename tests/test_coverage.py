"""difftest coverage: the reachable list follows the spec's rules per mode, and a real model trace of
gstage_basic (G-stage leaves at every level, guest-page faults) reaches what the guest claims."""
import json
import subprocess
import sys
from pathlib import Path

from difftest.coverage import reachable, reachable_v0

ROOT = Path(__file__).resolve().parent.parent


def test_reachable_list_follows_the_modes():
    # Bare/Bare: only "ok" with no leaves, and access faults (Priv. 20240411 21.5, 3.7)
    assert reachable("bare", "bare") == {(1, "bare", "bare", a, None, None, o) for a, o in
                                         [("fetch", "ok"), ("load", "ok"), ("store", "ok"),
                                          ("fetch", "pmp:1"), ("load", "pmp:5"), ("store", "pmp:7")]}
    s = reachable("sv39x4", "sv48")
    assert (1, "sv39x4", "sv48", "load", 3, 2, "ok") in s          # 512 GiB VS leaf on a 1 GiB G leaf
    assert (1, "sv39x4", "sv48", "load", 4, 0, "ok") not in s      # Sv48 has levels 0..3
    assert (1, "sv39x4", "sv48", "store", None, None, "g-implicit:23") in s
    assert not any(t[-1].startswith("g") for t in reachable("bare", "sv57"))   # no G stage, no guest-page fault
    assert len(reachable_v0()) == 3 * 6 + 6


def test_real_model_trace_coverage(tmp_path):
    r = subprocess.run([sys.executable, "-m", "difftest", "coverage", "--guests", "gstage_basic", "--out",
                        str(tmp_path), "--json"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    sv39 = d["per_mode"]["sv39x4/bare"]
    missing = set(sv39["missing"])
    for lv in (0, 1, 2):                 # gstage_basic maps G-stage leaves at every level
        assert f"V=1 sv39x4/bare load vs-leaf=- g-leaf={lv} ok" not in missing
    assert "V=1 sv39x4/bare load vs-leaf=- g-leaf=- g:21" not in missing
    assert 0 < d["reached_total"] < d["reachable_total"]
