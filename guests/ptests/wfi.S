/* wfi: a program that ends in a final WFI with interrupts disabled, the way bare-metal programs halt
 * (README "Programs that end their own way": the end "wfi").
 *  - Priv. 3.3.3 WFI: "the hart resumes ... if a locally enabled interrupt becomes pending" (mip & mie,
 *    whatever mstatus.MIE or mideleg).  With mie = 0 no interrupt is locally enabled: the hart can
 *    never resume, and the program has ended -- without a pass/fail value.
 *  - Before it: an ecall from M and from S (3.1.15 mcause 11, 9) and a line on the console, so the
 *    end follows real work; a failed check ends through tohost with its test number instead.
 */
#include "ptest.h"
PTEST_BEGIN
        TEST(1)                              /* ecall from M, taken in M */
        EXPECT_MTRAP(1f)
        ecall
        j ptest_fail
1:      CHECK(s9, 11)
        TEST(2)                              /* ecall from S, taken in M */
        EXPECT_MTRAP(2f)
        GOTO_MODE(1, smode_ecall)
2:      CHECK(s9, 9)
        TEST(3)                              /* "wfi\n" on the ns16550 */
        li t1, 0x10000000
        li t0, 'w'; sb t0, 0(t1)
        li t0, 'f'; sb t0, 0(t1)
        li t0, 'i'; sb t0, 0(t1)
        li t0, '\n'; sb t0, 0(t1)
        csrci mstatus, 8                     /* MIE clear, no interrupt enabled in mie: the end */
        csrw mie, zero
halt:   wfi
        j halt

smode_ecall:
        ecall
        j ptest_fail
PTEST_DATA
