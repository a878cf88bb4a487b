"""_modules/airflow_ha_rabbitmq_api.py: the management API reads, from
answers recorded in the lab, and airflow_ha_rabbitmq taking from them only
what they confirm (the rabbitmqctl path otherwise)."""

import json
import logging

import pytest
import testlib
from salt.exceptions import CommandExecutionError
from testlib import load_module, utils_dunder

api = load_module("airflow_ha_rabbitmq_api")
rmq = load_module("airflow_ha_rabbitmq")
ANSWERS = json.loads((testlib.DATA / "rabbitmq" / "api_answers.json").read_text())
# The lab pillar's (lab-only) passwords, whose hashes api_answers.json holds.
ADMIN_PASSWORD = "lab-0c4fa2fa0fe1ac055575879e"
AIRFLOW_PASSWORD = "lab-f8d4acd1621f4b8196931720"
PERMS = [{"airflow": [".*", ".*", ".*"]}, {"/": [".*", ".*", ".*"]}]


def settings(reveal=False):
    assert reveal, "the admin password needs the revealed settings"
    return {
        "address": "10.77.0.11",
        "rabbitmq": {"management_port": 15672, "admin_user": "admin"},
        "secrets": {"rabbitmq_admin_password": ADMIN_PASSWORD},
    }


class FakeApi:
    """ah_http.request stand-in: answers by path, records what it was sent."""

    def __init__(self, answers=None, status=200, down=False):
        self.answers = ANSWERS if answers is None else answers
        self.status, self.down, self.calls = status, down, []

    def __call__(self, method, url, timeout, auth=None, **_kw):
        self.calls.append((method, url, auth))
        if self.down:
            raise CommandExecutionError(f"cannot reach {url}: [Errno 111] Connection refused")
        path = url.split("/api", 1)[1].split("?")[0]
        key = {
            "/nodes": "nodes",
            "/queues": "queues",
            "/vhosts": "vhosts",
            "/users": "users",
            "/users/admin/permissions": "admin_permissions",
        }.get(path)
        if self.status != 200 or key not in self.answers:
            return (self.status if self.status != 200 else 404), '{"error":"Object Not Found"}'
        return 200, json.dumps(self.answers[key])


@pytest.fixture
def http():
    fake = FakeApi()
    api.__utils__["ah_http.request"] = fake
    return fake


@pytest.fixture
def configure_loader_modules():
    return {
        api: {"__salt__": {"airflow_ha.settings": settings}, "__utils__": {}},
        rmq: {"__salt__": {}, "__opts__": {"test": False}, "__utils__": utils_dunder("ah_secrets")},
    }


def test_cluster_status_has_the_rabbitmqctl_shape(http):
    assert api.cluster_status() == {
        "members": ["rabbit@node1", "rabbit@node2", "rabbit@node3"],
        "running": ["rabbit@node1", "rabbit@node2", "rabbit@node3"],
        "partitions": {},
        "alarms": [],
    }
    method, url, auth = http.calls[0]
    assert (method, url.split("?")[0]) == ("GET", "http://10.77.0.11:15672/api/nodes")
    assert auth == ("admin", ADMIN_PASSWORD)


def test_a_stopped_member_is_a_member_not_running(http):
    http.answers = dict(ANSWERS, nodes=ANSWERS["nodes_node3_down"])
    st = api.cluster_status()
    assert st["members"] == ["rabbit@node1", "rabbit@node2", "rabbit@node3"]
    assert st["running"] == ["rabbit@node1", "rabbit@node2"]


def test_partitions_and_alarms_are_kept(http):
    nodes = json.loads(json.dumps(ANSWERS["nodes"]))
    nodes[0]["partitions"] = ["rabbit@node3"]
    nodes[1]["mem_alarm"] = True
    http.answers = dict(ANSWERS, nodes=nodes)
    st = api.cluster_status()
    assert st["partitions"] == {"rabbit@node1": ["rabbit@node3"]}
    assert st["alarms"] == ["rabbit@node2: mem_alarm"]


@pytest.mark.parametrize("fake", [FakeApi(down=True), FakeApi(status=401), FakeApi(answers={})])
def test_no_answer_is_none_never_a_guess(fake):
    api.__utils__["ah_http.request"] = fake
    assert api.cluster_status() is None
    assert api.quorum_queues_without("rabbit@node3") is None
    assert api.password_matches("airflow", AIRFLOW_PASSWORD) is None
    assert api.user_present("airflow") is False
    assert api.user_absent("guest") is False
    assert api.vhost_present("airflow") is False


def test_no_admin_password_asks_nothing(http):
    api.__salt__["airflow_ha.settings"] = lambda reveal=False: dict(settings(True), secrets={})
    assert api.cluster_status() is None
    assert http.calls == []


def test_quorum_queues_without_a_member(http):
    assert api.quorum_queues_without("rabbit@node3") == []
    assert api.quorum_queues_without("rabbit@node4") == ["airflow/default"]


def test_password_matches_the_stored_hash(http):
    assert api.password_matches("airflow", AIRFLOW_PASSWORD) is True
    assert api.password_matches("admin", ADMIN_PASSWORD) is True
    assert api.password_matches("airflow", AIRFLOW_PASSWORD + "x") is False
    assert api.password_matches("nobody", AIRFLOW_PASSWORD) is None


def test_an_unknown_hashing_algorithm_is_not_confirmed(http):
    users = [dict(u, hashing_algorithm="rabbit_password_hashing_md5") for u in ANSWERS["users"]]
    http.answers = dict(ANSWERS, users=users)
    assert api.password_matches("airflow", AIRFLOW_PASSWORD) is None


def test_user_present_compares_tags_and_each_vhost(http):
    assert api.user_present("admin", tags=["administrator"], perms=PERMS) is True
    assert api.user_present("airflow") is True
    assert api.user_present("admin", tags=[], perms=PERMS) is False
    assert api.user_present("admin", tags=["administrator"], perms=[{"airflow": ["", ".*", ".*"]}]) is False
    assert api.user_present("admin", tags=["administrator"], perms=[{"other": [".*", ".*", ".*"]}]) is False
    assert api.user_present("guest") is False


def test_user_absent_and_vhost_present(http):
    assert api.user_absent("guest") is True
    assert api.user_absent("admin") is False
    assert api.vhost_present("airflow") is True
    assert api.vhost_present("nope") is False


def test_the_password_is_never_logged_or_returned(http, caplog):
    caplog.set_level(logging.DEBUG)
    http.status = 401
    out = [api.cluster_status(), api.password_matches("airflow", AIRFLOW_PASSWORD)]
    assert ADMIN_PASSWORD not in caplog.text + repr(out)
    assert AIRFLOW_PASSWORD not in caplog.text + repr(out)


# -- airflow_ha_rabbitmq takes from the API only what it confirms -------------
def ctl_never(*_a, **_kw):
    raise AssertionError("rabbitmqctl ran although the API had answered")


def test_cluster_status_reads_the_api_first():
    answer = {"members": ["rabbit@node1"], "running": ["rabbit@node1"], "partitions": {}, "alarms": []}
    rmq.__salt__.update({"airflow_ha_rabbitmq_api.cluster_status": lambda: answer, "cmd.run_all": ctl_never})
    assert rmq.cluster_status() == answer


def test_cluster_status_of_a_peer_and_without_an_answer_uses_rabbitmqctl():
    raw = {"disk_nodes": ["rabbit@node1"], "running_nodes": ["rabbit@node1"], "partitions": []}
    calls = []

    def ctl(cmd, **_kw):
        calls.append(cmd)
        return {"retcode": 0, "stdout": json.dumps(raw), "stderr": ""}

    rmq.__salt__.update({"airflow_ha_rabbitmq_api.cluster_status": lambda: None, "cmd.run_all": ctl})
    assert rmq.cluster_status()["members"] == ["rabbit@node1"]
    assert rmq.cluster_status(node="rabbit@node2")["running"] == ["rabbit@node1"]
    assert len(calls) == 2 and "-n" in calls[1]


def test_check_password_trusts_only_a_confirmed_match():
    asked = []

    def ctl(cmd, stdin=None, **_kw):
        asked.append(stdin)
        return {"retcode": 0, "stdout": "Success", "stderr": ""}

    rmq.__salt__.update(
        {"airflow_ha_rabbitmq_api.password_matches": lambda n, p: True, "cmd.run_all": ctl_never}
    )
    assert rmq.check_password("airflow", AIRFLOW_PASSWORD) is True
    for answer in (False, None):
        rmq.__salt__.update(
            {"airflow_ha_rabbitmq_api.password_matches": lambda n, p, a=answer: a, "cmd.run_all": ctl}
        )
        assert rmq.check_password("airflow", AIRFLOW_PASSWORD) is True
    assert asked == [AIRFLOW_PASSWORD + "\n"] * 2  # through stdin, not argv
