"""Unit tests of the csync2 watcher (airflow_ha/csync2/files/csync2-watch.py),
fed with outputs recorded from the real csync2 binary."""

import json
import os
import time

import pytest
import testlib

ROOT = testlib.ROOT
DATA = testlib.DATA / "csync2"


def rec(name):
    return json.loads((DATA / f"{name}.json").read_text())


@pytest.fixture
def watch(monkeypatch):
    # Installed, ah_secrets.py sits next to the watcher; here it is in _utils.
    monkeypatch.syspath_prepend(str(ROOT / "_utils"))
    return testlib.load_file("airflow_ha/csync2/files/csync2-watch.py", "csync2_watch")


@pytest.fixture
def cs(watch, tmp_path, monkeypatch):
    monkeypatch.setattr(watch.socket, "gethostname", lambda: "node1")
    c = watch.Csync2({"state_dir": str(tmp_path), "lock": str(tmp_path / "lock"), "port": 30865})
    c.calls = []
    c.replies = []
    c.peer_args = lambda: []

    def run_push(*args):
        rc, out, err = run(*args)
        return rc, out, err, None

    c.run_push = run_push

    def run(*args):
        c.calls.append(list(args))
        return c.replies.pop(0) if c.replies else (0, "", "")

    c.run = run
    return c


@pytest.mark.parametrize(
    "path,expected",
    [
        ("/var/lib/airflow/dags/a.py", False),
        ("/var/lib/airflow/dags/a.pyc", True),
        ("/var/lib/airflow/dags/__pycache__/a.cpython-311.pyc", True),
        ("/var/lib/airflow/dags/.a.py.swp", True),
        ("/var/lib/airflow/dags/a.py~", True),
        ("/var/lib/airflow/dags/.#a.py", True),
        ("/var/lib/airflow/dags/tmp/x.py", True),
    ],
)
def test_excluded(watch, path, expected):
    patterns = ["*.pyc", "__pycache__", ".*.swp", "*~", ".#*", "/var/lib/airflow/dags/tmp"]
    assert watch.excluded(path, patterns) is expected


def test_local_write_vs_received(watch, tmp_path):
    local = tmp_path / "local.py"
    local.write_text("x")
    os.utime(local, ns=(1_700_000_000_123_456_789, 1_700_000_000_123_456_789))
    received = tmp_path / "received.py"
    received.write_text("y")
    # csync2's daemon sets the sender's mtime in whole seconds
    os.utime(received, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
    assert watch.local_write(str(local)) is True
    assert watch.local_write(str(received)) is False
    assert watch.local_write(str(tmp_path / "deleted.py")) is False


def test_same_as_db_with_and_without_owners_in_the_record(watch, tmp_path):
    f = tmp_path / "dag.py"
    f.write_text("x")
    st = os.stat(f)
    base = {"mtime": str(int(st.st_mtime)), "mode": str(st.st_mode), "size": str(st.st_size)}
    owners = {"uid": str(st.st_uid), "gid": str(st.st_gid)}
    # csync2.cfg's `ignore uid gid`: the record has no owners (recorded from csync2 2.0)
    assert (
        watch.same_as_db(
            st,
            watch.parse_checktxt(
                "v1%3Amtime="
                + base["mtime"]
                + "%3Amode="
                + base["mode"]
                + "%3Atype=reg%3Asize="
                + base["size"]
            ),
        )
        is True
    )
    assert watch.same_as_db(st, {**base, **owners}) is True
    assert watch.same_as_db(st, {**base, "uid": str(st.st_uid + 1)}) is False
    assert watch.same_as_db(st, {**base, "mtime": str(int(st.st_mtime) - 1)}) is False
    assert watch.same_as_db(st, {"size": base["size"]}) is False, "mtime and mode are required"


def test_record_conflict_lost(cs, tmp_path):
    r = rec("conflict_push_older_loses")
    lost = cs.record("watcher", r["retcode"], r["stderr"])
    assert lost == ["/var/lib/airflow/dags/dag_2.py"]
    ev = [json.loads(x) for x in (tmp_path / "airflow_ha-events.jsonl").read_text().splitlines()]
    assert ev == [
        {
            **ev[0],
            "node": "node1",
            "path": "/var/lib/airflow/dags/dag_2.py",
            "peer": "node2",
            "outcome": "lost",
        }
    ]
    last = json.loads((tmp_path / "airflow_ha-last-sync.json").read_text())
    assert last["result"] is False and last["source"] == "watcher"


def test_record_success(cs, tmp_path):
    r = rec("sync_push_v")
    assert cs.record("timer", r["retcode"], r["stderr"]) == []
    assert not (tmp_path / "airflow_ha-events.jsonl").exists()
    last = json.loads((tmp_path / "airflow_ha-last-sync.json").read_text())
    assert last["result"] is True and last["comment"] == "updated 10, deleted 0, rc 0"


def test_push_marks_only_local_writes(cs, tmp_path):
    d = tmp_path / "dags"
    (d / "sub").mkdir(parents=True)
    local = d / "sub" / "new.py"
    local.write_text("x")
    os.utime(local, ns=(1_700_000_000_500_000_000,) * 2)
    received = d / "got.py"
    received.write_text("y")
    os.utime(received, ns=(1_700_000_000_000_000_000,) * 2)
    os.utime(d / "sub", ns=(1_700_000_000_000_000_000,) * 2)  # a folder csync2 created
    gone = str(d / "deleted.py")
    cs.push([str(local), str(received), gone, str(d / "sub")])
    assert cs.calls[0] == ["-m", str(local)]
    # -r on the top paths only: sub/new.py is covered by sub
    assert cs.calls[1] == ["-v", "-x", "-r", gone, str(received), str(d / "sub")]


def test_tie_break_forces_only_what_is_still_dirty(cs):
    cs.replies = [(0, rec("dirty_node1_after_lost")["stdout"].replace("node1\tnode2", "node1\tnode2"), "")]
    cs.tie_break(["/var/lib/airflow/dags/dag_2.py", "/var/lib/airflow/dags/other.py"])
    assert cs.calls[0] == ["-M"]
    assert cs.calls[1:] == [
        ["-c", "-r", "/var/lib/airflow/dags/dag_2.py"],
        ["-F", "-m", "/var/lib/airflow/dags/dag_2.py"],
        ["-v", "-x", "-r", "/var/lib/airflow/dags/dag_2.py"],
    ]


def test_tie_break_nothing_when_resolved(cs):
    cs.replies = [(2, "", "")]
    cs.tie_break(["/var/lib/airflow/dags/dag_2.py"])
    assert cs.calls == [["-M"]]


def test_every_peer_is_probed_before_a_push_and_a_silent_one_left_out(watch, tmp_path, monkeypatch):
    """A peer that died since the last push costs one probe, not csync2's connect timeout."""
    monkeypatch.setattr(watch.socket, "gethostname", lambda: "node2")
    c = watch.Csync2({"nodes": ["node1", "node2", "node3"], "port": 30865, "state_dir": str(tmp_path)})
    dead, probes = {"node3"}, []

    class Conn:
        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

    def connect(addr, timeout):
        probes.append((addr, timeout))
        if addr[0] in dead:
            raise OSError("timed out")
        return Conn()

    monkeypatch.setattr(watch.socket, "create_connection", connect)
    assert c.peer_args() == ["-P", "node1"] and c.down == {"node3"}
    assert sorted(probes) == [(("node1", 30865), 0.3), (("node3", 30865), 0.3)]  # never itself
    assert c.catch_up is False
    dead.clear()
    probes.clear()
    assert c.peer_args() == ["-P", "node1"] and probes == [(("node1", 30865), 0.3)]  # known down: not asked
    assert c.peer_args(recheck=True) == [] and c.down == set() and c.catch_up is True
    dead.update({"node1", "node3"})
    assert c.peer_args() is None and c.down == {"node1", "node3"}


def test_a_peer_csync2_reported_unreachable_stays_out_until_a_probe_answers(watch, tmp_path, monkeypatch):
    monkeypatch.setattr(watch.socket, "gethostname", lambda: "node2")
    c = watch.Csync2({"nodes": ["node1", "node2", "node3"], "port": 30865, "state_dir": str(tmp_path)})
    r = rec("sync_peer_down_v")  # recorded: node3 refused
    c.record("watcher", r["retcode"], r["stderr"])
    assert c.down == {"node3"}
    monkeypatch.setattr(watch.Csync2, "probe", lambda self, peers: set(peers) & {"node1"})
    assert c.peer_args(recheck=True) == ["-P", "node1"] and c.catch_up is False


def test_probes_run_in_parallel(watch, tmp_path, monkeypatch):
    """Two silent peers cost one probe_s, not two."""
    monkeypatch.setattr(watch.socket, "gethostname", lambda: "node1")
    c = watch.Csync2({"nodes": ["node1", "node2", "node3"], "probe_s": 0.3, "state_dir": str(tmp_path)})

    def silent(addr, timeout):
        time.sleep(timeout)
        raise OSError("timed out")

    monkeypatch.setattr(watch.socket, "create_connection", silent)
    t0 = time.monotonic()
    assert c.probe(["node2", "node3"]) == set()
    assert time.monotonic() - t0 < 0.55


def test_full_sync_with_no_peer_reachable_only_checks(cs):
    cs.peer_args = lambda: None
    assert cs.full() == []
    assert cs.calls == [["-c"]]


def test_push_with_no_peer_reachable_only_checks(cs, tmp_path):
    cs.peer_args = lambda: None
    assert cs.push([str(tmp_path / "a.py")]) == []
    assert cs.calls == [["-c", "-r", str(tmp_path / "a.py")]]


def test_csync2_temp_files_are_ignored(watch, tmp_path):
    (tmp_path / "etl.py").write_text("x")
    assert watch.csync2_temp(str(tmp_path / ".etl.py.GHjViA")) is True
    # a user's dotfile whose base file does not exist is a real change
    assert watch.csync2_temp(str(tmp_path / ".other.py.GHjViA")) is False
    assert watch.csync2_temp(str(tmp_path / "etl.py")) is False


def test_run_push_cuts_a_peer_that_never_answers(watch, tmp_path, monkeypatch):
    """A fake csync2 that hangs after 'Connect to' like a vanished node."""
    fake = tmp_path / "csync2"
    fake.write_text(
        "#!/bin/sh\n"
        "echo 'Connecting to host node3 (SSL) ...' >&2\n"
        "echo 'Updating /var/lib/airflow/dags/a.py on node3 ...' >&2\n"
        "echo 'Connecting to host node1 (SSL) ...' >&2\n"
        "echo 'Connect to 10.77.0.11:30865 (node1).' >&2\n"
        "sleep 30\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    monkeypatch.setattr(watch.socket, "gethostname", lambda: "node2")
    c = watch.Csync2({"state_dir": str(tmp_path), "lock": str(tmp_path / "lock"), "connect_timeout_s": 0.5})
    rc, _, err, cut = c.run_push("-v", "-x")
    assert cut == "node1" and rc == 1
    c.record("watcher", rc, err)
    assert c.down == {"node1"}


def test_run_push_never_cuts_a_transfer(watch, tmp_path, monkeypatch):
    fake = tmp_path / "csync2"
    fake.write_text(
        "#!/bin/sh\n"
        "echo 'Connecting to host node3 (SSL) ...' >&2\n"
        "echo 'Updating /var/lib/airflow/dags/big.py on node3 ...' >&2\n"
        "sleep 1.2\n"
        "echo 'Finished with 0 errors.' >&2\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    c = watch.Csync2({"state_dir": str(tmp_path), "lock": str(tmp_path / "lock"), "connect_timeout_s": 0.3})
    rc, _, err, cut = c.run_push("-v", "-x")
    assert cut is None and rc == 0 and "Finished with 0 errors." in err


def _db(tmp_path, rows):
    import sqlite3  # noqa: PLC0415

    with sqlite3.connect(tmp_path / "node1.db3") as con:
        con.execute("CREATE TABLE file (filename, checktxt, UNIQUE (filename) ON CONFLICT REPLACE)")
        con.executemany("INSERT INTO file VALUES (?, ?)", rows)


def _checktxt(st):
    # the format csync2 stores (recorded from a lab node)
    return (
        f"v1%3Amtime={int(st.st_mtime)}%3Amode={st.st_mode}%3Auid={st.st_uid}%3Agid={st.st_gid}"
        f"%3Atype=reg%3Asize={st.st_size}"
    )


def test_parse_checktxt(watch):
    got = watch.parse_checktxt("v1%3Amtime=1795611837%3Amode=33188%3Auid=0%3Agid=0%3Atype=reg%3Asize=6")
    assert got == {"mtime": "1795611837", "mode": "33188", "uid": "0", "gid": "0", "type": "reg", "size": "6"}


def test_triage(cs, tmp_path):
    d = tmp_path / "dags"
    d.mkdir()
    whole, frac = 1_700_000_000_000_000_000, 1_700_000_000_400_000_000
    received = d / "received.py"  # csync2 wrote it and recorded it
    received.write_text("r")
    os.utime(received, ns=(whole, whole))
    trap = d / "trap.py"  # rewritten here: same second, same size as recorded
    trap.write_text("t")
    os.utime(trap, ns=(whole, whole))
    trap_rec = _checktxt(trap.stat())
    os.utime(trap, ns=(frac, frac))
    edited = d / "edited.py"  # rewritten here with another size: csync2 sees it
    edited.write_text("e")
    os.utime(edited, ns=(whole, whole))
    edited_rec = _checktxt(edited.stat())
    edited.write_text("edited, longer")
    new = d / "new.py"  # unknown to csync2
    new.write_text("n")
    _db(
        tmp_path,
        [
            (str(received), _checktxt(received.stat())),
            (str(trap), trap_rec),
            (str(edited), edited_rec),
            (str(d / "deleted_here.py"), "v1%3Amtime=1%3Asize=1"),
        ],
    )
    paths = sorted(
        str(d / n) for n in ("received.py", "trap.py", "edited.py", "new.py", "deleted_here.py", "gone.py")
    )
    push, mark = cs.triage(paths)
    assert sorted(push) == sorted(str(d / n) for n in ("trap.py", "edited.py", "new.py", "deleted_here.py"))
    assert mark == [str(trap)]


def test_push_skips_csync2_when_nothing_is_local(cs, tmp_path):
    f = tmp_path / "received.py"
    f.write_text("r")
    os.utime(f, ns=(1_700_000_000_000_000_000,) * 2)
    _db(tmp_path, [(str(f), _checktxt(f.stat()))])
    assert cs.push([str(f), str(tmp_path / "deleted_by_peer.py")]) == []
    assert cs.calls == []


@pytest.mark.parametrize(
    ("events", "path", "gone"),
    [
        ("DELETE_SELF", "/var/lib/airflow/dags", True),
        ("MOVE_SELF", "/var/lib/airflow/dags", True),
        ("DELETE_SELF", "/var/lib/airflow/dags/sub", False),  # a sub-folder: its parent reports it
        ("DELETE,ISDIR", "/var/lib/airflow/dags", False),
        ("CLOSE_WRITE,CLOSE", "/var/lib/airflow/dags/a.py", False),
    ],
)
def test_root_gone_only_for_a_watched_root(watch, events, path, gone):
    """csync2 may replace a root folder, and ext4 reuses the freed inode number
    at once: the root's own DELETE_SELF/MOVE_SELF must restart the watcher."""
    roots = {"/var/lib/airflow/dags", "/var/lib/airflow/plugins"}
    assert watch.root_gone(events, path, roots) is gone


# The pair test as csync2 2.0 printed it on node1 for node3 rebuilt blank
# (lab, `csync2 -T node1 node3`, rc 0): node3's database lacks the DAG.
PAIR_TEST_BLANK_PEER = "L\tnode1\tnode3\t/var/lib/airflow/dags/airflow_ha_drill_replace.py\n"


def test_a_peer_rebuilt_blank_gets_what_only_this_node_has(cs):
    cs.replies = [(0, "", ""), (0, PAIR_TEST_BLANK_PEER, ""), (0, "", ""), (0, "", "")]
    cs.caught_up({"node3"}, "catch-up")
    assert cs.calls == [
        ["-v", "-x"],
        ["-T", "node1", "node3"],
        ["-m", "/var/lib/airflow/dags/airflow_ha_drill_replace.py"],
        ["-v", "-x"],
    ]


def test_a_peer_in_sync_costs_one_pair_test(cs):
    cs.replies = [(0, "", ""), (2, "", "")]
    cs.caught_up({"node2"}, "watcher-start")
    assert cs.calls == [["-v", "-x"], ["-T", "node1", "node2"]]


def test_only_on_peer_or_differing_paths_are_left_to_the_peer(cs):
    out = "R\tnode1\tnode2\t/var/lib/airflow/dags/b.py\nX\tnode1\tnode2\t/var/lib/airflow/dags/c.py\n"
    cs.replies = [(0, "", ""), (0, out, "")]
    cs.caught_up({"node2"}, "catch-up")
    assert cs.calls == [["-v", "-x"], ["-T", "node1", "node2"]], "the peer pushes its own changes"


def test_a_peer_answering_again_is_remembered_for_the_catch_up(watch, tmp_path, monkeypatch):
    monkeypatch.setattr(watch.socket, "gethostname", lambda: "node1")
    c = watch.Csync2({"state_dir": str(tmp_path), "nodes": ["node1", "node2", "node3"]})
    answers = [{"node2"}, {"node2", "node3"}]
    c.probe = lambda peers: answers.pop(0)
    assert c.peer_args(recheck=True) == ["-P", "node2"] and c.down == {"node3"}
    assert c.peer_args(recheck=True) == [] and c.catch_up and c.back == {"node3"}
