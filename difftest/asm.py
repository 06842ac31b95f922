"""One-file assembly programs (the bench guest, the tests' small guests): how they are assembled
and the M-mode code they all start with.

Guests under ``guests/`` are built by ``difftest.guests`` with the C runtime; these programs
are plain assembly linked at 0x80000000, where QEMU's ``-kernel`` and the model's loader put
them.  GCC 12 rejects ``_h`` in ``-march``, so the H instructions (HFENCE, HLV, HSV) reach the
assembler through ``-Wa,-march=...h...``.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from difftest.guests import CC

FLAGS = ["-nostdlib", "-static", "-march=rv64imac_zicsr_zifencei", "-mabi=lp64",
         "-Wa,-march=rv64imach_zicsr_zifencei", "-Wl,-Ttext=0x80000000", "-Wl,-N", "-Wl,--no-warn-rwx-segments"]


def have_cc() -> bool:
    return shutil.which(CC) is not None


def assemble(source: str, out, *extra_flags: str) -> Path:
    """Writes ``source`` next to ``out`` (``.S``) and assembles and links it into the ELF ``out``;
    ``extra_flags`` go to gcc (e.g. ``-Wl,--section-start=.pt=0x80100000``).  A failure raises
    CalledProcessError with the assembler's message."""
    out = Path(out)
    src = out.with_suffix(".S")
    src.write_text(source)
    subprocess.run([CC, *FLAGS, *extra_flags, "-o", str(out), str(src)], check=True, capture_output=True,
                   text=True)
    return out


# M-mode start: traps to the label ``mtrap``; PMP entry 0 grants lower modes all of memory
# (Priv. 3.7.1: with no PMP entry matching, S/U accesses fail -- and QEMU 7.2 makes even the
# mret to a lower mode an illegal instruction until one entry is configured).
PMP_OPEN = """  li t0, -1
  csrw pmpaddr0, t0
  li t0, 0x1f
  csrw pmpcfg0, t0
"""
M_PROLOGUE = """
.section .text
.globl _start
_start:
  la t0, mtrap
  csrw mtvec, t0
""" + PMP_OPEN

# G-stage leaf for the RAM gigapage GPA 0x80000000 -> SPA 0x80000000.  U|A|D|X|W|R|V: H
# "Guest Physical Address Translation" -- every G-stage leaf is a U-mode page, so U must be 1.
GIGA_LEAF = "((0x80000000 >> 12) << 10) | 0xdf"


def hgatp_identity_gigapage(mode, root: str = "gpt", io_leaf: str | None = None) -> str:
    """Fills root[2] with the RAM gigapage (the root of an Sv39x4 table is indexed by GPA[40:30]),
    and root[0] with ``io_leaf`` (GPA 0..1 GiB: UART, finisher) when given, then writes
    hgatp = MODE | root PPN and HFENCE.GVMA.  One root level only: Sv39x4 (or Bare, MODE 0);
    callers with deeper modes build their own tables."""
    io = f"  li t1, {io_leaf}\n  sd t1, 0(t0)\n" if io_leaf else ""
    return f"""  la t0, {root}
{io}  li t1, {GIGA_LEAF}
  sd t1, 16(t0)
  srli t0, t0, 12
  li t1, {mode}
  slli t1, t1, 60
  or t0, t0, t1
  csrw hgatp, t0
  hfence.gvma zero, zero
"""


# MRET into VS-mode at label ``vs``: MPP = S (bit 11), MPV = 1 (bit 39) (H "Trap Return").
ENTER_VS = """  li t0, (1 << 11) | (1 << 39)
  csrs mstatus, t0
  la t0, vs
  csrw mepc, t0
  mret
"""

# A 16 KiB-aligned, 16 KiB G-stage root (H: "the root page table is 16 KiB and must be aligned
# to a 16 KiB boundary").
GPT_DATA = """.section .data
.balign 16384
gpt: .fill 2048, 8, 0
"""

FINISH_PASS = """  li t6, 0x100000
  li t5, 0x5555
  sw t5, 0(t6)
"""
