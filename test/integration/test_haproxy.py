"""HAProxy (+ keepalived): 5000 -> the Patroni leader from every node, 5001 ->
replicas; the stats page answers; the VIP sits on exactly one node."""

import pytest


@pytest.fixture(scope="module")
def db(role_nodes, require_unit, ah):
    names = role_nodes("db")
    require_unit(ah["haproxy"]["service"], names)
    return names


def query(node_exec, node, ah, host, port, sql):
    """psql as the airflow user over TCP; the password goes through env."""
    pg = ah["postgresql"]
    dsn = f"host={host} port={port} dbname={pg['database']} user={pg['user']} connect_timeout=10"
    res = node_exec(
        node,
        f'psql -X "{dsn}" -Atc "{sql}"',
        env={"PGPASSWORD": ah["secrets"]["airflow_db_password"]},
    )
    assert res.rc == 0, f"psql {host}:{port} from {node} failed: {res.stderr}"
    return res.stdout.strip()


def test_haproxy_active_and_enabled(nodes, db, ah):
    for name in db:
        svc = nodes[name].service(ah["haproxy"]["service"])
        assert svc.is_running and svc.is_enabled, f"haproxy on {name}"


def test_primary_port_reaches_the_leader(node_exec, db, ah, address):
    port = ah["haproxy"]["primary_port"]
    for name in db:
        got = query(node_exec, name, ah, address(name), port, "select pg_is_in_recovery()")
        assert got == "f", f"{name}:{port} reached a replica"


def test_replica_port_reaches_replicas(node_exec, db, ah, address):
    if len(db) < 2:
        pytest.skip("single db node: no replicas")
    port = ah["haproxy"]["replica_port"]
    for name in db:
        got = query(node_exec, name, ah, address(name), port, "select pg_is_in_recovery()")
        assert got == "t", f"{name}:{port} reached the leader"


def test_stats_page(nodes, db, ah, address):
    port = ah["haproxy"]["stats_port"]
    for name in db:
        code = nodes[name].check_output(
            f"curl -s -o /dev/null -w '%{{http_code}}' http://{address(name)}:{port}/"
        )
        assert code == "200", f"stats on {name}:{port} answered {code}"


def test_vip_on_exactly_one_node(nodes, db, ah, require_unit):
    vip = ah.get("vip") or {}
    if not vip.get("enabled"):
        pytest.skip("vip disabled in pillar")
    require_unit(ah["keepalived"]["service"], db)
    holders = [
        n for n in db
        if f" {vip['address']}/" in nodes[n].check_output(f"ip -4 -o addr show dev {vip['interface']}")
    ]  # fmt: skip
    assert len(holders) == 1, f"VIP {vip['address']} held by {holders}"
