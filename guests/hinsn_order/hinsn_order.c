/* hinsn_order: HLV/HSV in VU-mode and in U-mode, executed in both orders from the same pc.
 *
 * Spec (Priv. 20240411, H "Virtual-Instruction Exceptions"): a virtual-instruction exception (22) is
 * raised "in VS-mode or VU-mode, attempts to execute a hypervisor instruction (HLV, HLVX, HSV, or
 * HFENCE)"; H "Hypervisor Virtual-Machine Load and Store Instructions": from U-mode (V=0) they are
 * allowed only when hstatus.HU=1, "If HU=0, attempts to execute a virtual-machine load/store
 * instruction in U-mode raise an illegal-instruction exception" (2).  The outcome depends on the mode
 * of this execution only, never on which mode ran the same instruction before.
 *
 * Why (QEMU 7.2, target/riscv/translate.c riscv_tr_init_disas_context and trans_rvh.c.inc check_access,
 * read for the catalogue review, docs/catalogue-review.md): the exception is chosen at translation time
 * from env's V, but a translated block is looked up by pc, privilege (MEM_IDX) and HLSX -- not V.  U-mode
 * with HU=0 and VU-mode share a key, so whichever runs a pc first decides the cause for both.  Each
 * sequence below therefore uses its own copy of the stub (stubs.S), never executed before.
 * QEMU 10.0 keys blocks on V (TB_FLAGS VIRT_ENABLED) and checks in the helper.
 *
 * mtval of these traps (Priv. 3.1.16 "mtval"): zero or the faulting instruction's bits -- probe 20 runs
 * an HSV from U (HU=0) right after an illegal csrr from U: QEMU 7.2 raises the HSV exception without
 * recording its instruction bits (generate_exception, no bins store), so mtval would be the csrr's.
 *
 * Probes (ids): 1-2 HSV U(HU=0) then VU; 3-4 HSV VU then U(HU=0); 5-6 HLV U(HU=0) then VU; 7-8 HLV VU then
 * U(HU=0); 9-10 HSV HS then VU; 11-12 HSV VU then HS; 13-14 HSV U(HU=1) then VU; 15-16 HSV VU then
 * U(HU=1); 19-20 csrr mstatus from U (illegal) then HLV U(HU=0): mtval 0 or the HLV's own bits.
 * Measured 2026-11-30: see docs/catalogue-review.md item 4. */
#include "difftest.h"

DIFFTEST_MODES(HGATP_ALL, VS_BARE);

extern char ho_hsv_a[], ho_hsv_b[], ho_hlv_c[], ho_hlv_d[], ho_hsv_e[], ho_hsv_f[], ho_hsv_g[], ho_hsv_h[],
    ho_hlv_j[];
static volatile u64 tgt[512] __attribute__((aligned(4096), section(".data.page")));

static struct expect insn_trap(u64 cause)
{
    struct expect e = expect_trap(cause, 0, 0, 0, ~0ull);
    e.any_tval = 1;            /* mtval = 0 or the instruction bits: the implementation's choice */
    e.gva_unchecked = 1;       /* GVA is the subject of other entries (docs/catalogue-review.md item 3) */
    return e;
}

static void at(char *stub, unsigned id, const char *what, enum rt_access acc, enum rt_mode mode, int hu,
               struct expect e)
{
    if (hu) csr_set(hstatus, HSTATUS_HU); else csr_clear(hstatus, HSTATUS_HU);
    rt_stub_override = (u64)stub;
    probe(id, what, acc, mode, (u64)&tgt[id], id, e);
    rt_stub_override = 0;
    csr_clear(hstatus, HSTATUS_HU);
}

int main(void)
{
    struct pt g;
    rt_banner("hinsn_order");
    rt_gstage_identity(&g);
    struct expect ok = expect_ok_any(), ill = insn_trap(2), virt = insn_trap(22);

    at(ho_hsv_a, 1, "hsv-u-hu0-first", A_HSVD, U_MODE, 0, ill);
    at(ho_hsv_a, 2, "hsv-vu-after-u", A_HSVD, VU_MODE, 0, virt);
    at(ho_hsv_b, 3, "hsv-vu-first", A_HSVD, VU_MODE, 0, virt);
    at(ho_hsv_b, 4, "hsv-u-hu0-after-vu", A_HSVD, U_MODE, 0, ill);
    at(ho_hlv_c, 5, "hlv-u-hu0-first", A_HLVD, U_MODE, 0, ill);
    at(ho_hlv_c, 6, "hlv-vu-after-u", A_HLVD, VU_MODE, 0, virt);
    at(ho_hlv_d, 7, "hlv-vu-first", A_HLVD, VU_MODE, 0, virt);
    at(ho_hlv_d, 8, "hlv-u-hu0-after-vu", A_HLVD, U_MODE, 0, ill);
    at(ho_hsv_e, 9, "hsv-hs-first", A_HSVD, HS_MODE, 0, ok);
    at(ho_hsv_e, 10, "hsv-vu-after-hs", A_HSVD, VU_MODE, 0, virt);
    at(ho_hsv_f, 11, "hsv-vu-first", A_HSVD, VU_MODE, 0, virt);
    at(ho_hsv_f, 12, "hsv-hs-after-vu", A_HSVD, HS_MODE, 0, ok);
    at(ho_hsv_g, 13, "hsv-u-hu1-first", A_HSVD, U_MODE, 1, ok);
    at(ho_hsv_g, 14, "hsv-vu-after-u-hu1", A_HSVD, VU_MODE, 0, virt);
    at(ho_hsv_h, 15, "hsv-vu-first", A_HSVD, VU_MODE, 0, virt);
    at(ho_hsv_h, 16, "hsv-u-hu1-after-vu", A_HSVD, U_MODE, 1, ok);

    /* mtval of an HLV illegal-instruction trap: 0 or the HLV's own bits, never another instruction's */
    probe(19, "u-csrr-mstatus", A_CSRR_MSTATUS, U_MODE, 0, 0, ill);
    struct expect z = insn_trap(2), bits = insn_trap(2);
    z.any_tval = 0; z.tval = 0;
    bits.any_tval = 0; bits.tval = *(volatile u32 *)ho_hlv_j;
    csr_clear(hstatus, HSTATUS_HU);
    rt_stub_override = (u64)ho_hlv_j;
    probe_either(20, "hlv-u-hu0-tval", A_HLVD, U_MODE, (u64)&tgt[20], 0, z, bits, 2);
    rt_stub_override = 0;
    return rt_done();
}
