"""What an ELF must be before any backend runs it (ARCHITECTURE section 6: an input error, exit 2).

QEMU (``-kernel`` on the pinned ``virt`` machine, ``-m 128M``, ``-bios none``) and the model
(``refmodel.loader``) both copy the PT_LOAD segments to their physical addresses (``p_paddr``)
and start at ``e_entry``.  An ELF they cannot both run the same way -- not RISC-V 64-bit
little-endian, not an executable (ET_REL object, shared object, core), no loadable bytes, a
segment outside RAM (QEMU would fail or load it somewhere the model does not), an entry point
outside every segment -- would otherwise surface as a confusing backend error or, worse, as a
"divergence" between two runs of nothing.  ``check`` rejects it first with the reason.  (Bytes of a segment that reach beyond RAM are
dropped by both loaders alike, so a segment needs only to overlap RAM.)
"""
from __future__ import annotations

import struct
from pathlib import Path

RAM_BASE = 0x8000_0000
RAM_SIZE = 128 << 20                       # qemu.MACHINE: -m 128M
EM_RISCV = 243
ET_EXEC = 2
PT_LOAD = 1
_ET_NAMES = {0: "ET_NONE", 1: "ET_REL (an object file, not linked)", 3: "ET_DYN (shared object / PIE)",
             4: "ET_CORE (a core dump)"}


class ElfError(Exception):
    """The ELF cannot be run by the backends; the message says why (an input error)."""


def check(path, ram_size: int = RAM_SIZE) -> None:
    """Raise ``ElfError`` unless ``path`` is a RISC-V 64-bit little-endian executable whose
    loadable segments each overlap RAM [0x80000000, +ram_size) (default 128 MiB; --ram), one
    holding its entry point."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise ElfError(f"{p}: cannot read it ({e.strerror or e})") from None
    if data[:4] != b"\x7fELF":
        raise ElfError(f"{p}: not an ELF file")
    if len(data) < 64 or data[4] != 2:
        raise ElfError(f"{p}: not a 64-bit ELF (the backends run RV64 guests)")
    if data[5] != 1:
        raise ElfError(f"{p}: not a little-endian ELF")
    e_type, e_machine = struct.unpack_from("<HH", data, 16)
    if e_machine != EM_RISCV:
        raise ElfError(f"{p}: not a RISC-V ELF (e_machine={e_machine})")
    if e_type != ET_EXEC:
        raise ElfError(f"{p}: not an executable: type {_ET_NAMES.get(e_type, e_type)}; link it "
                       f"(e.g. with guests/runtime/link.ld) to a fixed address in RAM")
    entry, phoff = struct.unpack_from("<QQ", data, 24)
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    if phnum == 0 or phentsize < 56 or phoff + phentsize * phnum > len(data):
        raise ElfError(f"{p}: no program headers, or they lie past the end of the file (truncated ELF)")
    loads = []
    for k in range(phnum):
        p_type, _flags, off, _vaddr, paddr, filesz, memsz = struct.unpack_from("<IIQQQQQ", data, phoff + k * phentsize)
        if p_type != PT_LOAD or memsz == 0:
            continue
        if filesz > memsz:
            raise ElfError(f"{p}: segment {k} has more file bytes ({filesz:#x}) than memory ({memsz:#x})")
        if off + filesz > len(data):
            raise ElfError(f"{p}: segment {k} ends past the end of the file (truncated ELF)")
        lo, hi = max(paddr, RAM_BASE), min(paddr + memsz, RAM_BASE + ram_size)
        if lo >= hi:
            raise ElfError(f"{p}: segment {k} at {paddr:#x}..{paddr + memsz:#x} lies outside RAM "
                           f"{RAM_BASE:#x}..{RAM_BASE + ram_size:#x} ({ram_size >> 20} MiB), where both backends "
                           f"load guests" + (" (a larger --ram?)" if paddr >= RAM_BASE + ram_size else ""))
        # bytes of a segment beyond RAM (typically the ELF headers a linker puts in the page below
        # 0x80000000) are dropped alike by QEMU's ROM loader and refmodel.memory.load_bytes
        loads.append((lo, hi))
    if not loads:
        raise ElfError(f"{p}: no loadable segment (no PT_LOAD with bytes): nothing to run")
    if not any(lo <= entry < hi for lo, hi in loads):
        raise ElfError(f"{p}: entry point {entry:#x} is in no loadable segment")
