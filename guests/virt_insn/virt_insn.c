/* virt_insn: which privileged instructions raise illegal-instruction (2) and which virtual-instruction
 * (22) exceptions from HS, U, VS and VU -- WFI, SRET, counter and satp reads -- under mstatus.TW/TSR/TVM,
 * hstatus.VTW/VTSR/VTVM and mcounteren/hcounteren/scounteren.
 *
 * Spec (Priv. 20240411):
 *  - 3.1.6.5: "When TW=1, then if WFI is executed in any less-privileged mode, and it does not complete
 *    within an implementation-specific, bounded time limit, the WFI instruction causes an
 *    illegal-instruction exception"; "When S-mode is implemented, then executing WFI in U-mode causes an
 *    illegal-instruction exception, unless it completes within an implementation-specific, bounded time
 *    limit"; TSR=1: SRET in S-mode is illegal; TVM=1: satp accesses in S-mode are illegal.
 *  - H "Virtual-Instruction Exceptions": a virtual-instruction exception is raised "in VS-mode, attempts
 *    to execute WFI when hstatus.VTW=1 and mstatus.TW=0", "in VU-mode, attempts to execute WFI when
 *    mstatus.TW=0", "in VU-mode, attempts to execute a supervisor instruction (SRET or SFENCE)", "in
 *    VS-mode, attempts to execute SRET when hstatus.VTSR=1", "in VS-mode, attempts to access satp, when
 *    hstatus.VTVM=1", "in VS-mode, attempts to access an implemented non-high-half counter CSR when the
 *    corresponding bit is set in mcounteren but clear in hcounteren", "in VU-mode, attempts to access an
 *    implemented non-high-half counter CSR when the corresponding bit is set in both mcounteren and
 *    hcounteren but clear in scounteren"; a counter whose mcounteren bit is clear is illegal below M.
 *  - H "hstatus": "The TSR and TVM fields of mstatus affect execution only in HS-mode, not in VS-mode."
 *  - H "Virtual-Instruction Exceptions": "in VS-mode or VU-mode, attempts to access an implemented
 *    hypervisor CSR or VS CSR when the same access (read/write) would be allowed in HS-mode, assuming
 *    mstatus.TVM=0"; an M-level CSR stays illegal (the rule covers hypervisor, VS and supervisor CSRs);
 *    H "hgatp": with mstatus.TVM=1 an HS-mode access to hgatp is illegal.
 * mtval of these traps is 0 or the instruction bits (the implementation's choice); GVA is 0.
 * Only configurations where WFI and SRET trap are probed: a WFI that waits would hang, an SRET that
 * executes would leave the probe. */
#include "difftest.h"

DIFFTEST_MODES(HGATP_BARE, VS_BARE);

#define TVM (1ull << 20)
#define TW (1ull << 21)
#define TSR (1ull << 22)
#define VTVM (1ull << 20)
#define VTW (1ull << 21)
#define VTSR (1ull << 22)

static unsigned id;
/* The exception code is what this guest checks.  GVA (0 for these traps) is left to the harness, which
 * compares it at every trap without stopping (difftest/trap_csr.py), and to the accessors/fences probes:
 * checked here, a QEMU that writes GVA=1 would print an X line and end the step-by-step comparison
 * before the first exception-code finding. */
static struct expect trap(u64 cause)
{
    struct expect e = expect_trap(cause, 0, 0, 0, ~0ull);
    e.any_tval = 1;
    e.gva_unchecked = 1;
    return e;
}
/* mstatus.GVA cleared first, so a GVA the harness sees set was set by this very trap */
static void p(const char *w, enum rt_access a, enum rt_mode m, struct expect e)
{
    csr_clear(mstatus, 1ull << 38);
    probe(id++, w, a, m, 0, 0, e);
}

int main(void)
{
    rt_banner("virt_insn");
    const u64 mc = csr_read(mcounteren), hc = csr_read(0x606), sc = csr_read(scounteren);

    id = 1;                                   /* WFI */
    csr_set(mstatus, TW);
    p("wfi-tw", A_WFI, HS_MODE, trap(2));
    p("wfi-tw", A_WFI, VS_MODE, trap(2));
    p("wfi-tw", A_WFI, VU_MODE, trap(2));
    p("wfi-tw", A_WFI, U_MODE, trap(2));
    csr_clear(mstatus, TW);
    p("wfi", A_WFI, VU_MODE, trap(22));
    p("wfi", A_WFI, U_MODE, trap(2));
    csr_set(0x600, VTW);
    p("wfi-vtw", A_WFI, VS_MODE, trap(22));
    p("wfi-vtw", A_WFI, VU_MODE, trap(22));
    csr_clear(0x600, VTW);

    id = 10;                                  /* SRET */
    p("sret", A_SRET, VU_MODE, trap(22));
    p("sret", A_SRET, U_MODE, trap(2));
    csr_set(0x600, VTSR);
    p("sret-vtsr", A_SRET, VS_MODE, trap(22));
    csr_clear(0x600, VTSR);
    csr_set(mstatus, TSR);
    p("sret-tsr", A_SRET, HS_MODE, trap(2));
    p("sret-tsr", A_SRET, VU_MODE, trap(22));
    csr_clear(mstatus, TSR);

    id = 20;                                  /* counters (cycle = bit 0) */
    csr_write(mcounteren, 1); csr_write(0x606, 0); csr_write(scounteren, 0);
    p("cycle-h0", A_CSRR_CYCLE, VS_MODE, trap(22));
    p("cycle-h0", A_CSRR_CYCLE, VU_MODE, trap(22));
    p("cycle-h0", A_CSRR_CYCLE, HS_MODE, expect_ok_any());
    p("cycle-h0-s0", A_CSRR_CYCLE, U_MODE, trap(2));
    csr_write(0x606, 1);
    p("cycle-h1-s0", A_CSRR_CYCLE, VS_MODE, expect_ok_any());
    p("cycle-h1-s0", A_CSRR_CYCLE, VU_MODE, trap(22));
    csr_write(scounteren, 1);
    p("cycle-h1-s1", A_CSRR_CYCLE, VU_MODE, expect_ok_any());
    p("cycle-h1-s1", A_CSRR_CYCLE, U_MODE, expect_ok_any());
    csr_write(mcounteren, 0);
    p("cycle-m0", A_CSRR_CYCLE, HS_MODE, trap(2));
    p("cycle-m0", A_CSRR_CYCLE, VS_MODE, trap(2));
    p("cycle-m0", A_CSRR_CYCLE, VU_MODE, trap(2));
    csr_write(mcounteren, mc); csr_write(0x606, hc); csr_write(scounteren, sc);

    id = 40;                                  /* satp */
    csr_set(0x600, VTVM);
    p("satp-vtvm", A_CSRR_SATP, VS_MODE, trap(22));
    p("satp-vtvm", A_CSRR_SATP, HS_MODE, expect_ok_any());
    csr_clear(0x600, VTVM);
    csr_set(mstatus, TVM);
    p("satp-tvm", A_CSRR_SATP, HS_MODE, trap(2));
    p("satp-tvm", A_CSRR_SATP, VS_MODE, expect_ok_any());    /* TVM affects HS only */
    csr_clear(mstatus, TVM);
    p("satp", A_CSRR_SATP, VU_MODE, trap(22));                /* satp from VU: supervisor CSR */
    p("satp", A_CSRR_SATP, U_MODE, trap(2));

    id = 50;                                  /* hypervisor, VS and machine CSRs */
    p("hgatp", A_CSRR_HGATP, HS_MODE, expect_ok_any());
    p("hgatp", A_CSRR_HGATP, VS_MODE, trap(22));
    p("hgatp", A_CSRR_HGATP, VU_MODE, trap(22));
    p("hgatp", A_CSRR_HGATP, U_MODE, trap(2));
    csr_set(mstatus, TVM);
    p("hgatp-tvm", A_CSRR_HGATP, HS_MODE, trap(2));    /* 3.1.6.5 / H: TVM traps hgatp in HS */
    csr_clear(mstatus, TVM);
    p("vsstatus", A_CSRR_VSSTATUS, HS_MODE, expect_ok_any());
    p("vsstatus", A_CSRR_VSSTATUS, VS_MODE, trap(22));
    p("vsstatus", A_CSRR_VSSTATUS, VU_MODE, trap(22));
    p("vsstatus", A_CSRR_VSSTATUS, U_MODE, trap(2));
    p("mstatus", A_CSRR_MSTATUS, HS_MODE, trap(2));   /* an M-level CSR: illegal everywhere below M */
    p("mstatus", A_CSRR_MSTATUS, VS_MODE, trap(2));
    p("mstatus", A_CSRR_MSTATUS, VU_MODE, trap(2));
    return rt_done();
}
