"""Programs that end their own way (issue 12): a non-zero write to the ELF's ``tohost`` ends the run on
both QEMU trace sources and the model, with the riscv-tests exit code, QEMU stopped and the trap-detail
pass still run; the end is named in the footer ("tohost" / "finisher").  Real QEMU 7.2 and 10.0, real
guests (guests/ptests, built with the Debian toolchain), the real model."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from difftest import engine, guests as G
from difftest.backends import qemu, qemu_plugin
from difftest.backends.binaries import KNOWN
from difftest.trace import Header, _bad
from refmodel.devices import tohost_exit_code

QEMUS = [q for q in ("qemu-7.2", "qemu-10.0") if KNOWN[q][0].exists()]
pytestmark = pytest.mark.skipif(len(QEMUS) < 2 or shutil.which(G.CC) is None,
                                reason="QEMU 7.2, 10.0 and the cross compiler are needed (run scripts/setup)")
ALL = ["qemu-7.2", "qemu-10.0", "model"]


def _elf(tmp_path: Path, guest: str) -> Path:
    """The guest's ELF under a path of this test's own, so its QEMUs can be found by command line."""
    dst = tmp_path / f"{guest}.elf"
    shutil.copy(G.build(guest), dst)
    return dst


def _no_qemu_left(tmp_path: Path) -> None:
    from test_bad_input_qemu import gone_within, processes_mentioning
    assert gone_within(processes_mentioning(str(tmp_path)), 5), processes_mentioning(str(tmp_path))


def _on_every_source(tmp_path: Path, elf: Path) -> dict:
    """(status, exit code, end, message) of ``elf`` on both trace sources of both QEMUs and on the model."""
    got = {}
    for q in QEMUS:
        for src, run in (("log", qemu.run), ("plugin", qemu_plugin.run)):
            r = run(elf, backend=q, out_path=tmp_path / f"{q}-{src}.trace.bin", timeout=60, max_steps=1000,
                    use_cache=False)
            got[f"{q}/{src}"] = (r.status, r.footer.exit_code, r.footer.end, r.message)
    r = engine.run_case(elf, backends=["model"], out_dir=tmp_path / "m", timeout=60, use_cache=False).runs["model"]
    got["model"] = (r.status, r.footer.exit_code, r.footer.end, "")
    return got


def test_tohost_exit_code_is_the_riscv_tests_convention():
    assert tohost_exit_code(1) == 0
    assert tohost_exit_code((3 << 1) | 1) == 3
    assert tohost_exit_code((0x1234 << 1) | 1) == 0x1234          # the full value, never 8 bits
    assert tohost_exit_code(0x80001000) == 0x80001000              # an HTIF command: never a pass


@pytest.mark.parametrize("guest,code,end", [("ptest_csr", 0, "tohost"), ("ptest_traps", 0, "tohost"),
                                            ("ptest_vm", 0, "tohost"), ("ptest_uart", 0, "tohost"),
                                            ("ptest_irq", 0, "tohost"),
                                            ("ptest_fail", 3, "tohost"), ("ptest_semi", 0, "semihosting")])
def test_ptests_run_to_their_tohost_exit_everywhere(tmp_path, guest, code, end):
    elf = _elf(tmp_path, guest)
    case = engine.run_case(elf, backends=ALL, out_dir=tmp_path / "out", timeout=60, max_steps=100_000,
                           use_cache=False)
    for b, r in case.runs.items():
        f = r.footer
        assert (r.status, f.status, f.exit_code, f.end) == ("ok", "exit", code, end), (b, r.message)
    for p in case.pairs:
        if "model" in p.a + p.b:          # QEMU~QEMU may differ by a spec-allowed choice (ptest_vm: tinst)
            assert p.status == "match", (p.a, p.b, p.status)
    q72 = case.runs["qemu-7.2"].footer
    # the log source stopped QEMU at the store (the watchpoint), and the trap-detail pass still ran
    if end == "tohost":
        assert q72.extra["tohost"]["value"] == (1 if code == 0 else (code << 1) | 1)
    if guest in ("ptest_traps", "ptest_vm"):
        td = q72.extra["trap_detail"]
        assert td["traps"] > 0 and td["matched"] == td["traps"] and td["tinst"] == td["traps"], td
    if guest == "ptest_irq":               # MSI, MTI after a WFI, SSI delegated to S: each model took
        assert case.note.count("followed the 3 interrupt(s)") == 2, case.note    # QEMU's three
    # every side stops at the same step: the tohost store
    assert len({r.footer.steps for r in case.runs.values()}) == 1
    _no_qemu_left(tmp_path)


def test_the_plugin_source_stops_qemu_at_tohost(tmp_path):
    """10.0's plugin reads the stored value and stops recording; QEMU (which spins) is stopped."""
    elf = _elf(tmp_path, "ptest_fail")
    r = qemu_plugin.run(elf, backend="qemu-10.0", out_path=tmp_path / "q.trace.bin", timeout=60, max_steps=100_000,
                        use_cache=False)
    assert (r.status, r.footer.exit_code, r.footer.end) == ("ok", 3, "tohost"), r.message
    assert r.footer.extra["tohost"]["value"] == 7
    assert "tohost=0x80001000" in " ".join(r.header.command)
    _no_qemu_left(tmp_path)


def test_the_7_2_plugin_cannot_read_tohost_and_says_so(tmp_path):
    r = qemu_plugin.run(_elf(tmp_path, "ptest_csr"), backend="qemu-7.2", out_path=tmp_path / "q.trace.bin",
                        use_cache=False)
    assert (r.status, r.error_class) == ("error", "missing-backend") and "--qemu-trace log" in r.message


def test_finisher_end_is_named_and_a_program_without_tohost_has_none(tmp_path):
    assert qemu.program_end(G.build("smoke")) is None
    assert qemu.program_end(G.build("ptest_csr")) == 0x80001000
    case = engine.run_case("smoke", hgatp_mode="bare", vs_mode="bare", backends=["qemu-10.0", "model"],
                           out_dir=tmp_path / "out", timeout=60, use_cache=False)
    assert {b: (r.footer.exit_code, r.footer.end) for b, r in case.runs.items()} == \
        {"qemu-10.0": (0, "finisher"), "model": (0, "finisher")}


def test_traces_without_the_new_fields_still_read():
    old = {"guest": "g", "elf_sha256": "0", "hgatp_mode": "", "vs_mode": "", "backend": "model",
           "backend_version": "refmodel 0.1", "cpu": "default", "cpu_config": "qemu-10.0"}
    assert _bad(old, Header) is None and Header(**old).platform == {}


@pytest.mark.parametrize("code", [156, 668])
def test_finisher_codes_of_128_and_more_are_codes_on_every_trace_source(tmp_path, code):
    """The issue's "QEMU died (signal 28, exit 156)": a finisher code >= 128 is the guest's code, in full
    (668, not 668 & 0xff), on the log and plugin sources of both QEMUs and on the model.
    (tests/test_bad_input_qemu.py covers the log source over more codes.)"""
    from test_bad_input_qemu import asm_guest, finisher_fail
    got = _on_every_source(tmp_path, asm_guest(tmp_path, f"fail{code}", finisher_fail(code)))
    assert got == {k: ("ok", code, "finisher", "") for k in got}, got


def test_the_store_replayed_at_the_watchpoint_is_one_step():
    """QEMU logs the tohost store twice (the attempt stopped at the watchpoint, then the step over it):
    the last of two steps at one pc without a trap is dropped; anything else is kept."""
    from difftest.backends.tohost import drop_replayed_store
    from difftest.trace import Step, Trap
    from difftest.backends.qemu_log import Plain

    def pcs(steps):
        out = []
        for s in drop_replayed_store(steps):
            out += s.pc if type(s) is Plain else [s[1] if type(s) is tuple else s.pc]
        return out
    assert pcs([Step(i=0, pc=8), Step(i=1, pc=12), Step(i=2, pc=12)]) == [8, 12]
    assert pcs([Step(i=0, pc=12), (1, 12, None, None, None, [], None, "", None, "")]) == [12]   # a bare exec line
    assert pcs([Step(i=0, pc=12, trap=Trap(cause=15)), Step(i=1, pc=12)]) == [12, 12]            # a retried store
    assert pcs([Step(i=0, pc=8), Step(i=1, pc=12)]) == [8, 12] and pcs([]) == []
    # runs of bare exec lines (qemu_log.Plain): the replay inside one run, or a run after a Step
    assert pcs([Plain(i=0, pc=[4, 8, 12, 12], raw=["a", "b", "c", "d"])]) == [4, 8, 12]
    assert pcs([Step(i=0, pc=12), Plain(i=1, pc=[12], raw=["x"])]) == [12]
    assert pcs([Plain(i=0, pc=[4, 12], raw=["a", "b"]), Step(i=2, pc=12)]) == [4, 12]


SEMIHOSTING_EXIT = """  la a1, blk
  li t0, {reason:#x}
  sd t0, 0(a1)
  li t0, {code}
  sd t0, 8(a1)
  li a0, {op:#x}
.option push
.option norvc
.balign 16
  slli x0, x0, 0x1f
  ebreak
  srai x0, x0, 7
.option pop
1: j 1b
.balign 8
blk: .dword 0, 0
"""


@pytest.mark.parametrize("op,reason,code,want", [(0x18, 0x20026, 668, 668), (0x20, 0x20023, 7, 1)])
def test_semihosting_exit_ends_the_run_with_its_full_code(tmp_path, op, reason, code, want):
    """SYS_EXIT / SYS_EXIT_EXTENDED: QEMU exits with the subcode's low 8 bits (668 -> status 156) or 1 for
    another reason; the backend reads the call's block again through the gdbstub, so every trace
    source and the model report the full code, and end "semihosting"."""
    from test_bad_input_qemu import asm_guest
    got = _on_every_source(tmp_path, asm_guest(tmp_path, f"semi{code}",
                                               SEMIHOSTING_EXIT.format(op=op, reason=reason, code=code)))
    assert got == {k: ("ok", want, "semihosting", "") for k in got}, got
    _no_qemu_left(tmp_path)


def test_an_ordinary_ebreak_is_still_a_breakpoint(tmp_path):
    """Only the slli/ebreak/srai sequence is a semihosting call: a lone EBREAK traps (cause 3) on every side."""
    from test_bad_input_qemu import asm_guest, finisher_fail
    body = ".option norvc\n  la t0, 2f\n  csrw mtvec, t0\n  ebreak\n  j 3f\n.balign 4\n2:\n  csrr t1, mcause\n" \
           "  addi t1, t1, -3\n  beqz t1, 4f\n3:\n" + finisher_fail(9) + "4:\n" + finisher_fail(3)
    elf = asm_guest(tmp_path, "ebreak", body)
    case = engine.run_case(elf, backends=ALL, out_dir=tmp_path / "o", timeout=60, use_cache=False)
    assert {b: (r.footer.exit_code, r.footer.end) for b, r in case.runs.items()} == \
        {b: (3, "finisher") for b in case.runs}, {b: r.message for b, r in case.runs.items()}
