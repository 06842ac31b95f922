"""`difftest bisect minimise` (ddmin over the probe-selection array, ARCHITECTURE section 2a) and
`difftest bisect qemu` (first QEMU binary at which the outcome changes)."""
from __future__ import annotations

import argparse
import fnmatch
import json
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def ddmin(items: list[int], fails) -> list[int]:
    """Zeller's delta debugging: a 1-minimal subset of ``items`` for which ``fails`` holds."""
    n = 2
    while len(items) >= 2:
        chunk = max(1, len(items) // n)
        subsets = [items[i:i + chunk] for i in range(0, len(items), chunk)]
        for s in subsets:
            if fails(s):
                items, n = s, 2
                break
        else:
            for s in subsets:
                comp = [x for x in items if x not in s]
                if comp and fails(comp):
                    items, n = comp, max(n - 1, 2)
                    break
            else:
                if n >= len(items):
                    break
                n = min(len(items), n * 2)
    return items


def probe_ids(trace_path) -> list[int]:
    from difftest.trace import TraceReader
    r = TraceReader(trace_path)
    for _ in r.steps():          # the footer (with the whole console output) comes after the steps
        pass
    out = r.footer.uart if r.footer is not None else ""
    ids = []
    for ln in (out or "").splitlines():
        parts = ln.split()
        if len(parts) > 1 and parts[0] in ("P", "X") and parts[1].isdigit():
            ids.append(int(parts[1]))
    return sorted(set(ids))


def write_guest(name: str, src: str, ids: list[int], guests_dir: Path) -> Path:
    """A new guest that reproduces with the selection fixed at build time: the original sources with
    ``main`` renamed, and a ``main`` that writes the selection words before calling it."""
    from difftest import guests as G
    from difftest.config_block import selection_words
    d = guests_dir / name
    d.mkdir(parents=True, exist_ok=False)
    for f in sorted((G.GUESTS_DIR / src).iterdir()):
        if f.suffix == ".c":
            (d / f.name).write_text("#define main difftest_min_orig_main\n" + f.read_text())
        elif f.is_file():
            shutil.copy(f, d / f.name)
    words = selection_words(ids)
    (d / "zz_min_select.c").write_text(
        f"/* {name}: written by `difftest bisect minimise {src}`; runs only probes {ids}\n"
        " * (ARCHITECTURE section 2a: the selection is fixed here, at build time). */\n"
        '#include "difftest.h"\nint difftest_min_orig_main(void);\n'
        "static const u64 sel[64] = {" + ", ".join(f"{w:#x}ull" for w in words) + "};\n"
        "int main(void)\n{\n    for (int i = 0; i < 64; i++) difftest_probe_select[i] = sel[i];\n"
        "    return difftest_min_orig_main();\n}\n")
    return d


def build_at(gdir: Path, out: Path) -> Path:
    """Compile a guest directory anywhere (the same compiler, flags and runtime as difftest.guests)."""
    import subprocess
    from difftest import guests as G
    rt = G.RUNTIME_DIR
    srcs = [str(f) for f in sorted(rt.iterdir()) if f.suffix in (".c", ".S")]
    srcs += [str(f) for f in sorted(gdir.iterdir()) if f.suffix in (".c", ".S")]
    r = subprocess.run([G.CC, *G.CFLAGS, f"-I{rt}", f"-I{gdir}", "-T", str(rt / "link.ld"), *srcs, "-o", str(out)],
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise G.BuildError(f"cannot build {gdir}:\n{(r.stderr or r.stdout).strip()}")
    return out


def _has(case, finding: str | None, kind: str) -> bool:
    """Does the case still show the finding being minimised (a fingerprint pattern, or a kind)?"""
    pairs = [p for p in case.pairs if p.status == "mismatch"]
    if finding:
        return any(fnmatch.fnmatchcase(f, finding) for p in pairs for f in _findings(p))
    return any(p.kind == kind for p in pairs)


def _findings(p) -> list[str]:
    """A pair's findings' fingerprints, guest|probe|what|a~b (difftest.findings)."""
    return [f.fingerprint for f in p.findings]


def run_minimise(args) -> int:
    from difftest import engine
    from difftest.cli import UserError
    from difftest.config_block import ConfigBlockError, patch_copy
    from difftest.bisect import platform_of
    backends = [b.strip() for b in args.backend.split(",")]
    platform = platform_of(args)          # the run's hart and machine, as `difftest run` takes them
    try:
        name, elf = engine.resolve_guest(args.guest, platform)
    except engine.EngineError as e:
        raise UserError(str(e), e.exit_code)
    work = Path(tempfile.mkdtemp(prefix="difftest-min-"))
    runs = [0]

    def outcome(ids):
        runs[0] += 1
        try:
            p = patch_copy(elf, work, hgatp_mode=args.mode or None, vs_mode=args.vs_mode or None, probes=ids)
        except ConfigBlockError as e:
            raise UserError(str(e))
        # the modes again: run_case patches them itself ("" would mean the lowest declared ones);
        # re-patching the same modes keeps the probe selection written above
        c = engine.run_case(p.path, hgatp_mode=p.hgatp_mode, vs_mode=p.vs_mode, backends=backends, cpu=args.cpu,
                            out_dir=work / f"r{runs[0]}", timeout=args.timeout, platform=platform)
        return c

    full = outcome(None)
    bad = [p for p in full.pairs if p.status == "mismatch"]
    if not bad:
        raise UserError(f"{name} does not mismatch on {','.join(backends)}; nothing to minimise", 2)
    kind = bad[0].kind
    finding = getattr(args, "finding", None)
    if finding:
        if not any(fnmatch.fnmatchcase(f, finding) for p in bad for f in _findings(p)):
            raise UserError(f"no finding of {name} matches {finding!r}; its findings: "
                            + ", ".join(f for p in bad for f in _findings(p)), 2)
        kind = finding
    elif bad[0].findings:
        # keep the first finding's difference (what differs, in any probe), not just any mismatch
        f0 = bad[0].findings[0]
        finding = "*|*|" + f0.what.replace("[", "[[]") + f"|{f0.a}~{f0.b}"
        kind = finding
    ids = probe_ids(full.runs[backends[-1]].trace_path) if full.runs[backends[-1]].trace_path else []
    if not ids:
        raise UserError(f"{name}: no probe lines (P/X) in the output; cannot minimise", 2)

    def fails(sub):
        return _has(outcome(sub), finding, kind)

    small = ddmin(ids, fails)
    res = {"guest": name, "probes": ids, "minimal": small, "kind": kind, "runs": runs[0]}
    if args.write:
        gd = Path(args.guests_dir) if args.guests_dir else ROOT / "guests"
        new = f"{name}_min_{len(small)}"
        try:
            gdir = write_guest(new, name, small, gd)
        except FileExistsError:
            raise UserError(f"{gd / new} exists; remove it or pass --guests-dir")
        res["new_guest"] = str(gdir)
        # check that the written guest reproduces on its own (selection fixed at build time)
        c = engine.run_case(build_at(gdir, work / f"{new}.elf"), hgatp_mode=args.mode, vs_mode=args.vs_mode,
                            backends=backends, cpu=args.cpu, out_dir=work / "check", timeout=args.timeout,
                            platform=platform)
        res["reproduces"] = _has(c, finding, kind)
    shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(res, indent=1))
    else:
        print(f"{name}: {len(ids)} probes -> {len(small)} still give a {kind} mismatch: {small} ({runs[0]} runs)")
        if "new_guest" in res:
            print(f"reproducer guest: {res['new_guest']}  (difftest run {Path(res['new_guest']).name} "
                  f"--backend {args.backend}); reproduces on its own: {res['reproduces']}")
    return 0


def run_qemu(args) -> int:
    """First binary (in the given order) whose outcome differs from --good's."""
    from difftest import engine
    from difftest.bisect import platform_of
    from difftest.cli import UserError
    bins = [args.good] + list(args.bad)
    platform = platform_of(args)
    work = Path(tempfile.mkdtemp(prefix="difftest-bisq-"))
    status = []
    for i, b in enumerate(bins):
        try:
            c = engine.run_case(args.guest, hgatp_mode=args.mode, vs_mode=args.vs_mode, backends=[b, "model"],
                                out_dir=work / str(i), timeout=args.timeout, platform=platform)
        except engine.EngineError as e:
            raise UserError(str(e), e.exit_code)
        status.append(c.status)
        print(f"{b}: {c.status}")
        if c.status != status[0]:
            print(f"first change: {b} ({status[0]} -> {c.status})")
            return 0
    print("no change across the binaries")
    return 1


def add_minimise(bs) -> None:
    F = argparse.RawDescriptionHelpFormatter
    m = bs.add_parser("minimise", help="ddmin over a failing guest's probes; write the smallest reproducer guest",
                      formatter_class=F,
                      epilog="example:\n  difftest bisect minimise hgatp_reserved --backend qemu-7.2,model --write")
    from difftest.cli import add_case_arguments
    add_case_arguments(m, "qemu-7.2,model")
    m.add_argument("--finding", metavar="PATTERN",
                   help="fnmatch pattern over the findings' fingerprints (guest|probe|what|a~b, "
                        "difftest/findings.py) naming the finding to keep, e.g. '*|trap.htval cause=9 *'; "
                        "default: what the first finding says differs, in any probe")
    m.add_argument("--write", action="store_true", help="write guests/<guest>_min_<n>/")
    m.add_argument("--guests-dir", help="where to write the new guest (default guests/)")
    from difftest.bisect import add_platform_arguments
    add_platform_arguments(m)
    m.set_defaults(func=run_minimise)


def add_qemu(bs) -> None:
    F = argparse.RawDescriptionHelpFormatter
    q = bs.add_parser("qemu", help="first QEMU binary at which a mismatch appears or disappears",
                      formatter_class=F,
                      epilog="examples:\n  difftest bisect qemu smoke --good qemu-10.0 --bad /path/to/qemu-system-riscv64\n"
                             "with git bisect (difftest run exits 0 match, 1 mismatch, 125 cannot build/run):\n"
                             "  git bisect run sh -c 'ninja -C build && difftest run GUEST "
                             "--backend $PWD/build/qemu-system-riscv64,model'")
    q.add_argument("guest")
    q.add_argument("--good", required=True)
    q.add_argument("--bad", nargs="+", required=True)
    q.add_argument("--mode", default="")
    q.add_argument("--vs-mode", default="")
    q.add_argument("--timeout", type=float, default=120)
    from difftest.bisect import add_platform_arguments
    add_platform_arguments(q)
    q.set_defaults(func=run_qemu)
