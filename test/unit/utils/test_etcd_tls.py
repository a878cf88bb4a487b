"""Optional etcd TLS (airflow_ha:etcd:tls) in _utils/ah_validate_tls.py and
_utils/ah_settings.py, through _modules/airflow_ha.py: the
validator's checks, the derived URLs and file paths, the masking of the keys.
Certificates are made with cryptography (test/lab/lab_pki.py), never stored."""

import copy
import datetime
import pathlib

import pytest
import salt.utils.yaml
from cryptography.x509.oid import ExtendedKeyUsageOID
from testlib import ROOT, airflow_ha_dunders, load_lab_pki, load_module

airflow_ha = load_module("airflow_ha")
ah_schema = load_module("ah_schema", "utils")
lab_pki = load_lab_pki()

PARAMS = ROOT / "airflow_ha" / "parameters"
DEFAULTS = salt.utils.yaml.safe_load(pathlib.Path(PARAMS / "defaults.yaml").read_text())
OS_LAYERS = salt.utils.yaml.safe_load(pathlib.Path(PARAMS / "os.yaml").read_text())
EXAMPLE = salt.utils.yaml.safe_load((ROOT / "pillar.example").read_text())["airflow_ha"]
ADDRESSES = {"node1": "10.77.0.11", "node2": "10.77.0.12", "node3": "10.77.0.13"}
PREFIX = "airflow_ha:etcd:tls"


@pytest.fixture
def configure_loader_modules():
    return {
        airflow_ha: airflow_ha_dunders(copy.deepcopy(EXAMPLE)),
    }


@pytest.fixture(scope="module")
def ca():
    return lab_pki.make_ca()


def pem_pair(ca, name, addresses, **kwargs):
    cert, key = lab_pki.make_cert(ca[0], ca[1], name, addresses, **kwargs)
    return {"cert": lab_pki.cert_pem(cert), "key": lab_pki.key_pem(key)}


@pytest.fixture(scope="module")
def tls(ca):
    """A valid airflow_ha:etcd:tls for pillar.example's three nodes."""
    return {
        "enabled": True,
        "ca_cert": lab_pki.cert_pem(ca[0]),
        "certs": {n: pem_pair(ca, n, [a, "127.0.0.1"]) for n, a in ADDRESSES.items()},
    }


def pillar_with(tls_value, **extra):
    data = copy.deepcopy(EXAMPLE)
    data["etcd"]["tls"] = copy.deepcopy(tls_value)
    data.update(extra)
    return data


def settings(pillar, minion_id="node1", reveal=True):
    return airflow_ha.settings(DEFAULTS, OS_LAYERS, pillar, minion_id, reveal=reveal)


def errors_for(pillar, minion_id="node1"):
    return settings(pillar, minion_id)["errors"]


def assert_error(errors, key, fix):
    matching = [e for e in errors if e.startswith(key) and fix in e]
    assert matching, f"no error for {key} mentioning {fix!r}: {errors}"


def test_off_by_default_and_urls_stay_http():
    ah = settings(copy.deepcopy(EXAMPLE))
    assert ah["errors"] == []
    e = ah["etcd"]
    assert e["tls"]["enabled"] is False and e["tls"]["here"] is False
    assert e["scheme"] == "http"
    assert e["local_url"] == "http://127.0.0.1:2379"
    assert e["endpoints"] == [f"http://{a}:2379" for a in ADDRESSES.values()]


def test_enabled_is_valid_and_derives_https_urls_and_files(tls):
    for node in ADDRESSES:
        ah = settings(pillar_with(tls), node)
        assert ah["errors"] == [], node
        assert ah["etcd"]["tls"]["here"] is True
    e = ah["etcd"]
    assert e["scheme"] == "https"
    assert e["local_url"] == "https://127.0.0.1:2379"
    assert e["endpoints"] == [f"https://{a}:2379" for a in ADDRESSES.values()]
    d = DEFAULTS["etcd"]["tls"]["dir"]
    assert e["tls"]["ca_file"] == f"{d}/ca.crt"
    assert e["tls"]["cert_file"] == f"{d}/node.crt"
    assert e["tls"]["key_files"] == {
        "etcd": f"{d}/etcd.key",
        "patroni": f"{d}/patroni.key",
        "airflow": f"{d}/airflow.key",
    }


def test_keys_are_masked_unless_revealed(tls):
    ah = settings(pillar_with(tls), reveal=False)
    text = repr(ah)
    for entry in tls["certs"].values():
        assert entry["key"] not in text
    assert {e["key"] for e in ah["etcd"]["tls"]["certs"].values()} == {ah_schema.MASK}
    assert ah["etcd"]["tls"]["certs"]["node2"]["cert"] == tls["certs"]["node2"]["cert"]  # public
    assert settings(pillar_with(tls))["etcd"]["tls"]["certs"]["node2"]["key"] == tls["certs"]["node2"]["key"]


def test_cli_settings_mask_the_keys(tls):
    airflow_ha.__salt__["cp.get_file_str"] = lambda url: (PARAMS / url.rsplit("/", 1)[1]).read_text()
    airflow_ha.__pillar__["airflow_ha"] = pillar_with(tls)
    text = repr(airflow_ha.settings())
    assert all(e["key"] not in text for e in tls["certs"].values())


@pytest.mark.parametrize(
    ("change", "key", "fix"),
    [
        ({"enabled": "yes"}, f"{PREFIX}:enabled", "not a boolean"),
        ({"enable": True}, f"{PREFIX}:enable", "unknown key"),
        ({"ca_cert": ""}, f"{PREFIX}:ca_cert", "missing or not a PEM certificate"),
        ({"ca_cert": "not a pem"}, f"{PREFIX}:ca_cert", "not a PEM certificate"),
        (
            {"ca_cert": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"},
            f"{PREFIX}:ca_cert",
            "cannot be parsed",
        ),
        ({"certs": ["node1"]}, f"{PREFIX}:certs", "expected a mapping"),
        ({"dir": "etc/etcd"}, f"{PREFIX}:dir", "absolute path"),
    ],
    ids=[
        "enabled-not-bool",
        "misspelled-key",
        "no-ca",
        "ca-not-pem",
        "ca-garbage",
        "certs-list",
        "relative-dir",
    ],
)
def test_bad_top_level_settings(tls, change, key, fix):
    bad = dict(copy.deepcopy(tls), **change)
    assert_error(errors_for(pillar_with(bad)), key, fix)


def test_every_db_node_needs_cert_and_key(tls):
    bad = copy.deepcopy(tls)
    del bad["certs"]["node2"]
    bad["certs"]["node3"].pop("key")
    bad["certs"]["node1"]["cert"] = "nope"
    errors = errors_for(pillar_with(bad))
    assert_error(errors, f"{PREFIX}:certs:node2", "missing")
    assert_error(errors, f"{PREFIX}:certs:node3:key", "not a PEM private key")
    assert_error(errors, f"{PREFIX}:certs:node1:cert", "not a PEM certificate")


def test_encrypted_key_is_refused(tls):
    bad = copy.deepcopy(tls)
    bad["certs"]["node2"]["key"] = (
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nxx\n-----END ENCRYPTED PRIVATE KEY-----"
    )
    assert_error(errors_for(pillar_with(bad)), f"{PREFIX}:certs:node2:key", "encrypted")


def test_cert_for_unknown_node_and_unknown_entry_key(tls, ca):
    bad = copy.deepcopy(tls)
    bad["certs"]["node9"] = pem_pair(ca, "node9", ["10.77.0.19"])
    bad["certs"]["node1"]["chain"] = "x"
    errors = errors_for(pillar_with(bad))
    assert_error(errors, f"{PREFIX}:certs:node9", "not a node of airflow_ha:nodes")
    assert_error(errors, f"{PREFIX}:certs:node1:chain", "unknown key")


def test_unknown_node_is_refused_even_when_disabled(tls, ca):
    bad = {"enabled": False, "certs": {"node9": pem_pair(ca, "node9", ["10.77.0.19"])}}
    assert_error(errors_for(pillar_with(bad)), f"{PREFIX}:certs:node9", "not a node")


def test_san_must_hold_the_node_address_and_loopback(tls, ca):
    bad = copy.deepcopy(tls)
    bad["certs"]["node2"] = pem_pair(ca, "node2", ["10.77.0.99", "127.0.0.1"])
    bad["certs"]["node3"] = pem_pair(ca, "node3", ["10.77.0.13"])
    errors = errors_for(pillar_with(bad))
    assert_error(errors, f"{PREFIX}:certs:node2:cert", "lacks IP 10.77.0.12")
    assert_error(errors, f"{PREFIX}:certs:node3:cert", "lacks IP 127.0.0.1")
    assert not [e for e in errors if ":node1:" in e]


def test_eku_must_allow_server_and_client(tls, ca):
    bad = copy.deepcopy(tls)
    bad["certs"]["node2"] = pem_pair(
        ca, "node2", ["10.77.0.12", "127.0.0.1"], usages=[ExtendedKeyUsageOID.SERVER_AUTH]
    )
    assert_error(errors_for(pillar_with(bad)), f"{PREFIX}:certs:node2:cert", "lacks clientAuth")


def test_cert_from_another_ca_expired_or_with_the_wrong_key(tls, ca):
    other = lab_pki.make_ca("another CA")
    bad = copy.deepcopy(tls)
    bad["certs"]["node1"] = pem_pair(other, "node1", ["10.77.0.11", "127.0.0.1"])
    bad["certs"]["node2"]["key"] = tls["certs"]["node3"]["key"]
    old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=30)
    bad["certs"]["node3"] = pem_pair(
        ca, "node3", ["10.77.0.13", "127.0.0.1"], start=old, validity=datetime.timedelta(days=1)
    )
    errors = errors_for(pillar_with(bad))
    assert_error(errors, f"{PREFIX}:certs:node1:cert", "not signed by airflow_ha:etcd:tls:ca_cert")
    assert_error(errors, f"{PREFIX}:certs:node2:key", "does not belong")
    assert_error(errors, f"{PREFIX}:certs:node3:cert", "expired")
    text = "\n".join(errors)
    for entry in list(bad["certs"].values()) + list(tls["certs"].values()):
        assert entry["key"] not in text


def test_deep_checks_are_skipped_without_cryptography(tls, ca, monkeypatch):
    # the validator behind the module's __utils__ (as Salt's loader wires it)
    validator = airflow_ha.__utils__["ah_settings.settings"].__globals__["validator"]
    monkeypatch.setattr(validator.tls, "HAS_CRYPTOGRAPHY", False)
    bad = copy.deepcopy(tls)
    bad["certs"]["node2"] = pem_pair(ca, "node2", ["10.77.0.99"])
    assert errors_for(pillar_with(bad)) == []
    bad["certs"]["node2"]["key"] = "nope"
    assert_error(errors_for(pillar_with(bad)), f"{PREFIX}:certs:node2:key", "not a PEM private key")


def test_dag_processor_only_node_needs_a_client_cert_on_airflow_3(tls, ca):
    nodes = copy.deepcopy(EXAMPLE["nodes"])
    nodes["node4"] = {"address": "10.77.0.14", "roles": ["worker", "dag_processor"]}
    errors = errors_for(pillar_with(tls, nodes=nodes), "node4")
    assert_error(errors, f"{PREFIX}:certs:node4", "missing")
    good = copy.deepcopy(tls)
    good["certs"]["node4"] = pem_pair(ca, "node4", [], dns_names=[], usages=[ExtendedKeyUsageOID.CLIENT_AUTH])
    ah = settings(pillar_with(good, nodes=nodes), "node4")
    assert ah["errors"] == []  # a client-only certificate needs no SAN
    assert ah["etcd"]["tls"]["here"] is True
    # Airflow 2 has no dag-processor lock: node4 does not talk to etcd.
    airflow2 = pillar_with(tls, nodes=nodes)
    airflow2["airflow"]["version"] = "2.11.2"
    ah = settings(airflow2, "node4")
    assert ah["errors"] == []
    assert ah["etcd"]["tls"]["here"] is False


def test_pems_under_lookup_are_refused(tls):
    pillar = copy.deepcopy(EXAMPLE)
    pillar["lookup"] = {"etcd": {"tls": copy.deepcopy(tls)}}
    assert_error(errors_for(pillar), "airflow_ha:lookup:etcd:tls", "belong under airflow_ha:etcd:tls")
