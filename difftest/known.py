"""Known divergences (`known-divergences.toml`, a reviewed data file): one entry per root cause,
listing exactly the findings it explains (difftest.findings).

    [[divergence]]
    id = "qemu10-gva-set-on-insn-traps"
    backend = "qemu-10.0"
    versions = ">=10.0,<10.1"
    rule = "the spec sentence the backend breaks (or the implementation choice that explains it)"
    evidence = "what was measured, where"
    upstream = ""                                   # optional
    findings = [
      "accessors|40,41|Xa(tval=nz,tinst=0,gva=1) + trap.gva cause=22 1~0|qemu-10.0~model@qemu-10.0",
      "fences|103-115|trap.gva cause=22 1~0|qemu-10.0~model@qemu-10.0",
    ]
    modes = ["sv39x4/*"]                            # optional: hgatp/vs (fnmatch) where it applies
    varies = ["trap_stale|211|...|qemu-7.2~model@qemu-7.2"]   # optional: findings it explains that a
                                                    # run may or may not show (QEMU-internal timing)
    plugin_findings = [...]                         # optional: ``findings`` as they read when this QEMU
                                                    # is traced by the plugin (--qemu-trace; load())

Each ``findings`` item is ``guest|probes|what|a~b`` -- probes a comma list of ids and ranges (or
``-``/``done``), ``what`` and the pair exactly as the finding names them: no wildcards, so an entry
can explain nothing it does not list.  Every listed (guest, probe, what, pair) is a *sub-finding*;
one that a run exercised but did not see makes the entry "partly fixed" (all of them: "fixed").
``varies`` items are explained the same way but not missed when absent: a QEMU outcome that depends on
QEMU's own state -- e.g. whether its softmmu TLB, which QEMU resizes and flushes by host time, still
holds a page -- with the reason in the evidence.
``difftest known --lint`` checks the file: fields, unique ids, well-formed items, no item listed by
two entries.
"""
from __future__ import annotations

import fnmatch
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PATH = ROOT / "known-divergences.toml"


class KnownError(Exception):
    """The data file is unreadable or an entry is malformed."""


@dataclass
class Known:
    id: str
    backend: str                 # e.g. "qemu-7.2"
    versions: str                # e.g. ">=7.2,<8.0" (informational; backend names carry the version)
    rule: str                    # spec section broken, or implementation choice
    evidence: str
    findings: list[str]          # "guest|probes|what|a~b" items as written
    upstream: str = ""
    modes: list[str] = field(default_factory=list)
    varies: list[str] = field(default_factory=list)
    plugin_findings: list[str] = field(default_factory=list)   # ``findings`` as the plugin source shows them
    subs: set = field(default_factory=set)       # expanded: (guest, probe, what, pair), varies included
    required: set = field(default_factory=set)   # the subs of ``findings`` (what "partly fixed" looks for)
    hits: int = 0
    seen: set = field(default_factory=set)       # sub-findings seen this run

    def matches(self, guest: str, probe: str, what: str, pair: str, hgatp: str = "", vs: str = "") -> bool:
        if (guest, probe, what, pair) not in self.subs:
            return False
        return not self.modes or any(fnmatch.fnmatchcase(f"{hgatp or '-'}/{vs or '-'}", m) for m in self.modes)


REQUIRED = ("id", "backend", "versions", "rule", "evidence", "findings")
_ITEM = re.compile(r"^([^|*?\[]+)\|([0-9,\- ]+|-|done)\|([^|]+)\|([^|~*?]+~[^|~*?]+)$")


def expand_probes(spec: str) -> list[str]:
    if spec in ("-", "done"):
        return [spec]
    out = []
    for part in spec.replace(" ", "").split(","):
        if "-" in part:
            lo, hi = part.split("-", 1)
            out += [str(i) for i in range(int(lo), int(hi) + 1)]
        elif part:
            out.append(str(int(part)))
    return out


def parse_item(item: str) -> list[tuple[str, str, str, str]]:
    m = _ITEM.match(item.strip())
    if not m:
        raise ValueError(f"not 'guest|probes|what|a~b' without wildcards: {item!r}")
    guest, probes, what, pair = m.groups()
    return [(guest, p, what.strip(), pair) for p in expand_probes(probes)]


def load(path: Path | str | None = None, *, must_exist: bool = False, plugin_for=()) -> list[Known]:
    """The entries.  ``plugin_for``: the QEMUs whose traces came from the plugin source
    (``--qemu-trace``); an entry for one of them that has ``plugin_findings`` lists those instead of
    ``findings`` -- the same probes and root cause, named as that source shows them (a faulting
    translation QEMU's plugin API cannot show is seen as the trap it raised: ``trap 13~5`` where the
    log gives ``xlat.fault_cause load 13~5``)."""
    p = Path(path) if path else DEFAULT_PATH
    if not p.exists():
        if must_exist or path:
            raise KnownError(f"{p}: no such known-divergences file")
        return []
    try:
        data = tomllib.loads(p.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise KnownError(f"{p}: cannot read known divergences: {e}") from None
    out = []
    owner: dict = {}
    for i, e in enumerate(data.get("divergence", [])):
        missing = [k for k in REQUIRED if not e.get(k)]
        if missing:
            raise KnownError(f"{p}: entry {i + 1} ({e.get('id', '?')}) lacks {', '.join(missing)}")
        k = Known(**{f: e[f] for f in REQUIRED}, upstream=e.get("upstream", ""), modes=list(e.get("modes", [])),
                  varies=list(e.get("varies", [])), plugin_findings=list(e.get("plugin_findings", [])))
        if k.plugin_findings and k.backend in set(plugin_for):
            k.findings = list(k.plugin_findings)
        for item in k.findings + k.varies:
            try:
                subs = parse_item(item)
            except ValueError as err:
                raise KnownError(f"{p}: entry {k.id}: {err}") from None
            for s in subs:
                if s in owner and owner[s] != k.id:
                    raise KnownError(f"{p}: {'|'.join(s)} is listed by both {owner[s]} and {k.id}: "
                                     "one root cause per finding")
                owner[s] = k.id
                k.subs.add(s)
                if item in k.findings:
                    k.required.add(s)
        out.append(k)
    ids = [k.id for k in out]
    if len(set(ids)) != len(ids):
        raise KnownError(f"{p}: duplicate ids")
    return out


def classify(guest: str, probe: str, what: str, pair: str, known: list[Known], hgatp: str = "",
             vs: str = "") -> Known | None:
    """The one entry that lists this finding, or None."""
    for k in known:
        if k.matches(guest, probe, what, pair, hgatp, vs):
            return k
    return None


def fixed_status(k: Known, exercised) -> tuple[str, list[str]]:
    """("", []) when every sub-finding the run could see was seen; ("partly fixed", missing) or
    ("fixed", missing) otherwise.  ``exercised(guest, pair)`` says whether the run ran that guest
    on that pair."""
    missing = sorted("|".join(s) for s in k.required if s not in k.seen and exercised(s[0], s[3]))
    if not missing:
        return "", []
    return ("fixed" if not k.seen else "partly fixed"), missing


def lint(path: Path | str | None = None) -> list[str]:
    """Problems of the file (empty: fine).  Loading checks the items; this adds what a reviewer wants."""
    try:
        known = load(path, must_exist=True)
        both = {k.backend for k in known}
        load(path, must_exist=True, plugin_for=both)      # the plugin variants parse and own their items too
    except KnownError as e:
        return [str(e)]
    out = []
    for k in known:
        backends = {pair.split("~")[0] for _, _, _, pair in k.subs} | {pair.split("~")[1] for _, _, _, pair in k.subs}
        if k.backend not in backends:
            out.append(f"{k.id}: backend {k.backend} is in none of its findings' pairs")
        if "priv" not in k.rule.lower() and "spec" not in k.rule.lower() and "choice" not in k.rule.lower():
            out.append(f"{k.id}: rule cites no specification section")
    return out


def run(args) -> int:
    """`difftest known`: list the catalogue's entries, or check the file (--lint)."""
    import json
    path = args.known or DEFAULT_PATH
    if args.lint:
        problems = lint(path)
        if args.json:
            print(json.dumps({"file": str(path), "problems": problems}, indent=1))
        else:
            for p in problems:
                print(p)
            print(f"{path}: {'ok' if not problems else f'{len(problems)} problem(s)'}")
        return 1 if problems else 0
    try:
        known = load(path, must_exist=True)
    except KnownError as e:
        from difftest.cli import UserError
        raise UserError(str(e))
    if args.json:
        print(json.dumps([{"id": k.id, "backend": k.backend, "findings": k.findings, "sub_findings": len(k.subs),
                           "rule": k.rule} for k in known], indent=1))
    else:
        for k in known:
            print(f"{k.id} ({k.backend}): {len(k.subs)} sub-finding(s)\n    {k.rule[:150]}")
    return 0


def add_subcommand(sub) -> None:
    import argparse
    p = sub.add_parser("known", help="the known-divergences catalogue: list entries, --lint the file",
                       formatter_class=argparse.RawDescriptionHelpFormatter, description=__doc__,
                       epilog="examples:\n  difftest known\n  difftest known --lint\n"
                              "exit: 0 fine, 1 the file has problems, 2 usage")
    p.add_argument("--lint", action="store_true", help="check fields, items, one entry per finding")
    p.add_argument("--known", help="file (default known-divergences.toml)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)
