"""The difftest command on saved traces: exit codes, diff, show, help, no tracebacks."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from difftest.cli import main
from difftest.trace import write_trace

from test_compare import pair


def _save(tmp_path, mq=None, **kw):
    (ha, sa, fa), (hb, sb, fb) = pair(mq, **kw)
    a, b = tmp_path / "q.trace.bin", tmp_path / "m.trace.bin"
    write_trace(a, ha, sa, fa)
    write_trace(b, hb, sb, fb)
    return str(a), str(b)


def test_diff_match(tmp_path, capsys):
    a, b = _save(tmp_path)
    assert main(["diff", a, b]) == 0
    assert "match: 6 steps" in capsys.readouterr().out


def test_diff_mismatch_text_json_and_reports(tmp_path, capsys):
    def mq(q):
        q[4].trap.htval = 0x1
    a, b = _save(tmp_path, mq)
    assert main(["diff", a, b]) == 1
    out = capsys.readouterr().out
    assert "probe -: trap.htval cause=21 nz~nz" in out and "at step 4" in out and "difftest diff" in out
    assert main(["diff", a, b, "--json", "--out", str(tmp_path / "rep")]) == 1
    d = json.loads(capsys.readouterr().out)
    assert d["kind"] == "trap-csr" and d["step"] == 4 and d["report"]["html"].endswith(".html")


def test_show(tmp_path, capsys):
    a, _ = _save(tmp_path)
    assert main(["show", a, "--step", "4", "--context", "1"]) == 0
    out = capsys.readouterr().out
    assert ">>       4" in out and "TRAP exc 21" in out and "c.ld" in out
    assert main(["show", a, "--json", "--count", "2"]) == 0
    assert len(json.loads(capsys.readouterr().out)["steps"]) == 2


@pytest.mark.parametrize("argv", [["diff", "/nonexistent.gz", "/nonexistent.gz"], ["show", "/etc/hostname"],
                                  ["run", "/nonexistent/x.elf", "--backend", "model"], ["frobnicate"], []])
def test_user_errors_exit_2_without_traceback(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err


def test_help_teaches_every_subcommand():
    r = subprocess.run([sys.executable, "-m", "difftest", "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    for word in ("build", "list", "run", "diff", "show", "new-guest", "exit codes", "examples"):
        assert word in r.stdout


def test_list_and_build_real_guests(capsys):
    assert main(["list", "--json"]) == 0
    rows = {r["guest"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["smoke"]["hgatp_modes"] == ["bare", "sv39x4", "sv48x4", "sv57x4"]
    assert main(["build", "smoke", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["ok"]


def test_new_guest_bad_name_is_usage_error(capsys):
    assert main(["new-guest", "Bad-Name"]) == 2
    assert "invalid guest name" in capsys.readouterr().err


def test_summary_table_one_row_per_case():
    from difftest.cli import summary_table
    from difftest.compare import PairResult
    from difftest.engine import CaseResult

    def case(hg, vs, *pairs, odd=None):
        c = CaseResult("g", hg, vs, "default", ["qemu-7.2", "qemu-10.0", "model@qemu-7.2", "model@qemu-10.0"])
        c.pairs = list(pairs)
        c.status = max((p.status for p in pairs), key=["match", "accepted-stale", "mismatch", "error"].index)
        c.odd_one_out = odd
        return c
    ok = PairResult("qemu-10.0", "model@qemu-10.0", "match", steps_compared=900, xlats_compared=40)
    ok2 = PairResult("qemu-7.2", "qemu-10.0", "match", steps_compared=1000, xlats_compared=50, accepted_stale=2)
    qq = PairResult("qemu-7.2", "qemu-10.0", "mismatch", "control-flow", 77, 0x80000010, steps_compared=77)
    q7 = PairResult("qemu-7.2", "model@qemu-7.2", "mismatch", "second-stage", 60, 0x80003000, steps_compared=60,
                    xlats_compared=12, report={"txt": "/x/reports/qemu-7.2~model@qemu-7.2.txt"})
    t = summary_table([case("sv39x4", "bare", ok2, ok), case("sv48x4", "sv39", qq, q7, ok, odd="qemu-7.2")])
    head, r1, r2, total = t.splitlines()
    for col in ("status", "kind", "step", "pc", "steps", "xlats", "stale", "report"):
        assert col in head
    # a green case shows the pair compared over the fewest steps; a red one the odd one out vs the model
    assert r1.split()[:4] == ["g", "sv39x4/bare", "match", "qemu-10.0~model@qemu-10.0"] and " 900 " in r1
    assert "qemu-7.2~model@qemu-7.2" in r2 and "second-stage" in r2 and "0x80003000" in r2
    assert "(odd: qemu-7.2)" in r2 and r2.endswith("/x/reports/qemu-7.2~model@qemu-7.2.txt")
    assert total == "match 1, mismatch 1 (2 cases)"


def test_run_every_declared_vs_mode_prints_the_table(tmp_path):
    """`--vs-mode all` runs each VS mode the guest declares; a multi-case run ends with one
    table row per case (real guest, QEMU 10.0 and the model)."""
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, "-m", "difftest", "run", "vs_modes", "--mode", "sv48x4", "--vs-mode", "all",
                        "--out", str(tmp_path)], capture_output=True, text=True, cwd=root, timeout=600)
    assert "Traceback" not in r.stderr and r.returncode in (0, 1), r.stderr
    lines = r.stdout.splitlines()
    i = next(i for i, l in enumerate(lines) if l.startswith("case ") and "steps" in l and "report" in l)
    rows = lines[i + 1:i + 5]
    assert [row.split()[1] for row in rows] == ["sv48x4/bare", "sv48x4/sv39", "sv48x4/sv48", "sv48x4/sv57"]
    assert all("qemu-10.0~model" in row for row in rows)
    assert lines[i + 5].endswith("(4 cases)")
