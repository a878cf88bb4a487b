"""_states/patroni.py: the wait states (leader_running, etcd_healthy)."""

import pytest
from salt.exceptions import CommandExecutionError
from testlib import load_module

state = load_module("patroni", "states")


class Seq:
    """A fake execution function answering from a list (the last answer repeats)."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls = 0

    def __call__(self, *args, **kwargs):
        answer = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
def configure_loader_modules():
    return {state: {"__opts__": {"test": False}, "__salt__": {}}}


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    slept = []
    monkeypatch.setattr(state.time, "sleep", slept.append)
    return slept


def use(leader=None, etcd=None, test=False):
    state.__salt__["patroni.leader"] = leader or Seq(None)
    state.__salt__["patroni.etcd_health"] = etcd or Seq(False)
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
    monkeypatch.setattr(state.time, "monotonic", lambda: next(clock))
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


def test_etcd_healthy_waits_for_quorum(no_sleep):
    fake = Seq(CommandExecutionError("cannot reach http://127.0.0.1:2379/health"), False, True)
    use(etcd=fake)
    ret = state.etcd_healthy("http://127.0.0.1:2379", timeout=600, interval=1)
    assert ret["result"] is True
    assert ret["changes"] == {}
    assert fake.calls == 3


def test_etcd_unhealthy_times_out(monkeypatch):
    clock = iter(range(0, 1000, 7))
    monkeypatch.setattr(state.time, "monotonic", lambda: next(clock))
    use(etcd=Seq(False))
    ret = state.etcd_healthy("http://127.0.0.1:2379", timeout=20, interval=7)
    assert ret["result"] is False
    assert "not healthy after" in ret["comment"]
    assert "quorum" in ret["comment"]


def test_etcd_test_mode():
    use(etcd=Seq(False), test=True)
    ret = state.etcd_healthy("http://127.0.0.1:2379")
    assert ret["result"] is None
    assert "would wait" in ret["comment"]
    use(etcd=Seq(True), test=True)
    assert state.etcd_healthy("http://127.0.0.1:2379")["result"] is True
