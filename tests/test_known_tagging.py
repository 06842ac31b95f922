"""How the nightly accounts for findings (difftest/nightly.py tag_known), on hand-made case results:
an entry explains exactly the findings it lists, and a QEMU~QEMU finding is only excused probe by
probe, when each QEMU is held to the spec by the model under its own profile there."""
from pathlib import Path

from difftest import known as K
from difftest import nightly

ROOT = Path(__file__).resolve().parents[1]


def _f(probe, what, a, b):
    return {"probe": probe, "what": what, "a": a, "b": b, "fingerprint": f"g|{probe}|{what}|{a}~{b}",
            "kind": "trap", "summary": "s"}


def _case(f72=(), f10=(), fqq=(("4", "trap 2~22"),)):
    def pair(a, b, fs):
        return {"a": a, "b": b, "status": "mismatch" if fs else "match",
                "findings": [_f(p, w, a, b) for p, w in fs]}
    pairs = [pair("qemu-7.2", "qemu-10.0", fqq), pair("qemu-7.2", "model@qemu-7.2", f72),
             pair("qemu-10.0", "model@qemu-10.0", f10)]
    return {"id": "c", "guest": "g", "hgatp_mode": "sv39x4", "vs_mode": "bare", "cpu": "default",
            "status": "mismatch", "backends": ["qemu-7.2", "qemu-10.0", "model"], "pairs": pairs, "seconds": {}}


def _known(tmp_path, *items):
    p = tmp_path / "k.toml"
    p.write_text("".join(f'[[divergence]]\nid="e{i}"\nbackend="qemu-7.2"\nversions="7.2"\nrule="Priv. x"\n'
                         f'evidence="y"\nfindings=["{item}"]\n' for i, item in enumerate(items)))
    return K.load(p)


def test_spec_allowed_choice_when_each_qemu_matches_its_model_at_that_probe():
    c = _case()
    nightly.tag_known([c], [])
    assert c["pairs"][0]["findings"][0]["known"] == nightly.ALLOWED_CHOICE


def test_explained_when_the_odd_qemu_has_a_listed_finding_at_that_probe(tmp_path):
    known = _known(tmp_path, "g|4|trap 2~22|qemu-7.2~model@qemu-7.2")
    c = _case(f72=[("4", "trap 2~22")])
    nightly.tag_known([c], known)
    assert c["pairs"][1]["findings"][0]["known"] == "e0"
    assert c["pairs"][0]["findings"][0]["known"] == nightly.EXPLAINED


def test_an_entry_explains_only_what_it_lists(tmp_path):
    known = _known(tmp_path, "g|4|trap 2~22|qemu-7.2~model@qemu-7.2")
    c = _case(f72=[("4", "trap 2~22"), ("5", "trap 2~22"), ("4", "trap 2~21")])
    nightly.tag_known([c], known)
    assert [f["known"] for f in c["pairs"][1]["findings"]] == ["e0", None, None]
    assert c["pairs"][1]["known"] is None                   # the pair is not explained as a whole
    assert c["pairs"][0]["findings"][0]["known"] is None     # and probe 4's QEMU~QEMU difference neither


def test_unexplained_model_pair_keeps_the_qemu_pair_failing():
    c = _case(f72=[("4", "trap 2~22")])
    nightly.tag_known([c], [])
    assert c["pairs"][0]["findings"][0]["known"] is None and c["pairs"][1]["findings"][0]["known"] is None


def test_partly_fixed_is_reported_when_a_listed_sub_finding_disappears(tmp_path):
    from difftest import results as R
    p = tmp_path / "k.toml"
    p.write_text('[[divergence]]\nid="e"\nbackend="qemu-7.2"\nversions="7.2"\nrule="Priv. x"\nevidence="y"\n'
                 'findings=["g|4-5|trap 2~22|qemu-7.2~model@qemu-7.2"]\n')
    known = K.load(p)
    c = _case(f72=[("4", "trap 2~22")])
    s = nightly.finish(tmp_path / "out", [c], known)
    assert s["entries"]["e"] == {"hits": 1, "status": "partly fixed",
                                 "missing": ["g|5|trap 2~22|qemu-7.2~model@qemu-7.2"]}
    assert s["known_partly_fixed"] == ["e"] and nightly.exit_code(s) == 0
    assert R.summarise([c], s["entries"], None)["findings"][0]["status"] == "known"


def test_every_reviewed_entry_names_its_rule_and_evidence():
    entries = K.load(ROOT / "known-divergences.toml")
    assert len(entries) >= 10
    for e in entries:
        assert e.rule and e.evidence and e.backend in ("qemu-7.2", "qemu-10.0") and e.subs


def test_a_finding_that_varies_explains_without_being_missed(tmp_path):
    """`varies` items (a QEMU outcome that depends on QEMU's own timing-driven state) are explained
    when they appear and not reported as fixed when they do not."""
    p = tmp_path / "k.toml"
    p.write_text('[[divergence]]\nid="e"\nbackend="qemu-7.2"\nversions="7.2"\nrule="Priv. x"\nevidence="y"\n'
                 'findings=["g|4|trap 2~22|qemu-7.2~model@qemu-7.2"]\n'
                 'varies=["g|5|trap 2~22|qemu-7.2~model@qemu-7.2"]\n')
    known = K.load(p)
    c = _case(f72=[("4", "trap 2~22")])
    s = nightly.finish(tmp_path / "out", [c], known)
    assert s["entries"]["e"]["status"] == "seen"
    c = _case(f72=[("4", "trap 2~22"), ("5", "trap 2~22")])
    nightly.tag_known([c], known)
    assert [f["known"] for f in c["pairs"][1]["findings"]] == ["e", "e"]
