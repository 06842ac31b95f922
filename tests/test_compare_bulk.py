"""The bulk comparator (difftest.compare_bulk, on binary traces' columns) gives exactly the results of
the step-by-step loop: every PairResult field, the findings, and the Divergence with its window --
on every hand-made case of the comparator tests and on real guests (QEMU~model, QEMU~QEMU,
model~model), with findings, stale accepts, resyncs, traps and console bytes."""
from __future__ import annotations

import dataclasses
import importlib
import inspect

import pytest

from difftest import compare as C
from difftest.backends.binaries import KNOWN
from difftest.engine import run_case
from difftest.trace import TraceReader, write_trace

HAND_MODULES = ("test_compare", "test_compare_to_the_end", "test_report")


def _pr_dict(pr):
    d = dataclasses.asdict(pr)
    d.pop("report", None)
    return d


def _div_dict(div):
    if div is None:
        return None
    d = {f.name: getattr(div, f.name) for f in dataclasses.fields(div)}
    d["window"] = list(div.window)
    return d


def assert_same(ta, tb, **kw):
    """Bulk and step-by-step on the same two binary trace files: identical results."""
    pb, db = C.compare_full(ta, tb, bulk=True, **kw)
    ps, ds = C.compare_full(ta, tb, bulk=False, **kw)
    assert _pr_dict(pb) == _pr_dict(ps)
    assert _div_dict(db) == _div_dict(ds)
    return ps


def _consecutive(steps) -> bool:
    return all(s.i == k for k, s in enumerate(steps))


def _checking(original, tmp_path, seen):
    """compare_full that also writes in-memory traces as binary files and checks that the bulk
    pass on them gives what the step-by-step loop gives on the originals."""
    def wrapper(ta, tb, **kw):
        kw.pop("bulk", None)
        if isinstance(ta, tuple) and isinstance(tb, tuple):
            ta = (ta[0], list(ta[1]), ta[2]() if callable(ta[2]) else ta[2])
            tb = (tb[0], list(tb[1]), tb[2]() if callable(tb[2]) else tb[2])
            ref = original(ta, tb, bulk=False, **kw)
            if _consecutive(ta[1]) and _consecutive(tb[1]):
                k = len(seen)
                pa, pb = tmp_path / f"{k}a.trace.bin", tmp_path / f"{k}b.trace.bin"
                write_trace(pa, *ta)
                write_trace(pb, *tb)
                got = original(pa, pb, bulk=True, **kw)
                ref_files = original(pa, pb, bulk=False, **kw)
                assert _pr_dict(got[0]) == _pr_dict(ref_files[0])
                assert _div_dict(got[1]) == _div_dict(ref_files[1])
                # and the binary round trip itself changes nothing the comparator sees
                assert _pr_dict(ref_files[0]) == _pr_dict(ref[0])
                seen.append(True)
            return ref
        return original(ta, tb, **kw)
    return wrapper


def _hand_cases():
    out = []
    for name in HAND_MODULES:
        mod = importlib.import_module(name)
        for fn_name, fn in inspect.getmembers(mod, inspect.isfunction):
            if fn_name.startswith("test_") and fn.__module__ == name:
                params = set(inspect.signature(fn).parameters)
                if params <= {"tmp_path"}:
                    out.append(pytest.param(name, fn_name, id=f"{name}.{fn_name}"))
    return out


@pytest.mark.parametrize("mod_name,fn_name", _hand_cases())
def test_hand_made_cases_agree(mod_name, fn_name, tmp_path, monkeypatch):
    mod = importlib.import_module(mod_name)
    seen: list = []
    wrapper = _checking(C.compare_full, tmp_path, seen)
    monkeypatch.setattr(C, "compare_full", wrapper)
    if hasattr(mod, "compare_full"):
        monkeypatch.setattr(mod, "compare_full", wrapper)
    if hasattr(mod, "compare"):
        monkeypatch.setattr(mod, "compare", lambda a, b, **kw: wrapper(a, b, **kw)[0])
    fn = getattr(mod, fn_name)
    fn(**({"tmp_path": tmp_path} if "tmp_path" in inspect.signature(fn).parameters else {}))


def test_the_hand_made_cases_reach_the_bulk_pass(tmp_path, monkeypatch):
    """The wrapper above really compares files in bulk (not only the in-memory originals)."""
    import test_compare as tc
    seen: list = []
    monkeypatch.setattr(C, "compare_full", _checking(C.compare_full, tmp_path, seen))
    tc.test_stale_translation_accepted()
    tc.test_htval_mismatch_is_recorded_and_the_comparison_goes_on()
    assert len(seen) >= 2


QEMUS = [q for q in ("qemu-7.2", "qemu-10.0") if KNOWN[q][0].exists()]
need_qemu = pytest.mark.skipif(not QEMUS, reason="no QEMU (run scripts/setup)")

GUESTS = [("smoke", "sv39x4", "bare"), ("faults", "sv39x4", "sv39"), ("trap_stale", "sv39x4", "bare"),
          ("fences", "sv48x4", "sv39"), ("gstage_basic", "sv39x4", "bare"), ("virt_insn", "bare", "bare"),
          ("ad_bits", "sv39x4", "sv39")]


@need_qemu
@pytest.mark.parametrize("guest,hg,vs", GUESTS, ids=[g[0] for g in GUESTS])
def test_real_guests_agree(guest, hg, vs, tmp_path):
    from difftest.config_block import probe_sled
    case = run_case(guest, hgatp_mode=hg, vs_mode=vs, backends=QEMUS + ["model"], out_dir=tmp_path,
                    timeout=300, max_steps=3_000_000)
    paths = {name: r.trace_path for name, r in case.runs.items() if r.trace_path}
    sled = probe_sled(case.elf) if getattr(case, "elf", None) else None
    names = sorted(paths)
    assert all(TraceReader(p).__class__.__name__ == "BinTraceReader" for p in paths.values())
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert_same(paths[a], paths[b], guest=guest, sled=sled)


@need_qemu
def test_findings_resyncs_and_traps_agree(tmp_path, monkeypatch):
    """Two model bugs (test_compare_to_the_end): findings in two probes, resyncs, trap-CSR values."""
    import test_compare_to_the_end as t
    from difftest.config_block import probe_sled
    t._two_bugs(monkeypatch)
    c = run_case("gstage_basic", hgatp_mode="sv39x4", vs_mode="bare", backends=["qemu-10.0", "model"],
                 out_dir=tmp_path, timeout=120, max_steps=2_000_000, use_cache=False)
    p = assert_same(c.runs["qemu-10.0"].trace_path, c.runs["model"].trace_path, guest="gstage_basic",
                    sled=probe_sled(c.elf))
    assert p.findings and p.resyncs >= 2


def test_stale_history_lookup_matches_the_dict(tmp_path):
    """The stale rule's history: an accepted stale answer whose earlier answer lies chunks back (the
    lazy lookup searches the columns backwards), and one where a later non-stale answer replaced it."""
    from difftest.trace import Footer, Step, Xlat
    import test_compare as tc
    from difftest import tracebin
    n = tracebin.CHUNK + 50

    def run(model: bool, second_pa):
        s = []
        for i in range(n):
            xl = []
            if i == 3:
                xl = [Xlat("load", 0x5010, 1, 1, gpa=0x205010, pa=0x80201010)]
            if i == 10 and model:
                xl = [Xlat("load", 0x5020, 1, 1, gpa=0x205020, pa=second_pa)]
            if i == n - 5:
                xl = [Xlat("load", 0x5010, 1, 1, gpa=0x205010, pa=0x80301010, maybe_stale=True)] if model else \
                    [Xlat("load", 0x5010, 1, 1, pa=0x80201010)]
            s.append(Step(i, 0x1000 + 4 * (i % 100), insn=0x13, priv=1, v=1, xlats=xl))
        return s
    for second, want in ((0x80201020, "accepted-stale"), (0x80401020, "mismatch")):
        q, m = run(False, second), run(True, second)
        fq = Footer("exit", 0, n)
        pa, pb = tmp_path / f"q{second}.trace.bin", tmp_path / f"m{second}.trace.bin"
        write_trace(pa, tc.hdr("qemu-10.0", tc.QEMU_EXPOSES), q, fq)
        write_trace(pb, tc.hdr("model", tc.MODEL_EXPOSES), m, fq)
        p = assert_same(pa, pb)
        assert p.status == want, p.summary


def test_m_mode_identity_rule_in_bulk(tmp_path):
    """A plugin-style QEMU access in M mode, which the model does not translate (Priv. 3.1.6.3): the
    bulk pass takes it as equal only when QEMU's PA is its VA -- a wrong PA is a finding in both loops."""
    from difftest.trace import Footer, Step, Xlat
    import test_compare as tc
    from difftest import tracebin
    n = tracebin.CHUNK + 20
    q_exp = {**tc.QEMU_EXPOSES, "xlat.access": True}
    for bad_pa, want in ((None, "match"), (0x80001010, "mismatch")):
        def steps(qemu: bool):
            out = []
            for i in range(n):
                xl = []
                if qemu and i % 3 == 0:
                    va = 0x80000000 + 8 * i
                    xl = [Xlat("load", va, 3, 0, pa=bad_pa if (bad_pa and i == n - 9) else va)]
                out.append(Step(i, 0x80000000 + 4 * (i % 64), insn=0x13, priv=3, v=0, xlats=xl))
            return out
        f = Footer("exit", 0, n)
        pa, pb = tmp_path / f"q{want}.trace.bin", tmp_path / f"m{want}.trace.bin"
        write_trace(pa, tc.hdr("qemu-10.0", q_exp), steps(True), f)
        write_trace(pb, tc.hdr("model", tc.MODEL_EXPOSES), steps(False), f)
        p = assert_same(pa, pb)
        assert p.status == want, p.summary
        if want == "match":         # every QEMU access counted as compared (the identity)
            assert p.xlats_compared == len(range(0, n, 3))
