"""Instruction fields and the RVC expansion (Unprivileged spec, chapter "C" -- every
16-bit instruction expands to one 32-bit instruction; reserved encodings return None)."""
from __future__ import annotations


def sext(v: int, bits: int) -> int:
    m = 1 << (bits - 1)
    return (v & ((1 << bits) - 1) ^ m) - m


def _b(x, hi, lo):
    return (x >> lo) & ((1 << (hi - lo + 1)) - 1)


def _i(imm, rs1, f3, rd, op):
    return ((imm & 0xFFF) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op


def _s(imm, rs2, rs1, f3, op):
    imm &= 0xFFF
    return ((imm >> 5) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | ((imm & 0x1F) << 7) | op


def _r(f7, rs2, rs1, f3, rd, op):
    return (f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op


def _bt(imm, rs2, rs1, f3):
    imm &= 0x1FFF
    return (((imm >> 12) & 1) << 31) | (((imm >> 5) & 0x3F) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) \
        | (((imm >> 1) & 0xF) << 8) | (((imm >> 11) & 1) << 7) | 0x63


def _j(imm, rd):
    imm &= 0x1FFFFF
    return (((imm >> 20) & 1) << 31) | (((imm >> 1) & 0x3FF) << 21) | (((imm >> 11) & 1) << 20) \
        | (((imm >> 12) & 0xFF) << 12) | (rd << 7) | 0x6F


def expand_c(h: int) -> int | None:
    """The 32-bit equivalent of a 16-bit RV64C instruction, or None when reserved/illegal
    (F/D compressed loads and stores are not modelled: the hart has no FP state)."""
    op, f3 = h & 3, h >> 13
    rd = _b(h, 11, 7)
    rs2 = _b(h, 6, 2)
    rdp, rs1p, rs2p = _b(h, 4, 2) + 8, _b(h, 9, 7) + 8, _b(h, 4, 2) + 8
    if op == 0:
        if f3 == 0:
            imm = (_b(h, 12, 11) << 4) | (_b(h, 10, 7) << 6) | (_b(h, 6, 6) << 2) | (_b(h, 5, 5) << 3)
            return _i(imm, 2, 0, rdp, 0x13) if imm else None
        if f3 == 2:
            imm = (_b(h, 12, 10) << 3) | (_b(h, 6, 6) << 2) | (_b(h, 5, 5) << 6)
            return _i(imm, rs1p, 2, rdp, 0x03)
        if f3 == 3:
            imm = (_b(h, 12, 10) << 3) | (_b(h, 6, 5) << 6)
            return _i(imm, rs1p, 3, rdp, 0x03)
        if f3 == 6:
            imm = (_b(h, 12, 10) << 3) | (_b(h, 6, 6) << 2) | (_b(h, 5, 5) << 6)
            return _s(imm, rs2p, rs1p, 2, 0x23)
        if f3 == 7:
            imm = (_b(h, 12, 10) << 3) | (_b(h, 6, 5) << 6)
            return _s(imm, rs2p, rs1p, 3, 0x23)
        return None
    if op == 1:
        imm6 = sext((_b(h, 12, 12) << 5) | rs2, 6)
        if f3 == 0:
            return _i(imm6, rd, 0, rd, 0x13)
        if f3 == 1:
            return _i(imm6, rd, 0, rd, 0x1B) if rd else None
        if f3 == 2:
            return _i(imm6, 0, 0, rd, 0x13)
        if f3 == 3:
            if rd == 2:
                imm = sext((_b(h, 12, 12) << 9) | (_b(h, 6, 6) << 4) | (_b(h, 5, 5) << 6) | (_b(h, 4, 3) << 7)
                           | (_b(h, 2, 2) << 5), 10)
                return _i(imm, 2, 0, 2, 0x13) if imm else None
            if imm6 == 0:
                return None
            return ((imm6 & 0xFFFFF) << 12) | (rd << 7) | 0x37
        if f3 == 4:
            sub = _b(h, 11, 10)
            sh = (_b(h, 12, 12) << 5) | rs2
            if sub == 0:
                return _i(sh, rs1p, 5, rs1p, 0x13)
            if sub == 1:
                return _i(sh | 0x400, rs1p, 5, rs1p, 0x13)
            if sub == 2:
                return _i(imm6, rs1p, 7, rs1p, 0x13)
            f2 = _b(h, 6, 5)
            if not _b(h, 12, 12):
                f3r, f7 = ((0, 0x20), (4, 0), (6, 0), (7, 0))[f2]
                return _r(f7, rs2p, rs1p, f3r, rs1p, 0x33)
            if f2 == 0:
                return _r(0x20, rs2p, rs1p, 0, rs1p, 0x3B)
            if f2 == 1:
                return _r(0, rs2p, rs1p, 0, rs1p, 0x3B)
            return None
        if f3 == 5:
            imm = (_b(h, 12, 12) << 11) | (_b(h, 11, 11) << 4) | (_b(h, 10, 9) << 8) | (_b(h, 8, 8) << 10) \
                | (_b(h, 7, 7) << 6) | (_b(h, 6, 6) << 7) | (_b(h, 5, 3) << 1) | (_b(h, 2, 2) << 5)
            return _j(sext(imm, 12), 0)
        imm = (_b(h, 12, 12) << 8) | (_b(h, 11, 10) << 3) | (_b(h, 6, 5) << 6) | (_b(h, 4, 3) << 1) \
            | (_b(h, 2, 2) << 5)
        return _bt(sext(imm, 9), 0, rs1p, 0 if f3 == 6 else 1)
    if op == 2:
        if f3 == 0:
            return _i((_b(h, 12, 12) << 5) | rs2, rd, 1, rd, 0x13)
        if f3 == 2:
            imm = (_b(h, 12, 12) << 5) | (_b(h, 6, 4) << 2) | (_b(h, 3, 2) << 6)
            return _i(imm, 2, 2, rd, 0x03) if rd else None
        if f3 == 3:
            imm = (_b(h, 12, 12) << 5) | (_b(h, 6, 5) << 3) | (_b(h, 4, 2) << 6)
            return _i(imm, 2, 3, rd, 0x03) if rd else None
        if f3 == 4:
            if not _b(h, 12, 12):
                if rs2 == 0:
                    return _i(0, rd, 0, 0, 0x67) if rd else None
                return _r(0, rs2, 0, 0, rd, 0x33)
            if rd == 0 and rs2 == 0:
                return 0x00100073
            if rs2 == 0:
                return _i(0, rd, 0, 1, 0x67)
            return _r(0, rs2, rd, 0, rd, 0x33)
        if f3 == 6:
            imm = (_b(h, 12, 9) << 2) | (_b(h, 8, 7) << 6)
            return _s(imm, rs2, 2, 2, 0x23)
        if f3 == 7:
            imm = (_b(h, 12, 10) << 3) | (_b(h, 9, 7) << 6)
            return _s(imm, rs2, 2, 3, 0x23)
        return None
    return None
