"""Builds tests/data/qemu_guest for the QEMU backend tests (one ELF per hgatp MODE)."""
import shutil
import subprocess
from pathlib import Path

import pytest

SRC = Path(__file__).parent / "data" / "qemu_guest"
CC = shutil.which("riscv64-unknown-elf-gcc")
FLAGS = ["-O1", "-ffreestanding", "-nostdlib", "-march=rv64imac_zicsr_zifencei", "-mabi=lp64", "-mcmodel=medany",
         "-Wl,--no-warn-rwx-segments", "-T", str(SRC / "link.ld")]
MODES = {"bare": 0, "sv39x4": 8, "sv48x4": 9, "sv57x4": 10}


def build(out_dir: Path, mode: int) -> Path:
    if CC is None:
        pytest.skip("riscv64-unknown-elf-gcc is not installed (run scripts/setup)")
    out = out_dir / f"qg{mode}.elf"
    if not out.exists():
        subprocess.run([CC, *FLAGS, f"-DHGATP_MODE={mode}", str(SRC / "start.S"), str(SRC / "main.c"), "-o",
                        str(out)], check=True)
    return out


def build_hang(out_dir: Path, name: str = "hang") -> Path:
    """hang: waits in a wfi nothing can end (the end "wfi"); spin: j . forever (step limit, timeout)."""
    out = out_dir / f"{name}.elf"
    subprocess.run([CC, "-nostdlib", "-march=rv64imac", "-mabi=lp64", "-Wl,--no-warn-rwx-segments", "-T",
                    str(SRC / "link.ld"), str(SRC / f"{name}.S"), "-o", str(out)], check=True)
    return out
