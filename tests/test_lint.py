"""pyflakes over the whole project: an unused import is noise, but a test function defined twice
under one name silently never runs, and an undefined name is a crash waiting on a rare path
(both were found this way: tests/test_mmu.py had a shadowed Svadu test, difftest/bisect.py a
name read before its assignment on one branch)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_pyflakes_clean():
    p = subprocess.run([sys.executable, "-m", "pyflakes", "difftest", "refmodel", "tests"],
                       cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
