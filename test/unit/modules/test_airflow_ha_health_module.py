"""_modules/airflow_ha_health.py: one node's grades, from recorded answers of
the modules it asks (Salt's loader mocked; settings are the real ones of
pillar.example)."""

import copy
import json

import pytest
from salt.exceptions import CommandExecutionError
from testlib import GRAINS, ROOT, formula_data, load_module, utils_dunder

health = load_module("airflow_ha_health")
ah_settings = load_module("ah_settings", "utils")
DEFAULTS, OS_LAYERS, EXAMPLE = formula_data()
DATA = ROOT / "test" / "unit" / "data"


def settings(minion_id="node1", pillar=None):
    return ah_settings.settings(
        DEFAULTS, OS_LAYERS, pillar or copy.deepcopy(EXAMPLE), minion_id, dict(GRAINS)
    )


def recorded(path):
    return (DATA / path).read_text()


def rabbit_status():
    raw = json.loads(recorded("rabbitmq/cluster_status_node2_down.json"))
    return {"members": raw["disk_nodes"], "running": raw["running_nodes"], "partitions": {}, "alarms": []}


def healthy_salt(ah):
    """Every module answers as on a converged cluster (node1 the leader)."""
    return {
        "airflow_ha.settings": lambda: ah,
        "airflow_ha_etcd.health": lambda url, timeout=5, **kw: True,
        "patroni.cluster": lambda **kw: json.loads(recorded("patroni/cluster_healthy.json")),
        "airflow_ha_rabbitmq.node_name": lambda m: "rabbit@" + m,
        "airflow_ha_rabbitmq.cluster_status": lambda: {
            "members": ["rabbit@node1", "rabbit@node2", "rabbit@node3"],
            "running": ["rabbit@node1", "rabbit@node2", "rabbit@node3"],
            "partitions": {},
            "alarms": [],
        },
        "csync2.status": lambda: {"healthy": True, "dirty_count": 0, "comment": "2 peer(s) reachable"},
        "csync2.conflicts": lambda **kw: {"unresolved": [], "comment": "no unresolved conflicts"},
        "airflow.health": lambda: {
            "scheduler": {"enabled": True, "active": True, "healthy": True},
            "api-server": {"enabled": True, "active": True, "healthy": True, "http_status": 200},
            "dag-processor": {"enabled": True, "active": True, "healthy": True},
            "healthy": True,
        },
    }


@pytest.fixture
def loader(monkeypatch):
    """configure(minion_id, **overrides) -> the module wired to fakes."""

    def configure(minion_id="node1", ah=None, **overrides):
        ah = ah or settings(minion_id)
        salt = {**healthy_salt(ah), **overrides}
        utils = utils_dunder("ah_http", "ah_health")
        monkeypatch.setattr(health, "__salt__", salt, raising=False)
        monkeypatch.setattr(health, "__opts__", {"id": minion_id}, raising=False)
        monkeypatch.setattr(health, "__utils__", utils, raising=False)
        monkeypatch.setattr(
            health,
            "_haproxy_stat",
            lambda: utils["ah_health.parse_haproxy_csv"](recorded("health/haproxy_show_stat.csv")),
        )
        monkeypatch.setattr(health, "_dag_processor_running", lambda: minion_id == "node2")
        # etcd's /v3/maintenance/status: node1 is the raft leader
        monkeypatch.setitem(
            utils,
            "ah_http.request",
            lambda *a, **kw: (200, json.dumps({"header": {"member_id": "11"}, "leader": "11"})),
        )
        return health

    return configure


def test_converged_node_is_all_ok(loader):
    out = loader("node1").node()
    assert out["member"] is True and out["nodes"] == ["node1", "node2", "node3"]
    grades = {k: v["status"] for k, v in out["components"].items()}
    assert grades == {k: "ok" for k in ("etcd", "patroni", "haproxy", "rabbitmq", "csync2", "airflow")}
    assert out["components"]["haproxy"]["reason"] == "primary backend -> node2"
    assert out["components"]["patroni"]["detail"]["leaders_seen"] == ["node1"]
    assert out["components"]["etcd"]["detail"]["is_leader"] is True
    assert out["components"]["airflow"]["detail"]["dag_processor_holder"] is False


def test_stopped_broker_names_the_node(loader):
    mod = loader(**{"airflow_ha_rabbitmq.cluster_status": rabbit_status})
    grade = mod.node()["components"]["rabbitmq"]
    assert grade["status"] == "degraded"
    assert grade["reason"] == "not running: rabbit@node2"


def test_unreachable_component_is_down_with_the_cause(loader):
    def refused(**kw):
        raise CommandExecutionError("cannot reach http://10.77.0.11:8008/cluster: Connection refused")

    out = loader(**{"patroni.cluster": refused}).node()
    assert out["components"]["patroni"]["status"] == "down"
    assert "Connection refused" in out["components"]["patroni"]["reason"]
    assert out["components"]["etcd"]["status"] == "ok"  # one broken check does not hide the others


def test_lagging_replica_is_degraded(loader):
    doc = json.loads(recorded("patroni/cluster_healthy.json"))
    doc["members"][1]["lag"] = 5 * 1048576
    grade = loader("node2", **{"patroni.cluster": lambda **kw: doc}).node()["components"]["patroni"]
    assert grade["status"] == "degraded" and "lags 5242880 bytes" in grade["reason"]


def test_etcd_without_quorum_is_degraded(loader):
    grade = loader(**{"airflow_ha_etcd.health": lambda url, **kw: False}).node()["components"]["etcd"]
    assert grade["status"] == "degraded" and "no leader" in grade["reason"]


def test_inactive_airflow_unit_named(loader):
    report = healthy_salt(settings())["airflow.health"]()
    report["scheduler"] = {"enabled": True, "active": False, "healthy": False}
    grade = loader(**{"airflow.health": lambda: report}).node()["components"]["airflow"]
    assert grade["status"] == "degraded" and grade["reason"] == "unhealthy: scheduler (inactive)"


def test_dirty_csync2_and_conflicts(loader):
    dirty = loader(**{"csync2.status": lambda: {"healthy": True, "dirty_count": 3}}).node()
    assert dirty["components"]["csync2"]["reason"] == "3 file(s) waiting to be pushed"
    conflict = {"unresolved": ["/var/lib/airflow/dags/a.py"], "comment": "1 unresolved conflict(s)"}
    out = loader(**{"csync2.conflicts": lambda **kw: conflict}).node()
    assert out["components"]["csync2"]["status"] == "degraded"
    assert out["components"]["csync2"]["detail"]["unresolved"] == ["/var/lib/airflow/dags/a.py"]


def test_not_a_cluster_node(loader):
    assert loader("labhost_master", ah=settings("node1")).node() == {"member": False}


def test_bad_pillar_raises(loader):
    ah = settings()
    ah["errors"] = ["airflow_ha:nodes: no nodes"]
    with pytest.raises(CommandExecutionError, match="airflow_ha:nodes"):
        loader(ah=ah).node()


def test_old_backup_is_degraded(loader):
    ah = settings("node3")
    ah["pgbackrest"]["repo_here"] = True  # what derive() sets on the backup node
    info = {"last_backup": {"label": "20261201-010000F", "age": 200000}, "status": "ok"}
    out = loader("node3", ah=ah, **{"pgbackrest.info": lambda **kw: info}).node(backup_max_age=93600)
    assert out["components"]["backup"]["status"] == "degraded"
    assert "55 h old" in out["components"]["backup"]["reason"]
    fresh = {"last_backup": {"label": "20261201-010000F", "age": 3600}, "status": "ok"}
    out = loader("node3", ah=ah, **{"pgbackrest.info": lambda **kw: fresh}).node()
    assert out["components"]["backup"]["status"] == "ok"


def test_no_backup_section_without_the_repository(loader):
    assert "backup" not in loader("node3").node()["components"]
