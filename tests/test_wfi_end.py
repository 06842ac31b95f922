"""A final WFI that no interrupt can end is a program end, "wfi" (issue 12, README "Programs that end
their own way"): on the model (refmodel.interrupts.wfi_wait -> hart.stalled) and on both trace sources
of QEMU 7.2 and 10.0 (difftest/backends/wfi_end.py), decided on both sides by one spec rule
(refmodel.interrupts.wfi_never_resumes, Priv. 3.3.3), with no exit code (never a pass), QEMU stopped,
the trap-detail pass still run, and the same number of steps everywhere.  When the two sides do not
agree that the program ended there, the comparison says so.  Real QEMU 7.2 and 10.0, real guests
(guests/ptests/wfi.S, wfi_timer.S, built with the Debian toolchain), the real model."""
from __future__ import annotations

import shutil
import time

import pytest

from difftest import engine, guests as G
from difftest.backends import qemu, qemu_plugin, wfi_end
from difftest.backends.binaries import KNOWN
from refmodel import interrupts
from refmodel.interrupts import MSI, MTI, SSI, wfi_never_resumes
from refmodel.loader import symbol_address
from test_program_ends import _elf, _no_qemu_left

QEMUS = [q for q in ("qemu-7.2", "qemu-10.0") if KNOWN[q][0].exists()]
pytestmark = pytest.mark.skipif(len(QEMUS) < 2 or shutil.which(G.CC) is None,
                                reason="QEMU 7.2, 10.0 and the cross compiler are needed (run scripts/setup)")
ALL = ["qemu-7.2", "qemu-10.0", "model"]
WFI_GUESTS = ["ptest_wfi", "ptest_wfi_timer"]


def test_the_rule_is_priv_3_3_3_on_a_one_hart_machine():
    assert wfi_never_resumes(0, 0)                                   # nothing enabled
    assert wfi_never_resumes(1 << MTI, 0)                            # MTIP pending, but not enabled
    assert wfi_never_resumes(0, 1 << MSI | 1 << SSI)                 # enabled, but nothing can set them
    assert not wfi_never_resumes(1 << MSI, 1 << MSI)                 # pending and enabled: resumes at once
    assert not wfi_never_resumes(0, 1 << MTI)                        # the timer can end the wait


def test_the_wfis_of_an_elf_are_found_in_its_code():
    elf = G.build("ptest_wfi")
    assert wfi_end.wfi_pcs(elf) == {symbol_address(str(elf), "halt")}
    assert len(wfi_end.wfi_pcs(G.build("ptest_wfi_timer"))) == 1
    assert wfi_end.wfi_pcs(G.build("ptest_csr")) == frozenset()     # no WFI: no watch for one


@pytest.mark.parametrize("guest", WFI_GUESTS)
def test_a_final_wfi_ends_the_run_everywhere(tmp_path, guest):
    """QEMU 7.2 (log), QEMU 10.0 (plugin) and the model: MATCH, end "wfi", no exit code, the same steps
    (the WFI is the last step on every side), QEMU stopped at once -- seconds, not the timeout."""
    elf = _elf(tmp_path, guest)
    t0 = time.monotonic()
    case = engine.run_case(elf, backends=ALL, out_dir=tmp_path / "out", timeout=60, max_steps=100_000,
                           use_cache=False)
    wall = time.monotonic() - t0
    assert case.status == "match", [(p.a, p.b, p.summary) for p in case.pairs]
    for b, r in case.runs.items():
        f = r.footer
        assert (r.status, f.status, f.exit_code, f.end) == ("ok", "exit", None, "wfi"), (b, r.message)
        assert f.message == wfi_end.ENDED
    assert len({r.footer.steps for r in case.runs.values()}) == 1
    wfi_pc = next(iter(wfi_end.wfi_pcs(elf)))
    for q in QEMUS:
        w = case.runs[q].footer.extra["wfi"]
        assert (w["pc"], w["pc_after"]) == (wfi_pc, wfi_pc + 4) and wfi_never_resumes(w["mip"], w["mie"]), w
    if guest == "ptest_wfi":                 # the log source's trap-detail pass ran to the same end
        td = case.runs["qemu-7.2"].footer.extra["trap_detail"]
        assert td["traps"] == 2 and td["matched"] == td["traps"] and td["tinst"] == td["traps"], td
        assert {r.footer.uart for r in case.runs.values()} == {"wfi\n"}
    assert wall < 30, wall
    _no_qemu_left(tmp_path)


# a program without tohost (QEMU 7.2's plugin cannot watch tohost): MIE clear, mie = 0, the usual halt loop
HALT = "  csrci mstatus, 8\n  csrw mie, zero\n  li t0, 3\n  csrw mscratch, t0\nhalt: wfi\n  j halt\n"


# QEMU 7.2's plugin (API 1) cannot read tohost, which the ptests have (test_program_ends:
# test_the_7_2_plugin_cannot_read_tohost_and_says_so): the halt guest covers that source
SOURCES = [(g, q, s) for g in ("ptest_wfi_timer", "halt") for q in ("qemu-7.2", "qemu-10.0") for s in ("log", "plugin")
           if not (g != "halt" and q == "qemu-7.2" and s == "plugin")]


@pytest.mark.parametrize("guest,q,source", SOURCES)
def test_every_trace_source_ends_at_the_wfi(tmp_path, guest, q, source):
    from test_bad_input_qemu import asm_guest
    elf = asm_guest(tmp_path, "halt", HALT) if guest == "halt" else _elf(tmp_path, guest)
    run = qemu.run if source == "log" else qemu_plugin.run
    t0 = time.monotonic()
    r = run(elf, backend=q, out_path=tmp_path / "q.trace.bin", timeout=60, max_steps=10_000, use_cache=False)
    assert (r.status, r.footer.exit_code, r.footer.end) == ("ok", None, "wfi"), r.message
    assert time.monotonic() - t0 < 15
    m = engine.run_case(elf, backends=["model"], out_dir=tmp_path / "m", timeout=60, use_cache=False).runs["model"]
    assert (m.footer.end, m.footer.steps) == ("wfi", r.footer.steps)
    _no_qemu_left(tmp_path)


def test_a_model_that_does_not_stall_is_no_pass(tmp_path, monkeypatch):
    """The model goes on past the final WFI (its rule says it may resume): it runs into --max-steps while
    QEMU ended in the WFI -- an error of the case, never a match."""
    monkeypatch.setattr(interrupts, "wfi_never_resumes", lambda mip, mie: False)
    case = engine.run_case(_elf(tmp_path, "ptest_wfi"), backends=["qemu-10.0", "model"], out_dir=tmp_path / "o",
                           timeout=60, max_steps=2000, use_cache=False)
    assert case.runs["qemu-10.0"].footer.end == "wfi"
    assert case.runs["model"].footer.status == "step-limit"
    assert case.status != "match" and case.pairs[0].status == "error", case.pairs[0].summary
    _no_qemu_left(tmp_path)


def test_a_model_that_stalls_early_is_a_finding(tmp_path, monkeypatch):
    """The model stalls at the first WFI, which QEMU's timer ends: QEMU runs on to the final WFI --
    both "ended in wfi", at different steps: the comparison shows the runs parting, not a pass."""
    monkeypatch.setattr(interrupts, "wfi_never_resumes", lambda mip, mie: True)
    case = engine.run_case(_elf(tmp_path, "ptest_wfi_timer"), backends=["qemu-10.0", "model"],
                           out_dir=tmp_path / "o", timeout=60, max_steps=2000, use_cache=False)
    q, m = case.runs["qemu-10.0"].footer, case.runs["model"].footer
    assert (q.end, m.end) == ("wfi", "wfi") and m.steps < q.steps
    assert case.status == "mismatch" and case.pairs[0].findings, case.pairs[0].summary
    _no_qemu_left(tmp_path)


def test_a_qemu_that_is_not_found_ended_runs_into_its_timeout(tmp_path, monkeypatch):
    """QEMU's side decides by the rule on QEMU's own mip/mie: if the rule said the WFI may resume, QEMU
    (asleep for ever) is not taken for ended -- the run times out, QEMU is stopped, no pass."""
    monkeypatch.setattr(wfi_end, "wfi_never_resumes", lambda mip, mie: False)
    r = qemu.run(_elf(tmp_path, "ptest_wfi"), backend="qemu-10.0", out_path=tmp_path / "q.trace.bin", timeout=3,
                 max_steps=10_000, use_cache=False)
    assert (r.status, r.error_class, r.footer.end) == ("error", "timeout", ""), r.message
    _no_qemu_left(tmp_path)


def test_difftest_run_says_ended_in_wfi_and_exits_0_for_a_match(tmp_path):
    """The command line: the end is named and shown without an exit code (never "exit 0", a pass)."""
    from test_bad_input_qemu import difftest
    elf = _elf(tmp_path, "ptest_wfi")
    r = difftest(tmp_path, "run", str(elf), "--backend", "qemu-7.2,qemu-10.0,model", "--out", str(tmp_path / "o"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("MATCH") and r.stdout.count("ended in wfi (no exit code)") == 4, r.stdout
    assert "exit 0" not in r.stdout and "exit None" not in r.stdout
    _no_qemu_left(tmp_path)
