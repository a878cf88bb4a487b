"""_states/pgbackrest.py: read -> compare -> test mode (same changes keys) ->
act -> verify, on pgBackRest's answers parsed by the real _utils."""

import json

import pytest
from salt.exceptions import CommandExecutionError
from testlib import ROOT, Seq, load_module, utils_dunder

state = load_module("pgbackrest", "states")
pgb = load_module("ah_pgbackrest", "utils")
DATA = ROOT / "test" / "unit" / "data" / "pgbackrest"
NOW = 1679273181 + 60


def info(name):
    return pgb.parse_info((DATA / name).read_text(), "airflow-ha", NOW)


@pytest.fixture
def salt():
    return {}


@pytest.fixture
def opts():
    return {"test": False}


@pytest.fixture
def configure_loader_modules(salt, opts):
    return {state: {"__salt__": salt, "__opts__": opts, "__utils__": utils_dunder("ah_pgbackrest")}}


def test_stanza_present_when_it_exists(salt):
    salt["pgbackrest.info"] = Seq(info("info_no_backup.json"))
    ret = state.stanza_present("airflow-ha", config="/etc/pgbackrest/repo.conf")
    assert ret["result"] is True and ret["changes"] == {}
    assert salt["pgbackrest.info"].seen[0][1] == {
        "stanza": "airflow-ha",
        "config": "/etc/pgbackrest/repo.conf",
        "archive_times": False,
    }


def test_stanza_created_test_mode_reports_the_same_changes(salt, opts):
    salt["pgbackrest.info"] = Seq(info("info_missing_stanza.json"), info("info_no_backup.json"))
    salt["pgbackrest.stanza_create"] = Seq(True)
    opts["test"] = True
    dry = state.stanza_present("airflow-ha")
    assert dry["result"] is None and salt["pgbackrest.stanza_create"].calls == 0
    opts["test"] = False
    salt["pgbackrest.info"].calls = 0
    real = state.stanza_present("airflow-ha")
    assert real["result"] is True and real["changes"] == dry["changes"]
    assert real["changes"] == {"stanza": {"old": None, "new": "airflow-ha"}, "repos": [1]}


def test_stanza_added_on_a_new_repository(salt):
    salt["pgbackrest.info"] = Seq(info("info_repo2_missing.json"), info("info_full_diff.json"))
    salt["pgbackrest.stanza_create"] = Seq(True)
    ret = state.stanza_present("airflow-ha")
    assert ret["result"] is True and ret["changes"]["repos"] == [2]


def test_stanza_create_failure_and_unverified(salt):
    salt["pgbackrest.info"] = Seq(info("info_missing_stanza.json"))
    salt["pgbackrest.stanza_create"] = Seq(CommandExecutionError("pgbackrest stanza-create failed: [56] x"))
    ret = state.stanza_present("airflow-ha")
    assert ret["result"] is False and ret["changes"] == {} and "[56]" in ret["comment"]
    salt["pgbackrest.stanza_create"] = Seq(True)
    ret = state.stanza_present("airflow-ha")
    assert ret["result"] is False and "still lacks" in ret["comment"]


def test_not_installed_yet_is_none_in_test_mode_false_for_real(salt, opts):
    salt["pgbackrest.info"] = Seq(CommandExecutionError("/usr/bin/pgbackrest is missing"))
    opts["test"] = True
    assert state.stanza_present("airflow-ha")["result"] is None
    assert state.checked("airflow-ha", marker="/nonexistent/m.json")["result"] is None
    assert state.full_backup_present("airflow-ha")["result"] is None
    opts["test"] = False
    ret = state.stanza_present("airflow-ha")
    assert ret["result"] is False and "is missing" in ret["comment"]


def test_checked_once_then_noted(salt, opts, tmp_path):
    marker = tmp_path / "state" / "checked.json"
    salt["pgbackrest.info"] = Seq(info("info_full_diff.json"))
    salt["pgbackrest.check"] = Seq(True)
    opts["test"] = True
    dry = state.checked("airflow-ha", marker=str(marker))
    assert dry["result"] is None and salt["pgbackrest.check"].calls == 0
    opts["test"] = False
    real = state.checked("airflow-ha", marker=str(marker))
    assert real["result"] is True and real["changes"] == dry["changes"]
    assert json.loads(marker.read_text()) == {"stanza": "airflow-ha", "repos": [1]}
    again = state.checked("airflow-ha", marker=str(marker))
    assert again["result"] is True and again["changes"] == {} and salt["pgbackrest.check"].calls == 1
    # a second repository appears: checked again
    salt["pgbackrest.info"] = Seq(info("info_repo2_missing.json"))
    assert state.checked("airflow-ha", marker=str(marker))["changes"]["checked"]["new"]["repos"] == [1, 2]
    assert salt["pgbackrest.check"].calls == 2


def test_checked_failure_writes_no_marker(salt, tmp_path):
    marker = tmp_path / "checked.json"
    salt["pgbackrest.info"] = Seq(info("info_full_diff.json"))
    salt["pgbackrest.check"] = Seq(CommandExecutionError("pgbackrest check failed: [82] WAL segment ..."))
    ret = state.checked("airflow-ha", marker=str(marker))
    assert ret["result"] is False and ret["changes"] == {} and not marker.exists()


def test_full_backup_present(salt, opts):
    salt["pgbackrest.info"] = Seq(info("info_full_diff.json"))
    ret = state.full_backup_present("airflow-ha", repo=1)
    assert ret["result"] is True and "20230320-004616F" in ret["comment"]


def test_first_full_backup_taken(salt, opts):
    salt["pgbackrest.info"] = Seq(info("info_no_backup.json"), info("info_full_diff.json"))
    salt["pgbackrest.backup"] = Seq({"label": "20230320-004616F", "took": 2.1})
    opts["test"] = True
    dry = state.full_backup_present("airflow-ha", repo=1)
    assert dry["result"] is None and salt["pgbackrest.backup"].calls == 0
    opts["test"] = False
    salt["pgbackrest.info"].calls = 0
    real = state.full_backup_present("airflow-ha", repo=1, config="/c", timeout=600)
    assert real["result"] is True and set(real["changes"]) == set(dry["changes"])
    assert real["changes"]["full_backup"]["new"] == "20230320-004616F"
    assert salt["pgbackrest.backup"].seen[0][1] == {
        "type": "full",
        "stanza": "airflow-ha",
        "config": "/c",
        "repo": 1,
        "timeout": 600,
    }


def test_full_backup_on_repo2_is_its_own(salt):
    # repo1 holds one; repo2 (S3) does not yet
    salt["pgbackrest.info"] = Seq(info("info_full_diff.json"))
    salt["pgbackrest.backup"] = Seq(CommandExecutionError("pgbackrest backup failed: [49] cannot reach"))
    ret = state.full_backup_present("airflow-ha", repo=2)
    assert ret["result"] is False and ret["changes"] == {} and "[49]" in ret["comment"]
