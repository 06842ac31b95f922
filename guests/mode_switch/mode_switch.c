/* mode_switch: change hgatp MODE and VMID between probes, with and without HFENCE.GVMA.
 * One G-stage table per x4 mode (Sv39x4, Sv48x4, Sv57x4), each mapping the same GPA to a different
 * page, each with its own VMID; the guest switches among them and checks which page a VS load reaches.
 *
 * Spec: Priv. 20240411, 21.2.10 (hgatp; a write to hgatp does not by itself order or flush anything);
 * 21.3.2 (HFENCE.GVMA): translations cached for one VMID are not used for another VMID, so switching
 * between VMIDs whose tables did not change needs no fence; after changing a table in place (same VMID)
 * only an HFENCE.GVMA makes the new mapping certain -- without the fence either page is allowed, so such
 * probes accept either value and print which one happened. */
#include "difftest.h"

DIFFTEST_MODES(HGATP_SV39X4 | HGATP_SV48X4 | HGATP_SV57X4, VS_BARE);

static volatile u64 pages[3][512] __attribute__((aligned(4096), section(".data.page")));
static unsigned id = 1;
#define GPA 0x100000000ull

int main(void)
{
    rt_banner("mode_switch");
    struct pt g[3];
    for (int m = 0; m < 3; m++) {
        for (int i = 0; i < 512; i++) pages[m][i] = 0x8800000000000000ull | ((u64)m << 32) | (u64)i;
        pt_init(&g[m], 1, 8 + (unsigned)m);
        pt_map(&g[m], 0x80000000ull, 0x80000000ull, 2, G_LEAF);
        pt_map(&g[m], GPA, (u64)pages[m], 0, G_LEAF);
    }
    /* supported x4 modes (hgatp MODE reads back); the configured one is always used first */
    unsigned ok[3], n = 0;
    for (int m = 0; m < 3; m++) {
        csr_write(hgatp, pt_atp(&g[m], 0));
        ok[m] = (csr_read(hgatp) >> 60) == 8 + (unsigned)m;
        n += ok[m];
    }
    csr_write(hgatp, 0);
    hfence_gvma_all();
    unsigned first = rt_hgatp_mode() - 8;
    for (int round = 0; round < 2; round++) {
        for (unsigned k = 0; k < 3; k++) {
            unsigned m = (first + k) % 3;
            if (!ok[m]) continue;
            /* different VMID per table: no fence needed between them */
            csr_write(hgatp, pt_atp(&g[m], 1 + m));
            if (round == 0) hfence_gvma_all();
            probe(id++, round ? "switch-vmid-no-fence" : "switch-with-fence", A_LD, VS_MODE, GPA + 8 * m, 0,
                  expect_ok(pages[m][m]));
        }
    }
    /* same VMID, MODE changed, then fenced: the new table must be used */
    id = 20;
    for (unsigned k = 0; k < 3; k++) {
        unsigned m = (first + k) % 3;
        if (!ok[m]) continue;
        csr_write(hgatp, pt_atp(&g[m], 7));
        hfence_gvma(0, 7);
        probe(id++, "same-vmid-fenced", A_LD, VS_MODE, GPA + 16, 0, expect_ok(pages[m][2]));
    }
    /* remap in place (same VMID), fence by GPA (rs1 = GPA >> 2) and VMID: the new page is used */
    id = 30;
    unsigned m = first;
    csr_write(hgatp, pt_atp(&g[m], 9));
    hfence_gvma_all();
    probe(id++, "before-remap", A_LD, VS_MODE, GPA + 24, 0, expect_ok(pages[m][3]));
    unsigned other = (m + 1) % 3;
    pt_map(&g[m], GPA, (u64)pages[other], 0, G_LEAF);
    probe(id++, "remap-unfenced", A_LD, VS_MODE, GPA + 24, 0, expect_ok_any());   /* old or new: both allowed */
    hfence_gvma(GPA >> 2, 9);
    probe(id++, "remap-fenced-by-gpa", A_LD, VS_MODE, GPA + 24, 0, expect_ok(pages[other][3]));
    pt_map(&g[m], GPA, (u64)pages[m], 0, G_LEAF);
    hfence_gvma(0, 9);
    probe(id++, "remap-fenced-by-vmid", A_LD, VS_MODE, GPA + 24, 0, expect_ok(pages[m][3]));
    /* invalidate in place, fence: now a guest-page fault */
    *pt_slot(&g[m], GPA, 0) = 0;
    hfence_gvma_all();
    probe(id++, "unmapped-fenced", A_LD, VS_MODE, GPA + 24, 0, expect_trap(21, GPA + 24, (GPA + 24) >> 2, 1, rt_tinst(A_LD)));
    csr_write(hgatp, 0);
    hfence_gvma_all();
    rt_puts("modes-used="); rt_dec(n); rt_putc('\n');
    return rt_done();
}
