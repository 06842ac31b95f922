"""G-stage boundary GPAs end to end: a self-checking guest under each HGATP mode on the model and on
QEMU 7.2, same steps and same verdict (Priv. 20240411, H "Guest Physical Address Translation":
GPA bits above 41/50/59 must be zero, the 16 KiB root is indexed by GPA[bits-1:bits-11];
H "Guest-Page Faults": tval = GVA, mtval2 = GPA >> 2, mstatus.GVA = 1).

The G-stage tables are computed here in Python (the same walk layout the spec defines) and placed at
fixed addresses by the linker; the guest runs in VS-mode with vsatp = Bare, so GVA = GPA.
"""
import os
import subprocess

import pytest

from difftest.asm import ENTER_VS, GPT_DATA, M_PROLOGUE, assemble, have_cc, hgatp_identity_gigapage
from difftest.backends.binaries import KNOWN

from refmodel.hart import Hart
from refmodel.profile import PROFILES

QEMU72 = str(KNOWN["qemu-7.2"][0])
pytestmark = pytest.mark.skipif(not have_cc(), reason="riscv64-unknown-elf-gcc not installed")

PT_BASE, DATA_PAGE = 0x8010_0000, 0x8020_0000
SECTIONS = (f"-Wl,--section-start=.pt={PT_BASE:#x}", f"-Wl,--section-start=.dpage={DATA_PAGE:#x}")
LEVELS = {8: 3, 9: 4, 10: 5}
VALUE = 0x1122_3344_5566_7788


def g_tables(mode):
    """{spa: pte}: RAM gigapage 0x80000000 identity (URWX), and the last GPA page -> DATA_PAGE (U, R only)."""
    levels = LEVELS[mode]
    mem, nxt = {}, [PT_BASE + 0x4000]

    def map_(gpa, pa, flags, leaf_level):
        a = PT_BASE
        for level in range(levels - 1, leaf_level, -1):
            width = 11 if level == levels - 1 else 9
            slot = a + ((gpa >> (12 + 9 * level)) & ((1 << width) - 1)) * 8
            if slot not in mem:
                mem[slot] = ((nxt[0] >> 12) << 10) | 1
                nxt[0] += 0x1000
            a = (mem[slot] >> 10) << 12
        width = 11 if leaf_level == levels - 1 else 9
        mem[a + ((gpa >> (12 + 9 * leaf_level)) & ((1 << width) - 1)) * 8] = ((pa >> 12) << 10) | flags
    map_(0x8000_0000, 0x8000_0000, 0xDF, 2)
    bits = 12 + 9 * levels + 2
    map_((1 << bits) - 0x1000, DATA_PAGE, 0xD3, 0)
    return mem, bits


# M-mode trap handler head: an ecall (cause 10) ends the run at `done`; any other trap must be the
# expected one -- mcause = s5, mtval = s2 (the GVA), mtval2 = s3 (GPA >> 2), mstatus.GVA = 1 --
# or the run ends at `fail`.
MTRAP_CHECK = """.balign 4
mtrap:
  csrr t0, mcause
  li t1, 10
  beq t0, t1, done
  bne t0, s5, fail
  csrr t0, mtval
  bne t0, s2, fail
  csrr t0, 0x34b          /* mtval2 */
  bne t0, s3, fail
  csrr t0, mstatus
  srli t0, t0, 38         /* GVA */
  andi t0, t0, 1
  beqz t0, fail
"""


def guest_source(mode, probes=None):
    mem, bits = g_tables(mode)
    probes = probes or [  # (address, access, expected cause or None)
        ((1 << bits) - 8, "ld", None),                  # last doubleword of the GPA space: root index 2047
        ((1 << bits) - 8, "sd", 23),                    # read-only at the G-stage
        (1 << bits, "ld", 21),                          # first GPA bit above the width
        (1 << (bits - 1), "ld", 21),                    # top in-width bit, unmapped
        (1 << 63, "sd", 23),
        ((1 << bits) | 0x8000_0000, "ld", 21),          # mapped page + a bit above the width: not aliased
        ((1 << 64) - 8, "ld", 21),                      # all high bits set: not aliased to the last page
    ]
    body = []
    nfault = 0
    for addr, op, cause in probes:
        body += [f"  li a0, {addr:#x}"]
        if cause is None:
            body += [f"  {op} a1, 0(a0)", f"  li t2, {VALUE:#x}", "  bne a1, t2, bad"]
        else:
            nfault += 1
            body += [f"  li s2, {addr:#x}", f"  li s3, {addr >> 2:#x}", f"  li s5, {cause}", f"  {op} a1, 0(a0)"]
    pt = "\n".join(f"  .org {spa - PT_BASE:#x}\n  .quad {v:#x}" for spa, v in sorted(mem.items()))
    return ".option norvc\n" + M_PROLOGUE + f"""  li t0, ({mode} << 60) | ({PT_BASE} >> 12)
  csrw hgatp, t0
  hfence.gvma zero, zero
  li s4, 0
""" + ENTER_VS + f"""vs:
{chr(10).join(body)}
  li a7, 0x55
  ecall
bad:
  li a7, 1
  ecall
""" + MTRAP_CHECK + f"""  addi s4, s4, 1
  csrr t0, mepc
  addi t0, t0, 4
  csrw mepc, t0
  mret
done:
  li t1, 0x55
  bne a7, t1, fail
  li t1, {nfault}
  bne s4, t1, fail
  li t6, 0x100000
  li t5, 0x5555
  sw t5, 0(t6)
1: j 1b
fail:
  li t6, 0x100000
  li t5, 0x23333
  sw t5, 0(t6)
2: j 2b
.section .pt, "aw"
{pt}
.section .dpage, "aw"
  .org 0xff8
  .quad {VALUE:#x}
"""


QEMU10, QEMU10_ENV = str(KNOWN["qemu-10.0"][0]), KNOWN["qemu-10.0"][1]   # the project-local unpacked backport
MODES = pytest.mark.parametrize("mode", [8, 9, 10], ids=["sv39x4", "sv48x4", "sv57x4"])


def build(tmp_path, mode, probes=None):
    return assemble(guest_source(mode, probes), tmp_path / "g.elf", *SECTIONS)


def qemu(binary, elf, log, extra=(), env=None):
    p = subprocess.run([binary, "-M", "virt", "-bios", "none", "-kernel", str(elf), "-nographic", "-monitor",
                        "none", *extra, "-d", "exec,nochain,int", "-D", str(log)], capture_output=True, timeout=60,
                       env={**os.environ, **(env or {})})
    lines = log.read_text().splitlines()
    pcs = [int(line.split("/")[1], 16) for line in lines if line.startswith("Trace ")]
    return p.returncode, pcs, [line for line in lines if "do_interrupt" in line]


@MODES
def test_gpa_boundaries_model_and_qemu10(tmp_path, mode):
    elf = build(tmp_path, mode)
    h = Hart.from_elf(str(elf), PROFILES["qemu-10.0"])
    trace = list(h.run(20_000))
    traps = [(s.trap.cause, s.trap.tval, s.trap.htval) for s in trace if s.trap]
    assert h.exit_code == 0, traps                       # the guest's own checks passed on the model
    assert len(traps) == 7                               # 6 guest-page faults and the final ecall
    rc, pcs, ints = qemu(QEMU10, elf, tmp_path / "q10.log", ("-display", "none", "-audio", "none",
                                                             "-accel", "tcg,one-insn-per-tb=on"), QEMU10_ENV)
    assert rc == 0, ints
    mine = [s.pc for s in trace]
    assert pcs[:len(mine)] == mine
    # QEMU 10.0 shuts down asynchronously after the finisher write: it may spin in the `j .` after it
    assert set(pcs[len(mine):]) <= {mine[-1] + 4}


@MODES
def test_qemu72_rejects_upper_half_of_gpa_space(tmp_path, mode):
    """FINDING (QEMU 7.2): the G-stage GPA check treats the GPA like a canonical VA (bits above the
    width must equal the top in-width bit) instead of "must be zero", so every GPA in
    [2^(bits-1), 2^bits) -- here the last, mapped page of the GPA space -- takes a load guest-page
    fault.  The model and QEMU 10.0 load the value.  Pinned so a fixed 7.2 build shows up."""
    elf = build(tmp_path, mode)
    bits = 12 + 9 * LEVELS[mode] + 2
    rc, pcs, ints = qemu(QEMU72, elf, tmp_path / "q72.log", ("-singlestep",))
    assert rc == 2
    assert "cause:0000000000000015" in ints[0] and f"tval:{(1 << bits) - 8:#018x}" in ints[0]


@MODES
def test_qemu72_aliases_sign_extended_gpa(tmp_path, mode):
    """FINDING (QEMU 7.2), the other face of the same check: a GPA whose bits above the width are all
    ONES passes it and the walk uses the low bits, so GPA 0xffff_ffff_ffff_fff8 reads the last page of
    the GPA space instead of taking a load guest-page fault (the model and QEMU 10.0 fault)."""
    elf = build(tmp_path, mode, probes=[((1 << 64) - 8, "ld", 21)])
    h = Hart.from_elf(str(elf), PROFILES["qemu-10.0"])
    list(h.run(20_000))
    assert h.exit_code == 0
    rc, pcs, ints = qemu(QEMU72, elf, tmp_path / "q72.log", ("-singlestep",))
    assert rc == 2 and "cause:000000000000000a" in ints[0]        # no fault: straight to the final ecall


# G-stage: only the RAM gigapage (index 2) is mapped; the VS root at GPA 0x40000000 is not
IMPLICIT = ".option norvc\n" + M_PROLOGUE + hgatp_identity_gigapage(8) + """\
  li t0, (8 << 60) | (0x40000000 >> 12)
  csrw vsatp, t0
  li s4, 0
  li s6, -1
  la s2, vs                   /* the first VS fetch needs the VS root PTE: its implicit read faults */
  li s3, (0x40000000 + ((0x80000000 >> 30) & 511) * 8) >> 2
  li s5, 20                   /* ... reported as an instruction guest-page fault (original type) */
""" + ENTER_VS + """vs:
  li a7, 0x55
  ecall
""" + MTRAP_CHECK + """  csrr t0, 0x34a              /* mtinst: keep the first one */
  li t1, -1
  bne s6, t1, 1f
  mv s6, t0
1:
  addi s4, s4, 1
done:
  li t1, 1
  bne s4, t1, fail
  li t6, 0x100000
  beqz s6, pass
  li t1, 0x3000
  li t5, 0x33333              /* exit 3: the 0x3000 pseudoinstruction */
  beq s6, t1, out
  li t5, 0x43333              /* exit 4: anything else */
  j out
pass:
  li t5, 0x5555
out:
  sw t5, 0(t6)
2: j 2b
fail:
  li t6, 0x100000
  li t5, 0x23333
  sw t5, 0(t6)
3: j 3b
""" + GPT_DATA


def _model_exit_by_tinst_policy(elf) -> dict[str, int]:
    """The guest's exit code on the model under each htinst/mtinst policy (refmodel/profile.py)."""
    out = {}
    for policy in ("zero", "transformed"):
        h = Hart.from_elf(str(elf), PROFILES["qemu-10.0"].with_(tinst_policy=policy))
        list(h.records(20_000))
        out[policy] = h.exit_code
    return out


def test_implicit_vs_pte_guest_page_fault_end_to_end(tmp_path):
    """H "Guest-Page Faults": a G-stage fault on the implicit read of a VS-stage PTE is reported as the
    ORIGINAL access type (here the first VS fetch -> 20), tval = GVA, mtval2 = the PTE's GPA >> 2, GVA = 1;
    mtinst must be the 0x3000 pseudoinstruction under every tinst policy: with a nonzero mtval2 for an
    implicit VS-stage access "zero is not allowed" (H "Transformed Instruction or Pseudoinstruction").
    Exit code: 0 = checks passed and mtinst 0, 3 = passed and mtinst 0x3000, 2 = a check failed."""
    elf = assemble(IMPLICIT, tmp_path / "i.elf")
    assert _model_exit_by_tinst_policy(elf) == {"zero": 3, "transformed": 3}
    # QEMU 10.0 passes every check and writes the 0x3000 pseudoinstruction to mtinst: the model
    # matches it with tinst_policy="transformed" (the qemu-10.0 profile's choice must say so).
    rc, _, ints = qemu(QEMU10, elf, tmp_path / "q10.log", ("-display", "none", "-audio", "none"), QEMU10_ENV)
    assert rc == 3, ints
    # FINDING (QEMU 7.2): the G-stage fault on the implicit VS-PTE read made for an instruction
    # fetch is reported as a LOAD guest-page fault (21), not an instruction guest-page fault (20).
    rc, _, ints = qemu(QEMU72, elf, tmp_path / "q72.log")
    assert rc == 2 and "cause:0000000000000015" in ints[0] and "desc=guest_load_page_fault" in ints[0]


def test_qemu10_writes_transformed_store_to_mtinst(tmp_path):
    """H "Transformed Instruction or Pseudoinstruction": on the explicit `sd a1, 0(a0)` guest-page
    fault QEMU 10.0 writes the transformed instruction 0x00b03023 (rs1 and offset zeroed) to mtinst,
    as the model does with tinst_policy="transformed" (exit 5 below); with "zero" the model exits 0."""
    src = guest_source(8)
    src = src.replace("  addi s4, s4, 1\n", "  addi s4, s4, 1\n  bnez s7, 9f\n  csrr s7, 0x34a\n9:\n", 1)
    src = src.replace("  li s4, 0\n", "  li s4, 0\n  li s7, 0\n", 1)
    src = src.replace("  li t6, 0x100000\n  li t5, 0x5555\n",
                      "  li t6, 0x100000\n  li t5, 0x5555\n  beqz s7, 8f\n  li t5, 0x53333\n  li t1, 0x00b03023\n"
                      "  beq s7, t1, 8f\n  li t5, 0x63333\n8:\n", 1)
    elf = assemble(src, tmp_path / "t.elf", *SECTIONS)
    assert _model_exit_by_tinst_policy(elf) == {"zero": 0, "transformed": 5}
    rc, _, ints = qemu(QEMU10, elf, tmp_path / "q10.log", ("-display", "none", "-audio", "none"), QEMU10_ENV)
    assert rc == 5, ints
