"""Instruction semantics: RV64I, M, A, Zicsr, Zifencei, privileged and H instructions.

``decode(insn)`` returns a closure ``f(hart, pc) -> next_pc`` (cached by the hart per
physical address); anything not decoded is an illegal instruction (cause 2), never a
Python error.  Registers hold unsigned 64-bit values.
"""
from __future__ import annotations

from refmodel import csr as C
from refmodel.decode import sext
from refmodel.records import Xlat
from refmodel.memory import _U
from refmodel import semihosting as _semihosting
from refmodel.trap import (BREAKPOINT, ECALL_M, ECALL_S, ECALL_U, ECALL_VS, ILLEGAL, LOAD_MISALIGNED,
                           STORE_MISALIGNED, Exc)

M64 = (1 << 64) - 1
S64 = 1 << 63


def _s(v):
    return v - (1 << 64) if v & S64 else v


def _w(v):
    v &= 0xFFFFFFFF
    return v | 0xFFFFFFFF00000000 if v & 0x80000000 else v


def shared_xlat(e, va):
    """The Xlat of an access to ``va`` through soft-TLB entry ``e`` (refmodel.hart._fill:
    (page pa, Xlat template, page gpa, PMP ok, {va: Xlat}, RAM offset)), built once and kept in
    the entry: every field is determined by the entry and va, and yielded records are immutable."""
    off = va & 0xFFF
    d = e[1].copy()
    d["va"] = va
    d["pa"] = e[0] + off
    if e[2] is not None:
        d["gpa"] = e[2] + off
    x = object.__new__(Xlat)
    x.__dict__ = d
    e[4][va] = x
    return x


def illegal(insn):
    def f(h, pc):
        raise Exc(ILLEGAL, insn if h.profile.illegal_tval == "insn" else 0)
    f.illegal = True
    return f


def _div(a, b, most_negative=-(1 << 63)):
    """Unpriv. "M": division by zero gives -1, the overflowing most-negative / -1 gives the dividend."""
    if b == 0:
        return -1
    if a == most_negative and b == -1:
        return a
    q = abs(a) // abs(b)
    return -q if (a < 0) != (b < 0) else q


def _rem(a, b, most_negative=-(1 << 63)):
    """Remainder by zero gives the dividend, of the overflowing division 0; the sign follows the dividend."""
    if b == 0:
        return a
    if a == most_negative and b == -1:
        return 0
    r = abs(a) % abs(b)
    return -r if a < 0 else r


def _div32(a, b):
    return _div(a, b, -(1 << 31))


def _rem32(a, b):
    return _rem(a, b, -(1 << 31))


def _s32(v):
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


OP = {  # (funct7, funct3) -> f(a, b) for OP (0x33)
    (0, 0): lambda a, b: (a + b) & M64, (0x20, 0): lambda a, b: (a - b) & M64,
    (0, 1): lambda a, b: (a << (b & 63)) & M64, (0, 2): lambda a, b: int(_s(a) < _s(b)),
    (0, 3): lambda a, b: int(a < b), (0, 4): lambda a, b: a ^ b,
    (0, 5): lambda a, b: a >> (b & 63), (0x20, 5): lambda a, b: (_s(a) >> (b & 63)) & M64,
    (0, 6): lambda a, b: a | b, (0, 7): lambda a, b: a & b,
    (1, 0): lambda a, b: (a * b) & M64, (1, 1): lambda a, b: ((_s(a) * _s(b)) >> 64) & M64,
    (1, 2): lambda a, b: ((_s(a) * b) >> 64) & M64, (1, 3): lambda a, b: (a * b) >> 64,
    (1, 4): lambda a, b: _div(_s(a), _s(b)) & M64, (1, 5): lambda a, b: M64 if b == 0 else a // b,
    (1, 6): lambda a, b: _rem(_s(a), _s(b)) & M64, (1, 7): lambda a, b: a if b == 0 else a % b,
}
OP32 = {  # OP-32 (0x3B)
    (0, 0): lambda a, b: _w(a + b), (0x20, 0): lambda a, b: _w(a - b),
    (0, 1): lambda a, b: _w(a << (b & 31)), (0, 5): lambda a, b: _w((a & 0xFFFFFFFF) >> (b & 31)),
    (0x20, 5): lambda a, b: _w(_s32(a) >> (b & 31)), (1, 0): lambda a, b: _w(a * b),
    (1, 4): lambda a, b: _w(_div32(_s32(a), _s32(b))),
    (1, 5): lambda a, b: _w(0xFFFFFFFF if b & 0xFFFFFFFF == 0 else (a & 0xFFFFFFFF) // (b & 0xFFFFFFFF)),
    (1, 6): lambda a, b: _w(_rem32(_s32(a), _s32(b))),
    (1, 7): lambda a, b: _w(a if b & 0xFFFFFFFF == 0 else (a & 0xFFFFFFFF) % (b & 0xFFFFFFFF)),
}
BR = {0: lambda a, b: a == b, 1: lambda a, b: a != b, 4: lambda a, b: _s(a) < _s(b),
      5: lambda a, b: _s(a) >= _s(b), 6: lambda a, b: a < b, 7: lambda a, b: a >= b}
LOADS = {0: (1, True), 1: (2, True), 2: (4, True), 3: (8, False), 4: (1, False), 5: (2, False), 6: (4, False)}
AMO = {0x01: lambda m, r: r, 0x00: lambda m, r: m + r, 0x04: lambda m, r: m ^ r, 0x0C: lambda m, r: m & r,
       0x08: lambda m, r: m | r, 0x10: min, 0x14: max, 0x18: min, 0x1C: max}


def decode(insn: int, ilen: int = 4):
    """The closure executing one instruction (``ilen`` = 2 for an expanded RVC one)."""
    op = insn & 0x7F
    rd = (insn >> 7) & 31
    f3 = (insn >> 12) & 7
    rs1 = (insn >> 15) & 31
    rs2 = (insn >> 20) & 31
    f7 = insn >> 25
    immi = sext(insn >> 20, 12)
    if op == 0x37 or op == 0x17:
        imm = sext(insn & 0xFFFFF000, 32)
        if op == 0x37:
            v = imm & M64

            def f(h, pc):
                h.x[rd] = v
                return pc + ilen
        else:
            def f(h, pc):
                h.x[rd] = (pc + imm) & M64
                return pc + ilen
        return f
    if op == 0x13 or op == 0x1B:
        if op == 0x13:
            if f3 == 1 or f3 == 5:
                sh = (insn >> 20) & 63
                kind = insn >> 26
                if f3 == 1 and kind == 0:
                    g = lambda a: (a << sh) & M64
                elif f3 == 5 and kind == 0:
                    g = lambda a: a >> sh
                elif f3 == 5 and kind == 0x10:
                    g = lambda a: (_s(a) >> sh) & M64
                else:
                    return illegal(insn)
            else:
                u = immi & M64
                g = {0: lambda a: (a + u) & M64, 2: lambda a: int(_s(a) < immi), 3: lambda a: int(a < u),
                     4: lambda a: a ^ u, 6: lambda a: a | u, 7: lambda a: a & u}[f3]
        else:
            sh = rs2
            if f3 == 0:
                g = lambda a: _w(a + immi)
            elif f3 == 1 and f7 == 0:
                g = lambda a: _w(a << sh)
            elif f3 == 5 and f7 == 0:
                g = lambda a: _w((a & 0xFFFFFFFF) >> sh)
            elif f3 == 5 and f7 == 0x20:
                g = lambda a: _w(_s32(a) >> sh)
            else:
                return illegal(insn)

        if op == 0x13 and f3 == 0:          # ADDI (li, mv, nop): the most frequent instruction, inlined
            u = immi & M64

            def f(h, pc):
                x = h.x
                x[rd] = (x[rs1] + u) & M64
                return pc + ilen
            return f

        def f(h, pc):
            x = h.x
            x[rd] = g(x[rs1])
            return pc + ilen
        return f
    if op == 0x33 or op == 0x3B:
        g = (OP if op == 0x33 else OP32).get((f7, f3))
        if g is None:
            return illegal(insn)
        inl = _inline_op(op, f7, f3, rd, rs1, rs2, ilen)
        if inl is not None:
            return inl

        def f(h, pc):
            x = h.x
            x[rd] = g(x[rs1], x[rs2])
            return pc + ilen
        return f
    if op == 0x6F:
        imm = sext(((insn >> 31) << 20) | (((insn >> 12) & 0xFF) << 12) | (((insn >> 20) & 1) << 11)
                   | (((insn >> 21) & 0x3FF) << 1), 21)

        def f(h, pc):
            h.x[rd] = (pc + ilen) & M64
            return (pc + imm) & M64
        return f
    if op == 0x67 and f3 == 0:
        def f(h, pc):
            t = (h.x[rs1] + immi) & M64 & ~1
            h.x[rd] = (pc + ilen) & M64
            return t
        return f
    if op == 0x63:
        c = BR.get(f3)
        if c is None:
            return illegal(insn)
        imm = sext(((insn >> 31) << 12) | (((insn >> 7) & 1) << 11) | (((insn >> 25) & 0x3F) << 5)
                   | (((insn >> 8) & 0xF) << 1), 13)

        tgt_off = imm
        if f3 == 0:                          # BEQ/BNE inlined (loops): same result as BR[f3]
            def f(h, pc):
                x = h.x
                return (pc + tgt_off) & M64 if x[rs1] == x[rs2] else pc + ilen
            return f
        if f3 == 1:
            def f(h, pc):
                x = h.x
                return (pc + tgt_off) & M64 if x[rs1] != x[rs2] else pc + ilen
            return f

        def f(h, pc):
            x = h.x
            return (pc + imm) & M64 if c(x[rs1], x[rs2]) else pc + ilen
        return f
    if op == 0x03:
        if f3 not in LOADS:
            return illegal(insn)
        size, signed = LOADS[f3]
        sign_bit = 1 << (8 * size - 1) if signed else 0
        ext = M64 ^ ((1 << (8 * size)) - 1)
        unpack = _U[size].unpack_from
        amask = size - 1

        def f(h, pc):
            x = h.x
            va = (x[rs1] + immi) & M64
            t = h.tlb.get(-1)
            e = t.get(va >> 12) if t is not None and not va & amask else None
            if e is not None:
                # fast path (hart._fill): aligned, translation cached for the current load privilege,
                # page all RAM and allowed by PMP as a whole -- the same as h.load() would do
                # (h.acc_v and h.last_pa need no update: this access cannot fault, and only
                # LR, which goes through h.load, reads last_pa)
                if e[1] is not None:
                    h.xl.append(e[4].get(va) or shared_xlat(e, va))
                v = unpack(h.mem.ram, e[5] + (va & 0xFFF))[0]
            else:
                v = h.load(va, size, insn)
            x[rd] = v | ext if v & sign_bit else v
            return pc + ilen
        return f
    if op == 0x23:
        if f3 > 3:
            return illegal(insn)
        size = 1 << f3
        imm = sext(((insn >> 25) << 5) | ((insn >> 7) & 31), 12)

        pack = _U[size].pack_into
        amask = size - 1
        vmask = (1 << (8 * size)) - 1

        def f(h, pc):
            x = h.x
            va = (x[rs1] + imm) & M64
            t = h.tlb.get(-2)
            e = t.get(va >> 12) if t is not None and not va & amask else None
            if e is not None:
                # fast path as for loads; a store entry exists only after a store walk found D set
                if e[1] is not None:
                    h.xl.append(e[4].get(va) or shared_xlat(e, va))
                off = va & 0xFFF
                pack(h.mem.ram, e[5] + off, x[rs2] & vmask)
                page = e[0] >> 12
                if h.reservation is not None or page in h.pte_pages or page in h.code_pages:
                    h._stored(e[0] + off)
            else:
                h.store(va, size, x[rs2], insn)
            return pc + ilen
        return f
    if op == 0x0F:
        if f3 == 0:                               # FENCE: one hart, no devices with side effects
            return lambda h, pc: pc + ilen
        if f3 == 1:                               # FENCE.I (Zifencei): drop decoded instructions
            def f(h, pc):
                h.fence_i()
                return pc + ilen
            return f
        return illegal(insn)
    if op == 0x2F and f3 in (2, 3):
        return _amo(insn, rd, f3, rs1, rs2, f7 >> 2, ilen)
    if op == 0x73:
        return _system(insn, rd, f3, rs1, rs2, f7, ilen)
    return illegal(insn)


def _inline_op(op, f7, f3, rd, rs1, rs2, ilen):
    """ADD/SUB/XOR/OR/AND without the OP table's extra call (same results as OP[(f7, f3)])."""
    if op != 0x33:
        return None
    if (f7, f3) == (0, 0):
        def f(h, pc):
            x = h.x
            x[rd] = (x[rs1] + x[rs2]) & M64
            return pc + ilen
    elif (f7, f3) == (0x20, 0):
        def f(h, pc):
            x = h.x
            x[rd] = (x[rs1] - x[rs2]) & M64
            return pc + ilen
    elif (f7, f3) == (0, 4):
        def f(h, pc):
            x = h.x
            x[rd] = x[rs1] ^ x[rs2]
            return pc + ilen
    elif (f7, f3) == (0, 6):
        def f(h, pc):
            x = h.x
            x[rd] = x[rs1] | x[rs2]
            return pc + ilen
    elif (f7, f3) == (0, 7):
        def f(h, pc):
            x = h.x
            x[rd] = x[rs1] & x[rs2]
            return pc + ilen
    else:
        return None
    return f


def _amo(insn, rd, f3, rs1, rs2, f5, ilen):
    """A extension (Unpriv. chapter "A"): misaligned AMOs/LR/SC raise address-misaligned
    (the spec allows misaligned or access fault; no Zam).  SC's and AMOs' faults are store/AMO faults."""
    size = 4 if f3 == 2 else 8
    mask = (1 << (8 * size)) - 1

    def fix(v):
        return _w(v) if size == 4 else v

    if f5 == 0x02:
        if rs2:
            return illegal(insn)

        def f(h, pc):
            a = h.x[rs1]
            if a & (size - 1):
                raise Exc(LOAD_MISALIGNED, a)
            v = h.load(a, size, insn)
            h.reservation = (h.last_pa, size)
            h.x[rd] = fix(v)
            return pc + ilen
        return f
    if f5 == 0x03:
        def f(h, pc):
            a = h.x[rs1]
            if a & (size - 1):
                raise Exc(STORE_MISALIGNED, a)
            pa = h.translate_sc(a, size, insn)          # faults are reported even when SC would fail
            if h.reservation == (pa, size):
                h.store_pa(a, pa, size, h.x[rs2], insn)
                h.x[rd] = 0
            else:
                h.x[rd] = 1
            h.reservation = None
            return pc + ilen
        return f
    g = AMO.get(f5)
    if g is None:
        return illegal(insn)
    signed = f5 in (0x10, 0x14)
    bits = 8 * size

    def f(h, pc):
        a = h.x[rs1]
        if a & (size - 1):
            raise Exc(STORE_MISALIGNED, a)
        pa = h.translate_store(a, size, insn)
        m = h.read_pa(a, pa, size, store=True)
        r = h.x[rs2] & mask
        if signed:
            mm, rr = sext(m, bits), sext(r, bits)
        else:
            mm, rr = m, r
        h.store_pa(a, pa, size, g(mm, rr) & mask, insn)
        h.x[rd] = fix(m) if size == 4 else m
        return pc + ilen
    return f


# HLV/HLVX/HSV (H 9.3.x "Hypervisor virtual-machine load and store instructions"): funct7 -> (size, signed, hlvx, store)
HLSV = {(0x30, 0): (1, True, False, False), (0x30, 1): (1, False, False, False), (0x32, 0): (2, True, False, False),
        (0x32, 1): (2, False, False, False), (0x32, 3): (2, False, True, False), (0x34, 0): (4, True, False, False),
        (0x34, 1): (4, False, False, False), (0x34, 3): (4, False, True, False), (0x36, 0): (8, False, False, False),
        (0x31, None): (1, False, False, True), (0x33, None): (2, False, False, True),
        (0x35, None): (4, False, False, True), (0x37, None): (8, False, False, True)}


def _system(insn, rd, f3, rs1, rs2, f7, ilen):
    if f3 == 0:
        if insn == 0x00000073:
            def f(h, pc):
                raise Exc((ECALL_U, ECALL_VS if h.v else ECALL_S, 0, ECALL_M)[h.priv] if not (h.v and h.priv == 0)
                          else ECALL_U)
            return f
        if insn == 0x00100073:
            def f(h, pc):
                # a semihosting exit call ends the program (refmodel/semihosting.py)
                if h.profile.semihosting and _semihosting.call(h, pc):
                    return pc + 4
                raise Exc(BREAKPOINT, pc if h.profile.ebreak_tval == "pc" else 0)   # profile choice
            return f
        if insn == 0x30200073:
            return lambda h, pc: h.mret(insn)
        if insn == 0x10200073:
            return lambda h, pc: h.sret(insn)
        if insn == 0x10500073:
            def f(h, pc):
                h.wfi(insn)
                return pc + ilen
            return f
        if rd == 0 and f7 in (0x09, 0x11, 0x31):
            kind = {0x09: "sfence.vma", 0x11: "hfence.vvma", 0x31: "hfence.gvma"}[f7]

            def f(h, pc):
                h.fence_vma(kind, rs1, rs2, insn)
                return pc + ilen
            return f
        if rd == 0 and f7 in (0x30, 0x32, 0x34, 0x36) and rs2 in (0, 1, 3) and (f7, rs2) in HLSV:
            pass
        return illegal(insn)
    if f3 == 4:
        key = (f7, rs2) if f7 in (0x30, 0x32, 0x34, 0x36) else (f7, None if rd == 0 else -1)
        spec = HLSV.get(key)
        if spec is None:
            return illegal(insn)
        size, signed, hlvx, store = spec

        def f(h, pc):
            if store:
                h.hsv(h.x[rs1], size, h.x[rs2], insn)
            else:
                v = h.hlv(h.x[rs1], size, hlvx, insn)
                if signed and v >> (8 * size - 1):
                    v |= M64 ^ ((1 << (8 * size)) - 1)
                h.x[rd] = v
            return pc + ilen
        return f
    num = insn >> 20
    if f3 in (1, 2, 3, 5, 6, 7):
        imm = f3 >= 5
        src = rs1
        op = f3 & 3
        # Zicsr: CSRRW/CSRRWI always write and read only when rd != 0; CSRRS/C write only when rs1/uimm != 0
        write = op == 1 or src != 0
        read_ = op != 1 or rd != 0

        def f(h, pc):
            real = C.check_access(h, num, write, insn)
            old = C.read(h, real) if read_ or op != 1 else 0
            s = src if imm else h.x[src]
            if write:
                new = s if op == 1 else (old | s if op == 2 else old & ~s)
                C.write(h, real, new)
            h.x[rd] = old & M64
            return pc + ilen
        return f
    return illegal(insn)
