"""Programs that end in a final WFI, on the QEMU side (the end "wfi"; README "Programs that end
their own way").

A bare-metal program often halts with ``1: wfi; j 1b`` and no interrupt enabled.  Priv. 3.3.3: the
hart then waits for "a locally enabled interrupt" to become pending, which on this one-hart machine
can never happen (refmodel.interrupts.wfi_never_resumes): the program has ended, without a pass/fail
value.  QEMU, though, sleeps there for ever.  So a QEMU run of an ELF that holds WFI instructions is
driven through its gdbstub (difftest/backends/tohost.py's Watch, the one program-end watcher) with a
breakpoint on each of them (``wfi_pcs``: every 0x10500073 in the executable sections).  At a stop
there, ``at_wfi`` decides by the spec's rule -- the model's own function -- on mip and mie read from
QEMU, not by how long QEMU has been idle:

* the rule says the WFI may resume (something enabled is pending, or the timer is enabled): the
  breakpoint is stepped over as gdb does (QEMU waits for its timer under -icount, sleep=off, and
  goes on) and the run continues;
* the rule says it never resumes: QEMU executes the WFI (a single step, so the log and the plugin
  record it as a step -- the model records the WFI too) and must then be *halted in it*: the step
  never completes, and an interrupt request (^C) finds pc just past the WFI.  Only then is it the
  end; QEMU is stopped.  If the step completes instead (the WFI trapped: mstatus.TW, hstatus.VTW,
  U-mode -- which the rule cannot see -- or QEMU resumed), QEMU went on: the run continues, and if
  the model ended there the comparison shows the runs parting.

The polling below only waits for QEMU to reach the halted state the rule already predicted; a QEMU
that does not halt is never taken for one that did.
"""
from __future__ import annotations

import socket
import time
from pathlib import Path

from refmodel.interrupts import wfi_never_resumes

WFI = 0x10500073          # Priv. 3.3.3: WFI (SYSTEM, funct12 0x105); no compressed form
SHF_EXECINSTR = 0x4
# The footer message of a run that ended so: an end, but no pass/fail value (exit_code None, never 0)
ENDED = "ended in a WFI that no interrupt can end (Priv. 3.3.3): the program gave no exit code"
FIRST_POLL = 0.02         # seconds before the first look at whether QEMU halted in the WFI


def wfi_pcs(elf: Path) -> frozenset[int]:
    """The addresses of every WFI encoding in the ELF's executable sections (2-byte aligned, as
    instructions are with C).  A match inside data or across two instructions is never executed
    at that address, so its breakpoint never fires.  Empty for an ELF elftools cannot read."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile
    out = set()
    try:
        with open(elf, "rb") as f:
            for s in ELFFile(f).iter_sections():
                if not s["sh_flags"] & SHF_EXECINSTR or s["sh_type"] != "SHT_PROGBITS":
                    continue
                data, base = s.data(), s["sh_addr"]
                k = data.find(WFI.to_bytes(4, "little"))
                while k >= 0:
                    if not k & 1:
                        out.add(base + k)
                    k = data.find(WFI.to_bytes(4, "little"), k + 1)
    except (OSError, ELFError, ValueError):
        return frozenset()
    return frozenset(out)


def read_reg(rsp, nums: dict, name: str):
    """Register ``name`` (from gdbstub.register_numbers) through the stub, or None."""
    if name not in nums:
        return None
    v = rsp.cmd(f"p{nums[name]:x}")
    if not v or v.startswith("E") or len(v) % 2:
        return None
    return int.from_bytes(bytes.fromhex(v), "little")


class AtWfi:
    """What happened at one stop on a WFI: ``ended`` (QEMU is halted in a WFI that never resumes,
    and stays stopped), ``mip``/``mie`` as read there, ``error`` when the stub did not cooperate."""

    def __init__(self):
        self.ended = False
        self.mip: int | None = None
        self.mie: int | None = None
        self.error = ""


def at_wfi(rsp, nums: dict, pc: int, deadline: float) -> AtWfi:
    """At a breakpoint stop on the WFI at ``pc`` (the breakpoint still in place): decide the end and
    leave QEMU stopped -- either halted in the WFI for good (``ended``) or after the WFI, with the
    breakpoint back in place, ready to be continued."""
    res = AtWfi()
    res.mip, res.mie = read_reg(rsp, nums, "mip"), read_reg(rsp, nums, "mie")
    if res.mip is None or res.mie is None:
        res.error = f"cannot read mip/mie at the WFI at {pc:#x} through the gdbstub"
        return res
    if rsp.cmd(f"z0,{pc:x},4") != "OK":
        res.error = f"cannot remove the breakpoint at the WFI at {pc:#x}"
        return res
    if not wfi_never_resumes(res.mip, res.mie):
        # the timer (or a pending interrupt) ends the wait: step over it as gdb does
        rsp.sock.settimeout(max(0.5, deadline - time.monotonic()))
        r = rsp.cmd("s")
        if not r.startswith("T"):
            res.error = f"QEMU went away stepping the WFI at {pc:#x}"
            return res
    else:
        halted = _halts(rsp, nums, pc, deadline)
        if halted is None:
            res.error = f"cannot tell whether QEMU halted in the WFI at {pc:#x}"
            return res
        if halted:
            res.ended = True
            return res
    if rsp.cmd(f"Z0,{pc:x},4") != "OK":
        res.error = f"cannot put the breakpoint back on the WFI at {pc:#x}"
    return res


def _halts(rsp, nums: dict, pc: int, deadline: float) -> bool | None:
    """Single-steps the WFI at ``pc`` (no breakpoint there): True when QEMU executed it and halted
    (the step does not complete; stopped by ^C, pc is past the WFI), False when the step completed
    (a trap, or the hart resumed: QEMU went on), None when the stub does not answer."""
    wait = FIRST_POLL
    rsp._send("s")
    while time.monotonic() < deadline:
        try:
            rsp.sock.settimeout(wait)
            rsp._recv()
            return False                           # the step completed: not halted
        except socket.timeout:
            pass
        rsp.sock.sendall(b"\x03")                  # stop the VM and look
        rsp.sock.settimeout(max(0.5, deadline - time.monotonic()))
        r = rsp._recv()
        now = read_reg(rsp, nums, "pc")
        if r.startswith("T02") and now == pc + 4:
            return True                            # executed, and waiting in it
        if now != pc:
            return False                           # the step completed as ^C arrived
        wait = min(wait * 2, 1.0)                  # not executed yet (a loaded machine): again
        rsp._send("s")
    return None
