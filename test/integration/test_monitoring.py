"""Monitoring (airflow_ha:monitoring:enabled): every monitor node's Prometheus
scrapes every target of every node and sees it up; every exporter listens on
the node address only; the alert rules are loaded and none fires on a
converged cluster."""

import json

import pytest


@pytest.fixture(scope="module")
def monitors(ah, role_nodes):
    if not (ah.get("monitoring") or {}).get("enabled"):
        pytest.skip("airflow_ha:monitoring:enabled is off")
    names = role_nodes("monitor")
    if not names:
        pytest.skip("no node has role monitor")
    return names


def _api(nodes, node, address, path):
    out = nodes[node].check_output(f"curl -s -m 10 http://{address}:9090{path}")
    return json.loads(out)["data"]


def test_every_target_of_every_node_is_up(nodes, monitors, address, ah, wait_for):
    want = len(nodes)
    for mon in monitors:
        last = {}

        def all_up(mon=mon, last=last):
            targets = _api(nodes, mon, address(mon), "/api/v1/targets?state=active")["activeTargets"]
            last["down"] = [
                (t["labels"]["job"], t["labels"]["node"], t["lastError"])
                for t in targets
                if t["health"] != "up"
            ]
            last["jobs"] = {t["labels"]["job"] for t in targets}
            last["nodes"] = {t["labels"]["node"] for t in targets}
            return targets and not last["down"]

        assert wait_for(all_up, timeout=120, interval=10), f"{mon}: targets not up: {last.get('down')}"
        assert {"node", "haproxy", "etcd", "patroni", "postgres", "rabbitmq", "prometheus"} <= last["jobs"]
        assert len(last["nodes"]) == want


def test_exporters_listen_on_the_node_address_only(nodes, monitors, address, ah):
    m = ah["monitoring"]
    ports = {m["node_exporter"]["port"], m["haproxy_port"], m["etcd_port"], m["postgres_exporter"]["port"]}
    ports |= {m["rabbitmq_port"], m["prometheus"]["port"]}
    for name in nodes:
        listen = nodes[name].check_output("ss -Hltn").split("\n")
        for line in listen:
            local = line.split()[3]
            host, _, port = local.rpartition(":")
            if int(port) in ports:
                assert host in (address(name), "127.0.0.1"), (
                    f"{name}: {local} is not bound to the node address"
                )


def test_rules_loaded_and_quiet(nodes, monitors, address, wait_for):
    mon = monitors[0]
    groups = _api(nodes, mon, address(mon), "/api/v1/rules")["groups"]
    names = {r["name"] for g in groups for r in g["rules"]}
    assert "AirflowHaNodeDown" in names and "AirflowHaNoDagProcessor" in names

    def quiet():
        return [a["labels"]["alertname"] for a in _api(nodes, mon, address(mon), "/api/v1/alerts")["alerts"]]

    assert wait_for(lambda: not quiet(), timeout=180, interval=15), (
        f"alerts on a converged cluster: {quiet()}"
    )
