"""
States: this node's csync2 folders are in sync with its peers
(``synced``); the peer certificates pinned here match pillar's
(``pins_current``).

Why custom: Salt has no csync2 state. An orchestration needs a requisite
meaning "every node has pushed its DAG changes and csync2 sees no
difference", and ``test=True`` must say which files would be pushed where;
and csync2 has no command to drop a pinned certificate.

.. code-block:: yaml

    airflow_ha-csync2-synced:
      csync2.synced: []

    # orchestration: all nodes pushed and in sync before the next step
    airflow_ha-orch-dags-synced:
      salt.state:
        - tgt: 'node*'
        - sls: airflow_ha.csync2.synced
"""

import salt.utils.data
from salt.exceptions import CommandExecutionError, SaltInvocationError

__virtualname__ = "csync2"
VERBS = {"pushed": "update", "deleted": "delete"}


def __virtual__():
    if "csync2.sync" in __salt__:
        return __virtualname__
    return (
        False,
        "csync2 state: the csync2 execution module is not loaded (csync2 missing or not configured)",
    )


def _ret(name):
    return {"name": name, "result": True, "changes": {}, "comment": ""}


def _count(mapping):
    return sum(len(v) for v in mapping.values())


def _pending(push):
    """The changes a push reports: ``pushed``/``deleted`` {peer: [paths]}, non-empty only."""
    return {k: push.get(k) for k in ("pushed", "deleted") if push.get(k)}


def synced(name, paths=None, peers=None):
    """
    Push this node's pending csync2 changes, then require that csync2 sees no
    difference with any peer.

    name
        Any label.
    paths
        Only push these files/folders (absolute, inside the synced folders).
    peers
        Only push to these peers.

    Changes: ``pushed`` and ``deleted`` {peer: [paths]}, the same keys in
    ``test=True`` (``csync2 -x -d``: the peers are contacted, nothing
    changes) and in a real run. Fails when a peer is unreachable, a conflict
    is left, or a difference remains that only a peer's push can fix (the
    comment names it: run the state there too).
    """
    ret = _ret(name)
    step = "preview"
    try:
        # read + compare: what would a push do?
        would = _pending(__salt__["csync2.sync"](paths=paths, peers=peers, dry_run=True))
        if not would:
            status = __salt__["csync2.in_sync"](check=False)
            if status["in_sync"]:
                ret["comment"] = "in sync with all peers, nothing to push"
                return ret
            ret["result"] = False
            ret["comment"] = (
                "nothing to push from here, but csync2 still differs from peers "
                f"(their changes are not pushed yet — apply csync2.synced there): {status.get('differences')}"
            )
            return ret
        ret["changes"] = would
        # test mode
        if __opts__.get("test"):
            n = sum(_count(v) for v in would.values())
            ret["result"] = None
            ret["comment"] = f"would push {n} change(s): " + "; ".join(
                f"{VERBS[kind]} {', '.join(files)} on {peer}"
                for kind, by_peer in would.items()
                for peer, files in sorted(by_peer.items())
            )
            return ret
        # act
        step = "push failed"
        done = __salt__["csync2.sync"](paths=paths, peers=peers)
        ret["changes"] = _pending(done)
        # re-read and verify
        step = "pushed, but the in-sync test failed"
        after = __salt__["csync2.in_sync"](check=False)
    except (CommandExecutionError, SaltInvocationError) as exc:
        ret["result"] = False
        if step == "push failed":  # what did reach the other peers is a change too
            ret["changes"] = _pending(getattr(exc, "info", None) or {})
        elif step == "preview":
            ret["changes"] = {}
        ret["comment"] = f"{'csync2 cannot reach a consistent state' if step == 'preview' else step}: {exc}"
        return ret
    if after["in_sync"]:
        ret["comment"] = f"pushed: {done.get('comment')}; in sync with all peers"
    else:
        ret["result"] = False
        ret["comment"] = f"pushed ({done.get('comment')}) but still not in sync: {after.get('differences')}"
    return ret


def pins_current(name, certs_pillar="airflow_ha:csync2:certs"):
    """
    Drop every pinned peer certificate that differs from the peer's
    certificate in pillar ``certs_pillar`` ({node: {cert, key}}; only the
    certificates are read), so that nodes switched to pillar certificates,
    or given new ones, are accepted again. Nothing to do when the pillar key
    is empty or every pin matches.

    Changes: ``forgotten`` (the peers), the same key in ``test=True``.

    .. code-block:: yaml

        airflow_ha-csync2-pins:
          csync2.pins_current: []
    """
    ret = _ret(name)
    # __pillar__ itself: Salt's pillar.get masks values it takes for keys
    entries = salt.utils.data.traverse_dict_and_list(__pillar__, certs_pillar, {}, delimiter=":") or {}
    certs = {peer: e.get("cert") for peer, e in entries.items() if isinstance(e, dict) and e.get("cert")}
    try:
        stale = __salt__["csync2.stale_pins"](certs)
    except (CommandExecutionError, SaltInvocationError) as exc:
        ret["result"] = False
        ret["comment"] = f"cannot compare csync2's pinned certificates with {certs_pillar}: {exc}"
        return ret
    if not stale:
        ret["comment"] = f"every pinned peer certificate matches {certs_pillar}"
        return ret
    ret["changes"] = {"forgotten": stale}
    if __opts__["test"]:
        ret["result"] = None
        ret["comment"] = f"would forget the outdated pinned certificate of {', '.join(stale)}"
        return ret
    try:
        for peer in stale:
            __salt__["csync2.forget_peer_cert"](peer)
        left = __salt__["csync2.stale_pins"](certs)
    except (CommandExecutionError, SaltInvocationError) as exc:
        ret["result"] = False
        ret["comment"] = f"forgetting the pinned certificates of {', '.join(stale)} failed: {exc}"
        return ret
    if left:
        ret["result"] = False
        ret["comment"] = f"pinned certificates of {', '.join(left)} still differ from {certs_pillar}"
        return ret
    ret["comment"] = (
        f"forgot the outdated pinned certificate of {', '.join(stale)}; the next connection pins the new one"
    )
    return ret
