"""guests/vs_adue on real QEMU 7.2 and 10.0, on the model, and in lockstep (the model passing it in every
mode is also tests/test_model_every_guest.py).  With menvcfg.ADUE=1 and henvcfg.ADUE=0, "the
implementation behaves as though Svade were implemented for VS-stage address translation" (Priv.
20240411, H "henvcfg"): a VS leaf with A=0 (or D=0, for a store) must raise 13/15 and stay unwritten --
for HLV/HLVX/HSV from HS and M and for MPRV+MPV accesses from M (V=0, translated "as though V=1") as
for an access from VS-mode.

FINDING (QEMU 10.0, known-divergences.toml qemu10-v0-vs-stage-ignores-henvcfg-adue; the fuzzer's
qemu10-mprv-mpv-ignores-henvcfg-adue): the V=0 accesses follow menvcfg.ADUE -- they set A/D and succeed:
  11/21/31 (HS: hlv.d, hlvx.wu, hsv.d), 41/51/61 (M: the same), 71/81 (M: mprv-ld, mprv-sd) at the A=0
  leaf; 33/63/83 (the stores) at the A=1 D=0 leaf; the PTE read back after each (even ids) has A/D set.
QEMU 7.2 has no Svadu (menvcfg.ADUE read-only 0) and always sets A/D: an allowed choice, no finding."""
from __future__ import annotations

import re

import pytest
from guest_lockstep import lockstep_findings
from test_guests import MODES, probe_lines, run_guest, x_ids

from difftest import config_block as CB
from difftest import guests as G
from refmodel.hart import Hart
from refmodel.profile import PROFILES

A_ZERO_LOADS = [11, 21, 41, 51, 71]            # HLV / HLVX / MPRV loads at the A=0 leaf
STORES = [31, 33, 61, 63, 81, 83]              # HSV / MPRV stores at both leaves
ACCESS_X = sorted(A_ZERO_LOADS + STORES)
X_10 = sorted(ACCESS_X + [i + 1 for i in ACCESS_X])   # and each one's pte-after
ENTRY = "qemu10-v0-vs-stage-ignores-henvcfg-adue"


def pte_after(p: dict, i: int) -> int:
    return int(re.search(r" ok val=0x([0-9a-f]+)", p[i + 1]).group(1), 16)


def assert_spec_outcome(out: str) -> None:
    """The outcome the spec requires with Svadu (menvcfg.ADUE=1, henvcfg.ADUE=0)."""
    p = probe_lines(out)
    for i in A_ZERO_LOADS:
        assert " trap cause=13 " in p[i] and " gva=1 " in p[i], p[i]
        assert pte_after(p, i) & 0xc0 == 0, p[i + 1]               # A, D still clear
    for i in STORES:
        assert " trap cause=15 " in p[i] and " gva=1 " in p[i], p[i]
    for i in (13, 43, 73, 93):                                     # loads at the A=1 D=0 leaf
        assert " ok val=" in p[i] and pte_after(p, i) & 0xc0 == 0x40, (p[i], p[i + 1])
    assert " trap cause=13 " in p[91] and " trap cause=15 " in p[101] and " trap cause=15 " in p[103]
    for i in (121, 123, 125):                                      # henvcfg.ADUE = 1: updated
        assert " ok val=" in p[i] and pte_after(p, i) & 0x40, (p[i], p[i + 1])


@pytest.mark.parametrize("mode", MODES)
def test_vs_adue_on_qemu10(mode, tmp_path):
    rc, out = run_guest("vs_adue", mode, "10.0", tmp_path, vs="sv39")
    assert x_ids(out) == X_10 and rc == 1, out
    assert re.search(rf"^DONE probes=46 fails={len(X_10)}$", out, re.M), out
    p = probe_lines(out)
    for i in ACCESS_X:                                             # succeeded: A (and D) set
        assert " ok val=" in p[i], p[i]
        assert pte_after(p, i) & 0xc0 == (0xc0 if i in STORES else 0x40), p[i + 1]
    # the controls agree with the spec: from VS-mode (V=1) henvcfg.ADUE=0 is honoured
    assert " trap cause=13 " in p[91] and pte_after(p, 91) & 0xc0 == 0, (p[91], p[92])
    assert " trap cause=15 " in p[101] and " trap cause=15 " in p[103], out


@pytest.mark.parametrize("mode", MODES)
def test_vs_adue_on_qemu72_updates_everywhere(mode, tmp_path):
    rc, out = run_guest("vs_adue", mode, "7.2", tmp_path, vs="sv39")
    assert x_ids(out) == [] and rc == 0, out
    p = probe_lines(out)
    for i in ACCESS_X + [91, 101, 103]:                            # no Svadu: the update, allowed
        assert " ok val=" in p[i] and "allowed-outcome=2" in p[i], p[i]
        assert pte_after(p, i) & 0x40, p[i + 1]


@pytest.mark.parametrize("mode", ["bare", "sv39x4"])
def test_model_follows_henvcfg_adue_for_v0_accesses(mode, tmp_path):
    """The model with QEMU 10.0's profile (Svadu): every VS-stage access faults at the A=0 leaf and
    leaves the PTE alone, whatever V is while it executes (refmodel/mmu.py _Walker.hw_update)."""
    elf = CB.patch_copy(G.build("vs_adue"), tmp_path, hgatp_mode=mode, vs_mode="sv39").path
    h = Hart.from_elf(str(elf), PROFILES["qemu-10.0"])
    for _ in h.records(max_steps=2_000_000):
        pass
    out = h.uart_output
    assert h.halted and h.exit_code == 0 and not re.search(r"^X ", out, re.M), out
    assert_spec_outcome(out)


def test_lockstep_findings_are_the_catalogued_ones(tmp_path):
    """Both QEMUs against the model in sv39x4: exactly the V=0 probes differ on 10.0, each tagged with
    the new entry; 7.2 matches its model (no Svadu, hardware A/D updating throughout)."""
    got, pairs = lockstep_findings("vs_adue", tmp_path, "--mode", "sv39x4", "--vs-mode", "sv39")
    assert got["qemu-7.2"] == set() and pairs[("qemu-7.2", "model@qemu-7.2")]["status"] == "match"
    assert {int(p) for p, _w, _k in got["qemu-10.0"]} == set(X_10), got
    assert {k for _p, _w, k in got["qemu-10.0"]} == {ENTRY}, got
    p = pairs[("qemu-10.0", "model@qemu-10.0")]
    assert p["steps_compared"] > 0.95 * p["steps_run"], p
