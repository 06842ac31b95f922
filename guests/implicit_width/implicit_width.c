/* implicit_width: the GPA-width rule on the implicit accesses of the VS-stage walk, and on the final
 * GPA a VS leaf names (an explicit access: mtval2 = that GPA >> 2, mtinst 0 or transformed).
 *
 * A VS-stage non-leaf PTE holds a guest physical address; reading the next-level table there is an
 * implicit access translated by the G stage like any other GPA.  Here the VS root points to a level-1
 * table at a GPA whose top in-width bit is set (mapped at the G stage: must work) and to one whose
 * first bit above the width is set (must fault).
 *
 * Spec (Priv. 20240411, H "Guest Physical Address Translation"): Sv39x4/Sv48x4/Sv57x4 GPAs are 41/50/59
 * bits wide -- "Address bits 63:41 must all be zeros, or else a guest-page-fault exception occurs" (and
 * likewise for 50/59) -- and "For a memory access made to support VS-stage address translation ...
 * any exception is always reported for the original access type": cause 20/21/23, mtval = the GVA,
 * mtval2 = the GPA of the PTE being read >> 2, mtinst = the pseudoinstruction 0x00003000 (64-bit read
 * for VS-stage translation; zero is not allowed with a nonzero mtval2).  A PTE's PPN field has 44 bits,
 * so a PTE can name GPAs up to 2^56: for Sv57x4 only the in-width case exists. */
#include "difftest.h"

DIFFTEST_MODES(HGATP_SV39X4 | HGATP_SV48X4 | HGATP_SV57X4, VS_SV39);

static volatile u64 tgt[512] __attribute__((aligned(4096), section(".data.page")));

int main(void)
{
    struct pt g;
    rt_banner("implicit_width");
    rt_gstage_identity(&g);
    const int width = g.mode == 8 ? 41 : g.mode == 9 ? 50 : 59;

    volatile u64 *root = rt_page_alloc(1, 1), *l1 = rt_page_alloc(1, 1), *l0 = rt_page_alloc(1, 1);
    const u64 tpa = (u64)tgt;
    root[2] = ((0x80000000ull >> 12) << 10) | VS_LEAF;     /* code, data, stack: 1 GiB identity */
    l1[0] = PTE_PTR((u64)l0);
    l0[0] = ((tpa >> 12) << 10) | VS_LEAF;                 /* GVA x0000_0000 -> tgt */
    tgt[3] = 0xfeedf00d;

    /* the level-1 table at a GPA with the top in-width bit set (bit 55 for Sv57x4: the PTE's limit) */
    const u64 hi = (1ull << (width - 1 < 55 ? width - 1 : 55)) | 0x5000;
    pt_map(&g, hi, (u64)l1, 0, G_LEAF);
    root[1] = PTE_PTR(hi);                                 /* GVA 0x40000000.. */
    /* ... and the same table named with the first bit above the width set (not for Sv57x4) */
    const u64 above = (1ull << width) | (u64)l1;
    if (width < 56) root[3] = PTE_PTR(above);              /* GVA 0xc0000000.. */
    hfence_gvma_all();
    csr_write(vsatp, (8ull << 60) | ((u64)root >> 12));
    hfence_vvma_all();

    unsigned id = 1;
    probe(id++, "l1-at-top-in-width", A_LD, VS_MODE, 0x40000018, 0, expect_ok(0xfeedf00d));
    probe(id++, "l1-at-top-in-width", A_SD, VS_MODE, 0x40000018, 0x55, expect_ok(0x55));
    /* the final GPA of a VS leaf: top in-width bit (mapped at G) works, above the width faults as an
     * explicit access (mtval2 = that GPA >> 2, mtinst 0 or the transformed instruction) */
    id = 5;
    const u64 leaf_hi = (1ull << (width - 1 < 55 ? width - 1 : 55)) | 0x9000;
    pt_map(&g, leaf_hi, tpa, 0, G_LEAF);
    l0[1] = ((leaf_hi >> 12) << 10) | VS_LEAF;             /* GVA x0000_1000 -> GPA leaf_hi */
    const u64 leaf_above = (1ull << width) | tpa;
    if (width < 56) l0[2] = ((leaf_above >> 12) << 10) | VS_LEAF;   /* GVA x0000_2000 -> above the width */
    hfence_gvma_all();
    hfence_vvma_all();
    probe(id++, "leaf-gpa-top-in-width", A_LD, VS_MODE, 0x40001018, 0, expect_ok(tgt[3]));
    if (width < 56) {
        probe(id++, "leaf-gpa-above-width", A_LD, VS_MODE, 0x40002018, 0,
              expect_trap(21, 0x40002018, (leaf_above + 0x18) >> 2, 1, rt_tinst(A_LD)));
        probe(id++, "leaf-gpa-above-width", A_SD, VS_MODE, 0x40002018, 0x66,
              expect_trap(23, 0x40002018, (leaf_above + 0x18) >> 2, 1, rt_tinst(A_SD)));
    }
    if (width < 56) {
        id = 10;
        probe(id++, "l1-above-width", A_LD, VS_MODE, 0xc0000018, 0,
              expect_implicit_gpf(21, 0xc0000018, above, PSEUDO_READ));
        probe(id++, "l1-above-width", A_SD, VS_MODE, 0xc0000018, 0x66,
              expect_implicit_gpf(23, 0xc0000018, above, PSEUDO_READ));
        probe(id++, "l1-above-width", A_FETCH, VS_MODE, 0xc0000000, 0,
              expect_implicit_gpf(20, 0xc0000000, above, PSEUDO_READ));
    }
    return rt_done();
}
