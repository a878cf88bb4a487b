"""`labctl bench`: performance figures on a fresh lab, one per line, then
test/lab/bench.d/*.
"""

from __future__ import annotations

import os
import subprocess
import time

from .conf import ACNG_PORT, CACHE, STATE, WHEEL_PORT, config, figure, progress, run
from .drills import run_scripts
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
from .salt import apply_state
from .wheelhouse import airflow_reqs


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
