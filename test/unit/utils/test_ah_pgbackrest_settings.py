"""pgbackrest:* in the settings: the validator's rules (the backup role, the
secrets, retention, S3, the TLS certificates pgBackRest reads by name and CN,
a restore's target) and what is derived once (who runs what, Patroni's archive
settings in postgresql:patroni:dcs, the restore bootstrap, masking)."""

import copy

import pytest
from testlib import GRAINS, formula_data, load_lab_pki, load_module

ah_settings = load_module("ah_settings", "utils")
DEFAULTS, OS_LAYERS, EXAMPLE = formula_data()
ALL = ["db", "broker", "scheduler", "api", "worker", "triggerer", "dag_processor", "flower"]
NODES = {"node1": "10.77.0.11", "node2": "10.77.0.12", "node3": "10.77.0.13", "node4": "10.77.0.14"}


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """The lab's PKI for four nodes (node4: a dedicated backup host)."""
    return load_lab_pki().etcd_tls_pillar(NODES, tmp_path_factory.mktemp("pki"))


def pillar(pki, dedicated=False, **changes):
    data = copy.deepcopy(EXAMPLE)
    data["etcd"]["tls"] = copy.deepcopy(pki)
    node4 = data["etcd"]["tls"]["certs"].pop("node4")
    data["pgbackrest"]["enabled"] = True
    if dedicated:
        data["nodes"]["node4"] = {"address": "10.77.0.14", "roles": ["backup"]}
        data["etcd"]["tls"]["certs"]["node4"] = node4
    else:
        data["nodes"]["node3"]["roles"] = [*ALL, "backup"]
    for path, value in changes.items():
        keys = path.split("__")
        layer = value
        for part in reversed(keys):
            layer = {part: layer}
        data = ah_settings.merge(data, layer)
        if value is None:  # a None deletes the key
            owner = data
            for part in keys[:-1]:
                owner = owner[part]
            del owner[keys[-1]]
    return data


def settings(data, minion_id="node1", **kwargs):
    return ah_settings.settings(DEFAULTS, OS_LAYERS, data, minion_id, dict(GRAINS), reveal=True, **kwargs)


def errors(data, minion_id="node1"):
    return settings(data, minion_id)["errors"]


def one(data, key, *words):
    found = errors(data)
    hits = [e for e in found if e.startswith(key) and all(w in e for w in words)]
    assert hits, f"no error at {key} with {words}: {found}"
    return hits[0]


def test_the_lab_shape_is_valid(pki):
    for node in ("node1", "node2", "node3"):
        assert errors(pillar(pki), node) == []


def test_dedicated_backup_host_is_valid(pki):
    assert errors(pillar(pki, dedicated=True), "node4") == []


def test_backup_role_needs_backups_on_and_exactly_one_holder(pki):
    data = pillar(pki, pgbackrest__enabled=False)
    one(data, "airflow_ha:nodes:node3:roles", "role 'backup'", "pgbackrest:enabled is false")
    data = pillar(pki)
    data["nodes"]["node2"]["roles"] = [*ALL, "backup"]
    one(data, "airflow_ha:nodes:", "exactly one node with role 'backup'", "2 have it (node2, node3)")
    data = pillar(pki)
    del data["nodes"]["node3"]["roles"]
    one(data, "airflow_ha:nodes:", "0 have it")


def test_the_default_roles_leave_backup_out():
    assert "backup" not in DEFAULTS["all_roles"]
    assert "backup" in ah_settings.schema.ROLES


def test_secrets_only_when_their_feature_is_on(pki):
    data = pillar(pki, secrets__pgbackrest_cipher_pass=None)
    one(data, "airflow_ha:secrets:pgbackrest_cipher_pass", "missing")
    one(
        pillar(pki, secrets__pgbackrest_cipher_pass="short"),
        "airflow_ha:secrets:pgbackrest_cipher_pass",
        "too short",
    )
    off = copy.deepcopy(EXAMPLE)
    for name in ("pgbackrest_cipher_pass", "pgbackrest_s3_key", "pgbackrest_s3_key_secret"):
        del off["secrets"][name]
    assert errors(off) == []
    data = pillar(pki, secrets__pgbackrest_s3_key=None, pgbackrest__s3__enabled=True)
    one(data, "airflow_ha:secrets:pgbackrest_s3_key", "missing")


def test_s3_needs_its_place_and_backups_on(pki):
    data = pillar(pki, pgbackrest__s3__enabled=True)
    for name in ("endpoint", "bucket", "region"):
        one(data, f"airflow_ha:pgbackrest:s3:{name}", "empty")
    data = copy.deepcopy(EXAMPLE)
    data["pgbackrest"]["s3"]["enabled"] = True
    one(data, "airflow_ha:pgbackrest:s3:enabled", "pgbackrest:enabled: true too")


@pytest.mark.parametrize(
    ("changes", "key", "words"),
    [
        ({"pgbackrest__retention__archive": 3}, "airflow_ha:pgbackrest:retention:archive", "set at most 2"),
        (
            {"pgbackrest__retention__archive": 9, "pgbackrest__retention__archive_type": "diff"},
            "airflow_ha:pgbackrest:retention:archive",
            "set at most 8",
        ),
        ({"pgbackrest__retention__full": 0}, "airflow_ha:pgbackrest:retention:full", "from 1 to 100"),
        (
            {"pgbackrest__retention__archive_type": "incr"},
            "airflow_ha:pgbackrest:retention:archive_type",
            "full",
        ),
        (
            {"pgbackrest__schedule__full": "Sun\n01:00"},
            "airflow_ha:pgbackrest:schedule:full",
            "is not a systemd calendar expression",
        ),
        ({"pgbackrest__archive_timeout": 7200}, "airflow_ha:pgbackrest:archive_timeout", "from 0 to 3600"),
        ({"pgbackrest__port": 5432}, "airflow_ha:pgbackrest:port", "already used by PostgreSQL"),
        (
            {"postgresql__patroni__parameters": {"archive_command": "/bin/true"}},
            "airflow_ha:postgresql:patroni:parameters:archive_command",
            "set by the formula",
        ),
    ],
    ids=[
        "archive>full",
        "archive>full+diff",
        "full-0",
        "archive-type",
        "calendar",
        "timeout",
        "port",
        "param",
    ],
)
def test_rules(pki, changes, key, words):
    one(pillar(pki, **changes), key, words)


def test_a_port_of_a_feature_that_is_off_collides_with_nothing():
    data = copy.deepcopy(EXAMPLE)
    data["pgbackrest"]["port"] = 5432
    assert errors(data) == []


def test_tls_reuses_etcd_only_when_it_is_on(pki):
    data = pillar(pki)
    data["etcd"]["tls"] = {"enabled": False}
    one(data, "airflow_ha:pgbackrest:tls:certs", "etcd:tls is off")


def test_own_tls_material_is_checked_by_name_and_cn(pki, tmp_path):
    lab = load_lab_pki()
    ca, ca_key = lab.make_ca("pgbackrest CA")
    certs = {}
    for node in ("node1", "node2", "node3"):
        cert, key = lab.make_cert(ca, ca_key, node, [NODES[node]])
        certs[node] = {"cert": lab.cert_pem(cert), "key": lab.key_pem(key)}
    data = pillar(pki)
    data["etcd"]["tls"] = {"enabled": False}
    data["pgbackrest"]["tls"] = {"ca_cert": lab.cert_pem(ca), "certs": certs}
    assert errors(data) == []
    ah = settings(data, "node2")
    assert ah["pgbackrest"]["tls"]["pillar"] == "airflow_ha:pgbackrest:tls"
    # a certificate without the node's name (an IP-only one, as etcd's checks would accept)
    cert, key = lab.make_cert(ca, ca_key, "node2", [NODES["node2"]], dns_names=[])
    bad = copy.deepcopy(data)
    bad["pgbackrest"]["tls"]["certs"]["node2"] = {"cert": lab.cert_pem(cert), "key": lab.key_pem(key)}
    one(bad, "airflow_ha:pgbackrest:tls:certs:node2:cert", "lacks DNS:node2", "host name it dials")
    cert, key = lab.make_cert(ca, ca_key, "client", [NODES["node2"]], dns_names=["node2"])
    bad["pgbackrest"]["tls"]["certs"]["node2"] = {"cert": lab.cert_pem(cert), "key": lab.key_pem(key)}
    one(bad, "airflow_ha:pgbackrest:tls:certs:node2:cert", "CN is client, not node2")
    bad["pgbackrest"]["tls"]["certs"]["node2"]["key"] = certs["node1"]["key"]
    one(bad, "airflow_ha:pgbackrest:tls:certs:node2:key", "does not belong")
    del bad["pgbackrest"]["tls"]["certs"]["node2"]
    one(bad, "airflow_ha:pgbackrest:tls:certs:node2", "missing", "a db or backup node")
    bad["pgbackrest"]["tls"]["certs"]["node9"] = certs["node1"]
    one(bad, "airflow_ha:pgbackrest:tls:certs:node9", "not a node")
    other_ca, other_key = lab.make_ca("another CA")
    cert, key = lab.make_cert(other_ca, other_key, "node2", [NODES["node2"]])
    bad["pgbackrest"]["tls"]["certs"]["node2"] = {"cert": lab.cert_pem(cert), "key": lab.key_pem(key)}
    one(bad, "airflow_ha:pgbackrest:tls:certs:node2:cert", "not signed by airflow_ha:pgbackrest:tls:ca_cert")


def test_a_dedicated_backup_host_needs_a_certificate_too(pki):
    data = pillar(pki, dedicated=True)
    del data["etcd"]["tls"]["certs"]["node4"]
    one(data, "airflow_ha:etcd:tls:certs:node4", "missing", "a db or backup node")


def test_derived_roles_of_each_node(pki):
    ah = settings(pillar(pki), "node3")
    b = ah["pgbackrest"]
    assert (b["nodes"], b["db_nodes"], b["repo_host"], b["repos"]) == (
        ["node1", "node2", "node3"],
        ["node1", "node2", "node3"],
        "node3",
        [1],
    )
    assert (b["here"], b["db_here"], b["repo_here"]) == (True, True, True)
    assert b["tls"]["pillar"] == "airflow_ha:etcd:tls"
    node1 = settings(pillar(pki), "node1")["pgbackrest"]
    assert (node1["here"], node1["db_here"], node1["repo_here"]) == (True, True, False)
    off = settings(copy.deepcopy(EXAMPLE), "node1")["pgbackrest"]
    assert (off["here"], off["nodes"], off["repo_host"]) == (False, [], None)
    four = settings(pillar(pki, dedicated=True), "node4")["pgbackrest"]
    assert (four["db_here"], four["repo_here"], four["nodes"]) == (
        False,
        True,
        ["node1", "node2", "node3", "node4"],
    )


def test_patroni_archive_settings_are_in_the_one_dcs(pki):
    p = settings(pillar(pki), "node1")["postgresql"]["patroni"]
    pg = p["dcs"]["postgresql"]
    assert pg["parameters"]["archive_mode"] == "on"
    assert pg["parameters"]["archive_command"] == "pgbackrest --stanza=airflow-ha archive-push %p"
    assert pg["parameters"]["max_connections"] == 300  # the pillar's parameters are kept
    assert "archive_mode" not in p["parameters"]  # the pillar's own map is not changed
    # standbys and promotions fetch WAL through the repository probe
    script = "/usr/local/lib/airflow_ha/pgbackrest-archive-get"
    assert pg["recovery_conf"]["restore_command"] == f'{script} %f "%p"'
    assert pg["create_replica_methods"] == ["pgbackrest", "basebackup"]
    assert p["dcs_live"] is p["dcs"] or p["dcs_live"] == p["dcs"]
    assert p["restore_bootstrap"] is None


def test_backups_off_leaves_the_dcs_as_before_and_removes_the_keys_live():
    p = settings(copy.deepcopy(EXAMPLE))["postgresql"]["patroni"]
    assert "archive_command" not in p["dcs"]["postgresql"]["parameters"]
    assert "create_replica_methods" not in p["dcs"]["postgresql"]
    live = p["dcs_live"]["postgresql"]
    assert {k: live["parameters"][k] for k in ("archive_mode", "archive_command")} == {
        "archive_mode": None,
        "archive_command": None,
    }
    assert (live["recovery_conf"], live["create_replica_methods"], live["pgbackrest"]) == (None, None, None)


def test_restore_keys_and_the_bootstrap(pki):
    data = pillar(pki, restore={"target_time": "2024-05-01T12:00:00Z", "node": "node2"})
    ah = settings(data, "node2")
    assert ah["errors"] == []
    assert ah["restore"] == {
        "target_time": "2024-05-01T12:00:00Z",
        "node": "node2",
        "target": "2024-05-01 12:00:00+00",
        "timeout": 3600,
    }
    boot = ah["postgresql"]["patroni"]["restore_bootstrap"]
    assert boot["name"] == "airflow_ha_restore" and boot["target"] == "2024-05-01 12:00:00+00"
    latest = settings(pillar(pki, restore={"target_time": "latest"}))["postgresql"]["patroni"][
        "restore_bootstrap"
    ]
    assert latest["config"]["command"] == "/usr/bin/pgbackrest --stanza=airflow-ha --delta restore"
    assert "recovery_target_time" not in latest["config"]["recovery_conf"]
    assert settings(pillar(pki))["restore"] == {"timeout": 3600}


@pytest.mark.parametrize(
    ("restore", "words"),
    [
        ({"target_time": "2024-05-01 12:00"}, "not a time pgBackRest reads"),
        ({"target_time": "2024-05-01 12:00:00"}, "no time zone"),
        ({"target_time": "latest", "node": "node7"}, "is not a db node"),
        ({"node": "node1"}, "target_time: missing"),
        ({"target_tme": "latest"}, "did you mean target_time?"),
    ],
)
def test_bad_restore_keys(pki, restore, words):
    one(pillar(pki, restore=restore), "airflow_ha:restore", words)


def test_secrets_and_keys_are_masked(pki):
    ah = ah_settings.settings(DEFAULTS, OS_LAYERS, pillar(pki), "node3", dict(GRAINS))
    assert ah["secrets"]["pgbackrest_cipher_pass"] == ah_settings.schema.MASK
    own = pillar(pki)
    own["pgbackrest"]["tls"] = {"ca_cert": pki["ca_cert"], "certs": {"node1": dict(pki["certs"]["node1"])}}
    masked = ah_settings.settings(DEFAULTS, OS_LAYERS, own, "node1", dict(GRAINS))
    assert masked["pgbackrest"]["tls"]["certs"]["node1"]["key"] == ah_settings.schema.MASK
