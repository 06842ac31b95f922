"""The comparison rules of one step pair (ARCHITECTURE section 7): pc, privilege and V, every
translation (or TLB fill) both sides show, the trap with the fields both expose, and the
trap-entry CSR values that are recorded without stopping (difftest.trap_csr).  A hard divergence
raises ``Mismatch``; ``difftest.compare`` runs these over two traces and re-synchronises.

Stale translations: Priv. 20240411, 10.3.2 (SFENCE.VMA) and 9.3.2 (HFENCE.GVMA) let a hart keep
using a translation after a PTE is written until the guest fences.  The model marks such a
translation ``maybe_stale``; when the other side's answer equals the translation the model gave
earlier for the same page and mode -- its last answer that was not maybe-stale, or its last answer
at all (a maybe-stale answer is what the PTEs held then, so a TLB may have cached it: PTEs written
twice without a covering fence, riscv-hyp-tests' hfence_test) -- the difference is *accepted* and
counted.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from difftest import findings as F
from difftest import trap_csr
from difftest.trace import Header, Step, Trap, Xlat

# Page-fault causes (Priv. 20240411, table 3.7 and 9.6.x): 12/13/15 instruction/
# load/store page fault (first stage), 20/21/23 guest-page faults (G-stage).
FIRST_STAGE_CAUSES = {12, 13, 15}
SECOND_STAGE_CAUSES = {20, 21, 23}
ACCESS_FAULT_CAUSES = {1, 5, 7}


def show(v) -> str:
    """A trace value as reports print it: hex for ints, 0/1 for flags, - for not shown."""
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(int(v))
    if isinstance(v, int):
        return hex(v)
    return str(v)


def _exposes(h: Header, key: str) -> bool:
    return bool(h.exposes.get(key))


def _stage_kind(stage: str | None, cause: int | None = None) -> str | None:
    if stage == "g":
        return "second-stage"
    if stage in ("vs", "s"):
        return "first-stage"
    if cause in SECOND_STAGE_CAUSES:
        return "second-stage"
    if cause in FIRST_STAGE_CAUSES:
        return "first-stage"
    return None


class Mismatch(Exception):
    def __init__(self, kind, fld, va, vb, explanation="", xa=None, xb=None, cause=None):
        super().__init__(explanation)
        self.kind, self.field, self.va, self.vb, self.cause = kind, fld, va, vb, cause
        self.explanation, self.xa, self.xb = explanation, xa, xb


class StaleStop(Exception):
    """Control flow diverged, but only because of a permitted stale translation."""


@dataclass
class Ctx:
    ha: Header
    hb: Header
    both: set
    # earlier model answers per (page, priv, v, access): (gpa page, pa page, fault cause) -- the last
    # one not maybe-stale, and the last one of all (compare_bulk.LazyHistory / .any_view in the bulk pass)
    history: dict = field(default_factory=dict)
    history_any: dict = field(default_factory=dict)
    stale: int = 0
    xl_cmp: int = 0
    xl_unmatched: int = 0
    last_trap: tuple | None = None   # (step, cause) of the last trap both took
    guest: str = ""
    trap_csr: trap_csr.Collector = field(default_factory=trap_csr.Collector)
    window: object = None            # the comparison window (for the first trap-CSR difference's report)
    seg: str = F.SETUP               # the probe the comparison is in (difftest.findings)


def _key(x: Xlat):
    return (x.va >> 12, x.priv, x.v, x.access)


def _answer(x: Xlat):
    return (None if x.gpa is None else x.gpa >> 12, None if x.pa is None else x.pa >> 12,
            x.fault_cause if x.fault_stage else None)


def _same_as_old(ans, old) -> bool:
    """Does the other side's answer equal the model's earlier answer (fields it shows)?"""
    if old is None:
        return False
    return all(x is None or x == y for x, y in zip(ans[:2], old[:2])) and ans[2] == old[2]


def _cmp_xlat(ctx: Ctx, xm: Xlat, xq: Xlat, m_is_a: bool) -> None:
    """Compare one logged translation ``xq`` with the model's ``xm`` for the same page."""
    ctx.xl_cmp += 1
    off = xq.va - xm.va
    fault_m = xm.fault_stage is not None
    fault_q = xq.fault_stage is not None or (xq.fault_cause is not None)
    prob = None
    if fault_m != fault_q:
        st = xm.fault_stage if fault_m else xq.fault_stage
        kind = _stage_kind(st, xm.fault_cause if fault_m else xq.fault_cause) or "first-stage"
        prob = (kind, "xlat.fault", f"{xm.fault_stage}-stage cause {xm.fault_cause}" if fault_m else "ok",
                f"{xq.fault_stage}-stage cause {xq.fault_cause}" if fault_q else "ok",
                f"{'the model' if fault_m else 'the model did not fault, but the other side'} "
                f"faulted translating {xq.access} va={show(xq.va)}")
    elif fault_m and fault_q:
        if xm.fault_cause is not None and xq.fault_cause is not None and xm.fault_cause != xq.fault_cause:
            prob = (_stage_kind(xm.fault_stage, xm.fault_cause) or "first-stage", "xlat.fault_cause",
                    xm.fault_cause, xq.fault_cause, "different fault cause for the same translation")
        elif xq.fault_stage and xm.fault_stage != xq.fault_stage:
            prob = (_stage_kind(xm.fault_stage) or "first-stage", "xlat.fault_stage", xm.fault_stage,
                    xq.fault_stage, "the translation faulted in different stages")
    else:
        if "xlat.gpa" in ctx.both and xm.gpa is not None and xq.gpa is not None and xm.gpa + off != xq.gpa:
            prob = ("first-stage", "xlat.gpa", xm.gpa + off, xq.gpa,
                    f"VS-stage result (GPA) for {xq.access} va={show(xq.va)} differs")
        elif xm.pa is not None and xq.pa is not None and xm.pa + off != xq.pa:
            kind = "second-stage" if (xq.v if xq.v is not None else xm.v) else "first-stage"
            prob = (kind, "xlat.pa", xm.pa + off, xq.pa,
                    f"final physical address for {xq.access} va={show(xq.va)} differs")
    if prob is None:
        return
    if xm.maybe_stale and (_same_as_old(_answer(xq), ctx.history.get(_key(xm)))
                           or _same_as_old(_answer(xq), ctx.history_any.get(_key(xm)))):
        ctx.stale += 1
        return
    kind, fld, vm, vq, why = prob
    if m_is_a:
        raise Mismatch(kind, fld, vm, vq, why, xm, xq)
    raise Mismatch(kind, fld, vq, vm, why, xq, xm)


def _cmp_xlats(ctx: Ctx, sa: Step, sb: Step) -> None:
    all_a, all_b = _exposes(ctx.ha, "xlat.all"), _exposes(ctx.hb, "xlat.all")
    if all_a and all_b:
        for i, (xa, xb) in enumerate(zip(sa.xlats, sb.xlats)):
            _cmp_xlat(ctx, xa, xb, True)
        if len(sa.xlats) != len(sb.xlats):
            raise Mismatch("first-stage", "xlat.count", len(sa.xlats), len(sb.xlats),
                            "the two models performed a different number of translations")
    elif all_a or all_b:
        sm, sq = (sa, sb) if all_a else (sb, sa)
        for xq in sq.xlats:
            cand = [x for x in sm.xlats if x.access == xq.access and (x.va >> 12) == (xq.va >> 12)
                    and (xq.v is None or x.v == xq.v)]
            if not cand:
                if xq.priv == 3 and not xq.v and not xq.fault_stage:
                    # M-mode without MPRV is never translated (Priv. 3.1.6.3 / 10.1.11):
                    # the model records nothing, the answer is the identity.
                    _cmp_xlat(ctx, Xlat(xq.access, xq.va, 3, 0, pa=xq.va), xq, all_a)
                    continue
                ctx.xl_unmatched += 1
                continue
            _cmp_xlat(ctx, cand[0], xq, all_a)
        hq = ctx.hb if all_a else ctx.ha
        if _exposes(hq, "xlat.access") and sa.trap is None and sb.trap is None and not _no_callback(sm.insn):
            # the other side shows every explicit access (the plugin): one the model made that it
            # did not (or the reverse, caught above as unmatched) is a difference too
            seen = {(x.access, x.va >> 12) for x in sq.xlats}
            # a misaligned access that crosses into the next page: the model translates both pages,
            # QEMU's plugin reports the one access at its first address (measured on guests/misaligned)
            seen |= {(a, pg + 1) for a, pg in seen}
            for xm in sm.xlats:
                if xm.access != "fetch" and not xm.fault_stage and (xm.access, xm.va >> 12) not in seen:
                    va, vb = (f"{xm.access} va={show(xm.va)}", "none") if all_a else ("none", f"{xm.access} va={show(xm.va)}")
                    raise Mismatch("first-stage", "xlat.missing", va, vb,
                                   f"the model made a {xm.access} at va={show(xm.va)} that the other side did not",
                                   xm if all_a else None, None if all_a else xm)
    else:
        # two logging backends (e.g. QEMU 7.2 ~ 10.0): compare the fills both logged at this step
        for xa in sa.xlats:
            xb = next((x for x in sb.xlats if x.access == xa.access and (x.va >> 12) == (xa.va >> 12)
                       and (x.v is None or xa.v is None or x.v == xa.v) and x.priv == xa.priv), None)
            if xb is None:
                ctx.xl_unmatched += 1
                continue
            _cmp_xlat(ctx, xa, xb, True)
    # remember the model's answers for the stale rule
    hist = ctx.history
    if type(hist) is not dict:
        hist.seen(sa, sb)               # compare_bulk.LazyHistory: finds the answers in the columns
        return
    for s, e in ((sa, all_a), (sb, all_b)):
        if e:
            for x in s.xlats:
                ctx.history_any[_key(x)] = _answer(x)
                if not x.maybe_stale:
                    hist[_key(x)] = _answer(x)


def _no_callback(insn) -> bool:
    """Instructions whose access QEMU's plugin API does not show: HLVX.HU/HLVX.WU on 10.0 (no memory
    callback, measured) and SC (a failed SC makes no access; the model may translate it)."""
    if insn is None:
        return False
    if insn & 0x7F == 0x73 and (insn >> 12) & 7 == 4 and (insn >> 20) & 0x1F == 3 and (insn >> 25) in (0x32, 0x34):
        return True                                  # hlvx.hu / hlvx.wu
    return insn & 0x7F == 0x2F and (insn >> 27) == 3  # sc.w / sc.d


def _fault_xlat(s: Step) -> Xlat | None:
    for x in s.xlats:
        if x.fault_stage is not None:
            return x
    return None


def _cmp_trap(ctx: Ctx, sa: Step, sb: Step) -> None:
    ta, tb = sa.trap, sb.trap
    if ta is None and tb is None:
        return
    if (ta is None) != (tb is None) or ta.cause != tb.cause or ta.interrupt != tb.interrupt:
        fx = _fault_xlat(sa) or _fault_xlat(sb)
        cause = (ta or tb).cause if (ta is None or tb is None) else None
        kind = _stage_kind(fx.fault_stage if fx else None, cause)
        if kind is None and ta is not None and tb is not None:
            kind = _stage_kind(None, ta.cause) or _stage_kind(None, tb.cause)
        # a permitted stale translation explains a missing fault (or a fault
        # the other side took because its old translation was invalid) -- not two faults of the
        # same address from translations neither side may have kept: there both walked afresh and
        # only the cause differs (e.g. QEMU 7.2's load fault for an AMO, riscv-tests rv64ua-v-lrsc,
        # where the instruction's fetch translation was the maybe-stale one)
        causes = {t.cause for t in (ta, tb) if t is not None and not t.interrupt}
        fxa, fxb = _fault_xlat(sa), _fault_xlat(sb)
        fresh_both = (fxa is not None and fxb is not None and fxa.va == fxb.va
                      and not fxa.maybe_stale and not fxb.maybe_stale)
        if not fresh_both and causes <= FIRST_STAGE_CAUSES | SECOND_STAGE_CAUSES | ACCESS_FAULT_CAUSES and any(
                x.maybe_stale for x in sa.xlats + sb.xlats):
            ctx.stale += 1
            raise StaleStop()
        va = _trap_str(ta)
        vb = _trap_str(tb)
        raise Mismatch(kind or "trap", "trap", va, vb,
                        "one side took a trap the other did not" if (ta is None) != (tb is None)
                        else "different trap cause", fx if fx in sa.xlats else None, fx if fx in sb.xlats else None)
    checks = [("epc", None), ("tval", "trap.tval"), ("htval", "trap.htval"), ("tinst", "trap.tinst"),
              ("gva", "trap.gva"), ("target", "trap.target")]
    for attr, key in checks:
        if key is not None and key not in ctx.both:
            continue
        va, vb = getattr(ta, attr), getattr(tb, attr)
        if va is None or vb is None:
            continue
        if attr == "gva":
            va, vb = bool(va), bool(vb)
        if attr == "tval" and va != vb and ta.cause in INSN_TVAL_CAUSES and not ta.interrupt:
            # Priv. 20240411 3.1.16: on an illegal-instruction trap mtval is zero or the faulting
            # instruction's bits (H: a virtual-instruction trap writes it "as for an illegal-instruction
            # exception") -- the implementation's choice, QEMU's even from one instruction to another
            bits = {x for x in (sa.insn, sb.insn) if x is not None}
            if {va, vb} <= {0} | bits:
                continue
        if va != vb and attr in trap_csr.SOFT_FIELDS:
            # invisible to the guest until it reads the CSR: recorded, the comparison goes on
            ctx.trap_csr.add(sa.i, sa.pc, ta.cause, ta.target, attr, va, vb,
                             list(ctx.window) + [(sa, sb)] if ctx.trap_csr.first is None else None, ctx.seg)
            continue
        if va != vb:
            kind = "trap"
            if attr == "htval" and ta.cause in SECOND_STAGE_CAUSES:
                kind = "second-stage"       # htval = faulting GPA >> 2 (Priv. 9.4.9)
            raise Mismatch(kind, f"trap.{attr}", va, vb, f"trap {ta.cause}: {attr} differs", cause=ta.cause)
    if "trap.fields" in ctx.both and ta.fields and tb.fields and ta.target == tb.target:
        # every status field trap entry wrote (Trap.fields), each a recorded difference like htval:
        # the guest sees it only when it reads the CSR or returns (a wrong MPP shows at the MRET)
        for k, va in ta.fields.items():
            vb = tb.fields.get(k)
            if vb is not None and va != vb:
                ctx.trap_csr.add(sa.i, sa.pc, ta.cause, ta.target, k, va, vb,
                                 list(ctx.window) + [(sa, sb)] if ctx.trap_csr.first is None else None, ctx.seg)


INSN_TVAL_CAUSES = frozenset({2, 22})     # illegal / virtual instruction: mtval 0 or the instruction bits


def _trap_str(t: Trap | None) -> str:
    if t is None:
        return "no trap"
    return f"{'interrupt' if t.interrupt else 'cause'} {t.cause}" + (f" tval={show(t.tval)}" if t.tval is not None else "")


def cmp_step(ctx: Ctx, sa: Step, sb: Step) -> None:
    if sa.pc != sb.pc:
        raise Mismatch("control-flow", "pc", sa.pc, sb.pc, "different pc")
    if "insn" in ctx.both and sa.insn is not None and sb.insn is not None and sa.insn != sb.insn:
        raise Mismatch("control-flow", "insn", sa.insn, sb.insn, "different instruction bits at the same pc")
    if "priv" in ctx.both:
        if sa.priv is not None and sb.priv is not None and sa.priv != sb.priv:
            raise Mismatch("control-flow", "priv", sa.priv, sb.priv, "different privilege level")
        if sa.v is not None and sb.v is not None and sa.v != sb.v:
            raise Mismatch("control-flow", "v", sa.v, sb.v, "different virtualisation mode (V)")
    # translations before traps: a fault is explained by the stage that raised it
    _cmp_xlats(ctx, sa, sb)
    _cmp_trap(ctx, sa, sb)
    if sa.trap is not None:
        ctx.last_trap = (sa.i, sa.trap.cause)


def what_of(m: "Mismatch") -> str:
    """The class of a hard divergence, as findings name it (no pcs or addresses)."""
    if m.field in ("pc", "insn"):
        return f"control-flow {m.field}"
    if m.field in ("priv", "v"):
        return f"control-flow {m.field} {m.va}~{m.vb}"
    if m.field == "trap":
        return f"trap {_cause_word(m.va)}~{_cause_word(m.vb)}"
    if m.field.startswith("xlat."):
        acc = (m.xa or m.xb).access if (m.xa or m.xb) else "?"
        if m.field == "xlat.fault":
            return f"{m.field} {acc} {_fault_word(m.xa)}~{_fault_word(m.xb)}"
        if m.field in ("xlat.fault_cause", "xlat.fault_stage"):
            return f"{m.field} {acc} {m.va}~{m.vb}"
        return f"{m.field} {acc} differs"
    if m.field.startswith("trap."):
        return f"{m.field} cause={m.cause} {_vclass(m.field, m.va)}~{_vclass(m.field, m.vb)}"
    return m.field


def _vclass(fld: str, v) -> str:
    if fld == "trap.target":
        return str(v)
    return F.vclass(v)


def _cause_word(v: str) -> str:
    # _trap_str: "no trap" | "cause 21 tval=.." | "interrupt 5 ..."
    w = str(v).split()
    return "none" if w[:2] == ["no", "trap"] else (("i" if w[0] == "interrupt" else "") + w[1])


def _fault_word(x: Xlat | None) -> str:
    if x is None or (x.fault_stage is None and x.fault_cause is None):
        return "ok"
    return f"{x.fault_stage or ''}{x.fault_cause if x.fault_cause is not None else ''}"
