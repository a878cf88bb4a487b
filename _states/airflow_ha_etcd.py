"""
etcd (Patroni's DCS): ``healthy`` holds the state run until this node's etcd
member reports a leader (the cluster has quorum), so that one ``state.apply``
on fresh nodes converges the whole cluster. It checks in test mode too (True
when healthy, None when the real run would wait), unlike Salt's
``http.wait_for_successful_query``; same polling as ``patroni.leader_running``
(``_utils/ah_wait.py``). Named ``airflow_ha_etcd`` because Salt core owns the
state name ``etcd`` (``salt.states.etcd_mod``). Changes nothing.
"""

__virtualname__ = "airflow_ha_etcd"


def __virtual__():
    if "airflow_ha_etcd.health" in __salt__:
        return __virtualname__
    return False, "airflow_ha_etcd state: the airflow_ha_etcd execution module is not available"


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
    tls = {k: v for k, v in (("cacert", cacert), ("cert", cert), ("key", key)) if v}

    def check():
        ok = __salt__["airflow_ha_etcd.health"](name, **tls)
        return ok, "healthy" if ok else "reachable but not healthy (no quorum yet)"

    comments = {
        "held": lambda detail: f"etcd member {name} is healthy (cluster has quorum)",
        "pending": lambda detail, limit: (
            f"etcd member {name} is not healthy yet ({detail}); would wait up to {limit:.0f} s"
        ),
        "failed": lambda detail, waited: (
            f"etcd member {name} not healthy after {waited:.0f} s (last: {detail}). A quorum of "
            "db nodes must run etcd: apply the formula on all db nodes at once "
            "(salt -G ... state.apply airflow_ha) and check `journalctl -u etcd`."
        ),
        # a TLS file that cannot be loaded: waiting does not help
        "unusable": lambda exc: f"etcd member {name} cannot be asked ({exc})",
    }
    return __utils__["ah_wait.wait"](name, check, timeout, interval, bool(__opts__["test"]), **comments)
