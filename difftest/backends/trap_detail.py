"""The trap-detail pass of the QEMU backend: what trap entry wrote, for every trap.

QEMU's ``-d int`` line gives a trap's cause, epc and tval, nothing else; htval/mtval2, GVA and
which mode took the trap (H "Trap Entry": M, HS or VS) are not printed.  So after the main run,
QEMU runs the guest a second time, same machine, CPU and one instruction per TB, logging only
``-d cpu`` filtered (``-dfilter``) to the trap handlers' entry addresses, which the main log
shows (the pc of the step after each trap).  The dump there is the state trap entry left:

* V=1 at the handler: the trap went to VS (VS-mode has no htval/GVA: left None, as the model
  does); QEMU's dump then shows the VS copies in the supervisor fields (qemu_cpu.unswap).
* V=0: the handler is mtvec's (M) or stvec's (HS) -- the one whose cause and epc registers hold
  this trap's cause and epc.  M: htval = mtval2, GVA = mstatus.GVA (bit 38); HS: htval = htval,
  GVA = hstatus.GVA (bit 6).

Dumps and traps are matched in order, each dump checked against its trap (cause and epc in the
target's registers; an interrupt's xcause with its Interrupt bit, ``_xcause``); a trap with no checked dump keeps None (not compared) and is counted in the
footer (``extra["trap_detail"]``).  mtinst/htinst are not in QEMU's dump: a third run reads them
through QEMU's gdbstub with a breakpoint on each handler entry (``gdbstub.read_at``), the k-th stop
being the k-th dump's entry (same pc, and the target's cause/epc registers checked again).
"""
from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from difftest.backends import gdbstub, proc
from difftest.backends.qemu_cpu import parse_cpu_log, unswap
from difftest.trace import Trap
from refmodel.trap_entry import status_fields

_EXEC_PC = re.compile(rb"^Trace \d+: 0x[0-9a-f]+ \[[0-9a-f]+/([0-9a-f]+)/")
_INT = rb"riscv_cpu_do_interrupt:"
MSTATUS_GVA, HSTATUS_GVA = 1 << 38, 1 << 6
MAX_SKIP = 64          # dumps at a handler address that are not trap entries, skipped before giving up


def handler_pcs(log: Path) -> set[int]:
    """The pc of the first step after each trap in a ``-d exec,int`` log: the trap handlers' entries."""
    out: set[int] = set()
    pending = False
    with open(log, "rb") as f:
        for line in f:
            if line.startswith(_INT):
                pending = True
            elif pending and line.startswith(b"Trace "):
                m = _EXEC_PC.match(line)
                if m:
                    out.add(int(m.group(1), 16))
                    pending = False
    return out


@dataclass
class TrapDetail:
    dumps: list[dict]
    stops: list[dict] = field(default_factory=list)   # gdbstub reads at the same entries, same order
    tinst_read: bool = False                           # the gdbstub run worked (or there was no trap)
    traps: int = 0
    tinst: int = 0
    matched: int = 0
    skipped_dumps: int = 0
    message: str = ""
    _next: int = field(default=0, repr=False)

    def fill(self, trap: Trap) -> None:
        """Sets trap.target (and htval/gva for M and HS) from the next dump that is this trap's entry --
        an interrupt's too (its handler entry is in ``handler_pcs`` like an exception's: xcause then
        holds the Interrupt bit, ``_xcause``), so what its trap entry wrote, mtinst/htinst included,
        is compared as for an exception."""
        self.traps += 1
        for k in range(self._next, min(len(self.dumps), self._next + MAX_SKIP)):
            got = _entry(self.dumps[k], trap)
            if got is not None:
                self.skipped_dumps += k - self._next
                self._next = k + 1
                trap.target, trap.htval, trap.gva = got
                trap.fields = _fields(self.dumps[k], trap.target)
                self.matched += 1
                if k < len(self.stops):
                    trap.tinst = _tinst(self.stops[k], self.dumps[k], trap)
                    self.tinst += trap.tinst is not None
                return

    def exposes(self) -> dict[str, bool]:
        """What the pass lets the trace show (trace.EXPOSABLE keys)."""
        return {"trap.htval": True, "trap.gva": True, "trap.target": True, "trap.fields": True,
                "trap.tinst": self.tinst_read}

    def summary(self) -> dict:
        return {"traps": self.traps, "matched": self.matched, "tinst": self.tinst,
                "skipped_dumps": self.skipped_dumps, "message": self.message}


def _xcause(trap: Trap, target: str) -> int:
    """The value trap entry writes to the target's xcause: an exception's code; for an interrupt
    (Trap.cause = its mip bit) the Interrupt bit and the code, VS-level ones delegated to VS
    translated 2/6/10 -> 1/5/9 (H "hideleg"; refmodel.interrupts.xcause_code)."""
    if not trap.interrupt:
        return trap.cause
    code = trap.cause - 1 if target == "VS" and trap.cause in (2, 6, 10) else trap.cause
    return (1 << 63) | code


def _vector(tvec: int, trap: Trap, target: str) -> int:
    """The handler address: xtvec's BASE, + 4 * code for an interrupt in vectored mode (Priv. 3.1.7)."""
    if tvec < 0:
        return -1
    base = tvec & ~3
    return base + 4 * (_xcause(trap, target) & 0xFFF) if trap.interrupt and tvec & 3 == 1 else base


def _entry(d: dict, trap: Trap):
    """(target, htval, gva) if dump ``d`` is the handler entry of ``trap``, else None."""
    pc = d.get("pc")
    if d.get("v"):
        u = unswap(d)
        if (u.get("vscause") == _xcause(trap, "VS") and u.get("vsepc") == trap.epc
                and pc == _vector(u.get("vstvec", -1), trap, "VS")):
            return "VS", None, None
        return None
    m = (d.get("mcause") == _xcause(trap, "M") and d.get("mepc") == trap.epc
         and pc == _vector(d.get("mtvec", -1), trap, "M"))
    s = (d.get("scause") == _xcause(trap, "HS") and d.get("sepc") == trap.epc
         and pc == _vector(d.get("stvec", -1), trap, "HS"))
    if m and not s:
        return "M", d.get("mtval2"), bool(d.get("mstatus", 0) & MSTATUS_GVA)
    if s and not m:
        return "HS", d.get("htval"), bool(d.get("hstatus", 0) & HSTATUS_GVA)
    return None                  # neither, or both (same handler, same cause and epc): cannot tell


def _fields(d: dict, target: str) -> dict:
    """Trap.fields from the handler-entry dump.  With V=1 (a trap into VS) QEMU's mstatus field
    holds the guest's sstatus bits (riscv_cpu_swap_hypervisor_regs swaps SPP/SPIE/SIE with
    vsstatus), so the dumped mstatus *is* vsstatus there (qemu_cpu.unswap)."""
    if target == "VS":
        return status_fields("VS", None, None, d.get("mstatus"))
    return status_fields(target, d.get("mstatus"), d.get("hstatus"), None)


def _tinst(stop: dict, dump: dict, trap: Trap):
    """mtinst (target M) or htinst (HS) from the gdbstub stop that is this dump's handler entry --
    checked by pc and by the target's own cause and epc registers (an interrupt's cause with its
    Interrupt bit: Priv. 20240411 3.1.16 and H "Trap Entry", mtinst/htinst are written with zero
    on an interrupt); VS has neither (None)."""
    if stop.get("pc") != dump.get("pc") or trap.target == "VS":
        return None
    c, e, t = ("mcause", "mepc", "mtinst") if trap.target == "M" else ("scause", "sepc", "htinst")
    if stop.get(c) == _xcause(trap, trap.target) and stop.get(e) == trap.epc:
        return stop.get(t)
    return None


TINST_REGS = ("mcause", "mepc", "mtinst", "scause", "sepc", "htinst")


GDB_BUDGET = 30.0        # seconds for the gdbstub run (about 0.2 s for a guest with 50 traps here)


def collect(cmd_without_log: list[str], env: dict, main_log: Path | None, work: Path, timeout: float,
            handlers: set[int] | None = None, tohost: int | tuple | None = None,
            wfis: frozenset = frozenset()) -> TrapDetail:
    """The whole pass for one finished main run: handler entries from ``main_log`` (or given as
    ``handlers``: the plugin backend knows them from its own trace), the ``-d cpu`` dumps there,
    then htinst/mtinst through the gdbstub.  ``cmd_without_log`` is the main run's command
    without its -d/-D/-serial options.  ``tohost``: the program ends by writing there (it never
    exits by itself): both runs stop at that write (difftest/backends/tohost.py); ``wfis``: the
    main run ended in a final WFI (difftest/backends/wfi_end.py): both runs stop there."""
    if handlers is None:
        handlers = handler_pcs(main_log)
    if not handlers:
        return TrapDetail([], tinst_read=True)          # no trap: nothing left unshown
    if timeout <= 0:
        return TrapDetail([], message="no time left within --timeout for the trap-detail pass")
    d = _dumps(cmd_without_log, env, handlers, work, timeout, tohost, wfis)
    if d.dumps:
        try:
            d.stops = gdbstub.read_at(cmd_without_log, env, handlers, TINST_REGS, work, min(timeout, GDB_BUDGET),
                                      tohost=tohost, wfis=wfis)
            d.tinst_read = True
        except gdbstub.GdbError as e:
            d.message = f"htinst/mtinst not read (gdbstub: {e}); not compared"
    return d


def _dumps(cmd_without_log: list[str], env: dict, handlers: set[int], work: Path, timeout: float,
           tohost: int | tuple | None = None, wfis: frozenset = frozenset()) -> TrapDetail:
    """QEMU with ``-d cpu,nochain`` filtered to ``handlers``; the dumps, in order."""
    log = work / "trap-detail.log"
    ranges = ",".join(f"{h:#x}+4" for h in sorted(handlers))
    # exec too: its "Stopped execution"/"rewound" lines mark dumps of TBs that did not run (-icount)
    cmd = cmd_without_log + ["-serial", "null", "-d", "cpu,exec,nochain", "-dfilter", ranges, "-D", str(log)]
    try:
        # on timeout (None) the dumps written so far still serve the traps before them
        if tohost is not None or wfis:
            from difftest.backends import tohost as T
            T.run(cmd, env, tohost, work, timeout, wfis, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                  stderr=subprocess.DEVNULL)
        else:
            proc.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     env={**os.environ, **env}, timeout=timeout)
    except OSError as e:
        return TrapDetail([], message=f"trap-detail run failed: {e}")
    if not log.exists():
        return TrapDetail([], message="trap-detail run wrote no log")
    with open(log, errors="replace") as f:
        return TrapDetail(list(parse_cpu_log(f)))
