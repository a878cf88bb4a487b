"""airflow module and states against a real Airflow venv and a real
PostgreSQL on loopback (see conftest.py). Slow (~1-2 min once the venv is
cached): run with `make functional`."""

import json
import pathlib
import shutil
import subprocess
import threading

import pytest
from airflow_fn import base_config, paths

SECRET_1 = "fn-Admin-pw-3f8a1c"
SECRET_2 = "fn-Admin-pw-new-77e2"
CONN_SECRET = "fn-conn-pw-51d0aa"


@pytest.fixture(scope="module")
def mod(loaders):
    return loaders.modules.airflow


@pytest.fixture(scope="module")
def st(loaders):
    return loaders.states.airflow


@pytest.fixture(scope="module")
def migrated(airflow_env, st):
    ret = st.db_migrated(name="airflow", **paths(airflow_env))
    assert ret.result is True, ret.comment
    return ret


def test_version(mod, airflow_env):
    assert mod.version(venv=airflow_env["venv"]).startswith(("3.", "2."))


def test_config_managed_is_idempotent_and_truthful(st, mod, airflow_env):
    cfg = airflow_env["home"] + "/airflow.cfg"
    sections = base_config(airflow_env["home"], airflow_env["_db_url"])
    again = st.config_managed(name=cfg, sections=sections)
    assert again.result is True and again.changes == {}
    # test=True on a change: truthful, writes nothing
    before = open(cfg).read()
    ret = st.config_managed(name=cfg, sections={"core": {"parallelism": "17"}}, test=True)
    assert ret.result is None and ret.changes == {"core.parallelism": {"old": None, "new": "17"}}
    assert open(cfg).read() == before
    # the real change, seen by Airflow itself
    ret = st.config_managed(name=cfg, sections={"core": {"parallelism": "17"}})
    assert ret.changes == {"core.parallelism": {"old": None, "new": "17"}}
    assert mod.config_get("core", "parallelism", **paths(airflow_env)) == {"found": True, "value": "17"}
    # secrets: masked by default, shown on request
    assert mod.config_get("core", "fernet_key", **paths(airflow_env))["value"] == "***"
    real = mod.config_get("core", "fernet_key", reveal=True, **paths(airflow_env))["value"]
    assert real == sections["core"]["fernet_key"]
    # every sensitive key of every section, e.g. Flower's basic auth (admin login)
    st.config_managed(name=cfg, sections={"celery": {"flower_basic_auth": "admin:fn-Flower-Pw"}})
    assert mod.config_get("celery", "flower_basic_auth", **paths(airflow_env))["value"] == "***"
    listed = mod.config_list("database", **paths(airflow_env))
    assert airflow_env["_db_url"] not in json.dumps(listed)


def test_db_migrated_once_then_nothing(migrated, st, mod, airflow_env, loaders):
    assert migrated.changes["migrations"]["old"] > 0 and migrated.changes["migrations"]["new"] == 0
    assert mod.db_pending_migrations(**paths(airflow_env)) == []
    # the helper read the Alembic version rows of this real database without
    # Airflow, so "up to date" was remembered under their key
    stamp = pathlib.Path(loaders.opts["cachedir"], "airflow_ha", "airflow-schema-ok")
    assert len(stamp.read_text()) == 64
    assert mod.db_check(**paths(airflow_env)) is True
    again = st.db_migrated(name="airflow", **paths(airflow_env))
    assert again.result is True and again.changes == {}


def test_three_nodes_racing_migrate_once(postgres, airflow_env, mod, st, tmp_path):
    """Three 'nodes' (homes) on one fresh database migrate at the same time:
    exactly one migrates, none fails."""
    db_url = postgres.create_db("airflow_race")
    homes = []
    for i in range(3):
        home = tmp_path / f"node{i}"
        home.mkdir()
        ret = st.config_managed(name=str(home / "airflow.cfg"), sections=base_config(home, db_url))
        assert ret.result is True
        homes.append(dict(paths(airflow_env), home=str(home)))
    results, errors = [], []

    def migrate(p):
        try:
            results.append(mod.db_migrate(**p))
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=migrate, args=(p,)) for p in homes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    assert not errors, errors
    assert sorted(r["migrated"] for r in results) == [False, False, True]
    assert mod.db_pending_migrations(**homes[0]) == []


def test_user_present_create_update_password_absent(migrated, st, mod, airflow_env):
    p = paths(airflow_env)
    args = {
        "name": "fnadmin",
        "email": "fn@x.invalid",
        "firstname": "Fn",
        "lastname": "Admin",
        "roles": ["Admin"],
    }
    ret = st.user_present(password=SECRET_1, **args, **p)
    assert ret.result is True and ret.changes["user"] == {"old": None, "new": "fnadmin"}
    assert SECRET_1 not in json.dumps(ret.full_return)
    again = st.user_present(password=SECRET_1, **args, **p)
    assert again.result is True and again.changes == {}, again.changes
    # test=True on a new password: truthful, no change made
    ret = st.user_present(password=SECRET_2, test=True, **args, **p)
    assert ret.result is None and ret.changes == {"password": {"old": "***", "new": "***"}}
    assert mod.user_check_password("fnadmin", SECRET_1, **p) is True
    # the password changes, the user is updated in place (same user, new hash);
    # Admin and Public are the roles 2.11 has before any sync-perm
    ret = st.user_present(password=SECRET_2, **dict(args, roles=["Admin", "Public"]), **p)
    assert set(ret.changes) == {"password", "roles"}
    assert SECRET_2 not in json.dumps(ret.full_return)
    assert mod.user_check_password("fnadmin", SECRET_2, **p) is True
    assert mod.user_check_password("fnadmin", SECRET_1, **p) is False
    assert mod.user_get("fnadmin", **p)["roles"] == ["Admin", "Public"]
    assert [u["username"] for u in mod.users_list(**p)].count("fnadmin") == 1
    # user_status reads FAB's tables with SQL (no app start-up): the same user
    # FAB finds, its case-insensitive username match, the password checked
    status = mod.user_status("FnAdmin", SECRET_2, **p)
    assert status == {"user": mod.user_get("fnadmin", **p), "password_ok": True}
    assert mod.user_status("fnadmin", SECRET_1, **p)["password_ok"] is False
    assert mod.user_status("nobody-here", SECRET_1, **p) == {"user": None, "password_ok": None}
    # absent
    assert st.user_absent(name="fnadmin", **p).changes == {"user": {"old": "fnadmin", "new": None}}
    assert mod.user_get("fnadmin", **p) is None
    assert st.user_absent(name="fnadmin", **p).changes == {}


def test_user_present_unknown_role_is_a_clear_error(migrated, st, airflow_env):
    ret = st.user_present(
        name="fnbad", password=SECRET_1, email="bad@x.invalid", roles=["NoSuchRole"], **paths(airflow_env)
    )
    assert ret.result is False
    assert "NoSuchRole" in ret.comment and "valid roles" in ret.comment
    assert SECRET_1 not in ret.comment


def test_connection_variable_pool_present(migrated, st, mod, airflow_env):
    p = paths(airflow_env)
    conn = {"name": "fn_pg", "conn_type": "postgres", "host": "db.invalid", "login": "etl", "port": 5432}
    ret = st.connection_present(password=CONN_SECRET, **conn, **p)
    assert ret.result is True and ret.changes["password"] == {"old": None, "new": "***"}
    assert CONN_SECRET not in json.dumps(ret.full_return)
    assert st.connection_present(password=CONN_SECRET, **conn, **p).changes == {}
    assert mod.connection_get("fn_pg", **p)["password"] == "***"
    assert mod.connection_get("fn_pg", reveal=True, **p)["password"] == CONN_SECRET

    ret = st.variable_present(name="fn_var", value=CONN_SECRET, **p)
    assert ret.changes == {"value": {"old": None, "new": "***"}}
    assert st.variable_present(name="fn_var", value=CONN_SECRET, **p).changes == {}
    assert mod.variable_get("fn_var", **p)["value"] == CONN_SECRET

    ret = st.pool_present(name="fn_pool", slots=3, description="fn", **p)
    assert ret.changes["slots"] == {"old": None, "new": 3}
    assert st.pool_present(name="fn_pool", slots=3, description="fn", **p).changes == {}
    assert st.pool_present(name="fn_pool", slots=4, description="fn", **p).changes == {
        "slots": {"old": 3, "new": 4}
    }


def test_dags_trigger_and_state(migrated, mod, airflow_env):
    """The check DAG, serialised by Airflow's own CLI, is listed, triggered and
    its run's state read back (no scheduler here: the run stays queued)."""
    p = paths(airflow_env)
    airflow_bin = airflow_env["venv"] + "/bin/airflow"
    env = {"AIRFLOW_HOME": airflow_env["home"], "PATH": "/usr/bin:/bin", "PYTHONWARNINGS": "ignore"}
    res = subprocess.run(
        [airflow_bin, "dags", "reserialize"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    dags = {d["dag_id"]: d for d in mod.dags_list(**p)}
    assert "airflow_ha_check" in dags
    run = mod.dag_trigger("airflow_ha_check", run_id="fn-run-1", **p)
    assert run["run_id"] == "fn-run-1"
    state = mod.dag_state("airflow_ha_check", "fn-run-1", **p)
    assert state["state"] in ("queued", "running")
    assert mod.dags_list(**p)[0]["is_paused"] is False


def test_airflow_noise_never_reaches_the_answer_line(mod, airflow_env, tmp_path):
    """Airflow imports airflow_local_settings from $AIRFLOW_HOME/config at
    start-up: make it print junk (even a fake answer) on stdout. The helper's
    stdout must still hold exactly one line, its answer; the junk goes to
    stderr, and the module's call still works."""
    home = tmp_path / "home"
    (home / "config").mkdir(parents=True)
    shutil.copy(airflow_env["home"] + "/airflow.cfg", home / "airflow.cfg")
    (home / "config" / "airflow_local_settings.py").write_text(
        "import os, sys\n"
        "print('[INFO] noise on stdout')\n"
        'os.write(1, b\'AIRFLOW_HA_RESULT {"ok": false, "error": "fake"}\\n\')\n'
    )
    helper = airflow_env["venv"] + "/bin/airflow-ha-helper"
    env = {"AIRFLOW_HOME": str(home), "AIRFLOW_CONFIG": str(home / "airflow.cfg"), "PATH": "/usr/bin:/bin"}
    res = subprocess.run(
        [airflow_env["venv"] + "/bin/python", helper],
        input='{"op": "db_check"}',
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert "noise on stdout" in res.stderr
    assert res.stdout.splitlines() == ['AIRFLOW_HA_RESULT {"ok": true, "result": true}'], res.stdout
    assert mod.db_check(**dict(paths(airflow_env), home=str(home))) is True


def test_helper_goes_around_pgbouncer_through_migration_db_port(
    postgres, migrated, st, mod, airflow_env, tmp_path
):
    """With PgBouncer, airflow.cfg names PgBouncer's port (here: a port nothing
    listens on) and [airflow_ha] migration_db_port the direct one: the helper's
    sessions (migrations under advisory locks) must use the latter."""
    home = tmp_path / "pgbouncer-node"
    home.mkdir()
    behind = airflow_env["_db_url"].replace(f":{postgres.port}/", ":9/")  # port 9: discard, closed
    sections = base_config(home, behind)
    ret = st.config_managed(name=str(home / "airflow.cfg"), sections=sections)
    assert ret.result is True
    p = dict(paths(airflow_env), home=str(home))
    with pytest.raises(Exception, match="airflow"):
        mod.db_check(**p)  # really goes to the configured (dead) port
    sections["airflow_ha"] = {"migration_db_port": str(postgres.port)}
    assert st.config_managed(name=str(home / "airflow.cfg"), sections=sections).result is True
    assert mod.db_check(**p) is True
    assert mod.db_pending_migrations(**p) == []
