"""Host processes the lab starts (apt-cacher-ng, the wheel server, the Salt
master, one systemd-nspawn per node): each is recorded by PID in STATE/pids,
and the lab stops exactly those, never anything found by name.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from .conf import STATE, LabError


def pid_file(name: str) -> Path:
    return STATE / "pids" / f"{name}.pid"


def record_pid(name: str, pid: int) -> None:
    pid_file(name).parent.mkdir(parents=True, exist_ok=True)
    pid_file(name).write_text(f"{pid}\n")


def recorded_pid(name: str) -> int | None:
    """The recorded PID if that process still runs (and is not a zombie)."""
    path = pid_file(name)
    if not path.exists():
        return None
    pid = int(path.read_text().strip())
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    if stat.rsplit(")", 1)[1].split()[0] == "Z":
        return None
    return pid


def stop_recorded(name: str, sig=signal.SIGTERM, timeout=20.0) -> None:
    pid = recorded_pid(name)
    if pid is not None:
        os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while recorded_pid(name) is not None and time.monotonic() < deadline:
            time.sleep(0.2)
        if recorded_pid(name) is not None:
            os.kill(pid, signal.SIGKILL)
            while recorded_pid(name) is not None:
                time.sleep(0.1)
    pid_file(name).unlink(missing_ok=True)


def spawn(name: str, cmd, log: Path, env=None, preexec=None) -> int:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [str(c) for c in cmd],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            preexec_fn=preexec,  # noqa: PLW1509 - labctl is single-threaded
            start_new_session=True,
        )
    record_pid(name, proc.pid)
    return proc.pid


def wait_port(host: str, port: int, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise LabError(f"{what} did not listen on {host}:{port} within {timeout:.0f} s")
