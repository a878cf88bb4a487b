"""_utils/ah_schema.py: the schema against defaults.yaml, pillar.example and the
README table, and the schema walk (unknown keys, types, enums, ranges,
pass-through shapes) at every depth."""

import copy
import sys

import pytest
import salt.utils.yaml
from testlib import ROOT, load_module

schema = load_module("ah_schema", "utils")
sys.path.insert(0, str(ROOT / "test" / "tools"))
import pillar_table  # noqa: E402

DEFAULTS = salt.utils.yaml.safe_load((ROOT / "airflow_ha" / "parameters" / "defaults.yaml").read_text())
EXAMPLE_TEXT = (ROOT / "pillar.example").read_text()
EXAMPLE = salt.utils.yaml.safe_load(EXAMPLE_TEXT)["airflow_ha"]
# Pillar keys pillar.example shows only in comments: PEM text would not be an example.
COMMENTED = {"etcd:tls:ca_cert", "etcd:tls:certs", "etcd:tls:certs:*:cert", "etcd:tls:certs:*:key"}
COMMENTED |= {"pgbackrest:tls:certs:*:cert", "pgbackrest:tls:certs:*:key"}
COMMENTED |= {"csync2:certs:*:cert", "csync2:certs:*:key"}


def _flatten(tree, prefix=()):
    """{colon path: value} of a defaults-shaped tree; a declared mapping
    (nodes, secrets, pass-through maps) is one value."""
    out = {}
    for name, value in tree.items():
        path = (*prefix, name)
        key = schema.SPECS.get(path)
        if isinstance(value, dict) and (key is None or key.kind not in ("map", "params", "cfg")):
            out.update(_flatten(value, path))
        else:
            out[":".join(path)] = value
    return out


def _spec_path(path):
    """A concrete path's schema path (names under a `*` mapping become `*`)."""
    out = ()
    for part in path:
        names = schema.CHILDREN.get(out, [])
        out += (part,) if part in names else ("*",) if "*" in names else (part,)
    return out


def _all_paths(tree, prefix=()):
    for name, value in tree.items():
        path = (*prefix, name)
        yield _spec_path(path)
        if isinstance(value, dict) and _spec_path(path) in schema.CHILDREN:
            yield from _all_paths(value, path)


def test_schema_defaults_equal_defaults_yaml_key_by_key():
    declared = {
        p: k.default
        for p, k in schema.KEYS.items()
        if "*" not in p and p != "lookup" and k.where != schema.FLAG and (k.default is not None)
    }
    in_file = _flatten(DEFAULTS)
    assert sorted(set(in_file) - set(declared)) == [], "in defaults.yaml, not in the schema"
    assert sorted(set(declared) - set(in_file)) == [], "in the schema, not in defaults.yaml"
    assert {p: v for p, v in in_file.items() if declared[p] != v} == {}


def test_defaults_yaml_itself_passes_the_schema():
    assert schema.check(DEFAULTS, formula=True) == ([], True)


def test_readme_pillar_table_is_current():
    text = (ROOT / "README.md").read_text()
    assert pillar_table.TABLE_BEGIN in text and pillar_table.TABLE_END in text
    assert pillar_table.render(text) == text, "README.md is stale: run python3 test/tools/pillar_table.py"
    for path, key in schema.KEYS.items():
        assert (f"| `{path}` |" in text) == (key.where != schema.INTERNAL), path


def test_pillar_example_validates_and_documents_every_pillar_key():
    assert schema.check(EXAMPLE) == ([], True)
    shown = set(_all_paths(EXAMPLE))
    missing = [
        p for p, k in schema.KEYS.items() if k.where == schema.PILLAR and tuple(p.split(":")) not in shown
    ]
    assert sorted(missing) == sorted(COMMENTED), "pillar.example lacks these user keys"
    comments = [line.strip() for line in EXAMPLE_TEXT.splitlines() if line.strip().startswith("#")]
    for path in COMMENTED:
        assert any(c.lstrip("# ").startswith(f"{path.split(':')[-1]}:") for c in comments), path
    assert not [p for p in shown if p not in schema.SPECS and p not in schema.CHILDREN]


def _errors(tree, **kwargs):
    return schema.check(tree, **kwargs)[0]


def _one(tree, path, *words):
    errors = _errors(tree)
    hits = [e for e in errors if e.startswith(f"airflow_ha:{path}:") and all(w in e for w in words)]
    assert hits, f"no error at airflow_ha:{path} with {words}: {errors}"
    return hits[0]


@pytest.mark.parametrize(
    ("tree", "path", "suggestion"),
    [
        ({"etcd": {"tls": {"enable": True}}}, "etcd:tls:enable", "did you mean enabled?"),
        ({"csync2": {"watcher": {"debounce": 100}}}, "csync2:watcher:debounce", "did you mean debounce_ms?"),
        ({"postgresql": {"patroni": {"tll": 30}}}, "postgresql:patroni:tll", "did you mean ttl?"),
        ({"haproxy": {"check": {"falls": 3}}}, "haproxy:check:falls", "did you mean fall?"),
        ({"nodes": {"node1": {"adress": "10.0.0.1"}}}, "nodes:node1:adress", "did you mean address?"),
        ({"rabitmq": {}}, "rabitmq", "did you mean rabbitmq?"),
        ({"secrets": {"jwt_secert": "x"}}, "secrets:jwt_secert", "unknown secret — did you mean jwt_secret?"),
    ],
    ids=["tls", "watcher", "patroni", "haproxy-check", "node", "top", "secret"],
)
def test_unknown_key_at_any_depth_names_the_nearest_known_one(tree, path, suggestion):
    _one(tree, path, "unknown", suggestion)


def test_unknown_key_far_from_any_known_one_lists_the_known_keys():
    message = _one({"airflow": {"zzzz": 1}}, "airflow:zzzz", "unknown key", "known: version,")
    assert "did you mean" not in message


def test_lookup_is_walked_at_its_own_path():
    errors = _errors({"etcd": {"pgk": "etcd"}}, prefix="airflow_ha:lookup")
    assert errors and errors[0].startswith("airflow_ha:lookup:etcd:pgk: unknown key — did you mean pkg?")


@pytest.mark.parametrize(
    ("tree", "path", "words"),
    [
        ({"single_node": "yes"}, "single_node", ("not a boolean", "true or false")),
        (
            {"postgresql": {"patroni": {"synchronous_mode": "on"}}},
            "postgresql:patroni:synchronous_mode",
            ("not a boolean",),
        ),
        ({"airflow": {"parallelism": "32"}}, "airflow:parallelism", ("positive integer",)),
        ({"airflow": {"worker_concurrency": True}}, "airflow:worker_concurrency", ("positive integer",)),
        ({"etcd": {"client_port": 0}}, "etcd:client_port", ("not a TCP port",)),
        ({"haproxy": {"check": {"rise": 0}}}, "haproxy:check:rise", ("from 1 to 10",)),
        ({"haproxy": {"check": {"fall": 11}}}, "haproxy:check:fall", ("from 1 to 10",)),
        ({"haproxy": {"check": {"inter_ms": 50}}}, "haproxy:check:inter_ms", ("from 100 to 10000 (ms)",)),
        (
            {"haproxy": {"check": {"downinter_ms": 20000}}},
            "haproxy:check:downinter_ms",
            ("from 100 to 10000",),
        ),
        ({"postgresql": {"patroni": {"ttl": 19}}}, "postgresql:patroni:ttl", ("at least 20",)),
        (
            {"postgresql": {"patroni": {"retry_timeout": 2}}},
            "postgresql:patroni:retry_timeout",
            ("at least 3",),
        ),
        ({"network": {"prefix": 31}}, "network:prefix", ("from 8 to 30",)),
        (
            {"rabbitmq": {"partition_handling": "pause-minority"}},
            "rabbitmq:partition_handling",
            ("autoheal, pause_minority, ignore", "did you mean pause_minority?"),
        ),
        ({"pgbouncer": {"pool_mode": "transactions"}}, "pgbouncer:pool_mode", ("did you mean transaction?",)),
        ({"cluster_name": 5}, "cluster_name", ("must be a string", "quote it")),
        ({"etcd": {"data_dir": "/"}}, "etcd:data_dir", ("absolute path",)),
        ({"proxy": {"pip": {"index_url": "ftp://x"}}}, "proxy:pip:index_url", ("http(s) URL",)),
        ({"airflow": {"constraints_url": "salt://airflow/c.txt"}}, None, ()),
        ({"nodes": {"n1": {"address": "10.0.0.300"}}}, "nodes:n1:address", ("not an IPv4 address",)),
        ({"nodes": {"n1": {"roles": ["db", "webserver"]}}}, "nodes:n1:roles", ("unknown role 'webserver'",)),
        ({"nodes": {"n1": "10.0.0.1"}}, "nodes:n1", ("expected a mapping",)),
        ({"timezone": "Mars/Olympus"}, "timezone", ("not a time zone",)),
        ({"csync2": {"extra_dirs": "/srv"}}, "csync2:extra_dirs", ("expected a list",)),
        ({"csync2": {"extra_dirs": ["srv"]}}, "csync2:extra_dirs", ("absolute path",)),
        ({"airflow": {"admin": {"username": "a b"}}}, "airflow:admin:username", ("Flower",)),
        (
            {"airflow": {"constraints_shipped": ["9.9.9"]}},
            "airflow:constraints_shipped",
            ("set by the formula",),
        ),
    ],
)
def test_wrong_types_values_and_ranges_are_refused(tree, path, words):
    if path is None:
        assert _errors(tree) == []
    else:
        _one(tree, path, *words)


def test_a_mapping_that_is_not_one_stops_the_rules():
    errors, shape_ok = schema.check({"postgresql": "fast", "rabbitmq": {"port": 1}})
    assert shape_ok is False
    assert errors == ["airflow_ha:postgresql: expected a mapping, got str — see pillar.example"]


def test_a_secret_value_is_never_echoed():
    errors = _errors(
        {"etcd": {"tls": {"certs": {"node1": {"key": 12345}}}}, "secrets": {"jwt_secret": 99999}}
    )
    assert len(errors) == 2 and not any("12345" in e or "99999" in e for e in errors)


@pytest.mark.parametrize(
    ("value", "bad"),
    [
        ({"max_connections": 300, "wal_level": "replica", "jit": False, "random_page_cost": 1.1}, None),
        ({"auto_explain.log_min_duration": "1s"}, None),
        ({"max connections": 300}, "max connections: 'max connections' is not a valid name"),
        ({"shared_preload_libraries": ["pg_stat_statements"]}, "shared_preload_libraries: expected a string"),
        ({"work_mem": None}, "work_mem: expected a string, number or boolean"),
        ("max_connections=300", "parameters: expected a mapping"),
    ],
)
def test_patroni_parameters_are_checked_for_shape_only(value, bad):
    errors = _errors({"postgresql": {"patroni": {"parameters": value}}})
    if bad is None:
        assert errors == []
    else:
        assert [e for e in errors if e.startswith("airflow_ha:postgresql:patroni:") and bad in e], errors


@pytest.mark.parametrize(
    ("value", "bad"),
    [
        ({"core": {"load_examples": "False", "parallelism": 8}, "celery": {"worker_autoscale": "4,2"}}, None),
        ({"load_examples": "False"}, "config:load_examples: expected a mapping key -> value"),
        ({"core": {"dags": {"folder": "/x"}}}, "config:core:dags: expected a string, number or boolean"),
        (
            {"core": {"load-examples": "False"}},
            "config:core:load-examples: 'load-examples' is not a valid name",
        ),
        ({"my section": {"a": 1}}, "config:my section: 'my section' is not a valid name"),
    ],
)
def test_airflow_config_is_section_key_scalar(value, bad):
    errors = _errors({"airflow": {"config": value}})
    if bad is None:
        assert errors == []
    else:
        assert [e for e in errors if e.startswith("airflow_ha:airflow:") and bad in e], errors


def test_every_secret_key_is_a_string_with_a_minimum_length():
    assert set(schema.SECRETS) == set(EXAMPLE["secrets"])
    for name, key in schema.SECRETS.items():
        assert key.secret and key.kind == "str" and key.min_len >= 4, name


def test_every_port_names_its_component():
    ports = {p: k for p, k in schema.KEYS.items() if k.kind == "port"}
    assert len(ports) >= 17
    assert all(k.noun for k in ports.values())


def test_example_with_every_key_changed_stays_clean():
    tree = copy.deepcopy(EXAMPLE)
    tree["haproxy"]["check"] = {
        "inter_ms": 2000,
        "fastinter_ms": 100,
        "downinter_ms": 10000,
        "rise": 10,
        "fall": 1,
    }
    tree["rabbitmq"]["partition_handling"] = "pause_minority"
    tree["postgresql"]["patroni"]["synchronous_mode"] = False
    assert schema.check(tree) == ([], True)
