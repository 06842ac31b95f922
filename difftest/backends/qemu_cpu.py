"""QEMU's ``-d cpu`` register dump: parsed into one dict per dump.

QEMU prints the dump before it executes a translation block: `` V      =   0``, then
`` pc``, the machine/hypervisor/supervisor CSRs it shows (mstatus, hstatus, vsstatus, mip,
mie, mideleg, hideleg, medeleg, hedeleg, mtvec, stvec, vstvec, mepc, sepc, vsepc, mcause,
scause, vscause, mtval, stval, htval, mtval2, mscratch, sscratch, satp) and x0..x31.  It does
not show mtinst/htinst.  Used by ``difftest bisect first-divergence`` (a dump per instruction)
and by the trap-detail pass of the QEMU backend (a dump at each trap handler's entry).
"""
from __future__ import annotations


def parse_cpu_log(lines, interrupts: bool = False):
    """Yield one dict per ``-d cpu`` dump (one per instruction with one-insn-per-tb).  A dump of a
    TB QEMU then did not run -- left at its start or rewound at a device access, under -icount
    (qemu_log._NOT_RUN; docs/ARCHITECTURE.md 7b) -- is dropped: the same pc is dumped again.
    ``interrupts`` (the log has ``-d int``): also yield ``{"interrupt": mip bit, "epc": pc}`` where
    QEMU took an asynchronous interrupt -- after the dump of the instruction before it, before the
    handler's (an interrupt step runs no instruction, so it has no dump of its own)."""
    from difftest.backends.qemu_log import _INT, _NOT_RUN
    cur = None
    for ln in lines:
        if cur is not None and not ln.startswith(" "):
            m = _NOT_RUN.match(ln)
            if m and cur.get("pc") == int(m.group(1) or m.group(2), 16):
                cur = None
                continue
        if interrupts and ln.startswith("riscv_cpu_do_interrupt"):
            m = _INT.match(ln)
            if m and m.group(1) == "1":
                if cur is not None:
                    yield cur
                    cur = None
                yield {"interrupt": int(m.group(2), 16), "epc": int(m.group(3), 16)}
            continue
        if ln.startswith(" V "):
            if cur is not None:
                yield cur
            cur = {"v": int(ln.split("=")[1].strip(), 16)}
            continue
        if cur is None or not ln.startswith(" "):
            continue
        toks = ln.split()
        i = 0
        while i + 1 < len(toks):
            name, val = toks[i], toks[i + 1]
            if "/" in name:
                name = name.split("/")[1]
            try:
                cur[name] = int(val, 16)
            except ValueError:
                break
            i += 2
    if cur is not None:
        yield cur


SWAPPED = ("stvec", "sscratch", "sepc", "scause", "stval", "satp")


def unswap(q: dict) -> dict:
    """QEMU keeps the VS copies of the supervisor CSRs in its HS fields while V=1
    (riscv_cpu_swap_hypervisor_regs), and its -d cpu dump prints the raw fields: so when V=1 the dumped
    stvec/sepc/... are the guest's vstvec/vsepc/... and the HS values are not shown at all; mstatus
    then carries vsstatus's fields.  Map them back and drop what the dump cannot show."""
    if not q.get("v"):
        return q
    q = dict(q)
    for k in SWAPPED:
        if k in q:
            q["vs" + k[1:]] = q.pop(k)
    q.pop("mstatus", None)
    q.pop("vsstatus", None)
    return q
