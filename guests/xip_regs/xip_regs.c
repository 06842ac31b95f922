/* xip_regs: the interrupt registers riscv-hyp-tests' check_xip_regs writes with all ones (mideleg,
 * hideleg, vsie, mie, mip, hvip), one rule per probe, from M-mode with every enable clear (nothing is
 * taken).  This hart has no Sscofpmf (neither QEMU's FDT riscv,isa names it) and no AIA.
 *
 * Spec (Priv. 20240411, riscv-isa-manual src/machine.adoc, src/hypervisor.adoc):
 *  - 3.1.8 mideleg: "An implementation can choose to subset the delegatable traps"; WARL.  P 1 checks
 *    bits 12:0 only (SSI/STI/SEI writable, VS bits and SGEI read-only one); bit 13 and up are the
 *    implementation's (refmodel Profile.mideleg_extra; both QEMUs keep bit 13).
 *  - H "hideleg": "Among bits 15:0 of hideleg, bits 10, 6, and 2 ... are writable, and bits 12, 9, 5,
 *    and 1 ... are read-only zeros".  P 2 checks bits 12:0; the rest is the implementation's
 *    (Profile.hideleg_extra; QEMU 10.0 keeps 14..63).
 *  - 3.1.9 mip/mie: "Bits 15:0 are allocated to standard interrupt causes only, while bits 16 and above
 *    are designated for platform use"; bits 15:14 are "0" in the figures of the standard portions of
 *    mip/mie and of vsip/vsie.  P 3 (vsie = -1 with hideleg = -1: vsie and mie bits 15:0) and P 4
 *    (mie bits 14, 15) check them; vsie bits 16 and up are the platform's (Profile.vs_platform_alias).
 *  - 3.1.9: "If the Sscofpmf extension is not implemented, mip.LCOFIP and mie.LCOFIE are read-only
 *    zeros" (10.1.3 likewise for sip/sie).  P 5 writes mie bit 13, P 6 mip bit 13, P 8 hvip bit 13.
 *  - H "Hypervisor Interrupt Registers": "Bits of hvip that are not writable are read-only zeros"; only
 *    VSEIP, VSTIP and VSSIP are writable in its standard portion.  P 7 writes hvip = 0 and reads it
 *    back (MTIP is pending throughout: mtimecmp resets to 0 on QEMU virt).
 *  - H "Virtual Supervisor Interrupt Registers": "When bit 10 of hideleg is zero, vsip.SEIP and vsie.SEIE
 *    are read-only zeros. Else, vsip.SEIP and vsie.SEIE are aliases of hip.VSEIP and hie.VSEIE" (bits 6
 *    and 2 likewise).  P 9 sets hvip's three VS bits with hideleg = -1: vsip must read 0x222.
 * README "Third-party programs in lockstep" (check_xip_regs) and known-divergences.toml say which QEMU
 * breaks which rule. */
#include "difftest.h"

DIFFTEST_MODES(HGATP_BARE, VS_BARE);

#define LCOF (1ull << 13)
#define VS_IP ((1ull << 2) | (1ull << 6) | (1ull << 10))     /* VSSIP, VSTIP, VSEIP */

static unsigned id = 1;

/* P line: the full values read; X line (`good` is the spec's rule): the bits the rule fixes */
static void report(const char *what, const char *k1, u64 v1, u64 m1, u64 e1, const char *k2, u64 v2, u64 m2, u64 e2)
{
    int good = (v1 & m1) == e1 && (!k2 || (v2 & m2) == e2);
    rt_probes++;
    rt_probe_mark(RT_MARK_PRINT(id));
    rt_puts("P "); rt_dec(id); rt_puts(" "); rt_puts(what);
    rt_puts(" "); rt_puts(k1); rt_puts("="); rt_hex(v1);
    if (k2) { rt_puts(" "); rt_puts(k2); rt_puts("="); rt_hex(v2); }
    rt_putc('\n');
    rt_xline_begin(id, good);
    rt_puts(k1); rt_puts("="); rt_hex(e1);
    if (k2) { rt_puts(" "); rt_puts(k2); rt_puts("="); rt_hex(e2); }
    rt_puts(" got "); rt_puts(k1); rt_puts("="); rt_hex(v1 & m1);
    if (k2) { rt_puts(" "); rt_puts(k2); rt_puts("="); rt_hex(v2 & m2); }
    rt_xline_end(id);
    id++;
}

int main(void)
{
    rt_banner("xip_regs");
    csr_write(mie, 0);

    rt_probe_mark(RT_MARK_START(id));
    csr_write(mideleg, ~0ull);
    report("mideleg-all", "mideleg", csr_read(mideleg), 0x1fff, 0x1666, 0, 0, 0, 0);

    rt_probe_mark(RT_MARK_START(id));
    csr_write(hideleg, ~0ull);
    report("hideleg-all", "hideleg", csr_read(hideleg), 0x1fff, 0x444, 0, 0, 0, 0);

    rt_probe_mark(RT_MARK_START(id));
    csr_write(vsie, ~0ull);                     /* check_xip_regs' first difference on QEMU 10.0 */
    u64 vsie = csr_read(vsie), mie = csr_read(mie);
    csr_write(vsie, 0);
    csr_write(mie, 0);
    report("vsie-all", "vsie", vsie, 0xffff, 0x222, "mie", mie, 0xffff, 0x444);

    rt_probe_mark(RT_MARK_START(id));
    csr_write(mie, 3ull << 14);                 /* reserved standard bits */
    mie = csr_read(mie);
    csr_write(mie, 0);
    report("mie-14-15", "mie", mie, ~0ull, 0, 0, 0, 0, 0);

    rt_probe_mark(RT_MARK_START(id));
    csr_write(mie, LCOF);                       /* LCOFIE without Sscofpmf; mideleg[13] shows it in sie */
    mie = csr_read(mie);
    u64 sie = csr_read(sie);
    csr_write(mie, 0);
    report("mie-lcofie", "mie", mie, ~0ull, 0, "sie", sie, ~0ull, 0);

    rt_probe_mark(RT_MARK_START(id));
    csr_write(mip, LCOF);                       /* LCOFIP without Sscofpmf */
    u64 mip = csr_read(mip), sip = csr_read(sip);
    csr_write(mip, 0);
    report("mip-lcofip", "lcofip", mip & LCOF, ~0ull, 0, "sip", sip, ~0ull, 0);

    rt_probe_mark(RT_MARK_START(id));
    csr_write(hvip, 0);                         /* hvip holds only its own writable bits */
    report("hvip-zero", "hvip", csr_read(hvip), ~0ull, 0, 0, 0, 0, 0);

    rt_probe_mark(RT_MARK_START(id));
    csr_write(hvip, LCOF);                      /* not writable in hvip, and no LCOFIP to set */
    mip = csr_read(mip);
    csr_write(hvip, 0);
    csr_write(mip, 0);
    report("hvip-lcof", "lcofip", mip & LCOF, ~0ull, 0, 0, 0, 0, 0);

    rt_probe_mark(RT_MARK_START(id));
    csr_write(hvip, VS_IP);                     /* delegated by hideleg: vsip shows them as SSIP/STIP/SEIP */
    u64 vsip = csr_read(vsip), hip = csr_read(hip);
    csr_write(hvip, 0);
    report("hvip-vsip", "vsip", vsip, 0xffff, 0x222, "hip", hip, VS_IP, VS_IP);

    csr_write(hideleg, 0);
    csr_write(mideleg, 0);
    return rt_done();
}
