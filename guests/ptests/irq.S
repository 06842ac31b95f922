/* irq: interrupts in the p-environment style, ending through tohost.
 *  - Priv. 3.1.9 mip/mie: an interrupt i traps into M when mip[i] and mie[i] are set and it is not
 *    delegated and (priv < M or mstatus.MIE); machine software interrupt 3 (ACLINT MSWI msip at
 *    0x2000000), machine timer interrupt 7 (MTIP while mtime >= mtimecmp, ACLINT MTIMER).
 *  - 3.1.15 mcause: the Interrupt bit (bit 63) with the code.
 *  - 3.3.3 WFI: resumes when an interrupt is pending and enabled in mie, whatever mstatus.MIE.
 *  - 3.1.8 mideleg: a delegated interrupt (SSI, code 1) traps into S when S-mode's sstatus.SIE and
 *    sie.SSIE allow it (10.1.3 sip/sie); software sets sip.SSIP.
 * QEMU runs under -icount, so the timer deadline is the same instruction on both sides.
 */
#include "ptest.h"
#define MSIP      0x2000000
#define MTIMECMP  0x2004000
#define MTIME     0x200bff8
#define IRQ(code) (0x8000000000000000 | (code))
PTEST_BEGIN
        li t0, -1; li t1, MTIMECMP; sd t0, 0(t1)   /* mtimecmp resets to 0: no MTIP until test 2 */
        TEST(1)                              /* machine software interrupt, taken once MIE is set */
        li t0, 1 << 3; csrs mie, t0
        li t1, MSIP; li t0, 1; sw t0, 0(t1)
        EXPECT_MTRAP(1f)
        csrsi mstatus, 8
        nop
        j ptest_fail
1:      CHECK(s9, IRQ(3))
        li t1, MSIP; sw zero, 0(t1)          /* the handler left MIE clear (MPIE keeps the old 1) */
        li t0, 1 << 3; csrc mie, t0
        TEST(2)                              /* machine timer interrupt: WFI wakes with MIE clear */
        li t1, MTIME; ld t2, 0(t1); addi t2, t2, 64
        li t1, MTIMECMP; sd t2, 0(t1)
        li t0, 1 << 7; csrs mie, t0
        wfi
        EXPECT_MTRAP(2f)
        csrsi mstatus, 8
        nop
        j ptest_fail
2:      CHECK(s9, IRQ(7))
        li t0, -1; li t1, MTIMECMP; sd t0, 0(t1)
        csrw mie, zero
        TEST(3)                              /* supervisor software interrupt, delegated to S */
        li t0, 1 << 1; csrs mideleg, t0
        csrs sie, t0
        csrs sstatus, t0                     /* SIE: S-mode takes it once SSIP is set */
        GOTO_MODE(1, smode_ssi)
3:      CHECK(s9, IRQ(1))                    /* in S, with SIE now clear */
        li t0, 1 << 1; csrc sip, t0
        EXPECT_MTRAP(4f)
        ecall
4:      CHECK(s9, 9)
        PTEST_PASS

smode_ssi:
        EXPECT_STRAP(3b)
        li t0, 1 << 1; csrs sip, t0
        nop
        j ptest_fail
PTEST_DATA
