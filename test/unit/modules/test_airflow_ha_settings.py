"""_modules/airflow_ha.py over the real _utils (ah_settings, ah_validate, ah_schema):
layering, derived values, the settings cache and the pillar validator's rules."""

import copy
import pathlib

import pytest
import salt.utils.yaml
from salt.exceptions import CommandExecutionError
from testlib import ROOT, airflow_ha_dunders, load_module

airflow_ha = load_module("airflow_ha")
airflow_ha_state = load_module("airflow_ha", "states")
ah_settings = load_module("ah_settings", "utils")

PARAMS = ROOT / "airflow_ha" / "parameters"
DEFAULTS = salt.utils.yaml.safe_load(pathlib.Path(PARAMS / "defaults.yaml").read_text())
OS_LAYERS = salt.utils.yaml.safe_load(pathlib.Path(PARAMS / "os.yaml").read_text())
EXAMPLE = salt.utils.yaml.safe_load((ROOT / "pillar.example").read_text())["airflow_ha"]
GRAINS = {"os_family": "Debian", "osfinger": "Debian-12", "virtual": "physical"}


@pytest.fixture
def configure_loader_modules():
    return {
        airflow_ha: airflow_ha_dunders(copy.deepcopy(EXAMPLE)),
        airflow_ha_state: {
            "__opts__": {"test": False},
            "__salt__": {"airflow_ha.format_errors": airflow_ha.format_errors},
        },
    }


def settings(pillar, minion_id="node1"):
    return airflow_ha.settings(DEFAULTS, OS_LAYERS, pillar, minion_id, reveal=True)


def example(**changes):
    """pillar.example with ``changes`` applied: {"a:b:c": value}; value None deletes."""
    data = copy.deepcopy(EXAMPLE)
    for path, value in changes.items():
        _merge_change(data, path, value)
    return data


def test_pillar_example_is_valid_for_every_node():
    for node in ("node1", "node2", "node3"):
        ah = settings(example(), node)
        assert ah["errors"] == []
        assert ah["minion_id"] == node


def test_derived_values():
    ah = settings(example())
    assert ah["address"] == "10.77.0.11"
    assert ah["roles"] == DEFAULTS["all_roles"]
    assert [m["id"] for m in ah["members"]["db"]] == ["node1", "node2", "node3"]
    assert ah["network"]["cidr"] == "10.77.0.0/24"
    assert ah["airflow"]["major"] == 3
    assert ah["airflow"]["dags_folder"] == "/var/lib/airflow/dags"
    assert ah["postgresql"]["version"] == 15


def test_connection_urls_quote_secrets_and_list_every_broker():
    pillar = example(
        secrets__airflow_db_password="p@ss/word:with%chars", secrets__rabbitmq_password="r@bbit/pw;xyz"
    )
    ah = settings(pillar)
    assert ah["errors"] == []
    assert ah["airflow"]["sql_alchemy_conn"] == (
        "postgresql+psycopg2://airflow:p%40ss%2Fword%3Awith%25chars@127.0.0.1:5000/airflow?connect_timeout=10"
    )
    assert ah["airflow"]["result_backend"].endswith("@127.0.0.1:5000/airflow?connect_timeout=10")
    urls = ah["airflow"]["broker_url"].split(";")
    assert [u.split("@")[1] for u in urls] == [f"node{i}:5672/airflow" for i in (1, 2, 3)]
    assert all(u.startswith("amqp://airflow:r%40bbit%2Fpw%3Bxyz@") for u in urls)


def test_broker_url_local_and_pgbouncer():
    ah = settings(example(rabbitmq__broker_url_nodes="local", pgbouncer__enabled=True), "node2")
    assert ah["airflow"]["broker_url"].count("amqp://") == 1
    assert "@node2:5672/" in ah["airflow"]["broker_url"]
    assert "@127.0.0.1:6432/" in ah["airflow"]["sql_alchemy_conn"]


def test_layers_order_lookup_then_pillar_wins():
    grains = dict(GRAINS, osfinger="Ubuntu-24.04")
    airflow_ha.__grains__.update(grains)
    ah = settings(example())
    assert ah["postgresql"]["version"] == 16  # osfinger layer over defaults
    ah = settings(example(lookup={"postgresql": {"version": 17, "port": 5433}}))
    assert ah["postgresql"]["version"] == 17  # lookup over the OS layer
    ah = settings(example(postgresql__version=14, lookup={"postgresql": {"version": 17}}))
    assert ah["postgresql"]["version"] == 14  # pillar beats lookup (template-formula's order)
    assert ah["postgresql"]["port"] == 5432  # merge keeps siblings
    ah = settings(example(postgresql__port=None, lookup={"postgresql": {"port": 5433}}))
    assert ah["postgresql"]["port"] == 5433  # lookup fills what pillar leaves unset


def test_roles_default_to_all_and_explicit_roles_are_kept():
    nodes = copy.deepcopy(EXAMPLE["nodes"])
    nodes["node3"]["roles"] = ["db", "broker", "worker"]
    ah = settings(example(nodes=nodes), "node3")
    assert ah["roles"] == ["db", "broker", "worker"]
    assert [m["id"] for m in ah["members"]["worker"]] == ["node1", "node2", "node3"]
    assert [m["id"] for m in ah["members"]["scheduler"]] == ["node1", "node2"]


def test_single_node_allowed_with_flag():
    pillar = example(single_node=True, nodes={"node1": {"address": "10.77.0.11"}})
    assert settings(pillar)["errors"] == []


def test_container_detection_turns_time_sync_off():
    airflow_ha.__grains__.update({"virtual": "container", "virtual_subtype": "systemd-nspawn"})
    assert settings(example())["time_sync"]["managed"] is False
    airflow_ha.__grains__.update({"virtual": "kvm", "virtual_subtype": ""})
    assert settings(example())["time_sync"]["managed"] is True


def _nodes(*addresses, roles=None):
    out = {}
    for i, address in enumerate(addresses, 1):
        out[f"node{i}"] = {"address": address}
        if roles is not None:
            out[f"node{i}"]["roles"] = roles
    return out


FOUR = _nodes("10.77.0.11", "10.77.0.12", "10.77.0.13", "10.77.0.14")
NO_DB = {
    **_nodes("10.77.0.11", "10.77.0.12", "10.77.0.13"),
    "node4": {"address": "10.77.0.14", "roles": ["worker"]},
}
TWO_DB = {
    "node1": {"address": "10.77.0.11"},
    "node2": {"address": "10.77.0.12"},
    "node3": {"address": "10.77.0.13", "roles": ["worker"]},
}

# (case id, pillar changes, minion id, expected key path in the message, a word of the fix)
BAD = [
    ("no-nodes", {"nodes": {}}, "node1", "airflow_ha:nodes:", "list every cluster node"),
    ("nodes-not-dict", {"nodes": ["node1"]}, "node1", "airflow_ha:nodes:", "expected a mapping"),
    ("two-db", {"nodes": TWO_DB}, "node1", "airflow_ha:nodes:", "2 nodes have role 'db'"),
    ("four-db", {"nodes": FOUR}, "node1", "airflow_ha:nodes:", "4 nodes have role 'db'"),
    (
        "duplicate-address",
        {"nodes": _nodes("10.77.0.11", "10.77.0.11", "10.77.0.13")},
        "node1",
        "airflow_ha:nodes:node2:address",
        "its own address",
    ),
    (
        "malformed-address",
        {"nodes": _nodes("10.77.0.11", "10.77.0.312", "10.77.0.13")},
        "node1",
        "airflow_ha:nodes:node2:address",
        "not an IPv4 address",
    ),
    (
        "loopback-address",
        {"nodes": _nodes("127.0.0.1", "10.77.0.12", "10.77.0.13")},
        "node1",
        "airflow_ha:nodes:node1:address",
        "other nodes reach",
    ),
    (
        "addresses-in-two-subnets",
        {"nodes": _nodes("10.77.0.11", "10.77.1.12", "10.77.0.13")},
        "node1",
        "airflow_ha:nodes:",
        "not in one /24 subnet",
    ),
    ("minion-not-listed", {}, "node9", "airflow_ha:nodes:", "this minion (node9) is not listed"),
    (
        "unknown-role",
        {
            "nodes": _nodes(
                "10.77.0.11",
                "10.77.0.12",
                "10.77.0.13",
                roles=[
                    "db",
                    "broker",
                    "scheduler",
                    "api",
                    "worker",
                    "triggerer",
                    "dag_processor",
                    "webserver",
                ],
            )
        },
        "node1",
        "airflow_ha:nodes:node1:roles",
        "unknown role 'webserver'",
    ),
    (
        "no-scheduler",
        {
            "nodes": _nodes(
                "10.77.0.11",
                "10.77.0.12",
                "10.77.0.13",
                roles=["db", "broker", "api", "worker", "triggerer", "dag_processor"],
            )
        },
        "node1",
        "airflow_ha:nodes:",
        "no node has role 'scheduler'",
    ),
    (
        "no-broker",
        {
            "nodes": _nodes(
                "10.77.0.11",
                "10.77.0.12",
                "10.77.0.13",
                roles=["db", "scheduler", "api", "worker", "triggerer", "dag_processor"],
            )
        },
        "node1",
        "airflow_ha:nodes:",
        "no node has role 'broker'",
    ),
    (
        "roles-not-list",
        {"nodes": {**_nodes("10.77.0.11", "10.77.0.12"), "node3": {"address": "10.77.0.13", "roles": "db"}}},
        "node1",
        "airflow_ha:nodes:node3:roles",
        "expected a list",
    ),
    (
        "bad-hostname",
        {"nodes": {**_nodes("10.77.0.11", "10.77.0.12"), "Node_3": {"address": "10.77.0.13"}}},
        "node1",
        "airflow_ha:nodes:Node_3",
        "host name",
    ),
    ("single-node-with-three", {"single_node": True}, "node1", "airflow_ha:single_node", "exactly one node"),
    (
        "one-node-without-flag",
        {"nodes": {"node1": {"address": "10.77.0.11"}}},
        "node1",
        "airflow_ha:nodes:",
        "single_node: true",
    ),
    (
        "missing-replication-password",
        {"secrets__postgres_replication_password": None},
        "node1",
        "airflow_ha:secrets:postgres_replication_password",
        "missing",
    ),
    (
        "missing-broker-password",
        {"secrets__rabbitmq_password": None},
        "node1",
        "airflow_ha:secrets:rabbitmq_password",
        "missing",
    ),
    ("short-jwt", {"secrets__jwt_secret": "x" * 63}, "node1", "airflow_ha:secrets:jwt_secret", "at least 64"),
    (
        "bad-fernet",
        {"secrets__fernet_key": "not-a-fernet-key"},
        "node1",
        "airflow_ha:secrets:fernet_key",
        "Fernet key",
    ),
    (
        "fernet-wrong-length",
        {"secrets__fernet_key": "QUJDREVGR0g="},
        "node1",
        "airflow_ha:secrets:fernet_key",
        "32 bytes",
    ),
    (
        "cookie-bad-chars",
        {"secrets__erlang_cookie": "bad cookie!with spaces and more"},
        "node1",
        "airflow_ha:secrets:erlang_cookie",
        "whitespace",
    ),
    (
        "cookie-punctuation",
        {"secrets__erlang_cookie": "abcdefghij-klmnopqrstuv"},
        "node1",
        "airflow_ha:secrets:erlang_cookie",
        "letters and digits",
    ),
    (
        "cookie-erlang-generated-shape",
        {"secrets__erlang_cookie": "ABCDEFGHIJKLMNOPQRST"},
        "node1",
        "airflow_ha:secrets:erlang_cookie",
        "postinst replaces",
    ),
    ("short-psk", {"secrets__csync2_psk": "abc"}, "node1", "airflow_ha:secrets:csync2_psk", "too short"),
    (
        "secret-not-string",
        {"secrets__admin_password": 12345678},
        "node1",
        "airflow_ha:secrets:admin_password",
        "must be a string",
    ),
    (
        "admin-password-with-comma",
        {"secrets__admin_password": "abc,defgh123"},
        "node1",
        "airflow_ha:secrets:admin_password",
        "Flower",
    ),
    (
        "admin-username-with-colon",
        {"airflow__admin__username": "ad:min"},
        "node1",
        "airflow_ha:airflow:admin:username",
        "Flower",
    ),
    (
        "unknown-secret",
        {"secrets__jwt_secert": "x" * 64},
        "node1",
        "airflow_ha:secrets:jwt_secert",
        "unknown secret",
    ),
    (
        "unsupported-airflow",
        {"airflow__version": "2.9.3"},
        "node1",
        "airflow_ha:airflow:version",
        "not supported",
    ),
    ("airflow-version-float", {"airflow__version": 3.3}, "node1", "airflow_ha:airflow:version", "quote it"),
    (
        "vip-outside-subnet",
        {"vip__enabled": True, "vip__address": "10.78.0.10", "secrets__keepalived_password": "abcd1234"},
        "node1",
        "airflow_ha:vip:address",
        "outside the nodes' subnet",
    ),
    (
        "vip-is-node-address",
        {"vip__enabled": True, "vip__address": "10.77.0.12", "secrets__keepalived_password": "abcd1234"},
        "node1",
        "airflow_ha:vip:address",
        "node node2's address",
    ),
    (
        "vip-password-too-long",
        {"vip__enabled": True, "secrets__keepalived_password": "123456789"},
        "node1",
        "airflow_ha:secrets:keepalived_password",
        "at most 8",
    ),
    (
        "vip-without-password",
        {"vip__enabled": True, "secrets__keepalived_password": None},
        "node1",
        "airflow_ha:secrets:keepalived_password",
        "missing",
    ),
    (
        "port-collision",
        {"haproxy__stats_port": 5432},
        "node1",
        "airflow_ha:haproxy:stats_port",
        "already used by PostgreSQL",
    ),
    (
        "port-log-server",
        {"airflow__flower_port": 8793},
        "node1",
        "airflow_ha:airflow:flower_port",
        "worker log server",
    ),
    ("port-out-of-range", {"rabbitmq__port": 70000}, "node1", "airflow_ha:rabbitmq:port", "not a TCP port"),
    ("component-not-dict", {"postgresql": "fast"}, "node1", "airflow_ha:postgresql", "expected a mapping"),
    ("pillar-not-dict", "just a string", "node1", "airflow_ha:", "expected a mapping"),
    ("unknown-top-level-key", {"rabitmq": {"port": 5672}}, "node1", "airflow_ha:rabitmq", "unknown key"),
    ("bad-csync2-policy", {"csync2__auto": "newest"}, "node1", "airflow_ha:csync2:auto", "younger"),
    (
        "csync2-policy-first",
        {"csync2__auto": "first"},
        "node1",
        "airflow_ha:csync2:auto",
        "not a csync2 policy",
    ),
    (
        "watcher-max-delay-below-debounce",
        {"csync2__watcher__max_delay_ms": 100},
        "node1",
        "airflow_ha:csync2:watcher:max_delay_ms",
        "at least debounce_ms",
    ),
    (
        "watcher-enabled-string",
        {"csync2__watcher__enabled": "yes"},
        "node1",
        "airflow_ha:csync2:watcher:enabled",
        "true or false",
    ),
    (
        "version-without-constraints",
        {"airflow__version": "3.3.1"},
        "node1",
        "airflow_ha:airflow:version",
        "no constraints file is shipped for 3.3.1",
    ),
    (
        "constraints-url-bad",
        {"airflow__constraints_url": "constraints.txt"},
        "node1",
        "airflow_ha:airflow:constraints_url",
        "http(s)",
    ),
    (
        "dag-refresh-zero",
        {"airflow__dag_refresh_interval": 0},
        "node1",
        "airflow_ha:airflow:dag_refresh_interval",
        "positive integer",
    ),
    (
        "bad-ttl",
        {
            "postgresql__patroni__ttl": 12,
            "postgresql__patroni__loop_wait": 5,
            "postgresql__patroni__retry_timeout": 5,
        },
        "node1",
        "airflow_ha:postgresql:patroni:ttl",
        "loop_wait + 2 * retry_timeout",
    ),
    (
        "heartbeat-timeout-below-failover",
        {"airflow__recovery__heartbeat_timeout": 25},
        "node1",
        "airflow_ha:airflow:recovery:heartbeat_timeout",
        "shorter than a database failover can last (postgresql:patroni:ttl + 10 = 30 s)",
    ),
    (
        "api-retry-window-below-failover",
        {"airflow__recovery__api_retry_window": 20},
        "node1",
        "airflow_ha:airflow:recovery:api_retry_window",
        "a task starting or ending on a live node during a failover would fail — set at least 30",
    ),
    (
        "worker-concurrency-zero",
        {"airflow__worker_concurrency": 0},
        "node1",
        "airflow_ha:airflow:worker_concurrency",
        "positive integer",
    ),
    (
        "airflow-config-flat",
        {"airflow__config": {"load_examples": "False"}},
        "node1",
        "airflow_ha:airflow:config",
        "section",
    ),
    ("apt-proxy-not-url", {"proxy__apt": "10.0.0.1:3142"}, "node1", "airflow_ha:proxy:apt", "http(s) URL"),
    (
        "no-index-without-find-links",
        {"proxy__pip__no_index": True},
        "node1",
        "airflow_ha:proxy:pip:no_index",
        "find_links",
    ),
    ("bad-cluster-name", {"cluster_name": "Airflow HA"}, "node1", "airflow_ha:cluster_name", "lowercase"),
    ("bad-time-sync", {"time_sync__daemon": "ntpd"}, "node1", "airflow_ha:time_sync:daemon", "chrony"),
    ("relative-home", {"airflow__home": "airflow"}, "node1", "airflow_ha:airflow:home", "absolute path"),
]


def _apply(changes):
    return example(**changes) if isinstance(changes, dict) else changes


def _merge_change(data, path, value):
    node = data
    *parents, last = path.split("__")
    for part in parents:
        node = node.setdefault(part, {})
    if value is None:
        node.pop(last, None)
    else:
        node[last] = value
    return data


@pytest.mark.parametrize(("changes", "minion", "key", "fix"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_pillar_is_refused_naming_the_key(changes, minion, key, fix):
    ah = settings(_apply(changes), minion)
    assert ah["errors"], "the validator accepted a bad pillar"
    matching = [e for e in ah["errors"] if e.startswith(key) and fix in e]
    assert matching, f"no error for {key} mentioning {fix!r}: {ah['errors']}"


def test_at_least_twenty_distinct_bad_inputs():
    assert len({c[0] for c in BAD}) >= 20


def test_every_problem_is_listed_at_once():
    pillar = example(secrets__jwt_secret="short", airflow__version="1.10.15", nodes=TWO_DB)
    errors = settings(pillar)["errors"]
    assert any(e.startswith("airflow_ha:secrets:jwt_secret") for e in errors)
    assert any(e.startswith("airflow_ha:airflow:version") for e in errors)
    assert any("role 'db'" in e for e in errors)


def test_secret_values_never_appear_in_errors():
    secret = "tooshort-but-secret"
    pillar = example(secrets__jwt_secret=secret, secrets__erlang_cookie="cookie with space secret")
    pillar["secrets"]["fernet_key"] = "fernet-secret-value"
    errors = "\n".join(settings(pillar)["errors"])
    for value in (secret, "cookie with space secret", "fernet-secret-value"):
        assert value not in errors
    errors = "\n".join(settings(example(secrets="plain-secret-string"))["errors"])
    assert "plain-secret-string" not in errors


def test_validate_cli_raises_with_the_list_and_reads_pillar():
    airflow_ha.__salt__["cp.get_file_str"] = lambda url: (PARAMS / url.rsplit("/", 1)[1]).read_text()
    assert airflow_ha.validate() is True
    airflow_ha.__pillar__["airflow_ha"]["secrets"].pop("admin_password")
    with pytest.raises(CommandExecutionError) as exc:
        airflow_ha.validate()
    assert "airflow_ha:secrets:admin_password: missing" in str(exc.value)
    assert "nothing was changed" in str(exc.value)


def test_validate_cli_without_formula_on_fileserver():
    airflow_ha.__salt__["cp.get_file_str"] = lambda url: False
    with pytest.raises(CommandExecutionError, match="file_roots or gitfs"):
        airflow_ha.validate()


def test_merge_replaces_lists_and_merges_dicts():
    out = ah_settings.merge(
        {"a": {"b": 1, "l": [1]}, "x": 1}, {"a": {"c": 2, "l": [2]}}, None, {"x": {"y": 1}}
    )
    assert out == {"a": {"b": 1, "c": 2, "l": [2]}, "x": {"y": 1}}


def test_validated_state_reports_problems_in_both_modes():
    ok = airflow_ha_state.validated("check", errors=[])
    assert ok["result"] is True and ok["changes"] == {}
    for test in (False, True):
        airflow_ha_state.__opts__["test"] = test
        ret = airflow_ha_state.validated("check", errors=["airflow_ha:nodes: no nodes — fix"])
        assert ret["result"] is False
        assert "airflow_ha:nodes: no nodes" in ret["comment"]
        assert ret["changes"] == {}


def test_shipped_constraints_list_matches_the_files():
    files = sorted(p.name for p in (ROOT / "airflow_ha" / "airflow" / "files").glob("constraints-*.txt"))
    listed = sorted(f"constraints-{v}.txt" for v in DEFAULTS["airflow"]["constraints_shipped"])
    assert files == listed


def test_unshipped_version_with_constraints_url_is_accepted():
    pillar = example(
        airflow__version="3.3.1", airflow__constraints_url="https://mirror.example/constraints-3.3.1.txt"
    )
    assert settings(pillar)["errors"] == []


def test_cli_settings_mask_secrets_and_urls():
    airflow_ha.__salt__["cp.get_file_str"] = lambda url: (PARAMS / url.rsplit("/", 1)[1]).read_text()
    ah = airflow_ha.settings()
    text = repr(ah)
    for value in EXAMPLE["secrets"].values():
        assert value not in text
    assert ah["secrets"]["jwt_secret"] == "***"
    assert (
        ah["airflow"]["sql_alchemy_conn"]
        == "postgresql+psycopg2://airflow:***@127.0.0.1:5000/airflow?connect_timeout=10"
    )
    assert all(u.startswith("amqp://airflow:***@node") for u in ah["airflow"]["broker_url"].split(";"))
    assert airflow_ha.settings(reveal=True)["secrets"] == EXAMPLE["secrets"]
