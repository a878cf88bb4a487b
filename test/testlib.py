"""Helpers shared by the test tiers."""

import importlib.util
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def load_module(name, kind="modules"):
    """
    Import ``_modules/<name>.py`` (kind="modules"), ``_states/<name>.py``
    (kind="states") or ``_utils/<name>.py`` (kind="utils") by path: they are
    Salt loader modules, not a package.
    Each call returns a fresh module object.
    """
    path = ROOT / f"_{kind}" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"airflow_ha_{kind}_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_lab_pki():
    """Import test/lab/lab_pki.py (the lab's etcd TLS PKI) by path."""
    spec = importlib.util.spec_from_file_location("airflow_ha_lab_pki", ROOT / "test" / "lab" / "lab_pki.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def utils_dunder(*names):
    """``__utils__`` for a module under test: every public function of the
    named ``_utils`` files, loaded by path, as ``"<file>.<function>"``."""
    out = {}
    for name in names:
        module = load_module(name, "utils")
        for attr, value in vars(module).items():
            if (
                callable(value)
                and not attr.startswith("_")
                and getattr(value, "__module__", "") == module.__name__
            ):
                out[f"{name}.{attr}"] = value
    return out


GRAINS = {"os_family": "Debian", "osfinger": "Debian-12", "virtual": "physical"}


def airflow_ha_dunders(pillar=None, minion_id="node1", **extra):
    """The loader dunders of _modules/airflow_ha.py for configure_loader_modules:
    Debian 12 grains, this minion's id, the pillar, the real _utils, a fresh
    __context__ (the settings cache)."""
    return {
        "__grains__": dict(GRAINS),
        "__opts__": {"id": minion_id},
        "__pillar__": {"airflow_ha": pillar} if pillar is not None else {},
        "__salt__": {},
        "__context__": {},
        "__utils__": utils_dunder("ah_schema", "ah_validate", "ah_settings"),
        **extra,
    }


def formula_data():
    """(defaults.yaml, os.yaml, pillar.example's airflow_ha mapping), loaded."""
    import salt.utils.yaml

    def load(path):
        return salt.utils.yaml.safe_load((ROOT / path).read_text())

    params = "airflow_ha/parameters"
    return load(f"{params}/defaults.yaml"), load(f"{params}/os.yaml"), load("pillar.example")["airflow_ha"]
