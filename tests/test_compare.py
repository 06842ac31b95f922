"""Comparator unit tests on hand-made traces (one per mismatch kind)."""
from __future__ import annotations

from difftest.compare import compare, compare_full, odd_one_out, PairResult
from difftest.trace import Footer, Header, Step, Trap, Xlat, write_trace

QEMU_EXPOSES = {"priv": True, "insn": True, "trap.tval": True, "trap.htval": True, "trap.tinst": True,
                "trap.gva": False, "trap.target": True, "xlat.gpa": False, "uart": True}
MODEL_EXPOSES = {k: True for k in ("priv", "insn", "trap.tval", "trap.htval", "trap.tinst", "trap.gva",
                                   "trap.target", "xlat.all", "xlat.gpa", "xlat.walk", "uart")}


def hdr(backend, exposes):
    return Header(guest="g", elf_sha256="0", hgatp_mode="sv39x4", vs_mode="sv39", backend=backend,
                  backend_version="1", cpu="default", cpu_config="x", exposes=dict(exposes))


def base_steps(model: bool):
    """A tiny run: M code, then VS code that loads through both stages, then a guest-page fault."""
    s = [Step(i=0, pc=0x1000, insn=0x297, priv=3, v=0),
         Step(i=1, pc=0x80000000, insn=0x13, priv=3, v=0),
         Step(i=2, pc=0x80000004, insn=0x30200073, priv=3, v=0),
         Step(i=3, pc=0x1000, insn=0x6108, priv=1, v=1,
              xlats=[Xlat("fetch", 0x1000, 1, 1, gpa=0x200000, pa=0x80200000),
                     Xlat("load", 0x2008, 1, 1, gpa=0x201008, pa=0x80201008)]),
         Step(i=4, pc=0x1002, insn=0x6188, priv=1, v=1,
              xlats=[Xlat("load", 0x3000, 1, 1, gpa=0x7fff000, fault_stage="g", fault_cause=21)],
              trap=Trap(cause=21, epc=0x1002, tval=0x3000, htval=0x7fff000 >> 2, tinst=0, gva=True, target="HS")),
         Step(i=5, pc=0x80000100, insn=0x13, priv=1, v=0)]
    if not model:
        # QEMU logs only TLB fills and no GPA; no GVA
        for st in s:
            st.xlats = [Xlat(x.access, x.va, x.priv, x.v, pa=x.pa, fault_stage=x.fault_stage,
                             fault_cause=x.fault_cause) for x in st.xlats if x.access != "fetch"]
            if st.trap:
                st.trap.gva = None
    return s


def pair(mutate_q=None, mutate_m=None, fq=None, fm=None, qexp=QEMU_EXPOSES, mexp=MODEL_EXPOSES):
    q, m = base_steps(False), base_steps(True)
    if mutate_q:
        mutate_q(q)
    if mutate_m:
        mutate_m(m)
    fq = fq or Footer("exit", 0, len(q), uart="P 1 ok\nDONE\n")
    fm = fm or Footer("exit", 0, len(m), uart="P 1 ok\nDONE\n")
    return (hdr("qemu-10.0", qexp), q, fq), (hdr("model", mexp), m, fm)


def test_match_and_compared_lists():
    a, b = pair()
    r = compare(a, b)
    assert r.status == "match", r.summary
    assert r.steps_compared == 6 and r.xlats_compared == 2
    assert "trap.htval" in r.compared and "pc" in r.compared
    assert any(s.startswith("trap.gva") and "qemu-10.0" in s for s in r.not_compared)
    assert any(s.startswith("xlat.gpa") for s in r.not_compared)
    assert any("TLB hits" in s for s in r.not_compared)


def test_traps_the_trap_detail_pass_could_not_match_are_listed_as_not_compared():
    fq = Footer("exit", 0, 6, uart="P 1 ok\nDONE\n",
                extra={"trap_detail": {"traps": 3, "matched": 2, "tinst": 2, "skipped_dumps": 0,
                                       "message": "htinst/mtinst not read (gdbstub: timeout); not compared"}})
    r = compare(*pair(fq=fq))
    assert r.status == "match"
    assert "htval/GVA/target of 1 of 3 qemu-10.0 traps (no handler-entry dump matched)" in r.not_compared
    assert any("gdbstub: timeout" in s for s in r.not_compared)


def test_match_from_files(tmp_path):
    (ha, sa, fa), (hb, sb, fb) = pair()
    write_trace(tmp_path / "a.trace.bin", ha, sa, fa)
    write_trace(tmp_path / "b.trace.bin", hb, sb, fb)
    r = compare(tmp_path / "a.trace.bin", tmp_path / "b.trace.bin")
    assert r.status == "match" and r.steps_compared == 6


def test_control_flow():
    def m(q):
        q[2].pc = 0x80000008
    r = compare(*pair(m))
    assert (r.status, r.kind, r.step, r.pc) == ("mismatch", "control-flow", 2, 0x80000008)
    # a finding's fingerprint: guest|probe|what|pair, no pc or step (difftest/findings.py)
    assert r.fingerprint == "g|-|control-flow pc|qemu-10.0~model@qemu-10.0"
    assert r.steps_compared == 3 and r.steps_skipped == (3, 3) and not r.sled


def test_priv_v_mismatch_is_control_flow():
    def m(q):
        q[3].v = 0
    r = compare(*pair(m))
    assert (r.kind, r.step) == ("control-flow", 3) and "V" in r.summary


def test_trap_field_mismatch():
    def m(q):
        q[4].trap.tval = 0x3004
    r = compare(*pair(m))
    assert (r.kind, r.step) == ("trap", 4) and "tval" in r.summary


def test_htval_mismatch_is_recorded_and_the_comparison_goes_on():
    """difftest/trap_csr.py: a wrong htval changes nothing the guest runs until it reads htval, so it
    is a finding of its own (grouped by field, cause and value class) and does not hide later ones."""
    def m(q):
        q[4].trap.htval = 0
    r = compare(*pair(m))
    assert (r.status, r.kind, r.step) == ("mismatch", "trap-csr", 4)
    (g,) = r.trap_csr
    assert (g["field"], g["cause"], g["target"], g["a"], g["b"], g["count"]) == ("htval", 21, "HS", 0, 0x7fff000 >> 2, 1)
    assert g["fingerprint"] == "g|sv39x4|sv39|qemu-10.0~model|trap.htval|cause=21|0~nz"
    assert r.fingerprint == "g|-|trap.htval cause=21 0~nz|qemu-10.0~model@qemu-10.0"
    assert r.steps_compared == 6                     # to the end

    def later(q):
        q[4].trap.htval = 0
        q[5].pc = 0x80000200                           # and a real divergence after it
    r = compare(*pair(later))
    assert (r.kind, r.step) == ("control-flow", 5) and r.trap_csr[0]["first_step"] == 4
    (f,) = r.findings                                  # one probe ("-": no marks), both parts named
    assert f.what == "control-flow pc + trap.htval cause=21 0~nz"


def test_trap_target_stays_a_hard_divergence():
    def m(q):
        q[4].trap.target = "M"
    r = compare(*pair(m))
    assert (r.kind, r.step, r.trap_csr) == ("trap", 4, [])


def test_unexposed_fields_not_compared():
    def m(q):
        q[4].trap.gva = False          # QEMU does not expose trap.gva: ignored
    assert compare(*pair(m)).status == "match"


def test_first_stage_pa():
    def m(q):
        q[3].xlats[0].pa = 0x80301008   # load translated to another page
    r = compare(*pair(m))
    assert (r.kind, r.step) == ("second-stage", 3)   # QEMU shows no GPA: V=1 final PA => G-stage answer


def test_first_stage_gpa_when_both_show_gpa():
    exp = dict(QEMU_EXPOSES, **{"xlat.gpa": True})
    q, m = base_steps(False), base_steps(True)
    q[3].xlats[0].gpa = 0x301008
    q[3].xlats[0].pa = 0x80201008
    r = compare((hdr("qemu-10.0", exp), q, Footer("exit", 0)), (hdr("model", MODEL_EXPOSES), m, Footer("exit", 0)))
    assert (r.kind, r.step) == ("first-stage", 3) and "GPA" in r.summary


def test_first_stage_fault_missing_in_qemu():
    def mm(m):
        m[3].xlats[1] = Xlat("load", 0x2008, 1, 1, fault_stage="vs", fault_cause=13)
        m[3].trap = Trap(cause=13, epc=0x1000, tval=0x2008, target="HS")
    r = compare(*pair(mutate_m=mm))
    assert (r.status, r.kind, r.step) == ("mismatch", "first-stage", 3)


def test_second_stage_fault_only_in_qemu():
    """The model passes a G-stage check QEMU faults on (e.g. the GPA width check)."""
    def mq(q):
        q[3].xlats[0] = Xlat("load", 0x2008, 1, 1, fault_stage="g", fault_cause=21)
        q[3].trap = Trap(cause=21, epc=0x1000, tval=0x2008, htval=0x201008 >> 2, target="HS")
    r = compare(*pair(mq))
    assert (r.status, r.kind, r.step) == ("mismatch", "second-stage", 3)
    _, div = compare_full(*pair(mq))
    assert div.xlat_a is not None and div.xlat_a.fault_stage == "g"


def test_trap_only_on_one_side_without_translation_is_trap():
    def mq(q):
        q[1].trap = Trap(cause=2, epc=0x80000000, tval=0x13, target="M")
    r = compare(*pair(mq))
    assert (r.kind, r.step) == ("trap", 1)


def test_output():
    r = compare(*pair(fq=Footer("exit", 0, 6, uart="P 1 ok\nDONE\n"), fm=Footer("exit", 0, 6, uart="P 1 bad\nDONE\n")))
    assert (r.status, r.kind) == ("mismatch", "output")


def test_output_step_located_from_model_uart():
    def mm(m):
        m[5].uart = "P 1 bad\n"
    r = compare(*pair(mutate_m=mm, fm=Footer("exit", 0, 6, uart="P 1 bad\n")))
    assert (r.kind, r.step) == ("output", 5)


def test_exit_code():
    r = compare(*pair(fq=Footer("exit", 3, 6, uart="P 1 ok\nDONE\n")))
    assert (r.kind, r.status) == ("exit", "mismatch") and "exit 3" in r.summary


def test_exit_one_side_longer():
    def mq(q):
        q.append(Step(i=6, pc=0x80000104, priv=1, v=0))
    r = compare(*pair(mq))
    assert (r.kind, r.step) == ("exit", 6)


def test_error_crash_after_agreeing_prefix():
    def mq(q):
        del q[4:]
    r = compare(*pair(mq, fq=Footer("crash", None, 4, message="qemu aborted (exit 134)", truncated=True)))
    assert (r.status, r.kind, r.step) == ("error", "error", 4) and "134" in r.summary


def test_mismatch_before_crash_is_mismatch():
    def mq(q):
        q[2].pc = 0x4
        del q[4:]
    r = compare(*pair(mq, fq=Footer("crash", None, 4, truncated=True)))
    # a backend that did not finish is an error (never green), and what differed before it is kept
    assert (r.status, r.kind) == ("error", "error")
    assert [f.what for f in r.findings] == ["control-flow pc"]


def test_unreadable_trace_is_error(tmp_path):
    p = tmp_path / "x.trace.bin"
    p.write_bytes(b"not gzip")
    r = compare(p, p)
    assert r.status == "error" and "not a difftest trace" in r.summary


def _stale_pair(qemu_pa):
    """Step 5 loads GVA 0x2010: the model's translation (now GPA 0x301010 -> 0x80301010) used a PTE
    written since the last fence (maybe_stale); QEMU answered ``qemu_pa``."""
    def mm(m):
        m.insert(5, Step(i=5, pc=0x80000100, priv=1, v=1,
                         xlats=[Xlat("load", 0x2010, 1, 1, gpa=0x301010, pa=0x80301010, maybe_stale=True)]))
        m[6].i = 6

    def mq(q):
        q.insert(5, Step(i=5, pc=0x80000100, priv=1, v=1, xlats=[Xlat("load", 0x2010, 1, 1, pa=qemu_pa)]))
        q[6].i = 6
    return pair(mq, mm)


def test_stale_translation_accepted():
    """The model re-mapped a page (PTE written, no fence yet): QEMU still uses the old mapping."""
    r = compare(*_stale_pair(0x80201010))      # the old answer
    assert r.status == "accepted-stale" and r.accepted_stale == 1
    assert "stale" in r.summary


def test_stale_flag_does_not_excuse_a_new_wrong_answer():
    r = compare(*_stale_pair(0x80999010))      # neither the old nor the new answer
    assert (r.status, r.kind, r.step) == ("mismatch", "second-stage", 5)


def _pr(a, b, status):
    return PairResult(a=a, b=b, status=status)


def test_odd_one_out():
    names = ["qemu-7.2", "qemu-10.0", "model"]
    pairs = [_pr("qemu-7.2", "qemu-10.0", "mismatch"), _pr("qemu-7.2", "model", "mismatch"),
             _pr("qemu-10.0", "model", "match")]
    assert odd_one_out(names, pairs) == "qemu-7.2"
    pairs[2].status = "mismatch"
    assert odd_one_out(names, pairs) is None
    assert odd_one_out(names[:2], pairs[:1]) is None


def test_step_limit_on_one_side_is_error_not_mismatch():
    def mm(m):
        del m[3:]
    r = compare(*pair(mutate_m=mm, fm=Footer("step-limit", None, 3, message="stopped after 3 steps")))
    assert (r.status, r.kind) == ("error", "error") and "step-limit" in r.summary


def test_both_at_step_limit_is_error_not_green():
    r = compare(*pair(fq=Footer("step-limit", None, 6), fm=Footer("step-limit", None, 6)))
    assert (r.status, r.kind, r.step) == ("error", "error", 6) and "step-limit" in r.summary
    assert "6 steps compared" in r.summary


def test_stale_fault_parts_the_runs():
    """The model faults on a page whose PTE was just invalidated without a fence; QEMU's TLB still hits."""
    def mm(m):
        m[5] = Step(i=5, pc=0x80000100, priv=1, v=1,
                    xlats=[Xlat("load", 0x2010, 1, 1, fault_stage="vs", fault_cause=13, maybe_stale=True)],
                    trap=Trap(cause=13, epc=0x80000100, tval=0x2010, target="HS"))

    def mq(q):
        q[5] = Step(i=5, pc=0x80000100, priv=1, v=1)
    r = compare(*pair(mq, mm))
    assert r.status == "accepted-stale" and "stopped" in r.summary


def test_output_compared_from_footers_even_without_step_uart():
    exp = dict(QEMU_EXPOSES, uart=False)
    r = compare(*pair(fq=Footer("exit", 0, 6, uart="A"), fm=Footer("exit", 0, 6, uart="B"), qexp=exp))
    assert r.kind == "output"
    assert any(s.startswith("uart per step") for s in r.not_compared)


def test_m_mode_fill_is_checked_against_identity():
    def mq(q):
        q[1].xlats = [Xlat("fetch", 0x80000000, 3, 0, pa=0x80000000)]
    r = compare(*pair(mq))
    assert r.status == "match" and r.xlats_compared == 3 and r.xlats_unmatched == 0

    def bad(q):
        q[1].xlats = [Xlat("fetch", 0x80000000, 3, 0, pa=0x90000000)]
    r = compare(*pair(bad))
    assert (r.kind, r.step) == ("first-stage", 1)


def test_two_logging_backends_compare_common_fills():
    q1, q2 = base_steps(False), base_steps(False)
    q2[3].xlats[0].pa = 0x80301008
    r = compare((hdr("qemu-7.2", QEMU_EXPOSES), q1, Footer("exit", 0)),
                (hdr("qemu-10.0", QEMU_EXPOSES), q2, Footer("exit", 0)))
    assert (r.status, r.kind, r.step) == ("mismatch", "second-stage", 3)
    assert any("both sides logged" in c for c in r.compared)


def test_control_flow_after_trap_names_uncompared_trap_fields():
    def mq(q):
        q[5].pc = 0x80000104
    r = compare(*pair(mq))
    assert r.kind == "control-flow" and "trap at step 4" in r.summary and "gva" in r.summary


def test_model_per_qemu_profile_names_and_pairs():
    from difftest.engine import case_pairs, expand_backends
    assert expand_backends(["qemu-10.0", "model"]) == ["qemu-10.0", "model"]
    assert expand_backends(["model"]) == ["model"]
    names = expand_backends(["qemu-7.2", "qemu-10.0", "model"])
    assert names == ["qemu-7.2", "qemu-10.0", "model@qemu-7.2", "model@qemu-10.0"]
    assert case_pairs(names) == [("qemu-7.2", "qemu-10.0"), ("qemu-7.2", "model@qemu-7.2"),
                                 ("qemu-10.0", "model@qemu-10.0")]
    # an explicit model@X is kept as asked and compared with X only
    assert case_pairs(expand_backends(["qemu-10.0", "model@qemu-7.2"])) == [("qemu-10.0", "model@qemu-7.2")]
    assert case_pairs(["qemu-7.2", "qemu-10.0", "model"]) == [("qemu-7.2", "qemu-10.0"), ("qemu-7.2", "model"),
                                                              ("qemu-10.0", "model")]


def test_odd_one_out_over_qemus_and_their_models():
    from difftest.engine import case_odd_one_out, profile_choice_note
    names = ["qemu-7.2", "qemu-10.0", "model@qemu-7.2", "model@qemu-10.0"]

    def pairs(qq, q7, q10):
        return [_pr("qemu-7.2", "qemu-10.0", qq), _pr("qemu-7.2", "model@qemu-7.2", q7),
                _pr("qemu-10.0", "model@qemu-10.0", q10)]
    # QEMU 7.2 disagrees with QEMU 10.0 and with the model making 7.2's choices
    assert case_odd_one_out(names, pairs("mismatch", "mismatch", "match")) == "qemu-7.2"
    # the QEMUs agree, each disagrees with its model: the model is the odd one out
    assert case_odd_one_out(names, pairs("match", "mismatch", "mismatch")) == "model"
    # the QEMUs differ but each matches its own profile: a spec-allowed choice, nobody is odd
    p = pairs("mismatch", "match", "accepted-stale")
    assert case_odd_one_out(names, p) is None
    assert "spec leaves to the implementation" in profile_choice_note(names, p)
    assert profile_choice_note(names, pairs("mismatch", "mismatch", "match")) == ""
