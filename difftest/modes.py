"""`difftest modes`: which hgatp MODEs each QEMU (and CPU variant) supports, as the
KVM-style probe in the ``hgatp_probe`` guest sees it, next to the model's prediction.

The guest prints ``HGATP supported=0x.. v4=0x.. merged=<n> vmidlen=<n>`` (ARCHITECTURE
section 3); the model's line comes from ``refmodel.kvm.predict_summary`` on the profile
that mirrors the same QEMU and CPU variant.  hgatp.MODE is WARL (Priv. 20240411, 9.2.10),
so which modes stick is the implementation's choice -- a difference here is a profile
that does not describe the QEMU it names, or a QEMU that keeps a value it must not.
"""
from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from difftest.backends.binaries import KNOWN

GUEST = "hgatp_probe"
VARIANTS = {"qemu-7.2": ["default"], "qemu-10.0": ["default", "sv39", "sv48", "sv57"]}
FIELDS = ("supported", "v4", "merged", "vmidlen")


@dataclass
class ModesRow:
    backend: str
    cpu: str
    qemu: str | None          # the guest's HGATP line, or None when it did not print one
    model: str | None         # the model's prediction, or None when the model is not available
    status: str               # "match" | "mismatch" | "error" | "no-model"
    message: str = ""
    exit: str = ""            # how the guest ended, e.g. "exit 1" (hgatp_probe's own self-checks)


def profile_name(backend: str, cpu: str) -> str:
    if backend == "qemu-7.2":
        return "qemu-7.2"
    return "qemu-10.0" if cpu in ("", "default") else f"qemu-10.0-{cpu}"


def predict(backend: str, cpu: str) -> str | None:
    try:
        from refmodel import kvm
        from refmodel.profile import PROFILES
        return kvm.predict_summary(PROFILES[profile_name(backend, cpu)])
    except (ImportError, AttributeError, KeyError):
        return None


def parse_summary(text: str) -> dict | None:
    """The first ``HGATP ...`` line of a guest's console (refmodel.kvm.parse_summary reads it)."""
    from refmodel.kvm import parse_summary as parse_line
    for line in text.splitlines():
        out = parse_line(line)
        if out is not None:
            return out
    return None


def summary_line(text: str) -> str | None:
    return next((l.strip() for l in text.splitlines() if l.startswith("HGATP ")), None)


def probe_one(elf, backend: str, cpu: str, *, timeout: float = 60, max_steps: int = 2_000_000,
              use_cache: bool = True) -> ModesRow:
    from difftest.backends import run
    model = predict(backend, cpu)
    with tempfile.TemporaryDirectory(prefix="difftest-modes-") as tmp:
        r = run(elf, backend=backend, cpu=cpu, timeout=timeout, max_steps=max_steps,
                out_path=Path(tmp) / "probe.trace.bin", use_cache=use_cache)
    # The HGATP line is read whatever the exit: the guest also self-checks other hgatp
    # rules and exits 1 on a failure (e.g. the hgatp PPN[1:0] finding), which does not
    # make its probe of the supported modes less true.
    uart = r.footer.uart if r.footer else ""
    ended = _ended(r)
    line = summary_line(uart)
    if line is None:
        msg = r.message or "the guest printed no HGATP line"
        return ModesRow(backend, cpu, None, model, "error", f"{r.error_class or 'no-summary'}: {msg}", ended)
    if model is None:
        return ModesRow(backend, cpu, line, None, "no-model", "model: not available", ended)
    same = parse_summary(line) == parse_summary(model)
    return ModesRow(backend, cpu, line, model, "match" if same else "mismatch",
                    "" if same else "QEMU and the model's profile disagree on hgatp WARL behaviour", ended)


def _ended(r) -> str:
    """How the probe run ended, in words: "exit 0", "exit 1 (X <id> ... self-check failed)", "timeout"."""
    f = r.footer
    if f is None:
        return r.error_class or "did not run"
    if f.status != "exit":
        return f.status
    out = f"exit {f.exit_code}"
    fails = [l.strip() for l in (f.uart or "").splitlines() if l.startswith("X ")]
    if f.exit_code and fails:
        out += f" ({len(fails)} self-check failure(s), first: {fails[0][:90]})"
    return out


def run_modes(backends: list[str], cpus: list[str] | None, *, use_cache: bool = True, timeout: float = 60):
    from difftest import guests
    elf = guests.build(GUEST)
    rows = []
    for b in backends:
        for cpu in (cpus or VARIANTS.get(b, ["default"])):
            if b in VARIANTS and cpu not in VARIANTS[b]:
                rows.append(ModesRow(b, cpu, None, predict(b, cpu), "error",
                                     f"CPU variant {cpu!r} does not exist on {b}"))
                continue
            rows.append(probe_one(elf, b, cpu, use_cache=use_cache, timeout=timeout))
    return rows


def run(args) -> int:
    backends = [b.strip() for b in (args.backend or "").split(",") if b.strip()] or \
        [b for b in KNOWN if KNOWN[b][0].exists()] or list(KNOWN)
    cpus = [c.strip() for c in args.cpu.split(",")] if args.cpu else None
    try:
        rows = run_modes(backends, cpus, use_cache=not args.no_cache, timeout=args.timeout)
    except Exception as e:      # the guest cannot be built: classified, no traceback
        if type(e).__name__ in ("BuildError", "ConfigBlockError"):
            print(f"difftest modes: cannot build {GUEST}: {e}")
            return 125
        raise
    if args.json:
        print(json.dumps([asdict(r) for r in rows], indent=2))
    else:
        for r in rows:
            print(f"{r.backend:<10} cpu={r.cpu:<8} {r.status}   guest: {r.exit or '-'}")
            print(f"  qemu : {r.qemu or '-'}")
            print(f"  model: {r.model or 'not available'}")
            if r.message:
                print(f"  note : {r.message}")
    if any(r.status == "error" for r in rows):
        return 125
    return 1 if any(r.status == "mismatch" for r in rows) else 0


def add_subcommand(subparsers) -> None:
    import argparse
    p = subparsers.add_parser(
        "modes", formatter_class=argparse.RawDescriptionHelpFormatter,
        help="which hgatp MODEs each QEMU supports (KVM-style probe) next to the model's prediction",
        description=__doc__ + """
examples:
  difftest modes                              every installed QEMU, every CPU variant
  difftest modes --backend qemu-10.0 --cpu sv39
  difftest modes --json

exit: 0 all agree, 1 a QEMU disagrees with its model profile, 125 cannot build or run.""")
    p.add_argument("--backend", default="", help="comma-separated QEMU backends (default: the installed ones)")
    p.add_argument("--cpu", default="", help="comma-separated CPU variants (default: all the backend has)")
    p.add_argument("--timeout", type=float, default=60, help="seconds per QEMU run (default 60)")
    p.add_argument("--no-cache", action="store_true", help="re-run QEMU even when a cached trace exists")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.set_defaults(func=run)
