/* vs_adue: henvcfg.ADUE governs every VS-stage translation -- also those made while V=0 (HLV, HLVX and
 * HSV from HS-mode and M-mode, MPRV loads/stores with MPV=1 from M-mode), not only those from VS-mode.
 *
 * Spec (Priv. 20240411):
 *  - H "Hypervisor Environment Configuration Register (henvcfg)": "If the Svadu extension is
 *    implemented, the ADUE bit controls whether hardware updating of PTE A/D bits is enabled for
 *    VS-stage address translation. ... When ADUE=0, the implementation behaves as though Svade were
 *    implemented for VS-stage address translation.  If Svadu is not implemented, ADUE is read-only zero."
 *  - Svade / 10.3.2 step 7: "If pte.a = 0, or if the original memory access is a store and pte.d = 0",
 *    raise a page-fault exception corresponding to the original access type (13 load, 15 store) and
 *    leave the PTE alone.
 *  - H "Hypervisor Virtual-Machine Load and Store Instructions": HLV/HLVX/HSV access memory "as though
 *    V=1", translated by both stages; H "Machine Status Register (mstatus)": with MPRV=1 and MPV=1
 *    "... as though the current virtualization mode were set to MPV" -- so both are VS-stage address
 *    translations, whatever V is while they execute.
 *  - H "mstatus": the page fault writes a guest virtual address to mtval, so GVA = 1.
 *
 * Set-up: menvcfg.ADUE = 1 (G stage: hardware updating; its leaves have A = D = 1 anyway), henvcfg.ADUE
 * = 0.  Two VS leaves (Sv39, 4 KiB, RWX, U=0 so SPVP=1 / MPP=S may use them) onto one data page: A=0
 * (D=0), and A=1 D=0.  Each access probe n (odd) is followed by probe n+1, an M-mode ld of that PTE: its
 * val is the PTE after the access, checked against the spec (unchanged after a fault; with no Svadu and
 * a success, A -- and D for a store -- set).  The leaf is rewritten and fenced before every access.
 *
 * Without Svadu (menvcfg.ADUE reads back 0, QEMU 7.2) the spec leaves the A/D scheme to the
 * implementation: fault or hardware update are both accepted (allowed-outcome=1|2), but an update must
 * reach the PTE.  With Svadu only the fault is allowed.
 *
 * Probes: 10*k + {1,2} the A=0 leaf, 10*k + {3,4} the A=1 D=0 leaf, for k = 1 hlv.d / 2 hlvx.wu /
 * 3 hsv.d from HS, 4 / 5 / 6 the same from M, 7 mprv-ld / 8 mprv-sd from M (MPV=1, MPP=S), and the
 * control 9 ld / 10 sd from VS-mode.  Then henvcfg.ADUE = 1 (120..): hlv.d from HS, hsv.d from M and
 * mprv-sd from M at the A=0 leaf -- with Svadu they must update the PTE and succeed.
 * Found by the fuzzer first (guests/fuzz_interp/known-fuzz.toml qemu10-mprv-mpv-ignores-henvcfg-adue). */
#include "difftest.h"

DIFFTEST_MODES(HGATP_ALL, VS_SV39);

static volatile u64 tgt[512] __attribute__((aligned(4096), section(".data.page")));

#define VB 0x200000000ull                      /* VS-stage test GVAs: VB (A=0), VB + 0x1000 (A=1 D=0) */
#define ADUE (1ull << 61)

static struct pt vs;
static u64 svadu;                              /* menvcfg.ADUE read back 1 */

static int is_store(enum rt_access a) { return a == A_HSVD || a == A_MPRV_SD || a == A_SD; }

/* One access at a freshly written leaf, then the PTE read back from M-mode. */
static void one(unsigned id, const char *what, enum rt_access a, enum rt_mode m, int leaf, int hw_on)
{
    const u64 va = VB + (u64)leaf * 0x1000, off = 8 * (u64)(id & 0x3f);
    const u64 fl = PTE_V | PTE_RWX | (leaf ? PTE_A : 0);
    volatile u64 *slot = pt_slot(&vs, va, 0);
    const u64 pte0 = (((u64)tgt >> 12) << 10) | fl;
    *slot = pte0;
    __asm__ volatile("sfence.vma" ::: "memory");
    hfence_vvma_all();
    rt_probe_mstatus_extra = (a == A_MPRV_LD || a == A_MPRV_SD) ? MSTATUS_MPRV | MSTATUS_MPV | (1ull << 11) : 0;
    const int st = is_store(a);
    const u64 upd = PTE_A | (st ? PTE_D : 0);
    /* does this access need A/D set?  (A=0 leaf: always; A=1 D=0 leaf: stores) */
    const int needs = !leaf | st;
    struct expect f = expect_trap(st ? 15 : 13, va + off, 0, 1, rt_tinst(a));
    struct expect ok = st ? expect_ok_any() : expect_ok(a == A_HLVXWU ? (u32)tgt[id & 0x3f] : tgt[id & 0x3f]);
    /* needs an update: Svadu with henvcfg.ADUE=0 -> the fault only; ADUE=1 -> the update only; no
     * Svadu -> either (allowed-outcome 1 = fault, 2 = update).  No update needed -> success. */
    const int only_fault = needs & (int)svadu & !hw_on, only_ok = !needs | ((int)svadu & hw_on);
    /* GVA zeroed before each probe (as guests/fuzz_interp does): QEMU never writes GVA = 0, so a 1 left
     * by the VS-mode control's page fault would show on every later trap (known-divergences.toml
     * qemu10-gva-never-cleared, a root cause of its own, probed by trap_stale) */
    csr_clear(mstatus, MSTATUS_GVA);
    csr_clear(hstatus, HSTATUS_GVA);
    int r = only_fault | only_ok ? probe(id, what, a, m, va + off, 0x5a00 + id, only_ok ? ok : f)
                                 : probe_either(id, what, a, m, va + off, 0x5a00 + id, f, ok, 2);
    rt_probe_mstatus_extra = 0;
    /* the PTE after: untouched after a fault; A (and D for a store) set after a success that needed
     * them.  Computed without a branch on r, so two harts that differ there stay in lock-step. */
    const u64 upd_if_ok = needs ? upd : 0;
    const u64 want = only_fault ? pte0 : only_ok ? pte0 | upd_if_ok : pte0 | (upd & -(u64)(r == 2));
    csr_clear(mstatus, MSTATUS_GVA);
    probe(id + 1, "pte-after", A_LD, M_MODE, (u64)slot, 0, expect_ok(want));
}

int main(void)
{
    struct pt g;
    rt_banner("vs_adue");
    rt_gstage_identity(&g);
    rt_vsstage_identity(&vs);
    for (int i = 0; i < 64; i++) tgt[i] = 0x7e57000000000000ull | (u64)i;
    csr_set(0x30a, ADUE);                      /* menvcfg.ADUE (read-only 0 without Svadu) */
    csr_clear(0x60a, ADUE);                    /* henvcfg.ADUE = 0: Svade for the VS stage */
    svadu = (csr_read(0x30a) >> 61) & 1;

    static const struct { const char *w; enum rt_access a; enum rt_mode m; } acc[10] = {
        {"hs-hlv.d", A_HLVD, HS_MODE},      {"hs-hlvx.wu", A_HLVXWU, HS_MODE}, {"hs-hsv.d", A_HSVD, HS_MODE},
        {"m-hlv.d", A_HLVD, M_MODE},        {"m-hlvx.wu", A_HLVXWU, M_MODE},   {"m-hsv.d", A_HSVD, M_MODE},
        {"m-mprv-mpv-ld", A_MPRV_LD, M_MODE}, {"m-mprv-mpv-sd", A_MPRV_SD, M_MODE},
        {"vs-ld", A_LD, VS_MODE},           {"vs-sd", A_SD, VS_MODE},
    };
    for (unsigned k = 0; k < 10; k++) {
        one(10 * (k + 1) + 1, acc[k].w, acc[k].a, acc[k].m, 0, 0);
        one(10 * (k + 1) + 3, acc[k].w, acc[k].a, acc[k].m, 1, 0);
    }
    /* henvcfg.ADUE = 1: the VS stage updates A/D in hardware (with Svadu), for V=0 accesses too */
    csr_set(0x60a, ADUE);
    one(121, "adue1-hs-hlv.d", A_HLVD, HS_MODE, 0, 1);
    one(123, "adue1-m-hsv.d", A_HSVD, M_MODE, 0, 1);
    one(125, "adue1-m-mprv-mpv-sd", A_MPRV_SD, M_MODE, 0, 1);
    csr_clear(0x60a, ADUE);
    return rt_done();
}
