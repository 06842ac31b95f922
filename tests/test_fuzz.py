"""`difftest fuzz` (issue 11): the interpreter guest, the block, the search with shrinking, replay.

Real QEMU 10.0 and the real model.  The oracle is the differential comparison, so a scenario must agree
on QEMU 10.0 and the model where the spec leaves no choice; a deliberately wrong model (refmodel
monkeypatched, as tests/test_wrong_model.py does) must be found by a short fuzz run and shrunk; a saved
scenario replays its finding."""
from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from difftest.fuzz import runner as R
from difftest.fuzz import scenario as S
from difftest.fuzz import search
from refmodel import mmu

ROOT = Path(__file__).resolve().parent.parent
Q10 = ROOT / ".cache/qemu-10.0/usr/bin/qemu-system-riscv64"
G_LEAF, VS_LEAF = 0xDF, 0xCF
X4, VSM = ["sv39x4", "sv48x4", "sv57x4"], ["sv39", "sv48", "sv57"]


def need_qemu():
    if not Q10.exists():
        pytest.skip("QEMU 10.0 is not unpacked in .cache/ (scripts/setup)")


def hand_scenario() -> dict:
    """Leaves at levels 0/1, a widened-root GPA (bit 40 of Sv39x4), a VS table at an unmapped GPA,
    an unfenced invalidation then a fenced one, a vsatp switch to Bare, HLV from HS."""
    d0, d1 = S.DATA, S.DATA + 0x1000
    top = (1 << 40) + 0x5000
    return {"fuzz_scenario": 1, "hgatp": "sv39x4", "vs": "sv39", "vmid": 1, "asid": 2,
            "setup": [
                {"t": "map", "stage": "g", "va": 0x100000000, "level": 0, "pte": (d0 >> 12) << 10 | G_LEAF, "modes": X4},
                {"t": "map", "stage": "vs", "va": 0x200000000, "level": 0, "pte": (0x100000000 >> 12) << 10 | VS_LEAF | 0x10,
                 "modes": VSM},
                {"t": "map", "stage": "g", "va": top, "level": 0, "pte": (d1 >> 12) << 10 | G_LEAF, "modes": ["sv39x4"]},
                {"t": "map", "stage": "g", "va": 0x140000000, "level": 1, "pte": ((d1 & ~0x1fffff) >> 12) << 10 | G_LEAF,
                 "modes": X4},
                {"t": "reloc", "va": 0x300000000, "level": 0, "gpa": 0x180000000,
                 "leaf": (0x100000000 >> 12) << 10 | VS_LEAF, "gflags": 0, "vs_modes": ["sv39"], "g_modes": ["sv39x4"]}],
            "ops": [
                {"t": "access", "acc": "ld", "mode": "VS", "addr": 0x200000008, "value": 0},
                {"t": "access", "acc": "sd", "mode": "VU", "addr": 0x200000010, "value": 7},
                {"t": "access", "acc": "fetch", "mode": "VU", "addr": 0x200000800, "value": 0},
                {"t": "map", "stage": "vs", "va": 0x200000000, "level": 0, "pte": 0, "modes": ["sv39"]},
                {"t": "access", "acc": "ld", "mode": "VS", "addr": 0x200000008, "value": 0},
                {"t": "fence", "insn": "hfence.vvma", "rs1": None, "rs2": None},
                {"t": "access", "acc": "ld", "mode": "VS", "addr": 0x200000008, "value": 0},
                {"t": "access", "acc": "ld", "mode": "VS", "addr": 0x300000000, "value": 0},
                {"t": "atp", "which": "vsatp", "mode": "bare", "id": 0},
                {"t": "access", "acc": "ld", "mode": "VS", "addr": top, "value": 0},
                {"t": "access", "acc": "lw", "mode": "VS", "addr": 0x140000000 + (d1 & 0x1fffff) + 8, "value": 0},
                {"t": "access", "acc": "hlv.d", "mode": "HS", "addr": top + 8, "value": 0}]}


def test_block_encoding_and_checks():
    s = S.check(hand_scenario())
    words = S.encode([s, s])
    assert words[0] == S.MAGIC | S.VERSION << 32 and words[1] == len(words) - 3
    n = len(S.probes(s))
    idx = R.probe_index([s, s])
    assert len(idx) == 2 * n and idx[str(n)] == (0, S.probes(s)[-1]) and idx[str(n + 1)] == (1, 0)
    bad = dict(s, setup=[{"t": "map", "stage": "g", "va": 0x80000000, "level": 2, "pte": 1, "modes": X4}])
    with pytest.raises(S.ScenarioError, match="identity"):
        S.check(bad)
    # an address above Sv39x4's width is written into its alias slot: below guest RAM's GiB is fine,
    # an alias that lands on guest RAM is refused
    with pytest.raises(S.ScenarioError):
        S.check(dict(s, setup=[{"t": "map", "stage": "g", "va": (1 << 41) + 0x80000000, "level": 0, "pte": 1,
                                "modes": ["sv39x4"]}]))
    for junk in ({}, {"fuzz_scenario": 1}, dict(s, ops=[{"t": "nope"}]), dict(s, vmid=9),
                 dict(s, ops=[{"t": "access", "acc": "mprv-ld", "mode": "VS", "addr": 0}])):
        with pytest.raises(S.ScenarioError):
            S.check(junk)


def test_interpreter_rejects_a_corrupt_block(tmp_path):
    """The guest checks magic, version, length and checksum; a bad block is exit 2, never a run."""
    from refmodel.hart import Hart
    from refmodel.profile import PROFILES
    elf = S.patch(R.interp_elf(), [hand_scenario()], tmp_path)
    data = bytearray(elf.read_bytes())
    off = S.block_offset(elf)
    struct.pack_into("<Q", data, off + 16, struct.unpack_from("<Q", data, off + 16)[0] ^ 1)
    bad = tmp_path / "bad.elf"
    bad.write_bytes(bytes(data))
    h = Hart.from_elf(str(bad), PROFILES["qemu-10.0"])
    for _ in h.records(max_steps=200_000):
        pass
    assert h.exit_code == 2 and "X fuzz block: checksum" in h.uart_output


def test_hand_scenario_agrees_on_qemu10(tmp_path):
    need_qemu()
    s = hand_scenario()
    r = R.run_batch([s, s], backends=["qemu-10.0", "model"], out_dir=tmp_path)
    assert not r.errors and r.findings == [] and r.status in ("match", "accepted-stale"), \
        [f.cls for f in r.findings]
    assert r.steps > 0


def _wrong_g_store_rule(monkeypatch):
    """Deliberately wrong: a store through a G-stage leaf faults when W is set (the rule inverted)."""
    original = mmu._Walker.permitted

    def wrong(self, stage, pte, access, hlvx):
        if stage == "g" and access == "store" and pte & mmu.PTE_W:
            return "W=1 in a G-stage leaf (deliberately wrong rule)"
        return original(self, stage, pte, access, hlvx)

    monkeypatch.setattr(mmu._Walker, "permitted", wrong)


def test_wrong_model_is_found_and_shrunk(tmp_path, monkeypatch):
    need_qemu()
    _wrong_g_store_rule(monkeypatch)        # inherited by the forked worker
    cfg = search.Config(seed=3, count=16, backends=["qemu-10.0", "model"], modes=[("sv39x4", "bare")], jobs=1,
                        batch=8, out=str(tmp_path / "out"), corpus=str(tmp_path / "corpus"), shrink_budget=120,
                        shrink_only=["*store*"])
    summary = search.fuzz(cfg)
    assert summary["scenarios"] == 16 and not summary["errors"], summary["errors"]
    wrong = [f for f in summary["findings"] if "store" in f["what"] and f["status"] == "new"]
    assert wrong, [f["what"] for f in summary["findings"]]
    shrunk = [f for f in wrong if f.get("shrunk")]
    assert shrunk and min(f["shrunk_ops"] for f in shrunk) <= 5, [(f["what"], f.get("shrunk_ops")) for f in wrong]
    f = min(shrunk, key=lambda f: f["shrunk_ops"])
    assert Path(f["corpus"]).is_file() and f["replay"].startswith("difftest fuzz --replay ")
    page = (tmp_path / "out" / "report.html").read_text()
    assert "new" in page and summary["coverage"]["reached"] > 0
    # the replay reproduces it (same class) while the model is still wrong
    from difftest.fuzz.cli import replay
    assert replay(f["corpus"], ["qemu-10.0", "model"], tmp_path / "replay", True) == 1


CORPUS = sorted((ROOT / "guests" / "fuzz_interp" / "corpus").glob("*.json"))


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_corpus_replays_its_finding(path, tmp_path):
    """Every saved minimal scenario still shows the class recorded beside it (QEMU's bug is still
    there), on the backends its .finding file names; a scenario that stops showing it is fixed."""
    need_qemu()
    cls = path.with_suffix(".finding").read_text().strip()
    pair = cls.rsplit("|", 1)[1]
    qemu = pair.split("~")[0]
    if qemu == "qemu-7.2" and not Path("/usr/bin/qemu-system-riscv64").exists():
        pytest.skip("QEMU 7.2 is not installed")
    r = R.run_batch([S.load(path)], backends=[qemu, "model"], out_dir=tmp_path)
    assert cls in {f.cls for f in r.findings}, (cls, [f.cls for f in r.findings])


def test_cli_bad_input(tmp_path, capsys):
    from difftest.cli import main
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["fuzz", "--replay", str(bad)]) == 2
    assert main(["fuzz", "--replay", str(tmp_path / "missing.json")]) == 2
    bad.write_text(json.dumps(dict(hand_scenario(), hgatp="sv99x4")))
    assert main(["fuzz", "--replay", str(bad)]) == 2
    assert main(["fuzz", "--backend", "qemu-10.0", "--count", "1"]) == 2
    assert main(["fuzz", "--mode", "sv40x4", "--count", "1"]) == 2
    assert main(["fuzz", "--count", "0"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "not JSON" in err and "hgatp" in err
