"""The model runs helper A's `smoke` guest to its own exit under every HGATP mode
(ARCHITECTURE section 2 config block; guest console protocol section 3: `DONE ... fails=0`)."""
import struct

import pytest

from refmodel.hart import Hart
from refmodel.profile import PROFILES

MODES = {"bare": 0, "sv39x4": 8, "sv48x4": 9, "sv57x4": 10}


def patch_modes(src, dst, hgatp_mode, vs_mode=0):
    """Writes the two u64 mode fields of `difftest_config` into a copy (ARCHITECTURE section 2)."""
    from elftools.elf.elffile import ELFFile
    data = bytearray(open(src, "rb").read())
    with open(src, "rb") as f:
        elf = ELFFile(f)
        sym = elf.get_section_by_name(".symtab").get_symbol_by_name("difftest_config")
        if not sym:
            pytest.skip("smoke has no difftest_config symbol")
        addr = sym[0]["st_value"]
        for seg in elf.iter_segments():
            if seg["p_type"] == "PT_LOAD" and seg["p_vaddr"] <= addr < seg["p_vaddr"] + seg["p_filesz"]:
                off = seg["p_offset"] + addr - seg["p_vaddr"]
                break
        else:
            pytest.fail("difftest_config is not in a loaded segment")
    magic, _ = struct.unpack_from("<II", data, off)
    assert magic == 0x46434748
    struct.pack_into("<QQ", data, off + 8, hgatp_mode, vs_mode)
    open(dst, "wb").write(data)
    return dst


@pytest.fixture(scope="module")
def smoke_elf():
    guests = pytest.importorskip("difftest.guests")
    try:
        return str(guests.build("smoke"))
    except Exception as e:      # guest sources or toolchain not there yet
        pytest.skip(f"smoke guest not buildable: {e}")


@pytest.mark.parametrize("mode", list(MODES))
def test_smoke_runs_to_its_own_exit(smoke_elf, mode, tmp_path):
    elf = patch_modes(smoke_elf, tmp_path / f"smoke-{mode}.elf", MODES[mode])
    h = Hart.from_elf(str(elf), PROFILES["qemu-10.0"])
    n = sum(1 for _ in h.run(max_steps=5_000_000))
    assert h.halted, f"no exit after {n} steps; console:\n{h.uart_output}"
    assert "DONE" in h.uart_output and "fails=0" in h.uart_output.split("DONE")[-1], h.uart_output
    assert h.exit_code == 0
