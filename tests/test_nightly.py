"""Nightly: sharding, known divergences, trend, and a real small nightly on QEMU 7.2 + the model
(hgatp_reserved: QEMU 7.2 keeps reserved hgatp MODEs, Priv. 20240411 21.2.10 -- a known divergence)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from difftest import known as K
from difftest import nightly as N
from difftest import results as R

ROOT = Path(__file__).resolve().parent.parent


def test_shards_partition_the_matrix_deterministically():
    ids = [f"g{i}|bare|bare|default|model" for i in range(200)]
    parts = [[i for i in ids if N.shard_of(i, 4) == k] for k in range(4)]
    assert sorted(sum(parts, [])) == sorted(ids)
    assert all(parts)                                    # every shard gets work
    assert [N.shard_of(i, 4) for i in ids] == [N.shard_of(i, 4) for i in ids]


def test_seed_file_loads_and_matches_findings_exactly():
    known = K.load()
    assert known and all(k.evidence and k.rule for k in known)
    k = K.classify("hgatp_reserved", "1", HGATP_RESERVED_72, "qemu-7.2~model@qemu-7.2", known)
    assert k is not None and k.id == "qemu72-hgatp-reserved-mode-kept"
    assert K.classify("hgatp_reserved", "1", HGATP_RESERVED_72, "qemu-10.0~model@qemu-10.0", known) is None


HGATP_RESERVED_72 = next(w for g, p, w, pair in sorted(
    s for k in K.load() if k.id == "qemu72-hgatp-reserved-mode-kept" for s in k.subs))


def test_bad_known_file_is_a_classified_error(tmp_path):
    p = tmp_path / "k.toml"
    p.write_text('[[divergence]]\nid = "x"\n')
    with pytest.raises(K.KnownError, match="lacks"):
        K.load(p)


def _case(cid, status, fp=None):
    fs = [{"probe": "1", "what": "trap 2~22", "a": "qemu-7.2", "b": "model@qemu-7.2", "fingerprint": fp,
           "kind": "trap", "summary": "s"}] if fp else []
    pairs = [{"a": "qemu-7.2", "b": "model", "status": status, "kind": "trap" if fp else None,
              "summary": "s", "fingerprint": fp, "report": {}, "findings": fs}]
    g, m, v, cpu, _ = cid.split("|")
    return {"id": cid, "guest": g, "hgatp_mode": m, "vs_mode": v, "cpu": cpu, "backends": ["qemu-7.2", "model"],
            "status": status, "seconds": {"qemu-7.2": 1.0, "model": 3.0}, "pairs": pairs}


def test_trend_new_fixed_still_failing_by_fingerprint():
    prev = {"out": "old", "failing_fingerprints": ["a|fp", "b|fp"]}
    cases = [_case("a|bare|bare|default|x", "mismatch", "a|fp"), _case("c|bare|bare|default|x", "mismatch", "c|fp"),
             _case("b|bare|bare|default|x", "match")]
    s = R.summarise(cases, {}, prev)
    assert s["trend"]["new"] == ["c|fp"] and s["trend"]["fixed"] == ["b|fp"]
    assert s["trend"]["still_failing"] == ["a|fp"]
    assert s["backend_share"] == {"qemu-7.2": 0.25, "model": 0.75}


def test_html_escapes_guest_text(tmp_path):
    c = _case("<b>x|bare|bare|default|x", "mismatch", "fp")
    c["pairs"][0]["kind"] = "<script>"
    c["pairs"][0]["findings"][0]["what"] = "<script>"
    s = R.summarise([c], {}, None)
    h = R.html_report([c], s, tmp_path)
    assert "<script>" not in h and "&lt;b&gt;x" in h


def _difftest(*a, **kw):
    return subprocess.run([sys.executable, "-m", "difftest", *a], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, **kw)


def test_real_nightly_known_divergence_resume_and_merge(tmp_path):
    out = tmp_path / "runs" / "20260101T000000Z"
    r = _difftest("nightly", "--guests", "hgatp_reserved", "--backends", "qemu-7.2,model", "--jobs", "2",
                  "--out", str(out))
    assert r.returncode == 0, r.stdout + r.stderr            # only a known divergence: the job passes
    s = json.loads((out / "summary.json").read_text())
    assert s["known_hits"]["qemu72-hgatp-reserved-mode-kept"] >= 1 and not s["unexplained"]
    assert s["findings"] and all(f["status"] == "known" for f in s["findings"])
    assert "wall time" in r.stdout and "qemu-7.2" in r.stdout
    assert "<failure" not in (out / "junit.xml").read_text() and "<skipped" in (out / "junit.xml").read_text()
    case_files = sorted((out / "cases").glob("*.json"))
    assert case_files
    stamp = case_files[0].stat().st_mtime_ns
    r2 = _difftest("nightly", "--guests", "hgatp_reserved", "--backends", "qemu-7.2,model", "--resume", str(out))
    assert r2.returncode == 0 and "already done" in r2.stderr
    assert case_files[0].stat().st_mtime_ns == stamp             # resumed: not re-run
    # with an empty known file the same divergence is new and fails the job
    empty = tmp_path / "k.toml"
    empty.write_text("")
    m = _difftest("merge", str(out), "--out", str(tmp_path / "merged"), "--known", str(empty))
    assert m.returncode == 1 and "NEW hgatp_reserved" in m.stdout
    merged = tmp_path / "merged"
    hrefs = [h.split("'")[0] for h in (merged / "report.html").read_text().split("href='")[1:]]
    assert hrefs and all((merged / h).is_file() for h in hrefs)     # reports copied: the merged dir stands alone


def test_bad_shard_is_a_usage_error_not_a_traceback():
    r = _difftest("nightly", "--shard", "3/2", "--guests", "smoke")
    assert r.returncode == 2 and "--shard wants K/N" in r.stderr and "Traceback" not in r.stderr


def test_disk_full_nightly_writes_what_it_can_and_exits_125(tmp_path):
    """A results dir on a file system that fills up: every case still runs, whatever fits is written
    whole (no temporary file left), what did not fit is named, and the job exits 125 -- never a traceback,
    never a green result it could not record."""
    from test_bad_input import small_fs
    with small_fs(tmp_path / "full", "96k") as d:
        if d is None:
            pytest.skip("cannot mount a tmpfs here (not root)")
        r = _difftest("nightly", "--guests", "smoke,hgatp_probe", "--backends", "model", "--jobs", "1",
                      "--out", str(d / "r"))
        assert r.returncode == 125, r.stdout + r.stderr
        assert "could not write" in r.stderr and "Traceback" not in r.stderr + r.stdout
        assert not [p for p in d.rglob("*") if p.name.endswith((".tmp", ".part"))]
        for f in d.rglob("*.json"):
            json.loads(f.read_text())                # what is there is whole


def test_junit_is_well_formed_whatever_a_guest_prints():
    """A guest's console bytes (ESC, BEL, NUL) reach pair summaries; junit.xml stays XML 1.0."""
    import xml.etree.ElementTree as ET
    c = _case("g|bare|bare|default|x", "mismatch", "g|1|trap 2~22|qemu-7.2~model@qemu-7.2")
    c["pairs"][0]["summary"] = "P 1 \x1b[2J\x07 cleared \x00 the screen"
    c["pairs"][0]["findings"][0]["fingerprint"] = "g|1|\x1b]0;title\x07|qemu-7.2~model@qemu-7.2"
    root = ET.fromstring(R.junit([c]))
    msg = root.find("testcase/failure").get("message")
    assert "\x1b" not in msg and "\\x1b" in msg


def test_trend_compares_like_with_like():
    """A run over other guests than the previous one compares only the guests both ran, and says so
    (it used to report every finding of the unselected guests as 'fixed')."""
    prev = {"out": "old", "failing_fingerprints": ["a|1|x|p", "b|1|x|p"],
            "selection": {"guests": ["a", "b"], "backends": ["qemu-7.2", "model"]}}
    cases = [_case("a|bare|bare|default|x", "mismatch", "a|1|x|p")]
    s = R.summarise(cases, {}, prev, {"guests": ["a"], "backends": ["qemu-7.2", "model"]})
    assert s["trend"]["fixed"] == [] and s["trend"]["still_failing"] == ["a|1|x|p"]
    assert "different guests" in s["trend"]["note"]


def test_longest_cases_go_first(tmp_path):
    """Workers take the longest cases first: by the previous run's wall time where the case ran there,
    cases never seen first, then by backend count (three-backend cases are the long kind)."""
    cases = N.matrix(["smoke", "fences"])
    old, new = tmp_path / "20260101T000000Z", tmp_path / "20260102T000000Z"
    (old / R.CASES).mkdir(parents=True)
    (old / "summary.json").write_text("{}")
    timed = cases[:3]
    for k, c in enumerate(timed):
        (old / R.CASES / f"{k}.json").write_text(json.dumps({"id": c.id, "wall": float(k + 1)}))
    got = N.longest_first(cases, new)
    unseen = [c for c in got if c not in timed]
    assert got[:len(unseen)] == unseen                       # never seen: first
    assert [len(c.backends) for c in unseen] == sorted((len(c.backends) for c in unseen), reverse=True)
    assert got[len(unseen):] == [timed[2], timed[1], timed[0]]   # then longest first
    assert N.longest_first(cases, tmp_path / "elsewhere" / "x")[0].backends == max(
        (c.backends for c in cases), key=len)
