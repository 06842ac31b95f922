"""Small hand-assembled programs on the model (Unprivileged spec 20240411: RV64I, M, A, C;
Priv. 20240411 3.7 PMP, H 9.5 trap entry) plus the same ELF on QEMU 7.2 where the
step count and the console must agree."""
import subprocess

import pytest

from difftest.asm import ENTER_VS, GPT_DATA, PMP_OPEN, assemble, have_cc, hgatp_identity_gigapage
from difftest.backends.binaries import KNOWN
from refmodel.hart import Hart
from refmodel.profile import PROFILES

PROF = PROFILES["qemu-7.2"]
QEMU72 = str(KNOWN["qemu-7.2"][0])
pytestmark = pytest.mark.skipif(not have_cc(), reason="riscv64-unknown-elf-gcc not installed")

PRE = """
.section .text
.globl _start
_start:
  la t0, mtrap
  csrw mtvec, t0
"""
POST = """
  li t6, 0x100000
  li t5, 0x5555
  sw t5, 0(t6)
.balign 4
mtrap:
  csrr s10, mcause
  csrr s11, mtval
  li t6, 0x100000
  li t5, 0x23333
  sw t5, 0(t6)
1: j 1b
.section .data
.balign 8
buf: .dword 0x8000000000000005, 7, 0, 0
"""


def build(tmp_path, body, name="t", tail=""):
    return str(assemble(PRE + body + POST + tail, tmp_path / f"{name}.elf"))


def run(elf, steps=10_000):
    h = Hart.from_elf(elf, PROF)
    trace = list(h.run(steps))
    return h, trace


def reg(h, name):
    from refmodel.disasm import REG_NAMES
    return h.x[REG_NAMES.index(name)]


def test_m_extension_corner_cases(tmp_path):
    # Unpriv. "M": division by zero gives all ones / the dividend; overflow gives the dividend / 0
    elf = build(tmp_path, """
  li a0, -7
  li a1, 0
  div a2, a0, a1
  rem a3, a0, a1
  li a1, -1
  li a4, 1
  slli a4, a4, 63
  div a5, a4, a1
  rem a6, a4, a1
  li a0, -7
  li a1, 2
  div a7, a0, a1
  mulh s2, a0, a0
  mulhu s3, a0, a1
  divuw s4, a0, a1
  remw s5, a0, a1
""")
    h, _ = run(elf)
    assert h.exit_code == 0
    M = (1 << 64) - 1
    assert reg(h, "a2") == M and reg(h, "a3") == (-7) & M
    assert reg(h, "a5") == 1 << 63 and reg(h, "a6") == 0
    assert reg(h, "a7") == (-3) & M and reg(h, "s2") == 0
    assert reg(h, "s3") == 1 and reg(h, "s4") == 0x7FFFFFFC and reg(h, "s5") == (-1) & M


def test_atomics_and_lr_sc(tmp_path):
    elf = build(tmp_path, """
  la a0, buf
  li a1, 3
  amoadd.d a2, a1, (a0)
  amoswap.d a3, a1, (a0)
  li a1, -1
  amomin.d a4, a1, (a0)
  amomaxu.d a5, a1, (a0)
  addi a6, a0, 8
  lr.d a7, (a6)
  addi a7, a7, 1
  sc.d s2, a7, (a6)
  sc.d s3, a7, (a6)
  ld s4, 8(a0)
  amoadd.w s5, a1, (a0)
""")
    h, _ = run(elf)
    assert h.exit_code == 0
    M = (1 << 64) - 1
    assert reg(h, "a2") == 0x8000000000000005 and reg(h, "a3") == 0x8000000000000008
    assert reg(h, "a4") == 3 and reg(h, "a5") == M          # min(3,-1) = -1 stored; maxu(-1, -1)
    assert reg(h, "s2") == 0 and reg(h, "s3") == 1 and reg(h, "s4") == 8
    assert reg(h, "s5") == M


def test_misaligned_amo_traps_and_access_fault_outside_memory(tmp_path):
    elf = build(tmp_path, """
  la a0, buf
  addi a0, a0, 1
  amoadd.d a2, a1, (a0)
""")
    h, trace = run(elf)
    assert h.exit_code == 2 and reg(h, "s10") == 6          # store/AMO address misaligned
    elf = build(tmp_path, """
  li a0, 0x40000000
  ld a1, 0(a0)
""", "b")
    h, trace = run(elf)
    assert reg(h, "s10") == 5 and reg(h, "s11") == 0x40000000
    traps = [st.trap for st in trace if st.trap]
    assert [(t.cause, t.target, t.tval) for t in traps] == [(5, "M", 0x40000000)]


def test_pmp_no_match_fails_below_m(tmp_path):
    # Priv. 3.7.1: with PMP entries implemented and none matching, an S-mode access fails
    elf = build(tmp_path, """
  li t0, (1 << 11)
  csrs mstatus, t0
  la t0, s_mode
  csrw mepc, t0
  mret
s_mode:
  nop
""")
    h, trace = run(elf)
    assert reg(h, "s10") == 1                               # instruction access fault at s_mode
    assert any(s.trap and s.trap.cause == 1 for s in trace)


def test_same_steps_and_console_as_qemu_72(tmp_path):
    elf = build(tmp_path, PMP_OPEN + ENTER_VS + """vs:
  li a0, 0x10000000
  li a1, 'o'
  sb a1, 0(a0)
  li a1, 'k'
  sb a1, 0(a0)
  lb a2, 5(a0)
  li a3, 20
1: addi a3, a3, -1
  c.addi a3, 0
  bnez a3, 1b
  ecall
""")
    h, trace = run(elf)
    log = tmp_path / "q.log"
    p = subprocess.run([QEMU72, "-M", "virt", "-bios", "none", "-kernel", elf, "-nographic", "-monitor", "none",
                        "-singlestep", "-d", "exec,nochain", "-D", str(log)], capture_output=True, timeout=60)
    pcs = [int(line.split("/")[1], 16) for line in log.read_text().splitlines() if line.startswith("Trace ")]
    assert p.stdout.decode() == h.uart_output == "ok"
    # QEMU logs one line per instruction attempt (the trapping ecall included), from the reset stub on
    assert pcs == [s.pc for s in trace]
    assert h.exit_code == p.returncode == 2 and reg(h, "s10") == 10     # ecall from VS, then fail exit


# only the RAM gigapage is mapped at the G stage (U|A|D|X|W|R|V)
GSTAGE = PMP_OPEN + hgatp_identity_gigapage(8) + ENTER_VS + """vs:
  li a0, 0x40000010
  ld a1, 0(a0)
"""


def test_guest_page_fault_to_m_writes_mtval2_gva_mpv(tmp_path):
    # H "Guest-Page Faults" / "Trap entry": mtval = GVA, mtval2 = GPA >> 2, mstatus.GVA = 1, MPV = 1
    elf = build(tmp_path, GSTAGE, "g", tail=GPT_DATA)
    h, trace = run(elf)
    traps = [s for s in trace if s.trap]
    t = traps[0].trap
    assert (t.cause, t.target, t.tval, t.htval, t.gva) == (21, "M", 0x40000010, 0x40000010 >> 2, True)
    x = traps[0].xlats[-1]
    assert (x.access, x.fault_stage, x.fault_cause, x.gpa, x.pa) == ("load", "g", 21, None, None) or \
        (x.access, x.fault_stage, x.fault_cause) == ("load", "g", 21)
    from refmodel import csr as C
    assert h.csr[0x300] & C.GVA and h.csr[0x300] & C.MPV and h.csr[0x34B] == 0x40000010 >> 2
    # every VS-mode fetch went through the G-stage (Sv39x4 gigapage: leaf level 2)
    fx = [x for s in trace if s.v for x in s.xlats if x.access == "fetch"]
    assert fx and all(x.g_leaf_level == 2 and x.pa == x.va for x in fx)
    log = tmp_path / "q.log"
    subprocess.run([QEMU72, "-M", "virt", "-bios", "none", "-kernel", str(elf), "-nographic", "-monitor",
                    "none", "-singlestep", "-d", "exec,nochain,int", "-D", str(log)], capture_output=True,
                   timeout=60)
    lines = log.read_text().splitlines()
    pcs = [int(line.split("/")[1], 16) for line in lines if line.startswith("Trace ")]
    assert pcs == [s.pc for s in trace]
    ints = [line for line in lines if "do_interrupt" in line]
    assert "cause:0000000000000015" in ints[0] and "tval:0x0000000040000010" in ints[0]


# ---------------------------------------------------------------------------------------------
# Fast paths (decoded instructions by virtual pc, shared Xlat records, RAM load/store path) must
# be invisible: the same run with every cache dropped before each step gives the same trace.

SMC = """
  li s0, 0
  la t0, patch
again:
.option push
.option norvc                        /* a 4-byte instruction to overwrite with another */
patch:
  addi a0, zero, 1
.option pop
  addi s0, s0, 1
  li t2, 2
  beq s0, t2, done
  li t1, 0x00500513                  /* addi a0, zero, 5 */
  sw t1, 0(t0)
  fence.i                            /* Zifencei: the store is visible to later fetches */
  j again
done:
"""


def test_store_into_executed_code_is_fetched_after_fence_i(tmp_path):
    h, trace = run(build(tmp_path, SMC))
    assert h.exit_code == 0
    assert reg(h, "a0") == 5
    patched = [s for s in trace if s.insn == 0x00500513]
    assert len(patched) == 1


def _cacheless(elf, max_steps):
    """The same hart with the soft TLB (and with it the decoded-by-pc tables and shared Xlats)
    dropped before every step: each step then takes the full fetch/translate path."""
    from difftest.trace import step_to_json
    h = Hart.from_elf(elf, PROF)
    out = []
    for s in h.run(max_steps):
        out.append(step_to_json(s))
        h.tlb.clear()
    return h, out


def _plain(elf, max_steps):
    from difftest.trace import step_to_json
    h = Hart.from_elf(elf, PROF)
    return h, [step_to_json(s) for s in h.run(max_steps)]


@pytest.mark.parametrize("guest,hg,vs", [("fences", "sv39x4", "sv39"), ("faults", "sv48x4", None),
                                         ("accessors", "sv39x4", None), ("pte_bits", "sv57x4", None),
                                         ("ad_bits", "sv39x4", None), ("gstage_basic", "sv48x4", None)])
def test_fast_paths_do_not_change_the_trace(tmp_path, guest, hg, vs):
    from difftest import config_block, guests
    p = config_block.patch_copy(guests.build(guest), tmp_path, hgatp_mode=hg, vs_mode=vs)
    a_h, a = _plain(str(p.path), 300_000)
    b_h, b = _cacheless(str(p.path), 300_000)
    assert a_h.exit_code == 0 and "DONE" in a_h.uart_output
    assert len(a) == len(b) and a_h.uart_output == b_h.uart_output and a_h.exit_code == b_h.exit_code
    first = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None)
    assert first is None, (a[first], b[first])
    assert sum(1 for s in a if s.get("xlats")) > 10


def test_shared_xlat_objects_repeat_one_access(tmp_path):
    """A loop's fetch and data records are shared objects (built once per TLB entry and va) and
    still carry the right addresses."""
    from difftest import bench
    elf = bench.build_guest(str(tmp_path), 20, 8)
    h = Hart.from_elf(elf, PROF)
    steps = [s for s in h.run(10_000) if s.v == 1]
    loads = [x for s in steps for x in s.xlats if x.access == "load"]
    assert len(loads) == 40 and len({id(x) for x in loads}) == 2
    for s in steps:
        f = s.xlats[0]
        assert f.access == "fetch" and f.va == s.pc and f.pa == s.pc and f.gpa == s.pc


def test_bench_runs_the_same_instructions_on_model_and_qemu(tmp_path):
    """`difftest bench` figures come from one guest both sides finish: same step count, exit 0
    (rates are printed, never asserted)."""
    from difftest import bench
    r = bench.measure(iters=300)
    m, q, io = r["model"], r["qemu-7.2"], r["trace_io"]
    assert r["hgatp"] == "sv39x4" and m["exit_code"] == 0 and m["rate"] > 0 and m["cpu_rate"] > 0
    assert io["steps"] == m["steps"] and io["read_rate"] > 0
    if q is not None:
        assert q["exit_code"] == 0 and q["steps"] == m["steps"]
