"""The QEMU backend's trap-detail pass (difftest/backends/trap_detail.py): htval/mtval2, GVA and the
target mode of every trap, read from QEMU's own register dump at the trap handler's entry.

Unit tests on hand-made dumps for the matching rules, then real QEMU 7.2 and 10.0 on a real guest
(htinst/mtinst read through QEMU's gdbstub, difftest/backends/gdbstub.py)
(`faults`, Sv39x4 x Sv39: guest-page faults to M and HS, page faults to VS, ecalls) where every trap
must be matched, and the finding this pass exists for: QEMU 10.0 leaves mtval2 and mstatus.GVA of an
earlier guest-page fault in place on a later ecall into M (Priv. 20240411, H "Machine Trap Value
Register (mtval2)": "For other traps, mtval2 is set to zero"; mstatus.GVA is written on every trap
into M, 1 only when mtval holds a guest virtual address)."""
from __future__ import annotations

from difftest.backends import run as run_backend
from difftest.backends.trap_detail import TrapDetail, _entry
from difftest.config_block import patch_copy
from difftest.guests import build
from difftest.trace import Trap, read_trace

M_DUMP = {"v": 0, "pc": 0x80000100, "mtvec": 0x80000100, "stvec": 0x80000200, "mcause": 21, "mepc": 0x80001000,
          "scause": 0, "sepc": 0, "mtval2": 0x2000, "mstatus": 1 << 38, "htval": 0, "hstatus": 0}


def test_m_target_reads_mtval2_and_mstatus_gva():
    assert _entry(M_DUMP, Trap(cause=21, epc=0x80001000)) == ("M", 0x2000, True)


def test_hs_target_reads_htval_and_hstatus_gva():
    d = dict(M_DUMP, pc=0x80000200, scause=23, sepc=0x80001004, htval=0x44, hstatus=1 << 6, mcause=0)
    assert _entry(d, Trap(cause=23, epc=0x80001004)) == ("HS", 0x44, True)


def test_vs_target_uses_the_swapped_supervisor_fields():
    # V=1: QEMU's dump shows the guest's vstvec/vscause/vsepc in the stvec/scause/sepc fields
    d = {"v": 1, "pc": 0x80000300, "stvec": 0x80000301, "scause": 13, "sepc": 0x80001008,
         "vstvec": 0x80000200, "vscause": 0, "vsepc": 0}
    assert _entry(d, Trap(cause=13, epc=0x80001008)) == ("VS", None, None)


def test_a_dump_that_is_not_this_traps_entry_is_skipped_not_guessed():
    t = Trap(cause=21, epc=0x80001000)
    other = dict(M_DUMP, mepc=0x80000ff0)                   # the handler ran again, not for this trap
    both = dict(M_DUMP, stvec=0x80000100, scause=21, sepc=0x80001000)   # M and HS both fit: cannot tell
    assert _entry(other, t) is None and _entry(both, t) is None
    td = TrapDetail([other, M_DUMP])
    td.fill(t)
    assert (t.target, t.htval, t.gva, td.matched, td.skipped_dumps) == ("M", 0x2000, True, 1, 1)
    u = Trap(cause=9, epc=0x80002000)
    td.fill(u)                                              # no dump left: stays "not shown"
    assert (u.target, u.htval, u.gva, td.traps, td.matched) == (None, None, None, 2, 1)


def _qemu_trace(backend, tmp_path):
    elf = patch_copy(build("faults"), tmp_path, hgatp_mode="sv39x4", vs_mode="sv39").path
    r = run_backend(elf, backend=backend, out_path=tmp_path / f"{backend}.trace.bin", use_cache=False,
                    timeout=120)
    assert r.status == "ok", r.message
    return read_trace(r.trace_path)


def test_every_trap_of_a_real_guest_is_matched_on_both_qemus(tmp_path):
    for backend in ("qemu-7.2", "qemu-10.0"):
        header, steps, footer = read = _qemu_trace(backend, tmp_path)
        traps = [s.trap for s in steps if s.trap]
        td = footer.extra["trap_detail"]
        assert all(header.exposes[k] for k in ("trap.htval", "trap.gva", "trap.target")), read[0].exposes
        assert td["traps"] == len(traps) > 30 and td["matched"] == len(traps), td
        assert {t.target for t in traps} == {"M", "HS", "VS"}
        # a guest-page fault into M or HS carries the faulting GPA >> 2 (H "Trap Entry")
        gpf = [t for t in traps if t.cause in (20, 21, 23) and t.target != "VS"]
        assert gpf and all(t.htval for t in gpf)
        # htinst/mtinst through the gdbstub run: every trap into M or HS has it, VS has none
        assert header.exposes["trap.tinst"] and td["tinst"] == sum(1 for t in traps if t.target != "VS")
        assert all((t.tinst is None) == (t.target == "VS") for t in traps)
        # QEMU 10.0 writes transformed instructions (e.g. 0x3583 for `ld a1, 0(a0)`), QEMU 7.2 zero:
        # both allowed (H "Transformed Instruction or Pseudoinstruction"), each its profile's choice
        loads = {t.tinst for t in gpf if t.cause == 21}
        assert loads == {0} if backend == "qemu-7.2" else 0 not in loads


def test_qemu10_keeps_stale_mtval2_and_gva_on_a_later_ecall(tmp_path):
    _, steps, _ = _qemu_trace("qemu-10.0", tmp_path)
    ecalls = [s.trap for s in steps if s.trap and s.trap.cause == 9 and s.trap.target == "M"]
    assert any(t.htval and t.gva for t in ecalls)          # FINDING: should be htval=0, gva=False


def test_gdbstub_failure_is_a_classified_error_not_a_hang(tmp_path):
    """A QEMU that cannot start (here: an unknown option) gives GdbError at once; the backend then
    records the message and lists htinst/mtinst as not compared (tests/test_compare.py)."""
    import time

    import pytest

    from difftest.backends import binaries, gdbstub
    from difftest.backends import qemu as Q
    b = binaries.locate("qemu-10.0")
    cmd = Q.base_command(b, build("smoke"), "default") + ["-no-such-option"]
    t = time.monotonic()
    with pytest.raises(gdbstub.GdbError, match="did not open its gdbstub socket"):
        gdbstub.read_at(cmd, b.env, {0x80000000}, ("mcause",), tmp_path, 20)
    assert time.monotonic() - t < 10
