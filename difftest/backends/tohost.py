"""Programs that end their own way on QEMU: through ``tohost`` (the riscv-tests convention), for QEMU
runs that cannot see the stored value themselves (the log source, and the re-runs of the trap-detail
and gdbstub passes), and in a final WFI (difftest/backends/wfi_end.py, decided by the same Watch).

Such a program writes a non-zero value to its ``tohost`` doubleword and then spins: QEMU never exits
by itself.  So the run is started halted (``-S``) with its gdbstub on a private Unix socket, a write
watchpoint (``Z2``) is set on tohost and the guest continued; at each watchpoint stop the doubleword
is read (``m``), and the first non-zero value ends the run: it is recorded and QEMU is stopped
(SIGTERM: QEMU flushes its log).

A gdbstub watchpoint matches *virtual* addresses (QEMU checks it against the access's VA), and the
ELF's tohost symbol is a physical address: a program that writes tohost through another virtual
address (riscv-tests' `v` environment: its kernel's high mapping) is never stopped.  So the log
source reads its run's TLB fills as they are logged (``AliasScan``): a fill of tohost's page through
another VA stops the run, and QEMU runs again from the start (deterministic under -icount) watching
tohost's address and every such alias (``addrs``); at a stop the value is read through the address
that fired.  QEMU reports a write watchpoint after the QEMU (7.2 and 10.0, measured) stops *before* the store: the watchpoint is removed, the store
single-stepped, the doubleword read and the watchpoint put back, as gdb does.  The log then holds
the store and nothing after it; with ``-d exec`` the store's exec line is logged twice (the
attempt abandoned at the watchpoint, then the step) -- ``drop_replayed_store`` removes one.
"""
from __future__ import annotations

import re
import socket
import subprocess
import threading
import time
from pathlib import Path

from difftest.backends import gdbstub, proc, wfi_end


def gdb_options(sock: Path) -> list[str]:
    return ["-S", "-chardev", f"socket,id=gdb0,path={sock},server=on,wait=off", "-gdb", "chardev:gdb0"]


def addrs(tohost) -> tuple[int, ...]:
    """The addresses to watch: tohost's own (its PA, the VA too while translation is off or 1:1),
    then its aliases (``AliasScan``); none for None (no tohost)."""
    if tohost is None:
        return ()
    return tuple(tohost) if isinstance(tohost, (tuple, list)) else (tohost,)


def hit(reply: str, watched: tuple[int, ...]) -> int:
    """The watched address a stop reply ("T05watch:ADDR;...") names; the first one otherwise."""
    m = re.search(r"watch:([0-9a-fA-F]+)", reply)
    a = int(m.group(1), 16) if m else None
    return a if a in watched else watched[0]


_FILL = re.compile(rb"^riscv_cpu_tlb_fill ad ([0-9a-f]+) rw \d+ mmu_idx \d+", re.M)
_DONE = re.compile(rb"^riscv_cpu_tlb_fill (?:2nd-stage |)address=[0-9a-f]+ ret 0 physical ([0-9a-f]+)", re.M)


class AliasScan:
    """Reads a -d mmu log chunk by chunk (whole lines): the virtual addresses, other than tohost's
    own, through which a successful TLB fill reached tohost's page (one stage: ``address=VA ...
    physical PA``; two stages: the ``2nd-stage`` line's SPA; qemu_log.py), as the same offset in
    that VA page.  ``found``: those seen so far, other than the ``known`` ones (watched already: a
    run that watches an alias sees its fill again, before the store the watch stops at)."""

    def __init__(self, tohost: int, known: tuple = ()):
        self.tohost = tohost
        self.known = set(known)
        self.found: list[int] = []
        self._va = None                     # the fill line last seen (its result line may come in the next chunk)

    def feed(self, whole: bytes) -> bool:
        """True when this chunk showed a new alias."""
        new = False
        events = sorted([(m.start(), "va", int(m.group(1), 16)) for m in _FILL.finditer(whole)]
                        + [(m.start(), "pa", int(m.group(1), 16)) for m in _DONE.finditer(whole)])
        for _, kind, value in events:
            if kind == "va":
                self._va = value
            elif self._va is not None and value >> 12 == self.tohost >> 12:
                alias = (self._va & ~0xFFF) | (self.tohost & 0xFFF)
                if alias != self.tohost and alias not in self.found and alias not in self.known:
                    self.found.append(alias)
                    new = True
        return new


def step_over_store(rsp, tohost: int):
    """At a watchpoint stop (QEMU stops before the store: measured on 7.2 and 10.0): remove the
    watchpoint, single-step the store, read the doubleword, put the watchpoint back.  The value, or
    None when the stub does not cooperate."""
    if rsp.cmd(f"z2,{tohost:x},8") != "OK":
        return None
    r = rsp.cmd("s")
    if not r.startswith("T"):
        return None
    m = rsp.cmd(f"m{tohost:x},8")
    if not m or m.startswith("E"):
        return None
    v = int.from_bytes(bytes.fromhex(m), "little")
    if not v and rsp.cmd(f"Z2,{tohost:x},8") != "OK":
        return None
    return v


class Watch(threading.Thread):
    """The program-end watcher: drives a QEMU started with ``gdb_options`` until the program ends
    its own way, then stops it -- a non-zero write to ``tohost`` (an address, a tuple of them:
    ``addrs``; None: no tohost) or, when the ELF
    holds WFIs (``wfis``), a final WFI (difftest/backends/wfi_end.py).  Once joined:
    ``value`` (the tohost doubleword) or ``end == "wfi"`` (with ``wfi`` = {"pc", "mip", "mie"}),
    ``pc`` (where the guest stopped), or ``error``; none of them when QEMU exited (or was stopped)
    first."""

    def __init__(self, p: subprocess.Popen, sock: Path, tohost: int | tuple | None, deadline: float,
                 wfis: frozenset = frozenset()):
        super().__init__(daemon=True)
        self.p, self.sock, self.tohost, self.deadline, self.wfis = p, sock, tohost, deadline, wfis
        self.value: int | None = None
        self.pc: int | None = None
        self.end = ""
        self.wfi: dict | None = None
        self.error = ""

    def _fail(self, message: str) -> None:
        self.error = message
        proc.stop(self.p)

    def run(self) -> None:
        rsp = None
        try:
            rsp = gdbstub.connect(self.p, self.sock, self.deadline)
            nums = gdbstub.register_numbers(rsp)
            watched = addrs(self.tohost)
            if any(rsp.cmd(f"Z2,{a:x},8") != "OK" for a in watched):
                return self._fail("QEMU's gdbstub refused a write watchpoint on tohost")
            while True:
                how, r = wfi_end.cont(rsp, nums, self.p.pid, self.deadline, watch_wfi=bool(self.wfis))
                if how == "wfi":
                    self.end, self.pc, self.wfi = "wfi", r["pc"] + 4, r
                    proc.stop(self.p)
                    return
                if not r.startswith("T"):
                    return                           # W/X: QEMU exited (the finisher)
                if not watched:
                    return self._fail(f"QEMU stopped where no program end was watched ({r[:40]})")
                at = hit(r, watched)
                v = step_over_store(rsp, at)
                if v is None:
                    return self._fail(f"cannot read tohost at {at:#x} through the gdbstub")
                if v:
                    self.value = v
                    self.end = "tohost"
                    self.pc = wfi_end.read_reg(rsp, nums, "pc")
                    proc.stop(self.p)
                    return
        except (EOFError, ConnectionError):
            pass                                     # QEMU exiting closed the stub (the finisher)
        except (gdbstub.GdbError, OSError, ValueError, socket.timeout) as e:
            if not proc.exited(self.p):
                self.error = f"program-end watch: {e}"
        finally:
            if rsp is not None:
                rsp.close()


def start(cmd: list[str], env: dict, tohost: int | tuple | None, work: Path, deadline: float,
          wfis: frozenset = frozenset(), **popen_kw):
    """QEMU ``cmd`` under a program-end Watch: (process, started watch)."""
    import os
    sock = work / f"tohost-{len(list(work.glob('tohost-*.sock')))}.sock"
    p = proc.popen(cmd + gdb_options(sock), env={**os.environ, **env}, **popen_kw)
    w = Watch(p, sock, tohost, deadline, wfis)
    w.start()
    return p, w


def run(cmd: list[str], env: dict, tohost: int | tuple | None, work: Path, timeout: float,
        wfis: frozenset = frozenset(), **popen_kw) -> Watch:
    """proc.run for a program that ends its own way: runs ``cmd`` until its tohost write or final
    WFI (or its exit, or ``timeout``); the joined Watch."""
    deadline = time.monotonic() + timeout
    p, w = start(cmd, env, tohost, work, deadline, wfis, **popen_kw)
    try:
        while not proc.exited(p, 0.05):
            if time.monotonic() > deadline:
                proc.stop(p)
                break
    finally:
        proc.kill(p)
        w.join(5)
    return w


def _last(item):
    """(pc, trap) of the last step of a log item: a Step, the writer's step tuple, or a
    qemu_log.Plain run of bare exec lines (no trap)."""
    if type(item) is tuple:
        return item[1], item[6]
    if hasattr(item, "raw") and isinstance(item.pc, list):
        return item.pc[-1], None
    return item.pc, item.trap


def _without_last(item):
    """A Plain run without its last step (None when that was its only one)."""
    from dataclasses import replace
    if len(item) == 1:
        return None
    cut = {k: (getattr(item, k)[:-1] if getattr(item, k) is not None else None) for k in ("pc", "priv", "v", "raw")}
    return replace(item, **cut)


def drop_replayed_store(steps):
    """The log's steps without the store's second exec line at the watchpoint stop: when the last
    two steps are at one pc and neither trapped, the last is the replay (a store is not an
    instruction that comes back to itself); both carry the same TLB fill, if any.  Items are
    Steps, step tuples or qemu_log.Plain runs (the last two steps may share one run)."""
    a = b = None
    for s in steps:
        if a is not None:
            yield a
        a, b = b, s
    if b is None:
        return
    plain = isinstance(b.pc, list) if not isinstance(b, tuple) else False
    if plain and len(b) >= 2:
        if b.pc[-1] == b.pc[-2]:
            b = _without_last(b)
        if a is not None:
            yield a
        yield b
        return
    if a is not None:
        yield a
        (pa, ta), (pb, tb) = _last(a), _last(b)
        if pa == pb and ta is None and tb is None:
            return
    yield b
