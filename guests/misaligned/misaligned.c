/* misaligned: misaligned loads, stores, HLV/HSV and AMOs through the G stage -- within a page, and across
 * into a page the G stage does not map or maps read-only.  VS stage Bare: the GVA is the GPA.
 *
 * Spec (Priv. 20240411):
 *  - Unpriv. "Misaligned accesses": loads and stores to misaligned addresses may be performed or raise
 *    address-misaligned; both QEMUs perform them (profile field misaligned_ls="emulate"), so a misaligned
 *    access inside one page reads/writes the bytes, and one that crosses into an unmapped page faults on
 *    the part that cannot be translated.
 *  - 3.1.16 mtval: "If mtval is written with a nonzero value when a misaligned load or store causes an
 *    access-fault or page-fault exception, then mtval will contain the virtual address of the portion of
 *    the access that caused the fault."
 *  - H "Machine Trap Value Register (mtval2)" / htval: "for misaligned loads and stores that cause
 *    guest-page faults, a nonzero guest physical address in mtval2 corresponds to the faulting portion of
 *    the access as indicated by the virtual address in mtval."
 *  - H "Transformed Instruction or Pseudoinstruction": the transformed instruction's rs1 field holds the
 *    Addr. Offset, "the positive difference between the faulting virtual address (written to mtval) and
 *    the original virtual address"; mtinst may also be 0.
 *  - 3.1.6 GVA: 1 when mtval holds a guest virtual address (also for address-misaligned).
 *  - Unpriv. "A": a misaligned AMO raises address-misaligned (6) or access fault (7), the implementation's
 *    choice unless Zama16b; the model raises 6 (refmodel/execute.py). */
#include "difftest.h"

DIFFTEST_MODES(HGATP_ALL, VS_BARE);

static volatile u64 tgt[512] __attribute__((aligned(4096), section(".data.page")));
static unsigned id;

/* the little-endian value of `n` bytes of tgt starting at byte offset `off` (read bytewise in M-mode) */
static u64 bytes_at(u64 off, int n)
{
    volatile unsigned char *b = (volatile unsigned char *)tgt;
    u64 v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | b[off + i];
    return v;
}

/* a guest-page fault on the portion of the access that starts at `portion` (the next page) */
static struct expect gpf_portion(u64 cause, enum rt_access a, u64 va, u64 portion)
{
    return expect_trap(cause, portion, portion >> 2, 1, rt_tinst(a) | ((portion - va) << 15));
}

/* Last (a trap-cause difference stops the harness's step comparison there): misaligned LR, SC and AMO
 * at `base` + 0x44 -- never performed; LR is a load (4 or 5), SC and AMOs are store/AMOs (6 or 7: "AMOs
 * never raise load ... exceptions", and the Store/AMO address-misaligned code is 6). */
static int atomics(u64 base)
{
    const u64 va = base + 0x44;
    id = 40;
    probe_either(id++, "amo-misaligned", A_AMOADD, VS_MODE, va, 1,
                 expect_trap(6, va, 0, 1, ~0ull), expect_trap(7, va, 0, 1, ~0ull), 2);
    probe_either(id++, "lr-misaligned", A_LR, VS_MODE, va, 0,
                 expect_trap(4, va, 0, 1, ~0ull), expect_trap(5, va, 0, 1, ~0ull), 2);
    probe_either(id++, "sc-misaligned", A_SC, VS_MODE, va, 1,
                 expect_trap(6, va, 0, 1, ~0ull), expect_trap(7, va, 0, 1, ~0ull), 2);
    return rt_done();
}

int main(void)
{
    struct pt g;
    rt_banner("misaligned");
    for (unsigned i = 0; i < 512; i++) tgt[i] = 0x0706050403020100ull + 0x0808080808080808ull * i;
    rt_gstage_identity(&g);
    u64 tpa = (u64)tgt;

    id = 1;
    /* inside one page, through the identity mapping (Bare: GPA = PA): performed */
    probe(id++, "ld-in-page", A_LD, VS_MODE, tpa + 0x13, 0, expect_ok(bytes_at(0x13, 8)));
    probe(id++, "lw-in-page", A_LW, VS_MODE, tpa + 0x21, 0, expect_ok((u64)(long)(int)bytes_at(0x21, 4)));
    probe(id++, "sd-in-page", A_SD, VS_MODE, tpa + 0x35, 0x1122334455667788ull, expect_ok(0x1122334455667788ull));
    rt_check(bytes_at(0x35, 8) == 0x1122334455667788ull, "misaligned sd inside a page did not write its bytes");
    if (!g.mode) return atomics(tpa);

    /* G stage: GPA page P -> tgt (RW), P+4K unmapped, P+8K -> tgt read-only, P+12K unmapped,
     * P+16K -> tgt (RW), P+20K -> tgt read-only */
    id = 10;
    const u64 P = 0x100000000ull;
    const u64 RO = PTE_V | PTE_R | PTE_U | PTE_A | PTE_D;
    pt_map(&g, P, tpa, 0, G_LEAF);
    pt_map(&g, P + 0x2000, tpa, 0, RO);
    pt_map(&g, P + 0x4000, tpa, 0, G_LEAF);
    pt_map(&g, P + 0x5000, tpa, 0, RO);
    hfence_gvma_all();
    probe(id++, "ld-in-gpage", A_LD, VS_MODE, P + 0x7f9, 0, expect_ok(bytes_at(0x7f9, 8)));
    probe(id++, "ld-cross-unmapped", A_LD, VS_MODE, P + 0xffc, 0, gpf_portion(21, A_LD, P + 0xffc, P + 0x1000));
    probe(id++, "ld-cross-unmapped-1", A_LD, VS_MODE, P + 0xfff, 0, gpf_portion(21, A_LD, P + 0xfff, P + 0x1000));
    probe(id++, "lw-cross-unmapped", A_LW, VS_MODE, P + 0xffe, 0, gpf_portion(21, A_LW, P + 0xffe, P + 0x1000));
    probe(id++, "sd-cross-unmapped", A_SD, VS_MODE, P + 0xffa, 0x99, gpf_portion(23, A_SD, P + 0xffa, P + 0x1000));
    probe(id++, "sw-cross-unmapped", A_SW, VS_MODE, P + 0xffd, 0x99, gpf_portion(23, A_SW, P + 0xffd, P + 0x1000));
    /* first portion unmapped: the fault is on the first part, the original address */
    probe(id++, "ld-from-unmapped", A_LD, VS_MODE, P + 0x1ffc, 0, gpf_portion(21, A_LD, P + 0x1ffc, P + 0x1ffc));
    /* across into the read-only page: loads read both parts, stores fault on the read-only part */
    probe(id++, "ld-into-readonly", A_LD, VS_MODE, P + 0x2ffc, 0, gpf_portion(21, A_LD, P + 0x2ffc, P + 0x3000));
    probe(id++, "ld-from-readonly", A_LD, VS_MODE, P + 0x2004, 0, expect_ok(bytes_at(0x4, 8)));
    probe(id++, "sd-in-readonly", A_SD, VS_MODE, P + 0x2005, 0x99, gpf_portion(23, A_SD, P + 0x2005, P + 0x2005));
    probe(id++, "sd-unmapped-into-ro", A_SD, VS_MODE, P + 0x1ffc, 0x99,
          gpf_portion(23, A_SD, P + 0x1ffc, P + 0x1ffc));
    /* from a writable page into a read-only one: a load reads both, a store faults on the second part */
    probe(id++, "ld-rw-into-ro", A_LD, VS_MODE, P + 0x4ffc, 0, expect_ok(bytes_at(0xffc, 4) | bytes_at(0, 4) << 32));
    probe(id++, "sd-rw-into-ro", A_SD, VS_MODE, P + 0x4ffc, 0x99, gpf_portion(23, A_SD, P + 0x4ffc, P + 0x5000));

    /* a 32-bit instruction whose second half lies in an unmapped page: the fault is on that portion --
     * 3.1.16: "mtval will contain the virtual address of the portion of the instruction that caused the
     * fault, while mepc will point to the beginning of the instruction"; H: "For instruction guest-page
     * faults on systems with variable-length instructions, a nonzero htval corresponds to the faulting
     * portion of the instruction as indicated by the virtual address in stval."  mtinst is 0 for an
     * explicit fetch. */
    id = 25;
    volatile unsigned short *code = rt_page_alloc(1, 1);
    code[0x7ff] = 0x0013;                                  /* low half of `addi x0, x0, 0` at offset 0xffe */
    __asm__ volatile("fence.i" ::: "memory");
    pt_map(&g, P + 0x6000, (u64)code, 0, G_LEAF);          /* P+0x7000 stays unmapped */
    hfence_gvma_all();
    probe(id++, "fetch-cross-unmapped", A_FETCH, VS_MODE, P + 0x6ffe, 0,
          expect_trap(20, P + 0x7000, (P + 0x7000) >> 2, 1, 0));

    /* HLV/HSV from HS: the same rules for the hypervisor's own guest accesses (H "Virtual-Machine Load
     * and Store Instructions": as though V=1) */
    id = 30;
    probe(id++, "hlv-cross-unmapped", A_HLVD, HS_MODE, P + 0xffc, 0, gpf_portion(21, A_HLVD, P + 0xffc, P + 0x1000));
    probe(id++, "hsv-cross-unmapped", A_HSVD, HS_MODE, P + 0xff9, 0x99, gpf_portion(23, A_HSVD, P + 0xff9, P + 0x1000));
    probe(id++, "hlv-in-gpage", A_HLVD, HS_MODE, P + 0x101, 0, expect_ok(bytes_at(0x101, 8)));
    return atomics(P);
}
