"""The comparison of two binary traces in bulk (issue 14): the same results as the step-by-step
loop (difftest.compare._compare_steps), at millions of steps per second.

Both loops drive one ``compare._Pass``: every step pair that is not *trivially equal* goes through
``_Pass.pair`` -- materialised Step objects and ``compare_step.cmp_step``, exactly as before.  A step
pair is trivially equal when the columns alone show that ``cmp_step`` would accept it without
touching any state but the counters:

* same pc; insn, priv, V equal where both sides show them and the pair compares them;
* no trap and no odd (JSON-stored) step on either side, and not a probe mark (marks move the probe
  segment and the resynchronisation state);
* translations: with ``xlat.all`` on both sides (model~model) the same count and rows with equal
  access, va, priv, V, GPA and PA, nothing faulted or maybe-stale; otherwise each translation the
  logging side shows (QEMU: its TLB fills) has the candidate ``cmp_step`` would pick -- the first
  of the other side's translations at that step with the same access and page (and V; priv too
  between two logging backends) -- with the same GPA/PA plus the page offset, neither faulted,
  the model's not maybe-stale; a translation of an M-mode access for which the model records none
  (M mode without MPRV is never translated) needs QEMU's PA to equal its VA, as ``cmp_step``'s
  identity rule does.

Those pairs only count: ``steps_compared``, ``xlats_compared`` (what ``cmp_step`` would have
counted), the report window (kept as step indices, materialised when a report needs it) and the
stale rule's history (``LazyHistory``: the model's last non-stale answer per page, looked up in the
columns only when a maybe-stale translation is checked).  The window of 8 steps, the Divergence
and the findings are therefore those of the step-by-step loop; tests/test_compare_bulk.py checks
both loops agree on hand-made and real traces.
"""
from __future__ import annotations

import collections

import numpy as np

from difftest.compare import WINDOW, _Pass
from difftest.compare_step import _answer, _exposes
from difftest.marks import Marks
from difftest.trace import Footer
from difftest.tracebin import (ACCESS_CODES, F_INSN, F_ODD, F_TRAP, F_UART, T_FC_NONE, T_GPA_NONE, T_PA_NONE,
                               T_STALE, T_V_NONE)
from difftest.tracebin_read import chunk_step

_U12 = np.uint64(12)
_MASK12 = np.uint64(0xFFF)


class LazyWindow:
    """The report window (the last WINDOW compared pairs) as Steps or as step indices; a pair of
    indices becomes Steps only when the window is read (a divergence, a trap-CSR difference)."""

    def __init__(self, A, B):
        self.A, self.B = A, B
        self.d = collections.deque(maxlen=WINDOW)

    def append(self, pair) -> None:
        self.d.append(pair)

    def add_range(self, ia: int, ib: int, k: int) -> None:
        for t in range(max(0, k - WINDOW), k):
            self.d.append((ia + t, ib + t))

    def clear(self) -> None:
        self.d.clear()

    def __len__(self) -> int:
        return len(self.d)

    def __iter__(self):
        for i, (x, y) in enumerate(self.d):
            if type(x) is int:
                x, y = self.A.step(x), self.B.step(y)
                self.d[i] = (x, y)
            yield x, y


class LazyHistory:
    """``Ctx.history`` for the bulk pass: instead of a dict updated at every step, the compared
    step pairs are kept as ranges and ``get(key)`` finds, in the columns, the last non-stale
    (``stale_too``: the last, maybe-stale or not -- ``Ctx.history_any``) translation with that key
    (page, priv, V, access) of a side that records every translation, in a compared pair before the
    current one -- what the dict held (later pairs, and within a pair side b after side a and later
    translations, overwrite)."""

    def __init__(self, A, B, all_a: bool, all_b: bool):
        self.sides = [(s, k) for s, k, e in ((A, 0, all_a), (B, 1, all_b)) if e]
        self.ranges: list[list[int]] = []        # [ia, ib, length], in comparison order
        self._rows: dict = {}

    def add_range(self, ia: int, ib: int, k: int) -> None:
        r = self.ranges
        if r and r[-1][0] + r[-1][2] == ia and r[-1][1] + r[-1][2] == ib:
            r[-1][2] += k
        else:
            r.append([ia, ib, k])

    def seen(self, sa, sb) -> None:
        """compare_step calls this where it used to update the dict: this pair's answers count."""
        self.add_range(sa.i, sb.i, 1)

    def any_view(self) -> "_AnyView":
        """``Ctx.history_any``: the same lookup, maybe-stale translations included."""
        return _AnyView(self)

    def _match(self, side, key, stale_too: bool = False) -> np.ndarray:
        m = self._rows.get((side[1], key, stale_too))
        if m is None:
            page, priv, v, access = key
            c = side[0].table.cols
            if not c or access not in ACCESS_CODES:
                m = np.zeros(0, bool)
            else:
                m = (((c["va"] >> _U12) == np.uint64(page)) & (c["priv"] == priv) & (c["v"] == v)
                     & (c["access"] == ACCESS_CODES[access]))
                if not stale_too:
                    m &= (c["bits"] & T_STALE) == 0
            self._rows[(side[1], key, stale_too)] = m
        return m

    def get(self, key, default=None, stale_too: bool = False):
        if type(key[0]) is not int or key[0] < 0 or key[0] >= 1 << 52 or type(key[1]) is not int \
                or type(key[2]) is not int:
            return default
        best = None
        for side in self.sides:
            rows = self._match(side, key, stale_too)
            if not rows.any():
                continue
            hit = self._last(side, rows)
            if hit is not None and (best is None or hit[:3] > best[:3]):
                best = hit
        if best is None:
            return default
        return _answer(best[3].table.xlat(best[4]))

    def _last(self, side, rows):
        reader, k = side
        for ri in range(len(self.ranges) - 1, -1, -1):
            st, ln = self.ranges[ri][k], self.ranges[ri][2]
            hi = st + ln
            while hi > st:
                c = reader.chunk_at(hi - 1)
                lo = max(st, c.first)
                a, b = int(c.xoff[lo - c.first]), int(c.xoff[hi - c.first])
                if b > a:
                    refs = c.refs[a:b]
                    hits = np.flatnonzero(rows[refs])
                    if len(hits):
                        p = a + int(hits[-1])
                        j = int(np.searchsorted(c.xoff, p, side="right")) - 1
                        return (ri, c.first + j - st, k, reader, int(c.refs[p]))
                hi = lo
        return None


class _AnyView:
    def __init__(self, h: LazyHistory):
        self.h = h

    def get(self, key, default=None):
        return self.h.get(key, default, stale_too=True)


def _plus_eq(base, off, target):
    """base + off == target exactly (base, target u64; |off| < 4096), without u64 wrap-around."""
    d = target - base
    pos = off >= 0
    return np.where(pos, (target >= base) & (d == off.astype(np.uint64)),
                    (base > target) & ((base - target) == (-off).astype(np.uint64)))


def _pairs_found(L, cnt_x, rx, X, cnt_y, y_start, ry_all, Y):
    """For each row of side x (steps 0..L-1, ``cnt_x`` rows each): does side y have, at the same
    step, a row of the same access and page (and V, where both show it)?"""
    t = np.repeat(np.arange(L), cnt_x)
    acc, page = X["access"][rx], X["va"][rx] >> _U12
    xv, xvn = X["v"][rx], (X["bits"][rx] & np.uint8(T_V_NONE)) != 0
    y0, ny = y_start[t], cnt_y[t]
    found = np.zeros(len(rx), bool)
    last = len(ry_all) - 1
    for k in range(int(ny.max(initial=0))):
        valid = (ny > k) & ~found
        if not valid.any() or last < 0:
            continue
        yr = ry_all[np.minimum(y0 + k, last)].astype(np.int64)
        yvn = (Y["bits"][yr] & np.uint8(T_V_NONE)) != 0
        found |= valid & (Y["access"][yr] == acc) & ((Y["va"][yr] >> _U12) == page) & (xvn | yvn | (Y["v"][yr] == xv))
    return t, found


def _xlat_block(ca, oa, cb, ob, L, ta, tb, mode, gpa_both, q_every=False):
    """(steps whose translations are not trivially equal, translations compare_step counts per step)."""
    cnt_a = ca.xcount[oa:oa + L].astype(np.int64)
    cnt_b = cb.xcount[ob:ob + L].astype(np.int64)
    bad = np.zeros(L, bool)
    if mode == "all":
        bad |= cnt_a != cnt_b
        ra = ca.refs[ca.xoff[oa]:ca.xoff[oa + L]]
        rb = cb.refs[cb.xoff[ob]:cb.xoff[ob + L]]
        if len(ra) == 0 and len(rb) == 0:
            return bad, cnt_a
        step_a = np.repeat(np.arange(L), cnt_a)
        step_b = np.repeat(np.arange(L), cnt_b)
        same = ~bad
        ra, rb, st = ra[same[step_a]], rb[same[step_b]], step_a[same[step_a]]
        A, B = ta.cols, tb.cols
        ok = np.ones(len(ra), bool)
        for col in ("access", "va", "priv", "v", "gpa", "pa"):
            ok &= A[col][ra] == B[col][rb]
        nb = np.uint8(T_GPA_NONE | T_PA_NONE)
        ok &= (A["bits"][ra] & nb) == (B["bits"][rb] & nb)
        for T, r in ((A, ra), (B, rb)):
            ok &= (T["fstage"][r] == 0) & ((T["bits"][r] & np.uint8(T_FC_NONE)) != 0) \
                & ((T["bits"][r] & np.uint8(T_STALE)) == 0)
        bad[st[~ok]] = True
        return bad, cnt_a
    # one side (or neither) records every translation: each translation of the logging side q
    # against the first candidate on side m, as compare_step._cmp_xlats picks it
    if mode == "a-all":
        cm, om, cnt_m, tm, cq, oq, cnt_q, tq, match_priv = ca, oa, cnt_a, ta, cb, ob, cnt_b, tb, False
    elif mode == "b-all":
        cm, om, cnt_m, tm, cq, oq, cnt_q, tq, match_priv = cb, ob, cnt_b, tb, ca, oa, cnt_a, ta, False
    else:       # two logging backends: side a's fills against side b's (priv must match too)
        cm, om, cnt_m, tm, cq, oq, cnt_q, tq, match_priv = cb, ob, cnt_b, tb, ca, oa, cnt_a, ta, True
    rq = cq.refs[cq.xoff[oq]:cq.xoff[oq + L]]
    if q_every:
        # every model access (not fetch) needs a counterpart the logging side shows
        rm = cm.refs[cm.xoff[om]:cm.xoff[om + L]]
        if len(rm):
            Mc = tm.cols
            nf = Mc["access"][rm] != np.uint8(ACCESS_CODES["fetch"])
            tm_, fm = _pairs_found(L, cnt_m, rm, Mc, cnt_q, cq.xoff[oq + np.arange(L)] if L else np.zeros(0, np.int64),
                                   cq.refs, tq.cols)
            bad[tm_[nf & ~fm]] = True
    if len(rq) == 0:
        return bad, cnt_q
    t = np.repeat(np.arange(L), cnt_q)
    Q, M = tq.cols, tm.cols
    q_acc, q_page, q_v = Q["access"][rq], Q["va"][rq] >> _U12, Q["v"][rq]
    q_priv = Q["priv"][rq]
    q_vnone = (Q["bits"][rq] & np.uint8(T_V_NONE)) != 0     # compare_step: xq.v None matches any V
    m_start = cm.xoff[om + t]
    m_cnt = cnt_m[t]
    found = np.zeros(len(rq), bool)
    chosen = np.zeros(len(rq), np.int64)
    kmax = int(m_cnt.max(initial=0))
    last = len(cm.refs) - 1
    for k in range(kmax):
        valid = (m_cnt > k) & ~found
        if not valid.any():
            continue
        mref = cm.refs[np.minimum(m_start + k, last)].astype(np.int64) if last >= 0 else np.zeros(len(rq), np.int64)
        hit = valid & (M["access"][mref] == q_acc) & ((M["va"][mref] >> _U12) == q_page) & (q_vnone | ((M["bits"][mref] & np.uint8(T_V_NONE)) != 0) | (M["v"][mref] == q_v))
        if match_priv:
            hit &= M["priv"][mref] == q_priv
        chosen[hit] = mref[hit]
        found |= hit
    ok = found.copy()
    if found.any():
        m = chosen
        qb, mb = Q["bits"][rq], M["bits"][m]
        ok &= (M["fstage"][m] == 0) & (Q["fstage"][rq] == 0) & ((qb & np.uint8(T_FC_NONE)) != 0) \
            & ((mb & np.uint8(T_STALE)) == 0)
        off = (Q["va"][rq] & _MASK12).astype(np.int64) - (M["va"][m] & _MASK12).astype(np.int64)
        if gpa_both:
            none = ((qb | mb) & np.uint8(T_GPA_NONE)) != 0
            ok &= none | _plus_eq(M["gpa"][m], off, Q["gpa"][rq])
        none = ((qb | mb) & np.uint8(T_PA_NONE)) != 0
        ok &= none | _plus_eq(M["pa"][m], off, Q["pa"][rq])
    if not match_priv:
        # no candidate, but an M-mode access (priv 3, V 0 or not shown, no fault): without MPRV it is
        # never translated (Priv. 3.1.6.3), the model records nothing and compare_step holds QEMU's
        # answer to the identity -- trivially equal when QEMU's PA is its VA (or not shown)
        qb = Q["bits"][rq]
        ident = ~found & (q_priv == 3) & (q_vnone | (q_v == 0)) & (Q["fstage"][rq] == 0) \
            & ((qb & np.uint8(T_FC_NONE)) != 0)
        ok |= ident & (((qb & np.uint8(T_PA_NONE)) != 0) | (Q["pa"][rq] == Q["va"][rq]))
    bad[t[~ok]] = True
    return bad, cnt_q


def _block(P, ca, oa, cb, ob, L, ta, tb, mode):
    """(steps in the block that need cmp_step, translations counted per step)."""
    both = P.both
    pa, pb = ca.pc[oa:oa + L], cb.pc[ob:ob + L]
    fa, fb = ca.flags[oa:oa + L], cb.flags[ob:ob + L]
    bad = (pa != pb) | (((fa | fb) & np.uint8(F_TRAP | F_ODD)) != 0)
    if "insn" in both:
        has = ((fa & fb) & np.uint8(F_INSN)) != 0
        bad |= has & (ca.insn[oa:oa + L] != cb.insn[ob:ob + L])
    if "priv" in both:
        for x, y in ((ca.priv[oa:oa + L], cb.priv[ob:ob + L]), (ca.v[oa:oa + L], cb.v[ob:ob + L])):
            bad |= (x >= 0) & (y >= 0) & (x != y)
    mk = P.marks
    if mk.n:
        lo, span = np.uint64(mk.lo), np.uint64(4 * mk.n)
        for p in (pa, pb):
            rel = p - lo                      # wraps below the sled: then far above span
            bad |= (rel < span) & ((rel & np.uint64(3)) == 0)
    xb, xcnt = _xlat_block(ca, oa, cb, ob, L, ta, tb, mode, "xlat.gpa" in both, getattr(P, "q_every", False))
    return bad | xb, xcnt


class _Marks:
    """One side's probe marks, found in its pc column chunk by chunk."""

    def __init__(self, reader, marks: Marks):
        self.r, self.m = reader, marks
        self._by_chunk: dict[int, list] = {}

    def _chunk(self, k: int) -> list:
        got = self._by_chunk.get(k)
        if got is None:
            c = self.r.chunk(k)
            got = []
            if self.m.n:
                rel = c.pc - np.uint64(self.m.lo)
                js = np.flatnonzero((rel < np.uint64(4 * self.m.n)) & ((rel & np.uint64(3)) == 0)
                                    & ((c.flags & np.uint8(F_ODD)) == 0))
                got = [(c.first + j, self.m.of(int(c.pc[j]))) for j in js.tolist()]
                for j in np.flatnonzero(c.flags & np.uint8(F_ODD)).tolist():    # odd steps: their own pc
                    pc = chunk_step(c, j, self.r.table).pc
                    mm = self.m.of(pc) if type(pc) is int else None
                    if mm is not None:
                        got.append((c.first + j, mm))
                got.sort()
            self._by_chunk[k] = got
        return got

    def from_(self, i: int):
        """(step, mark) for every mark at step >= i, in order."""
        if i >= self.r.n:
            return
        for k in range(self.r.chunk_index(i), self.r.nchunks()):
            for j, m in self._chunk(k):
                if j >= i:
                    yield j, m

    def at(self, i: int):
        c = self.r.chunk_at(i)
        if c.flags[i - c.first] & F_ODD:
            pc = chunk_step(c, i - c.first, self.r.table).pc
            return self.m.of(pc) if type(pc) is int else None
        return self.m.of(int(c.pc[i - c.first]))


def _to_mark(P, side: _Marks, tag: str, s: int, in_print: bool):
    """compare._compare_steps' to_mark on columns: the next start/print/end mark at or after step
    ``s`` (None at the end), counting the steps that printed a probe's lines on the way."""
    pos = s
    n = side.r.n
    for i, m in side.from_(s):
        if in_print:
            P.printing[tag] += i - pos
        if m[0] in (Marks.START, Marks.PRINT, Marks.END):
            return i
        in_print = m[0] == Marks.FAIL
        if in_print:
            P.printing[tag] += 1
        pos = i + 1
    if in_print and n > pos:
        P.printing[tag] += n - pos
    return None


def _uart_steps(reader) -> list[tuple[int, int]]:
    out, total = [], 0
    for k in range(reader.nchunks()):
        c = reader.chunk(k)
        for j in np.flatnonzero(c.flags & np.uint8(F_UART | F_ODD)).tolist():
            u = chunk_step(c, j, reader.table).uart
            if u:
                out.append((total, c.first + j))
                total += len(u)
    return out


def compare_columns(A, B, *, guest=None, sled=None):
    """``compare.compare_full`` for two ``tracebin.BinTraceReader``s."""
    ha, hb = A.header, B.header
    all_a, all_b = _exposes(ha, "xlat.all"), _exposes(hb, "xlat.all")
    mode = "all" if all_a and all_b else "a-all" if all_a else "b-all" if all_b else "log"
    win = LazyWindow(A, B)
    hist = LazyHistory(A, B, all_a, all_b)
    P = _Pass(ha, hb, guest, sled, window=win, history=hist)
    # a logging side that shows every explicit access (the plugin): a model access it did not make
    # is a difference too (compare_step: xlat.missing), so such steps go to cmp_step
    P.q_every = mode in ("a-all", "b-all") and _exposes(hb if mode == "a-all" else ha, "xlat.access")
    ctx = P.ctx
    ma, mb = _Marks(A, P.marks), _Marks(B, P.marks)
    ia = ib = 0
    NA, NB = A.n, B.n
    desynced = False
    while ia < NA and ib < NB:
        ca, cb = A.chunk_at(ia), B.chunk_at(ib)
        oa, ob = ia - ca.first, ib - cb.first
        L = min(ca.n - oa, cb.n - ob)
        bad, xcnt = _block(P, ca, oa, cb, ob, L, A.table, B.table, mode)
        cum = np.zeros(L + 1, np.int64)
        np.cumsum(xcnt, out=cum[1:])
        pos = 0
        moved = False
        for k in np.flatnonzero(bad).tolist() + [L]:
            if k > pos:                              # trivially equal pairs: counted, remembered
                P.n += k - pos
                ctx.xl_cmp += int(cum[k] - cum[pos])
                hist.add_range(ia + pos, ib + pos, k - pos)
                win.add_range(ia + pos, ib + pos, k - pos)
            if k == L:
                break
            if P.pair(A.step(ia + k), B.step(ib + k)):
                pos = k + 1
                continue
            # resynchronise at the next probe mark both runs reach (as compare._compare_steps)
            ja = _to_mark(P, ma, "a", ia + k + 1, P.region_print)
            jb = _to_mark(P, mb, "b", ib + k + 1, P.region_print)
            while ja is not None and jb is not None and ma.at(ja) != mb.at(jb):
                if Marks.order(ma.at(ja)) < Marks.order(mb.at(jb)):
                    ja = _to_mark(P, ma, "a", ja + 1, False)
                else:
                    jb = _to_mark(P, mb, "b", jb + 1, False)
            if ja is None or jb is None:
                desynced = True
                ia, ib = NA, NB
            else:
                P.resyncs += 1
                ia, ib = ja, jb
            moved = True
            break
        if not moved:
            ia += L
            ib += L
    fa = A.footer or Footer(status="error", message="trace not read to the end", truncated=True)
    fb = B.footer or Footer(status="error", message="trace not read to the end", truncated=True)
    return P.finish(NA, NB, desynced, fa, fb, lambda: {"a": _uart_steps(A), "b": _uart_steps(B)})
