"""htinst/mtinst values written on a trap (Priv. 20240411, H "Transformed Instruction or
Pseudoinstruction for mtinst or htinst").

Zero is allowed except for one case: a guest-page fault on an implicit VS-stage page-table
access whose GPA is written to mtval2/htval needs the pseudoinstruction under every policy.
When the profile's ``tinst_policy`` is "transformed":
  * explicit loads/stores/AMOs (and HLV/HLVX/HSV) that take a guest-page fault write the
    *transformed instruction*: the trapping instruction with its address-offset immediate
    zeroed and rs1 (bits 19:15) replaced by the "Addr. Offset" (faulting VA minus the
    instruction's original VA, non-zero only for misaligned accesses split in pieces);
    a compressed instruction is first expanded to its 32-bit form and bit 1 cleared
    (bit 1 = 0 tells the handler the trapping instruction was 16 bits long);
  * a guest-page fault on an implicit VS-stage page-table access writes a
    pseudoinstruction: 0x00002000 / 0x00002020 (32-bit read / write, VSXLEN=32) or
    0x00003000 / 0x00003020 (64-bit read / write, VSXLEN=64); bit 5 marks the write
    (an A/D update);
  * instruction guest-page faults write zero (no transformed form is defined for fetches
    other than the implicit pseudoinstructions).
"""
from __future__ import annotations

OP_LOAD, OP_STORE, OP_AMO, OP_SYSTEM = 0x03, 0x23, 0x2F, 0x73

PSEUDO_READ = {32: 0x00002000, 64: 0x00003000}
PSEUDO_WRITE = {32: 0x00002020, 64: 0x00003020}


def pseudo(write: bool, vsxlen: int = 64) -> int:
    """Pseudoinstruction for an implicit VS-stage PTE access."""
    return (PSEUDO_WRITE if write else PSEUDO_READ)[vsxlen]


def expand_compressed(insn: int) -> int | None:
    """The 32-bit load/store equivalent of a compressed load/store, offset and rs1 left zero.
    Only the fields the transformed instruction keeps (rd/rs2, funct3, opcode) are produced."""
    insn &= 0xFFFF
    q, f3 = insn & 3, insn >> 13
    rdp = 8 + ((insn >> 2) & 7)                  # rd'/rs2' (bits 4:2)
    if q == 0:
        if f3 in (2, 3):                         # C.LW / C.LD
            return (f3 << 12) | (rdp << 7) | OP_LOAD
        if f3 in (6, 7):                         # C.SW / C.SD
            return (rdp << 20) | ((f3 - 4) << 12) | OP_STORE
    elif q == 2:
        rd = (insn >> 7) & 31
        if f3 in (2, 3) and rd:                  # C.LWSP / C.LDSP (rd != 0)
            return (f3 << 12) | (rd << 7) | OP_LOAD
        if f3 in (6, 7):                         # C.SWSP / C.SDSP
            return (((insn >> 2) & 31) << 20) | ((f3 - 4) << 12) | OP_STORE
    return None


def transform(insn: int, addr_offset: int = 0) -> int:
    """The transformed instruction for an explicit memory access, or 0 when none is defined."""
    off = (addr_offset & 31) << 15
    if insn & 3 != 3:
        full = expand_compressed(insn)
        if full is None:
            return 0
        return (full | off) & ~2                 # bit 1 cleared: the original was 16 bits
    insn &= 0xFFFFFFFF
    op = insn & 0x7F
    if op == OP_LOAD:                            # imm[11:0] (31:20) zeroed, rs1 -> offset
        return (insn & 0x000FFFFF & ~(31 << 15)) | off
    if op == OP_STORE:                           # imm[11:5] and imm[4:0] zeroed
        return (insn & 0x01FFF07F & ~(31 << 15)) | off
    if op == OP_AMO:                             # everything kept but rs1
        return (insn & ~(31 << 15)) | off
    if op == OP_SYSTEM and (insn >> 12) & 7 == 4 and 0x30 <= insn >> 25 <= 0x37:
        # HLV/HLVX/HSV (funct3=100, funct7 0110xxx): rs1 -> offset
        return (insn & ~(31 << 15)) | off
    return 0


# H table "Values that may be automatically written to the trap instruction CSR (mtinst or htinst)
# on an exception trap": a transformed instruction is allowed only for load/store/AMO misaligned,
# access faults, page faults and guest-page faults; a pseudoinstruction only for guest-page faults
# (instruction guest-page faults included) on implicit VS-stage PTE accesses; zero for all others.
TRANSFORMED_CAUSES = frozenset({4, 5, 6, 7, 13, 15, 21, 23})
PSEUDO_CAUSES = frozenset({20, 21, 23})


def tinst_for(insn: int | None, fault, access: str, profile, *, addr_offset: int = 0, vsxlen: int = 64) -> int:
    """Value for htinst/mtinst when ``fault`` (refmodel.mmu.Fault or refmodel.trap.Exc) is taken
    into M or HS mode.  Any cause may be passed: causes outside the table get zero."""
    if getattr(fault, "implicit", False):
        # H table of allowed values, note on guest-page faults: when the fault comes from an
        # implicit VS-stage page-table access and mtval2/htval gets a nonzero GPA (the model always
        # writes GPA >> 2), "zero is not allowed" -- the pseudoinstruction is required, whatever the
        # implementation's policy for explicit accesses.
        if fault.cause in PSEUDO_CAUSES:
            return pseudo(bool(getattr(fault, "implicit_write", False)), vsxlen)
        return 0
    if getattr(profile, "tinst_policy", "zero") != "transformed":
        return 0
    if fault.cause not in TRANSFORMED_CAUSES or access == "fetch" or insn is None:
        return 0
    return transform(insn, addr_offset)
