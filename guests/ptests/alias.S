/* alias: the program ends by writing tohost in S-mode through a virtual address other than tohost's
 * physical address, as riscv-tests' `v` environment does (its kernel writes tohost through a high
 * mapping).  A QEMU gdbstub write watchpoint matches virtual addresses only, so a watch on tohost's
 * address alone never fires here: the QEMU backend finds the alias in QEMU's TLB-fill log (the store's
 * VA mapped to tohost's page) and runs again watching it too (difftest/backends/tohost.py).
 *  - Priv. 10.3.2 (Sv39 walk): level-2 leaves (1 GiB) map VA 0x80000000 1:1 (the code, R W X) and
 *    VA 0 onto PA 0x80000000 (R W): tohost's page is reached at tohost - 0x80000000 as well.
 *  - 10.1.11 satp MODE 8 = Sv39; S-mode accesses are translated.
 */
#include "ptest.h"
PTEST_BEGIN
        la t0, root
        li t1, (0x80000000 >> 12) << 10 | 0xcf  /* D A X W R V: 0x80000000 1:1 */
        sd t1, 16(t0)
        li t1, (0x80000000 >> 12) << 10 | 0xc7  /* D A W R V: VA 0 -> PA 0x80000000 */
        sd t1, 0(t0)
        srli t0, t0, 12
        li t1, 8 << 60
        or t0, t0, t1
        csrw satp, t0
        sfence.vma
        TEST(1)
        GOTO_MODE(1, smode)

smode:
        TEST(2)                              /* the alias reads what the 1:1 mapping wrote */
        la t0, value
        li t1, 0x80000000
        sub t1, t0, t1
        ld a0, 0(t1)
        CHECK(a0, 0x5a5a)
        TEST(3)                              /* the end: tohost written through VA tohost - 0x80000000 */
        la t5, tohost
        li t1, 0x80000000
        sub t5, t5, t1
        li TESTNUM, 1
        sd TESTNUM, 0(t5)
1:      j 1b

        .data
        .align 12
root:   .zero 4096
value:  .dword 0x5a5a
PTEST_DATA
