"""Debian's OpenSBI fw_jump.elf with our S-mode payload (guests/firmware/sbi_payload), in lockstep
with QEMU 10.0 to the end (issue 12, "Firmware").

Real parts: Debian's opensbi package (scripts/setup), the payload built with the Debian toolchain,
QEMU 10.0 with -bios fw_jump.elf, the model booting the same firmware with QEMU's own device tree.
The end-to-end case runs the whole boot -- about 11.9 M instructions: OpenSBI's banner, its
platform discovery (device tree, PLIC, ACLINT, PMP/HPM/Sstc probes), the payload's SBI calls,
a VS guest under every hgatp mode and SRST -- and takes about two to three minutes on 2 cores.
"""
from __future__ import annotations

import shutil

import pytest

from difftest import engine, firmware as F, guests as G
from difftest.backends.binaries import KNOWN
from refmodel.platform import DEFAULT
from refmodel.plic import PLIC_BASE, Plic, PlicAccessError

FW_JUMP = F.SHORT_NAMES["opensbi-jump"]
need_all = pytest.mark.skipif(not FW_JUMP.is_file() or not KNOWN["qemu-10.0"][0].exists()
                              or shutil.which(G.CC) is None,
                              reason="Debian's opensbi, QEMU 10.0 and the cross compiler are needed (scripts/setup)")


def test_plic_registers_as_a_firmware_programs_them():
    p = Plic()
    p.write(PLIC_BASE + 4 * 5, 4, 0xFF)                   # priority: 3 bits (WARL)
    p.write(PLIC_BASE, 4, 7)                              # source 0 does not exist
    assert (p.read(PLIC_BASE + 20, 4), p.read(PLIC_BASE, 4)) == (7, 0)
    p.write(PLIC_BASE + 0x2080, 4, 0xFFFFFFFF)            # S context's enables: no bit for source 0
    assert p.read(PLIC_BASE + 0x2080, 4) == 0xFFFFFFFE
    p.write(PLIC_BASE + 0x201000, 4, 0x1F)                # S threshold
    assert p.read(PLIC_BASE + 0x201000, 4) == 7
    assert p.read(PLIC_BASE + 0x201004, 4) == 0           # claim: nothing pending
    assert p.read(PLIC_BASE + 0x1000, 4) == 0             # pending: read-only, none
    with pytest.raises(PlicAccessError):
        p.read(PLIC_BASE + 0x201000, 8)
    assert not p.contains(PLIC_BASE + 0x202000)           # one hart: two contexts


@need_all
def test_device_tree_is_qemus_own_and_stable(tmp_path, monkeypatch):
    payload = F.build_payload("sbi_payload")
    plat = F.platform_with(DEFAULT, "opensbi-jump")
    monkeypatch.setattr(F, "DTB_CACHE", tmp_path / "one")
    a = F.dtb("qemu-10.0", payload, "default", plat)
    monkeypatch.setattr(F, "DTB_CACHE", tmp_path / "two")  # dumped again: -seed 0 pins /chosen/rng-seed
    assert F.dtb("qemu-10.0", payload, "default", plat) == a
    assert len(list((tmp_path / "one").glob("*.dtb"))) == 1
    assert a[:4] == b"\xd0\x0d\xfe\xed" and b"rng-seed" in a and b"riscv,plic0" in a
    assert "-seed" in plat.qemu_machine() and str(FW_JUMP.resolve()) in plat.qemu_machine()
    assert plat.describe()["firmware_sha256"] and DEFAULT.qemu_machine()[DEFAULT.qemu_machine().index("-bios") + 1] == "none"


@need_all
def test_opensbi_fw_jump_boots_the_payload_in_lockstep_with_qemu_10(tmp_path):
    payload = F.build_payload("sbi_payload")
    plat = F.platform_with(DEFAULT, "opensbi-jump")
    case = engine.run_case(payload, backends=["qemu-10.0", "model"], out_dir=tmp_path, timeout=900,
                           max_steps=15_000_000, platform=plat)
    q, m = case.runs["qemu-10.0"], case.runs["model"]
    assert q.footer.status == m.footer.status == "exit", (q.message, m.message)
    assert q.footer.exit_code == m.footer.exit_code == 0                 # SRST shutdown -> finisher pass
    (pair,) = case.pairs
    # every step of both runs compared, nothing skipped: firmware, payload, VS guests, SRST
    assert pair.status == "match", pair.message
    assert q.footer.steps == m.footer.steps > 11_000_000
    assert pair.steps_compared == q.footer.steps and pair.steps_skipped == (0, 0) and pair.xlats_compared > 3_000_000
    out = m.footer.uart
    assert out == q.footer.uart
    for line in ("OpenSBI v1.1", "Platform Console Device   : uart8250", "Boot HART PMP Count       : 16",
                 "Boot HART MHPM Count      : 16", "SBI spec version 0x0000000001000000",
                 "hgatp bare: v ok", "hgatp sv39x4: v ok", "hgatp sv48x4: v ok", "hgatp sv57x4: v ok",
                 "sbi_payload: PASS"):
        assert line in out, line
    # the trace header records the firmware (and the trace cache keys on it)
    assert q.header.platform["firmware"] == str(FW_JUMP.resolve())
    assert "-bios" in q.header.command and str(FW_JUMP.resolve()) in q.header.command


def test_without_firmware_the_machine_is_unchanged():
    m = DEFAULT.qemu_machine()
    assert m[m.index("-bios") + 1] == "none" and "-seed" not in m
    # a firmware replaces -bios none, adds -seed 0, and runs without semihosting (refmodel.loader.with_firmware)
    plain = [x for x in m if x not in ("-semihosting-config", "enable=on,target=native")]
    assert F.platform_with(DEFAULT, "opensbi-jump").qemu_machine() == \
        plain[:plain.index("-bios") + 1] + [str(FW_JUMP.resolve())] + plain[plain.index("-bios") + 2:] + ["-seed", "0"]
    assert "firmware" not in DEFAULT.describe()
    assert engine.pair_command("smoke", "", "", ["qemu-10.0"], "default", DEFAULT) == \
        ["difftest", "run", "smoke", "--backend", "qemu-10.0"]
