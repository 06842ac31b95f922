/* hinsn_order's own copies of the HLV.D / HSV.D probe stub, one per probe sequence, each at a pc no other
 * probe executes: QEMU 7.2 keys a translated block on pc, privilege and hstatus.HU-derived HLSX but not on
 * V, so the first mode that executes a copy fixes its outcome (see hinsn_order.c).  Same shape as the
 * runtime's stubs (guests/runtime/start.S): the access, then `li t6, 0x600d; ecall`. */
    .option push
    .option norvc
    .text
    .align 12
#define HSTUB(name, ...) \
    .globl name; .align 4; name: __VA_ARGS__; li t6, 0x600d; ecall
    HSTUB(ho_hsv_a, hsv.d a1, (a0))
    HSTUB(ho_hsv_b, hsv.d a1, (a0))
    HSTUB(ho_hlv_c, hlv.d a1, (a0))
    HSTUB(ho_hlv_d, hlv.d a1, (a0))
    HSTUB(ho_hsv_e, hsv.d a1, (a0))
    HSTUB(ho_hsv_f, hsv.d a1, (a0))
    HSTUB(ho_hsv_g, hsv.d a1, (a0))
    HSTUB(ho_hsv_h, hsv.d a1, (a0))
    HSTUB(ho_hlv_j, hlv.d a1, (a0))
    .align 12
    .option pop
