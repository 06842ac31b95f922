"""Programs that end with a semihosting exit call (refmodel/semihosting.py), on the QEMU side.

QEMU runs with ``-semihosting-config enable=on,target=native`` (refmodel/platform.py) and serves
SYS_EXIT / SYS_EXIT_EXTENDED by exiting with the subcode -- as a process status, so only its low 8
bits survive (668 ends as status 156, which looks like "killed by signal 28").  So when QEMU exited
by itself with the last step at an EBREAK that is not a finisher write, the guest runs again under the
gdbstub with a breakpoint there: at each stop a0, a1, the words around the EBREAK and the parameter
block a1 points to are read; the last stop before QEMU exits is the exit call, and its block gives the
full exit code (refmodel.semihosting.exit_code_of), checked against QEMU's status.
"""
from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

from difftest.backends import gdbstub, proc
from refmodel import semihosting as S


def end_of(cmd: list[str], env: dict, rc, last_pc, work: Path, deadline: float, stats: dict):
    """The semihosting exit call that ended a QEMU run, or None: only asked when QEMU exited by
    itself (``rc`` >= 0) without a finisher write and its last step is known (``last_pc``).
    ``stats["semihosting_why"]`` says why not, when a call was looked for."""
    if rc is None or rc < 0 or last_pc is None:
        return None
    call, why = read_exit(cmd, env, last_pc, work, deadline - time.monotonic())
    if call is None:
        stats["semihosting_why"] = why
    return call


def classify(call: dict, rc: int) -> tuple[str, str, int | None]:
    """(status, message, exit_code) of a run QEMU ended with status ``rc`` at semihosting ``call``."""
    if call["code"] & 0xFF != rc:
        return "error", (f"QEMU exited with status {rc}, but the guest's semihosting exit call asks for "
                         f"{call['code']} (reason {call['reason']:#x}, subcode {call['subcode']})"), None
    return "exit", "", call["code"]


def _mem(rsp, addr: int, n: int):
    r = rsp.cmd(f"m{addr:x},{n:x}")
    return None if not r or r.startswith("E") or len(r) != 2 * n else bytes.fromhex(r)


def read_exit(cmd: list[str], env: dict, pc: int, work: Path, timeout: float):
    """(call or None, why not): call = {"op", "reason", "subcode", "code"} of the semihosting exit call
    QEMU made at ``pc`` (its last stop there before it exited)."""
    sock = work / "semihosting-gdb.sock"
    deadline = time.monotonic() + max(timeout, 0.5)
    try:
        p = proc.popen(cmd + ["-serial", "null", "-S", "-chardev", f"socket,id=gdb0,path={sock},server=on,wait=off",
                              "-gdb", "chardev:gdb0"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, env={**os.environ, **env})
    except OSError as e:
        return None, f"cannot run QEMU again to read the semihosting call: {e}"
    rsp, last = None, None
    try:
        rsp = gdbstub.connect(p, sock, deadline)
        nums = gdbstub.register_numbers(rsp)
        if rsp.cmd(f"Z0,{pc:x},4") != "OK":
            return None, f"cannot set a breakpoint at {pc:#x}"
        while time.monotonic() < deadline:
            rsp.sock.settimeout(max(0.5, deadline - time.monotonic()))
            r = rsp.cmd("c")
            if not r.startswith("T"):
                break                                   # QEMU exited
            regs = {}
            for name in ("a0", "a1"):
                v = rsp.cmd(f"p{nums[name]:x}") if name in nums else ""
                regs[name] = int.from_bytes(bytes.fromhex(v), "little") if v and not v.startswith("E") else None
            words = _mem(rsp, pc - 4, 12)
            block = _mem(rsp, regs["a1"], 16) if regs["a1"] is not None else None
            last = (regs, words, block)
            rsp.cmd(f"z0,{pc:x},4")
            r = rsp.cmd("s")                            # the call itself: an exit call ends QEMU here
            if not r.startswith("T"):
                break
            rsp.cmd(f"Z0,{pc:x},4")
    except (gdbstub.GdbError, OSError, EOFError, ValueError, socket.timeout):
        pass                                            # QEMU exiting closes the socket
    finally:
        if rsp is not None:
            rsp.close()
        proc.kill(p)
    if last is None:
        return None, f"QEMU never stopped at the EBREAK at {pc:#x} when run again"
    regs, words, block = last
    if words is None or [int.from_bytes(words[k:k + 4], "little") for k in (0, 4, 8)] != [S.PRE, S.EBREAK, S.POST]:
        return None, f"the EBREAK at {pc:#x} is not a semihosting call"
    if regs["a0"] not in (S.SYS_EXIT, S.SYS_EXIT_EXTENDED) or block is None:
        return None, f"the last semihosting call at {pc:#x} (a0={regs['a0']}) is not an exit call with a readable block"
    reason, subcode = int.from_bytes(block[:8], "little"), int.from_bytes(block[8:], "little")
    return {"op": regs["a0"], "reason": reason, "subcode": subcode, "code": S.exit_code_of(reason, subcode)}, ""
