"""_states/airflow_ha_etcd.py: wait until etcd's member is healthy (quorum)."""

import time

import pytest
from salt.exceptions import CommandExecutionError, SaltInvocationError
from testlib import Seq, load_module, utils_dunder

state = load_module("airflow_ha_etcd", "states")


pytestmark = pytest.mark.usefixtures("no_sleep")


@pytest.fixture
def configure_loader_modules():
    return {state: {"__opts__": {"test": False}, "__salt__": {}, "__utils__": utils_dunder("ah_wait")}}


DECIDED = {"server": "3.4.23", "cluster": "3.4.0"}


def use(etcd=None, test=False, version=None):
    state.__salt__["airflow_ha_etcd.health"] = etcd or Seq(False)
    state.__salt__["airflow_ha_etcd.version"] = version or Seq(DECIDED)
    state.__opts__["test"] = test


def test_etcd_healthy_waits_for_quorum(no_sleep):
    fake = Seq(CommandExecutionError("cannot reach http://127.0.0.1:2379/health"), False, True)
    use(etcd=fake)
    ret = state.healthy("http://127.0.0.1:2379", timeout=600, interval=1)
    assert ret["result"] is True
    assert ret["changes"] == {}
    assert fake.calls == 3


def test_etcd_healthy_waits_for_the_cluster_version_to_be_decided(no_sleep):
    # a new cluster answers 3.0.0 until its leader has heard every member:
    # Patroni 3.0 started then picks /v3alpha and never recovers
    version = Seq({"server": "3.4.23", "cluster": "3.0.0"}, {"server": "3.4.23", "cluster": "3.0.0"}, DECIDED)
    use(etcd=Seq(True), version=version)
    ret = state.healthy("http://127.0.0.1:2379", timeout=600, interval=1)
    assert ret["result"] is True
    assert version.calls == 3
    assert "cluster version 3.4.0" in ret["comment"]


def test_etcd_undecided_cluster_version_times_out_naming_it(monkeypatch):
    clock = iter(range(0, 1000, 7))
    monkeypatch.setattr(time, "monotonic", lambda: next(clock))
    use(etcd=Seq(True), version=Seq({"server": "3.5.16", "cluster": "3.0.0"}))
    ret = state.healthy("http://127.0.0.1:2379", timeout=20, interval=7)
    assert ret["result"] is False
    assert "cluster version is still 3.0.0" in ret["comment"]
    assert "every one, for a new cluster" in ret["comment"]


def test_etcd_unhealthy_times_out(monkeypatch):
    clock = iter(range(0, 1000, 7))
    monkeypatch.setattr(time, "monotonic", lambda: next(clock))
    use(etcd=Seq(False))
    ret = state.healthy("http://127.0.0.1:2379", timeout=20, interval=7)
    assert ret["result"] is False
    assert "not ready after" in ret["comment"]
    assert "quorum" in ret["comment"]


def test_etcd_test_mode():
    use(etcd=Seq(False), test=True)
    ret = state.healthy("http://127.0.0.1:2379")
    assert ret["result"] is None
    assert "would wait" in ret["comment"]
    use(etcd=Seq(True), test=True)
    assert state.healthy("http://127.0.0.1:2379")["result"] is True


def test_etcd_healthy_passes_tls_files_only_when_given():
    fake = Seq(True)
    use(etcd=fake)
    tls = {"cacert": "/t/ca.crt", "cert": "/t/node.crt", "key": "/t/etcd.key"}
    assert state.healthy("https://127.0.0.1:2379", **tls)["result"] is True
    assert fake.seen[-1] == (("https://127.0.0.1:2379",), tls)
    assert state.healthy("http://127.0.0.1:2379")["result"] is True
    assert fake.seen[-1] == (("http://127.0.0.1:2379",), {})


def test_etcd_healthy_unloadable_tls_file_fails_at_once(no_sleep):
    bad = SaltInvocationError("cannot load the CA certificate /t/ca.crt: [Errno 2] No such file")
    fake = Seq(bad)
    use(etcd=fake)
    ret = state.healthy("https://127.0.0.1:2379", timeout=600, cacert="/t/ca.crt")
    assert ret["result"] is False
    assert "cannot load the CA certificate /t/ca.crt" in ret["comment"]
    assert fake.calls == 1 and no_sleep == []
    use(etcd=Seq(bad), test=True)  # test mode: the file may not be written yet
    ret = state.healthy("https://127.0.0.1:2379", cacert="/t/ca.crt")
    assert ret["result"] is None
    assert "the real run would wait" in ret["comment"]


@pytest.mark.parametrize("timeout,interval", [("soon", 1), (10, 0), (-1, 1)])
def test_bad_wait_arguments(timeout, interval):
    use(etcd=Seq(True))
    ret = state.healthy("http://127.0.0.1:2379", timeout=timeout, interval=interval)
    assert ret["result"] is False and "timeout" in ret["comment"]


# --- joined -----------------------------------------------------------------

P3 = "http://10.77.0.13:2380"
STALE = {"id": "13", "name": "node3", "peer_urls": [P3], "client_urls": ["http://10.77.0.13:2379"]}
AFTER = [
    {"id": "11", "name": "node1", "peer_urls": ["http://10.77.0.11:2380"], "client_urls": []},
    {"id": "12", "name": "node2", "peer_urls": ["http://10.77.0.12:2380"], "client_urls": []},
    {"id": "99", "name": "", "peer_urls": [P3], "client_urls": []},
]


def use_plan(action, stale=None, test=False):
    calls = []
    state.__salt__["airflow_ha_etcd.join_plan"] = lambda *a, **k: {
        "action": action, "reason": "why", "via": "http://10.77.0.11:2379", "stale": stale,
        "members": AFTER}  # fmt: skip
    state.__salt__["airflow_ha_etcd.member_remove"] = lambda url, mid, **k: calls.append(("remove", mid))
    state.__salt__["airflow_ha_etcd.member_add"] = lambda url, peer, **k: calls.append(("add", peer)) or AFTER
    state.__opts__["test"] = test
    return calls


def joined(tmp_path):
    env = tmp_path / "join.env"
    ret = state.joined("node3", P3, ["http://10.77.0.11:2379"], str(tmp_path / "d"), str(env))
    return ret, env


@pytest.mark.parametrize("action", ["member", "bootstrap", "start"])
def test_joined_nothing_to_do(tmp_path, action):
    calls = use_plan(action)
    ret, env = joined(tmp_path)
    assert ret["result"] is True and ret["changes"] == {} and calls == [] and not env.exists()


def test_joined_refuses_without_touching_the_cluster(tmp_path):
    calls = use_plan("refuse")
    ret, env = joined(tmp_path)
    assert ret["result"] is False and ret["changes"] == {} and calls == [] and not env.exists()


def test_joined_replace_test_mode_then_real_run_same_keys(tmp_path):
    calls = use_plan("replace", stale=STALE, test=True)
    ret, env = joined(tmp_path)
    assert ret["result"] is None and calls == [] and not env.exists()
    test_keys = set(ret["changes"])
    calls = use_plan("replace", stale=STALE)
    ret, env = joined(tmp_path)
    assert ret["result"] is True, ret["comment"]
    assert set(ret["changes"]) == test_keys == {"member"}
    assert calls == [("remove", "13"), ("add", P3)]
    text = env.read_text()
    assert 'ETCD_INITIAL_CLUSTER_STATE="existing"' in text
    assert (
        'ETCD_INITIAL_CLUSTER="node1=http://10.77.0.11:2380,node2=http://10.77.0.12:2380,node3=' + P3 + '"'
    ) in text


def test_joined_add_a_new_node(tmp_path):
    calls = use_plan("add")
    ret, env = joined(tmp_path)
    assert ret["result"] is True and calls == [("add", P3)] and env.exists()
    assert ret["changes"]["member"]["old"] == "not a member"


def test_joined_failure_is_reported(tmp_path):
    use_plan("add")

    def boom(*a, **k):
        raise CommandExecutionError("etcd at http://10.77.0.11:2379: member add answered HTTP 400")

    state.__salt__["airflow_ha_etcd.member_add"] = boom
    ret, env = joined(tmp_path)
    assert ret["result"] is False and "member add answered HTTP 400" in ret["comment"] and not env.exists()


def test_joined_resume_writes_the_join_env_once(tmp_path):
    use_plan("resume", test=True)
    ret, env = joined(tmp_path)
    assert ret["result"] is None and not env.exists()
    test_keys = set(ret["changes"])
    calls = use_plan("resume")
    ret, env = joined(tmp_path)
    assert ret["result"] is True and set(ret["changes"]) == test_keys == {"join_env"} and calls == []
    assert 'ETCD_INITIAL_CLUSTER_STATE="existing"' in env.read_text()
    ret, env = joined(tmp_path)
    assert ret["result"] is True and ret["changes"] == {}, "a second run changes nothing"


def test_joined_add_retries_while_etcd_answers_unhealthy_cluster(tmp_path, no_sleep):
    calls = use_plan("replace", stale=STALE)
    answers = iter([CommandExecutionError("member add answered HTTP 503: etcdserver: unhealthy cluster")] * 2)

    def add(url, peer, **k):
        exc = next(answers, None)
        if exc:
            raise exc
        calls.append(("add", peer))
        return AFTER

    state.__salt__["airflow_ha_etcd.member_add"] = add
    ret, env = joined(tmp_path)
    assert ret["result"] is True, ret["comment"]
    assert calls == [("remove", "13"), ("add", P3)] and no_sleep == [2, 2]


def test_joined_add_other_errors_are_not_retried(tmp_path, no_sleep):
    use_plan("add")

    def add(url, peer, **k):
        raise CommandExecutionError("member add answered HTTP 400: etcdserver: Peer URLs already exists")

    state.__salt__["airflow_ha_etcd.member_add"] = add
    ret, _ = joined(tmp_path)
    assert ret["result"] is False and "already exists" in ret["comment"] and no_sleep == []


# --- departed_removed -------------------------------------------------------------

NODE4 = {"id": "14", "name": "node4", "peer_urls": ["http://10.77.0.14:2380"], "client_urls": []}


def use_departed(action, after):
    removed = []
    state.__salt__["airflow_ha_etcd.departed_plan"] = lambda urls, url, **k: {
        "action": action, "departed": [NODE4], "healthy": ["11", "12", "13"], "reason": "why"}  # fmt: skip
    state.__salt__["airflow_ha_etcd.member_remove"] = lambda url, mid, **k: removed.append(mid)
    state.__salt__["airflow_ha_etcd.members"] = lambda url, **k: after
    return removed


def test_departed_removed_test_mode_then_real_run_same_keys():
    state.__opts__["test"] = True
    removed = use_departed("remove", AFTER)
    ret = state.departed_removed("http://127.0.0.1:2379", [P3])
    assert ret["result"] is None and removed == []
    keys = set(ret["changes"])
    state.__opts__["test"] = False
    removed = use_departed("remove", AFTER)
    ret = state.departed_removed("http://127.0.0.1:2379", [P3])
    assert ret["result"] is True and set(ret["changes"]) == keys == {"departed"} and removed == ["14"]


@pytest.mark.parametrize(("action", "result"), [("ok", True), ("refuse", False)])
def test_departed_removed_ok_or_refused_changes_nothing(action, result):
    removed = use_departed(action, AFTER)
    ret = state.departed_removed("http://127.0.0.1:2379", [P3])
    assert ret["result"] is result and ret["changes"] == {} and removed == []


def test_departed_removed_still_listed_fails():
    use_departed("remove", AFTER + [NODE4])
    ret = state.departed_removed("http://127.0.0.1:2379", [P3])
    assert ret["result"] is False and "still lists node4" in ret["comment"]


def test_joined_waits_for_the_member_added_before_it(tmp_path, no_sleep):
    calls = use_plan("add")
    plans = iter([{"action": "wait", "reason": "node4 was added and has not started yet"}] * 2)
    real = state.__salt__["airflow_ha_etcd.join_plan"]
    state.__salt__["airflow_ha_etcd.join_plan"] = lambda *a, **k: next(plans, None) or real(*a, **k)
    ret, env = joined(tmp_path)
    assert ret["result"] is True and calls == [("add", P3)] and no_sleep == [5, 5]


def test_joined_wait_times_out_changing_nothing(tmp_path, monkeypatch):
    calls = use_plan("add")
    state.__salt__["airflow_ha_etcd.join_plan"] = lambda *a, **k: {"action": "wait", "reason": "node4 waits"}
    clock = iter(range(0, 10000, 100))
    monkeypatch.setattr(time, "monotonic", lambda: next(clock))
    ret, env = joined(tmp_path)
    assert (
        ret["result"] is False
        and "still so after 600 s" in ret["comment"]
        and calls == []
        and not env.exists()
    )
