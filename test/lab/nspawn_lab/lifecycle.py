"""The lab's lifecycle: `up`, `down`, and one node's `start`/`kill`/`wipe`."""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

from .conf import (
    CGROUP_NAME,
    CGROUP_ROOTS,
    STATE,
    LabError,
    config,
    fresh_config,
    master_dir,
    node_cfg,
    progress,
    run,
    save_config,
)
from .network import acng_start, bridge_up, link_exists, partition_marker
from .nodes import (
    all_node_dirs,
    node_boot,
    node_dir,
    node_pid1,
    node_prepare,
    node_remove,
    node_stop,
    remove_cgroup,
    wait_node_ready,
)
from .procs import recorded_pid, stop_recorded
from .rootfs import ensure_host_packages, ensure_rootfs, lab_rootfs
from .salt import master_start, wait_minions
from .wheelhouse import ensure_wheelhouses, wheel_server_start


def cmd_up(_args) -> int:
    start = time.monotonic()
    if (STATE / "lab.json").exists():
        cfg = config()
    else:
        cfg = fresh_config()
    if os.geteuid() != 0:
        raise LabError("the lab needs root (mounts, bridge, nspawn)")
    ensure_host_packages()
    rootfs = Path(cfg["rootfs"]) if cfg.get("rootfs") else ensure_rootfs(cfg)
    cfg["rootfs"] = str(rootfs)  # the nodes' lower dir for this lab's lifetime
    ensure_wheelhouses(cfg)
    save_config(cfg)
    progress(f"bridge {cfg['bridge']} {cfg['host']}/{cfg['prefix']}")
    bridge_up(cfg)
    acng_start(cfg)
    wheel_server_start(cfg)
    master_start(cfg)
    progress(f"salt-master on {cfg['host']}:4505/4506; booting {len(cfg['nodes'])} nodes")
    for node in cfg["nodes"]:
        node_prepare(cfg, node, rootfs)
        node_boot(cfg, node)
    for node in cfg["nodes"]:
        wait_node_ready(node["name"])
    progress("nodes booted; waiting for the minions")
    wait_minions([n["name"] for n in cfg["nodes"]])
    (STATE / "up-seconds").write_text(f"{time.monotonic() - start:.1f}\n")
    progress(f"lab up in {time.monotonic() - start:.1f} s: " + ", ".join(
        f"{n['name']}={n['address']}" for n in cfg["nodes"]))  # fmt: skip
    return 0


def cmd_down(_args) -> int:
    cfg = config()
    names = sorted({n["name"] for n in cfg["nodes"]} | set(all_node_dirs()))
    running = [n for n in names if recorded_pid(f"nspawn-{n}")]
    if running:
        progress(f"powering off {', '.join(running)}")
    for name in running:  # all at once, then wait for each
        pid1 = node_pid1(name)
        if pid1:
            os.kill(pid1, signal.SIGRTMIN + 4)
    for name in names:
        node_stop(name)
    for name in names:
        node_remove(name)
    for root in CGROUP_ROOTS:
        remove_cgroup(root / CGROUP_NAME)
    for svc in ("salt-master", "wheels", "apt-cacher-ng"):
        stop_recorded(svc)
    created = STATE / "bridge-created"
    if created.exists():
        br = created.read_text().strip()
        if link_exists(br):
            run(["ip", "link", "del", br])
        created.unlink()
    shutil.rmtree(STATE / "nodes", ignore_errors=True)
    shutil.rmtree(master_dir(), ignore_errors=True)
    shutil.rmtree(STATE / "snapshot", ignore_errors=True)
    (STATE / "lab.json").unlink(missing_ok=True)
    for marker in STATE.glob("partitioned-*"):
        marker.unlink()
    progress("lab down")
    return 0


def cmd_kill(args) -> int:
    (name,) = args
    node_cfg(config(), name)
    pid = node_pid1(name)
    if pid is None:
        raise LabError(f"{name} is not running")
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while recorded_pid(f"nspawn-{name}") and time.monotonic() < deadline:
        time.sleep(0.1)
    progress(f"{name}: PID 1 ({pid}) killed")
    return 0


def cmd_start(args) -> int:
    (name,) = args
    cfg = config()
    node = node_cfg(cfg, name)
    node_prepare(cfg, node, lab_rootfs(cfg))
    node_boot(cfg, node)
    partition_marker(name).unlink(missing_ok=True)  # a new veth, on the bridge
    wait_node_ready(name)
    wait_minions([name])
    progress(f"{name} up")
    return 0


def cmd_wipe(args) -> int:
    """A dead node's disk replaced by a fresh copy of the base rootfs: a blank
    host with the same id, address and minion key (issue 13's replacement)."""
    (name,) = args
    cfg = config()
    node = node_cfg(cfg, name)
    if node_pid1(name) is not None:
        raise LabError(f"{name} is running: `labctl kill {name}` first (wipe replaces a dead node's disk)")
    pki = node_dir(name) / "upper" / "etc" / "salt" / "pki" / "minion"
    keep = {f: (pki / f).read_bytes() for f in ("minion.pem", "minion.pub") if (pki / f).is_file()}
    node_remove(name)
    merged = node_prepare(cfg, node, lab_rootfs(cfg))
    if len(keep) == 2:
        for f, data in keep.items():
            (merged / "etc/salt/pki/minion" / f).write_bytes(data)
        shutil.copy(merged / "etc/salt/pki/minion/minion.pub", master_dir() / "pki" / "minions" / name)
    progress(f"{name}: disk wiped (base rootfs, same id, address and minion key); `labctl start {name}`")
    return 0


def refuse_if_up(what: str) -> None:
    if (STATE / "lab.json").exists():
        raise LabError(
            f"{what} builds a fresh lab and tears it down, but this lab is up (others may use "
            "it): `labctl down` first, or run beside it with e.g. "
            "LAB_ID=ci LAB_BRIDGE=ahbr8 LAB_SUBNET=10.78.0.0/24"
        )
