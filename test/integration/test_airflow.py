"""Airflow: every unit the roles ask for is active (and the others are not),
one dag-processor in the cluster, the API and Flower answer, a DAG run
succeeds on the Celery workers."""

import json

import pytest

ROLE_UNITS = {
    "api": "airflow-api-server",
    "scheduler": "airflow-scheduler",
    "triggerer": "airflow-triggerer",
    "worker": "airflow-worker",
    "flower": "airflow-flower",
    "dag_processor": "airflow-dag-processor",
}
CHECK_DAG = "airflow_ha_check"


@pytest.fixture(scope="module")
def airflow_nodes(nodes, ah):
    venv = ah["airflow"]["venv"]
    missing = [n for n in nodes if not nodes[n].file(f"{venv}/bin/airflow").exists]
    if missing:
        pytest.skip(f"Airflow is not installed on {', '.join(missing)} (not built yet)")
    return list(nodes)


def airflow_cli(ah):
    af = ah["airflow"]
    return (
        f"runuser -u {af['user']} -- env AIRFLOW_HOME={af['home']} PYTHONWARNINGS=ignore "
        f"AIRFLOW__LOGGING__LOGGING_LEVEL=ERROR {af['venv']}/bin/airflow"
    )


@pytest.mark.parametrize("role", sorted(ROLE_UNITS))
def test_units_follow_roles(nodes, airflow_nodes, role_nodes, role):
    unit = ROLE_UNITS[role]
    wanted = role_nodes(role)
    for name in airflow_nodes:
        svc = nodes[name].service(unit)
        if name in wanted:
            assert svc.is_running and svc.is_enabled, f"{unit} not active on {name}"
        else:
            assert not svc.is_running, f"{unit} runs on {name} without the {role} role"


def test_exactly_one_dag_processor(nodes, airflow_nodes, role_nodes, wait_for):
    def running():
        return [
            n for n in role_nodes("dag_processor")
            if nodes[n].run("pgrep -f 'airflow dag-processor'").rc == 0
        ]  # fmt: skip

    holders = wait_for(running, timeout=30)
    assert len(holders) == 1, f"dag-processor runs on {holders}"


def test_api_health(nodes, airflow_nodes, role_nodes, ah, address):
    port = ah["airflow"]["api_port"]
    for name in role_nodes("api"):
        out = nodes[name].check_output(f"curl -sf http://{address(name)}:{port}/api/v2/monitor/health")
        health = json.loads(out)
        assert health["metadatabase"]["status"] == "healthy", f"{name}: {health}"
        assert health["scheduler"]["status"] == "healthy", f"{name}: {health}"


def test_flower_health(nodes, airflow_nodes, role_nodes, ah, address):
    port = ah["airflow"]["flower_port"]
    for name in role_nodes("flower"):
        res = nodes[name].run(f"curl -sf http://{address(name)}:{port}/healthcheck")
        assert res.rc == 0 and "OK" in res.stdout, f"flower on {name}: {res.stdout}"


def test_config_is_private(nodes, airflow_nodes, ah):
    cfg = f"{ah['airflow']['home']}/airflow.cfg"
    for name in airflow_nodes:
        f = nodes[name].file(cfg)
        if f.exists:
            assert f.mode & 0o007 == 0, f"{cfg} on {name} is world-readable: {oct(f.mode)}"


def test_dag_run_succeeds(nodes, node_exec, airflow_nodes, role_nodes, ah, wait_for):
    """Trigger the formula's check DAG (copied from the repo if the formula did
    not install it) and wait for a successful run."""
    sched = role_nodes("scheduler")[0]
    cli = airflow_cli(ah)
    dags = f"{ah['airflow']['home']}/dags"
    present = nodes[sched].file(f"{dags}/{CHECK_DAG}.py").exists
    if not present:
        src = (pytest.importorskip("pathlib").Path(__file__).parents[2]
               / "airflow_ha/airflow/files/dags/airflow_ha_check.py").read_text()  # fmt: skip
        node_exec(sched, f"cat > {dags}/{CHECK_DAG}.py && chown {ah['airflow']['user']} "
                  f"{dags}/{CHECK_DAG}.py && (csync2 -x || true)", stdin=src)  # fmt: skip
    node_exec(sched, f"{cli} dags reserialize >/dev/null 2>&1; true")
    listed = wait_for(
        lambda: node_exec(sched, f"{cli} dags list -o json 2>/dev/null").stdout.find(CHECK_DAG) >= 0,
        timeout=120, interval=5,
    )  # fmt: skip
    assert listed, f"{CHECK_DAG} never appeared in `airflow dags list`"
    node_exec(sched, f"{cli} dags unpause {CHECK_DAG}")
    res = node_exec(sched, f"{cli} dags trigger {CHECK_DAG} -o json")
    assert res.rc == 0, f"trigger failed: {res.stdout} {res.stderr}"

    def state():
        out = node_exec(sched, f"{cli} dags list-runs {CHECK_DAG} -o json 2>/dev/null").stdout
        try:
            runs = json.loads(out[out.find("[") :])
        except ValueError:
            return None
        states = [r.get("state") for r in runs]
        return states[0] if states and states[0] in ("success", "failed") else None

    final = wait_for(state, timeout=300, interval=5)
    assert final == "success", f"{CHECK_DAG} run ended {final!r}"
