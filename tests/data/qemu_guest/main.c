/* G-stage tables for the QEMU backend tests' guest (Priv. 20240411, 9.5.1 Guest physical
 * address translation: the root table is 16 KiB, leaves must have U=1). */
typedef unsigned long uint64_t;
extern void vs_entry(void), m_trap(void);
static uint64_t pt[5][2048] __attribute__((aligned(16384)));
#define W(csr, v) asm volatile("csrw " #csr ", %0" :: "r"((uint64_t)(v)))
#define LEAF(pa) ((((uint64_t)(pa)) >> 12) << 10 | 0xdf)   /* V R W X U A D */
#define PTR(p) ((((uint64_t)(p)) >> 12) << 10 | 1)
void main(void)
{
    W(pmpaddr0, -1UL);
    W(pmpcfg0, 0x1f);                       /* NAPOT, RWX: QEMU 7.2 needs a PMP entry for mret */
    W(mtvec, m_trap);
    uint64_t mode = HGATP_MODE;
    if (mode >= 8) {
        int levels = mode - 5;                /* Sv39x4 3, Sv48x4 4, Sv57x4 5 */
        uint64_t *t = pt[0];
        for (int l = levels - 1; l > 2; l--) { t[0] = PTR(pt[levels - l]); t = pt[levels - l]; }
        t[2] = LEAF(0x80000000UL);            /* GPA 0x80000000 -> SPA 0x80000000 */
        t[3] = LEAF(0x80000000UL);            /* GPA 0xC0000000 -> SPA 0x80000000 (alias) */
    }
    /* hgatp; -DHGATP_MODE=1 writes a reserved MODE (the tests' QEMU 7.2 abort case) */
    if (mode)
        asm volatile("csrw 0x680, %0" :: "r"((mode << 60) | (((uint64_t)pt[0]) >> 12)));
    uint64_t ms;
    asm volatile("csrr %0, mstatus" : "=r"(ms));
    ms = (ms & ~(3UL << 11)) | (1UL << 11) | (1UL << 39);     /* MPP=S, MPV=1: mret enters VS */
    W(mstatus, ms);
    W(mepc, vs_entry);
    asm volatile("mret");
}
