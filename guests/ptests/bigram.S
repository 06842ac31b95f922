/* bigram: a program that needs 256 MiB of RAM (difftest run ptest_bigram --ram 256M).
 *  - Its .highram section is loaded at 0x8c000000, 192 MiB into RAM: with the default 128 MiB the
 *    harness refuses it as an input error (the segment lies outside RAM), never a false finding.
 *  - QEMU virt hands the payload the device tree address in a1 (hw/riscv/boot.c: the end of RAM,
 *    below 3 GiB, minus the FDT, 2 MiB aligned): 0x8fe00000 with 256 MiB.  The model derives the
 *    same address from the same platform description (refmodel/platform.py).
 * difftest: not in the nightly (the nightly runs the default 128 MiB; tests/test_platform.py runs it). */
#include "ptest.h"
PTEST_BEGIN
        TEST(1)
        li t0, 0x8fe00000
        bne a1, t0, ptest_fail
        TEST(2)                              /* the loader placed .highram */
        la t0, high
        ld a0, 0(t0)
        CHECK(a0, 0x1234abcd)
        TEST(3)                              /* RAM up there is read/write, up to its last doubleword */
        li t0, 0x8ffffff8
        li a0, 0x77
        sd a0, 0(t0)
        ld a2, 0(t0)
        bne a0, a2, ptest_fail
        PTEST_PASS

        .section .highram, "aw", @progbits
        .align 3
high:   .dword 0x1234abcd
PTEST_DATA
