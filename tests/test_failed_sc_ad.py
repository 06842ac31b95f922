"""profile.failed_sc_ad: the A/D side of a store-conditional that fails (Unpriv. "Zalrsc": "it is
UNSPECIFIED whether any side effects of implicit address translation ... (such as setting a page-table
entry D bit) occur on a failed sc.w"; "a failed sc.w may be treated like a store").  The real model
runs guests/sc_fail with each choice on QEMU 10.0's profile (G stage: menvcfg.ADUE=1, hardware
update; VS stage: henvcfg.ADUE=0, Svade faults): "store" faults at the VS-stage D=0 leaf (P 23) and
sets D at the G stage (P 13, no trap); "none" (both QEMUs' profiles) faults at neither and sets no D.
The permission checks are the same under both (P 10, 11: 23; P 20, 21: 15).  The QEMU side of it is
tests/test_guest_sc_fail.py (lockstep: P 13 and 23 agree)."""
from __future__ import annotations

import re

import pytest

from difftest import config_block as CB
from difftest import guests as G
from refmodel.hart import Hart
from refmodel.profile import PROFILES


def _leaf(h, va, stage):
    """The leaf PTE of ``stage`` ("vs" or "g") translating ``va`` from VS-mode (side-effect free)."""
    t = h.translate(va, "load", 1, 1)
    return [w.pte for w in t.walk if w.stage == stage and w.decision.startswith("leaf")][-1]


def _run(choice: str, tmp_path):
    elf = CB.patch_copy(G.build("sc_fail"), tmp_path, hgatp_mode="sv39x4", vs_mode="sv39").path
    h = Hart.from_elf(str(elf), PROFILES["qemu-10.0"].with_(failed_sc_ad=choice))
    for _ in h.records(max_steps=2_000_000):
        pass
    out = h.uart_output
    assert h.halted and re.search(r"^DONE probes=9 fails=0$", out, re.M), out
    p = {int(m.group(1)): m.group(0) for m in re.finditer(r"^P (\d+) .*$", out, re.M)}
    return p, _leaf(h, 0x100002010, "g"), _leaf(h, 0x300002018, "vs")


D = 1 << 7


@pytest.mark.parametrize("choice", ["store", "none"])
def test_failed_sc_ad_choice(choice, tmp_path):
    p, g_leaf, vs_leaf = _run(choice, tmp_path)
    for i, cause in ((10, 23), (11, 23), (20, 15), (21, 15)):     # permission checks: both choices
        assert f"trap cause={cause} " in p[i], p[i]
    assert not vs_leaf & D                                         # never set at the VS stage (ADUE=0)
    if choice == "store":
        assert "trap cause=15 " in p[23] and "allowed-outcome=1" in p[23], p[23]    # Svade at VS
        assert " ok " in p[13] and "allowed-outcome=2" in p[13], p[13]              # ADUE=1 at G:
        assert g_leaf & D                                                           # D set
    else:
        assert " ok " in p[23] and " ok " in p[13], (p[13], p[23])
        assert not g_leaf & D
