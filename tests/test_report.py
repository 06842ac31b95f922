"""Reports on hand-made traces: content, three formats, escaping of guest-controlled text."""
from __future__ import annotations

from difftest.compare import compare_full
from difftest.report import write_reports
from difftest.trace import Footer, WalkLevel, Xlat

from test_compare import pair


def test_second_stage_report(tmp_path):
    def mq(q):
        q[3].xlats[0] = Xlat("load", 0x2008, 1, 1, fault_stage="g", fault_cause=21,
                             raw="riscv_cpu_tlb_fill ad 2008 rw 0 mmu_idx 9 <b>")
        q[3].raw = "Trace 0: 0x1000 [00000000/0000000000001000/...]"
    def mm(m):
        m[3].xlats[1].walk = [WalkLevel("g", 2, 0x80400000, 0x20100001, "pointer"),
                              WalkLevel("g", 0, 0x80401008, 0x200804cf, "leaf")]
    pr, div = compare_full(*pair(mq, mm))
    paths = write_reports(pr, div, tmp_path, stem="r", command=["difftest", "run", "g", "--mode", "sv39x4"])
    txt = open(paths["txt"]).read()
    assert "second-stage mismatch at step 3" in txt
    assert ">> " in txt and "c.ld a0, 0(a0)" in txt            # divergent row marked, disassembled
    assert "0x80401008" in txt and "leaf" in txt                # the walk, level by level
    assert "riscv_cpu_tlb_fill" in txt                          # QEMU's own log line
    assert "difftest run g --mode sv39x4" in txt
    assert "Not compared" in txt and "trap.gva" in txt
    html = open(paths["html"]).read()
    assert "<b>" not in html and "&lt;b&gt;" in html
    md = open(paths["md"]).read()
    outside_fences = md.split("```")[::2]          # fenced code is literal in Markdown
    assert not any("<b>" in part for part in outside_fences) and "## The model's page-table walk" in md


def test_output_report_escapes_uart(tmp_path):
    evil = "<script>alert(1)</script>| *x* \n"
    pr, div = compare_full(*pair(fq=Footer("exit", 0, 6, uart="P 1 ok\n"), fm=Footer("exit", 0, 6, uart=evil)))
    assert pr.kind == "output"
    paths = write_reports(pr, div, tmp_path, stem="o")
    html = open(paths["html"]).read()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert not any("<script>" in part for part in open(paths["md"]).read().split("```")[::2])
    assert "alert(1)" in open(paths["txt"]).read()


def test_match_report(tmp_path):
    pr, div = compare_full(*pair())
    assert div is None
    paths = write_reports(pr, div, tmp_path, stem="m")
    assert "match: 6 steps" in open(paths["txt"]).read()
