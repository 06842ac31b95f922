/* fail: a program that fails on purpose -- test 3 finds 1 + 1 != 3 and ends with tohost = (3 << 1) | 1,
 * which both backends must report as exit code 3 (the riscv-tests convention).
 * difftest: not in the nightly (it fails on purpose; tests/test_program_ends.py runs it). */
#include "ptest.h"
PTEST_BEGIN
        TEST(1)
        li a0, 1
        CHECK(a0, 1)
        TEST(2)
        addi a0, a0, 1
        CHECK(a0, 2)
        TEST(3)
        CHECK(a0, 3)
        PTEST_PASS
PTEST_DATA
