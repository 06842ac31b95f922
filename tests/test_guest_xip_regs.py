"""guests/xip_regs on real QEMU 7.2 and 10.0, in lockstep with the model, and the model's interrupt-register
rules it pins (the model passing the guest on every profile is tests/test_model_every_guest.py).  The registers
riscv-hyp-tests' check_xip_regs writes with all ones (README "Third-party programs in lockstep").

Spec-allowed choices, held per profile (refmodel/profile.py): mideleg bit 13 (mideleg_extra, both QEMUs),
hideleg bits 14..63 (hideleg_extra, QEMU 10.0), vsie/vsip platform bits 16..63 aliasing mie/mip while their
hideleg bit is set (vs_platform_alias, QEMU 10.0).

FINDINGS (known-divergences.toml): LCOFIE/LCOFIP writable without Sscofpmf (P 5, 6: both QEMUs,
qemu*-lcofi-without-sscofpmf); the reserved standard bits 14 and 15 of mie/vsie (P 3, 4: 10.0,
qemu10-interrupt-bits-14-15-writable); hvip showing mip's bits and setting LCOFIP (P 7, 8: 10.0,
qemu10-hvip-shows-mip); vsip not showing hip's VSTIP/VSEIP with hideleg set (P 9: 7.2,
qemu72-vsip-misses-vstip-vseip)."""
from __future__ import annotations

import pytest
from guest_lockstep import lockstep_findings
from test_guests import probe_lines, run_guest, x_ids

from refmodel import csr as C
from refmodel.hart import Hart
from refmodel.profile import BASE, PROFILES

ALL = (1 << 64) - 1


@pytest.mark.parametrize("qemu,xs", [("10.0", [3, 4, 5, 6, 7, 8]), ("7.2", [5, 6, 9])])
def test_xip_regs_on_qemu(qemu, xs, tmp_path):
    rc, out = run_guest("xip_regs", "bare", qemu, tmp_path)
    assert x_ids(out) == xs and rc == 1, out
    p = probe_lines(out)
    assert "mideleg=0x3666" in p[1]                          # bit 13 delegatable on both (allowed)
    assert ("hideleg=0xffffffffffffc444" if qemu == "10.0" else "hideleg=0x444") in p[2]
    assert "mie=0x2000 sie=0x2000" in p[5] and "lcofip=0x2000 sip=0x2000" in p[6]
    if qemu == "10.0":
        assert "vsie=0xffffffffffffc222 mie=0xffffffffffffc444" in p[3] and "mie=0xc000" in p[4]
        assert "hvip=0x80" in p[7] and "lcofip=0x2000" in p[8] and "vsip=0x222 hip=0x444" in p[9]
    else:
        assert "vsip=0x2 hip=0x444" in p[9]                  # STIP/SEIP not aliased to hip's VS bits


def test_lockstep_findings_are_the_catalogued_ones(tmp_path):
    got, _ = lockstep_findings("xip_regs", tmp_path)
    assert got["qemu-7.2"] == {("5", "Xa(mie=nz,sie=nz)", "qemu72-lcofi-without-sscofpmf"),
                               ("6", "Xa(lcofip=nz,sip=nz)", "qemu72-lcofi-without-sscofpmf"),
                               ("9", "Xa(vsip=nz)", "qemu72-vsip-misses-vstip-vseip")}, got
    assert got["qemu-10.0"] == {("3", "Xa(vsie=nz,mie=nz)", "qemu10-interrupt-bits-14-15-writable"),
                                ("4", "Xa(mie=nz)", "qemu10-interrupt-bits-14-15-writable"),
                                ("5", "Xa(mie=nz,sie=nz)", "qemu10-lcofi-without-sscofpmf"),
                                ("6", "Xa(lcofip=nz,sip=nz)", "qemu10-lcofi-without-sscofpmf"),
                                ("7", "Xa(hvip=nz)", "qemu10-hvip-shows-mip"),
                                ("8", "Xa(lcofip=nz)", "qemu10-hvip-shows-mip")}, got


def _all_ones(prof) -> Hart:
    h = Hart(prof)
    for num in (0x303, 0x603, 0x204):                     # mideleg, hideleg, vsie = -1 (check_xip_regs)
        C.write(h, num, ALL)
    return h


@pytest.mark.parametrize("prof,mideleg,hideleg,vsie,mie", [
    (BASE, 0x1666, 0x444, 0x222, 0x444),                  # the spec's minimum: nothing optional
    (PROFILES["qemu-7.2"], 0x3666, 0x444, 0x222, 0x444),
    (PROFILES["qemu-10.0"], 0x3666, ALL & ~0x3BBB, ALL & ~0xFDDD, ALL & ~0xFBBB),
])
def test_delegation_and_vsie_rules_per_profile(prof, mideleg, hideleg, vsie, mie):
    h = _all_ones(prof)
    assert (C.read(h, 0x303), C.read(h, 0x603), C.read(h, 0x204), C.read(h, 0x304)) == (mideleg, hideleg, vsie, mie)
    # never the reserved standard bits 14/15 nor LCOFI (no Sscofpmf), whatever the profile allows
    assert not C.read(h, 0x204) & 0xE000 and not C.read(h, 0x304) & 0xE000
    C.write(h, 0x304, 1 << 13)
    C.write(h, 0x344, 1 << 13)
    assert C.read(h, 0x304) == 0 and C.read(h, 0x104) == 0 and C.read(h, 0x344) & (1 << 13) == 0
    C.write(h, 0x645, 0)
    assert C.read(h, 0x645) == 0                          # hvip: only its writable VS bits
    C.write(h, 0x645, 0x444)                              # H: vsip.SEIP/STIP/SSIP alias hip's VS bits
    assert C.read(h, 0x244) & 0xFFFF == 0x222 and C.read(h, 0x644) == 0x444


def test_vsie_platform_bits_follow_hideleg():
    # H: vsie bits are read-only zero where hideleg is zero; a platform bit the profile aliases (QEMU 10.0)
    # reads mie's bit while hideleg's is set, and 0 once hideleg's is cleared
    h = _all_ones(PROFILES["qemu-10.0"])
    assert C.read(h, 0x204) >> 16 & 1
    C.write(h, 0x603, 0x444)
    assert C.read(h, 0x204) == 0x222 and C.read(h, 0x304) >> 16 & 1
