/* ad_bits: A and D bits in G-stage and VS-stage leaves.
 *
 * Spec: Priv. 20240411, 10.3.1 / 10.3.2 step 7 and Svade/Svadu: when a leaf's A bit is clear (or D is clear
 * for a store) the implementation either raises a page fault (Svade; a guest-page fault for the G stage)
 * or sets the bit itself, atomically (Svadu, if menvcfg.ADUE / henvcfg.ADUE enable it).  Both are allowed
 * here; the P line's allowed-outcome says which happened (1 = fault, 2 = hardware update) and the guest
 * checks that an update really reached the PTE.  21.5.1: G-stage A/D updates also happen for the implicit
 * accesses of the VS-stage walk (the VS PTE page must be accessed/dirty at the G stage). */
#include "difftest.h"

DIFFTEST_MODES(HGATP_ALL, VS_BARE | VS_SV39);   /* hgatp Bare: the VS-stage probes only */

static volatile u64 tgt[512] __attribute__((aligned(4096), section(".data.page")));
extern char rt_fetch_target[];
static unsigned id = 1;

static void one(const char *w, struct pt *t, int gstage, enum rt_access a, u64 va, u64 pa, u64 flags)
{
    volatile u64 *slot = pt_slot(t, va, 0);
    *slot = ((pa >> 12) << 10) | flags;
    hfence_gvma_all();
    hfence_vvma_all();
    u64 addr = a == A_FETCH ? va : va + 8;
    u64 cause = a == A_FETCH ? (gstage ? 20 : 12) : a == A_LD ? (gstage ? 21 : 13) : (gstage ? 23 : 15);
    u64 alt = a == A_FETCH ? 0 : rt_tinst(a);
    struct expect f = expect_trap(cause, addr, gstage ? addr >> 2 : 0, 1, alt);
    struct expect ok = a == A_FETCH ? expect_ok(0x600d) : expect_ok_any();
    int r = probe_either(id++, w, a, VS_MODE, addr, 0x99, f, ok, 2);
    u64 pte = *slot;
    int need_d = (a == A_SD) | (a == A_AMOADD);
    rt_check(!((r == 2) & (!(pte & PTE_A) | (need_d & !(pte & PTE_D)))),
             "access succeeded with A (or D for a store) clear but the PTE was not updated");
}

int main(void)
{
    struct pt g, vs;
    rt_banner("ad_bits");
    rt_gstage_identity(&g);
    rt_vsstage_identity(&vs);
    u64 tpa = (u64)tgt, fpa = (u64)rt_fetch_target;
    static const enum rt_access acc[4] = {A_LD, A_SD, A_AMOADD, A_FETCH};
    static const u64 fl[3] = {PTE_A, PTE_D, 0};   /* which bit is set: A only (D clear), D only, none */
    u64 base = 0x100000000ull;
    for (int k = 0; k < 3 && g.mode; k++)
        for (int i = 0; i < 4; i++) {
            u64 va = base + (u64)(k * 4 + i) * 0x1000;
            u64 pa = acc[i] == A_FETCH ? fpa : tpa;
            if (vs.mode) { pt_map(&vs, va, va, 0, VS_LEAF); }
            one(k == 0 ? "g-d-clear" : k == 1 ? "g-a-clear" : "g-ad-clear", &g, 1, acc[i], va, pa,
                PTE_V | PTE_RWX | PTE_U | fl[k]);
        }
    if (vs.mode) {
        id = 40;
        for (int k = 0; k < 3; k++)
            for (int i = 0; i < 4; i++) {
                u64 va = 0x200000000ull + (u64)(k * 4 + i) * 0x1000;
                u64 pa = acc[i] == A_FETCH ? fpa : tpa;
                one(k == 0 ? "vs-d-clear" : k == 1 ? "vs-a-clear" : "vs-ad-clear", &vs, 0, acc[i], va, pa,
                    PTE_V | PTE_RWX | fl[k]);
            }
    }
    /* control: plain guest RAM through whatever stages are active (A = D = 1 everywhere) */
    id = 90;
    probe(id++, "control-ram", A_LD, VS_MODE, tpa + 8, 0, expect_ok_any());
    probe(id++, "control-ram", A_SD, VS_MODE, tpa + 16, 0x5a, expect_ok_any());
    return rt_done();
}
