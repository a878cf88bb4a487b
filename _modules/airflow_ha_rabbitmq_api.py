"""
Reads of RabbitMQ's management HTTP API for the airflow_ha formula
(``airflow_ha.rabbitmq``).

Why not rabbitmqctl (``airflow_ha_rabbitmq`` and Salt's ``rabbitmq`` module):
every rabbitmqctl call boots an Erlang VM, 2-6 s each in the lab, and the
RabbitMQ states of a re-apply that changed nothing spent 45 s of node1's 65 s
in them. The management plugin (enabled by ``airflow_ha.rabbitmq``) answers
the same questions from the running broker in milliseconds.

The contract: only reads live here, and the API only ever confirms. A check
answers ``True`` only when the API says the thing is already as wanted;
every other answer (``False``/``None``: the plugin not listening yet, the
admin user not created yet on a first converge, an unknown password hashing
algorithm) sends the caller to the rabbitmqctl path, which decides and
changes. So the API makes a check faster and never changes what it concludes.

The admin user's password comes from the pillar (``airflow_ha.settings``) and
goes in the request's Authorization header only: never in argv, a log line or
a return.

CLI examples:

.. code-block:: bash

    salt node1 airflow_ha_rabbitmq_api.cluster_status
    salt node1 airflow_ha_rabbitmq_api.user_present airflow perms='[{airflow: [".*", ".*", ".*"]}]'
"""

import base64
import hashlib
import hmac
import json
import logging
import urllib.parse

from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

__virtualname__ = "airflow_ha_rabbitmq_api"

TIMEOUT = 5
# RabbitMQ's password_hash: base64(4-byte salt + digest(salt + password)).
HASHES = {"rabbit_password_hashing_sha256": hashlib.sha256, "rabbit_password_hashing_sha512": hashlib.sha512}


def __virtual__():
    return __virtualname__


def _get(path):
    """The API's JSON answer for ``path`` on this node, or None when it cannot
    answer (not listening, not authorised, not JSON)."""
    ah = __salt__["airflow_ha.settings"](reveal=True)
    rmq = ah["rabbitmq"]
    password = (ah.get("secrets") or {}).get("rabbitmq_admin_password")
    if not password or not ah.get("address"):
        return None
    url = f"http://{ah['address']}:{rmq['management_port']}/api{path}"
    try:
        status, text = __utils__["ah_http.request"]("GET", url, TIMEOUT, auth=(rmq["admin_user"], password))
    except CommandExecutionError as exc:
        log.debug("airflow_ha_rabbitmq_api: %s", exc)
        return None
    if status != 200:
        log.debug("airflow_ha_rabbitmq_api: GET %s answered %s", url, status)
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _quote(name):
    return urllib.parse.quote(name, safe="")


def cluster_status():
    """
    This node's view of its cluster, shaped like
    ``airflow_ha_rabbitmq.cluster_status``: ``members``, ``running``,
    ``partitions`` ({node: [nodes it cannot see]}) and ``alarms``; None when
    the API cannot answer.

    CLI Example:

    .. code-block:: bash

        salt node1 airflow_ha_rabbitmq_api.cluster_status
    """
    nodes = _get("/nodes?columns=name,running,partitions,mem_alarm,disk_free_alarm")
    if not isinstance(nodes, list) or not nodes:
        return None
    alarms = [
        f"{n['name']}: {kind}" for n in nodes for kind in ("mem_alarm", "disk_free_alarm") if n.get(kind)
    ]
    return {
        "members": sorted(n["name"] for n in nodes),
        "running": sorted(n["name"] for n in nodes if n.get("running")),
        "partitions": {n["name"]: n["partitions"] for n in nodes if n.get("partitions")},
        "alarms": alarms,
    }


def quorum_queues_without(node):
    """
    ``vhost/name`` of every quorum queue with no member on ``node``, or None
    when the API cannot answer.

    CLI Example:

    .. code-block:: bash

        salt node1 airflow_ha_rabbitmq_api.quorum_queues_without rabbit@node3
    """
    queues = _get("/queues?columns=name,vhost,type,members")
    if not isinstance(queues, list):
        return None
    return sorted(
        f"{q['vhost']}/{q['name']}"
        for q in queues
        if q.get("type") == "quorum" and node not in (q.get("members") or [])
    )


def _user(name):
    users = _get("/users")
    if not isinstance(users, list):
        return None
    return next((u for u in users if u.get("name") == name), {})


def password_matches(name, password):
    """
    True when ``password`` is the password of ``name``, read from its stored
    hash (salted SHA-256/512: nothing is sent to the broker but the admin's
    own login). False or None when the API cannot confirm it.

    From the CLI the password lands in the shell history and the master's job
    cache: the state ``airflow_ha_rabbitmq.user_password`` takes it from pillar.

    CLI Example:

    .. code-block:: bash

        salt node1 airflow_ha_rabbitmq_api.password_matches airflow "$PASSWORD"
    """
    user = _user(name)
    digest = HASHES.get((user or {}).get("hashing_algorithm"))
    if not user or digest is None:
        return None
    try:
        stored = base64.b64decode(user.get("password_hash") or "", validate=True)
    except ValueError:
        return None
    salt_, want = stored[:4], stored[4:]
    return len(stored) > 4 and hmac.compare_digest(digest(salt_ + password.encode()).digest(), want)


def user_present(name, tags=None, perms=None):
    """
    True when the API confirms the user ``name`` exists with exactly ``tags``
    (when given) and the permissions ``perms`` (Salt's rabbitmq_user.present
    shape: ``[{vhost: [configure, write, read]}]``) on each vhost named there.
    The ``unless`` of the formula's ``rabbitmq_user.present`` states.

    CLI Example:

    .. code-block:: bash

        salt node1 airflow_ha_rabbitmq_api.user_present admin tags='[administrator]'
    """
    user = _user(name)
    if not user:
        return False
    if tags is not None and sorted(user.get("tags") or []) != sorted(tags):
        return False
    wanted = {vhost: list(p) for entry in perms or [] for vhost, p in entry.items()}
    if not wanted:
        return True
    have = _get(f"/users/{_quote(name)}/permissions")
    if not isinstance(have, list):
        return False
    held = {p["vhost"]: [p["configure"], p["write"], p["read"]] for p in have}
    return all(held.get(vhost) == p for vhost, p in wanted.items())


def user_absent(name):
    """
    True when the API confirms no user ``name`` exists (the ``unless`` of the
    formula's ``rabbitmq_user.absent``).

    CLI Example:

    .. code-block:: bash

        salt node1 airflow_ha_rabbitmq_api.user_absent guest
    """
    return _user(name) == {}


def vhost_present(name):
    """
    True when the API confirms the vhost ``name`` exists (the ``unless`` of
    the formula's ``rabbitmq_vhost.present``).

    CLI Example:

    .. code-block:: bash

        salt node1 airflow_ha_rabbitmq_api.vhost_present airflow
    """
    vhosts = _get("/vhosts?columns=name")
    return isinstance(vhosts, list) and any(v.get("name") == name for v in vhosts)
