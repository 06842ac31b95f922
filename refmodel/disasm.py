"""Disassembler for RV64IMAC + Zicsr + Zifencei + privileged + H instructions, in capstone's
spelling (ABI register names, ``mnemonic op, op``, loads/stores as ``off(base)``), with CSR
names including every H CSR (capstone 5 knows neither the H instructions nor the H CSRs)."""
from __future__ import annotations

from refmodel.csr import NAMES as CSR_NAMES
from refmodel.decode import expand_c, sext

REG_NAMES = ["zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1", "a0", "a1", "a2", "a3", "a4", "a5",
             "a6", "a7", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "t3", "t4", "t5", "t6"]
R = REG_NAMES
OPN = {(0, 0): "add", (0x20, 0): "sub", (0, 1): "sll", (0, 2): "slt", (0, 3): "sltu", (0, 4): "xor",
       (0, 5): "srl", (0x20, 5): "sra", (0, 6): "or", (0, 7): "and", (1, 0): "mul", (1, 1): "mulh",
       (1, 2): "mulhsu", (1, 3): "mulhu", (1, 4): "div", (1, 5): "divu", (1, 6): "rem", (1, 7): "remu"}
OPWN = {(0, 0): "addw", (0x20, 0): "subw", (0, 1): "sllw", (0, 5): "srlw", (0x20, 5): "sraw", (1, 0): "mulw",
        (1, 4): "divw", (1, 5): "divuw", (1, 6): "remw", (1, 7): "remuw"}
OPIN = {0: "addi", 2: "slti", 3: "sltiu", 4: "xori", 6: "ori", 7: "andi"}
LDN = {0: "lb", 1: "lh", 2: "lw", 3: "ld", 4: "lbu", 5: "lhu", 6: "lwu"}
STN = {0: "sb", 1: "sh", 2: "sw", 3: "sd"}
BRN = {0: "beq", 1: "bne", 4: "blt", 5: "bge", 6: "bltu", 7: "bgeu"}
AMON = {0x01: "amoswap", 0x00: "amoadd", 0x04: "amoxor", 0x0C: "amoand", 0x08: "amoor", 0x10: "amomin",
        0x14: "amomax", 0x18: "amominu", 0x1C: "amomaxu", 0x02: "lr", 0x03: "sc"}
CSRN = {1: "csrrw", 2: "csrrs", 3: "csrrc", 5: "csrrwi", 6: "csrrsi", 7: "csrrci"}
SYS = {0x00000073: "ecall", 0x00100073: "ebreak", 0x30200073: "mret", 0x10200073: "sret", 0x10500073: "wfi",
       0x7B200073: "dret"}
HLSVN = {(0x30, 0): "hlv.b", (0x30, 1): "hlv.bu", (0x32, 0): "hlv.h", (0x32, 1): "hlv.hu", (0x32, 3): "hlvx.hu",
         (0x34, 0): "hlv.w", (0x34, 1): "hlv.wu", (0x34, 3): "hlvx.wu", (0x36, 0): "hlv.d",
         (0x31, None): "hsv.b", (0x33, None): "hsv.h", (0x35, None): "hsv.w", (0x37, None): "hsv.d"}
FENCE_BITS = "iorw"


def csr_name(num: int) -> str:
    return CSR_NAMES.get(num, f"0x{num:x}")


def _fset(b):
    return "".join(c for i, c in enumerate(FENCE_BITS) if b >> (3 - i) & 1)


def disasm32(insn: int, pc: int = 0) -> str | None:
    op = insn & 0x7F
    rd, f3, rs1, rs2, f7 = (insn >> 7) & 31, (insn >> 12) & 7, (insn >> 15) & 31, (insn >> 20) & 31, insn >> 25
    immi = sext(insn >> 20, 12)
    if op == 0x37:
        return f"lui {R[rd]}, 0x{(insn >> 12) & 0xFFFFF:x}"
    if op == 0x17:
        return f"auipc {R[rd]}, 0x{(insn >> 12) & 0xFFFFF:x}"
    if op == 0x6F:
        imm = sext(((insn >> 31) << 20) | (((insn >> 12) & 0xFF) << 12) | (((insn >> 20) & 1) << 11)
                   | (((insn >> 21) & 0x3FF) << 1), 21)
        return f"jal {R[rd]}, {imm}"
    if op == 0x67 and f3 == 0:
        return f"jalr {R[rd]}, {immi}({R[rs1]})"
    if op == 0x63 and f3 in BRN:
        imm = sext(((insn >> 31) << 12) | (((insn >> 7) & 1) << 11) | (((insn >> 25) & 0x3F) << 5)
                   | (((insn >> 8) & 0xF) << 1), 13)
        return f"{BRN[f3]} {R[rs1]}, {R[rs2]}, {imm}"
    if op == 0x03 and f3 in LDN:
        return f"{LDN[f3]} {R[rd]}, {immi}({R[rs1]})"
    if op == 0x23 and f3 in STN:
        return f"{STN[f3]} {R[rs2]}, {sext(((insn >> 25) << 5) | rd, 12)}({R[rs1]})"
    if op == 0x13:
        if f3 == 1 and insn >> 26 == 0:
            return f"slli {R[rd]}, {R[rs1]}, {(insn >> 20) & 63}"
        if f3 == 5 and insn >> 26 in (0, 0x10):
            return f"{'srai' if insn >> 26 else 'srli'} {R[rd]}, {R[rs1]}, {(insn >> 20) & 63}"
        if f3 in OPIN:
            return f"{OPIN[f3]} {R[rd]}, {R[rs1]}, {immi}"
        return None
    if op == 0x1B:
        if f3 == 0:
            return f"addiw {R[rd]}, {R[rs1]}, {immi}"
        n = {(1, 0): "slliw", (5, 0): "srliw", (5, 0x20): "sraiw"}.get((f3, f7))
        return f"{n} {R[rd]}, {R[rs1]}, {rs2}" if n else None
    if op == 0x33 and (f7, f3) in OPN:
        return f"{OPN[(f7, f3)]} {R[rd]}, {R[rs1]}, {R[rs2]}"
    if op == 0x3B and (f7, f3) in OPWN:
        return f"{OPWN[(f7, f3)]} {R[rd]}, {R[rs1]}, {R[rs2]}"
    if op == 0x0F:
        if f3 == 1:
            return "fence.i"
        if f3 == 0:
            return f"fence {_fset((insn >> 24) & 15)}, {_fset((insn >> 20) & 15)}"
        return None
    if op == 0x2F and f3 in (2, 3) and (f7 >> 2) in AMON:
        n = AMON[f7 >> 2] + (".w" if f3 == 2 else ".d") + {0: "", 1: ".rl", 2: ".aq", 3: ".aqrl"}[f7 & 3]
        if f7 >> 2 == 0x02:
            return f"{n} {R[rd]}, ({R[rs1]})" if rs2 == 0 else None
        return f"{n} {R[rd]}, {R[rs2]}, ({R[rs1]})"
    if op == 0x73:
        if f3 == 0:
            if insn in SYS:
                return SYS[insn]
            if rd == 0 and f7 in (0x09, 0x11, 0x31):
                n = {0x09: "sfence.vma", 0x11: "hfence.vvma", 0x31: "hfence.gvma"}[f7]
                return f"{n} {R[rs1]}, {R[rs2]}"
            return None
        if f3 == 4:
            key = (f7, rs2) if f7 in (0x30, 0x32, 0x34, 0x36) else (f7, None if rd == 0 else -1)
            n = HLSVN.get(key)
            if n is None:
                return None
            if n.startswith("hsv"):
                return f"{n} {R[rs2]}, ({R[rs1]})"
            return f"{n} {R[rd]}, ({R[rs1]})"
        if f3 in CSRN:
            src = str(rs1) if f3 >= 5 else R[rs1]
            return f"{CSRN[f3]} {R[rd]}, {csr_name(insn >> 20)}, {src}"
    return None


def disasm(insn: int, pc: int = 0) -> str:
    """Text of one instruction (16-bit ones as their 32-bit expansion prefixed ``c.``-free, as
    the model executes it); ``unknown 0x...`` when the bits are not an instruction."""
    if insn & 3 != 3:
        x = expand_c(insn & 0xFFFF)
        t = disasm32(x, pc) if x is not None else None
    else:
        t = disasm32(insn & 0xFFFFFFFF, pc)
    return t if t is not None else f"unknown 0x{insn:x}"
