"""Nightly results directory: one JSON per case (written atomically as it finishes), then
``summary.json``, ``junit.xml`` and a self-contained ``report.html`` with a trend section against
the previous run in the parent directory (keyed by fingerprint, never by step number)."""
from __future__ import annotations

import html
import json
import os
import tempfile
from pathlib import Path
from xml.sax.saxutils import quoteattr

CASES = "cases"


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def case_file(out: Path, case_id: str) -> Path:
    safe = case_id.replace("|", "__").replace("/", "_").replace(",", "+")
    return out / CASES / f"{safe}.json"


def load_cases(dirs) -> list[dict]:
    out = {}
    for d in dirs:
        for f in sorted((Path(d) / CASES).glob("*.json")):
            try:
                c = json.loads(f.read_text())
            except (OSError, ValueError):
                continue          # a half-written file cannot exist (atomic), but a foreign one may
            out[c["id"]] = c
    return [out[k] for k in sorted(out)]


def failing_fingerprints(cases) -> set[str]:
    out = set()
    for c in cases:
        for p in c.get("pairs", []):
            if p.get("status") in ("mismatch", "error"):
                out |= {p["fingerprint"]} if p.get("fingerprint") else set()
                out |= {g["fingerprint"] for g in p.get("trap_csr") or []}
    return out


def summarise(cases: list[dict], known_ids: list[str], previous: dict | None) -> dict:
    counts: dict[str, int] = {}
    for c in cases:
        counts[c["status"]] = counts.get(c["status"], 0) + 1
    hits: dict[str, int] = {k: 0 for k in known_ids}
    new = []
    for c in cases:
        for p in c.get("pairs", []):
            if p.get("known"):
                hits[p["known"]] = hits.get(p["known"], 0) + 1
                for g in p.get("trap_csr") or []:      # each reviewed trap-entry CSR group counts too
                    if g.get("known") and g["known"] != p["known"]:
                        hits[g["known"]] = hits.get(g["known"], 0) + 1
            elif p.get("status") in ("mismatch", "error"):
                unexplained = [g for g in p.get("trap_csr") or [] if not g.get("known")]
                new.append({"case": c["id"], "pair": f"{p['a']}~{p['b']}", "fingerprint": p.get("fingerprint"),
                            "summary": p.get("summary", ""),
                            "trap_csr_unexplained": [g["fingerprint"] for g in unexplained]})
    seconds: dict[str, float] = {}
    for c in cases:
        for b, s in c.get("seconds", {}).items():
            seconds[b] = round(seconds.get(b, 0) + s, 3)
    total = sum(seconds.values()) or 1.0
    fps = failing_fingerprints(cases)
    trend = None
    if previous is not None:
        prev = set(previous.get("failing_fingerprints", []))
        trend = {"previous": previous.get("out"), "new": sorted(fps - prev), "fixed": sorted(prev - fps),
                 "still_failing": sorted(fps & prev)}
    return {"cases": len(cases), "counts": counts, "unexplained": new, "known_hits": hits,
            "known_fixed": sorted(k for k, n in hits.items() if n == 0),
            "backend_seconds": seconds,
            "backend_share": {b: round(s / total, 3) for b, s in seconds.items()},
            "failing_fingerprints": sorted(fps), "trend": trend}


def previous_summary(out: Path) -> dict | None:
    """The newest other results dir next to ``out`` (run dirs are named by timestamp)."""
    parent = out.resolve().parent
    if not parent.is_dir():
        return None
    cands = sorted(d for d in parent.iterdir() if d.is_dir() and d.resolve() != out.resolve()
                   and (d / "summary.json").is_file() and d.name < out.name)
    if not cands:
        return None
    try:
        s = json.loads((cands[-1] / "summary.json").read_text())
    except (OSError, ValueError):
        return None
    s["out"] = str(cands[-1])
    return s


def junit(cases: list[dict]) -> str:
    lines = ['<?xml version="1.0" encoding="UTF-8"?>']
    n = sum(len(c.get("pairs", [])) or 1 for c in cases)
    fails = sum(1 for c in cases for p in c.get("pairs", []) if p["status"] == "mismatch" and not p.get("known"))
    errs = sum(1 for c in cases for p in c.get("pairs", []) if p["status"] == "error" and not p.get("known"))
    lines.append(f'<testsuite name="difftest-nightly" tests="{n}" failures="{fails}" errors="{errs}">')
    for c in cases:
        for p in c.get("pairs", []):
            name = quoteattr(f"{p['a']}~{p['b']}")
            cls = quoteattr(f"{c['guest']}.{c['hgatp_mode'] or 'default'}.{c['vs_mode'] or 'default'}.{c['cpu']}")
            lines.append(f"  <testcase classname={cls} name={name}>")
            msg = quoteattr(p.get("summary", ""))
            if p.get("known"):
                lines.append(f"    <skipped message={quoteattr('known divergence ' + p['known'])}/>")
            elif p["status"] == "mismatch":
                lines.append(f"    <failure message={msg}>{html.escape(p.get('fingerprint') or '')}</failure>")
            elif p["status"] == "error":
                lines.append(f"    <error message={msg}/>")
            lines.append("  </testcase>")
    lines.append("</testsuite>")
    return "\n".join(lines) + "\n"


COLOURS = {"match": "#c8f0c8", "mismatch": "#f7b0b0", "known": "#f5e0a0", "error": "#d0d0d0"}


def _cell_status(cs: list[dict]) -> str:
    st = set()
    for c in cs:
        for p in c.get("pairs", []) or [{"status": c["status"]}]:
            st.add("known" if p.get("known") else p["status"] if p["status"] != "accepted-stale" else "match")
    for s in ("mismatch", "error", "known"):
        if s in st:
            return s
    return "match"


def html_report(cases: list[dict], summary: dict, out: Path) -> str:
    e = html.escape
    guests = sorted({c["guest"] for c in cases})
    modes = sorted({c["hgatp_mode"] or "default" for c in cases},
                   key=lambda m: ["bare", "sv39x4", "sv48x4", "sv57x4"].index(m) if m in
                   ("bare", "sv39x4", "sv48x4", "sv57x4") else 9)
    h = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>difftest nightly</title><style>",
         "body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #888;padding:4px;"
         "vertical-align:top;font-size:12px}" + "".join(f".{k}{{background:{v}}}" for k, v in COLOURS.items()),
         "</style></head><body><h1>difftest nightly</h1>",
         f"<p>{summary['cases']} cases: " + ", ".join(f"{e(k)} {v}" for k, v in sorted(summary["counts"].items()))
         + "</p>", "<h2>Matrix (guest x HGATP mode)</h2><table id='matrix'><tr><th>guest</th>"
         + "".join(f"<th>{e(m)}</th>" for m in modes) + "</tr>"]
    for g in guests:
        row = [f"<tr><th>{e(g)}</th>"]
        for m in modes:
            cs = [c for c in cases if c["guest"] == g and (c["hgatp_mode"] or "default") == m]
            if not cs:
                row.append("<td></td>")
                continue
            st = _cell_status(cs)
            items = []
            for c in cs:
                for p in c.get("pairs", []):
                    if p["status"] in ("mismatch", "error"):
                        also = sorted({g["known"] or "NEW" for g in p.get("trap_csr") or []} - {p.get("known")})
                        lab = e(f"vs={c['vs_mode'] or '-'} cpu={c['cpu']} {p['a']}~{p['b']}: {p['kind']}"
                                + (f" [known {p['known']}]" if p.get("known") else "")
                                + (f" + trap-entry CSRs [{', '.join(also)}]" if also else ""))
                        link = (p.get("report") or {}).get("html")
                        if link:
                            rel = os.path.relpath(link, out) if os.path.isabs(link) else link  # stored relative
                            items.append(f"<a class='mismatch-link' href='{e(rel)}'>{lab}</a>")
                        else:
                            items.append(lab)
            row.append(f"<td class='{st}'>{e(st)}<br>" + "<br>".join(items) + "</td>")
        h.append("".join(row) + "</tr>")
    h.append("</table>")
    h.append("<h2>Known divergences</h2><ul>" + "".join(
        f"<li>{e(k)}: {n} hit(s){' -- <b>fixed? not seen this run</b>' if n == 0 else ''}</li>"
        for k, n in sorted(summary["known_hits"].items())) + "</ul>")
    h.append("<h2>Unexplained mismatches and errors</h2><ul>" + "".join(
        f"<li>{e(u['case'])} {e(u['pair'])}: {e(u['summary'])}"
        + "".join(f"<br>unreviewed trap-entry CSR group <code>{e(f)}</code>" for f in u.get("trap_csr_unexplained") or [])
        + "</li>" for u in summary["unexplained"]) + "</ul>")
    t = summary.get("trend")
    h.append("<h2 id='trend'>Trend</h2>")
    if t is None:
        h.append("<p>No previous run in the parent directory.</p>")
    else:
        h.append(f"<p>Against {e(t['previous'] or '')}</p>")
        for k in ("new", "fixed", "still_failing"):
            h.append(f"<h3>{k.replace('_', ' ')} ({len(t[k])})</h3><ul>"
                     + "".join(f"<li><code>{e(f)}</code></li>" for f in t[k]) + "</ul>")
    h.append("<h2>Time per backend</h2><ul>" + "".join(
        f"<li>{e(b)}: {s:.1f} s ({summary['backend_share'][b]:.0%})</li>"
        for b, s in summary["backend_seconds"].items()) + "</ul></body></html>")
    return "\n".join(h) + "\n"
