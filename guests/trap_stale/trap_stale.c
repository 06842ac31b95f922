/* trap_stale: what a trap writes to mtval2/htval and mstatus.GVA when the trap before it left something
 * there.  Every trap into M or HS writes these; none may carry a value over from an earlier trap.
 *
 * Spec (Priv. 20240411, H chapter, riscv-isa-manual src/priv/hypervisor.adoc):
 *  H "Machine Trap Value Register (mtval2)": "When a guest-page-fault trap is taken into M-mode, mtval2 is
 *    written with either zero or the guest physical address that faulted, shifted right by 2 bits.  For
 *    other traps, mtval2 is set to zero."  H "Hypervisor Trap Value Register (htval)": the same for traps
 *    into HS-mode: "For other traps, htval is set to zero."
 *  H "Machine Status Register (mstatus)": "For any trap (breakpoint, address misaligned, access fault, page
 *    fault, or guest-page fault) that writes a guest virtual address to mtval, GVA is set to 1. For any
 *    other trap into M-mode, GVA is set to 0."  HLV/HLVX/HSV and MPRV+MPV (MPP != M) addresses are guest
 *    virtual addresses; an MPRV access with MPP=M is "M-level access with no translation" (table "Effect of
 *    MPRV"), its mtval a physical address.  A breakpoint's mtval is 0 or the pc (Priv. 3.1.16), a GVA when
 *    V=1: GVA = 1 exactly when mtval holds that pc.
 *
 * Mechanisms probed (QEMU source read for docs/catalogue-review.md items 3 and 5):
 *  mtval2/htval: riscv_cpu_do_interrupt copies env->guest_phys_fault_addr into mtval2 (trap into M) or
 *    htval (into HS) for EVERY cause; riscv_cpu_tlb_fill zeroes it at the start of each TLB fill and sets
 *    it when the G stage fails.  So a trap after a guest-page fault with no TLB miss in between (ecall,
 *    illegal instruction, ebreak) sees the old GPA.  A trap from V=1 flushes the TLB (V changes), so a
 *    guest-page fault of V=1 code is followed by fills: probes 130/131 are the control.
 *  GVA: the M path sets mstatus.GVA = 1 when V=1 and tval != 0, and never writes 0; the HS path writes
 *    hstatus.GVA both ways, but from its two-stage-lookup flag, set for address faults only: an ebreak
 *    from VS with stval = pc (a guest virtual address) gets GVA = 0 (215).  The guest clears (200-206) or
 *    sets (210-214) mstatus.GVA itself first, so each probe shows what that one trap wrote.
 *
 * Probes: 100-131 each subject trap after a printed setup guest-page fault (the P line's UART accesses may
 * refill QEMU's TLB in between); 140-161 the same with the fault as a silent prelude (rt_access, no
 * P line) right before the subject.  Their GVA is left unchecked (gva_unchecked): 200-215 are the GVA
 * probes, which check mtval2 too.  220-221: an illegal instruction delegated to VS (cause 2, to VS) must
 * leave htval/htinst as they were (QEMU's S-mode trap path writes its local htval = 0 into env->htval for
 * VS traps too; 7.2 also turns the synchronous cause 2 into 1, its VS-interrupt cause adjustment applied
 * without checking that the trap is an interrupt). */
#include "difftest.h"

DIFFTEST_MODES(HGATP_SV39X4 | HGATP_SV48X4 | HGATP_SV57X4, VS_BARE);

#define HOLE 0xC0000000ull      /* not mapped by the G stage, and no memory at this PA */
extern char rt_stub_ebreak[];

static struct expect gpf(u64 cause, u64 va, enum rt_access a)
{
    struct expect e = expect_trap(cause, va, va >> 2, 1, rt_tinst(a));
    e.gva_unchecked = 1;        /* the setup fault: its GVA is probed in 200-214 */
    return e;
}
static struct expect trap0(u64 cause, int to, int any_tval)
{
    struct expect e = expect_trap(cause, 0, 0, 0, ~0ull);   /* mtval2/htval must be 0 */
    e.to = to; e.any_tval = any_tval; e.gva_unchecked = 1;
    return e;
}
static struct expect gvatrap(u64 cause, u64 tval, int gva, int any_tval)
{
    struct expect e = expect_trap(cause, tval, 0, gva, ~0ull);
    e.any_tval = any_tval;
    return e;
}

int main(void)
{
    struct pt g;
    rt_banner("trap_stale");
    rt_gstage_identity(&g);
    unsigned id;

    /* mtval2 (trap into M) after an HLV guest-page fault from HS taken into M */
    id = 100;
    static const struct { enum rt_access a; enum rt_mode m; u64 cause; u64 addr; int any_tval; const char *w; } s[] = {
        {A_ECALL, HS_MODE, 9, 0, 0, "ecall-hs-to-m"},
        {A_CSRR_MSTATUS, HS_MODE, 2, 0, 1, "illegal-hs-to-m"},
        {A_EBREAK, HS_MODE, 3, 0, 1, "ebreak-hs-to-m"},
        {A_LD, HS_MODE, 5, HOLE, 0, "access-fault-hs-to-m"},
        {A_ECALL, U_MODE, 8, 0, 0, "ecall-u-to-m"},
    };
    for (unsigned i = 0; i < sizeof s / sizeof s[0]; i++) {
        probe(id++, "setup-hs-hlv-gpf", A_HLVD, HS_MODE, HOLE, 0, gpf(21, HOLE, A_HLVD));
        struct expect e = trap0(s[i].cause, TO_M, s[i].any_tval);
        if (s[i].cause == 5) e.tval = s[i].addr;
        probe(id++, s[i].w, s[i].a, s[i].m, s[i].addr, 0, e);
    }
    /* htval (trap into HS, medeleg) after an HLV guest-page fault from HS taken into M */
    id = 110;
    static const struct { enum rt_access a; u64 cause; int any_tval; const char *w; } d[] = {
        {A_CSRR_MSTATUS, 2, 1, "illegal-u-to-hs"},
        {A_ECALL, 8, 0, "ecall-u-to-hs"},
        {A_EBREAK, 3, 1, "ebreak-u-to-hs"},
    };
    for (unsigned i = 0; i < sizeof d / sizeof d[0]; i++) {
        probe(id++, "setup-hs-hlv-gpf", A_HLVD, HS_MODE, HOLE, 0, gpf(21, HOLE, A_HLVD));
        csr_write(medeleg, 1ull << d[i].cause);
        probe(id++, d[i].w, d[i].a, U_MODE, 0, 0, trap0(d[i].cause, TO_HS, d[i].any_tval));
        csr_write(medeleg, 0);
    }
    /* the guest-page fault taken into HS (htval = GPA), then traps into M */
    id = 120;
    csr_write(medeleg, 1ull << 21);
    struct expect ghs = gpf(21, HOLE, A_HLVD); ghs.to = TO_HS;
    probe(id++, "setup-hs-hlv-gpf-to-hs", A_HLVD, HS_MODE, HOLE, 0, ghs);
    csr_write(medeleg, 0);
    probe(id++, "ecall-hs-to-m-after-hs-gpf", A_ECALL, HS_MODE, 0, 0, trap0(9, TO_M, 0));
    csr_write(medeleg, 1ull << 21);
    probe(id++, "setup-hs-hlv-gpf-to-hs", A_HLVD, HS_MODE, HOLE, 0, ghs);
    csr_write(medeleg, 0);
    probe(id++, "illegal-hs-to-m-after-hs-gpf", A_CSRR_MSTATUS, HS_MODE, 0, 0, trap0(2, TO_M, 1));
    /* control: a guest-page fault of VS code (the trap changes V: QEMU flushes its TLB and refills) */
    id = 130;
    probe(id++, "setup-vs-ld-gpf", A_LD, VS_MODE, HOLE, 0, gpf(21, HOLE, A_LD));
    probe(id++, "ecall-hs-to-m-after-vs-gpf", A_ECALL, HS_MODE, 0, 0, trap0(9, TO_M, 0));

    /* the same subjects with nothing printed between the guest-page fault and the subject trap: the
     * fault is a silent prelude (rt_access, no P line), so no UART access refills QEMU's TLB in between */
    id = 140;
    for (unsigned i = 0; i < sizeof s / sizeof s[0]; i++) {
        struct outcome o;
        rt_access(A_HLVD, HS_MODE, HOLE, 0, &o);
        struct expect e = trap0(s[i].cause, TO_M, s[i].any_tval);
        if (s[i].cause == 5) e.tval = s[i].addr;
        probe(id++, s[i].w, s[i].a, s[i].m, s[i].addr, 0, e);
    }
    id = 150;
    for (unsigned i = 0; i < sizeof d / sizeof d[0]; i++) {
        struct outcome o;
        rt_access(A_HLVD, HS_MODE, HOLE, 0, &o);
        csr_write(medeleg, 1ull << d[i].cause);
        probe(id++, d[i].w, d[i].a, U_MODE, 0, 0, trap0(d[i].cause, TO_HS, d[i].any_tval));
        csr_write(medeleg, 0);
    }
    {
        struct outcome o;
        csr_write(medeleg, 1ull << 21);
        rt_access(A_HLVD, HS_MODE, HOLE, 0, &o);        /* into HS: htval = GPA */
        csr_write(medeleg, 0);
        probe(160, "ecall-hs-to-m-after-hs-gpf", A_ECALL, HS_MODE, 0, 0, trap0(9, TO_M, 0));
        rt_access(A_LD, VS_MODE, HOLE, 0, &o);          /* control: from V=1 */
        probe(161, "ecall-hs-to-m-after-vs-gpf", A_ECALL, HS_MODE, 0, 0, trap0(9, TO_M, 0));
    }

    /* GVA: cleared by the guest first, so the bit shows what this trap wrote */
    id = 200;
    csr_clear(mstatus, MSTATUS_GVA);
    probe(id++, "gva0-virtual-insn-vs", A_CSRR_HGATP, VS_MODE, 0, 0, gvatrap(22, 0, 0, 1));
    csr_clear(mstatus, MSTATUS_GVA);
    probe(id++, "gva0-illegal-vs", A_CSRR_MSTATUS, VS_MODE, 0, 0, gvatrap(2, 0, 0, 1));
    csr_clear(mstatus, MSTATUS_GVA);
    probe(id++, "gva0-ecall-vs", A_ECALL, VS_MODE, 0, 0, gvatrap(10, 0, 0, 0));
    csr_clear(mstatus, MSTATUS_GVA);
    probe_either(id++, "gva0-ebreak-vs", A_EBREAK, VS_MODE, 0, 0, gvatrap(3, (u64)rt_stub_ebreak, 1, 0),
                 gvatrap(3, 0, 0, 0), 2);
    csr_clear(mstatus, MSTATUS_GVA);
    rt_probe_mstatus_extra = MSTATUS_MPRV | MSTATUS_MPV | (3ull << 11);     /* MPP = M: no translation */
    probe(id++, "gva0-mprv-mpp-m-access-fault", A_MPRV_LD, M_MODE, HOLE, 0, gvatrap(5, HOLE, 0, 0));
    csr_clear(mstatus, MSTATUS_GVA);
    rt_probe_mstatus_extra = MSTATUS_MPRV | MSTATUS_MPV | (1ull << 11);     /* MPP = S, MPV = 1: as VS */
    { struct expect e = gvatrap(21, HOLE, 1, 0); e.tval2 = HOLE >> 2; e.tinst_alt = rt_tinst(A_MPRV_LD);
      probe(id++, "gva0-mprv-mpv-gpf", A_MPRV_LD, M_MODE, HOLE, 0, e); }
    rt_probe_mstatus_extra = 0;
    csr_clear(mstatus, MSTATUS_GVA);
    { struct expect e = gvatrap(21, HOLE, 1, 0); e.tval2 = HOLE >> 2; e.tinst_alt = rt_tinst(A_HLVD);
      probe(id++, "gva0-hs-hlv-gpf", A_HLVD, HS_MODE, HOLE, 0, e); }

    /* GVA set to 1 by the guest first: a trap that must write 0 shows whether it wrote at all */
    id = 210;
    csr_set(mstatus, MSTATUS_GVA);
    { struct expect e = gvatrap(21, HOLE, 1, 0); e.tval2 = HOLE >> 2; e.tinst_alt = rt_tinst(A_HLVD);
      probe(id++, "gva1-hs-hlv-gpf", A_HLVD, HS_MODE, HOLE, 0, e); }
    csr_set(mstatus, MSTATUS_GVA);
    probe(id++, "gva1-ecall-hs", A_ECALL, HS_MODE, 0, 0, gvatrap(9, 0, 0, 0));
    csr_set(mstatus, MSTATUS_GVA);
    probe(id++, "gva1-access-fault-hs", A_LD, HS_MODE, HOLE, 0, gvatrap(5, HOLE, 0, 0));
    csr_set(mstatus, MSTATUS_GVA);
    probe(id++, "gva1-ecall-vs", A_ECALL, VS_MODE, 0, 0, gvatrap(10, 0, 0, 0));
    /* into HS: hstatus.GVA set first, an ecall from U delegated to HS must write 0 */
    csr_set(hstatus, HSTATUS_GVA);
    csr_write(medeleg, 1ull << 8);
    { struct expect e = gvatrap(8, 0, 0, 0); e.to = TO_HS;
      probe(id++, "hgva1-ecall-u-to-hs", A_ECALL, U_MODE, 0, 0, e); }
    csr_write(medeleg, 0);
    /* into HS from VS: an ebreak whose stval is the pc (a guest virtual address at V=1) sets
     * hstatus.GVA = 1; with stval = 0 GVA = 0 (hstatus: "GVA ... set to 1 when a trap writes a guest
     * virtual address to stval", same rule as mstatus.GVA) */
    csr_clear(hstatus, HSTATUS_GVA);
    csr_write(medeleg, 1ull << 3);
    { struct expect e1 = gvatrap(3, (u64)rt_stub_ebreak, 1, 0), e2 = gvatrap(3, 0, 0, 0);
      e1.to = e2.to = TO_HS;
      probe_either(id++, "hgva-ebreak-vs-to-hs", A_EBREAK, VS_MODE, 0, 0, e1, e2, 2); }
    csr_write(medeleg, 0);
    csr_clear(hstatus, HSTATUS_GVA);
    csr_clear(mstatus, MSTATUS_GVA);

    /* a trap taken into VS leaves htval and htinst alone: H "htval": "When a trap is taken into HS-mode,
     * htval is written ..." and H "htinst": "When a trap is taken into HS-mode, htinst is written ..." --
     * a trap into VS-mode writes vstval, not these (H "Trap Entry": traps into VS-mode "write the VS CSRs").
     * Both are WARL, so the guest writes a value, reads what it holds, takes the VS trap, reads again. */
    id = 220;
    csr_write(htval, 0x1234);
    csr_write(htinst, 0x3000);
    u64 hv = csr_read(htval), hi = csr_read(htinst);
    csr_write(medeleg, 1ull << 2);
    csr_write(hedeleg, 1ull << 2);
    { struct expect e = gvatrap(2, 0, 0, 1); e.to = TO_VS;
      probe(id++, "illegal-vs-to-vs", A_CSRR_MSTATUS, VS_MODE, 0, 0, e); }
    csr_write(hedeleg, 0);
    csr_write(medeleg, 0);
    rt_probe_mark(RT_MARK_START(id));
    u64 hv2 = csr_read(htval), hi2 = csr_read(htinst);
    rt_probes++;
    rt_probe_mark(RT_MARK_PRINT(id));
    rt_puts("P "); rt_dec(id); rt_puts(" htval-htinst-after-vs-trap held htval="); rt_hex(hv);
    rt_puts(" htinst="); rt_hex(hi); rt_puts(" after htval="); rt_hex(hv2); rt_puts(" htinst="); rt_hex(hi2);
    rt_putc('\n');
    rt_xline_begin(id, (hv2 == hv) & (hi2 == hi));
    rt_puts("htval="); rt_hex(hv); rt_puts(" htinst="); rt_hex(hi);
    rt_puts(" (a trap into VS does not write them) got htval="); rt_hex(hv2); rt_puts(" htinst=");
    rt_hex(hi2);
    rt_xline_end(id);
    csr_write(htval, 0);
    csr_write(htinst, 0);
    return rt_done();
}
