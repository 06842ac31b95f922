/* pte_bits: N (Svnapot) and PBMT (Svpbmt) bits, non-leaf PTEs with A/D/U/N/PBMT set, W without R and
 * misaligned superpages at the VS stage, MXR and SUM at both levels (HS-level mstatus vs vsstatus).
 * G-stage probes need hgatp != Bare, VS-stage probes vsatp != Bare; MXR/SUM probes run in every pair.
 *
 * Spec (Priv. 20240411; riscv-isa-manual src/priv/supervisor.adoc, hypervisor.adoc, svnapot.adoc,
 * svpbmt.adoc):
 *  - 10.3.1 Sv39 PTE: "Bit 63 is reserved for use by the Svnapot extension.  If Svnapot is not implemented,
 *    bit 63 remains reserved and must be zeroed by software for forward compatibility, or else a
 *    page-fault exception is raised."  Same for "Bits 62-61 ... Svpbmt".  Sv48/Sv57 and the x4 G-stage
 *    formats use the same PTE (21.5.1), with guest-page faults instead of page faults.
 *  - Svnapot: a NAPOT PTE whose encoding is "reserved according to [the NAPOT table] ... a page-fault
 *    exception must be raised"; only napot_bits = 4 (64 KiB, level 0, ppn[3:0] = 1000) is defined.
 *    Whether Svnapot is implemented is the implementation's choice and no CSR says so, so a valid 64 KiB
 *    NAPOT leaf accepts "translates as 64 KiB" or "page fault" (probe_either).
 *  - Svpbmt: "For non-leaf PTEs, bits 62-61 are reserved for future standard use"; PBMT=3 is reserved.
 *    menvcfg.PBMTE (3.1.18): "When PBMTE=0, the implementation behaves as though Svpbmt were not
 *    implemented" for S-mode and G-stage translation, henvcfg.PBMTE likewise for the VS stage; "If Svpbmt
 *    is not implemented, PBMTE is read-only zero" -- so the guest reads PBMTE back to know what to expect.
 *  - 10.3.1: "For non-leaf PTEs, the D, A, and U bits are reserved for future standard use", and the walk
 *    (10.3.2 step 3): "if any bits or encodings that are reserved for future standard use are set within
 *    pte, stop and raise a page-fault exception".
 *  - 21.5.1 G stage: "when checking the U bit, the current privilege mode is always taken to be U-mode"
 *    (so HS-level SUM never matters there).
 *  - 21.5.1 / table "Effective access": "The HS-level MXR bit makes any executable page readable.
 *    vsstatus.MXR makes readable those pages marked executable at the VS translation stage, but only if
 *    readable at the guest-physical translation stage.  vsstatus.SUM applies instead of the HS-level SUM
 *    bit."
 *
 * Divergences seen 2026-11-25 (QEMU 7.2 only; 10.0 and the model pass every pair):
 *  - probes 1, 50: menvcfg.PBMTE and henvcfg.PBMTE read back 1, yet a PBMT=NC leaf faults.  3.1.18: "If
 *    Svpbmt is not implemented, PBMTE is read-only zero"; with PBMTE=1 "Svpbmt is available" -- either
 *    way the pair (PBMTE=1, NC leaf faults) is not allowed.
 *  - probes 42, 43, 45: the G stage honours vsstatus.MXR and ignores the HS-level MXR -- the opposite of
 *    21.5.1 "Setting MXR at VS-level does not override guest-physical page protections.  Setting MXR at
 *    HS-level, however, overrides both VS-stage and G-stage execute-only permissions."
 *  - probe 82: HS-level MXR does not make a VS-stage X-only page readable ("The HS-level MXR bit makes
 *    any executable page readable", table "Effect of MPRV" / 21.4 for HLV).
 *  - probes 94, 89: HLV with SPVP=1 reads a VS-stage U=1 page with vsstatus.SUM=0 (21.4 "As usual for
 *    VS-mode ... the HS-level sstatus.SUM is ignored": vsstatus.SUM governs, so a page fault).
 *  - probes 160 (G stage) and 185 (VS stage): an AMO on an execute-only page raises a load (guest-)page
 *    fault (21 / 13) instead of store/AMO (23 / 15).  10.3.1: "AMOs never raise load page-fault
 *    exceptions" (same finding as accessors 74, here with a valid leaf lacking R and W). */
#include "difftest.h"

DIFFTEST_MODES(HGATP_ALL, VS_BARE | VS_SV39);

static volatile u64 big[16][512] __attribute__((aligned(65536), section(".data.page")));
static volatile u64 tgt[512] __attribute__((aligned(4096), section(".data.page")));
extern char rt_fetch_target[];
static unsigned id = 1;
#define GB 0x100000000ull          /* G-stage test GPAs (GVA = GPA when vsatp is not Bare) */
#define VB 0x300000000ull          /* VS-stage test GVAs (-> GPA = PA in RAM) */
#define PBMT_NC (1ull << 61)
#define PBMT_RSV (3ull << 61)
#define CSRR(n) ({ u64 __v; __asm__ volatile("csrr %0, " #n : "=r"(__v) :: "memory"); __v; })
#define CSRS(n, v) __asm__ volatile("csrs " #n ", %0" :: "r"((u64)(v)) : "memory")
#define CSRC(n, v) __asm__ volatile("csrc " #n ", %0" :: "r"((u64)(v)) : "memory")

static struct expect gpf(u64 cause, u64 a, enum rt_access acc) { return expect_trap(cause, a, a >> 2, 1, acc == A_FETCH ? 0 : rt_tinst(acc)); }
static struct expect pf(u64 cause, u64 a, enum rt_access acc) { return expect_trap(cause, a, 0, 1, acc == A_FETCH ? 0 : rt_tinst(acc)); }
static void fence_all(void) { __asm__ volatile("sfence.vma" ::: "memory"); hfence_gvma_all(); hfence_vvma_all(); }

static void gstage(struct pt *g, int pbmt)
{
    u64 t = (u64)tgt;
    id = 1;   /* PBMT at the G stage (menvcfg.PBMTE) */
    pt_map(g, GB, t, 0, G_LEAF | PBMT_NC);
    pt_map(g, GB + 0x1000, t, 0, G_LEAF | PBMT_RSV);
    fence_all();
    probe(id++, "g-pbmt-nc", A_LD, VS_MODE, GB + 8, 0, pbmt ? expect_ok(tgt[1]) : gpf(21, GB + 8, A_LD));
    probe(id++, "g-pbmt-3", A_LD, VS_MODE, GB + 0x1008, 0, gpf(21, GB + 0x1008, A_LD));
    /* menvcfg.PBMTE = 0: as though Svpbmt were not implemented -- run whatever PBMTE read (the same
     * probes on every backend; a hart without Svpbmt has PBMTE read-only zero and faults the same) */
    CSRC(0x30a, 1ull << 62);
    fence_all();
    probe(id++, "g-pbmt-nc-pbmte0", A_LD, VS_MODE, GB + 8, 0, gpf(21, GB + 8, A_LD));
    CSRS(0x30a, (u64)pbmt << 62);
    fence_all();

    id = 10;  /* N: a 64 KiB NAPOT leaf (16 identical PTEs, ppn[3:0] = 1000), a reserved NAPOT size, N on 2 MiB */
    u64 nb = GB + 0x10000, bpa = (u64)big;
    for (unsigned j = 0; j < 16; j++)
        *pt_slot(g, nb + j * 0x1000ull, 0) = (((bpa >> 12) | 0x8) << 10) | G_LEAF | PTE_N;
    *pt_slot(g, GB + 0x20000, 0) = ((((t >> 12) & ~0xfull) | 0x4) << 10) | G_LEAF | PTE_N;   /* napot_bits 3 */
    *pt_slot(g, GB + 0x400000, 1) = (((bpa & ~0x1fffffull) >> 12) << 10) | G_LEAF | PTE_N;   /* N on a 2 MiB leaf */
    fence_all();
    probe_either(id++, "g-napot-64k", A_LD, VS_MODE, nb + 0x3008, 0, expect_ok(big[3][1]), gpf(21, nb + 0x3008, A_LD), 2);
    probe_either(id++, "g-napot-64k", A_LD, VS_MODE, nb + 0xf010, 0, expect_ok(big[15][2]), gpf(21, nb + 0xf010, A_LD), 2);
    probe(id++, "g-napot-reserved-size", A_LD, VS_MODE, GB + 0x20008, 0, gpf(21, GB + 0x20008, A_LD));
    probe(id++, "g-n-on-2m-leaf", A_LD, VS_MODE, GB + 0x400008, 0, gpf(21, GB + 0x400008, A_LD));

    id = 20;  /* non-leaf PTEs (level 1) with A, D, U, N, PBMT set: reserved -> guest-page fault */
    static const u64 bits[] = {PTE_A, PTE_D, PTE_U, PTE_N, PBMT_NC};
    static const char *names[] = {"g-nonleaf-a", "g-nonleaf-d", "g-nonleaf-u", "g-nonleaf-n", "g-nonleaf-pbmt"};
    for (unsigned k = 0; k < 5; k++) {
        u64 gpa = GB + 0x1000000ull * (k + 1);
        pt_map(g, gpa, t, 0, G_LEAF);
        *pt_slot(g, gpa, 1) |= bits[k];
        fence_all();
        probe(id++, names[k], A_LD, VS_MODE, gpa + 8, 0, gpf(21, gpa + 8, A_LD));
        probe(id++, names[k], A_SD, VS_MODE, gpa + 8, 0, gpf(23, gpa + 8, A_SD));
    }

    id = 40;  /* G-stage U bit is checked as U-mode: U = 0 faults even with HS-level SUM = 1 */
    pt_map(g, GB + 0x2000, t, 0, G_LEAF & ~PTE_U);
    fence_all();
    csr_set(mstatus, MSTATUS_SUM);
    probe(id++, "g-u0-sum1", A_LD, VS_MODE, GB + 0x2008, 0, gpf(21, GB + 0x2008, A_LD));
    csr_clear(mstatus, MSTATUS_SUM);
    /* MXR at the G stage: an X-only G page; HS-level MXR makes it readable, vsstatus.MXR does not */
    pt_map(g, GB + 0x3000, t, 0, PTE_V | PTE_X | PTE_U | PTE_A | PTE_D);
    fence_all();
    probe(id++, "g-xonly-mxr0", A_LD, VS_MODE, GB + 0x3010, 0, gpf(21, GB + 0x3010, A_LD));
    csr_set(vsstatus, MSTATUS_MXR);
    probe(id++, "g-xonly-vsmxr1", A_LD, VS_MODE, GB + 0x3010, 0, gpf(21, GB + 0x3010, A_LD));
    csr_clear(vsstatus, MSTATUS_MXR);
    csr_set(mstatus, MSTATUS_MXR);
    probe(id++, "g-xonly-hsmxr1", A_LD, VS_MODE, GB + 0x3010, 0, expect_ok(tgt[2]));
    probe(id++, "g-xonly-hsmxr1-store", A_SD, VS_MODE, GB + 0x3010, 0, gpf(23, GB + 0x3010, A_SD));
    probe(id++, "g-xonly-hsmxr1-hlv", A_HLVD, HS_MODE, GB + 0x3018, 0, expect_ok(tgt[3]));
    csr_clear(mstatus, MSTATUS_MXR);
    probe(id++, "g-xonly-mxr0-hlv", A_HLVD, HS_MODE, GB + 0x3018, 0, gpf(21, GB + 0x3018, A_HLVD));
}

static void vsstage(struct pt *vs, int pbmt)
{
    u64 t = (u64)tgt;
    id = 50;  /* PBMT at the VS stage (henvcfg.PBMTE) */
    pt_map(vs, VB, t, 0, VS_LEAF | PBMT_NC);
    pt_map(vs, VB + 0x1000, t, 0, VS_LEAF | PBMT_RSV);
    CSRS(0x60a, (u64)pbmt << 62);
    int hp = pbmt & (int)(CSRR(0x60a) >> 62 & 1);
    fence_all();
    probe(id++, "vs-pbmt-nc", A_LD, VS_MODE, VB + 8, 0, hp ? expect_ok(tgt[1]) : pf(13, VB + 8, A_LD));
    probe(id++, "vs-pbmt-3", A_LD, VS_MODE, VB + 0x1008, 0, pf(13, VB + 0x1008, A_LD));
    CSRC(0x60a, 1ull << 62);      /* henvcfg.PBMTE = 0, whatever it read (as at the G stage) */
    fence_all();
    probe(id++, "vs-pbmt-nc-henvcfg-pbmte0", A_LD, VS_MODE, VB + 8, 0, pf(13, VB + 8, A_LD));

    id = 55;  /* N at the VS stage */
    u64 nb = VB + 0x10000, bpa = (u64)big;
    for (unsigned j = 0; j < 16; j++)
        *pt_slot(vs, nb + j * 0x1000ull, 0) = (((bpa >> 12) | 0x8) << 10) | VS_LEAF | PTE_N;
    *pt_slot(vs, VB + 0x20000, 0) = ((((t >> 12) & ~0xfull) | 0x4) << 10) | VS_LEAF | PTE_N;
    fence_all();
    probe_either(id++, "vs-napot-64k", A_LD, VS_MODE, nb + 0x5008, 0, expect_ok(big[5][1]), pf(13, nb + 0x5008, A_LD), 2);
    probe(id++, "vs-napot-reserved-size", A_LD, VS_MODE, VB + 0x20008, 0, pf(13, VB + 0x20008, A_LD));

    id = 60;  /* non-leaf VS PTEs with A, D, U, N, PBMT */
    static const u64 bits[] = {PTE_A, PTE_D, PTE_U, PTE_N, PBMT_NC};
    static const char *names[] = {"vs-nonleaf-a", "vs-nonleaf-d", "vs-nonleaf-u", "vs-nonleaf-n", "vs-nonleaf-pbmt"};
    for (unsigned k = 0; k < 5; k++) {
        u64 va = VB + 0x1000000ull * (k + 1);
        pt_map(vs, va, t, 0, VS_LEAF);
        *pt_slot(vs, va, 1) |= bits[k];
        fence_all();
        probe(id++, names[k], A_LD, VS_MODE, va + 8, 0, pf(13, va + 8, A_LD));
        probe(id++, names[k], A_SD, VS_MODE, va + 8, 0, pf(15, va + 8, A_SD));
    }

    id = 70;  /* W without R at the VS stage (10.3.2 step 3) */
    pt_map(vs, VB + 0x2000, t, 0, PTE_V | PTE_W | PTE_A | PTE_D);
    pt_map(vs, VB + 0x3000, (u64)rt_fetch_target, 0, PTE_V | PTE_W | PTE_X | PTE_A | PTE_D);
    fence_all();
    probe(id++, "vs-w-only", A_LD, VS_MODE, VB + 0x2008, 0, pf(13, VB + 0x2008, A_LD));
    probe(id++, "vs-w-only", A_SD, VS_MODE, VB + 0x2008, 0, pf(15, VB + 0x2008, A_SD));
    probe(id++, "vs-wx", A_FETCH, VS_MODE, VB + 0x3000, 0, pf(12, VB + 0x3000, A_FETCH));

    id = 75;  /* misaligned VS superpages (10.3.2 step 6) */
    u64 m2 = VB + 0x40000000ull, m1 = VB + 0x80000000ull;
    pt_map(vs, m2, 0x80000000ull + 0x1000, 1, VS_LEAF);
    pt_map(vs, m1, 0x80000000ull + 0x200000, 2, VS_LEAF);
    fence_all();
    probe(id++, "vs-misaligned-2m", A_LD, VS_MODE, m2 + 8, 0, pf(13, m2 + 8, A_LD));
    probe(id++, "vs-misaligned-2m", A_SD, VS_MODE, m2 + 8, 0, pf(15, m2 + 8, A_SD));
    probe(id++, "vs-misaligned-1g", A_LD, VS_MODE, m1 + 8, 0, pf(13, m1 + 8, A_LD));
    probe(id++, "vs-misaligned-1g", A_FETCH, VS_MODE, m1 + 0x1000, 0, pf(12, m1 + 0x1000, A_FETCH));

    id = 80;  /* MXR and SUM at the VS level */
    pt_map(vs, VB + 0x4000, t, 0, PTE_V | PTE_X | PTE_A | PTE_D);            /* X-only, U = 0 */
    pt_map(vs, VB + 0x5000, t, 0, VS_LEAF | PTE_U);                          /* a user page */
    pt_map(vs, VB + 0x6000, (u64)rt_fetch_target, 0, VS_LEAF | PTE_U);       /* user code */
    fence_all();
    probe(id++, "vs-xonly-mxr0", A_LD, VS_MODE, VB + 0x4010, 0, pf(13, VB + 0x4010, A_LD));
    csr_set(vsstatus, MSTATUS_MXR);
    probe(id++, "vs-xonly-vsmxr1", A_LD, VS_MODE, VB + 0x4010, 0, expect_ok(tgt[2]));
    csr_clear(vsstatus, MSTATUS_MXR);
    csr_set(mstatus, MSTATUS_MXR);
    probe(id++, "vs-xonly-hsmxr1", A_LD, VS_MODE, VB + 0x4010, 0, expect_ok(tgt[2]));
    csr_clear(mstatus, MSTATUS_MXR);
    probe(id++, "vs-upage-sum0", A_LD, VS_MODE, VB + 0x5018, 0, pf(13, VB + 0x5018, A_LD));
    probe(94, "hlv-spvp1-upage-vssum0-first", A_HLVD, HS_MODE, VB + 0x5018, 0, pf(13, VB + 0x5018, A_HLVD));
    csr_set(mstatus, MSTATUS_SUM);                /* HS-level SUM: does not apply with V = 1 */
    probe(id++, "vs-upage-hssum1", A_LD, VS_MODE, VB + 0x5018, 0, pf(13, VB + 0x5018, A_LD));
    csr_clear(mstatus, MSTATUS_SUM);
    csr_set(vsstatus, MSTATUS_SUM);
    probe(id++, "vs-upage-vssum1", A_LD, VS_MODE, VB + 0x5018, 0, expect_ok(tgt[3]));
    probe(id++, "vs-upage-vssum1", A_SD, VS_MODE, VB + 0x5020, 9, expect_ok_any());
    probe(id++, "vs-ucode-vssum1", A_FETCH, VS_MODE, VB + 0x6000, 0, pf(12, VB + 0x6000, A_FETCH));
    /* HLV as VS (hstatus.SPVP = 1) uses vsstatus.SUM too (21.4: "As usual for VS-mode and VU-mode,
     * two-stage address translation is applied, and the HS-level sstatus.SUM is ignored"); and 10.2.1:
     * "Changes to the sstatus fields SUM and MXR take effect immediately, without the need to execute an
     * SFENCE.VMA instruction" -- so the SUM=0 probe after the SUM=1 one must fault again. */
    probe(id++, "hlv-spvp1-upage-vssum1", A_HLVD, HS_MODE, VB + 0x5018, 0, expect_ok(tgt[3]));
    csr_clear(vsstatus, MSTATUS_SUM);
    probe(id++, "hlv-spvp1-upage-vssum0", A_HLVD, HS_MODE, VB + 0x5018, 0, pf(13, VB + 0x5018, A_HLVD));
    /* VU: U = 1 pages readable, U = 0 pages not (SUM irrelevant) */
    rt_vs_stubs_user(vs, 1);
    probe(id++, "vu-upage", A_LD, VU_MODE, VB + 0x5018, 0, expect_ok(tgt[3]));
    probe(id++, "vu-spage", A_LD, VU_MODE, VB + 0x4010, 0, pf(13, VB + 0x4010, A_LD));
    csr_set(vsstatus, MSTATUS_MXR);
    probe(id++, "vu-xonly-spage-vsmxr1", A_LD, VU_MODE, VB + 0x4010, 0, pf(13, VB + 0x4010, A_LD));
    csr_clear(vsstatus, MSTATUS_MXR);
    rt_vs_stubs_user(vs, 0);
}

/* R/W/X permission matrix at one stage: leaves R, RW, X, RX, RWX x load, store, AMO, fetch.  10.3.2 step 5:
 * "Determine if the requested memory access is allowed by the pte.r, pte.w, and pte.x bits"; a load
 * needs R (MXR off here), a store or AMO needs W ("AMOs never raise load page-fault exceptions"), a fetch
 * needs X.  At the G stage the faults are guest-page faults (21.5.1), with U = 1 on every G leaf. */
static void perm_matrix(struct pt *t, int gstage, u64 base, unsigned first_id)
{
    static const u64 perms[5] = {PTE_R, PTE_R | PTE_W, PTE_X, PTE_R | PTE_X, PTE_RWX};
    static const char *names[5] = {"r", "rw", "x", "rx", "rwx"};
    static const enum rt_access accs[4] = {A_LD, A_SD, A_AMOADD, A_FETCH};
    u64 extra = PTE_V | PTE_A | PTE_D | (gstage ? PTE_U : 0);
    for (unsigned p = 0; p < 5; p++) {
        u64 dva = base + p * 0x2000ull, fva = dva + 0x1000;
        pt_map(t, dva, (u64)tgt, 0, perms[p] | extra);
        pt_map(t, fva, (u64)rt_fetch_target, 0, perms[p] | extra);
    }
    fence_all();
    unsigned id_ = first_id;
    for (unsigned p = 0; p < 5; p++)
        for (unsigned a = 0; a < 4; a++) {
            enum rt_access acc = accs[a];
            u64 va = acc == A_FETCH ? base + p * 0x2000ull + 0x1000 : base + p * 0x2000ull + 8 * (64 + p);
            int allowed = acc == A_LD ? (perms[p] & PTE_R) != 0 : acc == A_FETCH ? (perms[p] & PTE_X) != 0
                                                                            : (perms[p] & PTE_W) != 0;
            u64 cause = acc == A_LD ? 13 : acc == A_FETCH ? 12 : 15;
            if (gstage) cause += 8;                      /* 21 / 20 / 23 */
            struct expect e = !allowed ? (gstage ? gpf(cause, va, acc) : pf(cause, va, acc))
                            : acc == A_FETCH ? expect_ok(0x600d) : expect_ok_any();
            char w[24] = "g-perm-", *q = w + (gstage ? 7 : 0);
            if (!gstage) { w[0] = 'v'; w[1] = 's'; w[2] = '-'; w[3] = 'p'; w[4] = 'e'; w[5] = 'r'; w[6] = 'm'; w[7] = '-'; q = w + 8; }
            for (const char *c = names[p]; *c; c++) *q++ = *c;
            *q = 0;
            probe(id_++, w, acc, VS_MODE, va, 0x11, e);
        }
}

int main(void)
{
    struct pt g, vs;
    rt_banner("pte_bits");
    for (unsigned p = 0; p < 16; p++)         /* only the first words of each 4 KiB page are read */
        for (unsigned i = 0; i < 4; i++) big[p][i] = 0xb1b0000000000000ull | ((u64)p << 32) | i;
    for (unsigned i = 0; i < 16; i++) tgt[i] = 0x7b17000000000000ull | i;
    CSRS(0x30a, 1ull << 62);
    int pbmt = (int)(CSRR(0x30a) >> 62 & 1);
    rt_puts("svpbmt menvcfg.PBMTE="); rt_dec((u64)pbmt); rt_putc('\n');
    rt_gstage_identity(&g);
    rt_vsstage_identity(&vs);
    if (vs.mode) {
        pt_map(&vs, GB, GB, 2, VS_LEAF);        /* GVA = GPA for the G-stage probes */
        fence_all();
    }
    if (g.mode) gstage(&g, pbmt);
    if (vs.mode) vsstage(&vs, pbmt);

    if (g.mode) perm_matrix(&g, 1, GB + 0x800000, 150);
    if (vs.mode) perm_matrix(&vs, 0, VB + 0x800000, 175);

    id = 120;  /* every pair: HS-level MXR/SUM on guest RAM through whatever stages are active */
    u64 t = (u64)tgt;
    probe(id++, "ram-vs-load", A_LD, VS_MODE, t + 0x30, 0, expect_ok(tgt[6]));
    csr_set(mstatus, MSTATUS_MXR | MSTATUS_SUM);
    probe(id++, "ram-vs-load-hsmxr-hssum", A_LD, VS_MODE, t + 0x30, 0, expect_ok(tgt[6]));
    csr_clear(mstatus, MSTATUS_MXR | MSTATUS_SUM);
    csr_set(vsstatus, MSTATUS_MXR | MSTATUS_SUM);
    probe(id++, "ram-vs-load-vsmxr-vssum", A_LD, VS_MODE, t + 0x38, 0, expect_ok(tgt[7]));
    csr_clear(vsstatus, MSTATUS_MXR | MSTATUS_SUM);
    return rt_done();
}
