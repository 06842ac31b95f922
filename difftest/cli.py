"""The ``difftest`` command (ARCHITECTURE section 8).

This module owns ``build``, ``list``, ``run``, ``diff``, ``show`` and
``new-guest``; every other subcommand lives in its own module with
``add_subcommand(subparsers)``, imported when the parser is built.

Exit codes (ARCHITECTURE section 6): 0 match, 1 mismatch, 2 usage or input
error, 125 cannot build or run -- so ``git bisect run difftest run ...`` works.
"""
from __future__ import annotations

import argparse
import builtins
import errno
import importlib
import json
import os
import sys
from dataclasses import asdict, is_dataclass
from pathlib import Path

EXIT_MATCH, EXIT_MISMATCH, EXIT_USAGE, EXIT_CANNOT_RUN = 0, 1, 2, 125

SUBCOMMAND_MODULES = ("difftest.modes", "difftest.known", "difftest.kvmcli", "difftest.nightly", "difftest.bisect",
                    "difftest.coverage", "difftest.bench", "difftest.fuzz.cli")

DEFAULT_BACKENDS = "qemu-10.0,model"
ROOT = Path(__file__).resolve().parent.parent

EPILOG = """\
examples:
  difftest list                                   guests and the HGATP / VS modes each declares
  difftest build                                  build every guest into build/guests/
  difftest run gstage_basic --mode all            every declared HGATP mode, QEMU 10.0 against the model
  difftest run gstage_basic --mode sv48x4 --backend qemu-7.2,qemu-10.0,model --json
  difftest run path/to/any.elf --backend qemu-7.2,qemu-10.0
                                                  a third-party ELF (no config block: run as is)
  difftest diff a.trace.bin b.trace.bin compare two saved traces
  difftest show build/runs/smoke/sv39x4-bare-default/model.trace.bin --step 120
  difftest new-guest my_probe                     a new guest from the documented template

exit codes: 0 match, 1 mismatch, 2 usage or input error, 125 cannot build or run
(so `git bisect run difftest run GUEST --mode M` works).  Reports: docs/REPORTS.md.
"""


class UserError(Exception):
    def __init__(self, message: str, code: int = EXIT_USAGE):
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------------------
# small helpers

def _jsonable(o):
    if is_dataclass(o) and not isinstance(o, type):
        return {k: _jsonable(v) for k, v in asdict(o).items()}
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in o]
    if isinstance(o, Path):
        return str(o)
    return o


class Progress:
    """A live one-line status on a TTY (stderr); silent otherwise and under --json."""

    def __init__(self, enabled: bool):
        self.on = enabled and sys.stderr.isatty()
        self._len = 0

    def __call__(self, msg: str) -> None:
        if self.on:
            msg = msg[:118]
            sys.stderr.write("\r" + msg.ljust(self._len))
            sys.stderr.flush()
            self._len = len(msg)

    def done(self) -> None:
        if self.on and self._len:
            sys.stderr.write("\r" + " " * self._len + "\r")
            sys.stderr.flush()
            self._len = 0


def _guests():
    from difftest import guests
    return guests


def _guest_names() -> list[str]:
    G = _guests()
    names = G.list_guests()
    return [getattr(n, "name", n) for n in names]


def declared_modes(elf) -> tuple[list[str], list[str]] | None:
    """The HGATP and VS modes an ELF's config block declares, lowest first; None without a block."""
    return _guests().declared_modes(elf)


# ---------------------------------------------------------------------------
# build / list / new-guest

def cmd_build(args) -> int:
    G = _guests()
    names = args.guests or _guest_names()
    out = []
    rc = EXIT_MATCH
    for n in names:
        try:
            elf = G.build(n, force=args.force) if args.force else G.build(n)
            out.append({"guest": n, "elf": str(getattr(elf, "elf", elf)), "ok": True})
        except Exception as e:          # compiler output is in the message
            out.append({"guest": n, "ok": False, "error": str(e)})
            rc = EXIT_CANNOT_RUN
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        for r in out:
            print(f"{r['guest']:<24} {r['elf'] if r['ok'] else 'FAILED: ' + r['error']}")
    return rc


def cmd_list(args) -> int:
    G = _guests()
    rows = []
    for n in _guest_names():
        row = {"guest": n}
        try:
            info = G.info(n) if hasattr(G, "info") else None
        except Exception:
            info = None
        if info is not None:
            row["hgatp_modes"] = list(getattr(info, "hgatp_modes", []))
            row["vs_modes"] = list(getattr(info, "vs_modes", []))
            row["description"] = getattr(info, "description", "")
        else:
            try:
                dm = declared_modes(G.build(n))
                row["hgatp_modes"], row["vs_modes"] = dm if dm else ([], [])
            except Exception as e:
                row["error"] = str(e)
        rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=1))
        return EXIT_MATCH
    print(f"{'guest':<24} {'HGATP modes':<32} VS modes")
    for r in rows:
        if "error" in r:
            print(f"{r['guest']:<24} (cannot build: {r['error'].splitlines()[0] if r['error'] else '?'})")
        else:
            print(f"{r['guest']:<24} {','.join(r['hgatp_modes']) or '-':<32} {','.join(r['vs_modes']) or '-'}"
                  + (f"   {r['description']}" if r.get("description") else ""))
    return EXIT_MATCH


def cmd_new_guest(args) -> int:
    G = _guests()
    try:
        path = G.new_guest(args.name)
    except (ValueError, FileExistsError) as e:
        raise UserError(str(e))
    print(f"created {path}\nnext: edit it, then `difftest run {args.name} --mode all`")
    return EXIT_MATCH


# ---------------------------------------------------------------------------
# run

def _modes(value: str, declared: list[str] | None, known: dict, what: str) -> list[str]:
    if value in (None, ""):
        return [""]                  # default: the harness picks the lowest declared
    if value == "all":
        if declared is None:
            return [""]
        return declared
    out = []
    for m in value.split(","):
        m = m.strip().lower()
        if m not in known:
            raise UserError(f"unknown {what} {m!r}; choose from {', '.join(known)} or all")
        if declared is not None and m not in declared:
            raise UserError(f"this guest does not declare {what} {m} (it declares {', '.join(declared) or 'none'})")
        out.append(m)
    return out


def cmd_run(args) -> int:
    from difftest import engine
    from difftest.trace import HGATP_MODES, SATP_MODES
    backends = [b.strip() for b in args.backend.split(",") if b.strip()]
    if not backends:
        raise UserError("--backend needs at least one backend")
    prog = Progress(not args.json)
    prog(f"{args.guest}: preparing")
    from refmodel.platform import platform_for
    try:
        platform = platform_for(args.ram)
    except ValueError as e:
        prog.done()
        raise UserError(f"--ram: {e}")
    platform = _firmware_args(args, platform)
    try:
        name, elf = engine.resolve_guest(args.guest, platform)
        declared = declared_modes(elf)
    except engine.EngineError as e:
        prog.done()
        raise UserError(str(e), e.exit_code)
    except Exception as e:
        prog.done()
        raise UserError(f"{args.guest}: cannot read the ELF ({e})")
    hg = _modes(args.mode, declared[0] if declared else None, HGATP_MODES, "HGATP mode")
    vs = _modes(args.vs_mode, declared[1] if declared else None, SATP_MODES, "VS mode")
    if declared is None and (args.mode not in (None, "", "all") or args.vs_mode not in (None, "", "all")):
        raise UserError(f"{args.guest} has no difftest config block: it runs as is, without --mode/--vs-mode")
    out_root = Path(args.out) if args.out else ROOT / "build" / "runs" / (
        f"{name}@{Path(platform.firmware).stem}" if getattr(platform, "firmware", None) else name)
    results = []
    for m in hg:
        for v in vs:
            d = out_root / f"{m or 'default'}-{v or 'default'}-{args.cpu}"
            try:
                case = engine.run_case(args.guest, hgatp_mode=m, vs_mode=v, backends=backends, cpu=args.cpu,
                                       out_dir=d, timeout=args.timeout, max_steps=args.max_steps,
                                       use_cache="refresh" if args.no_cache else True, progress=prog,
                                       qemu_trace=args.qemu_trace, platform=platform)
            except engine.EngineError as e:
                prog.done()
                raise UserError(str(e), e.exit_code)
            _tag_known(case, args.qemu_trace)
            results.append(case)
            if not args.json:
                prog.done()
                _print_case(case)
    prog.done()
    if args.json:
        print(json.dumps([_case_json(c) for c in results], indent=1))
    elif len(results) > 1:
        print()
        print(summary_table(results))
    return _exit_for(results)


def _firmware_args(args, platform):
    """``--firmware FW``: ``platform`` with the firmware (refmodel/loader.py FirmwarePlatform); a
    payload of ours named as the guest (guests/firmware/<name>) is built and its ELF put in
    ``args.guest``."""
    fw = getattr(args, "firmware", None)
    if fw is None:
        return platform
    from difftest import firmware as F
    from difftest import guests as G
    try:
        platform = F.platform_with(platform, fw)
        if args.guest in F.payload_names():
            args.guest = str(F.build_payload(args.guest))
    except F.FirmwareError as e:
        raise UserError(str(e))
    except G.BuildError as e:
        raise UserError(str(e), 125)
    return platform


def _tag_known(case, qemu_trace: str = "auto") -> None:
    """Name the reviewed entry (known-divergences.toml) that lists each finding, for the reader; the
    exit code stays 1 for any finding (the nightly is where known ones pass)."""
    from difftest import known as K
    from difftest.nightly import plugin_traced
    try:
        known = K.load(plugin_for=plugin_traced(qemu_trace, case.backends))
    except K.KnownError:
        return
    for p in case.pairs:
        for f in p.findings:
            k = K.classify(case.guest, f.probe, f.what, f"{f.a}~{f.b}", known, case.hgatp_mode, case.vs_mode)
            f.known = k.id if k else None


def _representative(c):
    """The pair a case's summary row shows: of the worst status, the odd one out against the
    model if there is one, else the first; for a green case the pair compared over the fewest
    steps (what the whole case vouches for)."""
    from difftest.compare import worst
    if not c.pairs:
        return None
    w = worst(p.status for p in c.pairs)
    if w in ("match", "accepted-stale"):
        return min(c.pairs, key=lambda p: p.steps_compared)
    bad = [p for p in c.pairs if p.status == w]
    odd = c.odd_one_out
    # the odd one out against the model says most: that backend, checked against the spec
    return next((p for p in bad if odd in (p.a, p.b) and any(n.startswith("model") for n in (p.a, p.b))), bad[0])


def summary_table(results) -> str:
    """One row per case: status, kind, step, pc, steps and translations compared, stale
    accepted and the report -- of the case's representative pair (named in the row)."""
    head = ("case", "status", "pair", "kind", "step", "pc", "steps", "xlats", "stale", "report")
    rows = []
    for c in results:
        p = _representative(c)
        case = f"{c.guest} {c.hgatp_mode or '-'}/{c.vs_mode or '-'}" + (f" cpu={c.cpu}" if c.cpu != "default" else "")
        if p is None:
            rows.append((case, c.status, "-", "-", "-", "-", "-", "-", "-", "-"))
            continue
        rep = p.report.get("txt") if p.report else None
        if rep:
            try:
                rep = os.path.relpath(rep)
            except ValueError:
                pass
        flag = f" (odd: {c.odd_one_out})" if c.odd_one_out else " (spec-allowed choice)" if getattr(c, "note", "") else ""
        rows.append((case, c.status + flag, f"{p.a}~{p.b}",
                     p.kind or "-", "-" if p.step is None else str(p.step),
                     "-" if p.pc is None else f"{p.pc:#x}", str(p.steps_compared), str(p.xlats_compared),
                     str(p.accepted_stale), rep or "-"))
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head) - 1)]
    lines = []
    for r in [head] + rows:
        lines.append("  ".join(v.ljust(w) if i < 2 or i == 2 or i == 3 else v.rjust(w)
                               for i, (v, w) in enumerate(zip(r, widths))) + "  " + r[-1])
    n = {s: sum(1 for c in results if c.status == s) for s in ("match", "accepted-stale", "mismatch", "error")}
    lines.append(", ".join(f"{k} {v}" for k, v in n.items() if v) + f" ({len(results)} cases)")
    return "\n".join(lines)


def _exit_for(results) -> int:
    statuses = [c.status for c in results]
    if "mismatch" in statuses:
        return EXIT_MISMATCH
    if "error" in statuses:
        return EXIT_CANNOT_RUN
    return EXIT_MATCH


def _case_json(c) -> dict:
    d = {"guest": c.guest, "hgatp_mode": c.hgatp_mode, "vs_mode": c.vs_mode, "cpu": c.cpu,
         "backends": c.backends, "status": c.status, "odd_one_out": c.odd_one_out, "seconds": c.seconds,
         "compare_seconds": getattr(c, "compare_seconds", {}), "note": getattr(c, "note", ""),
         "elf": c.elf, "pairs": [_jsonable(p) for p in c.pairs], "runs": {},
         "findings": [_jsonable(f) for f in getattr(c, "findings", [])]}
    for b, r in c.runs.items():
        d["runs"][b] = {"status": r.status, "trace": r.trace_path, "message": r.message,
                        "error_class": r.error_class,
                        "footer": _jsonable(r.footer) if r.footer is not None else None}
        if d["runs"][b]["footer"]:
            d["runs"][b]["footer"].pop("uart", None)
    return d


def steps_line(p) -> str:
    """What a pair's comparison covered, in steps (ARCHITECTURE 7a)."""
    run = p.steps_run or p.steps_compared
    pct = f" ({p.steps_compared / run:.1%})" if run else ""
    out = f"steps compared {p.steps_compared} of {run}{pct}"
    if any(p.steps_printing) or any(p.steps_skipped):
        out += (f"; not compared: printing lines that differ {p.steps_printing[0]}/{p.steps_printing[1]} "
                f"(checked as console text), skipped {p.steps_skipped[0]}/{p.steps_skipped[1]} ({p.a}/{p.b})")
    if p.resyncs:
        out += f"; re-synchronised {p.resyncs} time(s) at probe marks"
    elif not p.sled and p.status == "mismatch":
        out += "; no probe marks in this ELF: nothing after the first divergence was compared"
    return out


def _print_case(c) -> None:
    from difftest.report import safe_text

    def print(*a):                    # messages may carry guest or QEMU text: never raw control bytes
        builtins.print(safe_text(" ".join(map(str, a))))

    head = f"{c.guest} hgatp={c.hgatp_mode or '-'} vs={c.vs_mode or '-'} cpu={c.cpu}"
    def ended(b):
        f = c.runs[b].footer if b in c.runs else None
        if f is not None and f.status == "exit" and getattr(f, "end", "") == "wfi":
            return " ended in wfi (no exit code)"         # an end, never a pass (wfi_end.py)
        return "" if f is None else (f" exit {f.exit_code}" + (f" ({f.end})" if getattr(f, "end", "") else "")
                                     if f.status == "exit" else f" {f.status}")
    # each run's own end: a guest that fails its self-checks on every backend is no green result
    secs = " ".join(f"{b}={s:.1f}s{ended(b)}" for b, s in c.seconds.items())
    print(f"{c.status.upper():<14} {head}  ({secs})")
    for b, r in c.runs.items():
        if r.status != "ok":
            print(f"    {b}: {r.error_class or r.status}: {r.message}")
    for p in c.pairs:
        print(f"    {p.a} ~ {p.b}: {p.summary}")
        print(f"      {steps_line(p)}")
        for f in p.findings[:20]:
            print(f"      finding probe {f.probe}: {f.what}" + (f"  [{f.known}]" if f.known else ""))
        if len(p.findings) > 20:
            print(f"      ... {len(p.findings) - 20} more finding(s) in the report")
        if p.report:
            print(f"      report: {p.report.get('txt')}  (also .md, .html)")
        if p.status != "match" and p.not_compared:
            print(f"      not compared: {'; '.join(p.not_compared)}")
    if c.odd_one_out == "model":
        # the model is the spec: QEMUs agreeing with each other against it is a shared QEMU finding
        # (or a model bug) -- never a vote the QEMUs win
        print("    the QEMUs agree with each other, against the model (the spec): a finding common to both "
              "QEMUs, or a model bug -- see the reports and known-divergences.toml")
    elif c.odd_one_out:
        print(f"    odd one out: {c.odd_one_out} (the others agree)")
    if getattr(c, "note", ""):
        print(f"    note: {c.note}")
    for f in getattr(c, "findings", []):
        print(f"    MODEL SELF-CHECK: probe {f.probe}: {f.summary} (a model error or a wrong expectation "
              "in the guest)")


# ---------------------------------------------------------------------------
# diff / show

def cmd_diff(args) -> int:
    from difftest.compare import compare_full
    from difftest.report import build, render_text, write_reports
    from difftest.trace import verify
    heads = []
    for p in (args.trace_a, args.trace_b):
        if not os.path.isfile(p):
            raise UserError(f"{p}: no such trace file")
        heads.append(verify(p)[0])           # TraceError (exit 2) for a damaged trace: nothing compared
    ha, hb = heads
    differ = [f"{f} {getattr(ha, f)!r} vs {getattr(hb, f)!r}" for f in ("guest", "elf_sha256", "hgatp_mode", "vs_mode")
              if getattr(ha, f) != getattr(hb, f)]
    if differ:
        msg = ("the traces are not of the same run: " + "; ".join(differ)
               + " -- their differences would say nothing about either backend")
        if not args.force:
            raise UserError(msg + " (--force compares them anyway)")
        print(f"difftest: warning: {msg} (compared anyway: --force)", file=sys.stderr)
    pr, div = compare_full(args.trace_a, args.trace_b)
    if pr.status == "error" and div is None and pr.a == "?":
        raise UserError(pr.summary)
    if args.out and pr.status != "match":
        pr.report = write_reports(pr, div, args.out, stem=f"{pr.a}~{pr.b}".replace("/", "_"),
                                  command=["difftest", "diff", args.trace_a, args.trace_b])
    if args.json:
        print(json.dumps(_jsonable(pr), indent=1))
    elif pr.status in ("match", "accepted-stale"):
        print(pr.summary)
    else:
        print(render_text(build(pr, div, command=["difftest", "diff", args.trace_a, args.trace_b])))
    return {"match": 0, "accepted-stale": 0, "mismatch": 1}.get(pr.status, EXIT_CANNOT_RUN)


def cmd_show(args) -> int:
    from difftest.disasm import disasm
    from difftest.report import _trap, _xlat
    from difftest.trace import PRIV_NAMES, TraceError, TraceReader, escape_console
    try:
        r = TraceReader(args.trace)
    except TraceError as e:
        raise UserError(str(e))
    h = r.header
    lo = 0 if args.step is None else max(0, args.step - args.context)
    hi = None if args.step is None and args.count is None else (
        (args.step + args.context + 1) if args.step is not None else lo + args.count)
    if args.count is not None and args.step is None:
        hi = lo + args.count
    steps = []
    for s in r.steps():
        if s.i < lo:
            continue
        if hi is not None and s.i >= hi:
            break
        steps.append(s)
    footer = r.footer
    if args.json:
        if r.error is not None:
            raise UserError(f"{args.trace}: damaged trace ({r.error})")
        from difftest.trace import step_to_json
        print(json.dumps({"header": _jsonable(h), "steps": [step_to_json(s) for s in steps],
                          "footer": _jsonable(footer) if footer else None}, indent=1))
        return EXIT_MATCH
    print(f"{h.guest}  hgatp={h.hgatp_mode or '-'} vs={h.vs_mode or '-'}  {h.backend} {h.backend_version} "
          f"({h.cpu_config})")
    if getattr(h, "platform", None):
        pf = h.platform
        print(f"platform: {pf.get('isa')} misa={pf.get('misa')} RAM {pf.get('ram_size')} at {pf.get('ram_base')}, "
              f"FDT {pf.get('fdt_addr')}, Sstc {'on' if pf.get('sstc') else 'off'}, {pf.get('pmp_entries')} PMP entries")
    print("exposes: " + ", ".join(k for k, v in h.exposes.items() if v))
    for s in steps:
        mark = ">>" if args.step is not None and s.i == args.step else "  "
        pv = PRIV_NAMES.get((s.priv, s.v or 0), "?") if s.priv is not None else "?"
        ins = f"{s.insn:08x}" if s.insn is not None else "-"
        line = f"{mark}{s.i:>8}  {s.pc:#018x}  {pv:<2}  {ins:>8}  {disasm(s.insn, s.pc):<28}"
        if s.trap:
            line += "  TRAP " + _trap(s.trap)
        print(line.rstrip())
        for x in s.xlats:
            print(f"{'':>14}{_xlat(x)}")
            for w in x.walk or []:
                print(f"{'':>18}{w.stage.upper()} L{w.level} pte@{w.pte_addr:#x} = {w.pte:#018x}  {w.decision}")
        if s.uart:
            print(f"{'':>14}uart: \"{escape_console(s.uart, keep_newlines=False)}\"")
    if footer is not None and (hi is None or not steps or steps[-1].i < hi - 1):
        from difftest.report import safe_text
        how = f" through {footer.end}" if getattr(footer, "end", "") else ""
        print(safe_text(f"end: {footer.status}{how}, exit {footer.exit_code}, {footer.steps} steps {footer.message}".rstrip()))
    if r.error is not None:
        raise UserError(f"{args.trace}: damaged trace ({r.error}); the steps above are the ones before the damage")
    return EXIT_MATCH


# ---------------------------------------------------------------------------
# the parser

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="difftest", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Differential testing of RISC-V hypervisor two-stage address translation: guests run under "
                    "QEMU and the spec model, compared step by step to the end of every run, per HGATP mode; "
                    "every probe in which they differ is a finding, held to the reviewed catalogue "
                    "(difftest known).")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    R = argparse.RawDescriptionHelpFormatter

    s = sub.add_parser("build", help="build guests into build/guests/", formatter_class=R,
                       epilog="examples:\n  difftest build\n  difftest build smoke gstage_basic")
    s.add_argument("guests", nargs="*", help="guest names (default: all)")
    s.add_argument("--force", action="store_true", help="rebuild even when up to date")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_build)

    s = sub.add_parser("list", help="guests and the HGATP / VS modes each declares", formatter_class=R,
                       epilog="examples:\n  difftest list\n  difftest list --json")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_list)

    s = sub.add_parser(
        "run", help="run a guest (or any ELF) on several backends and compare them", formatter_class=R,
        epilog="examples:\n"
               "  difftest run smoke                              lowest declared modes, qemu-10.0 vs model\n"
               "  difftest run gstage_basic --mode all --vs-mode all\n"
               "  difftest run gstage_basic --mode sv57x4 --backend qemu-7.2,qemu-10.0,model --json\n"
               "  difftest run gstage_basic --mode sv48x4 --cpu sv48\n"
               "  difftest run ./vendor.elf --backend qemu-7.2,qemu-10.0   third-party ELF, run as is\n"
               "  difftest run ptest_bigram --ram 256M --backend qemu-7.2,qemu-10.0,model\n"
               "  difftest run sbi_payload --firmware opensbi-jump --max-steps 15000000 --timeout 900\n\n"
               "A program ends on every side the same way, and the result says which: the virt finisher\n"
               "(its full exit code), a non-zero write to its `tohost` symbol (1 = pass, (N << 1) | 1 =\n"
               "test N failed), a semihosting exit, or a final WFI no interrupt can end (\"wfi\": no exit\n"
               "code).  Anything else runs into --max-steps or --timeout and is an error.\n\n"
               "Each case writes traces and, for a mismatch, reports (.txt .md .html) under --out\n"
               "(default build/runs/GUEST/MODE-VSMODE-CPU/).  exit: 0 match, 1 mismatch, 2 input error,\n"
               "125 cannot build or run.")
    s.add_argument("guest", metavar="GUEST|ELF", help="a guest name (see `difftest list`) or a path to an ELF")
    s.add_argument("--mode", default="", help="HGATP mode: bare, sv39x4, sv48x4, sv57x4, a comma list, or all "
                                              "(default: the lowest the guest declares)")
    s.add_argument("--vs-mode", default="", help="vsatp mode: bare, sv39, sv48, sv57, a comma list, or all")
    s.add_argument("--backend", default=DEFAULT_BACKENDS,
                   help=f"comma list of qemu-7.2, qemu-10.0, model, or a QEMU binary path (default {DEFAULT_BACKENDS})")
    s.add_argument("--cpu", default="default", help="CPU variant, e.g. default, sv39, sv48 (QEMU -cpu and model profile; "
                                                     "the hart itself, RV64ACHIMSU without F/D, is refmodel/platform.py's)")
    s.add_argument("--ram", default="", help="RAM size of the virt machine, e.g. 256M, 1G (default 128M): QEMU -m and "
                                             "the model's RAM and FDT address alike")
    s.add_argument("--out", help="output directory")
    s.add_argument("--no-cache", action="store_true", help="re-run QEMU even when a cached trace exists (the fresh trace replaces it)")
    s.add_argument("--timeout", type=float, default=120, help="seconds per backend run (default 120)")
    s.add_argument("--max-steps", type=int, default=5_000_000, help="step limit per run (default 5000000)")
    s.add_argument("--firmware", metavar="FW", help="run the ELF as the payload of this firmware (QEMU -bios FW; the "
                   "model gets QEMU's own device tree): a path, or opensbi-jump / opensbi-dynamic (Debian's "
                   "OpenSBI); a payload of guests/firmware/ is built by name, e.g. "
                   "`difftest run sbi_payload --firmware opensbi-jump`")
    s.add_argument("--qemu-trace", choices=("auto", "log", "plugin"), default="auto",
                   help="QEMU trace source: plugin (the difftrace TCG plugin, one run: every instruction and every "
                        "access with its physical address, TLB hits included; on 10.0 also priv/V and the trap "
                        "CSRs), log (-d exec,int,mmu single-stepped: TLB fills with their GPA, faulting "
                        "translations), or auto (default: plugin on QEMU >= 9.2, log on 7.2)")
    s.add_argument("--json", action="store_true", help="machine-readable results on stdout")
    s.set_defaults(func=cmd_run)

    s = sub.add_parser("diff", help="compare two saved traces", formatter_class=R,
                       epilog="examples:\n  difftest diff qemu-10.0.trace.bin model.trace.bin\n"
                              "  difftest diff a.trace.bin b.trace.bin --out reports/ --json")
    s.add_argument("trace_a")
    s.add_argument("trace_b")
    s.add_argument("--out", help="also write .txt/.md/.html reports here")
    s.add_argument("--force", action="store_true",
                   help="compare traces of different guests, ELFs or modes (refused otherwise)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_diff)

    s = sub.add_parser("show", help="print a trace, or the steps around one step", formatter_class=R,
                       epilog="examples:\n  difftest show model.trace.bin --count 40\n"
                              "  difftest show qemu-10.0.trace.bin --step 1234 --context 5")
    s.add_argument("trace")
    s.add_argument("--step", type=int, help="centre on this step")
    s.add_argument("--context", type=int, default=8, help="steps either side of --step (default 8)")
    s.add_argument("--count", type=int, help="print this many steps from the start")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_show)

    s = sub.add_parser("new-guest", help="create guests/NAME/ from the documented template", formatter_class=R,
                       epilog="example:\n  difftest new-guest my_probe && difftest run my_probe --mode all")
    s.add_argument("name")
    s.set_defaults(func=cmd_new_guest)

    for mod in SUBCOMMAND_MODULES:
        importlib.import_module(mod).add_subcommand(sub)
    return p


def add_case_arguments(p: argparse.ArgumentParser, backend: str) -> None:
    """The arguments naming one case, for subcommands that work on one (bisect, minimise)."""
    p.add_argument("guest", help="a guest name (see `difftest list`)")
    p.add_argument("--mode", default="", help="HGATP mode (default: the lowest the guest declares)")
    p.add_argument("--vs-mode", default="", help="vsatp mode (default: the lowest the guest declares)")
    p.add_argument("--backend", default=backend, help=f"default {backend}")
    p.add_argument("--cpu", default="default", help="CPU variant, e.g. default, sv39, sv48")
    p.add_argument("--timeout", type=float, default=120, help="seconds per backend run (default 120)")
    p.add_argument("--json", action="store_true", help="machine-readable result on stdout")


# ---------------------------------------------------------------------------
# argument validation: every subcommand's arguments, checked before anything runs

QEMU_NAMES = ("qemu-7.2", "qemu-10.0")


def _split(v) -> list[str]:
    return [x.strip() for x in (v if isinstance(v, list) else str(v).split(",")) if x.strip()]


def check_backend_name(b: str) -> None:
    """A usage error (exit 2) unless ``b`` names a backend: a known QEMU, ``model``,
    ``model@<profile>`` or the path of an existing QEMU binary.  (A known QEMU that is not
    installed is a run-time error, 125: that revision cannot run, it was not mistyped.)"""
    from difftest.backends import model
    if b in QEMU_NAMES or b == "model":
        return
    if b.startswith("model@"):
        try:
            model.check_backend_name(b)
        except model.ModelError as e:
            raise UserError(f"--backend: {e}") from None
        return
    if os.sep in b or b.startswith(".") or os.path.exists(b):
        if not os.path.isfile(b):
            raise UserError(f"--backend {b!r}: no such QEMU binary")
        if not os.access(b, os.X_OK):
            raise UserError(f"--backend {b!r}: not executable")
        return
    raise UserError(f"unknown backend {b!r}: use {', '.join(QEMU_NAMES)}, model, model@<QEMU> "
                    f"or the path of a qemu-system-riscv64 binary")


def check_cpu(cpu: str, backends: list[str]) -> None:
    from difftest.backends.qemu import CPU_VARIANTS
    from difftest.backends import model
    for b in backends:
        if b == "model" or b.startswith("model@"):
            try:
                model.profile_for(cpu, like=b.partition("@")[2] or None)
            except model.ModelError as e:
                raise UserError(f"--cpu {cpu!r}: {e}") from None
        elif cpu not in CPU_VARIANTS:
            raise UserError(f"unknown CPU variant --cpu {cpu!r} for {b}: use one of {', '.join(CPU_VARIANTS)}")


def _check_writable_dir(d: str, opt: str) -> None:
    p = Path(d)
    try:
        p.mkdir(parents=True, exist_ok=True)
        fd, probe = __import__("tempfile").mkstemp(dir=p, prefix=".difftest-write-check.")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise UserError(f"{opt} {d}: cannot write there ({e.strerror or e}); choose a writable directory") from None


def validate_args(args) -> None:
    """The one place argument values are checked (UserError, exit 2): unknown backends, CPU
    variants, guests, profile names; non-positive or non-finite limits; paths that must exist."""
    import math
    cmd = getattr(args, "command", None)
    backends: list[str] = []
    for attr in ("backend", "backends"):
        v = getattr(args, attr, None)
        if v:
            backends = _split(v)
            for b in backends:
                check_backend_name(b)
    cpu = getattr(args, "cpu", None)
    if cpu:
        for c in _split(cpu):
            check_cpu(c, backends or ["qemu-10.0"] if cmd != "modes" else QEMU_NAMES[-1:])
    t = getattr(args, "timeout", None)
    if t is not None and not (isinstance(t, (int, float)) and math.isfinite(t) and t > 0):
        raise UserError(f"--timeout {t}: give a number of seconds > 0")
    ms = getattr(args, "max_steps", None)
    if ms is not None and ms <= 0:
        raise UserError(f"--max-steps {ms}: give a step count > 0")
    j = getattr(args, "jobs", None)
    if j is not None and j < 0:
        raise UserError(f"--jobs {j}: give a number of worker processes >= 1 (0 = one per core)")
    for attr in ("step", "count"):
        v = getattr(args, attr, None)
        if v is not None and v < 0:
            raise UserError(f"--{attr} {v}: must be >= 0")
    if getattr(args, "context", None) is not None and args.context < 0:
        raise UserError(f"--context {args.context}: must be >= 0")
    gs = getattr(args, "guests", None)
    if gs:
        known = _guest_names()
        bad = [g for g in _split(gs) if g not in known]
        if bad:
            raise UserError(f"unknown guest{'s' if len(bad) > 1 else ''} {', '.join(map(repr, bad))}; "
                            f"`difftest list` shows the guests ({', '.join(known)})")
    r = getattr(args, "resume", None)
    if r is not None and not os.path.isdir(r):
        raise UserError(f"--resume {r}: no such results directory (a mistyped path would start a new run)")
    k = getattr(args, "known", None)
    if k is not None and not os.path.isfile(k):
        raise UserError(f"--known {k}: no such file (a missing list would mean no known divergences)")
    out = getattr(args, "out", None)
    if out and cmd in ("run", "diff", "nightly", "merge", "coverage"):
        _check_writable_dir(out, "--out")


# ---------------------------------------------------------------------------
# the one map from what went wrong to an exit code (ARCHITECTURE section 6)

_NO_SPACE = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
_NOT_WRITABLE = {errno.EROFS, errno.EACCES, errno.EPERM}


def classify(e: BaseException) -> tuple[int, str]:
    """(exit code, one-line message) for an exception that reached ``main``: never 1 (that is
    a real mismatch), never a traceback.  2 for what the user gave (arguments, input files),
    125 when this revision or machine cannot build or run it."""
    from difftest.trace import TraceError
    if isinstance(e, UserError):
        return e.code, str(e)
    if isinstance(e, KeyboardInterrupt):
        return 130, "interrupted"
    if isinstance(e, BrokenPipeError):
        return EXIT_CANNOT_RUN, "output closed before the results were written"
    if isinstance(e, TraceError):
        return EXIT_USAGE, str(e)
    code = getattr(e, "exit_code", None)
    if type(e).__name__ == "EngineError" and code in (EXIT_USAGE, EXIT_CANNOT_RUN):
        return code, str(e)
    if type(e).__name__ == "BuildError":
        return (EXIT_USAGE if getattr(e, "error_class", "") == "usage" else EXIT_CANNOT_RUN), str(e)
    if isinstance(e, OSError):
        where = f" {e.filename}" if e.filename else ""
        if e.errno in _NO_SPACE:
            return EXIT_CANNOT_RUN, (f"cannot write{where or ' a result'}: {e.strerror} (disk full or file size "
                                     f"limit); free some space or give --out on another file system, then re-run")
        if e.errno in _NOT_WRITABLE:
            return EXIT_CANNOT_RUN, (f"cannot write{where or ' a result'}: {e.strerror}; choose a writable --out "
                                     f"or fix its permissions")
        return EXIT_CANNOT_RUN, f"I/O error{where}: {e.strerror or e}"
    if isinstance(e, MemoryError):
        return EXIT_CANNOT_RUN, "out of memory"
    return EXIT_CANNOT_RUN, (f"internal error: {type(e).__name__}: {e} (a difftest bug; "
                             f"DIFFTEST_DEBUG=1 shows the traceback)")


def main(argv=None) -> int:
    try:
        parser = build_parser()
    except Exception as e:     # a broken subcommand module must not take the others down
        print(f"difftest: internal error while loading subcommands: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0) if e.code in (0, None) else EXIT_USAGE
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        validate_args(args)
        return int(args.func(args))
    except (Exception, KeyboardInterrupt) as e:
        code, msg = classify(e)
        if os.environ.get("DIFFTEST_DEBUG") and code != EXIT_USAGE:
            import traceback
            traceback.print_exc()
        try:
            print(f"difftest: {msg}", file=sys.stderr)
        except OSError:
            pass
        if isinstance(e, BrokenPipeError):
            try:                      # no second BrokenPipeError when Python flushes stdout at exit
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            except OSError:
                pass
        return code


if __name__ == "__main__":
    sys.exit(main())
