/* hgatp_reserved: write every reserved hgatp MODE (1..7, 11..15) and check WARL.
 * Priv. 20240411, 21.2.10 (norm:hgatp_mode_warl): "A write to hgatp with an unsupported MODE value is not
 * ignored as it is for satp. Instead, the fields of hgatp are WARL in the normal way."  So the read-back
 * MODE is some legal value (0, 8, 9 or 10; which one is the implementation's choice, printed), and in the
 * x4 modes PPN[1:0] reads as zero (norm:hgatp_ppn_op).
 * QEMU 7.2 divergence (re-verified 2026-11-25): 7.2 stores every reserved MODE verbatim and reads it
 * back (24 X lines); a two-stage access with such a MODE then aborts 7.2, so this guest never makes one.
 * Decided by Priv. 20240411, 2.3 "Write Any Values, Reads Legal Values (WARL)": such fields "allow any
 * value to be written while guaranteeing to return a legal value whenever read", and 21.2.10 quoted above.
 * QEMU 10.0 ignores the write (a legal WARL choice).  Kept in its own guest. */
#include "difftest.h"

DIFFTEST_MODES(HGATP_BARE, VS_BARE);

int main(void)
{
    rt_banner("hgatp_reserved");
    unsigned id = 1;
    for (u64 before = 0; before < 2; before++) {
        /* previous value: 0, then Sv39x4 with a PPN if Sv39x4 sticks */
        u64 prev = before ? ((8ull << 60) | 0x80000ull) : 0;
        for (u64 m = 1; m < 16; m++) {
            if (m >= 8 && m <= 10) continue;
            csr_write(hgatp, prev);
            u64 held = csr_read(hgatp);
            u64 w = (m << 60) | 0x80004ull;
            csr_write(hgatp, w);
            u64 r = csr_read(hgatp);
            rt_probes++;
            rt_puts("P "); rt_dec(id); rt_puts(" hgatp-reserved wrote="); rt_hex(w);
            rt_puts(" held="); rt_hex(held); rt_puts(" read="); rt_hex(r);
            rt_puts(r == held ? " write-ignored\n" : " legalised\n");
            u64 rm = r >> 60;
            int legal = rm == 0 || rm == 8 || rm == 9 || rm == 10;
            if (!legal || (rm && (r & 3))) {
                rt_fails++;
                rt_puts("X "); rt_dec(id); rt_puts(" expected read MODE in {0,8,9,10} with PPN[1:0]=0 got read=");
                rt_hex(r); rt_putc('\n');
            }
            id++;
        }
    }
    csr_write(hgatp, 0);
    hfence_gvma_all();
    return rt_done();
}
