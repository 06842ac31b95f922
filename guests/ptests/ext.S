/* ext: the multi-letter extensions the hart does not have are illegal instructions on every backend.
 * The hart (refmodel/platform.py) is RV64 ACHIMSU with Zicsr, Zifencei and the hints; QEMU's rv64 CPU
 * turns Zba/Zbb/Zbc/Zbs (7.2, 10.0) and Zicbom/Zicboz/Zawrs (10.0) on by default, so QEMU runs with
 * them off (platform.QEMU_EXTENSIONS_OFF) -- before that, riscv-tests rv64uzb* and rv64mzicbo
 * diverged at their first such instruction (QEMU ran it, the model trapped).
 *  - Unpriv. "RV32/64G Instruction Set Listings" / Priv. 3.1.15: an encoding of an extension that is
 *    not implemented is reserved: illegal instruction, mcause 2.
 *  - Unpriv. "Zicbop": prefetch.r/w/i are ORI with rd = x0, HINTs: they execute (no trap) on any hart.
 * The encodings are .word: the assembler's -march (rv64imac) has none of these extensions.
 */
#include "ptest.h"
#define ILLEGAL(n, insn)                                                \
        TEST(n);                                                        \
        EXPECT_MTRAP(1f);                                               \
        .word insn;                                                     \
        j ptest_fail;                                                   \
1:      CHECK(s9, 2)

PTEST_BEGIN
        la a1, scratch
        ILLEGAL(1, 0x20c5a533)               /* sh1add a0, a1, a2   (Zba) */
        ILLEGAL(2, 0x40c5f533)               /* andn a0, a1, a2     (Zbb) */
        ILLEGAL(3, 0x0ac59533)               /* clmul a0, a1, a2    (Zbc) */
        ILLEGAL(4, 0x28c59533)               /* bset a0, a1, a2     (Zbs) */
        ILLEGAL(5, 0x0045a00f)               /* cbo.zero (a1)       (Zicboz) */
        ILLEGAL(6, 0x0015a00f)               /* cbo.clean (a1)      (Zicbom) */
        ILLEGAL(7, 0x00d00073)               /* wrs.nto             (Zawrs) */
        TEST(8)                              /* prefetch.r 0(a1): a HINT (ori x0, a1, 1): no trap */
        .word 0x0015e013
        PTEST_PASS

        .data
        .align 6
scratch: .space 64
PTEST_DATA
