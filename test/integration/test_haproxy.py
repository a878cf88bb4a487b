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


# --- db layer checks (airflow_ha.haproxy, keepalived, pgbouncer) -------------------------


def test_writes_through_local_primary_port(node_exec, db, ah):
    """Airflow's path: 127.0.0.1:<primary_port> on every node accepts writes."""
    port = ah["haproxy"]["primary_port"]
    query(node_exec, db[0], ah, "127.0.0.1", port, "create table if not exists ha_write_check (node text)")
    for name in db:
        got = query(
            node_exec, name, ah, "127.0.0.1", port,
            f"insert into ha_write_check values ('{name}') returning node",
        )  # fmt: skip
        assert got.splitlines()[0] == name, got


def test_stats_show_one_primary_and_the_replicas(node_exec, db, ah, address, wait_for):
    port = ah["haproxy"]["stats_port"]

    def up(name):
        csv = node_exec(name, f"curl -s 'http://{address(name)}:{port}/;csv'").stdout
        rows = [line.split(",") for line in csv.splitlines() if not line.startswith("#")]
        return {
            px: sorted(
                r[1] for r in rows if r[0] == px and r[1] not in ("FRONTEND", "BACKEND") and r[17] == "UP"
            )
            for px in ("postgres_primary", "postgres_replicas")
        }

    def one_primary(name):
        seen = up(name)
        return seen if len(seen["postgres_primary"]) == 1 else None

    for name in db:
        seen = wait_for(lambda n=name: one_primary(n), 15)
        assert seen, f"{name}: postgres_primary has not exactly one server UP: {up(name)}"
        assert len(seen["postgres_replicas"]) == len(db) - 1, seen
        assert seen["postgres_primary"][0] not in seen["postgres_replicas"]


def test_api_frontend_lists_every_api_node(nodes, db, ah, role_nodes, address):
    api = role_nodes("api")
    if not api:
        pytest.skip("no api node")
    port = ah["haproxy"]["api_port"]
    for name in db:
        conf = nodes[name].file(ah["haproxy"]["config_file"]).content_string
        assert f"bind 127.0.0.1:{port}" in conf
        for a in api:
            assert f"server {a} {address(a)}:{ah['airflow']['api_port']} check" in conf


def test_vip_reaches_the_leader(node_exec, db, ah):
    vip = ah.get("vip") or {}
    if not vip.get("enabled"):
        pytest.skip("vip disabled in pillar")
    for name in db:
        got = query(
            node_exec, name, ah, vip["address"], ah["haproxy"]["primary_port"], "select pg_is_in_recovery()"
        )
        assert got == "f", f"VIP from {name} reached a replica"


def test_pgbouncer_pools_to_the_leader(node_exec, db, ah):
    if not (ah.get("pgbouncer") or {}).get("enabled"):
        pytest.skip("pgbouncer disabled in pillar")
    for name in db:
        got = query(node_exec, name, ah, "127.0.0.1", ah["pgbouncer"]["port"], "select pg_is_in_recovery()")
        assert got == "f", f"pgbouncer on {name} reached a replica"
