"""guests/atp_reserved on real QEMU: reserved MODEs written to satp (the write must have no effect) and
to vsatp with V=0 (ignored, or WARL to a legal MODE) -- Priv. 20240411 12.1.11 satp, H "vsatp".
QEMU 10.0 passes; QEMU 7.2 keeps every reserved MODE in vsatp (FINDING, as it does for hgatp)."""
from __future__ import annotations

import re

from test_guests import assert_pass, run_guest, x_ids


def test_atp_reserved_qemu10(tmp_path):
    assert_pass(*run_guest("atp_reserved", "bare", "10.0", tmp_path))


def test_atp_reserved_qemu72_keeps_reserved_vsatp_modes(tmp_path):
    rc, out = run_guest("atp_reserved", "bare", "7.2", tmp_path)
    assert rc == 1 and re.search(r"^DONE probes=48 fails=24$", out, re.M), out
    assert x_ids(out) == list(range(2, 49, 2)), out        # every vsatp probe, no satp probe
