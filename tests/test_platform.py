"""One hart, described once (issue 12): refmodel/platform.py drives QEMU's command line and the model's
profile; --ram reaches both backends; the header and the trace cache key record the description.
Measured against real QEMU 7.2 and 10.0 (misa through the gdbstub) and real guests."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from difftest import cache, engine, guests as G
from difftest.backends import gdbstub, qemu
from difftest.backends.binaries import KNOWN, locate
from refmodel.platform import DEFAULT, parse_size, platform_for
from refmodel.profile import PROFILES

ROOT = Path(__file__).resolve().parent.parent
QEMUS = [q for q in ("qemu-7.2", "qemu-10.0") if KNOWN[q][0].exists()]
need_qemu = pytest.mark.skipif(len(QEMUS) < 2 or shutil.which(G.CC) is None,
                               reason="QEMU 7.2, 10.0 and the cross compiler are needed (run scripts/setup)")
RV64_ACHIMSU = 0x8000000000141185


def test_the_described_hart_has_no_fp_and_the_model_says_so():
    assert DEFAULT.misa == RV64_ACHIMSU and not DEFAULT.has_fp
    for name, prof in PROFILES.items():
        assert prof.misa == RV64_ACHIMSU, name               # misa no longer claims F or D
        assert (prof.ram_size, prof.fdt_addr, prof.pmp_entries) == (128 << 20, 0x87E00000, 16), name
    big = PROFILES["qemu-10.0"].on(platform_for("256M"))
    assert (big.ram_size, big.fdt_addr, big.misa, big.tinst_policy) == (256 << 20, 0x8FE00000, RV64_ACHIMSU,
                                                                         "transformed")


def test_fdt_address_and_ram_sizes():
    assert [platform_for(s).fdt_addr for s in ("128M", "256M", "1G", "4G")] == \
        [0x87E00000, 0x8FE00000, 0xBFE00000, 0xBFE00000]       # capped below 3 GiB, as QEMU does
    assert parse_size("256M") == parse_size("256") == 256 << 20 and parse_size("1G") == 1 << 30
    for bad in ("", "12X", "1K", "1.5G"):
        with pytest.raises(ValueError):
            parse_size(bad)


@need_qemu
def test_qemu_command_line_is_derived_from_the_description():
    q72, q10 = locate("qemu-7.2"), locate("qemu-10.0")
    assert qemu.cpu_config(q72, "default") == \
        "rv64,h=true,mmu=on,pmp=on,f=false,d=false,zba=false,zbb=false,zbc=false,zbs=false,sstc=false,debug=false"
    # 10.0 refuses f=false with Zfa on ("Zfa extension requires F extension"); 7.2 has no zfa property
    # QEMU's default Zb*/Zicbom/Zicboz/Zawrs are off: the model has none of them (platform.QEMU_EXTENSIONS_OFF)
    assert qemu.cpu_config(q10, "sv39") == ("rv64,h=true,mmu=on,pmp=on,f=false,d=false,zfa=false,zba=false,zbb=false,"
                                            "zbc=false,zbs=false,zicbom=false,zicboz=false,zawrs=false,sstc=false,"
                                            "debug=false,sv39=on")
    cmd = qemu.base_command(q10, Path("x.elf"), "default", platform_for("256M"))
    assert cmd[cmd.index("-m") + 1] == "256M"
    assert qemu.machine_options(q72, DEFAULT) == qemu.MACHINE     # 7.2 has no -audio


@need_qemu
@pytest.mark.parametrize("backend", ["qemu-7.2", "qemu-10.0"])
def test_qemu_reports_the_described_misa(backend):
    """misa read through QEMU's gdbstub at the first guest instruction, with the derived command line."""
    b = locate(backend)
    with tempfile.TemporaryDirectory() as t:
        elf = G.build("ptest_csr")
        cmd = qemu.base_command(b, elf, "default")
        # the program spins after its tohost write: the gdbstub run ends there (tohost.py)
        stops = gdbstub.read_at(cmd, b.env, {0x80000000}, ("misa",), Path(t), 20, tohost=qemu.program_end(elf))
    assert stops and stops[0]["misa"] == DEFAULT.misa == RV64_ACHIMSU


def test_cache_key_and_header_carry_the_description(tmp_path):
    class B:
        env: dict = {}

        def identity(self):
            return {"path": "q", "version": "1"}
    elf = tmp_path / "x.elf"
    elf.write_bytes(b"\x7fELF")
    k = [cache.key(B(), elf, "default", 10, "", "", ["cmd"], p.describe()) for p in (DEFAULT, platform_for("256M"))]
    assert k[0] != k[1]
    assert platform_for("256M").describe()["ram_size"] == "256M" and DEFAULT.describe()["isa"] == "RV64ACHIMSU"


def _difftest(tmp_path, *args):
    env = {**os.environ, "DIFFTEST_TRACE_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "difftest.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


@need_qemu
def test_ram_256m_reaches_both_backends(tmp_path):
    """ptest_bigram is linked at 0x8c000000 and checks a1 = 0x8fe00000 (the FDT QEMU places below the end
    of 256 MiB): it runs to its tohost exit on 7.2, 10.0 and the model only with --ram 256M."""
    case = engine.run_case("ptest_bigram", backends=["qemu-7.2", "qemu-10.0", "model"], out_dir=tmp_path / "o",
                           timeout=60, use_cache=False, platform=platform_for("256M"))
    assert case.status == "match", [(p.a, p.b, p.status) for p in case.pairs]
    for b, r in case.runs.items():
        assert (r.footer.exit_code, r.footer.end) == (0, "tohost"), (b, r.message)
        assert r.header.platform["ram_size"] == "256M" and r.header.platform["fdt_addr"] == "0x8fe00000", b
    assert "-m 256M" in case.runs["qemu-10.0"].header.extra["command_line"]
    p = _difftest(tmp_path, "run", "ptest_bigram", "--backend", "qemu-10.0,model")
    assert p.returncode == 125 and "outside RAM" in p.stderr + p.stdout and "--ram" in p.stderr + p.stdout
    p = _difftest(tmp_path, "run", "ptest_bigram", "--backend", "model", "--ram", "12X")
    assert p.returncode == 2 and "--ram" in p.stderr
    p = _difftest(tmp_path, "run", "ptest_bigram", "--backend", "qemu-7.2,model", "--ram", "256M")
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    assert "exit 0 (tohost)" in p.stdout


def test_model_uart_keeps_the_divisor_latch_behind_dlab():
    """PC16550D "Register addressing": offsets 0/1 are DLL/DLM only with LCR.DLAB set (the model used
    to return the divisor on an RBR read); end to end against both QEMUs: guests/ptests/uart.S."""
    from refmodel.devices import Uart
    u = Uart()
    assert [u.read(k, 1) for k in range(8)] == [0, 0, 0x01, 0, 0x08, 0x60, 0xB0, 0]
    u.write(3, 1, 0x83)
    assert (u.read(0, 1), u.read(1, 1)) == (0x0C, 0)
    u.write(0, 1, 0x01)
    u.write(1, 1, 0x02)
    u.write(3, 1, 0x03)
    assert (u.read(0, 1), u.read(1, 1), u.out) == (0, 0, [])     # RBR and IER, not the divisor; nothing sent
    assert u.write(0, 1, ord("A")) == "A"
