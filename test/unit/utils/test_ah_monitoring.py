"""_utils/ah_monitoring.py through the settings: the scrape jobs follow the
roles, the `monitor` role needs the switch, Airflow's [metrics] is derived
with the pillar's airflow:config winning, and nothing changes when off."""

import copy

from testlib import GRAINS, formula_data, load_module

ah_settings = load_module("ah_settings", "utils")
DEFAULTS, OS_LAYERS, EXAMPLE = formula_data()


def settings(minion_id="node1", **changes):
    pillar = copy.deepcopy(EXAMPLE)
    pillar["monitoring"]["enabled"] = True
    for node in ("node1", "node2"):
        pillar["nodes"][node]["roles"] = [*EXAMPLE["nodes"]["node3"]["roles"], "monitor"]
    for key, value in changes.items():
        pillar[key] = value
    return ah_settings.settings(DEFAULTS, OS_LAYERS, pillar, minion_id, dict(GRAINS), reveal=True)


def test_jobs_follow_the_roles():
    pillar_nodes = copy.deepcopy(EXAMPLE["nodes"])
    pillar_nodes["node1"]["roles"] = [*EXAMPLE["nodes"]["node3"]["roles"], "monitor"]
    pillar_nodes["node4"] = {"address": "10.77.0.14", "roles": ["broker"]}
    ah = settings(nodes=pillar_nodes)
    assert ah["errors"] == []
    jobs = {j["name"]: [t["node"] for t in j["targets"]] for j in ah["monitoring"]["jobs"]}
    assert jobs["node"] == ["node1", "node2", "node3", "node4"]
    assert jobs["rabbitmq"] == ["node1", "node2", "node3", "node4"]
    assert jobs["etcd"] == jobs["patroni"] == jobs["postgres"] == ["node1", "node2", "node3"]
    assert jobs["airflow"] == ["node1", "node2", "node3"]
    assert jobs["prometheus"] == ["node1"]
    assert "alertmanager" not in jobs


def test_here_flags():
    assert settings("node1")["monitoring"]["here"]["prometheus"] is True
    here = settings("node3")["monitoring"]["here"]
    assert here == {
        "prometheus": False,
        "alertmanager": False,
        "postgres_exporter": True,
        "rabbitmq": True,
        "airflow": True,
    }


def test_airflow_metrics_derived_user_config_wins():
    ah = settings(
        airflow={**EXAMPLE["airflow"], "config": {"metrics": {"otel_interval_milliseconds": "60000"}}}
    )
    metrics = ah["airflow"]["config"]["metrics"]
    assert metrics["otel_on"] == "True" and metrics["otel_port"] == "4318"
    assert metrics["otel_interval_milliseconds"] == "60000"


def test_monitor_role_needs_the_switch():
    pillar = copy.deepcopy(EXAMPLE)
    pillar["nodes"]["node1"]["roles"] = [*EXAMPLE["nodes"]["node3"]["roles"], "monitor"]
    ah = ah_settings.settings(DEFAULTS, OS_LAYERS, pillar, "node1", dict(GRAINS))
    assert ah["errors"] == [
        "airflow_ha:nodes:node1:roles: role 'monitor' runs Prometheus, but monitoring:enabled is false — "
        "turn monitoring on or remove the role"
    ]


def test_exporter_password_required_only_when_on():
    off = copy.deepcopy(EXAMPLE)
    del off["secrets"]["postgres_exporter_password"]
    assert ah_settings.settings(DEFAULTS, OS_LAYERS, off, "node1", dict(GRAINS))["errors"] == []
    on = copy.deepcopy(off)
    on["monitoring"]["enabled"] = True
    errors = ah_settings.settings(DEFAULTS, OS_LAYERS, on, "node1", dict(GRAINS))["errors"]
    assert [e.split(":")[2] for e in errors] == ["postgres_exporter_password"]


def test_off_changes_nothing():
    ah = ah_settings.settings(DEFAULTS, OS_LAYERS, copy.deepcopy(EXAMPLE), "node1", dict(GRAINS))
    assert "metrics" not in ah["airflow"]["config"]
    assert set(ah["monitoring"]["here"].values()) == {False}
