"""
One node's view of the airflow_ha cluster, for ``salt-run airflow_ha.health``.

Why custom: Salt has no module that knows which of etcd, Patroni, HAProxy,
RabbitMQ, csync2, Airflow and pgBackRest a node runs, nor what "healthy" means
for each in this formula (one running Patroni leader, one HAProxy primary
server UP, every broker running with no partition...). This module asks the
formula's own modules (``airflow_ha_etcd``, ``patroni``, ``airflow_ha_rabbitmq``,
``csync2``, ``airflow``, ``pgbackrest``) and the node itself (HAProxy's admin
socket, ``/proc`` for the dag-processor that holds the etcd lock) for the
components this node's roles hold, and grades each: ``ok``, ``degraded`` (it
runs but something is wrong) or ``down`` (it does not answer). The runner
(``_runners/airflow_ha.py``) adds what only the cluster can tell: one etcd
leader, one Patroni leader, one dag-processor.

Settings come from ``airflow_ha.settings`` (masked: no secret is read or
returned). A check that fails is a grade with its reason, not an error.
"""

import socket
import time

from salt.exceptions import CommandExecutionError

__virtualname__ = "airflow_ha_health"

OK, DEGRADED, DOWN = "ok", "degraded", "down"
HAPROXY_SOCKET = "/run/haproxy/admin.sock"
LEADER_ROLES = ("leader", "master", "primary", "standby_leader")
REPLICA_STATES = ("running", "streaming")


def __virtual__():
    return __virtualname__


def _grade(status, reason, **detail):
    return {"status": status, "reason": reason, **({"detail": detail} if detail else {})}


def _etcd(ah):
    e = ah["etcd"]
    tls = e["tls"]
    args = {}
    if tls["enabled"]:
        args = {"cacert": tls["ca_file"], "cert": tls["cert_file"], "key": tls["key_files"]["etcd"]}
    url = e["local_url"]
    healthy = __salt__["airflow_ha_etcd.health"](url, timeout=3, **args)
    status = {}
    try:
        context = __utils__["ah_http.tls_context"](**args) if args else None
        code, body = __utils__["ah_http.request"](
            "POST", url + "/v3/maintenance/status", 3, body={}, context=context
        )
        status = __utils__["ah_health.parse_json"](body) if code == 200 else {}
    except CommandExecutionError:
        pass
    member = str((status.get("header") or {}).get("member_id", ""))
    leader = str(status.get("leader", ""))
    facts = {"member_id": member, "leader_id": leader, "is_leader": bool(member) and member == leader}
    if not healthy:
        return _grade(DEGRADED, "member answers but reports no leader (no quorum)", **facts)
    role = "the raft leader" if facts["is_leader"] else "a follower"
    return _grade(OK, f"healthy, {role}", **facts)


def _patroni(ah):
    p = ah["postgresql"]["patroni"]
    doc = __salt__["patroni.cluster"](host=ah["address"], port=p["rest_port"], timeout=3)
    me = next((m for m in doc["members"] if m.get("name") == ah["minion_id"]), None)
    leaders = sorted(
        m["name"] for m in doc["members"] if m.get("role") in LEADER_ROLES and m.get("state") == "running"
    )
    facts = {"leaders_seen": leaders}
    if me is None:
        return _grade(DOWN, "this node is not a member of the Patroni cluster", **facts)
    role, state, lag = me.get("role"), me.get("state"), me.get("lag")
    facts.update(role=role, state=state, lag=lag, timeline=me.get("timeline"))
    if role in LEADER_ROLES:
        if state != "running":
            return _grade(DEGRADED, f"leader in state {state}", **facts)
        return _grade(OK, f"leader, timeline {me.get('timeline')}", **facts)
    if state not in REPLICA_STATES:
        return _grade(DEGRADED, f"{role} in state {state}", **facts)
    limit = p["maximum_lag_on_failover"]
    if not isinstance(lag, int):
        return _grade(DEGRADED, f"{role} with unknown lag ({lag!r})", **facts)
    if lag > limit:
        return _grade(DEGRADED, f"{role} lags {lag} bytes (> {limit}: cannot be promoted)", **facts)
    return _grade(OK, f"{role} {state}, lag {lag} bytes", **facts)


def _haproxy_stat():
    """HAProxy's ``show stat`` CSV from the admin socket, as dicts."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(3)
            sock.connect(HAPROXY_SOCKET)
            sock.sendall(b"show stat\n")
            chunks = []
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                chunks.append(data)
    except OSError as exc:
        raise CommandExecutionError(f"cannot read HAProxy's stats from {HAPROXY_SOCKET}: {exc}") from None
    return __utils__["ah_health.parse_haproxy_csv"](b"".join(chunks).decode("utf-8", "replace"))


def _haproxy(ah):
    rows = [r for r in _haproxy_stat() if r.get("pxname") == "postgres_primary"]
    servers = {r["svname"]: r.get("status", "") for r in rows if r["svname"] not in ("FRONTEND", "BACKEND")}
    up = sorted(n for n, s in servers.items() if s.startswith("UP"))
    facts = {"primary_up": up}
    if not up:
        return _grade(DOWN, "postgres_primary: no server UP (no Patroni leader answers /primary)", **facts)
    if len(up) > 1:
        return _grade(DEGRADED, f"postgres_primary: {len(up)} servers UP ({', '.join(up)})", **facts)
    return _grade(OK, f"primary backend -> {up[0]}", **facts)


def _rabbitmq(ah):
    want = sorted(__salt__["airflow_ha_rabbitmq.node_name"](m["id"]) for m in ah["members"]["broker"])
    st = __salt__["airflow_ha_rabbitmq.cluster_status"]()
    facts = {"running": st["running"], "partitions": st["partitions"], "alarms": st["alarms"]}
    missing = [n for n in want if n not in st["running"]]
    if st["partitions"]:
        return _grade(DEGRADED, f"network partition: {st['partitions']}", **facts)
    if missing:
        return _grade(DEGRADED, f"not running: {', '.join(missing)}", **facts)
    if st["alarms"]:
        return _grade(DEGRADED, f"alarms: {st['alarms']}", **facts)
    return _grade(OK, f"{len(want)} of {len(want)} brokers running, no partition", **facts)


def _csync2(ah):
    st = __salt__["csync2.status"]()
    conflicts = __salt__["csync2.conflicts"](since_minutes=60, check=False)
    last = st.get("last_sync") or {}
    facts = {
        "dirty": st.get("dirty_count"),
        "unresolved": sorted(conflicts["unresolved"]),
        "last_sync_age": last.get("age_seconds"),
    }
    if not st.get("healthy"):
        return _grade(DEGRADED, st.get("comment", "csync2 reports a problem"), **facts)
    if conflicts["unresolved"]:
        return _grade(DEGRADED, conflicts["comment"], **facts)
    if st.get("dirty_count"):
        return _grade(DEGRADED, f"{st['dirty_count']} file(s) waiting to be pushed", **facts)
    return _grade(OK, st.get("comment", "in sync"), **facts)


def _dag_processor_running():
    """True when an ``airflow dag-processor`` (not its lock wrapper) runs here."""
    return __utils__["ah_health.dag_processor_running"]()


def _airflow(ah):
    report = __salt__["airflow.health"]()
    bad = sorted(
        k for k, v in report.items() if isinstance(v, dict) and v.get("enabled") and not v.get("healthy")
    )
    units = sorted(k for k, v in report.items() if isinstance(v, dict) and v.get("enabled"))
    facts = {"units": units, "unhealthy": bad}
    if "dag_processor" in ah["roles"] and ah["airflow"]["major"] >= 3:
        facts["dag_processor_holder"] = _dag_processor_running()
    if not units:
        return _grade(DOWN, "no Airflow unit is enabled here", **facts)
    if bad:
        why = []
        for name in bad:
            entry = report[name]
            why.append(
                f"{name} ({'http ' + str(entry.get('http_status')) if entry.get('active') else 'inactive'})"
            )
        return _grade(DEGRADED, "unhealthy: " + ", ".join(why), **facts)
    return _grade(OK, f"{len(units)} unit(s) healthy", **facts)


def _backup(ah, max_age):
    info = __salt__["pgbackrest.info"](archive_times=False)
    last = info.get("last_backup") or {}
    facts = {"last_backup": last.get("label"), "age": last.get("age")}
    if not last:
        return _grade(DEGRADED, f"no valid backup ({info.get('status')})", **facts)
    if last.get("age") is not None and last["age"] > max_age:
        return _grade(DEGRADED, f"last backup {last['label']} is {last['age'] // 3600} h old", **facts)
    return _grade(OK, f"last backup {last['label']}, {int(last.get('age') or 0)} s ago", **facts)


def node(backup_max_age=93600):
    """
    This node's components, each graded ``ok`` / ``degraded`` / ``down`` with
    a reason (and ``detail``: the facts the runner compares across nodes),
    plus ``nodes``: the cluster's node ids (so the runner can name a node that
    did not answer). A minion outside ``airflow_ha:nodes`` answers
    ``{"member": False}``.

    backup_max_age
        Seconds: an older newest backup is ``degraded`` (default 26 h: the
        daily differential plus slack). Only on the pgBackRest repository node.

    CLI Example:

    .. code-block:: bash

        salt 'node*' airflow_ha_health.node
    """
    ah = __salt__["airflow_ha.settings"]()
    if ah["errors"]:
        raise CommandExecutionError("airflow_ha pillar problems: " + "; ".join(ah["errors"]))
    if __opts__["id"] not in ah["nodes"]:
        return {"member": False}
    checks = {}
    if "db" in ah["roles"]:
        checks["etcd"] = _etcd
        checks["patroni"] = _patroni
    checks["haproxy"] = _haproxy
    if "broker" in ah["roles"]:
        checks["rabbitmq"] = _rabbitmq
    checks["csync2"] = _csync2
    checks["airflow"] = _airflow
    if ah["pgbackrest"]["repo_here"]:
        checks["backup"] = lambda a: _backup(a, int(backup_max_age))
    out = {}
    for name, check in checks.items():
        start = time.monotonic()
        try:
            out[name] = check(ah)
        except CommandExecutionError as exc:
            out[name] = _grade(DOWN, str(exc))
        out[name]["seconds"] = round(time.monotonic() - start, 2)
    return {"member": True, "node": __opts__["id"], "nodes": sorted(ah["nodes"]), "components": out}
