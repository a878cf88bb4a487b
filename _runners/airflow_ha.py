"""
``salt-run airflow_ha.health``: the whole cluster's health in one call.

Why a runner: only the master can ask every node at once and notice the one
that does not answer; Salt's ``manage.status`` tells which minions answer, not
whether the cluster they form is healthy. Each node grades its own
components (``airflow_ha_health.node``, ``_modules/airflow_ha_health.py``);
this runner adds what no single node can tell (a node that did not answer,
one etcd leader and quorum, exactly one Patroni leader, exactly one running
dag-processor) and the verdict: ``ok``, ``degraded`` (something is wrong but
the cluster works) or ``down`` (a cluster-wide service has no quorum, no
leader or no dag-processor). The exit code is 0 only when the verdict is ok.

The aggregation (:func:`summarize`) is a pure function of the minions'
returns, unit-tested in test/unit/runners/test_airflow_ha_runner.py.
"""

import salt.client

OK, DEGRADED, DOWN = "ok", "degraded", "down"
RANK = {OK: 0, DEGRADED: 1, DOWN: 2}
CLUSTER = "cluster"


def _row(component, node, status, reason):
    return {"component": component, "node": node, "status": status, "reason": reason}


def _etcd_cluster(members):
    """members: {node: etcd grade} of the db nodes that answered; total: db nodes."""
    total = len(members)
    healthy = sorted(n for n, g in members.items() if g["status"] == OK)
    by_id = {(g.get("detail") or {}).get("member_id"): n for n, g in members.items()}
    leaders = {(g.get("detail") or {}).get("leader_id") for n, g in members.items() if n in healthy}
    leaders.discard(None)
    leaders.discard("")
    quorum = total // 2 + 1
    if len(healthy) < quorum:
        return DOWN, f"{len(healthy)} of {total} members healthy: no quorum (needs {quorum})"
    if len(leaders) > 1:
        return DEGRADED, f"members see different leaders: {sorted(by_id.get(i, i) for i in leaders)}"
    leader = by_id.get(next(iter(leaders)), "unknown") if leaders else "unknown"
    if len(healthy) < total:
        down = sorted(set(members) - set(healthy))
        return (
            DEGRADED,
            f"{len(healthy)} of {total} members healthy (not: {', '.join(down)}), leader {leader}",
        )
    return OK, f"{total} of {total} members healthy, leader {leader}"


def _patroni_cluster(members):
    leaders = set()
    for grade in members.values():
        leaders.update((grade.get("detail") or {}).get("leaders_seen") or [])
    if not leaders:
        return DOWN, "no running Patroni leader: writes fail"
    if len(leaders) > 1:
        return DEGRADED, f"more than one leader seen: {', '.join(sorted(leaders))}"
    return OK, f"one leader: {next(iter(leaders))}"


def _dag_processor_cluster(holders):
    running = sorted(n for n, held in holders.items() if held)
    if not running:
        return (
            DOWN,
            f"no dag-processor runs (candidates: {', '.join(sorted(holders))}): DAG files are not parsed",
        )
    if len(running) > 1:
        return DEGRADED, f"{len(running)} dag-processors run ({', '.join(running)}): only one is supported"
    return OK, f"held by {running[0]}"


def summarize(returns, timeout=None):
    """
    The report from ``returns`` ({minion: {"ret": ..., "retcode": n}}, what
    LocalClient.cmd(full_return=True) gives; a missing minion did not answer):
    ``verdict``, ``retcode``, ``table`` (one line per row, worst first) and
    ``components`` {component: {node: {status, reason}}}.
    """
    answered, failed = {}, {}
    for minion, item in returns.items():
        ret = item.get("ret") if isinstance(item, dict) else item
        if isinstance(ret, dict) and ret.get("member") is True:
            answered[minion] = ret
        elif not (isinstance(ret, dict) and ret.get("member") is False):
            failed[minion] = str(ret)[:300]
    expected = sorted({n for ret in answered.values() for n in ret.get("nodes", [])} | set(answered))
    rows = []
    for node in expected:
        if node in failed and not failed[node].startswith("Minion did not return"):
            rows.append(_row("node", node, DOWN, f"the health check failed: {failed[node]}"))
        elif node not in answered:
            wait = f" within {timeout} s" if timeout else ""
            rows.append(_row("node", node, DOWN, f"no answer{wait}: node down or salt-minion stopped"))
    for node, ret in sorted(answered.items()):
        for comp, grade in ret["components"].items():
            rows.append(_row(comp, node, grade["status"], grade["reason"]))
    if not answered:
        rows.append(_row("node", CLUSTER, DOWN, "no node of the cluster answered"))

    def graded(comp):
        return {n: r["components"][comp] for n, r in answered.items() if comp in r["components"]}

    if graded("etcd"):
        etcd = graded("etcd")
        for node in expected:  # a db node that did not answer is a member down
            if node not in answered and any(node in r.get("nodes", []) for r in answered.values()):
                etcd.setdefault(node, {"status": DOWN})
        rows.append(_row("etcd", CLUSTER, *_etcd_cluster(etcd)))
    if graded("patroni"):
        rows.append(_row("patroni", CLUSTER, *_patroni_cluster(graded("patroni"))))
    holders = {
        n: g["detail"]["dag_processor_holder"]
        for n, g in graded("airflow").items()
        if "dag_processor_holder" in (g.get("detail") or {})
    }
    if holders:
        rows.append(_row("dag-processor", CLUSTER, *_dag_processor_cluster(holders)))
    worst = max((RANK[r["status"]] for r in rows), default=0)
    cluster_down = any(r["node"] == CLUSTER and r["status"] == DOWN for r in rows)
    verdict = DOWN if cluster_down else (DEGRADED if worst else OK)
    rows.sort(key=lambda r: (-RANK[r["status"]], r["component"], r["node"]))
    components = {}
    for r in rows:
        components.setdefault(r["component"], {})[r["node"]] = {"status": r["status"], "reason": r["reason"]}
    table = [f"{r['status']:<9}{r['component']:<14}{r['node']:<10}{r['reason']}" for r in rows]
    return {
        "verdict": verdict,
        "retcode": 0 if verdict == OK else 1,
        "table": table,
        "components": components,
    }


def health(tgt="*", tgt_type="glob", timeout=60, backup_max_age=93600):
    """
    Ask every node (``tgt``) for ``airflow_ha_health.node`` and report per
    component per node: ok / degraded / down with the reason, and the
    verdict. Exits non-zero unless the verdict is ok.

    CLI Example:

    .. code-block:: bash

        salt-run airflow_ha.health
        salt-run airflow_ha.health --out=json
        salt-run airflow_ha.health tgt='node*' timeout=30
    """
    client = salt.client.get_local_client(mopts=__opts__)
    returns = client.cmd(
        tgt,
        "airflow_ha_health.node",
        kwarg={"backup_max_age": backup_max_age},
        timeout=int(timeout),
        tgt_type=tgt_type,
        full_return=True,
    )
    report = summarize(returns or {}, timeout=timeout)
    __context__["retcode"] = report["retcode"]
    return report
