"""Decode/execute never crash; disassembly agrees with capstone where capstone decodes.

Unprivileged spec 20240411 (RV64I, M, A, C, Zicsr, Zifencei); Priv. 20240411 chapter 9.3
(H instructions, which capstone 5 does not know).  F/D/Q instructions are not modelled
(illegal in the model), so capstone's FP decodings are skipped.
"""
import re

import pytest
import capstone
from hypothesis import HealthCheck, given, settings, strategies as st

from refmodel.decode import expand_c
from refmodel.disasm import REG_NAMES, disasm
from refmodel.hart import Hart
from refmodel.profile import PROFILES

MD = capstone.Cs(capstone.CS_ARCH_RISCV, capstone.CS_MODE_RISCV64 | capstone.CS_MODE_RISCVC)
PROF = PROFILES["qemu-10.0"]

# capstone prints assembler aliases; map them to the base instruction the model names
ALIAS = {"j": "jal", "jr": "jalr", "ret": "jalr", "mv": "addi", "li": "addi", "nop": "addi", "not": "xori",
         "neg": "sub", "negw": "subw", "sext.w": "addiw", "seqz": "sltiu", "snez": "sltu", "sltz": "slt",
         "sgtz": "slt", "beqz": "beq", "bnez": "bne", "blez": "bge", "bgez": "bge", "bltz": "blt",
         "bgtz": "blt", "bgt": "blt", "ble": "bge", "bgtu": "bltu", "bleu": "bgeu", "csrr": "csrrs",
         "csrw": "csrrw", "csrs": "csrrs", "csrc": "csrrc", "csrwi": "csrrwi", "csrsi": "csrrsi",
         "csrci": "csrrci", "rdcycle": "csrrs", "rdtime": "csrrs", "rdinstret": "csrrs", "unimp": "csrrw"}
# compressed mnemonics whose expansion has a different base name
C_ALIAS = {"c.li": "addi", "c.mv": "add", "c.lui": "lui", "c.j": "jal", "c.jal": "jal", "c.jr": "jalr",
           "c.jalr": "jalr", "c.beqz": "beq", "c.bnez": "bne", "c.addi4spn": "addi", "c.addi16sp": "addi",
           "c.lwsp": "lw", "c.ldsp": "ld", "c.swsp": "sw", "c.sdsp": "sd", "c.nop": "addi", "c.ebreak": "ebreak"}
# Unpriv. "C" chapter: these with a zero immediate / x0 operand are RESERVED (the model: illegal)
RESERVED_C = {"c.lui", "c.addi16sp", "c.addi4spn", "c.lwsp", "c.ldsp", "c.jr", "c.addiw"}


def _cap(word, size):
    for ins in MD.disasm(word.to_bytes(size, "little"), 0):
        return ins.mnemonic, ins.op_str
    return None


def _base(mn):
    if mn in C_ALIAS:
        return C_ALIAS[mn]
    if mn.startswith("c."):
        mn = mn[2:]
    return ALIAS.get(mn, mn)


def _regs(text):
    return {t for t in re.findall(r"[a-z][a-z0-9]*", text) if t in REG_NAMES and t != "zero"}


def _agree(word, size):
    cap = _cap(word, size)
    ours = disasm(word)
    if cap is None:
        return
    mn, ops = cap
    base = _base(mn)
    if base.startswith(("f", "c.f")) and not base.startswith("fence") or base in ("unimp",):
        return                                   # F/D/Q: not modelled (illegal in the model)
    if mn == "c.unimp" or (mn == "unimp"):
        return
    if size == 2 and expand_c(word) is None and mn in RESERVED_C:
        return                                   # reserved by the spec (e.g. C.LUI nzimm=0); capstone decodes it
    assert not ours.startswith("unknown"), f"{word:#x}: capstone {mn} {ops}, model unknown"
    ours_mn = ours.split()[0]
    assert ours_mn.split(".")[0] == base.split(".")[0], f"{word:#x}: capstone {mn} {ops!r}, model {ours!r}"
    assert _regs(ops) <= _regs(ours), f"{word:#x}: capstone {mn} {ops!r}, model {ours!r}"


@settings(max_examples=int(__import__("os").environ.get("HX", "400")), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 0xFFFFFFFF))
def test_32bit_words_disassemble_like_capstone(w):
    _agree(w | 3, 4)


@settings(max_examples=int(__import__("os").environ.get("HX", "400")), deadline=None)
@given(st.integers(0, 0xFFFF).filter(lambda h: h & 3 != 3))
def test_16bit_words_disassemble_like_capstone(h):
    _agree(h, 2)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 0xFFFFFFFF), st.sampled_from([(3, 0), (1, 0), (1, 1), (0, 1), (0, 0)]))
def test_any_word_executes_or_traps_never_crashes(w, mode):
    h = Hart(PROF)
    h.pc = PROF.ram_base
    h.priv, h.v = mode
    h.csr[0x3B0], h.csr[0x3A0] = (1 << 54) - 1, 0x1F
    h.pmp_changed()
    h.mem.write(h.pc, 4, w)
    s = h.step()
    assert s.pc == PROF.ram_base
    if s.trap is None:
        assert not disasm(w).startswith("unknown") or w & 3 != 3
    else:
        assert 0 <= s.trap.cause < 24


@pytest.mark.parametrize("h,exp", [
    (0x4505, "addi a0, zero, 1"), (0x8082, "jalr zero, 0(ra)"), (0x1141, "addi sp, sp, -16"),
    (0xE406, "sd ra, 8(sp)"), (0x0000, None), (0x9002, "ebreak"),
])
def test_rvc_expansion(h, exp):
    # Unpriv. "C" chapter: every RVC instruction expands to one base instruction; 0 is illegal
    x = expand_c(h)
    assert (x is None) if exp is None else disasm(h) == exp


@pytest.mark.parametrize("w,text", [
    (0x6C05C573, "hlv.d a0, (a1)"), (0x6435C573, "hlvx.hu a0, (a1)"), (0x6EA5C073, "hsv.d a0, (a1)"),
    (0x22B50073, "hfence.vvma a0, a1"), (0x62000073, "hfence.gvma zero, zero"),
    (0x680022F3, "csrrs t0, hgatp, zero"), (0x280022F3, "csrrs t0, vsatp, zero"),
    (0x34B022F3, "csrrs t0, mtval2, zero"), (0x64A022F3, "csrrs t0, htinst, zero"),
])
def test_h_instructions_and_csr_names(w, text):
    assert disasm(w) == text


@settings(max_examples=int(__import__("os").environ.get("HX2", "60")), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(0, 0xFFFFFFFF), min_size=8, max_size=32),
       st.lists(st.integers(0, (1 << 64) - 1), min_size=31, max_size=31),
       st.sampled_from([(3, 0), (1, 0), (1, 1), (0, 1)]), st.sampled_from([0, 8, 9, 10]))
def test_random_programs_never_crash_the_model(words, regs, mode, hgatp_mode):
    # Any byte sequence, any register values, any HGATP mode: every step retires or traps
    h = Hart(PROF)
    h.pc = PROF.ram_base
    h.priv, h.v = mode
    h.x[1:] = regs
    h.csr[0x3B0], h.csr[0x3A0] = (1 << 54) - 1, 0x1F
    h.csr[0x680] = (hgatp_mode << 60) | ((PROF.ram_base + 0x100000) >> 12)
    h.csr[0x305] = h.csr[0x105] = h.csr[0x205] = PROF.ram_base
    h.pmp_changed()
    for i, w in enumerate(words):
        h.mem.write(PROF.ram_base + 4 * i, 4, w)
    for s in h.run(64):
        assert s.trap is None or 0 <= s.trap.cause < 24
