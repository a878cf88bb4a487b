"""_runners/airflow_ha.py: the verdict from the nodes' grades (summarize),
and health() through a fake LocalClient (the loader's __opts__/__context__
mocked)."""

import copy

import pytest
from testlib import load_module

runner = load_module("airflow_ha", "runners")
NODES = ["node1", "node2", "node3"]


def node(name, leader="node1", holder="node2", **grades):
    comps = {
        "etcd": {
            "status": "ok",
            "reason": "healthy",
            "detail": {"member_id": f"id-{name}", "leader_id": "id-node1"},
        },
        "patroni": {"status": "ok", "reason": "fine", "detail": {"leaders_seen": [leader] if leader else []}},
        "haproxy": {"status": "ok", "reason": "primary backend -> node1"},
        "rabbitmq": {"status": "ok", "reason": "3 of 3 brokers running"},
        "csync2": {"status": "ok", "reason": "in sync"},
        "airflow": {
            "status": "ok",
            "reason": "5 unit(s) healthy",
            "detail": {"dag_processor_holder": name == holder},
        },
    }
    for comp, grade in grades.items():
        comps[comp] = {**comps[comp], **grade}
    return {"ret": {"member": True, "node": name, "nodes": NODES, "components": comps}, "retcode": 0}


def cluster(**per_node):
    return {n: per_node.get(n, node(n)) for n in NODES if per_node.get(n, True) is not None}


def rows(report, status=None):
    return [
        (comp, n, v["status"])
        for comp, by_node in report["components"].items()
        for n, v in by_node.items()
        if status is None or v["status"] == status
    ]


def test_converged_cluster_is_ok():
    report = runner.summarize(cluster())
    assert report["verdict"] == "ok" and report["retcode"] == 0
    assert rows(report, "ok") == rows(report)
    assert report["components"]["etcd"]["cluster"]["reason"] == "3 of 3 members healthy, leader node1"
    assert report["components"]["patroni"]["cluster"]["reason"] == "one leader: node1"
    assert report["components"]["dag-processor"]["cluster"]["reason"] == "held by node2"
    assert len(report["table"]) == len(rows(report))


def test_one_stopped_service_names_component_and_node():
    broken = node("node3", rabbitmq={"status": "degraded", "reason": "not running: rabbit@node3"})
    report = runner.summarize(cluster(node3=broken))
    assert report["verdict"] == "degraded" and report["retcode"] == 1
    assert rows(report, "degraded") == [("rabbitmq", "node3", "degraded")]
    assert report["table"][0].split()[:3] == ["degraded", "rabbitmq", "node3"]


def test_node_that_does_not_answer_is_down_and_counts_for_etcd():
    report = runner.summarize(cluster(node3=None), timeout=30)
    assert report["verdict"] == "degraded"
    assert report["components"]["node"]["node3"] == {
        "status": "down",
        "reason": "no answer within 30 s: node down or salt-minion stopped",
    }
    assert report["components"]["etcd"]["cluster"]["status"] == "degraded"
    assert "not: node3" in report["components"]["etcd"]["cluster"]["reason"]


def test_minion_that_did_not_return_is_no_answer():
    returns = cluster()
    returns["node3"] = {"ret": "Minion did not return. [Not connected]", "retcode": 254}
    report = runner.summarize(returns, timeout=20)
    assert report["components"]["node"]["node3"]["reason"].startswith("no answer within 20 s")


def test_etcd_quorum_lost_is_cluster_down():
    bad = {"status": "down", "reason": "cannot reach"}
    report = runner.summarize(cluster(node2=node("node2", etcd=bad), node3=node("node3", etcd=bad)))
    assert report["verdict"] == "down"
    assert report["components"]["etcd"]["cluster"]["reason"].startswith("1 of 3 members healthy: no quorum")


def test_two_patroni_leaders_and_none():
    two = runner.summarize(cluster(node3=node("node3", leader="node3")))
    assert two["components"]["patroni"]["cluster"] == {
        "status": "degraded",
        "reason": "more than one leader seen: node1, node3",
    }
    none = runner.summarize({n: node(n, leader=None) for n in NODES})
    assert none["verdict"] == "down"
    assert none["components"]["patroni"]["cluster"]["status"] == "down"


def test_dag_processor_none_or_two():
    none = runner.summarize({n: node(n, holder=None) for n in NODES})
    assert none["verdict"] == "down"
    assert none["components"]["dag-processor"]["cluster"]["reason"].startswith("no dag-processor runs")
    two = cluster(node3=node("node3", holder="node3"))
    report = runner.summarize(two)
    assert report["components"]["dag-processor"]["cluster"]["reason"].startswith("2 dag-processors run")


def test_failed_module_and_outsiders():
    returns = cluster()
    returns["node2"] = {"ret": "'airflow_ha_health.node' is not available.", "retcode": 1}
    returns["labhost_master"] = {"ret": {"member": False}, "retcode": 0}
    report = runner.summarize(returns)
    assert report["components"]["node"]["node2"]["status"] == "down"
    assert "is not available" in report["components"]["node"]["node2"]["reason"]
    assert "labhost_master" not in {n for by in report["components"].values() for n in by}


def test_nobody_answers():
    report = runner.summarize({})
    assert report["verdict"] == "down" and report["retcode"] == 1


class FakeClient:
    def __init__(self, returns):
        self.returns, self.calls = returns, []

    def cmd(self, tgt, fun, **kwargs):
        self.calls.append((tgt, fun, kwargs))
        return copy.deepcopy(self.returns)


@pytest.mark.parametrize(("returns", "retcode"), [(cluster(), 0), (cluster(node1=None), 1)])
def test_health_sets_the_exit_code(monkeypatch, returns, retcode):
    fake = FakeClient(returns)
    monkeypatch.setattr(runner.salt.client, "get_local_client", lambda mopts=None: fake)
    monkeypatch.setattr(runner, "__opts__", {"conf_file": "/etc/salt/master"}, raising=False)
    monkeypatch.setattr(runner, "__context__", {}, raising=False)
    report = runner.health(timeout=20)
    assert report["retcode"] == retcode and runner.__context__["retcode"] == retcode
    tgt, fun, kwargs = fake.calls[0]
    assert (tgt, fun, kwargs["timeout"], kwargs["full_return"]) == ("*", "airflow_ha_health.node", 20, True)
