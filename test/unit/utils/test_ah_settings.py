"""_utils/ah_settings.py: computed once per run (the __context__ cache), the
cluster view the orchestration reads, and the derived keys other code reads."""

import copy

import pytest
from testlib import GRAINS, formula_data, load_module

ah_settings = load_module("ah_settings", "utils")
DEFAULTS, OS_LAYERS, EXAMPLE = formula_data()


@pytest.fixture
def calls(monkeypatch):
    """How many times the validator (the expensive part) ran."""
    seen = []
    real = ah_settings.validator.validate

    def counting(*args, **kwargs):
        seen.append(args[2])
        return real(*args, **kwargs)

    monkeypatch.setattr(ah_settings.validator, "validate", counting)
    return seen


def settings(pillar=None, minion_id="node1", context=None, **kwargs):
    pillar = copy.deepcopy(EXAMPLE) if pillar is None else pillar
    return ah_settings.settings(
        DEFAULTS, OS_LAYERS, pillar, minion_id, dict(GRAINS), context=context, **kwargs
    )


def test_computed_once_per_context_and_minion(calls):
    context = {}
    first = settings(context=context, reveal=True)
    for _ in range(5):
        assert settings(context=context, reveal=True) == first
    assert calls == ["node1"]
    settings(context=context, minion_id="node2", reveal=True)
    settings(context={}, reveal=True)  # another run: computed again
    assert calls == ["node1", "node2", "node1"]


def test_a_changed_pillar_or_grain_is_never_served_from_the_cache(calls):
    context = {}
    assert settings(context=context)["rabbitmq"]["port"] == 5672
    pillar = copy.deepcopy(EXAMPLE)
    pillar["rabbitmq"]["port"] = 5673
    assert settings(pillar, context=context)["rabbitmq"]["port"] == 5673
    grains = dict(GRAINS, osfinger="Debian-13")
    ah = ah_settings.settings(DEFAULTS, OS_LAYERS, pillar, "node1", grains, context=context)
    assert ah["postgresql"]["version"] == 17
    assert len(calls) == 3


def test_the_cache_hands_out_copies():
    context = {}
    ah = settings(context=context, reveal=True)
    ah["members"]["db"].clear()
    ah["secrets"]["jwt_secret"] = "changed"
    again = settings(context=context, reveal=True)
    assert len(again["members"]["db"]) == 3
    assert again["secrets"]["jwt_secret"] == EXAMPLE["secrets"]["jwt_secret"]


def test_masked_and_revealed_are_separate_entries():
    context = {}
    masked = settings(context=context)
    revealed = settings(context=context, reveal=True)
    assert masked["secrets"]["jwt_secret"] == ah_settings.schema.MASK
    assert revealed["secrets"]["jwt_secret"] == EXAMPLE["secrets"]["jwt_secret"]
    assert settings(context=context)["secrets"]["jwt_secret"] == ah_settings.schema.MASK


def test_cluster_view_for_the_orchestration():
    pillar = copy.deepcopy(EXAMPLE)
    del pillar["secrets"]
    pillar["nodes"]["node1"]["roles"] = ["db", "broker", "worker", "scheduler", "triggerer", "dag_processor"]
    ah = settings(pillar, minion_id="master_master", cluster=True)
    assert ah["errors"] == []  # neither the master's id nor the secrets are needed
    assert "minion_id" not in ah and "address" not in ah
    assert ah["nodes"]["node2"]["roles"] == DEFAULTS["all_roles"]  # defaulted here, not in Jinja
    assert [m["id"] for m in ah["members"]["api"]] == ["node2", "node3"]
    assert ah["one_time_node"] == "node2"
    pillar["rabbitmq"]["queue_type"] = "mirrored"
    assert settings(pillar, minion_id="master_master", cluster=True)["errors"] == [
        "airflow_ha:rabbitmq:queue_type: 'mirrored' is not supported — use one of quorum, classic"
    ]


def test_csync2_peer_port_follows_the_layers():
    assert settings()["csync2"]["peer_port"] == 30865
    pillar = copy.deepcopy(EXAMPLE)
    del pillar["csync2"]["port"]
    pillar["lookup"] = {"csync2": {"port": 30866}}
    assert settings(pillar)["csync2"]["peer_port"] == 30866
    pillar["csync2"]["port"] = 30867  # pillar beats lookup
    assert settings(pillar)["csync2"]["peer_port"] == 30867


def test_one_time_node_is_the_first_api_node_by_name():
    pillar = copy.deepcopy(EXAMPLE)
    pillar["nodes"] = dict(reversed(list(pillar["nodes"].items())))
    assert settings(pillar, minion_id="node3")["one_time_node"] == "node1"
    pillar["nodes"]["node1"]["roles"] = ["db", "broker", "worker"]
    assert settings(pillar, minion_id="node3")["one_time_node"] == "node2"


def test_airflow_211_refused_on_debian_13_python():
    pillar = copy.deepcopy(EXAMPLE)
    pillar["airflow"]["version"] = "2.11.2"
    trixie = dict(GRAINS, osfinger="Debian-13")
    ah = ah_settings.settings(DEFAULTS, OS_LAYERS, pillar, "node1", trixie)
    assert ah["airflow"]["python"] == "3.13"
    assert ah["errors"] == [
        "airflow_ha:airflow:version: Airflow 2.11.2 runs on Python 3.9–3.12, but this node's python3 "
        "is 3.13 (airflow_ha:airflow:python, set per OS release) — use Airflow 3.3.x on this OS"
    ]
    assert settings(pillar)["errors"] == []  # Debian 12: Python 3.11
    pillar["airflow"]["version"] = "3.3.2"
    assert ah_settings.settings(DEFAULTS, OS_LAYERS, pillar, "node1", trixie)["errors"] == []


def test_constraints_file_is_the_python_specific_freeze_when_shipped():
    trixie = dict(GRAINS, osfinger="Debian-13")
    ah = ah_settings.settings(DEFAULTS, OS_LAYERS, copy.deepcopy(EXAMPLE), "node1", trixie)
    assert ah["airflow"]["constraints_file"] == "constraints-3.3.2-py3.13.txt"
    assert settings()["airflow"]["constraints_file"] == "constraints-3.3.2.txt"  # Debian 12
    pillar = copy.deepcopy(EXAMPLE)
    pillar["airflow"]["version"] = "2.11.2"
    assert settings(pillar)["airflow"]["constraints_file"] == "constraints-2.11.2.txt"
