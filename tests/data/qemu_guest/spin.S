# A runaway guest: spins forever (the step-limit path).
    .section .text.start
    .globl _start
_start:
1:  j 1b
