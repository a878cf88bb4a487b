"""Alerts in the lab (destructive; issue 15's "done when"): node3 is killed
(`labctl kill`): its node-down, etcd-member and RabbitMQ-node alerts fire on
the first monitor node's Prometheus within 2 minutes and the health runner
names node3 and exits non-zero; after `labctl start node3` they resolve.
Then the dag-processor is stopped everywhere: its alert fires, and resolves
once it runs again. Prints the measured seconds (`name: value unit`).

It takes ~7 minutes of waiting on Prometheus's `for`, so it runs in
`make drills` (test/lab/drills.d/alerts sets AIRFLOW_HA_ALERT_DRILL=1), not
in `make test`, which must stay under its time budget."""

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

LABCTL = str(Path(__file__).resolve().parents[1] / "lab" / "labctl")
KILLED = {"AirflowHaNodeDown", "AirflowHaEtcdMemberDown", "AirflowHaRabbitmqNodeDown"}


@pytest.fixture(scope="module")
def prometheus(ah, role_nodes, nodes, address):
    if os.environ.get("AIRFLOW_HA_HOSTS"):
        pytest.skip("needs the lab (labctl kill/start)")
    if os.environ.get("AIRFLOW_HA_ALERT_DRILL") != "1":
        pytest.skip("runs in make drills (labctl drill alerts)")
    if not (ah.get("monitoring") or {}).get("enabled") or not role_nodes("monitor"):
        pytest.skip("monitoring is off or no node has role monitor")
    mon = role_nodes("monitor")[0]

    def firing():
        """{(alertname, node)} firing on the monitor node's Prometheus."""
        out = nodes[mon].run(f"curl -s -m 10 http://{address(mon)}:9090/api/v1/alerts")
        if out.rc != 0:
            return None
        alerts = json.loads(out.stdout)["data"]["alerts"]
        return {(a["labels"]["alertname"], a["labels"].get("node")) for a in alerts if a["state"] == "firing"}

    return mon, firing


def _until(check, timeout, interval=5):
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        value = check()
        if value:
            return round(time.monotonic() - start, 1), value
        time.sleep(interval)
    return None, check()


def test_node_killed_alerts_fire_and_resolve(prometheus, role_nodes, ah):
    mon, firing = prometheus
    victim = [n for n in role_nodes("db") if n != mon][-1]
    # A drill run just before (a scale-in, a kill) may leave an alert for a
    # minute or two: a whole lab first, bounded, then the kill.
    quiet, _ = _until(lambda: not {a for a, n in firing() or set() if n == victim}, 300)
    left = sorted(a for a, n in firing() or set() if n == victim)
    assert quiet is not None, f"alerts on {victim} before the kill, still after 300 s: {left}"
    subprocess.run([LABCTL, "kill", victim], check=True, capture_output=True)
    try:
        fired, seen = _until(lambda: KILLED <= {a for a, n in firing() or set() if n == victim}, 180)
        print(f"\nalerts_node_down_fired: {fired} s")
        assert fired is not None and fired <= 120, f"after 180 s: {seen}"
    finally:
        subprocess.run([LABCTL, "start", victim], check=True, capture_output=True)
    resolved, seen = _until(lambda: not {a for a, n in firing() or set() if n == victim}, 300)
    print(f"alerts_node_down_resolved: {resolved} s")
    assert resolved is not None, f"still firing 300 s after the start: {seen}"


def test_dag_processor_stopped_everywhere_fires(prometheus, role_nodes, nodes, ah):
    if int(str(ah["airflow"]["version"]).split(".")[0]) < 3:
        pytest.skip("Airflow 2.x has no standalone dag-processor")
    _, firing = prometheus
    names = role_nodes("dag_processor")
    for name in names:
        nodes[name].check_output("systemctl stop airflow-dag-processor")
    try:
        fired, seen = _until(lambda: ("AirflowHaNoDagProcessor", None) in (firing() or set()), 180)
        print(f"\nalerts_no_dag_processor_fired: {fired} s")
        assert fired is not None and fired <= 120, f"after 180 s: {seen}"
    finally:
        for name in names:
            nodes[name].check_output("systemctl start airflow-dag-processor")
    resolved, seen = _until(lambda: ("AirflowHaNoDagProcessor", None) not in (firing() or set()), 300)
    print(f"alerts_no_dag_processor_resolved: {resolved} s")
    assert resolved is not None, f"still firing: {seen}"
