"""Two M-mode WARL rules (guests/m_warl): medeleg[11] read-only zero (Priv. 20240411 3.1.8) and
mstatus.MPP never holding the reserved encoding 2 (3.1.6.1).  The model on its own, then the guest
in lockstep with real QEMU 7.2 and 10.0: both QEMUs write medeleg[11], 7.2 keeps MPP = 2, and each of
these findings is listed by exactly its catalogue entry (known-divergences.toml)."""
from __future__ import annotations

from pathlib import Path

from difftest import engine
from difftest import known as K
from refmodel import csr as C
from refmodel.hart import Hart
from refmodel.profile import PROFILES

ROOT = Path(__file__).resolve().parents[1]
MPP = 3 << 11


def test_model_medeleg_bit11_read_only_zero():
    h = Hart(PROFILES["qemu-10.0"])
    C.write(h, 0x302, (1 << 64) - 1)
    assert not C.read(h, 0x302) >> 11 & 1 and C.read(h, 0x302) & (1 << 8)      # U ecall delegable
    C.write(h, 0x302, 1 << 11)
    assert C.read(h, 0x302) == 0


def test_model_mpp_never_holds_reserved_2():
    for prof in ("qemu-7.2", "qemu-10.0"):
        h = Hart(PROFILES[prof])
        for held in (0, 1, 3):
            ms = C.read(h, 0x300) & ~MPP
            C.write(h, 0x300, ms | held << 11)
            C.write(h, 0x300, ms | 2 << 11)
            assert C.read(h, 0x300) & MPP == held << 11


def test_m_warl_on_both_qemus_matches_exactly_its_entries(tmp_path):
    case = engine.run_case("m_warl", backends=["qemu-7.2", "qemu-10.0", "model"], out_dir=tmp_path)
    for b in ("model@qemu-7.2", "model@qemu-10.0"):
        assert case.runs[b].footer.exit_code == 0 and "fails=0" in case.runs[b].footer.uart
    known = K.load(ROOT / "known-divergences.toml")
    seen = {}
    for p in case.pairs:
        if "model" not in p.b:
            continue
        for f in p.findings:
            k = K.classify(case.guest, f.probe, f.what, f"{f.a}~{f.b}", known, case.hgatp_mode, case.vs_mode)
            seen[(p.a, f.probe)] = (f.what, k.id if k else None)
    assert seen == {
        ("qemu-7.2", "1"): ("Xa(read=nz)", "qemu72-medeleg11-writable"),
        ("qemu-7.2", "2"): ("Xa(read=nz)", "qemu72-medeleg11-writable"),
        ("qemu-7.2", "3"): ("Xa(read=nz)", "qemu72-mpp-reserved-kept"),
        ("qemu-7.2", "4"): ("Xa(read=nz)", "qemu72-mpp-reserved-kept"),
        ("qemu-7.2", "5"): ("Xa(read=nz)", "qemu72-mpp-reserved-kept"),
        ("qemu-10.0", "1"): ("Xa(read=nz)", "qemu10-medeleg11-writable"),
        ("qemu-10.0", "2"): ("Xa(read=nz)", "qemu10-medeleg11-writable"),
    }
    uart72, uart10 = case.runs["qemu-7.2"].footer.uart, case.runs["qemu-10.0"].footer.uart
    assert "P 2 medeleg wrote=0x800 held=0x0 read=0x800" in uart72 and "read=0x800" in uart10
    assert "P 5 mstatus.MPP wrote=0x2 held=0x3 read=0x2" in uart72
    assert "P 5 mstatus.MPP wrote=0x2 held=0x3 read=0x3" in uart10
