"""Probe marks (docs/ARCHITECTURE.md 2b): the steps at which the comparison re-synchronises."""
from __future__ import annotations

from difftest import findings as F


class Marks:
    """Probe marks (ARCHITECTURE 2b): the step at rt_probe_sled + 4*n names mark n = kind*4096 + id
    (kinds: 0 probe start, 1 the probe's lines are printed from here, 2 probe end; 12288 rt_done,
    12289/12290 before/after an rt_fail line).  Start, print, end and done are synchronisation
    points; an rt_fail line is printed by one side only where a guest's own check failed there."""
    START, PRINT, END, PRINT_END, FAIL = 0, 1, 2, 3, 4

    def __init__(self, sled):
        self.lo, self.n = sled if sled else (None, 0)

    def of(self, pc: int) -> tuple[int, int] | None:
        """(kind, id) of the mark at pc; rt_done is (START, 4096), rt_fail's (FAIL|PRINT_END, 4097)."""
        if self.lo is None or not (self.lo <= pc < self.lo + 4 * self.n) or (pc - self.lo) & 3:
            return None
        i = (pc - self.lo) >> 2
        if i >= 3 * 4096:
            return ((self.START, F.MARK_DONE_ID), (self.FAIL, F.MARK_DONE_ID + 1),
                    (self.PRINT_END, F.MARK_DONE_ID + 1))[min(i - 3 * 4096, 2)]
        return i >> 12, i & 4095

    @staticmethod
    def order(m: tuple[int, int]) -> tuple[int, int]:
        return m[1], m[0]

    @staticmethod
    def seg(m: tuple[int, int]) -> str:
        return F.DONE if m[1] == F.MARK_DONE_ID else str(m[1])
