/* hlvx_vs: HLVX.WU from HS-mode (hstatus.SPVP = 1) through a VS stage whose leaves grant X without R, R
 * without X, or both; the G stage maps everything (guests/accessors probes HLVX at the G stage).
 *
 * Spec (Priv. 20240411, H "Hypervisor Virtual-Machine Load and Store Instructions"):
 *  - "For HLVX.HU and HLVX.WU, the original virtual address ... execute permission takes the place of
 *    read permission during address translation.  That is, the memory being read must be executable in
 *    both stages of address translation, but read permission is not required."
 *  - "Although HLVX instructions' explicit memory accesses require execute permissions, they still raise
 *    the same exceptions as other load instructions, rather than raising fetch exceptions instead":
 *    a VS-stage leaf without X is a load page fault (13), mtval the GVA (GVA = 1).
 *  - HLV.D needs R as any load (10.3.1; MXR clear): an X-only leaf is a load page fault.
 * The situation of riscv-hyp-tests' m_and_hs_using_vs_access ("hs hlvxwu accesses on only execute page",
 * "hs hlvxwu on vs-level non-exec page leads to lpf"): README "Third-party programs in lockstep". */
#include "difftest.h"

DIFFTEST_MODES(HGATP_BARE | HGATP_SV39X4, VS_SV39);

extern char rt_fetch_target[];
#define VB 0x300000000ull          /* VS-stage test GVAs */

static struct expect lpf(u64 va) { return expect_trap(13, va, 0, 1, rt_tinst(A_HLVXWU)); }

int main(void)
{
    struct pt g, vs;
    rt_banner("hlvx_vs");
    rt_gstage_identity(&g);
    rt_vsstage_identity(&vs);
    const u64 fpa = (u64)rt_fetch_target;
    const u32 insn0 = *(volatile u32 *)fpa;
    pt_map(&vs, VB, fpa, 0, PTE_V | PTE_X | PTE_A | PTE_D);                    /* X only */
    pt_map(&vs, VB + 0x1000, fpa, 0, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D);   /* R/W, no X */
    pt_map(&vs, VB + 0x2000, fpa, 0, PTE_V | PTE_R | PTE_X | PTE_A | PTE_D);   /* R and X */
    __asm__ volatile("sfence.vma" ::: "memory");
    hfence_vvma_all();

    unsigned id = 1;
    probe(id++, "hlvx-vs-x-only", A_HLVXWU, HS_MODE, VB, 0, expect_ok(insn0));
    probe(id++, "hlvx-vs-no-x", A_HLVXWU, HS_MODE, VB + 0x1000, 0, lpf(VB + 0x1000));
    probe(id++, "hlvx-vs-rx", A_HLVXWU, HS_MODE, VB + 0x2000, 0, expect_ok(insn0));
    probe(id++, "hlv-vs-x-only", A_HLVD, HS_MODE, VB, 0, expect_trap(13, VB, 0, 1, rt_tinst(A_HLVD)));
    return rt_done();
}
