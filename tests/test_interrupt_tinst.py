"""What trap entry writes on an *interrupt* is compared for QEMU as for an exception (issue 12): Priv.
20240411 3.1.16 and H "Trap Entry" -- mtinst/htinst are written with zero on an interrupt, htval/mtval2
too, GVA 0.  QEMU 7.2's trap-detail pass (-d cpu dumps and gdbstub reads at the handler entries) and
QEMU 10.0's plugin (register reads at the first instruction after a trap) both read them for the
13 interrupts of guest `interrupts` (M, HS and VS level); before, 7.2 read none of an interrupt's
entry values and 10.0 no tinst.  A model that writes a wrong mtinst on interrupt entry is caught."""
from __future__ import annotations

import pytest

from difftest import engine
from difftest.trace import TraceReader
from refmodel.hart import Hart

QEMUS = ("qemu-7.2", "qemu-10.0")


def _interrupt_traps(path):
    r = TraceReader(path)
    try:
        return [st.trap for st in r.steps() if st.trap is not None and st.trap.interrupt]
    finally:
        r.close()


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    return engine.run_case("interrupts", backends=[*QEMUS, "model"], out_dir=tmp_path_factory.mktemp("tinst"))


@pytest.mark.parametrize("qemu", QEMUS)
def test_qemu_interrupt_entry_values_are_read(case, qemu):
    traps = _interrupt_traps(case.runs[qemu].trace_path)
    model = _interrupt_traps(case.runs[f"model@{qemu}"].trace_path)
    assert len(traps) == len(model) >= 10 and {t.target for t in traps} == {"M", "HS", "VS"}
    for t, m in zip(traps, model):
        assert (t.cause, t.target) == (m.cause, m.target)
        if t.target == "VS":            # VS-mode has no htval/htinst/GVA: none, as in the model
            assert (t.tinst, t.htval, t.gva) == (None, None, None)
        else:
            assert (t.tinst, t.htval, t.gva) == (0, 0, False) and t.fields == m.fields
    td = (case.runs[qemu].footer.extra or {}).get("trap_detail")
    if td is not None:                   # the log source's pass: every trap's entry matched
        assert td["matched"] == td["traps"] and td["skipped_dumps"] == 0
    pair = next(p for p in case.pairs if (p.a, p.b) == (qemu, f"model@{qemu}"))
    assert pair.status == "match" and not any("interrupt" in x for x in pair.not_compared)


def test_a_model_writing_a_nonzero_mtinst_on_interrupt_entry_is_caught(monkeypatch, tmp_path):
    real = Hart.take_interrupt

    def wrong(self, cause, target, pc):
        t = real(self, cause, target, pc)
        if target == "M":
            t.tinst = 0x3000              # as if the model wrote a pseudoinstruction
        return t
    monkeypatch.setattr(Hart, "take_interrupt", wrong)
    c = engine.run_case("interrupts", backends=[*QEMUS, "model"], out_dir=tmp_path)
    for q in QEMUS:
        pair = next(p for p in c.pairs if (p.a, p.b) == (q, f"model@{q}"))
        assert pair.status == "mismatch"
        whats = {f.what for f in pair.findings}
        assert any("trap.tinst cause=3 0~nz" in w for w in whats) and any("trap.tinst cause=7 0~nz" in w
                                                                          for w in whats), whats
