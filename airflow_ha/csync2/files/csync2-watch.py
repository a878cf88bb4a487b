#!/usr/bin/python3
"""
airflow_ha csync2 watcher (managed by Salt, airflow_ha.csync2): push changes
in the synced folders to the peers within about a second.

    csync2-watch            watch (systemd unit airflow_ha-csync2-watcher)
    csync2-watch --once     one full sync (systemd timer or cron)

Why not a plain `inotifywait | csync2 -x` loop:
- csync2 notices a change by whole-second mtime + size, so a same-size
  rewrite within the second of the last sync is missed: paths written here
  are marked explicitly (`csync2 -m`) before the push;
- files csync2's daemon writes for a peer raise inotify events too; marking
  those would push every received file back out (and collide with the third
  node's copy). csync2 sets received files' mtime to the sender's whole
  second, a local write has a sub-second part: only the latter is marked,
  everything else goes through csync2's own check (`-x -r PATH`), which also
  catches deletions;
- events are debounced (quiet for debounce_ms, at most max_delay_ms);
- conflicts csync2 reports are logged and appended to
  <state_dir>/airflow_ha-events.jsonl (salt '*' csync2.conflicts reads it).
  A conflict both sides lost (same-second edits under younger/older) is
  still dirty after the retry delay: the node first in host order forces its
  version then (tie_break), the others find nothing left to do.
- a peer that was away (probed every probe_interval_s) or was rebuilt blank
  misses files nothing marks dirty: when it answers again, and at start-up,
  `csync2 -T <me> <peer>` lists what only this node has, which is marked and
  pushed (a host replaced by a blank one gets the whole folder this way).
"""

import fcntl
import fnmatch
import json
import os
import re
import selectors
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse

# The formula's _utils files, installed next to this script (Python puts a
# script's own directory first on sys.path): the one secret policy, and the
# csync2 output parser the csync2 Salt module uses too.
import ah_csync2
import ah_secrets

CONF = os.environ.get("CSYNC2_WATCH_CONF", "/etc/airflow_ha/csync2-watch.json")
CONNECTING_RE = re.compile(r"^Connecting to host (\S+) ")
CONNECT_RE = re.compile(r"^(Connecting to host \S+|Connect to \S+|Bound to \S+)")
TIE_POLICIES = ("younger", "older", "bigger", "smaller")


def log(msg):
    """One journal line; credentials in URLs (a peer's error, a path) are masked."""
    print(ah_secrets.scrub(msg), flush=True)


def excluded(path, patterns):
    for pat in patterns:
        if pat.startswith("/"):
            if path == pat or path.startswith(pat.rstrip("/") + "/"):
                return True
        elif any(fnmatch.fnmatch(part, pat) for part in path.split("/") if part):
            return True
    return False


TEMP_RE = re.compile(r"^\.(.+)\.[A-Za-z0-9]{6}$")


def csync2_temp(path):
    """
    csync2 itself writes ``.<name>.XXXXXX`` temp files next to a file it
    sends or receives (rsync signature/delta). Their events must not trigger
    another push (a loop that doubles every push's cost).
    """
    head, base = os.path.split(path)
    m = TEMP_RE.match(base)
    return bool(m) and os.path.exists(os.path.join(head, m.group(1)))


def local_write(path):
    """True when path was written here (sub-second mtime), not by csync2's daemon."""
    try:
        return os.lstat(path).st_mtime_ns % 1_000_000_000 != 0
    except OSError:
        return False


def parse_checktxt(text):
    """csync2's file-table checktxt ('v1%3Amtime=..%3Amode=..') -> dict."""
    out = {}
    for part in urllib.parse.unquote(text or "").split(":")[1:]:
        key, _, val = part.partition("=")
        out[key] = val
    return out


def same_as_db(st, check):
    """Would csync2's own check see no change (whole-second mtime, mode,
    owner, size)? For a local write that is the mtime trap."""
    want = {
        "mtime": str(int(st.st_mtime)),
        "mode": str(st.st_mode),
        "uid": str(st.st_uid),
        "gid": str(st.st_gid),
        "size": str(st.st_size),
    }
    # size, uid and gid are left out of csync2's record when it does not track
    # them (older records; csync2.cfg's `ignore uid gid`)
    return all(check.get(k) == v for k, v in want.items() if k in check or k in ("mtime", "mode"))


class Csync2:
    def __init__(self, conf):
        self.conf = conf
        self.myname = socket.gethostname().lower()
        self.state_dir = conf.get("state_dir", "/var/lib/csync2")
        self.down, self.catch_up, self.pushed = set(), False, 0
        self.back = set()  # peers that answered again since the last catch-up

    def run(self, *args):
        cmd = ["csync2", "-p", str(self.conf.get("port", 30865)), *args]
        with open(self.conf.get("lock", "/run/lock/airflow_ha-csync2.lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            p = subprocess.run(cmd, capture_output=True, text=True, check=False)
        return p.returncode, p.stdout, p.stderr

    def run_push(self, *args):
        """
        Like run(), but a peer that does not answer a connect within
        connect_timeout_s (a node that is gone: no RST, the kernel retries
        for ~40 s) is cut off: csync2 is stopped, the peer is reported
        unreachable (so record() leaves it out of the next pushes) and
        `cut` names it. Transfers in progress are never cut.
        """
        limit = float(self.conf.get("connect_timeout_s", 3.0))
        cmd = ["csync2", "-p", str(self.conf.get("port", 30865)), *args]
        with open(self.conf.get("lock", "/run/lock/airflow_ha-csync2.lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            sel = selectors.DefaultSelector()
            sel.register(proc.stdout, selectors.EVENT_READ, "out")
            sel.register(proc.stderr, selectors.EVENT_READ, "err")
            out, err, open_fds, cut = b"", b"", 2, None
            last_change = time.monotonic()
            while open_fds:
                for key, _ in sel.select(0.2):
                    chunk = os.read(key.fileobj.fileno(), 65536)
                    if not chunk:
                        sel.unregister(key.fileobj)
                        open_fds -= 1
                    elif key.data == "out":
                        out += chunk
                    else:
                        err += chunk
                    last_change = time.monotonic()
                lines = err.decode("utf-8", "replace").strip().splitlines()
                tail = lines[-1] if lines else ""
                if open_fds and time.monotonic() - last_change > limit and CONNECT_RE.match(tail):
                    hosts = [m.group(1) for m in map(CONNECTING_RE.match, lines) if m]
                    cut = hosts[-1] if hosts else None
                    proc.kill()
                    break
            rc = proc.wait()
            for f in (proc.stdout, proc.stderr):
                f.close()
        text = err.decode("utf-8", "replace")
        if cut:
            rc = 1
            text += f"\nERROR: Connection to remote host `{cut}' failed.\n"
            log(f"{cut} did not answer within {limit:g} s: push cut off")
        return rc, out.decode("utf-8", "replace"), text, cut

    def record(self, source, rc, stderr):
        """Log a push, note conflicts; return the paths this node lost."""
        now = time.time()
        parsed = ah_csync2.parse_update(stderr)
        pushed = sum(len(v) for v in parsed["pushed"].values())
        deleted = sum(len(v) for v in parsed["deleted"].values())
        events = [{"time": now, "source": source, "node": self.myname, **c} for c in parsed["conflicts"]]
        lost = [c["path"] for c in parsed["conflicts"] if c["outcome"] != "won"]
        errors = [x.strip() for x in stderr.splitlines() if x.startswith(("ERROR", "Peer did", "Can't"))]
        for peer in parsed["unreachable"]:
            if peer not in self.down:
                log(f"peer {peer} unreachable: left out of pushes until it answers")
            self.down.add(peer)
        log(f"{source}: rc={rc} updated={pushed} deleted={deleted} conflicts={len(events)}"
            + (f" errors={errors[:5]}" if errors else ""))  # fmt: skip
        try:
            for ev in events:
                ah_csync2.write_json(os.path.join(self.state_dir, "airflow_ha-events.jsonl"), ev, append=True)
                log(f"conflict: {ev['path']} with {ev['peer']}: {ev['outcome']}")
            ah_csync2.write_json(
                os.path.join(self.state_dir, "airflow_ha-last-sync.json"),
                {"time": now, "source": source, "result": rc == 0 and not errors,
                 "comment": f"updated {pushed}, deleted {deleted}, rc {rc}"},
            )  # fmt: skip
        except OSError as exc:
            log(f"cannot write state: {exc}")
        return sorted(set(lost))

    def peer_args(self, recheck=False):
        """
        ``-P`` arguments for the next push. csync2 contacts peers one after
        the other and a dead one costs a TCP timeout that would hold back
        every other peer's update, so the peers are probed first, all at
        once (a TCP connect to the csync2 port within probe_s): one that
        does not answer is left out (-P) and stays dirty. A live peer costs
        about a millisecond here, a peer that died since the last push
        probe_s once (instead of connect_timeout_s inside csync2). Peers
        already known down are probed only with ``recheck`` (the watch
        loop's probe_interval_s), so they cost the pushes nothing; one that
        answers again gets a full sync for what it missed.
        Returns [] (all peers), ["-P", "a,b"], or None (no peer reachable).
        """
        peers = [n for n in self.conf.get("nodes", []) if n != self.myname]
        asked = [p for p in peers if recheck or p not in self.down]
        answered = self.probe(asked)
        gone = {p for p in asked if p not in answered and p not in self.down}
        back = self.down & answered
        if gone:
            log(f"peer(s) {', '.join(sorted(gone))} not answering: left out of pushes until they answer")
        if back:
            log(f"peers back: {', '.join(sorted(back))}; full sync for what they missed")
            self.catch_up = True
            self.back |= back
        self.down = (self.down | gone) - back
        if not self.down:
            return []
        up = [p for p in peers if p not in self.down]
        return ["-P", ",".join(up)] if up else None

    def probe(self, peers):
        """The peers whose csync2 port accepts a connection within probe_s (probed in parallel)."""
        port, limit, answered = int(self.conf.get("port", 30865)), float(self.conf.get("probe_s", 0.3)), set()

        def one(peer):
            try:
                with socket.create_connection((peer, port), timeout=limit):
                    answered.add(peer)
            except OSError:
                pass

        threads = [threading.Thread(target=one, args=(p,), daemon=True) for p in peers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(limit + 0.5)
        return set(answered)

    def full(self, source="timer"):
        # cut like a watcher push: the lock is held meanwhile, and a dead
        # node must not stall the watcher for ~40 s every timer run
        only = self.peer_args()
        if only is None:  # no peer reachable: record what changed, push when one is back
            self.run("-c")
            return []
        rc, _, err, cut = self.run_push("-v", "-x", *only)
        lost = self.record(source, rc, err)
        if cut:
            only = self.peer_args()
            if only is not None:
                rc, _, err, _ = self.run_push("-v", "-x", *only)
                lost += self.record(source, rc, err)
        return sorted(set(lost))

    def mark_only_here(self, peers):
        """Mark dirty what only this node has, as `csync2 -T <me> <peer>` sees
        it for each of ``peers`` (csync2 compares its databases: the full sync
        before this refreshed ours). True when something was marked."""
        paths = set()
        for peer in sorted(peers):
            rc, out, err = self.run("-T", self.myname, peer)
            if rc == 2:  # in sync
                continue
            if rc != 0:
                log(f"csync2 -T {self.myname} {peer} failed (rc {rc}): {err.strip()[-300:]}")
                continue
            found = {d["path"] for d in ah_csync2.parse_test(out) if d["state"] == "only_here"}
            if found:
                log(f"{peer} lacks {len(found)} path(s) this node has: marking them for a push")
            paths |= found
        if paths:
            self.run("-m", *sorted(paths))
        return bool(paths)

    def caught_up(self, peers, source):
        """Full sync, then push what ``peers`` lack although nothing marked it."""
        lost = self.full(source)
        if peers and self.mark_only_here(peers):
            lost += self.full(source)
        return lost

    def known(self, paths):
        """{path: checktxt dict} from csync2's file table (read-only), or None."""
        db = os.path.join(self.state_dir, f"{self.myname}.db3")
        try:
            con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.5)
            try:
                rows = []
                for i in range(0, len(paths), 500):
                    chunk = paths[i : i + 500]
                    rows += con.execute(
                        f"SELECT filename, checktxt FROM file WHERE filename IN ({','.join('?' * len(chunk))})",
                        chunk,
                    ).fetchall()
            finally:
                con.close()
        except sqlite3.Error:
            return None
        return {name: parse_checktxt(txt) for name, txt in rows}

    def triage(self, paths):
        """
        Split event paths into (push, mark) without running csync2:
        - gone and unknown to csync2's database, or present and exactly as
          the database has it with a whole-second mtime: csync2's daemon did
          it for a peer (or it is a temp file) -> nothing to do;
        - written here (sub-second mtime) but equal to the database in
          whole seconds, size, mode and owner: csync2's check would miss it
          (the mtime trap) -> mark explicitly (-m);
        - anything else: csync2's check finds it -> push.
        Costs one sqlite read instead of csync2 runs on every receiving node.
        """
        known = self.known(paths)
        if known is None:
            return paths, [p for p in paths if local_write(p)]
        push, mark = [], []
        for p in paths:
            try:
                st = os.lstat(p)
            except OSError:
                if p in known:
                    push.append(p)  # deleted here
                continue
            same = p in known and same_as_db(st, known[p])
            if st.st_mtime_ns % 1_000_000_000 != 0:
                push.append(p)
                if same:
                    mark.append(p)
            elif not same:
                push.append(p)
        return push, mark

    def push(self, paths):
        paths, mark = self.triage(sorted(set(paths)))
        self.pushed = len(paths)
        if not paths:
            return []
        # a path below another listed path is covered by -r
        top = [p for p in paths if not any(p != q and p.startswith(q.rstrip("/") + "/") for q in paths)]
        for i in range(0, len(mark), 200):
            self.run("-m", *mark[i : i + 200])
        only = self.peer_args()
        if only is None:
            self.run("-c", "-r", *top[:200])  # no peer reachable: just record the changes
            return []
        scope = [] if len(top) > 200 or self.catch_up else ["-r", *top]
        self.catch_up = False
        rc, _, err, cut = self.run_push("-v", "-x", *only, *scope)
        lost = self.record("watcher", rc, err)
        if cut:  # the others have not had this push yet
            only = self.peer_args()
            if only is not None:
                rc, _, err, _ = self.run_push("-v", "-x", *only, *scope)
                lost += self.record("watcher", rc, err)
        return sorted(set(lost))

    def still_dirty(self, paths):
        rc, out, _ = self.run("-M")
        if rc != 0:
            return []
        dirty = {line.split("\t")[3] for line in out.splitlines() if line.count("\t") >= 3}
        return [p for p in paths if p in dirty]

    def tie_break(self, paths):
        for path in self.still_dirty(paths):
            log(f"tie-break: {path} still conflicting; forcing this node's version")
            # forced dirty entry for EVERY peer (-F -m): the third node may
            # hold the other loser's version and have no dirty entry here
            self.run("-c", "-r", path)
            self.run("-F", "-m", path)
            rc, _, err = self.run("-v", "-x", "-r", path)
            self.record("tie-break", rc, err)


def watch(conf):
    cs = Csync2(conf)
    dirs = [d for d in conf["dirs"] if os.path.isdir(d)]
    if not dirs:
        log(f"none of {conf['dirs']} exists; nothing to watch")
        return 1
    debounce = conf.get("debounce_ms", 200) / 1000.0
    max_delay = max(debounce, conf.get("max_delay_ms", 2000) / 1000.0)
    nodes = sorted(conf.get("nodes", [])) or [cs.myname]
    rank = nodes.index(cs.myname) if cs.myname in nodes else len(nodes)
    retry_after = conf.get("retry_s", 2.0) + rank * conf.get("retry_step_s", 1.5)
    proc = subprocess.Popen(
        ["inotifywait", "-m", "-r", "-q", "--format", "%e %w%f",
         "-e", "close_write,create,delete,moved_to,moved_from,attrib,delete_self,move_self", *dirs],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    # csync2 can replace a synced root folder when a peer pushes it (seen on a
    # first converge); inotify keeps watching the removed one. Its DELETE_SELF /
    # MOVE_SELF event ends this run and systemd starts a fresh watcher (whose
    # start-up full sync pushes what was written meanwhile). ext4 hands the new
    # folder the freed inode number at once, so comparing inodes (kept as a
    # fallback) alone misses it: found when a CI lab run lost node2's pushes.
    inodes = {d: os.stat(d).st_ino for d in dirs}
    roots = {os.path.normpath(d) for d in dirs}
    log(f"watching {', '.join(dirs)} (debounce {debounce * 1000:.0f} ms)")
    time.sleep(0.3)
    cs.caught_up(cs.probe([n for n in nodes if n != cs.myname]), "watcher-start")
    buf, pending, first, last, retries = b"", set(), 0.0, 0.0, []
    probe_every = float(conf.get("probe_interval_s", 5.0))
    next_probe = time.monotonic() + probe_every
    fd = proc.stdout.fileno()
    while True:
        now = time.monotonic()
        deadlines = [t for t, _ in retries]
        deadlines.append(next_probe)  # peers probed now and then: one back is caught up
        if pending:
            deadlines.append(min(last + debounce, first + max_delay))
        timeout = min(max(0.0, min(deadlines) - now) if deadlines else ROOT_CHECK_S, ROOT_CHECK_S)
        if not pending and _roots_replaced(inodes):
            log("a watched folder was replaced (new inode): restarting the watcher")
            proc.terminate()
            return 1
        if sel.select(timeout):
            chunk = os.read(fd, 65536)
            if not chunk:
                log("inotifywait exited")
                return 1
            buf += chunk
            *lines, buf = buf.split(b"\n")
            now = time.monotonic()
            for raw in lines:
                events, _, path = raw.decode("utf-8", "surrogateescape").partition(" ")
                path = path.rstrip("/")
                if root_gone(events, path, roots):
                    log(f"watched folder {path} was removed or moved ({events}): restarting the watcher")
                    proc.terminate()
                    return 1
                if not path or excluded(path, conf.get("exclude", [])) or csync2_temp(path):
                    continue
                if not pending:
                    first = now
                pending.add(path)
                last = now
            continue
        now = time.monotonic()
        if pending and now >= min(last + debounce, first + max_delay):
            lost = cs.push(pending)
            done = time.monotonic()
            if cs.pushed:
                log(
                    f"pushed {cs.pushed} path(s) {done - first:.3f} s after the first event (push {done - now:.3f} s)"
                )
            pending = set()
            # ties exist only for comparing policies; `none` means a person
            # decides (csync2.force), left/right never tie
            if lost and conf.get("tie_break", True) and conf.get("auto", "younger") in TIE_POLICIES:
                retries.append((time.monotonic() + retry_after, lost))
        if now >= next_probe and not pending:
            next_probe = now + probe_every
            if cs.peer_args(recheck=True) is not None and cs.catch_up:
                cs.catch_up, back = False, cs.back
                cs.back = set()
                cs.caught_up(back, "catch-up")
        due = [p for t, ps in retries if t <= now for p in ps]
        if due:
            retries = [(t, ps) for t, ps in retries if t > now]
            cs.tie_break(sorted(set(due)))


ROOT_CHECK_S = 2.0


def root_gone(events, path, roots):
    """True for inotifywait's DELETE_SELF/MOVE_SELF of a watched root folder
    (``events`` is its comma-separated %e field). A sub-folder's own event is
    not: its parent reports the DELETE/MOVED_FROM that matters."""
    names = set(events.split(","))
    return bool(names & {"DELETE_SELF", "MOVE_SELF"}) and os.path.normpath(path or "/") in roots


def _roots_replaced(inodes):
    for path, ino in inodes.items():
        try:
            if os.stat(path).st_ino != ino:
                return True
        except FileNotFoundError:
            return True
    return False


def main(argv):
    with open(CONF) as fh:
        conf = json.load(fh)
    if "--once" in argv:
        Csync2(conf).full("timer" if "--timer" in argv else "cron")
        return 0
    return watch(conf)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
