/* hs_satp: V=0 translation (HS and U with satp) while a G stage is active -- hgatp must not apply --
 * and mstatus.GVA on V=0 traps that follow a V=1 trap.
 *
 * Spec (Priv. 20240411): 21.5 "Two-Stage Address Translation": "Whenever the current virtualization mode
 * V is 1, two-stage address translation and protection is in effect"; with V=0 the HS-level satp alone
 * translates (10.3 Sv39/48/57: leaves at any level, "Any level of PTE may be a leaf PTE"; page faults
 * 12/13/15; a U=1 page is not accessible from S with SUM=0, an S page never from U).  21.4 "Machine
 * Status": "For any trap ... that writes a guest virtual address to mtval, GVA is set to 1.  For any other
 * trap into M-mode, GVA is set to 0" -- an HS-mode page fault writes a (host) virtual address, so GVA = 0
 * even right after a V=1 trap that set it.
 *
 * Divergence seen 2026-11-25, QEMU 7.2 and 10.0 (the model passes): probe 51 -- the HS page fault that
 * follows a VS guest-page fault reports GVA = 1; the same fault before any V=1 trap (probe 30) reports
 * GVA = 0.  GVA is left over from the previous trap instead of being written by this one. */
#include "difftest.h"

DIFFTEST_MODES(HGATP_ALL, VS_BARE);

static volatile u64 tgt[512] __attribute__((aligned(4096), section(".data.page")));
static volatile u64 blocked[512] __attribute__((aligned(4096), section(".data.page")));
extern char rt_fetch_target[];
static unsigned id = 1;
#define LEVEL_SIZE(l) (1ull << (12 + 9 * (l)))
#define S_LEAF (PTE_V | PTE_RWX | PTE_A | PTE_D)

static struct expect pf(u64 cause, u64 a, enum rt_access acc) { return expect_trap(cause, a, 0, 0, acc == A_FETCH ? 0 : rt_tinst(acc)); }

int main(void)
{
    struct pt g, s;
    rt_banner("hs_satp");
    for (unsigned i = 0; i < 64; i++) tgt[i] = 0x5a70000000000000ull | i;
    rt_gstage_identity(&g);          /* a G stage that maps only guest RAM; V=0 accesses must not use it */
    unsigned mode = 10;
    for (; mode >= 8; mode--) {      /* the widest satp mode that sticks (10.1.11: others leave satp alone) */
        csr_write(satp, (u64)mode << 60);
        if ((csr_read(satp) >> 60) == mode) break;
    }
    csr_write(satp, 0);
    pt_init(&s, 0, mode);
    pt_map(&s, 0x80000000ull, 0x80000000ull, 2, S_LEAF);     /* the runtime and stubs, U = 0 */
    csr_write(satp, pt_atp(&s, 0));
    __asm__ volatile("sfence.vma" ::: "memory");
    rt_puts("satp mode="); rt_dec(mode); rt_putc('\n');
    u64 tpa = (u64)tgt, fpa = (u64)rt_fetch_target;

    /* HS leaves at every level: VA far above anything the G stage maps */
    for (int l = 0; l <= s.top; l++) {
        id = 1 + 4 * (unsigned)l;
        u64 va = (u64)(l <= 2 ? 64 + 2 * l : 2) << (l <= 2 ? 30 : 12 + 9 * l), vt, vf;
        if (l == 0) {
            pt_map(&s, va, tpa, 0, S_LEAF);
            pt_map(&s, va + 0x1000, fpa, 0, S_LEAF);
            vt = va; vf = va + 0x1000;
        } else {
            u64 pa = l >= 3 ? 0 : tpa & ~(LEVEL_SIZE(l) - 1);
            pt_map(&s, va, pa, l, S_LEAF);
            vt = va + (tpa - pa); vf = va + (fpa - pa);
        }
        __asm__ volatile("sfence.vma" ::: "memory");
        probe(id++, "hs-leaf", A_LD, HS_MODE, vt + 8 * (u64)(l + 1), 0, expect_ok(tgt[l + 1]));
        probe(id++, "hs-leaf", A_SD, HS_MODE, vt + 8 * (u64)(l + 32), 0x77, expect_ok_any());
        rt_check(tgt[l + 32] == 0x77, "HS store through satp missed the physical page");
        probe(id++, "hs-leaf", A_FETCH, HS_MODE, vf, 0, expect_ok(0x600d));
    }

    id = 30;   /* page faults, U bit, PMP -- all V=0: GVA = 0, mtval2 = 0 */
    u64 inv = 0x2000000000ull, up = inv + 0x1000, uc = inv + 0x2000;
    pt_map(&s, inv, tpa, 0, PTE_RWX | PTE_A | PTE_D);                   /* V = 0 */
    pt_map(&s, up, tpa, 0, S_LEAF | PTE_U);
    pt_map(&s, uc, fpa, 0, S_LEAF | PTE_U);
    __asm__ volatile("sfence.vma" ::: "memory");
    probe(id++, "hs-invalid", A_LD, HS_MODE, inv + 8, 0, pf(13, inv + 8, A_LD));
    probe(id++, "hs-invalid", A_SD, HS_MODE, inv + 8, 0, pf(15, inv + 8, A_SD));
    probe(id++, "hs-invalid", A_FETCH, HS_MODE, inv, 0, pf(12, inv, A_FETCH));
    probe(id++, "hs-upage-sum0", A_LD, HS_MODE, up + 16, 0, pf(13, up + 16, A_LD));
    csr_set(mstatus, MSTATUS_SUM);
    probe(id++, "hs-upage-sum1", A_LD, HS_MODE, up + 16, 0, expect_ok(tgt[2]));
    probe(id++, "hs-ucode-sum1", A_FETCH, HS_MODE, uc, 0, pf(12, uc, A_FETCH));
    csr_clear(mstatus, MSTATUS_SUM);
    u64 bpa = (u64)blocked;
    csr_write(pmpaddr1, ~0ull >> 10);
    csr_write(pmpcfg0, (0x1full << 8) | 0x18);
    csr_write(pmpaddr0, (bpa >> 2) | 0x1ff);
    __asm__ volatile("sfence.vma" ::: "memory");
    probe(id++, "hs-pmp", A_LD, HS_MODE, bpa + 8, 0, expect_trap(5, bpa + 8, 0, 0, ~0ull));
    probe(id++, "hs-pmp", A_SD, HS_MODE, bpa + 8, 0, expect_trap(7, bpa + 8, 0, 0, ~0ull));
    probe(id++, "hs-pmp", A_FETCH, HS_MODE, bpa, 0, expect_trap(1, bpa, 0, 0, 0));
    csr_write(pmpaddr0, ~0ull >> 10);
    csr_write(pmpcfg0, 0x1f);
    __asm__ volatile("sfence.vma" ::: "memory");

    /* U-mode through satp: the stubs (in the identity leaf) become U pages for these probes; a U=1 data
     * page reads, an S page (U=0) faults */
    id = 45;
    pt_map(&s, inv + 0x3000, tpa, 0, S_LEAF);
    pt_map(&s, 0x80000000ull, 0x80000000ull, 2, S_LEAF | PTE_U);   /* stubs reachable from U */
    __asm__ volatile("sfence.vma" ::: "memory");
    probe(id++, "u-upage", A_LD, U_MODE, up + 24, 0, expect_ok(tgt[3]));
    probe(id++, "u-spage", A_LD, U_MODE, inv + 0x3000 + 8, 0, pf(13, inv + 0x3000 + 8, A_LD));
    pt_map(&s, 0x80000000ull, 0x80000000ull, 2, S_LEAF);
    __asm__ volatile("sfence.vma" ::: "memory");

    /* GVA after a V=1 trap: a guest-page fault sets GVA = 1, the next (V=0) page fault must clear it */
    id = 50;
    if (g.mode) {
        probe(id++, "vs-gpf-sets-gva", A_LD, VS_MODE, 0xC0000000ull, 0,
              expect_trap(21, 0xC0000000ull, 0xC0000000ull >> 2, 1, rt_tinst(A_LD)));
        probe(id++, "hs-pf-after-gpf-gva0", A_LD, HS_MODE, inv + 8, 0, pf(13, inv + 8, A_LD));
    }
    csr_write(satp, 0);
    __asm__ volatile("sfence.vma" ::: "memory");
    return rt_done();
}
