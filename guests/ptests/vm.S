/* vm: S-mode under satp Sv39, page faults taken in M and delegated to S.
 *  - Priv. 10.3.2 (Sv39 walk): a 1 GiB leaf at level 2 maps 0x80000000 1:1 (R W X, A and D set, so
 *    neither hardware A/D update nor Svade faults come into it); a VA whose level-2 PTE is invalid
 *    raises a page fault for the access type: 13 load, 15 store, 12 fetch; tval = the faulting VA.
 *  - 3.1.8 medeleg: store page faults (15) delegated to S, load page faults (13) not.
 *  - 10.1.11 satp: MODE 8 = Sv39; writing it from M then running in S translates.
 */
#include "ptest.h"
#define UNMAPPED 0x40000000
PTEST_BEGIN
        la t0, root
        li t1, (0x80000000 >> 12) << 10 | 0xcf  /* PPN, D A X W R V (G, U clear) */
        sd t1, 16(t0)                         /* VPN[2] = 2: 0x80000000 */
        srli t0, t0, 12
        li t1, 8 << 60
        or t0, t0, t1
        csrw satp, t0
        sfence.vma
        li t0, 1 << 15
        csrw medeleg, t0
        TEST(1)                              /* S-mode runs translated */
        GOTO_MODE(1, smode)
smode_done:
        CHECK(s9, 9)                         /* the ecall at its end */
        TEST(5)                              /* fetch page fault in S, taken in M */
        EXPECT_MTRAP(2f)
        li t0, 3 << 11; csrc mstatus, t0
        li t0, 1 << 11; csrs mstatus, t0
        li t0, UNMAPPED; csrw mepc, t0
        mret
2:      CHECK(s9, 12)
        li t0, UNMAPPED
        bne s8, t0, ptest_fail
        csrw satp, zero
        csrw medeleg, zero
        PTEST_PASS

smode:
        TEST(2)                              /* load through the gigapage */
        la t0, value
        ld a0, 0(t0)
        CHECK(a0, 0x5a5a)
        TEST(3)                              /* load page fault: not delegated, taken in M */
        EXPECT_MTRAP(3f)
        li t0, UNMAPPED
        ld a0, 8(t0)
        j ptest_fail
3:      CHECK(s9, 13)                        /* M resumes at 3f, still in M: back to S */
        li t0, UNMAPPED + 8
        bne s8, t0, ptest_fail
        GOTO_MODE(1, smode4)
smode4:
        TEST(4)                              /* store page fault: delegated, taken in S */
        EXPECT_STRAP(4f)
        li t0, UNMAPPED
        sd a0, 16(t0)
        j ptest_fail
4:      CHECK(s9, 15)
        li t0, UNMAPPED + 16
        bne s8, t0, ptest_fail
        la s11, smode_done
        ecall

        .data
        .align 12
root:   .zero 4096
value:  .dword 0x5a5a
PTEST_DATA
