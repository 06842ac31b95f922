"""QEMU trace source "plugin" (``--qemu-trace plugin``): the difftrace TCG plugin instead of the log.

The log source (qemu.py) single-steps QEMU with ``-d exec,int,mmu,nochain`` and sees a
translation only when it fills QEMU's TLB.  Here QEMU runs normally (multi-instruction TBs,
chained) with the difftrace plugin (difftest/backends/plugin/difftrace.c, built by scripts/setup
into build/plugin/) and ``-d int,plugin``: the plugin's record file has every instruction (pc,
bits, length) and every explicit access with the physical address QEMU used (TLB hits included);
the log has the trap lines and the plugin's marker lines in event order
(difftest/backends/plugin_reader.py puts them together).

What comes from where (``Header.extra["sources"]``):

* QEMU 10.0 (plugin API 4): priv/V and, at the first instruction after each trap, the trap-entry
  CSRs, read by the plugin through QEMU's register API (one run, no other pass);
* QEMU 7.2 (API 1, no register access): priv/V not shown; htval/GVA/target and htinst/mtinst come
  from the log backend's trap-detail pass (trap_detail.collect: a ``-d cpu`` run filtered to the
  handler entries, which the plugin trace gives, and the gdbstub run).

Everything else -- finisher, exit code, console, timeout, crash, step limit, process handling,
cache -- behaves as in the log backend and reuses its code (qemu.py, finisher.py, proc.py).
"""
from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
import tempfile
import time
from pathlib import Path

from difftest.backends import (finisher, plugin_columns, plugin_reader, proc, qemu, semihosting, tohost as program_end,
                               trap_detail, wfi_end)
from difftest.backends.binaries import ROOT, QemuBinary, locate
from difftest.backends.result import (MISSING_BACKEND, BackendError, RunResult, error_result,
                                      sha256_file)
import numpy as np

from difftest.trace import ACCESSES, EXPOSABLE, Footer, Header, TraceWriter, console_text
from refmodel.devices import tohost_exit_code
from refmodel.platform import DEFAULT as DEFAULT_PLATFORM, Platform

PLUGIN_DIR = ROOT / "build" / "plugin"
PLUGIN_SOURCE = ROOT / "difftest" / "backends" / "plugin" / "difftrace.c"
# The new exposure key (not yet in trace.EXPOSABLE; the header carries it meanwhile):
XLAT_ACCESS = "xlat.access"   # every explicit load/store with the physical address used, TLB hits
#                               included; no fetches, no GPA
TRACE_SOURCES = ("log", "plugin")


def api_version(binary: QemuBinary) -> int:
    """The plugin API build that ``binary`` loads: QEMU's loader accepts [min, cur] = [0, 1] up to
    8.x and [2, 4] on 9.2 .. 10.x; the builds here are v1 (7.2) and v4 (10.0)."""
    v = binary.version_tuple
    if v < (9, 0):
        return 1
    if (9, 2) <= v < (11, 0):
        return 4
    raise BackendError(MISSING_BACKEND, f"{binary.name} is QEMU {binary.version}: no difftrace plugin build for "
                                        f"its plugin API (builds: API 1 for QEMU < 9.0, API 4 for 9.2 .. 10.x)")


def plugin_path(api: int) -> Path:
    """The built plugin, or BackendError(missing-backend) saying to run scripts/setup."""
    p = PLUGIN_DIR / f"difftrace-v{api}.so"
    if not p.is_file():
        raise BackendError(MISSING_BACKEND, f"the difftrace QEMU plugin {p} is not built; run scripts/setup")
    # scripts/setup records the hash of the source it built from: a changed source means a stale build
    try:
        built_from = (PLUGIN_DIR / "difftrace.c.sha256").read_text().strip()
        source = hashlib.sha256(PLUGIN_SOURCE.read_bytes()).hexdigest()
    except OSError:
        built_from, source = "", "?"
    if built_from != source:
        raise BackendError(MISSING_BACKEND, f"the difftrace QEMU plugin {p} was not built from the current "
                                            f"{PLUGIN_SOURCE.name}; run scripts/setup")
    return p


def command(binary: QemuBinary, elf: Path, cpu: str, plugin: Path, rec: Path, log: Path, uart: Path,
            limit: int, platform: Platform = DEFAULT_PLATFORM, tohost: int | None = None) -> list[str]:
    """The described machine (qemu.machine_options, qemu.cpu_config) WITHOUT one instruction per TB,
    the plugin and ``-d int,plugin`` (its marker lines and QEMU's trap lines share one log stream).
    ``tohost``: the PA of the ELF's tohost (API 4 only: the plugin reads the stored value)."""
    args = f"{plugin},out={rec},limit={limit}" + (f",tohost={tohost:#x}" if tohost is not None else "")
    return ([str(binary.path)] + qemu.machine_options(binary, platform)
            + ["-cpu", qemu.cpu_config(binary, cpu, platform), "-kernel", str(elf),
               "-plugin", args, "-serial", f"file:{uart}", "-d", "int,plugin", "-D", str(log)])


def exposes(api: int) -> dict:
    e = {k: False for k in EXPOSABLE}
    e.update({"insn": True, "trap.tval": True, XLAT_ACCESS: True})
    if api >= 4:
        e.update({"priv": True, "trap.htval": True, "trap.gva": True, "trap.target": True, "trap.tinst": True,
                  "trap.fields": True})
    return e


def sources(api: int) -> dict:
    s = {"pc, insn": "plugin instruction callbacks", "trap cause/epc/tval": "-d int",
         "xlats": "plugin memory callbacks (qemu_plugin_get_hwaddr): every explicit access, physical "
                  "address only; priv/v of an access from its mmu_idx"}
    if api >= 4:
        s["priv/v, trap target/htval/gva/tinst/fields"] = "plugin register reads at the first instruction after each trap"
    else:
        s["trap target/htval/gva"] = "trap-detail pass (-d cpu at the handler entries)"
        s["trap tinst"] = "gdbstub pass"
    return s




def _wait(p: subprocess.Popen, log: Path, deadline: float, max_steps: int, stats: dict) -> str:
    """qemu._wait on the plugin's log: stop QEMU at ``deadline``, at the plugin's "L" line (it stopped
    recording at its limit), at its "T" line (the program wrote tohost: "tohost"), past max_steps + 1
    trap lines (a fault storm runs no instruction) or past qemu.log_bound(max_steps) bytes."""
    why = qemu._wait(p, log, deadline, max_steps, stats, step_lines=(b"\nriscv_cpu_do_interrupt",),
                     stop_line=(b"\nL ", b"\nT "))
    if why == "stop-line":
        return "tohost" if stats.get("stop_line") == b"\nT " else "step-limit"
    return why


def run(elf_path, *, backend: str, hgatp_mode: str = "", vs_mode: str = "", cpu: str = "default",
        timeout: float = 60, max_steps: int = 5_000_000, out_path, guest: str | None = None,
        use_cache: bool = True, platform: Platform | None = None, **_ignored) -> RunResult:
    """As qemu.run, with the plugin as the trace source.  Never raises for a user-level problem."""
    deadline = time.monotonic() + timeout
    elf = Path(elf_path)
    try:
        binary = locate(backend)
        qemu.check_elf(elf)
        cpu = cpu or "default"
        platform = platform or DEFAULT_PLATFORM
        qemu.cpu_config(binary, cpu, platform)
        api = api_version(binary)
        plugin = plugin_path(api)
        tohost = qemu.program_end(elf)
        wfis = wfi_end.wfi_pcs(elf)
        if tohost is not None and api < 4:
            raise BackendError(MISSING_BACKEND, f"{elf.name} ends through tohost, which the plugin of "
                                                f"{binary.name} (API {api}) cannot read: use --qemu-trace log "
                                                f"(the default there)")
    except BackendError as e:
        return error_result(e)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    key = None
    if use_cache:
        from difftest import cache
        plugin_sha = sha256_file(plugin)
        # its own key: the plugin's bytes and the trace source are part of it
        key = cache.key(binary, elf, cpu, max_steps, hgatp_mode, vs_mode,
                        command(binary, Path("ELF"), cpu, Path("PLUGIN"), Path("REC"), Path("LOG"), Path("UART"),
                                max_steps + 1, platform, tohost)
                        + ["trace-source=plugin", f"plugin-sha256={plugin_sha}"], platform.describe())
        hit = cache.fetch(key, out_path, guest=guest) if use_cache != "refresh" else None
        if hit is not None:
            return hit
    with proc.sigterm_unwinds():
        res = _run_uncached(binary, elf, api=api, plugin=plugin, hgatp_mode=hgatp_mode, vs_mode=vs_mode, cpu=cpu,
                            timeout=timeout, deadline=deadline, max_steps=max_steps, out_path=out_path, guest=guest,
                            platform=platform, tohost=tohost, wfis=wfis)
    return qemu.store_if_deterministic(key, out_path, res, max_steps)


def _run_uncached(binary, elf, *, api, plugin, hgatp_mode, vs_mode, cpu, timeout, deadline, max_steps, out_path,
                  guest, platform: Platform = DEFAULT_PLATFORM, tohost: int | None = None,
                  wfis: frozenset = frozenset()) -> RunResult:
    proc.sweep_stale(qemu.TMP_PREFIX)
    with tempfile.TemporaryDirectory(prefix=qemu.TMP_PREFIX) as tmp:
        tmp = Path(tmp)
        proc.claim(tmp)
        rec, log, uart = tmp / "difftrace.bin", tmp / "qemu.log", tmp / "uart.txt"
        # the plugin records one instruction more than max_steps: a run that passes the limit says so
        cmd = command(binary, elf.resolve(), cpu, plugin, rec, log, uart, max_steps + 1, platform, tohost)
        shown = qemu.printable_command(binary, command(binary, elf.resolve(), cpu, plugin, Path("difftrace.bin"),
                                                       Path("qemu.log"), Path("uart.txt"), max_steps + 1, platform,
                                                       tohost))
        header = Header(guest=guest or elf.name.split(".")[0], elf_sha256=sha256_file(elf), hgatp_mode=hgatp_mode,
                        vs_mode=vs_mode, backend=binary.name, backend_version=binary.version, cpu=cpu,
                        cpu_config=qemu.cpu_config(binary, cpu, platform), command=shown, exposes=exposes(api),
                        platform=platform.describe(),
                        extra={"qemu_path": str(binary.path), "command_line": shlex.join(shown),
                               "trace_source": "plugin", "plugin": str(plugin), "plugin_api": api,
                               "plugin_sha256": sha256_file(plugin), "sources": sources(api)})
        stats: dict = {}
        errf = open(tmp / "stderr.txt", "w+b")
        watch = None
        try:
            if wfis:        # breakpoints on the WFIs: a final one ends the run (wfi_end.py); tohost is the plugin's
                p, watch = program_end.start(cmd, binary.env, None, tmp, deadline, wfis, stdin=subprocess.DEVNULL,
                                             stdout=subprocess.DEVNULL, stderr=errf)
            else:
                p = proc.popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errf,
                               env={**os.environ, **binary.env})
        except OSError as e:
            errf.close()
            return error_result(BackendError(MISSING_BACKEND, f"cannot start {binary.path}: {e}; run scripts/setup"))
        try:
            why = _wait(p, log, deadline, max_steps, stats)
        finally:
            proc.kill(p)
            if watch is not None:
                watch.join(5)
        if watch is not None and watch.end == "wfi" and why == "exit":
            why = "wfi"         # halted in a WFI that never resumes; the watch stopped QEMU there
        errf.seek(0)
        err = (errf.read() or b"").decode("utf-8", "replace").strip()
        errf.close()
        if log.exists():
            stats["log_bytes"] = max(stats.get("log_bytes", 0), log.stat().st_size)
        if p.returncode is not None and p.returncode == 1 and not rec.exists():
            # QEMU refused the plugin (a build for another API, a broken .so): say what to do
            return error_result(BackendError(MISSING_BACKEND, f"{binary.name} did not load the plugin {plugin}: "
                                                              f"{err[-1000:]}; run scripts/setup"))
        detail = None
        if api < 4 and why in ("exit", "wfi") and log.exists() and p.returncode >= 0:
            handlers = handler_pcs(log)
            detail = trap_detail.collect(qemu.base_command(binary, elf.resolve(), cpu, platform), binary.env, None, tmp,
                                         deadline - time.monotonic(), handlers=handlers,
                                         wfis=wfis if why == "wfi" else frozenset())
            header.exposes.update(detail.exposes())
        w = TraceWriter(out_path, header)
        parse_timeout, written = False, 0
        rstats: dict = {}
        try:
            cols = None
            if rec.exists() and log.exists():
                try:
                    cols = plugin_columns.columns(rec, log, api=api, max_steps=max_steps)
                except plugin_columns.Fallback:
                    cols = None          # the record-by-record reader below takes it
            if cols is not None:
                rstats = cols.stats
                written = _write_columns(w, cols, stats, detail)
                if ("finisher_step" not in stats and written and api < 4 and binary.version_tuple < (8, 0)
                        and why == "exit" and p.returncode is not None and p.returncode >= 0
                        and not rstats.get("error")):
                    j = written - 1
                    if j not in cols.traps and int(cols.xcount[j]) == 0 and cols.has_insn[j] \
                            and _is_store(int(cols.insn[j])):
                        # 7.2 exits inside the finisher store, before its memory callback (below)
                        stats.update(finisher_step=j, finisher_pc=int(cols.pc[j]), finisher_va=None)
            elif rec.exists() and log.exists():
                steps = plugin_reader.steps(rec, log, api=api, max_steps=max_steps, stats=rstats)
                last = None
                for s in qemu.until_finisher(steps, stats):
                    last = s
                    if s.trap is not None and detail is not None:
                        detail.fill(s.trap)
                    w.step(s)
                    written += 1
                    if s.i % 4096 == 0 and time.monotonic() > deadline:
                        parse_timeout = True
                        break
                if "finisher_step" in stats:
                    stats["tail_safe"] = qemu.tail_is_safe(steps)
                elif (last is not None and api < 4 and binary.version_tuple < (8, 0) and why == "exit"
                      and p.returncode is not None and p.returncode >= 0 and not rstats.get("error")
                      and last.trap is None and not last.xlats and _is_store(last.insn)):
                    # QEMU 7.2 serves the finisher write synchronously: it exits inside the store,
                    # before the plugin's (post-access) memory callback -- the last instruction is
                    # the finisher store, whose address the finisher pass reads with its value
                    stats.update(finisher_step=last.i, finisher_pc=last.pc, finisher_va=None)
        except BaseException:
            w.abort()
            raise
        stats["steps"] = written
        stats["step_limit"] = rstats.get("step_limit", False)
        stats["truncated"] = rstats.get("truncated", False)
        uart_text = console_text(uart.read_bytes()) if uart.exists() else ""
        finished = "finisher_step" in stats and not parse_timeout
        finisher_value = None
        if finished:
            # 10.0: the plugin recorded the value of every I/O store (VAL records): the finisher's first
            # write is the exit code, from this run; 7.2 (API v1 cannot read values): QEMU runs again
            fv = next((val for pa_, val in rstats.get("io_stores", ()) if pa_ in qemu.FINISHER), None)
            if fv is not None:
                v, stats["finisher_why"] = fv, ""
                stats["finisher_from"] = "plugin"
            else:
                v, stats["finisher_why"] = finisher.read_value(qemu.base_command(binary, elf.resolve(), cpu, platform),
                                                               binary.env, stats["finisher_pc"], stats["finisher_va"],
                                                               tmp, deadline)
            finisher_value = finisher.exit_code_of(v) if v is not None else None
            if v is not None and finisher_value is None:
                stats["finisher_why"] = f"the guest wrote {v:#x}, which ends nothing (not a pass/fail value)"
        rc = p.returncode
        exit_code = None
        end = ""
        tohost_end = rstats.get("tohost")
        semi = None
        if why == "exit" and platform.semihosting and not finished and not parse_timeout and written:
            last_pc, last_insn = _last_insn(cols, last if cols is None else None, written)
            if last_insn == semihosting.S.EBREAK:
                semi = semihosting.end_of(qemu.base_command(binary, elf.resolve(), cpu, platform), binary.env, rc,
                                          last_pc, tmp, deadline, stats)
        if semi is not None:            # QEMU exited at the guest's semihosting exit call
            status, message, exit_code = semihosting.classify(semi, rc)
            end = "semihosting" if status == "exit" else ""
        elif rc is not None and rc < 0 and why == "exit":
            status, message, _ = qemu._classify_exit(rc, err, stats, binary, None)
        elif tohost_end is not None and not parse_timeout and not rstats.get("error") and not stats["truncated"]:
            # the program wrote tohost (the plugin saw the value and recorded nothing after that
            # store, so the trace ends at it; QEMU, which spins there, was stopped by the backend):
            # a normal end, whatever QEMU's status
            status, message, exit_code, end = "exit", "", tohost_exit_code(tohost_end[1]), "tohost"
        elif why == "wfi" and not parse_timeout and not rstats.get("error") and not stats["truncated"]:
            # halted in a WFI that never resumes (wfi_end.py): an end without an exit code
            status, message, exit_code, end = "exit", wfi_end.ENDED, None, "wfi"
        elif why == "tohost":
            status, message = "error", ("QEMU was stopped at the plugin's tohost line, but the trace does not "
                                        "show the tohost store" + (f": {rstats['error']}" if rstats.get("error") else ""))
        elif finished:
            status, message, exit_code = qemu.finisher_end(rc, why, err, stats, binary, finisher_value)
        elif rstats.get("error"):
            status, message = "error", f"the plugin trace cannot be trusted past step {written}: {rstats['error']}"
        elif why == "timeout" or parse_timeout:
            status, message = qemu.timeout_end(why, parse_timeout, timeout, written, "the plugin trace", "trace")
        elif why == "log-limit":
            status, message = "step-limit", (f"QEMU was stopped: its log passed {stats['log_bytes']} bytes "
                                             f"(bound {qemu.log_bound(max_steps)} for --max-steps {max_steps})")
        elif why == "step-limit" or stats["step_limit"]:
            status, message = "step-limit", f"stopped after {max_steps} steps (--max-steps)"
        else:
            status, message, exit_code = qemu._classify_exit(rc, err, stats, binary, None)
        if status == "exit" and rstats.get("error"):
            status, message, exit_code = "error", f"the plugin trace cannot be trusted: {rstats['error']}", None
        if status == "exit" and stats["truncated"]:
            status, message, exit_code = "error", "the plugin's record file ends inside a record (truncated)", None
        truncated = bool(stats["truncated"]) or status == "crash"
        extra = {"log_bytes": stats.get("log_bytes", 0), "record_bytes": rec.stat().st_size if rec.exists() else 0,
                 "mem_accesses": stats.get("mem_accesses"),
                 "plugin": {k: rstats.get(k) for k in ("int_lines", "markers", "traps", "traps_checked",
                                                       "traps_unchecked", "mode_checks_failed", "limit", "error")}}
        if detail is not None:
            extra["trap_detail"] = detail.summary()
        if finished:
            extra["finisher"] = {"pc": stats["finisher_pc"], "qemu_status": rc, "value_read": finisher_value is not None,
                                 "from": stats.get("finisher_from", "second run")}
            end = "finisher" if status == "exit" else ""
        if semi is not None:
            extra["semihosting"] = {**semi, "qemu_status": rc}
        if end == "tohost":
            extra["tohost"] = {"pa": tohost, "value": tohost_end[1], "step": tohost_end[0], "qemu_status": rc}
        if end == "wfi":
            extra["wfi"] = {**watch.wfi, "pc_after": watch.pc, "qemu_status": rc}
        if watch is not None and watch.error:
            extra["program_end_watch"] = watch.error
        footer = Footer(status="error" if status == "no-trace" else status, exit_code=exit_code, steps=written,
                        uart=uart_text, message=message, truncated=truncated, extra=extra, end=end)
        w.close(footer)
    return qemu.result_of(status, out_path, header, footer, message, truncated=bool(stats["truncated"]),
                          bad_trace=bool(rstats.get("error")))


def _write_columns(w, cols, stats: dict, detail) -> int:
    """The bulk path of the trace: ``qemu.until_finisher`` and ``qemu.tail_is_safe`` on columns,
    the trap-detail pass's values (7.2) on the traps in order, then the columns into the binary
    trace without a Step per instruction.  Returns the steps written."""
    n = cols.n
    tab = cols.table
    # the finisher stores among the distinct translations (a small table), then their first use
    fin = (tab["access"] == ACCESSES.index("store")) & ~tab["pa_none"] \
        & (tab["pa"] >= np.uint64(qemu.FINISHER.start)) & (tab["pa"] < np.uint64(qemu.FINISHER.stop))
    keep = n
    hits = np.flatnonzero(fin[cols.refs]) if fin.any() else ()
    if len(hits):
        r = int(hits[0])
        i = _step_of_row(cols.xcount, r)
        keep = i + 1
        stats.update(finisher_step=i, finisher_pc=int(cols.pc[i]), finisher_va=int(tab["va"][cols.refs[r]]))
        rest = n - keep                       # qemu.tail_is_safe: none, or one pc without a trap (j .)
        tail_pcs = set(cols.pc[keep:keep + 65].tolist())
        stats["tail_safe"] = rest == 0 or (rest <= 64 and len(tail_pcs) == 1
                                           and not any(keep <= j < n for j in cols.traps) and rest != 1)
    traps = {j: t for j, t in cols.traps.items() if j < keep}
    if detail is not None:
        for j in sorted(traps):
            detail.fill(traps[j])
    rows = int(cols.xcount[:keep].sum(dtype=np.int64))
    stats["mem_accesses"] = rows             # explicit accesses the run made (the finisher store included)
    w.bulk(cols.pc[:keep], cols.insn[:keep], cols.has_insn[:keep], cols.priv[:keep], cols.v[:keep],
           cols.xcount[:keep], cols.refs[:rows], tab, traps)
    return keep


def _step_of_row(xcount: np.ndarray, r: int, span: int = 1 << 20) -> int:
    """The step whose translations include row ``r`` (rows are in step order, ``xcount`` per step),
    found a slice of steps at a time: a cumulative sum over a whole 10 M-step run is 80 MB."""
    base = 0
    for k in range(0, len(xcount), span):
        c = np.cumsum(xcount[k:k + span], dtype=np.int64)
        c += base
        if len(c) and c[-1] > r:
            return k + int(np.searchsorted(c, r, side="right"))
        base = int(c[-1]) if len(c) else base
    raise ValueError(f"translation row {r} is past the last step's")


def _last_insn(cols, last, written: int):
    """(pc, instruction bits) of the trace's last step: from the columns, or the last Step."""
    if cols is not None:
        j = written - 1
        return int(cols.pc[j]), (int(cols.insn[j]) if cols.has_insn[j] and j not in cols.traps else None)
    if last is None or last.trap is not None:
        return None, None
    return last.pc, last.insn


def _is_store(insn: int | None) -> bool:
    """A store encoding (STORE, STORE-FP, or a compressed store) -- the finisher write's shape."""
    if insn is None:
        return False
    if insn & 3 == 3:
        return insn & 0x7F in (0x23, 0x27)
    return finisher.decode_store(insn, 2) is not None or (insn & 3 in (0, 2) and (insn >> 13) & 7 == 5)


def handler_pcs(log: Path) -> set[int]:
    """The trap handlers' entries: the pc of the marker that follows each trap line."""
    marks, _, _ = plugin_reader.parse_log(log)
    return {pc for pc, traps in marks.values() if traps}


def plugin_hash(api: int) -> str:
    return hashlib.sha256(plugin_path(api).read_bytes()).hexdigest()
