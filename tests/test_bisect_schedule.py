"""Every model re-run follows its run's interrupt points and platform (issue 12): `difftest bisect
first-divergence` against real QEMU 7.2 and 10.0 on the guest `interrupts` (13 interrupts: M, HS and
VS level) and on ptest_bigram (needs --ram 256M), and the report's walk re-run (model.hart_at).
Before, bisect's model took an interrupt at the first step it was pending and enabled, so with the
real difference of that guest set aside it reported a false pc divergence at step 1349 (the model
alone took MTI at 1348, QEMU at 1350); ptest_bigram was refused (no --ram); a tohost program's QEMU
ran to the --timeout."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from difftest import bisect as B
from difftest import engine
from difftest.backends import model as M
from difftest.trace import TraceReader

ROOT = Path(__file__).resolve().parent.parent
QEMUS = ("qemu-7.2", "qemu-10.0")


def _difftest(*a, timeout=600):
    return subprocess.run([sys.executable, "-m", "difftest", *a], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def interrupts_case(tmp_path_factory):
    """The guest `interrupts` run by the engine on both QEMUs and their models: the schedules."""
    return engine.run_case("interrupts", backends=["qemu-7.2", "qemu-10.0", "model"],
                           out_dir=tmp_path_factory.mktemp("irq"))


@pytest.mark.parametrize("qemu", QEMUS)
def test_bisect_follows_every_interrupt_of_its_qemu(qemu, interrupts_case):
    r = _difftest("bisect", "first-divergence", "interrupts", "--backend", qemu, "--all", "--json")
    # both QEMUs delegate mideleg bit 13 (LCOFI): a WARL choice each model holds its QEMU to
    # (profile.mideleg_extra), so no register differs -- before, that bit was the one state difference
    assert r.returncode == 0, r.stdout + r.stderr
    d = json.loads(r.stdout)
    sched = engine.interrupt_schedule(interrupts_case.runs[qemu].trace_path)
    assert len(sched) >= 10
    assert d["interrupts_followed"] == len(sched)
    assert d["steps_compared"] == interrupts_case.runs[qemu].footer.steps     # to the end
    assert not d.get("diffs") and not d.get("later"), d


def test_an_interrupt_qemu_took_that_the_model_has_not_pending_is_the_divergence(monkeypatch):
    """A QEMU interrupt at step 10 (injected into the real QEMU states: nothing is pending and
    enabled in the model there -- mie is 0) is reported at that step as interrupt 7 ~ none."""
    real = B.qemu_states

    def injected(*a, **k):
        for i, q in enumerate(x for x in real(*a, **k) if "interrupt" not in x):
            if i == 10:
                yield {"interrupt": 7, "epc": q["pc"]}
            yield q
    monkeypatch.setattr(B, "qemu_states", injected)
    _, elf = engine.resolve_guest("interrupts")
    d = B.first_state_divergence(elf, backend="qemu-10.0")
    assert (d.step, d.diffs) == (10, {"interrupt": (7, None)})
    assert "the model none" in B._fmt(d, "qemu-10.0")


def test_an_interrupt_qemu_did_not_report_is_not_absorbed(monkeypatch, interrupts_case):
    """Without QEMU's interrupt lines the model holds its pending interrupt back (as when QEMU takes
    it later) while QEMU's dumps go on in the handler: the first interrupt step is the divergence,
    never skipped over as a fetch fault."""
    real = B.qemu_states
    monkeypatch.setattr(B, "qemu_states", lambda *a, **k: (q for q in real(*a, **k) if "interrupt" not in q))
    _, elf = engine.resolve_guest("interrupts")
    first = min(engine.interrupt_schedule(interrupts_case.runs["qemu-10.0"].trace_path))
    d = B.first_state_divergence(elf, backend="qemu-10.0", keep_going=True)
    stops = [(d.step, d.diffs)] + [(s, df) for s, _, df in d.later]
    assert stops[-1][0] == first and "pc" in stops[-1][1]


@pytest.mark.parametrize("qemu", QEMUS)
def test_bisect_takes_the_run_ram_and_stops_at_tohost(qemu):
    r = _difftest("bisect", "first-divergence", "ptest_bigram", "--backend", qemu)
    assert r.returncode == 125 and "--ram" in r.stderr         # 128 MiB: the ELF does not fit (as `run`)
    run = _difftest("run", "ptest_bigram", "--ram", "256M", "--backend", f"{qemu},model", "--json")
    assert run.returncode == 0, run.stdout + run.stderr
    steps = json.loads(run.stdout)[0]["pairs"][0]["steps_compared"]
    t0 = time.monotonic()
    r = _difftest("bisect", "first-divergence", "ptest_bigram", "--backend", qemu, "--ram", "256M", "--json")
    took = time.monotonic() - t0
    assert r.returncode == 0, r.stdout + r.stderr
    d = json.loads(r.stdout)
    assert d["platform"]["ram_size"] == "256M" and d["steps_compared"] == steps
    assert took < 60            # QEMU stopped at the tohost write, not at the 120 s --timeout


def test_walk_rerun_follows_the_run_interrupts(interrupts_case):
    """The report's walk re-run stands where the compared model run stood: at a step after an
    interrupt, the re-run hart's pc is the synchronised trace's; without the schedule it is not."""
    sched = interrupts_case.irq_schedules["model@qemu-10.0"]
    k = sorted(sched)[1] + 1                       # just after QEMU's (late) MTI
    r = TraceReader(interrupts_case.runs["model@qemu-10.0"].trace_path)
    try:
        pc = next(st.pc for st in r.steps() if st.i == k)
    finally:
        r.close()
    prof = M.profile_for("default", like="qemu-10.0")
    elf = interrupts_case.elf
    assert M.hart_at(elf, k, profile=prof, irq_schedule=sched, irq_bound=engine.IRQ_BOUND).pc == pc
    assert M.hart_at(elf, k, profile=prof).pc != pc


def test_a_qemu_run_cut_at_the_timeout_is_said():
    """QEMU stopped at --timeout before the program ended: the comparison covers only its first
    steps, and the result says so rather than passing silently."""
    _, elf = engine.resolve_guest("interrupts")
    d = B.first_state_divergence(elf, backend="qemu-10.0", timeout=0.01)
    assert d.qemu_cut and d.step is None
    assert "stopped at --timeout" in B._fmt(d, "qemu-10.0")
    full = B.first_state_divergence(elf, backend="qemu-10.0", keep_going=True)
    assert not full.qemu_cut and "stopped at --timeout" not in B._fmt(full, "qemu-10.0")
    r = _difftest("bisect", "first-divergence", "interrupts", "--backend", "qemu-10.0", "--timeout", "0.01")
    assert r.returncode == 125 and "stopped at --timeout" in r.stdout      # not a match: nothing compared
