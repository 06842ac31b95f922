"""ELF loading: PT_LOAD segments into physical memory (QEMU's load_elf for -kernel/-bios)."""
from __future__ import annotations

from elftools.elf.elffile import ELFFile


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
