/* traps: ecall from M, S and U and an illegal instruction, taken in M or delegated to S.
 *  - Priv. 3.1.15 mcause: 11 environment call from M, 9 from S, 8 from U; 2 illegal instruction.
 *  - 3.1.8 medeleg: a delegated exception from S/U traps into S (scause, sepc), never from M.
 *  - Unpriv. "F" absent (misa.F = 0): fmv.w.x is an illegal instruction (cause 2).
 *  - 3.1.16 mtval on illegal instruction: zero or the faulting instruction's bits (both allowed;
 *    the harness compares what each side wrote).
 */
#include "ptest.h"
PTEST_BEGIN
        TEST(1)                              /* ecall from M, taken in M */
        EXPECT_MTRAP(1f)
m_ecall:
        ecall
        j ptest_fail
1:      CHECK(s9, 11)
        la t0, m_ecall
        bne s7, t0, ptest_fail
        TEST(2)                              /* ecall from S, taken in M */
        EXPECT_MTRAP(2f)
        GOTO_MODE(1, smode_ecall)
2:      CHECK(s9, 9)
        TEST(3)                              /* ecall from U, delegated: taken in S */
        li t0, 1 << 8
        csrw medeleg, t0
        EXPECT_STRAP(3f)
        GOTO_MODE(0, umode_ecall)
3:      CHECK(s9, 8)                         /* now in S: go back to M with an ecall */
        EXPECT_MTRAP(4f)
        ecall
4:      CHECK(s9, 9)
        csrw medeleg, zero
        TEST(4)                              /* an FP instruction: illegal, F is not implemented */
        EXPECT_MTRAP(5f)
        .word 0xf0050053                     /* fmv.w.x f0, a0 */
        j ptest_fail
5:      CHECK(s9, 2)
        TEST(5)                              /* a CSR of M-mode read from U: illegal, taken in M */
        EXPECT_MTRAP(6f)
        GOTO_MODE(0, umode_csr)
6:      CHECK(s9, 2)
        TEST(6)                              /* an all-zero instruction word is illegal */
        EXPECT_MTRAP(7f)
        .word 0
        j ptest_fail
7:      CHECK(s9, 2)
        PTEST_PASS

smode_ecall:
        ecall
        j ptest_fail
umode_ecall:
        ecall
        j ptest_fail
umode_csr:
        csrr a0, mstatus
        j ptest_fail
PTEST_DATA
