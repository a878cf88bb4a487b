"""_states/airflow_ha_postgres.py: the role's password comes from pillar by
key and never shows in the return."""

from unittest.mock import MagicMock

import pytest
from testlib import load_module, utils_dunder

pg = load_module("airflow_ha_postgres", "states")
SECRET = "db-Very-Secret-42"


@pytest.fixture
def present():
    return MagicMock(
        return_value={"name": "airflow", "result": True, "changes": {}, "comment": f"ok {SECRET}"}
    )


@pytest.fixture
def configure_loader_modules(present):
    return {
        pg: {
            "__states__": {"postgres_user.present": present},
            "__pillar__": {"airflow_ha": {"secrets": {"airflow_db_password": SECRET}}},
            "__utils__": utils_dunder("ah_secrets"),
        }
    }


def test_password_from_pillar_reaches_postgres_user_present_only(present):
    ret = pg.user_present(
        "airflow", "airflow_ha:secrets:airflow_db_password", encrypted="scram-sha-256", login=True, __id__="x"
    )
    assert present.call_args[1] == {
        "name": "airflow",
        "password": SECRET,
        "encrypted": "scram-sha-256",
        "login": True,
    }
    assert SECRET not in str(ret) and ret["result"] is True


def test_missing_pillar_key_fails_naming_it(present):
    ret = pg.user_present("airflow", "airflow_ha:secrets:nope")
    assert ret["result"] is False and "airflow_ha:secrets:nope" in ret["comment"]
    present.assert_not_called()
