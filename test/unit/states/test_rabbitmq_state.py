"""_states/airflow_ha_rabbitmq.py: user_password, clustered, restarted_if_stale."""

import pytest
import salt.utils.secret
from salt.exceptions import CommandExecutionError
from testlib import load_module, utils_dunder

state = load_module("airflow_ha_rabbitmq", "states")
SECRET = "s3cr3t-Pa55word-that-must-not-leak"
KEY = "airflow_ha:secrets:rabbitmq_password"


class Recorder:
    """A fake execution function: records calls, answers from a list."""

    def __init__(self, *answers):
        self.answers = list(answers) or [True]
        self.calls = []
        self.kwargs = []

    def __call__(self, *args, **kwargs):
        self.calls.append(args)
        self.kwargs.append(kwargs)
        answer = self.answers[min(len(self.calls) - 1, len(self.answers) - 1)]
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
def configure_loader_modules():
    pillar = {"airflow_ha": {"secrets": {"rabbitmq_password": SECRET}}}
    return {
        state: {
            "__opts__": {"test": False},
            "__salt__": {},
            "__pillar__": pillar,
            "__utils__": utils_dunder("ah_secrets"),
        }
    }


def fakes(exists=True, matches=True, add=True, change=True, check_after=True):
    f = {
        "user_exists": Recorder(*exists) if isinstance(exists, tuple) else Recorder(exists),
        "check_password": Recorder(matches, check_after),
        "add_user": Recorder(add),
        "change_password": Recorder(change),
    }
    for name, fake in f.items():
        state.__salt__[f"airflow_ha_rabbitmq.{name}"] = fake
    return f


def no_leak(ret):
    assert SECRET not in repr(ret), "the password is in the state return"


# --- user_password ----------------------------------------------------------


def test_user_with_matching_password_no_changes():
    f = fakes(exists=True, matches=True)
    ret = state.user_password("airflow", KEY)
    assert ret["result"] is True and ret["changes"] == {}
    assert f["check_password"].calls == [("airflow", SECRET)]
    assert not f["change_password"].calls and not f["add_user"].calls
    no_leak(ret)


def test_password_comes_from_a_masked_pillar_as_plain_text():
    """Salt 3008 wraps the pillar in MaskedDict; pillar.get would give '**********'."""
    state.__pillar__ = salt.utils.secret.hide({"airflow_ha": {"secrets": {"rabbitmq_password": SECRET}}})
    f = fakes(exists=True, matches=True)
    state.user_password("airflow", KEY)
    assert f["check_password"].calls == [("airflow", SECRET)]


def test_wrong_password_is_changed_without_leaking():
    f = fakes(exists=True, matches=False)
    ret = state.user_password("airflow", KEY)
    assert ret["result"] is True
    assert f["change_password"].calls == [("airflow", SECRET)]
    assert set(ret["changes"]) == {"password"}
    no_leak(ret)


def test_missing_user_is_created():
    f = fakes(exists=False)
    ret = state.user_password("airflow", KEY)
    assert ret["result"] is True
    assert f["add_user"].calls == [("airflow", SECRET)]
    assert ret["changes"] == {"user": {"old": None, "new": "airflow"}}
    no_leak(ret)


def test_user_created_meanwhile_by_another_node_gets_the_password():
    f = fakes(exists=(False, True), add=CommandExecutionError("user already exists"))
    ret = state.user_password("airflow", KEY)
    assert ret["result"] is True
    assert f["change_password"].calls == [("airflow", SECRET)]


def test_test_mode_reports_and_changes_nothing():
    state.__opts__["test"] = True
    f = fakes(exists=True, matches=False)
    ret = state.user_password("airflow", KEY)
    assert ret["result"] is None and set(ret["changes"]) == {"password"}
    assert not f["change_password"].calls
    no_leak(ret)


def test_missing_pillar_key_names_it():
    state.__pillar__ = {"airflow_ha": {"secrets": {}}}
    f = fakes()
    ret = state.user_password("airflow", KEY)
    assert ret["result"] is False
    assert KEY in ret["comment"] and "pillar.example" in ret["comment"]
    assert not f["user_exists"].calls


def test_password_that_does_not_authenticate_after_setting_fails():
    fakes(exists=True, matches=False, check_after=False)
    ret = state.user_password("airflow", KEY)
    assert ret["result"] is False and "does not authenticate" in ret["comment"]


def test_rabbitmqctl_error_is_reported_without_the_password():
    fakes(exists=CommandExecutionError("rabbitmqctl list_users failed (exit 69): node down"))
    ret = state.user_password("airflow", KEY)
    assert ret["result"] is False and "node down" in ret["comment"]
    no_leak(ret)


# --- clustered --------------------------------------------------------------


class FakeClock:
    """time.monotonic/sleep for the settle loop: sleeping advances the clock."""

    def __init__(self):
        self.now, self.slept = 0.0, []

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(state, "time", fake)
    return fake


NODES = ["rabbit@node1", "rabbit@node2", "rabbit@node3"]


def plan(action, peer=None, members=("rabbit@node2",), reason="because"):
    return {
        "action": action,
        "peer": peer,
        "members": list(members),
        "node": "rabbit@node2",
        "reason": reason,
    }


def use_plan(answer, join=None, missing=(), left=()):
    state.__salt__["airflow_ha_rabbitmq.cluster_plan"] = Recorder(answer)
    state.__salt__["airflow_ha_rabbitmq.quorum_queues_without"] = Recorder(list(missing))
    state.__salt__["airflow_ha_rabbitmq.grow_quorum_queues"] = Recorder(list(left))
    state.__salt__["airflow_ha_rabbitmq.join"] = join or Recorder({"members": NODES})
    return state.__salt__["airflow_ha_rabbitmq.join"]


def test_clustered_ok_no_changes():
    join = use_plan(plan("ok", members=NODES, reason="clustered with rabbit@node1, rabbit@node3"))
    ret = state.clustered("rabbit@node2", NODES)
    assert ret["result"] is True and ret["changes"] == {}
    assert "clustered with" in ret["comment"]
    assert not join.calls


def test_refusal_fails_with_the_reason_and_touches_nothing():
    join = use_plan(plan("refuse", peer="rabbit@node1", reason="holds users; move its data"))
    ret = state.clustered("rabbit@node2", NODES)
    assert ret["result"] is False and "move its data" in ret["comment"]
    assert not join.calls


def test_a_refusal_is_reported_only_when_it_lasts(clock):
    join = use_plan(plan("refuse", peer="rabbit@node1", reason="still lists me"))
    ret = state.clustered("rabbit@node2", NODES, settle=60, interval=5)
    assert ret["result"] is False and "unchanged for 60 s" in ret["comment"]
    assert sum(clock.slept) == 60 and not join.calls


def test_a_node_still_joining_settles_without_a_reset(clock):
    """Mid-join the node sees itself alone while node1 already lists it: wait,
    do not refuse, do not reset."""
    use_plan(plan("ok", members=NODES))
    state.__salt__["airflow_ha_rabbitmq.cluster_plan"] = Recorder(
        plan("refuse", peer="rabbit@node1", reason="still lists me"),
        plan("join", peer="rabbit@node1"),
        plan("ok", members=NODES, reason="clustered with rabbit@node1, rabbit@node3"),
    )
    ret = state.clustered("rabbit@node2", NODES)
    assert ret["result"] is True and ret["changes"] == {}
    assert not state.__salt__["airflow_ha_rabbitmq.join"].calls
    assert clock.slept == [5, 5]


def test_rebuilt_node_is_forgotten_on_the_peer_then_joins(clock):
    join = use_plan(plan("rejoin", peer="rabbit@node1", reason="rebuilt"))
    state.__opts__["test"] = True
    ret = state.clustered("rabbit@node2", NODES, settle=0)
    assert ret["result"] is None and "be forgotten on rabbit@node1" in ret["comment"]
    assert not join.calls
    test_keys = set(ret["changes"])
    state.__opts__["test"] = False
    ret = state.clustered("rabbit@node2", NODES, settle=0)
    assert ret["result"] is True, ret["comment"]
    assert set(ret["changes"]) == test_keys
    # the peer forgets this node inside the join, once its app is stopped
    assert join.calls == [("rabbit@node1",)] and join.kwargs == [{"forget_node": "rabbit@node2"}]
    assert "forgotten on rabbit@node1 (rebuilt host)" in ret["comment"]


def test_after_a_join_the_members_are_read_fresh(clock):
    """The management API lags after a forget and join: the replicas check
    right after acting reads through rabbitmqctl; a clustered node's check
    (every re-apply) may use the API."""
    use_plan(plan("rejoin", peer="rabbit@node1", reason="rebuilt"), missing=["airflow/default"])
    ret = state.clustered("rabbit@node2", NODES, settle=0)
    assert ret["result"] is True and "Added a member on rabbit@node2" in ret["comment"]
    assert state.__salt__["airflow_ha_rabbitmq.quorum_queues_without"].kwargs == [{"fresh": True}]
    use_plan(plan("ok", members=NODES))
    state.clustered("rabbit@node2", NODES)
    assert state.__salt__["airflow_ha_rabbitmq.quorum_queues_without"].kwargs == [{"fresh": False}]


def test_join_in_test_mode_only_reports():
    state.__opts__["test"] = True
    join = use_plan(plan("join", peer="rabbit@node1"))
    ret = state.clustered("rabbit@node2", NODES)
    assert ret["result"] is None and "would be reset and join rabbit@node1" in ret["comment"]
    assert not join.calls


def test_join_reports_old_and_new_members():
    join = use_plan(plan("join", peer="rabbit@node1"))
    ret = state.clustered("rabbit@node2", NODES)
    assert ret["result"] is True
    assert join.calls == [("rabbit@node1",)]
    assert ret["changes"] == {"cluster": {"old": ["rabbit@node2"], "new": NODES}}


def test_join_that_does_not_show_the_peer_fails():
    use_plan(plan("join", peer="rabbit@node1"), join=Recorder({"members": ["rabbit@node2"]}))
    ret = state.clustered("rabbit@node2", NODES)
    assert ret["result"] is False and "cluster_status shows" in ret["comment"]


def test_join_error_fails():
    use_plan(plan("join", peer="rabbit@node1"), join=Recorder(CommandExecutionError("inconsistent_cluster")))
    ret = state.clustered("rabbit@node2", NODES)
    assert ret["result"] is False and "inconsistent_cluster" in ret["comment"]


def test_node_missing_from_nodes_is_a_clear_error():
    use_plan(plan("ok"))
    ret = state.clustered("rabbit@node9", NODES)
    assert ret["result"] is False and "broker" in ret["comment"]


def test_late_joined_node_gets_its_quorum_members():
    use_plan(plan("ok", members=NODES), missing=["airflow/default"])
    ret = state.clustered("rabbit@node3", NODES)
    assert ret["result"] is True
    assert state.__salt__["airflow_ha_rabbitmq.grow_quorum_queues"].calls == [("rabbit@node3",)]
    assert ret["changes"] == {"quorum_members": {"old": ["airflow/default"], "new": ["airflow/default"]}}


def test_missing_quorum_members_in_test_mode_only_reported():
    state.__opts__["test"] = True
    use_plan(plan("ok", members=NODES), missing=["airflow/default"])
    ret = state.clustered("rabbit@node3", NODES)
    assert ret["result"] is None and "would get a member" in ret["comment"]
    assert not state.__salt__["airflow_ha_rabbitmq.grow_quorum_queues"].calls


def test_quorum_members_that_cannot_be_added_fail():
    use_plan(plan("ok", members=NODES), missing=["airflow/default"], left=["airflow/default"])
    ret = state.clustered("rabbit@node3", NODES)
    assert ret["result"] is False and "still without a member" in ret["comment"]


def test_join_then_grow_reports_both():
    use_plan(plan("join", peer="rabbit@node1"), missing=["airflow/default"])
    ret = state.clustered("rabbit@node2", NODES)
    assert ret["result"] is True
    assert set(ret["changes"]) == {"cluster", "quorum_members"}


# --- restarted_if_stale -----------------------------------------------------


def use_stale(newer, restart=True):
    # after a restart nothing is newer than the unit any more
    state.__salt__["airflow_ha_systemd.stale"] = Recorder(newer, [])
    state.__salt__["service.restart"] = Recorder(restart)
    return state.__salt__["service.restart"]


def test_up_to_date_unit_is_not_restarted():
    restart = use_stale([])
    ret = state.restarted_if_stale("rabbitmq-server", ["/etc/rabbitmq/rabbitmq.conf"])
    assert ret["result"] is True and ret["changes"] == {}
    assert not restart.calls


def test_stale_unit_is_restarted():
    restart = use_stale(["/etc/rabbitmq/rabbitmq.conf"])
    ret = state.restarted_if_stale("rabbitmq-server", ["/etc/rabbitmq/rabbitmq.conf"])
    assert ret["result"] is True and restart.calls == [("rabbitmq-server",)]
    assert ret["changes"]["changed_since_start"] == ["/etc/rabbitmq/rabbitmq.conf"]


def test_stale_unit_in_test_mode_is_not_restarted():
    state.__opts__["test"] = True
    restart = use_stale(["epmd.socket"])
    ret = state.restarted_if_stale("rabbitmq-server", [], ["epmd.socket"])
    assert ret["result"] is None and not restart.calls


def test_restart_that_does_not_take_fails():
    restart = use_stale(["/etc/rabbitmq/rabbitmq.conf"])
    state.__salt__["airflow_ha_systemd.stale"] = Recorder(["/etc/rabbitmq/rabbitmq.conf"])
    ret = state.restarted_if_stale("rabbitmq-server", ["/etc/rabbitmq/rabbitmq.conf"])
    assert ret["result"] is False and "still older" in ret["comment"] and restart.calls


def test_failed_restart_fails():
    use_stale(["/etc/rabbitmq/rabbitmq.conf"], restart=False)
    ret = state.restarted_if_stale("rabbitmq-server", ["/etc/rabbitmq/rabbitmq.conf"])
    assert ret["result"] is False and "journalctl -u rabbitmq-server" in ret["comment"]


# --- departed_forgotten -----------------------------------------------------------

FIVE = NODES + ["rabbit@node4", "rabbit@node5"]


def use_departed(action, members_after=NODES, forget_error=None):
    forgot = []
    state.__salt__["airflow_ha_rabbitmq.departed_plan"] = lambda nodes: {
        "action": action, "departed": ["rabbit@node4", "rabbit@node5"], "running": NODES, "reason": "why"}  # fmt: skip

    def forget(node, peer):
        if forget_error:
            raise CommandExecutionError(forget_error)
        forgot.append((node, peer))

    state.__salt__["airflow_ha_rabbitmq.forget"] = forget
    state.__salt__["airflow_ha_rabbitmq.cluster_status"] = lambda: {"members": list(members_after)}
    return forgot


def test_departed_test_mode_then_real_run_same_keys():
    state.__opts__["test"] = True
    forgot = use_departed("forget")
    ret = state.departed_forgotten("rabbit@node1", NODES)
    assert ret["result"] is None and forgot == []
    keys = set(ret["changes"])
    state.__opts__["test"] = False
    forgot = use_departed("forget")
    ret = state.departed_forgotten("rabbit@node1", NODES)
    assert ret["result"] is True and set(ret["changes"]) == keys == {"departed"}
    assert forgot == [("rabbit@node4", "rabbit@node1"), ("rabbit@node5", "rabbit@node1")]


@pytest.mark.parametrize(("action", "result"), [("ok", True), ("refuse", False)])
def test_departed_ok_or_refused_changes_nothing(action, result):
    forgot = use_departed(action)
    ret = state.departed_forgotten("rabbit@node1", NODES)
    assert ret["result"] is result and ret["changes"] == {} and forgot == []


def test_departed_still_listed_after_forget_fails():
    use_departed("forget", members_after=FIVE, forget_error="forget_cluster_node rabbit@node4 failed")
    ret = state.departed_forgotten("rabbit@node1", NODES)
    assert ret["result"] is False and "still lists rabbit@node4, rabbit@node5" in ret["comment"]
