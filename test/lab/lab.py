"""labctl: a 3 (or 5) node systemd-nspawn lab for the airflow_ha formula.

The host holds a bridge, an apt-cacher-ng, a wheelhouse HTTP server and a
Salt master, all bound to the bridge address only. Each node is an overlayfs
over one cached Debian rootfs, booted by systemd-nspawn with systemd as PID 1.
Every process the lab starts is recorded by PID in the state dir, and `down`
stops exactly those (see /work/shared/FACTS.md "The lab" for the traps).
"""

from __future__ import annotations

import hashlib
import importlib.util
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LAB = REPO / "test" / "lab"
VENV_BIN = REPO / ".venv" / "bin"
# LAB_ID (a few letters) runs a second, independent lab on the same machine
# (CI while the dev lab is up): own state dir, cgroups and nspawn machine names;
# give it its own LAB_BRIDGE and LAB_SUBNET too.
LAB_ID = os.environ.get("LAB_ID", "")
if LAB_ID and not (LAB_ID.isalnum() and len(LAB_ID) <= 4):
    sys.exit(f"labctl: LAB_ID={LAB_ID!r}: use 1-4 letters or digits")
SUFFIX = f"-{LAB_ID}" if LAB_ID else ""
STATE = Path(os.environ.get("LAB_STATE", f"/var/lib/airflow_ha-lab{SUFFIX}"))
CACHE = Path(os.environ.get("LAB_CACHE", "/var/cache/airflow_ha-lab"))
CGROUP_NAME = f"airflow_ha-lab{SUFFIX}"
CGROUP_ROOTS = [Path("/sys/fs/cgroup/systemd"), Path("/sys/fs/cgroup/unified")]
ACNG_PORT = 3142
WHEEL_PORT = 3141
SALT_PORTS = (4505, 4506)
NODE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
AIRFLOW_DEFAULT = "3.3.2"  # the lab pillar's airflow:version unless LAB_AIRFLOW says otherwise
T0 = time.monotonic()


class LabError(Exception):
    """A failure with a message for the operator (no traceback)."""


def progress(msg: str) -> None:
    print(f"[labctl +{time.monotonic() - T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


def run(cmd, check=True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], check=check, **kw)


# --------------------------------------------------------------------------
# configuration (from the environment at `up`, from STATE/lab.json after)
# --------------------------------------------------------------------------


def fresh_config() -> dict:
    count = int(os.environ.get("LAB_NODES", "3"))
    if count < 3 or count > 9:
        raise LabError(f"LAB_NODES={count}: use 3..9 (3 or 5 for a real cluster)")
    subnet = os.environ.get("LAB_SUBNET", "10.77.0.0/24")
    try:
        net = ipaddress.ip_network(subnet, strict=False)
    except ValueError as exc:
        raise LabError(f"LAB_SUBNET={subnet!r} is not an IPv4 network: {exc}") from None
    if net.version != 4 or net.prefixlen > 26:
        raise LabError(f"LAB_SUBNET={subnet!r}: need an IPv4 network of /26 or larger")
    base = int(net.network_address)
    distro = os.environ.get("LAB_DISTRO", "bookworm")
    if distro != "bookworm":
        # Debian 13 ships Python 3.13: the nodes' Salt minion wheels and the
        # Airflow wheelhouse are built with the host's Python (3.11) and the
        # shipped constraints are frozen for 3.11. Refuse before building anything.
        raise LabError(
            f"LAB_DISTRO={distro!r}: the lab builds bookworm (Debian 12) nodes only so far; "
            "Debian 13 needs minion wheels and an Airflow wheelhouse for Python 3.13 "
            "(the formula itself renders for Debian 13: see test/render)"
        )
    airflow = os.environ.get("LAB_AIRFLOW", AIRFLOW_DEFAULT)
    need_constraints(airflow, "LAB_AIRFLOW")
    nodes = [
        {"name": f"node{i}", "address": str(ipaddress.ip_address(base + 10 + i))} for i in range(1, count + 1)
    ]
    return {
        "distro": distro,
        "bridge": os.environ.get("LAB_BRIDGE", "ahbr0"),
        "network": str(net),
        "prefix": net.prefixlen,
        "host": str(ipaddress.ip_address(base + 1)),
        "vip": str(ipaddress.ip_address(base + 10)),
        "nodes": nodes,
        "airflow_version": airflow,
        "airflow_versions": [airflow],  # wheelhouses served to the nodes
        # etcd peer/client TLS with a lab CA (test/lab/lab_pki.py); LAB_ETCD_TLS=0: plain http
        "etcd_tls": os.environ.get("LAB_ETCD_TLS", "1") != "0",
    }


def config() -> dict:
    path = STATE / "lab.json"
    if path.exists():
        cfg = json.loads(path.read_text())
        cfg.setdefault("airflow_version", AIRFLOW_DEFAULT)  # a lab.json from before LAB_AIRFLOW
        cfg.setdefault("airflow_versions", [cfg["airflow_version"]])
        cfg.setdefault("etcd_tls", False)
        return cfg
    return fresh_config()


def save_config(cfg: dict) -> None:
    STATE.mkdir(parents=True, exist_ok=True)
    (STATE / "lab.json").write_text(json.dumps(cfg, indent=2) + "\n")


def node_cfg(cfg: dict, name: str) -> dict:
    for node in cfg["nodes"]:
        if node["name"] == name:
            return node
    names = ", ".join(n["name"] for n in cfg["nodes"])
    raise LabError(f"unknown node {name!r}; the lab has: {names}")


# --------------------------------------------------------------------------
# recorded processes
# --------------------------------------------------------------------------


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


# --------------------------------------------------------------------------
# host packages, rootfs, wheels
# --------------------------------------------------------------------------


def ensure_host_packages() -> None:
    need = {
        "debootstrap": "debootstrap",
        "systemd-nspawn": "systemd-container",
        "apt-cacher-ng": "apt-cacher-ng",
        "nsenter": "util-linux",
        "ip": "iproute2",
    }
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
    progress(f"building minion wheels ({len(pins)} pins) into {wheels}")
    with open(f"{wheels}.log", "w") as out:
        run([VENV_BIN / "pip", "wheel", "--no-deps", "-w", wheels, *pins],
            stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
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


def airflow_reqs(version: str) -> list[str]:
    return [f"apache-airflow[celery,postgres,fab]=={version}", "apache-airflow-providers-fab", "celery<5.7"]


def constraints_file(version: str) -> Path | None:
    """The formula's frozen constraints for an Airflow version."""
    path = REPO / "airflow_ha" / "airflow" / "files" / f"constraints-{version}.txt"
    return path if path.exists() else None


def need_constraints(version: str, origin: str) -> None:
    """Refuse an Airflow version the formula ships no constraints for (the lab
    builds its wheelhouse from them), naming the versions it has."""
    if not constraints_file(version):
        shipped = sorted(p.name[12:-4] for p in (REPO / "airflow_ha/airflow/files").glob("constraints-*.txt"))
        raise LabError(f"{origin}={version!r}: the formula ships constraints for {', '.join(shipped)}")


def ensure_wheelhouses(cfg: dict) -> None:
    for version in cfg["airflow_versions"]:
        ensure_wheelhouse(version)


def wheelhouse_path(version: str) -> tuple[Path, list[str]]:
    args = airflow_reqs(version)
    cons = constraints_file(version)
    digest = hashlib.sha256("\n".join(["recipe-2", *args]).encode())  # bump on recipe changes
    if cons:
        args += ["-c", str(cons)]
        digest.update(cons.read_bytes())
    return CACHE / f"wheelhouse-{digest.hexdigest()[:12]}", args


def ensure_wheelhouse(version: str) -> Path:
    path, args = wheelhouse_path(version)
    if (path / ".complete").exists():
        return path
    progress(f"building the Airflow {version} wheelhouse {path.name} (pip wheel, a few minutes)")
    path.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    log = CACHE / f"{path.name}.log"
    with open(log, "w") as out:
        batches = [["pip", "setuptools", "wheel", "virtualenv"], args]
        cons = constraints_file(version)
        if cons:
            # Every pin too: the host's newer Python skips marker-guarded
            # requirements the nodes' Python needs (async-timeout < 3.11.3).
            batches.append(["--no-deps", "-r", str(cons)])
        for reqs in batches:
            proc = run([VENV_BIN / "pip", "wheel", "-w", path, *reqs], check=False,
                       stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
            if proc.returncode:
                raise LabError(f"pip wheel failed, see {log}")
    (path / ".complete").write_text(f"{time.monotonic() - start:.1f}\n")
    progress(f"wheelhouse built in {time.monotonic() - start:.0f} s")
    return path


# --------------------------------------------------------------------------
# host services: bridge, apt-cacher-ng, wheel server, salt master
# --------------------------------------------------------------------------


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
        path, _ = wheelhouse_path(version)
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


def master_dir() -> Path:
    return STATE / "master"


def file_root() -> Path:
    """The repo root (live edits are served at once), or with LAB_SNAPSHOT=1
    a copy of the formula taken at `up` (test-cluster/bench: a run that is not
    disturbed by commits landing while it converges)."""
    if os.environ.get("LAB_SNAPSHOT") != "1":
        return REPO
    snap = STATE / "snapshot"
    if not snap.exists():
        for sub in ("airflow_ha", "_modules", "_states", "_utils", "_runners"):
            if (REPO / sub).is_dir():
                shutil.copytree(REPO / sub, snap / sub, ignore=shutil.ignore_patterns("__pycache__"))
    return snap


def master_conf(cfg: dict) -> Path:
    root = master_dir()
    conf = root / "etc"
    conf.mkdir(parents=True, exist_ok=True)
    text = {
        "interface": cfg["host"],
        "publish_port": SALT_PORTS[0],
        "ret_port": SALT_PORTS[1],
        "user": "root",
        "root_dir": str(root),
        "pki_dir": str(root / "pki"),
        "cachedir": str(root / "cache"),
        "sock_dir": str(root / "sock"),
        "pidfile": str(root / "salt-master.pid"),
        "log_file": str(root / "master.log"),
        "key_logfile": str(root / "key.log"),
        "log_level_logfile": "info",
        "file_roots": {"base": [str(file_root())]},
        # the formula's runners (salt-run airflow_ha.health), live from the repo
        "runner_dirs": [str(file_root() / "_runners")],
        "pillar_roots": {"base": [str(LAB / "pillar"), str(STATE / "pillar")]},
        "file_ignore_regex": [r"(^|/)\.venv(/|$)", r"(^|/)\.git(/|$)", r"(^|/)\.pytest_cache"],
        "auto_accept": False,
        "timeout": 30,
        "gather_job_timeout": 30,
        "keep_jobs_seconds": 86400,
        "worker_threads": 5,
    }
    (conf / "master").write_text(json.dumps(text, indent=2) + "\n")
    write_generated_pillar(cfg)
    return conf


def write_generated_pillar(cfg: dict) -> None:
    """Nodes and host-side addresses of this lab (LAB_NODES, LAB_SUBNET)."""
    data = {
        "airflow_ha": {
            "nodes": {n["name"]: {"address": n["address"]} for n in cfg["nodes"]},
            "network": {"prefix": cfg["prefix"]},
            "proxy": {
                "apt": f"http://{cfg['host']}:{ACNG_PORT}",
                "pip": {
                    "find_links": [f"http://{cfg['host']}:{WHEEL_PORT}/"],
                    "no_index": True,
                    "trusted_hosts": [cfg["host"]],
                },
            },
            "vip": {"address": cfg["vip"]},
            "airflow": {"version": cfg["airflow_version"]},
        }
    }
    if cfg["etcd_tls"]:
        # Loaded by path: the verification suite imports this file by path too.
        spec = importlib.util.spec_from_file_location("lab_pki", LAB / "lab_pki.py")
        pki = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(pki)
        nodes = {n["name"]: n["address"] for n in cfg["nodes"]}
        data["airflow_ha"]["etcd"] = {"tls": pki.etcd_tls_pillar(nodes, STATE / "pki")}
    path = STATE / "pillar" / "lab_generated.sls"
    path.parent.mkdir(parents=True, exist_ok=True)
    # 0600: with etcd TLS on it holds the nodes' private keys
    write(path, "# written by labctl (JSON is YAML)\n" + json.dumps(data, indent=2) + "\n", 0o600)


def master_start(cfg: dict) -> None:
    conf = master_conf(cfg)
    if recorded_pid("salt-master"):
        return
    spawn("salt-master", [VENV_BIN / "salt-master", "-c", conf, "-l", "warning"],
          master_dir() / "stdout.log")  # fmt: skip
    for port in SALT_PORTS:
        wait_port(cfg["host"], port, 60, "salt-master")


def salt_cmd(*args) -> list[str]:
    return [str(VENV_BIN / "salt"), "-c", str(master_dir() / "etc"), *map(str, args)]


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


# --------------------------------------------------------------------------
# nodes
# --------------------------------------------------------------------------


def node_dir(name: str) -> Path:
    return STATE / "nodes" / name


def mounts() -> list[str]:
    return [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]


def write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "w") as out:
        out.write(text)  # created with its final mode: never briefly world-readable
    path.chmod(mode)


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
        write(merged / "etc/resolv.conf", "")
        write(
            merged / "etc/systemd/network/10-lab-host0.network",
            f"[Match]\nName=host0\n\n[Network]\nAddress={node['address']}/{cfg['prefix']}\n"
            "LinkLocalAddressing=no\nIPv6AcceptRA=no\n",
        )
        write(merged / "etc/salt/minion_id", name + "\n")
        write(
            merged / "etc/salt/minion.d/lab.conf",
            f"master: {cfg['host']}\nid: {name}\nacceptance_wait_time: 2\n"
            "random_reauth_delay: 0\nrecon_default: 200\nrecon_max: 2000\n",
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


def wait_minions(names: list[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    pending = set(names)
    while pending and time.monotonic() < deadline:
        proc = run(
            salt_cmd("-L", ",".join(sorted(pending)), "test.ping", "--out=json", "--static",
                     "-t", "5"),
            check=False, capture_output=True, text=True,
        )  # fmt: skip
        try:
            answered = {k for k, v in json.loads(proc.stdout or "{}").items() if v is True}
        except json.JSONDecodeError:
            answered = set()
        pending -= answered
        if pending:
            time.sleep(1)
    if pending:
        raise LabError(f"minions not answering test.ping: {', '.join(sorted(pending))}")


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


# --------------------------------------------------------------------------
# commands
# --------------------------------------------------------------------------


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


def cmd_wheels(_args) -> int:
    cfg = config()
    ensure_wheelhouses(cfg)
    if (STATE / "lab.json").exists():
        wheel_server_start(cfg)
    return 0


def cmd_airflow_version(args) -> int:
    """Switch the lab pillar's airflow:version (an in-place upgrade/downgrade
    test): builds that version's wheelhouse, serves it beside the others and
    rewrites the generated pillar. The next `labctl apply` converges to it."""
    if len(args) != 1:
        raise LabError("usage: labctl airflow-version VERSION (then: labctl apply)")
    if not (STATE / "lab.json").exists():
        raise LabError("the lab is not up (labctl up first)")
    cfg, version = config(), args[0]
    need_constraints(version, "labctl airflow-version")
    ensure_wheelhouse(version)
    if version not in cfg["airflow_versions"]:
        cfg["airflow_versions"].append(version)
    cfg["airflow_version"] = version
    save_config(cfg)
    wheel_server_start(cfg)
    write_generated_pillar(cfg)
    progress(f"lab pillar now has airflow:version {version}; run `labctl apply` to converge")
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


def cmd_salt(args) -> int:
    return run(salt_cmd(*args), check=False).returncode


def cmd_salt_run(args) -> int:
    """Runners (e.g. airflow_ha.health) against the lab master."""
    return run([str(VENV_BIN / "salt-run"), "-c", str(master_dir() / "etc"), *args], check=False).returncode


def cmd_exec(args) -> int:
    if len(args) < 2:
        raise LabError("usage: labctl exec NODE CMD...")
    node_cfg(config(), args[0])
    return nsenter(args[0], *args[1:]).returncode


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


def cmd_partition(args) -> int:
    """Cut a node off the lab bridge: its veth leaves the bridge (carrier stays
    up inside the node, as when a switch port or an uplink dies), so the node
    reaches nobody and nobody reaches it; `heal` puts it back. Traffic to and
    from the node stays in its own network namespace."""
    (name,) = args
    node_cfg(config(), name)
    run(["ip", "link", "set", veth(name), "nomaster"])
    partition_marker(name).write_text(f"{time.time()}\n")
    progress(f"{name}: cut off the lab bridge")
    return 0


def cmd_heal(args) -> int:
    (name,) = args
    cfg = config()
    node_cfg(cfg, name)
    run(["ip", "link", "set", veth(name), "master", cfg["bridge"]])
    run(["ip", "link", "set", veth(name), "up"])
    partition_marker(name).unlink(missing_ok=True)
    progress(f"{name}: back on the lab bridge")
    return 0


def drill_env(cfg: dict) -> dict:
    return dict(
        os.environ,
        LABCTL=str(LAB / "labctl"),
        LAB_STATE=str(STATE),
        LAB_HOST=cfg["host"],
        LAB_WHEELS=f"http://{cfg['host']}:{WHEEL_PORT}/",
        LAB_APT_PROXY=f"http://{cfg['host']}:{ACNG_PORT}",
    )


def run_scripts(folder: str, cfg: dict) -> int:
    """Run every executable of test/lab/FOLDER in name order; 1 if any failed."""
    rc, env = 0, drill_env(cfg)
    for script in sorted((LAB / folder).glob("*")):
        if script.is_file() and os.access(script, os.X_OK):
            progress(f"{folder}/{script.name}")
            if run([script], check=False, env=env).returncode:
                figure(f"{folder}/{script.name}", "FAILED")
                rc = 1
    return rc


def cmd_drill(args) -> int:
    """labctl drill NAME [ARGS...]: one failure drill (test/lab/drills.d/NAME)
    on the lab as it is (converged); its figures on stdout."""
    if not args:
        names = sorted(p.name for p in (LAB / "drills.d").iterdir() if os.access(p, os.X_OK))
        raise LabError("usage: labctl drill NAME [ARGS...]; drills: " + " ".join(names))
    script = LAB / "drills.d" / args[0]
    if not (script.is_file() and os.access(script, os.X_OK)):
        raise LabError(f"no drill {args[0]} in {LAB / 'drills.d'}")
    return run([script, *args[1:]], check=False, env=drill_env(config())).returncode


def cmd_drills(_args) -> int:
    """Every drill on a fresh lab: up, converge, each drills.d script in turn
    (each restores the lab), down."""
    refuse_if_up("drills")
    os.environ.setdefault("LAB_SNAPSHOT", "1")
    rc = 0
    try:
        cmd_up([])
        summary, took = apply_state(quiet=True)
        figure("drills: cold converge wall time", f"{took:.0f}", "s")
        if any(failed for _, failed in summary.values()):
            figure("drills: cold converge FAILED states", sum(len(f) for _, f in summary.values()))
            return 1
        rc = run_scripts("drills.d", config())
    finally:
        cmd_down([])
    progress(f"drills {'PASSED' if rc == 0 else 'FAILED'}")
    return rc


def cmd_status(_args) -> int:
    cfg = config()
    if not (STATE / "lab.json").exists():
        print("lab: down")
        return 1
    print(f"lab: {cfg['distro']}, bridge {cfg['bridge']} {cfg['host']}/{cfg['prefix']}")
    for svc in ("salt-master", "apt-cacher-ng", "wheels"):
        pid = recorded_pid(svc)
        print(f"  {svc:14} {'pid ' + str(pid) if pid else 'DOWN'}")
    bad = 0
    for node in cfg["nodes"]:
        name = node["name"]
        pid = node_pid1(name)
        if pid is None:
            print(f"  {name:14} {node['address']:15} DOWN")
            bad += 1
            continue
        state = nsenter(name, "systemctl", "is-system-running", capture_output=True, text=True)
        mib = pss_kib(node_pids(name)) / 1024
        cut = " PARTITIONED" if name in partitioned() else ""
        print(f"  {name:14} {node['address']:15} pid1 {pid} {state.stdout.strip()} "
              f"PSS {mib:.0f} MiB{cut}")  # fmt: skip
    return 1 if bad else 0


def salt_job(names: list[str], fun: str, *args, timeout: float = 3600) -> dict:
    """Run a job asynchronously and collect returns from the master's job
    cache: the salt CLI's find_job probing gives up on minions too busy to
    answer within gather_job_timeout (seen on a loaded 2-core host). Nodes
    that go down meanwhile (labctl kill) are not waited for."""
    proc = run(salt_cmd("-L", ",".join(names), fun, *args, "--async"), check=False,
               capture_output=True, text=True)  # fmt: skip
    jid = next((w for w in proc.stdout.split() if w.isdigit() and len(w) == 20), None)
    if jid is None:
        raise LabError(f"salt {fun}: no job id ({proc.stdout.strip()} {proc.stderr.strip()})")
    lookup = [VENV_BIN / "salt-run", "-c", master_dir() / "etc", "jobs.lookup_jid", jid, "--out=json"]
    deadline = time.monotonic() + timeout
    last = time.monotonic()
    ret: dict = {}
    while time.monotonic() < deadline:
        time.sleep(5)
        out = run(lookup, check=False, capture_output=True, text=True).stdout
        try:
            ret = json.loads(out or "{}")
        except json.JSONDecodeError:
            continue
        alive = [n for n in names if node_pid1(n)]
        if all(n in ret for n in alive):
            break
        if time.monotonic() - last > 60:
            last = time.monotonic()
            progress(f"{fun}: waiting for {', '.join(n for n in alive if n not in ret)}")
    return ret


def apply_state(extra=(), quiet=False) -> tuple[dict, float]:
    """state.apply airflow_ha on every node: returns ({node: (changes, failed)}, s)."""
    cfg = config()
    names = [n["name"] for n in cfg["nodes"]]
    start = time.monotonic()
    run(salt_cmd("*", "saltutil.sync_all"), check=False, stdout=subprocess.DEVNULL)
    progress(f"state.apply airflow_ha on {', '.join(names)}")
    ret = salt_job(names, "state.apply", "airflow_ha", "queue=True", *extra)
    took = time.monotonic() - start
    summary, changed_ids = {}, {}
    for name in names:
        CHANGED.clear()
        summary[name] = summarize(ret.get(name))
        changed_ids[name] = list(CHANGED)
    if not quiet:
        for name, (changes, failed) in summary.items():
            print(f"  {name}: {changes} changed, {len(failed)} failed")
            if len(changed_ids[name]) <= 15:  # a re-apply: name what changed
                for sid in changed_ids[name]:
                    print(f"    changed {sid}")
            for line in failed:
                print(f"    FAILED {line}")
    progress(f"apply took {took:.1f} s")
    return summary, took


def cmd_apply(args) -> int:
    summary, _ = apply_state(args)
    return 1 if any(failed for _, failed in summary.values()) else 0


def verify(args=()) -> int:
    progress("verify: pytest test/integration")
    return run([VENV_BIN / "pytest", "-q", "-rs", REPO / "test" / "integration", *args],
               check=False).returncode  # fmt: skip


def cmd_verify(args) -> int:
    return verify(args)


def smoke(cfg: dict) -> None:
    for node in cfg["nodes"]:
        proc = nsenter(node["name"], "systemctl", "--failed", "--no-legend", "--plain",
                       capture_output=True, text=True)  # fmt: skip
        failed = proc.stdout.strip() or "none"
        health = nsenter(
            node["name"], "curl", "-s", "-m", "5", f"http://{node['address']}:8080/api/v2/monitor/health",
            capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip
        print(f"  {node['name']}: failed units: {failed}; API health: {health or 'no answer'}")


def cmd_demo(_args) -> int:
    cmd_up([])
    rc = cmd_apply([])
    cfg = config()
    smoke(cfg)
    import yaml

    lab_pillar = yaml.safe_load((LAB / "pillar" / "airflow_ha.sls").read_text())["airflow_ha"]
    admin = lab_pillar["airflow"]["admin"]["username"]
    password = lab_pillar["secrets"]["admin_password"]  # fixed lab-only secret
    print("\nairflow_ha lab:")
    for node in cfg["nodes"]:
        a = node["address"]
        print(f"  {node['name']}: Airflow UI/API http://{a}:8080  Flower http://{a}:5555  "
              f"RabbitMQ http://{a}:15672  HAProxy stats http://{a}:7000/")  # fmt: skip
    print(f"  Airflow (and Flower) login: {admin} / {password}")
    print("  tear down: make demo-down")
    return rc


def refuse_if_up(what: str) -> None:
    if (STATE / "lab.json").exists():
        raise LabError(
            f"{what} builds a fresh lab and tears it down, but this lab is up (others may use "
            "it): `labctl down` first, or run beside it with e.g. "
            "LAB_ID=ci LAB_BRIDGE=ahbr8 LAB_SUBNET=10.78.0.0/24"
        )


def cmd_test_cluster(_args) -> int:
    refuse_if_up("test-cluster")
    os.environ.setdefault("LAB_SNAPSHOT", "1")
    rc = 1
    try:
        cmd_up([])
        summary, _ = apply_state()
        if any(failed for _, failed in summary.values()):
            progress("first apply failed")
            rc = 1
            return rc
        rc = verify()
        summary, _ = apply_state()
        nonzero = {n: c for n, (c, f) in summary.items() if c or f}
        if nonzero:
            progress(f"re-apply NOT idempotent: {nonzero}")
            rc = rc or 1
        else:
            progress("re-apply: 0 changes on every node")
    finally:
        cmd_down([])
    progress(f"test-cluster {'PASSED' if rc == 0 else 'FAILED'}")
    return rc


def figure(name: str, value, unit: str = "") -> None:
    """One bench figure per line on stdout: `name: value unit`."""
    print(f"{name}: {value}{' ' + unit if unit else ''}", flush=True)


def extra_node(cfg: dict, name: str, offset: int) -> dict:
    base = int(ipaddress.ip_network(cfg["network"]).network_address)
    return {"name": name, "address": str(ipaddress.ip_address(base + offset))}


def bare_install(cfg: dict, packages: list[str]) -> tuple[float, float]:
    """Install the converged nodes' packages and Airflow on a bare node by hand."""
    bare = extra_node(cfg, "bare", 30)
    try:
        node_prepare(cfg, bare, lab_rootfs(cfg), minion=False)
        node_boot(cfg, bare)
        wait_node_ready("bare")
        proxy = f"Acquire::http::Proxy=http://{cfg['host']}:{ACNG_PORT}"
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        start = time.monotonic()
        nsenter("bare", "apt-get", "-o", proxy, "update", "-q", check=True, **quiet)
        apt = ["apt-get", "-o", proxy, "install", "-y", "-q", "--no-install-recommends"]
        nsenter("bare", "env", "DEBIAN_FRONTEND=noninteractive", *apt, *packages, check=True, **quiet)
        apt_s = time.monotonic() - start
        start = time.monotonic()
        nsenter("bare", "python3", "-m", "venv", "/opt/bare-venv", check=True, **quiet)
        pip = ["/opt/bare-venv/bin/pip", "install", "-q", "--no-index", "--find-links"]
        pip += [f"http://{cfg['host']}:{WHEEL_PORT}/", "--trusted-host", cfg["host"]]
        nsenter("bare", *pip, *airflow_reqs(cfg["airflow_version"]), check=True, **quiet)
        return apt_s, time.monotonic() - start
    finally:
        node_stop("bare", graceful=False)
        node_remove("bare")


def cmd_bench(_args) -> int:
    refuse_if_up("bench")
    os.environ.setdefault("LAB_SNAPSHOT", "1")
    rc = 0
    try:
        cmd_up([])
        cfg = config()
        n = len(cfg["nodes"])
        rootfs = lab_rootfs(cfg)
        built = CACHE / f"{rootfs.name}.build-seconds"
        if built.exists():
            figure("rootfs build (debootstrap + salt minion, cached after)", built.read_text().strip(), "s")
        figure(
            f"lab up ({n} nodes booted, minions answering)", (STATE / "up-seconds").read_text().strip(), "s"
        )
        idle = [pss_kib(node_pids(x["name"])) / 1024 for x in cfg["nodes"]]
        figure("memory per idle node before converge (PSS, with salt-minion)", f"{sum(idle) / n:.0f}", "MiB")
        summary, took = apply_state(quiet=True)
        failed = sum(len(f) for _, f in summary.values())
        figure(f"cold converge wall time ({n} nodes)", f"{took:.0f}", "s")
        figure("cold converge changes per node", " ".join(f"{k}={c}" for k, (c, _) in summary.items()))
        if failed:
            figure("cold converge FAILED states", failed)
            rc = 1
        summary, took = apply_state(quiet=True)
        figure("re-apply wall time", f"{took:.0f}", "s")
        figure("re-apply changes (all nodes)", sum(c for c, _ in summary.values()))
        mem = [pss_kib(node_pids(x["name"])) / 1024 for x in cfg["nodes"]]
        figure("memory per converged node (PSS)", f"{sum(mem) / n:.0f}", "MiB")
        fmt = "${Package}\n"
        base = run(["dpkg-query", f"--admindir={rootfs}/var/lib/dpkg", "-W", "-f", fmt],
                   capture_output=True, text=True).stdout.split()  # fmt: skip
        node1 = cfg["nodes"][0]["name"]
        have = nsenter(node1, "dpkg-query", "-W", "-f", fmt, capture_output=True, text=True).stdout.split()
        packages = sorted(set(have) - set(base))
        progress(f"raw install of {len(packages)} packages + the Airflow venv on a bare node")
        apt_s, pip_s = bare_install(cfg, packages)
        figure(f"raw install on a bare node: apt-get install ({len(packages)} packages)", f"{apt_s:.0f}", "s")
        figure("raw install on a bare node: Airflow venv from the wheelhouse", f"{pip_s:.0f}", "s")
        rc = run_scripts("bench.d", cfg) or rc
    finally:
        cmd_down([])
    return rc


CHANGED: list[str] = []  # state ids with changes, filled by summarize()


def summarize(ret: dict) -> tuple[int, list[str]]:
    """(changed states, failed states) of one minion's state return."""
    if not isinstance(ret, dict):
        return 0, [f"no state return: {ret!r}"]
    changes, failed = 0, []
    for sid, st in sorted(ret.items(), key=lambda kv: kv[1].get("__run_num__", 0)):
        if st.get("changes"):
            changes += 1
            CHANGED.append(sid)
        if st.get("result") is False:
            failed.append(f"{sid}: {str(st.get('comment', ''))[:600]}")
    return changes, failed


def cmd_kitchen(args) -> int:
    """kitchen.yml's suite, masterless on an extra lab node, then the verifier."""
    import yaml

    if len(args) != 1:
        raise LabError("usage: labctl kitchen SUITE (a suite of kitchen.yml)")
    if not (STATE / "lab.json").exists():
        raise LabError("the lab is down: labctl up first (the kitchen node uses its proxies)")
    kitchen = yaml.safe_load((REPO / "kitchen.yml").read_text())
    suites = {s["name"]: s for s in kitchen.get("suites", [])}
    if args[0] not in suites:
        raise LabError(f"no suite {args[0]!r} in kitchen.yml; suites: {', '.join(suites)}")
    prov = {**kitchen.get("provisioner", {}), **suites[args[0]].get("provisioner", {})}
    cfg = config()
    minion_id = prov.get("salt_minion_id", "node1")
    node = extra_node(cfg, "kitchen", 31)
    name = node["name"]
    rc = 1
    try:
        node_stop(name, graceful=False)
        node_remove(name)
        progress(f"kitchen suite {args[0]}: booting lab node {name} ({node['address']}) as {minion_id}")
        merged = node_prepare(cfg, node, lab_rootfs(cfg), minion=False, hostname=minion_id)
        # The formula and the suite's pillars, as kitchen-salt lays them out.
        srv = merged / "srv"
        for sub in ("airflow_ha", "_modules", "_states", "_utils", "_runners"):
            if (REPO / sub).is_dir():
                shutil.copytree(REPO / sub, srv / "salt" / sub, ignore=shutil.ignore_patterns("__pycache__"))
        top = prov.get("pillars", {}).get("top.sls", {"base": {"*": []}})
        for sls, path in (prov.get("pillars_from_files") or {}).items():
            write(srv / "pillar" / sls, (REPO / path).read_text())
        for sls, data in (prov.get("pillars") or {}).items():
            if sls != "top.sls":
                write(srv / "pillar" / sls, yaml.safe_dump(data))
        # The lab's proxies (the node has no route out), merged last.
        proxy = {
            "airflow_ha": {
                "proxy": {
                    "apt": f"http://{cfg['host']}:{ACNG_PORT}",
                    "pip": {
                        "find_links": [f"http://{cfg['host']}:{WHEEL_PORT}/"],
                        "no_index": True,
                        "trusted_hosts": [cfg["host"]],
                    },
                },
                "network": {"prefix": cfg["prefix"]},
                "vip": {"interface": "host0"},
            }
        }
        write(srv / "pillar" / "lab_proxy.sls", yaml.safe_dump(proxy))
        for targets in top.get("base", {}).values():
            targets.append("lab_proxy")
        write(srv / "pillar" / "top.sls", yaml.safe_dump(top))
        write(
            merged / "etc/salt/minion.d/kitchen.conf",
            f"id: {minion_id}\nfile_client: local\nfile_roots: {{base: [/srv/salt]}}\n"
            "pillar_roots: {base: [/srv/pillar]}\n",
        )
        node_boot(cfg, node, hostname=minion_id)
        wait_node_ready(name)
        nsenter(name, "salt-call", "--local", "saltutil.sync_all", check=True, stdout=subprocess.DEVNULL)
        results = []
        for attempt in ("converge", "re-apply"):
            progress(f"kitchen {attempt}: salt-call --local state.apply airflow_ha")
            start = time.monotonic()
            proc = nsenter(
                name, "salt-call", "--local", "state.apply", "airflow_ha", "--out=json",
                capture_output=True, text=True,
            )  # fmt: skip
            try:
                ret = json.loads(proc.stdout).get("local")
            except json.JSONDecodeError:
                ret = proc.stdout[-2000:] + proc.stderr[-2000:]
            changes, failed = summarize(ret)
            results.append((changes, failed))
            progress(f"kitchen {attempt}: {changes} changed, {len(failed)} failed "
                     f"in {time.monotonic() - start:.0f} s")  # fmt: skip
            for line in failed:
                print(f"    FAILED {line}")
            if failed:
                return 1
        out = nsenter(name, "salt-call", "--local", "pillar.items", "unmask=True", "--out=json",
                      capture_output=True, text=True, check=True).stdout  # fmt: skip
        pillar_file = STATE / "kitchen-pillar.yml"
        write(pillar_file, yaml.safe_dump(json.loads(out)["local"]), 0o600)
        env = dict(os.environ, AIRFLOW_HA_HOSTS=f"lab://{name}", AIRFLOW_HA_PILLAR=str(pillar_file))
        progress("kitchen verify: pytest test/integration")
        rc = run(
            [VENV_BIN / "pytest", "-q", "-rs", REPO / "test/integration"], check=False, env=env
        ).returncode
        if results[1][0]:
            progress(f"kitchen re-apply NOT idempotent: {results[1][0]} changes")
            rc = rc or 1
    finally:
        if os.environ.get("LAB_KEEP") != "1":
            node_stop(name, graceful=False)
            node_remove(name)
            (STATE / "kitchen-pillar.yml").unlink(missing_ok=True)
    return rc


COMMANDS = {
    "up": cmd_up,
    "down": cmd_down,
    "apply": cmd_apply,
    "salt": cmd_salt,
    "salt-run": cmd_salt_run,
    "exec": cmd_exec,
    "kill": cmd_kill,
    "start": cmd_start,
    "partition": cmd_partition,
    "heal": cmd_heal,
    "drill": cmd_drill,
    "drills": cmd_drills,
    "status": cmd_status,
    "wheels": cmd_wheels,
    "verify": cmd_verify,
    "demo": cmd_demo,
    "test-cluster": cmd_test_cluster,
    "bench": cmd_bench,
    "kitchen": cmd_kitchen,
    "airflow-version": cmd_airflow_version,
}


def main(argv) -> int:
    if not argv or argv[0] not in COMMANDS:
        print(__doc__)
        print("usage: labctl " + "|".join(COMMANDS) + " [ARGS...]")
        return 2
    try:
        return COMMANDS[argv[0]](argv[1:])
    except LabError as exc:
        print(f"labctl: {exc}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        print(f"labctl: command failed ({exc.returncode}): {' '.join(exc.cmd)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
