/* ptest.h: a tiny environment of our own for riscv-tests "p" (physical, M-mode start) style
 * programs.  A program ends by writing tohost (the riscv-tests/HTIF convention the harness follows:
 * 1 = pass, (TESTNUM << 1) | 1 = test TESTNUM failed), then spins.
 *
 * Registers the environment owns:
 *   gp   TESTNUM, the number of the test running (what a failure reports)
 *   s11  where the M-mode trap handler resumes; 0 = no trap expected here (the handler fails)
 *   s10  where the S-mode trap handler resumes (same rule)
 *   s9, s8, s7  the last trap's cause, tval, epc, as the handler that took it read them
 *
 * Priv. 3.1.7 mtvec (Direct mode: all traps set pc to BASE) and 3.3.2 MRET/SRET.
 */
#ifndef PTEST_H
#define PTEST_H

#define TESTNUM gp

/* Begin: M-mode, both handlers installed, no trap expected, PMP entry 0 opens all memory to S/U
 * (Priv. 3.7.1: with any PMP entry implemented, S/U accesses that match none fail). */
#define PTEST_BEGIN                                                     \
        .section .text.init, "ax";                                      \
        .globl _start;                                                  \
_start:                                                                 \
        la t0, ptest_mtrap; csrw mtvec, t0;                             \
        la t0, ptest_strap; csrw stvec, t0;                             \
        li t0, -1; csrw pmpaddr0, t0;                                   \
        li t0, 0x1f; csrw pmpcfg0, t0;                                  \
        li s11, 0; li s10, 0; li TESTNUM, 0;                            \
        j ptest_main;                                                   \
        .align 2;                                                       \
ptest_mtrap:                                                            \
        csrr s9, mcause; csrr s8, mtval; csrr s7, mepc;                 \
        beqz s11, ptest_fail;                                           \
        mv t6, s11; li s11, 0; jr t6;                                   \
        .align 2;                                                       \
ptest_strap:                                                            \
        csrr s9, scause; csrr s8, stval; csrr s7, sepc;                 \
        beqz s10, ptest_fail;                                           \
        mv t6, s10; li s10, 0; jr t6;                                   \
ptest_fail:                                                             \
        sll TESTNUM, TESTNUM, 1; or TESTNUM, TESTNUM, 1;                \
        j ptest_write_tohost;                                           \
ptest_pass:                                                             \
        li TESTNUM, 1;                                                  \
ptest_write_tohost:                                                     \
        la t5, tohost; sd TESTNUM, 0(t5);                               \
1:      j 1b;                                                           \
        .text;                                                          \
ptest_main:

#define PTEST_PASS   j ptest_pass
#define PTEST_FAIL   j ptest_fail

/* TEST(n): the following checks are test n */
#define TEST(n)      li TESTNUM, n
/* fail the current test unless reg == value */
#define CHECK(reg, value)   li t4, value; bne reg, t4, ptest_fail

/* expect a trap into M (resume at label) / into S */
#define EXPECT_MTRAP(label) la s11, label
#define EXPECT_STRAP(label) la s10, label

/* go to privilege mode mpp (0 U, 1 S) at label, from M (Priv. 3.3.2 MRET: pc = mepc, priv = MPP) */
#define GOTO_MODE(mpp, label)                                           \
        li t0, 3 << 11; csrc mstatus, t0;                               \
        li t0, (mpp) << 11; csrs mstatus, t0;                           \
        la t0, label; csrw mepc, t0; mret

#define PTEST_DATA                                                      \
        .section .tohost, "aw", @progbits;                              \
        .align 6; .globl tohost; tohost: .dword 0;                      \
        .align 6; .globl fromhost; fromhost: .dword 0;

#endif
