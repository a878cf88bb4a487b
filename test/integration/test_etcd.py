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


# --- db layer checks (airflow_ha.etcd) --------------------------------------------------


def test_member_lives_in_the_formula_data_dir(nodes, db, ah):
    """The package's default 1-member bootstrap never ran or was cleared: the
    member's data is in the formula's data_dir, /var/lib/etcd/default is gone."""
    data_dir = ah["etcd"]["data_dir"]
    for name in db:
        host = nodes[name]
        assert host.file(f"{data_dir}/member").is_directory, f"{data_dir}/member missing on {name}"
        assert host.file(data_dir).mode & 0o077 == 0, f"{data_dir} readable by others on {name}"
        if data_dir.rstrip("/") != "/var/lib/etcd/default":
            assert not host.file("/var/lib/etcd/default").exists, f"default bootstrap left on {name}"


def test_config_names_this_node_and_every_peer(nodes, db, ah, address):
    peers = ",".join(f"{n}=http://{address(n)}:{ah['etcd']['peer_port']}" for n in db)
    for name in db:
        conf = nodes[name].file(ah["etcd"]["config_file"]).content_string
        assert f'ETCD_NAME="{name}"' in conf
        assert f'ETCD_INITIAL_CLUSTER="{peers}"' in conf, f"{name}: initial cluster differs"
        assert f"http://127.0.0.1:{ah['etcd']['client_port']}" in conf, f"{name}: no localhost client URL"


def test_local_client_url_answers_health(node_exec, db, ah):
    """Patroni and the wait state use the node's own member on 127.0.0.1."""
    for name in db:
        res = node_exec(name, f"curl -s http://127.0.0.1:{ah['etcd']['client_port']}/health")
        assert json.loads(res.stdout).get("health") == "true", f"{name}: {res.stdout}"
