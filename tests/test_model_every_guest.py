"""The model runs every guest in guests/ under every HGATP mode and every VS-stage mode the guest
declares, to the guest's own exit, and passes the guest's self-checks there -- with each QEMU
profile (the spec-allowed choices of QEMU 7.2 and of QEMU 10.0).  The model is the spec: a guest
probe that fails on it is either a wrong probe or a model bug, never a QEMU finding."""
from __future__ import annotations

import re

import pytest

from difftest import config_block as CB
from difftest import guests as G
from refmodel.hart import Hart
from refmodel.profile import PROFILES


# the runtime's guests (the standalone suites' programs end through tohost: tests/test_program_ends.py)
@pytest.mark.parametrize("guest", [g for g in G.list_guests() if not G.is_standalone(g)])
@pytest.mark.parametrize("profile", ["qemu-10.0", "qemu-7.2"])
def test_model_runs_guest_in_every_declared_mode(guest, profile, tmp_path):
    elf = G.build(guest)
    hgatp_modes, vs_modes = G.declared_modes(elf)
    assert hgatp_modes and vs_modes
    failed = []
    for hg in hgatp_modes:
        for vs in vs_modes:
            p = CB.patch_copy(elf, tmp_path / f"{hg}-{vs}", hgatp_mode=hg, vs_mode=vs).path
            h = Hart.from_elf(str(p), PROFILES[profile])
            n = sum(1 for _ in h.records(max_steps=2_000_000))
            out = h.uart_output
            if not (h.halted and h.exit_code == 0 and re.search(r"^DONE probes=\d+ fails=0$", out, re.M)
                    and not re.search(r"^X ", out, re.M)):
                failed.append(f"{hg}/{vs}: halted={h.halted} exit={h.exit_code} after {n} steps\n{out[-1500:]}")
    assert not failed, "\n".join(failed)
