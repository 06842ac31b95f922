"""Parser unit tests on real QEMU logs (tests/data/qemu-*_sv48x4.log, captured with the
backend's pinned command line on tests/data/qemu_guest built with -DHGATP_MODE=9)."""
from pathlib import Path

import pytest

from difftest.backends import qemu_log

DATA = Path(__file__).parent / "data"
LOGS = ["qemu-7.2_sv48x4.log", "qemu-10.0_sv48x4.log"]


def steps_of(name, **kw):
    stats = {}
    steps = list(qemu_log.parse_file(DATA / name, stats=stats, **kw))
    return steps, stats


@pytest.mark.parametrize("log", LOGS)
def test_steps_traps_and_translations(log):
    steps, stats = steps_of(log)
    assert [s.i for s in steps] == list(range(len(steps)))
    assert steps[0].pc == 0x1000                       # QEMU virt's reset stub
    assert steps[0].xlats[0].access == "fetch" and steps[0].xlats[0].pa == 0x1000
    assert not stats["truncated"] and stats["unknown_lines"] == 0
    by_pc = {}
    for s in steps:
        by_pc.setdefault(s.pc, []).append(s)
    # ld a0, 0(t0) with t0 = GPA 0xC0002000: G stage maps GPA 0xC0000000 -> SPA 0x80000000
    (alias,) = by_pc[0x8000001C]
    x = next(x for x in alias.xlats if x.access == "load")
    assert (x.va, x.gpa, x.pa, x.v, x.priv, x.fault_stage) == (0xC0002000, 0xC0002000, 0x80002000, 1, 1, None)
    assert "2nd-stage" in x.raw
    # ld from unmapped GPA 0x100000000: load guest-page fault (Priv. 20240411, 9.6.2: cause 21)
    (ld,) = by_pc[0x80000028]
    assert (ld.trap.cause, ld.trap.tval, ld.trap.epc, ld.trap.interrupt) == (21, 0x100000000, 0x80000028, False)
    x = ld.xlats[-1]
    assert (x.access, x.fault_stage, x.fault_cause, x.pa) == ("load", "g", 21, None)
    # sd: store/AMO guest-page fault 23
    (sd,) = by_pc[0x8000002C]
    assert (sd.trap.cause, sd.trap.tval) == (23, 0x100000008)
    # jalr to the unmapped GPA: instruction guest-page fault 20 -- no exec line, still a step
    (jump,) = by_pc[0x100000000]
    assert (jump.trap.cause, jump.trap.tval) == (20, 0x100000000)
    assert jump.raw.startswith("riscv_cpu_do_interrupt")
    assert jump.xlats[0].access == "fetch" and jump.xlats[0].fault_stage == "g"
    assert steps[jump.i - 1].pc == 0x80000030            # the jalr retired
    (ecall,) = by_pc[0x80000034]
    assert ecall.trap.cause == 10                        # environment call from VS-mode
    # the finisher store's TLB fill follows its exec line
    fin = next(s for s in steps if any(x.access == "store" and x.pa == 0x100000 for x in s.xlats))
    assert fin.pc == 0x8000007C
    assert all(s.priv is None and s.v is None and s.insn is None for s in steps)   # not exposed


def test_both_dialects_agree():
    a, _ = steps_of(LOGS[0])
    b, _ = steps_of(LOGS[1])
    n = next(s.i for s in a if s.pc == 0x8000007C) + 1
    assert [(s.pc, s.trap and s.trap.cause) for s in a[:n]] == [(s.pc, s.trap and s.trap.cause) for s in b[:n]]


@pytest.mark.parametrize("log", LOGS)
def test_truncated_inside_a_fill(log, tmp_path):
    lines = (DATA / log).read_text().splitlines(keepends=True)
    cut = next(i for i, l in enumerate(lines) if l.startswith("riscv_cpu_tlb_fill ad 100000000"))
    p = tmp_path / "cut.log"
    p.write_text("".join(lines[:cut + 1]))
    stats = {}
    steps = list(qemu_log.parse_file(p, stats=stats))
    assert stats["truncated"]
    assert steps[-1].pc == 0x80000028 and steps[-1].trap is None


def test_max_steps_stops_early():
    steps, stats = steps_of(LOGS[0], max_steps=10)
    assert len(steps) == 10 and stats["step_limit"]


def test_parse_is_lazy():
    it = qemu_log.parse(iter(["Trace 0: 0x7f [0/0000000000001000/00209003/ff000201] \n"] * 3 + [None]))
    assert next(it).pc == 0x1000        # the None sentinel is never reached for the first step


def test_priv_and_v_from_10_0_tb_flags():
    """10.0.2's TB flags (VIRT_ENABLED bit 21, PRIV bits 22-23) give each step's mode."""
    assert qemu_log.flags_layout("10.0.2") == (21, 22) and qemu_log.flags_layout("7.2.22") is None
    steps, _ = steps_of("qemu-10.0_sv48x4.log", layout=qemu_log.flags_layout("10.0.2"))
    mode = {s.pc: (s.priv, s.v) for s in steps}
    assert mode[0x1000] == (3, 0) and mode[0x80000084] == (3, 0)       # reset stub, main: M
    assert mode[0x8000001C] == (1, 1) and mode[0x80000034] == (1, 1)   # vs_entry: VS
    assert mode[0x100000000] == (1, 1)              # the fetch fault: from its TLB fill, no exec line
    assert mode[0x8000003C] == (3, 0)               # m_trap


def test_interrupt_is_its_own_step():
    lines = ["Trace 0: 0x7f [00000000/0000000080000010/02c24003/ff020201] \n",
             "riscv_cpu_do_interrupt: hart:0, async:1, cause:0000000000000007, epc:0x0000000080000014, "
             "tval:0x0000000000000000, desc=m_timer\n",
             "Trace 0: 0x7f [00000000/0000000080000100/02c24003/ff020201] \n"]
    a, b, c = qemu_log.parse(lines)
    assert a.pc == 0x80000010 and a.trap is None
    assert (b.pc, b.trap.cause, b.trap.interrupt, b.trap.tval) == (0x80000014, 7, True, None)
    assert c.pc == 0x80000100 and c.i == 2
