"""ACLINT of QEMU virt: MSWI (msip) and MTIMER (mtimecmp, mtime), and the time base they share.

RISC-V ACLINT specification 1.0: MSWI "Machine-level Software Interrupt Device" (one 32-bit
MSIP register per hart; bit 0 is the hart's mip.MSIP, the upper 31 bits are wired to zero) and
MTIMER "Machine-level Timer Device" (64-bit MTIMECMP per hart, one 64-bit MTIME).  Priv. 20240411
3.2.1 "Machine Timer (mtime and mtimecmp) Registers": "A machine timer interrupt becomes pending
whenever mtime contains a value greater than or equal to mtimecmp, treating the values as unsigned
integers"; mip.MTIP is read-only and cleared by writing mtimecmp (3.1.9).  mip.MSIP is "written by
accesses to memory-mapped control registers" (3.1.9): here, MSWI's msip.

Addresses follow QEMU's virt memory map (hw/riscv/virt.c: VIRT_CLINT at 0x2000000; the ACLINT
default layout puts MSWI at the base, 0x4000 bytes, and MTIMER right after, with MTIMECMP at
offset 0 and MTIME at offset 0x7ff8): msip0 0x2000000, mtimecmp0 0x2004000, mtime 0x200bff8.
The time base is virt's 10 MHz (one mtime tick = 100 ns).

Time follows instructions (deterministic; what QEMU does under ``-icount shift=S,sleep=off``):
each instruction attempt -- retired or trapped, never the step of an interrupt, which runs no
instruction -- lasts 2^S ns, and an instruction reads the time as it stands *after* its own
2^S ns.  Measured on QEMU 7.2 and 10.0 (docs/ARCHITECTURE.md "Interrupts and time"): the
instruction with 0-based index k reads mtime = floor((k + 1) * 2^S / 100) at S = 0, 3 and 7,
trapped ecalls and illegal instructions counted.  A WFI that waits moves time forward to the
wake-up point (``Aclint.wake_ns``), exactly as -icount with sleep=off warps the virtual clock to
the next timer deadline while the hart is halted.
"""
from __future__ import annotations

MSWI_BASE, MSWI_SIZE = 0x2000000, 0x4000
MTIMER_BASE, MTIMER_SIZE = 0x2004000, 0x8000
MTIMECMP_OFF, MTIME_OFF = 0x0, 0x7FF8
TIMEBASE_HZ = 10_000_000
NS_PER_TICK = 1_000_000_000 // TIMEBASE_HZ          # 100
M64 = (1 << 64) - 1


class AclintAccessError(Exception):
    """An access the device does not accept (size or alignment): an access fault on the bus."""


class Aclint:
    """One hart's MSWI + MTIMER.  ``insns`` is a callable returning how many instructions the hart
    has attempted *before* the current one (the time base of -icount)."""

    def __init__(self, insns, shift: int = 0, mtimecmp_reset: int = 0, wfi_wake: str = "armed"):
        self._insns = insns
        self.shift = shift
        self.warp_ns = 0                  # added by WFI waits (sleep=off: the clock jumps to the deadline)
        self.delta = 0                    # mtime - (ns // 100): changed by writes to mtime
        self.msip = 0
        # Priv. 3.2.1 leaves mtimecmp's reset value open; QEMU virt resets it to 0 (measured: mip.MTIP
        # reads 1 from the first instruction on both QEMUs), so a timer is pending until software sets it
        self.mtimecmp = mtimecmp_reset & M64
        # When a WFI that waits for the timer wakes (how long WFI stalls is the implementation's,
        # Priv. 3.3.3): "exact" at the first ns at which mtime >= mtimecmp; "armed" at the deadline
        # computed when mtimecmp (or mtime) was last written, now + (mtimecmp - mtime) ticks -- a
        # timer armed in ns from the time of the write, which is what QEMU's ACLINT does (measured).
        self.wfi_wake = wfi_wake
        self.armed_ns: int | None = None
        self.changed = False              # set on every write: the hart re-evaluates interrupts
        self._arm()

    # -------------------------------------------------------------- time
    def ns(self) -> int:
        """Nanoseconds as the current instruction sees them: (attempted insns + 1) * 2^S + warps."""
        return ((self._insns() + 1) << self.shift) + self.warp_ns

    def mtime(self) -> int:
        return (self.ns() // NS_PER_TICK + self.delta) & M64

    def mtip(self) -> bool:
        """Priv. 3.2.1: pending whenever mtime >= mtimecmp (unsigned)."""
        return self.mtime() >= self.mtimecmp

    def insns_until_mtip(self) -> int | None:
        """How many more instructions until mtime >= mtimecmp (0: already), None: never (no 64-bit
        wrap is modelled)."""
        target_ns = (self.mtimecmp - self.delta) * NS_PER_TICK
        now = self.ns()
        if now >= target_ns:
            return 0
        per = 1 << self.shift
        return -(-(target_ns - now) // per)

    def _arm(self) -> None:
        now = self.ns()
        cur = now // NS_PER_TICK + self.delta
        self.armed_ns = None if self.mtimecmp <= cur else now + (self.mtimecmp - cur) * NS_PER_TICK

    def wake_ns(self) -> int | None:
        """The ns at which a WFI waiting for the timer resumes (None: no timer will fire)."""
        if self.mtip():
            return self.ns()
        if self.wfi_wake == "armed" and self.armed_ns is not None:
            return max(self.armed_ns, (self.mtimecmp - self.delta) * NS_PER_TICK)
        return (self.mtimecmp - self.delta) * NS_PER_TICK

    def wait_until(self, ns: int) -> None:
        """A halted hart's clock jumps to ``ns`` (the current instruction then ends at ``ns``)."""
        now = self.ns()
        if ns > now:
            self.warp_ns += ns - now

    # -------------------------------------------------------------- MMIO
    def read(self, pa: int, size: int) -> int:
        if MSWI_BASE <= pa < MSWI_BASE + MSWI_SIZE:
            off = pa - MSWI_BASE
            if size != 4 or off & 3:
                raise AclintAccessError(pa)
            return self.msip if off == 0 else 0          # other harts' MSIP: none on this one-hart virt
        off = pa - MTIMER_BASE
        if size not in (4, 8) or off & 3 or (size == 8 and off & 7):
            raise AclintAccessError(pa)
        if MTIMECMP_OFF <= off < MTIMECMP_OFF + 8:
            val = self.mtimecmp
        elif MTIME_OFF <= off < MTIME_OFF + 8:
            val = self.mtime()
        else:
            return 0
        if size == 4:
            return (val >> (8 * (off & 4))) & 0xFFFFFFFF
        return val

    def write(self, pa: int, size: int, val: int) -> None:
        self.changed = True
        if MSWI_BASE <= pa < MSWI_BASE + MSWI_SIZE:
            off = pa - MSWI_BASE
            if size != 4 or off & 3:
                raise AclintAccessError(pa)
            if off == 0:
                self.msip = val & 1                      # ACLINT MSWI: upper 31 bits wired to zero
            return
        off = pa - MTIMER_BASE
        if size not in (4, 8) or off & 3 or (size == 8 and off & 7):
            raise AclintAccessError(pa)
        if size == 4:
            sh = 8 * (off & 4)
            mask = 0xFFFFFFFF << sh
            merge = lambda old: (old & ~mask) | ((val & 0xFFFFFFFF) << sh)   # noqa: E731
        else:
            merge = lambda old: val & M64                                      # noqa: E731
        if MTIMECMP_OFF <= off < MTIMECMP_OFF + 8:
            self.mtimecmp = merge(self.mtimecmp)
        elif MTIME_OFF <= off < MTIME_OFF + 8:
            raw = self.ns() // NS_PER_TICK
            self.delta = merge(self.mtime()) - raw        # signed: mtime() wraps it mod 2^64
        else:
            return
        self._arm()
