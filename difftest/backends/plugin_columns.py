"""The difftrace plugin's output read in bulk: numpy columns instead of one Step per record.

``plugin_reader.steps`` is the reference: a record-by-record state machine, about 7 us of CPU per
step -- 76 s for the 9.9 M-step bench guest, longer than QEMU and the model together.  This module
gives the same steps (tests/test_qemu_plugin.py checks it on real runs, step for step) as columns:

* the instructions, accesses and PA records are located with array operations over the record file
  (memory-mapped; a 10 M-step run's file is ~300 MB), every access attributed to the instruction
  record before it (``searchsorted``);
* the rare events -- markers, trap lines, register reads -- go through plugin_reader's own rules
  (``_place`` below mirrors its ``place``/``check``): a trap on the marker's previous step when that
  step's pc is its epc, else a step of its own at epc, allowed only where epc can follow;
* the result is ``Columns``: per step pc, insn (has_insn), priv, v, translation count, then the
  translation rows as references into a table of distinct accesses numbered by first use (the
  order difftest.tracebin's table is written in), and the traps by step index.

Anything the bulk path does not handle exactly as the reference (a record type it does not know, a
trailing partial record) is left to the reference reader: ``columns`` raises ``Fallback``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from difftest.backends.plugin_reader import (HEAD, INSN, LIMIT, MAGIC, MARK, MEM, OTHER, PA, REG, REG_NAMES, REC,
                                             PluginTraceError, _entry, _fields, _mode_before, _static_target,
                                             _tinst, parse_log)
from difftest.trace import ACCESSES, Trap

DT = np.dtype([("t", "u1"), ("a", "u1"), ("b", "<u2"), ("w", "<u4"), ("x", "<u8")])
assert DT.itemsize == REC.size
LOAD, STORE = ACCESSES.index("load"), ACCESSES.index("store")
PRIV_OF_IDX = np.array([0, 1, 1, 3], dtype="i1")        # QEMU MMUIdx_U, S, S_SUM, M (both versions)


class Fallback(Exception):
    """The bulk reader leaves this file to plugin_reader.steps (reason in the message)."""


@dataclass
class Columns:
    pc: np.ndarray                  # u64 per step
    insn: np.ndarray                # u32 per step (0 where has_insn is False)
    has_insn: np.ndarray            # bool per step: False for a fetch-fault / interrupt step
    priv: np.ndarray                # i1 per step, -1 = not shown
    v: np.ndarray                   # i1 per step, -1 = not shown
    xcount: np.ndarray              # u16 per step: translations of the step
    refs: np.ndarray                # u32 per translation row, in step order: row of ``table``
    table: dict                     # columns of the distinct translations, numbered by first use:
                                    # access u1 (ACCESSES code), va u64, priv i1, v i1 (-1 None), pa u64, pa_none bool
    traps: dict = field(default_factory=dict)    # step index -> Trap
    stats: dict = field(default_factory=dict)    # plugin_reader.steps's stats keys

    @property
    def n(self) -> int:
        return len(self.pc)


def _amo_codes(bits: np.ndarray) -> np.ndarray:
    """Per instruction: 0 not an AMO opcode, 1 LR (a load), 2 SC or AMO (a store: trace.py)."""
    amo = (bits & 0x7F) == 0x2F
    lr = (bits >> 27) == 0b00010
    return np.where(amo, np.where(lr, 1, 2), 0).astype("u1")


def columns(rec_path, log_path, *, api: int, max_steps: int | None = None) -> Columns:
    """The run's steps as columns (see the module docstring); ``stats`` as plugin_reader.steps's.
    A trace that cannot be trusted from some point keeps the steps before it and says why in
    ``stats["error"]``, as the reference reader does."""
    marks, tail_traps, info = parse_log(log_path)
    stats = dict(steps=0, step_limit=False, truncated=False, error=None, traps=0, traps_checked=0,
                 traps_unchecked=0, mode_checks_failed=0, **info)
    size = rec_path.stat().st_size
    if size % DT.itemsize:
        raise Fallback("the record file ends inside a record")
    recs = np.memmap(rec_path, dtype=DT, mode="r") if size else np.zeros(0, DT)
    t = np.asarray(recs["t"])
    if len(t) == 0 or t[0] != HEAD or recs["w"][0] != MAGIC or recs["a"][0] != api:
        raise Fallback("no difftrace header of this API")
    known = (t == INSN) | (t == MEM) | (t == PA) | (t == REG) | (t == MARK) | (t == LIMIT) | (t == HEAD)
    if not known.all() or np.count_nonzero(t == HEAD) != 1:
        raise Fallback("a record type the bulk reader does not know")
    end = len(t)
    lim = np.flatnonzero(t == LIMIT)
    if len(lim):
        end = int(lim[0])
        stats["limit"] = int(recs["x"][end])
    t = t[:end]
    ins_pos = np.flatnonzero(t == INSN)
    n_insn = len(ins_pos)
    x_all = recs["x"]
    pc = np.asarray(x_all[ins_pos], dtype="<u8")
    bits = np.asarray(recs["w"][ins_pos], dtype="<u4")
    ilen = np.asarray(recs["a"][ins_pos])
    icls = np.asarray(recs["b"][ins_pos])

    # accesses: owner = the instruction record before each MEM record
    mem_pos = np.flatnonzero(t == MEM)
    owner = np.searchsorted(ins_pos, mem_pos, side="right") - 1
    error = None
    if len(owner) and owner[0] < 0:
        bad = int(np.count_nonzero(owner < 0))
        error = "a memory access record with no instruction before it (after step -1)"
        mem_pos, owner = mem_pos[bad:], owner[bad:]
    ma = np.asarray(recs["a"][mem_pos])
    mb = np.asarray(recs["b"][mem_pos])
    mva = np.asarray(x_all[mem_pos], dtype="<u8")
    has_pa = (ma & 0x20) != 0
    nxt = np.minimum(mem_pos + 1, end - 1) if end else mem_pos
    if np.any(has_pa & ((mem_pos + 1 >= end) | (t[nxt] != PA))):
        raise Fallback("a PA record missing after its access")
    pa = np.where(has_pa, x_all[nxt] if len(nxt) else np.zeros(0, "<u8"), 0).astype("<u8")
    is_store = (ma & 0x10) != 0
    amo = _amo_codes(bits)[owner] if len(owner) else np.zeros(0, "u1")
    # an AMO/SC is a load then a store callback in TCG: only the write is the access (plugin_reader)
    keep = ~((amo == 2) & ~is_store)
    access = np.where(amo == 2, STORE, np.where(amo == 1, LOAD, np.where(is_store, STORE, LOAD))).astype("u1")
    idx = mb & 15
    xpriv = PRIV_OF_IDX[idx & 3]
    if api >= 4:
        xv = ((idx >> 2) & 1).astype("i1")              # 10.0: MMU_2STAGE_BIT, any V=1 access
    else:
        xv = np.where(idx & 4, 1, -1).astype("i1")      # 7.2: V shown only for HLV/HSV
    owner, access, mva, xpriv, xv, pa, has_pa = (a[keep] for a in (owner, access, mva, xpriv, xv, pa, has_pa))

    # distinct accesses, numbered by first use
    key = np.empty(len(owner), dtype=[("acc", "u1"), ("va", "<u8"), ("p", "i1"), ("v", "i1"), ("pa", "<u8"),
                                      ("n", "?")])
    key["acc"], key["va"], key["p"], key["v"], key["pa"], key["n"] = access, mva, xpriv, xv, pa, ~has_pa
    if len(key):
        uniq, first, inv = np.unique(key, return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")
        rank = np.empty(len(order), dtype="<u4")
        rank[order] = np.arange(len(order), dtype="<u4")
        refs = rank[inv.reshape(-1)]
        uniq = uniq[order]
    else:
        uniq, refs = key, np.zeros(0, "<u4")
    xcount = np.bincount(owner, minlength=n_insn).astype("<u2") if n_insn else np.zeros(0, "<u2")

    # priv/V (API 4): the "priv" register read at each marker, carried to the next marker
    priv = np.full(n_insn, -1, dtype="i1")
    v = np.full(n_insn, -1, dtype="i1")
    mark_pos = np.flatnonzero(t == MARK)
    reg_pos = np.flatnonzero(t == REG)
    mark_k = np.asarray(x_all[mark_pos], dtype=np.int64)
    expect_k = np.searchsorted(ins_pos, mark_pos)
    if np.any(mark_k != expect_k):
        j = int(np.flatnonzero(mark_k != expect_k)[0])
        raise Fallback(f"marker record for instruction {int(mark_k[j])} at instruction {int(expect_k[j])}")
    # a marker's REG records follow its MARK record (difftrace.c: MARK, REG..., INSN)
    reg_owner = np.searchsorted(mark_pos, reg_pos, side="right") - 1
    regs_at: dict[int, dict] = {}
    if api >= 4 and len(reg_pos):
        ra, rx = recs["a"][reg_pos], x_all[reg_pos]
        for j, a, x in zip(reg_owner.tolist(), ra.tolist(), rx.tolist()):
            if 0 <= j < len(mark_pos) and a < len(REG_NAMES):
                regs_at.setdefault(j, {})[REG_NAMES[a]] = x
        pk, pvv = [], []
        for j, k in enumerate(mark_k.tolist()):
            p = regs_at.get(j, {}).get("priv")
            if p is not None and k < n_insn:
                pk.append(k)
                pvv.append(p)
        if pk:
            pk_a = np.array(pk)
            seg = np.searchsorted(pk_a, np.arange(n_insn), side="right") - 1
            pv_a = np.array(pvv, dtype=np.int64)
            ok = seg >= 0
            priv[ok] = (pv_a[seg[ok]] & 3).astype("i1")
            v[ok] = ((pv_a[seg[ok]] >> 2) & 1).astype("i1")

    # traps: through the reference reader's rules, marker by marker
    inserted: list[tuple[int, int, Trap]] = []      # (before instruction k, pc, trap): steps of their own
    attached: dict[int, Trap] = {}                  # instruction k -> its trap
    mark_pcs = {}
    for j, k in enumerate(mark_k.tolist()):
        pcm, traps = marks.pop(k, (None, None))
        if pcm is None:
            error = error or f"marker {k} is in the record file but not in QEMU's log"
            n_cut = k
            break
        if k < n_insn and int(pc[k]) != pcm:
            error = error or f"marker {k} at {pcm:#x} but the instruction is at {int(pc[k]):#x}"
            n_cut = k
            break
        mark_pcs[k] = pcm
        if traps:
            err = _place(traps, k, pc, bits, ilen, icls, attached, inserted, stats)
            if err:
                error = error or err
                n_cut = k
                break
            regs = regs_at.get(j, {}) if api >= 4 else {}
            if regs and k < n_insn:
                _check(traps[-1], regs, int(pc[k]), k, attached, inserted, priv, v, stats)
    else:
        n_cut = n_insn
        if tail_traps and stats["limit"] is None:      # past the limit QEMU ran on unrecorded: not steps
            err = _place(tail_traps, n_insn, pc, bits, ilen, icls, attached, inserted, stats)
            if err:
                error = error or err
        if marks and stats["limit"] is None:
            error = error or f"{len(marks)} marker(s) in QEMU's log have no record (first: {min(marks)})"
    stats["error"] = error

    # assemble: instructions [0, n_cut) with the inserted trap steps before their instruction
    return _assemble(n_cut, pc, bits, priv, v, xcount, refs, owner, uniq, attached, inserted, max_steps, stats)


def _place(traps, k, pc, bits, ilen, icls, attached, inserted, stats) -> str | None:
    """plugin_reader's ``place`` for the traps logged before the marker of instruction ``k``."""
    last_k = k - 1                                   # the last step made: instruction k-1 ...
    last_is_cur = True                               # ... unless a trap step was inserted after it
    last_trap = attached.get(last_k) if last_k >= 0 else None
    if inserted and inserted[-1][0] == k:
        last_is_cur, last_trap = False, inserted[-1][2]
    for tr in traps:
        stats["traps"] += 1
        if (not tr.interrupt and last_k >= 0 and last_is_cur and last_trap is None
                and int(pc[last_k]) == tr.epc):
            attached[last_k] = tr
            last_trap = tr
            continue
        if last_k >= 0 or not last_is_cur:
            if last_is_cur and last_trap is None:
                cls = int(icls[last_k])
                if cls != OTHER:
                    length = int(ilen[last_k])
                    succ = (int(pc[last_k]) + length, _static_target(int(pc[last_k]), int(bits[last_k]), length))
                    if tr.epc not in succ:
                        return (f"trap line ({tr.raw}) cannot be placed: step at {int(pc[last_k]):#x} cannot be "
                                f"followed by pc {tr.epc:#x} and is not at the trap's epc")
        inserted.append((k, tr.epc, tr))
        last_is_cur, last_trap = False, tr
    return None


def _check(trap, regs, marker_pc, k, attached, inserted, priv, v, stats) -> None:
    """plugin_reader's ``check`` and the mode fix-up of the trap's own step."""
    p = regs.get("priv")
    dump = dict(regs, pc=marker_pc, v=(p >> 2) & 1 if p is not None else 0)
    got = None if trap.interrupt else _entry(dump, trap)
    if got is None:
        stats["traps_unchecked"] += 1
        return
    trap.target, trap.htval, trap.gva = got
    trap.tinst = _tinst(dump, dump, trap)
    trap.fields = _fields(dump, trap.target)
    stats["traps_checked"] += 1
    pv = _mode_before(trap, dump)
    if pv[0] is None:
        return
    own = next((j for j, e in enumerate(inserted) if e[2] is trap), None)
    if own is not None:                               # a fetch-fault step: its mode is the trap's record
        inserted[own] = inserted[own] + (pv,)
        return
    kk = next((kk for kk, tt in attached.items() if tt is trap), None)
    if kk is not None and (int(priv[kk]), int(v[kk])) != pv:
        stats["mode_checks_failed"] += 1


def _assemble(n_cut, pc, bits, priv, v, xcount, refs, owner, uniq, attached, inserted, max_steps, stats) -> Columns:
    keep_rows = owner < n_cut
    refs, xcount = refs[keep_rows], xcount[:n_cut]
    pc, bits, priv, v = pc[:n_cut], bits[:n_cut], priv[:n_cut], v[:n_cut]
    has = np.ones(n_cut, dtype=bool)
    ins = [e for e in inserted if e[0] <= n_cut]
    if ins:
        at = np.array([e[0] for e in ins], dtype=np.int64)
        pc = np.insert(pc, at, np.array([e[1] for e in ins], dtype="<u8"))
        bits = np.insert(bits, at, 0)
        has = np.insert(has, at, False)
        pri = np.array([e[3][0] if len(e) > 3 else -1 for e in ins], dtype="i1")
        vv = np.array([e[3][1] if len(e) > 3 else -1 for e in ins], dtype="i1")
        priv, v = np.insert(priv, at, pri), np.insert(v, at, vv)
        xcount = np.insert(xcount, at, 0)
    # step index of instruction k = k + inserted steps before it; of an inserted step: its position
    shift = np.searchsorted(np.array([e[0] for e in ins], dtype=np.int64), np.arange(n_cut), side="right") \
        if ins else np.zeros(n_cut, dtype=np.int64)
    traps = {int(k + shift[k]): tr for k, tr in attached.items() if k < n_cut}
    for j, e in enumerate(ins):
        traps[int(e[0] + j)] = e[2]
    n = len(pc)
    if max_steps is not None and n > max_steps:
        stats["step_limit"] = True
        rows = int(xcount[:max_steps].sum())
        pc, bits, has, priv, v, xcount, refs = (pc[:max_steps], bits[:max_steps], has[:max_steps], priv[:max_steps],
                                                v[:max_steps], xcount[:max_steps], refs[:rows])
        traps = {i: tr for i, tr in traps.items() if i < max_steps}
        n = max_steps
    stats["steps"] = n
    table = {"access": uniq["acc"], "va": uniq["va"], "priv": uniq["p"], "v": uniq["v"], "pa": uniq["pa"],
             "pa_none": uniq["n"]}
    return Columns(pc, bits, has, priv, v, xcount, refs, table, traps, stats)


def to_steps(c: Columns):
    """The Steps the columns stand for (tests compare them with plugin_reader.steps; a writer
    without a bulk path takes them)."""
    from difftest.trace import Step, Xlat
    tab = c.table
    xl = [Xlat(access=ACCESSES[int(a)], va=int(va), priv=int(p), v=None if v < 0 else int(v),
               pa=None if nn else int(pa))
          for a, va, p, v, pa, nn in zip(tab["access"], tab["va"], tab["priv"], tab["v"], tab["pa"], tab["pa_none"])]
    start = np.concatenate(([0], np.cumsum(c.xcount, dtype=np.int64)))
    refs = c.refs.tolist()
    for i in range(c.n):
        pr, vv = int(c.priv[i]), int(c.v[i])
        s = Step(i=i, pc=int(c.pc[i]), insn=int(c.insn[i]) if c.has_insn[i] else None,
                 priv=None if pr < 0 else pr, v=None if vv < 0 else vv,
                 xlats=[xl[r] for r in refs[start[i]:start[i + 1]]])
        tr = c.traps.get(i)
        if tr is not None:
            s.trap = tr
        yield s
