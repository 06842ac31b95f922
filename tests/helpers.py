"""Small things several test modules share."""
from __future__ import annotations

from pathlib import Path


def explain(case) -> str:
    """An engine case as an assertion message: each backend run's status, each pair's summary and,
    for a mismatch, the text report itself."""
    lines = [f"{case.guest} {case.hgatp_mode}/{case.vs_mode}: {case.status}"]
    for b, r in case.runs.items():
        lines.append(f"  {b}: {r.status} {r.error_class or ''} {r.message}")
    for p in case.pairs:
        lines.append(f"  {p.a}~{p.b}: {p.summary}")
        if p.report.get("txt"):
            lines.append(Path(p.report["txt"]).read_text())
    return "\n".join(lines)
