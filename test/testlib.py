"""Helpers shared by the test tiers."""

import http.server
import importlib.machinery
import importlib.util
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = ROOT / "test" / "unit" / "data"  # outputs recorded from the real binaries


def load_module(name, kind="modules"):
    """
    Import ``_modules/<name>.py`` (kind="modules"), ``_states/<name>.py``
    (kind="states") or ``_utils/<name>.py`` (kind="utils") by path: they are
    Salt loader modules, not a package. Each call returns a fresh module object.
    """
    path = ROOT / f"_{kind}" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"airflow_ha_{kind}_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_file(path, name):
    """Import any Python file of the repo by path as module ``name`` (the
    programs the formula ships: helpers, the csync2 watcher, whose names may
    lack ``.py``). Each call returns a fresh module object."""
    loader = importlib.machinery.SourceFileLoader(name, str(ROOT / path))
    spec = importlib.util.spec_from_loader(name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def load_lab_pki():
    """Import test/lab/lab_pki.py (the lab's etcd TLS PKI) by path."""
    return load_file("test/lab/lab_pki.py", "airflow_ha_lab_pki")


def utils_dunder(*names):
    """What Salt's loader gives a module as ``__utils__`` for the formula's
    ``_utils/<name>.py`` files: ``{"<name>.<function>": function}`` for every
    public function (the real code, not a fake)."""
    out = {}
    for name in names:
        mod = load_module(name, "utils")
        for attr, value in vars(mod).items():
            if (
                callable(value)
                and not attr.startswith("_")
                and getattr(value, "__module__", None) == mod.__name__
            ):
                out[f"{name}.{attr}"] = value
    return out


GRAINS = {"os_family": "Debian", "osfinger": "Debian-12", "virtual": "physical"}


def airflow_dunders(run_all):
    """The loader dunders of _modules/airflow.py: cmd.run_all faked by
    ``run_all``, the settings' airflow paths, the real _utils."""
    return {
        "__salt__": {
            "cmd.run_all": run_all,
            "airflow_ha.settings": lambda: {
                "airflow": {"venv": "/opt/airflow/venv", "home": "/var/lib/airflow", "user": "airflow"}
            },
        },
        "__opts__": {},
        "__grains__": {},
        "__utils__": utils_dunder("ah_secrets", "ah_airflow_cfg"),
    }


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


class RouteHandler(http.server.BaseHTTPRequestHandler):
    """A loopback HTTP server's handler for unit tests of the REST clients:
    GET answers ``routes[path]`` = (status, body text), else 404."""

    routes = {}

    def do_GET(self):  # noqa: N802 (http.server API)
        status, body = self.routes.get(self.path, (404, "{}"))
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


class Seq:
    """A fake execution function answering from a list (the last answer
    repeats; an exception in the list is raised); ``calls`` counts the calls,
    ``seen`` holds their (args, kwargs)."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls = 0
        self.seen = []

    def __call__(self, *args, **kwargs):
        self.seen.append((args, kwargs))
        answer = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        if isinstance(answer, Exception):
            raise answer
        return answer
