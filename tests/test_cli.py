"""The difftest command on saved traces: exit codes, diff, show, help, no tracebacks."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from difftest.cli import main
from difftest.trace import Footer, write_trace

from test_compare import pair


def _save(tmp_path, mq=None, **kw):
    (ha, sa, fa), (hb, sb, fb) = pair(mq, **kw)
    a, b = tmp_path / "q.trace.jsonl.gz", tmp_path / "m.trace.jsonl.gz"
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
    assert "second-stage mismatch at step 4" in out and "difftest diff" in out
    assert main(["diff", a, b, "--json", "--out", str(tmp_path / "rep")]) == 1
    d = json.loads(capsys.readouterr().out)
    assert d["kind"] == "second-stage" and d["step"] == 4 and d["report"]["html"].endswith(".html")


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
    pytest.importorskip("difftest.guests")
    assert main(["list", "--json"]) == 0
    rows = {r["guest"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["smoke"]["hgatp_modes"] == ["bare", "sv39x4", "sv48x4", "sv57x4"]
    assert main(["build", "smoke", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["ok"]


def test_new_guest_bad_name_is_usage_error(capsys):
    pytest.importorskip("difftest.guests")
    assert main(["new-guest", "Bad-Name"]) == 2
    assert "invalid guest name" in capsys.readouterr().err
