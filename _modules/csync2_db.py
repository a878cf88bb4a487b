"""
csync2's own database on this node: the peers' pinned certificates
(``csync2.forget_peer_cert``, ``csync2.stale_pins``, which the
``csync2.pins_current`` state uses) and ``csync2.reset_db``, the runbook's
"delete csync2's database" done safely.

Part of the ``csync2`` execution module: like ``_modules/csync2.py`` (push,
check, status) this file declares the virtual name ``csync2``; Salt's loader
looks a function ``csync2.x`` up in every module file whose name contains
``csync2`` and merges what they define, so the names stay
``csync2.forget_peer_cert`` and so on. Why a custom module: csync2 has no
command to drop or compare a pinned certificate (it pins a peer's
certificate in its sqlite database the first time they connect, and refuses
a changed one until that row is gone), and Salt has no csync2 module; Salt's
``sqlite3`` module runs SQL on a file but knows neither csync2's database
files nor its listener. The sqlite work is in ``_utils/ah_csync2_db.py``,
running csync2 in ``_utils/ah_csync2_run.py`` (shared with
``_modules/csync2.py``).

CLI examples:

.. code-block:: bash

    salt 'node*' csync2.forget_peer_cert node3
    salt node1 csync2.reset_db confirm=True
"""

import os
import sqlite3
import ssl
import time

from salt.exceptions import CommandExecutionError, SaltInvocationError

__virtualname__ = "csync2"


def __virtual__():
    return __utils__["ah_csync2_run.virtual"](__virtualname__)


def _db_files():
    return __utils__["ah_csync2_db.db_files"](__utils__["ah_csync2_run.state_dir"](__opts__))


def forget_peer_cert(peer):
    """
    Drop the certificate this node pinned for ``peer`` (after the peer's
    certificate was regenerated); the next connection pins the new one.

    CLI Example:

    .. code-block:: bash

        salt 'node*' csync2.forget_peer_cert node3
    """
    cfg = __utils__["ah_csync2_run.read_config"](__salt__["airflow_ha.settings"]()["csync2"]["config_file"])
    (peer,) = __utils__["ah_csync2_run.call"](
        "validate_peers", [peer], cfg, __utils__["ah_csync2_run.myname"]()
    )
    try:
        removed = __utils__["ah_csync2_db.forget_cert"](_db_files(), peer)
    except sqlite3.Error as exc:
        raise CommandExecutionError(
            f"cannot update {exc.args[-1]}: {exc.args[0]} (is a csync2 run holding it? try again)"
        ) from None
    return {
        "removed": removed,
        "comment": f"{removed} pinned certificate(s) of {peer} removed" if removed else f"no pin for {peer}",
    }


def stale_pins(certs):
    """
    The peers whose certificate pinned here differs from the one in
    ``certs`` ({peer: PEM certificate}, e.g. pillar ``airflow_ha:csync2:certs``
    without the keys): sorted names. A peer not pinned yet is not stale (its
    first connection pins it).

    CLI Example:

    .. code-block:: bash

        salt node1 csync2.stale_pins '{node2: "-----BEGIN CERTIFICATE-----..."}'
    """
    if not isinstance(certs, dict):
        raise SaltInvocationError("csync2.stale_pins: certs must map peer names to PEM certificates")
    try:
        pins = __utils__["ah_csync2_db.pinned"](_db_files())
    except sqlite3.Error as exc:
        raise CommandExecutionError(f"cannot read {exc.args[-1]}: {exc.args[0]} (try again)") from None
    stale = []
    for peer, pem in sorted(certs.items()):
        try:
            want = ssl.PEM_cert_to_DER_cert(str(pem).strip()).hex().upper()
        except ValueError:
            raise SaltInvocationError(f"csync2.stale_pins: the certificate of {peer} is not PEM") from None
        if peer in pins and pins[peer] != want:
            stale.append(peer)
    return stale


def reset_db(confirm=False, listener="csync2.socket"):
    """
    The runbook's "delete csync2's database", done safely: stop the listener,
    move the databases aside (``<state_dir>/reset-<time>/``), start the
    listener, re-create the database with a check (``-cr``, no push). Pinned
    peer certificates and pending dirty entries are forgotten; the next sync
    pushes every file (identical files are skipped).

    Refuses unless ``confirm=True``.

    CLI Example:

    .. code-block:: bash

        salt node1 csync2.reset_db confirm=True
    """
    if confirm is not True:
        raise SaltInvocationError(
            "reset_db moves csync2's database aside (pinned peer certificates, dirty entries): "
            "run it again with confirm=True"
        )
    dbs = _db_files()
    stopped = __salt__["service.stop"](listener)
    aside = os.path.join(__utils__["ah_csync2_run.state_dir"](__opts__), time.strftime("reset-%Y%m%dT%H%M%S"))
    moved = []
    try:
        __utils__["ah_csync2_db.move_aside"](dbs, aside, moved)
    except OSError as exc:
        __salt__["service.start"](listener)
        raise CommandExecutionError(
            f"could not move {exc.filename}: {exc.strerror}; moved so far: {moved} (in {aside}); "
            f"{listener} was started again",
            info={"moved": moved},
        ) from None
    started = __salt__["service.start"](listener)
    out = {
        "stopped": bool(stopped),
        "started": bool(started),
        "moved_aside_to": aside if moved else None,
        "moved": moved,
    }
    if not started:
        raise CommandExecutionError(
            f"database moved aside to {aside} but {listener} did not start: systemctl status {listener}",
            info=out,
        )
    try:
        __utils__["ah_csync2_run.check_ok"](
            __utils__["ah_csync2_run.run"](__salt__["cmd.run_all"], ["-c", "-r", "/"]), "-cr"
        )
    except CommandExecutionError as exc:
        raise CommandExecutionError(f"re-init failed: {exc}", info=out) from None
    out["comment"] = "database re-created; run csync2.sync to push"
    return out
