"""
States for the airflow_ha formula's RabbitMQ cluster (``airflow_ha.rabbitmq``).

Why custom states:

* ``user_password``: Salt's ``rabbitmq_user.present`` checks and sets the
  password with ``rabbitmqctl ... NAME PASSWORD``, which puts the password in
  the argv of rabbitmqctl and Debian's ``su`` wrapper. This state feeds it
  through stdin (``airflow_ha_rabbitmq`` module) and reads it from the pillar
  itself (``password_pillar``), so it is not in the rendered SLS, the state's
  arguments, ``changes`` or the comment either. Tags and permissions stay with
  ``rabbitmq_user.present`` (no password given: it leaves the password alone
  for an existing user).
* ``clustered``: joins a node that came up standalone by mistake, checking
  ``cluster_status`` of the node and its peers first; never resets a node
  that is or was clustered, or that holds data (see
  ``airflow_ha_rabbitmq.cluster_plan``).
* ``departed_forgotten``: forgets members that left the pillar (scale-in),
  only once they are stopped and the others keep a majority running. Salt's
  ``rabbitmq_cluster`` state only joins.
"""

import time

from salt.exceptions import CommandExecutionError

__virtualname__ = "airflow_ha_rabbitmq"


def __virtual__():
    if "airflow_ha_rabbitmq.cluster_status" not in __salt__:
        return (False, "the airflow_ha_rabbitmq execution module is not loaded (saltutil.sync_all)")
    return __virtualname__


def _ret(name):
    return {"name": name, "changes": {}, "result": False, "comment": ""}


def user_password(name, password_pillar):
    """
    Ensure the RabbitMQ internal user ``name`` exists with the password held
    in the pillar key ``password_pillar`` (e.g.
    ``airflow_ha:secrets:rabbitmq_password``).

    .. code-block:: yaml

        airflow_ha-rabbitmq-user-airflow-password:
          airflow_ha_rabbitmq.user_password:
            - name: airflow
            - password_pillar: airflow_ha:secrets:rabbitmq_password
    """
    ret = _ret(name)
    # Not pillar.get: in Salt 3008 it returns a mask for every pillar string
    # outside template rendering unless called with unmask=True, which older
    # Salt lacks; ah_secrets.pillar_get walks __pillar__ itself.
    password = __utils__["ah_secrets.pillar_get"](__pillar__, password_pillar)
    if not isinstance(password, str) or not password:
        ret["comment"] = (
            f"pillar {password_pillar} is not set: put the password for RabbitMQ user "
            f"{name!r} there (see pillar.example)"
        )
        return ret
    try:
        # read -> compare
        exists = __salt__["airflow_ha_rabbitmq.user_exists"](name)
        if exists and __salt__["airflow_ha_rabbitmq.check_password"](name, password):
            ret["result"] = True
            ret["comment"] = f"RabbitMQ user {name!r} exists and its password matches {password_pillar}."
            return ret
        what = "password" if exists else "user"
        change = (
            {"old": "differs from pillar", "new": f"from {password_pillar}"}
            if exists
            else {"old": None, "new": name}
        )
        # test mode: the same changes a real run reports
        ret["changes"] = {what: change}
        if __opts__["test"]:
            ret["result"] = None
            ret["comment"] = (
                f"RabbitMQ user {name!r} would get the password from {password_pillar}."
                if exists
                else f"RabbitMQ user {name!r} would be created (password from {password_pillar})."
            )
            return ret
        # act
        if exists:
            __salt__["airflow_ha_rabbitmq.change_password"](name, password)
        else:
            try:
                __salt__["airflow_ha_rabbitmq.add_user"](name, password)
            except CommandExecutionError:
                # Another broker node may have created it a moment ago.
                if not __salt__["airflow_ha_rabbitmq.user_exists"](name):
                    raise
                __salt__["airflow_ha_rabbitmq.change_password"](name, password)
        # re-read and verify
        ok = __salt__["airflow_ha_rabbitmq.check_password"](name, password)
    except CommandExecutionError as exc:
        ret["changes"] = {}
        ret["comment"] = f"RabbitMQ user {name!r}: {exc}"
        return ret
    if not ok:
        ret["comment"] = f"RabbitMQ user {name!r}: the password was set but does not authenticate"
        return ret
    ret["result"] = True
    ret["comment"] = (
        f"RabbitMQ user {name!r}: password set from {password_pillar}."
        if exists
        else f"RabbitMQ user {name!r} created (password from {password_pillar})."
    )
    return ret


def clustered(name, nodes, settle=60, interval=5):
    """
    Ensure the local RabbitMQ node ``name`` (e.g. ``rabbit@node2``) belongs to
    the cluster of ``nodes``. Clustering itself happens at first boot through
    ``classic_config`` peer discovery; this state only repairs a node that
    booted standalone (stop_app, reset, join_cluster, start_app), and only
    when it holds nothing but defaults: one that never joined, or a rebuilt
    host its peers still list (forgotten on a running peer first, when the
    others keep a majority).

    A node still joining looks standalone to itself for a moment while its
    peers already list it (seen in the lab under load). So a plan other than
    ``ok`` is read again every ``interval`` seconds and acted on (join) or
    reported (refuse) only when it still holds after ``settle`` seconds.

    .. code-block:: yaml

        airflow_ha-rabbitmq-clustered:
          airflow_ha_rabbitmq.clustered:
            - name: rabbit@node2
            - nodes: [rabbit@node1, rabbit@node2, rabbit@node3]
    """
    ret = _ret(name)
    if not isinstance(nodes, list) or name not in nodes:
        ret["comment"] = (
            f"nodes must list every broker node including {name} (got {nodes!r}): check the "
            "`broker` role in airflow_ha:nodes"
        )
        return ret
    deadline = time.monotonic() + float(settle)
    while True:
        try:
            plan = __salt__["airflow_ha_rabbitmq.cluster_plan"](nodes, node=name)
        except CommandExecutionError as exc:
            ret["comment"] = f"cannot read the cluster status of {name}: {exc}"
            return ret
        if plan["action"] == "ok" or time.monotonic() >= deadline:
            break
        time.sleep(float(interval))
    if plan["action"] == "ok":
        return _members_everywhere(ret, name, f"{name}: {plan['reason']}.")
    if plan["action"] == "refuse":
        ret["comment"] = f"{name}: {plan['reason']} (unchanged for {float(settle):.0f} s)."
        return ret
    change = {"old": plan["members"], "new": f"member of {plan['peer']}'s cluster"}
    rejoin = plan["action"] == "rejoin"
    if __opts__["test"]:
        ret["result"] = None
        ret["changes"] = {"cluster": change}
        forget = f"be forgotten on {plan['peer']}, " if rejoin else ""
        ret["comment"] = f"{name} would {forget}be reset and join {plan['peer']} ({plan['reason']})."
        return ret
    try:
        status = __salt__["airflow_ha_rabbitmq.join"](plan["peer"], forget_node=name if rejoin else None)
    except CommandExecutionError as exc:
        ret["comment"] = f"{name}: joining {plan['peer']} failed: {exc}"
        return ret
    change["new"] = status["members"]
    ret["changes"] = {"cluster": change}
    if plan["peer"] not in status["members"]:
        ret["comment"] = f"{name}: joined {plan['peer']} but cluster_status shows {status['members']}"
        return ret
    how = f"forgotten on {plan['peer']} (rebuilt host), " if rejoin else ""
    return _members_everywhere(
        ret,
        name,
        f"{name} was standalone with defaults only; {how}reset and joined {plan['peer']}.",
        fresh=True,
    )


def _members_everywhere(ret, name, comment, fresh=False):
    """Give every quorum queue a member on ``name`` (after a late join).
    ``fresh``: just joined, so the members are read through rabbitmqctl, not
    the management API's lagging statistics."""
    try:
        missing = __salt__["airflow_ha_rabbitmq.quorum_queues_without"](name, fresh=fresh)
        if missing and not __opts__["test"]:
            left = __salt__["airflow_ha_rabbitmq.grow_quorum_queues"](name)
        else:
            left = missing
    except CommandExecutionError as exc:
        ret["comment"] = f"{comment} Checking quorum queue members failed: {exc}"
        return ret
    if not missing:
        ret["result"] = True
        ret["comment"] = comment
        return ret
    if __opts__["test"]:
        ret["result"] = None
        ret["changes"]["quorum_members"] = {"old": missing, "new": f"member on {name}"}
        ret["comment"] = f"{comment} {len(missing)} quorum queue(s) would get a member on {name}."
        return ret
    ret["changes"]["quorum_members"] = {"old": missing, "new": sorted(set(missing) - set(left))}
    if left:
        ret["comment"] = f"{comment} Quorum queues still without a member on {name}: {', '.join(left)}"
        return ret
    ret["result"] = True
    ret["comment"] = f"{comment} Added a member on {name} to {len(missing)} quorum queue(s)."
    return ret


def restarted_if_stale(name, paths=(), units=()):
    """
    Restart the running systemd unit ``name`` when a file in ``paths`` or a
    unit in ``units`` changed after it started.

    Why not ``service.running`` + ``watch``: on the first install the
    package's postinst starts RabbitMQ with the files already in place, and a
    ``watch`` would restart every node again right after the cluster formed
    (~17 s each). Comparing mtimes with the unit's start time restarts only
    when the running process has not read the file, and also catches a change
    whose restart was lost (a failed earlier run).

    .. code-block:: yaml

        airflow_ha-rabbitmq-restart:
          airflow_ha_rabbitmq.restarted_if_stale:
            - name: rabbitmq-server
            - paths: [/etc/rabbitmq/rabbitmq.conf]
            - units: [epmd.socket]
    """
    ret = _ret(name)
    try:
        newer = __salt__["airflow_ha_systemd.stale"](name, list(paths), list(units))
    except CommandExecutionError as exc:
        ret["comment"] = f"cannot tell whether {name} is up to date: {exc}"
        return ret
    if not newer:
        ret["result"] = True
        ret["comment"] = f"{name} started after its last configuration change."
        return ret
    ret["changes"] = {"restarted": {"old": None, "new": name}, "changed_since_start": newer}
    if __opts__["test"]:
        ret["result"] = None
        ret["comment"] = f"{name} would be restarted: {', '.join(newer)} changed since it started."
        return ret
    try:
        restarted = __salt__["service.restart"](name)
        # re-read: nothing may be newer than the new start
        left = restarted and __salt__["airflow_ha_systemd.stale"](name, list(paths), list(units))
    except CommandExecutionError as exc:
        ret["comment"] = f"restarting {name}: {exc}"
        return ret
    if not restarted:
        ret["comment"] = f"restarting {name} failed (see `journalctl -u {name}`)"
        return ret
    if left:
        ret["comment"] = f"{name} restarted but still older than {', '.join(left)}"
        return ret
    ret["result"] = True
    ret["comment"] = f"{name} restarted: {', '.join(newer)} changed since it started."
    return ret


def departed_forgotten(name, nodes):
    """
    The cluster, asked through the local node ``name``, lists no member
    besides ``nodes`` (the pillar's broker nodes): a node scaled in is
    forgotten (``forget_cluster_node``, which drops its quorum queue
    replicas) once it is stopped, and only while a majority of ``nodes`` runs
    (``airflow_ha_rabbitmq.departed_plan``). Refuses, changing nothing, while
    a departed node still runs.

    .. code-block:: yaml

        airflow_ha-rabbitmq-departed:
          airflow_ha_rabbitmq.departed_forgotten:
            - name: rabbit@node1
            - nodes: [rabbit@node1, rabbit@node2, rabbit@node3]
    """
    ret = _ret(name)
    try:
        plan = __salt__["airflow_ha_rabbitmq.departed_plan"](nodes)
    except CommandExecutionError as exc:
        ret["comment"] = f"{name}: cannot read the cluster's members: {exc}"
        return ret
    if plan["action"] == "ok":
        ret["result"] = True
        ret["comment"] = f"{name}: {plan['reason']}."
        return ret
    if plan["action"] == "refuse":
        ret["comment"] = f"{name}: {plan['reason']}."
        return ret
    change = {"old": sorted(plan["departed"]), "new": []}
    if __opts__["test"]:
        ret["result"] = None
        ret["changes"] = {"departed": change}
        ret["comment"] = f"{name} would forget {', '.join(plan['departed'])} ({plan['reason']})."
        return ret
    errors = []
    for node in plan["departed"]:
        try:
            __salt__["airflow_ha_rabbitmq.forget"](node, name)
        except CommandExecutionError as exc:
            errors.append(str(exc))
    try:
        left = [m for m in __salt__["airflow_ha_rabbitmq.cluster_status"]()["members"] if m not in nodes]
    except CommandExecutionError as exc:
        ret["comment"] = f"{name}: forgot {', '.join(plan['departed'])}, then cannot read the members: {exc}"
        return ret
    change["new"] = sorted(left)
    ret["changes"] = {"departed": change}
    if left:
        ret["comment"] = f"{name}: still lists {', '.join(left)}: {'; '.join(errors) or 'no error given'}"
        return ret
    ret["result"] = True
    ret["comment"] = f"{name}: forgot {', '.join(plan['departed'])}."
    return ret
