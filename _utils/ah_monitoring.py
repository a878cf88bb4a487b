"""
The monitoring settings derived once (README "Monitoring"): which targets
Prometheus scrapes on which node, and what runs where.

Why here: the scrape configuration, the health runner's documentation and the
unit tests need the same list of (job, node, address, port, path); computed
in Python from the roles, it is tested once instead of being re-spelled in
Jinja loops. Called by ``ah_settings.derive`` (valid settings only).
Standard library only.
"""

# Roles that run an Airflow component (each exports metrics through the bridge).
AIRFLOW_ROLES = ("scheduler", "api", "worker", "triggerer", "dag_processor", "flower")


def _targets(members, port):
    return [{"node": m["id"], "address": m["address"], "port": port} for m in members]


def derive(ah, minion_id):
    """Add ``monitoring:jobs`` (the scrape jobs, every node's targets) and,
    for a minion, ``monitoring:here`` (what runs on this node)."""
    m = ah["monitoring"]
    every = [{"id": n, "address": d["address"]} for n, d in sorted(ah["nodes"].items())]
    members = ah["members"]
    p = ah["postgresql"]["patroni"]
    airflow = [
        {"id": n, "address": d["address"]}
        for n, d in sorted(ah["nodes"].items())
        if set(d["roles"]) & set(AIRFLOW_ROLES)
    ]
    jobs = [
        ("node", "/metrics", _targets(every, m["node_exporter"]["port"])),
        ("airflow", "/metrics", _targets(airflow, m["airflow_port"])),
        ("haproxy", "/metrics", _targets(every, m["haproxy_port"])),
        ("etcd", "/metrics", _targets(members["db"], m["etcd_port"])),
        ("patroni", "/metrics", _targets(members["db"], p["rest_port"])),
        ("postgres", "/metrics", _targets(members["db"], m["postgres_exporter"]["port"])),
        ("rabbitmq", "/metrics", _targets(members["broker"], m["rabbitmq_port"])),
        ("prometheus", "/metrics", _targets(members["monitor"], m["prometheus"]["port"])),
    ]
    if m["alertmanager"]["enabled"]:
        jobs.append(("alertmanager", "/metrics", _targets(members["monitor"], m["alertmanager"]["port"])))
    m["jobs"] = [{"name": n, "path": path, "targets": t} for n, path, t in jobs if t]
    if m["enabled"]:
        # Airflow pushes its metrics to the bridge (airflow.cfg [metrics]);
        # the pillar's airflow:config still wins key by key.
        otel = {
            "otel_on": "True",
            "otel_host": "127.0.0.1",
            "otel_port": str(m["otlp_port"]),
            "otel_interval_milliseconds": str(m["scrape_interval"] * 1000),
            "otel_ssl_active": "False",
        }
        user = ah["airflow"].get("config") or {}
        ah["airflow"]["config"] = {**user, "metrics": {**otel, **(user.get("metrics") or {})}}
    m["alertmanagers"] = [
        f"{t['address']}:{m['alertmanager']['port']}" for t in _targets(members["monitor"], 0)
    ]
    if minion_id is None:
        return
    roles = ah["nodes"][minion_id]["roles"]
    m["here"] = {
        "prometheus": bool(m["enabled"]) and "monitor" in roles,
        "alertmanager": bool(m["enabled"] and m["alertmanager"]["enabled"]) and "monitor" in roles,
        "postgres_exporter": bool(m["enabled"]) and "db" in roles,
        "rabbitmq": bool(m["enabled"]) and "broker" in roles,
        "airflow": bool(m["enabled"]) and bool(set(roles) & set(AIRFLOW_ROLES)),
    }
    m["alertmanager_peers"] = [
        f"{x['address']}:{m['alertmanager']['cluster_port']}"
        for x in members["monitor"]
        if x["id"] != minion_id
    ]
