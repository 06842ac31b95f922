"""guests/hlvx_vs on real QEMU 7.2 and 10.0, and in lockstep with the model (the model passing it in
every mode is tests/test_model_every_guest.py).  HLVX from HS-mode through a VS stage: X takes the place
of R ("the memory being read must be executable in both stages ..., but read permission is not
required"), and its faults are load faults; HLV.D needs R.

FINDINGS (known-divergences.toml):
  10.0: P 2 HLVX at a VS leaf without X: instruction page fault 12, gva 0 (qemu10-hlvx-fault-as-fetch-fault);
        P 4 hlv.d's VS-stage page fault 13 with gva 0 (qemu10-gva-not-written-for-v0-guest-address).
  7.2:  P 1 HLVX at a VS X-only leaf faults, P 2 at a VS leaf without X reads (qemu72-hlvx-vs-stage-
        permission-from-read); P 4 hlv.d at an X-only leaf: load access fault 5, gva 0
        (qemu72-hlv-vs-page-fault-as-access-fault).
The situation of riscv-hyp-tests' m_and_hs_using_vs_access (README)."""
from __future__ import annotations

import pytest
from guest_lockstep import lockstep_findings
from test_guests import probe_lines, run_guest, x_ids


@pytest.mark.parametrize("qemu", ["10.0", "7.2"])
@pytest.mark.parametrize("mode", ["bare", "sv39x4"])
def test_hlvx_vs_on_qemu(mode, qemu, tmp_path):
    rc, out = run_guest("hlvx_vs", mode, qemu, tmp_path, vs="sv39")
    p = probe_lines(out)
    assert " ok val=" in p[3]                                  # R and X: both agree with the spec
    if qemu == "10.0":
        assert x_ids(out) == [2, 4] and rc == 1, out
        assert " ok val=" in p[1]
        assert "trap cause=12 " in p[2] and " gva=0 " in p[2]
        assert "trap cause=13 " in p[4] and " gva=0 " in p[4]
    else:
        assert x_ids(out) == [1, 2, 4] and rc == 1, out
        assert "trap cause=5 " in p[1] and " ok val=" in p[2]
        assert "trap cause=5 " in p[4] and " gva=0 " in p[4]


def test_lockstep_findings_are_the_catalogued_ones(tmp_path):
    got, _ = lockstep_findings("hlvx_vs", tmp_path, "--mode", "sv39x4", "--vs-mode", "sv39")
    known = {q: {(p, k) for p, _w, k in f} for q, f in got.items()}
    assert known["qemu-10.0"] == {("2", "qemu10-hlvx-fault-as-fetch-fault"),
                                  ("4", "qemu10-gva-not-written-for-v0-guest-address")}, got
    assert known["qemu-7.2"] == {("1", "qemu72-hlvx-vs-stage-permission-from-read"),
                                 ("2", "qemu72-hlvx-vs-stage-permission-from-read"),
                                 ("4", "qemu72-hlv-vs-page-fault-as-access-fault")}, got
