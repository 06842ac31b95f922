"""One guest case run by `difftest run` on both QEMUs and the model (real binaries, real guest, real
model): each QEMU's findings against the model, as (probe, what, catalogue id) -- for the guest tests
that pin a catalogued finding (tests/test_guest_sc_fail.py, _vs_ip_alias.py, _hlvx_vs.py)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def lockstep_findings(guest: str, out: Path, *mode_args: str) -> tuple[dict, dict]:
    """(findings per QEMU: {"qemu-7.2": {(probe, what, known)}, ...}, the pairs by (a, b))."""
    r = subprocess.run([sys.executable, "-m", "difftest", "run", guest, *mode_args,
                        "--backend", "qemu-7.2,qemu-10.0,model", "--out", str(out), "--json"],
                       capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert r.returncode == 1, r.stdout + r.stderr
    (case,) = json.loads(r.stdout)
    pairs = {(p["a"], p["b"]): p for p in case["pairs"]}
    got = {q: {(f["probe"], f["what"], f["known"]) for f in pairs[(q, f"model@{q}")]["findings"]}
           for q in ("qemu-7.2", "qemu-10.0")}
    return got, pairs
