"""A deliberately wrong model must be caught, at the first affected step, in the right stage.

The model backend runs in-process, so monkeypatching one translation rule of
``refmodel.mmu`` here changes what ``difftest.engine.run_case`` compares with
the real QEMU 10.0 trace.  The broken rule is the G-stage U-bit rule of
Priv. 20240411, 9.5.1 "Guest physical address translation": G-stage accesses
are treated as U-mode accesses, so a G-stage leaf *must* have U=1.  The wrong
model inverts it (demands U=0), so its first G-stage translation faults while
QEMU's succeeds.
"""
from __future__ import annotations

from pathlib import Path

import pytest

mmu = pytest.importorskip("refmodel.mmu", reason="helper C's mmu has not landed")
pytest.importorskip("difftest.backends.qemu", reason="helper D's QEMU backend has not landed")

from difftest.engine import run_case  # noqa: E402
from difftest.trace import read_trace  # noqa: E402

from test_e2e_gstage import GCC, build_guest  # noqa: E402

GUEST = "smoke"
MODE = "sv39x4"


def _first_g_stage_step(trace_path) -> int:
    """The first step at which the (correct) model completed a G-stage walk."""
    _, steps, _ = read_trace(trace_path)
    for s in steps:
        for x in s.xlats:
            if x.v and x.g_leaf_level is not None:
                return s.i
    raise AssertionError("the guest never translated through the G stage")


def _break_u_rule(monkeypatch):
    original = mmu._Walker.permitted

    def wrong_permitted(self, stage, pte, access, hlvx):
        if stage == "g":        # inverted: the spec requires U=1 on G-stage leaves
            return "U=1 in G-stage leaf (deliberately wrong rule)" if pte & mmu.PTE_U else None
        return original(self, stage, pte, access, hlvx)

    monkeypatch.setattr(mmu._Walker, "permitted", wrong_permitted)


@pytest.mark.skipif(GCC is None, reason="riscv64-unknown-elf-gcc not installed")
@pytest.mark.parametrize("mode", ["sv39x4", "sv57x4"])
def test_wrong_rule_caught_on_hand_made_guest(mode, tmp_path, monkeypatch):
    elf = build_guest(tmp_path, mode)
    good = run_case(elf, backends=["qemu-10.0", "model"], out_dir=tmp_path / "good", timeout=60, max_steps=10_000)
    assert good.status == "match", good.pairs[0].summary
    expect_step = _first_g_stage_step(good.runs["model"].trace_path)
    _break_u_rule(monkeypatch)
    bad = run_case(elf, backends=["qemu-10.0", "model"], out_dir=tmp_path / "bad", timeout=60, max_steps=10_000)
    p = bad.pairs[0]
    assert (bad.status, p.kind, p.step) == ("mismatch", "second-stage", expect_step), p.summary
    txt = Path(p.report["txt"]).read_text()
    assert "deliberately wrong rule" in txt and "2nd-stage" in txt      # the model's walk and QEMU's own lines
    assert "difftest run " + str(elf) in txt


def test_wrong_g_stage_u_rule_is_caught(tmp_path, monkeypatch):
    pytest.importorskip("difftest.guests", reason="helper A's guest builder has not landed")
    # QEMU 7.2: its mtinst policy (zero) is the one the model's profile has today (see test_e2e)
    good = run_case(GUEST, hgatp_mode=MODE, backends=["qemu-7.2", "model"], out_dir=tmp_path / "good",
                    timeout=120, max_steps=2_000_000)
    assert good.status in ("match", "accepted-stale"), good.pairs[0].summary
    expect_step = _first_g_stage_step(good.runs["model"].trace_path)

    _break_u_rule(monkeypatch)
    bad = run_case(GUEST, hgatp_mode=MODE, backends=["qemu-7.2", "model"], out_dir=tmp_path / "bad",
                   timeout=120, max_steps=2_000_000)
    p = bad.pairs[0]
    assert bad.status == "mismatch", p.summary
    assert p.kind == "second-stage", p.summary
    assert p.step == expect_step, p.summary
    assert p.fingerprint == f"{GUEST}|{MODE}|{bad.vs_mode}|qemu-7.2~model|second-stage|{hex(p.pc)}"
    # the report shows the model's walk with the rule that decided, and how to reproduce
    txt = Path(p.report["txt"]).read_text()
    assert f"second-stage mismatch at step {expect_step}" in txt
    assert "deliberately wrong rule" in txt
    assert "difftest run smoke --mode sv39x4" in txt
    html = Path(p.report["html"]).read_text()
    assert "<tr class=div>" in html
