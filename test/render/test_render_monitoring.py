"""Render tier, monitoring:enabled (the lab pillar: node1 and node2 hold
`monitor`): the states each node gets, the files they render (Prometheus'
targets, the exporter's connection string only in a minion-rendered 0600
file, every listener on the node address), and nothing with it off."""

import copy
import json

from test_render import EXAMPLE, OS_GRAINS, _args, _render, _states, _variant, render_files

EXPORTER_IDS = [
    "airflow_ha-monitoring-node-exporter-args",
    "airflow_ha-monitoring-node-exporter-package",
    "airflow_ha-monitoring-node-exporter-service",
    "airflow_ha-monitoring-metrics-files",
    "airflow_ha-monitoring-metrics-unit",
    "airflow_ha-monitoring-metrics-daemon-reload",
    "airflow_ha-monitoring-metrics-service",
    "airflow_ha-monitoring-postgres-exporter-role",
    "airflow_ha-monitoring-prometheus-group",
    "airflow_ha-monitoring-prometheus-user",
    "airflow_ha-monitoring-postgres-exporter-env",
    "airflow_ha-monitoring-postgres-exporter-package",
    "airflow_ha-monitoring-postgres-exporter-service",
    "airflow_ha-monitoring-rabbitmq-plugin",
    "airflow_ha-monitoring-airflow-bridge-script",
    "airflow_ha-monitoring-airflow-bridge-unit",
    "airflow_ha-monitoring-airflow-bridge-daemon-reload",
    "airflow_ha-monitoring-airflow-bridge-service",
    "airflow_ha-monitoring-prometheus-node-exporter-boot-dropin",
    "airflow_ha-monitoring-prometheus-postgres-exporter-boot-dropin",
    "airflow_ha-monitoring-boot-daemon-reload",
]
PROMETHEUS_IDS = [
    "airflow_ha-monitoring-prometheus-args",
    "airflow_ha-monitoring-prometheus-package",
    "airflow_ha-monitoring-prometheus-rules",
    "airflow_ha-monitoring-prometheus-config",
    "airflow_ha-monitoring-prometheus-service",
    "airflow_ha-monitoring-prometheus-boot-dropin",
]


def _ids(states):
    return sorted(s for s in states if s.startswith("airflow_ha-monitoring-"))


def _file(tmp_path, states, sid, name):
    a = _args(states[sid]["file"])
    return render_files(tmp_path, {str(tmp_path / name): (a["source"], a.get("context") or {})})[name]


def test_monitor_node_gets_exporters_and_prometheus(tmp_path, etcd_tls):
    lab = _variant("lab", etcd_tls)
    states = _states(_render(tmp_path, "node1", OS_GRAINS["Debian-12"], lab))
    assert _ids(states) == sorted(EXPORTER_IDS + PROMETHEUS_IDS)
    prom = json.loads(json.dumps(_file(tmp_path, states, "airflow_ha-monitoring-prometheus-config", "p.yml")))
    import yaml

    conf = yaml.safe_load(prom)
    jobs = {j["job_name"]: [s["targets"][0] for s in j["static_configs"]] for j in conf["scrape_configs"]}
    assert jobs["node"] == ["10.77.0.11:9100", "10.77.0.12:9100", "10.77.0.13:9100"]
    assert jobs["etcd"] == ["10.77.0.11:2381", "10.77.0.12:2381", "10.77.0.13:2381"]
    assert jobs["patroni"] == ["10.77.0.11:8008", "10.77.0.12:8008", "10.77.0.13:8008"]
    assert jobs["prometheus"] == ["10.77.0.11:9090", "10.77.0.12:9090"]
    assert jobs["airflow"] == ["10.77.0.11:9112", "10.77.0.12:9112", "10.77.0.13:9112"]
    assert set(jobs) == {
        "node",
        "airflow",
        "haproxy",
        "etcd",
        "patroni",
        "postgres",
        "rabbitmq",
        "prometheus",
    }
    args = _args(states["airflow_ha-monitoring-prometheus-args"]["file"])["contents"]
    assert "--web.listen-address=10.77.0.11:9090" in args


def test_other_node_gets_exporters_only(tmp_path, etcd_tls):
    states = _states(_render(tmp_path, "node3", OS_GRAINS["Debian-12"], _variant("lab", etcd_tls)))
    assert _ids(states) == sorted(EXPORTER_IDS)
    args = _args(states["airflow_ha-monitoring-node-exporter-args"]["file"])["contents"]
    assert "--web.listen-address=10.77.0.13:9100" in args


def test_exporter_password_only_in_a_minion_rendered_private_file(tmp_path, etcd_tls):
    lab = _variant("lab", etcd_tls)
    states = _states(_render(tmp_path, "node2", OS_GRAINS["Debian-12"], lab))
    a = _args(states["airflow_ha-monitoring-postgres-exporter-env"]["file"])
    assert (a["mode"], a["user"], a["show_changes"], a["template"]) == ("0640", "prometheus", False, "jinja")
    text = _file(tmp_path, states, "airflow_ha-monitoring-postgres-exporter-env", "pe.env")
    password = lab["airflow_ha"]["secrets"]["postgres_exporter_password"]
    assert f"airflow_ha_exporter:{password}@127.0.0.1:5432" in text
    assert 'ARGS="--web.listen-address=10.77.0.12:9187"' in text
    assert password not in json.dumps(states)


def test_component_listeners_follow_the_switch(tmp_path, etcd_tls):
    lab = _variant("lab", etcd_tls)
    states = _states(_render(tmp_path, "node2", OS_GRAINS["Debian-12"], lab))
    haproxy = _file(tmp_path, states, "airflow_ha-haproxy-config", "haproxy.cfg")
    assert "bind 10.77.0.12:8405" in haproxy and "use-service prometheus-exporter" in haproxy
    etcd = _file(tmp_path, states, "airflow_ha-etcd-config", "etcd")
    assert 'ETCD_LISTEN_METRICS_URLS="http://10.77.0.12:2381"' in etcd
    rmq = _file(tmp_path, states, "airflow_ha-rabbitmq-config", "rabbitmq.conf")
    assert "prometheus.tcp.ip = 10.77.0.12" in rmq
    plugins = _args(states["airflow_ha-rabbitmq-plugins"]["file"])["contents"]
    assert plugins == "[rabbitmq_management,rabbitmq_prometheus]."
    unit = _args(states["airflow_ha-monitoring-airflow-bridge-unit"]["file"])["contents"]
    assert "--otlp 127.0.0.1:4318 --listen 10.77.0.12:9112" in unit


def test_off_by_default_nothing_rendered(tmp_path):
    pillar = copy.deepcopy(EXAMPLE)
    states = _states(_render(tmp_path, "node1", OS_GRAINS["Debian-12"], pillar))
    assert _ids(states) == []
    haproxy = _file(tmp_path, states, "airflow_ha-haproxy-config", "haproxy.cfg")
    assert "prometheus" not in haproxy
    assert _args(states["airflow_ha-rabbitmq-plugins"]["file"])["contents"] == "[rabbitmq_management]."
