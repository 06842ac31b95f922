"""The nightly report opens in headless Chromium on its findings table (new first), then the guest x
mode matrix, and a mismatch cell links to its mismatch report (real nightly over hgatp_reserved on
QEMU 7.2 + the model; with an empty catalogue its findings are new)."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium not installed")
def test_report_matrix_and_mismatch_link_in_chromium(tmp_path):
    out = tmp_path / "20260101T000000Z"
    r = subprocess.run([sys.executable, "-m", "difftest", "nightly", "--guests", "hgatp_reserved",
                        "--backends", "qemu-7.2,model", "--jobs", "1", "--out", str(out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    dom = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                          "--disable-background-networking", "--disable-component-update", "--disable-sync",
                          f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", (out / "report.html").as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    assert '<table id="matrix">' in dom and "hgatp_reserved" in dom
    # the page opens on the findings table, before the matrix; every row is a reviewed finding
    assert dom.index('id="findings-table"') < dom.index('id="matrix"')
    rows = dom.split('id="findings-table"')[1].split("</table>")[0].split("<tr")[2:]
    assert rows and all('class="known"' in r and "qemu72-hgatp-reserved-mode-kept" in r for r in rows)
    # with an empty catalogue the same findings are new, listed first, and the job fails
    empty = tmp_path / "k.toml"
    empty.write_text("")
    out2 = tmp_path / "20260101T000001Z"
    r = subprocess.run([sys.executable, "-m", "difftest", "merge", str(out), "--out", str(out2), "--known", str(empty)],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 1
    dom2 = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                           "--disable-background-networking", "--disable-component-update", "--disable-sync",
                           f"--user-data-dir={tmp_path / 'profile2'}", "--dump-dom", (out2 / "report.html").as_uri()],
                          capture_output=True, text=True, timeout=120).stdout
    first_row = dom2.split('id="findings-table"')[1].split("<tr")[2]
    assert 'class="new"' in first_row and "NEW" in first_row
    assert 'class="mismatch-link"' in dom
    href = dom.split('class="mismatch-link" href="')[1].split('"')[0]
    assert (out / href).is_file()                      # the link resolves to the pair's HTML report
