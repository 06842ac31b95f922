/* Probe API: one access from a chosen mode, its outcome, the spec's expectation, P/X lines. */
#include "difftest.h"

u64 rt_probes, rt_fails;
u64 rt_probe_mstatus_extra;
u64 rt_stub_override;
volatile u64 rt_probe_active;
volatile u64 rt_probe_ctx[16];
volatile u64 rt_probe_rec[8];
volatile u64 rt_hs_rec[6];      /* scause, stval, htval, htinst, hstatus, sepc (trap delegated to HS) */
volatile u64 rt_vs_rec[6];      /* vscause, vstval, -, -, -, vsepc (trap delegated to VS) */   /* mcause, mtval, mtval2, mtinst, mstatus, a1, t6, mepc */
int rt_probe_go(u64 addr, u64 val, u64 stub, u64 mstatus_bits);

extern char rt_stub_ld[], rt_stub_lw[], rt_stub_lbu[], rt_stub_sd[], rt_stub_sw[], rt_stub_amoadd[],
    rt_stub_lr[], rt_stub_sc[], rt_stub_hlvd[], rt_stub_hlvxwu[], rt_stub_hsvd[], rt_stub_fetch[],
    rt_stub_mprv_ld[], rt_stub_mprv_sd[], rt_stub_sfence[], rt_stub_hfence_vvma[], rt_stub_hfence_gvma[],
    rt_stub_wfi[], rt_stub_sret[], rt_stub_csrr_cycle[], rt_stub_csrr_satp[], rt_stub_csrr_hgatp[],
    rt_stub_csrr_vsstatus[], rt_stub_csrr_mstatus[], rt_stub_ecall[], rt_stub_ebreak[];

static u64 stub_of(enum rt_access a)
{
    switch (a) {
    case A_LD: return (u64)rt_stub_ld;
    case A_LW: return (u64)rt_stub_lw;
    case A_LBU: return (u64)rt_stub_lbu;
    case A_SD: return (u64)rt_stub_sd;
    case A_SW: return (u64)rt_stub_sw;
    case A_AMOADD: return (u64)rt_stub_amoadd;
    case A_LR: return (u64)rt_stub_lr;
    case A_SC: return (u64)rt_stub_sc;
    case A_HLVD: return (u64)rt_stub_hlvd;
    case A_HLVXWU: return (u64)rt_stub_hlvxwu;
    case A_HSVD: return (u64)rt_stub_hsvd;
    case A_FETCH: return (u64)rt_stub_fetch;
    case A_MPRV_LD: return (u64)rt_stub_mprv_ld + 4;   /* the access after csrs */
    case A_MPRV_SD: return (u64)rt_stub_mprv_sd + 4;
    case A_SFENCE: return (u64)rt_stub_sfence;
    case A_HFENCE_VVMA: return (u64)rt_stub_hfence_vvma;
    case A_HFENCE_GVMA: return (u64)rt_stub_hfence_gvma;
    case A_WFI: return (u64)rt_stub_wfi;
    case A_SRET: return (u64)rt_stub_sret;
    case A_CSRR_CYCLE: return (u64)rt_stub_csrr_cycle;
    case A_CSRR_SATP: return (u64)rt_stub_csrr_satp;
    case A_CSRR_HGATP: return (u64)rt_stub_csrr_hgatp;
    case A_CSRR_VSSTATUS: return (u64)rt_stub_csrr_vsstatus;
    case A_CSRR_MSTATUS: return (u64)rt_stub_csrr_mstatus;
    case A_ECALL: return (u64)rt_stub_ecall;
    case A_EBREAK: return (u64)rt_stub_ebreak;
    }
    return 0;
}

u64 rt_tinst(enum rt_access a)
{
    /* Priv. 20240411, 21.6.3 "Transformed instruction": the trapping instruction with rs1 (bits 19:15)
     * replaced by the address offset (0 here) and, for loads/stores, the immediate zeroed. */
    if (a == A_FETCH) return 0;        /* instruction guest-page faults write 0 (or a pseudo for implicit) */
    u32 insn = *(volatile u32 *)(rt_stub_override ? rt_stub_override : stub_of(a));
    return insn & ~(0x1full << 15) & ((a == A_LD || a == A_LW || a == A_LBU || a == A_MPRV_LD) ? 0x000fffffu :
                                      (a == A_SD || a == A_SW || a == A_MPRV_SD) ? 0x01fff07fu : 0xffffffffu);
}

static const char *mode_name(enum rt_mode m)
{
    static const char *n[] = {"M", "HS", "U", "VS", "VU"};
    return n[m];
}
static const char *acc_name(enum rt_access a)
{
    static const char *n[] = {"ld", "lw", "lbu", "sd", "sw", "amoadd.d", "lr.d", "sc.d", "fetch",
                              "hlv.d", "hlvx.wu", "hsv.d", "mprv-ld", "mprv-sd",
                              "sfence.vma", "hfence.vvma", "hfence.gvma", "wfi", "sret", "csrr-cycle",
                              "csrr-satp", "csrr-hgatp", "csrr-vsstatus", "csrr-mstatus", "ecall", "ebreak"};
    return n[a];
}

void rt_access(enum rt_access acc, enum rt_mode mode, u64 addr, u64 val, struct outcome *o)
{
    static const u64 mpp[] = {3, 1, 0, 1, 0};
    u64 ms = csr_read(mstatus);
    ms &= ~(MSTATUS_MPP | MSTATUS_MPV | MSTATUS_MPRV);
    ms |= mpp[mode] << 11;
    if (mode == VS_MODE || mode == VU_MODE) ms |= MSTATUS_MPV;
    csr_write(mstatus, ms);
    u64 stub = stub_of(acc);
    if (acc == A_MPRV_LD || acc == A_MPRV_SD) stub -= 4;
    if (rt_stub_override) stub = rt_stub_override;
    rt_probe_go(addr, val, stub, rt_probe_mstatus_extra);
    u64 cause = rt_probe_rec[0];
    int ok = (cause == 8 || cause == 9 || cause == 10 || cause == 11) && rt_probe_rec[6] == 0x600d;
    o->trapped = !ok;
    o->val = rt_probe_rec[5];
    o->cause = ok ? 0 : cause;
    o->tval = ok ? 0 : rt_probe_rec[1];
    o->tval2 = ok ? 0 : rt_probe_rec[2];
    o->tinst = ok ? 0 : rt_probe_rec[3];
    o->gva = ok ? 0 : (int)((rt_probe_rec[4] >> 38) & 1);
    o->to = TO_M;
    o->hstatus = 0;
    if (cause == 9 && rt_probe_rec[6] == 0x7a5) {          /* delegated to HS */
        o->to = TO_HS;
        o->cause = rt_hs_rec[0]; o->tval = rt_hs_rec[1]; o->tval2 = rt_hs_rec[2]; o->tinst = rt_hs_rec[3];
        o->hstatus = rt_hs_rec[4];
        o->gva = (int)((rt_hs_rec[4] >> 6) & 1);
    } else if (cause == 10 && rt_probe_rec[6] == 0x7a6) {  /* delegated to VS */
        o->to = TO_VS;
        o->cause = rt_vs_rec[0]; o->tval = rt_vs_rec[1]; o->tval2 = 0; o->tinst = 0; o->gva = 0;
    }
}

static void kv(const char *k, u64 v) { rt_putc(' '); rt_puts(k); rt_putc('='); rt_hex(v); }

static void print_outcome(const struct outcome *o, int any_val)
{
    /* Both forms are "printed", the one that does not apply to the sink (runtime.c, rt_sel): the
     * instructions run do not depend on the outcome, so two backends that differ in it are still
     * compared step by step while they print it (the bytes are compared as console text). */
    static const char to0[] = "MHV", to1[] = " SS";
    volatile unsigned char *keep = rt_out;
    u64 t = (u64)o->trapped, u = keep != rt_sel(0);
    rt_out = rt_sel(u & !t);
    rt_puts(" ok");
    /* a value the check accepts whatever it is (a counter, say) is not part of the outcome: shown as
     * "any", so two harts that differ only there print the same line */
    if (any_val) rt_puts(" val=any"); else kv("val", o->val);
    rt_out = rt_sel(u & t);
    rt_puts(" trap cause="); rt_dec(o->cause);
    kv("tval", o->tval); kv("htval", o->tval2); kv("tinst", o->tinst);
    rt_puts(" gva="); rt_dec((u64)o->gva);
    rt_puts(" to="); rt_putc(to0[o->to]);
    rt_out = rt_sel(u & t & (o->to != TO_M));
    rt_putc(to1[o->to]);
    rt_out = rt_sel(u & t & (o->to == TO_HS));
    rt_puts(" spv="); rt_dec((o->hstatus >> 7) & 1);
    rt_puts(" spvp="); rt_dec((o->hstatus >> 8) & 1);
    rt_out = keep;
}

void rt_fail(const char *why)
{
    rt_fails++;
    rt_probe_mark(RT_MARK_FAIL);
    rt_puts("X "); rt_puts(why); rt_putc('\n');
    rt_probe_mark(RT_MARK_FAIL_END);
}

static int matches(const struct outcome *o, const struct expect *e)
{
    /* Bitwise & and | instead of && and ||: the check runs the same instructions whatever the
     * outcome's values, so backends that differ in one value stay in lock-step (runtime.c, rt_sel). */
    if (!e->trap)
        return (!o->trapped) & (e->any_val | (o->val == e->val));
    /* Priv. 20240411, H "mtval2" / "htval": "When a guest-page-fault trap is taken into M-mode, mtval2 is
     * written with either zero or the guest physical address that faulted, shifted right by 2 bits.  For
     * other traps, mtval2 is set to zero" -- so for causes 20, 21, 23 zero is always an allowed value. */
    int gpf = (e->cause == 20) | (e->cause == 21) | (e->cause == 23);
    return o->trapped & (o->cause == e->cause) & (e->any_tval | (o->tval == e->tval)) &
           (e->any_tval2 | (o->tval2 == e->tval2) | (gpf & (o->tval2 == 0))) & (o->to == e->to) &
           (e->gva_unchecked | (o->gva == e->gva)) &
           ((o->tinst == 0) | (e->tinst_alt == ~0ull) | (o->tinst == e->tinst_alt)) &
           /* H "Transformed Instruction or Pseudoinstruction": for a guest-page fault of an implicit access
            * for VS-stage translation with a nonzero mtval2/htval, "the value written to mtinst or htinst
            * must be taken from [the pseudoinstruction table]; zero is not allowed." */
           !(e->implicit & (o->tval2 != 0) & (o->tinst != e->tinst_alt));
}

static void print_expect(const struct expect *e)
{
    if (!e->trap) { rt_puts(" ok"); if (!e->any_val) kv("val", e->val); return; }
    /* what the check accepts, "any" where it accepts anything (any_tval, any_tval2, tinst_alt = ~0) */
    rt_puts(" trap cause="); rt_dec(e->cause);
    if (e->any_tval) rt_puts(" tval=any"); else kv("tval", e->tval);
    if (e->any_tval2) rt_puts(" htval=any");
    else if (e->cause == 20 || e->cause == 21 || e->cause == 23) { rt_puts(" htval=0|"); rt_hex(e->tval2); }
    else kv("htval", e->tval2);
    if (e->tinst_alt == ~0ull) rt_puts(" tinst=any");
    else { rt_puts(e->implicit ? " tinst=(0 only if htval=0)|" : " tinst=0|"); rt_hex(e->tinst_alt); }
    if (e->gva_unchecked) rt_puts(" gva=any"); else { rt_puts(" gva="); rt_dec((u64)e->gva); }
    rt_puts(e->to == TO_HS ? " to=HS" : e->to == TO_VS ? " to=VS" : " to=M");
}

int probe_either(unsigned id, const char *what, enum rt_access acc, enum rt_mode mode, u64 addr, u64 val,
                 struct expect e1, struct expect e2, int n)
{
    if (id < 4096 && !((difftest_probe_select[id / 64] >> (id % 64)) & 1)) return 1;
    rt_probe_mark(RT_MARK_START(id));
    struct outcome o;
    rt_access(acc, mode, addr, val, &o);
    rt_probes++;
    rt_probe_mark(RT_MARK_PRINT(id));
    rt_puts("P "); rt_dec(id); rt_putc(' '); rt_puts(what); rt_putc(' '); rt_puts(acc_name(acc));
    kv("va", addr); rt_puts(" mode="); rt_puts(mode_name(mode));
    print_outcome(&o, (!e1.trap & e1.any_val) & ((n == 1) | (!e2.trap & e2.any_val)));
    int g1 = matches(&o, &e1), g2 = (n > 1) & matches(&o, &e2);
    int good = g1 | (g2 << 1);
    good &= 3 - ((good & 1) << 1);                  /* 1 if e1 matched, else 2 if e2 did, else 0 */
    /* What follows prints only values and the X line, to the UART or to the sink (rt_sel): the same
     * instructions run whatever the outcome, so a backend that differs only in a value (a trap-entry
     * CSR, a loaded value) is compared step by step to the probe's end and beyond. */
    rt_out = rt_sel(o.trapped & (o.tinst != 0));
    rt_puts(" tinst-form=transformed");
    rt_out = rt_sel((n > 1) & (good != 0));
    rt_puts(" allowed-outcome="); rt_putc((char)('0' + good));
    rt_out = rt_sel(1);
    rt_putc('\n');
    rt_fails += (good == 0);
    rt_out = rt_sel(good == 0);
    /* what it got is the P line just printed: the X line says what the specification expects */
    rt_puts("X "); rt_dec(id); rt_puts(" expected");
    print_expect(&e1);
    if (n > 1) { rt_puts(" or"); print_expect(&e2); }
    rt_putc('\n');
    rt_out = rt_sel(1);
    rt_probe_mark(RT_MARK_END(id));
    return good;
}

int probe(unsigned id, const char *what, enum rt_access acc, enum rt_mode mode, u64 addr, u64 val,
          struct expect e)
{
    return probe_either(id, what, acc, mode, addr, val, e, e, 1) != 0;
}

void rt_check(int good, const char *why)
{
    rt_fails += (good == 0);
    rt_probe_mark(RT_MARK_FAIL);
    rt_out = rt_sel(good == 0);
    rt_puts("X "); rt_puts(why); rt_putc('\n');
    rt_out = rt_sel(1);
    rt_probe_mark(RT_MARK_FAIL_END);
}

void rt_xline_begin(unsigned id, int good)
{
    rt_fails += (good == 0);
    rt_out = rt_sel(good == 0);
    rt_puts("X "); rt_dec(id); rt_puts(" expected ");
}

void rt_xline_end(unsigned id)
{
    rt_putc('\n');
    rt_out = rt_sel(1);
    rt_probe_mark(RT_MARK_END(id));
}

int rt_done(void)
{
    difftest_config.probes = rt_probes;
    rt_probe_mark(RT_MARK_DONE);
    rt_puts("DONE probes="); rt_dec(rt_probes); rt_puts(" fails="); rt_dec(rt_fails); rt_putc('\n');
    return rt_fails ? 1 : 0;
}
