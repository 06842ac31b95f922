/* vs_ad_implicit: the A/D update of a VS-stage PTE is an implicit *store* through the G stage.
 *
 * The VS-stage page tables live in guest-physical pages the G stage maps read-only (an alias of their
 * RAM pages), so the VS walk can read every PTE, but a hardware update of A or D in a VS leaf must fail
 * at the G stage.
 *
 * Spec (Priv. 20240411, H "Guest Physical Address Translation"): "For a memory access made to support
 * VS-stage address translation (such as to read/write a VS-level page table), permissions and the need
 * to set A and/or D bits at the G-stage level are checked as though for an implicit load or store, not
 * for the original access type. However, any exception is always reported for the original access type
 * (instruction, load, or store/AMO)."  So: cause 20/21/23 for a fetch/load/store, mtval = the GVA,
 * mtval2 = the GPA of the VS PTE being written >> 2, and mtinst = the pseudoinstruction 0x00003020
 * ("64-bit write for VS-stage address translation"; zero is not allowed with a nonzero mtval2).
 * Whether the implementation updates A/D at all is its choice (Svade: page fault 12/13/15 instead;
 * Svadu with menvcfg.ADUE/henvcfg.ADUE set here), so both outcomes are accepted -- but never a success
 * that wrote through a read-only G-stage mapping. */
#include "difftest.h"

DIFFTEST_MODES(HGATP_SV39X4 | HGATP_SV48X4 | HGATP_SV57X4, VS_SV39);

static volatile u64 tgt[512] __attribute__((aligned(4096), section(".data.page")));
extern char rt_fetch_target[];
#define ALIAS(pa) ((pa) + 0x100000000ull)      /* GPA alias of a RAM page: read-only at the G stage */
#define GVA 0x40000000ull                      /* VS root index 1 -> L1[0] -> L0[i] */

static struct expect either_outcome(u64 cause_pf, u64 cause_gpf, enum rt_access a, u64 va, u64 pte_gpa,
                                    struct expect *gpf)
{
    *gpf = expect_implicit_gpf(cause_gpf, va, pte_gpa, PSEUDO_WRITE);
    return expect_trap(cause_pf, va, 0, 1, a == A_FETCH ? 0 : rt_tinst(a));
}

int main(void)
{
    struct pt g;
    rt_banner("vs_ad_implicit");
    rt_gstage_identity(&g);
    /* ask for hardware A/D updates where Svadu exists (a no-op write elsewhere) */
    csr_set(0x30a, 1ull << 61);                /* menvcfg.ADUE */
    csr_set(0x60a, 1ull << 61);                /* henvcfg.ADUE */

    volatile u64 *root = rt_page_alloc(1, 1), *l1 = rt_page_alloc(1, 1), *l0 = rt_page_alloc(1, 1);
    u64 r = (u64)root, m = (u64)l1, z = (u64)l0;
    const u64 RO = PTE_V | PTE_R | PTE_U | PTE_A | PTE_D;
    pt_map(&g, ALIAS(r), r, 0, RO);
    pt_map(&g, ALIAS(m), m, 0, RO);
    pt_map(&g, ALIAS(z), z, 0, RO);
    root[2] = ((0x80000000ull >> 12) << 10) | VS_LEAF;      /* code, data, stack: 1 GiB, A = D = 1 */
    root[1] = PTE_PTR(ALIAS(m));
    l1[0] = PTE_PTR(ALIAS(z));
    const u64 tpa = (u64)tgt, fpa = (u64)rt_fetch_target;
    l0[0] = ((tpa >> 12) << 10) | PTE_V | PTE_R | PTE_W;                 /* A = 0: a load must set A */
    l0[1] = ((tpa >> 12) << 10) | PTE_V | PTE_R | PTE_W | PTE_A;         /* D = 0: a store must set D */
    l0[2] = ((fpa >> 12) << 10) | PTE_V | PTE_R | PTE_X;                 /* A = 0: a fetch must set A */
    l0[3] = ((tpa >> 12) << 10) | PTE_V | PTE_R | PTE_W | PTE_A | PTE_D;  /* nothing to update */
    l0[4] = ((tpa >> 12) << 10) | PTE_V | PTE_R | PTE_W | PTE_A;         /* D = 0, for an AMO */
    hfence_gvma_all();
    csr_write(vsatp, (8ull << 60) | (ALIAS(r) >> 12));
    hfence_vvma_all();

    unsigned id = 1;
    struct expect gpf, pf;
    tgt[1] = 0x600dcafe;
    /* control: reading VS PTEs through the read-only G mapping is fine when nothing must be written */
    probe(id++, "no-update-load", A_LD, VS_MODE, GVA + 0x3008, 0, expect_ok(0x600dcafe));
    probe(id++, "no-update-store", A_SD, VS_MODE, GVA + 0x3008, 0x77, expect_ok(0x77));

    id = 10;
    pf = either_outcome(13, 21, A_LD, GVA + 0x0008, ALIAS(z) + 0 * 8, &gpf);
    probe_either(id++, "load-sets-a", A_LD, VS_MODE, GVA + 0x0008, 0, pf, gpf, 2);
    pf = either_outcome(15, 23, A_SD, GVA + 0x1008, ALIAS(z) + 1 * 8, &gpf);
    probe_either(id++, "store-sets-d", A_SD, VS_MODE, GVA + 0x1008, 0x99, pf, gpf, 2);
    pf = either_outcome(15, 23, A_AMOADD, GVA + 0x4008, ALIAS(z) + 4 * 8, &gpf);
    probe_either(id++, "amo-sets-d", A_AMOADD, VS_MODE, GVA + 0x4008, 1, pf, gpf, 2);
    pf = either_outcome(12, 20, A_FETCH, GVA + 0x2000, ALIAS(z) + 2 * 8, &gpf);
    probe_either(id++, "fetch-sets-a", A_FETCH, VS_MODE, GVA + 0x2000, 0, pf, gpf, 2);
    rt_check(!((l0[0] & PTE_A) | (l0[1] & PTE_D) | (l0[2] & PTE_A) | (l0[4] & PTE_D)),
             "a VS PTE's A/D bit was written through a read-only G-stage mapping");

    /* The G-stage A/D bits of the page holding a VS page table: the walk's implicit read needs G-stage
     * A, the VS A/D update (an implicit store) needs G-stage D -- set by hardware (Svadu) or a guest-page
     * fault of the original type (Svade) with mtinst 0x3000 (read) / 0x3020 (write). */
    id = 20;
    tgt[1] = 0x77;                       /* independent of what the probes above did to it */
    volatile u64 *l0b = rt_page_alloc(1, 1);
    u64 zb = (u64)l0b;
    const u64 GB = 0x200000000ull;                       /* GPA alias of l0b, remapped per probe */
    volatile u64 *gslot = pt_slot(&g, GB, 0);
    l1[1] = PTE_PTR(GB);                                 /* GVA 0x40200000.. -> L0 at GPA GB */
    l0b[0] = ((tpa >> 12) << 10) | PTE_V | PTE_R | PTE_W | PTE_A | PTE_D;  /* nothing to update */
    l0b[1] = ((tpa >> 12) << 10) | PTE_V | PTE_R | PTE_W;                  /* A = 0 */
    /* (a) G-stage A = 0 on the table page, VS leaf needs nothing: the implicit read must set G A */
    *gslot = ((zb >> 12) << 10) | PTE_V | PTE_R | PTE_W | PTE_U;
    hfence_gvma_all();
    hfence_vvma_all();
    gpf = expect_implicit_gpf(21, 0x40200008, GB, PSEUDO_READ);
    int ra = probe_either(id++, "g-a-clear-on-vs-table", A_LD, VS_MODE, 0x40200008, 0, gpf, expect_ok(0x77), 2);
    rt_check(!((ra == 2) & !(*gslot & PTE_A)),
             "the VS walk read a table through a G-stage leaf with A clear and did not set A");
    /* (b) G-stage A = 1, D = 0 on the table page, VS leaf A = 0: the VS A update must set G D */
    *gslot = ((zb >> 12) << 10) | PTE_V | PTE_R | PTE_W | PTE_U | PTE_A;
    hfence_gvma_all();
    hfence_vvma_all();
    /* Svade: the VS page fault for A = 0 comes first, nothing is written; hardware update (both
     * ADUE set above): success, with VS A and G-stage D set */
    pf = expect_trap(13, 0x40201008, 0, 1, rt_tinst(A_LD));
    probe_either(id++, "g-d-clear-on-vs-table", A_LD, VS_MODE, 0x40201008, 0, pf, expect_ok(0x77), 2);
    rt_check(!(((l0b[1] & PTE_A) != 0) & !(*gslot & PTE_D)),
             "a VS PTE's A bit was set in a page whose G-stage leaf stayed clean (D = 0)");
    return rt_done();
}
