"""Classifying fuzz findings against the known-divergence catalogue, and the small HTML page.

The catalogue (difftest.known) lists findings exactly: guest|probes|what|pair, one root cause per entry.
A fuzz class (``what|a~b``) is *known* only when it is listed the same way, as ``fuzz_interp|-|what|pair``
-- in known-divergences.toml or, until the lead merges them there, in guests/fuzz_interp/known-fuzz.toml
(same format; each item reviewed on its minimal scenario in the corpus).  Matching by the comparator
parts alone would call too much known: ``xlat.fault store ok~g23`` is QEMU's VS A/D bug in the
catalogue, and also what a model that wrongly faults every G-stage store shows (tests/test_fuzz.py).
A class that is not listed is *new*; when an entry lists a guest finding with the same comparator parts
(the guests' own ``Xa(...)``/``P(...)`` parts aside), or the same up to cause codes, the class says it
*resembles* that entry -- a hint for the reviewer.
"""
from __future__ import annotations

import html
from pathlib import Path


def _parts(what: str) -> frozenset:
    return frozenset(p for p in what.split(" + ") if not p.startswith(("Xa(", "Xb(", "P(")))


ROOT = Path(__file__).resolve().parent.parent.parent
FUZZ_KNOWN = ROOT / "guests" / "fuzz_interp" / "known-fuzz.toml"
GUEST = "fuzz_interp"


def load_known():
    """Catalogue entries: known-divergences.toml and the fuzz classes reviewed so far."""
    from difftest import known as K
    out = K.load()
    if FUZZ_KNOWN.exists():
        out += K.load(FUZZ_KNOWN)
    return out


def classify(what: str, pair: str, known) -> str | None:
    """The id of the entry listing ``fuzz_interp|-|what|pair``, or None (new)."""
    for k in known:
        if (GUEST, "-", what, pair) in k.subs:
            return k.id
    return None


def resembles_parts(what: str, pair: str, known) -> str | None:
    """Entries listing a finding with the same comparator parts for the pair.  Two root causes can
    look the same to the comparator (QEMU 7.2's ``trap 21~23`` is its AMO bug and its implicit-access
    bug): then every such entry is named, comma-separated, and the minimal scenario tells which."""
    mine = _parts(what)
    if not mine:
        return None
    ids = list(dict.fromkeys(k.id for k in known
                             if any(kpair == pair and _parts(kwhat) == mine for _, _, kwhat, kpair in k.subs)))
    return ", ".join(ids) or None


def resembles(what: str, pair: str, known) -> str | None:
    """For a new class: an entry listing the same comparator parts up to the cause codes and access
    types (``trap.gva cause=13 0~1`` vs the listed ``trap.gva cause=21 0~1``) -- likely the same root
    cause seen on another exception, a hint for the reviewer, never counted as known."""
    import re

    def norm(w):
        return frozenset(re.sub(r"cause=\d+|\b(load|store|fetch)\b|[gs]?\d+~|~[gs]?\d+", "#", p) for p in _parts(w))
    exact = resembles_parts(what, pair, known)
    if exact:
        return exact
    mine = norm(what)
    for k in known:
        for _, _, kwhat, kpair in k.subs:
            if kpair == pair and norm(kwhat) == mine:
                return k.id
    return None


def write_html(summary: dict, path: Path) -> None:
    e = html.escape
    rows = []
    for f in summary["findings"]:
        st = f"known: {e(f['known'])}" if f["known"] else "follows an earlier difference" \
            if f["status"] == "follows" else "<b>new</b>" + (
            f" (resembles {e(f['resembles'])})" if f.get("resembles") else "")
        rep = f"<a href='{e(f['report'])}'>report</a>" if f.get("report") else ""
        repro = f"<code>{e(f['replay'])}</code> ({f['shrunk_ops']} ops)" if f.get("replay") else "not shrunk"
        rows.append(f"<tr class={'new' if not f['known'] else 'known'}><td>{e(f['what'])}</td><td>{e(f['pair'])}</td>"
                    f"<td>{f['count']}</td><td>{st}</td><td>{repro}</td><td>{rep}</td></tr>")
    cov = summary["coverage"]
    modes = "".join(f"<tr><td>{e(k)}</td><td>{v}</td></tr>" for k, v in sorted(summary["modes"].items()))
    page = f"""<!doctype html><meta charset=utf-8><title>difftest fuzz</title>
<style>body{{font-family:sans-serif}} table{{border-collapse:collapse}} td,th{{border:1px solid #ccc;padding:2px 6px}}
tr.new td{{background:#fdd}} tr.known td{{background:#eee}}</style>
<h1>difftest fuzz: {summary['new']} new, {summary['known']} known finding classes</h1>
<p>{summary['follows']} more classes were seen only after an earlier difference in the same scenario.</p>
<p>seed {summary['seed']}, backends {e(', '.join(summary['backends']))}, {summary['scenarios']} scenarios
({summary['probes']} probes) in {summary['runs']} guest runs, {summary['seconds']} s
({summary['scenarios_per_second']} scenarios/s), {summary['accepted_stale']} permitted stale translations accepted.</p>
<p>coverage: {cov['reached']} of {cov['reachable']} translation situations (difftest coverage).</p>
<table><tr><th>what differs</th><th>pair</th><th>seen</th><th>status</th><th>minimal scenario</th><th></th></tr>
{''.join(rows)}</table>
<h2>Scenarios per starting mode</h2><table>{modes}</table>
<h2>Errors</h2><pre>{e(chr(10).join(summary['errors'])) or 'none'}</pre>
"""
    path.write_text(page)
