"""Reader of the difftrace plugin's output (difftest/backends/plugin/difftrace.c) into trace steps.

Two files from one QEMU run:

* the plugin's **record file**: 16-byte little-endian records ``struct.Struct("<BBHIQ")`` =
  (type, a, b, w, x), in execution order (the C file documents every field):
  0 HEAD (a = API version, w = "DTRC"), 1 INSN (a = length, b = class, w = bits, x = pc),
  2 MEM (a = size shift | store << 4 | PA known << 5 | I/O << 6, b = QEMU's MemOpIdx, whose bits
  0-3 are the mmu_idx, w = 1 read / 2 write / 3 read-modify-write, x = VA), 3 PA (x = physical
  address of the MEM before it), 4 REG (a = slot in ``REG_NAMES``, x = value), 5 MARK (x = index of
  the INSN that follows its REG records), 6 LIMIT (x = index where recording stopped), 7 VAL (v4:
  x = the value of the I/O store whose PA record is just before);
* QEMU's **log** (``-d int,plugin``): ``riscv_cpu_do_interrupt: ...`` lines and the plugin's
  ``S <index> <pc>`` marker lines (``L <index>`` once at the limit), in event order.

Steps have the log backend's semantics (qemu_log.py): a step is one instruction attempt; a trap
belongs to the step that raised it; an instruction-fetch fault or an interrupt is a step of its
own at epc with no instruction bits.  Every trap line precedes the marker of the first
instruction after the trap: it goes on the step before that marker when that step's pc is its
epc (and it has no trap yet, and is not an interrupt), else it is a step of its own at epc --
allowed only where epc can follow the step before (its static successors, anything after an
"other" instruction or after a trap); a trap that cannot be placed so ends the trace as an error.

API 4 (QEMU 10.0) also has the registers read at each marker: ``priv`` (gdb's virtual register:
bits 0-1 privilege, bit 2 V) gives Step.priv/v, carried to the next marker (priv and V change only
by traps and xRET, both followed by a marker); the CSRs give, for the last trap before the marker,
target/htval/gva/tinst exactly as trap_detail._entry/_tinst decide from a -d cpu dump (QEMU keeps
the VS copies in the supervisor fields while V=1: the names read are the dump's, unswapped the
same way).
"""
from __future__ import annotations

import re
import struct
from typing import Iterator

from difftest.backends.trap_detail import _entry, _fields, _tinst
from difftest.trace import Step, Trap, Xlat

REC = struct.Struct("<BBHIQ")
HEAD, INSN, MEM, PA, REG, MARK, LIMIT, VAL = range(8)
MAGIC = 0x43525444
PURE, MEMORY, OTHER = range(3)
# The C plugin's REG_NAMES, same order (slot numbers are positions here)
REG_NAMES = ("priv", "mstatus", "mcause", "mepc", "mtval", "mtval2", "mtinst", "mtvec",
             "sstatus", "scause", "sepc", "stval", "stvec", "hstatus", "htval", "htinst",
             "vsstatus", "vscause", "vsepc", "vstval", "vstvec", "virt")
_INT = re.compile(r"^riscv_cpu_do_interrupt: hart:\s*\d+, async:(\d), cause:([0-9a-f]+), epc:0x([0-9a-f]+), "
                  r"tval:0x([0-9a-f]+)")
_MARK = re.compile(r"^S (\d+) ([0-9a-f]+)$")
_LIMIT = re.compile(r"^L (\d+)$")
_TOHOST = re.compile(r"^T (\d+) ([0-9a-f]+)$")     # the plugin's tohost end: (store index, value)
_PRIV_OF_IDX = {0: 0, 1: 1, 2: 1, 3: 3}     # QEMU MMUIdx_U, S, S_SUM, M (both versions)
CHUNK = 1 << 20
# QEMU 7.2's qemu_plugin_hwaddr_phys_addr adds the RAM block's own ram_addr offset: right for main RAM
# (the first block, offset 0), wrong for any other RAM-backed region -- the reset ROM at 0x1000 reads
# as 0x8001020 with -m 128M (measured; 10.0 is right).  So on 7.2 a non-I/O PA outside main RAM is
# not shown (None), never compared.  (qemu.MACHINE: virt, RAM at 0x80000000, -m 128M.)
# Main RAM as any -m up to 2 GiB makes it (refmodel/platform.py, --ram): the wrong PAs are ram_addr
# offsets, smaller than all RAM QEMU allocated, so never inside this range.
RAM = range(0x80000000, 0x100000000)


class PluginTraceError(Exception):
    """The two files do not fit together (a trap that cannot be placed, a marker at another pc)."""


def parse_log(path) -> tuple[dict[int, tuple[int, list[Trap]]], list[Trap], dict]:
    """{marker index: (pc, traps logged just before it)}, the traps after the last marker, and
    counts (``int_lines``, ``markers``, ``limit`` index or None, ``unknown_lines``)."""
    marks: dict[int, tuple[int, list[Trap]]] = {}
    pending: list[Trap] = []
    info = {"int_lines": 0, "markers": 0, "limit": None, "unknown_lines": 0, "tohost": None}
    with open(path, "r", encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            m = _MARK.match(line)
            if m:
                marks[int(m.group(1))] = (int(m.group(2), 16), pending)
                pending = []
                info["markers"] += 1
                continue
            m = _INT.match(line)
            if m:
                interrupt = m.group(1) == "1"
                tval = int(m.group(4), 16)
                pending.append(Trap(cause=int(m.group(2), 16), interrupt=interrupt, epc=int(m.group(3), 16),
                                    tval=None if interrupt else tval, raw=line))
                info["int_lines"] += 1
                continue
            m = _LIMIT.match(line)
            if m:
                info["limit"] = int(m.group(1))
                continue
            m = _TOHOST.match(line)
            if m:
                info["tohost"] = (int(m.group(1)), int(m.group(2), 16))
                continue
            if line.strip():
                info["unknown_lines"] += 1
    return marks, pending, info


def records(path) -> Iterator[tuple]:
    """The record file's records; a trailing partial record (a QEMU that died mid-write) is dropped
    and flagged by a final ``(None,)``."""
    with open(path, "rb") as f:
        rest = b""
        while True:
            chunk = f.read(CHUNK)
            if not chunk:
                break
            data = rest + chunk
            cut = len(data) - len(data) % REC.size
            yield from REC.iter_unpack(data[:cut])
            rest = data[cut:]
        if rest:
            yield (None,)


def _amo_kind(bits: int) -> str | None:
    """For an AMO-opcode instruction: "load" for LR, "store" for SC and every AMO (trace.py: store
    covers AMOs and SC); None for any other opcode."""
    if bits & 0x7F != 0x2F:
        return None
    return "load" if (bits >> 27) == 0b00010 else "store"


def _successors(s: Step, meta: tuple) -> tuple | None:
    """The pcs that can follow step ``s`` without a trap (None: any -- an "other" instruction)."""
    length, cls, target = meta
    if cls == OTHER:
        return None
    return (s.pc + length, target)


def _static_target(pc: int, bits: int, length: int) -> int:
    """The taken target of a branch or jump (pc + length for anything else), as the plugin has it."""
    def sext(v, n):
        return v - (1 << n) if v & (1 << (n - 1)) else v
    b = bits
    if length == 4:
        op = b & 0x7F
        if op == 0x63:
            imm = ((b >> 31) & 1) << 12 | ((b >> 7) & 1) << 11 | ((b >> 25) & 0x3F) << 5 | ((b >> 8) & 0xF) << 1
            return (pc + sext(imm, 13)) & (2**64 - 1)
        if op == 0x6F:
            imm = ((b >> 31) & 1) << 20 | ((b >> 12) & 0xFF) << 12 | ((b >> 20) & 1) << 11 | ((b >> 21) & 0x3FF) << 1
            return (pc + sext(imm, 21)) & (2**64 - 1)
        return pc + 4
    op, f3 = b & 3, (b >> 13) & 7
    if op == 1 and f3 == 5:
        imm = (((b >> 12) & 1) << 11 | ((b >> 11) & 1) << 4 | ((b >> 9) & 3) << 8 | ((b >> 8) & 1) << 10
               | ((b >> 7) & 1) << 6 | ((b >> 6) & 1) << 7 | ((b >> 3) & 7) << 1 | ((b >> 2) & 1) << 5)
        return (pc + sext(imm, 12)) & (2**64 - 1)
    if op == 1 and f3 >= 6:
        imm = (((b >> 12) & 1) << 8 | ((b >> 10) & 3) << 3 | ((b >> 5) & 3) << 6 | ((b >> 3) & 3) << 1
               | ((b >> 2) & 1) << 5)
        return (pc + sext(imm, 9)) & (2**64 - 1)
    return pc + 2


MSTATUS_MPV, HSTATUS_SPV = 1 << 39, 1 << 7


def _mode_before(trap: Trap, d: dict):
    """(priv, v) the trap was taken from, as its target's registers record it (xPP / xPV)."""
    if trap.target == "M":
        ms = d.get("mstatus")
        return (None, None) if ms is None else ((ms >> 11) & 3, int(bool(ms & MSTATUS_MPV)))
    if trap.target == "HS":
        ss, hs = d.get("sstatus", d.get("mstatus")), d.get("hstatus")
        return (None, None) if ss is None or hs is None else ((ss >> 8) & 1, int(bool(hs & HSTATUS_SPV)))
    if trap.target == "VS":
        ss = d.get("sstatus")      # V=1: the live sstatus is the guest's (vsstatus)
        return (None, None) if ss is None else ((ss >> 8) & 1, 1)
    return None, None


def fill_trap(trap: Trap, regs: dict, marker_pc: int, stats: dict) -> dict | None:
    """target/htval/gva/tinst/fields of the last trap before a marker, from the registers read there,
    decided as trap_detail decides them from a -d cpu dump; that dump, or None (not checked)."""
    p = regs.get("priv")
    dump = dict(regs, pc=marker_pc, v=(p >> 2) & 1 if p is not None else 0)
    got = _entry(dump, trap)           # interrupts too: cause with its Interrupt bit (trap_detail._xcause)
    if got is None:
        stats["traps_unchecked"] += 1
        return None
    trap.target, trap.htval, trap.gva = got
    trap.tinst = _tinst(dump, dump, trap)
    trap.fields = _fields(dump, trap.target)
    stats["traps_checked"] += 1
    return dump


def steps(rec_path, log_path, *, api: int, max_steps: int | None = None, stats: dict | None = None
          ) -> Iterator[Step]:
    """Yield the run's steps, lazily.  ``stats`` gets ``steps``, ``step_limit``, ``truncated``,
    ``limit`` (the plugin stopped recording), counts, and ``error`` (a trace that cannot be
    trusted from that point: the iterator ends there)."""
    stats = stats if stats is not None else {}
    marks, tail_traps, info = parse_log(log_path)
    stats.update(steps=0, step_limit=False, truncated=False, error=None, traps=0, traps_checked=0,
                 traps_unchecked=0, mode_checks_failed=0, **info)
    regs_on = api >= 4
    v_in_idx = api >= 4        # 10.0: mmu_idx bit 2 is MMU_2STAGE_BIT (any V=1 access); 7.2: HLV/HSV only
    n = 0                      # steps yielded
    out: list[Step] = []       # steps made but not yet yielded (the last one may still get accesses)

    def emit():
        """Yields the steps in ``out`` and empties it; returns True once ``max_steps`` are out
        (the stats then say so)."""
        nonlocal n
        for s in out:
            yield s
            n += 1
            if max_steps is not None and n >= max_steps:
                stats.update(steps=n, step_limit=True)
                return True
        out.clear()
        return False
    cur: Step | None = None    # the last step with an INSN (accesses go to it)
    cur_meta = None            # (length, class, target) of cur
    last: Step | None = None   # the last step made (cur or a trap step after it)
    mode = (None, None)        # priv, v (API 4)
    regs: dict = {}
    mark_traps: list[Trap] = []
    mark_pc = None
    insn_index = 0
    skip_pa = False            # the PA record of a dropped access follows
    last_pa = None             # the PA record before a VAL record
    pend = None                # a MEM record waiting for its PA record
    pend_io = False            # ... and whether it went to I/O
    shared: dict = {}

    def _xlat(k, pa):
        """One Xlat object per distinct access (records are never mutated once made): a loop's
        repeated accesses share it, and TraceWriter encodes each shared object once."""
        key = k + (pa,)
        x = shared.get(key)
        if x is None:
            if len(shared) >= 65536:
                shared.clear()
            x = shared[key] = Xlat(access=k[0], va=k[1], priv=k[2], v=k[3], pa=pa)
        return x

    def place(trap: Trap) -> None:
        nonlocal last
        stats["traps"] += 1
        if (not trap.interrupt and last is not None and last is cur and last.trap is None
                and last.pc == trap.epc):
            last.trap = trap
            return
        # a step of its own at epc (fetch fault or interrupt): epc must be able to follow `last`
        if last is not None:
            ok = last.trap is not None or last is not cur or (succ := _successors(last, cur_meta)) is None \
                or trap.epc in succ
            if not ok:
                raise PluginTraceError(
                    f"trap line ({trap.raw}) cannot be placed: step {last.i} at {last.pc:#x} cannot be followed "
                    f"by pc {trap.epc:#x} and is not at the trap's epc")
        last = Step(i=len(out) + n, pc=trap.epc, trap=trap)
        out.append(last)

    def check(trap: Trap, d: dict, marker_pc: int) -> dict | None:
        return fill_trap(trap, d, marker_pc, stats)

    try:
        for r in records(rec_path):
            t = r[0]
            if t == MEM:
                if cur is None or cur is not last:
                    raise PluginTraceError(f"a memory access record with no instruction before it (after step {n + len(out) - 1})")
                _, a, b, w, va = r
                idx = b & 15
                kind = _amo_kind(cur.insn)
                access = kind or ("store" if a & 0x10 else "load")
                if kind == "store" and not a & 0x10:
                    # an AMO/SC: with one vCPU TCG expands it to a load and a store, each with its
                    # callback; the load's says nothing of the store/AMO access (it may still fault:
                    # the load ran first), so only the write is the access (trace.py: "store")
                    skip_pa = bool(a & 0x20)
                    continue
                # mmu_idx bit 2: 10.0 MMU_2STAGE_BIT (V=1, HLV/HSV, MPRV+MPV); 7.2: HLV/HSV only
                # (7.2's mmu_idx does not say V for ordinary accesses: v is None there, not shown)
                pend = (access, va, _PRIV_OF_IDX[idx & 3], 1 if idx & 4 else (0 if v_in_idx else None))
                pend_io = bool(a & 0x40)
                if not a & 0x20:           # no physical address: the access is made now, pa None
                    cur.xlats.append(_xlat(pend, None))
                    pend = None
                continue
            if t == PA:
                last_pa = r[4]
                if skip_pa:
                    skip_pa = False
                elif pend is not None and cur is not None:
                    cur.xlats.append(_xlat(pend, r[4] if v_in_idx or pend_io or r[4] in RAM else None))
                    pend = None
                continue
            if t == INSN:
                if mark_pc is not None and mark_pc != r[4]:
                    raise PluginTraceError(f"marker {insn_index} at {mark_pc:#x} but the instruction is at {r[4]:#x}")
                if mark_traps and regs_on and regs:
                    dump = check(mark_traps[-1], regs, r[4])
                    pv = _mode_before(mark_traps[-1], dump) if dump is not None else (None, None)
                    ts = mark_traps[-1]
                    owner = next((s for s in reversed(out) if s.trap is ts), None)
                    if owner is not None and pv[0] is not None:
                        if owner.insn is None:
                            owner.priv, owner.v = pv
                        elif (owner.priv, owner.v) != pv:
                            stats["mode_checks_failed"] += 1
                if regs_on and "priv" in regs:
                    p = regs["priv"]
                    mode = (p & 3, (p >> 2) & 1)
                mark_traps, mark_pc, regs = [], None, {}
                # everything before this instruction is complete
                if (yield from emit()):
                    return
                _, length, cls, bits, pc = r
                cur = last = Step(i=n, pc=pc, insn=bits, priv=mode[0], v=mode[1])
                cur_meta = (length, cls, _static_target(pc, bits, length))
                out.append(cur)
                insn_index += 1
                continue
            if t == MARK:
                k = r[4]
                if k != insn_index:
                    raise PluginTraceError(f"marker record for instruction {k} at instruction {insn_index}")
                pc, traps = marks.pop(k, (None, []))
                if pc is None:
                    raise PluginTraceError(f"marker {k} is in the record file but not in QEMU's log")
                for tr in traps:
                    place(tr)
                mark_traps, mark_pc, regs = traps, pc, {}
                continue
            if t == REG:
                if r[1] < len(REG_NAMES):
                    regs[REG_NAMES[r[1]]] = r[4]
                continue
            if t == HEAD:
                if r[3] != MAGIC or r[1] != api:
                    raise PluginTraceError(f"record file header {r!r} is not difftrace API {api}")
                continue
            if t == VAL:              # the value of an I/O store (v4): the finisher's is the exit code
                stats.setdefault("io_stores", []).append((last_pa, r[4]))
                continue
            if t == LIMIT:
                stats["limit"] = r[4]
                break
            if t is None:
                stats["truncated"] = True
                break
            raise PluginTraceError(f"unknown record type {t}")
        for tr in tail_traps:       # a trap after the last marker: no instruction after it ran
            place(tr)
        if marks and stats["limit"] is None and not stats["truncated"]:
            raise PluginTraceError(f"{len(marks)} marker(s) in QEMU's log have no record (first: {min(marks)})")
    except PluginTraceError as e:
        stats["error"] = str(e)          # the steps made so far stand; the trace ends as an error
    if (yield from emit()):
        return
    stats["steps"] = n
