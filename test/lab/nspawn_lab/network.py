"""The lab bridge, the apt proxy on it, and the partition of a node (its
veth off the bridge). Everything binds the bridge address only.
"""

from __future__ import annotations

from pathlib import Path

from .conf import ACNG_PORT, CACHE, LAB_ID, STATE, LabError, run
from .procs import recorded_pid, spawn, wait_port


def link_exists(name: str) -> bool:
    return run(["ip", "link", "show", name], check=False, capture_output=True).returncode == 0


def bridge_up(cfg: dict) -> None:
    br = cfg["bridge"]
    if not link_exists(br):
        run(["ip", "link", "add", br, "type", "bridge"])
        (STATE / "bridge-created").write_text(br + "\n")
    addrs = run(["ip", "-4", "-o", "addr", "show", "dev", br], capture_output=True, text=True)
    if f" {cfg['host']}/" not in addrs.stdout:
        run(["ip", "addr", "add", f"{cfg['host']}/{cfg['prefix']}", "dev", br])
    run(["ip", "link", "set", br, "up"])


def acng_start(cfg: dict) -> None:
    if recorded_pid("apt-cacher-ng"):
        return
    conf = STATE / "apt-cacher-ng"
    (conf / "log").mkdir(parents=True, exist_ok=True)
    cache = CACHE / "apt-cacher-ng"
    cache.mkdir(parents=True, exist_ok=True)
    # No Remap lines: they point at backends that do not resolve here (503).
    (conf / "acng.conf").write_text(
        f"CacheDir: {cache}\nLogDir: {conf / 'log'}\nPort: {ACNG_PORT}\n"
        f"BindAddress: {cfg['host']}\nSocketPath: {conf / 'socket'}\n"
        "ReportPage: acng-report.html\nExThreshold: 4\nForeGround: 1\n"
        "VerboseLog: 0\n"
    )
    spawn("apt-cacher-ng", ["apt-cacher-ng", "-c", conf, "ForeGround=1"], conf / "daemon.log")
    wait_port(cfg["host"], ACNG_PORT, 15, "apt-cacher-ng")


def veth(name: str) -> str:
    """The host end of a node's veth pair (systemd-nspawn names it vb-MACHINE)."""
    link = f"vb-{LAB_ID}{name}"[:15]
    if not link_exists(link):
        raise LabError(f"{name}: no host link {link} (is the node running? labctl start {name})")
    return link


def partition_marker(name: str) -> Path:
    """The state file that says `labctl partition` cut NAME off the bridge."""
    return STATE / f"partitioned-{name}"


def partitioned() -> set[str]:
    return {p.name.removeprefix("partitioned-") for p in STATE.glob("partitioned-*")}
