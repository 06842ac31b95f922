"""How the nightly accounts for QEMU~QEMU mismatches (difftest/nightly.py tag_known), on hand-made
case results: a QEMU~QEMU difference is only excused when each QEMU is separately held to the spec
by the model under its own profile and that pair matches or is a reviewed known divergence."""
from pathlib import Path

from difftest import known as K
from difftest import nightly

ROOT = Path(__file__).resolve().parents[1]


def _case(model72, model10, note=""):
    pairs = [
        {"a": "qemu-7.2", "b": "qemu-10.0", "status": "mismatch", "fingerprint": "g|sv39x4|bare|qemu-7.2~qemu-10.0|control-flow|0x1"},
        {"a": "qemu-7.2", "b": "model@qemu-7.2", "status": model72[0], "fingerprint": model72[1]},
        {"a": "qemu-10.0", "b": "model@qemu-10.0", "status": model10[0], "fingerprint": model10[1]},
    ]
    return {"guest": "g", "backends": ["qemu-7.2", "qemu-10.0", "model"], "note": note, "pairs": pairs}


def test_spec_allowed_choice_when_each_qemu_matches_its_model():
    c = _case(("match", None), ("match", None), note="each matches the model under its own profile")
    nightly.tag_known([c], [])
    assert c["pairs"][0]["known"] == nightly.ALLOWED_CHOICE


def test_explained_when_the_odd_qemu_has_a_reviewed_divergence():
    known = [K.Known(id="x", backend="qemu-7.2", versions="", fingerprint="g|*|*|qemu-7.2~*|second-stage|*",
                     rule="r", evidence="e")]
    c = _case(("mismatch", "g|sv39x4|bare|qemu-7.2~model@qemu-7.2|second-stage|0x2"), ("match", None))
    nightly.tag_known([c], known)
    assert c["pairs"][1]["known"] == "x"
    assert c["pairs"][0]["known"] == nightly.EXPLAINED


def test_unexplained_model_pair_keeps_the_qemu_pair_failing():
    c = _case(("mismatch", "g|sv39x4|bare|qemu-7.2~model@qemu-7.2|trap|0x2"), ("match", None))
    nightly.tag_known([c], [])
    assert c["pairs"][0]["known"] is None and c["pairs"][1]["known"] is None


def test_every_reviewed_entry_names_its_rule_and_evidence():
    entries = K.load(ROOT / "known-divergences.toml")
    assert len(entries) >= 10
    for e in entries:
        assert e.rule and e.evidence and e.backend in ("qemu-7.2", "qemu-10.0")


def test_every_trap_csr_group_must_be_reviewed():
    """A pair's trap-entry CSR groups (difftest/trap_csr.py) are findings of their own: the pair is
    explained only when its first divergence and every group match reviewed entries."""
    gva = "g|sv39x4|bare|qemu-10.0~model@qemu-10.0|trap.gva|cause=10|1~0"
    htval = "g|sv39x4|bare|qemu-10.0~model@qemu-10.0|trap.htval|cause=9|nz~0"
    known = [K.Known(id="gva", backend="qemu-10.0", versions="", fingerprint="*|qemu-10.0~model*|trap.gva|*|1~0",
                     rule="r", evidence="e")]

    def case():
        c = _case(("match", None), ("mismatch", gva))
        c["pairs"][2].update(kind="trap-csr", trap_csr=[{"fingerprint": gva}, {"fingerprint": htval}])
        return c
    c = case()
    nightly.tag_known([c], known)
    p = c["pairs"][2]
    assert p["known"] is None and [g["known"] for g in p["trap_csr"]] == ["gva", None]
    known.append(K.Known(id="htval", backend="qemu-10.0", versions="", fingerprint="*|trap.htval|*|nz~0",
                         rule="r", evidence="e"))
    c = case()
    nightly.tag_known([c], known)
    assert c["pairs"][2]["known"] == "gva"
    from difftest import results as R
    s = R.summarise([dict(c, id="c", status="mismatch")], ["gva", "htval"], None)
    assert s["known_hits"] == {"gva": 1, "htval": 1, nightly.EXPLAINED: 1} and not s["unexplained"]
