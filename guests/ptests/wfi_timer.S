/* wfi_timer: WFIs the machine timer ends, then the same WFI with nothing enabled -- the program's end.
 *  - Priv. 3.3.3 WFI resumes when an interrupt is pending in mip & mie, "even if ... globally
 *    disabled": with mie.MTIE set and mstatus.MIE clear the timer ends the wait and no trap is taken
 *    (3.1.9); execution goes on after the WFI.
 *  - 3.2.1: MTIP is pending while mtime >= mtimecmp; writing mtimecmp = -1 clears it.
 *  - Twice round the loop the timer wakes the WFI; then mie = 0 and the same WFI can never resume:
 *    the end "wfi" (README "Programs that end their own way").
 * QEMU runs under -icount, so the timer's deadline is the same instruction on both sides.
 */
#include "ptest.h"
#define MTIMECMP  0x2004000
#define MTIME     0x200bff8
PTEST_BEGIN
        li t0, -1; li t1, MTIMECMP; sd t0, 0(t1)   /* mtimecmp resets to 0: no MTIP until armed */
        csrci mstatus, 8                     /* MIE clear throughout: WFI wakes, nothing traps */
        li t0, 1 << 7; csrw mie, t0          /* MTIE only */
        li s1, 2                             /* timer wake-ups before the end */
        TEST(1)
arm:    li t1, MTIME; ld t2, 0(t1); addi t2, t2, 50
        li t1, MTIMECMP; sd t2, 0(t1)
wait:   wfi
        beqz s1, ptest_fail                  /* the final WFI must never resume */
        csrr t0, mip                         /* woken by the timer: MTIP is pending */
        andi t0, t0, 1 << 7
        beqz t0, ptest_fail
        li t0, -1; li t1, MTIMECMP; sd t0, 0(t1)
        addi s1, s1, -1
        bnez s1, arm
        csrw mie, zero                       /* nothing enabled: the next WFI is the end */
        j wait
PTEST_DATA
