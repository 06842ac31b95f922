/* uart: the ns16550 at 0x10000000 as the model and QEMU virt implement it, register by register,
 * with the divisor latch access bit (LCR.DLAB, bit 7) clear and set (PC16550D datasheet, "Register
 * addressing": DLAB=1 maps offsets 0 and 1 to the divisor latch DLL/DLM, every other offset is the
 * same register whatever DLAB; RBR/THR and IER only with DLAB=0).
 *  - RBR with no data received reads 0 (QEMU: the last received byte, none yet), never the divisor.
 *  - Reset values as QEMU virt's serial leaves them: IER 0, IIR 0x01 (no interrupt pending), LCR 0,
 *    MCR 0x08 (OUT2), LSR 0x60 (THRE|TEMT: transmitter empty), MSR 0xb0 (DCD, DSR, CTS), SCR 0,
 *    divisor 0x000c (9600 baud).
 *  - SCR, LCR, MCR (5 bits) and IER (4 bits) read back what was written; DLL/DLM keep the divisor.
 *  - IIR: with IER.THRI set and the transmitter empty, 0x02 (THR empty) until IIR is read or THR
 *    written; FCR bit 0 (FIFOs enabled) shows as IIR bits 7:6.
 */
#include "ptest.h"
#define R(off, reg) lbu reg, off(s0)
PTEST_BEGIN
        li s0, 0x10000000
        TEST(1);  R(0, a0); CHECK(a0, 0)         /* RBR, no data */
        TEST(2);  R(1, a0); CHECK(a0, 0)         /* IER */
        TEST(3);  R(2, a0); CHECK(a0, 0x01)      /* IIR */
        TEST(4);  R(3, a0); CHECK(a0, 0)         /* LCR */
        TEST(5);  R(4, a0); CHECK(a0, 0x08)      /* MCR */
        TEST(6);  R(5, a0); CHECK(a0, 0x60)      /* LSR */
        TEST(7);  R(6, a0); CHECK(a0, 0xb0)      /* MSR */
        TEST(8);  R(7, a0); CHECK(a0, 0)         /* SCR */
        TEST(9);  li t0, 0x5a; sb t0, 7(s0); R(7, a0); CHECK(a0, 0x5a)
        TEST(10); li t0, 0x83; sb t0, 3(s0)      /* DLAB=1, 8N1 */
                  R(0, a0); CHECK(a0, 0x0c)      /* DLL */
        TEST(11); R(1, a0); CHECK(a0, 0)         /* DLM */
        TEST(12); R(2, a0); CHECK(a0, 0x01)      /* IIR is not behind DLAB */
        TEST(13); R(3, a0); CHECK(a0, 0x83)
        TEST(14); R(5, a0); CHECK(a0, 0x60)
        TEST(15); R(7, a0); CHECK(a0, 0x5a)
        TEST(16); li t0, 0x01; sb t0, 0(s0); li t0, 0x02; sb t0, 1(s0)   /* divisor 0x0201 */
                  R(0, a0); CHECK(a0, 0x01)
                  R(1, a0); CHECK(a0, 0x02)
        TEST(17); li t0, 0x03; sb t0, 3(s0)      /* DLAB=0 */
                  R(0, a0); CHECK(a0, 0)         /* RBR, not the divisor latch */
        TEST(18); R(1, a0); CHECK(a0, 0)         /* IER, not DLM */
        TEST(19); li t0, 0xf5; sb t0, 1(s0); R(1, a0); CHECK(a0, 0x05)   /* IER: 4 bits; RDI|RLSI */
                  sb zero, 1(s0)
        TEST(20); li t0, 0x83; sb t0, 3(s0)      /* the divisor survived */
                  R(0, a0); CHECK(a0, 0x01)
                  R(1, a0); CHECK(a0, 0x02)
                  li t0, 0x03; sb t0, 3(s0)
        TEST(21); li t0, 0xff; sb t0, 4(s0); R(4, a0); CHECK(a0, 0x1f)   /* MCR: 5 bits */
                  li t0, 0x08; sb t0, 4(s0)
        TEST(22); li t0, 0x02; sb t0, 1(s0)      /* IER.THRI on, THR empty: IIR says so once */
                  R(2, a0); CHECK(a0, 0x02)
                  R(2, a0); CHECK(a0, 0x01)
        TEST(23); li t0, 0x20; sb t0, 0(s0)      /* a THR write (a space) makes it pending again */
                  R(2, a0); CHECK(a0, 0x02)
                  sb zero, 1(s0)
        TEST(24); li t0, 0x01; sb t0, 2(s0)      /* FCR: FIFOs on -> IIR bits 7:6 set */
                  R(2, a0); CHECK(a0, 0xc1)
                  sb zero, 2(s0)
        PTEST_PASS
PTEST_DATA
