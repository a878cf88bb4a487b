"""_utils/ah_csync2.py: csync2's configuration and output parsed, on outputs
recorded from the real csync2 2.0 binary (test/unit/data/csync2/*.json)."""

import json
import time

import pytest
import testlib
from testlib import load_module

ah_csync2 = load_module("ah_csync2", "utils")
DATA = testlib.DATA / "csync2"
CONFIG = (
    (testlib.ROOT / "test/unit/modules/test_csync2_module.py")
    .read_text()
    .split('CONFIG = """\\\n', 1)[1]
    .split('"""', 1)[0]
)


def rec(name):
    return json.loads((DATA / f"{name}.json").read_text())


# ----------------------------------------------------------------- parsers
def test_parse_config():
    cfg = ah_csync2.parse_config(CONFIG)
    grp = cfg["groups"]["airflow_ha"]
    assert grp["hosts"] == ["node1", "node2", "node3"]
    assert grp["include"] == ["/var/lib/airflow/dags", "/var/lib/airflow/plugins"]
    assert grp["exclude"] == ["*.pyc", "__pycache__", ".#*"]
    assert grp["auto"] == "younger"
    assert grp["key"] == "/etc/csync2.key"
    assert grp["backup_directory"] == "/var/lib/csync2/backup"


def test_parse_config_host_forms_and_other_blocks():
    text = """
nossl * *;
prefix homedir { on host[12]: /export/users; on *: /home; }
group g { host a B@b-eth2 (c); include %homedir%/bob; action { pattern /x; exec "y"; } auto none; key /k; }
"""
    cfg = ah_csync2.parse_config(text)
    assert cfg["nossl"] == [["*", "*"]]
    g = cfg["groups"]["g"]
    assert g["hosts"] == ["a", "b", "c"]
    assert g["slaves"] == ["c"]
    assert g["auto"] == "none"
    assert g["key"] == "/k"


def test_parse_dirty():
    entries = ah_csync2.parse_dirty(rec("dirty_listed")["stdout"])
    assert len(entries) == 10
    assert {e["peer"] for e in entries} == {"node1", "node3"}
    assert {"path": "/var/lib/airflow/dags/sub/helper.py", "peer": "node3", "forced": False} in entries
    forced = ah_csync2.parse_dirty(rec("dirty_forced")["stdout"])
    assert forced and all(e["forced"] for e in forced)


def test_parse_test():
    diffs = ah_csync2.parse_test(rec("test_diff")["stdout"])
    assert {"path": "/var/lib/airflow/dags/dag_2.py", "peer": "node3", "state": "differs"} in diffs
    assert {"path": "/var/lib/airflow/dags/only_on_node1.py", "peer": "node2", "state": "only_here"} in diffs
    remote = ah_csync2.parse_test(rec("test_from_node2")["stdout"])
    assert {
        "path": "/var/lib/airflow/dags/only_on_node1.py",
        "peer": "node1",
        "state": "only_on_peer",
    } in remote


def test_parse_update_push():
    p = ah_csync2.parse_update(rec("sync_push_v")["stderr"])
    assert sorted(p["pushed"]) == ["node1", "node3"]
    assert "/var/lib/airflow/dags/sub/helper.py" in p["pushed"]["node1"]
    assert len(p["pushed"]["node3"]) == 5
    assert p["errors"] == {} and p["conflicts"] == [] and p["error_count"] == 0


def test_parse_update_delete():
    p = ah_csync2.parse_update(rec("sync_delete_v")["stderr"])
    assert p["deleted"] == {
        "node3": ["/var/lib/airflow/dags/dag_3.py"],
        "node1": ["/var/lib/airflow/dags/dag_3.py"],
    }
    assert p["pushed"] == {}


def test_parse_update_conflict_lost_and_won():
    lost = ah_csync2.parse_update(rec("conflict_push_older_loses")["stderr"])
    assert lost["conflicts"] == [
        {
            "path": "/var/lib/airflow/dags/dag_2.py",
            "peer": "node2",
            "outcome": "lost",
            "test": "younger/older",
        }
    ]
    # the losing file is not reported as pushed to that peer, the others are
    assert lost["pushed"]["node2"] == ["/var/lib/airflow/dags/only_on_node1.py"]
    assert "/var/lib/airflow/dags/dag_2.py" in lost["pushed"]["node3"]
    assert lost["error_count"] == 1
    won = ah_csync2.parse_update(rec("conflict_push_younger_wins")["stderr"])
    assert won["conflicts"][0]["outcome"] == "won"
    assert won["pushed"]["node1"] == ["/var/lib/airflow/dags/dag_2.py"]


def test_parse_update_peer_down():
    p = ah_csync2.parse_update(rec("sync_peer_down_v")["stderr"])
    assert p["unreachable"] == ["node3"]
    assert any("Connection refused" in m for m in p["errors"]["node3"])
    assert p["pushed"] == {"node1": ["/var/lib/airflow/dags/down.py"]}
    quiet = ah_csync2.parse_update(rec("sync_peer_down")["stderr"])
    assert quiet["unreachable"] == ["node3"]


def test_parse_update_cert_mismatch():
    p = ah_csync2.parse_update(rec("sync_cert_mismatch_v")["stderr"])
    assert "certificate mismatch" in p["errors"]["node3"][0]
    assert "forget_peer_cert" in p["errors"]["node3"][0]


def test_parse_update_up_to_date_and_ignored():
    p = ah_csync2.parse_update(rec("sync_peer_back_v")["stderr"])
    assert p["up_to_date"] == {"node1": ["/var/lib/airflow/dags/down.py"]}
    assert p["pushed"] == {"node3": ["/var/lib/airflow/dags/down.py"]}
    ign = ah_csync2.parse_update(rec("sync_outside_path")["stderr"])
    assert ign["ignored"] == ["/etc/passwd"]


@pytest.mark.parametrize(
    "name,needle",
    [
        ("config_syntax_error", "Near line 13"),
        ("no_config", "Can not open config file"),
        ("config_key_short", "too short"),
        ("config_bad_auto", "Unknown auto-setting"),
        ("not_member", "not a member"),
    ],
)
def test_config_error(name, needle):
    r = rec(name)
    assert needle in ah_csync2.config_error(r["stderr"])


def test_config_error_none_on_success():
    assert ah_csync2.config_error(rec("sync_push_v")["stderr"]) is None


def test_parse_version():
    assert ah_csync2.parse_version(rec("help")["stdout"]) == "2.0"


def test_validate_paths_and_peers_raise_value_errors_with_the_fix():
    cfg = ah_csync2.parse_config(CONFIG)
    assert ah_csync2.validate_paths("/var/lib/airflow/dags/a.py,", cfg, "node2") == [
        "/var/lib/airflow/dags/a.py"
    ]
    with pytest.raises(ValueError, match="outside the synced folders"):
        ah_csync2.validate_paths(["/etc/passwd"], cfg, "node2")
    assert ah_csync2.validate_peers("NODE1", cfg, "node2") == ["node1"]
    with pytest.raises(ValueError, match="known peers: node1, node3"):
        ah_csync2.validate_peers(["node9"], cfg, "node2")
    assert ah_csync2.peers(cfg, "node2") == ["node1", "node3"]


def test_push_outcome_and_unresolved():
    ok, comment = ah_csync2.push_outcome(ah_csync2.parse_update(rec("sync_push_v")["stderr"]), 0, "")
    assert ok is True and comment == "10 pushed"
    parsed = ah_csync2.parse_update(rec("conflict_push_older_loses")["stderr"])
    ok, comment = ah_csync2.push_outcome(parsed, 1, "")
    assert ok is False and "conflict on /var/lib/airflow/dags/dag_2.py" in comment
    events = [{"path": "/d/a.py", "peer": "node2", "outcome": "lost"}, {"path": "/d/b.py", "outcome": "won"}]
    assert ah_csync2.unresolved(events, {"/d/a.py": ["node2"], "/d/b.py": []}) == {"/d/a.py": ["node2"]}


def test_events_log_round_trip(tmp_path):
    log = tmp_path / "events.jsonl"
    ah_csync2.write_json(str(log), {"time": time.time(), "path": "/d/a.py"}, append=True)
    ah_csync2.write_json(str(log), {"time": 1, "path": "/d/old.py"}, append=True)
    log.write_text(log.read_text() + "garbage\n")
    assert [e["path"] for e in ah_csync2.read_events(str(log), time.time() - 60)] == ["/d/a.py"]
    assert ah_csync2.read_events(str(tmp_path / "missing"), 0) == []
    ah_csync2.write_json(str(tmp_path / "last.json"), {"x": 1})
    assert json.loads((tmp_path / "last.json").read_text()) == {"x": 1}
