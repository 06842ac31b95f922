/* sbi_payload: an S-mode payload for OpenSBI fw_jump (guests/firmware/README.md).
 *
 * Through the SBI (SBI spec v1.0): the console (legacy putchar, EID 0x01 -- OpenSBI 1.1 predates
 * DBCN), the spec version (Base EID 0x10, FID 0), and at the end System Reset (SRST, EID
 * 0x53525354: shutdown, reason "no reason" on pass, "system failure" on fail), which OpenSBI's
 * generic platform turns into a write to QEMU virt's sifive_test finisher.  In between, for every
 * hgatp MODE (Bare, Sv39x4, Sv48x4, Sv57x4; H chapter "Hypervisor Guest Address Translation and
 * Protection Register"): a G-stage map with two 1 GiB windows onto the same host RAM, and a VS
 * guest that stores through one window, loads through the other, makes an SBI call and stops. */
typedef unsigned long u64;

extern long run_vs(u64 entry, u64 arg);
extern void vs_guest(void);
extern volatile u64 vs_data[2];

struct sbiret { long error; long value; };

static struct sbiret sbi_call(long eid, long fid, u64 a0, u64 a1)
{
    register u64 r0 asm("a0") = a0, r1 asm("a1") = a1;
    register long r6 asm("a6") = fid, r7 asm("a7") = eid;
    asm volatile("ecall" : "+r"(r0), "+r"(r1) : "r"(r6), "r"(r7) : "memory");
    return (struct sbiret){(long)r0, (long)r1};
}

static void putc_(char c) { sbi_call(0x01, 0, (u64)(unsigned char)c, 0); }
static void puts_(const char *s) { while (*s) putc_(*s++); }

static void hex(u64 v)
{
    puts_("0x");
    for (int i = 60; i >= 0; i -= 4)
        putc_("0123456789abcdef"[(v >> i) & 15]);
}

#define CSR_HGATP 0x680
#define csr_read(n) ({ u64 v_; asm volatile("csrr %0, %1" : "=r"(v_) : "i"(n)); v_; })
#define csr_write(n, v) asm volatile("csrw %0, %1" :: "i"(n), "r"((u64)(v)) : "memory")
/* HFENCE.GVMA zero, zero */
#define hfence_gvma() asm volatile(".insn r 0x73, 0, 0x31, x0, x0, x0" ::: "memory")

#define PTE_V 1ul
#define PTE_RWXUAD (0x2ul | 0x4ul | 0x8ul | 0x10ul | 0x40ul | 0x80ul)  /* R W X U A D: a G-stage leaf has U */
#define GIB (1ul << 30)
#define RAM 0x80000000ul
#define WINDOW 0xC0000000ul         /* a second GPA window onto RAM */

/* G-stage tables: the root of an x4 mode is 16 KiB (2048 entries) and 16 KiB aligned. */
static u64 root[2048] __attribute__((aligned(16384)));
static u64 l1[512] __attribute__((aligned(4096)));
static u64 l2[512] __attribute__((aligned(4096)));

static u64 table(u64 *t) { return (((u64)t >> 12) << 10) | PTE_V; }
static u64 giga_leaf(u64 pa) { return ((pa >> 12) << 10) | PTE_RWXUAD | PTE_V; }

/* GPA RAM and WINDOW -> SPA RAM as 1 GiB leaves; levels above them point down the page tables. */
static u64 *gib_level(int mode)
{
    for (int i = 0; i < 2048; i++) root[i] = 0;
    for (int i = 0; i < 512; i++) l1[i] = l2[i] = 0;
    if (mode == 8) return root;                /* Sv39x4: root index = GPA[40:30] */
    root[0] = table(l1);                        /* GPA[49:39] (Sv48x4) or GPA[58:48] (Sv57x4) = 0 */
    if (mode == 9) return l1;
    l1[0] = table(l2);                          /* Sv57x4: GPA[47:39] = 0 */
    return l2;
}

static int one_mode(int mode, const char *name)
{
    u64 off = 0;
    puts_("hgatp ");
    puts_(name);
    puts_(": ");
    if (mode) {
        u64 *t = gib_level(mode);
        t[RAM / GIB] = giga_leaf(RAM);
        t[WINDOW / GIB] = giga_leaf(RAM);
        u64 want = ((u64)mode << 60) | ((u64)root >> 12);
        csr_write(CSR_HGATP, want);
        if (csr_read(CSR_HGATP) != want) {      /* WARL: a mode the hart lacks does not stick */
            csr_write(CSR_HGATP, 0);
            puts_("not supported\n");
            return 0;
        }
        off = WINDOW - RAM;
    } else {
        csr_write(CSR_HGATP, 0);
    }
    hfence_gvma();
    vs_data[0] = vs_data[1] = 0;
    long r = run_vs((u64)vs_guest, off);
    csr_write(CSR_HGATP, 0);
    hfence_gvma();
    if (r == 1 && vs_data[0] == 0x1234567890abcdeful) {
        puts_(" ok\n");
        return 0;
    }
    puts_(" FAIL ");
    hex((u64)r);
    putc_('\n');
    return 1;
}

int main(u64 hartid, u64 fdt)
{
    puts_("sbi_payload: hart ");
    hex(hartid);
    puts_(" fdt ");
    hex(fdt);
    struct sbiret v = sbi_call(0x10, 0, 0, 0);  /* sbi_get_spec_version */
    puts_("\nSBI spec version ");
    hex((u64)v.value);
    putc_('\n');
    int bad = v.error != 0;
    bad += one_mode(0, "bare");
    bad += one_mode(8, "sv39x4");
    bad += one_mode(9, "sv48x4");
    bad += one_mode(10, "sv57x4");
    puts_(bad ? "sbi_payload: FAIL\n" : "sbi_payload: PASS\n");
    sbi_call(0x53525354, 0, 0, bad ? 1 : 0);    /* SRST: shutdown, reason none / system failure */
    for (;;)
        ;
}
