"""PgBouncer variant, destructive: runs last (file name) and only in the lab.

The cluster is applied with `pgbouncer:enabled: true` (a pillar override):
every node's Airflow then reaches the database through its local PgBouncer
(transaction pooling) while the formula's own admin sessions (migrations
under advisory locks, users) go around it to HAProxy. The Patroni leader's
node is killed: writes through PgBouncer on the survivors come back without
restarting anything, and Airflow on the survivors is healthy afterwards:
the API server, worker and Flower never restarted by systemd, the
scheduler, triggerer and dag-processor at most once (see the test). The
cluster is applied back to the lab's pillar at the end. Figures: `labctl drill pgbouncer_failover`.

Set AIRFLOW_HA_SKIP_FAILOVER=1 to leave the cluster alone. Runs in `make
drills` (drills.d/pgbouncer_failover sets AIRFLOW_HA_PGBOUNCER_DRILL=1), not
in the suite: its two applies with restarts (~7 min on the 2-core host) took
`make test` past its 45 minutes.
"""

import json
import os
import subprocess

import drill_lib  # test/lab, on sys.path through conftest
import pytest
from test_zz_db_failover import LABCTL, cluster, leader_of, write

ON = {"airflow_ha": {"pgbouncer": {"enabled": True}}}


def apply(salt, *extra):
    ret = salt("*", "state.apply", "airflow_ha", "queue=True", "-t", "900", *extra)
    failed = {
        node: [
            k.split("_|-")[1] for k, v in (r or {}).items() if isinstance(v, dict) and v["result"] is not True
        ]
        for node, r in ret.items()
    }
    assert all(isinstance(r, dict) for r in ret.values()), f"apply returned {ret}"
    return {n: f for n, f in failed.items() if f}


@pytest.fixture(scope="module")
def pgbouncer(db_nodes_to_break, salt, ah):
    if os.environ.get("AIRFLOW_HA_PGBOUNCER_DRILL") != "1":
        pytest.skip("runs in make drills (labctl drill pgbouncer_failover)")
    failed = apply(salt, "pillar=" + json.dumps(ON))
    try:
        assert not failed, f"the apply with pgbouncer:enabled failed: {failed}"
        yield {**ah["pgbouncer"], "enabled": True}
    finally:
        back = apply(salt)
        assert not back, f"the apply back to the lab's pillar failed: {back}"


def test_airflow_goes_through_pgbouncer_and_admin_sessions_around_it(pgbouncer, nodes, salt, ah):
    cfg = f"{ah['airflow']['home']}/airflow.cfg"
    port = pgbouncer["port"]
    for name in nodes:
        assert nodes[name].service(ah["pgbouncer"]["service"]).is_running
        # counts only: the URL holds the password
        res = nodes[name].run(f"grep -c '@127.0.0.1:{port}/' {cfg}")
        assert res.stdout.strip() not in ("", "0"), f"{name}: airflow.cfg does not name PgBouncer's port"
        res = nodes[name].run(f"grep -cx 'migration_db_port = {ah['haproxy']['primary_port']}' {cfg}")
        assert res.stdout.strip() == "1", f"{name}: no [airflow_ha] migration_db_port in airflow.cfg"
        res = nodes[name].run(f"ss -Htn state established '( dport = :{port} )'")
        assert res.stdout.strip(), f"{name}: no client connection to PgBouncer"
    # the venv helper reads the schema through the direct port (advisory locks work there)
    pending = salt("*", "airflow.db_pending_migrations")
    assert all(v == [] for v in pending.values()), pending


def test_leader_kill_through_pgbouncer_needs_no_airflow_restart(
    pgbouncer, nodes, node_exec, db_nodes_to_break, ah, wait_for
):
    db = db_nodes_to_break
    old = leader_of(cluster(nodes, db[0], ah))
    assert old, "no running leader before the test"
    survivors = [n for n in db if n != old]
    before = {n: drill_lib.restarts(n) for n in survivors}
    subprocess.run([LABCTL, "kill", old], check=True, capture_output=True)
    try:
        for s in survivors:
            assert wait_for(
                lambda s=s: write(node_exec, s, ah, port=pgbouncer["port"]), timeout=45, interval=0.5
            ), f"writes through PgBouncer on {s} still fail 45 s after {old} died"
    finally:
        subprocess.run([LABCTL, "start", old], check=True, capture_output=True)

    def healthy(s):
        address = ah["nodes"][s]["address"]
        res = nodes[s].run(f"curl -s -m 5 http://{address}:{ah['airflow']['api_port']}/api/v2/monitor/health")
        try:
            health = json.loads(res.stdout)
        except ValueError:
            return False
        return all(health.get(k, {}).get("status") == "healthy" for k in ("metadatabase", "scheduler"))

    for s in survivors:
        assert wait_for(lambda s=s: healthy(s), timeout=90, interval=2), (
            f"{s}: Airflow not healthy after the failover"
        )
    after = {n: drill_lib.restarts(n) for n in survivors}

    # The units that may be started again once, and why: drill_lib. CI saw
    # the scheduler's on both survivors once.
    may_restart = drill_lib.MAY_RESTART_ON_DB_ERROR
    for s in survivors:
        for unit in may_restart & set(after[s]):
            assert after[s][unit] - before[s].get(unit, 0) <= 1, f"{s}: {unit} restarted more than once"
            assert wait_for(lambda s=s, unit=unit: nodes[s].service(unit).is_running, timeout=60), (
                f"{s}: {unit} not running again after the failover"
            )

    def db_clients(counts):
        return {u: c for u, c in counts.items() if u not in may_restart}

    before = {n: db_clients(c) for n, c in before.items()}
    after = {n: db_clients(c) for n, c in after.items()}
    assert after == before, f"Airflow units restarted by systemd during the failover: {before} -> {after}"

    def rejoined():
        m = {m["Member"]: m for m in cluster(nodes, survivors[0], ah)}.get(old)
        return m if m and m["Role"] == "Replica" and m["State"] in ("running", "streaming") else None

    assert wait_for(rejoined, timeout=180, interval=2), f"{old} did not rejoin as a replica"
