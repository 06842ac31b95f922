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


def symbol_address(path: str, name: str):
    """The value of ELF symbol ``name`` (e.g. riscv-tests' ``tohost``), or None without one."""
    with open(path, "rb") as f:
        elf = ELFFile(f)
        symtab = elf.get_section_by_name(".symtab")
        if symtab is None:
            return None
        syms = symtab.get_symbol_by_name(name)
        return syms[0]["st_value"] if syms else None
