"""salt-run airflow_ha.health on the lab master: all ok on a converged
cluster; one stopped service on one node is named (component and node) and
the exit code is non-zero; ok again once the service is back."""

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lab"))
LAB = importlib.import_module("nspawn_lab")  # labctl's package


@pytest.fixture(scope="module")
def health():
    """health() -> (exit code, parsed report) of `salt-run airflow_ha.health`."""
    if os.environ.get("AIRFLOW_HA_HOSTS"):
        pytest.skip("needs the lab's Salt master (salt-run)")

    def _run():
        cmd = [str(LAB.VENV_BIN / "salt-run"), "-c", str(LAB.master_dir() / "etc"), "airflow_ha.health"]
        proc = subprocess.run([*cmd, "--out=json"], capture_output=True, text=True, timeout=180, check=False)
        try:
            return proc.returncode, json.loads(proc.stdout)
        except json.JSONDecodeError:
            raise AssertionError(
                f"salt-run airflow_ha.health: {proc.stdout[-800:]} {proc.stderr[-800:]}"
            ) from None

    return _run


def _not_ok(report):
    return [line for line in report["table"] if not line.startswith("ok")]


def test_converged_cluster_reports_ok(health, wait_for):
    last = {}

    def ok():
        last["rc"], last["report"] = health()
        return last["report"]["verdict"] == "ok"

    assert wait_for(ok, timeout=120, interval=10), _not_ok(last["report"])
    assert last["rc"] == 0
    comps = last["report"]["components"]
    for comp in ("etcd", "patroni", "haproxy", "rabbitmq", "csync2", "airflow"):
        assert comps.get(comp), f"{comp} missing from the report: {sorted(comps)}"
    assert comps["patroni"]["cluster"]["status"] == "ok"


def test_stopped_scheduler_is_named_then_heals(health, nodes, role_nodes, wait_for):
    victim = role_nodes("scheduler")[-1]
    nodes[victim].check_output("systemctl stop airflow-scheduler")
    try:
        rc, report = health()
        assert rc != 0 and report["verdict"] == "degraded", report["table"]
        bad = {(c, n) for c, by in report["components"].items() for n, v in by.items() if v["status"] != "ok"}
        assert bad == {("airflow", victim)}, _not_ok(report)
        assert "scheduler" in report["components"]["airflow"][victim]["reason"]
    finally:
        nodes[victim].check_output("systemctl start airflow-scheduler")
    last = {}

    def ok():
        last["rc"], last["report"] = health()
        return last["rc"] == 0

    assert wait_for(ok, timeout=180, interval=10), _not_ok(last["report"])
