"""Nodes: an overlayfs over the rootfs, booted by systemd-nspawn with
systemd as PID 1, reached through nsenter into that PID 1's namespaces.

The host has no systemd as PID 1, so `machinectl` and `systemctl -M` do not
work here: nsenter -t <node's PID 1> -a is the way in.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from .conf import (
    CGROUP_NAME,
    CGROUP_ROOTS,
    LAB_ID,
    NODE_PATH,
    STATE,
    LabError,
    master_dir,
    mounts,
    run,
    write,
)
from .procs import recorded_pid, spawn, stop_recorded


def preseed_key(name: str, minion_pki: Path) -> None:
    """Generate the node's minion key on the host and accept it on the master."""
    keys = master_dir() / "pki" / "minions"
    keys.mkdir(parents=True, exist_ok=True)
    minion_pki.mkdir(parents=True, exist_ok=True)
    if not (minion_pki / "minion.pem").exists():
        # salt-key --gen-keys crashes in 3008.5 (pem_finger on a key object).
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        write(
            minion_pki / "minion.pem",
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            ).decode(),
            0o400,
        )
        write(
            minion_pki / "minion.pub",
            key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode(),
        )
    shutil.copy(minion_pki / "minion.pub", keys / name)


def node_dir(name: str) -> Path:
    return STATE / "nodes" / name


def hosts_file(cfg: dict) -> str:
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    lines.append(f"{cfg['host']}\tlabhost")
    lines += [f"{n['address']}\t{n['name']}" for n in cfg["nodes"]]
    return "\n".join(lines) + "\n"


def node_prepare(
    cfg: dict, node: dict, rootfs: Path, minion: bool = True, hostname: str | None = None
) -> Path:
    """Mount the node's overlay; on first creation write its identity.

    minion=False: a node whose salt-minion stays disabled (bench's bare node,
    kitchen's masterless node). hostname: another host name than the node's
    lab name (kitchen: node1), resolving to the node's own address only."""
    d = node_dir(node["name"])
    merged = d / "merged"
    fresh = not (d / "upper").exists()
    for sub in ("upper", "work", "merged"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    if str(merged) not in mounts():
        opts = f"lowerdir={rootfs},upperdir={d / 'upper'},workdir={d / 'work'}"
        run(["mount", "-t", "overlay", "overlay", "-o", opts, merged])
    if fresh:
        name = hostname or node["name"]
        write(merged / "etc/hostname", name + "\n")
        if hostname:
            hosts = f"127.0.0.1\tlocalhost\n{cfg['host']}\tlabhost\n{node['address']}\t{hostname}\n"
        else:
            hosts = hosts_file(cfg)
        write(merged / "etc/hosts", hosts)
        # Empty on purpose: a resolver copied from the host made some daemons
        # hang on reverse lookups; names come from /etc/hosts.
        write(merged / "etc/resolv.conf", "")
        # No IPv6 link-local/RA: otherwise systemd-networkd-wait-online (pulled
        # in by etcd's network-online.target) adds ~13 s to every boot.
        write(
            merged / "etc/systemd/network/10-lab-host0.network",
            f"[Match]\nName=host0\n\n[Network]\nAddress={node['address']}/{cfg['prefix']}\n"
            "LinkLocalAddressing=no\nIPv6AcceptRA=no\n",
        )
        write(merged / "etc/salt/minion_id", name + "\n")
        # TCP keepalive every 5 s (Salt's default: idle 300 s, then the
        # kernel's 9 probes 75 s apart): after a partition drill a minion
        # kept a master connection that was gone and got no job for ~16 min
        # (make drills: the next drill's apply never reached it).
        write(
            merged / "etc/salt/minion.d/lab.conf",
            f"master: {cfg['host']}\nid: {name}\nacceptance_wait_time: 2\n"
            "random_reauth_delay: 0\nrecon_default: 200\nrecon_max: 2000\n"
            "tcp_keepalive_idle: 5\ntcp_keepalive_cnt: 3\ntcp_keepalive_intvl: 5\n",
        )
        if minion:
            preseed_key(name, merged / "etc/salt/pki/minion")
        else:
            (merged / "etc/systemd/system/multi-user.target.wants/salt-minion.service").unlink()
    return merged


def cgroup_paths(name: str) -> list[Path]:
    return [root / CGROUP_NAME / name for root in CGROUP_ROOTS if root.is_dir()]


def node_boot(cfg: dict, node: dict, hostname: str | None = None) -> None:
    name = node["name"]
    if recorded_pid(f"nspawn-{name}"):
        return
    merged = node_dir(name) / "merged"
    groups = cgroup_paths(name)
    for g in groups:
        g.mkdir(parents=True, exist_ok=True)

    # Each nspawn in its own cgroup in both hierarchies of the host's hybrid
    # layout, entered before exec: otherwise every node's units land in one
    # shared tree. SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 gives the nodes a pure
    # cgroup2 view, which boots clean.
    def own_cgroup():  # runs in the child before exec
        for g in groups:
            (g / "cgroup.procs").write_text(str(os.getpid()))

    cmd = [
        "systemd-nspawn", "--quiet", "--boot", "-D", merged,
        f"--machine={LAB_ID}{name}", f"--hostname={hostname or name}",
        f"--network-bridge={cfg['bridge']}", "--register=no",
        "--keep-unit", "--resolv-conf=off", "--timezone=off", "--link-journal=no",
        "--console=read-only",
    ]  # fmt: skip
    env = dict(os.environ, SYSTEMD_NSPAWN_UNIFIED_HIERARCHY="1")
    spawn(f"nspawn-{name}", cmd, node_dir(name) / "console.log", env=env, preexec=own_cgroup)


def node_pid1(name: str) -> int | None:
    """The host PID of the node's systemd (the nspawn process's child)."""
    nspawn = recorded_pid(f"nspawn-{name}")
    if nspawn is None:
        return None
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == nspawn:
            pid = int(stat.parent.name)
            try:
                nspid = [
                    line for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                    if line.startswith("NSpid:")
                ][0].split()  # fmt: skip
            except (FileNotFoundError, IndexError):
                continue
            if nspid[-1] == "1":
                return pid
    return None


def node_env() -> dict:
    return {"PATH": NODE_PATH, "HOME": "/root", "LANG": "C.UTF-8", "TERM": "dumb"}


def nsenter(name: str, *cmd, **kw) -> subprocess.CompletedProcess:
    pid = node_pid1(name)
    if pid is None:
        raise LabError(f"{name} is not running (labctl start {name})")
    check = kw.pop("check", False)
    cmd = ["nsenter", "-t", str(pid), "-a", "--", *map(str, cmd)]
    return subprocess.run(cmd, env=node_env(), check=check, **kw)


def wait_node_ready(name: str, timeout: float = 120) -> None:
    """Wait until the node's systemd finished booting (running or degraded)."""
    deadline = time.monotonic() + timeout
    state = "?"
    while time.monotonic() < deadline:
        if node_pid1(name):
            proc = nsenter(name, "systemctl", "is-system-running", capture_output=True, text=True)
            state = proc.stdout.strip()
            if state in ("running", "degraded"):
                return
        time.sleep(0.3)
    raise LabError(f"{name} did not finish booting in {timeout:.0f} s (state {state!r})")


def remove_cgroup(path: Path) -> None:
    if not path.is_dir():
        return
    for sub in sorted((p for p in path.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        try:
            sub.rmdir()
        except OSError:
            pass
    try:
        path.rmdir()
    except OSError as exc:
        print(f"warning: cgroup {path} not removed: {exc}", file=sys.stderr)


def node_stop(name: str, graceful: bool = True) -> None:
    pid1 = node_pid1(name)
    if graceful and pid1:
        # SIGRTMIN+4 asks systemd for a clean poweroff; nspawn exits after it.
        os.kill(pid1, signal.SIGRTMIN + 4)
        deadline = time.monotonic() + 30
        while recorded_pid(f"nspawn-{name}") and time.monotonic() < deadline:
            time.sleep(0.2)
    pid1 = node_pid1(name)
    if pid1:
        os.kill(pid1, signal.SIGKILL)
    stop_recorded(f"nspawn-{name}", timeout=10)


def pss_kib(pids) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            pass
    return total


def node_pids(name: str) -> list[int]:
    pids = []
    for g in cgroup_paths(name)[-1:]:
        for procs in g.rglob("cgroup.procs"):
            try:
                pids += [int(p) for p in procs.read_text().split()]
            except OSError:
                pass
    return sorted(set(pids))


def all_node_dirs() -> list[str]:
    nodes = STATE / "nodes"
    return sorted(p.name for p in nodes.iterdir()) if nodes.is_dir() else []


def node_remove(name: str) -> None:
    """Unmount a stopped node, drop its cgroups and its overlay dirs."""
    merged = node_dir(name) / "merged"
    if str(merged) in mounts():
        run(["umount", merged])
    for g in cgroup_paths(name):
        remove_cgroup(g)
    shutil.rmtree(node_dir(name), ignore_errors=True)


def extra_node(cfg: dict, name: str, offset: int) -> dict:
    base = int(ipaddress.ip_network(cfg["network"]).network_address)
    return {"name": name, "address": str(ipaddress.ip_address(base + offset))}
