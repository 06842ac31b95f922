# A guest that never finishes and (almost) never executes: wfi with no interrupt source
# enabled, so the timeout path is exercised without a huge log.
    .section .text.start
    .globl _start
_start:
1:  wfi
    j 1b
