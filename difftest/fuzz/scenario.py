"""Fuzz scenarios as data, and the block that carries them into a copy of guests/fuzz_interp.

A *scenario* is a JSON object (what the corpus stores, what ``difftest fuzz --replay`` reads)::

    {"fuzz_scenario": 1, "hgatp": "sv39x4", "vs": "sv39", "vmid": 1, "asid": 2,
     "setup": [item, ...],      # CSRs and page-table writes, before the TLB is flushed
     "ops":   [item, ...]}      # in order; every "access" item is one probe

Items (``t`` says which; numbers are plain ints):

* ``{"t": "csr", "csr": "mstatus|vsstatus|hstatus|henvcfg|menvcfg|medeleg|hedeleg", "set": n, "clear": n}``
* ``{"t": "map", "stage": "g|vs", "va": n, "level": l, "pte": n, "modes": ["sv39x4", ...]}`` -- the raw PTE
  written at va's slot of level l in the tables of each listed mode (the same GPA/GVA in every mode whose
  width holds it, so an hgatp/vsatp MODE switch finds the mapping); ``"t": "or"`` ORs ``pte`` into it
* ``{"t": "reloc", "va": n, "level": l, "gpa": n, "leaf": n, "gflags": n, "vs_modes": [...], "g_modes": [...]}``
  -- the VS table holding va's leaf at level l is a page of its own at guest-physical ``gpa`` (mapped at
  the G stage with ``gflags``, 0 = not mapped), so the VS walk's implicit accesses go through the G stage
* ``{"t": "atp", "which": "hgatp|vsatp", "mode": name, "id": n}`` -- switch MODE and VMID/ASID, no fence
* ``{"t": "fence", "insn": "sfence.vma|hfence.vvma|hfence.gvma", "rs1": n|null, "rs2": n|null}`` -- in M
* ``{"t": "access", "acc": "ld|sd|...", "mode": "M|HS|U|VS|VU", "addr": n, "value": n, "mstatus": n}`` --
  one probe (difftest.h's rt_access; ``mstatus`` = MPRV/MPV/MPP for the M-mode MPRV accesses)

Data pages sit at DATA (fixed in the guest, so addresses survive a rebuild).  The block (symbol fz_block):
magic "HGFZ" | version << 32, payload length, checksum, then records (guests/fuzz_interp/fuzz_interp.c).
"""
from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

from difftest.atomic import write_atomic

MAGIC, VERSION, WORDS = 0x5A464748, 1, 16384
SYMBOL = "fz_block"
DATA, DATA_PAGES = 0x86000000, 16
RAM_GIB = (0x80000000, 0xC0000000)       # guest RAM's identity GiB: never remapped (code, tables, stubs)
G_MODES = {"bare": 0, "sv39x4": 8, "sv48x4": 9, "sv57x4": 10}
VS_MODES = {"bare": 0, "sv39": 8, "sv48": 9, "sv57": 10}
CSRS = ["mstatus", "vsstatus", "hstatus", "henvcfg", "menvcfg", "medeleg", "hedeleg"]
ACCESSES = ["ld", "lw", "lbu", "sd", "sw", "amoadd.d", "lr.d", "sc.d", "fetch", "hlv.d", "hlvx.wu", "hsv.d",
            "mprv-ld", "mprv-sd", "sfence.vma", "hfence.vvma", "hfence.gvma"]
MODES = ["M", "HS", "U", "VS", "VU"]
FENCES = ["sfence.vma", "hfence.vvma", "hfence.gvma"]
# an access whose loaded value means nothing to compare: fences (rs2 echoed) and SC (success is the
# implementation's choice after any trap, Unpriv. "Zalrsc"), and stores (the stored value echoed)
NO_VALUE = {"sfence.vma", "hfence.vvma", "hfence.gvma", "sc.d", "sd", "sw", "hsv.d", "mprv-sd"}
R_SCEN, R_CSR, R_MAP, R_OR, R_RELOC, R_GO, R_ACCESS, R_ATP, R_END, R_FENCE = range(1, 11)


class ScenarioError(ValueError):
    """A scenario (file or generated) that cannot be encoded; the message says which field."""


def top_level(mode: str) -> int:
    """Level of the root table: Sv39(x4) 2, Sv48(x4) 3, Sv57(x4) 4; -1 for Bare."""
    return {"bare": -1, "sv39": 2, "sv48": 3, "sv57": 4}[mode.removesuffix("x4")]


def width(mode: str) -> int:
    """Address bits a mode translates: GPA width of an x4 mode (41/50/59), VA width of a VS mode."""
    t = top_level(mode)
    return 12 + 9 * (t + 1) + (2 if mode.endswith("x4") else 0)


def leaf_size(level: int) -> int:
    return 1 << (12 + 9 * level)


def masked(va: int, mode: str) -> int:
    """The address the guest's table builder indexes with (it masks each index, the x4 root by 11 bits):
    a mapping of an address above the width lands in the slot of this alias."""
    return va & ((1 << width(mode)) - 1)


def safe_span(va: int, level: int, mode: str) -> bool:
    """Whether writing va's slot at ``level`` in ``mode``'s tables leaves guest RAM's identity GiB (its code,
    tables and trap handlers) alone: the span that slot covers must not meet it."""
    lo = masked(va, mode) & ~(leaf_size(level) - 1)
    return lo + leaf_size(level) <= RAM_GIB[0] or lo >= RAM_GIB[1]


def _int(d: dict, k: str, lo: int = 0, hi: int = (1 << 64) - 1) -> int:
    v = d.get(k)
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise ScenarioError(f"{k!r} must be an integer in {lo:#x}..{hi:#x}, not {v!r}")
    return v


def _name(d: dict, k: str, names) -> str:
    v = d.get(k)
    if v not in names:
        raise ScenarioError(f"{k!r} must be one of {', '.join(names)}, not {v!r}")
    return v


def _mask(d: dict, k: str, table: dict) -> int:
    v = d.get(k, [])
    if not isinstance(v, list) or any(m not in table or table[m] == 0 for m in v):
        raise ScenarioError(f"{k!r} must be a list of {', '.join(m for m in table if table[m])}")
    return sum(1 << (table[m] - 8) for m in set(v))


def _table_write(it: dict, where: str) -> list[int]:
    stage = _name(it, "stage", ["g", "vs"])
    level = _int(it, "level", 0, 4)
    va = _int(it, "va")
    table = G_MODES if stage == "g" else VS_MODES
    modes = _mask(it, "modes", table)
    for m in it.get("modes", []):
        if not safe_span(va, level, m) or level > top_level(m):
            raise ScenarioError(f"{where}: {stage} {it['t']} at va {va:#x} level {level} would overwrite guest "
                                f"RAM's identity mapping in {m} (or the mode has no such level)")
    kind = R_MAP if it["t"] == "map" else R_OR
    return [kind | (stage == "vs") << 8 | level << 16 | modes << 24, va, _int(it, "pte")]


def _item(it, where: str, setup: bool) -> list[int]:
    if not isinstance(it, dict) or "t" not in it:
        raise ScenarioError(f"{where}: an item must be an object with a 't' field")
    t = it["t"]
    if t == "csr":
        return [R_CSR | CSRS.index(_name(it, "csr", CSRS)) << 8, _int(it, "set"), _int(it, "clear")]
    if t in ("map", "or"):
        return _table_write(it, where)
    if t == "reloc":
        level, va, gpa = _int(it, "level", 0, 3), _int(it, "va"), _int(it, "gpa", 0, (1 << 56) - 1)
        if gpa & 0xfff:
            raise ScenarioError(f"{where}: reloc gpa {gpa:#x} is not page aligned")
        for m in it.get("vs_modes", []):
            if m in VS_MODES and (not safe_span(va, level + 1, m) or level + 1 > top_level(m)):
                raise ScenarioError(f"{where}: reloc at va {va:#x} level {level} is not allowed in {m}")
        for m in it.get("g_modes", []):
            if m in G_MODES and it.get("gflags") and not safe_span(gpa, 0, m):
                raise ScenarioError(f"{where}: reloc gpa {gpa:#x} is guest RAM in {m}")
        return [R_RELOC | level << 16 | _mask(it, "vs_modes", VS_MODES) << 24 | _mask(it, "g_modes", G_MODES) << 32,
                va, gpa, _int(it, "leaf"), _int(it, "gflags", 0, 0x3ff)]
    if setup:
        raise ScenarioError(f"{where}: a {t!r} item belongs in ops, not setup")
    if t == "atp":
        which = _name(it, "which", ["hgatp", "vsatp"])
        mode = _name(it, "mode", G_MODES if which == "hgatp" else VS_MODES)
        mid = _int(it, "id", 0, 3)
        return [R_ATP | (which == "vsatp") << 8 | (G_MODES if which == "hgatp" else VS_MODES)[mode] << 16 | mid << 24]
    if t == "fence":
        insn = _name(it, "insn", FENCES)
        rs1, rs2 = it.get("rs1"), it.get("rs2")
        for k, v in (("rs1", rs1), ("rs2", rs2)):
            if v is not None:
                _int(it, k)
        return [R_FENCE | FENCES.index(insn) << 8 | (rs1 is not None) << 16 | (rs2 is not None) << 17,
                rs1 or 0, rs2 or 0]
    if t == "access":
        acc, mode = _name(it, "acc", ACCESSES), _name(it, "mode", MODES)
        ms = _int(it, "mstatus", 0, (1 << 40) - 1) if "mstatus" in it else 0
        if ms & ~((1 << 17) | (1 << 39) | (3 << 11)):
            raise ScenarioError(f"{where}: mstatus may hold only MPRV, MPV and MPP")
        if acc.startswith("mprv") and mode != "M":
            raise ScenarioError(f"{where}: {acc} runs from M only")
        show = acc not in NO_VALUE
        return [R_ACCESS | ACCESSES.index(acc) << 8 | MODES.index(mode) << 16 | show << 24,
                _int(it, "addr"), _int(it, "value") if "value" in it else 0, ms]
    raise ScenarioError(f"{where}: unknown item type {t!r}")


def check(s) -> dict:
    """The scenario, validated (ScenarioError otherwise)."""
    if not isinstance(s, dict) or s.get("fuzz_scenario") != 1:
        raise ScenarioError("not a fuzz scenario (want an object with \"fuzz_scenario\": 1)")
    _name(s, "hgatp", G_MODES)
    _name(s, "vs", VS_MODES)
    _int(s, "vmid", 0, 3)
    _int(s, "asid", 0, 3)
    for k in ("setup", "ops"):
        if not isinstance(s.get(k), list):
            raise ScenarioError(f"{k!r} must be a list")
    encode_one(s)
    return s


def encode_one(s: dict) -> list[int]:
    out = [R_SCEN | G_MODES[s["hgatp"]] << 8 | VS_MODES[s["vs"]] << 16 | s["vmid"] << 24 | s["asid"] << 40]
    for i, it in enumerate(s["setup"]):
        out += _item(it, f"setup[{i}]", True)
    out.append(R_GO)
    for i, it in enumerate(s["ops"]):
        out += _item(it, f"ops[{i}]", False)
    return out


def probes(s: dict) -> list[int]:
    """Indices into ops of the items that are probes (accesses), in probe order."""
    return [i for i, it in enumerate(s["ops"]) if it.get("t") == "access"]


def encode(batch: list[dict]) -> list[int]:
    """The whole block (header included) for scenarios run one after another in one guest run."""
    payload: list[int] = []
    for s in batch:
        payload += encode_one(s)
    payload.append(R_END)
    if len(payload) + 3 > WORDS:
        raise ScenarioError(f"the batch needs {len(payload) + 3} words; the block holds {WORDS}")
    h = 0
    for w in payload:
        h = ((h << 7) | (h >> 57)) & (2**64 - 1) ^ w
    return [MAGIC | VERSION << 32, len(payload), h] + payload


def block_offset(elf: Path) -> int:
    """File offset of fz_block in the interpreter's ELF."""
    from difftest import config_block as CB
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection
    with open(elf, "rb") as f:
        e = ELFFile(f)
        loads = [(s["p_vaddr"], s["p_filesz"], s["p_offset"]) for s in e.iter_segments() if s["p_type"] == "PT_LOAD"]
        addr = None
        for sec in e.iter_sections():
            if isinstance(sec, SymbolTableSection):
                for sym in sec.get_symbol_by_name(SYMBOL) or []:
                    addr = sym["st_value"]
    if addr is None:
        raise ScenarioError(f"{elf}: no {SYMBOL} symbol (not the fuzz interpreter?)")
    return CB._offset(addr, loads, SYMBOL, WORDS * 8, Path(elf))


def patch(elf: Path, batch: list[dict], out_dir: Path) -> Path:
    """A copy of the interpreter ELF carrying ``batch``, named by its content."""
    words = encode(batch)
    data = bytearray(Path(elf).read_bytes())
    off = block_offset(elf)
    struct.pack_into(f"<{len(words)}Q", data, off, *words)
    digest = hashlib.sha256(bytes(data)).hexdigest()[:12]
    dst = Path(out_dir) / f"fuzz_interp.blk{digest}.elf"
    if not dst.exists():
        write_atomic(dst, bytes(data))
    return dst


def load(path) -> dict:
    """A scenario file (ScenarioError for anything malformed, never a traceback)."""
    try:
        d = json.loads(Path(path).read_text())
    except OSError as e:
        raise ScenarioError(f"{path}: cannot read ({e.strerror or e})") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise ScenarioError(f"{path}: not JSON ({e})") from None
    return check(d.get("scenario", d) if isinstance(d, dict) else d)


def dumps(s: dict) -> str:
    """JSON with addresses and PTEs in hex comments would not be JSON: keep ints, one item per line."""
    head = {k: s[k] for k in ("fuzz_scenario", "hgatp", "vs", "vmid", "asid")}
    lines = [json.dumps(head)[:-1] + ","]
    for k in ("setup", "ops"):
        items = ",\n   ".join(json.dumps(it) for it in s[k])
        lines.append(f' "{k}": [' + (f"\n   {items}\n " if items else "") + "]" + ("," if k == "setup" else ""))
    return "\n".join(lines) + "\n}\n"
