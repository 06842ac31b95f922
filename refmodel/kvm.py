"""A KVM-style G-stage manager: the per-VM HGATP mode series, in two forms side by side.

``v4``     -- "[PATCH v4 0/4] Support runtime configuration for per-VM's HGATP mode":
              ascending probe into a bitmask, KVM_CAP_RISCV_SET_HGATP_MODE taking a MODE value.
``merged`` -- the form that was merged: top-down probe stopping at the first mode that sticks,
              KVM_CAP_VM_GPA_BITS taking a number of GPA bits.
(Facts: /work/shared/seed/series-facts.md.)

The probe runs against a :class:`HartHost`, which answers hgatp writes the way a hart with a given
``Profile`` does (``refmodel.warl``, Priv. 20240411 H "hgatp": MODE is WARL and a write with an
unsupported MODE is *not* ignored as it is for satp).  So the same code predicts what a guest running
the probe on QEMU with a given CPU variant reports.
"""
from __future__ import annotations

import errno
from dataclasses import dataclass, field

from refmodel import warl
from refmodel.profile import BASE

FORMS = ("v4", "merged")
MODE_LEVELS = {8: 3, 9: 4, 10: 5}
LEVEL_MODE = {v: k for k, v in MODE_LEVELS.items()}
MODE_NAMES = {8: "sv39x4", 9: "sv48x4", 10: "sv57x4"}
NAME_MODES = {v: k for k, v in MODE_NAMES.items()}
V4_BIT = {8: 0, 9: 1, 10: 2}           # v4 bitmask: bit 0 Sv39x4, bit 1 Sv48x4, bit 2 Sv57x4
PAGE_SIZES = (1 << 30, 1 << 21, 1 << 12)   # the mappings KVM creates: 1 GiB, 2 MiB, 4 KiB


def gpa_bits(levels: int) -> int:
    """GPA width of a G-stage format: 12 + 9 * levels + 2 (the 16 KiB root adds 2 bits)."""
    return 12 + 9 * levels + 2


def root_index(gpa: int, levels: int) -> int:
    """Index into the 2048-entry root: GPA[40:30], GPA[49:39] or GPA[58:48]."""
    return (gpa >> (12 + 9 * (levels - 1))) & 0x7FF


def level_index(gpa: int, level: int) -> int:
    return (gpa >> (12 + 9 * level)) & 0x1FF


class HartHost:
    """One hart's hgatp as the probe sees it (csr_write / csr_read / local hfence.gvma)."""

    def __init__(self, profile=BASE, xlen: int = 64):
        self.profile, self.xlen = profile, xlen
        self.hgatp = 0
        self.log: list[tuple[str, int]] = []

    @classmethod
    def with_modes(cls, names, **kw) -> "HartHost":
        modes = frozenset({0} | {NAME_MODES[n] for n in names})
        return cls(BASE.with_(name="host:" + ",".join(sorted(names)), hgatp_modes=modes), **kw)

    def write(self, val: int) -> None:
        self.log.append(("csrw", val))
        self.hgatp = warl.legalise_hgatp(self.hgatp, val, self.profile)

    def read(self) -> int:
        return self.hgatp

    def hfence_gvma(self) -> None:
        self.log.append(("hfence.gvma", 0))

    def supports(self, mode: int) -> bool:
        return mode in self.profile.hgatp_modes


@dataclass
class Probe:
    form: str
    mask: int              # v4 bitmask (merged: the bit of the single mode found)
    max_levels: int        # 0: no G-stage mode at all (KVM refuses to load)
    vmidlen: int
    writes: list = field(default_factory=list)

    @property
    def max_gpa_bits(self) -> int:
        return gpa_bits(self.max_levels) if self.max_levels else 0


def _sticks(host: HartHost, mode: int) -> bool:
    host.write(mode << 60)
    return host.read() >> 60 == mode


def probe(host: HartHost, form: str) -> Probe:
    """Mode probe, then VMID width; leaves hgatp = 0 and issues a local hfence.gvma."""
    mask = 0
    if form == "v4":
        for mode in (8, 9, 10):                      # ascending, no early exit
            if _sticks(host, mode):
                mask |= 1 << V4_BIT[mode]
        top = max((m for m in (8, 9, 10) if mask >> V4_BIT[m] & 1), default=0)
    elif form == "merged":
        top = 0
        for mode in (10, 9, 8):                      # top-down, first that sticks
            if _sticks(host, mode):
                top = mode
                break
        mask = 1 << V4_BIT[top] if top else 0
    else:
        raise ValueError(f"unknown form {form!r} (expected one of {FORMS})")
    host.write(0)
    host.hfence_gvma()
    vmidlen = 0
    if top:
        host.write((top << 60) | (0x3FFF << 44))     # top mode with all VMID bits set
        vmidlen = ((host.read() >> 44) & 0x3FFF).bit_length()
        host.write(0)
        host.hfence_gvma()
    return Probe(form, mask, MODE_LEVELS.get(top, 0), vmidlen, list(host.log))


class GStage:
    """The G-stage page table of one VM: a 16 KiB root and 4 KiB lower tables, as nested dicts."""

    def __init__(self, levels: int):
        self.levels = levels
        self.root: dict[int, object] = {}

    def map(self, gpa: int, hpa: int, size: int) -> None:
        if size not in PAGE_SIZES or gpa % size or hpa % size:
            raise ValueError(f"mapping {gpa:#x}->{hpa:#x} size {size:#x}: not a 4K/2M/1G aligned page")
        leaf_level = {1 << 12: 0, 1 << 21: 1, 1 << 30: 2}[size]
        if leaf_level >= self.levels:
            raise ValueError("page larger than the format allows")
        table, level = self.root, self.levels - 1
        idx = root_index(gpa, self.levels)
        while level > leaf_level:
            table = table.setdefault(idx, {})
            level -= 1
            idx = level_index(gpa, level)
        table[idx] = (hpa, size)

    def lookup(self, gpa: int):
        """KVM's software walk: bits above the GPA size are masked off, not rejected."""
        gpa &= (1 << gpa_bits(self.levels)) - 1
        table, level = self.root, self.levels - 1
        idx = root_index(gpa, self.levels)
        while True:
            e = table.get(idx)
            if e is None:
                return None
            if isinstance(e, tuple):
                hpa, size = e
                return hpa + (gpa & (size - 1))
            table, level = e, level - 1
            idx = level_index(gpa, level)


def plan_mappings(gpa: int, hpa: int, size: int) -> list[tuple[int, int, int]]:
    """Greedy largest pages (1G, 2M, 4K) where GPA and HPA are both aligned and the rest fits."""
    out = []
    end = gpa + size
    while gpa < end:
        for ps in PAGE_SIZES:
            if gpa % ps == 0 and hpa % ps == 0 and gpa + ps <= end:
                out.append((gpa, hpa, ps))
                gpa, hpa = gpa + ps, hpa + ps
                break
    return out


@dataclass
class Region:
    slot: int
    base_gfn: int
    npages: int
    hpa: int


class VM:
    """One VM under a given form.  Calls return 0 or a negative errno, like the ioctls."""

    def __init__(self, form: str, p: Probe, host: HartHost | None = None):
        if form not in FORMS:
            raise ValueError(f"unknown form {form!r}")
        self.form, self.probe, self.host = form, p, host
        self.levels = p.max_levels                    # without the call: the maximum mode
        self.vcpus = 0
        self.regions: dict[int, Region] = {}
        self.gstage: GStage | None = None

    # -- capability
    def check_extension(self, on_vm: bool = True) -> int:
        if self.form == "v4":
            return self.probe.mask                    # KVM_CAP_RISCV_SET_HGATP_MODE: the bitmask
        # KVM_CAP_VM_GPA_BITS: system -> maximum GPA bits; VM -> its current GPA bits
        return gpa_bits(self.levels) if on_vm else self.probe.max_gpa_bits

    def enable_cap(self, arg0: int, flags: int = 0) -> int:
        if self.host is not None and self.host.xlen == 32 and self.form == "v4":
            return 0                                  # v4: a no-op on 32-bit hosts
        if self.form == "v4":
            if flags:
                return -errno.EINVAL
            if arg0 not in MODE_LEVELS or not self.probe.mask >> V4_BIT[arg0] & 1:
                return -errno.EINVAL                  # checked before the busy test
            if self.vcpus or self.regions:
                return -errno.EBUSY
            self.levels = 3 + arg0 - 8                # repeated calls allowed: last wins
            return 0
        if flags:
            return -errno.EINVAL
        if arg0 <= 41:
            levels = 3
        elif arg0 <= 50:
            levels = 4
        elif arg0 <= 59:
            levels = 5
        else:
            return -errno.EINVAL
        if levels > self.probe.max_levels:
            return -errno.EINVAL
        if self.vcpus or self.regions:
            return -errno.EBUSY
        self.levels = levels
        return 0

    # -- vCPUs and memory regions
    def create_vcpu(self) -> int:
        self.vcpus += 1
        return 0

    @property
    def gpa_size(self) -> int:
        return 1 << gpa_bits(self.levels)

    def set_region(self, slot: int, base_gfn: int, npages: int, hpa: int | None = None) -> int:
        if npages == 0:
            self.regions.pop(slot, None)              # deleting a region leaves the VM empty again
            return 0
        if base_gfn + npages >= self.gpa_size >> 12:
            return -errno.EFAULT                      # the last 4 KiB page can never be mapped
        self.regions[slot] = Region(slot, base_gfn, npages, base_gfn << 12 if hpa is None else hpa)
        return 0

    def build_gstage(self) -> GStage:
        g = GStage(self.levels)
        for r in self.regions.values():
            for gpa, hpa, size in plan_mappings(r.base_gfn << 12, r.hpa, r.npages << 12):
                g.map(gpa, hpa, size)
        self.gstage = g
        return g

    # -- what gets programmed
    @property
    def mode(self) -> int:
        return LEVEL_MODE[self.levels]

    def hgatp(self, vmid: int = 1, root_hpa: int = 0x8040_0000) -> int:
        return (self.mode << 60) | ((vmid & ((1 << self.probe.vmidlen) - 1)) << 44) | ((root_hpa >> 12) & ~3)

    def program(self, host: HartHost | None = None) -> tuple[int, int]:
        """Write this VM's hgatp to a hart: (written, read back).  They differ when the form lets a VM
        pick a mode the hart lacks (merged on an Sv39x4+Sv57x4-only host)."""
        h = host or self.host
        val = self.hgatp()
        h.write(val)
        return val, h.read()


# ---------------------------------------------------------------- the hgatp_probe guest's summary line
def predict_summary(profile) -> str:
    """The line the ``hgatp_probe`` guest prints (ARCHITECTURE section 3), as a hart with ``profile``
    would make it print: supported = the non-reserved MODE values (0, 8, 9, 10: the guest never
    writes a reserved one) that read back, then the v4 bitmask, the merged form's choice, VMIDLEN."""
    supported = 0
    for mode in (0, 8, 9, 10):
        h = HartHost(profile)
        h.write(mode << 60)
        if h.read() >> 60 == mode:
            supported |= 1 << mode
    v4 = probe(HartHost(profile), "v4")
    merged = probe(HartHost(profile), "merged")
    top = LEVEL_MODE.get(merged.max_levels, 0)
    vmidlen = max(v4.vmidlen, merged.vmidlen)
    return f"HGATP supported={supported:#x} v4={v4.mask:#x} merged={top} vmidlen={vmidlen}"


def parse_summary(line: str) -> dict[str, int] | None:
    """{"supported", "v4", "merged", "vmidlen"} from an ``HGATP ...`` line, or None."""
    line = line.strip()
    if not line.startswith("HGATP "):
        return None
    out = {}
    for tok in line.split()[1:]:
        k, _, v = tok.partition("=")
        try:
            out[k] = int(v, 0)
        except ValueError:
            return None
    return out if {"supported", "v4", "merged", "vmidlen"} <= out.keys() else None
