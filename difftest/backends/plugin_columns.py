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

from difftest.backends.plugin_reader import (HEAD, INSN, LIMIT, MAGIC, MARK, MEM, OTHER, PA, RAM, REC, REG,
                                             REG_NAMES, VAL, _mode_before, _static_target, fill_trap, parse_log)
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


SLICE = 1 << 20                 # records per read (16 MiB)


def _slices(path, nrec: int):
    """(first record, records) of the file slice by slice, read into one reused buffer: a fresh
    16 MiB array per slice left the allocator holding tens of MB that counted in the peak."""
    buf = np.empty(min(SLICE, max(nrec, 1)), DT)
    raw = buf.view(np.uint8)
    with open(path, "rb") as f:
        for s0 in range(0, nrec, SLICE):
            want = min(SLICE, nrec - s0)
            got = f.readinto(raw[:want * DT.itemsize]) // DT.itemsize
            yield s0, buf[:got]
            if got < want:
                return


def _read_t(path, nrec: int) -> np.ndarray:
    """The type byte of every record, read slice by slice."""
    t = np.empty(nrec, "u1")
    for s0, blk in _slices(path, nrec):
        t[s0:s0 + len(blk)] = blk["t"]
    return t


def _gather(path, nrec: int, wants) -> list:
    """For each (sorted positions, field, dtype) of ``wants``: that field of the records at those
    positions, reading the file once, a slice at a time."""
    outs = [np.empty(len(pos), d) for pos, _, d in wants]
    for s0, blk in _slices(path, nrec):
        s1 = s0 + len(blk)
        for (pos, fld, _), out in zip(wants, outs):
            lo, hi = np.searchsorted(pos, s0), np.searchsorted(pos, s1)
            if hi > lo:
                out[lo:hi] = blk[fld][pos[lo:hi] - s0]
    return outs


def _counts(owner: np.ndarray, n: int) -> np.ndarray:
    """Accesses per instruction (u16): ``owner`` is non-decreasing (records are in execution order),
    so the counts come from its runs -- np.bincount would make an int64 array as long as the run."""
    out = np.zeros(n, "<u2")
    if len(owner):
        starts = np.flatnonzero(np.diff(owner, prepend=owner[0] - 1))
        lens = np.diff(starts, append=len(owner))
        out[owner[starts]] = lens
    return out


def _groups(h: np.ndarray):
    """np.unique(h, return_index=True, return_inverse=True) with about half its memory: a stable
    argsort (so each group's first index is its smallest) and int32 group numbers where they fit."""
    order = np.argsort(h, kind="stable")
    hs = h[order]
    new = np.empty(len(hs), bool)
    new[:1] = True
    np.not_equal(hs[1:], hs[:-1], out=new[1:])
    del hs
    it = np.int32 if len(h) < (1 << 31) - 1 else np.int64
    gid = np.cumsum(new, dtype=it)
    gid -= 1
    first = order[new]
    del new
    inv = np.empty(len(h), it)
    inv[order] = gid
    return first, inv


def _distinct(va: np.ndarray, pa: np.ndarray, code: np.ndarray):
    """(first index of each distinct access, access -> distinct number) over (va, pa, code).  np.unique
    on structured rows sorts raw bytes (17 s for 4.4 M accesses); a 64-bit mix of the fields sorts as
    integers, and every access is then checked against its group's first, so a hash collision can
    only send the work back to the exact (slow) way, never merge two different accesses."""
    with np.errstate(over="ignore"):
        h = (va * np.uint64(0x9E3779B97F4A7C15)) ^ ((pa + np.uint64(0x632BE59BD9B4E019)) * np.uint64(0xBF58476D1CE4E5B9)) \
            ^ ((code + np.uint64(1)) * np.uint64(0x94D049BB133111EB))
    first, inv = _groups(h)
    del h
    rep = first[inv]
    if not ((va == va[rep]).all() and (pa == pa[rep]).all() and (code == code[rep]).all()):
        key = np.empty(len(va), dtype=[("va", "<u8"), ("pa", "<u8"), ("c", "<u8")])
        key["va"], key["pa"], key["c"] = va, pa, code
        _, first, inv = np.unique(key, return_index=True, return_inverse=True)
        inv = inv.reshape(-1)
    return first, inv


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
    nrec = size // DT.itemsize
    t = _read_t(rec_path, nrec)
    head = np.fromfile(rec_path, DT, count=1) if nrec else np.zeros(0, DT)
    if len(t) == 0 or t[0] != HEAD or head["w"][0] != MAGIC or head["a"][0] != api:
        raise Fallback("no difftrace header of this API")
    if int(t.max(initial=0)) > VAL or np.count_nonzero(t == HEAD) != 1:
        raise Fallback("a record type the bulk reader does not know")
    end = len(t)
    lim = np.flatnonzero(t == LIMIT)
    if len(lim):
        end = int(lim[0])
        stats["limit"] = int(_gather(rec_path, nrec, [(lim[:1], "x", "<u8")])[0][0])
    t = t[:end]
    # positions as int32 where they fit: the arrays of a 10 M-step run are most of the peak memory
    pos_t = np.int32 if end < (1 << 31) - 1 else np.int64
    ins_pos = np.flatnonzero(t == INSN).astype(pos_t)
    n_insn = len(ins_pos)
    mem_pos = np.flatnonzero(t == MEM).astype(pos_t)
    nxt = np.minimum(mem_pos + 1, end - 1).astype(pos_t) if end else mem_pos
    mark_pos = np.flatnonzero(t == MARK)
    reg_pos = np.flatnonzero(t == REG)
    val_pos = np.flatnonzero(t == VAL)
    if len(val_pos) and (val_pos[0] == 0 or np.any(t[val_pos - 1] != PA)):
        raise Fallback("a VAL record not after a PA record")
    # the fields wanted, in two sequential passes over the file (a memory map of it would count its
    # ~300 MB in the peak): the accesses' first, so that the record types and the access positions
    # are gone before the instructions' fields -- the largest arrays -- are read
    ma, mb, mva, pa, mark_k, ra, rx = _gather(rec_path, nrec, [
        (mem_pos, "a", "u1"), (mem_pos, "b", "<u2"), (mem_pos, "x", "<u8"), (nxt, "x", "<u8"),
        (mark_pos, "x", "<i8"), (reg_pos, "a", "u1"), (reg_pos, "x", "<u8")])
    if len(val_pos):
        vpa, vval = _gather(rec_path, nrec, [(val_pos - 1, "x", "<u8"), (val_pos, "x", "<u8")])
        stats["io_stores"] = list(zip(vpa.tolist(), vval.tolist()))

    # accesses: owner = the instruction record before each MEM record
    owner = (np.searchsorted(ins_pos, mem_pos, side="right") - 1).astype(pos_t)
    error = None
    if len(owner) and owner[0] < 0:
        bad = int(np.count_nonzero(owner < 0))
        error = "a memory access record with no instruction before it (after step -1)"
        mem_pos, owner, nxt, ma, mb, mva, pa = (x[bad:] for x in (mem_pos, owner, nxt, ma, mb, mva, pa))
    has_pa = (ma & 0x20) != 0
    if np.any(has_pa & ((mem_pos + 1 >= end) | (t[nxt] != PA))):
        raise Fallback("a PA record missing after its access")
    expect_k = np.searchsorted(ins_pos, mark_pos)         # (the markers' own check, below)
    del t, nxt, mem_pos                                   # not needed past here: memory for what follows
    pc, bits, ilen, icls = _gather(rec_path, nrec, [
        (ins_pos, "x", "<u8"), (ins_pos, "w", "<u4"), (ins_pos, "a", "u1"), (ins_pos, "b", "<u2")])
    del ins_pos
    if api < 4:          # 7.2's PA of a non-I/O access outside main RAM is wrong: not shown (plugin_reader.RAM)
        odd = has_pa & ((ma & 0x40) == 0) & ((pa < np.uint64(RAM.start)) | (pa >= np.uint64(RAM.stop)))
        has_pa &= ~odd
    pa[~has_pa] = 0
    is_store = (ma & 0x10) != 0
    amo = _amo_codes(bits[owner]) if len(owner) else np.zeros(0, "u1")
    # an AMO/SC is a load then a store callback in TCG: only the write is the access (plugin_reader)
    keep = ~((amo == 2) & ~is_store)
    access = np.where(amo == 2, STORE, np.where(amo == 1, LOAD, np.where(is_store, STORE, LOAD))).astype("u1")
    idx = mb & 15
    xpriv = PRIV_OF_IDX[idx & 3]
    if api >= 4:
        xv = ((idx >> 2) & 1).astype("i1")              # 10.0: MMU_2STAGE_BIT, any V=1 access
    else:
        xv = np.where(idx & 4, 1, -1).astype("i1")      # 7.2: V shown only for HLV/HSV
    del ma, mb, idx, amo, is_store
    if not keep.all():
        owner, access, mva, xpriv, xv, pa, has_pa = (a[keep] for a in (owner, access, mva, xpriv, xv, pa, has_pa))
    del keep

    # distinct accesses, numbered by first use
    code = (access.astype(np.uint64) | (xpriv.astype(np.uint8).astype(np.uint64) << np.uint64(2))
            | (xv.astype(np.uint8).astype(np.uint64) << np.uint64(10)) | ((~has_pa).astype(np.uint64) << np.uint64(18)))
    del access, xpriv, xv, has_pa
    if len(code):
        first, inv = _distinct(mva, pa, code)
        order = np.argsort(first, kind="stable")
        rank = np.empty(len(order), dtype="<u4")
        rank[order] = np.arange(len(order), dtype="<u4")
        refs = rank[inv]
        pick = first[order]
        del inv, rank, first, order
    else:
        refs, pick = np.zeros(0, "<u4"), np.zeros(0, np.int64)
    uc = code[pick]
    uniq = {"acc": (uc & np.uint64(3)).astype("u1"), "va": mva[pick], "p": ((uc >> np.uint64(2)) & np.uint64(255)).astype("u1").astype("i1"),
            "v": ((uc >> np.uint64(10)) & np.uint64(255)).astype("u1").astype("i1"), "pa": pa[pick],
            "n": ((uc >> np.uint64(18)) & np.uint64(1)).astype(bool)}
    del code, mva, pa
    xcount = _counts(owner, n_insn)

    # priv/V (API 4): the "priv" register read at each marker, carried to the next marker
    priv = np.full(n_insn, -1, dtype="i1")
    v = np.full(n_insn, -1, dtype="i1")
    if np.any(mark_k != expect_k):
        j = int(np.flatnonzero(mark_k != expect_k)[0])
        raise Fallback(f"marker record for instruction {int(mark_k[j])} at instruction {int(expect_k[j])}")
    # a marker's REG records follow its MARK record (difftrace.c: MARK, REG..., INSN)
    reg_owner = np.searchsorted(mark_pos, reg_pos, side="right") - 1
    regs_at: dict[int, dict] = {}
    if api >= 4 and len(reg_pos):
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
            # forward fill: each instruction takes the last marker's value at or before it
            seg = np.full(n_insn, -1, dtype=np.int32)
            seg[np.array(pk)] = np.arange(len(pk), dtype=np.int32)
            np.maximum.accumulate(seg, out=seg)
            pv_a = np.array(pvv, dtype=np.int64)
            lut_p = np.append((pv_a & 3).astype("i1"), np.int8(-1))      # index -1: before any marker
            lut_v = np.append(((pv_a >> 2) & 1).astype("i1"), np.int8(-1))
            priv, v = lut_p[seg], lut_v[seg]
            del seg

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
    dump = fill_trap(trap, regs, marker_pc, stats)
    if dump is None:
        return
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
    # step index of instruction k = k + the steps inserted before it (only the trapping ones needed)
    ins_at = np.array([e[0] for e in ins], dtype=np.int64)
    traps = {int(k + np.searchsorted(ins_at, k, side="right")): tr for k, tr in attached.items() if k < n_cut}
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
