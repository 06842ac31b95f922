/* hgatp_probe: the KVM-style hgatp MODE probe run by `difftest modes` (ARCHITECTURE section 3).
 *
 * Priv. 20240411, 21.2.10 (hgatp): MODE is WARL; writing an unsupported MODE has no effect on the whole
 * register; VMID is WARL with VMIDLEN implemented bits (read back to find it); in Sv39x4/Sv48x4/Sv57x4
 * the root is 16 KiB aligned, so PPN[1:0] always read as zero.  Only MODE 0, 8, 9, 10 are written here
 * (QEMU 7.2 aborts on a reserved value: that is guest hgatp_reserved).
 * Then, in the top supported mode, 4 KiB, 2 MiB and 1 GiB G-stage leaves are built the way KVM's
 * G-stage code does (non-leaf = V only, leaf = V|R|W|X|U|A|D, VMID 1) and read from VS-mode. */
#include "difftest.h"

DIFFTEST_MODES(HGATP_BARE, VS_BARE);

static volatile u64 tgt[512] __attribute__((aligned(4096), section(".data.page")));
static unsigned id = 1;

static u64 write_read(u64 v) { csr_write(hgatp, v); return csr_read(hgatp); }
static void pline(const char *what, u64 wrote, u64 read)
{
    rt_probes++;
    rt_puts("P "); rt_dec(id++); rt_putc(' '); rt_puts(what);
    rt_puts(" wrote="); rt_hex(wrote); rt_puts(" read="); rt_hex(read); rt_putc('\n');
}

int main(void)
{
    rt_banner("hgatp_probe");
    static const unsigned modes[4] = {0, 8, 9, 10};
    u64 supported = 0, v4 = 0;
    /* ascending, every mode, no early exit (the v4 bitmask form) */
    for (int i = 0; i < 4; i++) {
        csr_write(hgatp, 0);
        u64 w = (u64)modes[i] << 60, r = write_read(w);
        pline("hgatp-mode", w, r);
        if ((r >> 60) == modes[i]) {
            supported |= 1ull << modes[i];
            if (modes[i]) v4 |= 1ull << (modes[i] - 8);
        }
    }
    /* merged form: top-down 10, 9, 8, the first that sticks */
    unsigned merged = 0;
    for (int i = 3; i >= 1; i--) {
        csr_write(hgatp, 0);
        u64 w = (u64)modes[i] << 60, r = write_read(w);
        pline("hgatp-merged", w, r);
        if ((r >> 60) == modes[i]) { merged = modes[i]; break; }
    }
    /* VMID width: top supported mode with every VMID bit (57:44) set */
    unsigned top = merged;
    csr_write(hgatp, 0);
    u64 w = ((u64)top << 60) | (0x3fffull << 44), r = write_read(w);
    pline("hgatp-vmid", w, r);
    unsigned vmidlen = 0;   /* VMIDLEN: the implemented VMID bits are the low ones (21.2.10) */
    for (u64 v = (r >> 44) & 0x3fff; v & 1; v >>= 1) vmidlen++;
    if (top) {
        /* PPN[1:0] read as zero in the x4 modes.  Divergence, both QEMU 7.2 and 10.0 (re-verified
         * 2026-11-25): they read back PPN[1:0] = 3 as written.  Decided by Priv. 20240411, 21.2.10 (hgatp):
         * "In these modes, the lowest two bits of the physical page number (PPN) in hgatp always read as
         * zeros." */
        csr_write(hgatp, 0);
        w = ((u64)top << 60) | 0x80003ull;
        r = write_read(w);
        pline("hgatp-ppn-low-bits", w, r);
        rt_check(!(r & 3), "hgatp PPN[1:0] must read as zero in Sv39x4/Sv48x4/Sv57x4 (Priv. 21.2.10)");
    }
    csr_write(hgatp, 0);
    hfence_gvma_all();
    rt_puts("HGATP supported="); rt_hex(supported); rt_puts(" v4="); rt_hex(v4);
    rt_puts(" merged="); rt_dec(merged); rt_puts(" vmidlen="); rt_dec(vmidlen); rt_putc('\n');
    rt_check(supported & 1, "hgatp MODE Bare must always be supported");

    if (top) {
        for (unsigned i = 0; i < 512; i++) tgt[i] = 0x2222000000000000ull | i;
        struct pt g;
        pt_init(&g, 1, top);
        u64 tpa = (u64)tgt;
        pt_map(&g, 0x80000000ull, 0x80000000ull, 2, G_LEAF);          /* guest RAM (the stubs) */
        pt_map(&g, 0x100000000ull, tpa, 0, G_LEAF);                    /* 4 KiB */
        pt_map(&g, 0x140000000ull, 0x80000000ull, 1, G_LEAF);          /* 2 MiB */
        pt_map(&g, 0x200000000ull, 0x80000000ull, 2, G_LEAF);          /* 1 GiB */
        csr_write(hgatp, pt_atp(&g, vmidlen ? 1 : 0));
        hfence_gvma_all();
        probe(100, "kvm-4k", A_LD, VS_MODE, 0x100000000ull + 8, 0, expect_ok(tgt[1]));
        probe(101, "kvm-2m", A_LD, VS_MODE, 0x140000000ull + (tpa & 0x1fffff) + 16, 0, expect_ok(tgt[2]));
        probe(102, "kvm-1g", A_LD, VS_MODE, 0x200000000ull + (tpa - 0x80000000ull) + 24, 0, expect_ok(tgt[3]));
        csr_write(hgatp, 0);
        hfence_gvma_all();
    }
    return rt_done();
}
