"""Synchronous exceptions, trap entry and trap return.

Priv. 20240411, 3.1.6/3.1.7 (mstatus, medeleg), 3.3.2 (MRET/SRET), and the H chapter:
9.5 "Traps" -- 9.5.1 "Trap cause codes", 9.5.2 "Trap entry", 9.5.3 "Trap return".
Interrupts (asynchronous traps) are chosen by refmodel.interrupts and entered by
refmodel.trap_entry.TrapEntry.take_interrupt.
"""
from __future__ import annotations

from dataclasses import dataclass

# Exception codes (Priv. table 3.6 and H table 9.x "Exception codes")
INSN_MISALIGNED = 0
INSN_ACCESS = 1
ILLEGAL = 2
BREAKPOINT = 3
LOAD_MISALIGNED = 4
LOAD_ACCESS = 5
STORE_MISALIGNED = 6
STORE_ACCESS = 7
ECALL_U = 8
ECALL_S = 9
ECALL_VS = 10
ECALL_M = 11
INSN_PAGE = 12
LOAD_PAGE = 13
STORE_PAGE = 15
INSN_GUEST_PAGE = 20
LOAD_GUEST_PAGE = 21
VIRTUAL_INSN = 22
STORE_GUEST_PAGE = 23

# Causes whose tval is an address: when the address came from two-stage
# translation it is a guest virtual address and GVA is set (H 9.4.1 hstatus.GVA,
# 3.1.6 mstatus.GVA: "set to 1 when a trap writes a guest virtual address to xtval").
ADDRESS_CAUSES = frozenset({0, 1, 4, 5, 6, 7, 12, 13, 15, 20, 21, 23})
GUEST_PAGE_CAUSES = frozenset({20, 21, 23})
# The access type each address-related cause reports (for htinst/mtinst, H "Transformed instruction")
ACCESS_OF_CAUSE = {0: "fetch", 1: "fetch", 12: "fetch", 20: "fetch", 4: "load", 5: "load", 13: "load", 21: "load",
                   6: "store", 7: "store", 15: "store", 23: "store"}


class Exc(Exception):
    """A synchronous exception raised while executing one instruction."""

    def __init__(self, cause: int, tval: int = 0, *, htval: int = 0, tinst: int | None = None, gva: bool = False,
                 addr_offset: int = 0):
        super().__init__(cause)
        self.cause = cause
        self.tval = tval
        self.htval = htval
        # htinst/mtinst: None = not decided where the exception was raised; trap entry then derives
        # it from the cause and the trapping instruction per profile (refmodel.tinst.tinst_for)
        self.tinst = tinst
        self.gva = gva
        # "Addr. Offset" of the transformed instruction: faulting VA minus the access's original VA
        # (non-zero only for a misaligned access performed in pieces)
        self.addr_offset = addr_offset


@dataclass
class Target:
    """Where a trap goes: 'M', 'HS' or 'VS' (H 9.5.2)."""
    mode: str


def trap_target(cause: int, priv: int, v: int, medeleg: int, hedeleg: int) -> str:
    """Priv. 3.1.8: a trap taken in M is never delegated; medeleg routes to HS
    from S/U; then (H 9.4.2) hedeleg routes a trap taken with V=1 on to VS."""
    if priv == 3 or not (medeleg >> cause) & 1:
        return "M"
    if v and (hedeleg >> cause) & 1:
        return "VS"
    return "HS"
