"""guests/sc_fail on real QEMU 7.2 and 10.0, and in lockstep with the model (the model passing it in
every mode is tests/test_model_every_guest.py).  An SC without a reservation fails (rd != 0, memory
unchanged), but "No sc.w instruction shall retire unless it passes memory permission checks" (Unpriv.
"Zalrsc"): to a page a store may not write it raises the store's fault.

FINDINGS (both QEMUs), spec-decided, stable across modes (known-divergences.toml
qemu10-/qemu72-failed-sc-no-permission-check): QEMU fails such an SC with rd=1 and no trap --
  10 g-invalid (V=0), 11 g-readonly: no guest-page fault 23;
  20 vs-invalid (V=0), 21 vs-readonly: no page fault 15.
That is the cause-15 divergence of riscv-hyp-tests (README "Third-party programs in lockstep"), shown
here by a guest of ours."""
from __future__ import annotations

import re

import pytest
from guest_lockstep import lockstep_findings
from test_guests import MODES, probe_lines, run_guest, x_ids


@pytest.mark.parametrize("qemu", ["10.0", "7.2"])
@pytest.mark.parametrize("vs", ["bare", "sv39"])
@pytest.mark.parametrize("mode", MODES)
def test_sc_fail_on_qemu(mode, vs, qemu, tmp_path):
    rc, out = run_guest("sc_fail", mode, qemu, tmp_path, vs=vs)
    want = ([10, 11] if mode != "bare" else []) + ([20, 21] if vs != "bare" else [])
    assert x_ids(out) == want, out
    assert re.search(rf"^DONE probes=\d+ fails={len(want)}$", out, re.M) and rc == (1 if want else 0), out
    assert "a failed SC wrote memory" not in out, out
    p = probe_lines(out)
    for i in want:                          # the SC retired as a failed SC: rd = 1, no trap
        assert " ok val=0x1" in p[i], p[i]


def test_lockstep_findings_are_the_catalogued_ones(tmp_path):
    """qemu-10.0 and qemu-7.2 against the model in one mode pair where all the probes run: exactly
    probes 10, 11 (23 expected) and 20, 21 (15 expected) differ, each tagged with its catalogue entry,
    and every step after them is still compared (probe marks)."""
    got, pairs = lockstep_findings("sc_fail", tmp_path, "--mode", "sv39x4", "--vs-mode", "sv39")
    assert pairs[("qemu-7.2", "qemu-10.0")]["status"] == "match"
    for q, entry in (("qemu-7.2", "qemu72-failed-sc-no-permission-check"),
                     ("qemu-10.0", "qemu10-failed-sc-no-permission-check")):
        assert got[q] == {("10", "Xa(trap=0) + trap none~23", entry), ("11", "Xa(trap=0) + trap none~23", entry),
                          ("20", "Xa(trap=0) + trap none~15", entry), ("21", "Xa(trap=0) + trap none~15", entry)}, got
        p = pairs[(q, f"model@{q}")]
        assert p["resyncs"] == 4 and p["steps_compared"] > 0.95 * p["steps_run"], p
