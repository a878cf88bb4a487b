"""csync2:certs (pillar certificates kept across a rebuild) in
_utils/ah_validate_tls.py, and the etcd join settings of _utils/ah_settings.py,
through _modules/airflow_ha.py. Certificates come from test/lab/lab_pki.py."""

import copy

import pytest
import salt.utils.yaml
from testlib import ROOT, airflow_ha_dunders, load_lab_pki, load_module

airflow_ha = load_module("airflow_ha")
lab_pki = load_lab_pki()

PARAMS = ROOT / "airflow_ha" / "parameters"
DEFAULTS = salt.utils.yaml.safe_load((PARAMS / "defaults.yaml").read_text())
OS_LAYERS = salt.utils.yaml.safe_load((PARAMS / "os.yaml").read_text())
EXAMPLE = salt.utils.yaml.safe_load((ROOT / "pillar.example").read_text())["airflow_ha"]
NODES = sorted(EXAMPLE["nodes"])
PREFIX = "airflow_ha:csync2:certs"


@pytest.fixture
def configure_loader_modules():
    return {airflow_ha: airflow_ha_dunders(copy.deepcopy(EXAMPLE))}


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return lab_pki.csync2_certs_pillar(NODES, tmp_path_factory.mktemp("pki"))


def errors_for(csync2_certs, minion_id="node1"):
    data = copy.deepcopy(EXAMPLE)
    data.setdefault("csync2", {})["certs"] = csync2_certs
    return airflow_ha.settings(DEFAULTS, OS_LAYERS, data, minion_id, reveal=True)["errors"]


def test_pillar_certificates_for_every_node_are_valid(certs):
    assert errors_for(certs) == []


def test_a_node_without_a_certificate_is_named(certs):
    partial = {n: certs[n] for n in NODES[:-1]}
    errors = errors_for(partial)
    assert any(e.startswith(f"{PREFIX}:{NODES[-1]}: missing") for e in errors), errors


def test_a_key_of_another_node_is_refused(certs):
    swapped = copy.deepcopy(certs)
    swapped[NODES[0]]["key"] = certs[NODES[1]]["key"]
    errors = errors_for(swapped)
    assert any(e.startswith(f"{PREFIX}:{NODES[0]}:key: does not belong") for e in errors), errors


def test_different_subjects_are_refused(certs, tmp_path, monkeypatch):
    monkeypatch.setattr(lab_pki, "CSYNC2_SUBJECT", "another subject")
    other = lab_pki.csync2_certs_pillar([NODES[0]], tmp_path)
    errors = errors_for({**certs, NODES[0]: other[NODES[0]]})
    assert any(e.startswith(PREFIX + ": the certificates' subjects differ") for e in errors), errors


def test_an_unknown_node_is_refused(certs):
    errors = errors_for({**certs, "node9": certs[NODES[0]]})
    assert any(e.startswith(f"{PREFIX}:node9: not a node") for e in errors), errors


def test_the_keys_are_masked_in_settings(certs):
    data = copy.deepcopy(EXAMPLE)
    data.setdefault("csync2", {})["certs"] = certs
    ah = airflow_ha.settings(DEFAULTS, OS_LAYERS, data, "node1")
    text = repr(ah)
    assert "PRIVATE KEY" not in text


def test_etcd_join_settings():
    ah = airflow_ha.settings(DEFAULTS, OS_LAYERS, copy.deepcopy(EXAMPLE), "node2", reveal=True)
    e = ah["etcd"]
    me = EXAMPLE["nodes"]["node2"]["address"]
    assert e["peer_url"] == f"http://{me}:2380"
    assert e["peer_endpoints"] == [
        f"http://{EXAMPLE['nodes'][n]['address']}:2379" for n in NODES if n != "node2"
    ]
    assert e["join_env"] == "/var/lib/etcd/airflow-ha.join.env"
    assert e["initial_env"] == "/etc/default/etcd.initial"
