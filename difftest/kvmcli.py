"""`difftest kvm-model`: what the per-VM HGATP mode series (v4 and merged forms) would report and accept
on a host with a given set of G-stage modes (refmodel.kvm)."""
from __future__ import annotations

import errno
import json

from refmodel import kvm
from refmodel.profile import PROFILES

V4_ARGS = (0, 1, 8, 9, 10, 11)
MERGED_ARGS = (32, 39, 41, 42, 48, 50, 51, 57, 59, 60, 64)


def _err(rc: int) -> str:
    return "ok" if rc == 0 else errno.errorcode.get(-rc, str(rc))


def _host(args) -> kvm.HartHost:
    if args.profile:
        return kvm.HartHost(PROFILES[args.profile])
    return kvm.HartHost.with_modes(args.host_modes)


def model(args) -> dict:
    out = {"host": {"modes": sorted(args.host_modes) if not args.profile else None, "profile": args.profile,
                    "hgatp_probe_line": kvm.predict_summary(_host(args).profile)}}
    for form in kvm.FORMS:
        host = _host(args)
        p = kvm.probe(host, form)
        entry = {"probe": {"mask": p.mask, "max_levels": p.max_levels, "max_gpa_bits": p.max_gpa_bits,
                           "vmidlen": p.vmidlen, "hgatp_after": host.read()}}
        if not p.max_levels:
            entry["note"] = "no G-stage mode: KVM would not load"
            out[form] = entry
            continue
        vm = kvm.VM(form, p, host)
        entry["check_extension"] = {"system": vm.check_extension(on_vm=False), "vm": vm.check_extension()}
        entry["default_mode"] = kvm.MODE_NAMES[vm.mode]
        caps = {}
        for a in (V4_ARGS if form == "v4" else MERGED_ARGS):
            v = kvm.VM(form, p, host)
            rc = v.enable_cap(a)
            row = {"result": _err(rc)}
            if rc == 0:
                written, read = v.program(kvm.HartHost(host.profile))
                row.update(mode=kvm.MODE_NAMES[v.mode], gpa_bits=kvm.gpa_bits(v.levels),
                           hgatp_sticks=written == read)
                v2 = kvm.VM(form, p, host)
                v2.create_vcpu()
                row["after_vcpu"] = _err(v2.enable_cap(a))
            caps[str(a)] = row
        v = kvm.VM(form, p, host)
        caps["flags=1"] = {"result": _err(v.enable_cap(8 if form == "v4" else 41, flags=1))}
        entry["enable_cap"] = caps
        entry["region_limit_gfn"] = (vm.gpa_size >> 12) - 1    # base_gfn + npages must stay below this + 1
        out[form] = entry
    return out


def _text(res: dict) -> str:
    lines = [f"host: {res['host']['profile'] or ','.join(res['host']['modes'])}",
             f"hgatp_probe guest would print: {res['host']['hgatp_probe_line']}"]
    for form in kvm.FORMS:
        e = res[form]
        p = e["probe"]
        lines.append(f"[{form}] probe mask={p['mask']:#x} max_levels={p['max_levels']} "
                     f"max_gpa_bits={p['max_gpa_bits']} vmidlen={p['vmidlen']}")
        if "note" in e:
            lines.append("  " + e["note"])
            continue
        ce = e["check_extension"]
        lines.append(f"  CHECK_EXTENSION system={ce['system']} vm={ce['vm']}  default={e['default_mode']}")
        for a, row in e["enable_cap"].items():
            extra = ""
            if row["result"] == "ok":
                extra = (f" -> {row['mode']} ({row['gpa_bits']} bits), after a vCPU: {row['after_vcpu']}"
                         + ("" if row["hgatp_sticks"] else "  WARNING: the hart does not keep this hgatp MODE"))
            lines.append(f"  ENABLE_CAP {a}: {row['result']}{extra}")
        lines.append(f"  regions: base_gfn + npages must be < {e['region_limit_gfn'] + 1:#x} (else EFAULT)")
    return "\n".join(lines)


def run(args) -> int:
    bad = [m for m in args.host_modes if m not in kvm.NAME_MODES]
    if bad or (args.profile and args.profile not in PROFILES):
        what = f"unknown host mode(s) {','.join(bad)} (use sv39x4,sv48x4,sv57x4)" if bad else \
            f"unknown profile {args.profile!r} (one of {', '.join(PROFILES)})"
        print(f"difftest kvm-model: error: {what}")
        return 2
    res = model(args)
    print(json.dumps(res, indent=2) if args.json else _text(res))
    return 0


def _modes(s: str) -> list[str]:
    return [m.strip().lower() for m in s.split(",") if m.strip()]


def add_subcommand(subparsers) -> None:
    p = subparsers.add_parser(
        "kvm-model",
        help="predict what the per-VM HGATP mode series (v4 and merged) reports on a host",
        description="Model both forms of the KVM per-VM HGATP mode series on a host whose hart supports the "
                    "given G-stage modes: the mode probe, CHECK_EXTENSION, and which ENABLE_CAP arguments "
                    "succeed or fail with which errno.  Example: difftest kvm-model --host-modes sv39x4,sv57x4")
    p.add_argument("--host-modes", type=_modes, default=["sv39x4", "sv48x4", "sv57x4"],
                   help="comma-separated G-stage modes the host hart supports (default: all three)")
    p.add_argument("--profile", default=None, help="take the host's hgatp behaviour from a model profile instead")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)
