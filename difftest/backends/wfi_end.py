"""Programs that end in a final WFI, on the QEMU side (the end "wfi"; README "Programs that end
their own way").

A bare-metal program often halts with ``1: wfi; j 1b`` and no interrupt enabled.  Priv. 3.3.3: the
hart then waits for "a locally enabled interrupt" to become pending, which on this one-hart machine
can never happen (refmodel.interrupts.wfi_never_resumes): the program has ended, without a pass/fail
value.  QEMU, though, sleeps there for ever.  So a QEMU run of an ELF that holds WFI instructions
(``wfi_pcs``: every 0x10500073 in its executable sections, found with pyelftools) runs under its
gdbstub (difftest/backends/tohost.py's Watch, the one program-end watcher; ``cont`` here), and the
end is decided by the spec's rule -- the model's own function -- on QEMU's state:

* QEMU is stopped (^C) and found *halted after a WFI*: pc is just past a WFI encoding (QEMU advances
  pc before it halts, measured on 7.2 and 10.0) and its log holds that WFI as its last step, so the
  WFI is a step on both sides (the model records it too);
* mip and mie read from QEMU there say no locally enabled interrupt is pending and none can become
  pending (``wfi_never_resumes``).

Both hold: the end "wfi", QEMU is stopped.  Otherwise QEMU is continued and nothing is recorded.
When to look is the only thing time decides: QEMU is stopped to look only once it has used no CPU
for IDLE seconds (under ``-icount sleep=off`` a hart waiting for its timer jumps to the deadline at
once, so only a hart that nothing can wake sits idle).  A look at a QEMU that is merely slow finds
no halted WFI and continues it; a QEMU that keeps running is never taken for an ended one.

Why not breakpoints on the WFIs (tried, measured on guests/interrupts): stepping off a breakpoint
on a WFI that the timer ends changes the run -- QEMU's default single step masks interrupts (the
hart woke and ran on without the timer interrupt: a false divergence), and a single step with
interrupts on (``Qqemu.sstep=1``) never completed on 7.2 or 10.0.  A stop at a halted WFI changes
nothing: under -icount the virtual clock stands while the VM is stopped.
"""
from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from refmodel.interrupts import wfi_never_resumes

WFI = 0x10500073          # Priv. 3.3.3: WFI (SYSTEM, funct12 0x105); no compressed form
SHF_EXECINSTR = 0x4
# The footer message of a run that ended so: an end, but no pass/fail value (exit_code None, never 0)
ENDED = "ended in a WFI that no interrupt can end (Priv. 3.3.3): the program gave no exit code"
IDLE = 0.25               # seconds without QEMU CPU time before it is stopped and looked at
POLL = 0.05


def wfi_pcs(elf: Path) -> frozenset[int]:
    """The addresses of every WFI encoding in the ELF's executable sections (2-byte aligned, as
    instructions are with C); empty for an ELF elftools cannot read.  A program without one cannot
    end in a WFI of its own, so its runs need no watch for it."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile
    word = WFI.to_bytes(4, "little")
    out = set()
    try:
        with open(elf, "rb") as f:
            for sec in ELFFile(f).iter_sections():
                if not sec["sh_flags"] & SHF_EXECINSTR or sec["sh_type"] != "SHT_PROGBITS":
                    continue
                data, base = sec.data(), sec["sh_addr"]
                k = data.find(word)
                while k >= 0:
                    if not k & 1:
                        out.add(base + k)
                    k = data.find(word, k + 1)
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


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process ``pid`` (all its threads), or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def ended_here(rsp, nums: dict) -> dict | None:
    """At a stop of QEMU (the VM stopped): {"pc", "mip", "mie"} when the hart is halted after a
    WFI that can never resume (the program's end), else None."""
    pc = read_reg(rsp, nums, "pc")
    if pc is None or pc < 4:
        return None
    m = rsp.cmd(f"m{pc - 4:x},4")
    if not m or m.startswith("E") or len(m) != 8 or int.from_bytes(bytes.fromhex(m), "little") != WFI:
        return None
    mip, mie = read_reg(rsp, nums, "mip"), read_reg(rsp, nums, "mie")
    if mip is None or mie is None or not wfi_never_resumes(mip, mie):
        return None
    return {"pc": pc - 4, "mip": mip, "mie": mie}


def cont(rsp, nums: dict, pid: int, deadline: float, watch_wfi: bool = True):
    """Continue QEMU and wait for its next stop: ("stop", reply) -- a breakpoint, a watchpoint, or
    W/X when QEMU exited --, or ("wfi", {"pc", "mip", "mie"}) when it halted in a final WFI (then
    it stays stopped).  Raises socket.timeout at ``deadline``; EOFError/OSError when QEMU went away."""
    rsp._send("c")
    cpu0, since = cpu_seconds(pid), time.monotonic()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("no stop before the deadline")
        try:
            rsp.sock.settimeout(min(POLL, left) if watch_wfi else left)
            return "stop", rsp._recv()
        except socket.timeout:
            if not watch_wfi:
                continue                           # only the deadline ends the wait
        cpu = cpu_seconds(pid)
        if cpu is None or cpu0 is None:
            raise EOFError("QEMU exited")
        if time.monotonic() - since < IDLE:
            continue
        if cpu - cpu0 > IDLE / 10:                 # it ran: a new window
            cpu0, since = cpu, time.monotonic()
            continue
        rsp.sock.sendall(b"\x03")                  # idle: stop the VM and look
        rsp.sock.settimeout(max(0.5, deadline - time.monotonic()))
        r = rsp._recv()
        if not r.startswith("T02"):
            return "stop", r                       # it stopped by itself as ^C arrived
        end = ended_here(rsp, nums)
        if end is not None:
            return "wfi", end
        rsp._send("c")                             # not an end: on it goes
        cpu0, since = cpu_seconds(pid), time.monotonic()
