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

Settings (minion config or pillar, read with ``config.get``):

- ``airflow_ha:csync2:port`` (default 30865): peers' port, passed as ``-p``.
- ``csync2.config_file`` (default ``/etc/csync2.cfg``).
- ``csync2.state_dir`` (default ``/var/lib/csync2``): csync2's databases, plus
  ``airflow_ha-last-sync.json`` and ``airflow_ha-events.jsonl`` that this module
  and the airflow_ha watcher write (last push, conflict events).

csync2 facts this relies on (measured, see the formula's FACTS):

- change detection uses whole-second mtime + size, so a same-size rewrite
  within the second of the last sync is never noticed: :py:func:`sync` marks
  the paths it is given explicitly (``-m``) before pushing;
- ``-T`` compares csync2's databases, not the files: :py:func:`in_sync` runs a
  check (``-cr``, no push) first so the database reflects the disk;
- peers pin each other's certificates in the ``x509_cert`` table: a changed
  certificate fails with "Peer did provide a wrong SSL X509 cetrificate" until
  the pin is cleared (:py:func:`reset_db`, or :py:func:`forget_peer_cert`).
"""

import fnmatch
import json
import logging
import os
import re
import shutil
import socket
import sqlite3
import time

import salt.utils.path
from salt.exceptions import CommandExecutionError, SaltInvocationError

log = logging.getLogger(__name__)

__virtualname__ = "csync2"

DEFAULT_CONFIG = "/etc/csync2.cfg"
DEFAULT_STATE_DIR = "/var/lib/csync2"
DEFAULT_PORT = 30865
LAST_SYNC_FILE = "airflow_ha-last-sync.json"
EVENTS_FILE = "airflow_ha-events.jsonl"
AUTO_POLICIES = ("none", "younger", "older", "bigger", "smaller", "left", "right")

# -T prints "<flag>\t<myname>\t<peer>\t<path>"
TEST_FLAGS = {"X": "differs", "L": "only_here", "R": "only_on_peer"}


def __virtual__():
    if not salt.utils.path.which("csync2"):
        return (
            False,
            "csync2 module: the csync2 binary is not installed (state airflow_ha.csync2 installs it)",
        )
    cfg = _config_file()
    if not os.path.isfile(cfg):
        return (False, f"csync2 module: {cfg} does not exist (state airflow_ha.csync2 writes it)")
    return __virtualname__


# --------------------------------------------------------------------------
# settings and the csync2 configuration file
# --------------------------------------------------------------------------
def _opt(key, default):
    try:
        value = __salt__["config.get"](key, default)
    except (NameError, KeyError):
        return default
    return default if value in (None, "") else value


def _config_file():
    return _opt("csync2.config_file", DEFAULT_CONFIG)


def _state_dir():
    return _opt("csync2.state_dir", DEFAULT_STATE_DIR)


def _port():
    port = _opt("airflow_ha:csync2:port", DEFAULT_PORT)
    try:
        return int(port)
    except (TypeError, ValueError):
        raise SaltInvocationError(
            f"airflow_ha:csync2:port: {port!r} is not a port number — set an integer (default 30865)"
        ) from None


def _myname():
    """csync2's own name for this host: the lower-cased hostname (no -N is used)."""
    return socket.gethostname().lower()


_TOKEN_RE = re.compile(r'"([^"]*)"|([{};])|([^\s{};"]+)')


def _tokens(text):
    out = []
    for raw in text.splitlines():
        line, quoted = raw, False
        # strip a comment that is not inside quotes
        for i, ch in enumerate(raw):
            if ch == '"':
                quoted = not quoted
            elif ch == "#" and not quoted:
                line = raw[:i]
                break
        for m in _TOKEN_RE.finditer(line):
            out.append(m.group(1) if m.group(1) is not None else (m.group(2) or m.group(3)))
    return out


def parse_config(text):
    """
    Parse csync2.cfg text into ``{"groups": {name: {...}}, "nossl": [...]}``.

    Each group: ``hosts`` (names, a ``name@address`` keeps the name; slaves in
    parentheses are marked), ``key``, ``include``, ``exclude``, ``auto``,
    ``backup_directory``. Only what this module needs; unknown statements are
    skipped up to their ``;`` or block end.
    """
    toks = _tokens(text)
    groups, nossl = {}, []
    i = 0

    def statement(j):
        words = []
        while j < len(toks) and toks[j] not in (";", "{", "}"):
            words.append(toks[j])
            j += 1
        return words, j

    while i < len(toks):
        tok = toks[i]
        if tok == "group" and i + 2 < len(toks) and toks[i + 2] == "{":
            name = toks[i + 1]
            grp = {
                "hosts": [],
                "slaves": [],
                "key": None,
                "include": [],
                "exclude": [],
                "auto": "none",
                "backup_directory": None,
            }
            i += 3
            depth = 1
            while i < len(toks) and depth:
                if toks[i] == "}":
                    depth -= 1
                    i += 1
                    continue
                if toks[i] == "{":
                    depth += 1
                    i += 1
                    continue
                words, i = statement(i)
                if i < len(toks) and toks[i] == ";":
                    i += 1
                if depth != 1 or not words:
                    continue
                kw, args = words[0], words[1:]
                if kw == "host":
                    for word in args:
                        slave = word.startswith("(") and word.endswith(")")
                        host = word.strip("()").split("@", 1)[0].lower()
                        grp["hosts"].append(host)
                        if slave:
                            grp["slaves"].append(host)
                elif kw == "key" and args:
                    grp["key"] = args[0]
                elif kw in ("include", "exclude"):
                    grp[kw].extend(args)
                elif kw == "auto" and args:
                    grp["auto"] = args[0]
                elif kw == "backup-directory" and args:
                    grp["backup_directory"] = args[0]
            groups[name] = grp
            continue
        words, i = statement(i)
        if i < len(toks) and toks[i] == "{":
            # another block (prefix, action outside groups): skip it whole
            depth = 0
            while i < len(toks):
                depth += toks[i] == "{"
                depth -= toks[i] == "}"
                i += 1
                if depth == 0:
                    break
            continue
        i += 1
        if words and words[0] == "nossl":
            nossl.append(words[1:])
    return {"groups": groups, "nossl": nossl}


def _read_config():
    path = _config_file()
    try:
        with open(path, encoding="utf-8") as fh:
            return parse_config(fh.read())
    except OSError as exc:
        raise CommandExecutionError(f"csync2: cannot read {path}: {exc.strerror}") from None


def _my_groups(cfg, myname=None):
    myname = myname or _myname()
    return {n: g for n, g in cfg["groups"].items() if myname in g["hosts"]}


def _peers(cfg, myname=None):
    myname = myname or _myname()
    peers = set()
    for grp in _my_groups(cfg, myname).values():
        peers.update(h for h in grp["hosts"] if h != myname)
    return sorted(peers)


def _match_exclude(path, pattern):
    if pattern.startswith("/"):
        return path == pattern or path.startswith(pattern.rstrip("/") + "/")
    return any(fnmatch.fnmatch(part, pattern) for part in path.split("/") if part)


def validate_paths(paths, cfg, myname=None):
    """
    Return absolute, normalised paths; raise SaltInvocationError naming the
    first path that is not below an ``include`` of this host's groups or that
    an ``exclude`` drops (csync2 itself only warns "Parameter will be
    ignored" and returns 0, which would read as a successful push).
    """
    if isinstance(paths, str):
        paths = [p for p in paths.split(",") if p]
    if not isinstance(paths, (list, tuple)):
        raise SaltInvocationError("paths: give a list of absolute paths (or one comma-separated string)")
    groups = _my_groups(cfg, myname)
    includes = sorted({i.rstrip("/") or "/" for g in groups.values() for i in g["include"]})
    out = []
    for raw in paths:
        if not isinstance(raw, str) or not raw.startswith("/"):
            raise SaltInvocationError(f"paths: {raw!r} is not an absolute path")
        path = os.path.normpath(raw)
        owner = [
            g
            for g in groups.values()
            if any(path == i.rstrip("/") or path.startswith(i.rstrip("/") + "/") for i in g["include"])
        ]
        if not owner:
            raise SaltInvocationError(
                f"paths: {path} is outside the synced folders ({', '.join(includes) or 'none configured'})"
            )
        excluded = [p for g in owner for p in g["exclude"] if _match_exclude(path, p)]
        if excluded:
            raise SaltInvocationError(f"paths: {path} is excluded from sync by pattern {excluded[0]!r}")
        out.append(path)
    return out


def validate_peers(peers, cfg, myname=None):
    if isinstance(peers, str):
        peers = [p for p in peers.split(",") if p]
    if not isinstance(peers, (list, tuple)):
        raise SaltInvocationError("peers: give a list of peer host names (or one comma-separated string)")
    known = _peers(cfg, myname)
    out = []
    for peer in peers:
        name = str(peer).lower()
        if name not in known:
            raise SaltInvocationError(
                f"peers: {peer!r} is not a csync2 peer of this node (known peers: {', '.join(known) or 'none'})"
            )
        out.append(name)
    return out


# --------------------------------------------------------------------------
# parsers for the real binary's output (unit-tested on recorded outputs)
# --------------------------------------------------------------------------
CONFIG_ERROR_RES = (
    re.compile(r"^Config error: .*"),
    re.compile(r"^Near line \d+: .*"),
    re.compile(r"^Can not open config file .*"),
    re.compile(r"^This host \(.*\) is not a member of any configured group\.$"),
)


def config_error(text):
    """The first line of csync2 output that reports a configuration problem, or None."""
    for raw in text.splitlines():
        line = raw.strip()
        if any(r.match(line) for r in CONFIG_ERROR_RES):
            return line
    return None


def parse_dirty(stdout):
    """``csync2 -M`` lines ``chary|force <myname> <peer> <path>`` -> list of dicts."""
    out = []
    for line in stdout.splitlines():
        parts = line.split("\t", 3)
        if len(parts) != 4:
            continue
        out.append({"path": parts[3], "peer": parts[2], "forced": parts[0] == "force"})
    return out


def parse_test(stdout):
    """``csync2 -T`` lines ``X|L|R <myname> <peer> <path>`` -> list of dicts."""
    out = []
    for line in stdout.splitlines():
        parts = line.split("\t", 3)
        if len(parts) != 4 or parts[0] not in TEST_FLAGS:
            continue
        out.append({"path": parts[3], "peer": parts[2], "state": TEST_FLAGS[parts[0]]})
    return out


_UPD_RE = re.compile(r"^(Updating|Deleting) (.+) on (\S+) \.\.\.$")
_CONNECT_RE = re.compile(r"^Connecting to host (\S+) \((SSL|PLAIN)\) \.\.\.$")
_CONNFAIL_RE = re.compile(r"^ERROR: Connection to remote host `(\S+)' failed\.$")
_FINISHED_RE = re.compile(r"^Finished with (\d+) errors\.$")
_IGNORED_RE = re.compile(r"^WARNING: Parameter will be ignored: (.+)$")
_LOST_RE = re.compile(r"^Do not auto-resolve conflict: Lost '(.+)' test\.$")
_WON_RE = re.compile(r"^Auto-resolving conflict: Won '(.+)' test\.$")
_PEER_ERR_RE = re.compile(r"^ERROR from peer(?: (\S+))?: (.*)$")
_SYNCING_RE = re.compile(r"^While syncing file:? (.+?):?$")


def parse_update(stderr):
    """
    Parse the ``-v`` log of ``csync2 -x`` / ``-u`` into a structure:

    ``pushed``/``deleted`` {peer: [paths]}, ``up_to_date`` {peer: [paths]},
    ``conflicts`` [{path, peer, outcome: lost|won|both_dirty, test}],
    ``errors`` {peer: [messages]}, ``unreachable`` [peers], ``ignored``
    [paths], ``error_count`` (csync2's own count, None when it printed none)
    and ``config_error``.
    """
    res = {
        "pushed": {},
        "deleted": {},
        "up_to_date": {},
        "conflicts": [],
        "errors": {},
        "unreachable": [],
        "ignored": [],
        "error_count": None,
        "config_error": config_error(stderr),
    }
    peer, last = None, None  # current peer, last (action, path, peer)

    def add(key, who, path):
        lst = res[key].setdefault(who, [])
        if path not in lst:
            lst.append(path)

    def err(who, msg):
        res["errors"].setdefault(who or "?", []).append(msg)

    for raw in stderr.splitlines():
        line = raw.strip()
        if not line:
            continue
        m = _CONNECT_RE.match(line)
        if m:
            peer, last = m.group(1), None
            continue
        m = _UPD_RE.match(line)
        if m:
            action, path, who = m.groups()
            peer = who
            add("pushed" if action == "Updating" else "deleted", who, path)
            last = ("pushed" if action == "Updating" else "deleted", path, who)
            continue
        m = _LOST_RE.match(line)
        if m and last:
            key, path, who = last
            if path in res[key].get(who, []):
                res[key][who].remove(path)
                if not res[key][who]:
                    del res[key][who]
            res["conflicts"].append({"path": path, "peer": who, "outcome": "lost", "test": m.group(1)})
            continue
        m = _WON_RE.match(line)
        if m and last:
            res["conflicts"].append({"path": last[1], "peer": last[2], "outcome": "won", "test": m.group(1)})
            continue
        if line == "File is already up to date on peer." and last:
            key, path, who = last
            if path in res[key].get(who, []):
                res[key][who].remove(path)
                if not res[key][who]:
                    del res[key][who]
            add("up_to_date", who, path)
            continue
        m = _PEER_ERR_RE.match(line)
        if m:
            who = m.group(1) or peer
            msg = m.group(2)
            if msg.startswith("File is also marked dirty here!") and last:
                key, path, lwho = last
                if path in res[key].get(lwho, []):
                    res[key][lwho].remove(path)
                    if not res[key][lwho]:
                        del res[key][lwho]
                res["conflicts"].append({"path": path, "peer": lwho, "outcome": "both_dirty", "test": None})
            else:
                err(who, f"peer error: {msg}")
            continue
        m = _CONNFAIL_RE.match(line)
        if m:
            if m.group(1) not in res["unreachable"]:
                res["unreachable"].append(m.group(1))
            err(
                m.group(1),
                "connection failed (peer down, csync2.socket not listening, or name does not resolve)",
            )
            continue
        if line.startswith("Can't create socket:") or line.startswith("Can't connect"):
            err(peer, line)
            continue
        if line.startswith("Peer did provide a wrong SSL X509"):
            err(
                peer,
                "certificate mismatch: the peer's certificate is not the one pinned in this node's "
                "csync2 database — it was regenerated; clear the pin (csync2.forget_peer_cert "
                f"{peer}) or csync2.reset_db confirm=True",
            )
            continue
        if line == "Peer did provide no SSL X509 cetrificate." or "GNUTLS_E_" in line:
            err(peer, line)
            continue
        m = _IGNORED_RE.match(line)
        if m:
            res["ignored"].append(m.group(1))
            continue
        m = _FINISHED_RE.match(line)
        if m:
            res["error_count"] = int(m.group(1))
            continue
        if line.startswith("ERROR") and not line.startswith("ERROR from peer"):
            err(peer, line)
    # drop empty peers left by removals
    for key in ("pushed", "deleted", "up_to_date"):
        res[key] = {k: v for k, v in res[key].items() if v}
    return res


def parse_version(text):
    m = re.search(r"^Version: (\S+)", text, re.M)
    if m:
        return m.group(1)
    m = re.search(r"csync2 (\S+) - cluster synchronization tool", text)
    return m.group(1) if m else None


# --------------------------------------------------------------------------
# running the binary
# --------------------------------------------------------------------------
LOCK_FILE = "/run/lock/airflow_ha-csync2.lock"


def _run(args, with_port=True):
    # one csync2 client at a time on this node (the watcher and the timer
    # take the same lock): concurrent runs fight over the sqlite database
    cmd = ["flock", "-w", "120", LOCK_FILE, "csync2"] if salt.utils.path.which("flock") else ["csync2"]
    if with_port:
        cmd += ["-p", str(_port())]
    cmd += list(args)
    ret = __salt__["cmd.run_all"](cmd, python_shell=False, ignore_retcode=True, output_loglevel="debug")
    ret.setdefault("stdout", "")
    ret.setdefault("stderr", "")
    return ret


def _fail(comment, **extra):
    out = {"result": False, "comment": comment}
    out.update(extra)
    return out


def _write_json(path, data):
    tmp = f"{path}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("csync2: cannot write %s: %s", path, exc)


def _record_event(event):
    path = os.path.join(_state_dir(), EVENTS_FILE)
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(event) + "\n")
    except OSError as exc:
        log.warning("csync2: cannot append to %s: %s", path, exc)


def _summarise(parsed):
    parts = []
    for key, word in (("pushed", "pushed"), ("deleted", "deleted")):
        n = sum(len(v) for v in parsed[key].values())
        if n:
            parts.append(f"{n} {word}")
    if parsed["conflicts"]:
        parts.append(f"{len(parsed['conflicts'])} conflict(s)")
    if parsed["unreachable"]:
        parts.append(f"unreachable: {', '.join(parsed['unreachable'])}")
    return ", ".join(parts) or "nothing to push"


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

    Returns ``result`` (false when any peer failed, with the reason in
    ``comment``), ``pushed``/``deleted`` {peer: [paths]}, ``conflicts``,
    ``errors`` {peer: [messages]}, ``unreachable``.

    CLI Example:

    .. code-block:: bash

        salt node1 csync2.sync
        salt node1 csync2.sync paths='["/var/lib/airflow/dags/etl.py"]' verbose=True
        salt node1 csync2.sync peers=node3 dry_run=True
    """
    cfg = _read_config()
    myname = _myname()
    if not _my_groups(cfg, myname):
        return _fail(f"this host ({myname}) is in no group of {_config_file()}: check host names")
    args = ["-v", "-x"]
    if dry_run:
        args.append("-d")
    targets = validate_peers(peers, cfg, myname) if peers else _peers(cfg, myname)
    # a node that is gone costs csync2 a ~40 s connect timeout per run and
    # holds back every peer after it: probe first, leave the dead ones out
    skipped = {}
    for peer in targets:
        ok, why = _reachable(peer, _port(), timeout=1.0)
        if not ok:
            skipped[peer] = why
    live = [p for p in targets if p not in skipped]
    if skipped and not live:
        return _fail(
            "no peer reachable on port "
            + f"{_port()}: "
            + ", ".join(f"{p} ({w})" for p, w in sorted(skipped.items())),
            unreachable=sorted(skipped),
            errors={p: [f"not reachable: {w}"] for p, w in skipped.items()},
        )
    if peers or skipped:
        args += ["-P", ",".join(live)]
    if paths:
        paths = validate_paths(paths, cfg, myname)
        if mark and not dry_run:
            marked = _run(["-m", *paths])
            if marked["retcode"] != 0:
                return _fail(f"csync2 -m failed: {marked['stderr'].strip()}")
        args += ["-r", *paths]
    started = time.time()
    ret = _run(args)
    parsed = parse_update(ret["stderr"])
    for peer, why in skipped.items():
        parsed["errors"].setdefault(peer, []).append(
            f"not reachable ({why}): skipped, its changes stay queued"
        )
        if peer not in parsed["unreachable"]:
            parsed["unreachable"].append(peer)
    out = {
        "result": ret["retcode"] == 0 and not parsed["errors"] and not parsed["config_error"],
        "retcode": ret["retcode"],
        "pushed": parsed["pushed"],
        "deleted": parsed["deleted"],
        "up_to_date": parsed["up_to_date"],
        "conflicts": parsed["conflicts"],
        "errors": parsed["errors"],
        "unreachable": parsed["unreachable"],
        "dry_run": bool(dry_run),
        "seconds": round(time.time() - started, 3),
    }
    if parsed["config_error"]:
        out["comment"] = f"csync2 configuration error: {parsed['config_error']}"
    elif out["result"]:
        out["comment"] = _summarise(parsed)
    else:
        reasons = [f"{p}: {'; '.join(m)}" for p, m in sorted(parsed["errors"].items())]
        lost = [c for c in parsed["conflicts"] if c["outcome"] != "won"]
        if lost:
            reasons.append(
                "conflict on "
                + ", ".join(sorted({c["path"] for c in lost}))
                + " (the file was changed on a peer too; the policy kept the peer's version or "
                "needs csync2.force on the winner)"
            )
        out["comment"] = "csync2 -x failed: " + (
            " | ".join(reasons) or f"exit code {ret['retcode']}: {ret['stderr'].strip()[-300:]}"
        )
    if verbose:
        out["log"] = ret["stderr"].splitlines()
    if not dry_run:
        now = time.time()
        _write_json(
            os.path.join(_state_dir(), LAST_SYNC_FILE),
            {"time": now, "source": "salt", "result": out["result"], "comment": out["comment"]},
        )
        for c in parsed["conflicts"]:
            _record_event({"time": now, "source": "salt", "node": myname, **c})
    return out


def check(paths=None):
    """
    Look for local changes without pushing (``csync2 -cr``) and list what is
    now dirty (waiting to be pushed) per file.

    CLI Example:

    .. code-block:: bash

        salt node1 csync2.check
        salt node1 csync2.check paths='["/var/lib/airflow/dags"]'
    """
    cfg = _read_config()
    args = ["-c", "-r"]
    if paths:
        args += validate_paths(paths, cfg)
    else:
        args.append("/")
    ret = _run(args, with_port=False)
    err = config_error(ret["stderr"])
    if ret["retcode"] != 0 or err:
        return _fail(f"csync2 -cr failed: {err or ret['stderr'].strip() or ret['retcode']}")
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
    err = config_error(ret["stderr"])
    if err or ret["retcode"] not in (0, 2):
        return _fail(f"csync2 -M failed: {err or ret['stderr'].strip() or ret['retcode']}")
    entries = parse_dirty(ret["stdout"]) if ret["retcode"] == 0 else []
    files = {}
    for e in entries:
        files.setdefault(e["path"], []).append(e["peer"])
    return {
        "result": True,
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
    ``only_here`` or ``only_on_peer``. ``result`` is false only when the test
    itself failed (peer unreachable, bad configuration).

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
        (peer,) = validate_peers([peer], cfg, myname)
        args += [myname, peer]
    if path:
        (path,) = validate_paths([path], cfg, myname)
        args.append(path)
    if check:
        chk = _run(["-c", "-r", path or "/"], with_port=False)
        err = config_error(chk["stderr"])
        if chk["retcode"] != 0 or err:
            return _fail(f"csync2 -cr failed: {err or chk['stderr'].strip()}", in_sync=False)
    ret = _run(args)
    if ret["retcode"] == 2:
        return {"result": True, "in_sync": True, "differences": {}, "comment": "in sync with all peers"}
    parsed = parse_update(ret["stderr"])
    if ret["retcode"] != 0 or parsed["errors"] or parsed["config_error"]:
        reasons = parsed["config_error"] or "; ".join(
            f"{p}: {', '.join(m)}" for p, m in sorted(parsed["errors"].items())
        )
        return _fail(
            f"csync2 -T failed: {reasons or ret['stderr'].strip()}",
            in_sync=False,
            unreachable=parsed["unreachable"],
        )
    diffs = {}
    for d in parse_test(ret["stdout"]):
        diffs.setdefault(d["peer"], []).append({"path": d["path"], "state": d["state"]})
    n = len({d["path"] for lst in diffs.values() for d in lst})
    return {
        "result": True,
        "in_sync": not diffs,
        "differences": diffs,
        "comment": f"{n} file(s) differ" if diffs else "in sync with all peers",
    }


def _read_events(since):
    path = os.path.join(_state_dir(), EVENTS_FILE)
    events = []
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                if isinstance(ev, dict) and ev.get("time", 0) >= since:
                    events.append(ev)
    except OSError:
        pass
    return events


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
        chk = _run(["-c", "-r", "/"], with_port=False)
        err = config_error(chk["stderr"])
        if chk["retcode"] != 0 or err:
            return _fail(f"csync2 -cr failed: {err or chk['stderr'].strip()}")
    d = dirty()
    if not d["result"]:
        return d
    events = _read_events(time.time() - since_minutes * 60)
    unresolved = {}
    for ev in events:
        path = ev.get("path")
        if ev.get("outcome") in ("lost", "both_dirty") and path in d["files"]:
            unresolved.setdefault(path, set()).add(ev.get("peer"))
    return {
        "result": True,
        "unresolved": {p: sorted(x for x in v if x) for p, v in sorted(unresolved.items())},
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
    (path,) = validate_paths([path], cfg)
    # 1. check, so the push below finds nothing new to (re)mark; 2. mark the
    # path dirty for EVERY peer with the force flag (-F -m): `-f` alone only
    # flags existing dirty entries, and a peer that already took the other
    # version has none; 3. -f -r for what lies below a folder.
    for args, what in (
        (["-c", "-r", path], "-c"),
        (["-F", "-m", path], "-F -m"),
        (["-f", "-r", path], "-f"),
    ):
        ret = _run(args, with_port=False)
        err = config_error(ret["stderr"])
        if ret["retcode"] != 0 or err:
            return _fail(f"csync2 {what} failed: {err or ret['stderr'].strip()}")
    if not push:
        return {"result": True, "comment": f"{path} will win the next conflict; not pushed yet"}
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
    the timer).

    CLI Example:

    .. code-block:: bash

        salt 'node*' csync2.status
    """
    ver = _run(["--help"], with_port=False)
    version = parse_version(ver["stdout"] + ver["stderr"])
    myname = _myname()
    port = _port()
    out = {"result": True, "version": version, "myname": myname, "port": port}
    try:
        cfg = _read_config()
    except CommandExecutionError as exc:
        return _fail(str(exc), config_valid=False, **out)
    d = dirty()  # also makes csync2 parse the configuration
    if not d["result"]:
        out.update(result=False, config_valid=False, comment=d["comment"])
    else:
        out["config_valid"] = True
        out["dirty_count"] = d["count"]
    groups = _my_groups(cfg, myname)
    out["groups"] = sorted(groups)
    out["synced_dirs"] = sorted({i for g in groups.values() for i in g["include"]})
    peers = {}
    for peer in _peers(cfg, myname):
        ok, why = _reachable(peer, port)
        peers[peer] = {"reachable": ok} if ok else {"reachable": False, "error": why}
    out["peers"] = peers
    try:
        with open(os.path.join(_state_dir(), LAST_SYNC_FILE), encoding="utf-8") as fh:
            last = json.load(fh)
        last["age_seconds"] = round(time.time() - float(last.get("time", 0)), 1)
        out["last_sync"] = last
    except (OSError, ValueError, TypeError):
        out["last_sync"] = None
    down = [p for p, v in peers.items() if not v["reachable"]]
    if out["result"]:
        if down:
            out["result"] = False
            out["comment"] = f"peers not reachable on port {port}: {', '.join(down)}"
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
        return _fail(f"csync2 -k failed: {ret['stderr'].strip()}")
    try:
        os.chmod(path, 0o600)
    except OSError as exc:
        return _fail(f"key written but chmod 0600 failed: {exc.strerror}")
    return {"result": True, "path": path, "comment": f"new key written to {path} (mode 0600)"}


def _db_files():
    sd = _state_dir()
    try:
        names = os.listdir(sd)
    except OSError:
        return []
    return sorted(os.path.join(sd, n) for n in names if n.endswith((".db3", ".db", ".db3-journal")))


def forget_peer_cert(peer):
    """
    Drop the certificate this node pinned for ``peer`` (after the peer's
    certificate was regenerated); the next connection pins the new one.

    CLI Example:

    .. code-block:: bash

        salt 'node*' csync2.forget_peer_cert node3
    """
    cfg = _read_config()
    (peer,) = validate_peers([peer], cfg)
    removed = 0
    for db in _db_files():
        if not db.endswith(".db3"):
            continue
        try:
            with sqlite3.connect(db, timeout=10) as con:
                removed += con.execute("DELETE FROM x509_cert WHERE peername = ?", (peer,)).rowcount
        except sqlite3.Error as exc:
            return _fail(f"cannot update {db}: {exc}")
    return {
        "result": True,
        "removed": removed,
        "comment": f"{removed} pinned certificate(s) of {peer} removed" if removed else f"no pin for {peer}",
    }


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
        return _fail(
            "reset_db moves csync2's database aside (pinned peer certificates, dirty entries): "
            "run it again with confirm=True"
        )
    dbs = _db_files()
    stopped = __salt__["service.stop"](listener)
    aside = os.path.join(_state_dir(), time.strftime("reset-%Y%m%dT%H%M%S"))
    moved = []
    try:
        if dbs:
            os.makedirs(aside, mode=0o700, exist_ok=True)
        for db in dbs:
            shutil.move(db, os.path.join(aside, os.path.basename(db)))
            moved.append(db)
    except OSError as exc:
        __salt__["service.start"](listener)
        return _fail(f"could not move {exc.filename}: {exc.strerror}", moved=moved)
    started = __salt__["service.start"](listener)
    chk = _run(["-c", "-r", "/"], with_port=False)
    err = config_error(chk["stderr"])
    ok = chk["retcode"] == 0 and not err and started
    return {
        "result": bool(ok),
        "stopped": bool(stopped),
        "started": bool(started),
        "moved_aside_to": aside if moved else None,
        "moved": moved,
        "comment": (
            "database re-created; run csync2.sync to push"
            if ok
            else f"re-init failed: {err or chk['stderr'].strip() or ('listener not started' if not started else chk['retcode'])}"
        ),
    }
