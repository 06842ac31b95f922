"""The guest configuration block (docs/ARCHITECTURE.md sections 2 and 2a).

Find the symbol ``difftest_config`` with pyelftools, map its address to a file
offset through the PT_LOAD segment that holds it, read the declared modes, and
write a patched *copy* of the ELF with the chosen hgatp/vsatp MODE (and
optionally a probe selection).  An ELF without the block is valid: ``read``
returns None and ``patch_copy`` returns the ELF itself with modes "".
"""
from __future__ import annotations

import functools
import hashlib
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

from difftest.atomic import write_atomic

MAGIC = 0x46434748
VERSION = 1
SYMBOL = "difftest_config"
SELECT_SYMBOL = "difftest_probe_select"
SELECT_WORDS = 64
BLOCK_SIZE = 56

HGATP_MODES = {"bare": 0, "sv39x4": 8, "sv48x4": 9, "sv57x4": 10}
VS_MODES = {"bare": 0, "sv39": 8, "sv48": 9, "sv57": 10}
HGATP_NAMES = {v: k for k, v in HGATP_MODES.items()}
VS_NAMES = {v: k for k, v in VS_MODES.items()}


class ConfigBlockError(Exception):
    """A classified, user-facing error: the ELF is broken or the request is invalid."""

    def __init__(self, message: str, error_class: str = "bad-elf"):
        super().__init__(message)
        self.error_class = error_class


@dataclass
class ConfigBlock:
    path: Path
    offset: int                 # file offset of the block
    magic: int
    version: int
    hgatp_mode: int
    vs_mode: int
    hgatp_modes: int            # declared bitmask, bit N = MODE N
    vs_modes: int
    flags: int
    probes: int
    select_offset: int | None = None   # file offset of difftest_probe_select, if present

    @property
    def hgatp_mode_names(self) -> list[str]:
        return [HGATP_NAMES[m] for m in sorted(HGATP_NAMES) if self.hgatp_modes >> m & 1]

    @property
    def vs_mode_names(self) -> list[str]:
        return [VS_NAMES[m] for m in sorted(VS_NAMES) if self.vs_modes >> m & 1]

    @property
    def default_hgatp(self) -> str:
        return self.hgatp_mode_names[0] if self.hgatp_modes else HGATP_NAMES.get(self.hgatp_mode, "bare")

    @property
    def default_vs(self) -> str:
        return self.vs_mode_names[0] if self.vs_modes else VS_NAMES.get(self.vs_mode, "bare")


@dataclass
class Patched:
    path: Path
    hgatp_mode: str             # "" when the ELF has no block
    vs_mode: str
    block: ConfigBlock | None = field(default=None, repr=False)


def hgatp_value(name: str) -> int:
    try:
        return HGATP_MODES[name.lower()]
    except KeyError:
        raise ConfigBlockError(f"unknown hgatp mode {name!r}; choose from {', '.join(HGATP_MODES)}",
                               "usage") from None


def vs_value(name: str) -> int:
    try:
        return VS_MODES[name.lower()]
    except KeyError:
        raise ConfigBlockError(f"unknown VS mode {name!r}; choose from {', '.join(VS_MODES)}", "usage") from None


SLED_SYMBOLS = ("rt_probe_sled", "rt_probe_sled_end")


def _symbols(elf_path: Path) -> tuple[dict[str, int], list[tuple[int, int, int]]]:
    """({symbol: address} for our symbols, [(vaddr, filesz, offset) of PT_LOAD]).  Remembered per
    file version (path, inode, size, mtime): a case asks for each ELF's sled once per compared pair,
    and pyelftools takes ~25 ms to find a symbol."""
    try:
        st = os.stat(elf_path)
    except FileNotFoundError:
        raise ConfigBlockError(f"{elf_path}: no such file", "bad-elf") from None
    except OSError as e:
        raise ConfigBlockError(f"{elf_path}: not a readable ELF file ({e})", "bad-elf") from None
    syms, loads = _symbols_of(Path(elf_path), st.st_ino, st.st_size, st.st_mtime_ns)
    return dict(syms), list(loads)


@functools.lru_cache(maxsize=64)
def _symbols_of(elf_path: Path, _ino: int, _size: int, _mtime_ns: int):
    try:
        from elftools.common.exceptions import ELFError
        from elftools.elf.elffile import ELFFile
        from elftools.elf.sections import SymbolTableSection
    except ImportError as e:          # pragma: no cover - pyelftools is a dependency
        raise ConfigBlockError(f"pyelftools is missing ({e})", "missing-backend") from None
    try:
        with open(elf_path, "rb") as f:
            elf = ELFFile(f)
            loads = [(s["p_vaddr"], s["p_filesz"], s["p_offset"]) for s in elf.iter_segments()
                     if s["p_type"] == "PT_LOAD"]
            syms = {}
            for sec in elf.iter_sections():
                if isinstance(sec, SymbolTableSection):
                    for name in (SYMBOL, SELECT_SYMBOL) + SLED_SYMBOLS:
                        for s in sec.get_symbol_by_name(name) or []:
                            syms[name] = s["st_value"]
            return syms, tuple(loads)
    except FileNotFoundError:
        raise ConfigBlockError(f"{elf_path}: no such file", "bad-elf") from None
    except (ELFError, struct.error, ValueError, OSError) as e:
        raise ConfigBlockError(f"{elf_path}: not a readable ELF file ({e})", "bad-elf") from None


def _offset(addr: int, loads, what: str, size: int, path: Path) -> int:
    for vaddr, filesz, off in loads:
        if vaddr <= addr and addr + size <= vaddr + filesz:
            return off + (addr - vaddr)
    raise ConfigBlockError(f"{path}: symbol {what} at {addr:#x} is not inside a loaded segment", "bad-elf")


def probe_sled(elf_path) -> tuple[int, int] | None:
    """(address, number of marks) of the runtime's probe-mark sled (ARCHITECTURE 2b), or None for an
    ELF without one (a third-party program, or a guest built before the marks)."""
    syms, _ = _symbols(Path(elf_path))
    lo, hi = syms.get(SLED_SYMBOLS[0]), syms.get(SLED_SYMBOLS[1])
    if lo is None or hi is None or hi <= lo:
        return None
    return lo, (hi - lo) // 4


def read(elf_path) -> ConfigBlock | None:
    """The block of an ELF, or None when the ELF has no ``difftest_config`` symbol."""
    path = Path(elf_path)
    syms, loads = _symbols(path)
    if SYMBOL not in syms:
        return None
    off = _offset(syms[SYMBOL], loads, SYMBOL, BLOCK_SIZE, path)
    data = path.read_bytes()
    magic, version, hm, vm, hms, vms, flags, probes = struct.unpack_from("<IIQQQQQQ", data, off)
    if magic != MAGIC:
        raise ConfigBlockError(f"{path}: difftest_config has magic {magic:#x}, expected {MAGIC:#x}", "bad-elf")
    if version != VERSION:
        raise ConfigBlockError(f"{path}: difftest_config version {version} is not supported (want {VERSION})",
                               "bad-elf")
    sel = None
    if SELECT_SYMBOL in syms:
        sel = _offset(syms[SELECT_SYMBOL], loads, SELECT_SYMBOL, SELECT_WORDS * 8, path)
    return ConfigBlock(path, off, magic, version, hm, vm, hms, vms, flags, probes, sel)


def read_selection(elf_path) -> list[int] | None:
    """The 64 words of difftest_probe_select, or None without the array."""
    blk = read(elf_path)
    if blk is None or blk.select_offset is None:
        return None
    return list(struct.unpack_from(f"<{SELECT_WORDS}Q", Path(elf_path).read_bytes(), blk.select_offset))


def selection_words(probe_ids) -> list[int]:
    """Probe ids (< 4096) -> the 64 selection words (bit id % 64 of word id // 64)."""
    words = [0] * SELECT_WORDS
    for i in probe_ids:
        if not 0 <= i < SELECT_WORDS * 64:
            raise ConfigBlockError(f"probe id {i} out of range 0..{SELECT_WORDS * 64 - 1}", "usage")
        words[i // 64] |= 1 << (i % 64)
    return words


def patch_copy(elf_path, out_dir, *, hgatp_mode: str | None = None, vs_mode: str | None = None,
               probes=None, name: str | None = None) -> Patched:
    """Write a copy of the ELF with the chosen modes (None = lowest declared) into out_dir.

    ``probes``: optional iterable of probe ids to run (all others skipped).  A mode the guest does not
    declare is a usage error.  An ELF without the block is returned as is with modes "" (asking for a
    mode then is a usage error, since nothing could carry it)."""
    path = Path(elf_path)
    blk = read(path)
    if blk is None:
        if hgatp_mode or vs_mode or probes is not None:
            raise ConfigBlockError(f"{path} has no difftest_config block; it runs as is, without modes",
                                   "usage")
        return Patched(path, "", "", None)
    hg = (hgatp_mode or blk.default_hgatp).lower()
    vs = (vs_mode or blk.default_vs).lower()
    hv, vv = hgatp_value(hg), vs_value(vs)
    if blk.hgatp_modes and not blk.hgatp_modes >> hv & 1:
        raise ConfigBlockError(f"{path.name} does not declare hgatp mode {hg} "
                               f"(it declares {', '.join(blk.hgatp_mode_names)})", "usage")
    if blk.vs_modes and not blk.vs_modes >> vv & 1:
        raise ConfigBlockError(f"{path.name} does not declare VS mode {vs} "
                               f"(it declares {', '.join(blk.vs_mode_names)})", "usage")
    data = bytearray(path.read_bytes())
    struct.pack_into("<QQ", data, blk.offset + 8, hv, vv)
    tag = f"{hg}-{vs}"
    if probes is not None:
        if blk.select_offset is None:
            raise ConfigBlockError(f"{path.name} has no difftest_probe_select array", "usage")
        words = selection_words(probes)
        struct.pack_into(f"<{SELECT_WORDS}Q", data, blk.select_offset, *words)
        tag += "-sel" + hashlib.sha256(struct.pack(f"<{SELECT_WORDS}Q", *words)).hexdigest()[:10]
    stem = name or path.name.split(".")[0]
    digest = hashlib.sha256(bytes(data)).hexdigest()[:12]
    dst = Path(out_dir) / f"{stem}.{tag}.{digest}.elf"
    if not dst.exists():
        write_atomic(dst, bytes(data))
    return Patched(dst, hg, vs, blk)
