"""airflow_ha/monitoring/files/airflow_ha-metrics.py: the formula's own
metrics from recorded csync2 -M output, its state files, RabbitMQ's JSON and
the textfile written atomically."""

import importlib.machinery
import importlib.util
import json
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = pathlib.Path(__file__).parent / "data"


def rec(name):
    return json.loads((DATA / "csync2" / f"{name}.json").read_text())


@pytest.fixture
def metrics(monkeypatch):
    # Installed, ah_csync2.py and ah_health.py sit next to the script.
    monkeypatch.syspath_prepend(str(ROOT / "_utils"))
    path = ROOT / "airflow_ha" / "monitoring" / "files" / "airflow_ha-metrics.py"
    loader = importlib.machinery.SourceFileLoader("airflow_ha_metrics", str(path))
    spec = importlib.util.spec_from_loader("airflow_ha_metrics", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    monkeypatch.setattr(mod, "unit_active", lambda unit: unit == "airflow_ha-csync2-watcher")
    monkeypatch.setattr(mod, "dag_processor_running", lambda: True)
    return mod


def fake_run(answers):
    def run(argv, **kwargs):
        out = answers[" ".join(argv[:2])]
        return subprocess.CompletedProcess(argv, out["retcode"], out["stdout"], out.get("stderr", ""))

    return run


def values(samples):
    return {name: value for name, _, value in samples}


def test_dirty_files_and_their_age(metrics, monkeypatch, tmp_path):
    monkeypatch.setattr(metrics.subprocess, "run", fake_run({"csync2 -M": rec("dirty_listed")}))
    samples, since = metrics.collect(1000.0, None, str(tmp_path))
    got = values(samples)
    assert got["airflow_ha_csync2_dirty_files"] == 5  # 5 paths, each dirty for 2 peers
    assert got["airflow_ha_csync2_dirty_seconds"] == 0 and since == 1000.0
    samples, since = metrics.collect(1090.0, since, str(tmp_path))
    assert values(samples)["airflow_ha_csync2_dirty_seconds"] == 90.0
    assert values(samples)["airflow_ha_dag_processor_running"] == 1
    assert values(samples)["airflow_ha_csync2_watcher_up"] == 1


def test_clean_state_resets_the_age_and_reads_the_last_push(metrics, monkeypatch, tmp_path):
    monkeypatch.setattr(metrics.subprocess, "run", fake_run({"csync2 -M": rec("dirty_empty")}))
    (tmp_path / "airflow_ha-last-sync.json").write_text(json.dumps({"time": 990.5, "result": False}))
    samples, since = metrics.collect(1000.0, 900.0, str(tmp_path))
    got = values(samples)
    assert since is None and got["airflow_ha_csync2_dirty_files"] == 0
    assert got["airflow_ha_csync2_last_push_timestamp_seconds"] == 990.5
    assert got["airflow_ha_csync2_last_push_ok"] == 0


def test_unresolved_conflict_counted(metrics, monkeypatch, tmp_path):
    monkeypatch.setattr(metrics.subprocess, "run", fake_run({"csync2 -M": rec("dirty_listed")}))
    event = {"time": 990, "path": "/var/lib/airflow/dags/dag_1.py", "peer": "node1", "outcome": "lost"}
    (tmp_path / "airflow_ha-events.jsonl").write_text(json.dumps(event) + "\n")
    got = values(metrics.collect(1000.0, None, str(tmp_path))[0])
    assert got["airflow_ha_csync2_unresolved_conflicts"] == 1
    assert got["airflow_ha_csync2_conflict_events"] == 1


def test_csync2_failure_leaves_its_metrics_out(metrics, monkeypatch, tmp_path):
    monkeypatch.setattr(metrics.subprocess, "run", fake_run({"csync2 -M": {"retcode": 1, "stdout": ""}}))
    got = values(metrics.collect(1000.0, None, str(tmp_path))[0])
    assert "airflow_ha_csync2_dirty_files" not in got
    assert got["airflow_ha_metrics_timestamp_seconds"] == 1000.0


def test_rabbitmq_cluster_view_and_quorum_queues(metrics, monkeypatch):
    status = json.loads((DATA / "rabbitmq" / "cluster_status_node2_down.json").read_text())
    queues = [
        {"name": "default", "type": "quorum", "members": ["a", "b", "c"], "online": ["a"]},
        {"name": "q2", "type": "quorum", "members": ["a", "b", "c"], "online": ["a", "b"]},
        {"name": "celeryev", "type": "classic", "members": [], "online": []},
    ]
    answers = {
        "rabbitmqctl cluster_status": {"retcode": 0, "stdout": json.dumps(status)},
        "rabbitmqctl list_queues": {"retcode": 0, "stdout": json.dumps(queues)},
    }
    monkeypatch.setattr(metrics.subprocess, "run", fake_run(answers))
    got = values(metrics.rabbitmq_samples())
    assert got["airflow_ha_rabbitmq_running_nodes"] == len(status["running_nodes"]) == 2
    assert got["airflow_ha_rabbitmq_quorum_queues_below_quorum"] == 1
    assert got["airflow_ha_rabbitmq_quorum_queues_degraded"] == 2


def test_textfile_written_whole(metrics, monkeypatch, tmp_path):
    monkeypatch.setattr(metrics.subprocess, "run", fake_run({"csync2 -M": rec("dirty_empty")}))
    monkeypatch.setattr(metrics.time, "time", lambda: 1000.0)
    out = tmp_path / "airflow_ha.prom"
    assert metrics.main(["--textfile", str(out), "--once"]) == 0
    text = out.read_text()
    assert "# TYPE airflow_ha_csync2_dirty_files gauge\nairflow_ha_csync2_dirty_files 0\n" in text
    assert list(tmp_path.iterdir()) == [out]
