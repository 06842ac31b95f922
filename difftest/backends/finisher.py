"""The guest's exit code from its own finisher write, not from QEMU's exit status.

QEMU's exit status is not a reliable record of what the guest wrote to the sifive_test finisher:

* QEMU >= 8 serves the finisher's shutdown request asynchronously; the hart runs on for a few
  instructions (more on a loaded machine) and a second finisher write in that window replaces the
  exit code (the scripts/bench guest falls through from its pass write into a fail write: QEMU
  10.0 then exits 1 although the guest passed -- a false "exit mismatch");
* ``exit(code)`` keeps only 8 bits of the 16-bit code, so code 256 ends as status 0 and code 200
  as 200, which looks like "killed by signal 72";
* the backend itself may have stopped QEMU (step limit, timeout) after the write.

So the QEMU backend reads the value of the first finisher store -- the one the trace ends at --
from QEMU itself: the same machine runs the guest again with ``-d cpu,in_asm`` filtered to that
store's pc; ``in_asm`` gives the store's encoding, the register dump before it gives the base
and source registers.  The first execution of that pc whose effective address is the store's
logged VA is the guest's finisher write (QEMU runs the guest deterministically).
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path

from difftest.backends import proc
from difftest.backends.qemu_cpu import parse_cpu_log

ABI = ["zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1", "a0", "a1", "a2", "a3", "a4", "a5", "a6",
       "a7", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "t3", "t4", "t5", "t6"]
_IN_ASM = re.compile(r"^0x0*([0-9a-f]+):\s+([0-9a-f]{4}|[0-9a-f]{8})\s")
PASS, FAIL = 0x5555, 0x3333

_M64 = (1 << 64) - 1


def _sext(v: int, bits: int) -> int:
    return v - (1 << bits) if v & (1 << (bits - 1)) else v


def decode_store(word: int, length: int):
    """(rs1, rs2, imm, width) of a store encoding (RV64 S-type or C.SW/C.SD/C.SWSP/C.SDSP), else None."""
    if length == 4:
        if word & 0x7F != 0x23:
            return None
        f3 = (word >> 12) & 7
        if f3 > 3:
            return None
        imm = _sext(((word >> 25) << 5) | ((word >> 7) & 0x1F), 12)
        return (word >> 15) & 31, (word >> 20) & 31, imm, 1 << f3
    op, f3 = word & 3, (word >> 13) & 7
    if op == 0 and f3 in (6, 7):          # C.SW / C.SD
        rs1, rs2 = ((word >> 7) & 7) + 8, ((word >> 2) & 7) + 8
        if f3 == 6:
            imm = ((word >> 10) & 7) << 3 | ((word >> 6) & 1) << 2 | ((word >> 5) & 1) << 6
            return rs1, rs2, imm, 4
        return rs1, rs2, ((word >> 10) & 7) << 3 | ((word >> 5) & 3) << 6, 8
    if op == 2 and f3 in (6, 7):          # C.SWSP / C.SDSP
        rs2 = (word >> 2) & 31
        if f3 == 6:
            return 2, rs2, ((word >> 9) & 0xF) << 2 | ((word >> 7) & 3) << 6, 4
        return 2, rs2, ((word >> 10) & 7) << 3 | ((word >> 7) & 7) << 6, 8
    return None


def exit_code_of(value: int):
    """What the sifive_test device does with a 32-bit write: 0x5555 -> 0, (code << 16) | 0x3333 ->
    code (all 16 bits); anything else (reset 0x7777, an unknown value) ends nothing: None."""
    status, code = value & 0xFFFF, (value >> 16) & 0xFFFF
    return 0 if status == PASS else code if status == FAIL else None


def _reg(dump: dict, r: int):
    return 0 if r == 0 else dump.get(ABI[r], dump.get("fp") if r == 8 else None)


def value_from_log(lines, pc: int, va: int):
    """The 32-bit value the first store at ``pc`` to ``va`` wrote, from a ``-d cpu,in_asm`` log
    filtered to ``pc``; None when the log does not show it.  ``va`` None: the last execution of
    ``pc`` (QEMU 7.2 exits inside the finisher write, so the plugin backend knows the store as the
    last instruction QEMU ran, but not its address)."""
    words: set[tuple[int, int]] = set()

    def tap():
        for ln in lines:
            m = _IN_ASM.match(ln)
            if m and int(m.group(1), 16) == pc:
                words.add((int(m.group(2), 16), len(m.group(2)) // 2))
            yield ln
    last = None
    for d in parse_cpu_log(tap()):
        if d.get("pc") != pc or len(words) != 1:
            continue
        dec = decode_store(*next(iter(words)))
        if dec is None:
            return None
        rs1, rs2, imm, width = dec
        base, val = _reg(d, rs1), _reg(d, rs2)
        if base is None or val is None:
            return None
        if va is None:
            last = val & ((1 << (8 * min(width, 4))) - 1)
        elif (base + imm) & _M64 == va:
            return val & ((1 << (8 * min(width, 4))) - 1)
    return last


def read_value(cmd_without_log: list[str], env: dict, pc: int, va: int, work: Path, deadline: float):
    """Runs the guest again under QEMU, logging only at ``pc``; the finisher value or None, and why not."""
    log = work / "finisher.log"
    cmd = cmd_without_log + ["-serial", "null", "-d", "cpu,in_asm,nochain", "-dfilter", f"{pc:#x}+4", "-D", str(log)]
    left = deadline - time.monotonic()
    if left <= 0:
        return None, "no time left within --timeout to read the finisher write"
    try:
        proc.run(cmd, timeout=left, stdin=proc.subprocess.DEVNULL, stdout=proc.subprocess.DEVNULL,
                 stderr=proc.subprocess.DEVNULL, env={**os.environ, **env})
    except OSError as e:
        return None, f"cannot run QEMU again to read the finisher write: {e}"
    try:
        with open(log, errors="replace") as f:
            v = value_from_log(f, pc, va)
    except OSError:
        return None, "the run that reads the finisher write wrote no log"
    return v, "" if v is not None else f"the finisher store at {pc:#x} is not in QEMU's -d cpu,in_asm log"
