/* interrupts: the trap vectors and the lower-mode routines of the interrupts guest (interrupts.c).
 * Every interrupt any handler takes is appended to irq_log as (who, xcause, xepc): who = 3 (M),
 * 1 (HS), 5 (VS); the handler then clears the interrupt's source so it is taken once:
 *   M:  MSI -> msip = 0; MTI -> mtimecmp = ~0; SSI/STI -> mip bit cleared; VS bits -> hvip bit cleared
 *   HS: SSI -> sip.SSIP = 0; STI -> sie.STIE = 0 (STIP is read-only in sip); VS bits -> hvip bit cleared
 *   VS: SSI (VSSI) -> sip.SSIP = 0 (alias of hvip.VSSIP); STI (VSTI) -> sie.STIE = 0 (hie.VSTIE)
 * An exception (the ecall ending a lower-mode routine) returns from irq_run to its caller in M.
 * CSRs by number: 0x645 hvip, 0x200 vsstatus (GCC's own -march reaches the assembler too). */
#define MSIP_ADDR     0x2000000
#define MTIMECMP_ADDR 0x2004000
    .text
    .globl irq_run
/* void irq_run(u64 mstatus_bits, void (*fn)(void)): mret into fn with mstatus |= mstatus_bits (MPP, MPV,
 * MPIE) after clearing MPP/MPV/MPIE; returns when fn (or a handler) ecalls. */
irq_run:
    la t0, irq_ctx
    sd ra, 0(t0)
    sd sp, 8(t0)
    sd s0, 16(t0)
    sd s1, 24(t0)
    sd gp, 32(t0)
    sd tp, 40(t0)
    csrr t1, mtvec
    sd t1, 48(t0)
    la t1, irq_mvec
    csrw mtvec, t1
    li t1, (3 << 11) | (1 << 39) | (1 << 7)
    csrc mstatus, t1
    csrs mstatus, a0
    csrw mepc, a1
    mret

irq_back:
    la t0, irq_ctx
    ld ra, 0(t0)
    ld sp, 8(t0)
    ld s0, 16(t0)
    ld s1, 24(t0)
    ld gp, 32(t0)
    ld tp, 40(t0)
    ld t1, 48(t0)
    csrw mtvec, t1
    ret

/* append (a who, t1 cause, t2 epc) to irq_log; clobbers t0 */
#define LOG(who) \
    la t0, irq_log; ld a7, 0(t0); addi a7, a7, 1; sd a7, 0(t0); slli a7, a7, 5; add t0, t0, a7; \
    li a7, who; sd a7, 0(t0); sd t1, 8(t0); sd t2, 16(t0)

    .align 2
    .globl irq_mvec
irq_mvec:
    csrw mscratch, t0
    la t0, irq_save
    sd t1, 0(t0)
    sd t2, 8(t0)
    sd a7, 16(t0)
    csrr t1, mcause
    bgez t1, irq_back            /* an exception: the routine's ecall */
    csrr t2, mepc
    LOG(3)
    andi t1, t1, 0xff
    li t0, 3
    bne t1, t0, 1f
    li t0, MSIP_ADDR
    sw zero, 0(t0)
    j 9f
1:  li t0, 7
    bne t1, t0, 2f
    li t0, MTIMECMP_ADDR
    li t2, -1
    sd t2, 0(t0)
    j 9f
2:  li t0, 1
    sll t0, t0, t1
    csrc mip, t0
    csrc 0x645, t0
9:  la t0, irq_save
    ld t1, 0(t0)
    ld t2, 8(t0)
    ld a7, 16(t0)
    csrr t0, mscratch
    mret

    .align 2
    .globl irq_svec
irq_svec:
    csrw sscratch, t0
    la t0, irq_save
    sd t1, 24(t0)
    sd t2, 32(t0)
    sd a7, 40(t0)
    csrr t1, scause
    csrr t2, sepc
    LOG(1)
    andi t1, t1, 0xff
    li t0, 1
    bne t1, t0, 1f
    csrci sip, 2
    j 9f
1:  li t0, 5
    bne t1, t0, 2f
    li t0, 0x20
    csrc sie, t0
    j 9f
2:  li t0, 1
    sll t0, t0, t1
    csrc 0x645, t0
9:  la t0, irq_save
    ld t1, 24(t0)
    ld t2, 32(t0)
    ld a7, 40(t0)
    csrr t0, sscratch
    sret

    .align 2
    .globl irq_vsvec
irq_vsvec:                      /* in VS-mode: s* CSRs are the vs* CSRs */
    csrw sscratch, t0
    la t0, irq_save
    sd t1, 48(t0)
    sd t2, 56(t0)
    sd a7, 64(t0)
    csrr t1, scause
    csrr t2, sepc
    LOG(5)
    andi t1, t1, 0xff
    li t0, 1
    bne t1, t0, 1f
    csrci sip, 2
    j 9f
1:  li t0, 0x20
    csrc sie, t0
9:  la t0, irq_save
    ld t1, 48(t0)
    ld t2, 56(t0)
    ld a7, 64(t0)
    csrr t0, sscratch
    sret

/* ---- lower-mode routines (entered by irq_run; each ends with ecall) ---- */
    .globl irq_idle
irq_idle:                       /* whatever is pending and enabled at entry is taken right after mret */
    nop
    nop
    ecall

    .globl irq_hs_ssi
irq_hs_ssi:                     /* HS: enable SSIE and SIE, then raise SSIP through sip */
    li t1, 2
    csrs sie, t1
    csrsi sstatus, 2
    csrs sip, t1                /* pending and enabled from here: taken at the next boundary */
    nop
    csrci sstatus, 2
    ecall

    .globl irq_wfi_loop
irq_wfi_loop:                   /* a WFI that the timer ends (MTI traps to M from below M) */
    wfi
    nop
    ecall

    .globl irq_spin
irq_spin:                       /* spin until irq_log's count reaches a2 (at most 100000 rounds) */
    la t1, irq_log
    li t2, 100000
1:  ld t0, 0(t1)
    bgeu t0, a2, 2f
    addi t2, t2, -1
    bnez t2, 1b
2:  ecall

    .data
    .align 3
irq_ctx:  .space 56
irq_save: .space 80
    .globl irq_log
irq_log:  .space 32 * 65
