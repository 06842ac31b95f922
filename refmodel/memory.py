"""The physical address space: RAM plus devices; anything else is an access fault
(Priv. 3.6 "Physical memory attributes": a non-existent region fails the access)."""
from __future__ import annotations

import mmap
import struct

from refmodel.aclint import MSWI_BASE, MTIMER_BASE, MTIMER_SIZE, Aclint, AclintAccessError
from refmodel.devices import (MROM_BASE, MROM_SIZE, TEST_BASE, TEST_SIZE, UART_BASE, UART_SIZE,
                              Finisher, Uart)
from refmodel.plic import Plic, PlicAccessError

_U = {1: struct.Struct("<B"), 2: struct.Struct("<H"), 4: struct.Struct("<I"), 8: struct.Struct("<Q")}


class BusError(Exception):
    """No device or RAM at this physical address."""


class Memory:
    def __init__(self, ram_base: int, ram_size: int):
        self.ram_base, self.ram_size = ram_base, ram_size
        # anonymous mapping: zero-filled on first touch, so a 128 MiB hart is cheap to create
        self.ram = mmap.mmap(-1, ram_size)
        self.rom = bytearray(MROM_SIZE)
        self.uart = Uart()
        self.finisher = Finisher()
        # ACLINT MSWI + MTIMER (refmodel.aclint); the hart gives it its instruction count
        self.aclint = Aclint(lambda: 0)
        self.plic = Plic()               # refmodel.plic: what a firmware programs (nothing is pending)
        self.last_uart = ""

    def is_ram(self, pa: int, size: int) -> bool:
        return self.ram_base <= pa and pa + size <= self.ram_base + self.ram_size

    def load_bytes(self, pa: int, data: bytes) -> None:
        """Copies the parts of ``data`` that fall in RAM or ROM (like QEMU's ROM blobs, bytes
        over unmapped addresses are invisible); a segment with no byte in either is an error."""
        placed = False
        for base, buf in ((self.ram_base, self.ram), (MROM_BASE, self.rom)):
            lo, hi = max(pa, base), min(pa + len(data), base + len(buf))
            if lo < hi:
                buf[lo - base:hi - base] = data[lo - pa:hi - pa]
                placed = True
        if not placed and data:
            raise ValueError(f"segment at 0x{pa:x} (+0x{len(data):x}) is outside RAM and ROM")

    def read(self, pa: int, size: int) -> int:
        o = pa - self.ram_base
        if 0 <= o and o + size <= self.ram_size:
            return _U[size].unpack_from(self.ram, o)[0]
        if MROM_BASE <= pa and pa + size <= MROM_BASE + MROM_SIZE:
            return _U[size].unpack_from(self.rom, pa - MROM_BASE)[0]
        if UART_BASE <= pa < UART_BASE + UART_SIZE:
            return self.uart.read(pa - UART_BASE, size)
        if TEST_BASE <= pa < TEST_BASE + TEST_SIZE:
            return 0
        if MSWI_BASE <= pa < MTIMER_BASE + MTIMER_SIZE:
            try:
                return self.aclint.read(pa, size)
            except AclintAccessError:
                raise BusError(pa) from None
        if self.plic.contains(pa):
            try:
                return self.plic.read(pa, size)
            except PlicAccessError:
                raise BusError(pa) from None
        raise BusError(pa)

    def write(self, pa: int, size: int, val: int) -> None:
        o = pa - self.ram_base
        if 0 <= o and o + size <= self.ram_size:
            _U[size].pack_into(self.ram, o, val & ((1 << (8 * size)) - 1))
            return
        if UART_BASE <= pa < UART_BASE + UART_SIZE:
            self.last_uart += self.uart.write(pa - UART_BASE, size, val)
            return
        if TEST_BASE <= pa < TEST_BASE + TEST_SIZE:
            if pa == TEST_BASE:
                self.finisher.write(val)
            return
        if MSWI_BASE <= pa < MTIMER_BASE + MTIMER_SIZE:
            try:
                self.aclint.write(pa, size, val)
            except AclintAccessError:
                raise BusError(pa) from None
            return
        if self.plic.contains(pa):
            try:
                self.plic.write(pa, size, val)
            except PlicAccessError:
                raise BusError(pa) from None
            return
        raise BusError(pa)               # ROM is read-only: a store there faults too
