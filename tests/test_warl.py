"""refmodel.warl: Priv. 20240411, S "satp" (unsupported MODE: whole write ignored), H "vsatp", H "hgatp"."""
import pytest

from refmodel.profile import BASE, PROFILES
from refmodel.warl import hgatp_mode_sticks, legalise_hgatp, legalise_satp, legalise_vsatp, vmidlen_probe


@pytest.mark.parametrize("f", [legalise_satp, legalise_vsatp])
def test_atp_unsupported_mode_ignores_whole_write(f):
    p = PROFILES["qemu-10.0-sv39"]
    old = (8 << 60) | (5 << 44) | 0x80123
    assert f(old, (9 << 60) | 0x999, p) == old
    assert f(old, (1 << 60) | 0x999, p) == old
    assert f(old, (8 << 60) | (0xFFFF << 44) | 0x777, p) == (8 << 60) | (0xFFFF << 44) | 0x777
    assert f(old, 0, p) == 0


def test_asid_width():
    p = BASE.with_(asidlen=9)
    assert legalise_satp(0, (8 << 60) | (0xFFFF << 44), p) == (8 << 60) | (0x1FF << 44)


def test_hgatp_ppn_low_bits_and_vmid():
    """hgatp.PPN[1:0] read as zero (16 KiB root); VMID keeps VMIDLEN bits."""
    p = BASE.with_(vmidlen=7)
    v = legalise_hgatp(0, (8 << 60) | (0x3FFF << 44) | 0x80007, p)
    assert v == (8 << 60) | (0x7F << 44) | 0x80004
    assert vmidlen_probe(p) == 7 and vmidlen_probe(BASE) == 14 and vmidlen_probe(BASE.with_(vmidlen=0)) == 0


@pytest.mark.parametrize("mode", [1, 4, 7, 11, 15])
def test_hgatp_unsupported_mode_writes_ppn_and_vmid(mode):
    """H "hgatp": "A write to hgatp with an unsupported MODE value is not ignored as it is for satp.
    Instead, the fields of hgatp are WARL in the normal way" -- PPN and VMID take the written value
    (PPN[1:0] zero), MODE reads back a legal value: the previous one ("keep") or Bare ("bare")."""
    old = (8 << 60) | (3 << 44) | 0x80000
    new = (mode << 60) | (0x55 << 44) | 0x90007
    keep = BASE.with_(hgatp_unsupported_mode="keep")
    bare = BASE.with_(hgatp_unsupported_mode="bare")
    assert legalise_hgatp(old, new, keep) == (8 << 60) | (0x55 << 44) | 0x90004
    assert legalise_hgatp(old, new, bare) == (0x55 << 44) | 0x90004
    # never the satp rule (whole write ignored), whatever the choice
    for p in (keep, bare, *PROFILES.values()):
        assert legalise_hgatp(old, new, p) != old
        assert (legalise_hgatp(old, new, p) >> 60) in p.hgatp_modes


def test_hgatp_unsupported_mode_vmidlen_and_unsupported_x4():
    """The VMID of such a write is still cut to VMIDLEN; a defined but unsupported mode (Sv57x4 on an
    sv48 hart) is legalised the same way."""
    p = PROFILES["qemu-10.0-sv48"].with_(vmidlen=4)
    v = legalise_hgatp((9 << 60) | 0x80000, (10 << 60) | (0x3FFF << 44) | 0xA0000, p)
    assert v == (9 << 60) | (0xF << 44) | 0xA0000
    with pytest.raises(ValueError):
        legalise_hgatp(0, 1 << 60, BASE.with_(hgatp_unsupported_mode="ignore"))


def test_hgatp_mode_support_per_profile():
    assert [m for m in range(16) if hgatp_mode_sticks(PROFILES["qemu-10.0"], m)] == [0, 8, 9, 10]
    assert [m for m in range(16) if hgatp_mode_sticks(PROFILES["qemu-10.0-sv39"], m)] == [0, 8]
    assert [m for m in range(16) if hgatp_mode_sticks(PROFILES["qemu-10.0-sv48"], m)] == [0, 8, 9]
