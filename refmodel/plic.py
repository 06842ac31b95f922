"""The PLIC of QEMU virt, as far as a firmware sets it up (issue 12: OpenSBI's generic platform).

RISC-V Platform-Level Interrupt Controller specification 1.0.0, "Memory Map": interrupt priorities
at base + 4 * source, pending bits at base + 0x1000, each context's enable bits at base + 0x2000 +
0x80 * context, its priority threshold at base + 0x200000 + 0x1000 * context and its claim/complete
register 4 bytes above.  QEMU virt (hw/riscv/virt.c, the device tree's riscv,ndev = 95): base
0xc000000, 96 sources (source 0 does not exist: "Interrupt source 0 is reserved"), 3 priority bits
(VIRT_IRQCHIP_NUM_PRIO_BITS), and per hart two contexts, M then S ("MS").  Registers are 32 bits
wide; the devices of this model raise no interrupts, so nothing is ever pending and a claim returns
0 ("The PLIC can perform an interrupt claim ... If there is no pending interrupt ... returns 0").
"""
from __future__ import annotations

PLIC_BASE = 0xC000000
NUM_SOURCES = 96                 # 0 .. 95
PRIO_MASK = 0x7                  # 3 priority bits: WARL, the unimplemented bits read zero
PENDING_OFF, ENABLE_OFF, ENABLE_STRIDE = 0x1000, 0x2000, 0x80
CONTEXT_OFF, CONTEXT_STRIDE = 0x200000, 0x1000


class PlicAccessError(Exception):
    """An access the PLIC does not accept (not 32 bits, misaligned): an access fault on the bus."""


class Plic:
    """One PLIC with ``contexts`` interrupt targets (virt: 2 per hart)."""

    def __init__(self, contexts: int = 2):
        self.contexts = contexts
        self.size = CONTEXT_OFF + CONTEXT_STRIDE * contexts
        self.priority = [0] * NUM_SOURCES
        self.enable = [[0] * (NUM_SOURCES // 32) for _ in range(contexts)]
        self.threshold = [0] * contexts

    def contains(self, pa: int) -> bool:
        return PLIC_BASE <= pa < PLIC_BASE + self.size

    def _where(self, pa: int, size: int):
        """(kind, index, word) of the register at ``pa``; kind None for a hole (reads 0, ignores writes)."""
        if size != 4 or pa & 3:
            raise PlicAccessError(pa)
        off = pa - PLIC_BASE
        if off < 4 * NUM_SOURCES:
            return "priority", off // 4, 0
        if PENDING_OFF <= off < PENDING_OFF + NUM_SOURCES // 8:
            return "pending", 0, (off - PENDING_OFF) // 4
        if ENABLE_OFF <= off < ENABLE_OFF + ENABLE_STRIDE * self.contexts:
            ctx, w = divmod(off - ENABLE_OFF, ENABLE_STRIDE)
            if w < NUM_SOURCES // 8:
                return "enable", ctx, w // 4
        if off >= CONTEXT_OFF:
            ctx, r = divmod(off - CONTEXT_OFF, CONTEXT_STRIDE)
            if r == 0:
                return "threshold", ctx, 0
            if r == 4:
                return "claim", ctx, 0
        return None, 0, 0

    def read(self, pa: int, size: int) -> int:
        kind, i, w = self._where(pa, size)
        if kind == "priority":
            return self.priority[i]
        if kind == "enable":
            return self.enable[i][w]
        if kind == "threshold":
            return self.threshold[i]
        return 0                      # pending: none; claim: no pending interrupt; holes read 0

    def write(self, pa: int, size: int, val: int) -> None:
        kind, i, w = self._where(pa, size)
        val &= 0xFFFFFFFF
        if kind == "priority" and i:                      # source 0 does not exist
            self.priority[i] = val & PRIO_MASK
        elif kind == "enable":
            self.enable[i][w] = val & ~1 if w == 0 else val   # no enable bit for source 0
        elif kind == "threshold":
            self.threshold[i] = val & PRIO_MASK
        # pending is read-only; a completion of a source that was never claimed is ignored
