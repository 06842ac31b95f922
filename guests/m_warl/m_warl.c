/* m_warl: two M-mode WARL rules, written from M-mode and read back.
 *
 * Spec (Priv. 20240411):
 *  - 3.1.8 medeleg: "For exceptions that cannot occur in less privileged modes, the corresponding medeleg
 *    bits should be read-only zero. In particular, medeleg[11] is read-only zero."  (Cause 11 is the
 *    environment call from M-mode, which a trap never delegates: "Traps never transition from a
 *    more-privileged mode to a less-privileged mode.")  Probes 1-2 write all ones and bit 11 alone;
 *    bit 11 must read 0.
 *  - 3.1.6.1 mstatus: "xPP fields are WARL fields that can hold only privilege mode x and any implemented
 *    privilege mode lower than x" and "M-mode software can determine whether a privilege mode is
 *    implemented by writing that mode to MPP then reading it back"; encoding 2 is reserved (1.2,
 *    "Privilege levels": 10 Reserved).  Probes 3-5 write MPP = 2 over each legal MPP (0 U, 1 S, 3 M);
 *    MPP must read back a legal mode, never 2.
 * Each probe prints what it wrote, what the field held before and what it reads after. */
#include "difftest.h"

DIFFTEST_MODES(HGATP_BARE, VS_BARE);

#define MPP_SHIFT 11

static unsigned id = 1;

/* The probe's P line (wrote/held/read) and its X line: `good` is the spec's rule. */
static void report(const char *what, u64 wrote, u64 held, u64 read, int good, const char *rule)
{
    rt_probes++;
    rt_probe_mark(RT_MARK_PRINT(id));
    rt_puts("P "); rt_dec(id); rt_puts(" "); rt_puts(what); rt_puts(" wrote="); rt_hex(wrote);
    rt_puts(" held="); rt_hex(held); rt_puts(" read="); rt_hex(read); rt_putc('\n');
    rt_xline_begin(id, good);
    rt_puts(rule); rt_puts(" got read="); rt_hex(read);
    rt_xline_end(id);
    id++;
}

static void medeleg_probe(u64 w)
{
    rt_probe_mark(RT_MARK_START(id));
    csr_write(medeleg, 0);
    u64 held = csr_read(medeleg);
    csr_write(medeleg, w);
    u64 r = csr_read(medeleg);
    csr_write(medeleg, 0);
    report("medeleg", w, held, r, !((r >> 11) & 1), "medeleg[11] read-only zero (Priv. 3.1.8)");
}

static void mpp_probe(u64 from)
{
    const u64 saved = csr_read(mstatus);
    rt_probe_mark(RT_MARK_START(id));
    csr_write(mstatus, (saved & ~MSTATUS_MPP) | (from << MPP_SHIFT));
    u64 held = (csr_read(mstatus) & MSTATUS_MPP) >> MPP_SHIFT;
    csr_write(mstatus, (saved & ~MSTATUS_MPP) | (2ull << MPP_SHIFT));
    u64 r = (csr_read(mstatus) & MSTATUS_MPP) >> MPP_SHIFT;
    csr_write(mstatus, saved);
    report("mstatus.MPP", 2, held, r, r != 2, "MPP a legal mode (0, 1, 3), never reserved 2 (Priv. 3.1.6.1)");
}

int main(void)
{
    rt_banner("m_warl");
    medeleg_probe(~0ull);
    medeleg_probe(1ull << 11);
    mpp_probe(0);
    mpp_probe(1);
    mpp_probe(3);
    return rt_done();
}
