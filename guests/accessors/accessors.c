/* accessors: the ways to reach guest memory through two-stage translation besides plain VS code --
 * HLV/HLVX/HSV from HS and from U (hstatus.HU), M-mode loads/stores with MPRV+MPV, MPRV with MPP=M (MPV
 * must not apply), VS/VU code, AMOs and LR/SC.  vsatp is Bare, so for HLV/HSV the GVA is the GPA.
 *
 * Spec: Priv. 20240411, 21.4 (HLV/HLVX/HSV: translated as if V=1 at privilege hstatus.SPVP; HLVX needs
 * execute permission, not read; from U-mode only with hstatus.HU=1, else illegal instruction; from
 * VS/VU a virtual-instruction exception); 3.1.6.3 (MPRV: loads/stores as if at MPP and, when MPP != M,
 * with V = MPV); 21.5.1 (guest-page faults 21/23, mtval2 = GPA >> 2).
 * mstatus.GVA (21.4 "Machine Status"): "For any trap (breakpoint, address misaligned, access fault, page
 * fault, or guest-page fault) that writes a guest virtual address to mtval, GVA is set to 1. For any other
 * trap into M-mode, GVA is set to 0."  HLV/HLVX/HSV and MPRV+MPV addresses are guest virtual addresses.
 *
 * Divergences, re-verified 2026-11-25, each with the sentence that decides it (Priv. 20240411, H chapter;
 * riscv-isa-manual src/priv/hypervisor.adoc):
 *  both QEMUs: GVA = 0 on guest-page faults of HLV/HLVX/HSV executed in HS or U (probes 4,5,6,8,9,11,34).
 *    21.4 "Machine Status": "For any trap (breakpoint, address misaligned, access fault, page fault, or
 *    guest-page fault) that writes a guest virtual address to mtval, GVA is set to 1", and the hstatus
 *    note: for these traps GVA is redundant with SPV "except when the explicit memory access of an HLV,
 *    HLVX, or HSV instruction causes a fault.  In that case, SPV=0 but GVA=1."
 *  QEMU 10.0: HLVX faults reported as instruction page faults (cause 12) instead of load guest-page
 *    faults (21) (probes 6, 9).  H "Hypervisor Virtual-Machine Load and Store Instructions", note: "Although HLVX instructions' explicit memory
 *    accesses require execute permissions, they still raise the same exceptions as other load
 *    instructions, rather than raising fetch exceptions instead."
 *  QEMU 10.0: GVA = 1 on virtual-instruction traps (mtval holds instruction bits, probes 40, 41) and on the
 *    MPRV access fault with MPP=M (a machine physical address, probe 55).  "For any other trap into
 *    M-mode, GVA is set to 0"; table "Effect of MPRV": "MPRV=1, MPP=3: M-level access with no
 *    translation" -- mtval is a physical address, not a guest virtual one.  (QEMU only ever sets GVA on
 *    a trap with V=1 and a nonzero tval and never clears it on other traps: see guest fences.)
 *  QEMU 7.2: HLVX allowed on an R-only G page and refused on an X-only one (9, 10).  Same section: "execute
 *    permission takes the place of read permission during address translation.  That is, the memory being
 *    read must be executable in both stages of address translation, but read permission is not required."
 *  QEMU 7.2: VU HSV raises illegal instruction instead of virtual instruction (41).  H "Virtual-Instruction Exceptions": a
 *    virtual-instruction exception is raised "in VS-mode or VU-mode, attempts to execute a hypervisor
 *    instruction (HLV, HLVX, HSV, or HFENCE)".
 *  QEMU 7.2: MPRV+MPV faults reported as page faults 13/15 with GVA 0 instead of guest-page faults
 *    (52-54).  21.4: "When MPRV=1, explicit memory accesses are translated and protected ... as though the
 *    current virtualization mode were set to MPV and the current nominal privilege mode were set to MPP";
 *    with V=1 the G stage raises "guest-page-fault exceptions ... instead of regular page-fault
 *    exceptions" (21.5.1), and mtval is a guest virtual address (GVA = 1).
 *  QEMU 7.2: MPRV with MPP=M still translated through the G stage (55).  Table "Effect of MPRV": "|1|-|3|
 *    M-level access with no translation."
 *  QEMU 7.2: AMO guest-page fault reported as load (21) instead of store/AMO (23) (74).  10.3.2 step 3
 *    "raise a page-fault exception corresponding to the original access type" (21.5.1: a guest-page fault
 *    for the G stage); 10.3.1 (Sv32; Sv39/48/57 and the x4 modes inherit it): "AMOs never raise load page-fault exceptions." */
#include "difftest.h"

DIFFTEST_MODES(HGATP_ALL, VS_BARE);

static volatile u64 tgt[512] __attribute__((aligned(4096), section(".data.page")));
extern char rt_fetch_target[];
static unsigned id = 1;
#define HOLE 0xC0000000ull      /* not mapped by the G stage (and no memory at this PA) */

static struct expect gpf(u64 cause, u64 va, enum rt_access a)
{
    return expect_trap(cause, va, va >> 2, 1, rt_tinst(a));
}
static struct expect insn_trap(u64 cause)
{
    struct expect e = expect_trap(cause, 0, 0, 0, ~0ull);
    e.any_tval = 1;            /* mtval = 0 or the instruction bits: the implementation's choice */
    return e;
}

int main(void)
{
    struct pt g;
    rt_banner("accessors");
    for (unsigned i = 0; i < 512; i++) tgt[i] = 0x5555000000000000ull | i;
    rt_gstage_identity(&g);
    u64 tpa = (u64)tgt, fpa = (u64)rt_fetch_target;
    u32 insn0 = *(volatile u32 *)fpa;
    u64 ronly = 0x100000000ull, xonly = 0x100001000ull;
    if (g.mode) {
        pt_map(&g, ronly, tpa, 0, PTE_V | PTE_R | PTE_U | PTE_A | PTE_D);
        pt_map(&g, xonly, fpa, 0, PTE_V | PTE_X | PTE_U | PTE_A | PTE_D);
        hfence_gvma_all();
    }

    /* HLV/HLVX/HSV from HS */
    probe(id++, "hs-hlv", A_HLVD, HS_MODE, tpa + 8, 0, expect_ok(tgt[1]));
    probe(id++, "hs-hsv", A_HSVD, HS_MODE, tpa + 16, 0x6666, expect_ok_any());
    rt_check(tgt[2] == 0x6666, "hsv.d from HS did not reach memory");
    probe(id++, "hs-hlvx-exec", A_HLVXWU, HS_MODE, fpa, 0, expect_ok(insn0));
    if (g.mode) {
        probe(id++, "hs-hlv-unmapped", A_HLVD, HS_MODE, HOLE, 0, gpf(21, HOLE, A_HLVD));
        probe(id++, "hs-hsv-unmapped", A_HSVD, HS_MODE, HOLE, 0, gpf(23, HOLE, A_HSVD));
        probe(id++, "hs-hlvx-unmapped", A_HLVXWU, HS_MODE, HOLE, 0, gpf(21, HOLE, A_HLVXWU));
        probe(id++, "hs-hlv-readonly", A_HLVD, HS_MODE, ronly + 24, 0, expect_ok(tgt[3]));
        probe(id++, "hs-hsv-readonly", A_HSVD, HS_MODE, ronly + 24, 1, gpf(23, ronly + 24, A_HSVD));
        /* HLVX reads need X, not R: an R-only page faults, an X-only page reads */
        probe(id++, "hs-hlvx-no-x", A_HLVXWU, HS_MODE, ronly, 0, gpf(21, ronly, A_HLVXWU));
        probe(id++, "hs-hlvx-x-only", A_HLVXWU, HS_MODE, xonly, 0, expect_ok(insn0));
        probe(id++, "hs-hlv-x-only", A_HLVD, HS_MODE, xonly, 0, gpf(21, xonly, A_HLVD));
    }
    /* from U: only with hstatus.HU = 1 */
    id = 30;
    probe(id++, "u-hlv-hu0", A_HLVD, U_MODE, tpa + 8, 0, insn_trap(2));
    probe(id++, "u-hsv-hu0", A_HSVD, U_MODE, tpa + 8, 0, insn_trap(2));
    csr_set(hstatus, HSTATUS_HU);
    probe(id++, "u-hlv-hu1", A_HLVD, U_MODE, tpa + 32, 0, expect_ok(tgt[4]));
    probe(id++, "u-hsv-hu1", A_HSVD, U_MODE, tpa + 40, 0x7777, expect_ok_any());
    rt_check(tgt[5] == 0x7777, "hsv.d from U did not reach memory");
    if (g.mode) probe(id++, "u-hlv-unmapped", A_HLVD, U_MODE, HOLE, 0, gpf(21, HOLE, A_HLVD));
    csr_clear(hstatus, HSTATUS_HU);
    /* from VS and VU: virtual-instruction exception (cause 22) */
    id = 40;
    probe(id++, "vs-hlv", A_HLVD, VS_MODE, tpa, 0, insn_trap(22));
    probe(id++, "vu-hsv", A_HSVD, VU_MODE, tpa, 0, insn_trap(22));

    /* M-mode with MPRV */
    id = 50;
    rt_probe_mstatus_extra = MSTATUS_MPRV | MSTATUS_MPV | (1ull << 11);      /* as VS */
    probe(id++, "mprv-mpv-vs", A_MPRV_LD, M_MODE, tpa + 48, 0, expect_ok(tgt[6]));
    probe(id++, "mprv-mpv-vs", A_MPRV_SD, M_MODE, tpa + 56, 0x8888, expect_ok_any());
    rt_check(tgt[7] == 0x8888, "MPRV+MPV store did not reach memory");
    if (g.mode) {
        probe(id++, "mprv-mpv-unmapped", A_MPRV_LD, M_MODE, HOLE, 0, gpf(21, HOLE, A_MPRV_LD));
        probe(id++, "mprv-mpv-unmapped", A_MPRV_SD, M_MODE, HOLE, 0, gpf(23, HOLE, A_MPRV_SD));
        probe(id++, "mprv-mpv-readonly", A_MPRV_SD, M_MODE, ronly, 0, gpf(23, ronly, A_MPRV_SD));
        /* MPP = M: MPV does not apply, the address is a machine physical address: ronly is nothing */
        rt_probe_mstatus_extra = MSTATUS_MPRV | MSTATUS_MPV | (3ull << 11);
        probe(id++, "mprv-mpp-m", A_MPRV_LD, M_MODE, ronly, 0, expect_trap(5, ronly, 0, 0, ~0ull));
        probe(id++, "mprv-mpp-m", A_MPRV_LD, M_MODE, tpa + 64, 0, expect_ok(tgt[8]));
    }
    rt_probe_mstatus_extra = 0;

    /* AMOs and LR/SC from VS (an SC may fail at any time, so only its lack of a trap is checked) */
    id = 70;
    probe(id++, "vs-amoadd", A_AMOADD, VS_MODE, tpa + 72, 5, expect_ok(tgt[9]));
    probe(id++, "vs-lr", A_LR, VS_MODE, tpa + 80, 0, expect_ok(tgt[10]));
    probe(id++, "vs-sc", A_SC, VS_MODE, tpa + 80, 1, expect_ok_any());
    probe(id++, "vu-amoadd", A_AMOADD, VU_MODE, tpa + 88, 1, expect_ok(tgt[11]));
    if (g.mode) {
        probe(id++, "vs-amo-unmapped", A_AMOADD, VS_MODE, HOLE, 1, gpf(23, HOLE, A_AMOADD));
        probe(id++, "vs-lr-unmapped", A_LR, VS_MODE, HOLE, 0, gpf(21, HOLE, A_LR));
        probe(id++, "vs-amo-readonly", A_AMOADD, VS_MODE, ronly, 1, gpf(23, ronly, A_AMOADD));
        probe(id++, "vs-lr-readonly", A_LR, VS_MODE, ronly + 8, 0, expect_ok(tgt[1]));
    }
    return rt_done();
}
