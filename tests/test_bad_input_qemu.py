"""When things go wrong around QEMU: real QEMU 7.2 and 10.0, real guests, no mock of QEMU.

Each test reproduces one way a run used to end wrong -- a QEMU outliving difftest, a log without
bound, a program that runs nothing taken for a guest exit, an exit code decided by a race, a
parser inventing a step, a finisher code read as a signal -- and asserts the classified outcome:
exit code, error class, message, no traceback, nothing cached, no QEMU left behind.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from difftest.backends import proc, qemu, qemu_log
from difftest.backends.binaries import KNOWN, locate
from difftest.trace import read_trace

ROOT = Path(__file__).resolve().parents[1]
QEMUS = [q for q in ("qemu-7.2", "qemu-10.0") if KNOWN[q][0].exists()]
pytestmark = pytest.mark.skipif(len(QEMUS) < 2, reason="QEMU 7.2 and 10.0 are needed (run scripts/setup)")


# ---------------------------------------------------------------- helpers

def asm_guest(tmp_path: Path, name: str, body: str) -> Path:
    """A one-file M-mode guest (difftest.asm): ``body`` runs after the prologue; ``mtrap`` spins
    unless ``body`` defines it."""
    from difftest.asm import M_PROLOGUE, assemble, have_cc
    if not have_cc():
        pytest.skip("riscv64-unknown-elf-gcc is not installed (run scripts/setup)")
    src = M_PROLOGUE + body + ("" if "mtrap:" in body else "mtrap: j mtrap\n")
    return assemble(src, tmp_path / f"{name}.elf")


PASS = "  li t6, 0x100000\n  li t5, 0x5555\n  sw t5, 0(t6)\n1: j 1b\n"


def finisher_fail(code: int) -> str:
    return f"  li t6, 0x100000\n  li t5, {(code << 16) | 0x3333:#x}\n  sw t5, 0(t6)\n1: j 1b\n"


def difftest_cmd(tmp_path: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "difftest.cli", *args]


def env_for(tmp_path: Path) -> dict:
    return {**os.environ, "DIFFTEST_TRACE_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}


def difftest(tmp_path: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(difftest_cmd(tmp_path, *args), cwd=ROOT, env=env_for(tmp_path), capture_output=True,
                          text=True, timeout=timeout)


def _stat(pid: int):
    """(state, ppid) of a live process, None when it is gone."""
    try:
        s = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    f = s[s.rindex(")") + 2:].split()
    return f[0], int(f[1])


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def processes_mentioning(text: str) -> dict[int, str]:
    """Live (not zombie) processes whose command line contains ``text``: a QEMU's names its ELF."""
    out = {}
    for d in os.listdir("/proc"):
        if d.isdigit() and int(d) != os.getpid():
            st = _stat(int(d))
            cl = _cmdline(int(d))
            if st and st[0] != "Z" and text in cl and "qemu-system" in cl:
                out[int(d)] = cl
    return out


def qemu_children(pid: int) -> dict[int, str]:
    out = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = _stat(int(d))
            cl = _cmdline(int(d)) if st and st[1] == pid else ""
            if "qemu-system-riscv64" in cl and " -kernel " in cl:     # not the --version probe
                out[int(d)] = cl
    return out


def gone_within(pids, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if all(_stat(p) is None or _stat(p)[0] == "Z" for p in pids):
            return True
        time.sleep(0.05)
    return False


def assert_no_qemu_left(tmp_path: Path) -> None:
    assert gone_within(processes_mentioning(str(tmp_path)), 5), processes_mentioning(str(tmp_path))


def cache_files(tmp_path: Path) -> list[str]:
    d = tmp_path / "cache"
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


# ---------------------------------------------------------------- 8: no QEMU outlives difftest

LONG = "1: j 1b\n"                         # runs until stopped
# 10000 ecalls into M, each handler entry a breakpoint of the gdbstub pass (~4 ms a stop here)
MANY_TRAPS = """  li s0, 10000
1: ecall
  addi s0, s0, -1
  bnez s0, 1b
  li t6, 0x100000
  li t5, 0x5555
  sw t5, 0(t6)
2: j 2b
.balign 4
mtrap:
  csrr t0, mepc
  addi t0, t0, 4
  csrw mepc, t0
  mret
"""


def _start(tmp_path: Path, elf: Path) -> subprocess.Popen:
    # the log trace source: its trap-detail and gdbstub passes are QEMUs of their own to kill too
    return subprocess.Popen(difftest_cmd(tmp_path, "run", str(elf), "--backend", "qemu-10.0,model", "--timeout",
                                         "300", "--max-steps", "50000000", "--no-cache", "--qemu-trace", "log",
                                         "--out", str(tmp_path / "out")),
                            cwd=ROOT, env=env_for(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def _wait_for_qemu(p: subprocess.Popen, want: str = "", seconds: float = 60) -> dict[int, str]:
    end = time.monotonic() + seconds
    while time.monotonic() < end and p.poll() is None:
        kids = {k: v for k, v in qemu_children(p.pid).items() if want in v}
        if kids:
            return kids
        time.sleep(0.02)
    p.kill()
    pytest.fail(f"no QEMU{' with ' + want if want else ''} started under difftest (rc {p.poll()}): "
                f"{p.communicate()[1][-2000:]}")


def _signal_during(tmp_path: Path, body: str, sig: int, phase: str = "") -> tuple[subprocess.Popen, str, Path]:
    """Starts `difftest run` on a one-file guest, waits for its QEMU (with ``phase`` in its command
    line), sends ``sig`` to difftest and checks that QEMU is gone within 5 s and nothing printed a
    traceback.  Returns difftest's process, stderr and the run's temp dir."""
    p = _start(tmp_path, asm_guest(tmp_path, "guest", body))
    kids = _wait_for_qemu(p, phase)
    cl = next(iter(kids.values()))
    workdir = Path((cl.split(" -D ")[1] if " -D " in cl else cl.split("path=")[1].split(",")[0]).split()[0]).parent
    assert workdir.name.startswith(qemu.TMP_PREFIX) and workdir.is_dir()
    p.send_signal(sig)
    out, err = p.communicate(timeout=30)
    assert gone_within(kids, 5), f"QEMU {sorted(kids)} {phase} outlived difftest ({signal.Signals(sig).name})"
    assert_no_qemu_left(tmp_path)
    assert "Traceback" not in err
    return p, err, workdir


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT, signal.SIGTERM], ids=["kill-9", "ctrl-c", "term"])
def test_qemu_dies_with_difftest_run(tmp_path, sig):
    """Killing `difftest run` while QEMU runs the guest takes QEMU with it (it used to stay,
    reparented to init, writing its log into a deleted file)."""
    p, err, logdir = _signal_during(tmp_path, LONG, sig)
    if sig == signal.SIGINT:
        assert p.returncode == 130 and "interrupted" in err
    if sig == signal.SIGTERM:
        assert p.returncode == 143, (p.returncode, err)
    if sig != signal.SIGKILL:
        assert not logdir.exists(), "QEMU's temp dir (its -d log) was left behind"
    else:
        # kill -9 runs no clean-up of its own: the next QEMU run sweeps the dead run's temp dir
        assert logdir.exists()
        qemu.run(asm_guest(tmp_path, "pass", PASS), backend="qemu-7.2", out_path=tmp_path / "t.gz", timeout=60,
                 max_steps=100, use_cache=False)
        assert not logdir.exists(), "the temp dir of the killed run was not swept"


@pytest.mark.parametrize("phase", ["-dfilter", "-gdb"], ids=["trap-detail-pass", "gdbstub-pass"])
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "ctrl-c"])
def test_pass_qemus_die_with_difftest(tmp_path, sig, phase):
    """The same for the QEMUs of the trap-detail pass (-d cpu -dfilter) and of the gdbstub pass."""
    p, err, workdir = _signal_during(tmp_path, MANY_TRAPS, sig, phase)
    if sig == signal.SIGINT:
        assert p.returncode == 130 and not workdir.exists()
    else:
        # what the next run does (another test's QEMU run in parallel may have swept it already)
        proc.sweep_stale(qemu.TMP_PREFIX)
        assert not workdir.exists()


def test_proc_run_kills_on_interrupt(tmp_path):
    """proc.run (the passes' runner) kills its child on any exception, here a KeyboardInterrupt."""
    elf = asm_guest(tmp_path, "long", LONG)
    b = locate("qemu-7.2")
    cmd = qemu.base_command(b, elf, "default") + ["-serial", "null"]

    def interrupt(*_):
        raise KeyboardInterrupt
    old = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 1.0)
    try:
        with pytest.raises(KeyboardInterrupt):
            proc.run(cmd, timeout=60, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert_no_qemu_left(tmp_path)


# ---------------------------------------------------------------- 9: a fetch-fault storm is bounded

# mtvec at an address with no memory: every trap's handler fetch faults again -- a storm of
# instruction access faults with no exec line at all.
STORM = """  li t0, 0x90000000
  csrw mtvec, t0
  jr t0
"""


@pytest.mark.parametrize("q", ["qemu-7.2", "qemu-10.0"])
def test_fetch_fault_storm_stops_at_step_limit(tmp_path, q):
    elf = asm_guest(tmp_path, "storm", STORM)
    t0 = time.monotonic()
    r = qemu.run(elf, backend=q, out_path=tmp_path / "t.gz", timeout=120, max_steps=20_000, use_cache=False)
    took = time.monotonic() - t0
    assert (r.status, r.error_class) == ("error", "step-limit"), r.message
    h, steps, f = read_trace(r.trace_path)
    assert len(steps) == 20_000 and all(s.trap and (s.trap.cause, s.pc) == (1, 0x90000000) for s in steps[100:])
    peak = f.extra["log_bytes"]
    assert 0 < peak <= qemu.log_bound(20_000), peak
    assert took < 60, f"{took:.1f} s: the storm ran toward --timeout"
    assert_no_qemu_left(tmp_path)


def test_log_size_bound_stops_qemu(tmp_path, monkeypatch):
    """The byte bound alone (a step bound too high to matter): QEMU is stopped once its log
    passes log_bound, give or take what it writes between two looks."""
    from difftest import cache
    monkeypatch.setattr(qemu, "LOG_BYTES_MIN", 1 << 20)
    monkeypatch.setattr(qemu, "LOG_BYTES_PER_STEP", 0)
    monkeypatch.setattr(cache, "CACHE_DIR", tmp_path / "cache")
    elf = asm_guest(tmp_path, "storm", STORM)
    r = qemu.run(elf, backend="qemu-10.0", out_path=tmp_path / "t.gz", timeout=120, max_steps=10**8)
    assert (r.status, r.error_class) == ("error", "step-limit"), r.message
    assert "log passed" in r.message
    assert cache_files(tmp_path) == []       # how many steps the cut log holds depends on timing
    peak = read_trace(r.trace_path)[2].extra["log_bytes"]
    assert (1 << 20) < peak <= (1 << 20) + qemu.LOG_LIMIT_SLACK, peak
    assert_no_qemu_left(tmp_path)


def test_fault_storm_is_an_error_not_a_finding(tmp_path):
    elf = asm_guest(tmp_path, "storm", STORM)
    p = difftest(tmp_path, "run", str(elf), "--backend", "qemu-10.0,model", "--max-steps", "20000", "--timeout",
                 "120", "--json", "--out", str(tmp_path / "out"))
    assert p.returncode == 125, p.stdout[-3000:] + p.stderr[-3000:]
    case = json.loads(p.stdout)[0]
    assert case["status"] == "error" and case["runs"]["qemu-10.0"]["error_class"] == "step-limit"
    assert case["runs"]["qemu-10.0"]["message"] == "stopped after 20000 steps (--max-steps)"
    assert all(pr["status"] == "error" for pr in case["pairs"])
    assert "Traceback" not in p.stderr
    assert_no_qemu_left(tmp_path)


def test_timeout_bounds_the_whole_run(tmp_path):
    """--timeout covers QEMU and the parse of its log: a runaway guest with a step limit too high
    to matter ends as a timeout close to --timeout, not after parsing a huge log."""
    elf = asm_guest(tmp_path, "long", LONG)
    t0 = time.monotonic()
    r = qemu.run(elf, backend="qemu-10.0", out_path=tmp_path / "t.gz", timeout=3, max_steps=10**9, use_cache=False)
    took = time.monotonic() - t0
    assert (r.status, r.error_class) == ("error", "timeout"), r.message
    assert took < 3 + 10, took
    h, steps, f = read_trace(r.trace_path)
    assert f.status == "timeout" and f.steps == len(steps) >= 1 and "within 3 s" in f.message
    assert_no_qemu_left(tmp_path)


# ---------------------------------------------------------------- 5: a program that runs nothing

FAKE = """#!/bin/sh
case "$*" in *--version*) echo "QEMU emulator version 10.0.2 (fake)"; exit 0;; esac
exit {rc}
"""


@pytest.mark.parametrize("rc", [0, 3])
def test_fake_qemu_that_runs_nothing_is_an_error_not_a_finding(tmp_path, rc):
    fake = tmp_path / "bin" / "qemu-system-riscv64"
    fake.parent.mkdir()
    fake.write_text(FAKE.format(rc=rc))
    fake.chmod(0o755)
    elf = asm_guest(tmp_path, "pass", PASS)
    r = qemu.run(elf, backend=str(fake), out_path=tmp_path / "t.gz", timeout=30, max_steps=1000, use_cache=False)
    assert (r.status, r.error_class, r.trace_path) == ("error", "no-trace", None), r
    assert "without logging a single step" in r.message and not (tmp_path / "t.gz").exists()
    p = difftest(tmp_path, "run", str(elf), "--backend", f"{fake},model", "--out", str(tmp_path / "out"))
    assert p.returncode == 125, p.stdout + p.stderr
    assert "no-trace" in p.stdout and "mismatch" not in p.stdout.lower() and "Traceback" not in p.stderr
    assert cache_files(tmp_path) == []          # nothing cached: the next run asks the binary again
    p2 = difftest(tmp_path, "run", str(elf), "--backend", f"{fake},model", "--out", str(tmp_path / "out"))
    assert p2.returncode == 125 and "no-trace" in p2.stdout


HANGING_WRAPPER = """#!/bin/sh
case "$*" in *--version*) echo "QEMU emulator version 10.0.2 (fake)"; exit 0;; esac
"$(dirname "$0")/child.sh" &
wait
"""


def test_a_wrapper_s_children_are_stopped_with_it(tmp_path):
    """A backend path may be a wrapper script that starts the real work as its child: on timeout
    the whole process group is stopped, not only the script (the child used to stay)."""
    fake = tmp_path / "bin" / "qemu-system-riscv64"
    fake.parent.mkdir()
    fake.write_text(HANGING_WRAPPER)
    (fake.parent / "child.sh").write_text("#!/bin/sh\nwhile :; do sleep 0.2; done\n")
    for f in (fake, fake.parent / "child.sh"):
        f.chmod(0o755)
    elf = asm_guest(tmp_path, "pass", PASS)
    r = qemu.run(elf, backend=str(fake), out_path=tmp_path / "t.gz", timeout=2, max_steps=1000, use_cache=False)
    assert (r.status, r.error_class) == ("error", "timeout"), r.message
    end = time.monotonic() + 5
    while time.monotonic() < end and any(str(tmp_path) in _cmdline(int(d)) and _stat(int(d))[0] != "Z"
                                         for d in os.listdir("/proc") if d.isdigit() and _stat(int(d))):
        time.sleep(0.05)
    left = [int(d) for d in os.listdir("/proc") if d.isdigit() and str(tmp_path) in _cmdline(int(d))
            and _stat(int(d)) and _stat(int(d))[0] != "Z"]
    assert not left, [_cmdline(x) for x in left]


# ---------------------------------------------------------------- 7b: the finisher write decides the exit code

# A pass write followed at once by a fail write (code 1), as the bench guest does when it falls
# from its pass write into its trap handler: QEMU >= 8 serves the first write asynchronously, the
# second usually lands first (QEMU 10.0 exits with status 1 in most runs); the guest passed.
RACE = """  li t6, 0x100000
  li t5, 0x5555
  li t4, 0x13333
  sw t5, 0(t6)
  sw t4, 0(t6)
1: j 1b
"""


def test_exit_code_is_the_guest_finisher_write_not_qemus_race(tmp_path):
    elf = asm_guest(tmp_path, "race", RACE)
    statuses = []
    for k in range(4):
        r = qemu.run(elf, backend="qemu-10.0", out_path=tmp_path / f"{k}.gz", timeout=60, max_steps=1000,
                     use_cache=False)
        assert (r.status, r.footer.status, r.footer.exit_code) == ("ok", "exit", 0), (r.message, r.footer.extra)
        statuses.append(r.footer.extra["finisher"]["qemu_status"])
    print("QEMU 10.0 exit statuses after the pass write:", statuses)
    p = difftest(tmp_path, "run", str(elf), "--backend", "qemu-7.2,qemu-10.0,model", "--no-cache", "--out",
                 str(tmp_path / "out"))
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-2000:]
    assert_no_qemu_left(tmp_path)


def test_unreadable_finisher_write_is_never_guessed(tmp_path, monkeypatch):
    """When the finisher pass cannot read the value (forced here), QEMU 10.0's status is used only
    if its log shows nothing after the write that could write again (no step, or one pc coming
    back to itself); after the race guest's pass write another store follows: exit-unknown, an
    error, not cached."""
    from difftest import cache
    from difftest.backends import finisher
    monkeypatch.setattr(finisher, "read_value", lambda *a, **k: (None, "not read (test)"))
    race = asm_guest(tmp_path, "race", RACE)
    seen = set()
    for k in range(3):
        monkeypatch.setattr(cache, "CACHE_DIR", tmp_path / f"cache{k}")
        r = qemu.run(race, backend="qemu-10.0", out_path=tmp_path / f"r{k}.gz", timeout=60, max_steps=1000)
        seen.add((r.status, r.error_class, r.footer.exit_code))
        if r.status == "error":
            assert r.error_class == "exit-unknown" and "not read (test)" in r.message, r.message
            assert not (tmp_path / f"cache{k}").exists() or not list((tmp_path / f"cache{k}").iterdir())
    # exit 0 only when QEMU logged no step after the pass write (then the fail write never ran)
    assert seen <= {("error", "exit-unknown", None), ("ok", None, 0)}, seen
    from difftest.trace import Step, Trap
    j = Step(i=0, pc=0x80000040)
    assert qemu.tail_is_safe([]) and qemu.tail_is_safe([j, j, j])
    assert not qemu.tail_is_safe([j])                     # one instruction: it may have been a store
    assert not qemu.tail_is_safe([j, Step(i=1, pc=0x80000044)])
    assert not qemu.tail_is_safe([j, Step(i=1, pc=0x80000040, trap=Trap(cause=2))])


# ---------------------------------------------------------------- finisher codes >= 128 are codes, not signals

@pytest.mark.parametrize("code", [1, 127, 128, 200, 255, 256, 0x1234])
def test_finisher_code_keeps_its_full_value(tmp_path, code):
    elf = asm_guest(tmp_path, f"fail{code}", finisher_fail(code))
    for q in QEMUS:
        r = qemu.run(elf, backend=q, out_path=tmp_path / f"{q}.gz", timeout=60, max_steps=1000, use_cache=False)
        assert (r.status, r.error_class, r.footer.status, r.footer.exit_code) == ("ok", None, "exit", code), \
            (q, r.message)
    if code in (200, 0x1234):
        p = difftest(tmp_path, "run", str(elf), "--backend", "qemu-7.2,qemu-10.0,model", "--no-cache", "--out",
                     str(tmp_path / "out"))
        assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-2000:]
    assert_no_qemu_left(tmp_path)


def test_qemu_killed_by_a_signal_is_a_crash(tmp_path):
    """A real signal (subprocess returncode < 0) is still a crash: 7.2 aborts on hgatp MODE 4."""
    from qemu_fixtures import build
    elf = build(tmp_path, 4)
    r = qemu.run(elf, backend="qemu-7.2", out_path=tmp_path / "t.gz", timeout=60, max_steps=10_000, use_cache=False)
    assert (r.status, r.error_class) == ("error", "crash") and "signal 6" in r.message, r.message


# ---------------------------------------------------------------- 1b: the parser never invents a step

# Between them these guests make each QEMU log every exception cause any guest of guests/ makes it
# log (scanned over all guests in sv39x4: 1 2 4 5 7 8 9 10 11 12 13 15 20 21 22 23; 12 on 7.2 is
# hs_satp's real fetch page fault, on 10.0 also accessors' HLVX faults); the one-file guest below
# adds a breakpoint (3) and a machine timer interrupt (async, 7).
PARSER_GUESTS = ["accessors", "faults", "hs_satp", "misaligned"]
ALL_CAUSES = {1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 13, 15, 20, 21, 22, 23}
EBREAK_AND_TIMER = """.option norvc
  ebreak
  li t0, 0x200bff8
  ld t1, 0(t0)
  addi t1, t1, 100
  li t0, 0x2004000
  sd t1, 0(t0)
  li t0, 0x80
  csrs mie, t0
  csrsi mstatus, 8
1: j 1b
.balign 4
mtrap:
  csrr t0, mcause
  bltz t0, 2f
  csrr t0, mepc
  addi t0, t0, 4
  csrw mepc, t0
  mret
2:
  li t6, 0x100000
  li t5, 0x5555
  sw t5, 0(t6)
3: j 3b
"""


def _real_log(tmp_path: Path, q: str, guest) -> Path:
    from difftest import engine
    from difftest import guests as G
    elf = Path(guest) if isinstance(guest, Path) else Path(G.build(guest))
    try:
        elf, _, _ = engine.patch_modes(elf, "sv39x4", "", tmp_path / elf.stem)
    except engine.EngineError:
        pass
    b = locate(q)
    log = tmp_path / f"{q}-{elf.stem}.log"
    cmd = qemu.command(b, elf.resolve(), "default", log, tmp_path / "uart.txt")
    rc = proc.run(cmd, timeout=120, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                  stderr=subprocess.DEVNULL, env={**os.environ, **b.env})
    assert rc is not None, f"{q} {guest}: did not finish"
    return log


FETCH_CAUSES = (1, 12, 20)


@pytest.mark.parametrize("q", ["qemu-7.2", "qemu-10.0"])
def test_parser_turns_every_logged_trap_into_one_step(tmp_path, q):
    """Over real logs (the backend's own command line) of the guests that trap the most: every
    exec line is one step, every trap line is one trap on one step, and a step without an exec
    line is an interrupt or a fetch fault of the instruction at epc (tval within it) -- the
    parser invents nothing.  QEMU 10.0's HLVX guest-page faults (logged as fetch fills, raised
    with cause 12) stay on the HLVX's own step, as loads."""
    causes: dict[int, int] = {}
    interrupts = hlvx = 0
    for guest in PARSER_GUESTS + [asm_guest(tmp_path, "ebreak_timer", EBREAK_AND_TIMER)]:
        log = _real_log(tmp_path, q, guest)
        raw = log.read_bytes().split(b"\n")
        n_exec = sum(1 for ln in raw if ln.startswith(b"Trace "))
        # an exec line QEMU then did not run (the TB left at its start or rewound at a device access,
        # -icount: docs/ARCHITECTURE.md 7b) is not a step: the same pc's next exec line is
        last_pc = None
        for ln in raw:
            if ln.startswith(b"Trace "):
                last_pc = qemu_log._EXEC.match(ln.decode()).group(2)
            else:
                m = qemu_log._NOT_RUN.match(ln.decode(errors="replace"))
                if m and last_pc is not None and int(m.group(1) or m.group(2), 16) == int(last_pc, 16):
                    n_exec -= 1
                    last_pc = None
        n_int = sum(1 for ln in raw if ln.startswith(b"riscv_cpu_do_interrupt"))
        steps = list(qemu_log.parse_file(log, layout=qemu_log.flags_layout(locate(q).version)))
        assert sum(1 for s in steps if s.raw.startswith("Trace ")) == n_exec, guest
        assert sum(1 for s in steps if s.trap is not None) == n_int, guest
        for s in steps:
            if s.trap is None:
                continue
            t = s.trap
            if t.interrupt:
                interrupts += 1
                assert not s.raw.startswith("Trace ") and s.pc == t.epc, (guest, s.i, t)
                continue
            causes[t.cause] = causes.get(t.cause, 0) + 1
            if not s.raw.startswith("Trace "):
                assert t.cause in FETCH_CAUSES and t.epc <= t.tval < t.epc + 4, (guest, s.i, hex(s.pc), t)
            elif t.cause == 12 and not t.epc <= t.tval < t.epc + 4:
                # a fetch-type fault away from the instruction: the HLVX's own access
                assert any(x.access == "load" and x.va == t.tval for x in s.xlats), (guest, s.i, s.xlats)
                hlvx += 1
    print(q, "exception causes parsed:", dict(sorted(causes.items())), "interrupts:", interrupts)
    assert set(causes) == ALL_CAUSES and interrupts >= 1, (causes, interrupts)
    if q == "qemu-10.0":
        assert hlvx >= 2, "the HLVX faults of guests/accessors (probes 6 and 9) were not seen"


WORKER_SCRIPT = """
import multiprocessing, subprocess, sys, time
from pathlib import Path
from difftest.backends import proc, qemu
from difftest.backends.binaries import locate

def worker(elf, q):
    b = locate("qemu-7.2")
    p = proc.popen(qemu.base_command(b, Path(elf), "default") + ["-serial", "null"], stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL)
    q.put(p.pid)
    time.sleep(600)

if __name__ == "__main__":
    multiprocessing.set_start_method("fork")
    q = multiprocessing.Queue()
    w = multiprocessing.Process(target=worker, args=(sys.argv[1], q))
    w.start()
    print(w.pid, q.get(), flush=True)
    time.sleep(600)
"""


def test_kill_9_of_a_pool_parent_takes_its_workers_and_their_qemus(tmp_path):
    """The nightly runs cases in multiprocessing workers: kill -9 of the nightly must not leave a
    worker (and its QEMU) running.  A worker ties itself to its parent when it starts a QEMU."""
    elf = asm_guest(tmp_path, "long", LONG)
    script = tmp_path / "pool.py"
    script.write_text(WORKER_SCRIPT)
    p = subprocess.Popen([sys.executable, str(script), str(elf)], cwd=ROOT, env=env_for(tmp_path),
                         stdout=subprocess.PIPE, text=True, start_new_session=True)
    worker, qpid = (int(x) for x in p.stdout.readline().split())
    assert "qemu-system" in _cmdline(qpid)
    p.kill()
    p.wait()
    assert gone_within([worker, qpid], 5), "a worker or its QEMU outlived the killed parent"
    assert_no_qemu_left(tmp_path)


def _live_mentioning(text: str) -> list[int]:
    return [int(d) for d in os.listdir("/proc") if d.isdigit() and int(d) != os.getpid()
            and text in _cmdline(int(d)) and (_stat(int(d)) or ("Z",))[0] != "Z"]


def test_kill_9_of_a_nightly_leaves_no_worker_and_no_qemu(tmp_path):
    """The real nightly (a process pool): kill -9 while a worker's QEMU runs; within 5 s nothing
    that names the results dir is alive -- no worker going on to its next case, no QEMU."""
    res = tmp_path / "res"
    p = subprocess.Popen(difftest_cmd(tmp_path, "nightly", "--guests", "accessors", "--backends", "qemu-10.0,model",
                                      "--jobs", "1", "--out", str(res)),
                         cwd=ROOT, env=env_for(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True, start_new_session=True)
    end = time.monotonic() + 120
    while time.monotonic() < end and p.poll() is None and not processes_mentioning(str(res)):
        time.sleep(0.02)
    assert processes_mentioning(str(res)), f"no QEMU started by the nightly (rc {p.poll()})"
    p.kill()
    p.wait()
    end = time.monotonic() + 5
    while time.monotonic() < end and _live_mentioning(str(res)):
        time.sleep(0.05)
    left = _live_mentioning(str(res))
    for pid in left:                      # do not leave them running if the assertion fails
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert not left, "alive after kill -9 of the nightly: " + "; ".join(_cmdline(x)[:200] for x in left)
    time.sleep(2)                         # and nothing starts later (a worker taking its next case)
    assert not _live_mentioning(str(res))
