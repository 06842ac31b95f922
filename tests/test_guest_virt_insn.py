"""guests/virt_insn on real QEMU (the model: tests/test_model_every_guest.py): illegal-instruction (2)
or virtual-instruction (22) for WFI, SRET, counter and satp accesses from HS, U, VS and VU under
TW/TSR/TVM, VTW/VTSR/VTVM and the counter-enable registers (Priv. 20240411 3.1.6.5, H
"Virtual-Instruction Exceptions").

FINDINGS (both QEMUs): 3 WFI in VU with TW=1 -> 22 (must be 2); 10, 14 SRET in VU -> 2 (must be 22);
44 csrr satp in VU -> 2 (must be 22).  QEMU 7.2 also: 40 satp in VS with VTVM=1 does not trap; 43 satp
in VS with TVM=1 traps (TVM affects HS only); 54 hgatp in HS with TVM=1 does not trap.  Hypervisor,
VS and machine CSR reads (50-62) are right on QEMU 10.0."""
from __future__ import annotations

import re

import pytest
from test_guests import probe_lines, run_guest, x_ids


@pytest.mark.parametrize("qemu,xs", [("10.0", [3, 10, 14, 44]), ("7.2", [3, 10, 14, 40, 43, 44, 54])])
def test_virt_insn_exception_codes(qemu, xs, tmp_path):
    rc, out = run_guest("virt_insn", "bare", qemu, tmp_path)
    assert rc == 1 and re.search(rf"^DONE probes=42 fails={len(xs)}$", out, re.M), out
    assert x_ids(out) == xs, out
    p = probe_lines(out)
    assert "trap cause=22 " in p[3] and "trap cause=2 " in p[10] and "trap cause=2 " in p[44]
    # the rest agrees with the spec, e.g. the counter rules and VTW/VTSR
    assert "trap cause=22 " in p[20] and "trap cause=22 " in p[25] and "trap cause=22 " in p[7]
    assert "trap cause=22 " in p[51] and "trap cause=22 " in p[56] and "trap cause=2 " in p[60]
