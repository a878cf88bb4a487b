"""Airflow wheelhouses built on the host from the formula's frozen
constraints, and the HTTP server that offers them to the nodes (they have no
route out).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from pathlib import Path

from .conf import (
    CACHE,
    STATE,
    VENV_BIN,
    WHEEL_PORT,
    LabError,
    constraints_file,
    node_python,
    progress,
    run,
)
from .crosswheels import target_args
from .procs import recorded_pid, spawn, wait_port


def airflow_reqs(version: str) -> list[str]:
    return [f"apache-airflow[celery,postgres,fab]=={version}", "apache-airflow-providers-fab", "celery<5.7"]


def ensure_wheelhouses(cfg: dict) -> None:
    for version in cfg["airflow_versions"]:
        ensure_wheelhouse(version, node_python(cfg))


def wheelhouse_path(version: str, python: tuple[int, int]) -> tuple[Path, list[str]]:
    args = airflow_reqs(version)
    cons = constraints_file(version, python)
    digest = hashlib.sha256("\n".join(["recipe-2", *args]).encode())  # bump on recipe changes
    if python != sys.version_info[:2]:
        digest.update(f"python {python[0]}.{python[1]}".encode())
    if cons:
        args += ["-c", str(cons)]
        digest.update(cons.read_bytes())
    return CACHE / f"wheelhouse-{digest.hexdigest()[:12]}", args


def ensure_wheelhouse(version: str, python: tuple[int, int]) -> Path:
    """The wheels of Airflow VERSION for the nodes' PYTHON: built by the
    host's pip when that is the host's Python, else fetched as binary wheels
    for it (a source-only pin then fails the build, naming it)."""
    path, args = wheelhouse_path(version, python)
    if (path / ".complete").exists():
        return path
    progress(
        f"building the Airflow {version} wheelhouse {path.name} for Python {python[0]}.{python[1]} (a few minutes)"
    )
    path.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    log = CACHE / f"{path.name}.log"
    pip = (
        ["wheel", "-w", path]
        if python == sys.version_info[:2]
        else ["download", *target_args(python), "-d", path]
    )
    with open(log, "w") as out:
        batches = [["pip", "setuptools", "wheel", "virtualenv"], args]
        cons = constraints_file(version, python)
        if cons:
            # Every pin too: the host's newer Python skips marker-guarded
            # requirements the nodes' Python needs (async-timeout < 3.11.3).
            batches.append(["--no-deps", "-r", str(cons)])
        for reqs in batches:
            proc = run([VENV_BIN / "pip", *pip, *reqs], check=False,
                       stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
            if proc.returncode:
                raise LabError(f"pip {pip[0]} failed, see {log}")
    (path / ".complete").write_text(f"{time.monotonic() - start:.1f}\n")
    progress(f"wheelhouse built in {time.monotonic() - start:.0f} s")
    return path


def wheel_server_start(cfg: dict) -> None:
    # One served directory of symlinks to the wheels of every Airflow version
    # the lab uses (an in-place upgrade needs both), refreshed on each call.
    link = STATE / "wheelhouse"
    if link.is_symlink():
        link.unlink()
    link.mkdir(parents=True, exist_ok=True)
    for old in link.iterdir():
        old.unlink()
    for version in cfg["airflow_versions"]:
        path, _ = wheelhouse_path(version, node_python(cfg))
        for wheel in path.iterdir():
            if not wheel.name.startswith(".") and not (link / wheel.name).exists():
                (link / wheel.name).symlink_to(wheel)
    if recorded_pid("wheels"):
        return
    cmd = [
        sys.executable, "-m", "http.server", WHEEL_PORT,
        "--bind", cfg["host"], "--directory", link,
    ]  # fmt: skip
    spawn("wheels", cmd, STATE / "wheels.log")
    wait_port(cfg["host"], WHEEL_PORT, 15, "wheelhouse HTTP server")
