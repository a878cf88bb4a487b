"""
Read etcd's health and membership (etcd is Patroni's DCS in the airflow_ha
formula), and plan how a member with a blank data directory joins.

Why custom: Salt's own etcd module (``salt.modules.etcd_mod``) reads and
writes keys through the python-etcd v2 client; it does not answer "does this
member have a leader, i.e. does the cluster have quorum?", which the formula
waits for before starting Patroni (etcd's ``GET /health``), and it has no
member list/add/remove (etcd's v3 cluster API, ``POST /v3/cluster/member/*``
on the client URL), which replacing or adding a node needs.

Named ``airflow_ha_etcd``, not ``etcd``: Salt core already owns the virtual
name ``etcd`` (``salt.modules.etcd_mod`` and ``salt.states.etcd_mod``), so a
custom ``etcd`` module would collide with it (README: "Module names").

CLI Example:

.. code-block:: bash

    salt node1 airflow_ha_etcd.health
    salt node1 airflow_ha_etcd.version
    salt node1 airflow_ha_etcd.health https://127.0.0.1:2379 cacert=/etc/etcd/airflow-ha-tls/ca.crt
    salt node3 airflow_ha_etcd.members http://10.77.0.11:2379
    salt node3 airflow_ha_etcd.join_plan node3 http://10.77.0.13:2380 \
        '[http://10.77.0.11:2379, http://10.77.0.12:2379]' /var/lib/etcd/airflow-ha
"""

import json
import os

from salt.exceptions import CommandExecutionError, SaltInvocationError

__virtualname__ = "airflow_ha_etcd"


def __virtual__():
    return __virtualname__


def _http_get(url, timeout, context=None):
    """GET ``url``; return (status, body text). Raises CommandExecutionError."""
    return __utils__["ah_http.request"]("GET", url, timeout, context=context)


def _context(url, cacert, cert, key, fun):
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise SaltInvocationError(f"airflow_ha_etcd.{fun}: url must be http(s)://..., got {url!r}")
    if not (cacert or cert or key):
        return None
    if not url.startswith("https://"):
        raise SaltInvocationError(f"airflow_ha_etcd.{fun}: cacert/cert/key need an https:// url, got {url!r}")
    return __utils__["ah_http.tls_context"](cacert, cert, key)


def health(url="http://127.0.0.1:2379", timeout=5, cacert=None, cert=None, key=None):
    """
    Return True when the etcd member at ``url`` reports ``{"health": "true"}``
    on ``/health`` (it has a leader, i.e. the cluster has quorum), False when
    it answers that it is unhealthy. Raises when it cannot be reached.

    With etcd's TLS on (``https://``): ``cacert`` is the CA file that signed
    the member's certificate (default: the system CAs), ``cert``/``key`` the
    client certificate and key files etcd asks for (client cert auth).

    CLI Example:

    .. code-block:: bash

        salt node1 airflow_ha_etcd.health http://10.77.0.11:2379
        salt node1 airflow_ha_etcd.health https://127.0.0.1:2379 \\
            cacert=/etc/etcd/airflow-ha-tls/ca.crt cert=/etc/etcd/airflow-ha-tls/node.crt \\
            key=/etc/etcd/airflow-ha-tls/etcd.key
    """
    context = _context(url, cacert, cert, key, "health")
    status, body = _http_get(url.rstrip("/") + "/health", timeout, context=context)
    try:
        data = json.loads(body)
    except ValueError:
        raise CommandExecutionError(
            f"{url}/health answered HTTP {status} with a body that is not JSON: {body[:200]!r}"
        ) from None
    return status == 200 and str(data.get("health")).lower() == "true"


def version(url="http://127.0.0.1:2379", timeout=5, cacert=None, cert=None, key=None):
    """
    Return the etcd member's ``GET /version`` answer as
    ``{"server": "3.4.23", "cluster": "3.4.0"}``. A cluster just formed
    answers ``"cluster": "3.0.0"`` until its leader has heard every member's
    version. Arguments as for ``airflow_ha_etcd.health``.

    CLI Example:

    .. code-block:: bash

        salt node1 airflow_ha_etcd.version http://10.77.0.11:2379
    """
    context = _context(url, cacert, cert, key, "version")
    status, body = _http_get(url.rstrip("/") + "/version", timeout, context=context)
    try:
        data = json.loads(body)
        return {"server": str(data["etcdserver"]), "cluster": str(data["etcdcluster"])}
    except (ValueError, KeyError, TypeError):
        raise CommandExecutionError(
            f"{url}/version answered HTTP {status} without etcdserver/etcdcluster: {body[:200]!r}"
        ) from None


def _cluster_call(url, what, body, timeout, context):
    """POST etcd's v3 cluster API ``/v3/cluster/member/<what>``; the JSON answer."""
    status, text = __utils__["ah_http.request"](
        "POST", f"{url.rstrip('/')}/v3/cluster/member/{what}", timeout, body=body, context=context
    )
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if status != 200 or not isinstance(data, dict):
        raise CommandExecutionError(f"etcd at {url}: member {what} answered HTTP {status}: {text[:300]!r}")
    return data


def _member(raw):
    return {
        "id": str(raw.get("ID", "")),
        "name": raw.get("name", ""),
        "peer_urls": list(raw.get("peerURLs") or []),
        "client_urls": list(raw.get("clientURLs") or []),
    }


def members(url="http://127.0.0.1:2379", timeout=5, cacert=None, cert=None, key=None):
    """
    The etcd cluster's members as the member at ``url`` knows them: a list of
    ``{"id", "name", "peer_urls", "client_urls"}``. A member that never
    started has no client URL; one added at runtime has no ``name`` either,
    while a day-1 member of ``ETCD_INITIAL_CLUSTER`` keeps its name
    (recorded: test/unit/data/patroni/etcd_members_unstarted.json). TLS
    arguments as for :func:`health`.

    CLI Example:

    .. code-block:: bash

        salt node1 airflow_ha_etcd.members
    """
    context = _context(url, cacert, cert, key, "members")
    return [_member(m) for m in _cluster_call(url, "list", {}, timeout, context).get("members", [])]


def member_remove(url, member_id, timeout=10, cacert=None, cert=None, key=None):
    """
    Remove the member ``member_id`` (decimal, as :func:`members` gives it)
    through the member at ``url``. Only :func:`join_plan`'s ``replace`` calls
    for it (the member's data is gone); never remove a healthy member.

    CLI Example:

    .. code-block:: bash

        salt node1 airflow_ha_etcd.member_remove http://127.0.0.1:2379 1234567890
    """
    if not str(member_id).isdigit():
        raise SaltInvocationError(
            f"airflow_ha_etcd.member_remove: member_id must be decimal, got {member_id!r}"
        )
    context = _context(url, cacert, cert, key, "member_remove")
    _cluster_call(url, "remove", {"ID": str(member_id)}, timeout, context)
    return True


def member_add(url, peer_url, timeout=10, cacert=None, cert=None, key=None):
    """
    Add a member with peer URL ``peer_url`` through the member at ``url``;
    returns the cluster's members afterwards (the new one without a name).

    CLI Example:

    .. code-block:: bash

        salt node1 airflow_ha_etcd.member_add http://127.0.0.1:2379 http://10.77.0.13:2380
    """
    context = _context(url, cacert, cert, key, "member_add")
    data = _cluster_call(url, "add", {"peerURLs": [peer_url]}, timeout, context)
    return [_member(m) for m in data.get("members", [])]


def _healthy_ids(listed, timeout, tls):
    """The IDs of the members whose first client URL answers healthy."""
    healthy = []
    for m in listed:
        try:
            if m["client_urls"] and health(m["client_urls"][0], timeout=timeout, **tls):
                healthy.append(m["id"])
        except CommandExecutionError:
            pass
    return healthy


def _quorum(count):
    return count // 2 + 1


def join_plan(name, peer_url, endpoints, data_dir, timeout=5, cacert=None, cert=None, key=None):
    """
    How the etcd member ``name`` (peer URL ``peer_url``) starts, asked of the
    cluster through the other members' client URLs ``endpoints``. A dict:

    ``action``
        ``member`` (the data directory holds a member: etcd rejoins by
        itself), ``bootstrap`` (no peer answers with a healthy cluster: the
        day-1 bootstrap of ``ETCD_INITIAL_CLUSTER``, state ``new``),
        ``start`` (the cluster lists this peer URL as a day-1 member that
        never started: start as configured), ``resume`` (listed as added at
        runtime and never started: start with state ``existing``), ``wait``
        (a new node while another added member has not started yet: members
        join one at a time), ``replace`` (the cluster lists a
        started member of this name or peer URL while the data directory is
        blank: the host was rebuilt; remove that member, add it again, start
        with state ``existing``), ``add`` (not listed: a new node; add it,
        start with state ``existing``) or ``refuse`` (a change would leave
        the cluster without quorum).
    ``reason``, ``via`` (the endpoint asked), ``stale`` (the member to
    remove), ``members``, ``healthy`` (the members whose /health says so).

    Quorum: removing the stale member must leave a majority of the smaller
    cluster healthy, and adding the new (not yet running) one a majority of
    the larger; otherwise ``refuse``. A healthy member is never removed.

    CLI Example:

    .. code-block:: bash

        salt node3 airflow_ha_etcd.join_plan node3 http://10.77.0.13:2380 \
            '[http://10.77.0.11:2379, http://10.77.0.12:2379]' /var/lib/etcd/airflow-ha
    """
    plan = {"name": name, "via": None, "stale": None, "members": [], "healthy": []}
    if os.path.isdir(os.path.join(data_dir, "member")):
        return dict(plan, action="member", reason=f"{data_dir} holds this member's data")
    tls = {"cacert": cacert, "cert": cert, "key": key}
    errors = []
    for url in endpoints:
        try:
            if not health(url, timeout=timeout, **tls):
                errors.append(f"{url}: no leader")
                continue
            listed = members(url, timeout=timeout, **tls)
        except CommandExecutionError as exc:
            errors.append(str(exc))
            continue
        plan.update(via=url, members=listed)
        break
    else:
        why = "; ".join(errors) or "no other member configured"
        return dict(plan, action="bootstrap", reason=f"no healthy peer answers ({why}): the day-1 bootstrap")
    listed = plan["members"]
    healthy = plan["healthy"] = _healthy_ids(listed, timeout, tls)
    mine = [m for m in listed if peer_url in m["peer_urls"] or (m["name"] and m["name"] == name)]
    # A member that never started has published no client URL. One of the
    # day-1 ETCD_INITIAL_CLUSTER still has its name (a slow node in a cold
    # converge); one added at runtime has none and must start as "existing".
    if mine and not mine[0]["client_urls"]:
        if mine[0]["name"]:
            return dict(
                plan,
                action="start",
                reason=f"{plan['via']} lists {peer_url} as a day-1 member that never started",
            )
        return dict(
            plan,
            action="resume",
            reason=f"{plan['via']} lists {peer_url} as added but never started: it starts as an existing member",
        )
    if mine:
        stale = mine[0]
        plan["stale"] = stale
        if stale["id"] in healthy:
            return dict(
                plan,
                action="refuse",
                reason=(
                    f"member {stale['name']} ({stale['id']}) answers as healthy on {stale['client_urls'][0]} "
                    f"while {data_dir} here is blank: another host runs it; never removing a healthy member"
                ),
            )
        left = len(listed) - 1
        if len(healthy) < _quorum(left) or len(healthy) < _quorum(left + 1):
            return dict(
                plan,
                action="refuse",
                reason=(
                    f"only {len(healthy)} of {len(listed)} members are healthy: replacing {stale['name']} "
                    "would leave the cluster without quorum; bring the other members back first"
                ),
            )
        return dict(
            plan,
            action="replace",
            reason=f"{plan['via']} lists {stale['name']} ({stale['id']}) as started but {data_dir} is blank",
        )
    waiting = [m for m in listed if not m["client_urls"]]
    if waiting:
        # one member at a time (etcd's runtime reconfiguration guide): a
        # second unstarted member would leave no failure tolerance, and the
        # first one's join settings would no longer match the member count
        return dict(
            plan,
            action="wait",
            reason=(
                f"{', '.join(m['name'] or m['peer_urls'][0] for m in waiting)} was added and has not "
                f"started yet: {name} is added once it runs"
            ),
        )
    if len(healthy) < _quorum(len(listed) + 1):
        return dict(
            plan,
            action="refuse",
            reason=(
                f"only {len(healthy)} of {len(listed)} members are healthy: adding {name} would leave "
                "the cluster without quorum; bring the other members back first"
            ),
        )
    return dict(plan, action="add", reason=f"{plan['via']} does not list {name} ({peer_url})")


def departed_plan(peer_urls, url="http://127.0.0.1:2379", timeout=5, cacert=None, cert=None, key=None):
    """
    The members the cluster (asked at ``url``) lists although no db node of
    the pillar has their peer URL (``peer_urls``: every db node's): nodes
    scaled in. A dict: ``action`` ``ok`` (none), ``remove`` (each departed
    member is down and the others keep quorum of the smaller cluster) or
    ``refuse`` (a departed member still answers healthy: it runs; or too few
    of the others are healthy); ``departed``, ``healthy``, ``reason``.

    CLI Example:

    .. code-block:: bash

        salt node1 airflow_ha_etcd.departed_plan \
            '[http://10.77.0.11:2380, http://10.77.0.12:2380, http://10.77.0.13:2380]'
    """
    tls = {"cacert": cacert, "cert": cert, "key": key}
    listed = members(url, timeout=timeout, **tls)
    wanted = set(peer_urls)
    gone = [m for m in listed if not wanted & set(m["peer_urls"])]
    plan = {"departed": gone, "healthy": []}
    if not gone:
        return dict(plan, action="ok", reason="every member is a db node of the pillar")
    healthy = plan["healthy"] = _healthy_ids(listed, timeout, tls)
    alive = [m for m in gone if m["id"] in healthy]
    if alive:
        return dict(
            plan,
            action="refuse",
            reason=(
                f"{', '.join(m['name'] or m['id'] for m in alive)} left airflow_ha:nodes (role db) but its "
                "etcd member answers healthy: stop etcd there (or power the host off), then re-apply"
            ),
        )
    left = len(listed) - len(gone)
    if len(healthy) < _quorum(left):
        return dict(
            plan,
            action="refuse",
            reason=(
                f"only {len(healthy)} of the {left} remaining members are healthy: removing "
                f"{', '.join(m['name'] or m['id'] for m in gone)} now could cost quorum; bring them back first"
            ),
        )
    names = ", ".join(m["name"] or m["id"] for m in gone)
    return dict(plan, action="remove", reason=f"{names} left airflow_ha:nodes and are down")
