"""labctl: a 3 (or 5) node systemd-nspawn lab for the airflow_ha formula.

The host holds a bridge, an apt-cacher-ng, a wheelhouse HTTP server and a
Salt master, all bound to the bridge address only. Each node is an overlayfs
over one cached Debian rootfs, booted by systemd-nspawn with systemd as PID 1.
Every process the lab starts is recorded by PID in the state dir, and `down`
stops exactly those. See test/lab/README-lab.md.
"""

from __future__ import annotations

import subprocess
import sys
import time

from .bench import cmd_bench
from .conf import (
    LAB,
    STATE,
    VENV_BIN,
    LabError,
    config,
    formula_parameters,
    master_dir,
    need_constraints,
    node_cfg,
    node_python,
    progress,
    run,
    save_config,
)
from .drills import cmd_bench_one, cmd_drill, cmd_drills
from .kitchen import cmd_kitchen
from .lifecycle import cmd_down, cmd_kill, cmd_start, cmd_up, cmd_wipe
from .network import partition_marker, partitioned, veth
from .nodes import node_pid1, node_pids, nsenter, pss_kib
from .procs import recorded_pid
from .salt import apply_state, salt_cmd, write_generated_pillar
from .scale import cmd_add, cmd_remove
from .verify import cmd_test_cluster, cmd_verify, smoke
from .wheelhouse import ensure_wheelhouse, ensure_wheelhouses, wheel_server_start


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
    ensure_wheelhouse(version, node_python(cfg))
    if version not in cfg["airflow_versions"]:
        cfg["airflow_versions"].append(version)
    cfg["airflow_version"] = version
    save_config(cfg)
    wheel_server_start(cfg)
    write_generated_pillar(cfg)
    progress(f"lab pillar now has airflow:version {version}; run `labctl apply` to converge")
    return 0


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


def cmd_apply(args) -> int:
    summary, _ = apply_state(args)
    return 1 if any(failed for _, failed in summary.values()) else 0


def cmd_demo(_args) -> int:
    cmd_up([])
    rc = cmd_apply([])
    cfg = config()
    smoke(cfg)
    import yaml

    lab_pillar = yaml.safe_load((LAB / "pillar" / "airflow_ha.sls").read_text())["airflow_ha"]
    admin = lab_pillar["airflow"]["admin"]["username"]
    password = lab_pillar["secrets"]["admin_password"]  # fixed lab-only secret
    print("\nairflow_ha health (salt-run airflow_ha.health):")
    cmd_salt_run(["airflow_ha.health"])
    print("\nairflow_ha lab:")
    for node in cfg["nodes"]:
        a = node["address"]
        print(f"  {node['name']}: Airflow UI/API http://{a}:8080  Flower http://{a}:5555  "
              f"RabbitMQ http://{a}:15672  HAProxy stats http://{a}:7000/")  # fmt: skip
    mon = lab_pillar.get("monitoring") or {}
    if mon.get("enabled"):
        defaults = formula_parameters("defaults")["monitoring"]
        port = (mon.get("prometheus") or {}).get("port") or defaults["prometheus"]["port"]
        roles = {n: (d or {}).get("roles") or [] for n, d in lab_pillar["nodes"].items()}
        for node in cfg["nodes"]:
            if "monitor" in roles.get(node["name"], []):
                print(
                    f"  {node['name']}: Prometheus http://{node['address']}:{port}/ (targets: /targets, alerts: /alerts)"
                )
    print(f"  Airflow (and Flower) login: {admin} / {password}")
    print("  tear down: make demo-down")
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
    "wipe": cmd_wipe,
    "add": cmd_add,
    "remove": cmd_remove,
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
    "bench-one": cmd_bench_one,
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
