"""Growing and shrinking the lab (issue 13): `add NODE [--roles R,...]` boots
an extra node and puts it in the lab's generated pillar; `remove NODE` powers
it off and takes it out again. The formula does the rest on the next apply.
"""

from __future__ import annotations

import argparse
import ipaddress
import re

import yaml

from .conf import LAB, LabError, config, master_dir, progress, save_config
from .nodes import node_boot, node_pid1, node_prepare, node_remove, node_stop, wait_node_ready
from .rootfs import lab_rootfs
from .salt import wait_minions, write_generated_pillar

# A full node of the lab: every role but the ones a single node holds
# (monitor: node1 and node2; backup: node3).
FULL_ROLES = ["db", "broker", "scheduler", "api", "worker", "triggerer", "dag_processor", "flower"]


def static_nodes() -> set[str]:
    """The nodes test/lab/pillar names: a generated pillar cannot take them out."""
    pillar = yaml.safe_load((LAB / "pillar" / "airflow_ha.sls").read_text())
    return set(pillar["airflow_ha"]["nodes"])


def cmd_add(args) -> int:
    ap = argparse.ArgumentParser(prog="labctl add")
    ap.add_argument("name", help="nodeN (N picks the address: the subnet's .10+N)")
    ap.add_argument("--roles", help=f"comma-separated (default: {','.join(FULL_ROLES)})")
    opts = ap.parse_args(args)
    cfg = config()
    match = re.fullmatch(r"node([1-9])", opts.name)
    if not match:
        raise LabError(f"labctl add {opts.name}: name a node node1..node9")
    if any(n["name"] == opts.name for n in cfg["nodes"]):
        raise LabError(f"labctl add {opts.name}: already a lab node")
    base = int(ipaddress.ip_network(cfg["network"]).network_address)
    node = {
        "name": opts.name,
        "address": str(ipaddress.ip_address(base + 10 + int(match.group(1)))),
        "roles": opts.roles.split(",") if opts.roles else list(FULL_ROLES),
    }
    cfg["nodes"].append(node)
    save_config(cfg)
    write_generated_pillar(cfg)
    node_prepare(cfg, node, lab_rootfs(cfg))
    node_boot(cfg, node)
    wait_node_ready(node["name"])
    wait_minions([node["name"]])
    progress(f"{node['name']} added ({node['address']}, roles {','.join(node['roles'])}): `labctl apply`")
    return 0


def cmd_remove(args) -> int:
    (name,) = args
    cfg = config()
    if name in static_nodes():
        raise LabError(f"labctl remove {name}: test/lab/pillar names it; only added nodes can be removed")
    if not any(n["name"] == name for n in cfg["nodes"]):
        raise LabError(f"labctl remove {name}: not a lab node")
    if node_pid1(name):
        progress(f"{name}: powering off")
    node_stop(name)
    node_remove(name)
    (master_dir() / "pki" / "minions" / name).unlink(missing_ok=True)
    cfg["nodes"] = [n for n in cfg["nodes"] if n["name"] != name]
    save_config(cfg)
    write_generated_pillar(cfg)
    progress(f"{name} removed (powered off, out of the pillar, key deleted): `labctl apply`")
    return 0
