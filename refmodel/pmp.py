"""Physical Memory Protection check (Priv. 20240411, M "Physical Memory Protection").

* Address matching: A = OFF (0), TOR (1: pmpaddr[i-1] <= a < pmpaddr[i]), NA4 (2), NAPOT (3).
* Granularity G (profile.pmp_granularity): grain 2^(G+2) bytes; NA4 is not selectable when G >= 1
  (the write is legalised by the CSR file, here NA4 is matched as written); for G >= 2 the low
  bits of pmpaddr read as ones (NAPOT) or zeros (OFF/TOR) -- "Physical Memory Protection CSRs".
* Priority: "the lowest-numbered PMP entry that matches any byte of an access determines whether
  that access succeeds or fails"; "the matching PMP entry must match all bytes of an access, or
  the access fails".
* No entry matches: M-mode succeeds; S/U fail when at least one entry is implemented.
* L bit: locked entries also apply to M-mode.
"""
from __future__ import annotations

from dataclasses import dataclass

BIT = {"fetch": 4, "load": 1, "store": 2}   # X, R, W
LOCK = 0x80
OFF, TOR, NA4, NAPOT = 0, 1, 2, 3


@dataclass(frozen=True)
class Region:
    index: int
    lo: int
    hi: int            # exclusive
    cfg: int


def effective_addr(addr: int, a: int, g: int) -> int:
    """pmpaddr as the matcher sees it under granularity G."""
    if g >= 2 and a == NAPOT:
        return addr | ((1 << (g - 1)) - 1)
    if g >= 1 and a in (OFF, TOR):
        return addr & ~((1 << g) - 1)
    return addr


def regions(cfgs: list[int], addrs: list[int], granularity: int = 0) -> list[Region]:
    """Decode per-entry pmpcfg bytes and pmpaddr values into address ranges (OFF entries dropped)."""
    out = []
    prev = 0
    for i, (cfg, addr) in enumerate(zip(cfgs, addrs)):
        a = (cfg >> 3) & 3
        ea = effective_addr(addr, a, granularity)
        if a == TOR:
            lo, hi = prev << 2, ea << 2
        elif a == NA4:
            lo, hi = ea << 2, (ea << 2) + 4
        elif a == NAPOT:
            ones = (~ea & (ea + 1)).bit_length() - 1          # trailing ones
            lo = (ea & ~((1 << ones) - 1)) << 2
            hi = lo + (1 << (ones + 3))
        else:
            lo = hi = None
        if lo is not None and hi > lo:
            out.append(Region(i, lo, hi, cfg))
        prev = effective_addr(addr, TOR, granularity)
    return out


def check(rs: list[Region], pa: int, size: int, access: str, priv: int, implemented: int) -> bool:
    for r in rs:
        if pa < r.hi and pa + size > r.lo:
            if not (r.lo <= pa and pa + size <= r.hi):
                return False                                 # partial match fails
            if priv == 3 and not r.cfg & LOCK:
                return True
            return bool(r.cfg & BIT[access])
    return priv == 3 or implemented == 0


def cfg_bytes(pmpcfg_regs: list[int], n: int) -> list[int]:
    """RV64: pmpcfg0, pmpcfg2, ... each hold 8 entries' bytes."""
    return [(pmpcfg_regs[i // 8] >> (8 * (i % 8))) & 0xFF for i in range(n)]
