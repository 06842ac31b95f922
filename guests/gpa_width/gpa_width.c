/* gpa_width: every single GPA bit 12..63 set alone.  Below the mode's GPA width (41/50/59 bits) the
 * guest maps a 4 KiB G-stage leaf at GPA = 1 << bit and the VS load must read it; at and above the width
 * the load is a load guest-page fault with mtval = GVA and mtval2 = GPA >> 2 (VS stage Bare: GVA = GPA).
 *
 * Spec: Priv. 20240411, 21.5.1 "Guest physical address translation": for Sv39x4/Sv48x4/Sv57x4 "the
 * incoming guest physical address ... bits 63:41 (63:50, 63:59) must all be zeros, or else a
 * guest-page fault occurs"; the root table is indexed by the 11 bits GPA[width-1:width-11].
 * QEMU 7.2 divergence (re-verified 2026-11-25): bit (width-1) alone faults there.  Decided by 21.5.1:
 * "Address bits 63:41 must all be zeros, or else a guest-page-fault exception occurs" -- only the bits
 * above the width matter; GPAs are not sign-extended (see gstage_basic). */
#include "difftest.h"

DIFFTEST_MODES(HGATP_SV39X4 | HGATP_SV48X4 | HGATP_SV57X4, VS_BARE);

static volatile u64 tgt[512] __attribute__((aligned(4096), section(".data.page")));

int main(void)
{
    struct pt g;
    rt_banner("gpa_width");
    for (unsigned i = 0; i < 512; i++) tgt[i] = 0x9900000000000000ull | i;
    rt_gstage_identity(&g);
    unsigned width = 12 + 9 * (unsigned)g.top + 9 + 2;
    for (unsigned bit = 12; bit < 64; bit++) {
        u64 gpa = 1ull << bit;
        if (bit == 31) continue;       /* 0x80000000 is guest RAM (the identity gigapage) */
        if (bit < width) {
            pt_map(&g, gpa, (u64)tgt, 0, G_LEAF);
            hfence_gvma_all();
            probe(bit, "gpa-bit", A_LD, VS_MODE, gpa + 8 * (bit % 64), 0, expect_ok(tgt[bit % 64]));
        } else {
            u64 a = gpa + 8;
            probe(bit, "gpa-bit", A_LD, VS_MODE, a, 0, expect_trap(21, a, a >> 2, 1, rt_tinst(A_LD)));
        }
    }
    return rt_done();
}
