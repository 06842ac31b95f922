"""RISC-V semihosting's exit calls: a program that ends with SYS_EXIT / SYS_EXIT_EXTENDED.

The RISC-V semihosting spec (riscv-non-isa/riscv-semihosting, "semihosting trap"): an EBREAK is a
semihosting call when it is the middle of the uncompressed sequence ``slli x0, x0, 0x1f`` (0x01f01013),
``ebreak`` (0x00100073), ``srai x0, x0, 7`` (0x40705013), all three in one page; a0 holds the
operation and a1 its parameter (the Arm semihosting operations).  For SYS_EXIT (0x18) and
SYS_EXIT_EXTENDED (0x20) on a 64-bit target a1 points to two doublewords: the reason and a subcode;
reason ADP_Stopped_ApplicationExit (0x20026) is a normal exit with the subcode as its status.

Only the exit calls end a run here; any other operation (console output, files) is not modelled and
stops the model with an error, never silently.  Semihosting is a debugger/host facility, so where it
applies is the host's choice: QEMU (``-semihosting-config enable=on``, measured on 7.2 and 10.0)
serves calls from M and S/HS/VS, not from U/VU, and exits with the subcode for
ADP_Stopped_ApplicationExit and 1 for any other reason -- the model ends the same way.
"""
from __future__ import annotations

PRE, EBREAK, POST = 0x01F01013, 0x00100073, 0x40705013
SYS_EXIT, SYS_EXIT_EXTENDED = 0x18, 0x20
ADP_STOPPED_APPLICATION_EXIT = 0x20026


class SemihostingError(Exception):
    """A semihosting call the model does not serve."""


def exit_code_of(reason: int, subcode: int) -> int:
    """The program's exit code for an exit call's parameter block."""
    return subcode if reason == ADP_STOPPED_APPLICATION_EXIT else 1


def is_call(read_insn, pc: int) -> bool:
    """Whether the EBREAK at ``pc`` is a semihosting call: ``read_insn(va)`` reads a 32-bit word of
    the code (or None where it cannot); the sequence must not cross a page."""
    if (pc - 4) >> 12 != pc >> 12 or (pc + 4) >> 12 != pc >> 12:
        return False
    return read_insn(pc - 4) == PRE and read_insn(pc + 4) == POST


def call(hart, pc: int) -> bool:
    """Serve the EBREAK at ``pc`` if it is a semihosting exit call in a mode that may make one:
    the hart halts with end "semihosting".  False: an ordinary EBREAK (a breakpoint exception)."""
    if not getattr(hart.profile, "semihosting", False) or hart.priv == 0:
        return False

    def read(va: int, size: int = 4):
        try:
            t = hart.translate(va, "fetch" if size == 4 else "load", hart.priv, hart.v, record_walk=False)
        except Exception:       # noqa: BLE001 -- no translation: not a semihosting call
            return None
        if getattr(t, "fault", None) is not None or t.pa is None:
            return None
        try:
            return hart.mem.read(t.pa, size)
        except Exception:       # noqa: BLE001 -- a bus error: not readable
            return None

    if not is_call(read, pc):
        return False
    op, arg = hart.x[10], hart.x[11]
    if op not in (SYS_EXIT, SYS_EXIT_EXTENDED):
        raise SemihostingError(f"semihosting call {op:#x} at {pc:#x} is not modelled (only SYS_EXIT and "
                               f"SYS_EXIT_EXTENDED end a run)")
    reason, subcode = read(arg, 8), read(arg + 8, 8)
    if reason is None or subcode is None:
        raise SemihostingError(f"semihosting exit call at {pc:#x}: its parameter block at {arg:#x} cannot be read")
    hart.mem.finisher.semihosting_exit(exit_code_of(reason, subcode))
    return True
