/* hgatp-difftest guest runtime: the API a guest uses (see guests/README.md).
 *
 *   #include "difftest.h"
 *   DIFFTEST_MODES(HGATP_ALL, VS_BARE);          // declare the modes this guest runs under
 *   int main(void) { rt_banner("my guest"); ...; return rt_done(); }
 *
 * The harness patches hgatp_mode / vs_mode in the configuration block (docs/ARCHITECTURE.md section 2);
 * the guest reads them at run time with rt_hgatp_mode() / rt_vs_mode(). */
#ifndef DIFFTEST_H
#define DIFFTEST_H
#include <stdint.h>
typedef uint64_t u64;
typedef uint32_t u32;

/* ---- configuration block (ARCHITECTURE section 2) ---- */
#define DIFFTEST_MAGIC 0x46434748u
struct difftest_config {
    u32 magic, version;
    u64 hgatp_mode, vs_mode, hgatp_modes, vs_modes, flags, probes;
};
#define HGATP_BARE   (1ull << 0)
#define HGATP_SV39X4 (1ull << 8)
#define HGATP_SV48X4 (1ull << 9)
#define HGATP_SV57X4 (1ull << 10)
#define HGATP_ALL    (HGATP_BARE | HGATP_SV39X4 | HGATP_SV48X4 | HGATP_SV57X4)
#define VS_BARE (1ull << 0)
#define VS_SV39 (1ull << 8)
#define VS_SV48 (1ull << 9)
#define VS_SV57 (1ull << 10)
#define VS_ALL  (VS_BARE | VS_SV39 | VS_SV48 | VS_SV57)
/* Declares the modes; the default (nothing patched) is the lowest declared mode of each. */
#define DIFFTEST_MODES(hgatp_mask, vs_mask) \
    __attribute__((section(".difftest_config"), used, aligned(8))) \
    volatile struct difftest_config difftest_config = { DIFFTEST_MAGIC, 1, \
        (u64)__builtin_ctzll((hgatp_mask) | (1ull << 63)), (u64)__builtin_ctzll((vs_mask) | (1ull << 63)), \
        (hgatp_mask), (vs_mask), 0, 0 }
extern volatile struct difftest_config difftest_config;
extern volatile u64 difftest_probe_select[64];
static inline unsigned rt_hgatp_mode(void) { return (unsigned)difftest_config.hgatp_mode; }
static inline unsigned rt_vs_mode(void) { return (unsigned)difftest_config.vs_mode; }

/* ---- CSR access ---- */
#define csr_read(csr) ({ u64 __v; __asm__ volatile("csrr %0, " #csr : "=r"(__v) :: "memory"); __v; })
#define csr_write(csr, val) __asm__ volatile("csrw " #csr ", %0" :: "rK"((u64)(val)) : "memory")
#define csr_set(csr, val) __asm__ volatile("csrs " #csr ", %0" :: "rK"((u64)(val)) : "memory")
#define csr_clear(csr, val) __asm__ volatile("csrc " #csr ", %0" :: "rK"((u64)(val)) : "memory")
/* GCC 12 passes its own -march to the assembler, so H instructions in C are spelled with .insn:
 * hfence.gvma = funct7 0x31, hfence.vvma = funct7 0x11 (opcode SYSTEM, funct3 0, rd 0). */
static inline void hfence_gvma(u64 gpa_shr2, u64 vmid) { __asm__ volatile(".insn r 0x73, 0, 0x31, x0, %0, %1" :: "r"(gpa_shr2), "r"(vmid) : "memory"); }
static inline void hfence_vvma(u64 va, u64 asid) { __asm__ volatile(".insn r 0x73, 0, 0x11, x0, %0, %1" :: "r"(va), "r"(asid) : "memory"); }
static inline void hfence_gvma_all(void) { __asm__ volatile(".insn r 0x73, 0, 0x31, x0, x0, x0" ::: "memory"); }
static inline void hfence_vvma_all(void) { __asm__ volatile(".insn r 0x73, 0, 0x11, x0, x0, x0" ::: "memory"); }

#define MSTATUS_MPRV (1ull << 17)
#define MSTATUS_MPP  (3ull << 11)
#define MSTATUS_MXR  (1ull << 19)
#define MSTATUS_SUM  (1ull << 18)
#define MSTATUS_GVA  (1ull << 38)
#define MSTATUS_MPV  (1ull << 39)
#define HSTATUS_GVA  (1ull << 6)
#define HSTATUS_SPV  (1ull << 7)
#define HSTATUS_SPVP (1ull << 8)
#define HSTATUS_HU   (1ull << 9)

/* ---- console and exit ---- */
void rt_putc(char c);                   /* to *rt_out: the UART, or a sink (see rt_sel) */
extern volatile unsigned char *rt_out;
volatile unsigned char *rt_sel(u64 to_uart);   /* the UART if to_uart != 0, else the sink: no branch */
void rt_puts(const char *s);            /* no newline added */
void rt_hex(u64 v);                     /* 0x... */
void rt_dec(u64 v);
void rt_banner(const char *name);       /* "guest <name> hgatp=<mode> vs=<mode>" */
void rt_exit(unsigned code) __attribute__((noreturn));   /* 0 = pass */

/* ---- page tables (Priv. 20240411, 10.3 Sv39..Sv57; 21.5.1 Guest physical address translation) ---- */
#define PTE_V (1ull << 0)
#define PTE_R (1ull << 1)
#define PTE_W (1ull << 2)
#define PTE_X (1ull << 3)
#define PTE_U (1ull << 4)
#define PTE_G (1ull << 5)
#define PTE_A (1ull << 6)
#define PTE_D (1ull << 7)
#define PTE_N (1ull << 63)
#define PTE_RWX (PTE_R | PTE_W | PTE_X)
#define PTE_PTR(pa) ((((u64)(pa) >> 12) << 10) | PTE_V)   /* a non-leaf PTE pointing to the table at pa */
/* G-stage leaves must have U=1 (all G-stage accesses are U-mode accesses); A/D preset so no
 * implementation-chosen A/D behaviour shows up unless a probe wants it. */
#define G_LEAF (PTE_V | PTE_RWX | PTE_U | PTE_A | PTE_D)
#define VS_LEAF (PTE_V | PTE_RWX | PTE_A | PTE_D)
struct pt {
    u64 root;       /* physical address of the root table (0: Bare) */
    unsigned mode;  /* atp MODE: 0, 8, 9, 10 */
    int top;        /* level of the root: 2 (Sv39), 3 (Sv48), 4 (Sv57); -1 for Bare */
    int gstage;     /* 1: x4 root of 2048 entries, 16 KiB aligned, 2 extra index bits */
};
void *rt_page_alloc(unsigned pages, unsigned align_pages);   /* zeroed pages from the pool */
void pt_init(struct pt *pt, int gstage, unsigned mode);
/* The PTE slot for va at `level` (0 = 4 KiB, 1 = 2 MiB, 2 = 1 GiB, 3 = 512 GiB, 4 = 256 TiB),
 * creating non-leaf entries on the way (V only). */
volatile u64 *pt_slot(struct pt *pt, u64 va, int level);
void pt_map(struct pt *pt, u64 va, u64 pa, int level, u64 flags);   /* leaf */
static inline u64 pt_atp(struct pt *pt, u64 id) { return pt->mode ? ((u64)pt->mode << 60) | (id << 44) | (pt->root >> 12) : 0; }
/* G stage for the configured hgatp mode: identity map of guest RAM (0x80000000, one 1 GiB leaf),
 * hgatp written, hfence.gvma.  Returns the table for further mappings. */
void rt_gstage_identity(struct pt *g);
/* VS stage for the configured vs mode: identity map of 0x80000000 (1 GiB leaf, U=0), vsatp written. */
void rt_vsstage_identity(struct pt *vs);
/* Give the runtime's probe stubs (their own pages, apart from the VS trap handler) U = `user` at the VS
 * stage, so VU-mode probes can run while traps delegated to VS still reach a handler VS may execute
 * (Priv. 10.3.1: "Irrespective of SUM, the guest/supervisor may not execute code on pages with U=1").
 * The first call splits the 1 GiB identity leaf of rt_vsstage_identity into 2 MiB / 4 KiB leaves with
 * the same flags.  HFENCE.VVMA follows.  No-op with vsatp Bare. */
void rt_vs_stubs_user(struct pt *vs, int user);

/* ---- probes (ARCHITECTURE section 3) ---- */
enum rt_mode { M_MODE, HS_MODE, U_MODE, VS_MODE, VU_MODE };
enum rt_access { A_LD, A_LW, A_LBU, A_SD, A_SW, A_AMOADD, A_LR, A_SC, A_FETCH, A_HLVD, A_HLVXWU, A_HSVD,
                 A_MPRV_LD, A_MPRV_SD, /* M-mode only: access with rt_probe_mstatus_extra set (MPRV|MPV|MPP) */
                 A_SFENCE, A_HFENCE_VVMA, A_HFENCE_GVMA, /* the fence itself: addr = rs1, val = rs2; ok: val */
                 A_WFI, A_SRET, A_CSRR_CYCLE, A_CSRR_SATP, /* the instruction itself (WFI/SRET: only where
                                                             they trap -- a WFI that waits would hang) */
                 A_CSRR_HGATP, A_CSRR_VSSTATUS, A_CSRR_MSTATUS,
                 A_ECALL, A_EBREAK /* the instruction itself, as a trap to check (causes 8/9/10, 3): its
                                      mtval2/htval and GVA; the runtime's own success ecall is not checked */ };
struct outcome {
    int trapped;
    u64 val;                         /* loaded value (ok) */
    u64 cause, tval, tval2, tinst;   /* mcause, mtval, mtval2 (htval), mtinst (htinst) */
    int gva;                         /* mstatus.GVA (to M) or hstatus.GVA (to HS); 0 for VS */
    int to;                          /* the mode that took the trap: TO_M, TO_HS, TO_VS */
    u64 hstatus;                     /* hstatus after a trap to HS (SPV, SPVP, GVA) */
};
enum { TO_M = 0, TO_HS = 1, TO_VS = 2 };
struct expect {
    int trap;                        /* 0: expect ok with value `val` (unless any_val) */
    u64 val; int any_val;
    u64 cause, tval, tval2;          /* tval2 = GPA >> 2 for guest-page faults, 0 otherwise */
    int gva;                         /* expected GVA bit */
    u64 tinst_alt;                   /* accepted mtinst besides 0 (the transformed instruction); ~0 = any */
    int any_tval;                    /* mtval is the implementation's choice (illegal/virtual instruction) */
    int any_tval2;                   /* mtval2/htval is the implementation's choice */
    int to;                          /* expected trap target: TO_M (default), TO_HS, TO_VS */
    int implicit;                    /* guest-page fault of an implicit VS-stage access: with htval != 0 the
                                        pseudoinstruction tinst_alt is required, zero is not allowed */
    int gva_unchecked;               /* GVA not part of this self-check (the harness still compares it at
                                        every trap: difftest/trap_csr.py) */
};
static inline struct expect expect_ok(u64 val) { struct expect e = {0}; e.val = val; return e; }
static inline struct expect expect_ok_any(void) { struct expect e = {0}; e.any_val = 1; return e; }
static inline struct expect expect_trap(u64 cause, u64 tval, u64 tval2, int gva, u64 tinst_alt)
{ struct expect e = {0}; e.trap = 1; e.cause = cause; e.tval = tval; e.tval2 = tval2; e.gva = gva; e.tinst_alt = tinst_alt; return e; }
/* A guest-page fault of an implicit VS-stage page-table access (reported as the original access type):
 * mtval2 = the PTE's GPA >> 2, mtinst the pseudoinstruction -- PSEUDO_READ for reading the PTE,
 * PSEUDO_WRITE for an A/D update; zero is not allowed with a nonzero mtval2 (H "Transformed Instruction
 * or Pseudoinstruction"). */
#define PSEUDO_READ 0x3000ull
#define PSEUDO_WRITE 0x3020ull
static inline struct expect expect_implicit_gpf(u64 cause, u64 va, u64 pte_gpa, u64 pseudo)
{ struct expect e = expect_trap(cause, va, pte_gpa >> 2, 1, pseudo); e.implicit = 1; return e; }
/* mstatus bits A_MPRV_LD/A_MPRV_SD set in M-mode before the access (MSTATUS_MPRV | MSTATUS_MPV | MPP) */
extern u64 rt_probe_mstatus_extra;
/* Nonzero: the next probes run this stub address instead of the runtime's stub for the access (a guest's
 * own copy of a stub, e.g. at a pc QEMU has not translated yet -- guests/hinsn_order).  The stub must end
 * like the runtime's: `li t6, 0x600d; ecall`.  0 = the runtime's stubs. */
extern u64 rt_stub_override;
/* One access from `mode`; returns 1 if the outcome matched the expectation.  Prints P (and X) lines.
 * A probe whose bit in difftest_probe_select is clear is skipped silently (returns 1). */
int probe(unsigned id, const char *what, enum rt_access acc, enum rt_mode mode, u64 addr, u64 val,
          struct expect e);
/* Where the spec allows two outcomes (A/D: fault or hardware update): good if either matches; the P line
 * says `allowed-outcome=1|2`.  Returns 0 (mismatch), 1 or 2. */
int probe_either(unsigned id, const char *what, enum rt_access acc, enum rt_mode mode, u64 addr, u64 val,
                 struct expect e1, struct expect e2, int n);
/* The access alone, no printing or checking. */
void rt_access(enum rt_access acc, enum rt_mode mode, u64 addr, u64 val, struct outcome *o);
/* Transformed instruction of the stub's access (Priv. 20240411, 21.6.3): rs1 field = 0 (offset 0). */
u64 rt_tinst(enum rt_access acc);
/* Marks a point of the run in the trace: one step at rt_probe_sled + 4*n (docs/ARCHITECTURE.md 2b).
 * probe()/probe_either(), rt_fail() and rt_done() call it; a guest with probes of its own shape calls
 * RT_MARK_START(id) at each probe's start and RT_MARK_END(id) after its last line. */
#define RT_MARK_START(id) ((unsigned)(id))
#define RT_MARK_PRINT(id) (4096u + (unsigned)(id))
#define RT_MARK_END(id)   (8192u + (unsigned)(id))
#define RT_MARK_DONE 12288u
#define RT_MARK_FAIL 12289u
#define RT_MARK_FAIL_END 12290u
void rt_probe_mark(unsigned id);
/* A probe of a guest's own shape (not probe()/probe_either()): rt_probe_mark(RT_MARK_START(id)) before
 * its work, rt_probe_mark(RT_MARK_PRINT(id)) before its P line; the X line is printed between
 * rt_xline_begin(id, good) -- which counts a failure when !good and prints "X <id> expected " to the
 * UART, or to the sink when good -- and rt_xline_end(id), which ends the line and marks the probe's
 * end.  The same instructions run whether the check passed (print alternatives the same way: each to
 * rt_sel(condition), as probe.c does). */
void rt_xline_begin(unsigned id, int good);
void rt_xline_end(unsigned id);
int rt_done(void);    /* prints DONE probes=<n> fails=<k>; returns the exit code for main */
void rt_fail(const char *why);   /* counts a failure and prints an X line outside a probe */
/* A check outside a probe, run the same way whether it passes: when !good, counts a failure and prints
 * "X <why>"; when good, prints it to the sink (docs/ARCHITECTURE.md 2b).  Prefer it to
 * `if (bad) rt_fail(why)`, whose branch parts the runs of two backends that differ there. */
void rt_check(int good, const char *why);
extern u64 rt_probes, rt_fails;

void *memset(void *d, int c, unsigned long n);
void *memcpy(void *d, const void *s, unsigned long n);
#endif
