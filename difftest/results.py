"""Nightly results directory: one JSON per case (written atomically as it finishes), then
``summary.json``, ``junit.xml`` and a self-contained ``report.html`` with a trend section against
the previous run in the parent directory (keyed by fingerprint, never by step number)."""
from __future__ import annotations

import html
import json
import os
from pathlib import Path
from xml.sax.saxutils import quoteattr

from difftest.findings import probe_order

CASES = "cases"


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
            out |= {f["fingerprint"] for f in p.get("findings") or []}
            if p.get("status") == "error" and p.get("fingerprint"):
                out.add(p["fingerprint"])
        out |= {f["fingerprint"] for f in c.get("findings") or []}
    return out


def _family(a: str, b: str) -> str:
    if b == "model" or b.startswith("model@"):
        return f"{a}~model"
    return f"{a}~{b}"


def _pct(x: int, n: int) -> float:
    return round(100.0 * x / n, 2) if n else 100.0


def summarise(cases: list[dict], entries: dict, previous: dict | None, selection: dict | None = None) -> dict:
    """summary.json: findings (new first) with their hits per case, the catalogue entries' state,
    the steps compared per pair family, errors, time shares and the trend."""
    from difftest.engine import pair_command
    counts: dict[str, int] = {}
    for c in cases:
        counts[c["status"]] = counts.get(c["status"], 0) + 1
    agg: dict[str, dict] = {}
    errors = []
    steps: dict[str, dict] = {}
    for c in cases:
        for p in c.get("pairs", []):
            fam = steps.setdefault(_family(p["a"], p["b"]), {"compared": 0, "run": 0, "printing": 0, "skipped": 0})
            run = p.get("steps_run") or p.get("steps_compared") or 0
            fam["compared"] += p.get("steps_compared") or 0
            fam["run"] += run
            fam["printing"] += max(p.get("steps_printing") or [0, 0])
            fam["skipped"] += max(p.get("steps_skipped") or [0, 0])
            if p.get("status") == "error":
                errors.append({"case": c["id"], "pair": f"{p['a']}~{p['b']}", "summary": p.get("summary", ""),
                               "report": (p.get("report") or {}).get("html")})
        for p, f in [(p, f) for p in c.get("pairs", []) for f in p.get("findings") or []] + \
                [(None, f) for f in c.get("findings") or []]:
            e = agg.setdefault(f["fingerprint"], {
                "fingerprint": f["fingerprint"], "guest": c["guest"], "probe": f["probe"], "what": f["what"],
                "pair": f"{f['a']}~{f['b']}", "kind": f["kind"], "known": f.get("known"),
                "status": "known" if f.get("known") else "new", "summary": f.get("summary", ""),
                "lines": (f.get("lines") or [])[:3], "hits": []})
            cmd = pair_command(c["guest"], c.get("hgatp_mode", ""), c.get("vs_mode", ""),
                               [p["a"], p["b"]] if p else [f["a"]], c.get("cpu", "default"))
            e["hits"].append({"case": c["id"], "hgatp": c.get("hgatp_mode") or "-", "vs": c.get("vs_mode") or "-",
                              "cpu": c.get("cpu", "default"), "step": f.get("step"),
                              "report": ((p or {}).get("report") or {}).get("html"), "command": " ".join(cmd)})
            if e["known"] != f.get("known"):        # the same fingerprint tagged differently (modes): new wins
                e["known"] = e["known"] and f.get("known")
                e["status"] = "known" if e["known"] else "new"
    for t in steps.values():
        for k in ("compared", "printing", "skipped"):
            t[f"{k}_pct"] = _pct(t[k], t["run"])
    findings = sorted(agg.values(), key=lambda e: (e["status"] != "new", e["guest"], probe_order(e["probe"]),
                                                   e["pair"], e["what"]))
    seconds: dict[str, float] = {}
    for c in cases:
        for b, s in c.get("seconds", {}).items():
            seconds[b] = round(seconds.get(b, 0) + s, 3)
    total = sum(seconds.values()) or 1.0
    fps = failing_fingerprints(cases)
    trend = None
    if previous is not None:
        prev = set(previous.get("failing_fingerprints", []))
        note = ""
        if selection and previous.get("selection") and previous["selection"] != selection:
            # like with like: only the guests both runs selected
            common = set(selection.get("guests", [])) & set(previous["selection"].get("guests", []))
            prev = {f for f in prev if f.split("|")[0] in common}
            fps_c = {f for f in fps if f.split("|")[0] in common}
            note = f"the two runs selected different guests/backends; compared on the {len(common)} guest(s) both ran"
        else:
            fps_c = fps
        trend = {"previous": previous.get("out"), "new": sorted(fps_c - prev), "fixed": sorted(prev - fps_c),
                 "still_failing": sorted(fps_c & prev), "note": note}
    return {"cases": len(cases), "counts": counts, "findings": findings,
            "unexplained": [f for f in findings if f["status"] == "new"] + errors,
            "errors": errors, "entries": entries,
            "known_hits": {k: e["hits"] for k, e in entries.items()},
            "known_fixed": sorted(k for k, e in entries.items() if e["status"] == "fixed"),
            "known_partly_fixed": sorted(k for k, e in entries.items() if e["status"] == "partly fixed"),
            "steps": steps, "backend_seconds": seconds,
            "backend_share": {b: round(s / total, 3) for b, s in seconds.items()},
            "failing_fingerprints": sorted(fps), "trend": trend, "selection": selection}


def term_safe(s: str) -> str:
    """Text that may carry guest bytes (summaries, console lines), as a terminal, XML or HTML shows
    it: control characters and ESC sequences escaped (difftest.trace.escape_console)."""
    from difftest.trace import escape_console
    return escape_console(s or "", keep_newlines=False)


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
            msg = quoteattr(term_safe(p.get("summary", "")))
            if p.get("known"):
                lines.append(f"    <skipped message={quoteattr('known divergence ' + p['known'])}/>")
            elif p["status"] == "mismatch":
                body = "\n".join(f"{'NEW' if not f.get('known') else 'known ' + f['known']} {f['fingerprint']}"
                                 for f in p.get("findings") or []) or (p.get("fingerprint") or "")
                lines.append(f"    <failure message={msg}>{html.escape(term_safe(body))}</failure>")
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


def _findings_html(summary: dict) -> list[str]:
    """The report opens on this: every finding, new first, then the catalogue's state and the steps
    each pair family compared."""
    e = html.escape
    fs = summary["findings"]
    n_new = sum(1 for f in fs if f["status"] == "new")
    h = [f"<h2 id='findings'>Findings ({len(fs)}: {n_new} new)</h2>",
         "<table id='findings-table'><tr><th>status</th><th>guest</th><th>probe</th><th>what differs</th>"
         "<th>pair</th><th>hits (hgatp/vs cpu)</th><th>first report / reproduce</th></tr>"]
    for f in fs:
        st = "NEW" if f["status"] == "new" else f["known"]
        hits = ", ".join(sorted({f"{x['hgatp']}/{x['vs']}" + ("" if x["cpu"] == "default" else f" {x['cpu']}")
                                 for x in f["hits"]}))
        first = f["hits"][0]
        link = f"<a href='{e(first['report'])}'>report</a><br>" if first.get("report") else ""
        detail = "".join(f"<br><code>{e(term_safe(line))}</code>" for line in f.get("lines") or [])
        h.append(f"<tr class='{'new' if f['status'] == 'new' else 'known'}'><td>{e(st)}</td><td>{e(f['guest'])}</td>"
                 f"<td>{e(f['probe'])}</td><td><code>{e(f['what'])}</code>{detail}</td><td>{e(f['pair'])}</td>"
                 f"<td>{len(f['hits'])}: {e(hits)}</td><td>{link}<code>{e(first['command'])}</code></td></tr>")
    h.append("</table>")
    if summary["errors"]:
        h.append("<h2>Errors (backends that did not finish)</h2><ul>" + "".join(
            f"<li class='new'>{e(x['case'])} {e(x['pair'])}: {e(term_safe(x['summary']))}</li>"
            for x in summary["errors"]) + "</ul>")
    h.append("<h2 id='entries'>Known divergences (catalogue)</h2><table><tr><th>entry</th><th>hits</th>"
             "<th>state</th></tr>")
    for k, x in sorted(summary["entries"].items()):
        miss = "".join(f"<br><code>{e(m)}</code>" for m in x["missing"][:8])
        h.append(f"<tr><td>{e(k)}</td><td>{x['hits']}</td><td>{e(x['status'])}"
                 + (f": not seen{miss}" if x["missing"] else "") + "</td></tr>")
    h.append("</table><h2 id='steps'>Steps compared</h2><table><tr><th>pair family</th><th>compared</th>"
             "<th>printing lines that differ (checked as console text)</th><th>skipped</th><th>run</th></tr>")
    for fam, t in sorted(summary["steps"].items()):
        h.append(f"<tr><td>{e(fam)}</td><td>{t['compared']} ({t['compared_pct']}%)</td>"
                 f"<td>{t['printing']} ({t['printing_pct']}%)</td><td>{t['skipped']} ({t['skipped_pct']}%)</td>"
                 f"<td>{t['run']}</td></tr>")
    h.append("</table>")
    return h


def html_report(cases: list[dict], summary: dict, out: Path) -> str:
    e = html.escape
    guests = sorted({c["guest"] for c in cases})
    modes = sorted({c["hgatp_mode"] or "default" for c in cases},
                   key=lambda m: ["bare", "sv39x4", "sv48x4", "sv57x4"].index(m) if m in
                   ("bare", "sv39x4", "sv48x4", "sv57x4") else 9)
    h = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>difftest nightly</title><style>",
         "body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #888;padding:4px;"
         "vertical-align:top;font-size:12px}" + "".join(f".{k}{{background:{v}}}" for k, v in COLOURS.items()),
         ".new{background:#f7b0b0;font-weight:bold}code{font-size:11px}",
         "</style></head><body><h1>difftest nightly</h1>",
         f"<p>{summary['cases']} cases: " + ", ".join(f"{e(k)} {v}" for k, v in sorted(summary["counts"].items()))
         + "</p>"] + _findings_html(summary) + [
         "<h2>Matrix (guest x HGATP mode)</h2><table id='matrix'><tr><th>guest</th>"
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
                        fs = p.get("findings") or []
                        n_new = sum(1 for f in fs if not f.get("known"))
                        lab = e(f"vs={c['vs_mode'] or '-'} cpu={c['cpu']} {p['a']}~{p['b']}: "
                                + (f"{len(fs)} finding(s), {n_new} new" if fs else p["kind"] or p["status"]))
                        link = (p.get("report") or {}).get("html")
                        if link:
                            rel = os.path.relpath(link, out) if os.path.isabs(link) else link  # stored relative
                            items.append(f"<a class='mismatch-link' href='{e(rel)}'>{lab}</a>")
                        else:
                            items.append(lab)
            row.append(f"<td class='{st}'>{e(st)}<br>" + "<br>".join(items) + "</td>")
        h.append("".join(row) + "</tr>")
    h.append("</table>")
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
