"""Under scripts/test (DIFFTEST_STRICT=1) a skipped test is a failed test.

scripts/test installs everything a test needs (toolchain, both QEMUs, chromium, the venv), so a
skip there can only mean something is missing or mis-located -- exactly what a green run must not
hide.  A plain `pytest` on a half-set-up machine still skips, with the reason."""
from __future__ import annotations

import os

import pytest

STRICT = os.environ.get("DIFFTEST_STRICT") == "1"


def _strict(rep) -> None:
    if STRICT and rep.skipped and not hasattr(rep, "wasxfail"):
        reason = rep.longrepr[-1] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
        rep.outcome = "failed"
        rep.longrepr = (f"skipped under DIFFTEST_STRICT=1, which scripts/test sets because it installs "
                        f"everything the tests need: {reason}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _strict(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _strict(outcome.get_result())
