"""_modules/airflow_ha_systemd.py: which files and units are newer than a
running unit (the restart check of airflow_ha_rabbitmq.restarted_if_stale)."""

import os

import pytest
from salt.exceptions import CommandExecutionError
from testlib import load_module

mod = load_module("airflow_ha_systemd")


@pytest.fixture
def configure_loader_modules():
    return {mod: {"__salt__": {}, "__opts__": {"test": False}}}


def show(stamps):
    """cmd.run_all for `systemctl show ... InactiveExitTimestamp UNIT`."""

    def _run(cmd, **_kw):
        unit = cmd[-1]
        if unit not in stamps:
            return {"retcode": 0, "stdout": "\n", "stderr": ""}
        return {"retcode": 0, "stdout": stamps[unit] + "\n", "stderr": ""}

    return _run


def test_stale_lists_files_and_units_newer_than_the_start(tmp_path):
    old, new = tmp_path / "old.conf", tmp_path / "new.conf"
    old.write_text("a")
    new.write_text("b")
    os.utime(old, (1764000000, 1764000000))  # 2025-11-24 16:00:00 UTC
    os.utime(new, (1764090000, 1764090000))  # 2025-11-25 17:00:00 UTC
    mod.__salt__["service.status"] = lambda unit: True
    mod.__salt__["cmd.run_all"] = show(
        {
            "rabbitmq-server": "Tue 2025-11-25 12:00:00.000000 UTC",
            "epmd.socket": "Tue 2025-11-25 12:30:00.500000 UTC",
        }
    )
    got = mod.stale("rabbitmq-server", [str(old), str(new), str(tmp_path / "missing")], ["epmd.socket"])
    assert got == [str(new), "epmd.socket"]


def test_stale_is_empty_when_everything_is_older(tmp_path):
    conf = tmp_path / "rabbitmq.conf"
    conf.write_text("a")
    os.utime(conf, (1764000000, 1764000000))
    mod.__salt__["service.status"] = lambda unit: True
    mod.__salt__["cmd.run_all"] = show({"rabbitmq-server": "Tue 2025-11-25 12:00:00.000000 UTC"})
    assert mod.stale("rabbitmq-server", [str(conf)], ["epmd.socket"]) == []


def test_a_stopped_unit_is_never_stale(tmp_path):
    conf = tmp_path / "rabbitmq.conf"
    conf.write_text("a")
    mod.__salt__["service.status"] = lambda unit: False
    mod.__salt__["cmd.run_all"] = show({})
    assert mod.stale("rabbitmq-server", [str(conf)]) == []


def test_unexpected_timestamp_is_a_clear_error():
    mod.__salt__["service.status"] = lambda unit: True
    mod.__salt__["cmd.run_all"] = show({"rabbitmq-server": "yesterday-ish"})
    with pytest.raises(CommandExecutionError, match="unexpected timestamp"):
        mod.stale("rabbitmq-server", [])
