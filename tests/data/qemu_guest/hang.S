# A guest that halts in a wfi with no interrupt source enabled: the end "wfi" (it used to be
# the timeout guest; tests use spin.S for that now).
    .section .text.start
    .globl _start
_start:
1:  wfi
    j 1b
