"""_utils/ah_pgbackrest.py: pgBackRest's info/repo-ls JSON and errors read,
restore targets normalised, the restore window and the backup a restore
starts from (test/unit/data/pgbackrest, see its README)."""

import pytest
from testlib import ROOT, load_module

pgb = load_module("ah_pgbackrest", "utils")
DATA = ROOT / "test" / "unit" / "data" / "pgbackrest"


def data(name):
    return (DATA / name).read_text()


NOW = 1679273181 + 600  # ten minutes after the recorded diff backup ended


@pytest.mark.parametrize(
    ("given", "want"),
    [
        ("latest", "latest"),
        (" LATEST ", "latest"),
        ("2024-05-01 12:00:00+00", "2024-05-01 12:00:00+00"),
        ("2024-05-01T12:00:00Z", "2024-05-01 12:00:00+00"),
        ("2024-05-01 14:00:00+02:00", "2024-05-01 12:00:00+00"),
        ("2024-05-01 07:30:00-0430", "2024-05-01 12:00:00+00"),
        ("2024-05-01 12:00:00.25+00", "2024-05-01 12:00:00.25+00"),
    ],
)
def test_target_times_are_normalised_to_utc(given, want):
    assert pgb.parse_target_time(given)[0] == want


def test_target_epoch():
    assert pgb.parse_target_time("2023-03-20 00:46:20+00")[1] == 1679273180
    assert pgb.parse_target_time("latest")[1] is None


@pytest.mark.parametrize(
    ("given", "words"),
    [
        ("2024-05-01 12:00:00", "no time zone"),
        ("yesterday", "not a time pgBackRest reads"),
        ("2024-13-01 12:00:00+00", "not a valid time"),
        ("", "give 'latest'"),
        (None, "give 'latest'"),
    ],
)
def test_bad_target_times_say_what_to_give(given, words):
    with pytest.raises(ValueError, match=words):
        pgb.parse_target_time(given)


def test_info_full_and_diff():
    info = pgb.parse_info(data("info_full_diff.json"), "airflow-ha", NOW)
    assert info["status"] == "ok" and info["status_code"] == 0 and info["cipher"] == "aes-256-cbc"
    assert [(b["label"], b["type"]) for b in info["backups"]] == [
        ("20230320-004616F", "full"),
        ("20230320-004616F_20230320-004619D", "diff"),
    ]
    full = info["backups"][0]
    assert (full["start"], full["stop"], full["seconds"]) == (1679273176, 1679273178, 2)
    assert full["stop_iso"] == "2023-03-20T00:46:18Z"
    assert (full["size"], full["repo_size"], full["repo"]) == (24536678, 2936013, 1)
    assert (full["wal_start"], full["wal_stop"], full["error"]) == (
        "000000010000000000000002",
        "000000010000000000000003",
        False,
    )
    assert info["last_backup"]["label"] == "20230320-004616F_20230320-004619D"
    assert info["last_backup"]["age"] == 600
    assert info["last_full"]["age"] == NOW - 1679273178
    assert info["wal"] == [
        {
            "repo": 1,
            "archive_id": "15-1",
            "min": "000000010000000000000001",
            "max": "000000010000000000000005",
            "max_time": None,
        }
    ]
    # without the archive time, the window ends at the newest backup
    assert info["last_archive"] is None
    assert info["restorable"]["from"] == 1679273178 and info["restorable"]["to"] == 1679273181


def test_info_last_archive_age_from_repo_ls():
    stamp = pgb.newest_file_time(data("repo_ls_archive.json"), "00000002000000000000000D")
    assert stamp == 1714631460
    info = pgb.parse_info(
        data("info_two_repos_failover.json"), "airflow-ha", stamp + 42, {1: stamp, 2: stamp - 5}
    )
    assert info["last_archive"] == {
        "wal": "00000002000000000000000D",
        "repo": 1,
        "time": stamp,
        "time_iso": "2024-05-02T06:31:00Z",
        "age": 42,
    }
    assert info["backup_running"] is True
    assert [r["repo"] for r in info["repos"]] == [1, 2]
    # the incr with page checksum errors is listed but never counts as good
    bad = [b for b in info["backups"] if b["error"]]
    assert [b["type"] for b in bad] == ["incr"]
    assert info["last_backup"]["label"] == "20240501-080000F_20240502-010000D"
    assert info["restorable"]["to"] == stamp


def test_newest_file_time_ignores_other_files_and_bad_text():
    assert pgb.newest_file_time(data("repo_ls_archive.json"), "00000002000000000000000C") == 1714630900
    assert pgb.newest_file_time(data("repo_ls_archive.json"), "00000003000000000000000C") is None
    assert pgb.newest_file_time("not json", "0000") is None


def test_missing_stanza_and_no_backup():
    missing = pgb.parse_info(data("info_missing_stanza.json"), "airflow-ha", NOW)
    assert pgb.missing_stanza(missing) and missing["last_backup"] is None and missing["restorable"] is None
    empty = pgb.parse_info(data("info_no_backup.json"), "airflow-ha", NOW)
    assert not pgb.missing_stanza(empty) and empty["status_code"] == 2
    # a second repository added later lacks the stanza: stanza-create is due
    assert pgb.missing_stanza(pgb.parse_info(data("info_repo2_missing.json"), "airflow-ha", NOW))


def test_parse_info_refuses_other_text():
    with pytest.raises(ValueError, match="did not print JSON"):
        pgb.parse_info("ERROR: [055]", "airflow-ha", NOW)
    with pytest.raises(ValueError, match="does not list stanza 'other'"):
        pgb.parse_info(data("info_full_diff.json"), "other", NOW)


def test_errors_are_explained_with_their_fix():
    text = data("backup_no_primary.txt")
    assert pgb.error_of(text) == (56, "unable to find primary cluster - cannot proceed")
    assert "Patroni leader" in pgb.explain(text)
    assert pgb.explain(data("check_archive_timeout.txt")).startswith(
        "[82] WAL segment 000000010000000000000005 was not archived before the 60000ms timeout — "
    )
    assert pgb.explain("boom", 1) == "[1] boom"
    assert pgb.error_of(data("check_ok.txt")) == (None, None)


def test_stanza_sections():
    text = "[global]\nrepo1-path=/x\n[global:archive-push]\nprocess-max=2\n[airflow-ha]\npg1-path=/y\n"
    assert pgb.stanza_sections(text) == ["airflow-ha"]


def _window():
    return pgb.parse_info(data("info_full_diff.json"), "airflow-ha", NOW, {1: 1679273181 + 300})


def test_plan_picks_the_newest_backup_ending_before_the_target():
    plan = pgb.plan(_window(), "2023-03-20 00:46:20+00")
    assert plan["backup"] == "20230320-004616F" and plan["target"] == "2023-03-20 00:46:20+00"
    plan = pgb.plan(_window(), "2023-03-20 00:50:00+00")
    assert plan["backup"] == "20230320-004616F_20230320-004619D"
    assert plan["restorable_to"] == "2023-03-20T00:51:21Z"
    assert pgb.plan(_window(), "latest")["backup"] == "20230320-004616F_20230320-004619D"


@pytest.mark.parametrize(
    ("target", "words"),
    [
        ("2023-03-20 00:46:18+00", "not after the end of the oldest backup (2023-03-20T00:46:18Z)"),
        ("2023-03-19 23:00:00+00", "earliest time a restore can reach"),
        ("2023-03-20 00:52:00+00", "after the newest archived WAL (2023-03-20T00:51:21Z)"),
    ],
)
def test_plan_refuses_targets_outside_the_window(target, words):
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        pgb.plan(_window(), target)


def test_plan_without_a_backup_refuses():
    with pytest.raises(ValueError, match="no usable backup"):
        pgb.plan(pgb.parse_info(data("info_no_backup.json"), "airflow-ha", NOW), "latest")


def test_plan_searches_repo1_before_repo2_as_pgbackrest_does():
    stamp = 1714631460
    info = pgb.parse_info(data("info_two_repos_failover.json"), "airflow-ha", stamp, {1: stamp})
    # before repo1's diff ends, after repo2's full: repo1's full still comes first
    plan = pgb.plan(info, "2024-05-01 12:00:00+00")
    assert (plan["backup"], plan["repo"]) == ("20240501-080000F", 1)
    assert pgb.plan(info, "latest")["backup"] == "20240501-080000F_20240502-010000D"
