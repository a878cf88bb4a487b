"""The nodes' base image: host packages, then one cached Debian rootfs
(debootstrap + a Salt minion built from the venv's exact pins) that every node
mounts as the lower dir of its overlay.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .conf import CACHE, LAB, VENV_BIN, LabError, mounts, node_python, progress, run
from .crosswheels import cross_wheels

LAB_PACKAGES = {
    "debootstrap": "debootstrap",
    "systemd-nspawn": "systemd-container",
    "apt-cacher-ng": "apt-cacher-ng",
    "nsenter": "util-linux",
    "ip": "iproute2",
}
# The verification suite's browser check (test_airflow: the UI's login page).
SUITE_PACKAGES = {"chromium": "chromium"}


def ensure_host_packages(need: dict[str, str] = LAB_PACKAGES) -> None:
    """Debian packages the host lacks, by the executable each provides."""
    missing = sorted({pkg for exe, pkg in need.items() if not shutil.which(exe)})
    if not missing:
        return
    progress(f"installing host packages: {' '.join(missing)}")
    # apt-cacher-ng's postinst would start a daemon on every interface: keep
    # daemons from starting while installing (the lab runs its own instance).
    policy = Path("/usr/sbin/policy-rc.d")
    made_policy = not policy.exists()
    if made_policy:
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    try:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        run(["apt-get", "install", "-y", "-q", *missing], env=env, stdout=subprocess.DEVNULL)
    finally:
        if made_policy:
            policy.unlink()


def apt_mirror() -> str:
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.exists():
        for line in sources.read_text().splitlines():
            if line.startswith("URIs:"):
                return line.split()[1].rstrip("/")
    return "http://deb.debian.org/debian"


def salt_pins() -> list[str]:
    out = run([VENV_BIN / "python", LAB / "salt_deps.py"], capture_output=True, text=True).stdout.split()
    skip = ("pip==", "setuptools==", "wheel==")
    return [p for p in out if not p.lower().startswith(skip)]


def rootfs_path(cfg: dict) -> tuple[Path, list[str]]:
    pins = salt_pins()
    recipe = hashlib.sha256()
    recipe.update((LAB / "build-rootfs.sh").read_bytes())
    recipe.update("\n".join(pins).encode())
    recipe.update(f"{cfg['distro']} {apt_mirror()} {sys.version_info[:2]}".encode())
    if node_python(cfg) != sys.version_info[:2]:
        recipe.update((LAB / "nspawn_lab" / "crosswheels.py").read_bytes())
    return CACHE / f"rootfs-{cfg['distro']}-{recipe.hexdigest()[:12]}", pins


def lab_rootfs(cfg: dict) -> Path:
    """The rootfs this lab's nodes were created from (recorded at up)."""
    return Path(cfg["rootfs"]) if cfg.get("rootfs") else rootfs_path(cfg)[0]


def ensure_rootfs(cfg: dict) -> Path:
    path, pins = rootfs_path(cfg)
    if path.is_dir():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    wheels = Path(f"{path}.wheels")
    python = node_python(cfg)
    progress(f"building minion wheels ({len(pins)} pins, Python {python[0]}.{python[1]}) into {wheels}")
    with open(f"{wheels}.log", "w") as out:
        if python == sys.version_info[:2]:
            run([VENV_BIN / "pip", "wheel", "--no-deps", "-w", wheels, *pins],
                stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
        else:
            try:
                left = cross_wheels(pins, wheels, python, out)
            except RuntimeError as exc:
                raise LabError(f"minion wheels for {cfg['distro']}: {exc} (see {wheels}.log)") from None
            if left:
                progress(f"compiled in the rootfs for its Python: {' '.join(left)}")
    progress(f"building rootfs {path.name} (debootstrap {cfg['distro']})")
    start = time.monotonic()
    log = CACHE / f"{path.name}.log"
    with open(log, "w") as out:
        proc = run(
            [LAB / "build-rootfs.sh", path, cfg["distro"], apt_mirror(), wheels],
            check=False,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    if proc.returncode != 0:
        raise LabError(f"rootfs build failed, see {log}")
    took = time.monotonic() - start
    (CACHE / f"{path.name}.build-seconds").write_text(f"{took:.1f}\n")
    shutil.rmtree(wheels, ignore_errors=True)
    progress(f"rootfs built in {took:.0f} s")
    # Drop stale rootfs builds of this distro (never the one just built).
    for old in CACHE.glob(f"rootfs-{cfg['distro']}-*"):
        if old.is_dir() and old != path and not old.name.endswith(".tmp"):
            if not any(str(old) in m for m in mounts()):
                shutil.rmtree(old, ignore_errors=True)
    return path
