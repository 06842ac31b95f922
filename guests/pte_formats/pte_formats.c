/* pte_formats: G-stage PTE encodings that must fault.  VS stage Bare, loads/stores/fetches from VS.
 *
 * Spec: Priv. 20240411, 10.3.2 (the walk, used for the G stage by 21.5.1): step 3 "If pte.v = 0, or if
 * pte.r = 0 and pte.w = 1, or if any bits or encodings that are reserved for future standard use are
 * set within pte, stop and raise a page-fault exception" (a guest-page fault in the G stage); step 4 a
 * non-leaf at level 0 faults; step 6 "If i > 0 and pte.ppn[i-1:0] != 0, this is a misaligned superpage;
 * stop and raise a page-fault exception".  PTE bits 60:54 are reserved (10.3.1). */
#include "difftest.h"

DIFFTEST_MODES(HGATP_SV39X4 | HGATP_SV48X4 | HGATP_SV57X4, VS_BARE);

static volatile u64 tgt[512] __attribute__((aligned(4096), section(".data.page")));
extern char rt_fetch_target[];
static unsigned id = 1;

static void gpf3(const char *w, u64 gpa)
{
    probe(id++, w, A_LD, VS_MODE, gpa + 8, 0, expect_trap(21, gpa + 8, (gpa + 8) >> 2, 1, rt_tinst(A_LD)));
    probe(id++, w, A_SD, VS_MODE, gpa + 8, 0, expect_trap(23, gpa + 8, (gpa + 8) >> 2, 1, rt_tinst(A_SD)));
    probe(id++, w, A_FETCH, VS_MODE, gpa, 0, expect_trap(20, gpa, gpa >> 2, 1, 0));
}

int main(void)
{
    struct pt g;
    rt_banner("pte_formats");
    for (unsigned i = 0; i < 512; i++) tgt[i] = 0x7777000000000000ull | i;
    rt_gstage_identity(&g);
    u64 tpa = (u64)tgt, fpa = (u64)rt_fetch_target;
    u64 b = 0x100000000ull;

    /* control: a good 4 KiB leaf */
    pt_map(&g, b, tpa, 0, G_LEAF);
    hfence_gvma_all();
    probe(id++, "good-leaf", A_LD, VS_MODE, b + 8, 0, expect_ok(tgt[1]));

    id = 10;   /* W without R */
    pt_map(&g, b + 0x1000, tpa, 0, PTE_V | PTE_W | PTE_X | PTE_U | PTE_A | PTE_D);
    pt_map(&g, b + 0x2000, tpa, 0, PTE_V | PTE_W | PTE_U | PTE_A | PTE_D);
    hfence_gvma_all();
    gpf3("w-without-r-x", b + 0x1000);
    gpf3("w-only", b + 0x2000);

    id = 20;   /* reserved bits 60:54, each alone */
    for (unsigned bit = 54; bit <= 60; bit++) {
        u64 va = b + 0x10000 + (bit - 54) * 0x1000ull;
        pt_map(&g, va, tpa, 0, G_LEAF | (1ull << bit));
        hfence_gvma_all();
        probe(id++, "reserved-bit", A_LD, VS_MODE, va + 8, 0, expect_trap(21, va + 8, (va + 8) >> 2, 1, rt_tinst(A_LD)));
    }

    id = 40;   /* misaligned superpages: 2 MiB and 1 GiB leaves whose PPN has low bits set */
    u64 m2 = 0x140000000ull, m1g = 0x200000000ull;
    pt_map(&g, m2, 0x80000000ull + 0x1000, 1, G_LEAF);
    pt_map(&g, m1g, 0x80000000ull + 0x200000, 2, G_LEAF);
    hfence_gvma_all();
    gpf3("misaligned-2m", m2 + (fpa & 0x1fffff) - 0x1000 + 0x1000);
    gpf3("misaligned-1g", m1g + 0x400000);
    /* an aligned 2 MiB leaf for comparison */
    pt_map(&g, m2 + 0x200000, 0x80000000ull, 1, G_LEAF);
    hfence_gvma_all();
    probe(id++, "aligned-2m", A_LD, VS_MODE, m2 + 0x200000 + (tpa - 0x80000000ull) + 16, 0, expect_ok(tgt[2]));
    probe(id++, "aligned-2m", A_FETCH, VS_MODE, m2 + 0x200000 + (fpa - 0x80000000ull), 0, expect_ok(0x600d));

    id = 60;   /* a non-leaf PTE at level 0 (V = 1, R = W = X = 0) */
    *pt_slot(&g, b + 0x30000, 0) = ((tpa >> 12) << 10) | PTE_V;
    hfence_gvma_all();
    gpf3("non-leaf-at-level-0", b + 0x30000);

    id = 70;   /* invalid entries at every level above the leaf: V = 0 in a non-leaf slot */
    for (int l = 1; l <= g.top; l++) {
        u64 va = (l == 1 ? 0x240000000ull : l == 2 ? 0x300000000ull : l == 3 ? 0x30000000000ull : 0x2000000000000ull);
        *pt_slot(&g, va, l) = ((tpa >> 12) << 10);      /* V = 0, points somewhere */
        hfence_gvma_all();
        probe(id++, "invalid-non-leaf", A_LD, VS_MODE, va, 0, expect_trap(21, va, va >> 2, 1, rt_tinst(A_LD)));
    }
    return rt_done();
}
