"""
etcd (Patroni's DCS). ``healthy`` holds the state run until this node's etcd
member reports a leader (the cluster has quorum) and a decided cluster
version, so that one ``state.apply``
on fresh nodes converges the whole cluster. It checks in test mode too (True
when healthy, None when the real run would wait), unlike Salt's
``http.wait_for_successful_query``; same polling as ``patroni.leader_running``
(``_utils/ah_wait.py``). Changes nothing.

``joined`` lets a node with a blank etcd data directory into a running
cluster before its member starts: a rebuilt host (the survivors still list
its old member: removed and added again) or a new node (added). Salt has no
state for etcd membership. It writes the join settings
(``ETCD_INITIAL_CLUSTER_STATE=existing`` and the cluster as it is) to an
environment file etcd's unit reads after ``/etc/default/etcd``; once the
member has data, etcd ignores them.

``departed_removed`` removes the members of nodes scaled in (no longer db
nodes of the pillar), once they are down and the rest keep quorum.

Named ``airflow_ha_etcd`` because Salt core owns the state name ``etcd``
(``salt.states.etcd_mod``).
"""

import os
import time

from salt.exceptions import CommandExecutionError

__virtualname__ = "airflow_ha_etcd"
ADD_WAIT = 60  # s: how long member add is retried while etcd answers "unhealthy cluster"
# The lowest etcd cluster version Patroni is started on: a new cluster reports
# 3.0.0 until its version is decided (see healthy).
DECIDED_CLUSTER_VERSION = (3, 4)


def __virtual__():
    if "airflow_ha_etcd.health" in __salt__:
        return __virtualname__
    return False, "airflow_ha_etcd state: the airflow_ha_etcd execution module is not available"


def _version_tuple(text):
    try:
        return tuple(int(part) for part in str(text).split(".")[:2])
    except ValueError:
        return (0, 0)


def healthy(name, timeout=300, interval=3, cacert=None, cert=None, key=None):
    """
    Wait until the etcd member at URL ``name`` reports itself healthy (it has
    a leader: the cluster has quorum) and its cluster version is decided
    (every member of a new cluster has been seen). With etcd's TLS on, ``name`` is an
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
        if not __salt__["airflow_ha_etcd.health"](name, **tls):
            return False, "reachable but not healthy (no quorum yet)"
        # Patroni 3.0 picks its etcd API path once, from the cluster version:
        # given the 3.0.0 a new cluster reports until its leader has heard
        # every member, it takes /v3alpha, which etcd 3.4+ does not serve, and
        # it waits on etcd for good (a cold converge saw replicas' Patroni
        # never open its REST API). So a new cluster is ready once decided.
        cluster = __salt__["airflow_ha_etcd.version"](name, **tls)["cluster"]
        if _version_tuple(cluster) < DECIDED_CLUSTER_VERSION:
            return False, f"healthy, but the cluster version is still {cluster} (not every member seen yet)"
        return True, f"healthy, cluster version {cluster}"

    comments = {
        "held": lambda detail: f"etcd member {name} is {detail} (cluster has quorum)",
        "pending": lambda detail, limit: (
            f"etcd member {name} is not healthy yet ({detail}); would wait up to {limit:.0f} s"
        ),
        "failed": lambda detail, waited: (
            f"etcd member {name} not ready after {waited:.0f} s (last: {detail}). A quorum of "
            "db nodes (every one, for a new cluster) must run etcd: apply the formula on all db nodes at once "
            "(salt -G ... state.apply airflow_ha) and check `journalctl -u etcd`."
        ),
        # a TLS file that cannot be loaded: waiting does not help
        "unusable": lambda exc: f"etcd member {name} cannot be asked ({exc})",
    }
    return __utils__["ah_wait.wait"](name, check, timeout, interval, bool(__opts__["test"]), **comments)


def _initial_cluster(members, name, peer_url):
    """ETCD_INITIAL_CLUSTER for joining: every started member, and this one."""
    parts = []
    for m in members:
        if peer_url in m["peer_urls"]:
            parts.append(f"{name}={peer_url}")
        elif m["name"]:
            parts.extend(f"{m['name']}={u}" for u in m["peer_urls"])
    return ",".join(parts)


def _env_text(initial_cluster):
    return (
        "# Written by airflow_ha_etcd.joined when this member joined a running cluster.\n"
        "# etcd reads it only while its data directory is empty.\n"
        'ETCD_INITIAL_CLUSTER_STATE="existing"\n'
        f'ETCD_INITIAL_CLUSTER="{initial_cluster}"\n'
    )


def _write_env(path, initial_cluster):
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(_env_text(initial_cluster))
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def _read(path):
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except OSError:
        return None


def _add(via, peer_url, tls, wait=ADD_WAIT):
    """member_add, again while etcd answers "unhealthy cluster": right after a
    member (re)started or was removed, etcd refuses a new one until every
    member has been connected to it for 5 s."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return __salt__["airflow_ha_etcd.member_add"](via, peer_url, **tls)
        except CommandExecutionError as exc:
            if "unhealthy cluster" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(2)


def _resume(ret, name, peer_url, plan, join_env):
    """A member added at runtime that never started: its join settings."""
    initial_cluster = _initial_cluster(plan["members"], name, peer_url)
    text = _env_text(initial_cluster)
    if _read(join_env) == text:
        ret["result"] = True
        ret["comment"] = f"etcd member {name}: {plan['reason']}; {join_env} is in place"
        return ret
    ret["changes"] = {"join_env": {"old": "missing or different", "new": join_env}}
    if __opts__["test"]:
        ret["result"] = None
        ret["comment"] = f"etcd member {name}: would write {join_env} ({plan['reason']})"
        return ret
    try:
        _write_env(join_env, initial_cluster)
    except OSError as exc:
        ret["changes"] = {}
        ret["comment"] = f"etcd member {name}: cannot write {join_env}: {exc}"
        return ret
    ret["result"] = True
    ret["comment"] = f"etcd member {name}: {plan['reason']}; wrote {join_env}"
    return ret


def joined(name, peer_url, endpoints, data_dir, join_env, cacert=None, cert=None, key=None, wait=600):
    """
    Let the etcd member ``name`` (peer URL ``peer_url``) into the cluster
    reached through the other members' client URLs ``endpoints`` when its
    ``data_dir`` is blank (see ``airflow_ha_etcd.join_plan``): nothing to do
    for a member with data, the day-1 bootstrap or a day-1 member that never
    started; ``join_env`` for a member added earlier that never started; a
    stale member of a rebuilt host is removed and added
    again, a new node added, and ``join_env`` written for etcd's unit. Fails,
    changing nothing, when that would leave the cluster without quorum.
    Nodes added in the same run join one at a time: while another added
    member has not started, this one waits (up to ``wait`` seconds).

    .. code-block:: yaml

        airflow_ha-etcd-joined:
          airflow_ha_etcd.joined:
            - name: node3
            - peer_url: http://10.77.0.13:2380
            - endpoints: [http://10.77.0.11:2379, http://10.77.0.12:2379]
            - data_dir: /var/lib/etcd/airflow-ha
            - join_env: /var/lib/etcd/airflow-ha.join.env
    """
    ret = {"name": name, "result": False, "changes": {}, "comment": ""}
    tls = {"cacert": cacert, "cert": cert, "key": key}
    deadline = time.monotonic() + float(wait)
    while True:
        try:
            plan = __salt__["airflow_ha_etcd.join_plan"](name, peer_url, list(endpoints), data_dir, **tls)
        except CommandExecutionError as exc:
            ret["comment"] = f"etcd member {name}: cannot plan the join: {exc}"
            return ret
        if plan["action"] != "wait" or __opts__["test"] or time.monotonic() >= deadline:
            break
        time.sleep(5)
    action = plan["action"]
    if action == "wait":
        ret["result"] = None if __opts__["test"] else False
        ret["comment"] = f"etcd member {name}: {plan['reason']}" + (
            "" if __opts__["test"] else f" (still so after {float(wait):.0f} s)"
        )
        return ret
    if action == "resume":
        return _resume(ret, name, peer_url, plan, join_env)
    if action in ("member", "bootstrap", "start"):
        ret["result"] = True
        ret["comment"] = f"etcd member {name}: {plan['reason']}; nothing to do"
        return ret
    if action == "refuse":
        ret["comment"] = f"etcd member {name}: {plan['reason']}"
        return ret
    stale = plan["stale"]
    change = {
        "old": f"{stale['name']} ({stale['id']}), data lost" if stale else "not a member",
        "new": "member",
    }
    if __opts__["test"]:
        ret["result"] = None
        ret["changes"] = {"member": change}
        what = f"remove stale member {stale['id']} and add {name}" if stale else f"add {name}"
        ret["comment"] = f"etcd member {name}: would {what} through {plan['via']} ({plan['reason']})"
        return ret
    via = plan["via"]
    try:
        if stale:
            __salt__["airflow_ha_etcd.member_remove"](via, stale["id"], **tls)
        listed = _add(via, peer_url, tls)
        _write_env(join_env, _initial_cluster(listed, name, peer_url))
    except (CommandExecutionError, OSError) as exc:
        ret["comment"] = f"etcd member {name}: joining through {via} failed: {exc}"
        return ret
    ret["changes"] = {"member": change}
    if not any(peer_url in m["peer_urls"] for m in listed):
        ret["comment"] = (
            f"etcd member {name}: added through {via}, but the member list does not show {peer_url}"
        )
        return ret
    ret["result"] = True
    done = f"removed stale member {stale['id']} and added {name}" if stale else f"added {name}"
    ret["comment"] = f"etcd member {name}: {done} through {via}; {join_env} makes it join as existing"
    return ret


def departed_removed(name, peer_urls, cacert=None, cert=None, key=None):
    """
    The etcd cluster, asked at ``name`` (the local client URL), has no member
    besides the pillar's db nodes (``peer_urls``): the member of a node scaled
    in is removed once it is down and the rest keep quorum
    (``airflow_ha_etcd.departed_plan``); never a member that answers healthy.

    .. code-block:: yaml

        airflow_ha-etcd-departed:
          airflow_ha_etcd.departed_removed:
            - name: http://127.0.0.1:2379
            - peer_urls: [http://10.77.0.11:2380, http://10.77.0.12:2380, http://10.77.0.13:2380]
    """
    ret = {"name": name, "result": False, "changes": {}, "comment": ""}
    tls = {"cacert": cacert, "cert": cert, "key": key}
    try:
        plan = __salt__["airflow_ha_etcd.departed_plan"](list(peer_urls), name, **tls)
    except CommandExecutionError as exc:
        ret["comment"] = f"etcd at {name}: cannot list the members: {exc}"
        return ret
    if plan["action"] == "ok":
        ret["result"] = True
        ret["comment"] = f"etcd at {name}: {plan['reason']}"
        return ret
    if plan["action"] == "refuse":
        ret["comment"] = f"etcd at {name}: {plan['reason']}"
        return ret
    gone = {m["id"]: m["name"] or m["id"] for m in plan["departed"]}
    change = {"old": sorted(gone.values()), "new": []}
    if __opts__["test"]:
        ret["result"] = None
        ret["changes"] = {"departed": change}
        ret["comment"] = f"etcd at {name}: would remove {', '.join(sorted(gone.values()))} ({plan['reason']})"
        return ret
    errors = []
    for mid in gone:
        try:
            __salt__["airflow_ha_etcd.member_remove"](name, mid, **tls)
        except CommandExecutionError as exc:
            errors.append(str(exc))
    try:
        listed = {m["id"] for m in __salt__["airflow_ha_etcd.members"](name, **tls)}
    except CommandExecutionError as exc:
        ret["comment"] = f"etcd at {name}: removed members, then cannot list them: {exc}"
        return ret
    left = sorted(gone[mid] for mid in gone if mid in listed)
    change["new"] = left
    ret["changes"] = {"departed": change}
    if left:
        ret["comment"] = f"etcd at {name}: still lists {', '.join(left)}: {'; '.join(errors) or 'no error'}"
        return ret
    ret["result"] = True
    ret["comment"] = f"etcd at {name}: removed {', '.join(sorted(gone.values()))}"
    return ret
