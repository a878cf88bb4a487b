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


def etcd_healthy(name, timeout=300, interval=3):
    """
    Wait until the etcd member at URL ``name`` reports itself healthy (it has
    a leader: the cluster has quorum).

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

    def check():
        healthy = __salt__["patroni.etcd_health"](name)
        return healthy, "healthy" if healthy else "reachable but not healthy (no quorum yet)"

    ok, detail, waited = _poll(check, timeout, interval, once=bool(__opts__["test"]))
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
