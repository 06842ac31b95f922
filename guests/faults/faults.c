/* faults: who takes a two-stage fault and what it reports.  Delegation with medeleg/hedeleg to M, HS
 * and VS; htval/htinst and hstatus.GVA/SPV/SPVP on traps into HS; guest-page faults cannot be delegated
 * to VS; PMP access faults on the final address and on a G-stage PTE address.
 *
 * Spec: Priv. 20240411, 21.2.2 (hedeleg: bits 20, 21, 22, 23 are read-only zero -- guest-page faults and
 * virtual-instruction traps are never delegated to VS); 21.6.2 (trap into HS: hstatus.SPV = V before the
 * trap, SPVP = the nominal privilege when V was 1, GVA = 1 when stval is a guest virtual address; htval =
 * GPA >> 2 for guest-page faults, else 0); 21.6.3 (htinst: 0 or the transformed instruction);
 * 3.7.1 / 10.3.2 step 2 (PMP: a failing check on the final address, or on an implicit PTE access, is an
 * access fault of the original access type).
 * QEMU 7.2 divergence (re-verified 2026-11-25; 10.0 passes): a PMP access fault on the final address or on
 * a G-stage PTE is reported as a guest-page fault (21/23 with htval) instead of an access fault (5/7)
 * (probes 40-43).  Decided by Priv. 20240411, 3.7.1: "Attempting to execute a load ... which accesses a
 * physical address within a PMP region without read permissions raises a load access-fault exception"
 * (store/AMO: "a store access-fault exception"), and for the G-stage PTE by 10.3.2 step 2 (used by
 * 21.5.1 for the G stage): "If accessing pte violates a PMA or PMP check, raise an access-fault exception
 * corresponding to the original access type".  The G-stage mappings themselves are valid here, so
 * nothing calls for a guest-page fault -- and 7.2 does the same with hgatp Bare, where there is no G stage
 * at all to fault (probes 40, 41 in hgatp=bare). */
#include "difftest.h"

DIFFTEST_MODES(HGATP_ALL, VS_BARE | VS_SV39);   /* hgatp Bare: no guest-page faults, the rest runs */

static volatile u64 tgt[512] __attribute__((aligned(4096), section(".data.page")));
static volatile u64 blocked[512] __attribute__((aligned(4096), section(".data.page")));
static unsigned id = 1;
#define HOLE 0xC0000000ull

static struct expect to(struct expect e, int t) { e.to = t; return e; }

static void pmp_block(u64 page)
{
    /* entry 0: NAPOT 4 KiB over `page`, no permission (S/U only: not locked); entry 1: everything RWX */
    csr_write(pmpaddr1, ~0ull >> 10);
    csr_write(pmpcfg0, (0x1full << 8) | 0x18);
    csr_write(pmpaddr0, (page >> 2) | 0x1ff);
    __asm__ volatile("sfence.vma" ::: "memory");
    hfence_gvma_all();
}
static void pmp_open(void)
{
    csr_write(pmpaddr0, ~0ull >> 10);
    csr_write(pmpcfg0, 0x1f);
    __asm__ volatile("sfence.vma" ::: "memory");
    hfence_gvma_all();
}

int main(void)
{
    struct pt g, vs;
    rt_banner("faults");
    for (unsigned i = 0; i < 512; i++) tgt[i] = 0x6666000000000000ull | i;
    rt_gstage_identity(&g);
    rt_vsstage_identity(&vs);
    u64 vsinv = 0x100000000ull;
    u64 galias = 0x100000000ull + 0x200000ull;   /* G-stage 4 KiB alias of tgt, in its own level-0 table */
    if (g.mode) {
        pt_map(&g, galias, (u64)tgt, 0, G_LEAF);
        hfence_gvma_all();
    }
    if (vs.mode) {
        pt_map(&vs, vsinv, (u64)tgt, 0, PTE_RWX | PTE_A | PTE_D);   /* V = 0 */
        pt_map(&vs, HOLE, HOLE, 2, VS_LEAF);                        /* GVA = GPA for the hole */
        pt_map(&vs, galias, galias, 0, VS_LEAF);
        hfence_vvma_all();
    }

    /* hedeleg: guest-page-fault and virtual-instruction bits are read-only zero */
    csr_write(hedeleg, (1ull << 20) | (1ull << 21) | (1ull << 22) | (1ull << 23) | (1ull << 13));
    u64 hd = csr_read(hedeleg);
    rt_puts("hedeleg wrote=0xf02000 read="); rt_hex(hd); rt_putc('\n');
    rt_check(!(hd & (0xfull << 20)), "hedeleg bits 20..23 must be read-only zero (Priv. 21.2.2)");
    csr_write(hedeleg, 0);

    if (g.mode) {   /* guest-page faults need a G stage */
        /* guest-page faults: to M (no delegation), then delegated to HS */
        struct expect lf = expect_trap(21, HOLE, HOLE >> 2, 1, rt_tinst(A_LD));
        struct expect sf = expect_trap(23, HOLE, HOLE >> 2, 1, rt_tinst(A_SD));
        probe(id++, "gpf-to-m", A_LD, VS_MODE, HOLE, 0, lf);
        csr_write(medeleg, (1ull << 20) | (1ull << 21) | (1ull << 23));
        probe(id++, "gpf-to-hs", A_LD, VS_MODE, HOLE, 0, to(lf, TO_HS));
        probe(id++, "gpf-to-hs", A_SD, VS_MODE, HOLE, 0, to(sf, TO_HS));
        /* VU: the stubs (and the hole) must be user pages at the VS stage */
        if (vs.mode) pt_map(&vs, HOLE, HOLE, 2, VS_LEAF | PTE_U);
        rt_vs_stubs_user(&vs, 1);
        probe(id++, "gpf-to-hs-from-vu", A_LD, VU_MODE, HOLE, 0, to(lf, TO_HS));
        if (vs.mode) pt_map(&vs, HOLE, HOLE, 2, VS_LEAF);
        rt_vs_stubs_user(&vs, 0);
        struct expect ff = expect_trap(20, HOLE, HOLE >> 2, 1, 0);
        probe(id++, "gpf-to-hs-fetch", A_FETCH, VS_MODE, HOLE, 0, to(ff, TO_HS));
        /* hedeleg cannot pass them on to VS */
        csr_write(hedeleg, (1ull << 21));
        probe(id++, "gpf-hedeleg-ignored", A_LD, VS_MODE, HOLE, 0, to(lf, TO_HS));
        /* HLV from HS faulting into HS: SPV = 0 (V was 0), GVA = 1 */
        probe(id++, "hlv-gpf-to-hs", A_HLVD, HS_MODE, HOLE, 0, to(expect_trap(21, HOLE, HOLE >> 2, 1, rt_tinst(A_HLVD)), TO_HS));
    }
    csr_write(hedeleg, 0);
    csr_write(medeleg, 0);

    /* VS-stage page faults: to M, to HS (htval = 0, GVA = 1), to VS */
    if (vs.mode) {
        id = 20;
        struct expect pf = expect_trap(13, vsinv + 8, 0, 1, rt_tinst(A_LD));
        probe(id++, "vs-pf-to-m", A_LD, VS_MODE, vsinv + 8, 0, pf);
        csr_write(medeleg, 1ull << 13);
        probe(id++, "vs-pf-to-hs", A_LD, VS_MODE, vsinv + 8, 0, to(pf, TO_HS));
        csr_write(hedeleg, 1ull << 13);
        struct expect pv = expect_trap(13, vsinv + 8, 0, 0, 0);
        probe(id++, "vs-pf-to-vs", A_LD, VS_MODE, vsinv + 8, 0, to(pv, TO_VS));
        /* From VU, delegated to VS.  Round 1 gave the whole 1 GiB identity leaf U = 1 for VU probes, so the
         * VS handler (same leaf) then faulted on its own fetch -- Priv. 10.3.1 "Irrespective of SUM, the
         * supervisor may not execute code on pages with U=1" -- an instruction page fault that both QEMUs
         * rightly raised.  Now only the stub pages get U = 1 (rt_vs_stubs_user), the handler stays U = 0.
         * The target page needs U = 1 too, else the fault would be the U-bit one rather than V = 0. */
        *pt_slot(&vs, vsinv, 0) |= PTE_U;
        csr_set(medeleg, 1ull << 15);
        csr_set(hedeleg, 1ull << 15);
        rt_vs_stubs_user(&vs, 1);
        probe(id++, "vu-pf-to-vs", A_LD, VU_MODE, vsinv + 8, 0, to(pv, TO_VS));
        probe(id++, "vu-pf-to-vs", A_SD, VU_MODE, vsinv + 16, 0, to(expect_trap(15, vsinv + 16, 0, 0, 0), TO_VS));
        rt_vs_stubs_user(&vs, 0);
        csr_write(hedeleg, 0);
        csr_write(medeleg, 0);
    }

    /* Access faults (every hgatp mode): a GVA whose final physical address has no memory behind it
     * (0xC0000000 on QEMU virt; under an x4 mode GPA 0x140000000 maps there with a valid 1 GiB G leaf).
     * To M, delegated to HS (medeleg), then to VS (hedeleg), from VS and VU, and HLV from HS.
     * Spec: 3.1.15 mcause 1/5/7; 3.6 PMAs (inaccessible I/O region -> access fault); H "mtval2"/"htval":
     * "For other traps, mtval2 is set to zero"; GVA = 1 (mtval holds a guest virtual address); 21.2.2
     * hedeleg: access faults (bits 1, 5, 7) may be delegated to VS, unlike guest-page faults. */
    id = 60;
    u64 nm = g.mode ? 0x140000000ull : 0xC0000000ull;
    if (g.mode) { pt_map(&g, nm, 0xC0000000ull, 2, G_LEAF); hfence_gvma_all(); }
    if (vs.mode) { pt_map(&vs, nm, nm, 2, VS_LEAF); hfence_vvma_all(); }
    struct expect afl = expect_trap(5, nm + 8, 0, 1, rt_tinst(A_LD)), afs = expect_trap(7, nm + 8, 0, 1, rt_tinst(A_SD));
    struct expect aff = expect_trap(1, nm, 0, 1, 0);
    probe(id++, "af-to-m", A_LD, VS_MODE, nm + 8, 0, afl);
    probe(id++, "af-to-m", A_SD, VS_MODE, nm + 8, 0, afs);
    probe(id++, "af-to-m", A_FETCH, VS_MODE, nm, 0, aff);
    probe(id++, "hlv-af-to-m", A_HLVD, HS_MODE, nm + 8, 0, expect_trap(5, nm + 8, 0, 1, rt_tinst(A_HLVD)));
    csr_write(medeleg, (1ull << 1) | (1ull << 5) | (1ull << 7));
    probe(id++, "af-to-hs", A_LD, VS_MODE, nm + 8, 0, to(afl, TO_HS));
    probe(id++, "af-to-hs", A_SD, VS_MODE, nm + 8, 0, to(afs, TO_HS));
    probe(id++, "af-to-hs", A_FETCH, VS_MODE, nm, 0, to(aff, TO_HS));
    probe(id++, "hlv-af-to-hs", A_HLVD, HS_MODE, nm + 8, 0, to(expect_trap(5, nm + 8, 0, 1, rt_tinst(A_HLVD)), TO_HS));
    csr_write(hedeleg, (1ull << 1) | (1ull << 5) | (1ull << 7));
    struct expect vl = to(expect_trap(5, nm + 8, 0, 0, 0), TO_VS), vsx = to(expect_trap(7, nm + 8, 0, 0, 0), TO_VS);
    probe(id++, "af-to-vs", A_LD, VS_MODE, nm + 8, 0, vl);
    probe(id++, "af-to-vs", A_SD, VS_MODE, nm + 8, 0, vsx);
    probe(id++, "af-to-vs", A_FETCH, VS_MODE, nm, 0, to(expect_trap(1, nm, 0, 0, 0), TO_VS));
    if (vs.mode) { pt_map(&vs, nm, nm, 2, VS_LEAF | PTE_U); }
    rt_vs_stubs_user(&vs, 1);
    probe(id++, "af-to-vs-from-vu", A_LD, VU_MODE, nm + 8, 0, vl);
    probe(id++, "af-to-vs-from-vu", A_SD, VU_MODE, nm + 8, 0, vsx);
    rt_vs_stubs_user(&vs, 0);
    if (vs.mode) { pt_map(&vs, nm, nm, 2, VS_LEAF); hfence_vvma_all(); }
    csr_write(hedeleg, 0);
    csr_write(medeleg, 0);

    /* PMP: the final physical address, then the page holding a G-stage PTE */
    id = 40;
    u64 bpa = (u64)blocked;
    pmp_block(bpa);
    struct expect af = expect_trap(5, bpa + 8, 0, 1, ~0ull);
    /* mtval2 on an access fault is zero (H "mtval2": "For other traps, mtval2 is set to zero") */
    probe(id++, "pmp-final-address", A_LD, VS_MODE, bpa + 8, 0, af);
    struct expect sa = expect_trap(7, bpa + 8, 0, 1, ~0ull);
    probe(id++, "pmp-final-address", A_SD, VS_MODE, bpa + 8, 0, sa);
    /* 3.7.1: "Attempting to fetch an instruction from a PMP region that does not have execute permissions
     * raises an instruction access-fault exception" */
    probe(50, "pmp-final-address", A_FETCH, VS_MODE, bpa, 0, expect_trap(1, bpa, 0, 1, 0));
    pmp_open();
    if (!g.mode) return rt_done();
    /* block the level-0 G-stage table holding galias's PTE: the implicit read fails PMP */
    u64 t0 = (u64)pt_slot(&g, galias, 0) & ~0xfffull;
    pmp_block(t0);
    struct expect ar = expect_trap(5, galias + 16, 0, 1, ~0ull);
    probe(id++, "pmp-g-pte", A_LD, VS_MODE, galias + 16, 0, ar);
    struct expect as = expect_trap(7, galias + 16, 0, 1, ~0ull);
    probe(id++, "pmp-g-pte", A_SD, VS_MODE, galias + 16, 0, as);
    pmp_open();
    probe(id++, "pmp-reopened", A_LD, VS_MODE, galias + 16, 0, expect_ok(tgt[2]));
    return rt_done();
}
