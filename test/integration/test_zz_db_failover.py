"""Database failover, destructive: runs last (file name) and only in the lab.

The Patroni leader's node is killed (`labctl kill`: SIGKILL to its PID 1).
A survivor must become the running leader within 30 s and writes through
HAProxy (127.0.0.1:<primary_port>, Airflow's path) must succeed again on
every survivor. The node is then started again: it must rejoin as a
streaming replica, every replica must then stream on the new timeline, and
a re-apply of the db states must report 0 changes and restart nothing.
With pgBackRest on, the repository then holds every WAL segment of both
timelines (`pgbackrest verify`: no gap). Figures for the same
scenario: test/lab/bench.d/db_failover.

Set AIRFLOW_HA_SKIP_FAILOVER=1 to leave the cluster alone.
"""

import json
import subprocess
from pathlib import Path

import drill_lib  # test/lab, on sys.path through conftest
import pytest
from test_pgbackrest import pgbackrest

LABCTL = str(Path(__file__).resolve().parents[1] / "lab" / "labctl")
DB_STATES = "airflow_ha.etcd,airflow_ha.postgresql,airflow_ha.haproxy"
UNITS = ("etcd", "patroni", "haproxy", "keepalived")


@pytest.fixture(scope="module")
def db(db_nodes_to_break):
    return db_nodes_to_break


def cluster(nodes, name, ah):
    conf = ah["postgresql"]["patroni"]["config_file"]
    res = nodes[name].run(f"patronictl -c {conf} list -f json")
    return json.loads(res.stdout) if res.rc == 0 else []


def leader_of(members):
    return next((m["Member"] for m in members if m["Role"] == "Leader" and m["State"] == "running"), None)


def vip_holders(nodes, names, vip):
    out = []
    for name in names:
        res = nodes[name].run(f"ip -4 -o addr show dev {vip['interface']}")
        if res.rc == 0 and f" {vip['address']}/" in res.stdout:
            out.append(name)
    return out


def write(node_exec, name, ah, host="127.0.0.1", port=None):
    pg = ah["postgresql"]
    dsn = (
        f"host={host} port={port or ah['haproxy']['primary_port']} dbname={pg['database']} "
        f"user={pg['user']} connect_timeout=3"
    )
    sql = "create table if not exists ha_failover_check (node text, at timestamptz); insert into ha_failover_check values ('{0}', now())"
    res = node_exec(
        name,
        f'psql -X "{dsn}" -Atc "{sql.format(name)}"',
        env={"PGPASSWORD": ah["secrets"]["airflow_db_password"]},
    )
    return res.rc == 0


def main_pids(nodes, names):
    out = {}
    for name in names:
        for unit in UNITS:
            res = nodes[name].run(f"systemctl show -p MainPID --value {unit}")
            out[f"{name}/{unit}"] = res.stdout.strip()
    return out


def test_leader_killed_failover_rejoin_and_quiet_reapply(
    nodes, node_exec, db, ah, salt, wait_for, etcd_client
):
    old = leader_of(cluster(nodes, db[0], ah))
    assert old, "no running leader before the test"
    survivors = [n for n in db if n != old]
    subprocess.run([LABCTL, "kill", old], check=True, capture_output=True)
    try:

        def new_leader():
            for s in survivors:
                lead = leader_of(cluster(nodes, s, ah))
                if lead and lead != old:
                    return lead
            return None

        lead = wait_for(new_leader, timeout=30, interval=0.5)
        assert lead in survivors, f"no survivor became the running leader within 30 s after {old} died"

        for s in survivors:
            assert wait_for(lambda s=s: write(node_exec, s, ah), timeout=15, interval=0.5), (
                f"writes through HAProxy on {s} still fail after the new leader ({lead}) runs"
            )

        vip = ah.get("vip") or {}
        if vip.get("enabled"):

            def one_holder():
                held = vip_holders(nodes, survivors, vip)
                return held if len(held) == 1 else None

            holders = wait_for(one_holder, 15)
            assert holders, (
                f"VIP {vip['address']} not on exactly one survivor: {vip_holders(nodes, survivors, vip)}"
            )
            assert write(node_exec, survivors[0], ah, host=vip["address"]), "writes through the VIP fail"
    finally:
        subprocess.run([LABCTL, "start", old], check=True, capture_output=True)

    def rejoined():
        members = {m["Member"]: m for m in cluster(nodes, lead, ah)}
        m = members.get(old)
        return m if m and m["Role"] == "Replica" and m["State"] in ("running", "streaming") else None

    m = wait_for(rejoined, timeout=180, interval=2)
    assert m, f"{old} did not rejoin as a replica: {cluster(nodes, lead, ah)}"

    pg_port = ah["postgresql"]["port"]

    def streaming():
        res = node_exec(
            lead,
            f"runuser -u postgres -- psql -X -p {pg_port} -Atc "
            "\"select application_name from pg_stat_replication where state = 'streaming'\"",
        )
        return old in res.stdout.split()

    assert wait_for(streaming, timeout=60, interval=2), f"{lead} does not stream to {old}"

    # every replica, the survivor that followed the new leader too, streams
    # on the new timeline (a survivor that replayed past the switchpoint
    # shows "running" in Patroni but never streams again)
    took, why = drill_lib.wait_whole(db, timeout=120, checks=(drill_lib.db_whole,))
    assert took is not None, f"the database cluster is not whole: {why}\n{drill_lib.db_diagnosis(db)}"

    # etcd on the returning node healthy again before the re-apply
    health = f"{etcd_client.curl} {etcd_client.url('127.0.0.1')}/health"
    assert wait_for(lambda: '"health":"true"' in node_exec(old, health).stdout, 60)

    before = main_pids(nodes, db)
    states = DB_STATES + (",airflow_ha.keepalived" if (ah.get("vip") or {}).get("enabled") else "")
    ret = salt("-L", ",".join(db), "state.apply", states, "queue=True", "-t", "600")
    for name in db:
        assert isinstance(ret.get(name), dict), f"{name}: {ret.get(name)}"
        changed = {k.split("_|-")[1]: v["changes"] for k, v in ret[name].items() if v["changes"]}
        failed = {k.split("_|-")[1]: v["comment"] for k, v in ret[name].items() if v["result"] is not True}
        assert not failed, f"{name}: re-apply failed: {failed}"
        assert not changed, f"{name}: re-apply after the rejoin changed {changed}"
    assert main_pids(nodes, db) == before, "the re-apply restarted a service"


def wal_ranges(verify_output):
    """{timeline: [(first, last) segment numbers]} from `pgbackrest verify`
    at log level detail: one "wal start: ..., wal stop: ..." line per
    continuous range, so a missing segment splits a timeline's range."""
    out = {}
    for line in verify_output.splitlines():
        if "wal start: " not in line:
            continue
        start = line.split("wal start: ")[1].split(",")[0].strip()
        stop = line.split("wal stop: ")[1].split(",")[0].strip()
        out.setdefault(int(start[:8], 16), []).append((segment(start), segment(stop)))
    return out


def segment(name):
    """A WAL file name's segment number (16 MiB segments: 0x100 per log id)."""
    return int(name[8:16], 16) * 0x100 + int(name[16:24], 16)


def test_failover_lost_no_wal_segment(db, pgb, node_exec):
    """After the leader kill above: `pgbackrest check` archives from the new
    leader, and `pgbackrest verify` finds every timeline's WAL in the
    repository without a gap, each new timeline starting where the last one
    stopped (issue 14: a failover during archiving loses no segment)."""
    res = pgbackrest(node_exec, pgb, "--log-level-console=info check", timeout="timeout 300")
    assert res.rc == 0, f"pgbackrest check after the failover: {res.stdout[-800:]} {res.stderr[-800:]}"
    res = pgbackrest(node_exec, pgb, "--log-level-console=detail verify", timeout="timeout 300")
    assert res.rc == 0, f"pgbackrest verify: {res.stdout[-800:]} {res.stderr[-800:]}"
    ranges = wal_ranges(res.stdout)
    assert len(ranges) >= 2, f"no new timeline in the repository after the failover: {ranges}"
    gaps = {tl: r for tl, r in ranges.items() if len(r) != 1}
    assert not gaps, f"WAL missing inside a timeline (ranges per timeline): {gaps}"
    timelines = sorted(ranges)
    for before, after in zip(timelines, timelines[1:], strict=False):
        assert ranges[after][0][0] <= ranges[before][0][1] + 1, (
            f"timeline {after} starts at segment {ranges[after][0][0]:X}, "
            f"after timeline {before} stopped at {ranges[before][0][1]:X}: segments missing"
        )


def fork_segment(history_text):
    """The WAL file name of the old timeline's segment holding the fork point
    of the timeline whose history this is; None when the fork lies on a
    segment boundary (the old timeline then has no shared segment)."""
    rows = [line.split() for line in history_text.splitlines() if line.strip()]
    parent, lsn = int(rows[-1][0]), rows[-1][1]
    hi, lo = (int(x, 16) for x in lsn.split("/"))
    if lo % 2**24 == 0:
        return None
    return f"{parent:08X}{hi:08X}{lo // 2**24:08X}"


def test_old_leader_archived_no_segment_past_the_fork(db, pgb, node_exec):
    """After the leader kill above: for every timeline switch, the old
    timeline's segment holding the fork point is in the repository only as
    the new leader's .partial. The killed leader's own copy of it ends in a
    switch record past the fork (its single-user shutdown before pg_rewind):
    archived, it sent a replica replaying from the archive past the fork,
    never to stream again (the Patroni rewind patches in os.yaml)."""
    stanza = pgb["stanza"]
    res = pgbackrest(node_exec, pgb, f"repo-ls --recurse archive/{stanza}", timeout="timeout 120")
    assert res.rc == 0, f"pgbackrest repo-ls: {res.stdout[-800:]} {res.stderr[-800:]}"
    files = res.stdout.split()
    histories = [f for f in files if f.endswith(".history")]
    assert histories, f"no timeline history in the repository after the failover: {files[:20]}"
    past_fork = []
    for path in histories:
        got = pgbackrest(node_exec, pgb, f"repo-get archive/{stanza}/{path}", timeout="timeout 120")
        assert got.rc == 0, f"pgbackrest repo-get {path}: {got.stderr[-800:]}"
        name = fork_segment(got.stdout)
        if name:
            past_fork += [f for f in files if f.rsplit("/", 1)[-1].startswith(name + "-")]
    assert not past_fork, f"old timelines' fork segments archived whole (not only .partial): {past_fork}"
