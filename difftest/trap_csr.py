"""Trap-entry CSR values: compared at every trap, without stopping the comparison.

What trap entry writes besides cause/epc/tval -- htval/mtval2, htinst/mtinst, GVA and the status
fields (MPP/MPV/MPIE/MIE, SPV/SPVP, SPP/SPIE/SIE: ``Trap.fields``; Priv. 20240411 3.1.6.1 and H
"Trap Entry") -- is invisible to the guest until it reads the CSR.  A backend that
writes a wrong value there usually runs on exactly like the other (QEMU leaving mstatus.GVA at 1
from an earlier trap does, on every later ecall), so stopping at the first such difference would
hide every later finding of the run.  The comparator therefore records these differences, grouped
by (field, cause, value class), and goes on; each group has its own fingerprint, so the nightly
can hold each one to a reviewed known divergence like any other finding:

    guest|hgatp|vs|a~b|trap.<field>|cause=<code>|<class a>~<class b>

The value class is what a rule can be written about without pinning addresses: ``0``/``1`` for
GVA, ``0``/``nz`` (nonzero) for htval and tinst, the value itself for a status field.  Cause, epc, tval and the target mode do change
what the guest runs next and stay hard divergences (difftest.compare).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

SOFT_FIELDS = ("htval", "tinst", "gva")


def value_class(fld: str, v) -> str:
    """0/1 for GVA, 0/nz for htval and tinst (difftest.findings.vclass); a status field
    ("mstatus.MPP", Trap.fields) by its value, which is a mode or a bit."""
    from difftest.findings import vclass
    if "." in fld:
        return str(int(v))
    return vclass(bool(v) if fld == "gva" else v)


@dataclass
class TrapCsrGroup:
    field: str                 # "htval" | "tinst" | "gva" | a status field, e.g. "mstatus.MPP"
    cause: int
    target: str | None         # the trap's target mode (side a)
    a: object                  # the first differing values
    b: object
    first_step: int
    pc: int
    count: int = 1
    fingerprint: str = ""
    known: str | None = None   # set by the nightly (difftest.nightly.tag_known)


@dataclass
class Collector:
    groups: dict = field(default_factory=dict)
    first: tuple | None = None     # (step, pc, field, a, b, window) of the first difference
    per_probe: dict = field(default_factory=dict)   # probe -> {what: [count, first step, pc, summary]}

    def to_probes(self, probes: dict) -> None:
        """Hand each probe's differences to its difftest.findings.ProbeDiff."""
        from difftest.findings import ProbeDiff
        for p, d in self.per_probe.items():
            probes.setdefault(p, ProbeDiff()).soft.update(d)

    def add(self, step: int, pc: int, cause: int, target, fld: str, va, vb, window, probe: str = "-") -> None:
        key = (fld, cause, value_class(fld, va), value_class(fld, vb))
        per = self.per_probe.setdefault(probe, {}).setdefault(
            f"trap.{fld} cause={cause} {key[2]}~{key[3]}", [0, step, pc,
                                                             f"trap {cause} at step {step} pc={pc:#x}: {fld} "
                                                             f"differs ({va:#x} vs {vb:#x})"
                                                             if not isinstance(va, bool) else
                                                             f"trap {cause} at step {step} pc={pc:#x}: {fld} "
                                                             f"differs ({int(va)} vs {int(vb)})"])
        per[0] += 1
        g = self.groups.get(key)
        if g is None:
            self.groups[key] = TrapCsrGroup(fld, cause, target, va, vb, step, pc)
            if self.first is None:
                self.first = (step, pc, fld, va, vb, window)
        else:
            g.count += 1

    def finish(self, guest, hgatp, vs, a: str, b: str) -> list[dict]:
        out = []
        for (fld, cause, ca, cb), g in self.groups.items():
            g.fingerprint = f"{guest}|{hgatp}|{vs}|{a}~{b}|trap.{fld}|cause={cause}|{ca}~{cb}"
            out.append(asdict(g))
        return sorted(out, key=lambda g: g["first_step"])


def describe(groups: list[dict], a: str, b: str, show) -> str:
    """One line per group, for summaries and reports."""
    return "; ".join(f"trap.{g['field']} at {g['count']} trap(s) with cause {g['cause']} (first step {g['first_step']} "
                     f"pc={show(g['pc'])}: {a}={show(g['a'])} {b}={show(g['b'])})" for g in groups)
