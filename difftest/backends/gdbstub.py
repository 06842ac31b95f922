"""A minimal GDB remote-serial-protocol client for QEMU's gdbstub: read CSRs at breakpoints.

Used by the trap-detail pass for the one trap-entry value neither ``-d int`` nor ``-d cpu`` prints:
htinst/mtinst (H "Transformed Instruction or Pseudoinstruction").  QEMU is started halted (``-S``)
with its gdbstub on a Unix socket in a private directory (no TCP port to race for); the client
reads the register map from ``qXfer:features:read`` (QEMU numbers its CSRs in ``riscv-csr.xml``),
puts a breakpoint on each trap handler's entry, and at every stop reads the registers asked for.
Packets: ``$payload#checksum``; acknowledgements are sent until ``QStartNoAckMode`` is accepted.
"""
from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from pathlib import Path

from difftest.backends import proc

_REG = re.compile(r"<reg\s+([^>]*)/?>")
_ATTR = re.compile(r'(\w+)="([^"]*)"')


class GdbError(Exception):
    """The stub did not answer as expected (or QEMU went away early)."""


class Rsp:
    def __init__(self, path: Path, timeout: float):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(str(path))
        self.buf = b""
        self.ack = True

    def _send(self, payload: str) -> None:
        data = payload.encode()
        self.sock.sendall(b"$" + data + b"#%02x" % (sum(data) & 0xFF))

    def _recv(self) -> str:
        while True:
            i = self.buf.find(b"$")
            if i >= 0:
                j = self.buf.find(b"#", i)
                if j >= 0 and len(self.buf) >= j + 3:
                    payload, self.buf = self.buf[i + 1:j], self.buf[j + 3:]
                    if self.ack:
                        self.sock.sendall(b"+")
                    return payload.decode("latin-1")
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("gdbstub closed the connection")
            self.buf += data

    def cmd(self, payload: str) -> str:
        self._send(payload)
        return self._recv()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def register_numbers(rsp: Rsp) -> dict[str, int]:
    """Register name -> number, from target.xml and the files it includes."""
    def xfer(name: str) -> str:
        out, off = "", 0
        while True:
            r = rsp.cmd(f"qXfer:features:read:{name}:{off:x},ffb")
            if not r or r[0] not in "ml":
                raise GdbError(f"qXfer {name}: {r!r}")
            out += r[1:]
            off += len(r) - 1
            if r[0] == "l":
                return out
    nums: dict[str, int] = {}
    n = 0
    top = xfer("target.xml")
    for inc in re.findall(r'href="([^"]+)"', top) or ["target.xml"]:
        for m in _REG.finditer(xfer(inc) if inc != "target.xml" else top):
            a = dict(_ATTR.findall(m.group(1)))
            if "regnum" in a:
                n = int(a["regnum"])
            nums[a.get("name", "")] = n
            n += 1
    return nums


def connect(p: subprocess.Popen, sock: Path, deadline: float) -> Rsp:
    """The stub of QEMU ``p`` (started with -S and its gdbstub on ``sock``), connected, without acks."""
    while not sock.exists():
        if proc.exited(p) or time.monotonic() > deadline:
            raise GdbError("QEMU did not open its gdbstub socket")
        time.sleep(0.01)
    while True:
        # the socket file appears at bind(), a moment before QEMU listens on it: a refused
        # connection then is a race, not a broken stub (seen on a loaded machine)
        try:
            rsp = Rsp(sock, max(1.0, deadline - time.monotonic()))
            break
        except ConnectionRefusedError:
            if proc.exited(p) or time.monotonic() > deadline:
                raise GdbError("QEMU's gdbstub refused the connection") from None
            time.sleep(0.01)
    rsp.cmd("qSupported:swbreak+;hwbreak+")
    if rsp.cmd("QStartNoAckMode") == "OK":
        rsp.ack = False
    return rsp


def read_at(cmd: list[str], env: dict, pcs: set[int], names: tuple[str, ...], work: Path,
            timeout: float, tohost: int | tuple | None = None, wfis: frozenset = frozenset()) -> list[dict]:
    """Runs ``cmd`` (QEMU without -S/-gdb/-serial) under the gdbstub and returns, for every stop at
    one of ``pcs`` in order, {"pc": ..., name: value, ...} for the registers ``names`` (missing
    ones left out).  Ends when the guest exits -- or, with ``tohost`` (the PA of a tohost program's
    doubleword, or it and its aliases: difftest/backends/tohost.py), when a write watchpoint there finds it non-zero, or
    with ``wfis`` (the main run ended in a final WFI), when QEMU halts in one for good
    (difftest/backends/wfi_end.py); raises GdbError if the stub cannot be used."""
    sock = work / "gdb.sock"
    # QEMU 7.2 under -icount with sleep=off stops answering after the first continue from a
    # breakpoint (measured on guest interrupts: 1 stop, then none for 30 s); sleep=on runs it through
    # (22 stops, 0.2 s).  Safe: a stop is used only when its pc, cause and epc match the main run's
    # trap (trap_detail._tinst), so a run that went elsewhere leaves values unread, never wrong.
    cmd = [a.replace("sleep=off", "sleep=on") for a in cmd]
    full = cmd + ["-serial", "null", "-S", "-chardev", f"socket,id=gdb0,path={sock},server=on,wait=off",
                  "-gdb", "chardev:gdb0"]
    p = proc.popen(full, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={**os.environ, **env})
    deadline = time.monotonic() + timeout
    rsp = None
    try:
        rsp = connect(p, sock, deadline)
        nums = register_numbers(rsp)
        want = {n: nums[n] for n in ("pc",) + names if n in nums}
        for pc in sorted(pcs):
            if rsp.cmd(f"Z0,{pc:x},4") != "OK":
                raise GdbError(f"cannot set a breakpoint at {pc:#x}")
        from difftest.backends import tohost as T
        watched = T.addrs(tohost) if tohost is not None else ()
        if any(rsp.cmd(f"Z2,{a:x},8") != "OK" for a in watched):
            raise GdbError("cannot set a write watchpoint on tohost")
        from difftest.backends import wfi_end
        stops = []
        while True:
            if time.monotonic() > deadline:
                raise GdbError(f"gave up after {timeout:g} s ({len(stops)} stops)")
            try:
                how, r = wfi_end.cont(rsp, nums, p.pid, deadline, watch_wfi=bool(wfis))
                if how == "wfi":
                    break                    # halted in the final WFI: the program's end
            except socket.timeout:
                raise GdbError(f"no stop within {timeout:g} s ({len(stops)} stops)") from None
            except (EOFError, OSError):
                break                        # QEMU exited (the finisher) and closed the socket
            if not r.startswith("T"):
                break                        # W/X: the guest exited
            if watched and "watch:" in r:
                if T.step_over_store(rsp, T.hit(r, watched)) != 0:
                    break                    # the program ended (or tohost cannot be read: stop here)
                continue
            d = {}
            for name, num in want.items():
                v = rsp.cmd(f"p{num:x}")
                if v and not v.startswith("E") and len(v) % 2 == 0:
                    d[name] = int.from_bytes(bytes.fromhex(v), "little")
            stops.append(d)
            # step off the breakpoint as gdb does (remove, single-step, re-insert): continuing from
            # it would stop at once again
            pc = d.get("pc")
            if pc in pcs:
                rsp.cmd(f"z0,{pc:x},4")
                try:
                    r = rsp.cmd("s")
                except (EOFError, OSError):
                    break
                if not r.startswith("T"):
                    break
                rsp.cmd(f"Z0,{pc:x},4")
        return stops
    except (OSError, EOFError, ValueError) as e:
        raise GdbError(str(e)) from None
    finally:
        if rsp is not None:
            rsp.close()
        proc.kill(p)
