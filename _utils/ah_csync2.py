"""
csync2's configuration and output, parsed: pure Python, unit-tested on outputs
recorded from the real binary (test/unit/data/csync2).

A Salt ``_utils`` module (``saltutil.sync_all`` syncs it) used by the ``csync2``
execution module as ``__utils__["ah_csync2.<name>"]``. Standard library only
and no Salt import: the csync2 watcher (no Salt) imports the very same file,
which the formula installs next to it (airflow_ha/csync2/config.sls).
Argument problems raise ``ValueError`` with the fix; the module turns them
into ``SaltInvocationError``.

csync2 behaviour these parsers rely on (LINBIT's csync2 manual; exit codes and
messages seen with csync2 2.0 on Debian 12):

- ``-M`` (dirty list) and ``-T`` (test) print tab-separated lines; ``-M``
  exits 2 when nothing is dirty, ``-T`` exits 2 when in sync;
- ``-x -v`` (push) logs per peer on stderr: "Connecting to host …",
  "Updating|Deleting PATH on PEER …", "Lost/Won '<policy>' test" for a
  conflict, "File is also marked dirty here!" when both sides changed it,
  "Finished with N errors.";
- a path outside every ``include`` is only warned about ("Parameter will be
  ignored") with exit code 0, so paths are checked here first.
"""

import fnmatch
import json
import os
import re

# -T prints "<flag>\t<myname>\t<peer>\t<path>"
TEST_FLAGS = {"X": "differs", "L": "only_here", "R": "only_on_peer"}


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


def my_groups(cfg, myname):
    """The groups of ``cfg`` that list host ``myname``."""
    return {n: g for n, g in cfg["groups"].items() if myname in g["hosts"]}


def peers(cfg, myname):
    """The other hosts of ``myname``'s groups, sorted."""
    found = set()
    for grp in my_groups(cfg, myname).values():
        found.update(h for h in grp["hosts"] if h != myname)
    return sorted(found)


def match_exclude(path, pattern):
    if pattern.startswith("/"):
        return path == pattern or path.startswith(pattern.rstrip("/") + "/")
    return any(fnmatch.fnmatch(part, pattern) for part in path.split("/") if part)


def validate_paths(paths, cfg, myname):
    """
    Return absolute, normalised paths; raise ValueError naming the
    first path that is not below an ``include`` of this host's groups or that
    an ``exclude`` drops (csync2 itself only warns "Parameter will be
    ignored" and returns 0, which would read as a successful push).
    """
    if isinstance(paths, str):
        paths = [p for p in paths.split(",") if p]
    if not isinstance(paths, (list, tuple)):
        raise ValueError("paths: give a list of absolute paths (or one comma-separated string)")
    groups = my_groups(cfg, myname)
    includes = sorted({i.rstrip("/") or "/" for g in groups.values() for i in g["include"]})
    out = []
    for raw in paths:
        if not isinstance(raw, str) or not raw.startswith("/"):
            raise ValueError(f"paths: {raw!r} is not an absolute path")
        path = os.path.normpath(raw)
        owner = [
            g
            for g in groups.values()
            if any(path == i.rstrip("/") or path.startswith(i.rstrip("/") + "/") for i in g["include"])
        ]
        if not owner:
            raise ValueError(
                f"paths: {path} is outside the synced folders ({', '.join(includes) or 'none configured'})"
            )
        excluded = [p for g in owner for p in g["exclude"] if match_exclude(path, p)]
        if excluded:
            raise ValueError(f"paths: {path} is excluded from sync by pattern {excluded[0]!r}")
        out.append(path)
    return out


def validate_peers(names, cfg, myname):
    """Peer names (lower-case); raise ValueError naming one that is not a peer."""
    if isinstance(names, str):
        names = [p for p in names.split(",") if p]
    if not isinstance(names, (list, tuple)):
        raise ValueError("peers: give a list of peer host names (or one comma-separated string)")
    known = peers(cfg, myname)
    out = []
    for peer in names:
        name = str(peer).lower()
        if name not in known:
            raise ValueError(
                f"peers: {peer!r} is not a csync2 peer of this node (known peers: {', '.join(known) or 'none'})"
            )
        out.append(name)
    return out


# --------------------------------------------------------------------------
# the real binary's output
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
    """csync2's version from its ``--help`` text, or None."""
    m = re.search(r"^Version: (\S+)", text, re.M)
    if m:
        return m.group(1)
    m = re.search(r"csync2 (\S+) - cluster synchronization tool", text)
    return m.group(1) if m else None


# --------------------------------------------------------------------------
# what a push and the conflict log mean
# --------------------------------------------------------------------------
def summarise(parsed):
    """One line for a successful push: what was pushed, deleted, resolved."""
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


def push_outcome(parsed, retcode, stderr):
    """(ok, comment) of a ``csync2 -x`` run from its :func:`parse_update`
    structure: ok only with exit code 0, no peer error and no configuration
    error; the comment names every cause and its fix."""
    ok = retcode == 0 and not parsed["errors"] and not parsed["config_error"]
    if parsed["config_error"]:
        return False, f"csync2 configuration error: {parsed['config_error']} (fix /etc/csync2.cfg)"
    if ok:
        return True, summarise(parsed)
    reasons = [f"{p}: {'; '.join(m)}" for p, m in sorted(parsed["errors"].items())]
    lost = [c for c in parsed["conflicts"] if c["outcome"] != "won"]
    if lost:
        reasons.append(
            "conflict on "
            + ", ".join(sorted({c["path"] for c in lost}))
            + " (the file was changed on a peer too; the policy kept the peer's version or "
            "needs csync2.force on the winner)"
        )
    return False, "csync2 -x failed: " + (
        " | ".join(reasons) or f"exit code {retcode}: {stderr.strip()[-300:]}"
    )


def unresolved(events, dirty_files):
    """{path: [peers]} of the conflict events (lost, or both sides dirty)
    whose file is still dirty here: no winner has overwritten it yet."""
    found = {}
    for ev in events:
        path = ev.get("path")
        if ev.get("outcome") in ("lost", "both_dirty") and path in dirty_files:
            found.setdefault(path, set()).add(ev.get("peer"))
    return {p: sorted(x for x in v if x) for p, v in sorted(found.items())}


# --------------------------------------------------------------------------
# the module's files: last push, conflict events (the watcher writes them too)
# --------------------------------------------------------------------------
def write_json(path, data, append=False):
    """``data`` as JSON at ``path``: replaced atomically, or one line appended
    (``append``, a .jsonl log). OSError is the caller's."""
    if append:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(data) + "\n")
        return
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)


def read_events(path, since):
    """The events (dicts) of the .jsonl log at ``path`` from time ``since``
    on; unreadable lines and a missing file give nothing."""
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


def read_last_sync(path, now):
    """The last push's record (``write_json`` of the module, the watcher or the
    timer) with its ``age_seconds`` at ``now``; None when there is none."""
    try:
        with open(path, encoding="utf-8") as fh:
            last = json.load(fh)
        last["age_seconds"] = round(now - float(last.get("time", 0)), 1)
    except (OSError, ValueError, TypeError, AttributeError):
        return None
    return last
