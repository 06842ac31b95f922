/* M-mode entry, the one M-mode trap vector, and the probe trampolines.
 * Every trap goes to M (medeleg = hedeleg = 0 unless a guest changes them), so a probe's
 * outcome is read from mcause/mtval/mtval2/mtinst/mstatus.GVA (Priv. 20240411, 3.1.15-3.1.16, 9.4.3). */
#define REGBYTES 8
    .section .text.start, "ax"
    .globl _start
_start:
    la sp, __stack_top
    la t0, rt_trap_vector
    csrw mtvec, t0
    la t0, __bss_start
    la t1, __bss_end
1:  bgeu t0, t1, 2f
    sd zero, 0(t0)
    addi t0, t0, 8
    j 1b
2:  call rt_init
    call main
    call rt_exit_main
3:  j 3b

    .text
/* int rt_probe_go(u64 addr, u64 val, u64 stub): mret into the stub (mstatus MPP/MPV/MPRV already set);
 * returns here, in M, from the trap handler with the record in rt_probe_rec. */
    .globl rt_probe_go
rt_probe_go:
    la t0, rt_probe_ctx
    sd ra, 0(t0)
    sd sp, 8(t0)
    sd s0, 16(t0)
    sd s1, 24(t0)
    sd s2, 32(t0)
    sd s3, 40(t0)
    sd s4, 48(t0)
    sd s5, 56(t0)
    sd s6, 64(t0)
    sd s7, 72(t0)
    sd s8, 80(t0)
    sd s9, 88(t0)
    sd s10, 96(t0)
    sd s11, 104(t0)
    sd gp, 112(t0)
    sd tp, 120(t0)
    csrw mepc, a2
    li t1, 1
    la t0, rt_probe_active
    sd t1, 0(t0)
    li t6, 0
    mv t5, a3                 /* mstatus bits an M-mode MPRV stub sets (MPRV/MPV/MPP) */
    mret

    .align 2
    .globl rt_trap_vector
rt_trap_vector:
    csrw mscratch, t0
    la t0, rt_probe_active
    ld t0, 0(t0)
    beqz t0, 9f
    la t0, rt_probe_active
    sd zero, 0(t0)
    la t0, rt_probe_rec
    csrr t1, mcause
    sd t1, 0(t0)
    csrr t1, mtval
    sd t1, 8(t0)
    csrr t1, mtval2
    sd t1, 16(t0)
    csrr t1, mtinst
    sd t1, 24(t0)
    csrr t1, mstatus
    sd t1, 32(t0)
    sd a1, 40(t0)
    sd t6, 48(t0)
    csrr t1, mepc
    sd t1, 56(t0)
    li t1, (1 << 17)          /* MPRV off again for the runtime's own accesses */
    csrc mstatus, t1
    la t0, rt_probe_ctx
    ld ra, 0(t0)
    ld sp, 8(t0)
    ld s0, 16(t0)
    ld s1, 24(t0)
    ld s2, 32(t0)
    ld s3, 40(t0)
    ld s4, 48(t0)
    ld s5, 56(t0)
    ld s6, 64(t0)
    ld s7, 72(t0)
    ld s8, 80(t0)
    ld s9, 88(t0)
    ld s10, 96(t0)
    ld s11, 104(t0)
    ld gp, 112(t0)
    ld tp, 120(t0)
    li a0, 0
    ret
9:  la sp, __stack_top
    call rt_unexpected_trap
8:  j 8b

/* HS-mode and VS-mode trap handlers (stvec, vstvec) for delegated traps: record the trap in
 * rt_hs_rec / rt_vs_rec, mark t6 and ecall back to M (ecalls are never delegated by the runtime). */
    .align 2
    .globl rt_hs_trap
rt_hs_trap:
    la t0, rt_hs_rec
    csrr t1, scause
    sd t1, 0(t0)
    csrr t1, stval
    sd t1, 8(t0)
    csrr t1, htval
    sd t1, 16(t0)
    csrr t1, htinst
    sd t1, 24(t0)
    csrr t1, hstatus
    sd t1, 32(t0)
    csrr t1, sepc
    sd t1, 40(t0)
    li t6, 0x7a5
    ecall
    .align 2
    .globl rt_vs_trap
rt_vs_trap:
    la t0, rt_vs_rec          /* in VS-mode the s* CSRs are the vs* CSRs */
    csrr t1, scause
    sd t1, 0(t0)
    csrr t1, stval
    sd t1, 8(t0)
    csrr t1, sepc
    sd t1, 40(t0)
    li t6, 0x7a6
    ecall

/* Probe stubs: run in the target mode with a0 = address, a1 = value to store; the access is the
 * first instruction (32-bit, so mtinst/htinst's transformed form is well defined), then
 * t6 = 0x600d marks success and ecall returns to M. */
    .option push
    .option norvc
    /* The stubs start on their own 4 KiB page(s), apart from the VS trap handler above, so a guest can
     * give just these pages U=1 at the VS stage: VU-mode probes fetch them while VS-mode still fetches
     * the handler (Priv. 10.3.1: S-mode may never execute code on U=1 pages) -- see rt_vs_stubs_user. */
    .align 12
    .globl rt_stubs_start
rt_stubs_start:
#define STUB(name, ...) \
    .globl name; .align 2; name: __VA_ARGS__; li t6, 0x600d; ecall
    STUB(rt_stub_ld, ld a1, 0(a0))
    STUB(rt_stub_lw, lw a1, 0(a0))
    STUB(rt_stub_lbu, lbu a1, 0(a0))
    STUB(rt_stub_sd, sd a1, 0(a0))
    STUB(rt_stub_sw, sw a1, 0(a0))
    STUB(rt_stub_amoadd, amoadd.d a1, a1, (a0))
    STUB(rt_stub_lr, lr.d a1, (a0))
    STUB(rt_stub_sc, sc.d a1, a1, (a0))
    STUB(rt_stub_hlvd, hlv.d a1, (a0))
    STUB(rt_stub_hlvxwu, hlvx.wu a1, (a0))
    STUB(rt_stub_hsvd, hsv.d a1, (a0))
    /* memory-management fences (rs1 = a0, rs2 = a1); in the wrong mode they trap (Priv. H "Hypervisor
     * Memory-Management Fence Instructions": virtual-instruction with V=1, illegal in U) */
    STUB(rt_stub_sfence, sfence.vma a0, a1)
    STUB(rt_stub_hfence_vvma, hfence.vvma a0, a1)
    STUB(rt_stub_hfence_gvma, hfence.gvma a0, a1)
    /* M-mode with MPRV: the stub sets MPRV/MPV/MPP itself (mret just cleared MPP to U) */
    STUB(rt_stub_mprv_ld, csrs mstatus, t5; ld a1, 0(a0))
    STUB(rt_stub_mprv_sd, csrs mstatus, t5; sd a1, 0(a0))
    /* privileged instructions probed for where they trap (illegal / virtual instruction) */
    STUB(rt_stub_wfi, wfi)
    STUB(rt_stub_sret, sret)
    STUB(rt_stub_csrr_cycle, csrr a1, cycle)
    STUB(rt_stub_csrr_satp, csrr a1, satp)
    STUB(rt_stub_csrr_hgatp, csrr a1, hgatp)
    STUB(rt_stub_csrr_vsstatus, csrr a1, vsstatus)
    STUB(rt_stub_csrr_mstatus, csrr a1, mstatus)
    /* ecall / ebreak as traps to inspect (t6 is still 0 at the trap, so it is not the success ecall) */
    STUB(rt_stub_ecall, ecall)
    STUB(rt_stub_ebreak, ebreak)
    /* fetch: jump to a0; the target page holds rt_fetch_target (li a1, 0x600d; li t6, 0x600d; ecall) */
    .globl rt_stub_fetch
    .align 2
rt_stub_fetch:
    jr a0
    .globl rt_fetch_target
    .align 12
rt_fetch_target:
    li a1, 0x600d
    li t6, 0x600d
    ecall
    .align 12
    .option pop

/* Probe marks (docs/ARCHITECTURE.md 2b): rt_probe_mark(n) jumps to rt_probe_sled + 4*n, a `ret`
 * of its own, so the pc of that one step names the mark in every backend that shows pcs (QEMU's
 * exec log included).  n = kind * 4096 + probe id; kinds: 0 probe start, 1 its P/X lines are
 * printed from here, 2 probe end; 12288 rt_done, 12289/12290 before/after an rt_fail line.  The harness
 * re-synchronises a comparison at start/end marks after a divergence and attributes each finding
 * to the probe it happened in.  4-byte `ret`s: no compressed instructions in the sled. */
    .globl rt_probe_mark
rt_probe_mark:
    li t0, 12290
    bleu a0, t0, 1f
    mv a0, t0
1:  la t0, rt_probe_sled
    slli a0, a0, 2
    add t0, t0, a0
    jr t0

    .section .probe_sled, "ax"
    .option push
    .option norvc
    .globl rt_probe_sled
rt_probe_sled:
    .rept 12291
    jalr x0, 0(ra)
    .endr
    .globl rt_probe_sled_end
rt_probe_sled_end:
    .option pop
