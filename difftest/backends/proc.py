"""Every QEMU the backends start dies with the process that started it (ARCHITECTURE section 5).

QEMU runs in its own session (so the terminal's Ctrl-C reaches difftest, which then stops it in
order) and, through ``PR_SET_PDEATHSIG``, gets SIGKILL from the kernel the moment the thread
that started it is gone -- ``kill -9`` of difftest included, when no ``finally`` runs.  A QEMU
left behind would run forever, reparented to init, writing its ``-d`` log into a deleted file.
A multiprocessing worker (the nightly's process pool) is tied to its parent the same way, so
killing the nightly takes the workers and their QEMUs with it.
"""
from __future__ import annotations

import ctypes
import os
import signal
import subprocess

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


def kill(p: subprocess.Popen) -> None:
    """SIGKILL ``p``'s whole process group (it leads its own session) and reap it."""
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            try:
                p.kill()
            except ProcessLookupError:
                pass
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def run(cmd: list[str], *, timeout: float, **kw) -> int | None:
    """Run ``cmd`` to its end (its return code) or to ``timeout`` (None: it was killed).  Any
    exception -- KeyboardInterrupt included -- kills it before propagating."""
    p = popen(cmd, **kw)
    try:
        return p.wait(timeout=max(0.0, timeout))
    except subprocess.TimeoutExpired:
        return None
    finally:
        if p.returncode is None:
            kill(p)
