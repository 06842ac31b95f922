"""Guest discovery and build (docs/ARCHITECTURE.md, the first arrow of the diagram).

Every directory ``guests/<name>/`` except ``runtime`` with ``.c``/``.S`` files is a guest.  ``build(name)``
compiles it with the runtime into ``build/guests/<name>.elf``, incrementally (a hash of the sources,
the runtime, the flags and the compiler), reproducibly (the same sources give the same bytes, so the
ELF's sha256 -- and the trace cache keyed on it -- survives a rebuild), and parallel-safe: an fcntl lock per guest plus an atomic
rename, so several pytest-xdist workers never race.  Compiler errors become ``BuildError`` with the
compiler's message.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GUESTS_DIR = ROOT / "guests"
RUNTIME_DIR = GUESTS_DIR / "runtime"
BUILD_DIR = ROOT / "build" / "guests"
CC = os.environ.get("DIFFTEST_CC", "riscv64-unknown-elf-gcc")
# GCC 12 rejects "_h" in -march; H instructions reach the assembler through -Wa (the runtime's C code
# spells them with .insn because GCC passes its own -march to the assembler as well).
CFLAGS = ["-march=rv64imac_zicsr_zifencei", "-mabi=lp64", "-Wa,-march=rv64imach_zicsr_zifencei",
          "-mcmodel=medany", "-nostdlib", "-nostartfiles", "-ffreestanding", "-fno-builtin", "-static",
          "-O2", "-g", "-Wall", "-Wl,--no-warn-rwx-segments"]
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
SOURCE_EXTS = (".c", ".S", ".h")


class BuildError(Exception):
    """A guest could not be built; the message carries the compiler's output."""

    def __init__(self, message: str, error_class: str = "build"):
        super().__init__(message)
        self.error_class = error_class


# Suites of standalone programs: a guest directory with a link.ld of its own holds programs that do not
# use the runtime (e.g. guests/ptests/, riscv-tests "p"-environment style programs that end through
# tohost); each <stem>.S there is the guest "<dir>_<stem>" minus the plural s ("ptest_csr"), built from
# that file with the suite's headers and link.ld only.  No config block: each runs as is.
# A program whose source says NOT_IN_NIGHTLY (e.g. one that fails on purpose) is left out of the nightly.
NOT_IN_NIGHTLY = "difftest: not in the nightly"


def _suites() -> list[Path]:
    if not GUESTS_DIR.is_dir():
        return []
    return sorted(p for p in GUESTS_DIR.iterdir() if p.is_dir() and (p / "link.ld").is_file()
                  and p.name != "runtime")


def _suite_guest(name: str) -> tuple[Path, Path] | None:
    """(suite directory, program source) of a suite guest's name, else None."""
    for d in _suites():
        prefix = d.name.rstrip("s") + "_"
        if name.startswith(prefix) and (d / f"{name[len(prefix):]}.S").is_file():
            return d, d / f"{name[len(prefix):]}.S"
    return None


def list_guests() -> list[str]:
    """Names of the guests, sorted (runtime guests and the programs of the standalone suites)."""
    if not GUESTS_DIR.is_dir():
        return []
    suites = _suites()
    names = [p.name for p in GUESTS_DIR.iterdir()
             if p.is_dir() and p.name != "runtime" and not p.name.startswith(".") and p not in suites
             and any(f.suffix in (".c", ".S") for f in p.iterdir())]
    names += [f"{d.name.rstrip('s')}_{f.stem}" for d in suites for f in d.iterdir() if f.suffix == ".S"]
    return sorted(names)


def is_standalone(name: str) -> bool:
    """A program of a standalone suite (guests/ptests): no runtime, no config block, its own end."""
    return _suite_guest(name) is not None


def nightly_guests() -> list[str]:
    """The guests the nightly runs: all but the programs marked NOT_IN_NIGHTLY."""
    out = []
    for n in list_guests():
        sg = _suite_guest(n)
        if sg is None or NOT_IN_NIGHTLY not in sg[1].read_text(errors="replace"):
            out.append(n)
    return out


def _files(d: Path) -> list[Path]:
    return sorted(f for f in d.iterdir() if f.is_file() and f.suffix in SOURCE_EXTS)


def _digest(name: str) -> str:
    h = hashlib.sha256()
    h.update(b"reproducible build 1\0")          # the way _compile builds (objects, prefix maps)
    h.update(" ".join([CC] + CFLAGS).encode())
    cc = shutil.which(CC)
    if cc:
        st = os.stat(cc)
        h.update(f"{cc}:{st.st_size}:{st.st_mtime_ns}".encode())
    sg = _suite_guest(name)
    if sg is not None:
        files = [f for f in _files(sg[0]) if f.suffix == ".h"] + [sg[0] / "link.ld", sg[1]]
    else:
        rt = GUESTS_DIR / "runtime"
        files = _files(rt) + [rt / "link.ld"] + _files(GUESTS_DIR / name)
    for f in files:
        h.update(f"{f.parent.name}/{f.name}".encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def elf_path(name: str) -> Path:
    return BUILD_DIR / f"{name}.elf"


def build(name: str, force: bool = False) -> Path:
    """Build guest ``name`` (if its sources changed) and return the ELF path."""
    gdir = GUESTS_DIR / name
    sg = _suite_guest(name)
    if sg is None and (name == "runtime" or not gdir.is_dir() or (gdir / "link.ld").is_file()):
        raise BuildError(f"unknown guest {name!r}; guests are: {', '.join(list_guests()) or 'none'}", "usage")
    if shutil.which(CC) is None:
        raise BuildError(f"the cross compiler {CC} is not installed (scripts/setup installs "
                         "gcc-riscv64-unknown-elf)", "missing-toolchain")
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    out = elf_path(name)
    stamp = out.with_suffix(".hash")
    digest = _digest(name)
    with open(BUILD_DIR / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not force and out.exists() and stamp.exists() and stamp.read_text().strip() == digest:
                return out
            if sg is not None:
                _compile_standalone(name, *sg, out)
            else:
                _compile(name, gdir, out)
            stamp.write_text(digest + "\n")
            return out
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _run_cc(cmd: list[str], name: str) -> None:
    # cwd=ROOT and -ffile-prefix-map: the debug info names sources "guests/..." wherever the clone
    # is and whatever directory difftest was started from; SOURCE_DATE_EPOCH pins __DATE__/__TIME__
    env = {**os.environ, "SOURCE_DATE_EPOCH": "0", "LC_ALL": "C"}
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    if r.returncode != 0:
        raise BuildError(f"cannot build guest {name}:\n{(r.stderr or r.stdout).strip()}")


def _compile(name: str, gdir: Path, out: Path) -> None:
    """Build ``out`` reproducibly: the same sources give the same bytes (no temporary file name
    reaches the ELF: each source is compiled to an object named after it, in a private directory,
    and objects are linked in a fixed order), then renamed into place with its map."""
    rt = GUESTS_DIR / "runtime"
    srcs = [f for f in sorted(rt.iterdir()) if f.suffix in (".c", ".S")]
    srcs += [f for f in _files(gdir) if f.suffix in (".c", ".S")]
    flags = [*CFLAGS, f"-ffile-prefix-map={ROOT}/=", f"-ffile-prefix-map={ROOT}=.",
             f"-Wa,--debug-prefix-map={ROOT}=.", f"-I{_rel(rt)}", f"-I{_rel(gdir)}"]
    with tempfile.TemporaryDirectory(dir=BUILD_DIR, prefix=f".{name}.") as work:
        objs = []
        for f in srcs:
            obj = os.path.join(work, f"{f.parent.name}.{f.name}.o")   # names unique per guest build
            _run_cc([CC, *flags, "-c", _rel(f), "-o", obj], name)
            objs.append(obj)
        elf = os.path.join(work, f"{name}.elf")
        _run_cc([CC, *flags, "-T", _rel(rt / "link.ld"), *objs, "-o", elf, f"-Wl,-Map={elf}.map"], name)
        os.replace(elf + ".map", out.with_suffix(".map"))
        os.replace(elf, out)


def _compile_standalone(name: str, suite: Path, src: Path, out: Path) -> None:
    """A suite program: its one source with the suite's headers and link.ld, no runtime."""
    flags = [*CFLAGS, f"-ffile-prefix-map={ROOT}/=", f"-ffile-prefix-map={ROOT}=.",
             f"-Wa,--debug-prefix-map={ROOT}=.", f"-I{_rel(suite)}"]
    with tempfile.TemporaryDirectory(dir=BUILD_DIR, prefix=f".{name}.") as work:
        elf = os.path.join(work, f"{name}.elf")
        _run_cc([CC, *flags, "-T", _rel(suite / "link.ld"), _rel(src), "-o", elf, f"-Wl,-Map={elf}.map"], name)
        os.replace(elf + ".map", out.with_suffix(".map"))
        os.replace(elf, out)


def _rel(p: Path) -> str:
    try:
        return str(Path(p).relative_to(ROOT))
    except ValueError:
        return str(p)


def build_all(force: bool = False) -> dict[str, Path]:
    return {n: build(n, force=force) for n in list_guests()}


def declared_modes(elf) -> tuple[list[str], list[str]] | None:
    """(HGATP mode names, VS mode names) the ELF declares, lowest first; None without a block."""
    from difftest import config_block as CB
    blk = CB.read(elf)
    if blk is None:
        return None
    return blk.hgatp_mode_names, blk.vs_mode_names


TEMPLATE = '''/* {name}: <one line saying what this guest checks and which spec rule it follows>.
 *
 * Written by `difftest new-guest {name}`.  The runtime API is in guests/runtime/difftest.h and
 * guests/README.md.  Run it:  difftest run {name} --mode all --backend qemu-10.0,model
 */
#include "difftest.h"

/* The modes this guest runs under; the harness patches the one in use into the ELF
 * (docs/ARCHITECTURE.md section 2).  Read it at run time with rt_hgatp_mode() / rt_vs_mode(). */
DIFFTEST_MODES(HGATP_ALL, VS_BARE);

static volatile u64 word __attribute__((aligned(8))) = 0x0123456789abcdefull;

int main(void)
{{
    struct pt g;
    rt_banner("{name}");
    rt_gstage_identity(&g);          /* G stage for the configured mode: guest RAM mapped 1:1 */

    /* One probe = one access from one mode, checked against the outcome the spec requires. */
    probe(1, "load-from-vs", A_LD, VS_MODE, (u64)&word, 0, expect_ok(0x0123456789abcdefull));

    /* Add probes here, e.g. a guest-page fault (Priv. 20240411, 21.5.1):
     *   probe(2, "unmapped", A_LD, VS_MODE, 0xC0000000, 0, expect_trap(21, 0xC0000000, 0xC0000000 >> 2, 1,
     *         rt_tinst(A_LD)));   (only when rt_hgatp_mode() != 0) */
    return rt_done();
}}
'''


def new_guest(name: str) -> Path:
    """Create guests/<name>/<name>.c from a documented template that builds and passes as created."""
    if not NAME_RE.match(name or "") or name == "runtime":
        raise ValueError(f"invalid guest name {name!r}: use lower-case letters, digits and '_', "
                         "starting with a letter")
    d = GUESTS_DIR / name
    if d.exists():
        raise FileExistsError(f"guest {name!r} already exists at {d}")
    d.mkdir(parents=True)
    src = d / f"{name}.c"
    src.write_text(TEMPLATE.format(name=name))
    return src
