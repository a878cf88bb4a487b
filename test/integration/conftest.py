"""Shared fixtures of the verification suite (pytest-testinfra).

The checks a careful operator would make on a converged airflow_ha cluster,
one file per component. They run against:

* the nspawn lab (default): nodes reached with nsenter through test/lab/nspawn_lab,
  the cluster's settings read from the lab's Salt master;
* any testinfra hosts (kitchen, a real cluster): AIRFLOW_HA_HOSTS="docker://c1,
  ssh://node2" (or lab://NODE for an extra lab node) plus
  AIRFLOW_HA_PILLAR=<yaml file holding the `airflow_ha` pillar>.

A component that is not installed on a node is SKIPPED with the reason, never
passed. Fixtures: `nodes` (name -> testinfra Host), `node_exec(node, cmd,
env=None)`, `salt(*args)`, `ah` (the pillar merged over the formula defaults),
`role_nodes(role)`, `require_unit(node, unit)`, `etcd_client` (etcd's scheme and
etcdctl/curl command prefixes, TLS or not).
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import testinfra
import yaml
from testinfra.backend import base

REPO = Path(__file__).resolve().parents[2]
ALL_ROLES = ["db", "broker", "scheduler", "api", "worker", "triggerer", "dag_processor", "flower"]


# `make test-cluster-ci-both` runs two labs, one per Debian release, one after
# the other: to keep `make test` under 45 minutes each lab leaves the
# destructive rounds named here to the other one (every check still runs once
# per run; `make test-cluster` runs them all).
RUN_ELSEWHERE = "LAB_SUITE_ELSEWHERE"


def pytest_collection_modifyitems(config, items):
    elsewhere = set(os.environ.get(RUN_ELSEWHERE, "").split())
    for item in items:
        if item.path.stem in elsewhere:
            item.add_marker(
                pytest.mark.skip(reason=f"{item.path.stem} runs in the other CI lab ({RUN_ELSEWHERE})")
            )


def _load_lab():
    """test/lab/nspawn_lab, the lab package (labctl's)."""
    lab_dir = str(REPO / "test" / "lab")
    if lab_dir not in sys.path:
        sys.path.insert(0, lab_dir)
    return importlib.import_module("nspawn_lab")


LAB = _load_lab()


class LabBackend(base.BaseBackend):
    """testinfra backend running commands in a lab node through nsenter."""

    NAME = "airflow_ha_lab"

    def __init__(self, node: str, **kwargs):
        super().__init__(node, **kwargs)
        self.node = node

    def get_pytest_id(self) -> str:
        return self.node

    def get_hostname(self) -> str:
        return self.node

    def run(self, command, *args, env=None, stdin=None, **kwargs):
        cmd = self.get_command(command, *args)
        pid = LAB.node_pid1(self.node)
        if pid is None:
            return self.result(255, self.encode(cmd), b"", f"{self.node} is down".encode())
        proc = subprocess.run(
            ["nsenter", "-t", str(pid), "-a", "--", "/bin/sh", "-c", cmd],
            env={**LAB.node_env(), **(env or {})},
            input=stdin.encode() if isinstance(stdin, str) else stdin,
            capture_output=True,
            timeout=kwargs.get("timeout", 300),
            check=False,
        )
        return self.result(proc.returncode, self.encode(cmd), proc.stdout, proc.stderr)


def _external_hosts() -> list[str]:
    return [h for h in os.environ.get("AIRFLOW_HA_HOSTS", "").split(",") if h]


@pytest.fixture(scope="session")
def nodes() -> dict:
    """Node name -> testinfra Host, in node order."""
    hosts = _external_hosts()
    if hosts:
        out = {}
        for spec in hosts:
            if spec.startswith("lab://"):  # an extra lab node (labctl kitchen)
                host = testinfra.host.Host(LabBackend(spec[len("lab://") :]))
            else:
                host = testinfra.get_host(spec)
            out[host.check_output("hostname -s")] = host
        return out
    if not (LAB.STATE / "lab.json").exists():
        pytest.skip("the lab is down (test/lab/labctl up) and AIRFLOW_HA_HOSTS is unset")
    cfg = LAB.config()
    return {n["name"]: testinfra.host.Host(LabBackend(n["name"])) for n in cfg["nodes"]}


@pytest.fixture(scope="session")
def node_exec(nodes):
    """node_exec(node, cmd, env=None, stdin=None) -> testinfra CommandResult.

    Pass secrets through `env` or `stdin`, never inside `cmd` (argv)."""

    def _exec(node, cmd, env=None, stdin=None):
        backend = nodes[node].backend
        if isinstance(backend, LabBackend):
            return backend.run(cmd, env=env, stdin=stdin)
        if env or stdin:
            exports = "".join(f"export {k}={v!r}; " for k, v in (env or {}).items())
            return nodes[node].run(exports + cmd)  # remote backends: best effort
        return nodes[node].run(cmd)

    return _exec


@pytest.fixture(scope="session")
def salt():
    """salt(*args) -> parsed JSON of the lab master's `salt ... --out=json --static`."""
    if _external_hosts():
        pytest.skip("no lab Salt master (AIRFLOW_HA_HOSTS mode)")

    def _salt(*args):
        proc = subprocess.run(
            LAB.salt_cmd(*args, "--out=json", "--static"),
            capture_output=True,
            text=True,
            check=False,
        )
        try:
            return json.loads(proc.stdout or "{}")
        except json.JSONDecodeError:
            raise AssertionError(f"salt {args}: {proc.stdout} {proc.stderr}") from None

    return _salt


def _merge(base_, over):
    out = dict(base_)
    for key, val in (over or {}).items():
        if isinstance(val, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], val)
        else:
            out[key] = val
    return out


@pytest.fixture(scope="session")
def ah(nodes):
    """The formula's defaults merged with the cluster's `airflow_ha` pillar.

    Salt 3008 masks pillar values in CLI output ("**********"): unmask=True."""
    defaults = yaml.safe_load((REPO / "airflow_ha/parameters/defaults.yaml").read_text())
    if _external_hosts():
        path = os.environ.get("AIRFLOW_HA_PILLAR")
        if not path:
            pytest.skip("AIRFLOW_HA_PILLAR (yaml with the airflow_ha pillar) is unset")
        pillar = yaml.safe_load(Path(path).read_text())["airflow_ha"]
        for name, node in (pillar.get("nodes") or {}).items():
            if "{{" in str(node.get("address", "")) and name in nodes:
                # A Jinja address (kitchen pillar): what the node resolves itself to.
                node["address"] = nodes[name].check_output(
                    "getent ahostsv4 $(hostname) | head -1 | cut -d' ' -f1"
                )
    else:
        first = next(iter(nodes))
        proc = subprocess.run(
            LAB.salt_cmd(first, "pillar.get", "airflow_ha", "unmask=True", "--out=json", "--static"),
            capture_output=True,
            text=True,
            check=False,
        )
        pillar = json.loads(proc.stdout)[first]
    merged = _merge(defaults, pillar)
    return _merge(merged, pillar.get("lookup") or {})


@pytest.fixture(scope="session")
def role_nodes(ah, nodes):
    """role_nodes(role) -> node names holding the role (roles default to all)."""

    def _role(role):
        out = []
        for name in nodes:
            roles = (ah["nodes"].get(name) or {}).get("roles") or ALL_ROLES
            if role in roles:
                out.append(name)
        return out

    return _role


@pytest.fixture(scope="session")
def address(ah):
    """address(node) -> the node's cluster address from the pillar."""
    return lambda node: ah["nodes"][node]["address"]


@pytest.fixture(scope="session")
def etcd_client(ah):
    """How a root shell on an etcd member talks to etcd, in either mode of
    airflow_ha:etcd:tls:enabled: `scheme`, `url(address)`, `tls` (the file
    paths, or None), and the command prefixes `etcdctl` and `curl` (with
    --cacert/--cert/--key when TLS is on). The file names are the ones
    _modules/airflow_ha.py derives in etcd:tls:dir."""
    etcd = ah["etcd"]
    tls = etcd.get("tls") or {}
    files = None
    etcdctl, curl = "ETCDCTL_API=3 etcdctl", "curl -s"
    if tls.get("enabled") is True:
        d = tls["dir"].rstrip("/")
        files = {
            "ca": f"{d}/ca.crt",
            "cert": f"{d}/node.crt",
            "etcd_key": f"{d}/etcd.key",
            "patroni_key": f"{d}/patroni.key",
            "airflow_key": f"{d}/airflow.key",
        }
        flags = f" --cacert {files['ca']} --cert {files['cert']} --key {files['etcd_key']}"
        etcdctl += flags
        curl += flags
    scheme = "https" if files else "http"
    return SimpleNamespace(
        scheme=scheme,
        url=lambda address: f"{scheme}://{address}:{etcd['client_port']}",
        tls=files,
        etcdctl=etcdctl,
        curl=curl,
    )


@pytest.fixture(scope="session")
def require_unit(nodes):
    """Skip unless the systemd unit is installed on every given node."""

    def _require(unit, names):
        if not names:
            pytest.skip(f"no node holds the role that runs {unit}")
        missing = [n for n in names if nodes[n].run(f"systemctl cat {unit}").rc != 0]
        if missing:
            pytest.skip(f"{unit} is not installed on {', '.join(missing)} (not built yet)")

    return _require


@pytest.fixture(scope="module")
def pgb(ah, role_nodes, require_unit):
    """pgBackRest's settings, its one repository node, the nodes running its
    server and the stanza; skips when the pillar has no repository
    (test_pgbackrest, and test_zz_db_failover after the leader kill)."""
    b = ah.get("pgbackrest") or {}
    if b.get("enabled") is not True:
        pytest.skip("airflow_ha:pgbackrest:enabled is false")
    repo = role_nodes("backup")
    if len(repo) != 1:
        pytest.skip(f"pgbackrest:enabled but {len(repo)} nodes hold role backup")
    nodes = sorted(set(role_nodes("db")) | set(repo))
    require_unit(b["service"], nodes)
    return {"b": b, "repo": repo[0], "nodes": nodes, "stanza": ah["cluster_name"]}


@pytest.fixture(scope="session")
def wait_for():
    """wait_for(check, timeout=60, interval=1): poll check() until truthy; return
    its last value (tests assert on the value, never on the time taken)."""

    def _wait(check, timeout=60.0, interval=1.0):
        deadline = time.monotonic() + timeout
        value = check()
        while not value and time.monotonic() < deadline:
            time.sleep(interval)
            value = check()
        return value

    return _wait


@pytest.fixture(scope="module")
def db_nodes_to_break(role_nodes, require_unit, ah):
    """The db nodes, for a destructive test (kill, partition): only in the lab,
    never with AIRFLOW_HA_SKIP_FAILOVER, and only with 3+ db nodes running Patroni."""
    if os.environ.get("AIRFLOW_HA_HOSTS"):
        pytest.skip("needs the lab (labctl kill/start/partition)")
    if os.environ.get("AIRFLOW_HA_SKIP_FAILOVER"):
        pytest.skip("AIRFLOW_HA_SKIP_FAILOVER is set")
    names = role_nodes("db")
    require_unit(ah["postgresql"]["patroni"]["service"], names)
    if len(names) < 3:
        pytest.skip("needs 3 db nodes")
    return names


@pytest.fixture
def spare_db_node(db_nodes_to_break):
    """The last db node that is not the Patroni leader's: a kill or a rebuild
    of it adds no database failover to what the test is about."""
    import drill_lib  # test/lab, on sys.path through _load_lab

    lead = drill_lib.leader(db_nodes_to_break)
    return [n for n in db_nodes_to_break if n != lead][-1]
