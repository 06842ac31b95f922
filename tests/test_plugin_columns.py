"""The plugin's record file read in bulk (difftest/backends/plugin_columns.py) gives exactly the
steps of the record-by-record reference reader (plugin_reader.steps), on real QEMU runs of real
guests: every pc, instruction, privilege and V, access (VA, PA, priv, V) and trap field."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from difftest.backends import plugin_columns, plugin_reader, proc, qemu_plugin
from difftest.backends.binaries import locate
from difftest.engine import patch_modes, resolve_guest

pytestmark = pytest.mark.skipif(not (qemu_plugin.PLUGIN_DIR / "difftrace-v4.so").exists(),
                                reason="the difftrace plugin is not built (run scripts/setup)")


def _record(guest, mode, vs, backend, tmp: Path, limit=2_000_000):
    _, elf = resolve_guest(guest)
    elf = patch_modes(elf, mode, vs, tmp)[0]
    binary = locate(backend)
    api = qemu_plugin.api_version(binary)
    rec, log, uart = tmp / "r.bin", tmp / "q.log", tmp / "u.txt"
    cmd = qemu_plugin.command(binary, elf.resolve(), "default", qemu_plugin.plugin_path(api), rec, log, uart, limit)
    import os
    proc.run(cmd, timeout=120, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
             env={**os.environ, **binary.env})
    return rec, log, api


def _same(a, b):
    assert (a.i, a.pc, a.insn, a.priv, a.v) == (b.i, b.pc, b.insn, b.priv, b.v), (a, b)
    assert [(x.access, x.va, x.priv, x.v, x.pa) for x in a.xlats] == \
        [(x.access, x.va, x.priv, x.v, x.pa) for x in b.xlats], (a.i, a.xlats, b.xlats)
    assert (a.trap is None) == (b.trap is None), a.i
    if a.trap is not None:
        assert a.trap == b.trap, (a.i, a.trap, b.trap)


@pytest.mark.parametrize("guest,mode,vs,backend", [
    ("smoke", "sv48x4", "bare", "qemu-10.0"), ("gstage_basic", "sv39x4", "bare", "qemu-10.0"),
    ("accessors", "sv39x4", "bare", "qemu-10.0"), ("faults", "sv39x4", "sv39", "qemu-10.0"),
    ("trap_stale", "sv57x4", "bare", "qemu-10.0"), ("misaligned", "sv39x4", "bare", "qemu-10.0"),
    ("gstage_basic", "sv48x4", "bare", "qemu-7.2"), ("faults", "sv39x4", "sv39", "qemu-7.2"),
], ids=str)
def test_bulk_reader_gives_the_reference_steps(guest, mode, vs, backend, tmp_path):
    rec, log, api = _record(guest, mode, vs, backend, tmp_path)
    ref_stats: dict = {}
    ref = list(plugin_reader.steps(rec, log, api=api, stats=ref_stats))
    cols = plugin_columns.columns(rec, log, api=api)
    got = list(plugin_columns.to_steps(cols))
    assert len(got) == len(ref) > 1000
    for a, b in zip(got, ref):
        _same(a, b)
    for k in ("steps", "traps", "traps_checked", "traps_unchecked", "mode_checks_failed", "error", "int_lines",
              "markers", "limit"):
        assert cols.stats[k] == ref_stats[k], (k, cols.stats[k], ref_stats[k])


def test_bulk_reader_step_limit_matches(tmp_path):
    rec, log, api = _record("gstage_basic", "sv39x4", "bare", "qemu-10.0", tmp_path, limit=5001)
    ref_stats: dict = {}
    ref = list(plugin_reader.steps(rec, log, api=api, max_steps=5000, stats=ref_stats))
    cols = plugin_columns.columns(rec, log, api=api, max_steps=5000)
    got = list(plugin_columns.to_steps(cols))
    assert len(got) == len(ref) == 5000 and cols.stats["step_limit"] == ref_stats["step_limit"]
    for a, b in zip(got, ref):
        _same(a, b)
