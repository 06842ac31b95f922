"""Known divergences (`known-divergences.toml`, a reviewed data file).

Each entry names a backend and a version range, a fingerprint pattern (fnmatch over
``guest|hgatp|vs|a~b|kind|pc``, the engine's stable fingerprint, ARCHITECTURE section 7) and the
spec rule the backend breaks, or the implementation choice that explains it.  A mismatch whose
fingerprint matches an entry is shown with a hit count but does not fail the nightly; an entry that
matched nothing in a run that exercised its backend is reported as "fixed" so it can be removed.
"""
from __future__ import annotations

import fnmatch
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PATH = ROOT / "known-divergences.toml"


class KnownError(Exception):
    """The data file is unreadable or an entry lacks a required field."""


@dataclass
class Known:
    id: str
    backend: str                 # e.g. "qemu-7.2"
    versions: str                # e.g. ">=7.2,<8.0" (informational; backend names carry the version)
    fingerprint: str             # fnmatch pattern over the fingerprint
    rule: str                    # spec section broken, or implementation choice
    evidence: str
    upstream: str = ""
    hits: int = 0
    cases: list[str] = field(default_factory=list)

    def matches(self, fingerprint: str | None, a: str, b: str) -> bool:
        return bool(fingerprint) and self.backend in (a, b) and fnmatch.fnmatchcase(fingerprint, self.fingerprint)


REQUIRED = ("id", "backend", "versions", "fingerprint", "rule", "evidence")


def load(path: Path | str | None = None) -> list[Known]:
    p = Path(path) if path else DEFAULT_PATH
    if not p.exists():
        return []
    try:
        data = tomllib.loads(p.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise KnownError(f"{p}: cannot read known divergences: {e}") from None
    out = []
    for i, e in enumerate(data.get("divergence", [])):
        missing = [k for k in REQUIRED if not e.get(k)]
        if missing:
            raise KnownError(f"{p}: entry {i + 1} ({e.get('id', '?')}) lacks {', '.join(missing)}")
        out.append(Known(**{k: e[k] for k in REQUIRED}, upstream=e.get("upstream", "")))
    ids = [k.id for k in out]
    if len(set(ids)) != len(ids):
        raise KnownError(f"{p}: duplicate ids")
    return out


def classify(fingerprint: str | None, a: str, b: str, known: list[Known]) -> Known | None:
    """The matching entry that says the most: the most literal characters in its pattern (so
    "accessors|*|*|qemu-7.2~model*|trap.gva|cause=2[013]|0~1" wins over "accessors|*|*|qemu-7.2~*|*|*")."""
    hits = [k for k in known if k.matches(fingerprint, a, b)]
    return max(hits, key=lambda k: len(k.fingerprint.replace("*", "")), default=None)
