"""_modules/airflow.py db_pending_migrations: the remembered "schema up to
date", keyed by the Airflow distributions, airflow.cfg and the Alembic
version rows (read without importing Airflow); anything changed or
unreadable asks Airflow again."""

import json
import os

import pytest
from testlib import airflow_dunders, load_module

airflow = load_module("airflow")
REVISIONS = {"alembic_version": ["d2f4e1b3c5a7"], "alembic_version_fab": ["02ca36b0235b"]}


class Helper:
    """cmd.run_all stand-in for the venv helper: answers by op, counts them."""

    def __init__(self):
        self.revisions, self.pending, self.ops = dict(REVISIONS), [], []

    def __call__(self, cmd, stdin=None, **_kw):
        op = json.loads(stdin)["op"]
        self.ops.append(op)
        if op == "schema_revisions" and self.revisions is None:
            result = {"ok": False, "error": "OperationalError: connection refused"}
        else:
            answer = {"schema_revisions": self.revisions, "db_pending_migrations": self.pending}[op]
            result = {"ok": True, "result": answer}
        return {"retcode": 0, "stdout": "AIRFLOW_HA_RESULT " + json.dumps(result), "stderr": ""}


@pytest.fixture
def helper():
    return Helper()


@pytest.fixture
def paths(tmp_path):
    home, venv = tmp_path / "home", tmp_path / "venv"
    site = venv / "lib" / "python3.11" / "site-packages"
    for d in (venv / "bin", home, site / "apache_airflow-3.3.2.dist-info", site / "celery-5.6.3.dist-info"):
        d.mkdir(parents=True)
    (home / "airflow.cfg").write_text("[core]\nexecutor = CeleryExecutor\n")
    for exe in ("python", "airflow-ha-helper"):
        (venv / "bin" / exe).write_text("")
    return {"home": str(home), "venv": str(venv), "user": "airflow"}


@pytest.fixture
def configure_loader_modules(helper, tmp_path):
    dunders = airflow_dunders(helper)
    dunders["__opts__"] = {"cachedir": str(tmp_path / "cache")}
    return {airflow: dunders}


def test_up_to_date_is_remembered_then_asked_only_of_the_version_rows(helper, paths, tmp_path):
    assert airflow.db_pending_migrations(**paths) == []
    assert airflow.db_pending_migrations(**paths) == []
    assert helper.ops == ["schema_revisions", "db_pending_migrations", "schema_revisions"]
    stamp = tmp_path / "cache" / "airflow_ha" / "airflow-schema-ok"
    assert oct(os.stat(stamp).st_mode & 0o777) == "0o600"


@pytest.mark.parametrize(
    "change",
    [
        "revisions",  # another node migrated, or a restore went back
        "cfg",  # e.g. another auth manager (its own DB manager)
        "dist",  # an Airflow or provider upgrade
    ],
)
def test_any_input_changed_asks_airflow_again(change, helper, paths):
    airflow.db_pending_migrations(**paths)
    if change == "revisions":
        helper.revisions = dict(REVISIONS, alembic_version=["0000aaaa"])
    elif change == "cfg":
        with open(os.path.join(paths["home"], "airflow.cfg"), "a") as fh:
            fh.write("[fab]\n")
    else:
        site = os.path.join(paths["venv"], "lib", "python3.11", "site-packages")
        os.rename(
            os.path.join(site, "apache_airflow-3.3.2.dist-info"),
            os.path.join(site, "apache_airflow-3.3.3.dist-info"),
        )
    helper.ops.clear()
    assert airflow.db_pending_migrations(**paths) == []
    assert helper.ops == ["schema_revisions", "db_pending_migrations"]


def test_pending_is_never_remembered(helper, paths):
    helper.pending = ["d2f4e1b3c5a7"]
    assert airflow.db_pending_migrations(**paths) == ["d2f4e1b3c5a7"]
    assert airflow.db_pending_migrations(**paths) == ["d2f4e1b3c5a7"]
    assert helper.ops.count("db_pending_migrations") == 2


def test_unreadable_version_rows_ask_airflow_every_time(helper, paths):
    helper.revisions = None
    airflow.db_pending_migrations(**paths)
    airflow.db_pending_migrations(**paths)
    assert helper.ops.count("db_pending_migrations") == 2


def test_without_a_cachedir_airflow_is_always_asked(helper, paths):
    airflow.__opts__.pop("cachedir")
    airflow.db_pending_migrations(**paths)
    airflow.db_pending_migrations(**paths)
    assert helper.ops.count("db_pending_migrations") == 2
