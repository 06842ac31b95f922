"""ELF loading: PT_LOAD segments into physical memory (QEMU's load_elf for -kernel/-bios)."""
from __future__ import annotations

from dataclasses import dataclass, fields

from elftools.elf.elffile import ELFFile

from refmodel.platform import FDT_ALIGN, Platform


def load_elf(path: str, memory) -> int:
    """Copies every PT_LOAD segment (file bytes, then zeros up to p_memsz); returns e_entry."""
    with open(path, "rb") as f:
        elf = ELFFile(f)
        if elf["e_machine"] != "EM_RISCV" or elf.elfclass != 64:
            raise ValueError("not a 64-bit RISC-V ELF")
        for seg in elf.iter_segments():
            if seg["p_type"] != "PT_LOAD" or seg["p_memsz"] == 0:
                continue
            data = seg.data() + bytes(seg["p_memsz"] - seg["p_filesz"])
            memory.load_bytes(seg["p_paddr"], data)
        return elf["e_entry"]


def symbol_address(path: str, name: str):
    """The value of ELF symbol ``name`` (e.g. riscv-tests' ``tohost``), or None without one."""
    with open(path, "rb") as f:
        elf = ELFFile(f)
        symtab = elf.get_section_by_name(".symtab")
        if symtab is None:
            return None
        syms = symtab.get_symbol_by_name(name)
        return syms[0]["st_value"] if syms else None


def load_firmware_image(path: str, memory, ram_base: int) -> int:
    """A -bios image as QEMU loads it (hw/riscv/boot.c riscv_load_firmware): an ELF at its physical
    addresses, entered at e_entry; anything else a raw image at the start of RAM, entered there (e.g.
    OpenSBI's fw_jump.bin -- Debian's OpenSBI 1.5.1 links its .elf files position-independent at 0,
    so only its .bin files run on virt)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] == b"\x7fELF":
        return load_elf(path, memory)
    memory.load_bytes(ram_base, data)
    return ram_base


def boot_firmware(hart, firmware: str, payload: str, dtb: bytes) -> None:
    """What QEMU virt gives a firmware started with ``-bios FIRMWARE -kernel PAYLOAD``
    (hw/riscv/virt.c virt_machine_done): the firmware (an ELF or a raw image) and the payload ELF
    loaded, the device tree (the bytes QEMU itself generated: difftest/firmware.py) at
    Platform.fdt_addr, and the reset stub at the reset vector that enters the firmware with a0 = mhartid, a1 = the tree and
    a2 = fw_dynamic_info naming the payload's entry (in S-mode)."""
    from refmodel.devices import MROM_BASE, reset_stub
    fw_entry = load_firmware_image(firmware, hart.mem, hart.profile.ram_base)
    payload_entry = load_elf(payload, hart.mem)
    fdt = hart.profile.fdt_addr            # Platform.fdt_addr: RAM's end (<= 3 GiB) 2 MiB-aligned below
    if len(dtb) > FDT_ALIGN:
        raise ValueError(f"a device tree of {len(dtb)} bytes: QEMU would place it lower than fdt_addr")
    hart.mem.load_bytes(fdt, dtb)
    hart.mem.load_bytes(MROM_BASE, reset_stub(fw_entry, fdt, next_addr=payload_entry))
    hart.pc = MROM_BASE


@dataclass(frozen=True)
class FirmwarePlatform(Platform):
    """The platform with a firmware in front of the program (``-bios FIRMWARE``; the ELF run is its
    payload, ``-kernel``): QEMU's machine options name it, the model boots it (``boot_firmware``),
    the trace header and the trace cache record it (``describe``).  A firmware reads the device
    tree, whose /chosen/rng-seed QEMU fills from its RNG: ``-seed 0`` makes those bytes -- and the
    tree the model is given -- the same in every run."""
    firmware: str = ""
    firmware_sha256: str = ""

    def qemu_machine(self) -> list[str]:
        m = super().qemu_machine()
        m[m.index("-bios") + 1] = self.firmware
        return m + ["-seed", "0"]

    def describe(self) -> dict:
        return {**super().describe(), "firmware": self.firmware, "firmware_sha256": self.firmware_sha256}


def with_firmware(platform: Platform, firmware: str, sha256: str) -> FirmwarePlatform:
    """``platform`` with ``firmware`` (its path and the sha256 of its bytes) as -bios."""
    base = {f.name: getattr(platform, f.name) for f in fields(Platform)}
    # no semihosting under a firmware: OpenSBI 1.5.1 probes it and, when QEMU serves the call, uses
    # calls the model does not serve (SYS_ERRNO at boot); without it the probe's ebreak is a
    # breakpoint on both sides, which the firmware handles
    base["semihosting"] = False
    return FirmwarePlatform(**base, firmware=firmware, firmware_sha256=sha256)
