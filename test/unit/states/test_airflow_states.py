"""_states/airflow.py with the loader mocked: read -> compare -> test -> act,
secrets masked in changes, 0 changes when converged."""

import json
import os
import stat
from unittest.mock import DEFAULT, MagicMock

import pytest
from testlib import load_module, utils_dunder

airflow_mod = load_module("airflow")
ah_cfg = load_module("ah_airflow_cfg", "utils")
airflow = load_module("airflow", "states")

SECRET = "pw-Very-Secret-123"


@pytest.fixture
def opts():
    return {"test": False}


@pytest.fixture
def salt_funcs():
    funcs = {
        "airflow.version": MagicMock(return_value="3.3.2"),
        "file.chown": MagicMock(),
    }
    for name in (
        "user_get",
        "user_status",
        "user_create",
        "user_update",
        "user_delete",
        "user_check_password",
        "db_pending_migrations",
        "db_migrate",
        "connection_get",
        "connection_set",
        "variable_get",
        "variable_set",
        "pool_get",
        "pool_set",
    ):
        funcs[f"airflow.{name}"] = MagicMock(name=name)
    _write_back(funcs)
    return funcs


def _write_back(funcs):
    """One fake style: each write updates what the matching read returns next,
    so the states' re-read after acting sees the change (tests set the reads'
    return_value; a write's own return_value stays what it returns)."""

    def fn(name):
        return funcs[f"airflow.{name}"]

    def user_create(name, password, email, firstname, lastname, roles, **_):
        user = {"username": name, "email": email, "firstname": firstname, "lastname": lastname}
        fn("user_status").return_value = {"user": dict(user, roles=roles, active=True), "password_ok": True}
        return DEFAULT

    def user_update(name, password=None, **fields):
        status = fn("user_status").return_value
        user = dict(status["user"], **{k: v for k, v in fields.items() if k in status["user"]})
        fn("user_status").return_value = {"user": user, "password_ok": True}
        return DEFAULT

    def setter(get, make):
        def side_effect(*args, **kwargs):
            fn(get).return_value = make(*args, **kwargs)
            return DEFAULT

        return side_effect

    fn("user_create").side_effect = user_create
    fn("user_update").side_effect = user_update
    fn("user_delete").side_effect = setter("user_get", lambda *a, **k: None)
    fn("db_migrate").side_effect = setter("db_pending_migrations", lambda *a, **k: [])
    fields = ("conn_type", "host", "login", "password", "schema", "port", "extra", "description")
    fn("connection_set").side_effect = setter(
        "connection_get", lambda name, **kw: {f: kw.get(f) for f in fields}
    )
    fn("variable_set").side_effect = setter(
        "variable_get",
        lambda name, value, description=None, **kw: {"value": value, "description": description},
    )
    fn("pool_set").side_effect = setter(
        "pool_get",
        lambda name, slots, description="", include_deferred=False, **kw: {
            "slots": slots,
            "description": description,
            "include_deferred": include_deferred,
        },
    )


@pytest.fixture
def pillar():
    return {"airflow_ha": {"secrets": {"fernet_key": SECRET, "airflow_db_password": "p@ss/" + SECRET}}}


@pytest.fixture
def configure_loader_modules(opts, salt_funcs, pillar):
    return {
        airflow: {
            "__opts__": opts,
            "__salt__": salt_funcs,
            "__pillar__": pillar,
            "__utils__": utils_dunder("ah_secrets", "ah_airflow_cfg"),
        }
    }


def no_secret(ret):
    assert SECRET not in json.dumps(ret), ret


# -- config_managed --------------------------------------------------------------------
CFG = "# keep me\n[core]\nexecutor = SequentialExecutor\n# and me\nfernet_key = old-fernet\n"


@pytest.fixture
def cfg(tmp_path):
    path = tmp_path / "airflow.cfg"
    path.write_text(CFG)
    os.chmod(path, 0o640)
    return path


def test_config_managed_sets_only_given_keys_and_masks_secrets(cfg):
    ret = airflow.config_managed(str(cfg), {"core": {"executor": "CeleryExecutor", "fernet_key": SECRET}})
    assert ret["result"] is True
    assert ret["changes"] == {
        "core.executor": {"old": "SequentialExecutor", "new": "CeleryExecutor"},
        "core.fernet_key": {"old": "***", "new": "***"},
    }
    no_secret(ret)
    text = cfg.read_text()
    assert "# keep me" in text and "# and me" in text
    assert f"fernet_key = {SECRET}" in text
    assert stat.S_IMODE(os.stat(cfg).st_mode) == 0o640


def test_config_managed_zero_changes_when_equal(cfg):
    ret = airflow.config_managed(str(cfg), {"core": {"executor": "SequentialExecutor"}})
    assert ret["result"] is True
    assert ret["changes"] == {}
    assert cfg.read_text() == CFG


def test_config_managed_second_run_is_clean(cfg):
    values = {"core": {"parallelism": 8}, "celery": {"worker_concurrency": 2}}
    assert airflow.config_managed(str(cfg), values)["changes"]
    ret = airflow.config_managed(str(cfg), values)
    assert ret["changes"] == {}


def test_config_managed_test_mode_reports_and_writes_nothing(cfg, opts):
    opts["test"] = True
    ret = airflow.config_managed(str(cfg), {"core": {"executor": "CeleryExecutor"}, "api": {"port": 8080}})
    assert ret["result"] is None
    assert set(ret["changes"]) == {"core.executor", "api.port"}
    assert ret["changes"]["api.port"] == {"old": None, "new": "8080"}
    assert cfg.read_text() == CFG


def test_config_managed_creates_a_missing_file_private(tmp_path):
    path = tmp_path / "new.cfg"
    ret = airflow.config_managed(str(path), {"core": {"executor": "X"}})
    assert ret["result"] is True
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert ah_cfg.parse_cfg(path.read_text()) == {"core": {"executor": "X"}}


def test_config_managed_resolves_secret_refs_from_pillar_and_masks_them(cfg, opts):
    """What config.sls passes (airflow.desired_config(ah, secret_refs=True)):
    references, resolved here from the minion's pillar; a value that held a
    reference is masked even under a key the word list does not name."""
    url = (
        "postgresql+psycopg2://airflow:@@pillar_url:airflow_ha:secrets:airflow_db_password@@@127.0.0.1:5000/a"
    )
    values = {
        "core": {"fernet_key": "@@pillar:airflow_ha:secrets:fernet_key@@"},
        "database": {"sql_alchemy_conn": url},
        "custom": {"plain": "x-@@pillar:airflow_ha:secrets:fernet_key@@"},
    }
    opts["test"] = True
    dry = airflow.config_managed(str(cfg), values)
    opts["test"] = False
    ret = airflow.config_managed(str(cfg), values)
    assert ret["result"] is True and dry["result"] is None
    assert (
        ret["changes"]
        == dry["changes"]
        == {
            "core.fernet_key": {"old": "***", "new": "***"},
            "database.sql_alchemy_conn": {"old": None, "new": "***"},
            "custom.plain": {"old": None, "new": "***"},
        }
    )
    no_secret(ret)
    text = cfg.read_text()
    assert f"fernet_key = {SECRET}" in text
    assert f"sql_alchemy_conn = postgresql+psycopg2://airflow:p%40ss%2F{SECRET}@127.0.0.1:5000/a" in text
    assert "@@" not in text
    assert airflow.config_managed(str(cfg), values)["changes"] == {}


def test_config_managed_names_a_missing_pillar_key(cfg):
    ret = airflow.config_managed(str(cfg), {"core": {"fernet_key": "@@pillar:airflow_ha:secrets:nope@@"}})
    assert ret["result"] is False and "airflow_ha:secrets:nope" in ret["comment"]
    assert cfg.read_text() == CFG


def test_config_managed_extra_sensitive_keys_are_masked(cfg):
    ret = airflow.config_managed(str(cfg), {"smtp": {"smtp_user": SECRET}}, sensitive=["smtp.smtp_user"])
    assert ret["changes"]["smtp.smtp_user"] == {"old": None, "new": "***"}
    no_secret(ret)


def test_config_managed_rejects_bad_sections(cfg):
    ret = airflow.config_managed(str(cfg), {"core": "executor=X"})
    assert ret["result"] is False
    assert "mapping" in ret["comment"]


# -- user_present / user_absent -------------------------------------------------------------
USER = {
    "username": "admin",
    "email": "a@x",
    "firstname": "A",
    "lastname": "B",
    "roles": ["Admin"],
    "active": True,
}


def present(**kw):
    args = {
        "name": "admin",
        "password": SECRET,
        "email": "a@x",
        "firstname": "A",
        "lastname": "B",
        "roles": ["Admin"],
    }
    args.update(kw)
    return airflow.user_present(**args)


def test_user_present_creates_missing_user(salt_funcs):
    salt_funcs["airflow.user_status"].return_value = {"user": None, "password_ok": None}
    ret = present()
    assert ret["result"] is True
    assert ret["changes"]["user"] == {"old": None, "new": "admin"}
    salt_funcs["airflow.user_create"].assert_called_once()
    no_secret(ret)


def test_user_present_no_change_when_all_matches(salt_funcs):
    salt_funcs["airflow.user_status"].return_value = {"user": dict(USER), "password_ok": True}
    ret = present()
    assert ret == {"name": "admin", "result": True, "changes": {}, "comment": "user admin is as wanted"}
    salt_funcs["airflow.user_update"].assert_not_called()
    salt_funcs["airflow.user_create"].assert_not_called()


def test_user_present_changes_password_only_when_it_no_longer_matches(salt_funcs):
    salt_funcs["airflow.user_status"].return_value = {"user": dict(USER), "password_ok": False}
    ret = present()
    assert ret["changes"] == {"password": {"old": "***", "new": "***"}}
    args, kwargs = salt_funcs["airflow.user_update"].call_args
    assert kwargs["password"] == SECRET
    salt_funcs["airflow.user_create"].assert_not_called()
    no_secret(ret)


def test_user_present_updates_roles_without_touching_the_password(salt_funcs):
    salt_funcs["airflow.user_status"].return_value = {
        "user": dict(USER, roles=["Viewer"]),
        "password_ok": True,
    }
    ret = present()
    assert ret["changes"] == {"roles": {"old": ["Viewer"], "new": ["Admin"]}}
    kwargs = salt_funcs["airflow.user_update"].call_args[1]
    assert kwargs["password"] is None
    assert kwargs["roles"] == ["Admin"]


def test_user_present_test_mode_changes_nothing(salt_funcs, opts):
    opts["test"] = True
    salt_funcs["airflow.user_status"].return_value = {"user": dict(USER, email="old@x"), "password_ok": False}
    ret = present()
    assert ret["result"] is None
    assert set(ret["changes"]) == {"email", "password"}
    salt_funcs["airflow.user_update"].assert_not_called()
    no_secret(ret)


def test_user_present_test_mode_reports_the_changes_of_a_real_run(salt_funcs, opts):
    for status in (
        {"user": None, "password_ok": None},
        {"user": dict(USER, email="o@x"), "password_ok": False},
    ):
        opts["test"] = True
        salt_funcs["airflow.user_status"].return_value = status
        dry = present()
        opts["test"] = False
        real = present()
        assert dry["result"] is None and real["result"] is True
        assert dry["changes"] == real["changes"] and real["changes"]


def test_user_present_fails_when_the_change_did_not_stick(salt_funcs):
    salt_funcs["airflow.user_status"].return_value = {
        "user": dict(USER, roles=["Viewer"]),
        "password_ok": True,
    }
    salt_funcs["airflow.user_update"].side_effect = None
    ret = present()
    assert ret["result"] is False and "still differs" in ret["comment"] and "roles" in ret["comment"]


def test_user_present_reads_the_password_from_pillar(salt_funcs, pillar):
    pillar["airflow_ha"]["secrets"]["admin_password"] = SECRET
    salt_funcs["airflow.user_status"].return_value = {"user": None, "password_ok": None}
    ret = present(password=None, password_pillar="airflow_ha:secrets:admin_password")
    assert ret["result"] is True
    assert salt_funcs["airflow.user_create"].call_args[0][1] == SECRET
    no_secret(ret)
    ret = present(password=None, password_pillar="airflow_ha:secrets:nope")
    assert ret["result"] is False and "airflow_ha:secrets:nope" in ret["comment"]


def test_user_present_empty_password_fails_clearly():
    ret = present(password="")
    assert ret["result"] is False
    assert "admin_password" in ret["comment"]


def test_user_present_reports_helper_errors(salt_funcs):
    from salt.exceptions import CommandExecutionError  # noqa: PLC0415

    salt_funcs["airflow.user_status"].side_effect = CommandExecutionError("database unreachable")
    ret = present()
    assert ret["result"] is False
    assert "database unreachable" in ret["comment"]


def test_user_absent(salt_funcs):
    salt_funcs["airflow.user_get"].return_value = None
    assert airflow.user_absent("bob")["changes"] == {}
    salt_funcs["airflow.user_get"].return_value = dict(USER, username="bob")
    ret = airflow.user_absent("bob")
    assert ret["changes"] == {"user": {"old": "bob", "new": None}}
    salt_funcs["airflow.user_delete"].assert_called_once()


# -- db_migrated ------------------------------------------------------------------------------
def test_db_migrated_does_nothing_when_up_to_date(salt_funcs):
    salt_funcs["airflow.db_pending_migrations"].return_value = []
    ret = airflow.db_migrated("airflow")
    assert ret["result"] is True and ret["changes"] == {}
    salt_funcs["airflow.db_migrate"].assert_not_called()


def test_db_migrated_migrates_when_pending(salt_funcs):
    salt_funcs["airflow.db_pending_migrations"].return_value = ["a", "b"]
    salt_funcs["airflow.db_migrate"].return_value = {"migrated": True, "pending": ["a", "b"]}
    ret = airflow.db_migrated("airflow", venv="/v")
    assert ret["result"] is True
    assert ret["changes"] == {"migrations": {"old": 2, "new": 0}}
    assert salt_funcs["airflow.db_migrate"].call_args[1] == {"only_if_pending": True, "venv": "/v"}


def test_db_migrated_lost_race_reports_no_change(salt_funcs):
    salt_funcs["airflow.db_pending_migrations"].return_value = ["a"]
    salt_funcs["airflow.db_migrate"].return_value = {"migrated": False, "pending": []}
    ret = airflow.db_migrated("airflow")
    assert ret["result"] is True and ret["changes"] == {}
    assert "another node" in ret["comment"]


def test_db_migrated_test_mode(salt_funcs, opts):
    opts["test"] = True
    salt_funcs["airflow.db_pending_migrations"].return_value = ["a"]
    ret = airflow.db_migrated("airflow")
    assert ret["result"] is None
    salt_funcs["airflow.db_migrate"].assert_not_called()
    # the same changes a real run reports
    opts["test"] = False
    salt_funcs["airflow.db_migrate"].return_value = {"migrated": True, "pending": ["a"]}
    assert airflow.db_migrated("airflow")["changes"] == ret["changes"] == {"migrations": {"old": 1, "new": 0}}


def test_db_migrated_fails_when_migrations_are_left(salt_funcs):
    salt_funcs["airflow.db_pending_migrations"].return_value = ["a"]
    salt_funcs["airflow.db_migrate"].side_effect = None
    salt_funcs["airflow.db_migrate"].return_value = {"migrated": True, "pending": ["a"]}
    ret = airflow.db_migrated("airflow")
    assert ret["result"] is False and "still pending" in ret["comment"]


# -- connections / variables / pools -----------------------------------------------------------------
def test_connection_present_masks_password_and_is_idempotent(salt_funcs):
    salt_funcs["airflow.connection_get"].return_value = None
    ret = airflow.connection_present("wh", "postgres", host="db", login="etl", password=SECRET, port=5432)
    assert ret["result"] is True
    assert ret["changes"]["password"] == {"old": None, "new": "***"}
    no_secret(ret)
    fields = salt_funcs["airflow.connection_set"].call_args[1]
    assert fields["password"] == SECRET and fields["port"] == 5432
    salt_funcs["airflow.connection_get"].return_value = {
        "conn_type": "postgres",
        "host": "db",
        "login": "etl",
        "password": SECRET,
        "schema": None,
        "port": 5432,
        "extra": None,
        "description": None,
    }
    salt_funcs["airflow.connection_set"].reset_mock()
    ret = airflow.connection_present("wh", "postgres", host="db", login="etl", password=SECRET, port="5432")
    assert ret["changes"] == {}
    salt_funcs["airflow.connection_set"].assert_not_called()


def test_variable_present(salt_funcs, opts):
    salt_funcs["airflow.variable_get"].return_value = {"value": "old", "description": None}
    ret = airflow.variable_present("v", SECRET)
    assert ret["changes"] == {"value": {"old": "***", "new": "***"}}
    no_secret(ret)
    assert ret["result"] is True
    salt_funcs["airflow.variable_get"].return_value = {"value": "old", "description": None}
    ret = airflow.variable_present("v", "plain", sensitive=False)
    assert ret["changes"] == {"value": {"old": "old", "new": "plain"}}
    salt_funcs["airflow.variable_get"].return_value = {"value": "plain", "description": None}
    assert airflow.variable_present("v", "plain")["changes"] == {}


def test_pool_present(salt_funcs, opts):
    salt_funcs["airflow.pool_get"].return_value = None
    ret = airflow.pool_present("etl", 8)
    assert ret["result"] is True
    assert ret["changes"]["slots"] == {"old": None, "new": 8}
    salt_funcs["airflow.pool_get"].return_value = {"slots": 8, "description": "", "include_deferred": False}
    salt_funcs["airflow.pool_set"].reset_mock()
    assert airflow.pool_present("etl", "8")["changes"] == {}
    salt_funcs["airflow.pool_set"].assert_not_called()
    assert airflow.pool_present("etl", "x")["result"] is False


# -- venv_compatible ----------------------------------------------------------------------------------
@pytest.fixture
def remove(salt_funcs):
    def gone(path):  # the venv is gone: no Airflow found there any more
        salt_funcs["airflow.version"].return_value = ""
        return DEFAULT

    salt_funcs["file.remove"] = MagicMock(return_value=True, side_effect=gone)
    return salt_funcs["file.remove"]


@pytest.mark.parametrize("installed", ["", "3.3.2", "3.2.1"])
def test_venv_compatible_keeps_a_same_major_venv(salt_funcs, remove, installed):
    salt_funcs["airflow.version"].return_value = installed
    ret = airflow.venv_compatible("/opt/airflow/venv", "3.3.2")
    assert ret["result"] is True and ret["changes"] == {}
    remove.assert_not_called()
    assert salt_funcs["airflow.version"].call_args[1] == {"venv": "/opt/airflow/venv"}


def test_venv_compatible_removes_a_2x_venv_for_3x(salt_funcs, remove):
    salt_funcs["airflow.version"].return_value = "2.11.2"
    ret = airflow.venv_compatible("/opt/airflow/venv", "3.3.2")
    assert ret["result"] is True
    assert ret["changes"]["venv"]["old"] == "apache-airflow 2.11.2"
    remove.assert_called_once_with("/opt/airflow/venv")


def test_venv_compatible_test_mode_removes_nothing(salt_funcs, remove, opts):
    opts["test"] = True
    salt_funcs["airflow.version"].return_value = "3.3.2"
    ret = airflow.venv_compatible("/v", "2.11.2")
    assert ret["result"] is None and ret["changes"] and "would be removed" in ret["comment"]
    remove.assert_not_called()


def test_venv_compatible_reports_a_failed_removal(salt_funcs, remove):
    salt_funcs["airflow.version"].return_value = "2.11.2"
    remove.side_effect = airflow_mod.CommandExecutionError("Could not remove /v: busy")
    ret = airflow.venv_compatible("/v", "3.3.2")
    assert ret["result"] is False and ret["changes"] == {} and "busy" in ret["comment"]
