/* vs_ip_alias: the VS-level pending bits as mip, hip and hvip show them, written from M-mode (no interrupt
 * is enabled: mie = 0, nothing is taken).
 *
 * Spec (Priv. 20240411, riscv-isa-manual src/priv/hypervisor.adoc):
 *  - "Machine Interrupt (mip and mie) Registers": "Bits SGEIP, VSEIP, VSTIP, and VSSIP in mip are aliases
 *    for the same bits in hypervisor CSR hip".
 *  - "Hypervisor Interrupt Registers": "VSEIP is read-only in hip, and is the logical-OR of ... bit VSEIP
 *    of hvip; the bit of hgeip selected by hstatus.VGEIN; and any other platform-specific external
 *    interrupt signal directed to VS-level"; "VSTIP is read-only in hip, and is the logical-OR of
 *    hvip.VSTIP and, when the Sstc extension is implemented, the timer interrupt signal resulting from
 *    vstimecmp" (no Sstc on this platform); "hip.VSSIP [is a] writable alias of hvip.VSSIP".
 *  So a write to mip can set VSSIP (through hvip) but never VSTIP or VSEIP; hvip's VS bits show in hip.
 *
 * The situation of riscv-hyp-tests' check_xip_regs (`csrw mip, -1`, then hip reads 0x444 on both QEMUs,
 * 0x4 on the model): README "Third-party programs in lockstep". */
#include "difftest.h"

DIFFTEST_MODES(HGATP_BARE, VS_BARE);

#define VSSIP (1ull << 2)
#define VSTIP (1ull << 6)
#define VSEIP (1ull << 10)
#define VS_IP (VSSIP | VSTIP | VSEIP)

static unsigned id = 1;

/* one probe of our own shape: `what` wrote, then hip/mip/hvip read back (VS bits only) */
static void line(const char *what, u64 want_hip, u64 want_hvip)
{
    u64 hip = csr_read(hip) & VS_IP, mip = csr_read(mip) & VS_IP, hvip = csr_read(hvip) & VS_IP;
    int ok = hip == want_hip && mip == want_hip && hvip == want_hvip;
    rt_probes++;
    rt_probe_mark(RT_MARK_PRINT(id));
    rt_puts("P "); rt_dec(id); rt_puts(" "); rt_puts(what); rt_puts(" hip="); rt_hex(hip);
    rt_puts(" mip="); rt_hex(mip); rt_puts(" hvip="); rt_hex(hvip); rt_putc('\n');
    rt_xline_begin(id, ok);
    rt_puts("hip=mip="); rt_hex(want_hip); rt_puts(" hvip="); rt_hex(want_hvip);
    rt_xline_end(id);
    id++;
}

static void reset(void)
{
    csr_write(hvip, 0);
    csr_clear(mip, VS_IP);
}

int main(void)
{
    rt_banner("vs_ip_alias");
    csr_write(mie, 0);

    rt_probe_mark(RT_MARK_START(id));
    reset();
    csr_write(mip, VSTIP | VSEIP);              /* read-only in hip, so in mip: ignored */
    line("mip-vstip-vseip", 0, 0);

    rt_probe_mark(RT_MARK_START(id));
    reset();
    csr_write(mip, VSSIP);                      /* the writable alias of hvip.VSSIP */
    line("mip-vssip", VSSIP, VSSIP);

    rt_probe_mark(RT_MARK_START(id));
    reset();
    csr_write(hvip, VS_IP);                     /* hvip's bits show in hip and mip */
    line("hvip-all", VS_IP, VS_IP);

    rt_probe_mark(RT_MARK_START(id));
    csr_clear(mip, VSTIP | VSEIP);              /* clearing read-only bits through mip: no effect */
    line("mip-clear-vstip-vseip", VS_IP, VS_IP);

    reset();
    return rt_done();
}
