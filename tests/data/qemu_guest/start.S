# Tiny guest for the QEMU backend tests (tests/test_qemu*.py): M-mode sets up PMP and a
# G stage (hgatp mode from -DHGATP_MODE), mret to VS (vsatp Bare, so GVA = GPA), then VS
#   0x..: ld from GPA 0xC0002000 (G stage maps GPA 0xC0000000 -> SPA 0x80000000: 1 GiB leaf)
#         ld from GPA 0x100000000 (unmapped: load guest-page fault, cause 21; Bare: access fault 5)
#         sd to   GPA 0x100000008 (store/AMO guest-page fault 23; Bare: 7)
#         jalr to GPA 0x100000000 (instruction guest-page fault 20; Bare: 1) -- no exec line
#         ecall (cause 10, from VS) -> M writes the finisher.
    .section .text.start
    .globl _start
_start:
    la sp, stack_top
    call main
1:  j 1b
    .balign 4
    .option push
    .option norvc
    .globl vs_entry
vs_entry:
    li t0, 0xC0002000
    ld a0, 0(t0)
    li t1, 0x100000000
    ld a1, 0(t1)
    sd a0, 8(t1)
    jalr ra, 0(t1)
    ecall
2:  j 2b
    .balign 4
    .globl m_trap
m_trap:
    csrr t2, mcause
    li t3, 10
    beq t2, t3, 3f
    li t3, 20
    beq t2, t3, 5f
    li t3, 1
    beq t2, t3, 5f
    csrr t4, mepc
    addi t4, t4, 4
    csrw mepc, t4
    mret
5:  csrw mepc, ra
    mret
3:  li t5, 0x100000
    li t6, 0x5555
    sw t6, 0(t5)
4:  j 4b
    .option pop
    .bss
    .align 4
    .space 4096
stack_top:
