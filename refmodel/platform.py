"""The hart and machine both backends run, described once (issue 12, "One hart, described once").

QEMU's command line (difftest/backends/qemu.py) and the model's profile (refmodel/profile.py) are
both derived from one ``Platform``, so they are the same hart by construction, and the trace
header records it (``Platform.describe``).

* ISA: the extensions the hart implements, as misa reports them (Priv. 3.1.1 "Machine ISA
  Register misa": "The Extensions field encodes the presence of the standard extensions, with a
  single bit per letter of the alphabet").  The model has no F/D (no FP state: FP instructions are
  illegal), so QEMU runs with ``f=false,d=false`` -- and misa says so on both.  Measured with the
  gdbstub (misa at the first guest instruction): QEMU 7.2 ``rv64,h=true,f=false,d=false`` and QEMU
  10.0 ``...,f=false,d=false,zfa=false`` (10.0 refuses "Zfa extension requires F extension"; 7.2
  has no zfa property) both report misa 0x8000000000141185 = RV64 ACHIMSU.
* Multi-letter extensions: the hart has Zicsr, Zifencei and the hints (Zihintpause, Zihintntl,
  Zicbop: encodings of ORI/ADD/FENCE with rd = x0, which the model runs as such).  QEMU's rv64 CPU
  turns more on by default, which the model does not implement (their encodings are illegal
  instructions in it): Zba, Zbb, Zbc, Zbs (7.2 and 10.0), Zicbom, Zicboz and Zawrs (10.0) --
  measured in the ``riscv,isa`` QEMU puts in its device tree.  QEMU runs with them off
  (``QEMU_EXTENSIONS_OFF``); riscv-tests rv64uzba/zbb/zbc/zbs and rv64mzicbo diverged at their first
  such instruction before (QEMU ran it, the model trapped: docs/third-party.md).
* Sstc: off (the model has no stimecmp; QEMU ``sstc=false``).
* Sdtrig: off (the model has no trigger module; QEMU ``debug=false``).
* Semihosting: on (QEMU ``-semihosting-config enable=on,target=native``): a program may end with a
  semihosting exit call (refmodel/semihosting.py); every other EBREAK is a breakpoint as before.
* PMP: 16 entries (QEMU's fixed count; ``pmp=on``).
* RAM: at 0x8000_0000 (QEMU virt's VIRT_DRAM), ``-m`` of any size; the FDT address QEMU hands the
  payload in a1 follows from it (hw/riscv/boot.c: the end of RAM, capped at 3 GiB, minus the FDT,
  aligned down to 2 MiB).
* The virt memory map the model implements (refmodel/devices.py): MROM 0x1000, sifive_test
  0x100000, ns16550 0x10000000, RAM.

This module is the model's side too (refmodel must not import difftest): difftest imports it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from refmodel.devices import MROM_BASE, MROM_SIZE, TEST_BASE, TEST_SIZE, UART_BASE, UART_SIZE

# (QEMU property, first QEMU release that has it): extensions QEMU's rv64 CPU enables by default and
# the model does not implement (module docstring).  7.2 has no zicbom/zicboz/zawrs property ("Property
# 'rv64-riscv-cpu.zicbom' not found") nor the extensions; 10.0 has them on.
QEMU_EXTENSIONS_OFF = (("zba", (0,)), ("zbb", (0,)), ("zbc", (0,)), ("zbs", (0,)),
                       ("zicbom", (8, 0)), ("zicboz", (8, 0)), ("zawrs", (8, 0)))
RAM_BASE = 0x8000_0000
MiB = 1 << 20
FDT_ALIGN = 2 * MiB
FDT_CEILING = 3072 * MiB            # QEMU keeps the FDT below 3 GiB so 32-bit payloads reach it
MXL_64 = 2 << 62                    # misa.MXL = 2: XLEN 64
MEMORY_MAP = {"mrom": (MROM_BASE, MROM_SIZE), "test": (TEST_BASE, TEST_SIZE), "uart0": (UART_BASE, UART_SIZE)}


def misa_of(letters: str) -> int:
    """misa for RV64 with the single-letter extensions ``letters`` (Priv. 3.1.1)."""
    return MXL_64 | sum(1 << (ord(c) - ord("A")) for c in set(letters.upper()))


def parse_size(text: str) -> int:
    """A RAM size as QEMU's -m takes it: "256M", "1G", "128" (MiB) -> bytes; ValueError otherwise."""
    m = re.fullmatch(r"\s*(\d+)\s*([KMGT]?)i?B?\s*", str(text), re.I)
    if not m:
        raise ValueError(f"not a RAM size: {text!r} (e.g. 128M, 256M, 1G)")
    n, unit = int(m.group(1)), (m.group(2) or "M").upper()
    size = n << {"K": 10, "M": 20, "G": 30, "T": 40}[unit]
    if size < 2 * MiB or size % MiB:
        raise ValueError(f"RAM size {text!r}: give a whole number of MiB, at least 2M")
    return size


def size_text(size: int) -> str:
    return f"{size >> 30}G" if size % (1 << 30) == 0 else f"{size >> 20}M"


@dataclass(frozen=True)
class Platform:
    # misa's extension letters (Priv. 3.1.1); F and D absent: the model has no FP state
    isa: str = "ACHIMSU"
    ram_size: int = 128 * MiB
    ram_base: int = RAM_BASE
    sstc: bool = False
    # Sdtrig (the debug trigger module, tselect/tdata1..3): the model has none, so QEMU runs with
    # debug=false (both releases accept it; default true) -- OpenSBI 1.5.1 probes tselect and
    # diverged there (README, third-party programs)
    sdtrig: bool = False
    pmp_entries: int = 16
    semihosting: bool = True

    @property
    def misa(self) -> int:
        return misa_of(self.isa)

    @property
    def has_fp(self) -> bool:
        return "F" in self.isa.upper() or "D" in self.isa.upper()

    @property
    def fdt_addr(self) -> int:
        """Where QEMU virt puts the device tree, handed to the payload in a1 (hw/riscv/boot.c
        riscv_compute_fdt_addr / riscv_load_fdt): below the end of RAM (at most 3 GiB), 2 MiB
        aligned; the FDT itself is far smaller than 2 MiB."""
        end = self.ram_base + self.ram_size
        top = min(end, FDT_CEILING) if self.ram_base < FDT_CEILING else end
        return (top - 1) // FDT_ALIGN * FDT_ALIGN      # RAM is whole MiB: top - fdt size rounds to this

    def ram_end(self) -> int:
        return self.ram_base + self.ram_size

    def qemu_cpu_props(self, version: tuple) -> list[str]:
        """The QEMU -cpu properties (after "rv64") that make QEMU this hart.  ``version``: the
        QEMU's (major, minor, ...) -- property names differ between releases."""
        props = ["h=true", "mmu=on", "pmp=on"]
        if not self.has_fp:
            props += ["f=false", "d=false"]
            if tuple(version) >= (8, 0):
                props.append("zfa=false")      # 8.0+: "Zfa extension requires F extension"
        props += [f"{ext}=false" for ext, since in QEMU_EXTENSIONS_OFF if tuple(version) >= since]
        props.append(f"sstc={'true' if self.sstc else 'false'}")
        props.append(f"debug={'true' if self.sdtrig else 'false'}")
        return props

    def qemu_machine(self) -> list[str]:
        """The machine options: virt, one hart, this RAM, no firmware, no network, no monitor."""
        return (["-M", "virt", "-smp", "1", "-m", size_text(self.ram_size), "-bios", "none", "-nic", "none",
                 "-monitor", "none", "-display", "none"]
                + (["-semihosting-config", "enable=on,target=native"] if self.semihosting else []))

    def describe(self) -> dict:
        """What the trace header records (Header.platform) and the trace cache keys on."""
        return {"isa": "RV64" + "".join(sorted(self.isa.upper())), "misa": f"{self.misa:#x}",
                "ram_base": f"{self.ram_base:#x}", "ram_size": size_text(self.ram_size),
                "fdt_addr": f"{self.fdt_addr:#x}", "sstc": self.sstc, "sdtrig": self.sdtrig, "pmp_entries": self.pmp_entries,
                "semihosting": self.semihosting,
                "memory_map": {k: [f"{b:#x}", f"{s:#x}"] for k, (b, s) in MEMORY_MAP.items()}}


DEFAULT = Platform()


def platform_for(ram: str | int | None = None) -> Platform:
    """The platform of a run: the default hart with ``ram`` (bytes or a size such as "256M")."""
    if ram in (None, ""):
        return DEFAULT
    size = ram if isinstance(ram, int) else parse_size(ram)
    return Platform(ram_size=size)
