"""
Patroni states. ``leader_running`` changes nothing: it holds the state run
until the cluster has a running leader, so that one ``state.apply`` on fresh
nodes converges the whole cluster; ``dynamic_config`` keeps the DCS settings
equal to the pillar. (etcd's quorum wait is ``airflow_ha_etcd.healthy``.)

Why custom code: Salt's ``http.wait_for_successful_query`` can poll a URL but
reports ``result: None`` on every ``test=True`` run (even when the condition
already holds), and cannot tell from Patroni's JSON whether a *running*
leader exists. These states check the condition in test mode too and report
the truth: ``True`` when it holds, ``None`` when the real run would wait.

Shape: read (poll) -> compare -> test mode -> (nothing to act on) -> no changes.
"""

from salt.exceptions import CommandExecutionError

__virtualname__ = "patroni"


def __virtual__():
    if "patroni.cluster" in __salt__:
        return __virtualname__
    return False, "patroni state: the patroni execution module is not available"


def _ret(name):
    return {"name": name, "result": False, "changes": {}, "comment": ""}


def leader_running(name, timeout=300, interval=3, host=None, port=None, config_file=None):
    """
    Wait until the Patroni cluster has a running leader.

    name
        A label (e.g. the cluster scope); only used in messages.
    timeout
        Seconds to wait before failing (default 300).
    interval
        Seconds between two polls of ``GET /cluster`` (default 3).
    host, port, config_file
        Passed to ``patroni.leader`` (default: this node's REST API).

    .. code-block:: yaml

        airflow_ha-postgresql-wait-leader:
          patroni.leader_running:
            - name: airflow-ha
            - timeout: 300
    """

    def check():
        leader = __salt__["patroni.leader"](host=host, port=port, config_file=config_file)
        return leader is not None, leader

    comments = {
        "held": lambda detail: f"Patroni cluster {name}: {detail} is the running leader",
        "pending": lambda detail, limit: (
            f"Patroni cluster {name} has no running leader yet ({detail or 'none elected'});"
            f" would wait up to {limit:.0f} s"
        ),
        "failed": lambda detail, waited: (
            f"Patroni cluster {name}: no running leader after {waited:.0f} s "
            f"(last answer: {detail or 'no leader elected'}). Check `patronictl list` and "
            "`journalctl -u patroni` on the db nodes; etcd needs a quorum of db nodes up."
        ),
    }
    return __utils__["ah_wait.wait"](name, check, timeout, interval, bool(__opts__["test"]), **comments)


def _same(want, have):
    """Leaf comparison tolerant of how Patroni stores values (300 vs "300", on vs True)."""
    if isinstance(want, bool) or isinstance(have, bool):
        truth = {"true": True, "on": True, "false": False, "off": False}
        w = truth.get(str(want).lower(), want)
        h = truth.get(str(have).lower(), have)
        return w == h
    return str(want) == str(have)


def _diff(want, have, path=""):
    """(patch, changes): the part of ``want`` that ``have`` lacks, and {path: {old, new}}.
    A ``None`` in ``want`` means "absent": patched (PATCH null removes a key) only when set."""
    patch, changes = {}, {}
    for key, value in want.items():
        where = f"{path}{key}"
        current = have.get(key) if isinstance(have, dict) else None
        if value is None:
            if current is not None:
                patch[key] = None
                changes[where] = {"old": current, "new": None}
        elif isinstance(value, dict):
            sub_patch, sub_changes = _diff(value, current if isinstance(current, dict) else {}, where + ".")
            if sub_patch:
                patch[key] = sub_patch
                changes.update(sub_changes)
        elif current is None or not _same(value, current):
            patch[key] = value
            changes[where] = {"old": current, "new": value}
    return patch, changes


def dynamic_config(name, config, host=None, port=None, config_file=None):
    """
    Make the cluster's dynamic configuration (kept in the DCS; what
    ``bootstrap.dcs`` seeds once) contain ``config``: keys not listed are left
    alone. The change is a ``PATCH /config``, as ``patronictl edit-config``
    does; Patroni applies it on every member within one loop_wait.

    name
        A label (e.g. the cluster scope).
    config
        Dict: ttl, loop_wait, retry_timeout, maximum_lag_on_failover,
        postgresql: {use_pg_rewind, parameters: {...}}, ...

    Run it on one node (the formula guards it with ``patroni.is_leader``).

    .. code-block:: yaml

        airflow_ha-postgresql-dynamic-config:
          patroni.dynamic_config:
            - name: airflow-ha
            - config: {ttl: 20, loop_wait: 5, retry_timeout: 5}
    """
    ret = _ret(name)
    if not isinstance(config, dict) or not config:
        ret["comment"] = "config must be a non-empty dict of Patroni dynamic settings"
        return ret
    api = {"host": host, "port": port, "config_file": config_file}
    try:
        # read -> compare
        patch, changes = _diff(config, __salt__["patroni.dynamic_config"](**api))
        if not patch:
            ret["result"] = True
            ret["comment"] = f"Patroni dynamic configuration of {name} is up to date"
            return ret
        # test mode: the same changes a real run reports
        ret["changes"] = changes
        if __opts__["test"]:
            ret["result"] = None
            ret["comment"] = (
                f"Patroni dynamic configuration of {name} would be patched: {', '.join(sorted(changes))}"
            )
            return ret
        # act; Patroni answers with the configuration it now holds
        after = __salt__["patroni.patch_dynamic_config"](patch, **api)
    except CommandExecutionError as exc:
        ret["changes"] = {}
        ret["comment"] = f"Patroni's dynamic configuration of {name}: {exc}"
        return ret
    # verify
    left, differs = _diff(config, after)
    if left:
        ret["comment"] = f"Patroni kept other values for: {', '.join(sorted(differs))}"
        return ret
    ret["result"] = True
    ret["comment"] = f"Patroni dynamic configuration of {name} patched"
    if any(k.startswith("postgresql.parameters.") for k in changes):
        ret["comment"] += (
            "; some PostgreSQL parameters only apply after a restart: see "
            "`patronictl list` (Pending restart) and `patronictl restart` in a maintenance window"
        )
    return ret


def members_running(name, members, timeout=300, interval=3, host=None, port=None, config_file=None):
    """
    Wait until every Patroni member in ``members`` (names) runs, one of them
    as the cluster's only leader and the others as replicas with a known lag
    (a replica still being cloned, e.g. restoring from pgBackRest, is not
    running yet). Changes nothing; test mode asks once (True / None).

    .. code-block:: yaml

        airflow_ha-pgbackrest-restore-members:
          patroni.members_running:
            - name: airflow-ha
            - members: [node1, node2, node3]
    """
    wanted = sorted(members or [])

    def check():
        found = {
            m["name"]: m for m in __salt__["patroni.members"](host=host, port=port, config_file=config_file)
        }
        leaders = [n for n, m in found.items() if m.get("role") in ("leader", "master", "primary")]
        waiting = [
            n
            for n in wanted
            if n not in found
            or found[n].get("state") not in ("running", "streaming")
            or (n not in leaders and found[n].get("lag") in (None, "unknown"))
        ]
        ok = len(leaders) == 1 and not waiting
        detail = f"leader {', '.join(leaders) or 'none'}; not yet running: {', '.join(waiting) or 'none'}"
        return ok, detail

    comments = {
        "held": lambda detail: f"Patroni cluster {name}: {', '.join(wanted)} running ({detail})",
        "pending": lambda detail, limit: f"Patroni cluster {name}: {detail}; would wait up to {limit:.0f} s",
        "failed": lambda detail, waited: (
            f"Patroni cluster {name} not whole after {waited:.0f} s ({detail}): see `patronictl list` and "
            "`journalctl -u patroni` on the members still missing"
        ),
    }
    return __utils__["ah_wait.wait"](name, check, timeout, interval, bool(__opts__["test"]), **comments)
