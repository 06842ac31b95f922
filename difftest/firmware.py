"""Firmware runs: ``difftest run PAYLOAD --firmware FW`` (issue 12).

QEMU runs ``-bios FW -kernel PAYLOAD`` (backends/qemu.py ``machine``); the model is given what QEMU
virt gives the firmware (refmodel/loader.py ``boot_firmware``): the same ELFs, and the *same device
tree bytes*, which QEMU generates at start-up.  Those bytes are taken from the very QEMU the model is
compared with, run with the very options of the run plus ``-machine dumpdtb=FILE`` (QEMU writes the
tree it would load and exits), cached under .cache/dtb/ by the binary's identity and the command --
never committed.  ``-seed 0`` (in the run's command) pins /chosen/rng-seed, so the dump and the run
hold the same bytes.

The payloads of our own live in guests/firmware/<name>/ (not a guest of ``difftest list``: they run
under a firmware in S-mode, not from the reset vector in M-mode); ``build_payload`` builds one into
build/payloads/<name>.elf.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DTB_CACHE = ROOT / ".cache" / "dtb"
PAYLOADS_DIR = ROOT / "guests" / "firmware"
PAYLOAD_BUILD = ROOT / "build" / "payloads"
# Debian's opensbi package (scripts/setup): the generic platform's firmwares.
OPENSBI_DIR = Path("/usr/lib/riscv64-linux-gnu/opensbi/generic")
SHORT_NAMES = {"opensbi-jump": OPENSBI_DIR / "fw_jump.elf", "opensbi-dynamic": OPENSBI_DIR / "fw_dynamic.elf"}
DEFAULT_QEMU = "qemu-10.0"          # whose tree a model run alone (no QEMU in the case) is given


class FirmwareError(Exception):
    """A firmware, device tree or payload that cannot be had; ``error_class`` for RunResult."""

    def __init__(self, message: str, error_class: str = "bad-elf"):
        super().__init__(message)
        self.error_class = error_class


def resolve(firmware: str | os.PathLike) -> Path:
    """The firmware ELF for ``--firmware``: a path, or opensbi-jump / opensbi-dynamic (Debian's)."""
    p = SHORT_NAMES.get(os.fspath(firmware), Path(firmware))
    if not p.is_file():
        hint = " (install Debian's opensbi package: scripts/setup)" if p.parent == OPENSBI_DIR else ""
        raise FirmwareError(f"firmware {p}: no such file{hint}", "usage")
    return p.resolve()


def platform_with(platform, firmware):
    """``platform`` with the firmware ``--firmware`` names (resolve) in front of the program."""
    from difftest.backends.result import sha256_file
    from refmodel.loader import with_firmware
    p = resolve(firmware)
    return with_firmware(platform, str(p), sha256_file(p))


def dtb(backend: str, payload: Path, cpu: str, platform, timeout: float = 60) -> bytes:
    """The device tree QEMU ``backend`` generates for ``-bios firmware -kernel payload`` with the
    run's options (``platform``: a FirmwarePlatform; cached)."""
    from difftest.backends import proc, qemu
    from difftest.backends.binaries import locate
    from difftest.backends.result import BackendError, sha256_file
    try:
        binary = locate(backend)
        base = qemu.base_command(binary, Path("PAYLOAD"), cpu, platform)
    except BackendError as e:
        raise FirmwareError(f"cannot get the device tree from {backend}: {e}", "missing-backend") from None
    ident = {"qemu": binary.identity(), "env": binary.env, "cmd": base, "platform": platform.describe(),
             "payload": sha256_file(payload), "v": 1}
    key = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:40]
    out = DTB_CACHE / f"{key}.dtb"
    if out.is_file():
        return out.read_bytes()
    DTB_CACHE.mkdir(parents=True, exist_ok=True)
    cmd = qemu.base_command(binary, Path(payload).resolve(), cpu, platform)
    with tempfile.TemporaryDirectory(dir=DTB_CACHE) as td:
        tmp = Path(td) / "virt.dtb"
        i = cmd.index("-M") + 1
        cmd[i] = f"{cmd[i]},dumpdtb={tmp}"
        errf = Path(td) / "stderr"
        try:
            with open(errf, "wb") as ef:
                proc.run(cmd, env=dict(os.environ, **binary.env), timeout=timeout, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=ef)
        except OSError as e:
            raise FirmwareError(f"{backend} -machine dumpdtb failed: {e}", "missing-backend") from None
        data = tmp.read_bytes() if tmp.is_file() else b""
        if data[:4] != b"\xd0\x0d\xfe\xed":
            err = errf.read_bytes().decode("utf-8", "replace")[-500:]
            raise FirmwareError(f"{backend} -machine dumpdtb wrote no device tree: {err}", "missing-backend")
        os.replace(tmp, out)
    return data


def payload_names() -> list[str]:
    return sorted(p.name for p in PAYLOADS_DIR.iterdir() if p.is_dir()) if PAYLOADS_DIR.is_dir() else []


def build_payload(name: str = "sbi_payload") -> Path:
    """Build guests/firmware/<name>/ (its own link.ld, start.S and C files, the guests' compiler and
    ISA flags) into build/payloads/<name>.elf when its sources changed."""
    from difftest import guests as G
    src = PAYLOADS_DIR / name
    if not src.is_dir():
        raise G.BuildError(f"unknown payload {name!r} (known: {', '.join(payload_names())})", "usage")
    files = sorted(f for f in src.iterdir() if f.suffix in (".c", ".S", ".h", ".ld"))
    flags = [f for f in G.CFLAGS if f != "-g"] + [f"-ffile-prefix-map={ROOT}/=", "-T", G._rel(src / "link.ld")]
    h = hashlib.sha256(" ".join([G.CC] + flags).encode())
    for f in files:
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    digest = h.hexdigest()
    PAYLOAD_BUILD.mkdir(parents=True, exist_ok=True)
    out, stamp = PAYLOAD_BUILD / f"{name}.elf", PAYLOAD_BUILD / f"{name}.hash"
    with open(PAYLOAD_BUILD / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if out.exists() and stamp.exists() and stamp.read_text().strip() == digest:
            return out
        with tempfile.TemporaryDirectory(dir=PAYLOAD_BUILD, prefix=f".{name}.") as work:
            elf = os.path.join(work, f"{name}.elf")
            G._run_cc([G.CC, *flags, *(G._rel(f) for f in files if f.suffix in (".c", ".S")), "-o", elf], name)
            os.replace(elf, out)
        stamp.write_text(digest + "\n")
    return out
