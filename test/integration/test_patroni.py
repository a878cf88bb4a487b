"""Patroni/PostgreSQL: one leader, every other db node a streaming replica."""

import json

import pytest


@pytest.fixture(scope="module")
def db(role_nodes, require_unit, ah):
    names = role_nodes("db")
    require_unit(ah["postgresql"]["patroni"]["service"], names)
    return names


def psql(node_exec, node, ah, sql):
    """Run SQL as the local superuser over the unix socket (peer auth)."""
    port = ah["postgresql"]["port"]
    res = node_exec(node, f'runuser -u postgres -- psql -X -p {port} -Atc "{sql}"')
    assert res.rc == 0, f"psql on {node} failed: {res.stderr}"
    return res.stdout.strip()


@pytest.fixture(scope="module")
def members(nodes, db, ah):
    conf = ah["postgresql"]["patroni"]["config_file"]
    out = nodes[db[0]].check_output(f"patronictl -c {conf} list -f json")
    return json.loads(out)


def test_patroni_active_and_enabled(nodes, db, ah):
    for name in db:
        svc = nodes[name].service(ah["postgresql"]["patroni"]["service"])
        assert svc.is_running, f"patroni not running on {name}"
        assert svc.is_enabled, f"patroni not enabled on {name}"


def test_one_leader_and_running_replicas(members, db):
    roles = {m["Member"]: m["Role"] for m in members}
    assert sorted(roles) == sorted(db), f"patroni members {sorted(roles)} != db nodes {db}"
    leaders = [n for n, r in roles.items() if r == "Leader"]
    assert len(leaders) == 1, f"leaders: {leaders} ({members})"
    for m in members:
        if m["Role"] != "Leader":
            assert m["Role"] in ("Replica", "Sync Standby"), m
            assert m["State"] in ("running", "streaming"), m
    assert len({m.get("TL") for m in members}) == 1, f"timelines differ: {members}"


def test_leader_streams_to_every_replica(node_exec, members, ah):
    leader = next(m["Member"] for m in members if m["Role"] == "Leader")
    replicas = sorted(m["Member"] for m in members if m["Role"] != "Leader")
    assert psql(node_exec, leader, ah, "select pg_is_in_recovery()") == "f"
    out = psql(
        node_exec, leader, ah,
        "select application_name from pg_stat_replication where state = 'streaming'",
    )  # fmt: skip
    assert sorted(out.split()) == replicas, f"streaming to {out.split()}, want {replicas}"


def test_replicas_are_in_recovery(node_exec, members, ah):
    for m in members:
        if m["Role"] != "Leader":
            assert psql(node_exec, m["Member"], ah, "select pg_is_in_recovery()") == "t"


def test_airflow_database_exists(node_exec, members, ah):
    leader = next(m["Member"] for m in members if m["Role"] == "Leader")
    pg = ah["postgresql"]
    out = psql(node_exec, leader, ah, "select datname from pg_database")
    assert pg["database"] in out.split(), f"database {pg['database']} missing"
    roles = psql(node_exec, leader, ah, "select rolname from pg_roles")
    assert pg["user"] in roles.split(), f"role {pg['user']} missing"


# --- db layer checks (airflow_ha.postgresql) --------------------------------------------


def test_replicas_have_no_lag(nodes, db, ah, wait_for):
    if len(db) < 2:
        pytest.skip("a single db node has no replicas (single-node kitchen suite)")
    conf = ah["postgresql"]["patroni"]["config_file"]

    def lags():
        data = json.loads(nodes[db[0]].check_output(f"patronictl -c {conf} list -f json"))
        out = {m["Member"]: m.get("Lag in MB") for m in data if m["Role"] != "Leader"}
        return out if out and all(v == 0 for v in out.values()) else None

    assert wait_for(lags, timeout=30), "a replica lags behind the leader"


def test_config_file_is_private(nodes, db, ah):
    conf = ah["postgresql"]["patroni"]["config_file"]
    for name in db:
        f = nodes[name].file(conf)
        assert f.user == "postgres" and f.mode == 0o600, f"{conf} on {name}: {f.user} {oct(f.mode)}"


def test_rest_api_unsafe_endpoints_need_auth(node_exec, db, ah, address):
    """An empty PATCH /config without credentials is refused (harmless if not)."""
    port = ah["postgresql"]["patroni"]["rest_port"]
    for name in db:
        res = node_exec(
            name,
            f"curl -s -o /dev/null -w '%{{http_code}}' -X PATCH -d '{{}}' http://{address(name)}:{port}/config",
        )
        assert res.stdout.strip() == "401", f"{name}: unauthenticated PATCH answered {res.stdout}"


def test_dynamic_config_matches_pillar(node_exec, db, ah, address):
    p = ah["postgresql"]["patroni"]
    res = node_exec(db[0], f"curl -s http://{address(db[0])}:{p['rest_port']}/config")
    conf = json.loads(res.stdout)
    for key in ("ttl", "loop_wait", "retry_timeout", "maximum_lag_on_failover"):
        assert conf.get(key) == p[key], f"DCS {key}={conf.get(key)}, pillar {p[key]}"
    assert conf["postgresql"]["use_pg_rewind"] is p["use_pg_rewind"]


def test_patroni_module_agrees_with_patronictl(salt, members, db):
    leader = next(m["Member"] for m in members if m["Role"] == "Leader")
    got = salt("-L", ",".join(db), "patroni.leader")
    assert got == {n: leader for n in db}, got
    is_leader = salt("-L", ",".join(db), "patroni.is_leader")
    assert is_leader == {n: n == leader for n in db}, is_leader


def test_wrong_password_is_refused(node_exec, db, ah, address):
    pg = ah["postgresql"]
    dsn = f"host={address(db[0])} port={pg['port']} dbname={pg['database']} user={pg['user']}"
    res = node_exec(db[0], f'psql -X "{dsn}" -Atc "select 1"', env={"PGPASSWORD": "not-the-password"})
    assert res.rc != 0 and "password authentication failed" in res.stderr, res.stderr
