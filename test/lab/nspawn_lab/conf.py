"""The lab's configuration: paths and ports, the environment read at `up`
(LAB_NODES, LAB_SUBNET, LAB_BRIDGE, LAB_ID, LAB_AIRFLOW, LAB_ETCD_TLS, ...),
STATE/lab.json after it, and the small helpers every part uses.
"""

from __future__ import annotations

import functools
import importlib.util
import ipaddress
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
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
# The Debian releases the lab builds, by codename: their osfinger grain.
DISTRO_RELEASE = {"bookworm": "Debian-12", "trixie": "Debian-13"}
AIRFLOW_DEFAULT = "3.3.2"  # the lab pillar's airflow:version unless LAB_AIRFLOW says otherwise
T0 = time.monotonic()


class LabError(Exception):
    """A failure with a message for the operator (no traceback)."""


def progress(msg: str) -> None:
    print(f"[labctl +{time.monotonic() - T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


def run(cmd, check=True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], check=check, **kw)


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
    if distro not in DISTRO_RELEASE:
        raise LabError(f"LAB_DISTRO={distro!r}: the lab builds {' or '.join(DISTRO_RELEASE)} nodes")
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


@functools.cache
def formula_parameters(name: str) -> dict:
    """The formula's parameter layer airflow_ha/parameters/NAME.yaml (read once)."""
    import yaml

    return yaml.safe_load((REPO / "airflow_ha" / "parameters" / f"{name}.yaml").read_text())


@functools.cache
def formula_settings():
    """The formula's _utils/ah_settings.py as a module (loaded once), for its
    pure rules the lab follows too."""
    spec = importlib.util.spec_from_file_location("ah_settings", REPO / "_utils" / "ah_settings.py")
    settings = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(settings)
    return settings


def node_python(cfg: dict) -> tuple[int, int]:
    """The nodes' python3 (minor version), as the formula's OS layer states it
    (parameters/os.yaml, airflow:python): the minion and Airflow venvs run
    it, so the lab makes their wheels for it (crosswheels.py when it is not
    the host's)."""
    layers = formula_parameters("os")
    major, minor = layers["osfinger"][DISTRO_RELEASE[cfg["distro"]]]["airflow"]["python"].split(".")
    return int(major), int(minor)


def constraints_file(version: str, python: tuple[int, int] | None = None) -> Path | None:
    """The formula's frozen constraints for an Airflow version on PYTHON, by
    airflow_ha.settings' rule (its constraints_name) and its shipped list."""
    shipped = formula_parameters("defaults")["airflow"]["constraints_shipped"] if python else []
    name = formula_settings().constraints_name(version, f"{python[0]}.{python[1]}" if python else "", shipped)
    path = REPO / "airflow_ha" / "airflow" / "files" / name
    return path if path.exists() else None


def need_constraints(version: str, origin: str) -> None:
    """Refuse an Airflow version the formula ships no constraints for (the lab
    builds its wheelhouse from them), naming the versions it has."""
    if not constraints_file(version):
        shipped = formula_parameters("defaults")["airflow"]["constraints_shipped"]
        shipped = sorted(v for v in shipped if "-py" not in v)
        raise LabError(f"{origin}={version!r}: the formula ships constraints for {', '.join(shipped)}")


def master_dir() -> Path:
    return STATE / "master"


def mounts() -> list[str]:
    return [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]


def write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "w") as out:
        out.write(text)  # created with its final mode: never briefly world-readable
    path.chmod(mode)


def figure(name: str, value, unit: str = "") -> None:
    """One bench figure per line on stdout: `name: value unit`."""
    print(f"{name}: {value}{' ' + unit if unit else ''}", flush=True)


def proxy_pillar(cfg: dict) -> dict:
    """airflow_ha:proxy for the lab's nodes (they have no route out): the apt
    proxy and the wheelhouse server on the bridge address."""
    return {
        "apt": f"http://{cfg['host']}:{ACNG_PORT}",
        "pip": {
            "find_links": [f"http://{cfg['host']}:{WHEEL_PORT}/"],
            "no_index": True,
            "trusted_hosts": [cfg["host"]],
        },
    }
