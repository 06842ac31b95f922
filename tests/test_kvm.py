"""refmodel.kvm: the per-VM HGATP mode series, v4 and merged forms (series-facts.md), with hosts that
answer hgatp writes like a hart with a Profile (Priv. 20240411 H "hgatp": MODE is WARL)."""
import errno
import json
import subprocess
import sys

import pytest

from refmodel import kvm
from refmodel.profile import BASE, PROFILES

ALL = ["sv39x4", "sv48x4", "sv57x4"]
HOLE = ["sv39x4", "sv57x4"]


def vm(form, modes=ALL, **kw):
    host = kvm.HartHost.with_modes(modes, **kw)
    return kvm.VM(form, kvm.probe(host, form), host), host


def test_gpa_bits_and_root_index():
    assert [kvm.gpa_bits(n) for n in (3, 4, 5)] == [41, 50, 59]
    assert kvm.root_index((1 << 41) - 1, 3) == 2047 and kvm.root_index(1 << 30, 3) == 1
    assert kvm.root_index(1 << 39, 4) == 1 and kvm.root_index(1 << 48, 5) == 1
    assert kvm.root_index(1 << 41, 3) == 0           # bits above the GPA size are masked off


@pytest.mark.parametrize("modes,v4mask,v4lv,mlv", [
    (ALL, 0b111, 5, 5), (["sv39x4"], 0b001, 3, 3), (["sv39x4", "sv48x4"], 0b011, 4, 4),
    (HOLE, 0b101, 5, 5), (["sv48x4"], 0b010, 4, 4), ([], 0, 0, 0)])
def test_probe_both_forms(modes, v4mask, v4lv, mlv):
    host = kvm.HartHost.with_modes(modes)
    p = kvm.probe(host, "v4")
    assert (p.mask, p.max_levels) == (v4mask, v4lv) and host.read() == 0
    assert ("csrw", 10 << 60) in p.writes and ("csrw", 8 << 60) in p.writes     # no early exit
    host = kvm.HartHost.with_modes(modes)
    m = kvm.probe(host, "merged")
    assert m.max_levels == mlv and host.read() == 0
    if mlv == 5:                                     # top-down: stops at the first mode that sticks
        assert [w for w in m.writes if w[0] == "csrw" and w[1] >> 60 and not (w[1] >> 44) & 0x3FFF] == [("csrw", 10 << 60)]


@pytest.mark.parametrize("policy", ["keep", "bare"])
def test_probe_with_profiles_and_policies(policy):
    for name, lv in (("qemu-10.0", 5), ("qemu-10.0-sv39", 3), ("qemu-10.0-sv48", 4)):
        prof = PROFILES[name].with_(hgatp_unsupported_mode=policy)
        assert kvm.probe(kvm.HartHost(prof), "v4").max_levels == lv
        assert kvm.probe(kvm.HartHost(prof), "merged").max_levels == lv


def test_vmidlen_probe():
    assert kvm.probe(kvm.HartHost(BASE.with_(vmidlen=7)), "v4").vmidlen == 7
    assert kvm.probe(kvm.HartHost(BASE.with_(vmidlen=0)), "merged").vmidlen == 0


def test_v4_enable_cap_rules():
    v, _ = vm("v4", HOLE)
    assert v.check_extension() == 0b101 and v.mode == 10          # default: the maximum mode
    assert v.enable_cap(8, flags=1) == -errno.EINVAL
    assert v.enable_cap(9) == -errno.EINVAL                       # host lacks Sv48x4
    assert v.enable_cap(7) == -errno.EINVAL and v.enable_cap(11) == -errno.EINVAL
    assert v.enable_cap(8) == 0 and v.levels == 3
    assert v.enable_cap(10) == 0 and v.levels == 5                 # repeated: last wins
    v.create_vcpu()
    assert v.enable_cap(9) == -errno.EINVAL                       # invalid mode checked before busy
    assert v.enable_cap(8) == -errno.EBUSY
    v, _ = vm("v4")
    assert v.set_region(0, 0x80000, 16) == 0 and v.enable_cap(8) == -errno.EBUSY
    assert v.set_region(0, 0x80000, 0) == 0 and v.enable_cap(8) == 0   # deleted again: empty


def test_v4_noop_on_32bit_host():
    v, _ = vm("v4", ALL, xlen=32)
    assert v.enable_cap(12345, flags=7) == 0


def test_merged_enable_cap_rules():
    v, _ = vm("merged", ["sv39x4", "sv48x4"])
    assert v.check_extension(on_vm=False) == 50 and v.check_extension() == 50
    assert v.enable_cap(41) == 0 and v.levels == 3 and v.check_extension() == 41
    assert v.check_extension(on_vm=False) == 50
    assert v.enable_cap(50) == 0 and v.levels == 4
    assert v.enable_cap(51) == -errno.EINVAL                      # more levels than the host has
    assert v.enable_cap(60) == -errno.EINVAL
    v.create_vcpu()
    assert v.enable_cap(41) == -errno.EBUSY


def test_hole_host_difference():
    """Sv39x4+Sv57x4 without Sv48x4: v4 rejects mode 9; merged accepts 50 bits and programs a mode
    the hart lacks -- the hart (WARL) does not keep it."""
    v4, _ = vm("v4", HOLE)
    assert v4.enable_cap(9) == -errno.EINVAL
    m, host = vm("merged", HOLE)
    assert m.enable_cap(50) == 0 and m.mode == 9
    written, read = m.program(kvm.HartHost(host.profile))
    assert written >> 60 == 9 and read >> 60 != 9


@pytest.mark.parametrize("levels,mode", [(3, 8), (4, 9), (5, 10)])
def test_region_limit_at_top_of_gpa_space(levels, mode):
    v, _ = vm("v4")
    assert v.enable_cap(mode) == 0
    top = 1 << (kvm.gpa_bits(levels) - 12)
    assert v.set_region(0, top - 2, 1) == 0
    assert v.set_region(1, top - 1, 1) == -errno.EFAULT          # the very last page can never be mapped
    assert v.set_region(2, top - 0x10, 0x10) == -errno.EFAULT


def test_gstage_mappings_sizes():
    g = kvm.GStage(3)
    plan = kvm.plan_mappings(0x8000_0000 - 0x1000, 0x1_8000_0000 - 0x1000, (1 << 30) + (2 << 20) + 0x2000)
    assert [s for _, _, s in plan] == [0x1000, 1 << 30, 1 << 21, 0x1000]
    for gpa, hpa, size in plan:
        g.map(gpa, hpa, size)
    assert g.lookup(0x8000_0000 + 0x123456) == 0x1_8000_0000 + 0x123456
    assert g.lookup(0x7FFF_F010) == 0x1_7FFF_F010
    assert g.lookup(0x9000_0000 + (1 << 41)) == g.lookup(0x9000_0000)   # bits above GPA size masked
    assert g.lookup(0x1000) is None
    with pytest.raises(ValueError):
        g.map(0x1000, 0x2000, 1 << 21)


def test_region_build_uses_large_pages():
    v, _ = vm("v4")
    v.enable_cap(8)
    v.set_region(0, 0x80000, 0x40000 + 0x200)        # 1 GiB + 2 MiB at 2 GiB
    g = v.build_gstage()
    assert g.lookup(0x8000_0000) == 0x8000_0000 and isinstance(g.root[2], tuple)


def test_cli_json_and_errors():
    r = subprocess.run([sys.executable, "-m", "difftest", "kvm-model", "--host-modes", "sv39x4,sv57x4", "--json"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["v4"]["probe"]["mask"] == 5 and d["v4"]["enable_cap"]["9"]["result"] == "EINVAL"
    assert d["merged"]["enable_cap"]["50"]["result"] == "ok" and not d["merged"]["enable_cap"]["50"]["hgatp_sticks"]
    assert d["merged"]["check_extension"] == {"system": 59, "vm": 59}
    assert d["host"]["hgatp_probe_line"] == "HGATP supported=0x501 v4=0x5 merged=10 vmidlen=14"
    r = subprocess.run([sys.executable, "-m", "difftest", "kvm-model", "--host-modes", "sv40x4"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "unknown host mode" in r.stdout and "Traceback" not in r.stderr


@pytest.mark.parametrize("name,line", [
    ("qemu-10.0", "HGATP supported=0x701 v4=0x7 merged=10 vmidlen=14"),
    ("qemu-10.0-sv39", "HGATP supported=0x101 v4=0x1 merged=8 vmidlen=14"),
    ("qemu-10.0-sv48", "HGATP supported=0x301 v4=0x3 merged=9 vmidlen=14"),
])
def test_predicted_probe_guest_line(name, line):
    assert kvm.predict_summary(PROFILES[name]) == line
    assert kvm.parse_summary(line)["v4"] == int(line.split("v4=")[1].split()[0], 16)


def test_predicted_line_hole_host_and_parse_errors():
    prof = BASE.with_(hgatp_modes=frozenset({0, 8, 10}), vmidlen=3)
    assert kvm.predict_summary(prof) == "HGATP supported=0x501 v4=0x5 merged=10 vmidlen=3"
    assert kvm.parse_summary("P 1 load") is None and kvm.parse_summary("HGATP supported=zz v4=0") is None
