"""
Wait state for etcd (Patroni's DCS): hold the state run until this node's
etcd member is healthy (the cluster has quorum), so that one ``state.apply``
on fresh nodes converges the whole cluster.

Why custom code: Salt's ``http.wait_for_successful_query`` reports
``result: None`` on every ``test=True`` run, even when the condition already
holds; this state checks in test mode too and reports the truth (``True``
when it holds, ``None`` when the real run would wait). Named
``airflow_ha_etcd`` because Salt core owns the state name ``etcd``
(``salt.states.etcd_mod``).

Shape: read (poll) -> compare -> test mode -> (nothing to act on) -> no changes.
"""

from salt.exceptions import SaltInvocationError

__virtualname__ = "airflow_ha_etcd"


def __virtual__():
    if "airflow_ha_etcd.health" in __salt__:
        return __virtualname__
    return False, "airflow_ha_etcd state: the airflow_ha_etcd execution module is not available"


def _ret(name):
    return {"name": name, "result": False, "changes": {}, "comment": ""}


def healthy(name, timeout=300, interval=3, cacert=None, cert=None, key=None):
    """
    Wait until the etcd member at URL ``name`` reports itself healthy (it has
    a leader: the cluster has quorum). With etcd's TLS on, ``name`` is an
    https:// URL and ``cacert``/``cert``/``key`` are the CA, client
    certificate and key files (see ``airflow_ha_etcd.health``).

    .. code-block:: yaml

        airflow_ha-etcd-wait-healthy:
          airflow_ha_etcd.healthy:
            - name: http://127.0.0.1:2379
            - timeout: 300
    """
    ret = _ret(name)
    tls = {k: v for k, v in (("cacert", cacert), ("cert", cert), ("key", key)) if v}

    def check():
        ok = __salt__["airflow_ha_etcd.health"](name, **tls)
        return ok, "healthy" if ok else "reachable but not healthy (no quorum yet)"

    try:
        timeout, interval = __utils__["ah_wait.check_args"](timeout, interval)
    except SaltInvocationError as exc:
        ret["comment"] = str(exc)
        return ret
    try:
        ok, detail, waited = __utils__["ah_wait.poll"](check, timeout, interval, bool(__opts__["test"]))
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
