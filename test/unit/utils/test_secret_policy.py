"""The one secret policy, walked end to end: every airflow.cfg key of the
formula's config that holds a secret is sensitive by ah_secrets' list; the
``airflow`` module's config_get masks each of them (and every key the list
names, in any section) unless reveal=True; the helper that runs in the Airflow
venv masks exactly the same set, through the same file."""

import copy
import json
import pathlib
import sys
import types
from unittest.mock import MagicMock

import pytest
import salt.utils.yaml
from testlib import ROOT, airflow_dunders, airflow_ha_dunders, load_file, load_module, utils_dunder

airflow = load_module("airflow")
airflow_config = load_module("airflow_config")
airflow_ha = load_module("airflow_ha")
ah_secrets = load_module("ah_secrets", "utils")
MASK = ah_secrets.MASK

PARAMS = ROOT / "airflow_ha" / "parameters"
DEFAULTS = salt.utils.yaml.safe_load((PARAMS / "defaults.yaml").read_text())
OS_LAYERS = salt.utils.yaml.safe_load((PARAMS / "os.yaml").read_text())
EXAMPLE = salt.utils.yaml.safe_load((ROOT / "pillar.example").read_text())["airflow_ha"]


def _example(version=None):
    pillar = copy.deepcopy(EXAMPLE)
    if version:
        pillar["airflow"]["version"] = version
    return pillar


@pytest.fixture
def run_all():
    return MagicMock()


@pytest.fixture
def configure_loader_modules(run_all):
    return {
        airflow: airflow_dunders(run_all),
        airflow_config: {"__utils__": utils_dunder("ah_secrets", "ah_airflow_cfg")},
        airflow_ha: airflow_ha_dunders(),
    }


@pytest.fixture
def home(tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (tmp_path / "airflow.cfg").write_text("[core]\n")
    (venv / "bin" / "python").write_text("")
    (venv / "bin" / "airflow-ha-helper").write_text("")
    return {"home": str(tmp_path), "venv": str(venv), "user": "airflow"}


def _secret_keys(version):
    """(section, key, value) of every key of the formula's airflow.cfg whose
    value holds one of the pillar's secrets."""
    ah = airflow_ha.settings(DEFAULTS, OS_LAYERS, _example(version), "node1", reveal=True)
    secrets = [v for v in EXAMPLE["secrets"].values() if isinstance(v, str)]
    cfg = airflow_config.desired_config(ah)
    found = [
        (section, key, value)
        for section, keys in cfg.items()
        for key, value in keys.items()
        if any(s in value or s in json.dumps(value) for s in secrets)
    ]
    return found


# One key per sensitive word, in a section of its own: the list, not the
# formula's keys, is what is walked.
WORD_KEYS = [
    (f"sec_{i}", f"x_{word}_y", f"value-of-{word}") for i, word in enumerate(ah_secrets.SENSITIVE_WORDS)
]


@pytest.mark.parametrize("version", ["3.3.2", "2.11.2"])
def test_every_secret_key_of_the_formula_config_is_sensitive(version):
    keys = _secret_keys(version)
    names = {f"{s}.{k}" for s, k, _ in keys}
    # the secrets the formula writes: none may be missing from the walk
    assert {"core.fernet_key", "database.sql_alchemy_conn", "celery.broker_url"} <= names
    assert {"celery.result_backend", "celery.flower_basic_auth"} <= names
    assert ("api.secret_key" if version.startswith("3") else "webserver.secret_key") in names
    for section, key, _ in keys:
        assert ah_secrets.is_sensitive(section, key), f"[{section}] {key} holds a secret but is not sensitive"


def _answer(value):
    return {
        "retcode": 0,
        "stdout": "AIRFLOW_HA_RESULT " + json.dumps({"ok": True, "result": {"found": True, "value": value}}),
        "stderr": "",
    }


@pytest.mark.parametrize("version", ["3.3.2", "2.11.2"])
def test_config_get_masks_every_secret_key_even_if_the_helper_did_not(version, home, run_all):
    """The module masks on its own: a helper that answers in clear (an older
    one still in the venv) does not leak through config_get."""
    for section, key, value in _secret_keys(version) + WORD_KEYS:
        run_all.return_value = _answer(value)
        out = airflow.config_get(section, key, **home)
        assert out == {"found": True, "value": MASK}, (section, key)
        assert json.loads(run_all.call_args[1]["stdin"])["args"]["reveal"] is False
        assert airflow.config_get(section, key, reveal=True, **home)["value"] == value
        assert json.loads(run_all.call_args[1]["stdin"])["args"]["reveal"] is True
    run_all.return_value = _answer("CeleryExecutor")
    assert airflow.config_get("core", "executor", **home)["value"] == "CeleryExecutor"
    # config_list too: every section, every sensitive key
    listing = {}
    for section, key, value in _secret_keys(version) + WORD_KEYS + [("core", "executor", "C")]:
        listing.setdefault(section, {})[key] = value
    run_all.return_value = {
        "retcode": 0,
        "stdout": "AIRFLOW_HA_RESULT " + json.dumps({"ok": True, "result": listing}),
        "stderr": "",
    }
    listed = airflow.config_list(**home)
    for section, keys in listing.items():
        for key, value in keys.items():
            assert listed[section][key] == (MASK if ah_secrets.is_sensitive(section, key) else value)
    assert listed["core"]["executor"] == "C"


@pytest.fixture
def helper(monkeypatch):
    """airflow_ha_helper.py as the venv runs it: ah_secrets importable from the
    helper's directory (here: _utils), Airflow's conf faked."""
    monkeypatch.syspath_prepend(str(ROOT / "_utils"))
    monkeypatch.delitem(sys.modules, "ah_secrets", raising=False)
    values = {}
    conf = types.SimpleNamespace(
        has_option=lambda s, k: (s, k) in values,
        get=lambda s, k: values[(s, k)],
        as_dict=lambda **_: {s: {k: v for (s2, k), v in values.items() if s2 == s} for s, _ in values},
    )
    fake = types.ModuleType("airflow.configuration")
    fake.conf = conf
    monkeypatch.setitem(sys.modules, "airflow", types.ModuleType("airflow"))
    monkeypatch.setitem(sys.modules, "airflow.configuration", fake)
    mod = load_file("airflow_ha/airflow/files/airflow_ha_helper.py", "airflow_ha_helper")
    mod.values = values
    return mod


def test_the_helper_uses_the_same_policy_file(helper):
    assert pathlib.Path(helper.ah_secrets.__file__).resolve() == ROOT / "_utils" / "ah_secrets.py"
    install = (ROOT / "airflow_ha" / "airflow" / "install.sls").read_text()
    assert "- source: salt://_utils/ah_secrets.py" in install
    assert "{{ af.venv }}/bin/ah_secrets.py" in install


@pytest.mark.parametrize("version", ["3.3.2", "2.11.2"])
def test_the_helper_masks_the_same_set(helper, version):
    walk = (
        _secret_keys(version) + WORD_KEYS + [("core", "executor", "CeleryExecutor"), ("api", "port", "8080")]
    )
    for section, key, value in walk:
        helper.values[(section, key)] = value
    listed = helper.op_config_list()
    for section, key, value in walk:
        want = MASK if ah_secrets.is_sensitive(section, key) else value
        assert helper.op_config_get(section, key) == {"found": True, "value": want}, (section, key)
        assert helper.op_config_get(section, key, reveal=True)["value"] == value
        assert listed[section][key] == want
    assert helper.op_config_get("core", "missing") == {"found": False, "value": None}
