"""Compare every run to its end: after a divergence the comparison re-synchronises at the guests'
probe marks, and every probe's difference is a finding of its own (difftest/findings.py).

Hand-made traces for the mechanism; a real guest on real QEMU 10.0 against a model with two
independent deliberate bugs (one early, one late) for the promise itself."""
from __future__ import annotations

import pytest

from difftest import findings as F
from difftest import known as K
from difftest.compare import compare
from difftest.engine import run_case
from difftest.trace import Footer, Header, Step, Trap
from refmodel import mmu, trap_entry

SLED = 0x90000000
QEXP = {"priv": True, "trap.tval": True, "trap.htval": True, "trap.gva": True}
MEXP = dict(QEXP, **{"xlat.all": True, "insn": True})


def mark(kind, pid):
    return SLED + 4 * (kind * 4096 + pid)


def hdr(backend, exp):
    return Header(guest="g", elf_sha256="0", hgatp_mode="sv39x4", vs_mode="bare", backend=backend,
                  backend_version="1", cpu="default", cpu_config="qemu-10.0", exposes=dict(exp),
                  extra={"probe_sled": [SLED, 12291]})


def probe_steps(pid, body):
    """start mark, the body's pcs (ints) or Steps, print mark, two printing steps, end mark."""
    out = [Step(0, mark(0, pid))]
    for b in body:
        out.append(b if isinstance(b, Step) else Step(0, b))
    out += [Step(0, mark(1, pid)), Step(0, 0x80001000), Step(0, 0x80001004), Step(0, mark(2, pid))]
    return out


def run(*probes):
    steps = [Step(0, 0x80000000)]
    for p in probes:
        steps += p
    for i, s in enumerate(steps):
        s.i = i
    return steps


def test_two_divergences_in_two_probes_are_two_findings_and_the_rest_is_compared():
    ok = [0x80002000, 0x80002004]
    q = run(probe_steps(1, ok), probe_steps(2, [0x80002000, Step(0, 0x80002004, trap=Trap(13, epc=0x80002004, tval=8))]),
            probe_steps(3, ok), probe_steps(4, [0x80003000, 0x80003004, 0x80003008]), probe_steps(5, ok))
    m = run(probe_steps(1, ok), probe_steps(2, [0x80002000, Step(0, 0x80002004, trap=Trap(21, epc=0x80002004, tval=8))]),
            probe_steps(3, ok), probe_steps(4, [0x80003000, 0x80003100]), probe_steps(5, ok))
    r = compare((hdr("qemu-10.0", QEXP), q, Footer("exit", 0, len(q))), (hdr("model", MEXP), m, Footer("exit", 0, len(m))))
    assert r.status == "mismatch"
    assert [(f.probe, f.what) for f in r.findings] == [("2", "trap 13~21"), ("4", "control-flow pc")]
    assert r.findings[0].fingerprint == "g|2|trap 13~21|qemu-10.0~model@qemu-10.0"
    assert r.resyncs == 2
    # probe 2: its start..trap step compared, the rest of it skipped; probe 4 likewise; all else compared
    assert r.steps_run == len(q) and r.steps_compared + r.steps_skipped[0] + r.steps_printing[0] == len(q)
    assert r.steps_compared >= len(q) - 12


def test_a_failing_self_check_is_its_x_line_and_its_consequences_are_folded():
    q = run(probe_steps(7, [0x80002000, 0x80002004]), [Step(0, mark(0, 4096)), Step(0, 0x80005000)])
    m = run(probe_steps(7, [0x80002000, 0x80002004]), [Step(0, mark(0, 4096)), Step(0, 0x80005000)])
    # the self-check branch parts after the print mark: QEMU prints an X line
    q[-5].pc = 0x80001100
    xq = ("P 7 ram ld va=0x1000 mode=VS trap cause=21 tval=0x1000 htval=0x400 tinst=0x0 gva=0 to=M\n"
          "X 7 expected trap cause=21 tval=0x1000 htval=0|0x400 tinst=0|0x3583 gva=1 to=M\n"
          "DONE probes=1 fails=1\n")
    xm = ("P 7 ram ld va=0x1000 mode=VS trap cause=21 tval=0x1000 htval=0x400 tinst=0x0 gva=1 to=M\n"
          "DONE probes=1 fails=0\n")
    r = compare((hdr("qemu-10.0", QEXP), q, Footer("exit", 1, len(q), uart=xq)),
                (hdr("model", MEXP), m, Footer("exit", 0, len(m), uart=xm)))
    (f,) = r.findings
    assert (f.probe, f.what, f.kind) == ("7", "Xa(gva=0)", "selfcheck")
    assert any("self-check branch" in x for x in f.folded) and any("exit codes 1 vs 0" in x for x in f.folded)
    assert r.steps_printing[0] >= 1 and r.steps_skipped == (0, 0)


def test_x_line_fields():
    x = "X 41 expected trap cause=22 tval=any htval=0x0 tinst=any gva=0 to=M"
    p = "P 41 vu-hsv hsv.d va=0x80001000 mode=VU trap cause=2 tval=0x6eb54073 htval=0x0 tinst=0x0 gva=1 to=M"
    assert F.selfcheck_fields(x, p) == "cause=2,gva=1"
    own = "X 2 expected the write ignored or a legal MODE (0, 8, 9, 10) got read=0x1000700000080456"
    assert F.selfcheck_fields(own) == "read=nz"
    assert F.selfcheck_fields("X hgatp PPN[1:0] must read as zero 0x1234") == "hgatp PPN[1:0] must read as zero #"


def test_model_self_check_failure_is_a_finding_that_no_entry_can_explain():
    (f,) = F.model_findings("g", "model@qemu-10.0", "exit", 1, "P 3 x ld va=0x0 mode=VS ok val=0x2\nX 3 expected ok val=0x1\n")
    assert (f.probe, f.what, f.b) == ("3", "Xa(val=nz)", "guest")
    (f,) = F.model_findings("g", "model@qemu-10.0", "exit", 3, "DONE probes=1 fails=0\n")
    assert f.what == "exit 3"
    assert F.model_findings("g", "model@qemu-10.0", "exit", 200, "a program of its own\n") == []


def test_known_entries_list_their_findings_exactly(tmp_path):
    p = tmp_path / "k.toml"
    p.write_text('[[divergence]]\nid="e"\nbackend="qemu-10.0"\nversions="10.0"\nrule="Priv. x"\nevidence="y"\n'
                 'findings=["g|2,4-5|trap 13~21|qemu-10.0~model@qemu-10.0"]\n')
    (k,) = K.load(p)
    assert K.classify("g", "4", "trap 13~21", "qemu-10.0~model@qemu-10.0", [k]) is k
    assert K.classify("g", "3", "trap 13~21", "qemu-10.0~model@qemu-10.0", [k]) is None      # unlisted probe
    assert K.classify("g", "4", "trap 13~20", "qemu-10.0~model@qemu-10.0", [k]) is None      # other cause
    k.seen.add(("g", "2", "trap 13~21", "qemu-10.0~model@qemu-10.0"))
    st, missing = K.fixed_status(k, lambda g, pair: True)
    assert st == "partly fixed" and missing == ["g|4|trap 13~21|qemu-10.0~model@qemu-10.0",
                                                "g|5|trap 13~21|qemu-10.0~model@qemu-10.0"]
    p.write_text(p.read_text().replace('findings=["g', 'findings=["*'))
    with pytest.raises(K.KnownError, match="without wildcards"):
        K.load(p)


def test_the_catalogue_is_well_formed():
    assert K.lint() == []


# ---------------------------------------------------------------------------
# a real guest, real QEMU 10.0, a model with two independent deliberate bugs

EARLY_PAGE = 0x100000000 >> 12        # gstage_basic probes 10-12 (leaf-4k ld/sd/amoadd at va 0x100000010)


def _two_bugs(monkeypatch):
    g_translate = mmu._Walker.g_translate

    def wrong_g(self, gpa, access, implicit):       # bug 1: a valid G-stage leaf refused for one page
        if gpa >> 12 == EARLY_PAGE and not implicit and access != "fetch":
            raise mmu._Fail("page", "g", gpa=gpa)
        return g_translate(self, gpa, access, implicit)

    take_trap = trap_entry.TrapEntry.take_trap if hasattr(trap_entry, "TrapEntry") else None
    assert take_trap is not None, "refmodel.trap_entry.TrapEntry.take_trap moved"

    def wrong_trap(self, e, pc, insn=None):          # bug 2: GVA left 0 on store guest-page faults
        if e.cause == 23:
            e.gva, saved = False, self.acc_v
            self.acc_v = 0
            try:
                return take_trap(self, e, pc, insn)
            finally:
                self.acc_v = saved
        return take_trap(self, e, pc, insn)

    monkeypatch.setattr(mmu._Walker, "g_translate", wrong_g)
    monkeypatch.setattr(trap_entry.TrapEntry, "take_trap", wrong_trap)


def test_an_early_bug_does_not_hide_a_late_one(tmp_path, monkeypatch):
    _two_bugs(monkeypatch)
    c = run_case("gstage_basic", hgatp_mode="sv39x4", vs_mode="bare", backends=["qemu-10.0", "model"],
                 out_dir=tmp_path, timeout=120, max_steps=2_000_000, use_cache=False)
    (p,) = c.pairs
    by_probe = {f.probe: f.what for f in p.findings}
    assert "trap none~21" in by_probe.get("10", "") or "xlat.fault" in by_probe.get("10", ""), by_probe
    assert "trap.gva cause=23 1~0" in by_probe.get("101", ""), by_probe       # 90 probes later
    assert p.resyncs >= 2 and p.steps_compared > 0.9 * p.steps_run


def test_a_self_check_failing_on_the_model_is_never_green(tmp_path, monkeypatch):
    """A model patched to keep hgatp.PPN[1:0] writable -- exactly as both QEMUs do -- makes hgatp_probe's
    self-check fail on every backend.  The pairs then agree, but the model failing its guest's check is
    a finding of its own (a model error or a wrong expectation), so the case is no match."""
    from refmodel import warl
    good = warl.legalise_hgatp

    def keeps_low_ppn_bits(old, new, profile):
        return good(old, new, profile) | (new & 3)
    monkeypatch.setattr(warl, "legalise_hgatp", keeps_low_ppn_bits)
    import refmodel.csr as csr_mod
    if hasattr(csr_mod, "legalise_hgatp"):
        monkeypatch.setattr(csr_mod, "legalise_hgatp", keeps_low_ppn_bits)
    c = run_case("hgatp_probe", backends=["model"], out_dir=tmp_path, timeout=120, max_steps=2_000_000,
                 use_cache=False)
    assert c.status == "mismatch"
    assert c.findings and all(f.b == "guest" and f.kind == "selfcheck" for f in c.findings)
    assert any("PPN[1:0]" in line for f in c.findings for line in f.lines)
