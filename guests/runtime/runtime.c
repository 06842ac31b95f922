/* Runtime: start-up help, console, exit, the page pool and page-table builder. */
#include "difftest.h"

/* Probe selection (ARCHITECTURE section 2a): all ones = every probe runs. */
#define ONES 0xffffffffffffffffull
#define ONES8 ONES, ONES, ONES, ONES, ONES, ONES, ONES, ONES
__attribute__((section(".difftest_config"), used, aligned(8)))
volatile u64 difftest_probe_select[64] = { ONES8, ONES8, ONES8, ONES8, ONES8, ONES8, ONES8, ONES8 };

#define UART ((volatile unsigned char *)0x10000000ull)
#define FINISHER ((volatile u32 *)0x100000ull)

void *memset(void *d, int c, unsigned long n)
{
    unsigned char *p = d;
    if (((unsigned long)p & 7) == 0 && (n & 7) == 0 && c == 0) {
        for (unsigned long i = 0; i < n / 8; i++) ((volatile u64 *)p)[i] = 0;
        return d;
    }
    while (n--) *p++ = (unsigned char)c;
    return d;
}
void *memcpy(void *d, const void *s, unsigned long n)
{
    unsigned char *a = d; const unsigned char *b = s;
    while (n--) *a++ = *b++;
    return d;
}

/* Console.  Where a byte goes is data, not control flow: rt_out is the UART's transmit register or
 * a sink, chosen without a branch (rt_sel).  Printing a value -- or a self-check's X line, which
 * probe.c prints to the sink when the check passed -- then runs the same instructions whatever the
 * value, so two backends that differ only in a value keep running in lock-step and the harness
 * compares every step; the bytes themselves are compared as console text (docs/ARCHITECTURE.md 3). */
static volatile unsigned char rt_sink;
volatile unsigned char *rt_out = UART;
volatile unsigned char *rt_sel(u64 to_uart)
{
    u64 m = -(u64)(to_uart != 0);
    return (volatile unsigned char *)(((u64)UART & m) | ((u64)&rt_sink & ~m));
}
/* No LSR.THRE poll: QEMU virt's 16550 and the model's take a byte at any time, and the console is
 * most of what a guest runs (every probe prints its line and its X line, to the UART or the sink). */
void rt_putc(char c) { *rt_out = (unsigned char)c; }
void rt_puts(const char *s)
{
    volatile unsigned char *o = rt_out;
    for (char c; (c = *s++); ) *o = (unsigned char)c;
}
void rt_hex(u64 v)
{
    /* 0x and the digits from the first nonzero one: all 16 digits are "printed", the leading zeros
     * to the sink, so the instructions run do not depend on v (digit i goes where rt_out points once
     * v >> 4i is nonzero: the destination is sink ^ ((sink ^ rt_out) & mask)) */
    static const char hex[] = "0123456789abcdef";
    volatile unsigned char *keep = rt_out;
    u64 sink = (u64)&rt_sink, x = (u64)keep ^ sink;
    *keep = '0'; *keep = 'x';
    for (int i = 60; i > 0; i -= 4) {
        u64 t = v >> i;
        *(volatile unsigned char *)(sink ^ (x & -(u64)(t != 0))) = (unsigned char)hex[t & 15];
    }
    *keep = (unsigned char)hex[v & 15];
}
void rt_dec(u64 v)
{
    if (v >= 10000) {               /* large values (counts) vary only with the run's length */
        char b[24]; int n = 0;
        do { b[n++] = (char)('0' + v % 10); v /= 10; } while (v);
        while (n) rt_putc(b[--n]);
        return;
    }
    /* below 10000 (ids, causes, bits, fail counts): four positions, leading zeros to the sink */
    volatile unsigned char *keep = rt_out;
    u64 sink = (u64)&rt_sink, x = (u64)keep ^ sink;
    for (u64 p = 1000; p > 1; p /= 10)
        *(volatile unsigned char *)(sink ^ (x & -(u64)(v >= p))) = (unsigned char)('0' + (v / p) % 10);
    *keep = (unsigned char)('0' + v % 10);
}
static const char *hg_name(unsigned m) { return m == 0 ? "bare" : m == 8 ? "sv39x4" : m == 9 ? "sv48x4" : m == 10 ? "sv57x4" : "?"; }
static const char *vs_name(unsigned m) { return m == 0 ? "bare" : m == 8 ? "sv39" : m == 9 ? "sv48" : m == 10 ? "sv57" : "?"; }
void rt_banner(const char *name)
{
    rt_puts("guest "); rt_puts(name);
    rt_puts(" hgatp="); rt_puts(hg_name(rt_hgatp_mode()));
    rt_puts(" vs="); rt_puts(vs_name(rt_vs_mode()));
    rt_putc('\n');
}
void rt_exit(unsigned code)
{
    /* sifive_test finisher: 0x5555 = pass, (code << 16) | 0x3333 = fail with exit status code */
    *FINISHER = code ? ((code << 16) | 0x3333u) : 0x5555u;
    for (;;) { }
}
void rt_exit_main(int rc) { rt_exit((unsigned)rc); }

void rt_unexpected_trap(void)
{
    rt_puts("X unexpected trap in M mode cause="); rt_hex(csr_read(mcause));
    rt_puts(" epc="); rt_hex(csr_read(mepc));
    rt_puts(" tval="); rt_hex(csr_read(mtval));
    rt_putc('\n');
    rt_exit(3);
}

void rt_init(void)
{
    /* Priv. 3.7: with PMP implemented, S/U accesses fail unless an entry matches; one NAPOT
     * entry over the whole address space with RWX lets lower modes run (QEMU 7.2 insists). */
    csr_write(pmpaddr0, ~0ull >> 10);
    csr_write(pmpcfg0, 0x1f);          /* A=NAPOT, R, W, X */
    csr_write(medeleg, 0);
    csr_write(mideleg, 0);
    csr_write(hedeleg, 0);
    csr_write(hideleg, 0);
    csr_write(satp, 0);
    csr_write(vsatp, 0);
    csr_write(hgatp, 0);
    csr_write(hstatus, HSTATUS_SPVP);
    extern char rt_hs_trap[], rt_vs_trap[];
    csr_write(stvec, (u64)rt_hs_trap);
    csr_write(vstvec, (u64)rt_vs_trap);
}

/* ---- page pool ---- */
extern char __pool_start[], __pool_end[];
static u64 pool_next;
void *rt_page_alloc(unsigned pages, unsigned align_pages)
{
    if (!pool_next) pool_next = (u64)__pool_start;
    u64 a = align_pages * 4096ull;
    u64 p = (pool_next + a - 1) & ~(a - 1);
    if (p + pages * 4096ull > (u64)__pool_end) { rt_puts("X page pool exhausted\n"); rt_exit(4); }
    pool_next = p + pages * 4096ull;
    memset((void *)p, 0, pages * 4096ul);
    return (void *)p;
}

void pt_init(struct pt *pt, int gstage, unsigned mode)
{
    pt->mode = mode;
    pt->gstage = gstage;
    pt->top = mode == 8 ? 2 : mode == 9 ? 3 : mode == 10 ? 4 : -1;
    pt->root = 0;
    if (pt->top >= 0)
        pt->root = gstage ? (u64)rt_page_alloc(4, 4) : (u64)rt_page_alloc(1, 1);
}

volatile u64 *pt_slot(struct pt *pt, u64 va, int level)
{
    u64 table = pt->root;
    for (int l = pt->top; ; l--) {
        /* the G-stage root is indexed by GPA bits [top*9+12+10 : top*9+12] (2 extra bits) */
        u64 mask = (pt->gstage && l == pt->top) ? 0x7ff : 0x1ff;
        u64 idx = (va >> (12 + 9 * l)) & mask;
        volatile u64 *slot = (volatile u64 *)(table + idx * 8);
        if (l == level) return slot;
        u64 pte = *slot;
        if (!(pte & PTE_V) || (pte & PTE_RWX)) {
            u64 next = (u64)rt_page_alloc(1, 1);
            *slot = ((next >> 12) << 10) | PTE_V;
            pte = *slot;
        }
        table = ((pte >> 10) & ((1ull << 44) - 1)) << 12;
    }
}

void pt_map(struct pt *pt, u64 va, u64 pa, int level, u64 flags)
{
    *pt_slot(pt, va, level) = ((pa >> 12) << 10) | flags;
}

void rt_gstage_identity(struct pt *g)
{
    pt_init(g, 1, rt_hgatp_mode());
    if (g->top >= 0)
        pt_map(g, 0x80000000ull, 0x80000000ull, 2, G_LEAF);
    csr_write(hgatp, pt_atp(g, 0));
    hfence_gvma_all();
}

void rt_vsstage_identity(struct pt *vs)
{
    pt_init(vs, 0, rt_vs_mode());
    if (vs->top >= 0)
        pt_map(vs, 0x80000000ull, 0x80000000ull, 2, VS_LEAF);
    csr_write(vsatp, pt_atp(vs, 0));
    hfence_vvma_all();
}

void rt_vs_stubs_user(struct pt *vs, int user)
{
    extern char rt_stubs_start[], rt_fetch_target[];
    static u64 split_root;
    if (!vs->mode) return;
    const u64 base = 0x80000000ull, stubs = (u64)rt_stubs_start & ~0xfffull, end = (u64)rt_fetch_target;
    if (split_root != vs->root) {
        /* 1 GiB leaf -> a table of 512 x 2 MiB leaves; the 2 MiB holding the stubs -> 512 x 4 KiB leaves.
         * The tables are filled directly (not with pt_map) to keep the model's step count low. */
        volatile u64 *s1g = pt_slot(vs, base, 2);
        u64 flags = *s1g & 0x3ffull, big = stubs & ~0x1fffffull;
        volatile u64 *l1 = rt_page_alloc(1, 1), *l0 = rt_page_alloc(1, 1);
        for (u64 i = 0; i < 512; i++) {
            l1[i] = (((base + (i << 21)) >> 12) << 10) | flags;
            l0[i] = (((big + (i << 12)) >> 12) << 10) | flags;
        }
        l1[(big - base) >> 21] = (((u64)l0 >> 12) << 10) | PTE_V;
        *s1g = (((u64)l1 >> 12) << 10) | PTE_V;
        split_root = vs->root;
    }
    for (u64 p = stubs; p < end; p += 4096) {
        volatile u64 *s = pt_slot(vs, p, 0);
        *s = user ? (*s | PTE_U) : (*s & ~PTE_U);
    }
    hfence_vvma_all();
}
