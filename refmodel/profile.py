"""Implementation choices the RISC-V Privileged Architecture leaves open.

Every place where the specification says an implementation *may* choose is a
field here, never an ``if qemu:`` in the model.  One profile mirrors each
pinned QEMU CPU configuration the harness runs.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from refmodel.platform import DEFAULT as DEFAULT_PLATFORM, Platform


@dataclass(frozen=True)
class Profile:
    name: str
    # satp.MODE values that stick (Priv. spec 10.1.11: "If satp is written with
    # an unsupported MODE, the entire write has no effect").
    satp_modes: frozenset = frozenset({0, 8, 9, 10})
    # hgatp.MODE values supported (H chapter, hgatp: WARL; unlike satp a write
    # with an unsupported MODE is not ignored -- see hgatp_unsupported_mode).
    hgatp_modes: frozenset = frozenset({0, 8, 9, 10})
    # The legal MODE an hgatp write with an unsupported MODE leaves (refmodel/warl.py): H "hgatp":
    # "A write to hgatp with an unsupported MODE value is not ignored as it is for satp. Instead, the
    # fields of hgatp are WARL in the normal way" -- so PPN and VMID always take the written value,
    # and Priv. 2.3 WARL lets the read-back MODE be "any legal value" that depends deterministically
    # on the written value and the hart's state: "keep" = the previous MODE, "bare" = Bare.  Neither
    # QEMU is legal here (7.2 stores the reserved MODE verbatim, 10.0 ignores the whole write like
    # satp); both are catalogue findings (docs/catalogue-review.md), not a profile choice.
    hgatp_unsupported_mode: str = "keep"
    vmidlen: int = 14             # VMIDLEN (0..14 on RV64)
    asidlen: int = 16
    # A/D bits (Priv. 20240411, 10.3.2 step 7; "Svade" and "Svadu" chapters).  Without Svadu the
    # implementation picks one scheme for good: False = Svade (A clear, or D clear on a store ->
    # page fault / guest-page fault), True = the hardware sets them atomically (the pre-Svadu
    # "either" of the spec; QEMU 7.2 has no svadu/ADUE and always updates).
    hw_ad_update: bool = False
    # Svadu implemented: then menvcfg.ADUE (S and G stages) / henvcfg.ADUE (VS stage) choose at run
    # time between hardware A/D update and page faults, and hw_ad_update is not used by the walk.
    svadu: bool = False
    # Reset value of menvcfg (the spec leaves it to the implementation; QEMU 10.0 resets ADUE to 1
    # when svadu is on and svade off, and henvcfg to 0 -- so its VS stage faults until HS sets
    # henvcfg.ADUE, while the G and HS stages update in hardware).
    menvcfg_reset: int = 0
    # A store-conditional that fails (Unpriv. "Zalrsc"): "No sc.w instruction shall retire unless it
    # passes memory permission checks, but it is UNSPECIFIED whether any side effects of implicit
    # address translation and protection memory accesses (such as setting a page-table entry D bit)
    # occur on a failed sc.w.  For the purposes of memory protection, a failed sc.w may be treated like
    # a store."  "store" = translated exactly like a store: A/D set by hardware, or (Svade) a page
    # fault for A or D clear; "none" = the permission checks only, A/D neither set nor faulted on (the
    # walk leaves them alone; a successful SC is then translated again, as the store it is).  QEMU
    # never translates a failed SC at all (catalogue *-failed-sc-no-permission-check), so of the two
    # allowed choices "none" is the one its A/D behaviour shows (guests/sc_fail P 13, 23).
    failed_sc_ad: str = "store"
    # PMP: number of entries and granularity G (grain = 2^(G+2) bytes).
    pmp_entries: int = DEFAULT_PLATFORM.pmp_entries
    pmp_granularity: int = 0
    # Hardware performance monitor (Priv. 3.1.10): how many of mhpmcounter3..31 (and their event
    # selectors) are implemented, from 3 up; the rest are read-only 0.  QEMU 7.2 and 10.0 default to
    # 16 (10.0: pmu-mask 0x7fff8; OpenSBI's probe reports "MHPM Count: 16" on both).
    hpm_counters: int = 16
    # ... and the counters past them: "All counters should be implemented, but a legal implementation
    # is to make both the counter and its corresponding event selector be read-only 0" (3.1.10) --
    # "should", so a hart may also leave them out: True = mhpmcounterN/hpmcounterN read 0, False =
    # they do not exist (illegal instruction, Priv. 2.1 "Attempts to access a non-existent CSR raise an
    # illegal-instruction exception").  Both QEMUs leave them out (an access past the PMU's counters
    # is illegal: OpenSBI's probe of mhpmcounter19 traps) but keep every mhpmevent3..31.
    hpm_absent_read_zero: bool = False
    # htinst/mtinst on a trap into M/HS: "zero" writes 0 always; "transformed" writes the
    # transformed instruction for every cause the spec's table allows it (load/store/AMO
    # misaligned, access, page and guest-page faults: refmodel.tinst.TRANSFORMED_CAUSES) and the
    # 0x3000/0x3020 pseudoinstructions for guest-page faults of implicit VS PTE accesses.
    tinst_policy: str = "zero"
    # mtval/stval on illegal instruction: "zero" or "insn" (the faulting bits).
    illegal_tval: str = "insn"
    # ... and for the illegal/virtual-instruction traps of HLV/HLVX/HSV, which an implementation may
    # raise from a different place than other instructions (both values stay allowed, Priv. 3.1.16).
    hlsv_trap_tval: str = "insn"
    # Misaligned loads/stores (not LR/SC/AMO): Unpriv. 2.6 lets an implementation perform them
    # ("emulate", as QEMU's TCG does) or raise address-misaligned ("trap").  Helper B.
    misaligned_ls: str = "emulate"
    # xtval on an EBREAK breakpoint: Priv. 3.1.16 lets mtval be zero or the faulting virtual
    # address ("pc"); QEMU 7.2 writes 0, QEMU 10.0 the pc.  Helper B.
    ebreak_tval: str = "pc"
    # misa (Priv. 3.1.1), the RAM and the FDT address come from the platform description
    # (refmodel/platform.py, shared with QEMU's command line): no F/D, as QEMU runs with f=false,d=false.
    misa: int = DEFAULT_PLATFORM.misa
    # Svpbmt / Svnapot present: when False, PBMT and N bits are reserved.
    svpbmt: bool = False
    svnapot: bool = False
    # QEMU virt's reset stub at 0x1000: the model executes it so the traces
    # align from the very first step; a1 holds the FDT address QEMU computes.
    reset_stub: bool = True
    # semihosting exit calls end the program (refmodel/semihosting.py; the platform's choice)
    semihosting: bool = DEFAULT_PLATFORM.semihosting
    fdt_addr: int = DEFAULT_PLATFORM.fdt_addr
    ram_base: int = DEFAULT_PLATFORM.ram_base
    ram_size: int = DEFAULT_PLATFORM.ram_size
    # ---- interrupts and time (refmodel/aclint.py, refmodel/interrupts.py; helper irq)
    # The platform's time base: every instruction attempt lasts 2^icount_shift ns of a 10 MHz mtime,
    # as QEMU runs under `-icount shift=<this>,sleep=off` (difftest/backends/qemu.py ICOUNT).  7: an
    # mtime tick is 100/128 of an instruction, so QEMU's timer (armed in ns when mtimecmp is written)
    # fires within one instruction of the spec's mtime >= mtimecmp.
    icount_shift: int = 7
    # mtimecmp's reset value: Priv. 3.2.1 does not fix it; QEMU virt's is 0 (MTIP pending from reset).
    mtimecmp_reset: int = 0
    # How long a WFI that waits for the timer stalls (Priv. 3.3.3 leaves it to the implementation):
    # "armed" = until the deadline computed in ns when mtimecmp was written (QEMU's ACLINT), "exact" =
    # until the first ns at which mtime >= mtimecmp.  refmodel.aclint.Aclint.wake_ns.
    wfi_wake: str = "armed"
    # Bits of mie writable beyond the enables of the interrupts the model raises (MSI MTI MEI SSI STI
    # SEI VSSI VSTI VSEI): an enable whose interrupt never becomes pending here.  Measured (write -1,
    # read back): QEMU 7.2 0x3eee (+ SGEIE, though GEILEN = 0 -- hgeie reads 0 -- and LCOFIE),
    # QEMU 10.0 0xfffffffffffffeee (+ every "local" bit 12..63).  SGEIE is allowed (H: "A bit in hie
    # shall be writable if the corresponding interrupt can ever become pending"; not only if), and so
    # are the platform's bits 16..63.  LCOFIE is not: Priv. 3.1.9 "If the Sscofpmf extension is not
    # implemented, mip.LCOFIP and mie.LCOFIE are read-only zeros", and neither QEMU hart has Sscofpmf
    # (catalogued, qemu*-lcofie-writable-without-sscofpmf).  Bits 14 and 15 are reserved standard
    # causes (Priv. 3.1.9: "Bits 15:0 are allocated to standard interrupt causes only"; "0" in the
    # figure of mie's standard portion), so QEMU 10.0's are left out too (qemu10-mie-bits-14-15).
    mie_extra: int = 0
    # mideleg bits writable beyond SSI/STI/SEI (and the read-only-one VS bits): Priv. 3.1.8 "An
    # implementation can choose to subset the delegatable traps, with the supported delegatable bits
    # found by writing one to every bit location" (mideleg is WARL; no sentence makes the bit of an
    # interrupt the hart lacks read-only zero -- only its mip/mie bits are: 3.1.9 "If the Sscofpmf
    # extension is not implemented, mip.LCOFIP and mie.LCOFIE are read-only zeros").  Measured (write
    # -1, read back): both QEMUs keep bit 13 (LCOFI) though neither hart has Sscofpmf (no "sscofpmf" in
    # the FDT's riscv,isa): mideleg 0x3666.  sip/sie bit 13 still read 0 (mip/mie's are zero).
    mideleg_extra: int = 0
    # hideleg bits writable beyond VSSI/VSTI/VSEI: H "hideleg" is WARL; "Among bits 15:0 of hideleg,
    # bits 10, 6, and 2 ... are writable, and bits 12, 9, 5, and 1 ... are read-only zeros" -- bits 13
    # (LCOFI, only with Sscofpmf), 14, 15 and the platform's 16..63 are left to the implementation.
    # Measured (write -1): QEMU 7.2 0x444, QEMU 10.0 0xffffffffffffc444 (bits 14..63 kept).
    hideleg_extra: int = 0
    # vsie/vsip bits >= 16 (platform interrupts, Priv. 3.1.9 "bits 16 and above are designated for
    # platform use") that, while their hideleg bit is set, alias the same bits of mie/mip (the H
    # chapter defines only bits 13, 10, 6, 2 of vsip/vsie; the rest is the platform's -- AIA makes them
    # aliases of sie/sip).  QEMU 10.0: every bit 16..63 (vsie = -1 with hideleg = -1 sets mie 16..63 and
    # reads back 0xffffffffffffc222 -- bits 14 and 15 there are reserved standard bits, "0" in the
    # spec's figure of vsie's standard portion: not an alias here, a catalogued QEMU finding).
    vs_platform_alias: int = 0
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def with_(self, **kw) -> "Profile":
        return replace(self, **kw)

    def on(self, platform: Platform) -> "Profile":
        """This profile's choices on the hart and machine ``platform`` describes (its misa, RAM,
        FDT address, PMP count): what the model runs when QEMU runs that platform's command line."""
        return replace(self, misa=platform.misa, ram_base=platform.ram_base, ram_size=platform.ram_size,
                       fdt_addr=platform.fdt_addr, pmp_entries=platform.pmp_entries,
                       semihosting=platform.semihosting)


BASE = Profile(name="base")

# QEMU 10.0 writes transformed instructions to htinst/mtinst on load/store faults (H "Transformed
# instruction or pseudoinstruction for mtinst or htinst"; writing 0 is equally allowed, and is what
# QEMU 7.2 does).  Measured on gstage_basic: with "zero" the guest's own tinst check diverges.
# QEMU 10.0 (rv64 defaults svadu=on, svade=off): menvcfg.ADUE = 1 at reset, henvcfg = 0
# (target/riscv/cpu.c riscv_cpu_reset_hold; cpu_helper.c get_physical_address: adue = menvcfg.ADUE,
# and for the VS stage also henvcfg.ADUE).  Measured on guest ad_bits: G-stage A/D are set by hardware.
# Both QEMUs: a failed SC leaves A/D alone (failed_sc_ad "none": QEMU never translates it).
_Q10 = BASE.with_(tinst_policy="transformed", svadu=True, menvcfg_reset=1 << 61,
                  mie_extra=((1 << 64) - 1) & ~0xFFFF | 0x1000, failed_sc_ad="none", mideleg_extra=1 << 13,
                  hideleg_extra=((1 << 64) - 1) & ~0x3FFF, vs_platform_alias=((1 << 64) - 1) & ~0xFFFF)

# The pinned QEMU configurations (see difftest/backends/qemu.py CPU_VARIANTS).
PROFILES: dict[str, Profile] = {
    # QEMU 7.2 predates Svadu and *envcfg.HADE: its walk always sets A/D atomically (cmpxchg).
    # Its -d int log shows the instruction bits in mtval on illegal- and virtual-instruction traps
    # (SFENCE/HFENCE, WFI, SRET, CSR accesses) except those of HLV/HLVX/HSV, which show 0 (Priv.
    # 3.1.16: zero or the faulting instruction bits; both allowed) -- measured over the nightly's
    # 7.2 traces on 2026-11-25.
    "qemu-7.2": BASE.with_(name="qemu-7.2", ebreak_tval="zero", hw_ad_update=True, illegal_tval="insn",
                           hlsv_trap_tval="zero", mie_extra=0x1000, failed_sc_ad="none",
                           mideleg_extra=1 << 13),
    "qemu-10.0": _Q10.with_(name="qemu-10.0"),
    # QEMU 10.0 with sv39=on / sv48=on limit satp and hgatp to that mode and below.
    "qemu-10.0-sv39": _Q10.with_(name="qemu-10.0-sv39", satp_modes=frozenset({0, 8}), hgatp_modes=frozenset({0, 8})),
    "qemu-10.0-sv48": _Q10.with_(name="qemu-10.0-sv48", satp_modes=frozenset({0, 8, 9}), hgatp_modes=frozenset({0, 8, 9})),
    "qemu-10.0-sv57": _Q10.with_(name="qemu-10.0-sv57"),
}
