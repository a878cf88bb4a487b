"""Wheels for the nodes' Python when it is not the host's (a Debian 13 node
runs Python 3.13, this host 3.11): `pip wheel` on the host would build
compiled packages for the wrong interpreter.

Each pin is fetched as a binary wheel for the target interpreter and
platform from PyPI. A pin PyPI has no such wheel for is built on the host
when it is pure Python (its wheel then fits any Python 3); otherwise its
source goes into `src/` and the build tools' wheels into `build/`, and the
rootfs build compiles it with the node's own interpreter (build-rootfs.sh).
"""

from __future__ import annotations

import platform
import subprocess
import tempfile
from pathlib import Path

from .conf import VENV_BIN, run

# manylinux tags every supported Debian's glibc (2.36 in 12, 2.41 in 13) runs.
MANYLINUX = ("2_17", "2_24", "2_27", "2_28", "2_31", "2_34", "2_35", "2_36")
# What a source build in the rootfs needs (Cython: timelib, a Salt dependency).
BUILD_TOOLS = ("setuptools", "wheel", "Cython")


def target_args(python: tuple[int, int]) -> list[str]:
    """pip download's options for binary wheels of PYTHON on this machine's arch."""
    tag = f"cp{python[0]}{python[1]}"
    arch = platform.machine()
    args = ["--only-binary=:all:", "--python-version", f"{python[0]}.{python[1]}", "--implementation", "cp"]
    for abi in (tag, "abi3", "none"):
        args += ["--abi", abi]
    for plat in ("any", f"manylinux2014_{arch}", *(f"manylinux_{v}_{arch}" for v in MANYLINUX)):
        args += ["--platform", plat]
    return args


def pip(*args, out) -> bool:
    return run([VENV_BIN / "pip", *args], check=False, stdout=out, stderr=subprocess.STDOUT).returncode == 0


def cross_wheels(pins: list[str], dest: Path, python: tuple[int, int], out) -> list[str]:
    """Fill DEST with a wheel (or a source to build, under src/) for every pin;
    the pins left for the rootfs build to compile."""
    dest.mkdir(parents=True, exist_ok=True)
    to_compile = []
    for pin in pins:
        if pip("download", "-q", "--no-deps", *target_args(python), "-d", dest, pin, out=out):
            continue
        with tempfile.TemporaryDirectory(dir=dest) as tmp:
            if pip("wheel", "-q", "--no-deps", "-w", tmp, pin, out=out):
                built = list(Path(tmp).glob("*.whl"))
                if len(built) == 1 and built[0].name.endswith("-none-any.whl"):
                    built[0].rename(dest / built[0].name)
                    continue
        if not pip("download", "-q", "--no-deps", "--no-binary=:all:", "-d", dest / "src", pin, out=out):
            raise RuntimeError(f"{pin}: no wheel for Python {python[0]}.{python[1]} and no source on PyPI")
        to_compile.append(pin)
    if to_compile and not pip(
        "download", "-q", *target_args(python), "-d", dest / "build", *BUILD_TOOLS, out=out
    ):
        raise RuntimeError(f"the build tools ({', '.join(BUILD_TOOLS)}) for Python {python[0]}.{python[1]}")
    return to_compile
