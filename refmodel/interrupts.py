"""Interrupts: which one a hart takes at an instruction boundary, and where it goes.

Priv. 20240411 3.1.9 "Machine Interrupt (mip and mie) Registers", 3.1.8 (mideleg), 10.1.3
(sip/sie), and the H chapter's hvip/hip/hie, hideleg and "Trap Entry" (9.2.3-9.2.4, 9.4.3, 9.5).

* mip (3.1.9): MSIP is "written by accesses to memory-mapped control registers" (ACLINT MSWI,
  refmodel.aclint), MTIP is "cleared by writing to the memory-mapped machine-mode timer compare
  register" (mtime >= mtimecmp, refmodel.aclint), MEIP comes from an interrupt controller (none
  here: 0).  SSIP/STIP/SEIP are software-writable bits of mip (STIP writable by M because Sstc
  is absent; SEIP reads the OR of its writable bit and an external signal -- none here).  H
  "Machine Interrupt Registers": "Bits SGEIP, VSEIP, VSTIP, and VSSIP in mip are aliases for the
  same bits in hypervisor CSR hip"; hip.VSSIP/VSTIP/VSEIP are hvip's bits (plus, for VSEIP, the
  guest external interrupt selected by hstatus.VGEIN -- GEILEN is 0 here, so none).
* Enabling (3.1.9): "An interrupt i will trap to M-mode ... if all of the following are true:
  (a) either the current privilege mode is M and the MIE bit in the mstatus register is set, or
  the current privilege mode has less privilege than M-mode; (b) bit i is set in both mip and
  mie; and (c) if register mideleg exists, bit i is not set in mideleg."  S (10.1.3): "(a) either
  the current privilege mode is S and the SIE bit in the sstatus register is set, or the current
  privilege mode has less privilege than S-mode" -- and with H, V=1 is less privileged than HS.
  VS: an interrupt delegated by both mideleg and hideleg traps to VS-mode only when V=1, and then
  when in VU-mode or in VS-mode with vsstatus.SIE=1 (H "hideleg": "...delegated to VS-mode").
* Priority (3.1.9): "Interrupts to M-mode take priority over any interrupts to lower privilege
  modes"; within one level "MEI, MSI, MTI, SEI, SSI, STI", and H adds "SGEI, VSEI, VSSI, VSTI"
  after them.
* Cause (H "hideleg"): "When a virtual supervisor external interrupt (code 10) is delegated to
  VS-mode, it is automatically translated by the machine into a supervisor external interrupt
  (code 9) for VS-mode, including the value written to vscause on an interrupt trap" -- and
  likewise VSTI 6 -> 5, VSSI 2 -> 1.  Trap.cause of an interrupt is the bit in mip (as QEMU's
  -d int line prints it); the code written to xcause is ``xcause_code``.
* WFI (3.3.3): resumes "if a locally enabled interrupt becomes pending, even if it has been
  delegated to a higher-privilege mode", unaffected by MIE/SIE and mideleg: mip & mie != 0.
"""
from __future__ import annotations

SSI, VSSI, MSI = 1, 2, 3
STI, VSTI, MTI = 5, 6, 7
SEI, VSEI, MEI = 9, 10, 11
SGEI = 12
PRIORITY = (MEI, MSI, MTI, SEI, SSI, STI, SGEI, VSEI, VSSI, VSTI)
NAMES = {SSI: "SSI", VSSI: "VSSI", MSI: "MSI", STI: "STI", VSTI: "VSTI", MTI: "MTI", SEI: "SEI", VSEI: "VSEI",
         MEI: "MEI", SGEI: "SGEI"}
VS_BITS = (1 << VSSI) | (1 << VSTI) | (1 << VSEI)
MIE_BIT, SIE_BIT = 1 << 3, 1 << 1


def mip(h) -> int:
    """The value of mip: the software-writable bits (csr 0x344), hvip's VS bits, MSIP and MTIP
    from the ACLINT."""
    c = h.csr
    a = h.mem.aclint
    return c[0x344] | (c[0x645] & VS_BITS) | (a.msip << MSI) | ((1 << MTI) if a.mtip() else 0)


def _first(bits: int) -> int:
    for i in PRIORITY:
        if bits >> i & 1:
            return i
    raise AssertionError(bits)


def select(h, pending: int | None = None):
    """The interrupt the hart takes now: (mip bit, target "M"|"HS"|"VS"), or None."""
    c = h.csr
    p = (mip(h) if pending is None else pending) & c[0x304]
    if not p:
        return None
    priv, v = h.priv, h.v
    deleg = c[0x303]
    m = p & ~deleg
    if m and (priv < 3 or c[0x300] & MIE_BIT):
        return _first(m), "M"
    if priv == 3:
        return None
    hid = c[0x603]
    s = p & deleg & ~hid
    if s and (v or priv == 0 or c[0x300] & SIE_BIT):
        return _first(s), "HS"
    vs = p & deleg & hid
    if vs and v and (priv == 0 or c[0x200] & SIE_BIT):
        return _first(vs), "VS"
    return None


def xcause_code(cause: int, target: str) -> int:
    """The exception code xcause receives: VS-level interrupts delegated to VS are translated to
    their supervisor codes (H "hideleg"); everything else keeps its mip bit number."""
    return cause - 1 if target == "VS" and cause in (VSSI, VSTI, VSEI) else cause


def wfi_wakes(h) -> bool:
    """Priv. 3.3.3: a locally enabled interrupt is pending (global enables and mideleg ignored)."""
    return bool(mip(h) & h.csr[0x304])


def wfi_never_resumes(mip_value: int, mie_value: int) -> bool:
    """Whether a hart waiting in WFI with these mip and mie can never resume: the program's end
    (the end "wfi").  Priv. 3.3.3: the hart resumes "if a locally enabled interrupt becomes
    pending" -- mip & mie, whatever the global enables and delegation.  On this one-hart machine
    the only bit that can *become* pending while the hart waits is MTIP (the timer, 3.2.1): MSIP
    is written by an MSWI store (no other hart makes one), the S/VS bits by the hart's own CSR
    writes, MEIP/SEIP by the PLIC, whose devices raise nothing (refmodel/plic.py; QEMU's console
    is a file, never read).  So: nothing locally enabled is pending and the timer is not enabled.
    The QEMU backends decide their end by this same function on the values they read from QEMU
    at the WFI (difftest/backends/wfi_end.py)."""
    return not (mip_value & mie_value) and not (mie_value >> MTI & 1)


# ---------------------------------------------------------------------- the hart's side
NEVER = 1 << 62
STOP = object()          # irq_boundary's answer when the hart stalls in a WFI that nothing wakes
# CSRs on which the interrupt-trap conditions "expressly depend" (3.1.9): after an explicit write
# to one of them (or an xRET) the conditions "must also be evaluated immediately"
CONDITION_CSRS = frozenset({0x300, 0x100, 0x200, 0x304, 0x104, 0x204, 0x604, 0x344, 0x144, 0x244, 0x644, 0x645,
                            0x303, 0x603, 0x607})


class InterruptSync:
    """Mixed into refmodel.hart.Hart: the check at instruction boundaries and WFI's wait.

    Alone (``irq_schedule`` None) the hart takes an interrupt at the first boundary where one is
    pending and enabled.  Synchronised with an implementation (``sync_interrupts``; ARCHITECTURE
    "Interrupts and time"), the implementation's interrupt points drive the model: at a step where
    the implementation took an interrupt the model takes its own highest-priority pending-and-
    enabled interrupt, or -- none being pending and enabled -- takes none and notes the step in
    ``irq_not_pending``; elsewhere the model holds a pending-and-enabled interrupt back, but no
    longer than the spec allows: at once after an explicit write to a CSR the conditions depend on
    or an xRET (3.1.9 "must also be evaluated immediately following ..."), at a WFI, and otherwise
    after ``irq_bound`` steps ("in a bounded amount of time") -- then the model takes it itself and
    the comparison shows the step where the implementation did not."""

    def _init_interrupts(self, profile):
        from refmodel.aclint import Aclint
        self.irq_steps = 0                  # interrupt steps so far: they run no instruction (no time)
        self.irq_at = 0                     # next step index at which the boundary check runs
        self.irq_schedule = None            # {step: mip bit} of the implementation, when synchronised
        self.irq_bound = 0
        self.irq_since = None               # step since which an interrupt is held back
        self.irq_now = False                # a condition CSR was written / xRET / WFI: no holding back
        self.irq_not_pending: list = []     # (step, cause) the implementation took, not pending here
        self.stalled = False                # a WFI that no interrupt can ever end
        a = Aclint(lambda: self.steps - self.irq_steps, shift=getattr(profile, "icount_shift", 0),
                   mtimecmp_reset=getattr(profile, "mtimecmp_reset", 0),
                   wfi_wake=getattr(profile, "wfi_wake", "armed"))
        a.on_change = self._irq_recheck
        self.mem.aclint = a

    def _irq_recheck(self):
        self.irq_at = 0

    def sync_interrupts(self, schedule: dict, bound: int) -> None:
        """Follow an implementation's interrupt points: ``schedule`` maps step index -> mip bit."""
        self.irq_schedule = dict(schedule)
        self.irq_bound = int(bound)
        self.irq_at = 0

    def irq_boundary(self, i: int):
        """Run at step ``i`` before its instruction when i >= irq_at: an interrupt record to
        yield, STOP, or None (execute the instruction)."""
        if self.stalled:
            return STOP
        sel = select(self)
        sched = self.irq_schedule
        now, self.irq_now = self.irq_now, False
        if sched is None:
            if sel is not None:
                return self._interrupt_record(i, sel)
            self.irq_at = i + self._steps_until_timer()
            return None
        q = sched.get(i)
        if q is not None:
            self.irq_since = None
            if sel is not None:
                return self._interrupt_record(i, sel)
            self.irq_not_pending.append((i, q))
            self.irq_at = i + 1
            return None
        if sel is not None:
            if self.irq_since is None:
                self.irq_since = i
            if now or i - self.irq_since >= self.irq_bound:
                self.irq_since = None
                return self._interrupt_record(i, sel)
            self.irq_at = i + 1
            return None
        self.irq_since = None
        nxt = min((s for s in sched if s > i), default=NEVER)
        self.irq_at = min(nxt, i + self._steps_until_timer())
        return None

    def _steps_until_timer(self) -> int:
        n = self.mem.aclint.insns_until_mtip()
        return NEVER if not n else n

    def _interrupt_record(self, i, sel):
        cause, target = sel
        pc, priv, v = self.pc, self.priv, self.v
        trap = self.take_interrupt(cause, target, pc)
        self.irq_steps += 1
        return (i, pc, None, priv, v, [], trap, "")

    def wfi_wait(self) -> None:
        """Priv. 3.3.3 WFI once it may execute: resume at once when a locally enabled interrupt
        is pending; else wait -- time jumps to when the timer wakes the hart (refmodel.aclint),
        or, with nothing that can end the wait, the hart stalls for good."""
        self.irq_now = True                 # an interrupt held back is not held across a WFI
        self.irq_at = 0
        pending, enabled = mip(self), self.csr[0x304]
        if pending & enabled:
            return
        if wfi_never_resumes(pending, enabled):
            self.stalled = True             # the end "wfi": the WFI step stands, nothing follows it
            return
        a = self.mem.aclint                 # only the timer can end the wait: time jumps to it
        wake = a.wake_ns()
        if wake is not None:
            a.wait_until(wake)
