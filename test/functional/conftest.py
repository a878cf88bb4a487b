"""Functional tier: the airflow execution module and states against a REAL
Airflow (a venv built from the formula's frozen constraints file) and a REAL
PostgreSQL started here on 127.0.0.1 (free port, temp dir, non-root user),
through Salt's real loader (saltfactories' Loaders) with the repo's
_modules/_states.

Self-contained: installs Debian's postgresql with apt-get when initdb is
missing (root only), builds the Airflow venv when missing (cached in
AIRFLOW_HA_FUNCTIONAL_CACHE, default /var/tmp/airflow_ha-functional; set
AIRFLOW_HA_FUNCTIONAL_VENV to use an existing one). Skips, saying why, only
when one of these is impossible.
"""

import glob
import os
import pathlib
import pwd
import shutil
import socket
import subprocess
import tempfile

import pytest
import salt.config
from airflow_fn import base_config
from saltfactories.utils.functional import Loaders
from testlib import ROOT

AIRFLOW_VERSION = os.environ.get("AIRFLOW_HA_FUNCTIONAL_VERSION", "3.3.2")
CACHE = pathlib.Path(os.environ.get("AIRFLOW_HA_FUNCTIONAL_CACHE", "/var/tmp/airflow_ha-functional"))
DB_PASSWORD = "fn-db-pw-7c1e9a"


def _run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, check=False, **kw)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return pathlib.Path(found[-1]).parent
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if _run(["apt-get", "install", "-y", "-q", "postgresql"], env=env).returncode != 0:
        _run(["apt-get", "update", "-q"], env=env)
        _run(["apt-get", "install", "-y", "-q", "postgresql"], env=env)
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return pathlib.Path(found[-1]).parent if found else None


def _pg_user():
    if os.geteuid() != 0:
        return None  # run as ourselves
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    return None


class Postgres:
    def __init__(self, bindir, root, port, user):
        self.bindir, self.root, self.port, self.user = bindir, root, port, user
        self.data = root / "data"

    def _as_user(self, cmd):
        if self.user is None:
            return _run(cmd)
        return _run(["runuser", "-u", self.user.pw_name, "--", *cmd])

    def start(self):
        res = self._as_user(
            [str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust"]
        )
        if res.returncode != 0:
            raise RuntimeError(f"initdb failed: {res.stderr[-500:]}")
        opts = f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=off -c max_connections=200"
        res = self._as_user(
            [
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.root / "log"),
                "-o",
                opts,
                "-w",
                "start",
            ]
        )
        if res.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed: {res.stderr[-500:]} {res.stdout[-500:]}")

    def stop(self):
        self._as_user([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"])

    def sql(self, statement, db="postgres"):
        res = _run([str(self.bindir / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                    "-d", db, "-v", "ON_ERROR_STOP=1", "-Atc", statement])  # fmt: skip
        if res.returncode != 0:
            raise RuntimeError(res.stderr)
        return res.stdout.strip()

    def create_db(self, name):
        if not self.sql("SELECT 1 FROM pg_roles WHERE rolname = 'airflow'"):
            self.sql(f"CREATE ROLE airflow LOGIN PASSWORD '{DB_PASSWORD}'")
        self.sql(f"CREATE DATABASE {name} OWNER airflow")
        return f"postgresql+psycopg2://airflow:{DB_PASSWORD}@127.0.0.1:{self.port}/{name}"


@pytest.fixture(scope="session")
def postgres():
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL's initdb is missing and could not be installed (needs root and apt-get)")
    root = pathlib.Path(tempfile.mkdtemp(prefix="airflow_ha-pg-"))
    user = _pg_user()
    if user is not None:
        os.chown(root, user.pw_uid, user.pw_gid)
    pg = Postgres(bindir, root, _free_port(), user)
    try:
        pg.start()
    except RuntimeError as exc:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"cannot start a PostgreSQL on loopback: {exc}")
    yield pg
    pg.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def airflow_venv():
    env_venv = os.environ.get("AIRFLOW_HA_FUNCTIONAL_VENV")
    if env_venv:
        return pathlib.Path(env_venv)
    constraints = ROOT / "airflow_ha" / "airflow" / "files" / f"constraints-{AIRFLOW_VERSION}.txt"
    venv = CACHE / f"venv-{AIRFLOW_VERSION}"
    stamp = venv / ".complete"
    if stamp.exists() and stamp.read_text() == constraints.read_text():
        return venv
    shutil.rmtree(venv, ignore_errors=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    res = _run(["python3", "-m", "venv", str(venv)])
    if res.returncode != 0:
        pytest.skip(f"cannot create a venv: {res.stderr[-300:]}")
    pkg = f"apache-airflow[celery,postgres,fab]=={AIRFLOW_VERSION}"
    res = _run([str(venv / "bin" / "pip"), "install", "-q", pkg, "-c", str(constraints)], timeout=1200)
    if res.returncode != 0:
        shutil.rmtree(venv, ignore_errors=True)
        pytest.skip(f"cannot install {pkg} (no package index?): {res.stderr[-500:]}")
    stamp.write_text(constraints.read_text())
    return venv


@pytest.fixture(scope="session")
def helper_installed(airflow_venv):
    """What install.sls does: the helper next to the venv's python, and the
    formula's secret policy (_utils/ah_secrets.py) next to the helper."""
    dest = airflow_venv / "bin" / "airflow-ha-helper"
    shutil.copyfile(ROOT / "airflow_ha" / "airflow" / "files" / "airflow_ha_helper.py", dest)
    os.chmod(dest, 0o755)
    shutil.copyfile(ROOT / "_utils" / "ah_secrets.py", airflow_venv / "bin" / "ah_secrets.py")
    return dest


@pytest.fixture(scope="session")
def loaders(tmp_path_factory):
    root = tmp_path_factory.mktemp("salt")
    opts = salt.config.minion_config(None)
    opts.update(
        {
            "id": "functional",
            "file_client": "local",
            "root_dir": str(root),
            "cachedir": str(root / "cache"),
            "pki_dir": str(root / "pki"),
            "sock_dir": str(root / "sock"),
            "module_dirs": [str(ROOT / "_modules")],
            "utils_dirs": [str(ROOT / "_utils")],
            "states_dirs": [str(ROOT / "_states")],
            "grains_cache": False,
        }
    )
    return Loaders(opts)


@pytest.fixture(scope="session")
def airflow_env(postgres, airflow_venv, helper_installed, loaders, tmp_path_factory):
    """An AIRFLOW_HOME whose airflow.cfg was written by airflow.config_managed,
    against a fresh database. Returns the kwargs for the module's functions."""
    home = tmp_path_factory.mktemp("airflow_home")
    (home / "dags").mkdir()
    shutil.copy(ROOT / "airflow_ha" / "airflow" / "files" / "dags" / "airflow_ha_check.py", home / "dags")
    db_url = postgres.create_db("airflow_fn")
    ret = loaders.states.airflow.config_managed(
        name=str(home / "airflow.cfg"), sections=base_config(home, db_url)
    )
    assert ret.result is True, ret.comment
    return {
        "venv": str(airflow_venv),
        "home": str(home),
        "user": pwd.getpwuid(os.geteuid()).pw_name,
        "_db_url": db_url,
    }
