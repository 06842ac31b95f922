"""Every QEMU the backends start dies with the process that started it (ARCHITECTURE section 5).

QEMU runs in its own session (so the terminal's Ctrl-C reaches difftest, which then stops it in
order) and, through ``PR_SET_PDEATHSIG``, gets SIGKILL from the kernel the moment the thread
that started it is gone -- ``kill -9`` of difftest included, when no ``finally`` runs.  A QEMU
left behind would run forever, reparented to init, writing its ``-d`` log into a deleted file.
A multiprocessing worker (the nightly's process pool) is tied to its parent the same way, so
killing the nightly takes the workers and their QEMUs with it.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

PR_SET_PDEATHSIG = 1
_libc = None


def _prctl_pdeathsig(sig: int) -> bool:
    global _libc
    try:
        if _libc is None:
            _libc = ctypes.CDLL(None, use_errno=True)
        return _libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _child_setup(parent: int) -> None:
    # runs in the child between fork and exec: only async-signal-safe work (prctl, getppid, _exit)
    _prctl_pdeathsig(signal.SIGKILL)
    if os.getppid() != parent:          # the parent died before prctl took effect
        os._exit(125)


_tied = False


def tie_worker_to_parent() -> None:
    """In a multiprocessing worker: die (SIGKILL) when the parent process dies.  Once per process."""
    global _tied
    if _tied:
        return
    _tied = True
    import multiprocessing
    if multiprocessing.parent_process() is not None:
        _prctl_pdeathsig(signal.SIGKILL)
        if os.getppid() != multiprocessing.parent_process().pid:
            os._exit(125)


def popen(cmd: list[str], **kw) -> subprocess.Popen:
    """subprocess.Popen in a new session, killed by the kernel if this process dies."""
    tie_worker_to_parent()
    parent = os.getpid()
    return subprocess.Popen(cmd, start_new_session=True, preexec_fn=lambda: _child_setup(parent), **kw)


def exited(p: subprocess.Popen, timeout: float = 0.0) -> bool:
    """True once ``p`` has exited, waiting up to ``timeout`` -- without reaping it: while its zombie
    stands, its pid (the id of its process group) cannot be reused, so the group can still be
    killed safely (a wrapper script's children live on in it)."""
    end = time.monotonic() + timeout
    while True:
        if p.returncode is not None:
            return True
        try:
            if os.waitid(os.P_PID, p.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return True
        except ChildProcessError:
            return True
        if time.monotonic() >= end:
            return False
        time.sleep(min(0.02, max(0.0, end - time.monotonic())))


def _signal_group(p: subprocess.Popen, sig: int) -> None:
    if p.returncode is None:            # not reaped: the group id is still ours
        try:
            os.killpg(p.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def kill(p: subprocess.Popen) -> None:
    """SIGKILL ``p``'s whole process group (it leads its own session), then reap ``p``."""
    _signal_group(p, signal.SIGKILL)
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def stop(p: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM to the group (QEMU flushes its log and exits), SIGKILL to what is left, reap."""
    if not exited(p):
        _signal_group(p, signal.SIGTERM)
        exited(p, grace)
    kill(p)


def run(cmd: list[str], *, timeout: float, **kw) -> int | None:
    """Run ``cmd`` to its end (its return code) or to ``timeout`` (None: it was killed).  What is
    left of its process group is killed either way; any exception -- KeyboardInterrupt included --
    kills it before propagating."""
    p = popen(cmd, **kw)
    done = False
    try:
        done = exited(p, max(0.0, timeout))
    finally:
        kill(p)
    return p.returncode if done else None


@contextlib.contextmanager
def sigterm_unwinds():
    """While QEMU runs (main thread only): SIGTERM raises SystemExit(143) instead of ending the
    process on the spot, so the ``finally`` blocks kill QEMU's group and remove its temp dir; the
    exit status is what a SIGTERM gives (143), without a traceback."""
    def raise_exit(signum, frame):
        raise SystemExit(128 + signum)
    old = None
    if threading.current_thread() is threading.main_thread():
        try:
            old = signal.signal(signal.SIGTERM, raise_exit)
        except ValueError:
            old = None
    try:
        yield
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)


def _start_time(pid: int) -> str | None:
    """A process's start time (/proc/<pid>/stat field 22): with the pid, its identity over pid reuse."""
    try:
        st = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return st[st.rindex(")") + 2:].split()[19]


OWNER = "owner"


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return "?"


def claim(workdir: Path) -> None:
    """Mark a QEMU run's temp dir as this process's (pid, start time, pid namespace) for sweep_stale."""
    (Path(workdir) / OWNER).write_text(f"{os.getpid()} {_start_time(os.getpid())} {_pid_namespace()}")


def sweep_stale(prefix: str) -> list[str]:
    """Remove the temp dirs ``<tmp>/<prefix>*`` claimed by a process that is gone: a kill -9 runs
    no clean-up, and the -d log it leaves can be GBs.  Dirs without an owner (being set up, or
    from an older difftest) and dirs of live processes are left alone.  Returns what it removed."""
    import shutil
    import tempfile
    gone = []
    for d in Path(tempfile.gettempdir()).glob(prefix + "*"):
        try:
            pid, start, ns = (d / OWNER).read_text().split()
            if ns != _pid_namespace():       # a pid from another namespace says nothing here
                continue
            alive = _start_time(int(pid)) == start
        except (OSError, ValueError):
            continue
        if not alive:
            shutil.rmtree(d, ignore_errors=True)
            gone.append(str(d))
    return gone
