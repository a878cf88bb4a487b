"""etcd: one cluster of every db node, all members started and healthy."""

import json

import pytest


@pytest.fixture(scope="module")
def db(role_nodes, require_unit, ah):
    names = role_nodes("db")
    require_unit(ah["etcd"]["service"], names)
    return names


def endpoint(ah, address, node):
    return f"http://{address(node)}:{ah['etcd']['client_port']}"


def test_etcd_active_and_enabled(nodes, db, ah):
    for name in db:
        svc = nodes[name].service(ah["etcd"]["service"])
        assert svc.is_running, f"etcd not running on {name}"
        assert svc.is_enabled, f"etcd not enabled on {name}"


def test_one_cluster_with_every_db_node(nodes, db, ah, address):
    """Every node reports the same cluster id and the full member list (the
    trap: three separate 1-member clusters each report "healthy")."""
    cluster_ids, members = set(), None
    for name in db:
        out = nodes[name].check_output(
            f"ETCDCTL_API=3 etcdctl --endpoints={endpoint(ah, address, name)} member list -w json"
        )
        data = json.loads(out)
        cluster_ids.add(data["header"]["cluster_id"])
        names = sorted(m.get("name", "") for m in data["members"])
        members = members or names
        assert names == members, f"{name} sees members {names}, others {members}"
    assert len(cluster_ids) == 1, f"nodes are in different etcd clusters: {cluster_ids}"
    assert len(members) == len(db), f"members {members} != db nodes {db}"
    assert all(members), f"a member has not started (empty name): {members}"


def test_every_endpoint_healthy(nodes, db, ah, address):
    eps = ",".join(endpoint(ah, address, n) for n in db)
    cmd = f"ETCDCTL_API=3 etcdctl --endpoints={eps} endpoint health -w json"
    data = json.loads(nodes[db[0]].check_output(cmd))
    unhealthy = [e for e in data if not e.get("health")]
    assert not unhealthy, f"unhealthy etcd endpoints: {unhealthy}"
    assert len(data) == len(db)


def test_one_raft_leader(nodes, db, ah, address):
    eps = ",".join(endpoint(ah, address, n) for n in db)
    cmd = f"ETCDCTL_API=3 etcdctl --endpoints={eps} endpoint status -w json"
    data = json.loads(nodes[db[0]].check_output(cmd))
    leaders = {e["Status"]["leader"] for e in data}
    assert len(leaders) == 1 and 0 not in leaders, f"leaders seen: {leaders}"
