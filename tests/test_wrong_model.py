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

import re
from pathlib import Path

import pytest

from difftest.engine import run_case
from difftest.trace import read_trace
from refmodel import mmu
from test_e2e_gstage import build_guest

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


@pytest.mark.parametrize("mode", ["sv39x4", "sv57x4"])
def test_wrong_rule_caught_on_hand_made_guest(mode, tmp_path, monkeypatch):
    elf = build_guest(tmp_path, mode)
    # the log source: the report quotes QEMU's own mmu lines beside the model's walk
    good = run_case(elf, backends=["qemu-10.0", "model"], out_dir=tmp_path / "good", timeout=60, max_steps=10_000,
                    qemu_trace="log")
    assert good.status == "match", good.pairs[0].summary
    expect_step = _first_g_stage_step(good.runs["model"].trace_path)
    _break_u_rule(monkeypatch)
    bad = run_case(elf, backends=["qemu-10.0", "model"], out_dir=tmp_path / "bad", timeout=60, max_steps=10_000,
                   qemu_trace="log")
    p = bad.pairs[0]
    assert (bad.status, p.kind, p.step) == ("mismatch", "second-stage", expect_step), p.summary
    txt = Path(p.report["txt"]).read_text()
    assert "deliberately wrong rule" in txt and "2nd-stage" in txt      # the model's walk and QEMU's own lines
    assert "difftest run " + str(elf) in txt


def test_wrong_g_stage_u_rule_is_caught(tmp_path, monkeypatch):
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
    # a finding: guest|probe|what|pair, the model named by its QEMU profile (difftest/findings.py)
    f = p.findings[0]
    assert p.fingerprint == f"{GUEST}|{f.probe}|{f.what}|qemu-7.2~model@qemu-7.2" and f.kind == "second-stage"
    assert "xlat.fault" in f.what or "trap" in f.what
    # the report shows the model's walk with the rule that decided, and how to reproduce
    txt = Path(p.report["txt"]).read_text()
    assert f"second-stage mismatch at step {expect_step}" in txt
    assert "deliberately wrong rule" in txt
    assert "difftest run smoke --mode sv39x4" in txt
    html = Path(p.report["html"]).read_text()
    assert "<tr class=div>" in html


# --- the two G-stage rules of issue 3: the widened root index and the GPA-width check -------------
# Priv. 20240411, 9.5.1 "Guest physical address translation": for Sv39x4/Sv48x4/Sv57x4 the root
# page table is 16 KiB and its index is widened by 2 bits (GPA[40:30] for Sv39x4), and "bits 63:41
# (63:50, 63:59) must all be zeros, or else a guest-page fault occurs".  The gpa_width guest sets
# every GPA bit alone, so each broken rule first shows at the probe of one particular bit; QEMU
# 10.0 and the correct model agree on this guest in sv39x4 and sv48x4 (checked first).

WIDTH_GUEST = "gpa_width"


def _g_width(mode: str) -> int:
    return 12 + 9 * {"sv39x4": 3, "sv48x4": 4, "sv57x4": 5}[mode] + 2


def _gpa(x) -> int:
    # gpa_width runs with vsatp Bare: the GPA is the guest virtual address
    return x.gpa if x.gpa is not None else x.va


def _first_step(trace_path, pred) -> int:
    _, steps, _ = read_trace(trace_path)
    for s in steps:
        if any(x.v and pred(_gpa(x)) for x in s.xlats):
            return s.i
    raise AssertionError("no translation of the kind the broken rule affects")


def _break_stage(monkeypatch, *, root_extra=None, addr_bits=None):
    """Replace refmodel.mmu.Stage for the G-stage only: ``root_extra`` changes the root index
    width the walk uses, ``addr_bits`` the GPA width the check uses (each leaves the other)."""
    Stage = mmu.Stage

    class WrongG(Stage):
        @property
        def addr_bits(self) -> int:
            return addr_bits if addr_bits is not None else 12 + 9 * self.levels + 2

    def make(name, levels, extra):
        if name != "g":
            return Stage(name, levels, extra)
        return WrongG(name, levels, extra if root_extra is None else root_extra)

    monkeypatch.setattr(mmu, "Stage", make)


def _good_then_bad(tmp_path, monkeypatch, mode, pred, **broken):
    good = run_case(WIDTH_GUEST, hgatp_mode=mode, backends=["qemu-10.0", "model"], out_dir=tmp_path / "good",
                    timeout=120, max_steps=1_000_000)
    expect = _first_step(good.runs["model"].trace_path, pred)
    # the correct model agrees with QEMU 10.0 at least past the step the broken rule affects
    # (on the committed model the whole run matches)
    g = good.pairs[0]
    assert good.status == "match" or (g.step is not None and g.step > expect), g.summary
    _break_stage(monkeypatch, **broken)
    bad = run_case(WIDTH_GUEST, hgatp_mode=mode, backends=["qemu-10.0", "model"], out_dir=tmp_path / "bad",
                   timeout=120, max_steps=1_000_000)
    p = bad.pairs[0]
    assert (bad.status, p.kind, p.step) == ("mismatch", "second-stage", expect), p.summary
    # compared to the end: every probe the wrong rule touches is a finding; the first is this one
    f = p.findings[0]
    assert p.fingerprint == f"{WIDTH_GUEST}|{f.probe}|{f.what}|qemu-10.0~model@qemu-10.0"
    assert "xlat.fault load ok~g21" in f.what
    txt = Path(p.report["txt"]).read_text()
    assert f"second-stage mismatch at step {expect}" in txt
    assert f"difftest run {WIDTH_GUEST} --mode {mode}" in txt
    return p, txt


def test_narrow_root_index_is_caught(tmp_path, monkeypatch):
    """Wrong: the G-stage root is indexed like a 4 KiB table (9 bits), dropping GPA bits 40:39."""
    mode = "sv39x4"
    w = _g_width(mode)
    p, txt = _good_then_bad(tmp_path, monkeypatch, mode, lambda gpa: gpa < 1 << w and gpa >> (w - 2),
                            root_extra=0)
    # the model's G-stage walk is shown from its (wrongly indexed) root, level 2 for Sv39x4
    assert re.search(r"^\s+G\s+2\s+0x[0-9a-f]+\s+0x[0-9a-f]{16}\s+pointer", txt, re.M), txt


def test_narrow_gpa_width_check_is_caught(tmp_path, monkeypatch):
    """Wrong: the GPA-width check uses the VA width of Sv48 (48 bits) instead of Sv48x4's 50, so
    the valid, mapped GPAs with bit 48 or 49 set take a guest-page fault.  (Dropping the check
    altogether is invisible to this guest: the aliased GPA, low bits only, is unmapped too.)"""
    mode = "sv48x4"
    w = _g_width(mode)
    p, txt = _good_then_bad(tmp_path, monkeypatch, mode, lambda gpa: gpa < 1 << w and gpa >> (w - 2),
                            addr_bits=w - 2)
    assert f"GPA bits above {w - 2} set" in txt       # the model's account of its (wrong) fault


def test_spvp_written_from_v0_is_caught(tmp_path, monkeypatch):
    """Issue 14: every field trap entry writes is compared.  H "Trap Entry": a trap into HS writes
    hstatus.SPVP only when V was 1.  A model that also writes it from V=0 ran the whole nightly green
    while only htval/tinst/GVA were compared; with Trap.fields it is a finding of the probes whose
    HS traps from V=0 change SPVP (trap_stale has seven such traps)."""
    from refmodel import csr as C
    from refmodel.trap_entry import TrapEntry, status_fields

    def cls(case):
        return {f.what for p in case.pairs for f in p.findings if "SPVP" in f.what}

    good = run_case("trap_stale", backends=["qemu-10.0", "model"], out_dir=tmp_path / "good", timeout=120)
    assert cls(good) == set()
    original = TrapEntry.take_trap

    def wrong(self, e, pc, insn=None):
        priv, v = self.priv, self.v
        t = original(self, e, pc, insn)
        if t.target == "HS" and not v:       # deliberately wrong: SPVP written from V=0 too
            c = self.csr
            c[0x600] = (c[0x600] & ~C.H_SPVP) | (C.H_SPVP if priv else 0)
            t.fields = status_fields("HS", c[0x300], c[0x600], None)
        return t

    monkeypatch.setattr(TrapEntry, "take_trap", wrong)
    bad = run_case("trap_stale", backends=["qemu-10.0", "model"], out_dir=tmp_path / "bad", timeout=120)
    found = cls(bad)
    assert found and all("trap.hstatus.SPVP cause=" in w for w in found), found
