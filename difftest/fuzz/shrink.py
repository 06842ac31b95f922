"""Shrink a divergent scenario to a minimal one that still shows the same finding class, with Hypothesis.

The search (difftest.fuzz.search) finds a class (``what|a~b``) in some scenario of a batch.  Shrinking
runs that scenario alone: a Hypothesis test draws a *variant* of it -- each setup item and operation
kept or dropped, each PTE kept or simplified (valid default flags, reserved/N/PBMT bits cleared, A/D
set), VMID/ASID kept or 0 -- and fails when the variant still shows the class.  Every choice shrinks
toward "dropped"/"simplest", while random generation keeps most of the scenario, so Hypothesis first
finds a failing variant and then minimises it with its own shrinker: fewest operations, fewest PTEs,
simplest bits.  Its example database (``.cache/hypothesis-fuzz``, keyed per scenario and class) makes a
second shrink of the same finding start from the last minimum.
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from hypothesis import HealthCheck, given, seed, settings, strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase

from difftest.fuzz import runner as R
from difftest.fuzz import scenario as S
from difftest.fuzz import strategies as F

ROOT = Path(__file__).resolve().parent.parent.parent
DB = ROOT / ".cache" / "hypothesis-fuzz"
HIGH = (0x3ff << 54)             # reserved 54..60, PBMT, N


class _Reproduced(Exception):
    """The variant shows the class (Hypothesis's failure)."""


def _simplify_pte(pte: int, how: int, stage: str) -> int:
    if pte == 0 or how >= 3:
        return pte
    if how == 0:             # valid leaf, same PPN (U kept at the VS stage: VU accesses need it)
        default = F.G_LEAF if stage == "g" else F.VS_LEAF | (pte & F.U)
        return (pte & ~HIGH & ~0x3ff) | default
    if how == 1:
        return pte & ~HIGH
    return pte | F.A | F.D


@st.composite
def variant(draw, s: dict) -> dict:
    """A variant of ``s``: integers 0 = dropped / simplest; most draws keep the original."""
    def keep():
        return draw(st.integers(0, 15)) != 0

    out = dict(s, setup=[], ops=[])
    out["vmid"] = s["vmid"] if keep() else 0
    out["asid"] = s["asid"] if keep() else 0
    for key in ("setup", "ops"):
        for it in s[key]:
            if not keep():
                continue
            if it["t"] == "map":
                it = dict(it, pte=_simplify_pte(it["pte"], draw(st.integers(0, 15)), it["stage"]))
            elif it["t"] == "reloc":
                it = dict(it, leaf=_simplify_pte(it["leaf"], draw(st.integers(0, 15)), "vs"))
            out[key].append(it)
    if not S.probes(out):
        out["ops"].append(next(it for it in s["ops"] if it["t"] == "access"))
    return out


def size(s: dict) -> tuple:
    """What "smaller" means: operations, then PTEs and CSR items, then set high PTE bits."""
    bits = sum(bin(it.get("pte", it.get("leaf", 0)) & HIGH).count("1") for it in s["setup"] + s["ops"])
    return (len(s["ops"]), len(s["setup"]), bits, s["vmid"] + s["asid"])


def shrink(s: dict, cls: str, *, backends: list[str], work: Path, budget: float = 180.0,
           max_runs: int = 200, op: int | None = None, log=None) -> tuple[dict | None, int]:
    """(the smallest variant of ``s`` found that still shows ``cls``, or None; runs made).  ``op``: the
    index of the operation the class was seen at -- the operations after it are cut first (one run)."""
    best: list[dict] = []
    runs = [0]
    deadline = time.monotonic() + budget
    key = hashlib.sha256((cls + json.dumps(s, sort_keys=True)).encode()).digest()

    def shows(v: dict) -> bool:
        runs[0] += 1
        r = R.run_batch([v], backends=backends, out_dir=work / f"shrink{runs[0] % 4}")
        return any(f.cls == cls for f in r.findings)

    if op is not None and op + 1 < len(s["ops"]):
        cut = dict(s, ops=s["ops"][:op + 1])
        if shows(cut):
            s = cut
            best[:] = [cut]

    def test(v):
        # one raise site: Hypothesis tells failures apart by where they are raised, and two sites
        # would be two "distinct" failures (reported as flaky instead of shrunk)
        if not (best and v == best[0]):          # the minimum so far fails without a run (its replay)
            if time.monotonic() > deadline or runs[0] >= max_runs or not shows(v):
                return                           # out of budget, nothing more counts as failing
            if not best or size(v) <= size(best[0]):
                best[:] = [v]
                if log:
                    log(f"shrink {cls}: {len(v['ops'])} ops, {len(v['setup'])} setup items ({runs[0]} runs)")
        raise _Reproduced()

    test.__name__ = "fuzz_shrink"
    t = given(variant(s))(test)
    t._hypothesis_internal_add_digest = key
    DB.mkdir(parents=True, exist_ok=True)
    t = settings(database=DirectoryBasedExampleDatabase(str(DB)), max_examples=max_runs, deadline=None,
                 suppress_health_check=list(HealthCheck), print_blob=False)(t)
    t = seed(int.from_bytes(key[:4], "big"))(t)     # the same finding shrinks the same way
    try:
        t()
    except _Reproduced:
        pass
    except Exception as e:          # Hypothesis's own complaints (flaky, unsatisfiable): keep what we have
        if log:
            log(f"shrink {cls}: hypothesis stopped: {type(e).__name__}")
    return (best[0] if best else None), runs[0]
