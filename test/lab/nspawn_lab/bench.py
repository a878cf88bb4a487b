"""`labctl bench [NAME... | --no-scripts]`: performance figures on a fresh
lab, one per line, then test/lab/bench.d/* (or the NAMEd ones, or none).
"""

from __future__ import annotations

import os
import subprocess
import threading
import time

from .conf import ACNG_PORT, CACHE, STATE, WHEEL_PORT, LabError, config, figure, progress, run
from .drills import run_scripts, scripts
from .lifecycle import cmd_down, cmd_up, refuse_if_up
from .nodes import (
    extra_node,
    node_boot,
    node_pids,
    node_prepare,
    node_remove,
    node_stop,
    nsenter,
    pss_kib,
    wait_node_ready,
)
from .rootfs import lab_rootfs
from .salt import LAST_RETURN, apply_state
from .wheelhouse import airflow_reqs

# States of a cold converge that wait on another node rather than install:
# the serial part of the converge, reported beside the floor.
WAITS = {
    "etcd quorum": "airflow_ha-etcd-wait-healthy",
    "Patroni leader": "airflow_ha-postgresql-wait-leader",
    "RabbitMQ cluster": "airflow_ha-rabbitmq-clustered",
    "Airflow schema migration": "airflow_ha-airflow-db-migrated",
    "Airflow admin user": "airflow_ha-airflow-admin-user",
    "DAG folder from the peers": "airflow_ha-airflow-dags-caught-up",
}


def bare_install(cfg: dict, packages: list[str], name: str, offset: int) -> tuple[float, float]:
    """Install the converged nodes' packages and Airflow by hand on a bare
    node ``name`` (address: the lab network + ``offset``)."""
    bare = extra_node(cfg, name, offset)
    try:
        node_prepare(cfg, bare, lab_rootfs(cfg), minion=False)
        node_boot(cfg, bare)
        wait_node_ready(name)
        proxy = f"Acquire::http::Proxy=http://{cfg['host']}:{ACNG_PORT}"
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        start = time.monotonic()
        nsenter(name, "apt-get", "-o", proxy, "update", "-q", check=True, **quiet)
        apt = ["apt-get", "-o", proxy, "install", "-y", "-q", "--no-install-recommends"]
        nsenter(name, "env", "DEBIAN_FRONTEND=noninteractive", *apt, *packages, check=True, **quiet)
        apt_s = time.monotonic() - start
        start = time.monotonic()
        nsenter(name, "python3", "-m", "venv", "/opt/bare-venv", check=True, **quiet)
        pip = ["/opt/bare-venv/bin/pip", "install", "-q", "--no-index", "--find-links"]
        pip += [f"http://{cfg['host']}:{WHEEL_PORT}/", "--trusted-host", cfg["host"]]
        nsenter(name, *pip, *airflow_reqs(cfg["airflow_version"]), check=True, **quiet)
        return apt_s, time.monotonic() - start
    finally:
        node_stop(name, graceful=False)
        node_remove(name)


def bare_floor(cfg: dict, packages: list[str], count: int) -> list[tuple[float, float]]:
    """``count`` bare nodes installing by hand at once, as the converge
    installs on every node at once: [(apt s, pip s)] per node."""
    results: list = [None] * count
    errors: list[str] = []

    def one(i: int) -> None:
        try:
            results[i] = bare_install(cfg, packages, f"bare{i + 1}", 30 + i)
        except Exception as exc:  # noqa: BLE001 - reported as the bench's failure
            errors.append(f"bare{i + 1}: {exc}")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise LabError("raw install floor: " + "; ".join(errors))
    return results


def serial_waits(ret: dict) -> dict[str, float]:
    """The longest duration (s) of each WAITS state over the nodes' returns."""
    out = {}
    for label, sid in WAITS.items():
        durations = [
            float(st.get("duration") or 0) / 1000
            for states in ret.values()
            if isinstance(states, dict)
            for st in states.values()
            if st.get("__id__") == sid
        ]
        if durations:
            out[label] = max(durations)
    return out


def bench_selection(args) -> list | None:
    """`labctl bench` runs every bench.d script; `labctl bench NAME...` only
    those, `labctl bench --no-scripts` none (the converge figures and the
    raw-install floor only)."""
    if list(args) == ["--no-scripts"]:
        return []
    if not args:
        return None
    known = scripts("bench.d")
    unknown = [a for a in args if a not in known]
    if unknown:
        raise LabError(f"labctl bench: no bench.d script {' '.join(unknown)}; there: {' '.join(known)}")
    return list(args)


def cmd_bench(args) -> int:
    selection = bench_selection(args)
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
        converge = took
        waits = serial_waits(LAST_RETURN)
        failed = sum(len(f) for _, f in summary.values())
        figure(f"cold converge wall time ({n} nodes)", f"{took:.0f}", "s")
        for label, seconds in waits.items():
            figure(f"cold converge serial wait: {label} (longest node)", f"{seconds:.0f}", "s")
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
        progress(f"raw install of {len(packages)} packages + the Airflow venv on {n} bare nodes at once")
        floor = bare_floor(cfg, packages, n)
        apt_s = max(a for a, _ in floor)
        pip_s = max(p for _, p in floor)
        total = max(a + p for a, p in floor)
        figure(
            f"raw install on {n} bare nodes at once: apt-get install ({len(packages)} packages, slowest)",
            f"{apt_s:.0f}",
            "s",
        )
        figure(
            f"raw install on {n} bare nodes at once: Airflow venv from the wheelhouse (slowest)",
            f"{pip_s:.0f}",
            "s",
        )
        figure(f"raw install floor ({n} nodes at once, slowest node)", f"{total:.0f}", "s")
        figure("cold converge / raw install floor", f"{converge / total:.2f}", "x")
        rc = run_scripts("bench.d", cfg, selection) or rc
    finally:
        cmd_down([])
    return rc
