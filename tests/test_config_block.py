"""The configuration block (docs/ARCHITECTURE.md sections 2, 2a): read, patch a copy, round trip."""
from __future__ import annotations

import struct

import pytest

from difftest import config_block as CB
from difftest import guests as G


@pytest.fixture(scope="module")
def smoke():
    return G.build("smoke")


def test_read_declared(smoke):
    b = CB.read(smoke)
    assert b.magic == CB.MAGIC and b.version == 1
    assert b.hgatp_mode_names == ["bare", "sv39x4", "sv48x4", "sv57x4"] and b.vs_mode_names == ["bare"]
    assert (b.hgatp_mode, b.vs_mode) == (0, 0)          # default: lowest declared
    assert CB.read_selection(smoke) == [(1 << 64) - 1] * 64
    assert G.declared_modes(smoke) == (["bare", "sv39x4", "sv48x4", "sv57x4"], ["bare"])


@pytest.mark.parametrize("mode,value", [("bare", 0), ("sv39x4", 8), ("sv48x4", 9), ("SV57X4", 10)])
def test_patch_round_trip(smoke, tmp_path, mode, value):
    r = CB.patch_copy(smoke, tmp_path, hgatp_mode=mode)
    assert r.path.parent == tmp_path and r.hgatp_mode == mode.lower() and r.vs_mode == "bare"
    b = CB.read(r.path)
    assert (b.hgatp_mode, b.vs_mode, b.hgatp_modes) == (value, 0, CB.read(smoke).hgatp_modes)
    # only the 16 bytes of the two mode fields differ from the original
    a, p = smoke.read_bytes(), r.path.read_bytes()
    diff = [i for i in range(len(a)) if a[i] != p[i]]
    assert len(a) == len(p) and all(b.offset + 8 <= i < b.offset + 24 for i in diff)
    assert CB.read(smoke).hgatp_mode == 0            # the original is untouched
    assert CB.patch_copy(smoke, tmp_path, hgatp_mode=mode).path == r.path   # same request, same copy


def test_probe_selection(smoke, tmp_path):
    r = CB.patch_copy(smoke, tmp_path, hgatp_mode="sv39x4", probes=[1, 65, 4095])
    sel = CB.read_selection(r.path)
    assert sel[0] == 0b10 and sel[1] == 0b10 and sel[63] == 1 << 63 and sum(map(bool, sel)) == 3
    with pytest.raises(CB.ConfigBlockError):
        CB.selection_words([4096])


def test_undeclared_and_unknown_modes(smoke, tmp_path):
    with pytest.raises(CB.ConfigBlockError, match="does not declare VS mode sv48"):
        CB.patch_copy(smoke, tmp_path, vs_mode="sv48")
    with pytest.raises(CB.ConfigBlockError, match="unknown hgatp mode"):
        CB.patch_copy(smoke, tmp_path, hgatp_mode="sv32x4")
    assert CB.hgatp_value("sv48x4") == 9 and CB.vs_value("sv57") == 10


def test_elf_without_block_runs_as_is(tmp_path):
    import subprocess
    src = tmp_path / "t.S"
    src.write_text(".globl _start\n_start: j _start\n")
    elf = tmp_path / "t.elf"
    subprocess.run(["riscv64-unknown-elf-gcc", "-nostdlib", "-Ttext=0x80000000", str(src), "-o", str(elf)],
                   check=True)
    assert CB.read(elf) is None
    r = CB.patch_copy(elf, tmp_path / "out")
    assert r.path == elf and (r.hgatp_mode, r.vs_mode) == ("", "")
    with pytest.raises(CB.ConfigBlockError):
        CB.patch_copy(elf, tmp_path / "out", hgatp_mode="sv39x4")


def test_broken_elf_is_classified(tmp_path, smoke):
    bad = tmp_path / "bad.elf"
    bad.write_bytes(b"\x7fELF" + b"\0" * 10)
    with pytest.raises(CB.ConfigBlockError) as e:
        CB.read(bad)
    assert e.value.error_class == "bad-elf"
    with pytest.raises(CB.ConfigBlockError):
        CB.read(tmp_path / "missing.elf")
    data = bytearray(smoke.read_bytes())
    off = CB.read(smoke).offset
    struct.pack_into("<I", data, off, 0xdeadbeef)
    wrong = tmp_path / "wrong_magic.elf"
    wrong.write_bytes(bytes(data))
    with pytest.raises(CB.ConfigBlockError, match="magic"):
        CB.read(wrong)
