"""
Wait states for the database layer: they change nothing, they hold the state
run until a peer-dependent condition holds, so that one ``state.apply`` on
fresh nodes converges the whole cluster.

Why custom code: Salt's ``http.wait_for_successful_query`` can poll a URL but
reports ``result: None`` on every ``test=True`` run (even when the condition
already holds), and cannot tell from Patroni's JSON whether a *running*
leader exists. These states check the condition in test mode too and report
the truth: ``True`` when it holds, ``None`` when the real run would wait.

Shape: read (poll) -> compare -> test mode -> (nothing to act on) -> no changes.
"""

import time

from salt.exceptions import CommandExecutionError, SaltInvocationError

__virtualname__ = "patroni"


def __virtual__():
    if "patroni.cluster" in __salt__:
        return __virtualname__
    return False, "patroni state: the patroni execution module is not available"


def _check_wait_args(timeout, interval):
    try:
        timeout = float(timeout)
        interval = float(interval)
    except (TypeError, ValueError):
        raise SaltInvocationError(
            f"timeout and interval must be numbers of seconds, got {timeout!r}, {interval!r}"
        ) from None
    if timeout < 0 or interval <= 0:
        raise SaltInvocationError("timeout must be >= 0 and interval > 0")
    return timeout, interval


def _poll(check, timeout, interval, once):
    """Call ``check()`` -> (ok, detail) until ok or timeout; return (ok, detail, seconds)."""
    start = time.monotonic()
    while True:
        try:
            ok, detail = check()
        except CommandExecutionError as exc:
            ok, detail = False, str(exc)
        waited = time.monotonic() - start
        if ok or once or waited >= timeout:
            return ok, detail, waited
        time.sleep(min(interval, max(timeout - waited, 0.1)))


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
    ret = _ret(name)
    try:
        timeout, interval = _check_wait_args(timeout, interval)
    except SaltInvocationError as exc:
        ret["comment"] = str(exc)
        return ret

    def check():
        leader = __salt__["patroni.leader"](host=host, port=port, config_file=config_file)
        return leader is not None, leader

    ok, detail, waited = _poll(check, timeout, interval, once=bool(__opts__["test"]))
    if ok:
        ret["result"] = True
        ret["comment"] = f"Patroni cluster {name}: {detail} is the running leader"
    elif __opts__["test"]:
        ret["result"] = None
        ret["comment"] = (
            f"Patroni cluster {name} has no running leader yet ({detail or 'none elected'});"
            f" would wait up to {timeout:.0f} s"
        )
    else:
        ret["comment"] = (
            f"Patroni cluster {name}: no running leader after {waited:.0f} s "
            f"(last answer: {detail or 'no leader elected'}). Check `patronictl list` and "
            "`journalctl -u patroni` on the db nodes; etcd needs a quorum of db nodes up."
        )
    return ret


def etcd_healthy(name, timeout=300, interval=3, cacert=None, cert=None, key=None):
    """
    Wait until the etcd member at URL ``name`` reports itself healthy (it has
    a leader: the cluster has quorum). With etcd's TLS on, ``name`` is an
    https:// URL and ``cacert``/``cert``/``key`` are the CA, client
    certificate and key files (see ``patroni.etcd_health``).

    .. code-block:: yaml

        airflow_ha-etcd-wait-healthy:
          patroni.etcd_healthy:
            - name: http://127.0.0.1:2379
            - timeout: 300
    """
    ret = _ret(name)
    try:
        timeout, interval = _check_wait_args(timeout, interval)
    except SaltInvocationError as exc:
        ret["comment"] = str(exc)
        return ret
    tls = {k: v for k, v in (("cacert", cacert), ("cert", cert), ("key", key)) if v}

    def check():
        healthy = __salt__["patroni.etcd_health"](name, **tls)
        return healthy, "healthy" if healthy else "reachable but not healthy (no quorum yet)"

    try:
        ok, detail, waited = _poll(check, timeout, interval, once=bool(__opts__["test"]))
    except SaltInvocationError as exc:
        # A TLS file that cannot be loaded: waiting does not help (in test
        # mode it may simply not be written yet).
        if __opts__["test"]:
            ret["result"] = None
            ret["comment"] = f"etcd member {name} cannot be asked yet ({exc}); the real run would wait"
        else:
            ret["comment"] = f"etcd member {name} cannot be asked: {exc}"
        return ret
    if ok:
        ret["result"] = True
        ret["comment"] = f"etcd member {name} is healthy (cluster has quorum)"
    elif __opts__["test"]:
        ret["result"] = None
        ret["comment"] = f"etcd member {name} is not healthy yet ({detail}); would wait up to {timeout:.0f} s"
    else:
        ret["comment"] = (
            f"etcd member {name} not healthy after {waited:.0f} s (last: {detail}). A quorum of "
            "db nodes must run etcd: apply the formula on all db nodes at once "
            "(salt -G ... state.apply airflow_ha) and check `journalctl -u etcd`."
        )
    return ret


def _same(want, have):
    """Leaf comparison tolerant of how Patroni stores values (300 vs "300", on vs True)."""
    if isinstance(want, bool) or isinstance(have, bool):
        truth = {"true": True, "on": True, "false": False, "off": False}
        w = truth.get(str(want).lower(), want)
        h = truth.get(str(have).lower(), have)
        return w == h
    return str(want) == str(have)


def _diff(want, have, path=""):
    """(patch, changes): the part of ``want`` that ``have`` lacks, and {path: {old, new}}."""
    patch, changes = {}, {}
    for key, value in want.items():
        where = f"{path}{key}"
        current = have.get(key) if isinstance(have, dict) else None
        if isinstance(value, dict):
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
    try:
        current = __salt__["patroni.dynamic_config"](host=host, port=port, config_file=config_file)
    except CommandExecutionError as exc:
        ret["comment"] = f"cannot read Patroni's dynamic configuration: {exc}"
        return ret
    patch, changes = _diff(config, current)
    if not patch:
        ret["result"] = True
        ret["comment"] = f"Patroni dynamic configuration of {name} is up to date"
        return ret
    if __opts__["test"]:
        ret["result"] = None
        ret["changes"] = changes
        ret["comment"] = (
            f"Patroni dynamic configuration of {name} would be patched: {', '.join(sorted(changes))}"
        )
        return ret
    try:
        after = __salt__["patroni.patch_dynamic_config"](patch, host=host, port=port, config_file=config_file)
    except CommandExecutionError as exc:
        ret["comment"] = f"patching Patroni's dynamic configuration failed: {exc}"
        return ret
    left, _ = _diff(config, after)
    if left:
        ret["comment"] = f"Patroni kept other values for: {', '.join(sorted(_diff(config, after)[1]))}"
        ret["changes"] = changes
        return ret
    ret["result"] = True
    ret["changes"] = changes
    ret["comment"] = f"Patroni dynamic configuration of {name} patched"
    if any(k.startswith("postgresql.parameters.") for k in changes):
        ret["comment"] += (
            "; some PostgreSQL parameters only apply after a restart: see "
            "`patronictl list` (Pending restart) and `patronictl restart` in a maintenance window"
        )
    return ret
