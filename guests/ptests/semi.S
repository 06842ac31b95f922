/* semi: a program that ends with a semihosting exit call instead of tohost (RISC-V semihosting:
 * the EBREAK between "slli x0, x0, 0x1f" and "srai x0, x0, 7", a0 = SYS_EXIT_EXTENDED (0x20), a1 -> {reason
 * ADP_Stopped_ApplicationExit (0x20026), exit status}).  It checks one CSR first, so a wrong run would
 * not reach the call; the status is 0 here (tests/test_program_ends.py exits with 668 elsewhere). */
#include "ptest.h"
PTEST_BEGIN
        TEST(1)
        li a0, 0x1234
        csrw mscratch, a0
        csrr a1, mscratch
        bne a0, a1, ptest_fail
        la a1, semi_block
        li t0, 0x20026
        sd t0, 0(a1)
        sd zero, 8(a1)
        li a0, 0x20
        .option push
        .option norvc
        .balign 16
        slli x0, x0, 0x1f
        ebreak
        srai x0, x0, 7
        .option pop
        j ptest_fail                         /* not reached: the call ends the program */

        .data
        .balign 8
semi_block: .dword 0, 0
PTEST_DATA
