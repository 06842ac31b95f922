/* Entry from OpenSBI (HS-mode), the HS trap handler and the world switch into a VS guest.
 * H instructions and CSRs through .insn / numbers: GCC 12 rejects "_h" in -march. */
#define CSR_HSTATUS 0x600
#define HSTATUS_SPV (1 << 7)
#define SSTATUS_SPP (1 << 8)

    .section .text.start, "ax"
    .globl _start
_start:
    la    sp, __stack_top
    la    t0, __bss_start
    la    t1, __bss_end
1:  bgeu  t0, t1, 2f
    sd    zero, 0(t0)
    addi  t0, t0, 8
    j     1b
2:  call  main                  /* a0 = hartid, a1 = FDT, as OpenSBI passed them */
3:  j     3b                    /* main ends through SBI SRST and never returns */

/* long run_vs(u64 entry, u64 arg): enter VS-mode at ``entry`` with a0 = ``arg`` (hstatus.SPV=1, sstatus.SPP=1, sret: H
 * "Hypervisor Status Register": SRET with SPV=1 sets V=1) and return when the guest asks to stop
 * (ecall with a7 = 0: its a0 is returned) or traps into HS for any other reason (returns
 * -scause).  The guest's ecall lands here directly: OpenSBI delegates cause 10 (ecall from
 * VS-mode) to HS through medeleg. */
    .text
    .globl run_vs
run_vs:
    la    t0, host_ctx
    sd    ra, 0(t0)
    sd    sp, 8(t0)
    sd    s0, 16(t0)
    sd    s1, 24(t0)
    csrw  sepc, a0
    la    t1, hs_trap
    csrw  stvec, t1
    li    t1, HSTATUS_SPV
    csrs  CSR_HSTATUS, t1
    li    t1, SSTATUS_SPP
    csrs  sstatus, t1
    mv    a0, a1                /* the guest's argument */
    sret

    .balign 4
hs_trap:
    csrr  t0, scause
    li    t1, 10                /* ecall from VS-mode */
    bne   t0, t1, 9f
    beqz  a7, 8f
    /* any other a7: forward the guest's SBI call to OpenSBI (the guest's a0..a7), back to VS */
    ecall
    csrr  t0, sepc
    addi  t0, t0, 4
    csrw  sepc, t0
    sret
8:  mv    t2, a0                /* stop: the guest's result */
    j     7f
9:  neg   t2, t0                /* an unexpected trap: -scause */
7:  la    t0, host_ctx
    ld    ra, 0(t0)
    ld    sp, 8(t0)
    ld    s0, 16(t0)
    ld    s1, 24(t0)
    mv    a0, t2
    ret

/* The VS guest (runs with vsatp = Bare, so its addresses are GPAs).  Data at the identity GPA of
 * vs_data is written through the second G-stage window (GPA + WINDOW_OFF, mapped to the same SPA)
 * and read back directly; then one SBI call (legacy putchar 'v') forwarded by HS, then stop with
 * 1 = pass, 2 = fail. a0 on entry = the window's offset. */
    .globl vs_guest
    .balign 4
vs_guest:
    la    t2, vs_data
    add   t3, t2, a0            /* the same bytes through the other window */
    li    t4, 0x1234567890abcdef
    sd    t4, 0(t3)
    ld    t5, 0(t2)
    bne   t4, t5, 1f
    li    t4, 0x5a5a
    sw    t4, 8(t2)
    lw    t5, 8(t3)
    bne   t4, t5, 1f
    li    a0, 'v'
    li    a7, 1                 /* SBI legacy console putchar (EID 0x01) */
    ecall
    li    a0, 1
    li    a7, 0
    ecall                       /* stop: pass */
1:  li    a0, 2
    li    a7, 0
    ecall                       /* stop: fail */

    .data
    .balign 16
    .globl vs_data
vs_data:
    .dword 0, 0
host_ctx:
    .dword 0, 0, 0, 0
