"""Findings: what differs, probe by probe (docs/ARCHITECTURE.md section 7a).

A *finding* is one probe's difference between two backends: (guest, probe, what differs, backend
pair), seen in some HGATP x VS modes.  The comparator (difftest.compare) runs every pair of traces to
its end, re-synchronising at the guests' probe marks after each divergence, and hands this module
what it saw per probe: the first hard divergence (pc, trap, translation), the trap-entry CSR values
that differed (difftest.trap_csr), and -- from the two consoles -- the guest's own self-check lines
(``X <id> expected ... got ...``) and probe lines (``P <id> ...``).  One finding per probe, its
``what`` naming every part, so a known divergence explains exactly the findings it lists and a new
part in a known probe is a new finding.

Fingerprint (stable: no step numbers, no pcs -- they move whenever code changes):

    guest|probe|what|a~b

``probe`` is the probe id, ``-`` before the first probe mark, ``done`` after rt_done's mark.  A model
run is named by the profile it ran with (``model@qemu-7.2``) even when the case had one QEMU, so an
entry is the same for ``--backend qemu-7.2,model`` and for the nightly's three-backend cases.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

DONE = "done"            # the segment after rt_done's mark (RT_MARK_DONE = 4096)
SETUP = "-"              # before the first probe mark, or a guest without marks
MARK_DONE_ID = 4096
N_MARKS = 4097


@dataclass
class Finding:
    probe: str                     # probe id, "-" or "done"
    what: str                      # every part that differs, " + "-joined, sorted (see parts())
    kind: str                      # primary kind: control-flow|trap|first-stage|second-stage|trap-csr|selfcheck|output|exit
    a: str                         # canonical backend names (model@<profile>)
    b: str
    fingerprint: str
    step: int | None = None        # first divergent step in the probe, side a (None: console only)
    step_b: int | None = None
    pc: int | None = None
    summary: str = ""              # one line a person reads
    lines: list[str] = field(default_factory=list)      # the console lines that differ (X/P)
    folded: list[str] = field(default_factory=list)     # differences explained as consequences of this finding
    count: int = 1                 # trap-entry CSR differences: traps with that difference
    known: str | None = None       # set by difftest.known.tag


def fingerprint(guest: str, probe: str, what: str, a: str, b: str) -> str:
    return f"{guest}|{probe}|{what}|{a}~{b}"


# ---------------------------------------------------------------------------
# value classes (what a rule can be written about without pinning addresses)

def vclass(v) -> str:
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, int):
        return "0" if v == 0 else "nz"
    return str(v)


# ---------------------------------------------------------------------------
# console lines (ARCHITECTURE section 3)

_KV = re.compile(r"(\w+)=(\S+)")
_HEX = re.compile(r"0x[0-9a-fA-F]+|\b\d{3,}\b")


def _outcome(text: str) -> dict:
    """'trap cause=21 tval=0x.. gva=1 to=M' -> {'trap': '1', 'cause': '21', ...}; 'ok val=..' likewise."""
    words = text.split()
    d = {"trap": "1" if words and words[0] == "trap" else "0" if words and words[0] == "ok" else "?"}
    d.update(_KV.findall(text))
    return d


def _cls(k: str, v: str) -> str:
    """A printed value as its class: small codes literally, addresses and data as 0 / nz."""
    if k in ("cause", "gva", "to", "spv", "spvp", "trap"):
        return v
    try:
        return "0" if int(v, 0) == 0 else "nz"
    except ValueError:
        return v


def _same(x: str, y: str) -> bool:
    try:
        return int(x, 0) == int(y, 0)
    except ValueError:
        return x == y


def selfcheck_fields(line: str, p_line: str = "") -> str:
    """The fields an ``X`` line says differ from the expectation, as classes: 'cause=2,gva=1'.  What the
    probe got is its P line (``p_line``), or the X line's own ``got ...`` (checks of a guest's own
    shape).  An X line without a probe id (rt_fail) is its text with numbers replaced by '#'."""
    m = re.match(r"X (\d+) expected (.*?)(?: got (.*))?$", line)
    if not m:
        return _HEX.sub("#", line[2:].strip())
    got_text = m.group(3) if m.group(3) is not None else p_line.split(" mode=", 1)[-1].split(" ", 1)[-1]
    exp_text = m.group(2).split(" or ")[0]
    exp, got = _outcome(exp_text), _outcome(got_text)
    bad = []
    for k, gv in got.items():
        if k not in exp or exp[k] in ("any",):
            continue
        alts = exp[k].replace("(0 only if htval=0)|", "0|").split("|")
        if not any(_same(gv, x) for x in alts):
            bad.append(f"{k}={_cls(k, gv)}")
    if exp.get("trap") != got.get("trap") and "?" not in (exp.get("trap"), got.get("trap")) \
            and not any(b.startswith("trap=") for b in bad):
        bad.insert(0, f"trap={got.get('trap')}")
    if not bad:
        # a check of a guest's own shape ("expected <text> got read=0x..."): what it got, as classes
        bad = [f"{k}={_cls(k, v)}" for k, v in got.items() if k != "trap"]
    return ",".join(bad) or "?"


def p_fields(la: str, lb: str) -> str:
    """Which key=value fields (and ok/trap) of two P lines of one probe differ, as classes a~b."""
    oa, ob = _outcome(la.split(" mode=", 1)[-1].split(" ", 1)[-1]), _outcome(lb.split(" mode=", 1)[-1].split(" ", 1)[-1])
    out = []
    for k in sorted(set(oa) | set(ob)):
        va, vb = oa.get(k), ob.get(k)
        if va != vb:
            out.append(f"{k}={_cls(k, va) if va else '-'}~{_cls(k, vb) if vb else '-'}")
    return ",".join(out) or "text"


def console_groups(text: str) -> dict[str, list[str]]:
    """The console's lines grouped by the probe they belong to: P/X lines by their id, an X line
    without an id (rt_fail) and any other line by the last probe id seen before it ("-" before any,
    "done" from the DONE line on)."""
    groups: dict[str, list[str]] = {}
    cur = SETUP
    for line in text.splitlines():
        m = re.match(r"([PX]) (\d+) ", line)
        if m:
            cur = m.group(2)
        elif line.startswith("DONE "):
            cur = DONE
        groups.setdefault(cur, []).append(line)
    return groups


def done_counts(text: str) -> tuple[int, int | None]:
    """(number of X lines, fails=N of the DONE line or None)."""
    xs = sum(1 for line in text.splitlines() if line.startswith("X "))
    m = re.search(r"^DONE probes=\d+ fails=(\d+)", text, re.M)
    return xs, (int(m.group(1)) if m else None)


def _p_line(group: list[str]) -> str:
    return next((x for x in group if x.startswith("P ")), "")


# ---------------------------------------------------------------------------
# assembling one pair's findings

@dataclass
class ProbeDiff:
    """What the comparator saw in one probe of one pair."""
    hard: tuple | None = None      # (kind, what, step_a, step_b, pc, summary) of the first hard divergence
    soft: dict = field(default_factory=dict)    # what -> [count, step, pc, summary] (trap-entry CSRs)
    extra: list = field(default_factory=list)   # more hard divergences after a resync in the same probe


def assemble(guest: str, a: str, b: str, probes: dict[str, ProbeDiff], uart_a: str | None,
             uart_b: str | None, exit_a: tuple, exit_b: tuple) -> list[Finding]:
    """One Finding per probe with any difference.  ``uart_*`` are the whole consoles (None: the run
    did not finish, no console comparison); ``exit_*`` = (status, code)."""
    ga = console_groups(uart_a) if uart_a is not None else {}
    gb = console_groups(uart_b) if uart_b is not None else {}
    console = uart_a is not None and uart_b is not None
    xs_a, fails_a = done_counts(uart_a or "")
    xs_b, fails_b = done_counts(uart_b or "")
    # the self-check summary follows from the X lines: DONE fails=N and the guest's exit code 1
    consistent = all(f is None or f == x for x, f in ((xs_a, fails_a), (xs_b, fails_b)))
    keys = sorted(set(probes) | (set(ga) | set(gb) if console else set()), key=probe_order)
    out: list[Finding] = []
    for p in keys:
        pd = probes.get(p) or ProbeDiff()
        la, lb = ga.get(p, []), gb.get(p, [])
        parts: list[str] = []
        folded: list[str] = []
        lines: list[str] = []
        kind = None
        xa = [x for x in la if x.startswith("X ")]
        xb = [x for x in lb if x.startswith("X ")]
        x_differs = console and xa != xb
        if x_differs:
            for tag, mine, other, group in (("a", xa, xb, la), ("b", xb, xa, lb)):
                extra = [x for x in mine if x not in other]
                if extra:
                    pl = _p_line(group)
                    parts.append(f"X{tag}({';'.join(sorted({selfcheck_fields(x, pl) for x in extra}))})")
                    lines += [f"{a if tag == 'a' else b}: {x}" for x in ([pl] if pl else []) + extra]
        hard = pd.hard
        if hard is not None:
            hkind, hwhat, step, step_b, pc, summ = hard
            if hkind == "control-flow" and hwhat == "control-flow pc" and x_differs:
                # the branch on the self-check's outcome: the X line says what differed
                folded.append(f"control flow parts at step {step} (the self-check branch): {summ}")
            elif p == DONE and hkind == "control-flow" and consistent and (xs_a != xs_b):
                folded.append(f"the DONE line's fail count differs, as the X lines do: {summ}")
            else:
                parts.append(hwhat)
                kind = hkind
        for w, ex in pd.extra:
            parts.append(w)
        for w in pd.soft:
            parts.append(w)
        pa_ = [x for x in la if x.startswith("P ")]
        pb_ = [x for x in lb if x.startswith("P ")]
        if console and pa_ != pb_:
            desc = "; ".join(p_fields(x, y) for x, y in zip(pa_, pb_) if x != y) or "count"
            if parts or folded:
                folded.append(f"probe line differs ({desc}), as the difference above explains")
            else:
                parts.append(f"P({desc})")
                lines += [f"{a}: {x}" for x in pa_ if x not in pb_] + [f"{b}: {x}" for x in pb_ if x not in pa_]
        other_a = [x for x in la if not x.startswith(("P ", "X ", "DONE "))]
        other_b = [x for x in lb if not x.startswith(("P ", "X ", "DONE "))]
        if console and other_a != other_b:
            parts.append("output")
            lines += [f"{a}: {x}" for x in other_a if x not in other_b] + [f"{b}: {x}" for x in other_b if x not in other_a]
        if p == DONE and console:
            da = [x for x in la if x.startswith("DONE ")]
            db = [x for x in lb if x.startswith("DONE ")]
            if da != db:
                if consistent and xs_a != xs_b:
                    folded.append(f"DONE lines differ as the X lines do: {da} vs {db}")
                else:
                    parts.append("output DONE")
                    lines += [f"{a}: {x}" for x in da] + [f"{b}: {x}" for x in db]
        if not parts:
            continue
        parts = sorted(dict.fromkeys(parts))
        what = " + ".join(parts)
        if kind is None:
            kind = "selfcheck" if any(x.startswith("X") for x in parts) else \
                "trap-csr" if pd.soft else "output"
        step = hard[2] if hard else (min(v[1] for v in pd.soft.values()) if pd.soft else None)
        pc = hard[4] if hard else (min(pd.soft.values(), key=lambda v: v[1])[2] if pd.soft else None)
        summ = hard[5] if hard and hard[1] in parts else \
            (next(iter(pd.soft.values()))[3] if pd.soft else (lines[0] if lines else what))
        out.append(Finding(p, what, kind, a, b, fingerprint(guest, p, what, a, b), step,
                           hard[3] if hard else None, pc, summ, lines, folded,
                           count=sum(v[0] for v in pd.soft.values()) or 1))
    # how the runs ended: the exit code follows from the X lines (rt_done returns 1 with fails > 0)
    if exit_a != exit_b:
        expl = consistent and xs_a != xs_b and {exit_a[0], exit_b[0]} == {"exit"} and \
            all(code == (1 if xs else 0) for (st, code), xs in ((exit_a, xs_a), (exit_b, xs_b)))
        if expl and out:
            out[-1].folded.append(f"exit codes {exit_a[1]} vs {exit_b[1]} follow from the X lines")
        else:
            what = f"exit {exit_a[0]} {exit_a[1]}~{exit_b[0]} {exit_b[1]}"
            out.append(Finding(DONE, what, "exit", a, b, fingerprint(guest, DONE, what, a, b),
                               summary=f"{a} ended {exit_a[0]} {exit_a[1]}, {b} ended {exit_b[0]} {exit_b[1]}"))
    return out


def probe_order(p: str):
    """Sort key: '-' first, probe ids in order, 'done' last."""
    return (0, -1) if p == SETUP else (2, 0) if p == DONE else (1, int(p)) if p.isdigit() else (3, 0)


def model_findings(guest: str, model: str, status: str, exit_code, uart: str) -> list[Finding]:
    """The model is the spec: a guest self-check that fails on it, or a guest that exits non-zero on
    it, is a model error or a wrong expectation in the guest -- never a pass, never a known divergence
    (pair ``model@X~guest``)."""
    out = []
    if status != "exit":
        return out
    groups = console_groups(uart or "")
    for p in sorted(groups, key=probe_order):
        xs = [x for x in groups[p] if x.startswith("X ")]
        if xs:
            what = f"Xa({';'.join(sorted({selfcheck_fields(x, _p_line(groups[p])) for x in xs}))})"
            out.append(Finding(p, what, "selfcheck", model, "guest", fingerprint(guest, p, what, model, "guest"),
                               summary=f"the guest's self-check fails on the model: {xs[0]}",
                               lines=[f"{model}: {x}" for x in xs]))
    # a non-zero exit is the guest's own verdict only for guests of our runtime (rt_done's DONE line);
    # any other program's exit code is data, compared between the backends like the rest
    if exit_code not in (0, None) and not out and re.search(r"^DONE probes=", uart or "", re.M):
        what = f"exit {exit_code}"
        out.append(Finding(DONE, what, "exit", model, "guest", fingerprint(guest, DONE, what, model, "guest"),
                           summary=f"the guest exits {exit_code} on the model with no X line"))
    return out
