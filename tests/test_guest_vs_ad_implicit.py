"""guests/vs_ad_implicit on real QEMU 7.2 and 10.0 (the model passing it is
tests/test_model_every_guest.py).  The VS page tables sit in a page the G stage maps read-only;
a hardware A/D update of a VS PTE is an implicit *store* at the G stage (Priv. 20240411, H "Guest
Physical Address Translation": "checked as though for an implicit load or store, not for the
original access type"), so it must fault -- guest-page fault of the original type, mtval2 = the
PTE's GPA >> 2, mtinst = 0x3020 -- or, with Svade, never be attempted.

FINDING (both QEMUs, upstream work item 3426): the update is checked as a load and written
through the read-only mapping; every A/D probe succeeds, and with Svadu the G-stage leaf of the
table's page is not marked dirty by the VS A update."""
from __future__ import annotations

import re

import pytest
from test_guests import probe_lines, run_guest, x_ids


@pytest.mark.parametrize("qemu", ["10.0", "7.2"])
@pytest.mark.parametrize("mode", ["sv39x4", "sv48x4", "sv57x4"])
def test_vs_ad_update_through_readonly_gstage_page(mode, qemu, tmp_path):
    rc, out = run_guest("vs_ad_implicit", mode, qemu, tmp_path, vs="sv39")
    assert rc == 1 and re.search(r"^DONE probes=8 fails=6$", out, re.M), out
    assert x_ids(out) == [10, 11, 12, 13], out
    assert "X a VS PTE's A/D bit was written through a read-only G-stage mapping" in out
    # the same root cause seen from the G stage's dirty bit: the VS A update is an implicit store,
    # so the G-stage leaf of the table's page must become dirty (Svadu) -- QEMU leaves D = 0
    assert "X a VS PTE's A bit was set in a page whose G-stage leaf stayed clean (D = 0)" in out
    p = probe_lines(out)
    assert " ok " in p[1] and " ok " in p[2]            # reading the VS tables there is fine
    assert all(" ok val=" in p[i] for i in (10, 11, 12, 13))


def test_cli_says_a_shared_finding_is_not_a_vote_against_the_model(tmp_path):
    """Both QEMUs agree with each other and differ from the model: the summary must not present the
    model (the spec) as the odd one out."""
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent
    r = subprocess.run([sys.executable, "-m", "difftest", "run", "vs_ad_implicit", "--mode", "sv39x4", "--vs-mode",
                        "sv39", "--backend", "qemu-7.2,qemu-10.0,model", "--out", str(tmp_path)],
                       capture_output=True, text=True, cwd=root, timeout=300)
    assert r.returncode == 1, r.stderr
    assert "the QEMUs agree with each other, against the model (the spec)" in r.stdout
    assert "odd one out: model" not in r.stdout
