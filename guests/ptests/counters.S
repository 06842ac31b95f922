/* counters: minstret writes (Priv. 3.1.11: mcycle and minstret are read/write counters).
 *  - Unpriv. Zicsr "CSR Access Ordering": "Some CSRs, such as the instructions-retired counter,
 *    instret, may be modified as side effects of instruction execution.  In these cases, if a CSR
 *    access instruction reads a CSR, it reads the value prior to the execution of the instruction.
 *    If a CSR access instruction writes such a CSR, the write is done instead of the increment.  In
 *    particular, a value written to instret by one instruction will be the value read by the
 *    following instruction."  (riscv-tests rv64mi instret_overflow test 2 checks the same.)
 *  - The count goes on from the value written: two instructions later it reads value + 2.
 */
#include "ptest.h"
PTEST_BEGIN
        csrci mcountinhibit, 4               /* IR clear: minstret counts */
        TEST(1)
        csrwi minstret, 0
        csrr a0, minstret
        CHECK(a0, 0)
        TEST(2)
        li t0, 1000
        csrw minstret, t0
        nop
        nop
        csrr a0, minstret
        CHECK(a0, 1002)
        PTEST_PASS
PTEST_DATA
