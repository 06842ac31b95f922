/* hgatp_reserved: write every reserved hgatp MODE (1..7, 11..15) together with a PPN and a VMID, and
 * check what reads back.
 * Priv. 20240411, H "Hypervisor Guest Address Translation and Protection Register (hgatp)"
 * (norm:hgatp_mode_warl): "A write to hgatp with an unsupported MODE value is not ignored as it is for
 * satp. Instead, the fields of hgatp are WARL in the normal way, when so indicated."  So such a write
 * still writes PPN and VMID (VMID cut to VMIDLEN bits, measured first as the spec describes: "writing one
 * to every bit position in the VMID field, then reading back"), and MODE reads back some legal value
 * (0, 8, 9 or 10: which one is the implementation's choice -- Priv. 2.3 WARL: "any legal value ... should
 * deterministically depend on the illegal written value and the architectural state of the hart"; the
 * model keeps the previous MODE, profile field hgatp_unsupported_mode).  In the x4 modes PPN[1:0] reads
 * as zero (norm:hgatp_ppn_op: "the lowest two bits of the physical page number (PPN) in hgatp always read
 * as zeros"); with MODE=Bare an implementation "may hardwire PPN[1:0] to zero", so 0 or the written bits.
 * The P line says which class the read-back value is: legalised (PPN/VMID written, MODE legal),
 * write-ignored (the whole register kept, the satp rule -- not allowed for hgatp) or verbatim (the
 * reserved MODE stored -- not a legal value).
 * QEMU 7.2 (re-verified 2026-11-30): stores every reserved MODE verbatim (24 X lines); a two-stage access
 * with such a MODE then aborts 7.2, so this guest never makes one.
 * QEMU 10.0 (2026-11-30): ignores the whole write like satp (target/riscv/csr.c write_hgatp ->
 * legalize_xatp), so PPN and VMID keep their old values (24 X lines).
 * Kept in its own guest. */
#include "difftest.h"

DIFFTEST_MODES(HGATP_BARE, VS_BARE);

#define PPN_W 0x80007ull          /* PPN written: PPN[1:0] = 3, so their read-back is visible */
#define VMID_W 0x2955ull          /* VMID written (cut to VMIDLEN bits) */

int main(void)
{
    rt_banner("hgatp_reserved");
    csr_write(hgatp, 0x3FFFull << 44);
    u64 vmask = (csr_read(hgatp) >> 44) & 0x3FFF;
    csr_write(hgatp, 0);
    unsigned id = 1;
    for (u64 before = 0; before < 2; before++) {
        /* previous value: 0, then Sv39x4 with a PPN */
        u64 prev = before ? ((8ull << 60) | 0x80000ull) : 0;
        for (u64 m = 1; m < 16; m++) {
            if (m >= 8 && m <= 10) continue;
            rt_probe_mark(RT_MARK_START(id));
            csr_write(hgatp, prev);
            u64 held = csr_read(hgatp);
            u64 w = (m << 60) | (VMID_W << 44) | PPN_W;
            csr_write(hgatp, w);
            u64 r = csr_read(hgatp);
            u64 rm = r >> 60, rvmid = (r >> 44) & 0x3FFF, rppn = r & ((1ull << 44) - 1);
            /* & and |, not && and ||: the check runs the same instructions whatever the values */
            int legal = (rm == 0) | (rm == 8) | (rm == 9) | (rm == 10);
            int fields = (rvmid == (VMID_W & vmask)) & ((rppn >> 2) == (PPN_W >> 2)) &
                         (((rppn & 3) == 0) | ((rm == 0) & ((rppn & 3) == (PPN_W & 3))));
            rt_probes++;
            rt_probe_mark(RT_MARK_PRINT(id));
            rt_puts("P "); rt_dec(id); rt_puts(" hgatp-reserved wrote="); rt_hex(w);
            rt_puts(" held="); rt_hex(held); rt_puts(" read="); rt_hex(r);
            rt_out = rt_sel(r == held); rt_puts(" write-ignored");
            rt_out = rt_sel((r != held) & (r == w)); rt_puts(" verbatim");
            rt_out = rt_sel((r != held) & (r != w)); rt_puts(" legalised");
            rt_out = rt_sel(1); rt_putc('\n');
            rt_xline_begin(id, legal & fields);
            rt_puts("read MODE in {0,8,9,10}, VMID=");
            rt_hex(VMID_W & vmask); rt_puts(" PPN="); rt_hex(PPN_W & ~3ull); rt_puts(" (PPN[1:0]=0 unless Bare)");
            rt_puts(" got read="); rt_hex(r);
            rt_xline_end(id);
            id++;
        }
    }
    csr_write(hgatp, 0);
    hfence_gvma_all();
    return rt_done();
}
