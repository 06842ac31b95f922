"""Streaming parser of QEMU's ``-d exec,int,mmu,nochain`` log into trace steps.

Both dialects (7.2 and 10.0) print the same three kinds of line we use:

* ``Trace 0: 0x7f.. [cs_base/pc/flags/cflags] sym`` -- one per executed TB; with
  one instruction per TB (7.2 ``-singlestep``, >= 8.1 ``one-insn-per-tb=on``)
  one per instruction attempt, printed *before* the instruction runs.
* ``riscv_cpu_tlb_fill ad <va> rw <0 load|1 store|2 fetch> mmu_idx <n>`` followed
  by ``address=..`` (one stage) or ``1st-stage ..`` / ``2nd-stage ..`` (two-stage
  translation, Priv. 20240411, 9.5 "Two-Stage Address Translation") and a
  ``PMP ..`` line when it succeeded.  Only TLB *fills* are logged: fetch fills
  precede the exec line of the instruction fetched, data fills follow the exec
  line of the instruction that made them.
* ``riscv_cpu_do_interrupt: hart:0, async:A, cause:C, epc:E, tval:T, desc=..``
  -- the trap raised by the current step.  An instruction-fetch fault has no
  exec line: it is still a step, at the faulting pc (= epc).  An interrupt
  (async:1) is a step of its own at epc: the instruction there did not run.

The TB flags' layout changes between versions.  ``FLAGS_LAYOUT`` lists the
versions whose layout was read from QEMU's target/riscv/cpu.h *and* checked on
the real binary (M-mode and VS-mode steps of tests/data/qemu_guest); only for
those are ``Step.priv``/``v`` decoded (``TB_FLAGS.PRIV``, ``TB_FLAGS.VIRT_ENABLED``).
7.2 has no PRIV field (its MEM_IDX folds MPRV in), so there they stay None.
``Step.insn`` is never shown; htval/htinst/GVA are not printed by either
dialect's ``-d int`` and stay None.
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Iterable, Iterator

from difftest.trace import Step, Trap, Xlat

_EXEC = re.compile(r"^Trace \d+: 0x[0-9a-f]+ \[([0-9a-f]+)/([0-9a-f]+)/([0-9a-f]+)/([0-9a-f]+)\]")
_FILL = re.compile(r"^riscv_cpu_tlb_fill ad ([0-9a-f]+) rw (\d+) mmu_idx (\d+)")
_STAGE = re.compile(r"^riscv_cpu_tlb_fill (1st-stage |2nd-stage |)address=([0-9a-f]+) ret (\d+) physical ([0-9a-f]+)")
_PMP = re.compile(r"^riscv_cpu_tlb_fill PMP address=([0-9a-f]+) ret (\d+)")
_INT = re.compile(r"^riscv_cpu_do_interrupt: hart:\s*\d+, async:(\d), cause:([0-9a-f]+), epc:0x([0-9a-f]+), "
                  r"tval:0x([0-9a-f]+)")

ACCESS = {0: "load", 1: "store", 2: "fetch"}
# A TB whose exec line was printed but which did not run its instruction: QEMU left it at its start
# (an exit request: a timer re-armed under -icount, an interrupt raised) or rewound it at a device
# access to run it again ending there (-icount: "cpu_io_recompile").  Either way its exec line comes
# again (or an interrupt is taken at that pc): the step is the next one, not this one.
_NOT_RUN = re.compile(r"^(?:Stopped execution of TB chain before 0x[0-9a-f]+ \[([0-9a-f]+)\]"
                      r"|cpu_io_recompile: rewound execution of TB to ([0-9a-f]+))")
# QEMU's TRANSLATE_SUCCESS=0, TRANSLATE_FAIL=1, TRANSLATE_PMP_FAIL=2, TRANSLATE_G_STAGE_FAIL=3
_PAGE_FAULT = {"fetch": 12, "load": 13, "store": 15}
_GUEST_PAGE_FAULT = {"fetch": 20, "load": 21, "store": 23}   # Priv. 9.6.2 (H chapter) exception codes
_ACCESS_FAULT = {"fetch": 1, "load": 5, "store": 7}


# (major, minor) -> (VIRT_ENABLED bit, PRIV shift); verified on 10.0.2:
# M-mode 0x02c24003 -> PRIV 3, V 0; VS-mode 0x02624005 -> PRIV 1, V 1.
FLAGS_LAYOUT = {(10, 0): (21, 22)}


def flags_layout(version: str):
    try:
        major, minor = (int(x) for x in version.split(".")[:2])
    except ValueError:
        return None
    return FLAGS_LAYOUT.get((major, minor))


@dataclass
class _Fill:
    xlat: Xlat
    lines: list[str] = field(default_factory=list)
    done: bool = False


def _priv_of_mmu_idx(idx: int) -> int:
    # MMUIdx_U=0, S=1, S_SUM=2, M=3 in both versions; higher bits are HLV/virt flags.
    return {0: 0, 1: 1, 2: 1, 3: 3}[idx & 3]


def _stage_result(fill: _Fill, kind: str, ret: int, phys: int) -> None:
    x = fill.xlat
    if kind == "1st-stage ":
        x.v = 1
        if ret == 0:
            x.gpa = phys
        else:
            x.fault_stage = {1: "vs", 2: "pmp", 3: "g"}.get(ret, "vs")
            x.implicit = ret == 3          # G-stage fault on the implicit access to a VS-stage PTE
            fill.done = True
    elif kind == "2nd-stage ":
        x.v = 1
        if ret == 0:
            x.pa = phys
        else:
            x.fault_stage = "pmp" if ret == 2 else "g"
            fill.done = True
    else:
        if ret == 0:
            x.pa = phys
            x.gpa = None
        else:
            x.fault_stage = "pmp" if ret == 2 else "s"
            fill.done = True
    if x.fault_stage:
        table = {"vs": _PAGE_FAULT, "s": _PAGE_FAULT, "g": _GUEST_PAGE_FAULT, "pmp": _ACCESS_FAULT}
        x.fault_cause = table[x.fault_stage][x.access]


def parse(lines: Iterable[str], *, max_steps: int | None = None, stats: dict | None = None,
          layout: tuple[int, int] | None = None) -> Iterator[Step]:
    """Yield steps from log lines, lazily.  ``stats`` receives ``steps``, ``truncated``
    and ``step_limit`` when the iterator is exhausted.  ``layout`` = (VIRT bit, PRIV
    shift) of the TB flags (``flags_layout(version)``) decodes Step.priv/v."""
    stats = stats if stats is not None else {}
    stats.update(steps=0, truncated=False, step_limit=False, unknown_lines=0)
    cur: Step | None = None           # the step whose exec line was seen last
    pending_fetch: list[Xlat] = []    # fetch fills waiting for their exec line (or fetch fault)
    fill: _Fill | None = None
    n = 0

    def counted() -> bool:
        """Counts the step just yielded; True once ``max_steps`` are out (stats say so)."""
        nonlocal n
        n += 1
        if max_steps is not None and n >= max_steps:
            stats.update(steps=n, step_limit=True)
            return True
        return False

    def own_accesses(pc: int) -> list[Xlat]:
        """The fetch-type fills waiting for an instruction that cover none of the bytes of the one
        at ``pc`` (exec line or trap epc): they were not its fetch but the previous instruction's
        own access -- HLVX reads with execute permission and QEMU logs them as fetches (rw 2) --
        so they leave the queue, become loads and go to the step that made them.  Taken for a
        fetch, a faulting HLVX would become an invented fetch-fault step."""
        nonlocal pending_fetch
        if cur is None or not pending_fetch:
            return []
        own = [x for x in pending_fetch if not pc <= x.va < pc + 4]
        if own:
            pending_fetch = [x for x in pending_fetch if pc <= x.va < pc + 4]
            for x in own:
                x.access = "load"
                if x.fault_stage:
                    table = {"vs": _PAGE_FAULT, "s": _PAGE_FAULT, "g": _GUEST_PAGE_FAULT, "pmp": _ACCESS_FAULT}
                    x.fault_cause = table[x.fault_stage]["load"]
        return own

    def close_fill():
        nonlocal fill
        if fill is None:
            return
        x = fill.xlat
        x.raw = "\n".join(fill.lines)
        if x.access == "fetch" or cur is None:
            pending_fetch.append(x)
        else:
            cur.xlats.append(x)
        fill = None

    for line in lines:
        line = line.rstrip("\n")
        m = _EXEC.match(line)
        if m:
            close_fill()
            pc = int(m.group(2), 16)
            own = own_accesses(pc)
            if cur is not None:
                cur.xlats.extend(own)
                yield cur
                if counted():
                    return
            cur = Step(i=n, pc=pc, xlats=pending_fetch, raw=line)
            if layout is not None:
                fl = int(m.group(3), 16)
                cur.v, cur.priv = (fl >> layout[0]) & 1, (fl >> layout[1]) & 3
            pending_fetch = []
            continue
        m = _NOT_RUN.match(line)
        if m:
            close_fill()
            if cur is not None and cur.trap is None and cur.pc == int(m.group(1) or m.group(2), 16):
                pending_fetch = cur.xlats + pending_fetch
                cur = None
            continue
        m = _FILL.match(line)
        if m:
            close_fill()
            idx = int(m.group(3))
            fill = _Fill(Xlat(access=ACCESS.get(int(m.group(2)), "load"), va=int(m.group(1), 16),
                              priv=_priv_of_mmu_idx(idx), v=0), [line])
            continue
        m = _STAGE.match(line)
        if m and fill is not None:
            fill.lines.append(line)
            _stage_result(fill, m.group(1), int(m.group(3)), int(m.group(4), 16))
            if fill.done:
                close_fill()
            continue
        m = _PMP.match(line)
        if m and fill is not None:
            fill.lines.append(line)
            if int(m.group(2)) != 0:
                fill.xlat.fault_stage = "pmp"
                fill.xlat.fault_cause = _ACCESS_FAULT[fill.xlat.access]
            close_fill()
            continue
        m = _INT.match(line)
        if m:
            close_fill()
            interrupt = m.group(1) == "1"
            cause, epc, tval = int(m.group(2), 16), int(m.group(3), 16), int(m.group(4), 16)
            trap = Trap(cause=cause, interrupt=interrupt, epc=epc, tval=None if interrupt else tval, raw=line)
            if cur is not None and cur.trap is None:
                cur.xlats.extend(own_accesses(epc))
            fetch_fault = (not interrupt and pending_fetch and any(x.fault_stage for x in pending_fetch))
            if interrupt or fetch_fault or cur is None or cur.trap is not None or cur.pc != epc:
                # no exec line for this attempt: an instruction-fetch fault (a step at the faulting
                # pc), or an interrupt taken before the instruction at epc ran (its own step)
                if cur is not None:
                    yield cur
                    if counted():
                        return
                cur = Step(i=n, pc=epc, xlats=pending_fetch, trap=trap, raw=line)
                if layout is not None and pending_fetch:
                    # no exec line to read the flags from: the faulting fetch's own mode
                    cur.priv, cur.v = pending_fetch[-1].priv, pending_fetch[-1].v
                pending_fetch = []
            else:
                cur.trap = trap
                cur.raw = (cur.raw or "") + "\n" + line
            continue
        if line.strip():
            stats["unknown_lines"] += 1
    if fill is not None:
        # the log stopped in the middle of a TLB-fill record (QEMU died while logging)
        stats["truncated"] = True
        close_fill()
    if cur is not None:
        yield cur
        n += 1
    stats["steps"] = n


def parse_file(path, **kw) -> Iterator[Step]:
    with open(path, "r", encoding="utf-8", errors="replace") as f:
        yield from parse(f, **kw)



# A stretch of the log with no two consecutive exec lines longer than this (a fault storm: trap
# lines only) is not collected: the rest of the log streams through ``parse`` as it is read.
PIECE_MAX = 4096


@dataclass
class Plain:
    """Consecutive steps that are nothing but their exec line (no translation, no trap), from step
    ``i`` on, as columns: what ``parse`` makes of each is Step(i, pc, priv=, v=, raw=line)."""
    i: int
    pc: list = field(default_factory=list)
    priv: list | None = None        # only where the TB flags' layout is known (flags_layout)
    v: list | None = None
    raw: list = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.pc)

    def tuples(self):
        """The steps as the trace writer's step tuples (i, pc, insn, priv, v, xlats, trap, uart, regs, raw)."""
        for k, pc in enumerate(self.pc):
            yield (self.i + k, pc, None, None if self.priv is None else self.priv[k],
                   None if self.v is None else self.v[k], [], None, "", None, self.raw[k])


PLAIN_RUN = 4096            # plain steps per Plain at most


def parse_file_fast(path, *, max_steps: int | None = None, stats: dict | None = None,
                    layout: tuple[int, int] | None = None) -> Iterator:
    """``parse_file`` with the same steps and stats, several times faster to write: steps that are
    nothing but their exec line -- one between two exec lines, most of a single-stepped log -- come
    out in runs (``Plain``, columns; ``BinTraceWriter.plain`` writes them without an object per
    step); every other step is ``parse``'s own Step.

    Cutting the log between two consecutive exec lines leaves ``parse`` in the state it has at the
    start of a log (no fill open, no fetch fill waiting), so each stretch between two cuts that is
    more than one exec line goes through ``parse`` as a log of its own, its steps renumbered.
    tests/test_qemu_log_fast.py checks that both give the same steps and stats on real logs."""
    stats = stats if stats is not None else {}
    stats.update(steps=0, truncated=False, step_limit=False, unknown_lines=0)
    n = 0
    match = _EXEC.match
    vbit, pshift = layout or (0, 0)
    run = Plain(0, priv=[] if layout else None, v=[] if layout else None)

    def through_parse(lines, limit):
        """The steps of ``lines`` from ``parse`` (at most ``limit``), renumbered; its stats folded in."""
        nonlocal n
        st: dict = {}
        for s in parse(lines, max_steps=limit, stats=st, layout=layout):
            s.i = n
            n += 1
            yield s
        stats["unknown_lines"] += st["unknown_lines"]
        stats["truncated"] = stats["truncated"] or st["truncated"]
        stats["step_limit"] = stats["step_limit"] or st["step_limit"]

    def fresh():
        return Plain(n, priv=[] if layout else None, v=[] if layout else None)

    with open(path, "r", encoding="utf-8", errors="replace") as f:
        piece: list[str] = []          # the lines since the last cut
        first = None                   # the match of the piece's first line when it is an exec line
        prev = None                    # the match of the previous line when it was an exec line
        for line in f:
            m = match(line) if line.startswith("Trace ") else None
            if m is not None and prev is not None:
                # a cut: the piece before it is complete, and a step follows it
                if len(piece) == 1 and first is not None:
                    run.pc.append(int(first.group(2), 16))
                    run.raw.append(piece[0].rstrip("\n"))
                    if layout is not None:
                        fl = int(first.group(3), 16)
                        run.priv.append((fl >> pshift) & 3)
                        run.v.append((fl >> vbit) & 1)
                    n += 1
                    if len(run.pc) >= PLAIN_RUN:
                        yield run
                        run = fresh()
                else:
                    if run.pc:
                        yield run
                    yield from through_parse(piece, None if max_steps is None else max_steps - n)
                    run = fresh()
                if max_steps is not None and n >= max_steps:
                    if run.pc:
                        yield run
                    stats.update(steps=n, step_limit=True)
                    return
                piece, first = [], m
            elif len(piece) >= PIECE_MAX:
                if run.pc:
                    yield run
                yield from through_parse(itertools.chain(piece, (line,), f),
                                         None if max_steps is None else max_steps - n)
                stats["steps"] = n
                return
            if not piece:
                first = m
            piece.append(line)
            prev = m
        if run.pc:
            yield run
        if piece:
            yield from through_parse(piece, None if max_steps is None else max_steps - n)
    stats["steps"] = n
