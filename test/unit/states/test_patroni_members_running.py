"""_states/patroni.py members_running: the restore orchestration's wait for one
leader and every other member running as a replica (test mode asks once)."""

import pytest
from testlib import Seq, load_module, utils_dunder

patroni = load_module("patroni", "states")

LEADER = {"name": "node1", "role": "leader", "state": "running", "lag": None}


def replica(name, state="running", lag=0):
    return {"name": name, "role": "replica", "state": state, "lag": lag}


@pytest.fixture
def dunders():
    """The state module's __salt__ and __opts__ (changed by each test)."""
    return {"__salt__": {"patroni.cluster": object()}, "__opts__": {"test": False}}


@pytest.fixture
def salt(dunders):
    return dunders["__salt__"]


@pytest.fixture
def opts(dunders):
    return dunders["__opts__"]


@pytest.fixture
def configure_loader_modules(dunders):
    return {patroni: {**dunders, "__utils__": utils_dunder("ah_wait")}}


def test_waits_until_every_member_runs(salt, no_sleep):
    salt["patroni.members"] = Seq(
        [LEADER, replica("node2", "creating replica", None)],
        [LEADER, replica("node2"), replica("node3", "running", "unknown")],
        [LEADER, replica("node2"), replica("node3")],
    )
    ret = patroni.members_running("airflow-ha", ["node1", "node2", "node3"], timeout=60, interval=2)
    assert ret["result"] is True and ret["changes"] == {}
    assert salt["patroni.members"].calls == 3 and no_sleep == [2, 2]


def test_two_leaders_or_none_never_pass(salt, opts, no_sleep):
    salt["patroni.members"] = Seq([dict(LEADER, name="node2"), LEADER])
    opts["test"] = True
    ret = patroni.members_running("airflow-ha", ["node1", "node2"])
    assert ret["result"] is None and "leader node2, node1" in ret["comment"]
    opts["test"] = False
    salt["patroni.members"] = Seq([replica("node1"), replica("node2")])
    ret = patroni.members_running("airflow-ha", ["node1", "node2"], timeout=0)
    assert ret["result"] is False and "leader none" in ret["comment"]
