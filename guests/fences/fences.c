/* fences: HFENCE.GVMA, HFENCE.VVMA and SFENCE.VMA from VS -- all, by address, by VMID/ASID, after PTE
 * changes -- and who may execute them.
 *
 * Spec: Priv. 20240411, 21.3.2 "Hypervisor Memory-Management Fence Instructions" (riscv-isa-manual
 * src/priv/hypervisor.adoc):
 *  - HFENCE.GVMA "guarantees that any previous stores already visible to the current hart are ordered
 *    before all implicit reads by that hart done for G-stage address translation for instructions that
 *    follow the HFENCE.GVMA.  If operand rs1 != x0, it specifies a single guest physical address, shifted
 *    right by 2 bits, and if operand rs2 != x0, it specifies a single virtual machine identifier (VMID)."
 *  - HFENCE.VVMA: "Its effect is much the same as temporarily entering VS-mode and executing SFENCE.VMA"
 *    ... "If operand rs1 != x0, it specifies a single guest virtual address, and if operand rs2 != x0, it
 *    specifies a single guest address-space identifier (ASID)."
 *  - "Instruction SFENCE.VMA applies only to the memory-management data structures controlled by the
 *    current satp (either the HS-level satp when V=0 or vsatp when V=1)."
 *  - "Attempts to execute HFENCE.VVMA or HFENCE.GVMA when V=1 cause a virtual-instruction exception,
 *    while attempts to do the same in U-mode cause an illegal-instruction exception.  Attempting to execute
 *    HFENCE.GVMA in HS-mode when mstatus.TVM=1 also causes an illegal-instruction exception."
 *    "Neither mstatus.TVM nor hstatus.VTVM causes HFENCE.VVMA to trap."
 *  - 21.6.1 virtual-instruction cases: "in VU-mode, attempts to ... execute a supervisor instruction (SRET
 *    or SFENCE)"; hstatus.VTVM=1: SFENCE.VMA in VS-mode is a virtual-instruction exception (21.2.1).
 *  - 10.2.1 SFENCE.VMA: without a fence after a PTE store, the hart may use either the old or the new
 *    PTE (the implicit reads are not ordered), so every probe between a PTE change and its fence accepts
 *    both outcomes (probe_either, `allowed-outcome=` says which happened); the probe after the fence must
 *    see the new PTE.  A fence of an unrelated address, VMID or ASID leaves the same freedom.
 *  - SFENCE.VMA with rs2 != x0 "does not order ... global mappings" (10.2.1): a G=1 VS leaf changed and
 *    fenced by ASID alone may still be the old one.
 *
 * Divergences seen 2026-11-25 (every fence-ordering probe passes on both QEMUs and the model):
 *  - both QEMUs: mstatus.GVA = 1 on illegal-instruction and virtual-instruction traps (probes 103-111,
 *    113, 115).  21.4 "Machine Status": "For any trap (breakpoint, address misaligned, access fault, page
 *    fault, or guest-page fault) that writes a guest virtual address to mtval, GVA is set to 1.  For any
 *    other trap into M-mode, GVA is set to 0."  mtval holds instruction bits here, not an address.  On
 *    the U-mode (V=0) traps GVA is left over from an earlier trap: QEMU only ever sets it.
 *  - QEMU 7.2: HFENCE.* and SFENCE.VMA in VU raise illegal instruction instead of virtual instruction
 *    (108-110; 21.6.1 "in VS-mode or VU-mode, attempts to execute a hypervisor instruction (HLV, HLVX,
 *    HSV, or HFENCE)", "in VU-mode, attempts to ... execute a supervisor instruction (SRET or SFENCE)");
 *    SFENCE.VMA in VS with mstatus.TVM=1 raises illegal instruction (114; 21.4 "The TSR and TVM fields of
 *    mstatus affect execution only in HS-mode, not in VS-mode"). */
#include "difftest.h"

DIFFTEST_MODES(HGATP_ALL, VS_BARE | VS_SV39);

static volatile u64 pg[3][512] __attribute__((aligned(4096), section(".data.page")));
extern char rt_fetch_target[];
static unsigned id = 1;
#define GX  0x100000000ull      /* G stage: a 4 KiB GPA remapped among pg[0..2] */
#define G2M 0x100200000ull      /* G stage: a 2 MiB GPA superpage */
#define VY  0x200000000ull      /* VS stage: a 4 KiB GVA remapped among pg[0..2] (GPA = PA) */
#define VG  0x200001000ull      /* VS stage: a global (G=1) 4 KiB GVA */

static struct expect ok(u64 v) { return expect_ok(v); }
static struct expect gpf(u64 cause, u64 a, enum rt_access acc) { return expect_trap(cause, a, a >> 2, 1, acc == A_FETCH ? 0 : rt_tinst(acc)); }
static struct expect pf(u64 cause, u64 a, enum rt_access acc) { return expect_trap(cause, a, 0, 1, acc == A_FETCH ? 0 : rt_tinst(acc)); }
static struct expect insn_trap(u64 cause)
{
    struct expect e = expect_trap(cause, 0, 0, 0, ~0ull);
    e.any_tval = 1;            /* mtval = 0 or the instruction bits: the implementation's choice */
    return e;
}
/* between a PTE store and its fence: the old or the new translation */
static void either(const char *w, enum rt_access a, u64 va, u64 val, struct expect olde, struct expect newe)
{
    probe_either(id++, w, a, VS_MODE, va, val, olde, newe, 2);
}
static void g4k(struct pt *g, u64 gpa, u64 pa, u64 flags) { pt_map(g, gpa, pa, 0, flags); }

static void gstage_fences(struct pt *g)
{
    u64 *A = (u64 *)pg[0], *B = (u64 *)pg[1], *C = (u64 *)pg[2];
    id = 1;
    g4k(g, GX, (u64)A, G_LEAF);
    hfence_gvma_all();
    probe(id++, "g-mapped", A_LD, VS_MODE, GX + 8, 0, ok(A[1]));
    g4k(g, GX, (u64)B, G_LEAF);
    either("g-remap-unfenced", A_LD, GX + 8, 0, ok(A[1]), ok(B[1]));
    hfence_gvma(GX >> 2, 0);
    probe(id++, "g-remap-fenced-gpa", A_LD, VS_MODE, GX + 8, 0, ok(B[1]));
    g4k(g, GX, (u64)C, G_LEAF);
    hfence_gvma(0, 0);                                   /* rs2 = x0: all VMIDs, all GPAs */
    probe(id++, "g-remap-fenced-all", A_LD, VS_MODE, GX + 16, 0, ok(C[2]));
    g4k(g, GX, (u64)A, G_LEAF);
    hfence_gvma((GX + 0x5000) >> 2, 0);                  /* another GPA: no ordering for GX */
    either("g-remap-other-gpa-fenced", A_LD, GX + 16, 0, ok(C[2]), ok(A[2]));
    hfence_gvma_all();
    probe(id++, "g-remap-fenced-all", A_LD, VS_MODE, GX + 16, 0, ok(A[2]));

    id = 10;   /* permissions: read-only -> store faults; made writable: either until fenced */
    g4k(g, GX, (u64)A, PTE_V | PTE_R | PTE_U | PTE_A | PTE_D);
    hfence_gvma(GX >> 2, 0);
    probe(id++, "g-readonly-fenced", A_SD, VS_MODE, GX + 24, 5, gpf(23, GX + 24, A_SD));
    g4k(g, GX, (u64)A, G_LEAF);
    either("g-made-writable-unfenced", A_SD, GX + 24, 6, gpf(23, GX + 24, A_SD), expect_ok_any());
    hfence_gvma(GX >> 2, 0);
    probe(id++, "g-made-writable-fenced", A_SD, VS_MODE, GX + 24, 7, expect_ok_any());
    rt_check(A[3] == 7, "g-made-writable-fenced: the store did not reach the page");
    /* execute: the fetch target page mapped, unmapped */
    g4k(g, GX + 0x1000, (u64)rt_fetch_target, G_LEAF);
    hfence_gvma((GX + 0x1000) >> 2, 0);
    probe(id++, "g-fetch-mapped", A_FETCH, VS_MODE, GX + 0x1000, 0, ok(0x600d));
    *pt_slot(g, GX + 0x1000, 0) = 0;
    either("g-fetch-unmapped-unfenced", A_FETCH, GX + 0x1000, 0, ok(0x600d), gpf(20, GX + 0x1000, A_FETCH));
    hfence_gvma((GX + 0x1000) >> 2, 0);
    probe(id++, "g-fetch-unmapped-fenced", A_FETCH, VS_MODE, GX + 0x1000, 0, gpf(20, GX + 0x1000, A_FETCH));

    id = 20;   /* invalidation and re-validation */
    *pt_slot(g, GX, 0) = 0;
    either("g-invalidated-unfenced", A_LD, GX + 32, 0, ok(A[4]), gpf(21, GX + 32, A_LD));
    hfence_gvma(GX >> 2, 0);
    probe(id++, "g-invalidated-fenced", A_LD, VS_MODE, GX + 32, 0, gpf(21, GX + 32, A_LD));
    g4k(g, GX, (u64)B, G_LEAF);
    /* an invalid PTE may not be cached, but nothing orders the store before the walk either */
    either("g-revalidated-unfenced", A_LD, GX + 32, 0, gpf(21, GX + 32, A_LD), ok(B[4]));
    hfence_gvma(GX >> 2, 0);
    probe(id++, "g-revalidated-fenced", A_LD, VS_MODE, GX + 32, 0, ok(B[4]));

    id = 30;   /* a 2 MiB superpage, fenced by a GPA inside it other than its base */
    u64 big = (u64)A & ~0x1fffffull, off = (u64)A - big;
    pt_map(g, G2M, big, 1, G_LEAF);
    hfence_gvma_all();
    probe(id++, "g-superpage", A_LD, VS_MODE, G2M + off + 40, 0, ok(A[5]));
    *pt_slot(g, G2M, 1) = 0;
    either("g-superpage-invalidated-unfenced", A_LD, G2M + off + 40, 0, ok(A[5]), gpf(21, G2M + off + 40, A_LD));
    hfence_gvma((G2M + 0x1ff000) >> 2, 0);   /* last 4 KiB page of the superpage: covers every GPA in it */
    probe(id++, "g-superpage-fenced-inside", A_LD, VS_MODE, G2M + off + 40, 0, gpf(21, G2M + off + 40, A_LD));

    id = 40;   /* VMIDs: a fence for another VMID does not order our walks; ours does */
    u64 vmid = 1;
    csr_write(hgatp, pt_atp(g, vmid));
    if (((csr_read(hgatp) >> 44) & 0x3fff) == vmid) {     /* VMIDLEN >= 1 */
        g4k(g, GX, (u64)A, G_LEAF);
        hfence_gvma_all();
        probe(id++, "vmid1-mapped", A_LD, VS_MODE, GX + 48, 0, ok(A[6]));
        g4k(g, GX, (u64)C, G_LEAF);
        hfence_gvma(0, 2);
        either("vmid1-remap-fenced-vmid2", A_LD, GX + 48, 0, ok(A[6]), ok(C[6]));
        hfence_gvma(0, vmid);
        probe(id++, "vmid1-remap-fenced-vmid1", A_LD, VS_MODE, GX + 48, 0, ok(C[6]));
        g4k(g, GX, (u64)B, G_LEAF);
        hfence_gvma(GX >> 2, vmid);
        probe(id++, "vmid1-remap-fenced-gpa-vmid1", A_LD, VS_MODE, GX + 48, 0, ok(B[6]));
        /* HFENCE.VVMA orders VS-stage walks only: a G-stage change fenced by it alone may be old or new */
        g4k(g, GX, (u64)C, G_LEAF);
        hfence_vvma_all();
        either("g-remap-fenced-by-vvma-only", A_LD, GX + 48, 0, ok(B[6]), ok(C[6]));
        hfence_gvma_all();
        probe(id++, "g-remap-fenced-gvma", A_LD, VS_MODE, GX + 48, 0, ok(C[6]));
    }
    csr_write(hgatp, pt_atp(g, 0));
    hfence_gvma_all();
}

static void vsstage_fences(struct pt *vs)
{
    u64 *A = (u64 *)pg[0], *B = (u64 *)pg[1], *C = (u64 *)pg[2];
    id = 60;
    pt_map(vs, VY, (u64)A, 0, VS_LEAF);
    hfence_vvma_all();
    probe(id++, "vs-mapped", A_LD, VS_MODE, VY + 8, 0, ok(A[1]));
    pt_map(vs, VY, (u64)B, 0, VS_LEAF);
    either("vs-remap-unfenced", A_LD, VY + 8, 0, ok(A[1]), ok(B[1]));
    hfence_vvma(VY, 0);
    probe(id++, "vs-remap-hfence-vvma-va", A_LD, VS_MODE, VY + 8, 0, ok(B[1]));
    pt_map(vs, VY, (u64)C, 0, VS_LEAF);
    hfence_vvma(VY + 0x7000, 0);                       /* another GVA */
    either("vs-remap-other-va-fenced", A_LD, VY + 8, 0, ok(B[1]), ok(C[1]));
    hfence_vvma_all();
    probe(id++, "vs-remap-hfence-vvma-all", A_LD, VS_MODE, VY + 8, 0, ok(C[1]));
    /* the guest's own SFENCE.VMA (V=1) orders the VS-stage walks */
    pt_map(vs, VY, (u64)A, 0, VS_LEAF);
    probe(id++, "vs-sfence-vma-va", A_SFENCE, VS_MODE, VY, 0, ok(0));
    probe(id++, "vs-remap-after-vs-sfence", A_LD, VS_MODE, VY + 16, 0, ok(A[2]));
    pt_map(vs, VY, (u64)B, 0, VS_LEAF);
    probe(id++, "vs-sfence-vma-all", A_SFENCE, VS_MODE, 0, 0, ok(0));
    probe(id++, "vs-remap-after-vs-sfence-all", A_LD, VS_MODE, VY + 16, 0, ok(B[2]));
    /* HS's SFENCE.VMA (V=0) is for satp, not vsatp: the VS change may stay unordered */
    pt_map(vs, VY, (u64)C, 0, VS_LEAF);
    __asm__ volatile("sfence.vma" ::: "memory");
    either("vs-remap-hs-sfence-only", A_LD, VY + 16, 0, ok(B[2]), ok(C[2]));
    hfence_vvma(VY, 0);
    probe(id++, "vs-remap-hfence-vvma-va", A_LD, VS_MODE, VY + 16, 0, ok(C[2]));
    /* VS-stage invalidation: a page fault once fenced */
    *pt_slot(vs, VY, 0) = 0;
    either("vs-invalidated-unfenced", A_LD, VY + 24, 0, ok(C[3]), pf(13, VY + 24, A_LD));
    hfence_vvma(VY, 0);
    probe(id++, "vs-invalidated-fenced", A_LD, VS_MODE, VY + 24, 0, pf(13, VY + 24, A_LD));
    pt_map(vs, VY, (u64)A, 0, VS_LEAF | PTE_R);   /* RWX as before, re-validated */
    either("vs-revalidated-unfenced", A_LD, VY + 24, 0, pf(13, VY + 24, A_LD), ok(A[3]));
    hfence_vvma(VY, 0);
    probe(id++, "vs-revalidated-fenced", A_LD, VS_MODE, VY + 24, 0, ok(A[3]));

    id = 80;   /* ASIDs */
    u64 asid = 5;
    csr_write(vsatp, pt_atp(vs, asid));
    if (((csr_read(vsatp) >> 44) & 0xffff) == asid) {     /* ASIDLEN >= 3 */
        hfence_vvma_all();
        probe(id++, "asid5-mapped", A_LD, VS_MODE, VY + 32, 0, ok(A[4]));
        pt_map(vs, VY, (u64)B, 0, VS_LEAF);
        hfence_vvma(0, 6);                                 /* another ASID */
        either("asid5-remap-fenced-asid6", A_LD, VY + 32, 0, ok(A[4]), ok(B[4]));
        hfence_vvma(0, asid);
        probe(id++, "asid5-remap-fenced-asid5", A_LD, VS_MODE, VY + 32, 0, ok(B[4]));
        pt_map(vs, VY, (u64)C, 0, VS_LEAF);
        hfence_vvma(VY, asid);
        probe(id++, "asid5-remap-fenced-va-asid5", A_LD, VS_MODE, VY + 32, 0, ok(C[4]));
        pt_map(vs, VY, (u64)A, 0, VS_LEAF);
        probe(id++, "vs-sfence-vma-asid5", A_SFENCE, VS_MODE, 0, asid, ok(asid));
        probe(id++, "asid5-remap-after-vs-sfence-asid", A_LD, VS_MODE, VY + 32, 0, ok(A[4]));
        /* a global leaf is not ordered by an ASID-specific fence, only by one with rs2 = x0 */
        pt_map(vs, VG, (u64)A, 0, VS_LEAF | PTE_G);
        hfence_vvma_all();
        probe(id++, "global-mapped", A_LD, VS_MODE, VG + 40, 0, ok(A[5]));
        pt_map(vs, VG, (u64)B, 0, VS_LEAF | PTE_G);
        hfence_vvma(0, asid);
        either("global-remap-fenced-asid", A_LD, VG + 40, 0, ok(A[5]), ok(B[5]));
        hfence_vvma(VG, 0);
        probe(id++, "global-remap-fenced-va", A_LD, VS_MODE, VG + 40, 0, ok(B[5]));
    }
    csr_write(vsatp, pt_atp(vs, 0));
    hfence_vvma_all();
}

int main(void)
{
    struct pt g, vs;
    rt_banner("fences");
    for (unsigned p = 0; p < 3; p++)
        for (unsigned i = 0; i < 512; i++) pg[p][i] = 0xfe00000000000000ull | ((u64)p << 32) | i;
    rt_gstage_identity(&g);
    rt_vsstage_identity(&vs);
    if (vs.mode) {      /* GVA = GPA for the G-stage test region */
        pt_map(&vs, GX & ~0x3fffffffull, GX & ~0x3fffffffull, 2, VS_LEAF);
        hfence_vvma_all();
    }
    if (g.mode) gstage_fences(&g);
    if (vs.mode) vsstage_fences(&vs);

    /* who may execute the fences (every mode pair) */
    id = 100;
    probe(id++, "hs-hfence-gvma", A_HFENCE_GVMA, HS_MODE, 0, 0, ok(0));
    probe(id++, "hs-hfence-vvma", A_HFENCE_VVMA, HS_MODE, 0, 0, ok(0));
    probe(id++, "vs-sfence-vma", A_SFENCE, VS_MODE, 0, 0, ok(0));
    probe(id++, "vs-hfence-gvma", A_HFENCE_GVMA, VS_MODE, 0, 0, insn_trap(22));
    probe(id++, "vs-hfence-vvma", A_HFENCE_VVMA, VS_MODE, 0, 0, insn_trap(22));
    probe(id++, "u-hfence-gvma", A_HFENCE_GVMA, U_MODE, 0, 0, insn_trap(2));
    probe(id++, "u-hfence-vvma", A_HFENCE_VVMA, U_MODE, 0, 0, insn_trap(2));
    probe(id++, "u-sfence-vma", A_SFENCE, U_MODE, 0, 0, insn_trap(2));
    rt_vs_stubs_user(&vs, 1);
    probe(id++, "vu-hfence-gvma", A_HFENCE_GVMA, VU_MODE, 0, 0, insn_trap(22));
    probe(id++, "vu-hfence-vvma", A_HFENCE_VVMA, VU_MODE, 0, 0, insn_trap(22));
    probe(id++, "vu-sfence-vma", A_SFENCE, VU_MODE, 0, 0, insn_trap(22));
    rt_vs_stubs_user(&vs, 0);
    /* mstatus.TVM = 1: HFENCE.GVMA in HS is illegal, HFENCE.VVMA is not; TVM does not affect VS */
    csr_set(mstatus, 1ull << 20);
    probe(id++, "hs-hfence-gvma-tvm", A_HFENCE_GVMA, HS_MODE, 0, 0, insn_trap(2));
    probe(id++, "hs-hfence-vvma-tvm", A_HFENCE_VVMA, HS_MODE, 0, 0, ok(0));
    probe(id++, "hs-sfence-vma-tvm", A_SFENCE, HS_MODE, 0, 0, insn_trap(2));
    probe(id++, "vs-sfence-vma-tvm", A_SFENCE, VS_MODE, 0, 0, ok(0));
    csr_clear(mstatus, 1ull << 20);
    /* hstatus.VTVM = 1: SFENCE.VMA in VS is a virtual-instruction exception; HFENCE.VVMA from HS is not */
    csr_set(hstatus, 1ull << 20);
    probe(id++, "vs-sfence-vma-vtvm", A_SFENCE, VS_MODE, 0, 0, insn_trap(22));
    probe(id++, "hs-hfence-vvma-vtvm", A_HFENCE_VVMA, HS_MODE, 0, 0, ok(0));
    probe(id++, "hs-sfence-vma-vtvm", A_SFENCE, HS_MODE, 0, 0, ok(0));
    csr_clear(hstatus, 1ull << 20);
    return rt_done();
}
