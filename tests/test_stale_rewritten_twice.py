"""The stale rule when a PTE is written twice without a covering fence (riscv-hyp-tests' hfence_test:
a G-stage PTE swapped, HFENCE.VVMA -- which orders no G-stage store -- and swapped back).  The model's
answer between the two writes was itself maybe-stale, yet it is what the PTE held then, so a TLB may
have cached it (Priv. 20240411 10.3.2 / H "Hypervisor Memory-Management Fence Instructions"): QEMU
answering it after the second write is a permitted stale translation, not a finding.  Any other answer
still is one.  Bulk pass and step-by-step loop agree (test_compare_bulk.assert_same), with the earlier
answer a chunk back so the bulk pass's lazy column lookup is what finds it."""
from __future__ import annotations

import pytest

import test_compare as tc
from test_compare_bulk import assert_same
from difftest import tracebin
from difftest.trace import Footer, Step, Xlat, write_trace

OLD, MID, ODD = 0x80201010, 0x80301010, 0x80401010


def _run(model: bool, n: int, qemu_last: int):
    s = []
    for i in range(n):
        xl = []
        if i == 3:      # first access: the PTE as it was
            xl = [Xlat("load", 0x5010, 1, 1, gpa=0x205010, pa=OLD)]
        if i == 10:     # the PTE rewritten, no fence: the model walks it (maybe-stale), QEMU too
            xl = [Xlat("load", 0x5010, 1, 1, gpa=0x205010, pa=MID, maybe_stale=True)] if model else \
                [Xlat("load", 0x5010, 1, 1, pa=MID)]
        if i == n - 5:  # rewritten back, still no fence: the model answers OLD, QEMU ``qemu_last``
            xl = [Xlat("load", 0x5010, 1, 1, gpa=0x205010, pa=OLD, maybe_stale=True)] if model else \
                [Xlat("load", 0x5010, 1, 1, pa=qemu_last)]
        s.append(Step(i, 0x1000 + 4 * (i % 100), insn=0x13, priv=1, v=1, xlats=xl))
    return s


@pytest.mark.parametrize("qemu_last,want", [(MID, "accepted-stale"), (OLD, "match"), (ODD, "mismatch")])
def test_answer_between_two_unfenced_writes_is_a_permitted_stale_translation(tmp_path, qemu_last, want):
    n = tracebin.CHUNK + 50
    fq = Footer("exit", 0, n)
    pa, pb = tmp_path / "q.trace.bin", tmp_path / "m.trace.bin"
    write_trace(pa, tc.hdr("qemu-10.0", tc.QEMU_EXPOSES), _run(False, n, qemu_last), fq)
    write_trace(pb, tc.hdr("model", tc.MODEL_EXPOSES), _run(True, n, qemu_last), fq)
    p = assert_same(pa, pb)
    assert p.status == want, p.summary
    if want == "accepted-stale":
        assert p.accepted_stale == 1
    if want == "mismatch":
        assert (p.kind, p.step) == ("second-stage", n - 5)
