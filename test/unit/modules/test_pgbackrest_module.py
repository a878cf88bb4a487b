"""_modules/pgbackrest.py against pgBackRest's answers (test/unit/data/pgbackrest):
the commands it runs (as postgres, options from the config file, no secret in
argv), info with the archive age, backup/check/stanza_create, the restore plan
and its refusals."""

import json

import pytest
from salt.exceptions import CommandExecutionError, SaltInvocationError
from testlib import ROOT, load_module, utils_dunder

pgbackrest = load_module("pgbackrest")
DATA = ROOT / "test" / "unit" / "data" / "pgbackrest"
SECRET = "cipher-Very-Secret-0123456789abcdef0123"


def data(name):
    return (DATA / name).read_text()


class FakePgbackrest:
    """cmd.run_all for /usr/bin/pgbackrest: answers per command (the last
    argument); ``answers[command]`` is a list of (retcode, stdout, stderr),
    the last one repeating."""

    def __init__(self):
        self.answers = {}
        self.calls = []

    def __call__(self, cmd, **kwargs):
        self.calls.append((cmd, kwargs))
        queue = self.answers.get(cmd[-1] if cmd[-1] in self.answers else cmd[-2], [(0, "", "")])
        retcode, out, err = queue.pop(0) if len(queue) > 1 else queue[0]
        return {"retcode": retcode, "stdout": out, "stderr": err}

    def commands(self):
        return [c[-1] if not c[-1].startswith("archive/") else c[-2] for c, _ in self.calls]


@pytest.fixture
def fake():
    return FakePgbackrest()


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "repo.conf"
    path.write_text(f"[global]\nrepo1-path=/var/lib/pgbackrest\nrepo1-cipher-pass={SECRET}\n\n[airflow-ha]\n")
    return str(path)


@pytest.fixture
def configure_loader_modules(fake, monkeypatch):
    real = pgbackrest.os.path.exists
    monkeypatch.setattr(pgbackrest.os.path, "exists", lambda p: p == pgbackrest.BINARY or real(p))
    return {
        pgbackrest: {
            "__salt__": {"cmd.run_all": fake},
            "__opts__": {},
            "__utils__": utils_dunder("ah_pgbackrest"),
        }
    }


def test_info_runs_as_postgres_from_the_config_and_times_the_newest_wal(fake, config, monkeypatch):
    monkeypatch.setattr(pgbackrest.time, "time", lambda: 1714631460 + 30)
    fake.answers["info"] = [(0, data("info_two_repos_failover.json"), "")]
    fake.answers["repo-ls"] = [
        (0, data("repo_ls_archive.json"), ""),
        (1, "", "ERROR: [049]: unable to connect"),
    ]
    info = pgbackrest.info(config=config)
    assert info["stanza"] == "airflow-ha"
    assert info["last_archive"]["age"] == 30 and info["last_archive"]["repo"] == 1
    first, opts = fake.calls[0]
    assert first == [
        "/usr/bin/pgbackrest",
        f"--config={config}",
        "--stanza=airflow-ha",
        "--output=json",
        "info",
    ]
    assert opts["runas"] == "postgres" and opts["python_shell"] is False
    ls = fake.calls[1][0]
    assert ls[2:] == [
        "--repo=1",
        "--output=json",
        "--filter=^00000002000000000000000D",
        "repo-ls",
        "archive/airflow-ha/15-1/0000000200000000",
    ]
    assert all(SECRET not in " ".join(c) for c, _ in fake.calls)


def test_info_without_archive_times_lists_no_files(fake, config):
    fake.answers["info"] = [(0, data("info_full_diff.json"), "")]
    info = pgbackrest.info(config=config, archive_times=False)
    assert fake.commands() == ["info"] and info["last_archive"] is None


def test_failures_raise_with_the_cause_and_the_fix(fake, config):
    fake.answers["check"] = [(82, "", data("check_archive_timeout.txt"))]
    with pytest.raises(
        CommandExecutionError, match=r"pgbackrest check failed: \[82\] WAL segment .* pg_stat_archiver"
    ):
        pgbackrest.check(config=config)
    fake.answers["info"] = [(0, "not json", "")]
    with pytest.raises(CommandExecutionError, match="did not print JSON"):
        pgbackrest.info(config=config)


def test_check_and_stanza_create(fake, config):
    fake.answers["check"] = [(0, data("check_ok.txt"), "")]
    assert pgbackrest.check(config=config) is True
    assert pgbackrest.stanza_create(config=config) is True
    assert fake.commands() == ["check", "stanza-create"]


def _after(label_json, new_label):
    """info_full_diff.json with one more backup labelled ``new_label``."""
    stanzas = json.loads(label_json)
    extra = dict(stanzas[0]["backup"][-1], label=new_label, type="diff")
    stanzas[0]["backup"].append(extra)
    return json.dumps(stanzas)


def test_backup_returns_the_new_backup(fake, config):
    before = data("info_full_diff.json")
    fake.answers["info"] = [(0, before, ""), (0, _after(before, "20230320-004616F_20230321-010000D"), "")]
    got = pgbackrest.backup("diff", config=config, repo=2, expire=False, standby=False)
    assert got["label"] == "20230320-004616F_20230321-010000D" and got["type"] == "diff"
    assert isinstance(got["took"], float)
    run = next(c for c, _ in fake.calls if c[-1] == "backup")
    assert run[2:] == [
        "--stanza=airflow-ha",
        "--type=diff",
        "--repo=2",
        "--no-expire-auto",
        "--no-backup-standby",
        "backup",
    ]


def test_backup_that_left_no_trace_raises(fake, config):
    fake.answers["info"] = [(0, data("info_full_diff.json"), "")]
    with pytest.raises(CommandExecutionError, match="lists no new backup"):
        pgbackrest.backup(config=config)


def test_backup_refuses_an_unknown_type(config):
    with pytest.raises(SaltInvocationError, match="full, diff, incr"):
        pgbackrest.backup("weekly", config=config)


def test_backup_no_primary(fake, config):
    fake.answers["info"] = [(0, data("info_full_diff.json"), "")]
    fake.answers["backup"] = [(56, "", data("backup_no_primary.txt"))]
    with pytest.raises(CommandExecutionError, match=r"\[56\] unable to find primary cluster"):
        pgbackrest.backup(config=config)


def test_restore_plan_forces_a_wal_switch_then_plans(fake, config, monkeypatch):
    monkeypatch.setattr(pgbackrest.time, "time", lambda: 1679273181 + 600)
    fake.answers["info"] = [(0, data("info_full_diff.json"), "")]
    ls = {
        ".": {"type": "path"},
        "000000010000000000000005-ab.gz": {"type": "file", "size": 1, "time": 1679273481},
    }
    fake.answers["repo-ls"] = [(0, json.dumps(ls), "")]
    plan = pgbackrest.restore_plan("2023-03-20 00:50:00+00", config=config)
    assert fake.commands()[0] == "check"
    assert plan["backup"] == "20230320-004616F_20230320-004619D"
    assert plan["wal_switch"].startswith("forced")
    assert plan["restorable_to"] == "2023-03-20T00:51:21Z"


def test_restore_plan_refuses_outside_the_window_and_says_why(fake, config):
    fake.answers["check"] = [(56, "", data("backup_no_primary.txt"))]
    fake.answers["info"] = [(0, data("info_full_diff.json"), "")]
    with pytest.raises(CommandExecutionError, match="refused: .* after the newest backup"):
        pgbackrest.restore_plan("2030-01-01 00:00:00+00", config=config)
    with pytest.raises(CommandExecutionError, match="refused: .* not after the end of the oldest backup"):
        pgbackrest.restore_plan("2020-01-01 00:00:00+00", config=config)
    plan = pgbackrest.restore_plan("latest", config=config)
    assert plan["wal_switch"].startswith("not forced: pgbackrest check failed: [56]")


def test_restore_plan_bad_target(config):
    with pytest.raises(SaltInvocationError, match="no time zone"):
        pgbackrest.restore_plan("2024-05-01 12:00:00", config=config)


def test_stanza_from_the_config_file(tmp_path):
    two = tmp_path / "two.conf"
    two.write_text("[global]\n[a]\n[b]\n")
    with pytest.raises(SaltInvocationError, match="pass stanza="):
        pgbackrest.check(config=str(two))
    with pytest.raises(CommandExecutionError, match="pgBackRest is not configured on this node"):
        pgbackrest.check(config=str(tmp_path / "missing.conf"))


def test_missing_binary_says_how_to_install(config, monkeypatch):
    monkeypatch.setattr(pgbackrest.os.path, "exists", lambda p: False)
    with pytest.raises(CommandExecutionError, match="install pgBackRest"):
        pgbackrest.check(config=config)
