"""Disassembly for reports: the model's own names for H instructions and CSRs
(``refmodel.disasm``), capstone for everything else.

capstone 5 neither decodes the H-extension instructions (HLV/HSV/HFENCE) nor
names the H CSRs, so those come from the model's disassembler when it is
present, and from the small table below otherwise.
"""
from __future__ import annotations

import functools

# H-extension CSR numbers (Priv. 20240411, table 2.x "Hypervisor and VS CSRs")
H_CSRS = {
    0x600: "hstatus", 0x602: "hedeleg", 0x603: "hideleg", 0x604: "hie", 0x606: "hcounteren",
    0x607: "hgeie", 0x60A: "henvcfg", 0x643: "htval", 0x644: "hip", 0x645: "hvip", 0x64A: "htinst",
    0x680: "hgatp", 0xE12: "hgeip", 0x200: "vsstatus", 0x204: "vsie", 0x205: "vstvec",
    0x240: "vsscratch", 0x241: "vsepc", 0x242: "vscause", 0x243: "vstval", 0x244: "vsip",
    0x280: "vsatp", 0x34A: "mtinst", 0x34B: "mtval2",
}

# HLV/HSV/HFENCE: opcode SYSTEM, funct3=100 for HLV/HSV, funct7 selects (H chapter 9.3)
_H_LS = {
    (0x30, 0): "hlv.b", (0x30, 1): "hlv.bu", (0x32, 0): "hlv.h", (0x32, 1): "hlv.hu", (0x32, 3): "hlvx.hu",
    (0x34, 0): "hlv.w", (0x34, 1): "hlv.wu", (0x34, 3): "hlvx.wu", (0x36, 0): "hlv.d",
    (0x31, None): "hsv.b", (0x33, None): "hsv.h", (0x35, None): "hsv.w", (0x37, None): "hsv.d",
}

_REG = ["zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1", "a0", "a1", "a2", "a3", "a4", "a5",
        "a6", "a7", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "t3", "t4", "t5", "t6"]


def _h_fallback(insn: int) -> str | None:
    if insn & 0x7F != 0x73:
        return None
    f3 = (insn >> 12) & 7
    f7 = insn >> 25
    rd, rs1, rs2 = (insn >> 7) & 31, (insn >> 15) & 31, (insn >> 20) & 31
    if f3 == 0 and rd == 0:
        if f7 == 0x11:
            return f"hfence.vvma {_REG[rs1]}, {_REG[rs2]}"
        if f7 == 0x31:
            return f"hfence.gvma {_REG[rs1]}, {_REG[rs2]}"
    if f3 == 4:
        if f7 & 1:
            name = _H_LS.get((f7, None))
            if name and rd == 0:
                return f"{name} {_REG[rs2]}, ({_REG[rs1]})"
        else:
            name = _H_LS.get((f7, rs2))
            if name:
                return f"{name} {_REG[rd]}, ({_REG[rs1]})"
    if f3 in (1, 2, 3, 5, 6, 7):
        csr = insn >> 20
        if csr in H_CSRS:
            op = {1: "csrrw", 2: "csrrs", 3: "csrrc", 5: "csrrwi", 6: "csrrsi", 7: "csrrci"}[f3]
            src = str(rs1) if f3 >= 5 else _REG[rs1]
            return f"{op} {_REG[rd]}, {H_CSRS[csr]}, {src}"
    return None


@functools.lru_cache(maxsize=1)
def _capstone():
    try:
        import capstone
        md = capstone.Cs(capstone.CS_ARCH_RISCV, capstone.CS_MODE_RISCV64 | capstone.CS_MODE_RISCVC)
        return md
    except Exception:   # capstone missing or without RISC-V: reports still work, just less readable
        return None


def _model(insn: int, pc: int) -> str | None:
    try:
        from refmodel import disasm as m
    except Exception:
        return None
    for name in ("disasm", "disassemble"):
        f = getattr(m, name, None)
        if f is None:
            continue
        try:
            try:
                r = f(insn, pc)
            except TypeError:
                r = f(insn)
        except Exception:
            return None
        return r if isinstance(r, str) and r and not r.startswith("unknown") else None
    return None


def disasm(insn: int | None, pc: int = 0) -> str:
    """One instruction as text; '' when the bits are unknown."""
    if insn is None:
        return ""
    h = _h_fallback(insn)
    if h is not None:
        return _model(insn, pc) or h
    md = _capstone()
    if md is not None:
        size = 2 if insn & 3 != 3 else 4
        try:
            for ins in md.disasm(int(insn).to_bytes(size, "little"), pc):
                return f"{ins.mnemonic} {ins.op_str}".strip()
        except Exception:
            pass
    return _model(insn, pc) or f".insn 0x{insn:x}"
