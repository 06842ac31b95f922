"""Mismatch reports: text (terminal), Markdown and self-contained HTML.

A report is first built as a list of sections (``Section``), then rendered;
the three formats therefore always say the same thing.  Everything that came
from the guest or a backend (UART output, log lines, symbols) is escaped in
Markdown and HTML: it is guest-controlled.  ``docs/REPORTS.md`` explains how
to read one.
"""
from __future__ import annotations

import html
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from difftest.atomic import write_atomic
from difftest.compare import Divergence, PairResult
from difftest.compare import show as _h
from difftest.disasm import disasm
from difftest.trace import PRIV_NAMES, Step, Trap, WalkLevel, Xlat, escape_console


@dataclass
class Section:
    title: str
    paras: list[str] = field(default_factory=list)
    table: list[list[str]] | None = None       # first row = column heads
    pre: str | None = None                      # verbatim text (log lines, UART)
    mark_last_row: bool = False                 # highlight the divergent step


def _shown(fld: str, v) -> str:
    """A divergent value as the report prints it; console text escaped (never raw guest bytes)."""
    if fld == "uart" and isinstance(v, str):
        return '"' + escape_console(v, keep_newlines=False) + '"'
    return _h(v)


_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0x20), 0x7f, *range(0x80, 0xa0)] if c not in (0x09, 0x0a)}
_CONTROL.update({c: f"\\u{c:04x}" for c in (0x200e, 0x200f, *range(0x202a, 0x202f), *range(0x2066, 0x206a))})


def safe_text(s: str) -> str:
    """The last line of defence for text reports and the terminal: no control character, ESC
    sequence or bidi override survives (a tab and a newline do)."""
    return s.translate(_CONTROL)


def _priv(s: Step) -> str:
    if s.priv is None:
        return "?"
    return PRIV_NAMES.get((s.priv, s.v or 0), f"{s.priv}/{s.v}")


def _trap(t: Trap | None) -> str:
    if t is None:
        return ""
    parts = [f"{'irq' if t.interrupt else 'exc'} {t.cause}"]
    for k in ("epc", "tval", "htval", "tinst"):
        v = getattr(t, k)
        if v is not None:
            parts.append(f"{k}={_h(v)}")
    if t.gva is not None:
        parts.append(f"gva={int(bool(t.gva))}")
    if t.target:
        parts.append(f"->{t.target}")
    return " ".join(parts)


def _xlat(x: Xlat) -> str:
    s = f"{x.access} va={_h(x.va)} {PRIV_NAMES.get((x.priv, x.v), '?')}"
    if x.fault_stage:
        s += f" FAULT {x.fault_stage}-stage cause {x.fault_cause}" + (" (implicit)" if x.implicit else "")
    else:
        if x.gpa is not None:
            s += f" gpa={_h(x.gpa)}"
        s += f" pa={_h(x.pa)}"
    if x.maybe_stale:
        s += " maybe-stale"
    return s


def _cell(s: Step | None) -> list[str]:
    if s is None:
        return ["", "", "", ""]
    return [_h(s.pc), _priv(s), disasm(s.insn, s.pc), _trap(s.trap)]


def walk_rows(walk: list[WalkLevel]) -> list[list[str]]:
    rows = [["stage", "level", "PTE address", "PTE value", "decision"]]
    for w in walk:
        rows.append([w.stage.upper(), str(w.level), _h(w.pte_addr), f"0x{w.pte:016x}", w.decision])
    return rows


def build(pair: PairResult, div: Divergence | None, *, command: list[str] | None = None,
          walk: list[WalkLevel] | None = None, case: dict | None = None) -> list[Section]:
    """The report's sections.  ``walk`` is the model's walk for the translation
    in question when the trace did not carry it (engine re-runs the model)."""
    a, b = pair.a, pair.b
    secs = [Section("Summary", [pair.summary])]
    if case:
        secs[0].paras.append(", ".join(f"{k}: {v}" for k, v in case.items()))
    if div is not None and div.header_a is not None:
        secs[0].paras.append(f"{a}: {div.header_a.backend_version} ({div.header_a.cpu_config}); "
                             f"{b}: {div.header_b.backend_version} ({div.header_b.cpu_config})")
    if pair.fingerprint:
        secs[0].paras.append(f"fingerprint: {pair.fingerprint}")
    from difftest.cli import steps_line
    secs[0].paras.append(steps_line(pair) + " (docs/ARCHITECTURE.md 7a)")
    if pair.findings:
        rows = [["probe", "what differs", "kind", "first step", "pc", "known", "detail"]]
        for f in pair.findings:
            detail = "; ".join([escape_console(x) for x in f.lines[:2]] + [f"explains: {x}" for x in f.folded[:2]])
            rows.append([f.probe, f.what, f.kind, "-" if f.step is None else str(f.step), _h(f.pc),
                         f.known or "-", detail or f.summary])
        secs.append(Section(f"Findings ({len(pair.findings)}, one per probe; compared to the end)", [
            "Every probe in which the runs differ, in order.  After each divergence the comparison skipped "
            "to the next probe mark both runs reached and went on (docs/ARCHITECTURE.md 7a); the steps "
            "below show the first divergence."], rows))
    if div is not None:
        rows = [["step", f"{a} pc", "priv", "instruction", "trap", f"{b} pc", "priv", "instruction", "trap"]]
        for sa, sb in div.window + ([(div.step_a, div.step_b)] if (div.step_a or div.step_b) else []):
            i = (sa or sb).i
            rows.append([str(i)] + _cell(sa) + _cell(sb))
        secs.append(Section(f"Steps up to the divergence (last row: step {div.step})",
                            [f"First difference: {div.field}: {a} = {_shown(div.field, div.value_a)}, "
                             f"{b} = {_shown(div.field, div.value_b)}. "
                             f"{div.explanation}."], rows, mark_last_row=bool(div.step_a or div.step_b)))
        xl = []
        for name, s in ((a, div.step_a), (b, div.step_b)):
            if s is not None:
                for x in s.xlats:
                    mark = " <==" if x is div.xlat_a or x is div.xlat_b else ""
                    xl.append(f"{name}: {_xlat(x)}{mark}")
        if xl:
            secs.append(Section("Translations at that step", pre="\n".join(xl)))
        w = walk
        for x in (div.xlat_a, div.xlat_b):
            if w is None and x is not None and x.walk:
                w = x.walk
        if w:
            secs.append(Section("The model's page-table walk, level by level", [
                "Each row is one PTE read, root first; VS-stage PTE addresses are SPAs (after the "
                "implicit G-stage translation, Priv. 9.5.1)."], walk_rows(w)))
        raw = []
        for name, s in ((a, div.step_a), (b, div.step_b)):
            if s is None:
                continue
            bits = [s.raw] + [x.raw for x in s.xlats] + [s.trap.raw if s.trap else None]
            lines = []
            for r in bits:                    # the trap line may be attached to the step and the trap
                for ln in (r or "").splitlines():
                    if ln not in lines:
                        lines.append(ln)
            if lines:
                raw.append(f"--- {name}, step {s.i}\n" + "\n".join(lines))
        if raw:
            secs.append(Section("Backend log lines of that step", pre="\n".join(raw)))
        if div.kind in ("output", "exit") or (div.footer_a and div.footer_a.uart != (div.footer_b.uart if div.footer_b else None)):
            fa, fb = div.footer_a, div.footer_b
            if fa is not None and fb is not None:
                secs.append(Section("How the runs ended", [
                    f"{a}: {fa.status}, exit {fa.exit_code}, {fa.steps} steps {fa.message}".rstrip(),
                    f"{b}: {fb.status}, exit {fb.exit_code}, {fb.steps} steps {fb.message}".rstrip()],
                    pre=f"--- {a} UART\n{escape_console(fa.uart[-2000:])}\n--- {b} UART\n"
                        f"{escape_console(fb.uart[-2000:])}"))
    if pair.trap_csr:
        rows = [["field", "cause", "target", "traps", "first step", "pc", a, b, "fingerprint"]]
        for g in pair.trap_csr:
            rows.append([f"trap.{g['field']}", str(g["cause"]), g["target"] or "-", str(g["count"]),
                         str(g["first_step"]), _h(g["pc"]), _h(g["a"]), _h(g["b"]), g["fingerprint"]])
        secs.append(Section("Trap-entry CSR differences", [
            "Values trap entry wrote (htval/mtval2, htinst/mtinst, GVA) that differ. They change nothing the "
            "guest runs until it reads the CSR, so each is recorded at every trap and the comparison goes on "
            "(difftest/trap_csr.py); one row per field, cause and value class."], rows))
    secs.append(Section("Compared", [", ".join(pair.compared) or "-"]))
    secs.append(Section("Not compared", [", ".join(pair.not_compared) or "nothing"]))
    if command:
        secs.append(Section("Reproduce", pre=shlex.join(command)))
    return secs


# ---------------------------------------------------------------------------
# renderers

def _cols(rows: list[list[str]]) -> list[int]:
    return [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]


def render_text(secs: list[Section]) -> str:
    out = []
    for s in secs:
        out.append(f"== {s.title}")
        out.extend(s.paras)
        if s.table:
            w = _cols(s.table)
            for n, r in enumerate(s.table):
                line = "  ".join(c.ljust(w[i]) for i, c in enumerate(r)).rstrip()
                if s.mark_last_row and n == len(s.table) - 1:
                    line = ">> " + line
                elif n:
                    line = "   " + line
                else:
                    line = "   " + line
                out.append(line)
        if s.pre:
            out.extend("  " + ln for ln in s.pre.splitlines())
        out.append("")
    return safe_text("\n".join(out))


def _md_esc(s: str) -> str:
    # guest-controlled text: no raw HTML, no Markdown markup, no table breaks
    s = html.escape(s, quote=False)
    s = "".join("\\" + c if c in "\\`*_[]|#!" else c for c in s)
    return s.replace("\n", " ")


def render_markdown(secs: list[Section], title: str) -> str:
    out = [f"# {_md_esc(title)}", ""]
    for s in secs:
        out += [f"## {s.title}", ""]
        out += [_md_esc(p) + "\n" for p in s.paras]
        if s.table:
            out.append("| " + " | ".join(_md_esc(c) for c in s.table[0]) + " |")
            out.append("|" + "---|" * len(s.table[0]))
            for n, r in enumerate(s.table[1:], 1):
                cells = [_md_esc(c) or " " for c in r]
                if s.mark_last_row and n == len(s.table) - 1:
                    cells = [f"**{c}**" if c.strip() else c for c in cells]
                out.append("| " + " | ".join(cells) + " |")
            out.append("")
        if s.pre:
            fence = "````" if "```" in s.pre else "```"
            out += [fence, s.pre.replace(fence, "'''"), fence, ""]
    return safe_text("\n".join(out))


_CSS = """body{font-family:sans-serif;margin:1.5em;max-width:110em}table{border-collapse:collapse;font-family:monospace;font-size:90%}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}tr.div td{background:#fdd;font-weight:bold}
pre{background:#f6f6f6;padding:.6em;overflow-x:auto}h1{font-size:140%}h2{font-size:115%;margin-top:1.4em}"""


def render_html(secs: list[Section], title: str) -> str:
    e = html.escape
    out = ["<!DOCTYPE html>", "<html lang=en><head><meta charset=utf-8>",
           "<meta http-equiv=Content-Security-Policy content=\"default-src 'none'; style-src 'unsafe-inline'\">",
           f"<title>{e(title)}</title><style>{_CSS}</style></head><body>", f"<h1>{e(title)}</h1>"]
    for s in secs:
        out.append(f"<h2>{e(s.title)}</h2>")
        out += [f"<p>{e(p)}</p>" for p in s.paras]
        if s.table:
            out.append("<table><tr>" + "".join(f"<th>{e(c)}</th>" for c in s.table[0]) + "</tr>")
            for n, r in enumerate(s.table[1:], 1):
                cls = " class=div" if s.mark_last_row and n == len(s.table) - 1 else ""
                out.append(f"<tr{cls}>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>")
            out.append("</table>")
        if s.pre:
            out.append(f"<pre>{e(s.pre)}</pre>")
    out.append("</body></html>")
    return "\n".join(out)


def write_reports(pair: PairResult, div: Divergence | None, out_dir: str | os.PathLike, *, stem: str,
                  command: list[str] | None = None, walk=None, case: dict | None = None) -> dict[str, str]:
    """Write ``stem.txt``, ``stem.md`` and ``stem.html`` into ``out_dir``; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    secs = build(pair, div, command=command, walk=walk, case=case)
    title = f"difftest: {pair.a} vs {pair.b}: {pair.status}" + (f" ({pair.kind})" if pair.kind else "")
    paths = {}
    for ext, text in (("txt", render_text(secs)), ("md", render_markdown(secs, title)),
                      ("html", render_html(secs, title))):
        p = out / f"{stem}.{ext}"
        write_atomic(p, text)
        paths[ext] = str(p)
    return paths
