"""Control and status registers: names, access rules, WARL legalisation.

Priv. 20240411 chapter 2 (CSR address map: bits [11:10] read-only, [9:8] lowest
privilege), 3.1 (M CSRs), 10.1 (S CSRs), and the H chapter 9.2-9.4 (hypervisor
and virtual-supervisor CSRs, VS CSRs substituted for S CSRs when V=1, virtual-
instruction exception 9.6).
"""
from __future__ import annotations

from refmodel import warl   # satp/vsatp/hgatp WARL rules (helper C's module)
from refmodel import interrupts as _irq
from refmodel.trap import ILLEGAL, VIRTUAL_INSN, Exc

NAMES = {
    0x001: "fflags", 0x002: "frm", 0x003: "fcsr",
    0xC00: "cycle", 0xC01: "time", 0xC02: "instret",
    0x100: "sstatus", 0x104: "sie", 0x105: "stvec", 0x106: "scounteren", 0x10A: "senvcfg",
    0x140: "sscratch", 0x141: "sepc", 0x142: "scause", 0x143: "stval", 0x144: "sip", 0x180: "satp",
    0x600: "hstatus", 0x602: "hedeleg", 0x603: "hideleg", 0x604: "hie", 0x605: "htimedelta", 0x606: "hcounteren",
    0x607: "hgeie", 0x643: "htval", 0x644: "hip", 0x645: "hvip", 0x64A: "htinst", 0xE12: "hgeip",
    0x60A: "henvcfg", 0x680: "hgatp",
    0x200: "vsstatus", 0x204: "vsie", 0x205: "vstvec", 0x240: "vsscratch", 0x241: "vsepc",
    0x242: "vscause", 0x243: "vstval", 0x244: "vsip", 0x280: "vsatp",
    0xF11: "mvendorid", 0xF12: "marchid", 0xF13: "mimpid", 0xF14: "mhartid", 0xF15: "mconfigptr",
    0x300: "mstatus", 0x301: "misa", 0x302: "medeleg", 0x303: "mideleg", 0x304: "mie", 0x305: "mtvec",
    0x306: "mcounteren", 0x30A: "menvcfg", 0x320: "mcountinhibit",
    0x340: "mscratch", 0x341: "mepc", 0x342: "mcause", 0x343: "mtval", 0x344: "mip",
    0x34A: "mtinst", 0x34B: "mtval2",
    0xB00: "mcycle", 0xB02: "minstret",
}
for _i in range(16):
    NAMES[0x3A0 + _i] = f"pmpcfg{_i}"
for _i in range(64):
    NAMES[0x3B0 + _i] = f"pmpaddr{_i}"

# ---- What a firmware probes (issue 12; OpenSBI's hart feature detection): the hardware performance
# monitor, and which PMP CSRs exist.  Priv. 20240411 3.1.10 "Hardware Performance Monitor": "The
# hardware performance monitor includes 29 additional 64-bit event counters, mhpmcounter3-
# mhpmcounter31 ... All counters should be implemented, but a legal implementation is to make both
# the counter and its corresponding event selector be read-only 0" -- profile.hpm_counters of them,
# from mhpmcounter3 up, hold what is written (no event is implemented, so none counts: "The meaning
# of these event selectors is platform-specific"); the others read 0.  hpmcounterN (0xC03..) are
# their unprivileged read-only shadows, gated by [mhs]counteren bit N like cycle (3.1.11, H 9.2.4).
HPM = range(3, 32)
for _i in HPM:
    NAMES[0xB00 + _i] = f"mhpmcounter{_i}"
    NAMES[0x320 + _i] = f"mhpmevent{_i}"
    NAMES[0xC00 + _i] = f"hpmcounter{_i}"


def pmp_csr_exists(profile, num: int) -> bool:
    """Priv. 3.7.1: "Implementations may implement zero, 16, or 64 PMP entries; the lowest-numbered
    PMP entries must be implemented first" -- the CSRs of entries past profile.pmp_entries are not
    implemented (an access is an illegal instruction).  "For RV64, eight even-numbered CSRs,
    pmpcfg0, pmpcfg2, ..., pmpcfg14, hold the configurations for the 64 PMP entries ... The
    odd-numbered configuration registers, pmpcfg1, pmpcfg3, ..., pmpcfg15, are illegal for RV64."
    pmpcfgK holds entries 4K..4K+7 on RV64."""
    if 0x3A0 <= num <= 0x3AF:
        k = num - 0x3A0
        return not k & 1 and 4 * k < profile.pmp_entries
    if 0x3B0 <= num <= 0x3EF:
        return num - 0x3B0 < profile.pmp_entries
    return True


def hpm_writable(profile, num: int) -> bool:
    """mhpmcounterN / mhpmeventN of an implemented counter (N < 3 + profile.hpm_counters)."""
    return (num & 0x1F) < 3 + getattr(profile, "hpm_counters", 0)


def counter_read(h, num: int) -> int:
    """mcycle (0xB00) / minstret (0xB02), and cycle / instret reading them.  Deterministic: both count
    the instructions before this one (``h.steps``; QEMU runs under -icount), from the last value
    written (``counter_write``)."""
    value, at = getattr(h, "counter_origin", {}).get(num, (0, 0))
    return (value + h.steps - at) & ((1 << 64) - 1)


def counter_write(h, num: int, val: int) -> None:
    """Unpriv. Zicsr "CSR Access Ordering": "if a CSR access instruction writes such a CSR [instret],
    the write is done instead of the increment.  In particular, a value written to instret by one
    instruction will be the value read by the following instruction."  Priv. 3.1.11: mcycle and
    minstret are read/write.  So the next instruction (step h.steps + 1) reads ``val``; mcycle
    follows the same rule here (cycle = instret in this model)."""
    if not hasattr(h, "counter_origin"):
        h.counter_origin = {}
    h.counter_origin[num] = (val & ((1 << 64) - 1), h.steps + 1)


def hpm_read(h, num: int) -> int:
    """mhpmcounterN, mhpmeventN, and hpmcounterN (reads mhpmcounterN)."""
    n = 0xB00 | (num & 0x1F) if num >= 0xC00 else num
    return h.csr[n] if hpm_writable(h.profile, n) else 0


def hpm_write(h, num: int, val: int) -> None:
    if num < 0xC00 and hpm_writable(h.profile, num):
        h.csr[num] = val
# ---- end of the firmware-probe block

NUMBERS = {v: k for k, v in NAMES.items()}

# mstatus fields (Priv. 3.1.6)
SIE, MIE, SPIE, UBE, MPIE, SPP = 1 << 1, 1 << 3, 1 << 5, 1 << 6, 1 << 7, 1 << 8
MPP_SHIFT, FS_SHIFT = 11, 13
MPRV, SUM, MXR, TVM, TW, TSR = 1 << 17, 1 << 18, 1 << 19, 1 << 20, 1 << 21, 1 << 22
GVA, MPV = 1 << 38, 1 << 39
SD = 1 << 63
XL64 = (2 << 32) | (2 << 34)                 # UXL = SXL = 64 (read-only)
MSTATUS_W = SIE | MIE | SPIE | MPIE | SPP | (3 << MPP_SHIFT) | (3 << FS_SHIFT) | MPRV | SUM | MXR | TVM | TW | TSR | GVA | MPV
SSTATUS_MASK = SIE | SPIE | UBE | SPP | (3 << 9) | (3 << FS_SHIFT) | (3 << 15) | SUM | MXR | (3 << 32) | SD
# hstatus fields (H 9.2.1)
H_GVA, H_SPV, H_SPVP, H_HU = 1 << 6, 1 << 7, 1 << 8, 1 << 9
H_VTVM, H_VTW, H_VTSR = 1 << 20, 1 << 21, 1 << 22
H_VSXL64 = 2 << 32
HSTATUS_W = H_GVA | H_SPV | H_SPVP | H_HU | H_VTVM | H_VTW | H_VTSR | (0x3F << 12)
# VS-level interrupts are read-only one in mideleg when H is present (H 9.4.2)
MIDELEG_RO1 = (1 << 2) | (1 << 6) | (1 << 10) | (1 << 12)
MIDELEG_W = (1 << 1) | (1 << 5) | (1 << 9)
# medeleg (Priv. 20240411 3.1.8): "For exceptions that cannot occur in less privileged modes, the
# corresponding medeleg bits should be read-only zero. In particular, medeleg[11] is read-only zero."
# (11: environment call from M-mode.)  The rest are WARL ("An implementation can choose to subset the
# delegatable traps"), here every synchronous exception the hart can raise (guests/m_warl checks 11).
MEDELEG_W = sum(1 << c for c in (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13, 15, 20, 21, 22, 23))
# hedeleg: 9-11 and 20-23 are read-only zero (H 9.2.2)
HEDELEG_W = sum(1 << c for c in (0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 13, 15))
HIDELEG_W = (1 << 2) | (1 << 6) | (1 << 10)
HVIP_W = HIDELEG_W
ENVCFG_W = 1 | (3 << 4) | (1 << 6) | (1 << 7)      # FIOM, CBIE, CBCFE, CBZE
VS_TO_S = {0x100: 0x200, 0x104: 0x204, 0x105: 0x205, 0x140: 0x240, 0x141: 0x241, 0x142: 0x242,
           0x143: 0x243, 0x144: 0x244, 0x180: 0x280}
COUNTERS = {0xC00: 0, 0xC01: 1, 0xC02: 2, **{0xC00 + _i: _i for _i in HPM}}
SATP_LIKE = (0x180, 0x280)


def initial_csrs(profile) -> dict:
    c = {n: 0 for n in NAMES}
    c[0x300] = XL64
    c[0x200] = 2 << 32                       # vsstatus.UXL = 64
    c[0x600] = H_VSXL64
    c[0x301] = profile.misa
    c[0x303] = MIDELEG_RO1
    # menvcfg's reset value is implementation-defined (profile); henvcfg resets to 0 here
    c[0x30A] = getattr(profile, "menvcfg_reset", 0)
    return c


def _bad(h, insn):
    return Exc(ILLEGAL, insn if h.profile.illegal_tval == "insn" else 0)


def check_access(h, num: int, write: bool, insn: int) -> int:
    """Priv. 2.1 / H 9.6.1: returns the CSR number actually accessed (VS substitution)
    or raises illegal-instruction / virtual-instruction."""
    if num not in NAMES or (0x001 <= num <= 0x003):      # F/D state: not modelled -> illegal
        raise _bad(h, insn)
    if 0x3A0 <= num <= 0x3EF and not pmp_csr_exists(h.profile, num):
        raise _bad(h, insn)
    if (0xB03 <= num <= 0xB1F or 0xC03 <= num <= 0xC1F) and not hpm_writable(h.profile, num) \
            and not getattr(h.profile, "hpm_absent_read_zero", True):
        raise _bad(h, insn)              # an unimplemented counter does not exist (profile.hpm_absent_read_zero)
    ro = (num >> 10) & 3 == 3
    lvl = (num >> 8) & 3                   # 0 U, 1 S, 2 hypervisor (HS) / VS CSRs, 3 M
    priv, v = h.priv, h.v
    if priv != 3:
        if not v:
            # HS-mode reaches S and hypervisor/VS CSRs (H 9.2: "accessible from HS-mode"); U only level 0
            if lvl > (2 if priv == 1 else 0):
                raise _bad(h, insn)
        elif lvl == 3 or (ro and write and lvl >= 1):
            raise _bad(h, insn)            # HS could not do it either: illegal (H 9.6.1)
        elif lvl == 2 or (priv == 0 and lvl == 1):
            raise Exc(VIRTUAL_INSN, insn)  # hypervisor/VS CSR from VS/VU, S CSR from VU (H 9.6.1)
    if ro and write:
        raise _bad(h, insn)
    if num in COUNTERS:                        # Priv. 3.1.11 / H 9.2.4 counter-enable gating
        bit = 1 << COUNTERS[num]
        if priv < 3 and not h.csr[0x306] & bit:
            raise _bad(h, insn)
        if v and not h.csr[0x606] & bit:
            raise Exc(VIRTUAL_INSN, insn)
        if priv == 0 and not h.csr[0x106] & bit:
            raise Exc(VIRTUAL_INSN, insn) if v else _bad(h, insn)
    if num == 0x180:                           # satp: TVM (3.1.6.5) / VTVM (H 9.2.1)
        if v:
            if h.csr[0x600] & H_VTVM:
                raise Exc(VIRTUAL_INSN, insn)
        elif priv == 1 and h.csr[0x300] & TVM:
            raise _bad(h, insn)
    if num == 0x680 and priv == 1 and not v and h.csr[0x300] & TVM:
        raise _bad(h, insn)                    # hgatp with mstatus.TVM=1 (H 9.2.10)
    if v and num in VS_TO_S:
        return VS_TO_S[num]
    return num


def read(h, num: int) -> int:
    c = h.csr
    if 0xB03 <= num <= 0xB1F or 0x323 <= num <= 0x33F or 0xC03 <= num <= 0xC1F:
        return hpm_read(h, num)
    if num == 0x100:
        return _sd(c[0x300] & SSTATUS_MASK)
    if num == 0x300:
        return _sd(c[0x300])
    if num == 0x200:
        return _sd(c[0x200])
    if num == 0xC00 or num == 0xB00 or num == 0xC02 or num == 0xB02:
        return counter_read(h, 0xB00 | (num & 0x1F))
    if num == 0xC01:
        # Priv. (Zicntr) "time ... a read-only shadow of the memory-mapped mtime register" (ACLINT,
        # refmodel.aclint: follows instructions like QEMU's -icount); H "htimedelta": "when V=1 ...
        # the time CSR returns the value of time + htimedelta" (mod 2^64)
        return (h.mem.aclint.mtime() + (c[0x605] if h.v else 0)) & ((1 << 64) - 1)
    if num == 0x104:
        return c[0x304] & c[0x303] & 0x222
    if num == 0x144:
        return c[0x344] & c[0x303] & 0x222
    if num == 0x604:
        return c[0x304] & (HIDELEG_W | (1 << 12))
    if num == 0x644:
        return (c[0x344] | c[0x645]) & (HIDELEG_W | (1 << 12))
    if num == 0x204:                           # vsie: hie bits delegated by hideleg, shifted (H 9.2.5)
        return (c[0x304] & c[0x603] & HIDELEG_W) >> 1 | (c[0x304] & _vs_alias(h))
    if num == 0x244:
        return ((c[0x344] | c[0x645]) & c[0x603] & HIDELEG_W) >> 1 | (_irq.mip(h) & _vs_alias(h))
    if num == 0x344:
        return _irq.mip(h)                     # + MSIP/MTIP from the ACLINT, VS bits from hvip
    return c[num]


def _vs_alias(h) -> int:
    """The platform bits (>= 16) of vsie/vsip that alias mie/mip now: the profile's
    (Profile.vs_platform_alias) whose hideleg bit is set.  H "Virtual Supervisor Interrupt Registers"
    defines only bits 13, 10, 6 and 2 ("When bit 10 of hideleg is zero, vsip.SEIP and vsie.SEIE are
    read-only zeros. Else ... aliases"); bits 16 and above are "designated for platform use" (Priv.
    3.1.9), and bits 14 and 15 are "0" in the figure of their standard portion: never aliased."""
    return h.csr[0x603] & getattr(h.profile, "vs_platform_alias", 0) & ~0xFFFF


def _mie_writable(h) -> int:
    """mie's writable bits: the enables of the interrupts the hart has (MSI MTI MEI SSI STI SEI VSSI
    VSTI VSEI) and the profile's others (Profile.mie_extra: SGEIE with GEILEN = 0, platform bits >= 16;
    never LCOFIE without Sscofpmf, nor the reserved 14 and 15 -- Priv. 3.1.9)."""
    return 0xAAA | HIDELEG_W | (getattr(h.profile, "mie_extra", 0) & ~0xE000)


def _sd(v):
    return v | SD if (v >> FS_SHIFT) & 3 == 3 else v & ~SD


def write(h, num: int, val: int) -> None:
    """WARL legalisation; a write that changes translation state flushes the soft TLB."""
    c = h.csr
    val &= (1 << 64) - 1
    # ---- interrupt CSRs (helper irq): Priv. 3.1.9 "must also be evaluated immediately following
    # ... an explicit write to a CSR on which these interrupt trap conditions expressly depend"
    if num in _irq.CONDITION_CSRS:
        h.irq_now = True
    if num == 0x344:
        # Priv. 3.1.9: SSIP, STIP (no Sstc) and SEIP are writable in mip; MSIP/MTIP/MEIP are
        # read-only here (ACLINT / no external controller).  H "Machine Interrupt Registers":
        # mip.VSSIP is an alias of hip.VSSIP, itself "a writable alias of hvip.VSSIP"; VSTIP and
        # VSEIP are read-only in mip and hip (written through hvip).
        c[0x344] = (c[0x344] & ~0x222) | (val & 0x222)
        c[0x645] = (c[0x645] & ~0x4) | (val & 0x4)
        h.flush_tlb()
        return
    # ---- end of the interrupt CSRs
    if num == 0x300:
        old = c[0x300]
        new = (old & ~MSTATUS_W) | (val & MSTATUS_W)
        # Priv. 20240411 3.1.6.1: "xPP fields are WARL fields that can hold only privilege mode x and
        # any implemented privilege mode lower than x" -- M (3), S (1), U (0); 2 is reserved (1.2), so
        # MPP never holds it: a write of 2 keeps the old (legal) value (guests/m_warl checks it)
        if (new >> MPP_SHIFT) & 3 == 2:
            new = (new & ~(3 << MPP_SHIFT)) | (old & (3 << MPP_SHIFT))
        c[0x300] = new
    elif num == 0x100:
        m = SSTATUS_MASK & MSTATUS_W
        c[0x300] = (c[0x300] & ~m) | (val & m)
    elif num == 0x200:
        m = SIE | SPIE | SPP | (3 << FS_SHIFT) | SUM | MXR
        c[0x200] = (c[0x200] & ~m) | (val & m)
    elif num == 0x600:
        c[0x600] = (c[0x600] & ~HSTATUS_W) | (val & HSTATUS_W & ~(0x3F << 12))  # VGEIN: GEILEN = 0
    elif num == 0x302:
        c[0x302] = val & MEDELEG_W
    elif num == 0x303:
        # + the profile's other delegatable bits (Profile.mideleg_extra: Priv. 3.1.8 lets an
        # implementation "subset the delegatable traps"; e.g. QEMU's LCOFI bit 13 without Sscofpmf)
        c[0x303] = MIDELEG_RO1 | (val & (MIDELEG_W | getattr(h.profile, "mideleg_extra", 0)))
    elif num == 0x602:
        c[0x602] = val & HEDELEG_W
    elif num == 0x603:
        # H "hideleg": bits 10, 6, 2 writable, 12, 9, 5, 1 read-only zero; the rest (13-15 and the
        # platform's 16..63) is the implementation's WARL choice (Profile.hideleg_extra)
        c[0x603] = val & (HIDELEG_W | getattr(h.profile, "hideleg_extra", 0))
    elif num == 0x645:
        c[0x645] = val & HVIP_W
    elif num == 0x304:
        c[0x304] = val & _mie_writable(h)
    elif num == 0x104:
        m = c[0x303] & 0x222
        c[0x304] = (c[0x304] & ~m) | (val & m)
    elif num == 0x604:
        m = HIDELEG_W | (getattr(h.profile, "mie_extra", 0) & (1 << 12))     # hie: VS bits and SGEIE
        c[0x304] = (c[0x304] & ~m) | (val & m)
    elif num == 0x204:
        m = c[0x603] & HIDELEG_W
        c[0x304] = (c[0x304] & ~m) | ((val << 1) & m)
        a = _vs_alias(h) & _mie_writable(h)      # platform bits: the same bits of mie (Profile.vs_platform_alias)
        c[0x304] = (c[0x304] & ~a) | (val & a)
    elif num == 0x144:
        m = c[0x303] & 0x2
        c[0x344] = (c[0x344] & ~m) | (val & m)
    elif num == 0x644:
        c[0x645] = (c[0x645] & ~0x4) | (val & 0x4)       # only VSSIP writable via hip
    elif num == 0x244:
        m = c[0x603] & 0x4
        c[0x645] = (c[0x645] & ~m) | ((val << 1) & m)
    elif num in (0x305, 0x105, 0x205):
        if val & 3 < 2:                          # MODE WARL: reserved modes leave the register
            c[num] = val & ~2
    elif num in (0x341, 0x141, 0x241):
        c[num] = val & ~1                        # IALIGN=16 (C present)
    elif num in (0x30A, 0x60A):
        # PBMTE (62) exists with Svpbmt, ADUE (61) with Svadu; henvcfg's are read-only zero
        # while menvcfg's are clear (H 9.2.5 henvcfg).
        m = ENVCFG_W | ((1 << 62) if h.profile.svpbmt else 0) | ((1 << 61) if getattr(h.profile, "svadu", False) else 0)
        if num == 0x60A:
            m &= c[0x30A] | ENVCFG_W
        c[num] = val & m
    elif num == 0x10A:
        c[num] = val & ENVCFG_W
    elif num in (0x306, 0x106, 0x606, 0x320):
        c[num] = val & 0xFFFFFFFF
    elif num == 0x180:
        c[num] = warl.legalise_satp(c[num], val, h.profile)
    elif num == 0x280:
        c[num] = warl.legalise_vsatp(c[num], val, h.profile)
    elif num == 0x680:
        c[num] = warl.legalise_hgatp(c[num], val, h.profile)
    elif 0x3A0 <= num <= 0x3AF:
        if num & 1:
            return                               # odd pmpcfg do not exist on RV64
        old = c[num]
        new = 0
        for i in range(8):                       # locked entries ignore writes; W=1,R=0 reserved
            ob, nb = (old >> 8 * i) & 0xFF, (val >> 8 * i) & 0xFF
            if ob & 0x80:
                nb = ob
            elif nb & 3 == 2:
                nb = ob
            new |= (nb & 0x9F) << 8 * i
        c[num] = new
        h.pmp_changed()
    elif 0x3B0 <= num <= 0x3EF:
        c[num] = val & ((1 << 54) - 1)
        h.pmp_changed()
    elif num in (0xF11, 0xF12, 0xF13, 0xF14, 0xF15, 0x301, 0xE12, 0xC00, 0xC01, 0xC02, 0x607):
        return                                   # read-only (or no guest external interrupts: hgeie = 0)
    elif num in (0xB00, 0xB02):
        counter_write(h, num, val)
        return
    elif 0xB03 <= num <= 0xB1F or 0x323 <= num <= 0x33F or 0xC03 <= num <= 0xC1F:
        hpm_write(h, num, val)                   # hpmcounterN are read-only (check_access)
        return
    else:
        c[num] = val
    h.flush_tlb()
