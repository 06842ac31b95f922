/* interrupts: timer and software interrupts at M, HS and VS level, delegation through mideleg and
 * hideleg, priority, WFI wake-up -- run in lockstep with QEMU under -icount (docs/ARCHITECTURE.md
 * "Interrupts and time").  Each check reads irq_log (irq.S): which mode took which interrupt.
 *   Priv. 20240411 3.1.9 (mip/mie: enables, priority MEI MSI MTI SEI SSI STI), 3.1.8 (mideleg),
 *   3.2.1 (mtime/mtimecmp: MTIP whenever mtime >= mtimecmp), 3.3.3 (WFI resumes on a locally enabled
 *   pending interrupt whatever MIE/SIE say), 10.1.3 (sip/sie), H "hvip"/"hip"/"hideleg" (VS-level
 *   interrupts, cause codes 2/6/10 translated to 1/5/9 for VS), H "Machine Interrupt Registers". */
#include "difftest.h"

DIFFTEST_MODES(HGATP_BARE, VS_BARE);

#define MSIP     ((volatile unsigned *)0x2000000ull)
#define MTIMECMP ((volatile u64 *)0x2004000ull)
#define MTIME    ((volatile u64 *)0x200bff8ull)
#define INT      (1ull << 63)
#define MPP_S    (1ull << 11)
#define MPP_U    0ull
#define MPV      (1ull << 39)
#define MPIE     (1ull << 7)
#define MIE      (1ull << 3)
#define SIE      (1ull << 1)

extern volatile u64 irq_log[];
void irq_run(u64 mstatus_bits, void (*fn)(void), u64 arg);
void irq_mvec(void), irq_svec(void), irq_vsvec(void);
void irq_idle(void), irq_hs_ssi(void), irq_wfi_loop(void), irq_spin(void);

static void reset_log(void) { irq_log[0] = 0; }
static u64 n_log(void) { return irq_log[0]; }
static u64 who(int k) { return irq_log[4 * k]; }
static u64 cause(int k) { return irq_log[4 * k + 1]; }

static void clear_all(void)
{
    csr_write(mie, 0);
    csr_clear(mstatus, MIE | SIE);
    csr_write(0x200, 0);             /* vsstatus */
    csr_write(mip, 0);
    csr_write(0x645, 0);             /* hvip */
    csr_write(mideleg, 0);
    csr_write(0x603, 0);             /* hideleg */
    *MSIP = 0;
    *MTIMECMP = ~0ull;
    reset_log();
}

static void expect1(u64 w, u64 c, const char *why)
{
    rt_check(n_log() == 1 && who(1) == w && cause(1) == c, why);
}

int main(void)
{
    rt_banner("interrupts");
    csr_write(stvec, (u64)irq_svec);
    csr_write(0x205, (u64)irq_vsvec);        /* vstvec */

    /* mideleg: VS-level bits read-only one with H (H "mideleg"); hvictl is absent (illegal) */
    clear_all();
    csr_write(mideleg, ~0ull);
    rt_check((csr_read(mideleg) & 0x444) == 0x444, "mideleg VS bits read-only one");
    csr_write(mideleg, 0);
    rt_check((csr_read(mideleg) & 0x444) == 0x444, "mideleg VS bits stay one");

    /* 1. MSI in M through ACLINT MSWI: taken right after the store (M, MIE=1) */
    clear_all();
    csr_write(mtvec, (u64)irq_mvec);
    csr_write(mie, 1ull << 3);
    csr_set(mstatus, MIE);
    *MSIP = 1;
    __asm__ volatile("nop; nop");
    csr_clear(mstatus, MIE);
    expect1(3, INT | 3, "M takes MSI");
    rt_check(*MSIP == 0, "msip cleared by the handler");

    /* 2. MTI in M through mtimecmp: spin until it fires */
    clear_all();
    csr_write(mie, 1ull << 7);
    *MTIMECMP = *MTIME + 40;
    csr_set(mstatus, MIE);
    for (int k = 0; k < 10000 && n_log() == 0; k++)
        ;
    csr_clear(mstatus, MIE);
    expect1(3, INT | 7, "M takes MTI");

    /* 3. WFI with MIE=0 resumes when MTIP becomes pending (no trap); time has reached mtimecmp */
    clear_all();
    csr_write(mie, 1ull << 7);
    u64 cmp = *MTIME + 60;
    *MTIMECMP = cmp;
    __asm__ volatile("wfi");
    u64 after = *MTIME;
    rt_check(n_log() == 0 && (csr_read(mip) & (1ull << 7)) && after >= cmp, "WFI wakes on MTIP with MIE=0");

    /* 4. priority: MSI and MTI both pending, enabled at once by MIE -> MSI first, then MTI */
    clear_all();
    *MSIP = 1;
    *MTIMECMP = 0;                           /* MTIP pending */
    csr_write(mie, (1ull << 3) | (1ull << 7));
    csr_set(mstatus, MIE);
    __asm__ volatile("nop");
    csr_clear(mstatus, MIE);
    rt_check(n_log() == 2 && cause(1) == (INT | 3) && cause(2) == (INT | 7), "MSI before MTI");

    /* 5. SSI delegated to HS (mideleg.SSI), raised by HS itself through sip */
    clear_all();
    csr_write(mideleg, 1ull << 1);
    irq_run(MPP_S, irq_hs_ssi, 0);
    expect1(1, INT | 1, "HS takes SSI raised through sip");

    /* 6. STI injected by M (mip.STIP, no Sstc), delegated: HS takes it on entry (SIE=1) */
    clear_all();
    csr_write(mideleg, 1ull << 5);
    csr_write(mie, 1ull << 5);
    csr_set(mip, 1ull << 5);
    csr_set(mstatus, SIE);
    irq_run(MPP_S, irq_idle, 0);
    expect1(1, INT | 5, "HS takes STI injected by M");

    /* 7. STI not delegated: M takes it from HS (priv < M: always enabled) */
    clear_all();
    csr_write(mie, 1ull << 5);
    csr_set(mip, 1ull << 5);
    irq_run(MPP_S, irq_idle, 0);
    expect1(3, INT | 5, "M takes undelegated STI from HS");

    /* 8. SSI delegated, HS with SIE=0: masked in HS, taken from U (less privileged) */
    clear_all();
    csr_write(mideleg, 1ull << 1);
    csr_write(mie, 1ull << 1);
    csr_set(mip, 1ull << 1);
    irq_run(MPP_S, irq_idle, 0);
    rt_check(n_log() == 0, "SSI masked in HS with SIE=0");
    irq_run(MPP_U, irq_idle, 0);
    expect1(1, INT | 1, "SSI taken from U with SIE=0");

    /* 9. VSSI via hvip, hideleg'd: VS takes it (vscause 1) on entry with vsstatus.SIE=1 */
    clear_all();
    csr_write(0x603, 1ull << 2);
    csr_write(mie, 1ull << 2);
    csr_write(0x645, 1ull << 2);
    csr_write(0x200, SIE);
    irq_run(MPP_S | MPV, irq_idle, 0);
    expect1(5, INT | 1, "VS takes VSSI as code 1");
    rt_check((csr_read(0x645) & 4) == 0, "VS cleared hvip.VSSIP through sip");

    /* 10. VSTI via hvip, hideleg'd, VU-mode with vsstatus.SIE=0: still taken (VU less privileged) */
    clear_all();
    csr_write(0x603, 1ull << 6);
    csr_write(mie, 1ull << 6);
    csr_write(0x645, 1ull << 6);
    irq_run(MPP_U | MPV, irq_idle, 0);
    expect1(5, INT | 5, "VU: VS takes VSTI as code 5");

    /* 11. VSTI not hideleg'd: HS takes it from VS with its own code 6 */
    clear_all();
    csr_write(mie, 1ull << 6);
    csr_write(0x645, 1ull << 6);
    irq_run(MPP_S | MPV, irq_idle, 0);
    expect1(1, INT | 6, "HS takes undelegated VSTI as code 6");

    /* 12. VSSI pending in VS with vsstatus.SIE=0: masked in VS-mode; mip shows it (alias of hvip) */
    clear_all();
    csr_write(0x603, 1ull << 2);
    csr_write(mie, 1ull << 2);
    csr_set(mip, 1ull << 2);                 /* mip.VSSIP: writable alias of hvip.VSSIP */
    rt_check((csr_read(0x645) & 4) == 4, "mip.VSSIP writes hvip.VSSIP");
    irq_run(MPP_S | MPV, irq_idle, 0);
    rt_check(n_log() == 0, "VSSI masked in VS with SIE=0");

    /* 13. M-level MTI from VS while VS waits in WFI: time jumps to the deadline, M takes it */
    clear_all();
    csr_write(mie, 1ull << 7);
    *MTIMECMP = *MTIME + 80;
    irq_run(MPP_S | MPV, irq_wfi_loop, 0);
    expect1(3, INT | 7, "M takes MTI that ends a WFI in VS");

    /* 14. HS waits for a delegated STI? No timer for it without Sstc: M's timer through MTI, spun in HS */
    clear_all();
    csr_write(mie, 1ull << 7);
    *MTIMECMP = *MTIME + 30;
    irq_run(MPP_S, irq_spin, 1);
    expect1(3, INT | 7, "M takes MTI while HS spins");

    clear_all();
    csr_write(mideleg, 0);
    return rt_done();
}
