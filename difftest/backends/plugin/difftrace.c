/*
 * difftrace: a QEMU TCG plugin that records, in one ordinary QEMU run (multi-instruction TBs, no
 * single-stepping), what hgatp-difftest compares: every executed instruction and every explicit
 * memory access with the physical address QEMU used (TLB hits included).  Read by
 * difftest/backends/plugin_reader.py; the backend is difftest/backends/qemu_plugin.py.
 *
 * Built by scripts/setup into build/plugin/ twice, once per plugin API version, because QEMU's
 * loader refuses a plugin whose qemu_plugin_version is outside [min, cur] (7.2: [0, 1]; 10.0:
 * [2, 4]) and the ABI changed in between (qemu_plugin_insn_data):
 *     cc -DDT_API=1 ... -o build/plugin/difftrace-v1.so     (QEMU 7.2)
 *     cc -DDT_API=4 ... -o build/plugin/difftrace-v4.so     (QEMU 10.0; also reads registers)
 * QEMU's qemu-plugin.h is not used: the few types and functions below are declared from the
 * public plugin API documentation (docs/devel/tcg-plugins.rst); glib's GArray/GByteArray only by
 * their documented public fields (glib is loaded by QEMU itself; no glib headers needed).
 *
 * Arguments (-plugin difftrace-vN.so,out=FILE,limit=N[,regs=0|1][,rregs=sel|all|none]):
 *   out    the binary record file (required)
 *   limit  record at most this many instructions; at the next one write a LIMIT record, print
 *          "L <index>" to QEMU's log and record nothing more (the backend then stops QEMU)
 *   regs   (v4) read priv and the trap CSRs at every marker (default 1)
 *   rregs  (v4) which instruction callbacks are registered with QEMU_PLUGIN_CB_R_REGS: "sel"
 *          (default: only those that can be a marker), "all", "none" (for measurements)
 *   tohost (v4) the physical address of the ELF's tohost doubleword (riscv-tests convention): the
 *          first store that leaves it non-zero gets a VAL record (b = 1, x = the doubleword), then
 *          the plugin prints "T <index> <value hex>" and records nothing more (the program ended;
 *          QEMU never exits by itself there, so the backend stops it)
 *
 * Record file: a sequence of 16-byte little-endian records, struct.Struct("<BBHIQ"):
 *     u8 type, u8 a, u16 b, u32 w, u64 x
 *   type 0 HEAD   a = API version, w = 0x43525444 ("DTRC"), x = 1 (layout version)
 *   type 1 INSN   an instruction's callback fired (it is attempted: it retires or traps):
 *                 a = length in bytes (2 or 4), b = class (0 pure, 1 memory, 2 other),
 *                 w = the instruction bits, x = pc
 *   type 2 MEM    an explicit access of the last INSN, after it completed: a = size shift (bits
 *                 0-3) | store (bit 4) | physical address known (bit 5) | I/O (bit 6);
 *                 b = QEMU's MemOpIdx (meminfo bits 0-15: mmu_idx in bits 0-3); w = meminfo >> 16
 *                 (1 read, 2 write, 3 read-modify-write); x = virtual address
 *   type 3 PA     follows a MEM with bit 5 set: x = the physical address QEMU used
 *   type 4 REG    (v4) a register read at the marker that follows (type 5): a = slot
 *                 (REG_NAMES below, same order in the reader), x = value
 *   type 5 MARK   the next INSN is a marker instruction (see below): x = its index; the REG
 *                 records for it follow this record
 *   type 6 LIMIT  recording stopped at the instruction with index x (the limit)
 *   type 7 VAL    (v4) follows the PA of a store to I/O (the UART, the finisher): x = the value
 *                 stored (low 64 bits), a = its size shift -- so the finisher's exit code comes
 *                 from this one run, without running QEMU again to read it; b = 1: the tohost
 *                 store that ended the program, x = the tohost doubleword it left
 *
 * Markers: QEMU 7.2 and 10.0 have no trap (discontinuity) callbacks.  The trap lines come from
 * QEMU's own "-d int" log; to place them, the plugin prints "S <index> <pc hex>" with
 * qemu_plugin_outs -- which writes to the same log stream as -d int (-d int,plugin -D log), so
 * the order of lines is the order of events -- before any instruction that may be the first
 * after a trap: the first one, one whose pc is not a static successor of the instruction before
 * (pc+len, a branch/JAL target), one after an "other" instruction (SYSTEM, JALR, fences, unknown:
 * may trap or jump anywhere), one after a "memory" instruction whose memory callback did not
 * fire (it faulted -- or was an SC that failed).  "Pure" instructions (OP, OP-IMM, OP-32,
 * OP-IMM-32, LUI, AUIPC, BRANCH, JAL and their compressed forms) raise nothing, and QEMU takes
 * interrupts only between TBs, so any other instruction is never the first after a trap.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#ifndef DT_API
#error "build with -DDT_API=1 (QEMU 7.2) or -DDT_API=4 (QEMU 10.0)"
#endif

/* ---- the plugin API, as documented (only what is used) ---- */
typedef uint64_t qemu_plugin_id_t;
typedef uint32_t qemu_plugin_meminfo_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
struct qemu_plugin_hwaddr;
typedef struct {
    const char *target_name;
    struct { int min; int cur; } version;
    bool system_emulation;
    union { struct { int smp_vcpus; int max_vcpus; } system; };
} qemu_info_t;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
enum qemu_plugin_mem_rw { QEMU_PLUGIN_MEM_R = 1, QEMU_PLUGIN_MEM_W, QEMU_PLUGIN_MEM_RW };
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_vcpu_simple_cb_t)(qemu_plugin_id_t id, unsigned int vcpu_index);
typedef void (*qemu_plugin_vcpu_mem_cb_t)(unsigned int vcpu_index, qemu_plugin_meminfo_t info,
                                          uint64_t vaddr, void *userdata);
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);

#define EXPORT __attribute__((visibility("default")))
EXPORT int qemu_plugin_version = DT_API;
EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_init_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_simple_cb_t cb);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn, qemu_plugin_vcpu_udata_cb_t cb,
                                            enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_vcpu_mem_cb(struct qemu_plugin_insn *insn, qemu_plugin_vcpu_mem_cb_t cb,
                                      enum qemu_plugin_cb_flags flags, enum qemu_plugin_mem_rw rw,
                                      void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *insn);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
#if DT_API == 1
const void *qemu_plugin_insn_data(const struct qemu_plugin_insn *insn);
#else
size_t qemu_plugin_insn_data(const struct qemu_plugin_insn *insn, void *dest, size_t len);
#endif
unsigned int qemu_plugin_mem_size_shift(qemu_plugin_meminfo_t info);
bool qemu_plugin_mem_is_store(qemu_plugin_meminfo_t info);
struct qemu_plugin_hwaddr *qemu_plugin_get_hwaddr(qemu_plugin_meminfo_t info, uint64_t vaddr);
bool qemu_plugin_hwaddr_is_io(const struct qemu_plugin_hwaddr *haddr);
uint64_t qemu_plugin_hwaddr_phys_addr(const struct qemu_plugin_hwaddr *haddr);
void qemu_plugin_outs(const char *string);

#if DT_API >= 4
/* the value an access read or wrote (API v4) */
enum qemu_plugin_mem_value_type { QEMU_PLUGIN_MEM_VALUE_U8, QEMU_PLUGIN_MEM_VALUE_U16, QEMU_PLUGIN_MEM_VALUE_U32,
                                  QEMU_PLUGIN_MEM_VALUE_U64, QEMU_PLUGIN_MEM_VALUE_U128 };
typedef struct {
    enum qemu_plugin_mem_value_type type;
    union {
        uint8_t u8;
        uint16_t u16;
        uint32_t u32;
        uint64_t u64;
        struct { uint64_t low, high; } u128;
    } data;
} qemu_plugin_mem_value;
qemu_plugin_mem_value qemu_plugin_mem_get_value(qemu_plugin_meminfo_t info);

/* register access (API v3+): glib containers, by their public fields */
struct qemu_plugin_register;
typedef struct { char *data; unsigned int len; } GArray;
typedef struct { uint8_t *data; unsigned int len; } GByteArray;
GByteArray *g_byte_array_new(void);
GByteArray *g_byte_array_set_size(GByteArray *array, unsigned int length);
char *g_array_free(GArray *array, int free_segment);
typedef struct {
    struct qemu_plugin_register *handle;
    const char *name;
    const char *feature;
} qemu_plugin_reg_descriptor;
GArray *qemu_plugin_get_registers(void);
int qemu_plugin_read_register(struct qemu_plugin_register *handle, GByteArray *buf);
#endif

/* ---- the record file ---- */
enum { R_HEAD, R_INSN, R_MEM, R_PA, R_REG, R_MARK, R_LIMIT, R_VAL };
struct rec { uint8_t type, a; uint16_t b; uint32_t w; uint64_t x; } __attribute__((packed));
_Static_assert(sizeof(struct rec) == 16, "records are 16 bytes");

#define BUF_RECS (1 << 16)                 /* 1 MiB: one write() per 65536 records */
static struct rec buf[BUF_RECS];
static size_t nbuf;
static int out_fd = -1;

static void flush_buf(void)
{
    size_t off = 0, len = nbuf * sizeof(struct rec);
    while (out_fd >= 0 && off < len) {
        ssize_t n = write(out_fd, (char *)buf + off, len - off);
        if (n <= 0) {
            break;                         /* disk full: the reader sees a short file */
        }
        off += (size_t)n;
    }
    nbuf = 0;
}

static inline void put(uint8_t type, uint8_t a, uint16_t b, uint32_t w, uint64_t x)
{
    struct rec *r = &buf[nbuf++];
    r->type = type; r->a = a; r->b = b; r->w = w; r->x = x;
    if (nbuf == BUF_RECS) {
        flush_buf();
    }
}

/* ---- per-instruction data, made at translation time, kept for the TB's life ---- */
enum { C_PURE, C_MEM, C_OTHER };
struct insn {
    uint64_t pc, next, target;             /* next = pc + len; target = branch/JAL target or next */
    uint32_t bits;
    uint8_t len, cls, tb_first;
};

static uint64_t limit = UINT64_MAX;
#if DT_API >= 4
static uint64_t tohost;                    /* 0: no tohost (argument tohost=) */
#endif
static uint64_t n_insn;                    /* index of the next instruction */
static const struct insn *prev;
static bool prev_mem_fired, stopped;
/* QEMU >= 8.1 translates RISC-V code position-independently (CF_PCREL): one TB serves every
 * virtual address that maps its physical page, and qemu_plugin_insn_vaddr is the address it was
 * translated at -- not the pc it runs at (seen on 10.0: a VS page run through its identity alias).
 * So on API 4 the plugin reads the pc register at each TB's first instruction and shifts the
 * TB's addresses by the difference; 7.2 has no PCREL (delta stays 0). */
static uint64_t delta, prev_pc;

#if DT_API >= 4
/* slots: the reader (plugin_reader.REG_NAMES) has the same list in the same order */
static const char *const REG_NAMES[] = {
    "priv", "mstatus", "mcause", "mepc", "mtval", "mtval2", "mtinst", "mtvec",
    "sstatus", "scause", "sepc", "stval", "stvec", "hstatus", "htval", "htinst",
    "vsstatus", "vscause", "vsepc", "vstval", "vstvec", "virt",
};
#define NREGS (sizeof(REG_NAMES) / sizeof(REG_NAMES[0]))
static struct qemu_plugin_register *regs[NREGS], *pc_reg;
static GByteArray *regbuf;
static bool read_regs = true;
static int rregs_mode = 1;                 /* 0 none, 1 sel, 2 all */

static void vcpu_init(qemu_plugin_id_t id, unsigned int vcpu_index)
{
    /* qemu_plugin_get_registers needs a current vCPU: here, not at install */
    GArray *all = qemu_plugin_get_registers();
    qemu_plugin_reg_descriptor *d = (qemu_plugin_reg_descriptor *)all->data;
    for (unsigned i = 0; i < all->len; i++) {
        for (unsigned k = 0; k < NREGS; k++) {
            if (!regs[k] && strcmp(d[i].name, REG_NAMES[k]) == 0) {
                regs[k] = d[i].handle;
            }
        }
        if (!pc_reg && strcmp(d[i].name, "pc") == 0) {
            pc_reg = d[i].handle;
        }
    }
    g_array_free(all, 1);
    regbuf = g_byte_array_new();
}

static void read_marker_regs(void)
{
    for (unsigned k = 0; k < NREGS; k++) {
        if (!regs[k]) {
            continue;
        }
        g_byte_array_set_size(regbuf, 0);
        int n = qemu_plugin_read_register(regs[k], regbuf);
        if (n > 0 && n <= 8) {
            uint64_t v = 0;
            memcpy(&v, regbuf->data, (size_t)n);
            put(R_REG, (uint8_t)k, (uint16_t)n, 0, v);
        }
    }
}
#endif

static void insn_exec(unsigned int vcpu_index, void *udata)
{
    const struct insn *in = udata;
    if (stopped) {
        return;
    }
    if (n_insn >= limit) {
        char line[64];
        stopped = true;
        put(R_LIMIT, 0, 0, 0, n_insn);
        flush_buf();
        snprintf(line, sizeof line, "L %llu\n", (unsigned long long)n_insn);
        qemu_plugin_outs(line);
        return;
    }
#if DT_API >= 4
    if (in->tb_first && pc_reg) {
        g_byte_array_set_size(regbuf, 0);
        if (qemu_plugin_read_register(pc_reg, regbuf) == 8) {
            uint64_t rt;
            memcpy(&rt, regbuf->data, 8);
            delta = rt - in->pc;
        }
    }
#endif
    uint64_t pc = in->pc + delta;
    if (!prev || prev->cls == C_OTHER || (prev->cls == C_MEM && !prev_mem_fired)
        || (pc != prev_pc + prev->len && pc != prev_pc + (prev->target - prev->pc)
            && pc != prev_pc + (prev->next - prev->pc))) {
        char line[64];
        snprintf(line, sizeof line, "S %llu %llx\n", (unsigned long long)n_insn, (unsigned long long)pc);
        qemu_plugin_outs(line);
        put(R_MARK, 0, 0, 0, n_insn);
#if DT_API >= 4
        if (read_regs) {
            read_marker_regs();
        }
#endif
    }
    put(R_INSN, in->len, in->cls, in->bits, pc);
    prev = in;
    prev_pc = pc;
    prev_mem_fired = false;
    n_insn++;
}

#if DT_API >= 4
static uint64_t stored_value(qemu_plugin_meminfo_t info)
{
    qemu_plugin_mem_value mv = qemu_plugin_mem_get_value(info);
    return mv.type == QEMU_PLUGIN_MEM_VALUE_U8 ? mv.data.u8
         : mv.type == QEMU_PLUGIN_MEM_VALUE_U16 ? mv.data.u16
         : mv.type == QEMU_PLUGIN_MEM_VALUE_U32 ? mv.data.u32
         : mv.type == QEMU_PLUGIN_MEM_VALUE_U64 ? mv.data.u64 : mv.data.u128.low;
}
#endif

static void mem_access(unsigned int vcpu_index, qemu_plugin_meminfo_t info, uint64_t vaddr, void *udata)
{
    if (stopped) {
        return;
    }
    struct qemu_plugin_hwaddr *hw = qemu_plugin_get_hwaddr(info, vaddr);
    uint8_t a = (uint8_t)(qemu_plugin_mem_size_shift(info) & 15);
    if (qemu_plugin_mem_is_store(info)) {
        a |= 1 << 4;
    }
    if (hw) {
        a |= 1 << 5;
        if (qemu_plugin_hwaddr_is_io(hw)) {
            a |= 1 << 6;
        }
    }
    put(R_MEM, a, (uint16_t)(info & 0xffff), info >> 16, vaddr);
    if (hw) {
        put(R_PA, 0, 0, 0, qemu_plugin_hwaddr_phys_addr(hw));
#if DT_API >= 4
        if ((a & (1 << 4)) && (a & (1 << 6))) {
            put(R_VAL, a & 15, 0, 0, stored_value(info));
        } else if ((a & (1 << 4)) && tohost && (qemu_plugin_hwaddr_phys_addr(hw) & ~7ULL) == tohost) {
            unsigned sh = (unsigned)(qemu_plugin_hwaddr_phys_addr(hw) & 7) * 8;
            /* the doubleword was zero until now (a non-zero one ended the program already) */
            uint64_t v = stored_value(info) << sh;
            if (v) {
                char line[80];
                put(R_VAL, a & 15, 1, 0, v);
                stopped = true;
                flush_buf();
                snprintf(line, sizeof line, "T %llu %llx\n", (unsigned long long)(n_insn - 1),
                         (unsigned long long)v);
                qemu_plugin_outs(line);
                return;
            }
        }
#endif
    }
    prev_mem_fired = true;
}

/* ---- classification (RISC-V unprivileged ISA opcode map; RVC quadrants) ---- */
static int64_t sext(uint64_t v, int bits)
{
    return (int64_t)(v << (64 - bits)) >> (64 - bits);
}

static void classify(struct insn *in)
{
    uint32_t b = in->bits;
    in->next = in->target = in->pc + in->len;
    in->cls = C_OTHER;
    if (in->len == 4) {
        switch (b & 0x7f) {
        case 0x33: case 0x13: case 0x3b: case 0x1b: case 0x37: case 0x17:
            in->cls = C_PURE;
            break;
        case 0x63: {                                       /* BRANCH */
            uint64_t imm = ((b >> 31) & 1) << 12 | ((b >> 7) & 1) << 11 | ((b >> 25) & 0x3f) << 5
                           | ((b >> 8) & 0xf) << 1;
            in->cls = C_PURE;
            in->target = in->pc + (uint64_t)sext(imm, 13);
            break;
        }
        case 0x6f: {                                       /* JAL */
            uint64_t imm = ((b >> 31) & 1) << 20 | ((b >> 12) & 0xff) << 12 | ((b >> 20) & 1) << 11
                           | ((b >> 21) & 0x3ff) << 1;
            in->cls = C_PURE;
            in->next = in->target = in->pc + (uint64_t)sext(imm, 21);
            break;
        }
        case 0x03: case 0x23: case 0x2f: case 0x07: case 0x27:   /* LOAD STORE AMO LOAD-FP STORE-FP */
            in->cls = C_MEM;
            break;
        case 0x73:                                         /* SYSTEM: HLV/HLVX/HSV are funct3 4 */
            if (((b >> 12) & 7) == 4) {
                in->cls = C_MEM;
            }
            break;
        default:
            break;
        }
        return;
    }
    uint32_t op = b & 3, f3 = (b >> 13) & 7;
    if (b == 0) {
        return;                                            /* the defined illegal instruction */
    }
    if (op == 0) {
        in->cls = f3 == 0 ? C_PURE : f3 == 4 ? C_OTHER : C_MEM;   /* ADDI4SPN | reserved | FLD..SD */
    } else if (op == 1) {
        if (f3 == 5) {                                     /* C.J */
            uint64_t imm = ((b >> 12) & 1) << 11 | ((b >> 11) & 1) << 4 | ((b >> 9) & 3) << 8
                           | ((b >> 8) & 1) << 10 | ((b >> 7) & 1) << 6 | ((b >> 6) & 1) << 7
                           | ((b >> 3) & 7) << 1 | ((b >> 2) & 1) << 5;
            in->cls = C_PURE;
            in->next = in->target = in->pc + (uint64_t)sext(imm, 12);
        } else if (f3 >= 6) {                              /* C.BEQZ / C.BNEZ */
            uint64_t imm = ((b >> 12) & 1) << 8 | ((b >> 10) & 3) << 3 | ((b >> 5) & 3) << 6
                           | ((b >> 3) & 3) << 1 | ((b >> 2) & 1) << 5;
            in->cls = C_PURE;
            in->target = in->pc + (uint64_t)sext(imm, 9);
        } else if (f3 == 3 && ((b >> 12) & 1) == 0 && ((b >> 2) & 0x1f) == 0) {
            in->cls = C_OTHER;                             /* C.LUI/C.ADDI16SP imm 0: reserved */
        } else if (f3 == 1 && ((b >> 7) & 0x1f) == 0) {
            in->cls = C_OTHER;                             /* C.ADDIW rd 0: reserved */
        } else {
            in->cls = C_PURE;
        }
    } else {
        if (f3 == 0) {
            in->cls = C_PURE;                              /* C.SLLI */
        } else if (f3 == 4) {
            uint32_t rs1 = (b >> 7) & 0x1f, rs2 = (b >> 2) & 0x1f;
            /* C.MV / C.ADD are pure; C.JR, C.JALR, C.EBREAK are other */
            in->cls = (rs2 != 0 && rs1 != 0) ? C_PURE : C_OTHER;
        } else {
            in->cls = C_MEM;                               /* C.FLDSP .. C.SDSP */
        }
    }
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    size_t n = qemu_plugin_tb_n_insns(tb);
    bool after_nonpure = true;             /* the TB's first instruction may follow anything */
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *qi = qemu_plugin_tb_get_insn(tb, i);
        /* one per translation, never freed: TBs are retranslated rarely in these guests, and a
         * freed struct could still be referenced by a TB QEMU keeps */
        struct insn *in = calloc(1, sizeof *in);
        in->pc = qemu_plugin_insn_vaddr(qi);
        in->len = (uint8_t)qemu_plugin_insn_size(qi);
#if DT_API == 1
        memcpy(&in->bits, qemu_plugin_insn_data(qi), in->len <= 4 ? in->len : 4);
#else
        qemu_plugin_insn_data(qi, &in->bits, in->len <= 4 ? in->len : 4);
#endif
        classify(in);
        in->tb_first = i == 0;
        enum qemu_plugin_cb_flags fl = QEMU_PLUGIN_CB_NO_REGS;
#if DT_API >= 4
        /* only an instruction that can be a marker reads registers (the TB's first, or one
         * after a memory or other instruction: within a TB a pure one falls through) */
        if (rregs_mode == 2 || (rregs_mode == 1 && after_nonpure)) {
            fl = QEMU_PLUGIN_CB_R_REGS;
        }
#endif
        qemu_plugin_register_vcpu_insn_exec_cb(qi, insn_exec, fl, in);
        if (in->cls == C_MEM) {
            qemu_plugin_register_vcpu_mem_cb(qi, mem_access, QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_MEM_RW, NULL);
        }
        after_nonpure = in->cls != C_PURE;
    }
    (void)after_nonpure;
}

static void at_exit(qemu_plugin_id_t id, void *udata)
{
    flush_buf();
}

static void at_process_exit(void)
{
    flush_buf();                           /* QEMU 7.2's finisher calls exit() on the vCPU thread */
}

EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    const char *out = NULL;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "out=", 4) == 0) {
            out = argv[i] + 4;
        } else if (strncmp(argv[i], "limit=", 6) == 0) {
            limit = strtoull(argv[i] + 6, NULL, 10);
#if DT_API >= 4
        } else if (strncmp(argv[i], "tohost=", 7) == 0) {
            tohost = strtoull(argv[i] + 7, NULL, 0) & ~7ULL;
        } else if (strcmp(argv[i], "regs=0") == 0) {
            read_regs = false;
        } else if (strcmp(argv[i], "rregs=all") == 0) {
            rregs_mode = 2;
        } else if (strcmp(argv[i], "rregs=none") == 0) {
            rregs_mode = 0;
#endif
        }
    }
    if (!out || !info->system_emulation) {
        fprintf(stderr, "difftrace: needs out=FILE and system emulation\n");
        return -1;
    }
    out_fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out_fd < 0) {
        perror("difftrace: out");
        return -1;
    }
    put(R_HEAD, DT_API, 0, 0x43525444, 1);
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
#if DT_API >= 4
    qemu_plugin_register_vcpu_init_cb(id, vcpu_init);
#endif
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    atexit(at_process_exit);
    return 0;
}
