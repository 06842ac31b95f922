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


def reset_stub(start: int, fdt: int, next_addr: int | None = None) -> bytes:
    """QEMU's riscv_setup_rom_reset_vec layout (RV64): a0 = mhartid, a1 = FDT address,
    a2 = fw_dynamic_info, jump to ``start`` (the ELF entry, or a firmware's entry).  fw_dynamic_info
    names the next stage: the payload's entry ``next_addr`` under a firmware, else ``start``."""
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
    blob += struct.pack("<6Q", 0x4942534F, 2, start if next_addr is None else next_addr, 1, 0, 0)
    return blob


class Uart:
    """ns16550 (PC16550D datasheet, "Register addressing"): offsets 0 and 1 are RBR/THR and IER with
    LCR.DLAB clear and the divisor latch DLL/DLM with it set; every other offset is one register
    whatever DLAB.  No input: RBR reads 0 and LSR says no data ready; the transmitter is always
    empty (THR writes go to the console at once).  Reset values and the bits that stick are QEMU
    virt's serial device (measured on 7.2 and 10.0: guests/ptests/uart.S): IER 0 (4 bits), IIR 0x01,
    LCR 0, MCR 0x08 = OUT2 (5 bits), LSR 0x60, MSR 0xb0 (DCD, DSR, CTS), SCR 0, divisor 0x000c."""

    def __init__(self):
        self.out: list[str] = []
        self.ier, self.lcr, self.mcr, self.scr, self.fcr = 0, 0, 0x08, 0, 0
        self.dll, self.dlm = 0x0C, 0
        self.thr_ipending = False        # THR empty interrupt pending (datasheet: cleared by reading IIR)

    def _iir(self) -> int:
        fifo = 0xC0 if self.fcr & 1 else 0
        if self.ier & 0x02 and self.thr_ipending:
            self.thr_ipending = False     # "Reading the IIR (if source of interrupt)" clears it
            return fifo | 0x02
        return fifo | 0x01

    def _msr(self) -> int:
        if self.mcr & 0x10:               # loopback: CTS<-RTS, DSR<-DTR, RI<-OUT1, DCD<-OUT2
            m = self.mcr
            return ((m & 2) << 3) | ((m & 1) << 5) | ((m & 4) << 4) | ((m & 8) << 4)
        return 0xB0

    def read(self, off: int, size: int) -> int:
        dlab = self.lcr & 0x80
        if off == 0:
            return self.dll if dlab else 0          # RBR: nothing received
        if off == 1:
            return self.dlm if dlab else self.ier
        if off == 2:
            return self._iir()
        if off == 3:
            return self.lcr
        if off == 4:
            return self.mcr
        if off == 5:
            return 0x60                             # LSR: THRE | TEMT, no data ready
        if off == 6:
            return self._msr()
        if off == 7:
            return self.scr
        return 0

    def write(self, off: int, size: int, val: int) -> str:
        val &= 0xFF
        dlab = self.lcr & 0x80
        if off == 0:
            if dlab:
                self.dll = val
                return ""
            self.thr_ipending = True                # sent at once: THR empty again
            ch = chr(val)
            self.out.append(ch)
            return ch
        if off == 1:
            if dlab:
                self.dlm = val
            else:
                # turning the THR empty interrupt on while THR is empty makes it pending, off clears it
                if (val ^ self.ier) & 0x02:
                    self.thr_ipending = bool(val & 0x02)
                self.ier = val & 0x0F
        elif off == 2:
            self.fcr = val
        elif off == 3:
            self.lcr = val
        elif off == 4:
            self.mcr = val & 0x1F
        elif off == 7:
            self.scr = val
        return ""


def tohost_exit_code(value: int) -> int:
    """The exit code a non-zero tohost value ends the program with (the riscv-tests / HTIF
    convention: bit 0 set = an exit request, ``(code << 1) | 1``; 1 = pass, else code = the number of
    the failing test).  An even value is an HTIF device command, which nothing here serves: the
    program ends too, with the raw value as its code, so it can never read as a pass."""
    return value >> 1 if value & 1 else value


class Finisher:
    """How the program ends: the sifive_test device (0x5555 pass, (code << 16) | 0x3333 fail with
    code, 0x7777 reset), a non-zero write to the ELF's ``tohost`` (tohost_exit_code) or a
    semihosting exit call.  ``end`` says which: "finisher", "tohost" or "semihosting"."""

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

    def semihosting_exit(self, code: int) -> None:
        """A semihosting exit call (refmodel/semihosting.py) with this exit code."""
        if not self.halted:
            self.halted, self.exit_code, self.end = True, code, "semihosting"

    def tohost(self, value: int) -> None:
        """The doubleword at tohost after a store into it: a non-zero value ends the program."""
        if value and not self.halted:
            self.halted, self.exit_code, self.end = True, tohost_exit_code(value), "tohost"
