/* sc_fail: a store-conditional that holds no reservation, to pages it may not store to.  Such an SC fails
 * (rd != 0, memory unchanged) -- but it must still pass the store's translation and permission checks.
 * The situation of riscv-hyp-tests' tinst_tests "correct tinst when executing a sc.w which results in a
 * spf" (sc.w with no reservation at GVA 0x100064000, a page whose PTE has V=0: README "Third-party
 * programs in lockstep").
 *
 * Spec:
 *  - Unpriv. "Zalrsc" (riscv-isa-manual src/unpriv/zalrsc.adoc, norm:sc_retire_permission, clarified by
 *    commit 2c2a7938 "Clarify that protection checks apply to failed SC", issue 1892): "No sc.w
 *    instruction shall retire unless it passes memory permission checks, but it is UNSPECIFIED whether
 *    any side effects of implicit address translation and protection memory accesses (such as setting a
 *    page-table entry D bit) occur on a failed sc.w.  For the purposes of memory protection, a failed
 *    sc.w may be treated like a store."  sc.d likewise ("act analogously on doublewords").
 *  - So a failed SC to a page it could not store to raises what a store there raises: a store/AMO page
 *    fault (15) for a VS-stage PTE with V=0 or W=0 (Priv. 10.3.2 steps 3 and 5), a store/AMO guest-page
 *    fault (23) at the G stage (H "Guest Physical Address Translation").
 *  - A W=1, D=0 leaf (P 13, 23): a store there faults (Svade, or Svadu with *envcfg.ADUE=0) or sets D
 *    (ADUE=1), but the Svade fault is no permission check and the D update of a failed SC is UNSPECIFIED,
 *    so a failed SC there may fault or not: both outcomes are allowed (probe_either), and the model's
 *    choice is profile.failed_sc_ad ("none" for both QEMUs: no fault, D left clear; the guest does not
 *    check D, which either choice may leave set or clear).
 * No probe here ever executes an LR, and an SC to a scratch word in M-mode precedes every probe (Zalrsc
 * note: "A store-conditional instruction to a scratch word of memory should be used to forcibly
 * invalidate any existing load reservation"), so every SC probed fails.
 *
 * Divergence seen 2026-11-30 (QEMU 7.2 and 10.0, every mode pair): no trap for the SCs at the faulting
 * pages -- QEMU compares the address with its reservation first and fails the SC without translating it
 * (the same order as known-divergences.toml qemu*-misaligned-sc-no-exception). */
#include "difftest.h"

DIFFTEST_MODES(HGATP_ALL, VS_BARE | VS_SV39);

static volatile u64 tgt[512] __attribute__((aligned(4096), section(".data.page")));
static volatile u64 scratch;
static unsigned id;
#define GB 0x100000000ull          /* G-stage test GPAs (GVA = GPA when vsatp is not Bare) */
#define VB 0x300000000ull          /* VS-stage test GVAs */
#define SCV 0x5c5c5c5c5c5c5c5cull  /* what the SCs would store */

static void fence_all(void) { __asm__ volatile("sfence.vma" ::: "memory"); hfence_gvma_all(); hfence_vvma_all(); }

/* SC to a scratch word: invalidates whatever reservation the hart holds (it fails or succeeds, no matter) */
static void drop_reservation(void)
{
    u64 rd;
    __asm__ volatile("sc.d %0, zero, (%1)" : "=r"(rd) : "r"(&scratch) : "memory");
    (void)rd;
}

static struct expect pf(u64 a) { return expect_trap(15, a, 0, 1, rt_tinst(A_SC)); }
static struct expect gpf(u64 a) { return expect_trap(23, a, a >> 2, 1, rt_tinst(A_SC)); }

/* one failed SC from VS-mode at `va`, expected outcome `e`; memory never changes */
static void sc(const char *what, u64 va, struct expect e)
{
    drop_reservation();
    probe(id++, what, A_SC, VS_MODE, va, SCV, e);
    for (unsigned i = 0; i < 8; i++) rt_check(tgt[i] == 0x5cf0000000000000ull + i, "a failed SC wrote memory");
}

/* a failed SC to a W=1, D=0 leaf: the store's fault or none (Zalrsc: UNSPECIFIED side effects); with
 * no fault, D may have been set by hardware or left clear -- either, but never the page written */
static void sc_d0(const char *what, u64 va, struct expect fault, volatile u64 *pte)
{
    drop_reservation();
    probe_either(id++, what, A_SC, VS_MODE, va, SCV, fault, expect_ok_any(), 2);
    for (unsigned i = 0; i < 8; i++) rt_check(tgt[i] == 0x5cf0000000000000ull + i, "a failed SC wrote memory");
    rt_check((*pte & (PTE_V | PTE_W | PTE_A)) == (PTE_V | PTE_W | PTE_A), "the D=0 leaf lost V, W or A");
}

/* One stage's pages at `base` (GVA = GPA for the G stage), probes `first`..: a V=0 leaf, a read-only
 * leaf, a writable one and a D=0 one -- `leaf` is that stage's full leaf (G: U=1), `fault` its store
 * fault (23 or 15). */
static void stage(struct pt *t, const char *const names[4], u64 base, unsigned first, u64 leaf,
                  struct expect (*fault)(u64))
{
    u64 pa = (u64)tgt;
    id = first;
    pt_map(t, base, pa, 0, leaf & ~PTE_V);                                /* V = 0 */
    pt_map(t, base + 0x1000, pa, 0, leaf & ~(PTE_W | PTE_X));             /* read-only */
    pt_map(t, base + 0x3000, pa, 0, leaf);                                /* writable */
    pt_map(t, base + 0x2000, pa, 0, leaf & ~PTE_D);                       /* D = 0 */
    fence_all();
    sc(names[0], base + 0x10, fault(base + 0x10));
    sc(names[1], base + 0x1010, fault(base + 0x1010));
    sc(names[2], base + 0x3010, expect_ok_any());
    sc_d0(names[3], base + 0x2010, fault(base + 0x2010), pt_slot(t, base + 0x2000, 0));
}

int main(void)
{
    struct pt g, vs;
    rt_banner("sc_fail");
    for (unsigned i = 0; i < 8; i++) tgt[i] = 0x5cf0000000000000ull + i;
    rt_gstage_identity(&g);
    rt_vsstage_identity(&vs);
    if (vs.mode) {
        pt_map(&vs, GB, GB, 2, VS_LEAF);        /* GVA = GPA for the G-stage probes */
        fence_all();
    }
    id = 1;   /* every pair: guest RAM through whatever stages are active -- fails, no trap */
    sc("ram", (u64)tgt + 0x20, expect_ok_any());
    static const char *const gn[4] = {"g-invalid", "g-readonly", "g-writable", "g-d0"};
    static const char *const vn[4] = {"vs-invalid", "vs-readonly", "vs-writable", "vs-d0"};
    if (g.mode) stage(&g, gn, GB, 10, G_LEAF, gpf);
    if (vs.mode) stage(&vs, vn, VB, 20, VS_LEAF, pf);
    return rt_done();
}
