"""guests/vs_ip_alias on real QEMU 7.2 and 10.0, and in lockstep with the model (the model passing it is
tests/test_model_every_guest.py).  mip's VSEIP/VSTIP/VSSIP are aliases of hip's, of which only VSSIP is
writable (H "Hypervisor Interrupt Registers": "VSEIP is read-only in hip", "VSTIP is read-only in hip",
"VSSIP in hip is an alias (writable) of the same bit in hvip").

FINDINGS (both QEMUs; known-divergences.toml qemu10-/qemu72-mip-writes-vstip-vseip): an M-mode write
of mip sets (P 1) and clears (P 4) VSTIP and VSEIP, in hvip too.  P 2 (mip.VSSIP) and P 3 (hvip) agree
with the spec.  The situation of riscv-hyp-tests' check_xip_regs (README)."""
from __future__ import annotations

import pytest
from guest_lockstep import lockstep_findings
from test_guests import probe_lines, run_guest, x_ids


@pytest.mark.parametrize("qemu", ["10.0", "7.2"])
def test_vs_ip_alias_on_qemu(qemu, tmp_path):
    rc, out = run_guest("vs_ip_alias", "bare", qemu, tmp_path)
    assert x_ids(out) == [1, 4] and rc == 1, out
    p = probe_lines(out)
    assert "hip=0x440 mip=0x440 hvip=0x440" in p[1]            # the write landed, in hvip too
    assert "hip=0x4 mip=0x4 hvip=0x4" in p[2] and "hip=0x444 mip=0x444 hvip=0x444" in p[3]
    assert "hip=0x4 mip=0x4 hvip=0x4" in p[4]                  # and the clear


def test_lockstep_findings_are_the_catalogued_ones(tmp_path):
    got, pairs = lockstep_findings("vs_ip_alias", tmp_path)
    assert pairs[("qemu-7.2", "qemu-10.0")]["status"] == "match"
    for q, entry in (("qemu-7.2", "qemu72-mip-writes-vstip-vseip"), ("qemu-10.0", "qemu10-mip-writes-vstip-vseip")):
        assert got[q] == {("1", "Xa(hip=nz,hvip=nz)", entry), ("4", "Xa(hip=nz,hvip=nz)", entry)}, got
