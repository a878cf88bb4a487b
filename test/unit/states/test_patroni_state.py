"""_states/patroni.py: the wait state leader_running and dynamic_config."""

import time

import pytest
from salt.exceptions import CommandExecutionError
from testlib import Seq, load_module, utils_dunder

state = load_module("patroni", "states")


pytestmark = pytest.mark.usefixtures("no_sleep")


@pytest.fixture
def configure_loader_modules():
    return {state: {"__opts__": {"test": False}, "__salt__": {}, "__utils__": utils_dunder("ah_wait")}}


def use(leader=None, test=False):
    state.__salt__["patroni.leader"] = leader or Seq(None)
    state.__opts__["test"] = test


def test_leader_already_there_no_changes():
    fake = Seq("node2")
    use(leader=fake)
    ret = state.leader_running("airflow-ha", timeout=30)
    assert ret["result"] is True
    assert ret["changes"] == {}
    assert "node2 is the running leader" in ret["comment"]
    assert fake.calls == 1


def test_waits_through_errors_until_a_leader_appears(no_sleep):
    fake = Seq(CommandExecutionError("cannot reach http://x:8008/cluster"), None, "node3")
    use(leader=fake)
    ret = state.leader_running("airflow-ha", timeout=600, interval=2)
    assert ret["result"] is True
    assert fake.calls == 3
    assert len(no_sleep) == 2
    assert ret["changes"] == {}


def test_times_out_with_clear_message(monkeypatch):
    clock = iter(range(0, 1000, 5))
    monkeypatch.setattr(time, "monotonic", lambda: next(clock))
    use(leader=Seq(CommandExecutionError("cannot reach http://x:8008/cluster: refused")))
    ret = state.leader_running("airflow-ha", timeout=20, interval=5)
    assert ret["result"] is False
    assert "no running leader after" in ret["comment"]
    assert "cannot reach" in ret["comment"]
    assert "patronictl list" in ret["comment"]
    assert ret["changes"] == {}


def test_test_mode_checks_once_and_tells_the_truth():
    fake = Seq(None, "node1")
    use(leader=fake, test=True)
    ret = state.leader_running("airflow-ha")
    assert ret["result"] is None
    assert "would wait" in ret["comment"]
    assert fake.calls == 1
    ret = state.leader_running("airflow-ha")
    assert ret["result"] is True


def test_passes_host_and_config_file_through():
    seen = {}

    def leader(**kwargs):
        seen.update(kwargs)
        return "node1"

    use(leader=leader)
    state.leader_running("c", host="10.0.0.1", port=8009, config_file="/x.yml")
    assert seen == {"host": "10.0.0.1", "port": 8009, "config_file": "/x.yml"}


@pytest.mark.parametrize("timeout,interval", [("soon", 1), (10, 0), (-1, 1)])
def test_bad_wait_arguments(timeout, interval):
    use(leader=Seq("node1"))
    ret = state.leader_running("c", timeout=timeout, interval=interval)
    assert ret["result"] is False
    assert "timeout" in ret["comment"]


# --- dynamic_config -------------------------------------------------------------------------

BOOTSTRAPPED = {  # the shape of test/unit/data/patroni/config_bootstrap.json
    "ttl": 30,
    "loop_wait": 10,
    "retry_timeout": 10,
    "maximum_lag_on_failover": 1048576,
    "postgresql": {
        "use_pg_rewind": True,
        "use_slots": True,
        "parameters": {"max_connections": 300, "hot_standby": "on", "wal_level": "replica"},
    },
}
WANT = {
    "ttl": 20,
    "loop_wait": 5,
    "retry_timeout": 5,
    "maximum_lag_on_failover": 1048576,
    "postgresql": {"use_pg_rewind": True, "parameters": {"max_connections": "300", "hot_standby": True}},
}


class FakeDCS:
    def __init__(self, current, keep=()):
        self.current = current
        self.patches = []
        self.keep = keep  # keys Patroni refuses to change

    def get(self, **kwargs):
        return self.current

    def patch(self, changes, **kwargs):
        self.patches.append(changes)
        merged = dict(self.current)
        for k, v in changes.items():
            if k not in self.keep:
                merged[k] = v
        self.current = merged
        return merged


def use_dcs(dcs, test=False):
    state.__salt__["patroni.dynamic_config"] = dcs.get
    state.__salt__["patroni.patch_dynamic_config"] = dcs.patch
    state.__opts__["test"] = test


def test_dynamic_config_patches_only_what_differs():
    dcs = FakeDCS(dict(BOOTSTRAPPED))
    use_dcs(dcs)
    ret = state.dynamic_config("c", WANT)
    assert ret["result"] is True
    assert dcs.patches == [{"ttl": 20, "loop_wait": 5, "retry_timeout": 5}]
    assert ret["changes"] == {
        "ttl": {"old": 30, "new": 20},
        "loop_wait": {"old": 10, "new": 5},
        "retry_timeout": {"old": 10, "new": 5},
    }
    again = state.dynamic_config("c", WANT)
    assert again["result"] is True
    assert again["changes"] == {}
    assert len(dcs.patches) == 1


def test_dynamic_config_test_mode_reports_without_patching():
    dcs = FakeDCS(dict(BOOTSTRAPPED))
    use_dcs(dcs, test=True)
    ret = state.dynamic_config("c", WANT)
    assert ret["result"] is None
    assert set(ret["changes"]) == {"ttl", "loop_wait", "retry_timeout"}
    assert dcs.patches == []


def test_dynamic_config_nested_parameter_change_mentions_restart():
    dcs = FakeDCS(dict(BOOTSTRAPPED))
    use_dcs(dcs)
    want = {"postgresql": {"parameters": {"max_connections": 500}}}
    ret = state.dynamic_config("c", want)
    assert dcs.patches == [{"postgresql": {"parameters": {"max_connections": 500}}}]
    assert "postgresql.parameters.max_connections" in ret["changes"]
    assert "restart" in ret["comment"]


def test_dynamic_config_value_refused_by_patroni_fails():
    dcs = FakeDCS(dict(BOOTSTRAPPED), keep=("ttl",))
    use_dcs(dcs)
    ret = state.dynamic_config("c", {"ttl": 20})
    assert ret["result"] is False
    assert "ttl" in ret["comment"]


def test_dynamic_config_unreachable_and_bad_input():
    def down(**kwargs):
        raise CommandExecutionError("cannot reach http://x:8008/config: refused")

    state.__salt__["patroni.dynamic_config"] = down
    state.__opts__["test"] = False
    ret = state.dynamic_config("c", {"ttl": 20})
    assert ret["result"] is False
    assert "cannot reach" in ret["comment"]
    bad = state.dynamic_config("c", ["ttl", 20])
    assert bad["result"] is False
    assert "non-empty dict" in bad["comment"]
