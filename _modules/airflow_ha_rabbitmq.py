"""
RabbitMQ helpers for the airflow_ha formula (``airflow_ha.rabbitmq``).

Why a custom module next to Salt's ``rabbitmq`` module:

* Passwords. ``salt.modules.rabbitmq`` runs ``rabbitmqctl add_user NAME PASSWORD``,
  ``change_password NAME PASSWORD`` and ``authenticate_user NAME PASSWORD``: the
  password is in the process argv (``ps``, ``/proc/*/cmdline``) of rabbitmqctl
  and of the ``su rabbitmq -c ...`` Debian's wrapper runs. rabbitmqctl (3.8+,
  also 3.10.8 and 4.0) reads the password from standard input when it is left
  out, so the functions here feed it through stdin and never log the command
  output. Salt's ``rabbitmq_user`` / ``rabbitmq_vhost`` / ``rabbitmq_plugin``
  states are still used for everything that holds no secret (tags,
  permissions, vhost, guest removal, plugins).
* Speed. Reads go to the management API first (``airflow_ha_rabbitmq_api``,
  milliseconds instead of an Erlang VM boot per rabbitmqctl call); only what
  it confirms is taken from it, anything else is read through rabbitmqctl.
* Cluster repair. Salt's ``rabbitmq_cluster.joined`` joins whenever the peer's
  name is missing from ``cluster_status``'s text; it would also reset a node
  that holds data. :func:`cluster_plan` decides from ``cluster_status`` (JSON)
  of this node and of its peers, and only ever resets a node that never joined
  a cluster and holds nothing but RabbitMQ's defaults.

Nothing here runs at import time; functions without a running RabbitMQ
(:func:`node_name`, :func:`cluster_nodes`) are used while SLS files render.

CLI examples:

.. code-block:: bash

    salt node1 airflow_ha_rabbitmq.cluster_status
    salt node1 airflow_ha_rabbitmq.cluster_plan '[rabbit@node1, rabbit@node2, rabbit@node3]'
"""

import json
import logging
import time

from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

__virtualname__ = "airflow_ha_rabbitmq"

RABBITMQCTL = "rabbitmqctl"
RABBITMQ_QUEUES = "rabbitmq-queues"
# Objects a freshly booted node has and nothing else: such a node can be reset
# without losing anything.
DEFAULT_USERS = {"guest"}
DEFAULT_VHOSTS = {"/"}
CTL_TIMEOUT = 30
# Salt's own bound on a CLI call, past the tool's -t: the Erlang VM's boot and
# halt, and a stdin command, which runs without -t (see _ctl).
CTL_VM_MARGIN = 30


def __virtual__():
    return __virtualname__


# ---------------------------------------------------------------------------
# names (render time)


def node_name(minion_id):
    """
    The RabbitMQ node name of a minion: ``rabbit@<short host name>``.

    CLI Example:

    .. code-block:: bash

        salt-call airflow_ha_rabbitmq.node_name node1.example.org
    """
    if not isinstance(minion_id, str) or not minion_id:
        raise CommandExecutionError(f"node_name: expected a minion id, got {minion_id!r}")
    return "rabbit@" + minion_id.split(".")[0]


def cluster_nodes(members):
    """
    Node names of the broker members, sorted: ``members`` is
    ``ah.members.broker`` (a list of ``{id, address}``).

    CLI Example:

    .. code-block:: bash

        salt-call airflow_ha_rabbitmq.cluster_nodes '[{id: node2}, {id: node1}]'
    """
    if not isinstance(members, list) or not all(isinstance(m, dict) and "id" in m for m in members):
        raise CommandExecutionError(
            "cluster_nodes: expected ah.members.broker, a list of {id, address} — "
            "check airflow_ha:nodes and the `broker` role"
        )
    return sorted(node_name(m["id"]) for m in members)


# ---------------------------------------------------------------------------
# rabbitmqctl


def _api(fun, *args):
    """``airflow_ha_rabbitmq_api.<fun>``'s answer, None when it is not loaded."""
    fun = f"airflow_ha_rabbitmq_api.{fun}"
    return __salt__[fun](*args) if fun in __salt__ else None


def _ctl(args, stdin=None, node=None, timeout=CTL_TIMEOUT):
    """Run rabbitmqctl; output is never logged (it may echo what stdin held).

    A command reading a password from stdin runs bare (``add_user NAME``):
    the rabbitmqctl wrapper of RabbitMQ 3.13+ (Debian 13's 4.0.5) lets the
    CLI read stdin only when it counts exactly those arguments; with ``-t``
    or ``-n`` too it starts the CLI with ``-noinput`` and the read never
    returns. Salt's own timeout bounds such a command instead."""
    cmd = [RABBITMQCTL]
    if stdin is None:
        if node:
            cmd += ["-n", node]
        if timeout:
            cmd += ["-t", str(timeout)]
    elif node:
        raise CommandExecutionError("rabbitmqctl: a command fed through stdin runs on the local node only")
    cmd += list(args)
    return __salt__["cmd.run_all"](
        cmd,
        stdin=stdin,
        python_shell=False,
        output_loglevel="quiet",
        ignore_retcode=True,
        reset_system_locale=False,
        timeout=timeout + CTL_VM_MARGIN if timeout else None,
    )


def _ctl_ok(args, stdin=None, node=None, timeout=CTL_TIMEOUT, secret=None):
    """:func:`_ctl` that raises ``CommandExecutionError`` on a non-zero exit:
    the one place the failure message is spelled; ``secret`` (what stdin
    held) is scrubbed from the tool's text."""
    res = _ctl(args, stdin=stdin, node=node, timeout=timeout)
    if res["retcode"] != 0:
        text = (res.get("stderr") or res.get("stdout") or "").strip()[:400]
        if secret:
            text = __utils__["ah_secrets.scrub"](text, [secret])
        where = f"-n {node} " if node else ""
        raise CommandExecutionError(
            f"rabbitmqctl {where}{' '.join(args)} failed (exit {res['retcode']}): {text}"
        )
    return res


def _ctl_json(args, node=None, timeout=CTL_TIMEOUT):
    args = list(args) + ["--formatter", "json"]
    return _parse_json(_ctl_ok(args, node=node, timeout=timeout)["stdout"], " ".join(args))


def _parse_json(text, what):
    """rabbitmqctl may print banner lines before the JSON document."""
    text = (text or "").strip()
    for start in range(len(text)):
        if text[start] in "[{":
            try:
                return json.loads(text[start:])
            except ValueError:
                continue
    raise CommandExecutionError(f"rabbitmqctl {what}: no JSON in its output: {text[:200]!r}")


def cluster_status(node=None):
    """
    ``rabbitmqctl cluster_status`` of the local node (or ``node``) as a dict
    with ``members`` (disk and RAM nodes), ``running`` and ``partitions``.

    CLI Example:

    .. code-block:: bash

        salt node1 airflow_ha_rabbitmq.cluster_status
    """
    if node is None:
        fast = _api("cluster_status")
        if fast is not None:
            return fast
    raw = _ctl_json(["cluster_status"], node=node)
    members = sorted(set(raw.get("disk_nodes", []) + raw.get("ram_nodes", [])))
    partitions = raw.get("partitions") or {}
    if isinstance(partitions, list):
        partitions = {str(i): p for i, p in enumerate(partitions)}
    return {
        "members": members,
        "running": sorted(raw.get("running_nodes", [])),
        "partitions": partitions,
        "alarms": raw.get("alarms", []),
    }


def list_users():
    """
    Names of the internal users.

    CLI Example:

    .. code-block:: bash

        salt node1 airflow_ha_rabbitmq.list_users
    """
    return sorted(u["user"] for u in _ctl_json(["list_users"]))


def list_vhosts():
    """
    Names of the virtual hosts.

    CLI Example:

    .. code-block:: bash

        salt node1 airflow_ha_rabbitmq.list_vhosts
    """
    return sorted(v["name"] for v in _ctl_json(["list_vhosts", "name"]))


def is_untouched():
    """
    True when this node holds only what a fresh RabbitMQ creates: the user
    ``guest``, the vhost ``/`` and no queue. Such a node loses nothing when
    it is reset.

    CLI Example:

    .. code-block:: bash

        salt node1 airflow_ha_rabbitmq.is_untouched
    """
    if set(list_users()) - DEFAULT_USERS:
        return False
    if set(list_vhosts()) - DEFAULT_VHOSTS:
        return False
    return not _ctl_json(["list_queues", "-p", "/", "name"])


def user_exists(name):
    """
    True when the internal user ``name`` exists.

    CLI Example:

    .. code-block:: bash

        salt node1 airflow_ha_rabbitmq.user_exists airflow
    """
    return _api("user_present", name) is True or name in list_users()


def check_password(name, password):
    """
    True when ``password`` authenticates ``name``. The password goes through
    stdin (``rabbitmqctl authenticate_user NAME``), never argv.

    From the CLI the password lands in the shell history and the master's job
    cache: the state ``airflow_ha_rabbitmq.user_password`` takes it from pillar.

    CLI Example:

    .. code-block:: bash

        salt node1 airflow_ha_rabbitmq.check_password airflow "$PASSWORD"
    """
    if _api("password_matches", name, password) is True:
        return True
    res = _ctl(["authenticate_user", name], stdin=password + "\n")
    return res["retcode"] == 0


def add_user(name, password):
    """
    Create ``name`` with ``password`` (through stdin). Returns True.

    From the CLI the password lands in the shell history and the master's job
    cache: the state ``airflow_ha_rabbitmq.user_password`` takes it from pillar.

    CLI Example:

    .. code-block:: bash

        salt node1 airflow_ha_rabbitmq.add_user bob "$PASSWORD"
    """
    _ctl_ok(["add_user", name], stdin=password + "\n", secret=password)
    return True


def change_password(name, password):
    """
    Set ``name``'s password (through stdin). Returns True.

    From the CLI the password lands in the shell history and the master's job
    cache: the state ``airflow_ha_rabbitmq.user_password`` takes it from pillar.

    CLI Example:

    .. code-block:: bash

        salt node1 airflow_ha_rabbitmq.change_password bob "$PASSWORD"
    """
    _ctl_ok(["change_password", name], stdin=password + "\n", secret=password)
    return True


# ---------------------------------------------------------------------------
# cluster membership


def cluster_plan(nodes, node=None):
    """
    Decide what this node needs to be a member of the cluster ``nodes``
    (RabbitMQ node names, this node included). Returns a dict:

    ``action``
        ``ok`` (already clustered, or alone with no peer reachable: the seed),
        ``join`` (a node that came up standalone by mistake and holds only
        defaults: reset it and join ``peer``), ``rejoin`` (a rebuilt, blank
        node its peers still list: ``peer`` forgets it, then it joins) or
        ``refuse`` (standalone but holding data, or too few peers running:
        needs an operator).
    ``peer``, ``members``, ``reason``.

    A node whose cluster has any other member is never touched: re-applying
    never resets a clustered node, running or not.

    CLI Example:

    .. code-block:: bash

        salt node2 airflow_ha_rabbitmq.cluster_plan '[rabbit@node1, rabbit@node2, rabbit@node3]'
    """
    if not isinstance(nodes, list) or not nodes:
        raise CommandExecutionError("cluster_plan: `nodes` must be a non-empty list of rabbit@host names")
    local = cluster_status()
    me = node or _self_name(local)
    members = local["members"]
    plan = {"node": me, "members": members, "peer": None}
    if [m for m in members if m != me]:
        return dict(plan, action="ok", reason=f"clustered with {', '.join(m for m in members if m != me)}")
    peers = [n for n in nodes if n != me]
    if not peers:
        return dict(plan, action="ok", reason="the only broker node")
    seen, running = {}, {}
    for peer in peers:
        try:
            status = cluster_status(node=peer)
        except CommandExecutionError as exc:
            log.debug("airflow_ha_rabbitmq: peer %s not reachable: %s", peer, exc)
            continue
        if peer not in status["running"]:
            continue
        seen[peer] = status["members"]
        running[peer] = status["running"]
    if not seen:
        return dict(plan, action="ok", reason="standalone; no peer reachable yet (this node is the seed)")
    for peer, peer_members in seen.items():
        if me in peer_members:
            return _rejoin_plan(plan, me, peer, peer_members, running[peer])
    # Join the largest cluster; among standalone peers the first name is the
    # seed, so two standalone nodes never try to join each other.
    target = sorted(seen, key=lambda p: (-len(seen[p]), p))[0]
    if len(seen[target]) == 1 and me < target:
        return dict(plan, action="ok", reason=f"standalone seed; {target} will join {me}")
    if not is_untouched():
        return dict(
            plan,
            action="refuse",
            peer=target,
            reason=(
                f"{me} runs standalone but holds users, vhosts or queues besides the defaults, "
                f"so it is not reset automatically: move its data, then `rabbitmqctl stop_app; "
                f"rabbitmqctl reset; rabbitmqctl join_cluster {target}; rabbitmqctl start_app`"
            ),
        )
    return dict(
        plan,
        action="join",
        peer=target,
        reason=f"standalone with defaults only; {target} runs a cluster of {', '.join(seen[target])}",
    )


def _rejoin_plan(plan, me, peer, peer_members, peer_running):
    """A standalone node its peers still list: a rebuilt host (blank broker)
    is forgotten on ``peer`` and joins again, when the others keep a majority
    of the smaller cluster running; a node holding data is left to an operator."""
    if me in peer_running:
        return dict(
            plan,
            action="refuse",
            peer=peer,
            reason=f"{peer} sees {me} running in its cluster while {me} sees itself alone: wait, then re-apply",
        )
    if not is_untouched():
        return dict(
            plan,
            action="refuse",
            peer=peer,
            reason=(
                f"{peer} still lists {me} as a member but {me} is standalone and holds users, vhosts or "
                f"queues: move its data, run `rabbitmqctl forget_cluster_node {me}` on {peer}, then re-apply"
            ),
        )
    left = len(peer_members) - 1
    up = len([n for n in peer_running if n != me])
    if up < left // 2 + 1:
        return dict(
            plan,
            action="refuse",
            peer=peer,
            reason=(
                f"only {up} of {left} other broker nodes run: forgetting {me} now could leave quorum "
                "queues without a majority; bring them back first"
            ),
        )
    return dict(
        plan,
        action="rejoin",
        peer=peer,
        reason=f"{peer} still lists {me}, which is blank (rebuilt): forget it there and join again",
    )


def forget(node, peer):
    """
    Make ``peer`` forget the cluster member ``node`` (``rabbitmqctl -n peer
    forget_cluster_node node``, which also drops its quorum queue replicas):
    only for a node whose broker was rebuilt blank (:func:`cluster_plan` says
    ``rejoin``), before it joins again, or one scaled in
    (:func:`departed_plan` says ``forget``).

    CLI Example:

    .. code-block:: bash

        salt node3 airflow_ha_rabbitmq.forget rabbit@node3 rabbit@node1
    """
    _ctl_ok(["forget_cluster_node", node], node=peer, timeout=120)
    return True


def departed_plan(nodes):
    """
    The cluster members that ``nodes`` (the broker nodes of the pillar, as
    RabbitMQ node names) no longer name: nodes scaled in. A dict: ``action``
    ``ok`` (none), ``forget`` (each is stopped and the pillar's nodes keep a
    majority running: forget them) or ``refuse`` (one still runs, or too few
    of the others do); ``departed``, ``running``, ``reason``.

    CLI Example:

    .. code-block:: bash

        salt node1 airflow_ha_rabbitmq.departed_plan '[rabbit@node1, rabbit@node2, rabbit@node3]'
    """
    if not isinstance(nodes, list) or not nodes:
        raise CommandExecutionError("departed_plan: `nodes` must be a non-empty list of rabbit@host names")
    local = cluster_status()
    gone = [m for m in local["members"] if m not in nodes]
    plan = {"departed": gone, "running": local["running"]}
    if not gone:
        return dict(plan, action="ok", reason="every member is a broker node of the pillar")
    alive = [m for m in gone if m in local["running"]]
    if alive:
        return dict(
            plan,
            action="refuse",
            reason=(
                f"{', '.join(alive)} left airflow_ha:nodes (role broker) but still runs: stop RabbitMQ "
                "there (or power the host off), then re-apply"
            ),
        )
    up = [m for m in local["running"] if m in nodes]
    if len(up) < len(nodes) // 2 + 1:
        return dict(
            plan,
            action="refuse",
            reason=(
                f"only {len(up)} of the {len(nodes)} broker nodes run: forgetting {', '.join(gone)} now "
                "could leave quorum queues without a majority; bring them back first"
            ),
        )
    return dict(plan, action="forget", reason=f"{', '.join(gone)} left airflow_ha:nodes and are stopped")


def _self_name(local):
    running = local["running"]
    res = _ctl(["eval", "node()."])
    name = (res.get("stdout") or "").strip().strip("'")
    if res["retcode"] == 0 and name.startswith("rabbit"):
        return name
    if len(running) == 1:
        return running[0]
    raise CommandExecutionError("cannot tell this RabbitMQ node's name (rabbitmqctl eval 'node().' failed)")


def join(peer, forget_node=None):
    """
    Reset this node and join ``peer``'s cluster: ``stop_app``, ``reset``,
    ``join_cluster``, ``start_app``. Only call it when :func:`cluster_plan`
    said ``join``, or ``rejoin`` with ``forget_node`` (this node's name): it
    was rebuilt blank and ``peer`` still lists it, so once its app is stopped
    ``peer`` forgets it (:func:`forget`) before the reset. RabbitMQ 4 refuses to
    forget a member whose app still runs. Returns the new ``cluster_status``.
    Quorum queues declared before the join have no member here yet: see
    :func:`grow_quorum_queues`.

    CLI Example:

    .. code-block:: bash

        salt node3 airflow_ha_rabbitmq.join rabbit@node1
        salt node3 airflow_ha_rabbitmq.join rabbit@node1 forget_node=rabbit@node3
    """

    def step(args):
        _ctl_ok(args, timeout=120)

    try:
        step(["stop_app"])
        if forget_node:
            forget(forget_node, peer)
        step(["reset"])
        step(["join_cluster", peer])
    except CommandExecutionError:
        _ctl(["start_app"], timeout=120)
        raise
    step(["start_app"])
    _ctl(["await_startup"], timeout=120)
    return cluster_status()


# ---------------------------------------------------------------------------
# quorum queue members


def quorum_queues_without(node, fresh=False):
    """
    ``vhost/name`` of every quorum queue that has no member on ``node``.
    RabbitMQ 3.10 never adds a member by itself, so a node that joined after a
    queue was declared (or was replaced) holds no replica of it.

    ``fresh=True`` reads through rabbitmqctl only: right after a join the
    management API's queue list still shows the members from before the
    node was forgotten (its statistics lag by seconds; seen on RabbitMQ 4.0,
    where a rebuilt node got its replicas only from the next apply).

    CLI Example:

    .. code-block:: bash

        salt node3 airflow_ha_rabbitmq.quorum_queues_without rabbit@node3
        salt node3 airflow_ha_rabbitmq.quorum_queues_without rabbit@node3 fresh=True
    """
    fast = None if fresh else _api("quorum_queues_without", node)
    if fast is not None:
        return fast
    missing = []
    for vhost in list_vhosts():
        for q in _ctl_json(["list_queues", "-p", vhost, "name", "type", "members"]):
            if q.get("type") == "quorum" and node not in (q.get("members") or []):
                missing.append(f"{vhost}/{q['name']}")
    return sorted(missing)


def grow_quorum_queues(node, attempts=5, interval=5, timeout=120):
    """
    Add a member on ``node`` to every quorum queue lacking one
    (``rabbitmq-queues grow NODE all``), retrying while the node's quorum
    system is still starting. Returns the queues still without a member.

    CLI Example:

    .. code-block:: bash

        salt node1 airflow_ha_rabbitmq.grow_quorum_queues rabbit@node3
    """
    missing = quorum_queues_without(node, fresh=True)
    for _ in range(attempts):
        if not missing:
            break
        res = __salt__["cmd.run_all"](
            [RABBITMQ_QUEUES, "-t", str(timeout), "grow", node, "all"],
            python_shell=False,
            output_loglevel="quiet",
            ignore_retcode=True,
            reset_system_locale=False,
            timeout=timeout + CTL_VM_MARGIN,
        )
        if res["retcode"] != 0:
            log.warning("airflow_ha_rabbitmq: rabbitmq-queues grow %s all: %s", node, res.get("stderr"))
        missing = quorum_queues_without(node, fresh=True)
        if missing:
            time.sleep(interval)
    return missing
