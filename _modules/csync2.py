"""
Drive csync2 (cluster file synchronisation) from Salt, with structured returns.

Why a custom module: Salt ships no csync2 module, and csync2's own output is
free text on stderr with exit codes that mean different things per mode
(``-M`` returns 2 for "nothing dirty", ``-T`` returns 2 for "in sync"). This
module runs the real binary, parses what it prints, and returns dicts that a
person on the master or an orchestration can act on:

.. code-block:: bash

    salt node1 csync2.sync
    salt node1 csync2.sync paths='["/var/lib/airflow/dags/etl.py"]'
    salt 'node*' csync2.in_sync
    salt 'node*' csync2.conflicts
    salt node1 csync2.force /var/lib/airflow/dags/etl.py
    salt node1 csync2.status

Settings come from the formula's derived settings (``airflow_ha.settings``,
the values the SLS wrote csync2.cfg and csync2.socket from):
``airflow_ha:csync2:port`` (peers' port, passed as ``-p``) and
``airflow_ha:csync2:config_file``. csync2's databases live in
``/var/lib/csync2`` (minion option ``csync2.state_dir``), with
``airflow_ha-last-sync.json`` and ``airflow_ha-events.jsonl`` that this module
and the airflow_ha watcher write (last push, conflict events).

Errors raise ``CommandExecutionError`` (csync2 failed, a peer refused or is
unreachable: the message says which and what to do; for a push the partial
outcome is in the exception's ``info``), bad arguments ``SaltInvocationError``.
Parsing of csync2's configuration and output is in ``_utils/ah_csync2.py``,
running the binary in ``_utils/ah_csync2_run.py`` (shared with
``_modules/csync2_db.py``, the module's other file: csync2's database).

csync2 facts this relies on (measured on Debian 12's csync2 2.0 across three
nodes; LINBIT's manual for the exit codes):

- change detection uses whole-second mtime + size, so a same-size rewrite
  within the second of the last sync is never noticed (seen: a rewrite 0.3 s
  after a push was not pushed): :py:func:`sync` marks the paths it is given
  explicitly (``-m``) before pushing;
- ``-T`` compares csync2's databases, not the files: :py:func:`in_sync` runs a
  check (``-cr``, no push) first so the database reflects the disk;
- a peer's changed certificate is refused until its pin is cleared
  (``csync2.forget_peer_cert``, ``csync2.reset_db``: ``_modules/csync2_db.py``).
"""

import logging
import os
import socket
import time

from salt.exceptions import CommandExecutionError, SaltInvocationError

log = logging.getLogger(__name__)

__virtualname__ = "csync2"

LAST_SYNC_FILE = "airflow_ha-last-sync.json"
EVENTS_FILE = "airflow_ha-events.jsonl"


def __virtual__():
    return __utils__["ah_csync2_run.virtual"](__virtualname__)


# --------------------------------------------------------------------------
# settings and the csync2 configuration file
# --------------------------------------------------------------------------
def _settings():
    """The formula's csync2 settings (``airflow_ha.settings``, derived once per
    run): the config file and port csync2.cfg and csync2.socket were written
    with, a ``lookup`` override included."""
    return __salt__["airflow_ha.settings"]()["csync2"]


def _config_file():
    return _settings()["config_file"]


def _state_dir():
    return __utils__["ah_csync2_run.state_dir"](__opts__)


def _port():
    return int(_settings()["port"])  # the schema makes it an integer in 1..65535


def _myname():
    return __utils__["ah_csync2_run.myname"]()


def _read_config():
    return __utils__["ah_csync2_run.read_config"](_config_file())


def _u(name, *args):
    """``ah_csync2.<name>``, its ValueError (a bad argument) as SaltInvocationError."""
    return __utils__["ah_csync2_run.call"](name, *args)


def _check_ok(ret, what):
    __utils__["ah_csync2_run.check_ok"](ret, what)


# --------------------------------------------------------------------------
# running the binary (under the lock the watcher and the timer take)
# --------------------------------------------------------------------------
def _run(args, with_port=True):
    return __utils__["ah_csync2_run.run"](__salt__["cmd.run_all"], args, _port() if with_port else None)


def _write_state(name, data, append=False):
    """Write (or append a line to) one of this module's files in the state dir."""
    path = os.path.join(_state_dir(), name)
    try:
        __utils__["ah_csync2.write_json"](path, data, append=append)
    except OSError as exc:
        log.warning("csync2: cannot write %s: %s", path, exc)


# --------------------------------------------------------------------------
# public functions
# --------------------------------------------------------------------------
def sync(paths=None, peers=None, dry_run=False, verbose=False, mark=True):
    """
    Push local changes to the peers (``csync2 -x``) and say what happened.

    paths
        Only these files/folders (absolute, inside the synced folders). They are
        marked dirty first (``csync2 -m``) because csync2's change detection
        misses a same-size rewrite within the second of the last sync.
    peers
        Only push to these peers (``-P``); others stay dirty for later.
    dry_run
        ``-d``: contact the peers but change nothing.
    verbose
        Also return csync2's raw log lines (``log``).
    mark
        Mark ``paths`` dirty first (default). ``False`` keeps the existing
        dirty entries as they are (``-m`` would clear a ``force`` flag).

    Returns ``pushed``/``deleted``/``up_to_date`` {peer: [paths]},
    ``conflicts`` (resolved by the policy), ``comment``. Raises
    ``CommandExecutionError`` when any peer failed or is unreachable, or a
    conflict is left, naming each cause and its fix; the exception's ``info``
    holds the same structure (what did reach the other peers, ``errors``
    {peer: [messages]}, ``unreachable``).

    CLI Example:

    .. code-block:: bash

        salt node1 csync2.sync
        salt node1 csync2.sync paths='["/var/lib/airflow/dags/etl.py"]' verbose=True
        salt node1 csync2.sync peers=node3 dry_run=True
    """
    cfg = _read_config()
    myname = _myname()
    if not _u("my_groups", cfg, myname):
        raise CommandExecutionError(
            f"this host ({myname}) is in no group of {_config_file()}: the csync2 host names must be the "
            "nodes' hostnames (airflow_ha:nodes)"
        )
    args = ["-v", "-x"]
    if dry_run:
        args.append("-d")
    targets = _u("validate_peers", peers, cfg, myname) if peers else _u("peers", cfg, myname)
    # a node that is gone costs csync2 a ~40 s connect timeout per run and
    # holds back every peer after it: probe first, leave the dead ones out
    skipped = {}
    for peer in targets:
        ok, why = _reachable(peer, _port(), timeout=1.0)
        if not ok:
            skipped[peer] = why
    live = [p for p in targets if p not in skipped]
    if skipped and not live:
        raise CommandExecutionError(
            f"no peer reachable on port {_port()}: "
            + ", ".join(f"{p} ({w})" for p, w in sorted(skipped.items()))
            + " — start csync2.socket there (airflow_ha.csync2) or check the network",
            info={
                "unreachable": sorted(skipped),
                "errors": {p: [f"not reachable: {w}"] for p, w in skipped.items()},
            },
        )
    if peers or skipped:
        args += ["-P", ",".join(live)]
    if paths:
        paths = _u("validate_paths", paths, cfg, myname)
        if mark and not dry_run:
            _check_ok(_run(["-m", *paths]), "-m")
        args += ["-r", *paths]
    started = time.time()
    ret = _run(args)
    parsed = __utils__["ah_csync2.parse_update"](ret["stderr"])
    for peer, why in skipped.items():
        parsed["errors"].setdefault(peer, []).append(
            f"not reachable ({why}): skipped, its changes stay queued"
        )
        if peer not in parsed["unreachable"]:
            parsed["unreachable"].append(peer)
    ok, comment = __utils__["ah_csync2.push_outcome"](parsed, ret["retcode"], ret["stderr"])
    out = {
        "retcode": ret["retcode"],
        **{k: parsed[k] for k in ("pushed", "deleted", "up_to_date", "conflicts", "errors", "unreachable")},
        "dry_run": bool(dry_run),
        "seconds": round(time.time() - started, 3),
        "comment": comment,
    }
    if verbose:
        out["log"] = ret["stderr"].splitlines()
    if not dry_run:
        now = time.time()
        _write_state(LAST_SYNC_FILE, {"time": now, "source": "salt", "result": ok, "comment": out["comment"]})
        for c in parsed["conflicts"]:
            _write_state(EVENTS_FILE, {"time": now, "source": "salt", "node": myname, **c}, append=True)
    if not ok:
        raise CommandExecutionError(out["comment"], info=out)
    return out


def check(paths=None):
    """
    Look for local changes without pushing (``csync2 -cr``) and list what is
    now dirty (waiting to be pushed) per file, as :py:func:`dirty` does.

    CLI Example:

    .. code-block:: bash

        salt node1 csync2.check
        salt node1 csync2.check paths='["/var/lib/airflow/dags"]'
    """
    cfg = _read_config()
    args = ["-c", "-r"]
    if paths:
        args += _u("validate_paths", paths, cfg, _myname())
    else:
        args.append("/")
    _check_ok(_run(args, with_port=False), "-cr")
    out = dirty()
    out["comment"] = f"checked; {out['count']} file(s) waiting to be pushed"
    return out


def dirty():
    """
    Files waiting to be pushed (``csync2 -M``; exit code 2 means none).

    Returns ``count`` (files), ``files`` {path: [peers]} and ``forced`` (files
    that will win the next conflict, see :py:func:`force`).

    CLI Example:

    .. code-block:: bash

        salt 'node*' csync2.dirty
    """
    ret = _run(["-M"], with_port=False)
    _check_ok(dict(ret, retcode=0 if ret["retcode"] == 2 else ret["retcode"]), "-M")
    entries = __utils__["ah_csync2.parse_dirty"](ret["stdout"]) if ret["retcode"] == 0 else []
    files = {}
    for e in entries:
        files.setdefault(e["path"], []).append(e["peer"])
    return {
        "count": len(files),
        "files": {k: sorted(v) for k, v in files.items()},
        "forced": sorted({e["path"] for e in entries if e["forced"]}),
    }


def in_sync(path=None, peer=None, check=True):  # pylint: disable=redefined-outer-name
    """
    Is this node in sync with its peers (``csync2 -T``; exit code 2 = in sync)?

    ``-T`` compares csync2's databases, so a check (``-cr``, no push) runs
    first unless ``check=False``. Returns ``in_sync`` (bool) and
    ``differences`` {peer: [{path, state}]} where state is ``differs``,
    ``only_here`` or ``only_on_peer``. Raises when the test itself failed
    (peer unreachable, bad configuration).

    CLI Example:

    .. code-block:: bash

        salt 'node*' csync2.in_sync
        salt node1 csync2.in_sync peer=node2
        salt node1 csync2.in_sync path=/var/lib/airflow/dags/etl.py
    """
    cfg = _read_config()
    myname = _myname()
    args = ["-T"]
    if peer:
        (peer,) = _u("validate_peers", [peer], cfg, myname)
        args += [myname, peer]
    if path:
        (path,) = _u("validate_paths", [path], cfg, myname)
        args.append(path)
    if check:
        _check_ok(_run(["-c", "-r", path or "/"], with_port=False), "-cr")
    ret = _run(args)
    if ret["retcode"] == 2:
        return {"in_sync": True, "differences": {}, "comment": "in sync with all peers"}
    parsed = __utils__["ah_csync2.parse_update"](ret["stderr"])
    if ret["retcode"] != 0 or parsed["errors"] or parsed["config_error"]:
        reasons = parsed["config_error"] or "; ".join(
            f"{p}: {', '.join(m)}" for p, m in sorted(parsed["errors"].items())
        )
        raise CommandExecutionError(
            f"csync2 -T failed: {reasons or ret['stderr'].strip()}",
            info={"in_sync": False, "unreachable": parsed["unreachable"]},
        )
    diffs = {}
    for d in __utils__["ah_csync2.parse_test"](ret["stdout"]):
        diffs.setdefault(d["peer"], []).append({"path": d["path"], "state": d["state"]})
    n = len({d["path"] for lst in diffs.values() for d in lst})
    return {
        "in_sync": not diffs,
        "differences": diffs,
        "comment": f"{n} file(s) differ" if diffs else "in sync with all peers",
    }


def conflicts(since_minutes=60, check=True):  # pylint: disable=redefined-outer-name
    """
    Files changed here AND on a peer ("File is also marked dirty here!" /
    lost or won auto-resolution), as seen by this node's pushes.

    csync2 detects a conflict only when a push meets a file the peer has
    changed too; the airflow_ha watcher and timer, and :py:func:`sync`, record
    every such event in ``airflow_ha-events.jsonl``. This returns:

    ``unresolved``
        conflicting files still dirty here: this node's version lost (or
        both sides lost: same-second edits) and no winner has overwritten it
        yet. Resolve with ``csync2.force PATH`` on the node whose version
        must win.
    ``recent``
        conflict events of the last ``since_minutes`` (path, peer, outcome,
        time, source) including those the policy already resolved.
    ``dirty_here``
        files waiting to be pushed from this node (they become conflicts if a
        peer changes them before the push).

    CLI Example:

    .. code-block:: bash

        salt 'node*' csync2.conflicts
        salt node2 csync2.conflicts since_minutes=1440
    """
    try:
        since_minutes = float(since_minutes)
    except (TypeError, ValueError):
        raise SaltInvocationError(f"since_minutes: {since_minutes!r} is not a number") from None
    if check:
        _check_ok(_run(["-c", "-r", "/"], with_port=False), "-cr")
    d = dirty()
    events = __utils__["ah_csync2.read_events"](
        os.path.join(_state_dir(), EVENTS_FILE), time.time() - since_minutes * 60
    )
    unresolved = __utils__["ah_csync2.unresolved"](events, d["files"])
    return {
        "unresolved": unresolved,
        "recent": events,
        "dirty_here": d["files"],
        "comment": (
            f"{len(unresolved)} unresolved conflict(s): run csync2.force PATH on the node that must win"
            if unresolved
            else f"no unresolved conflicts ({len(events)} conflict event(s) in the last {since_minutes:g} min)"
        ),
    }


def force(path, push=True):
    """
    Make this node's version of ``path`` win the next conflict (``csync2 -f``),
    then push it (``-x``) unless ``push=False``.

    CLI Example:

    .. code-block:: bash

        salt node1 csync2.force /var/lib/airflow/dags/etl.py
    """
    if not path:
        raise SaltInvocationError("path: give the file whose local version must win")
    cfg = _read_config()
    (path,) = _u("validate_paths", [path], cfg, _myname())
    # 1. check, so the push below finds nothing new to (re)mark; 2. mark the
    # path dirty for EVERY peer with the force flag (-F -m): `-f` alone only
    # flags existing dirty entries, and a peer that already took the other
    # version has none; 3. -f -r for what lies below a folder.
    for args, what in (
        (["-c", "-r", path], "-c"),
        (["-F", "-m", path], "-F -m"),
        (["-f", "-r", path], "-f"),
    ):
        _check_ok(_run(args, with_port=False), what)
    if not push:
        return {"comment": f"{path} will win the next conflict; not pushed yet"}
    # no plain -m before this push: it would clear the force flag
    out = sync(paths=[path], mark=False)
    out["comment"] = f"forced {path}: " + out["comment"]
    return out


def _reachable(host, port, timeout=2.0):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True, None
    except OSError as exc:
        return False, exc.strerror or str(exc)


def status():
    """
    One-call health view: csync2 version, configuration valid, this host's
    groups and peers, which peers accept connections on the csync2 port,
    files waiting to be pushed, and the last push (by Salt, the watcher or
    the timer). ``healthy`` is false (and ``comment`` says why) when the
    configuration is refused or a peer does not answer: that is the report,
    not an error.

    CLI Example:

    .. code-block:: bash

        salt 'node*' csync2.status
    """
    ver = _run(["--help"], with_port=False)
    version = __utils__["ah_csync2.parse_version"](ver["stdout"] + ver["stderr"])
    myname = _myname()
    port = _port()
    out = {"healthy": True, "version": version, "myname": myname, "port": port}
    cfg = _read_config()
    try:
        d = dirty()  # also makes csync2 parse the configuration
    except CommandExecutionError as exc:
        out.update(healthy=False, config_valid=False, comment=str(exc))
    else:
        out["config_valid"] = True
        out["dirty_count"] = d["count"]
    groups = _u("my_groups", cfg, myname)
    out["groups"] = sorted(groups)
    out["synced_dirs"] = sorted({i for g in groups.values() for i in g["include"]})
    peers = {}
    for peer in _u("peers", cfg, myname):
        ok, why = _reachable(peer, port)
        peers[peer] = {"reachable": ok} if ok else {"reachable": False, "error": why}
    out["peers"] = peers
    out["last_sync"] = __utils__["ah_csync2.read_last_sync"](
        os.path.join(_state_dir(), LAST_SYNC_FILE), time.time()
    )
    down = [p for p, v in peers.items() if not v["reachable"]]
    if out["healthy"]:
        if down:
            out["healthy"] = False
            out["comment"] = (
                f"peers not reachable on port {port}: {', '.join(down)} (is csync2.socket running there?)"
            )
        else:
            out["comment"] = f"{len(peers)} peer(s) reachable, {out['dirty_count']} file(s) waiting"
    return out


def genkey(path):
    """
    Write a new csync2 pre-shared key to ``path`` (``csync2 -k``, mode 0600).
    Refuses to overwrite an existing file. The formula itself takes the key
    from pillar (``airflow_ha:secrets:csync2_psk``); use this to make one.
    The key is never returned.

    CLI Example:

    .. code-block:: bash

        salt node1 csync2.genkey /root/csync2.key
    """
    if not isinstance(path, str) or not path.startswith("/"):
        raise SaltInvocationError(f"path: {path!r} is not an absolute path")
    if os.path.exists(path):
        raise SaltInvocationError(f"path: {path} already exists; csync2 -k never overwrites a key")
    ret = _run(["-k", path], with_port=False)
    if ret["retcode"] != 0:
        raise CommandExecutionError(
            f"csync2 -k failed: {ret['stderr'].strip()} (does the directory of {path} exist?)"
        )
    try:
        os.chmod(path, 0o600)
    except OSError as exc:
        raise CommandExecutionError(
            f"key written to {path} but chmod 0600 failed: {exc.strerror} — fix its mode by hand"
        ) from None
    return {"path": path, "comment": f"new key written to {path} (mode 0600)"}
