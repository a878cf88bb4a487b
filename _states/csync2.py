"""
State: this node's csync2 folders are in sync with its peers.

Why custom: Salt has no csync2 state. An orchestration needs a requisite
meaning "every node has pushed its DAG changes and csync2 sees no
difference", and ``test=True`` must say which files would be pushed where.

.. code-block:: yaml

    airflow_ha-csync2-synced:
      csync2.synced: []

    # orchestration: all nodes pushed and in sync before the next step
    airflow_ha-orch-dags-synced:
      salt.state:
        - tgt: 'node*'
        - sls: airflow_ha.csync2.synced
"""

__virtualname__ = "csync2"
VERBS = {"pushed": "update", "deleted": "delete"}


def __virtual__():
    if "csync2.sync" in __salt__:
        return __virtualname__
    return (
        False,
        "csync2 state: the csync2 execution module is not loaded (csync2 missing or not configured)",
    )


def _count(mapping):
    return sum(len(v) for v in mapping.values())


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

    Changes: ``pushed`` and ``deleted`` {peer: [paths]}. ``test=True``
    runs ``csync2 -x -d`` (the peers are contacted, nothing changes) and lists
    what would be pushed. Fails when a peer is unreachable, a conflict is
    left, or a difference remains that only a peer's push can fix (the
    comment names it: run the state there too).
    """
    ret = {"name": name, "result": False, "changes": {}, "comment": ""}

    # read + compare: what would a push do?
    preview = __salt__["csync2.sync"](paths=paths, peers=peers, dry_run=True)
    if not preview.get("result"):
        ret["comment"] = f"csync2 cannot reach a consistent state: {preview.get('comment')}"
        return ret
    would = {"pushed": preview.get("pushed", {}), "deleted": preview.get("deleted", {})}
    n = _count(would["pushed"]) + _count(would["deleted"])

    if n == 0:
        status = __salt__["csync2.in_sync"](check=False)
        if not status.get("result"):
            ret["comment"] = f"csync2 in-sync test failed: {status.get('comment')}"
            return ret
        if status.get("in_sync"):
            ret.update(result=True, comment="in sync with all peers, nothing to push")
        else:
            ret["comment"] = (
                "nothing to push from here, but csync2 still differs from peers "
                f"(their changes are not pushed yet — apply csync2.synced there): {status.get('differences')}"
            )
        return ret

    # test mode
    if __opts__.get("test"):
        ret.update(
            result=None,
            changes={k: v for k, v in would.items() if v},
            comment=f"would push {n} change(s): "
            + "; ".join(
                f"{VERBS[kind]} {', '.join(files)} on {peer}"
                for kind, by_peer in would.items()
                for peer, files in sorted(by_peer.items())
            ),
        )
        return ret

    # act
    done = __salt__["csync2.sync"](paths=paths, peers=peers)
    changes = {k: done.get(k) for k in ("pushed", "deleted") if done.get(k)}
    ret["changes"] = changes
    if not done.get("result"):
        ret["comment"] = f"push failed: {done.get('comment')}"
        return ret
    after = __salt__["csync2.in_sync"](check=False)
    if after.get("result") and after.get("in_sync"):
        ret.update(result=True, comment=f"pushed: {done.get('comment')}; in sync with all peers")
    else:
        ret["comment"] = (
            f"pushed ({done.get('comment')}) but still not in sync: "
            f"{after.get('differences') or after.get('comment')}"
        )
    return ret
