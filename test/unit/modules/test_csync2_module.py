"""Unit tests of the csync2 execution module (_modules/csync2.py and
_modules/csync2_db.py, one virtual name) against outputs recorded from the real
csync2 2.0 binary (test/unit/data/csync2/*.json: argv, retcode, stdout,
stderr; recorded with three csync2 daemons in a private network namespace)."""

import json
import pathlib
import time

import pytest
import salt.utils.path
import testlib
from salt.exceptions import CommandExecutionError, SaltInvocationError
from testlib import load_lab_pki, load_module, utils_dunder

DATA = testlib.DATA / "csync2"

CONFIG = """\
# Managed by Salt (airflow_ha.csync2)
group airflow_ha
{
  host node1 node2 node3;
  key /etc/csync2.key;
  include "/var/lib/airflow/dags";
  include "/var/lib/airflow/plugins";
  exclude "*.pyc";
  exclude "__pycache__";
  exclude ".#*";   # quoted: '#' starts a comment
  auto younger;
  backup-directory "/var/lib/csync2/backup";
  backup-generations 3;
}
"""


def rec(name):
    return json.loads((DATA / f"{name}.json").read_text())


class FakeCsync2:
    """cmd.run_all stand-in: replays recorded runs in order, checks argv."""

    def __init__(self, *names):
        self.queue = [rec(n) for n in names]
        self.calls = []

    def __call__(self, cmd, **kwargs):
        assert kwargs.get("python_shell") is False
        if cmd[0] == "flock":
            assert cmd[1:4] == ["-w", "120", "/run/lock/airflow_ha-csync2.lock"]
            cmd = cmd[4:]
        assert cmd[0] == "csync2"
        args = list(cmd[1:])
        if args[:1] == ["-p"]:
            args = args[2:]
        self.calls.append(args)
        assert self.queue, f"unexpected csync2 call {args}"
        r = self.queue.pop(0)
        want = [x for a in r["argv"][1:] for x in (["-c", "-r"] if a == "-cr" else [a])]
        # -v only changes how much csync2 prints
        assert sorted(a for a in args if a != "-v") == sorted(a for a in want if a != "-v"), (args, want)
        return {"retcode": r["retcode"], "stdout": r["stdout"], "stderr": r["stderr"]}


@pytest.fixture
def csync2_mod():
    return load_module("csync2")


@pytest.fixture
def csync2_db():
    return load_module("csync2_db")


@pytest.fixture
def state_dir(tmp_path):
    d = tmp_path / "state"
    d.mkdir()
    return d


@pytest.fixture
def cfg_file(tmp_path):
    p = tmp_path / "csync2.cfg"
    p.write_text(CONFIG)
    return p


@pytest.fixture
def fake():
    return {"run": None}


@pytest.fixture
def configure_loader_modules(csync2_mod, csync2_db, cfg_file, state_dir, fake, monkeypatch):
    settings = {"csync2": {"config_file": str(cfg_file), "port": 30865}}

    def run_all(cmd, **kwargs):
        return fake["run"](cmd, **kwargs)

    monkeypatch.setattr(csync2_mod.socket, "gethostname", lambda: "node2")
    monkeypatch.setattr(csync2_mod, "_reachable", lambda host, port, timeout=2.0: (True, None))
    dunders = {
        "__salt__": {
            "airflow_ha.settings": lambda: settings,
            "cmd.run_all": run_all,
            "service.stop": lambda name: True,
            "service.start": lambda name: True,
        },
        "__opts__": {"csync2.state_dir": str(state_dir)},
        "__grains__": {},
        "__context__": {},
        "__utils__": utils_dunder("ah_csync2", "ah_csync2_db", "ah_csync2_run"),
    }
    return {csync2_mod: dunders, csync2_db: dunders}


# ------------------------------------------------------------- functions
def test_virtual_reasons(csync2_mod, csync2_db, monkeypatch, tmp_path):
    monkeypatch.setattr(salt.utils.path, "which", lambda name: None)
    for mod in (csync2_mod, csync2_db):
        ok, why = mod.__virtual__()
        assert ok is False and "not installed" in why


def test_a_missing_config_file_is_named_with_the_fix(csync2_mod, monkeypatch, tmp_path):
    """The config file comes from the formula's settings (a lookup override
    included), read when a function runs, not at load time."""
    monkeypatch.setattr(csync2_mod, "_config_file", lambda: str(tmp_path / "missing.cfg"))
    with pytest.raises(CommandExecutionError, match="missing.cfg.*state airflow_ha.csync2 writes it"):
        csync2_mod.sync()


def test_port_and_config_file_come_from_the_settings(csync2_mod, fake, cfg_file):
    """The port csync2.socket listens on (settings: lookup and pillar layered)."""
    csync2_mod.__salt__["airflow_ha.settings"] = lambda: {
        "csync2": {"config_file": str(cfg_file), "port": 30999}
    }
    seen = []
    fake["run"] = lambda cmd, **kw: seen.append(cmd) or {"retcode": 2, "stdout": "", "stderr": ""}
    csync2_mod.in_sync(check=False)
    assert seen[-1][seen[-1].index("-p") + 1] == "30999"


def test_virtual_loads(csync2_mod, csync2_db, monkeypatch):
    monkeypatch.setattr(salt.utils.path, "which", lambda name: "/usr/sbin/csync2")
    assert csync2_mod.__virtual__() == csync2_db.__virtual__() == "csync2"


def test_sync_success(csync2_mod, fake, state_dir):
    fake["run"] = FakeCsync2("sync_push_v")
    ret = csync2_mod.sync()
    assert ret["pushed"]["node1"][0] == "/var/lib/airflow/dags/dag_1.py"
    assert ret["comment"] == "10 pushed"
    assert ret["errors"] == {}
    last = json.loads((state_dir / csync2_mod.LAST_SYNC_FILE).read_text())
    assert last["result"] is True and last["source"] == "salt"


def test_sync_nothing(csync2_mod, fake):
    fake["run"] = FakeCsync2("sync_nothing_v")
    ret = csync2_mod.sync()
    assert ret["comment"] == "nothing to push" and ret["pushed"] == {}


def test_sync_peer_down_is_a_failure_with_reason(csync2_mod, fake):
    fake["run"] = FakeCsync2("sync_peer_down_v")
    with pytest.raises(CommandExecutionError) as exc:
        csync2_mod.sync()
    assert "node3" in str(exc.value) and "connection failed" in str(exc.value)
    assert exc.value.info["pushed"] == {"node1": ["/var/lib/airflow/dags/down.py"]}


def test_sync_conflict_recorded(csync2_mod, fake, state_dir, monkeypatch):
    monkeypatch.setattr(csync2_mod.socket, "gethostname", lambda: "node1")
    fake["run"] = FakeCsync2("conflict_push_older_loses")
    with pytest.raises(CommandExecutionError) as exc:
        csync2_mod.sync(verbose=True)
    ret = exc.value.info
    assert "conflict on /var/lib/airflow/dags/dag_2.py" in ret["comment"]
    assert str(exc.value).startswith(ret["comment"])
    assert any("Lost" in line for line in ret["log"])
    events = [json.loads(x) for x in (state_dir / csync2_mod.EVENTS_FILE).read_text().splitlines()]
    assert events[0]["outcome"] == "lost" and events[0]["node"] == "node1"


def test_sync_paths_are_marked_first(csync2_mod, fake):
    # mark (whole-second mtime trap), then push those paths
    fake["run"] = FakeCsync2("mark_then_sync_mark", "mark_then_sync")
    fake["run"].queue[1]["argv"] = ["csync2", "-x", "-r", "/var/lib/airflow/dags/trap.py"]
    ret = csync2_mod.sync(paths=["/var/lib/airflow/dags/trap.py"])
    assert fake["run"].calls[0] == ["-m", "/var/lib/airflow/dags/trap.py"]
    assert ret["pushed"] == {
        "node3": ["/var/lib/airflow/dags/trap.py"],
        "node1": ["/var/lib/airflow/dags/trap.py"],
    }


@pytest.mark.parametrize(
    "paths,needle",
    [
        (["/etc/passwd"], "outside the synced folders"),
        (["relative.py"], "not an absolute path"),
        (["/var/lib/airflow/dags/x.pyc"], "excluded from sync by pattern '*.pyc'"),
        (["/var/lib/airflow/dags/__pycache__/x.py"], "excluded"),
        (["/var/lib/airflow/dagsX/x.py"], "outside"),
    ],
)
def test_sync_bad_paths(csync2_mod, fake, paths, needle):
    fake["run"] = FakeCsync2()
    with pytest.raises(SaltInvocationError, match=None) as exc:
        csync2_mod.sync(paths=paths)
    assert needle in str(exc.value)
    assert fake["run"].calls == []


def test_sync_unknown_peer(csync2_mod, fake):
    fake["run"] = FakeCsync2()
    with pytest.raises(SaltInvocationError) as exc:
        csync2_mod.sync(peers=["node9"])
    assert "node9" in str(exc.value) and "node1, node3" in str(exc.value)
    with pytest.raises(SaltInvocationError):
        csync2_mod.sync(peers="node2")  # itself is not a peer


def test_sync_not_in_any_group(csync2_mod, fake, monkeypatch):
    monkeypatch.setattr(csync2_mod.socket, "gethostname", lambda: "other")
    fake["run"] = FakeCsync2()
    with pytest.raises(CommandExecutionError, match="in no group"):
        csync2_mod.sync()


def test_dirty_empty_and_listed(csync2_mod, fake):
    fake["run"] = FakeCsync2("dirty_empty", "dirty_listed", "config_syntax_error")
    assert csync2_mod.dirty() == {"count": 0, "files": {}, "forced": []}
    ret = csync2_mod.dirty()
    assert ret["count"] == 5
    assert ret["files"]["/var/lib/airflow/dags/sub"] == ["node1", "node3"]
    fake["run"].queue[0]["argv"] = ["csync2", "-M"]
    with pytest.raises(CommandExecutionError, match="Near line 13"):
        csync2_mod.dirty()


def test_check(csync2_mod, fake):
    fake["run"] = FakeCsync2("check", "dirty_listed")
    ret = csync2_mod.check()
    assert ret["count"] == 5
    assert fake["run"].calls[0] == ["-c", "-r", "/"]


def test_in_sync_true(csync2_mod, fake):
    fake["run"] = FakeCsync2("check", "in_sync_all")
    ret = csync2_mod.in_sync()
    assert ret == {"in_sync": True, "differences": {}, "comment": "in sync with all peers"}


def test_in_sync_differences(csync2_mod, fake, monkeypatch):
    monkeypatch.setattr(csync2_mod.socket, "gethostname", lambda: "node1")
    fake["run"] = FakeCsync2("check_node1", "test_diff")
    ret = csync2_mod.in_sync()
    assert ret["in_sync"] is False
    assert {"path": "/var/lib/airflow/dags/dag_2.py", "state": "differs"} in ret["differences"]["node2"]
    assert ret["comment"] == "2 file(s) differ"


def test_in_sync_pair(csync2_mod, fake, monkeypatch):
    monkeypatch.setattr(csync2_mod.socket, "gethostname", lambda: "node1")
    fake["run"] = FakeCsync2("test_pair")
    ret = csync2_mod.in_sync(peer="node3", check=False)
    assert fake["run"].calls[0] == ["-T", "node1", "node3"]
    assert list(ret["differences"]) == ["node3"]


def test_in_sync_peer_down(csync2_mod, fake):
    fake["run"] = FakeCsync2("test_peer_down")
    with pytest.raises(CommandExecutionError, match="csync2 -T failed") as exc:
        csync2_mod.in_sync(check=False)
    assert exc.value.info == {"in_sync": False, "unreachable": ["node3"]}


def test_conflicts(csync2_mod, fake, state_dir, monkeypatch):
    monkeypatch.setattr(csync2_mod.socket, "gethostname", lambda: "node1")
    now = time.time()
    events = [
        {
            "time": now - 5,
            "node": "node1",
            "path": "/var/lib/airflow/dags/dag_2.py",
            "peer": "node2",
            "outcome": "lost",
        },
        {
            "time": now - 7200,
            "node": "node1",
            "path": "/var/lib/airflow/dags/old.py",
            "peer": "node2",
            "outcome": "lost",
        },
    ]
    (state_dir / csync2_mod.EVENTS_FILE).write_text(
        "".join(json.dumps(e) + "\n" for e in events) + "garbage\n"
    )
    fake["run"] = FakeCsync2("check_node1", "dirty_node1_after_lost")
    ret = csync2_mod.conflicts()
    assert ret["unresolved"] == {"/var/lib/airflow/dags/dag_2.py": ["node2"]}
    assert [e["path"] for e in ret["recent"]] == ["/var/lib/airflow/dags/dag_2.py"]
    assert "csync2.force" in ret["comment"]
    # once the winner overwrote it, nothing is dirty: resolved, still in history
    fake["run"] = FakeCsync2("check_node1", "dirty_node1_after_resolve")
    ret = csync2_mod.conflicts()
    assert ret["unresolved"] == {} and len(ret["recent"]) == 1


def test_conflicts_bad_argument(csync2_mod, fake):
    fake["run"] = FakeCsync2()
    with pytest.raises(SaltInvocationError, match="since_minutes"):
        csync2_mod.conflicts(since_minutes="soon")


def test_force(csync2_mod, fake, monkeypatch):
    monkeypatch.setattr(csync2_mod.socket, "gethostname", lambda: "node1")
    f = "/var/lib/airflow/dags/f.py"
    fake["run"] = FakeCsync2("check", "mark_path", "force_node1", "sync_after_force")
    fake["run"].queue[0]["argv"] = ["csync2", "-c", "-r", f]
    fake["run"].queue[1]["argv"] = ["csync2", "-F", "-m", f]
    fake["run"].queue[2]["argv"] = ["csync2", "-f", "-r", f]
    fake["run"].queue[3]["argv"] = ["csync2", "-x", "-r", f]
    ret = csync2_mod.force(f)
    # forced for every peer, and no plain `-m` before the push (it clears the flag)
    assert [c[:2] for c in fake["run"].calls] == [["-c", "-r"], ["-F", "-m"], ["-f", "-r"], ["-v", "-x"]]
    assert ret["comment"].startswith("forced /var/lib/airflow/dags/f.py")
    with pytest.raises(SaltInvocationError):
        csync2_mod.force("/tmp/x.py")


def test_status(csync2_mod, fake, monkeypatch, state_dir):
    (state_dir / csync2_mod.LAST_SYNC_FILE).write_text(json.dumps({"time": time.time() - 3, "result": True}))
    fake["run"] = FakeCsync2("help", "dirty_listed")
    fake["run"].queue[0]["argv"] = ["csync2", "--help"]
    monkeypatch.setattr(
        csync2_mod,
        "_reachable",
        lambda host, port: (True, None) if host == "node1" else (False, "Connection refused"),
    )
    ret = csync2_mod.status()
    assert ret["version"] == "2.0"
    assert ret["config_valid"] is True
    assert ret["dirty_count"] == 5
    assert ret["peers"] == {
        "node1": {"reachable": True},
        "node3": {"reachable": False, "error": "Connection refused"},
    }
    assert ret["healthy"] is False and "node3" in ret["comment"]
    assert ret["last_sync"]["result"] is True and ret["last_sync"]["age_seconds"] >= 0


def test_status_bad_config(csync2_mod, fake, monkeypatch):
    fake["run"] = FakeCsync2("help", "config_syntax_error")
    fake["run"].queue[0]["argv"] = ["csync2", "--help"]
    fake["run"].queue[1]["argv"] = ["csync2", "-M"]
    monkeypatch.setattr(csync2_mod, "_reachable", lambda host, port: (True, None))
    ret = csync2_mod.status()
    assert ret["healthy"] is False and ret["config_valid"] is False
    assert "Near line 13" in ret["comment"]


def test_genkey(csync2_mod, fake, tmp_path):
    target = tmp_path / "k.key"
    fake["run"] = FakeCsync2("genkey")
    fake["run"].queue[0]["argv"] = ["csync2", "-k", str(target)]

    def run_and_write(cmd, **kw):
        target.write_text("x" * 64 + "\n")
        return FakeCsync2.__call__(fake_impl, cmd, **kw)

    fake_impl = fake["run"]
    fake["run"] = run_and_write
    ret = csync2_mod.genkey(str(target))
    assert ret["path"] == str(target) and "x" * 64 not in json.dumps(ret)
    assert target.stat().st_mode & 0o777 == 0o600
    with pytest.raises(SaltInvocationError, match="already exists"):
        csync2_mod.genkey(str(target))
    with pytest.raises(SaltInvocationError, match="absolute"):
        csync2_mod.genkey("k.key")


def test_genkey_failure(csync2_mod, fake):
    fake["run"] = FakeCsync2("genkey_baddir")
    with pytest.raises(CommandExecutionError, match="No such file or directory"):
        csync2_mod.genkey("/nonexistent/dir/k.key")


def test_reset_db_refuses_without_confirm(csync2_db, fake, state_dir):
    (state_dir / "csync2_node2.db3").write_text("db")
    fake["run"] = FakeCsync2()
    for confirm in (False, "yes", 1):
        with pytest.raises(SaltInvocationError, match="confirm=True"):
            csync2_db.reset_db(confirm=confirm)
    assert (state_dir / "csync2_node2.db3").exists()


def test_reset_db(csync2_db, fake, state_dir):
    (state_dir / "csync2_node2.db3").write_text("db")
    fake["run"] = FakeCsync2("check")
    ret = csync2_db.reset_db(confirm=True)
    assert ret["started"] is True and ret["comment"].startswith("database re-created")
    assert not (state_dir / "csync2_node2.db3").exists()
    assert (pathlib.Path(ret["moved_aside_to"]) / "csync2_node2.db3").read_text() == "db"
    assert fake["run"].calls == [["-c", "-r", "/"]]


def test_forget_peer_cert(csync2_db, fake, state_dir):
    import sqlite3  # noqa: PLC0415

    db = state_dir / "csync2_node2.db3"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE x509_cert (peername, certdata, UNIQUE (peername) ON CONFLICT IGNORE)")
        con.execute("INSERT INTO x509_cert VALUES ('node3', 'AB'), ('node1', 'CD')")
    fake["run"] = FakeCsync2()
    ret = csync2_db.forget_peer_cert("node3")
    assert ret["removed"] == 1
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT peername FROM x509_cert").fetchall() == [("node1",)]
    with pytest.raises(SaltInvocationError):
        csync2_db.forget_peer_cert("node9")


def test_sync_skips_a_dead_peer_without_waiting(csync2_mod, fake, monkeypatch):
    monkeypatch.setattr(
        csync2_mod, "_reachable", lambda host, port, timeout=2.0: (host != "node3", "No route to host")
    )
    fake["run"] = FakeCsync2("sync_push_v")
    fake["run"].queue[0]["argv"] = ["csync2", "-x", "-P", "node1"]
    with pytest.raises(CommandExecutionError, match="node3") as exc:
        csync2_mod.sync()
    ret = exc.value.info
    assert fake["run"].calls[0][-2:] == ["-P", "node1"]
    assert ret["unreachable"] == ["node3"] and ret["pushed"]
    assert "skipped" in ret["errors"]["node3"][-1]


def test_sync_no_peer_reachable(csync2_mod, fake, monkeypatch):
    monkeypatch.setattr(
        csync2_mod, "_reachable", lambda host, port, timeout=2.0: (False, "Connection refused")
    )
    fake["run"] = FakeCsync2()
    with pytest.raises(CommandExecutionError, match="no peer reachable") as exc:
        csync2_mod.sync()
    assert sorted(exc.value.info["unreachable"]) == ["node1", "node3"]
    assert fake["run"].calls == []


def _self_signed(subject="airflow_ha lab csync2"):
    """A real PEM certificate (the lab's generator) and its DER in csync2's hex."""
    import ssl  # noqa: PLC0415
    import tempfile  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as d:
        pem = load_lab_pki().csync2_certs_pillar(["node3"], pathlib.Path(d))["node3"]["cert"]
    return pem, ssl.PEM_cert_to_DER_cert(pem).hex().upper()


def test_stale_pins_compares_with_the_given_certificates(csync2_db, fake, state_dir):
    import sqlite3  # noqa: PLC0415

    pem3, hex3 = _self_signed()
    pem1, _ = _self_signed()
    with sqlite3.connect(state_dir / "csync2_node2.db3") as con:
        con.execute("CREATE TABLE x509_cert (peername, certdata, UNIQUE (peername) ON CONFLICT IGNORE)")
        con.execute("INSERT INTO x509_cert VALUES ('node3', ?), ('node1', 'CD')", (hex3,))
    # node3's pin matches, node1's does not; node4 was never pinned
    assert csync2_db.stale_pins({"node3": pem3, "node1": pem1, "node4": pem1}) == ["node1"]
    with pytest.raises(SaltInvocationError, match="node1 is not PEM"):
        csync2_db.stale_pins({"node1": "not a certificate"})
