/* atp_reserved: write every reserved MODE (1..7, 11..15) to satp and to vsatp (from M-mode, V=0).
 *
 * Spec (Priv. 20240411):
 *  - satp (12.1.11): "Implementations are not required to support all MODE settings, and if satp is
 *    written with an unsupported MODE, the entire write has no effect; no fields in satp are modified."
 *  - vsatp (H "Virtual Supervisor Address Translation and Protection Register"): "When V=0, a write to
 *    vsatp with an unsupported MODE value is either ignored as it is for satp, or the fields of vsatp
 *    are treated as WARL in the normal way."  So vsatp reads back either the value it held or a value
 *    with a legal MODE (0, 8, 9, 10) -- never the reserved MODE.
 * Each probe prints what it wrote, what the register held before and what it reads after. */
#include "difftest.h"

DIFFTEST_MODES(HGATP_BARE, VS_BARE);

static unsigned id = 1;

static void line(const char *csr, u64 w, u64 held, u64 r, int ok, const char *want)
{
    rt_probes++;
    rt_probe_mark(RT_MARK_PRINT(id));
    rt_puts("P "); rt_dec(id); rt_puts(" "); rt_puts(csr); rt_puts("-reserved wrote="); rt_hex(w);
    rt_puts(" held="); rt_hex(held); rt_puts(" read="); rt_hex(r);
    rt_out = rt_sel(r == held); rt_puts(" write-ignored");
    rt_out = rt_sel(r != held); rt_puts(" written");
    rt_out = rt_sel(1); rt_putc('\n');
    rt_xline_begin(id, ok);
    rt_puts(want); rt_puts(" got read="); rt_hex(r);
    rt_xline_end(id);
    id++;
}

int main(void)
{
    rt_banner("atp_reserved");
    for (int before = 0; before < 2; before++) {
        const u64 prev = before ? ((8ull << 60) | (5ull << 44) | 0x80123ull) : 0;   /* Sv39, ASID 5 */
        for (u64 m = 1; m < 16; m++) {
            if (m >= 8 && m <= 10) continue;
            const u64 w = (m << 60) | (7ull << 44) | 0x80456ull;
            rt_probe_mark(RT_MARK_START(id));
            csr_write(satp, prev);
            u64 held = csr_read(satp);
            csr_write(satp, w);
            u64 r = csr_read(satp);
            line("satp", w, held, r, r == held, "the write ignored (satp unchanged)");

            rt_probe_mark(RT_MARK_START(id));
            csr_write(vsatp, prev);
            held = csr_read(vsatp);
            csr_write(vsatp, w);
            r = csr_read(vsatp);
            u64 rm = r >> 60;
            line("vsatp", w, held, r, (r == held) | (rm == 0) | (rm == 8) | (rm == 9) | (rm == 10),
                 "the write ignored or a legal MODE (0, 8, 9, 10)");
        }
    }
    csr_write(satp, 0);
    csr_write(vsatp, 0);
    return rt_done();
}
