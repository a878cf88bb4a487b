"""Unit tests of _states/csync2.py (csync2.synced): read -> compare -> test -> act."""

import pytest
from salt.exceptions import CommandExecutionError
from testlib import load_module

PUSH = {"node1": ["/var/lib/airflow/dags/a.py"], "node3": ["/var/lib/airflow/dags/a.py"]}


class Module:
    """csync2 execution module stand-in with scripted returns; an exception
    in the script is raised (the module's contract: errors raise)."""

    def __init__(self, previews, syncs=(), tests=()):
        self.previews, self.syncs, self.tests = list(previews), list(syncs), list(tests)
        self.calls = []

    @staticmethod
    def _answer(item):
        if isinstance(item, Exception):
            raise item
        return item

    def sync(self, paths=None, peers=None, dry_run=False):
        self.calls.append(("sync", dry_run))
        return self._answer((self.previews if dry_run else self.syncs).pop(0))

    def in_sync(self, check=True):
        self.calls.append(("in_sync", check))
        return self._answer(self.tests.pop(0))


@pytest.fixture
def state():
    return load_module("csync2", "states")


@pytest.fixture
def opts():
    return {"test": False}


@pytest.fixture
def mod():
    return {"m": None}


@pytest.fixture
def configure_loader_modules(state, opts, mod):
    return {
        state: {
            "__opts__": opts,
            "__pillar__": {},
            "__salt__": {
                "csync2.sync": lambda **kw: mod["m"].sync(**kw),
                "csync2.in_sync": lambda **kw: mod["m"].in_sync(**kw),
            },
        }
    }


def test_in_sync_no_changes(state, mod):
    mod["m"] = Module([{"pushed": {}, "deleted": {}}], tests=[{"in_sync": True}])
    ret = state.synced("x")
    assert ret["result"] is True and ret["changes"] == {}
    assert ("sync", False) not in mod["m"].calls


def test_test_mode_tells_what_would_be_pushed(state, mod, opts):
    opts["test"] = True
    mod["m"] = Module([{"pushed": PUSH, "deleted": {}}])
    ret = state.synced("x")
    assert ret["result"] is None
    assert ret["changes"] == {"pushed": PUSH}
    assert "would push 2 change(s)" in ret["comment"] and "node3" in ret["comment"]
    assert mod["m"].calls == [("sync", True)]


def test_push_then_in_sync(state, mod):
    mod["m"] = Module(
        [{"pushed": PUSH, "deleted": {}}],
        syncs=[{"pushed": PUSH, "deleted": {}, "comment": "2 pushed"}],
        tests=[{"in_sync": True}],
    )
    ret = state.synced("x")
    assert ret["result"] is True and ret["changes"] == {"pushed": PUSH}
    assert mod["m"].calls == [("sync", True), ("sync", False), ("in_sync", False)]


def test_push_failure(state, mod):
    mod["m"] = Module(
        [{"pushed": PUSH, "deleted": {}}],
        syncs=[
            CommandExecutionError(
                "node3: connection failed", info={"pushed": {"node1": PUSH["node1"]}, "comment": "x"}
            )
        ],
    )
    ret = state.synced("x")
    assert ret["result"] is False and "node3: connection failed" in ret["comment"]
    assert ret["changes"] == {"pushed": {"node1": PUSH["node1"]}}


def test_unreachable_in_preview_fails_without_changes(state, mod, opts):
    opts["test"] = True
    mod["m"] = Module([CommandExecutionError("node3: connection failed", info={"pushed": PUSH})])
    ret = state.synced("x")
    assert ret["result"] is False and ret["changes"] == {}


def test_difference_only_a_peer_can_fix(state, mod):
    diff = {"node2": [{"path": "/var/lib/airflow/dags/b.py", "state": "only_on_peer"}]}
    mod["m"] = Module(
        [{"pushed": {}, "deleted": {}}],
        tests=[{"in_sync": False, "differences": diff}],
    )
    ret = state.synced("x")
    assert (
        ret["result"] is False and "b.py" in ret["comment"] and "apply csync2.synced there" in ret["comment"]
    )


def test_test_mode_and_real_run_report_the_same_changes(state, mod, opts):
    opts["test"] = True
    mod["m"] = Module([{"pushed": PUSH, "deleted": {}}])
    dry = state.synced("x")
    opts["test"] = False
    mod["m"] = Module(
        [{"pushed": PUSH, "deleted": {}}],
        syncs=[{"pushed": PUSH, "deleted": {}, "comment": "2 pushed"}],
        tests=[{"in_sync": True}],
    )
    assert dry["changes"] == state.synced("x")["changes"] == {"pushed": PUSH}


def test_still_not_in_sync_after_the_push_fails(state, mod):
    diff = {"node2": [{"path": "/d/b.py", "state": "differs"}]}
    mod["m"] = Module(
        [{"pushed": PUSH, "deleted": {}}],
        syncs=[{"pushed": PUSH, "deleted": {}, "comment": "2 pushed"}],
        tests=[CommandExecutionError("csync2 -T failed: node2: connection failed")],
    )
    ret = state.synced("x")
    assert ret["result"] is False and "in-sync test failed" in ret["comment"]
    assert ret["changes"] == {"pushed": PUSH}
    mod["m"] = Module(
        [{"pushed": PUSH, "deleted": {}}],
        syncs=[{"pushed": PUSH, "deleted": {}, "comment": "2 pushed"}],
        tests=[{"in_sync": False, "differences": diff}],
    )
    ret = state.synced("x")
    assert ret["result"] is False and "still not in sync" in ret["comment"] and "b.py" in ret["comment"]


def test_virtual(state):
    state.__salt__ = {}
    ok, why = state.__virtual__()
    assert ok is False and "not loaded" in why


# --- pins_current -------------------------------------------------------------

CERTS = {"node1": {"cert": "PEM1", "key": "K1"}, "node2": {"cert": "PEM2", "key": "K2"}}


def use_pins(state, answers, pillar=CERTS):
    """stale_pins answers in turn; forget_peer_cert records its peers."""
    forgotten, seen = [], []

    def stale(certs):
        seen.append(certs)
        return answers.pop(0)

    state.__pillar__ = {"airflow_ha": {"csync2": {"certs": pillar}}}
    state.__salt__.update(
        {
            "csync2.stale_pins": stale,
            "csync2.forget_peer_cert": forgotten.append,
        }
    )
    return forgotten, seen


def test_pins_current_nothing_stale(state):
    forgotten, seen = use_pins(state, [[]])
    ret = state.pins_current("x")
    assert ret["result"] is True and ret["changes"] == {} and not forgotten
    assert seen == [{"node1": "PEM1", "node2": "PEM2"}], "the keys must never leave the state"


def test_pins_current_test_mode_then_real_run(state, opts):
    opts["test"] = True
    forgotten, _ = use_pins(state, [["node2"]])
    ret = state.pins_current("x")
    assert ret["result"] is None and ret["changes"] == {"forgotten": ["node2"]} and not forgotten
    opts["test"] = False
    forgotten, _ = use_pins(state, [["node2"], []])
    ret = state.pins_current("x")
    assert ret["result"] is True and ret["changes"] == {"forgotten": ["node2"]}
    assert forgotten == ["node2"]


def test_pins_current_still_stale_fails(state):
    use_pins(state, [["node2"], ["node2"]])
    ret = state.pins_current("x")
    assert ret["result"] is False and "still differ" in ret["comment"]


def test_pins_current_unreadable_db_fails(state):
    def boom(certs):
        raise CommandExecutionError("cannot read /var/lib/csync2/node1.db3: database is locked (try again)")

    use_pins(state, [])
    state.__salt__["csync2.stale_pins"] = boom
    ret = state.pins_current("x")
    assert ret["result"] is False and "database is locked" in ret["comment"]


# --- caught_up: a new or rebuilt node waits for its peers' pushes ---------
DAG = "/var/lib/airflow/dags/etl.py"


class Peers:
    """csync2.status / csync2.in_sync stand-ins: ``rounds`` is a list of
    {peer: [(path, state)] or an exception}, one entry per comparison round."""

    def __init__(self, reachable, rounds):
        self.reachable, self.rounds, self.calls = reachable, list(rounds), []
        self.now = None

    def status(self):
        self.now = self.rounds.pop(0) if self.rounds else {}
        return {"peers": {p: {"reachable": ok} for p, ok in self.reachable.items()}}

    def in_sync(self, peer=None, check=True):
        self.calls.append((peer, check))
        answer = self.now.get(peer, [])
        if isinstance(answer, Exception):
            raise answer
        return {"differences": {peer: [{"path": p, "state": s} for p, s in answer]} if answer else {}}


@pytest.fixture
def peers(state, monkeypatch):
    def use(reachable, rounds):
        fake = Peers(reachable, rounds)
        state.__salt__["csync2.status"] = fake.status
        state.__salt__["csync2.in_sync"] = lambda **kw: fake.in_sync(**kw)
        monkeypatch.setattr(state.time, "sleep", lambda s: fake.calls.append(("sleep", s)))
        return fake

    return use


def test_caught_up_at_once_no_wait(state, peers):
    fake = peers({"node1": True, "node2": True}, [{"node1": [("/x/only_mine.py", "only_here")]}])
    ret = state.caught_up("dags")
    assert ret["result"] is True and ret["changes"] == {}
    assert "node1, node2" in ret["comment"] and "waited" not in ret["comment"]
    assert fake.calls == [("node1", True), ("node2", False)], "one csync2 -cr, then one -T per peer"


def test_caught_up_waits_for_the_pushes_then_passes(state, peers):
    fake = peers(
        {"node1": True, "node2": True},
        [{"node1": [(DAG, "only_on_peer")]}, {"node2": [(DAG, "differs")]}, {}],
    )
    ret = state.caught_up("dags", timeout=60, interval=2)
    assert ret["result"] is True and ret["changes"] == {}
    assert "waited" in ret["comment"]
    assert [c for c in fake.calls if c[0] == "sleep"] == [("sleep", 2.0), ("sleep", 2.0)]


def test_caught_up_leaves_out_a_dead_peer(state, peers):
    fake = peers({"node1": False, "node2": True}, [{}])
    ret = state.caught_up("dags")
    assert ret["result"] is True and fake.calls == [("node2", True)]


def test_caught_up_no_peer_reachable_nothing_to_wait_for(state, peers):
    peers({"node1": False, "node2": False}, [])
    ret = state.caught_up("dags")
    assert ret["result"] is True and "nothing to catch up from" in ret["comment"]


def test_caught_up_test_mode_compares_once_and_says_what_it_waits_for(state, peers, opts):
    opts["test"] = True
    fake = peers({"node1": True}, [{"node1": [(DAG, "only_on_peer")]}])
    ret = state.caught_up("dags", timeout=120)
    assert ret["result"] is None and ret["changes"] == {}
    assert DAG in ret["comment"] and "120 s" in ret["comment"]
    assert not [c for c in fake.calls if c[0] == "sleep"]


def test_caught_up_times_out_naming_the_files_and_peer(state, peers, monkeypatch):
    clock = iter([0.0, 0.0, 10.0, 20.0, 31.0, 40.0])
    monkeypatch.setattr(state.time, "monotonic", lambda: next(clock))
    peers({"node1": True}, [{"node1": [(DAG, "only_on_peer")]}] * 5)
    ret = state.caught_up("dags", timeout=30, interval=10)
    assert ret["result"] is False and ret["changes"] == {}
    assert "after 30 s" in ret["comment"] and f"node1: {DAG}" in ret["comment"]
    assert "csync2.status" in ret["comment"], "the comment says where to look"


def test_caught_up_peer_not_knowing_this_node_yet_is_waited_for(state, peers):
    refused = CommandExecutionError("csync2 -T failed: node1: Identification failed")
    peers({"node1": True}, [{"node1": refused}, {}])
    ret = state.caught_up("dags", timeout=60, interval=1)
    assert ret["result"] is True and "waited" in ret["comment"]


def test_caught_up_refusal_until_the_timeout_fails_with_the_cause(state, peers, monkeypatch):
    clock = iter([0.0, 5.0, 11.0])
    monkeypatch.setattr(state.time, "monotonic", lambda: next(clock))
    refused = CommandExecutionError("csync2 -T failed: node1: Identification failed")
    peers({"node1": True}, [{"node1": refused}] * 3)
    ret = state.caught_up("dags", timeout=10, interval=5)
    assert ret["result"] is False and "Identification failed" in ret["comment"]


def test_caught_up_bad_timeout_is_refused(state, peers):
    peers({"node1": True}, [])
    ret = state.caught_up("dags", timeout="soon")
    assert ret["result"] is False and "timeout" in ret["comment"]
