"""_modules/airflow_ha_rabbitmq.py: names, rabbitmqctl parsing, stdin
passwords, the standalone-node plan and scale-in."""

import copy
import json

import pytest
import testlib
from salt.exceptions import CommandExecutionError
from testlib import load_module, utils_dunder

mod = load_module("airflow_ha_rabbitmq")
DATA = testlib.DATA / "rabbitmq"
REAL_STATUS = json.loads((DATA / "cluster_status_node2_down.json").read_text())
NODES = ["rabbit@node1", "rabbit@node2", "rabbit@node3"]
SECRET = "s3cr3t-Pa55word-that-must-not-leak"


def status(members, running=None):
    """A cluster_status answer shaped like the real one, for `members`."""
    out = copy.deepcopy(REAL_STATUS)
    out["disk_nodes"] = list(members)
    out["running_nodes"] = list(running if running is not None else members)
    return out


def ok(stdout=""):
    return {"retcode": 0, "stdout": stdout, "stderr": ""}


def fail(stderr="Error: unable to perform an operation on node", rc=69):
    return {"retcode": rc, "stdout": "", "stderr": stderr}


class FakeCtl:
    """cmd.run_all stand-in: answers rabbitmqctl by (target node, command)."""

    def __init__(self, answers):
        self.answers = answers  # {(node or None, "cmd"): result or callable}
        self.calls = []

    def __call__(self, cmd, **kwargs):
        self.calls.append((cmd, kwargs))
        node = cmd[cmd.index("-n") + 1] if "-n" in cmd else None
        rest = [c for c in cmd[1:] if c not in ("-n", node)]
        if "-t" in rest:
            i = rest.index("-t")
            del rest[i : i + 2]
        key = (node, rest[0])
        answer = self.answers.get(key, self.answers.get((None, rest[0]) if node is None else key))
        if answer is None:
            return fail(f"no fake answer for {key}")
        return answer(rest, kwargs) if callable(answer) else answer

    def commands(self):
        return [[c for c in cmd if c not in ("-t", "30", "120")] for cmd, _ in self.calls]


@pytest.fixture
def configure_loader_modules():
    return {mod: {"__salt__": {}, "__opts__": {"test": False}, "__utils__": utils_dunder("ah_secrets")}}


def use(fake):
    mod.__salt__["cmd.run_all"] = fake
    return fake


# --- names ------------------------------------------------------------------


def test_node_name_uses_the_short_host_name():
    assert mod.node_name("node1") == "rabbit@node1"
    assert mod.node_name("node2.example.org") == "rabbit@node2"


@pytest.mark.parametrize("bad", [None, "", 3])
def test_node_name_refuses_non_ids(bad):
    with pytest.raises(CommandExecutionError, match="expected a minion id"):
        mod.node_name(bad)


def test_cluster_nodes_sorted_from_members():
    members = [{"id": "node3", "address": "10.0.0.3"}, {"id": "node1", "address": "10.0.0.1"}]
    assert mod.cluster_nodes(members) == ["rabbit@node1", "rabbit@node3"]


@pytest.mark.parametrize("bad", [None, {"node1": {}}, [{"address": "10.0.0.1"}]])
def test_cluster_nodes_bad_input_names_the_fix(bad):
    with pytest.raises(CommandExecutionError, match="broker"):
        mod.cluster_nodes(bad)


# --- rabbitmqctl output -----------------------------------------------------


def test_cluster_status_parses_real_output_with_a_banner():
    text = "Cluster status of node rabbit@node1 ...\n" + json.dumps(REAL_STATUS)
    fake = use(FakeCtl({(None, "cluster_status"): ok(text)}))
    got = mod.cluster_status()
    assert got["members"] == NODES
    assert got["running"] == ["rabbit@node1", "rabbit@node3"]
    assert got["partitions"] == {}
    cmd, kwargs = fake.calls[0]
    assert cmd[-2:] == ["--formatter", "json"]
    assert kwargs["python_shell"] is False and kwargs["output_loglevel"] == "quiet"


def test_cluster_status_of_a_peer_uses_dash_n():
    fake = use(FakeCtl({("rabbit@node3", "cluster_status"): ok(json.dumps(status(NODES)))}))
    mod.cluster_status(node="rabbit@node3")
    assert fake.calls[0][0][1:3] == ["-n", "rabbit@node3"]


def test_cluster_status_failure_is_a_clear_error():
    use(
        FakeCtl(
            {(None, "cluster_status"): fail("Error: unable to perform an operation on node 'rabbit@node1'")}
        )
    )
    with pytest.raises(
        CommandExecutionError,
        match=r"rabbitmqctl cluster_status --formatter json failed \(exit 69\): .*rabbit@node1",
    ):
        mod.cluster_status()


def test_a_failure_on_a_peer_names_the_peer():
    use(FakeCtl({("rabbit@node2", "cluster_status"): fail("Error: unable to connect")}))
    with pytest.raises(
        CommandExecutionError, match=r"rabbitmqctl -n rabbit@node2 cluster_status .*\(exit 69\)"
    ):
        mod.cluster_status(node="rabbit@node2")


def test_garbage_output_is_a_clear_error():
    use(FakeCtl({(None, "list_users"): ok("Listing users ...\nnot json")}))
    with pytest.raises(CommandExecutionError, match="no JSON"):
        mod.list_users()


# --- passwords never in argv ------------------------------------------------


@pytest.mark.parametrize(
    ("func", "command"),
    [
        ("add_user", "add_user"),
        ("change_password", "change_password"),
        ("check_password", "authenticate_user"),
    ],
)
def test_passwords_go_through_stdin_only(func, command):
    fake = use(FakeCtl({(None, command): ok("Done.")}))
    assert getattr(mod, func)("airflow", SECRET) is True
    cmd, kwargs = fake.calls[0]
    # exactly COMMAND NAME: RabbitMQ 4's wrapper reads stdin only then
    assert cmd[1:] == [command, "airflow"]
    assert kwargs["timeout"] > 0
    assert not any(SECRET in part for part in cmd), "the password is in argv"
    assert kwargs["stdin"] == SECRET + "\n"
    assert kwargs["output_loglevel"] == "quiet"


def test_check_password_false_on_refusal():
    use(FakeCtl({(None, "authenticate_user"): fail("user 'airflow' - invalid credentials", rc=65)}))
    assert mod.check_password("airflow", SECRET) is False


def test_add_user_error_never_echoes_the_password():
    use(FakeCtl({(None, "add_user"): fail(f"Error: bad input {SECRET}", rc=65)}))
    with pytest.raises(CommandExecutionError) as exc:
        mod.add_user("airflow", SECRET)
    assert SECRET not in str(exc.value)
    assert "add_user airflow failed (exit 65)" in str(exc.value)


# --- cluster plan -----------------------------------------------------------


def defaults_only():
    return {
        (None, "list_users"): ok('[{"user":"guest","tags":["administrator"]}]'),
        (None, "list_vhosts"): ok('[{"name":"/"}]'),
        (None, "list_queues"): ok("[]"),
    }


def test_clustered_node_is_left_alone_even_when_peers_are_down():
    fake = use(FakeCtl({(None, "cluster_status"): ok(json.dumps(status(NODES, ["rabbit@node2"])))}))
    plan = mod.cluster_plan(NODES, node="rabbit@node2")
    assert plan["action"] == "ok"
    assert "clustered with rabbit@node1, rabbit@node3" in plan["reason"]
    assert [c[1] for c in fake.commands()] == ["cluster_status"], "asked more than cluster_status"


def test_standalone_with_no_peer_reachable_is_the_seed():
    use(FakeCtl({(None, "cluster_status"): ok(json.dumps(status(["rabbit@node1"])))}))
    plan = mod.cluster_plan(NODES, node="rabbit@node1")
    assert plan["action"] == "ok" and "seed" in plan["reason"]


def test_standalone_untouched_node_joins_the_running_cluster():
    answers = {
        (None, "cluster_status"): ok(json.dumps(status(["rabbit@node3"]))),
        ("rabbit@node1", "cluster_status"): ok(json.dumps(status(["rabbit@node1", "rabbit@node2"]))),
        ("rabbit@node2", "cluster_status"): ok(json.dumps(status(["rabbit@node1", "rabbit@node2"]))),
        **defaults_only(),
    }
    use(FakeCtl(answers))
    plan = mod.cluster_plan(NODES, node="rabbit@node3")
    assert plan["action"] == "join"
    assert plan["peer"] == "rabbit@node1"


def test_standalone_node_with_data_is_refused_not_reset():
    answers = {
        (None, "cluster_status"): ok(json.dumps(status(["rabbit@node3"]))),
        ("rabbit@node1", "cluster_status"): ok(json.dumps(status(["rabbit@node1", "rabbit@node2"]))),
        ("rabbit@node2", "cluster_status"): fail(),
        **defaults_only(),
        (None, "list_users"): ok('[{"user":"guest","tags":[]},{"user":"airflow","tags":[]}]'),
    }
    fake = use(FakeCtl(answers))
    plan = mod.cluster_plan(NODES, node="rabbit@node3")
    assert plan["action"] == "refuse"
    assert "not reset automatically" in plan["reason"]
    assert not any(c[1] in ("reset", "stop_app", "join_cluster") for c in fake.commands())


def test_standalone_node_with_queues_is_refused():
    answers = {
        (None, "cluster_status"): ok(json.dumps(status(["rabbit@node3"]))),
        ("rabbit@node1", "cluster_status"): ok(json.dumps(status(["rabbit@node1", "rabbit@node2"]))),
        ("rabbit@node2", "cluster_status"): fail(),
        **defaults_only(),
        (None, "list_queues"): ok('[{"name":"leftover"}]'),
    }
    use(FakeCtl(answers))
    assert mod.cluster_plan(NODES, node="rabbit@node3")["action"] == "refuse"


def listed_by_peers(running=("rabbit@node1", "rabbit@node2"), extra=()):
    answers = {
        (None, "cluster_status"): ok(json.dumps(status(["rabbit@node3"]))),
        **defaults_only(),
        **dict(extra),
    }
    for peer in ("rabbit@node1", "rabbit@node2"):
        answers[(peer, "cluster_status")] = (
            ok(json.dumps(status(NODES, list(running)))) if peer in running else fail()
        )
    return answers


def test_rebuilt_node_still_listed_by_its_peers_rejoins():
    fake = use(FakeCtl(listed_by_peers()))
    plan = mod.cluster_plan(NODES, node="rabbit@node3")
    assert plan["action"] == "rejoin" and plan["peer"] == "rabbit@node1"
    assert not any({"reset", "forget_cluster_node"} & set(c) for c in fake.commands())


def test_listed_node_holding_data_is_refused():
    use(FakeCtl(listed_by_peers(extra={(None, "list_queues"): ok('[{"name":"leftover"}]')})))
    plan = mod.cluster_plan(NODES, node="rabbit@node3")
    assert plan["action"] == "refuse"
    assert "forget_cluster_node rabbit@node3" in plan["reason"]


def test_listed_node_is_not_forgotten_without_a_majority():
    five = NODES + ["rabbit@node4", "rabbit@node5"]
    answers = {
        (None, "cluster_status"): ok(json.dumps(status(["rabbit@node3"]))),
        ("rabbit@node1", "cluster_status"): ok(json.dumps(status(five, ["rabbit@node1"]))),
        **defaults_only(),
    }
    use(FakeCtl(answers))
    plan = mod.cluster_plan(five, node="rabbit@node3")
    assert plan["action"] == "refuse" and "1 of 4 other broker nodes" in plan["reason"]


def test_forget_runs_on_the_peer():
    fake = use(FakeCtl({("rabbit@node1", "forget_cluster_node"): ok("")}))
    assert mod.forget("rabbit@node3", "rabbit@node1") is True
    assert any(c[1:4] == ["-n", "rabbit@node1", "forget_cluster_node"] for c in fake.commands())
    use(FakeCtl({("rabbit@node1", "forget_cluster_node"): fail("node rabbit@node3 is running", rc=69)}))
    with pytest.raises(CommandExecutionError, match="forget_cluster_node rabbit@node3 failed"):
        mod.forget("rabbit@node3", "rabbit@node1")


@pytest.mark.parametrize(("me", "action"), [("rabbit@node1", "ok"), ("rabbit@node2", "join")])
def test_two_standalone_nodes_agree_on_one_seed(me, action):
    other = "rabbit@node2" if me == "rabbit@node1" else "rabbit@node1"
    answers = {
        (None, "cluster_status"): ok(json.dumps(status([me]))),
        (other, "cluster_status"): ok(json.dumps(status([other]))),
        ("rabbit@node3", "cluster_status"): fail(),
        **defaults_only(),
    }
    use(FakeCtl(answers))
    plan = mod.cluster_plan(NODES, node=me)
    assert plan["action"] == action
    if action == "join":
        assert plan["peer"] == "rabbit@node1"


def test_stopped_peer_app_is_not_a_join_target():
    answers = {
        (None, "cluster_status"): ok(json.dumps(status(["rabbit@node3"]))),
        ("rabbit@node1", "cluster_status"): ok(json.dumps(status(["rabbit@node1"], running=[]))),
        ("rabbit@node2", "cluster_status"): fail(),
        **defaults_only(),
    }
    use(FakeCtl(answers))
    assert mod.cluster_plan(NODES, node="rabbit@node3")["action"] == "ok"


def test_single_broker_is_ok():
    use(FakeCtl({(None, "cluster_status"): ok(json.dumps(status(["rabbit@node1"])))}))
    assert mod.cluster_plan(["rabbit@node1"], node="rabbit@node1")["action"] == "ok"


def test_cluster_plan_needs_nodes():
    with pytest.raises(CommandExecutionError, match="non-empty list"):
        mod.cluster_plan([])


def test_join_runs_the_documented_sequence():
    after = status(NODES)
    fake = use(
        FakeCtl(
            {
                (None, "stop_app"): ok(),
                (None, "reset"): ok(),
                (None, "join_cluster"): ok(),
                (None, "start_app"): ok(),
                (None, "await_startup"): ok(),
                (None, "cluster_status"): ok(json.dumps(after)),
            }
        )
    )
    got = mod.join("rabbit@node1")
    assert got["members"] == NODES
    steps = [c[1:] for c in fake.commands()]
    assert steps[:4] == [["stop_app"], ["reset"], ["join_cluster", "rabbit@node1"], ["start_app"]]


def test_rebuilt_node_is_forgotten_after_its_app_stops():
    # RabbitMQ 4 refuses forget_cluster_node while the node's app runs
    after = {"running_nodes": NODES, "disk_nodes": NODES}
    fake = use(
        FakeCtl(
            {
                (None, "stop_app"): ok(),
                ("rabbit@node1", "forget_cluster_node"): ok(""),
                (None, "reset"): ok(),
                (None, "join_cluster"): ok(),
                (None, "start_app"): ok(),
                (None, "await_startup"): ok(),
                (None, "cluster_status"): ok(json.dumps(after)),
            }
        )
    )
    mod.join("rabbit@node1", forget_node="rabbit@node3")
    steps = [c[1:] for c in fake.commands()]
    assert steps[:5] == [
        ["stop_app"],
        ["-n", "rabbit@node1", "forget_cluster_node", "rabbit@node3"],
        ["reset"],
        ["join_cluster", "rabbit@node1"],
        ["start_app"],
    ]


def test_rebuilt_node_whose_peer_cannot_forget_it_starts_again():
    fake = use(
        FakeCtl(
            {
                (None, "stop_app"): ok(),
                ("rabbit@node1", "forget_cluster_node"): fail("Error: must be stopped", rc=69),
                (None, "start_app"): ok(),
            }
        )
    )
    with pytest.raises(CommandExecutionError, match="forget_cluster_node rabbit@node3 failed"):
        mod.join("rabbit@node1", forget_node="rabbit@node3")
    steps = [c[1:] for c in fake.commands()]
    assert ["reset"] not in steps and steps[-1] == ["start_app"]


def test_join_failure_restarts_the_app_and_raises():
    fake = use(
        FakeCtl(
            {
                (None, "stop_app"): ok(),
                (None, "reset"): ok(),
                (None, "join_cluster"): fail("Error: inconsistent_cluster", rc=70),
                (None, "start_app"): ok(),
            }
        )
    )
    with pytest.raises(CommandExecutionError, match="join_cluster rabbit@node1 failed"):
        mod.join("rabbit@node1")
    assert fake.commands()[-1][1:] == ["start_app"]


# --- quorum queue members -------------------------------------------------


def queues_answer(members_by_queue):
    rows = [{"name": n, "type": t, "members": m} for n, (t, m) in members_by_queue.items()]
    return ok("Listing queues for vhost airflow ...\n" + json.dumps(rows))


def test_quorum_queues_without_lists_only_quorum_queues_lacking_the_node():
    use(
        FakeCtl(
            {
                (None, "list_vhosts"): ok('[{"name":"airflow"}]'),
                (None, "list_queues"): queues_answer(
                    {
                        "default": ("quorum", ["rabbit@node1", "rabbit@node2"]),
                        "celery_delayed_0": ("quorum", NODES),
                        "celery@node1.celery.pidbox": ("classic", []),
                    }
                ),
            }
        )
    )
    assert mod.quorum_queues_without("rabbit@node3") == ["airflow/default"]


def test_fresh_members_skip_the_management_api():
    asked = []
    mod.__salt__["airflow_ha_rabbitmq_api.quorum_queues_without"] = lambda node: asked.append(node) or []
    use(
        FakeCtl(
            {
                (None, "list_vhosts"): ok('[{"name":"airflow"}]'),
                (None, "list_queues"): queues_answer(
                    {"default": ("quorum", ["rabbit@node1", "rabbit@node2"])}
                ),
            }
        )
    )
    assert mod.quorum_queues_without("rabbit@node3") == []  # the API's (stale) answer
    assert mod.quorum_queues_without("rabbit@node3", fresh=True) == ["airflow/default"]
    assert asked == ["rabbit@node3"]


def test_grow_retries_until_every_queue_has_the_member(monkeypatch):
    slept = []
    monkeypatch.setattr(mod.time, "sleep", slept.append)
    answers = iter(
        [
            queues_answer({"default": ("quorum", ["rabbit@node1", "rabbit@node2"])}),
            queues_answer({"default": ("quorum", ["rabbit@node1", "rabbit@node2"])}),
            queues_answer({"default": ("quorum", NODES)}),
        ]
    )
    fake = use(
        FakeCtl(
            {
                (None, "list_vhosts"): ok('[{"name":"airflow"}]'),
                (None, "list_queues"): lambda rest, kw: next(answers),
                (None, "grow"): ok("airflow\tdefault\t3\tok"),
            }
        )
    )
    assert mod.grow_quorum_queues("rabbit@node3") == []
    grows = [c for c in fake.commands() if c[0] == "rabbitmq-queues"]
    assert grows == [["rabbitmq-queues", "grow", "rabbit@node3", "all"]] * 2  # -t 120 filtered
    assert len(slept) == 1


def test_grow_gives_up_and_reports_what_is_left(monkeypatch):
    monkeypatch.setattr(mod.time, "sleep", lambda s: None)
    use(
        FakeCtl(
            {
                (None, "list_vhosts"): ok('[{"name":"airflow"}]'),
                (None, "list_queues"): queues_answer({"default": ("quorum", ["rabbit@node1"])}),
                (None, "grow"): fail("Error: node rabbit@node3 not running", rc=69),
            }
        )
    )
    assert mod.grow_quorum_queues("rabbit@node3", attempts=3) == ["airflow/default"]


# --- scale-in: members that left the pillar -----------------------------------------

FIVE = NODES + ["rabbit@node4", "rabbit@node5"]


@pytest.mark.parametrize(
    ("running", "action", "words"),
    [
        (NODES, "forget", "rabbit@node4, rabbit@node5 left"),
        (
            NODES + ["rabbit@node5"],
            "refuse",
            "rabbit@node5 left airflow_ha:nodes (role broker) but still runs",
        ),
        (["rabbit@node1"], "refuse", "only 1 of the 3 broker nodes run"),
    ],
)
def test_departed_plan(running, action, words):
    fake = use(FakeCtl({(None, "cluster_status"): ok(json.dumps(status(FIVE, running)))}))
    plan = mod.departed_plan(NODES)
    assert plan["action"] == action and words in plan["reason"], plan
    assert plan["departed"] == ["rabbit@node4", "rabbit@node5"]
    assert not any("forget_cluster_node" in c for c in fake.commands()), "a plan changes nothing"


def test_departed_plan_nothing_to_do():
    use(FakeCtl({(None, "cluster_status"): ok(json.dumps(status(NODES)))}))
    assert mod.departed_plan(NODES)["action"] == "ok"
    with pytest.raises(CommandExecutionError, match="non-empty list"):
        mod.departed_plan("rabbit@node1")
