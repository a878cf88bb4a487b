"""_modules/airflow_ha.py and the _utils through Salt's real loader (no
daemons: saltfactories' Loaders): __utils__ reaches ah_settings, which loads
its siblings, and a second settings() call in the same loader context is
served from __context__ instead of being computed again."""

import copy

import pytest
import salt.config
import salt.utils.path
import salt.utils.yaml
from salt.exceptions import CommandExecutionError, SaltInvocationError
from saltfactories.utils.functional import Loaders
from testlib import GRAINS, ROOT, formula_data

DEFAULTS, OS_LAYERS, EXAMPLE = formula_data()


@pytest.fixture
def loaders(tmp_path):
    opts = salt.config.minion_config(None)
    opts.update(
        id="node2",
        file_client="local",
        root_dir=str(tmp_path),
        cachedir=str(tmp_path / "cache"),
        file_roots={"base": [str(ROOT)]},
        module_dirs=[str(ROOT / "_modules")],
        utils_dirs=[str(ROOT / "_utils")],
        grains=dict(GRAINS),
        pillar={"airflow_ha": copy.deepcopy(EXAMPLE)},
    )
    loaders = Loaders(opts)
    yield loaders
    loaders.reset_state()


def test_settings_through_the_real_loader_are_cached_in_context(loaders):
    settings = loaders.modules["airflow_ha.settings"]
    ah = settings(DEFAULTS, OS_LAYERS, copy.deepcopy(EXAMPLE), reveal=True)
    assert ah["errors"] == [] and ah["minion_id"] == "node2"
    (slot,) = [k for k in loaders.context if k.startswith("airflow_ha.settings:")]
    entry = loaders.context[slot]
    assert settings(DEFAULTS, OS_LAYERS, copy.deepcopy(EXAMPLE), reveal=True) == ah
    assert loaders.context[slot] is entry, "the second call computed the settings again"
    # the CLI path: parameters from the fileserver, the same validator
    with pytest.raises(CommandExecutionError, match="airflow_ha:secrets:jwt_secret: too short"):
        bad = copy.deepcopy(EXAMPLE)
        bad["secrets"]["jwt_secret"] = "short"
        loaders.modules["airflow_ha.validate"](pillar=bad)


def test_csync2_functions_of_both_module_files_through_the_real_loader(loaders, monkeypatch, tmp_path):
    """_modules/csync2.py and _modules/csync2_db.py both declare the virtual
    name csync2: the loader merges them, whichever function is asked first,
    and their __virtual__ reaches __utils__ (ah_csync2_run)."""
    which = salt.utils.path.which
    monkeypatch.setattr(
        salt.utils.path,
        "which",
        lambda name, *a, **kw: "/usr/bin/csync2" if name == "csync2" else which(name),
    )
    loaders.opts["csync2.state_dir"] = str(tmp_path)
    mods = loaders.modules
    assert mods["csync2.stale_pins"]({}) == []  # csync2_db.py first, no database yet
    for name in ("sync", "in_sync", "status", "genkey", "forget_peer_cert", "reset_db"):
        assert f"csync2.{name}" in mods, name
    with pytest.raises(SaltInvocationError, match="confirm=True"):
        mods["csync2.reset_db"]()
