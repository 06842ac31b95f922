/* fuzz_interp: performs the two-stage translation scenarios `difftest fuzz` patches into a copy of this
 * ELF (difftest/fuzz/block.py writes the block, docs/FUZZ.md describes it).  No scenario is compiled in:
 * the harness generates them (Hypothesis), the data block carries them, this guest builds the page tables
 * and CSR context each one describes and performs its operations, one probe per access, so the comparator
 * re-synchronises and reports per operation.  There are no expectations here: the oracle is the
 * comparison with the model (its stale-TLB and A/D rules decide what two backends may legally differ in).
 *
 * Block (symbol fz_block, u64 words): [0] magic "HGFZ" | version << 32, [1] payload words, [2] checksum
 * (h = rotl(h, 7) ^ w over the payload), then records; each starts with a word whose low byte is the kind.
 * Unpatched (payload 0) it runs nothing and passes.  Exit 2 = the block is malformed. */
#include "difftest.h"

DIFFTEST_MODES(HGATP_ALL, VS_ALL);

#define FZ_MAGIC 0x5a464748ull        /* "HGFZ" little-endian */
#define FZ_VERSION 1ull
#define FZ_WORDS 16384
#define FZ_DATA_PAGES 16
#define FZ_ARENA_PAGES 384
#define FZ_LOG 4096

/* In .data (loaded from the ELF, not zeroed by start-up code), so the harness patches a copy of the file
 * and a big table area costs no steps. */
__attribute__((section(".data.fuzz"), aligned(8))) volatile u64 fz_block[FZ_WORDS] = { FZ_MAGIC | (FZ_VERSION << 32) };
/* The data pages every mapping leads to sit at a fixed address in guest RAM beyond the image (QEMU and the
 * model both start with zeroed RAM), so a saved scenario's addresses survive any rebuild of this guest. */
#define FZ_DATA 0x86000000ull
#define fz_data ((volatile u64 (*)[512])FZ_DATA)
__attribute__((section(".data.fuzz"), aligned(16384))) volatile u64 fz_arena[FZ_ARENA_PAGES][512] = { { 0 } };

enum { R_SCEN = 1, R_CSR = 2, R_MAP = 3, R_OR = 4, R_RELOC = 5, R_GO = 6, R_ACCESS = 7, R_ATP = 8, R_END = 9,
       R_FENCE = 10 };
enum { C_MSTATUS, C_VSSTATUS, C_HSTATUS, C_HENVCFG, C_MENVCFG, C_MEDELEG, C_HEDELEG };

/* ---- page-table pages: an arena whose per-scenario part is reset, every PTE write logged and undone ---- */
static unsigned arena_next, arena_mark;
/* in .data, not .bss: start-up zeroes .bss a word at a time, and these 64 KiB cost 33k steps a run */
__attribute__((section(".data.fuzz"))) static volatile u64 *log_slot[FZ_LOG] = { 0 };
__attribute__((section(".data.fuzz"))) static u64 log_old[FZ_LOG] = { 1 };
static unsigned log_n;

static void bad(const char *why)
{
    rt_puts("X fuzz block: "); rt_puts(why); rt_putc('\n');
    rt_exit(2);
}

static u64 alloc_pages(unsigned n, unsigned align)
{
    unsigned p = (arena_next + align - 1) & ~(align - 1);
    if (p + n > FZ_ARENA_PAGES) bad("page arena exhausted");
    arena_next = p + n;
    return (u64)fz_arena[p];      /* zero: fresh at load, and every scenario's writes are undone */
}

static void wr(volatile u64 *s, u64 v, int logged)
{
    if (logged) {
        if (log_n >= FZ_LOG) bad("PTE log full");
        log_slot[log_n] = s; log_old[log_n] = *s; log_n++;
    }
    *s = v;
}

struct tab { u64 root; unsigned mode; int top; int gstage; };
static struct tab gt[3], vt[3];          /* per x4 mode / per VS mode 8, 9, 10 */
static unsigned g_ok[3], v_ok[3];
static volatile u64 *stub_slot[3][8];    /* VS leaves of the runtime's stub pages, per VS mode */
static u64 stub_va[8];
static unsigned n_stub;
static int stubs_user[3];

static int in_arena(u64 pa) { return pa >= (u64)fz_arena && pa < (u64)fz_arena + sizeof fz_arena; }

/* the PTE slot for va at `level`, creating tables on the way; a pointer that leads outside the arena (a
 * table relocated to a GPA, an invalid or leaf entry) is replaced by a fresh table */
static volatile u64 *slot(struct tab *t, u64 va, int level, int logged)
{
    u64 table = t->root;
    for (int l = t->top; ; l--) {
        u64 mask = (t->gstage && l == t->top) ? 0x7ff : 0x1ff;
        volatile u64 *s = (volatile u64 *)(table + ((va >> (12 + 9 * l)) & mask) * 8);
        if (l == level) return s;
        u64 pte = *s, next = ((pte >> 10) & ((1ull << 44) - 1)) << 12;
        if (!(pte & PTE_V) || (pte & PTE_RWX) || !in_arena(next)) {
            next = alloc_pages(1, 1);
            wr(s, PTE_PTR(next), logged);
        }
        table = next;
    }
}

static void tab_init(struct tab *t, int gstage, unsigned mode)
{
    t->mode = mode; t->gstage = gstage; t->top = (int)mode - 6;
    t->root = gstage ? alloc_pages(4, 4) : alloc_pages(1, 1);
}

static inline void hfence_vvma_va_all_asids(u64 va) { __asm__ volatile(".insn r 0x73, 0, 0x11, x0, %0, x0" :: "r"(va) : "memory"); }
static inline void sfence_all(void) { __asm__ volatile("sfence.vma x0, x0" ::: "memory"); }

/* Persistent tables: per x4 mode a G root with guest RAM identity-mapped (1 GiB leaf); per VS mode a VS
 * root with guest RAM identity-mapped as 2 MiB leaves, the 2 MiB of the runtime's stubs as 4 KiB leaves,
 * so VU probes can get U=1 stub pages while VS still executes its trap handler (Priv. 10.3.1). */
static void build_persistent(void)
{
    extern char rt_stubs_start[], rt_fetch_target[];
    const u64 ram = 0x80000000ull, stubs = (u64)rt_stubs_start & ~0xfffull, big = stubs & ~0x1fffffull;
    for (unsigned m = 0; m < 3; m++) {
        csr_write(hgatp, (u64)(8 + m) << 60);
        g_ok[m] = (csr_read(hgatp) >> 60) == 8 + m;
        if (g_ok[m]) {
            tab_init(&gt[m], 1, 8 + m);
            wr(slot(&gt[m], ram, 2, 0), ((ram >> 12) << 10) | G_LEAF, 0);
        }
        csr_write(vsatp, (u64)(8 + m) << 60);
        v_ok[m] = (csr_read(vsatp) >> 60) == 8 + m;
        if (v_ok[m]) {
            tab_init(&vt[m], 0, 8 + m);
            volatile u64 *l1 = (volatile u64 *)alloc_pages(1, 1), *l0 = (volatile u64 *)alloc_pages(1, 1);
            /* guest RAM is 128 MiB: 64 leaves of 2 MiB (every step here is paid by every batch) */
            for (u64 i = 0, pte = ((ram >> 12) << 10) | VS_LEAF; i < 64; i++, pte += 0x200ull << 10) l1[i] = pte;
            for (u64 i = 0, pte = ((big >> 12) << 10) | VS_LEAF; i < 512; i++, pte += 1ull << 10) l0[i] = pte;
            l1[(big - ram) >> 21] = PTE_PTR((u64)l0);
            wr(slot(&vt[m], ram, 2, 0), PTE_PTR((u64)l1), 0);
            n_stub = 0;
            for (u64 p = stubs; p < (u64)rt_fetch_target && n_stub < 8; p += 4096) {
                stub_va[n_stub] = p;
                stub_slot[m][n_stub++] = &l0[(p - big) >> 12];
            }
        }
    }
    csr_write(hgatp, 0);
    csr_write(vsatp, 0);
    arena_mark = arena_next;
}

static void stubs_for(unsigned vsm, int user)
{
    if (vsm < 8 || stubs_user[vsm - 8] == user) return;
    stubs_user[vsm - 8] = user;
    for (unsigned i = 0; i < n_stub; i++) {
        volatile u64 *s = stub_slot[vsm - 8][i];
        *s = user ? (*s | PTE_U) : (*s & ~PTE_U);
        /* by address, these pages only: the scenario's own unfenced stores stay unfenced */
        hfence_vvma_va_all_asids(stub_va[i]);
    }
}

/* ---- the scenario's context ---- */
static unsigned cur_g, cur_v;             /* hgatp / vsatp MODE in use (0, 8, 9, 10) */
static u64 menvcfg0, henvcfg0;
static const u64 data_tag = 0x5a00000000000000ull;

static u64 atp(struct tab *tabs, unsigned mode, u64 id, unsigned *ok)
{
    if (mode < 8 || mode > 10 || !ok[mode - 8]) return 0;
    return ((u64)mode << 60) | (id << 44) | (tabs[mode - 8].root >> 12);
}

static void csr_apply(unsigned which, u64 set, u64 clear)
{
    switch (which) {
    case C_MSTATUS: csr_clear(mstatus, clear); csr_set(mstatus, set); break;
    case C_VSSTATUS: csr_clear(vsstatus, clear); csr_set(vsstatus, set); break;
    case C_HSTATUS: csr_clear(hstatus, clear); csr_set(hstatus, set); break;
    case C_HENVCFG: csr_clear(0x60a, clear); csr_set(0x60a, set); break;
    case C_MENVCFG: csr_clear(0x30a, clear); csr_set(0x30a, set); break;
    case C_MEDELEG: csr_clear(medeleg, clear); csr_set(medeleg, set); break;
    case C_HEDELEG: csr_clear(hedeleg, clear); csr_set(hedeleg, set); break;
    default: bad("unknown CSR");
    }
}

static void scenario_reset(void)
{
    /* undo every PTE write of the scenario, newest first, so the tables are as the build left them */
    while (log_n) { log_n--; *log_slot[log_n] = log_old[log_n]; }
    arena_next = arena_mark;
    csr_write(hgatp, 0);
    csr_write(vsatp, 0);
    csr_clear(mstatus, MSTATUS_MXR | MSTATUS_SUM | MSTATUS_MPRV);
    csr_clear(vsstatus, MSTATUS_MXR | MSTATUS_SUM);
    csr_write(hstatus, HSTATUS_SPVP);
    csr_write(0x30a, menvcfg0);
    csr_write(0x60a, henvcfg0);
    csr_write(medeleg, 0);
    csr_write(hedeleg, 0);
    rt_probe_mstatus_extra = 0;
    for (unsigned m = 8; m <= 10; m++) stubs_for(m, 0);
}

/* every translation any earlier scenario may have cached is gone: all VMIDs the fuzzer uses (0..3)
 * and all ASIDs at the VS stage, all of the G stage, all of satp's (H "Hypervisor Memory-Management
 * Fence Instructions") -- so an unfenced rewrite is stale only within its own scenario */
static void fence_everything(u64 hg)
{
    for (u64 vmid = 0; vmid < 4; vmid++) {
        csr_write(hgatp, (hg & ~(0x3fffull << 44)) | (vmid << 44));
        hfence_vvma_all();
    }
    csr_write(hgatp, hg);
    hfence_gvma_all();
    sfence_all();
}

/* all 16 digits, no leading-zero suppression: half the steps of rt_hex, and printing is a third of a
 * batch's steps; the same instructions whatever the value, like rt_hex */
static void fz_hex(u64 v)
{
    static const char hex[] = "0123456789abcdef";
    volatile unsigned char *o = rt_out;
    *o = '0'; *o = 'x';
    for (int i = 60; i >= 0; i -= 4) *o = (unsigned char)hex[(v >> i) & 15];
}

static void print_outcome(unsigned id, const struct outcome *o, u64 show_val)
{
    /* both forms are printed, the one that does not apply to the sink: the same instructions run
     * whatever the outcome (docs/ARCHITECTURE.md 2b) */
    static const char to[] = "MHV";
    u64 t = (u64)o->trapped;
    rt_probe_mark(RT_MARK_PRINT(id));
    rt_puts("P "); rt_dec(id);
    rt_out = rt_sel(!t);
    rt_puts(" ok v="); fz_hex(o->val & -show_val);
    rt_out = rt_sel(t);
    rt_puts(" trap cause="); rt_dec(o->cause);
    rt_puts(" tval="); fz_hex(o->tval);
    rt_puts(" htval="); fz_hex(o->tval2);
    rt_puts(" gva="); rt_dec((u64)o->gva);
    rt_puts(" to="); rt_putc(to[o->to]);
    rt_out = rt_sel(1);
    rt_putc('\n');
    rt_probe_mark(RT_MARK_END(id));
}

static unsigned probe_id;

int main(void)
{
    rt_banner("fuzz_interp");
    menvcfg0 = csr_read(0x30a);
    henvcfg0 = csr_read(0x60a);
    u64 n = fz_block[1], h = 0;
    if ((fz_block[0] & 0xffffffffull) != FZ_MAGIC) bad("magic");
    if ((fz_block[0] >> 32) != FZ_VERSION) bad("version");
    if (n > FZ_WORDS - 3) bad("length");
    for (u64 i = 0; i < n; i++) h = ((h << 7) | (h >> 57)) ^ fz_block[3 + i];
    if (h != fz_block[2]) bad("checksum");
    {   /* the fetch target's code at offset 0x800 of every data page; tags are written per scenario */
        extern char rt_fetch_target[];
        for (unsigned d = 0; d < FZ_DATA_PAGES; d++)
            for (unsigned k = 0; k < 5; k++)     /* lui, addiw, lui, addiw, ecall */
                ((volatile u32 *)fz_data[d])[0x200 + k] = ((volatile u32 *)rt_fetch_target)[k];
        __asm__ volatile("fence.i" ::: "memory");
    }
    build_persistent();
    volatile u64 *w = &fz_block[3], *end = &fz_block[3 + n];
    int in_scen = 0;
    while (w < end) {
        u64 r = w[0];
        unsigned kind = r & 0xff;
        switch (kind) {
        case R_SCEN:                  /* [kind | g mode << 8 | vs mode << 16 | vmid << 24 | asid << 40] */
            if (in_scen) scenario_reset();
            in_scen = 1;
            cur_g = (r >> 8) & 0xff; cur_v = (r >> 16) & 0xff;
            for (unsigned d = 0; d < FZ_DATA_PAGES; d++) {
                fz_data[d][0] = data_tag | ((u64)d << 32);
                fz_data[d][1] = data_tag | ((u64)d << 32) | 8;
                fz_data[d][2] = data_tag | ((u64)d << 32) | 0x10;
                fz_data[d][511] = data_tag | ((u64)d << 32) | 0xff8;
            }
            csr_write(hgatp, atp(gt, cur_g, (r >> 24) & 0x3fff, g_ok));
            csr_write(vsatp, atp(vt, cur_v, (r >> 40) & 0xffff, v_ok));
            w += 1;
            break;
        case R_CSR:                   /* [kind | which << 8] [set] [clear] */
            csr_apply((r >> 8) & 0xff, w[1], w[2]);
            w += 3;
            break;
        case R_MAP:                   /* [kind | stage << 8 | level << 16 | modes << 24] [va] [pte]: stage 0 G, 1 VS */
        case R_OR: {                  /* same, pte bits ORed into the slot (a non-leaf's A/D/U, reserved bits) */
            unsigned stage = (r >> 8) & 1, level = (r >> 16) & 7, modes = (r >> 24) & 7;
            for (unsigned m = 0; m < 3; m++) {
                struct tab *t = stage ? &vt[m] : &gt[m];
                if (!((modes >> m) & 1) || !(stage ? v_ok[m] : g_ok[m]) || (int)level > t->top) continue;
                volatile u64 *s = slot(t, w[1], (int)level, 1);
                wr(s, kind == R_OR ? (*s | w[2]) : w[2], 1);
            }
            w += 3;
            break;
        }
        case R_RELOC: {               /* [kind | level << 16 | vs modes << 24 | g modes << 32] [va] [table gpa]
                                         [leaf pte] [g leaf flags, 0 = the table's GPA is not mapped]:
                                         the VS table holding va's leaf at `level` lives at a GPA of its own */
            unsigned level = (r >> 16) & 7, vm = (r >> 24) & 7, gm = (r >> 32) & 7;
            for (unsigned m = 0; m < 3; m++) {
                if (!((vm >> m) & 1) || !v_ok[m] || (int)level >= vt[m].top) continue;
                u64 tpage = alloc_pages(1, 1);
                wr((volatile u64 *)(tpage + ((w[1] >> (12 + 9 * level)) & 0x1ff) * 8), w[3], 1);
                wr(slot(&vt[m], w[1], (int)level + 1, 1), PTE_PTR(w[2]), 1);
                for (unsigned g = 0; g < 3; g++)
                    if (w[4] && ((gm >> g) & 1) && g_ok[g])
                        wr(slot(&gt[g], w[2], 0, 1), ((tpage >> 12) << 10) | w[4], 1);
            }
            w += 5;
            break;
        }
        case R_GO:                    /* the scenario's tables are built: start from a clean TLB */
            fence_everything(csr_read(hgatp));
            w += 1;
            break;
        case R_ATP:                   /* [kind | 0 hgatp / 1 vsatp << 8 | mode << 16 | id << 24] */
            if ((r >> 8) & 1) { cur_v = (r >> 16) & 0xff; csr_write(vsatp, atp(vt, cur_v, (r >> 24) & 0xffff, v_ok)); }
            else { cur_g = (r >> 16) & 0xff; csr_write(hgatp, atp(gt, cur_g, (r >> 24) & 0x3fff, g_ok)); }
            w += 1;
            break;
        case R_ACCESS: {              /* [kind | access << 8 | mode << 16 | show value << 24] [address] [value]
                                         [mstatus extra: MPRV | MPV | MPP for the M-mode MPRV accesses] */
            unsigned acc = (r >> 8) & 0xff, mode = (r >> 16) & 0xff;
            if (acc > A_EBREAK || mode > VU_MODE) bad("access");
            stubs_for(cur_v, mode == VU_MODE);
            rt_probe_mstatus_extra = w[3] & (MSTATUS_MPRV | MSTATUS_MPV | MSTATUS_MPP);
            /* trap-entry CSRs a trap may leave alone are cleared before each probe: a value left over
             * from an earlier probe (QEMU's stale mtval2, its GVA written only to 1: known-divergences
             * qemu*-gva-*, *-mtval2-stale, probed by guests/trap_stale) would otherwise be part of every
             * later probe's finding and split one bug into many classes */
            csr_clear(mstatus, MSTATUS_GVA);
            csr_clear(hstatus, HSTATUS_GVA);
            csr_write(0x34b, 0);      /* mtval2 */
            csr_write(0x34a, 0);      /* mtinst */
            csr_write(0x643, 0);      /* htval */
            csr_write(0x64a, 0);      /* htinst */
            unsigned id = ++probe_id;
            if (id >= 4096) bad("more than 4095 probes");
            struct outcome o;
            rt_probe_mark(RT_MARK_START(id));
            rt_access((enum rt_access)acc, (enum rt_mode)mode, w[1], w[2], &o);
            rt_probes++;
            rt_probe_mstatus_extra = 0;
            print_outcome(id, &o, (r >> 24) & 1);
            w += 4;
            break;
        }
        case R_FENCE: {               /* [kind | which << 8 | rs1 used << 16 | rs2 used << 17] [rs1] [rs2], in M-mode:
                                         which 0 SFENCE.VMA, 1 HFENCE.VVMA, 2 HFENCE.GVMA; an unused operand is x0 */
            unsigned which = (r >> 8) & 3, v = (r >> 16) & 3;
            u64 a = w[1], b = w[2];
            switch (which * 4 + v) {
            case 0: __asm__ volatile("sfence.vma x0, x0" ::: "memory"); break;
            case 1: __asm__ volatile("sfence.vma %0, x0" :: "r"(a) : "memory"); break;
            case 2: __asm__ volatile("sfence.vma x0, %0" :: "r"(b) : "memory"); break;
            case 3: __asm__ volatile("sfence.vma %0, %1" :: "r"(a), "r"(b) : "memory"); break;
            case 4: __asm__ volatile(".insn r 0x73, 0, 0x11, x0, x0, x0" ::: "memory"); break;
            case 5: __asm__ volatile(".insn r 0x73, 0, 0x11, x0, %0, x0" :: "r"(a) : "memory"); break;
            case 6: __asm__ volatile(".insn r 0x73, 0, 0x11, x0, x0, %0" :: "r"(b) : "memory"); break;
            case 7: __asm__ volatile(".insn r 0x73, 0, 0x11, x0, %0, %1" :: "r"(a), "r"(b) : "memory"); break;
            case 8: __asm__ volatile(".insn r 0x73, 0, 0x31, x0, x0, x0" ::: "memory"); break;
            case 9: __asm__ volatile(".insn r 0x73, 0, 0x31, x0, %0, x0" :: "r"(a) : "memory"); break;
            case 10: __asm__ volatile(".insn r 0x73, 0, 0x31, x0, x0, %0" :: "r"(b) : "memory"); break;
            case 11: __asm__ volatile(".insn r 0x73, 0, 0x31, x0, %0, %1" :: "r"(a), "r"(b) : "memory"); break;
            default: bad("fence");
            }
            w += 3;
            break;
        }
        case R_END:
            w = end;
            break;
        default:
            bad("unknown record");
        }
        if (w > end) bad("record runs past the payload");
    }
    if (in_scen) scenario_reset();
    return rt_done();
}
