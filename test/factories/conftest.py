"""A real Salt master and three minions on loopback (pytest-salt-factories)."""

import pytest
import salt.utils.yaml
from saltfactories.plugins.event_listener import EventListener
from testlib import ROOT

MINIONS = ("node1", "node2", "node3")


@pytest.fixture(scope="session")
def event_listener():
    listener = EventListener()
    listener.host = "127.0.0.1"
    listener.address = f"tcp://127.0.0.1:{listener.port}"
    with listener:
        yield listener


@pytest.fixture(scope="session")
def salt_factories_config(tmp_path_factory):
    # Without this, salt-factories leaves /tmp/master_N and /tmp/nodeX_N behind.
    return {"root_dir": str(tmp_path_factory.mktemp("salt-root"))}


@pytest.fixture(scope="session")
def pillar_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("pillar")
    (path / "top.sls").write_text("base:\n  '*':\n    - airflow_ha\n")
    (path / "airflow_ha.sls").write_text((ROOT / "pillar.example").read_text())
    return path


@pytest.fixture(scope="session")
def salt_master(salt_factories, pillar_dir):
    overrides = {
        "interface": "127.0.0.1",
        "file_roots": {"base": [str(ROOT)]},
        "pillar_roots": {"base": [str(pillar_dir)]},
        "open_mode": True,
        "log_level_logfile": "warning",
    }
    master = salt_factories.salt_master_daemon("airflow-ha-master", overrides=overrides)
    with master.started(start_timeout=300):
        yield master


@pytest.fixture(scope="session")
def salt_minions(salt_master):
    minions = [
        salt_master.salt_minion_daemon(mid, overrides={"log_level_logfile": "warning"}) for mid in MINIONS
    ]
    started = []
    try:
        # Sequential starts beat parallel ones on two cores.
        for minion in minions:
            minion.start(start_timeout=300)
            started.append(minion)
        yield minions
    finally:
        for minion in reversed(started):
            minion.terminate()


@pytest.fixture(scope="session")
def salt_cli(salt_master):
    # Generous: a loaded 2-core machine renders slowly; a timeout here is no verdict.
    return salt_master.salt_cli(timeout=600)


@pytest.fixture
def bad_pillar():
    data = salt.utils.yaml.safe_load((ROOT / "pillar.example").read_text())
    return data
