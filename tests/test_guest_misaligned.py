"""guests/misaligned on real QEMU 7.2 and 10.0 (the model passing it in every mode is
tests/test_model_every_guest.py).  Misaligned loads/stores/HLV/HSV that cross into a page the G
stage does not map, or maps read-only, fault on the faulting portion: mtval = that portion's GVA,
mtval2 = its GPA >> 2, mtinst 0 or the transformed instruction with Addr. Offset (Priv. 20240411
3.1.16 mtval, H "mtval2", H "Transformed Instruction") -- both QEMUs agree with the spec there.

FINDINGS (both QEMUs), spec-decided, stable across modes:
  40 amo-misaligned: a misaligned AMO raises load address-misaligned (4); an AMO's exceptions are
     store/AMO ones: address-misaligned 6 or access fault 7 (Unpriv. "Zaamo": "an address-misaligned
     exception or an access-fault exception"; cause 6 is "Store/AMO address misaligned").
  42 sc-misaligned: a misaligned SC without a reservation fails (rd=1) with no exception; Zalrsc
     requires the exception whatever the reservation (riscv-isa-manual#217: "There's no ambiguity")."""
from __future__ import annotations

import re

import pytest
from test_guests import MODES, probe_lines, run_guest, x_ids


@pytest.mark.parametrize("qemu", ["10.0", "7.2"])
@pytest.mark.parametrize("mode", MODES)
def test_misaligned_on_qemu(mode, qemu, tmp_path):
    rc, out = run_guest("misaligned", mode, qemu, tmp_path)
    assert re.search(r"^DONE probes=\d+ fails=2$", out, re.M) and rc == 1, out
    assert x_ids(out) == [40, 42], out
    p = probe_lines(out)
    assert "trap cause=4 " in p[40] and " ok val=0x1" in p[42]
    if mode != "bare":
        # the faulting portion: the next page's first byte, and Addr. Offset in rs1 of mtinst (10.0)
        assert "tval=0x100001000 htval=0x40000400" in p["ld-cross-unmapped"]
        assert "tval=0x100005000 htval=0x40001400" in p["sd-rw-into-ro"]
        if qemu == "10.0":
            assert "tinst=0x23583 " in p["ld-cross-unmapped"]     # ld a1,0(a0) with offset 4 in rs1
