"""refmodel.pmp: Priv. 20240411, M "Physical Memory Protection"."""
from refmodel.pmp import check, regions

R, W, X, L = 1, 2, 4, 0x80
TOR, NA4, NAPOT = 1 << 3, 2 << 3, 3 << 3


def napot(base, size):
    return (base >> 2) | ((size >> 3) - 1)


def test_no_entries_and_default():
    assert check([], 0x8000_0000, 4, "load", 1, implemented=0)
    assert not check([], 0x8000_0000, 4, "load", 1, implemented=16)     # S/U default deny
    assert check([], 0x8000_0000, 4, "store", 3, implemented=16)        # M default allow


def test_tor_napot_na4_and_priority():
    rs = regions([NAPOT | R, TOR | R | W | X, NA4 | W],
                 [napot(0x8000_0000, 0x1000), 0x9000_0000 >> 2, 0x8800_0000 >> 2])
    assert check(rs, 0x8000_0ff8, 8, "load", 1, 16)
    assert not check(rs, 0x8000_0ff8, 8, "store", 1, 16)     # entry 0 wins over entry 1 (lowest-numbered)
    assert check(rs, 0x8000_1000, 8, "store", 0, 16)         # TOR from entry 0's pmpaddr
    assert check(rs, 0x8800_0000, 4, "store", 1, 16)         # inside TOR too: entry 1 first
    assert not check(rs, 0x9000_0000, 4, "load", 1, 16)
    assert not check(rs, 0x8000_0ffc, 8, "load", 1, 16)      # partial match of entry 0 fails


def test_na4_and_lock():
    rs = regions([NA4 | R], [0x8800_0000 >> 2])
    assert check(rs, 0x8800_0000, 4, "load", 1, 16) and not check(rs, 0x8800_0000, 8, "load", 1, 16)
    assert check(rs, 0x8800_0000, 4, "store", 3, 16)          # M ignores unlocked entries
    rs = regions([NA4 | R | L], [0x8800_0000 >> 2])
    assert not check(rs, 0x8800_0000, 4, "store", 3, 16)      # locked: applies to M


def test_granularity_napot_low_bits_read_as_ones():
    """G >= 2: NAPOT pmpaddr[G-2:0] read as ones -> the region is at least the grain."""
    rs = regions([NAPOT | R], [0x8000_0000 >> 2], granularity=10)   # 4 KiB grain
    assert rs[0].lo == 0x8000_0000 and rs[0].hi == 0x8000_1000
