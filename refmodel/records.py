"""The records a hart produces, one per step: the model's own types, which the harness's trace
schema (``difftest.trace``) re-exports and writes.  Here, in the model, so that ``refmodel`` is used
and tested without ``difftest`` (it imports nothing from the harness).

Field meanings are the trace schema's (docs/ARCHITECTURE.md section 5): ``priv`` is the nominal
privilege (0 U, 1 S -- HS when v=0, VS when v=1 --, 3 M), ``v`` the virtualisation mode (Priv.
20240411, H chapter), ``access`` one of "fetch", "load", "store" (AMOs and SC are stores, as the
spec reports their faults), addresses plain ints, physical addresses system-physical (SPA).
A value a backend cannot show is ``None``, never a guess.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class WalkLevel:
    """One PTE read during a walk (model only): enough for a report to explain it."""
    stage: str          # "vs" | "g" | "s" (satp, V=0)
    level: int          # 0 = leaf-most level (4 KiB), up to levels-1 (root)
    pte_addr: int       # SPA the PTE was read from (after implicit G-stage translation for VS tables)
    pte: int            # the 64-bit value read
    decision: str       # e.g. "pointer", "leaf", "invalid (V=0)", "reserved W=1,R=0", "misaligned superpage"


@dataclass
class Xlat:
    """One address translation a step performed (or, for QEMU, a logged TLB fill)."""
    access: str                     # "fetch" | "load" | "store"
    va: int                         # the address translated (GVA when v=1, VA otherwise)
    priv: int                       # effective privilege of the access (after MPRV/HLV)
    v: int | None = None            # 1 when two-stage translation applies (V=1, HLV/HSV, MPRV+MPV);
                                    # None: not shown (QEMU 7.2's plugin sees V only for HLV/HSV)
    gpa: int | None = None          # first-stage result (None: stage faulted, or not shown)
    pa: int | None = None           # final SPA (None: faulted, or not shown)
    fault_stage: str | None = None  # None | "vs" | "g" | "s" | "pmp"
    fault_cause: int | None = None  # exception code when the translation faulted
    implicit: bool = False          # fault hit an implicit G-stage access for a VS-stage PTE
    vs_leaf_level: int | None = None  # level of the leaf (0 = 4 KiB), None for Bare / no leaf
    g_leaf_level: int | None = None
    maybe_stale: bool = False       # a PTE it used was written since the last relevant fence
    walk: list[WalkLevel] | None = None
    raw: str | None = None          # backend's own log line(s) for this record, for reports


@dataclass
class Trap:
    cause: int                      # exception or interrupt code (without the interrupt bit)
    interrupt: bool = False
    epc: int | None = None
    tval: int | None = None
    htval: int | None = None        # htval or mtval2, whichever the target mode writes
    tinst: int | None = None        # htinst or mtinst
    gva: bool | None = None
    target: str | None = None       # "M" | "HS" | "VS"
    # every status field trap entry writes, as "csr.FIELD" -> value (Priv. 20240411 3.1.6.1 and the
    # H chapter's "Trap Entry"): target M: mstatus.MPP/MPV/MPIE/MIE; HS: hstatus.SPV/SPVP,
    # sstatus.SPP/SPIE/SIE (the HS copies); VS: vsstatus.SPP/SPIE/SIE.  GVA is ``gva`` above.
    # None: not shown; a key left out: not shown by that backend.
    fields: dict | None = None
    raw: str | None = None


@dataclass
class Step:
    i: int                          # 0-based step index
    pc: int
    insn: int | None = None         # instruction bits (16- or 32-bit), None when not fetched/shown
    priv: int | None = None         # before the step
    v: int | None = None
    trap: Trap | None = None        # the exception this step raised, if any
    xlats: list[Xlat] = field(default_factory=list)
    uart: str = ""                  # bytes written to the UART by this step (model); QEMU: ""
    regs: dict[str, int] | None = None  # full state, only in bisect windows
    raw: str | None = None          # backend's own log text for the step


# The model's compact per-step record (refmodel.hart.Hart.records): a plain tuple, because
# building one costs a third of building a Step and the model pays it on every instruction.
RECORD_FIELDS = ("i", "pc", "insn", "priv", "v", "xlats", "trap", "uart")


def step_from_record(r: tuple) -> Step:
    """The Step a compact record stands for (trap and uart stored only when set; otherwise the
    dataclass's class-level defaults answer, as for every other field left out)."""
    st = object.__new__(Step)
    st.__dict__ = {"i": r[0], "pc": r[1], "insn": r[2], "priv": r[3], "v": r[4], "xlats": r[5]}
    if r[6] is not None:
        st.trap = r[6]
    if r[7]:
        st.uart = r[7]
    return st
