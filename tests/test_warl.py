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


@pytest.mark.parametrize("mode", [1, 7, 11, 15])
def test_hgatp_unsupported_mode_policies(mode):
    old = (8 << 60) | 0x80000
    keep = BASE.with_(hgatp_unsupported_write="keep")
    bare = BASE.with_(hgatp_unsupported_write="bare")
    assert legalise_hgatp(old, (mode << 60) | 0x90000, keep) == old
    assert legalise_hgatp(old, (mode << 60) | 0x90000, bare) == 0x90000


def test_hgatp_mode_support_per_profile():
    assert [m for m in range(16) if hgatp_mode_sticks(PROFILES["qemu-10.0"], m)] == [0, 8, 9, 10]
    assert [m for m in range(16) if hgatp_mode_sticks(PROFILES["qemu-10.0-sv39"], m)] == [0, 8]
    assert [m for m in range(16) if hgatp_mode_sticks(PROFILES["qemu-10.0-sv48"], m)] == [0, 8, 9]
