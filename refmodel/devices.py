"""The QEMU virt devices a guest touches: reset ROM, ns16550 UART, sifive_test finisher.

Addresses follow QEMU's hw/riscv/virt.c memory map (VIRT_MROM 0x1000, VIRT_TEST 0x100000,
VIRT_UART0 0x10000000).
"""
from __future__ import annotations

import struct

MROM_BASE, MROM_SIZE = 0x1000, 0xF000
TEST_BASE, TEST_SIZE = 0x100000, 0x1000
UART_BASE, UART_SIZE = 0x10000000, 0x100

FINISHER_PASS, FINISHER_FAIL, FINISHER_RESET = 0x5555, 0x3333, 0x7777


def reset_stub(start: int, fdt: int) -> bytes:
    """QEMU's riscv_setup_rom_reset_vec layout (RV64): a0 = mhartid, a1 = FDT address,
    a2 = fw_dynamic_info, jump to the ELF entry."""
    words = [
        0x00000297,   # auipc t0, 0
        0x02828613,   # addi  a2, t0, 40      (&fw_dynamic_info)
        0xF1402573,   # csrr  a0, mhartid
        0x0202B583,   # ld    a1, 32(t0)      (fdt address)
        0x0182B283,   # ld    t0, 24(t0)      (start address)
        0x00028067,   # jr    t0
    ]
    blob = struct.pack("<6I", *words) + struct.pack("<QQ", start, fdt)
    # fw_dynamic_info: magic "OSBI", version 2, next_addr, next_mode (S=1), options, boot_hart
    blob += struct.pack("<6Q", 0x4942534F, 2, start, 1, 0, 0)
    return blob


class Uart:
    """ns16550: THR writes go to the console; LSR reports THR empty and no data ready."""

    def __init__(self):
        self.out: list[str] = []
        self.regs = bytearray(8)

    def read(self, off: int, size: int) -> int:
        if off == 5:
            return 0x60                           # LSR: THRE | TEMT
        if off < 8:
            return self.regs[off]
        return 0

    def write(self, off: int, size: int, val: int) -> str:
        if off == 0 and not self.regs[3] & 0x80:  # THR (DLAB clear)
            ch = chr(val & 0xFF)
            self.out.append(ch)
            return ch
        if off < 8:
            self.regs[off] = val & 0xFF
        return ""


def tohost_exit_code(value: int) -> int:
    """The exit code a non-zero tohost value ends the program with (the riscv-tests / HTIF
    convention: bit 0 set = an exit request, ``(code << 1) | 1``; 1 = pass, else code = the number of
    the failing test).  An even value is an HTIF device command, which nothing here serves: the
    program ends too, with the raw value as its code, so it can never read as a pass."""
    return value >> 1 if value & 1 else value


class Finisher:
    """How the program ends: the sifive_test device (0x5555 pass, (code << 16) | 0x3333 fail with
    code, 0x7777 reset) or a non-zero write to the ELF's ``tohost`` (tohost_exit_code).  ``end``
    says which: "finisher" or "tohost"."""

    def __init__(self):
        self.halted = False
        self.exit_code: int | None = None
        self.end = ""

    def write(self, val: int) -> None:
        status = val & 0xFFFF
        if status == FINISHER_PASS:
            self.halted, self.exit_code = True, 0
        elif status == FINISHER_FAIL:
            self.halted, self.exit_code = True, (val >> 16) & 0xFFFF
        elif status == FINISHER_RESET:
            self.halted, self.exit_code = True, 0
        if self.halted:
            self.end = "finisher"

    def tohost(self, value: int) -> None:
        """The doubleword at tohost after a store into it: a non-zero value ends the program."""
        if value and not self.halted:
            self.halted, self.exit_code, self.end = True, tohost_exit_code(value), "tohost"
