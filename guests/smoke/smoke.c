/* smoke: the smallest end-to-end check of two-stage translation.
 * G stage per the configured hgatp mode maps guest RAM 1:1; from VS-mode (vsatp Bare) one load succeeds and
 * one load of an unmapped guest-physical address faults:
 *   Priv. 20240411, 21.5.1 Guest physical address translation: no valid G-stage leaf -> load guest-page
 *   fault (cause 21), mtval = faulting guest virtual address, mtval2 = guest physical address >> 2, GVA = 1.
 * Under hgatp Bare the GPA is the physical address; nothing exists there on QEMU virt, so the load is a
 * load access fault (cause 5) with mtval = address (a guest virtual address, so GVA = 1), mtval2 = 0. */
#include "difftest.h"

DIFFTEST_MODES(HGATP_ALL, VS_BARE);

static volatile u64 data_word __attribute__((aligned(8))) = 0x1234abcd5678ef00ull;

int main(void)
{
    struct pt g;
    rt_banner("smoke");
    rt_gstage_identity(&g);
    probe(1, "mapped", A_LD, VS_MODE, (u64)&data_word, 0, expect_ok(0x1234abcd5678ef00ull));
    u64 hole = 0xC0000000ull;    /* outside the 1 GiB G-stage leaf and outside RAM */
    if (rt_hgatp_mode())
        probe(2, "unmapped-gpa", A_LD, VS_MODE, hole, 0, expect_trap(21, hole, hole >> 2, 1, rt_tinst(A_LD)));
    else
        /* mtval holds a guest virtual address (V=1 access), so GVA = 1 (Priv. 3.1.6.x "GVA") */
        probe(2, "unmapped-gpa", A_LD, VS_MODE, hole, 0, expect_trap(5, hole, 0, 1, rt_tinst(A_LD)));
    return rt_done();
}
