"""The stale-translation rule (Priv. 10.3.2 / 9.3.2; difftest/compare_step.py) explains a fault one
side took and the other did not, or a fault through a translation the model marks maybe-stale -- not
two faults of the same address through fresh walks that differ only in cause.  riscv-tests
rv64ua-v-lrsc on QEMU 7.2: an amoadd.w to an unmapped page, QEMU load page fault 13 (its AMO-as-load
bug), model store/AMO page fault 15; the instruction's own fetch translation was maybe-stale (the env
had just remapped code pages), and that alone made the step "accepted-stale".  Hand-made steps
(a comparator unit test)."""
from __future__ import annotations

from test_compare import compare, pair

from difftest.trace import Step, Trap, Xlat


def _amo_fault(model_fault_stale: bool):
    def mm(m):
        m[5] = Step(i=5, pc=0x29a4, priv=0, v=0,
                    xlats=[Xlat("fetch", 0x29a4, 0, 0, pa=0x8006b9a4, maybe_stale=True),
                           Xlat("store", 0x3000, 0, 0, fault_stage="s", fault_cause=15,
                                maybe_stale=model_fault_stale)],
                    trap=Trap(cause=15, epc=0x29a4, tval=0x3000, target="HS"))

    def mq(q):
        q[5] = Step(i=5, pc=0x29a4, priv=0, v=0,
                    xlats=[Xlat("load", 0x3000, 0, 0, fault_stage="s", fault_cause=13)],
                    trap=Trap(cause=13, epc=0x29a4, tval=0x3000, target="HS"))
    return pair(mq, mm)


def test_two_fresh_faults_of_one_address_with_different_causes_are_a_mismatch():
    r = compare(*_amo_fault(model_fault_stale=False))
    assert (r.status, r.step) == ("mismatch", 5)
    assert [f.what for f in r.findings] == ["trap 13~15"]


def test_a_fault_through_a_maybe_stale_translation_is_still_accepted():
    r = compare(*_amo_fault(model_fault_stale=True))
    assert r.status == "accepted-stale"
