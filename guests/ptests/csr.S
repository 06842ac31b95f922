/* csr: M and S CSRs as the platform describes them (refmodel/platform.py).
 *  - Priv. 3.1.1 misa: MXL = 2 (RV64) and the Extensions field of the described hart, RV64ACHIMSU:
 *    no F or D (the model has no FP state; QEMU runs with f=false,d=false).
 *  - 3.1.10 mscratch and 4.1.6 sscratch: full-width read/write.
 *  - 4.1.1 sstatus: "a restricted view of mstatus": SIE set through sstatus reads back in mstatus.
 */
#include "ptest.h"
PTEST_BEGIN
        TEST(1)
        csrr a0, misa
        li t0, 0x8000000000141185          /* RV64, A C H I M S U */
        bne a0, t0, ptest_fail
        TEST(2)
        andi a1, a0, (1 << 3) | (1 << 5)     /* D, F */
        bnez a1, ptest_fail
        TEST(3)
        li a0, 0x0123456789abcdef
        csrw mscratch, a0
        csrr a1, mscratch
        bne a0, a1, ptest_fail
        not a0, a0
        csrw sscratch, a0
        csrr a1, sscratch
        bne a0, a1, ptest_fail
        TEST(4)
        csrsi sstatus, 2                     /* SIE */
        csrr a0, mstatus
        andi a0, a0, 2
        CHECK(a0, 2)
        csrci sstatus, 2
        csrr a0, mstatus
        andi a0, a0, 2
        CHECK(a0, 0)
        PTEST_PASS
PTEST_DATA
