"""
States: this node's csync2 folders are in sync with its peers
(``synced``); this node holds what its peers hold, waiting for their
pushes (``caught_up``: a new or rebuilt node before its Airflow units
first start); the peer certificates pinned here match pillar's
(``pins_current``).

Why custom: Salt has no csync2 state. An orchestration needs a requisite
meaning "every node has pushed its DAG changes and csync2 sees no
difference", and ``test=True`` must say which files would be pushed where;
and csync2 has no command to drop a pinned certificate. A rebuilt node
must not start Airflow on a half-filled DAG folder, and no built-in state
waits on another host's pushes.

.. code-block:: yaml

    airflow_ha-csync2-synced:
      csync2.synced: []

    # orchestration: all nodes pushed and in sync before the next step
    airflow_ha-orch-dags-synced:
      salt.state:
        - tgt: 'node*'
        - sls: airflow_ha.csync2.synced
"""

import time

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


def _behind():
    """(reachable peers, {peer: [paths]} this node lacks or holds differently)."""
    peers = sorted(p for p, v in __salt__["csync2.status"]()["peers"].items() if v.get("reachable"))
    behind = {}
    for i, peer in enumerate(peers):
        found = __salt__["csync2.in_sync"](peer=peer, check=i == 0)
        paths = sorted({d["path"] for d in found["differences"].get(peer, []) if d["state"] != "only_here"})
        if paths:
            behind[peer] = paths
    return peers, behind


def _describe(behind):
    return "; ".join(f"{peer}: {', '.join(paths)}" for peer, paths in sorted(behind.items()))


def caught_up(name, timeout=300, interval=5):
    """
    Wait until this node holds every file of its synced folders that a
    reachable peer holds, as the peer holds it. For a node whose Airflow has
    not run yet (a new or rebuilt host): its units then start with the whole
    DAG folder. The peers' watchers push what a returning or new node lacks
    (``csync2 -T`` against it, then mark and push); this state only waits
    and verifies, it pushes nothing (a blank node has nothing to give).

    Peers that do not answer on the csync2 port are left out, so a dead peer
    does not hold a rebuild; with no peer reachable there is nothing to wait
    for. Files only this node holds do not count.

    timeout
        Seconds to wait for the peers' pushes; then the state fails naming
        the files still missing and the peer that holds them.
    interval
        Seconds between two comparisons.

    Changes: none, in ``test=True`` and in a real run (waiting changes
    nothing); ``test=True`` compares once and says what it would wait for.

    .. code-block:: yaml

        airflow_ha-airflow-dags-caught-up:
          csync2.caught_up:
            - timeout: 300
            - unless: systemctl is-active -q airflow-scheduler.service
    """
    ret = _ret(name)
    try:
        timeout, interval = float(timeout), float(interval)
    except (TypeError, ValueError):
        ret["result"] = False
        ret["comment"] = f"timeout and interval must be numbers of seconds (got {timeout!r}, {interval!r})"
        return ret
    start = time.monotonic()
    rounds = 0
    while True:
        # read + compare; a peer that does not know this node yet (its own
        # apply is still rewriting csync2.cfg) refuses the test: wait for it
        rounds += 1
        try:
            peers, behind = _behind()
            lacking = None
        except (CommandExecutionError, SaltInvocationError) as exc:
            peers, behind = None, None
            lacking = f"the peers cannot be compared with yet: {exc}"
        if peers == []:
            ret["comment"] = "no peer answers on the csync2 port: nothing to catch up from"
            return ret
        if behind == {}:
            waited = time.monotonic() - start
            ret["comment"] = f"holds everything {', '.join(peers)} hold" + (
                f" (waited {waited:.0f} s for their pushes)" if rounds > 1 else ""
            )
            return ret
        if lacking is None:
            n = len({p for paths in behind.values() for p in paths})
            lacking = f"this node lacks {n} file(s) the peers hold: {_describe(behind)}"
        # test mode
        if __opts__.get("test"):
            ret["result"] = None
            ret["comment"] = f"would wait up to {timeout:.0f} s for the peers' pushes; now {lacking}"
            return ret
        # act (wait) and verify on the next round
        if time.monotonic() - start >= timeout:
            ret["result"] = False
            ret["comment"] = (
                f"after {timeout:.0f} s {lacking}; is airflow_ha-csync2-watcher "
                "running on the peers, and do they list this node (csync2.status there)?"
            )
            return ret
        time.sleep(interval)


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
