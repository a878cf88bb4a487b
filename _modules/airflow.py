"""
Execution module for Apache Airflow installed by the airflow_ha formula.

Why custom: Salt ships no Airflow module. Everything here runs inside the
Airflow virtualenv, as the airflow user, with the formula's AIRFLOW_HOME and
AIRFLOW_CONFIG. Secrets (user passwords, connection passwords, variable values)
never appear in a process' argv: requests go to a small helper script
(``airflow_ha/airflow/files/airflow_ha_helper.py``, installed as
``<venv>/bin/airflow-ha-helper``) as JSON on stdin, and the helper talks to
Airflow's Python API. Its answer is one marker line on stdout; Airflow's log
noise goes to stderr, so parsing does not depend on Airflow's log format.

Paths come from keyword arguments, else from the formula's derived settings
(``airflow_ha.settings``: ``airflow:venv``, ``:home``, ``:user``).

No command runs before ``<home>/airflow.cfg`` exists: Airflow writes a config
with RANDOM fernet/JWT/secret keys on first use, which must never happen on a
cluster node (every node needs the pillar's keys).

The module is split by concern: this file is the venv-helper client; the
formula's airflow.cfg (desired values, key -> component groups, components) is
``_modules/airflow_config.py`` over pure Python in ``_utils/ah_airflow_cfg.py``;
``airflow.health`` and ``airflow.wait_healthy`` are in
``_modules/airflow_health.py``. All three share the virtual name ``airflow``
(Salt's loader merges the files).
"""

import hashlib
import json
import logging
import os
import pwd
import re

from salt.exceptions import CommandExecutionError, SaltInvocationError

log = logging.getLogger(__name__)

__virtualname__ = "airflow"

MARKER = "AIRFLOW_HA_RESULT "


def __virtual__():
    return __virtualname__


# -- plumbing -----------------------------------------------------------------
def _opt(name, kwargs):
    """``venv``, ``home`` or ``user``: the keyword argument, else the formula's
    settings (``airflow_ha:airflow:<name>``: defaults.yaml, lookup, pillar)."""
    if kwargs.get(name):
        return kwargs[name]
    return __salt__["airflow_ha.settings"]()["airflow"][name]


def _paths(**kwargs):
    venv = _opt("venv", kwargs)
    home = _opt("home", kwargs)
    user = _opt("user", kwargs)
    return {
        "venv": venv,
        "home": home,
        "user": user,
        "config": kwargs.get("config") or os.path.join(home, "airflow.cfg"),
        "python": os.path.join(venv, "bin", "python"),
        "helper": kwargs.get("helper") or os.path.join(venv, "bin", "airflow-ha-helper"),
    }


def _runas(user):
    """None when the current user already is ``user`` (tests run unprivileged)."""
    try:
        if pwd.getpwuid(os.geteuid()).pw_name == user:
            return None
    except KeyError:
        pass
    return user


def _env(paths):
    return {
        "AIRFLOW_HOME": paths["home"],
        "AIRFLOW_CONFIG": paths["config"],
        "PYTHONWARNINGS": "ignore",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR",
    }


def _parse_result(stdout):
    """The helper's answer in ``stdout`` (the last marker line), ignoring any
    noise around it: the decoded dict, or None."""
    for line in reversed((stdout or "").splitlines()):
        idx = line.find(MARKER)
        if idx == -1:
            continue
        try:
            data = json.loads(line[idx + len(MARKER) :])
        except ValueError:
            continue
        if isinstance(data, dict) and "ok" in data:
            return data
    return None


def _helper(op, args=None, secrets=(), timeout=300, **kwargs):
    paths = _paths(**kwargs)
    if not os.path.isfile(paths["config"]):
        raise CommandExecutionError(
            f"{paths['config']} does not exist: refusing to run Airflow, which would "
            "write a config with random keys. Apply airflow_ha.airflow (config) first."
        )
    for exe in ("python", "helper"):
        if not os.path.isfile(paths[exe]):
            raise CommandExecutionError(
                f"{paths[exe]} is missing: is Airflow installed in {paths['venv']} "
                "(state airflow_ha.airflow)?"
            )
    res = __salt__["cmd.run_all"](
        [paths["python"], paths["helper"]],
        runas=_runas(paths["user"]),
        env=_env(paths),
        cwd=paths["home"] if os.path.isdir(paths["home"]) else "/",
        stdin=json.dumps({"op": op, "args": args or {}}),
        python_shell=False,
        output_loglevel="quiet",
        ignore_retcode=True,
        timeout=timeout,
    )
    data = _parse_result(res.get("stdout"))
    if data is None:
        tail = "\n".join((res.get("stderr") or "").splitlines()[-5:])
        tail = __utils__["ah_secrets.scrub"](tail, secrets)
        raise CommandExecutionError(f"airflow helper ({op}) gave no answer (rc {res.get('retcode')}): {tail}")
    if not data["ok"]:
        error = __utils__["ah_secrets.scrub"](data.get("error"), secrets)
        raise CommandExecutionError(f"airflow {op}: {error}")
    return data.get("result")


# -- info / config --------------------------------------------------------------
def version(**kwargs):
    """
    Installed Airflow version in the venv ('' when not installed). Does not
    import Airflow, so it is safe before airflow.cfg exists.

    CLI Example:

    .. code-block:: bash

        salt '*' airflow.version
        salt '*' airflow.version venv=/opt/airflow/venv
    """
    python = os.path.join(_opt("venv", kwargs), "bin", "python")  # the venv only: no home or user needed
    if not os.path.isfile(python):
        return ""
    res = __salt__["cmd.run_all"](
        [
            python,
            "-c",
            "import importlib.metadata as m; print(m.version('apache-airflow'))",
        ],
        python_shell=False,
        output_loglevel="quiet",
        ignore_retcode=True,
        env={"PYTHONWARNINGS": "ignore"},
    )
    if res["retcode"] != 0:
        return ""
    lines = [x.strip() for x in res["stdout"].splitlines() if re.match(r"^\d+\.\d+", x.strip())]
    return lines[-1] if lines else ""


def config_get(section, key, reveal=False, **kwargs):
    """
    Effective value of an Airflow option (file, environment or default), as
    ``{"found": bool, "value": ...}``. The value of every sensitive key
    (``ah_secrets.SENSITIVE_WORDS``: passwords, secrets, keys, connection and
    broker URLs, Flower's basic auth ...) of every section is masked unless
    ``reveal=True``.

    CLI Example:

    .. code-block:: bash

        salt '*' airflow.config_get core executor
        salt node1 airflow.config_get celery flower_basic_auth reveal=True
    """
    reveal = bool(reveal)
    res = _helper("config_get", {"section": section, "key": key, "reveal": reveal}, **kwargs)
    if not reveal and isinstance(res, dict):
        # The helper masks too; masking here as well keeps a helper of an
        # older formula version (still in the venv) from leaking.
        res["value"] = __utils__["ah_secrets.mask_cfg"](section, key, res.get("value"))
    return res


def config_list(section=None, **kwargs):
    """
    The effective configuration, all sections or one; every sensitive key
    (the same list as :py:func:`config_get`) is masked.

    CLI Example:

    .. code-block:: bash

        salt '*' airflow.config_list celery
    """
    data = _helper("config_list", {"section": section}, **kwargs) or {}
    mask = __utils__["ah_secrets.mask_cfg"]
    return {sec: {k: mask(sec, k, v) for k, v in (keys or {}).items()} for sec, keys in data.items()}


# -- users -------------------------------------------------------------------------
def users_list(**kwargs):
    """
    Users of the FAB auth manager: list of dicts (username, email, firstname,
    lastname, roles, active).

    CLI Example:

    .. code-block:: bash

        salt '*' airflow.users_list
    """
    return _helper("users_list", **kwargs)


def user_get(username, **kwargs):
    """
    One user as a dict, or None.

    CLI Example:

    .. code-block:: bash

        salt '*' airflow.user_get admin
    """
    return _helper("user_get", {"username": username}, **kwargs)


def user_create(username, password, email, firstname="", lastname="", roles=("Viewer",), **kwargs):
    """
    Create a user. The password goes to Airflow on stdin, never in argv.

    CLI Example:

    .. code-block:: bash

        salt '*' airflow.user_create bob 'S3cret!' bob@example.com Bob Smith roles='[Op]'
    """
    if not password:
        raise SaltInvocationError("user_create: password must not be empty")
    args = {
        "username": username,
        "password": password,
        "email": email,
        "firstname": firstname or username,
        "lastname": lastname or username,
        "roles": __utils__["ah_airflow_cfg.normalize_roles"](roles),
    }
    return _helper("user_create", args, secrets=[password], **kwargs)


def user_update(username, password=None, email=None, firstname=None, lastname=None, roles=None, **kwargs):
    """
    Update a user's fields (only those given). ``password`` resets the
    password.

    CLI Example:

    .. code-block:: bash

        salt '*' airflow.user_update bob roles='[Admin]' email=bob@example.org
    """
    args = {
        "username": username,
        "password": password,
        "email": email,
        "firstname": firstname,
        "lastname": lastname,
        "roles": __utils__["ah_airflow_cfg.normalize_roles"](roles),
    }
    return _helper("user_update", args, secrets=[password], **kwargs)


def user_delete(username, **kwargs):
    """
    Delete a user. True when deleted, False when it did not exist.

    CLI Example:

    .. code-block:: bash

        salt '*' airflow.user_delete bob
    """
    return _helper("user_delete", {"username": username}, **kwargs)


def user_check_password(username, password, **kwargs):
    """
    True when ``password`` is the user's current password (nothing changes).

    CLI Example:

    .. code-block:: bash

        salt '*' airflow.user_check_password admin 'S3cret!'
    """
    return bool(
        _helper(
            "user_check_password",
            {"username": username, "password": password},
            secrets=[password],
            **kwargs,
        )
    )


def user_status(username, password=None, **kwargs):
    """
    ``{"user": <user dict or None>, "password_ok": bool or None}``: the user and
    whether ``password`` is its current password, read with SQL from FAB's
    tables (FAB's app is started only when that cannot decide): what
    ``airflow.user_present`` needs, in every re-apply.

    CLI Example:

    .. code-block:: bash

        salt '*' airflow.user_status admin
    """
    return _helper(
        "user_status",
        {"username": username, "password": password},
        secrets=[password],
        **kwargs,
    )


# -- database -----------------------------------------------------------------------
def db_check(**kwargs):
    """
    True when Airflow reaches its metadata database (SELECT 1); raises with
    the reason otherwise.

    CLI Example:

    .. code-block:: bash

        salt '*' airflow.db_check
    """
    return bool(_helper("db_check", **kwargs))


def db_pending_migrations(**kwargs):
    """
    Alembic revisions not yet applied (plus ``external-db-managers`` when the
    FAB tables need migrating). Empty list: schema up to date.

    Airflow's check imports Airflow (4.5 s on an idle lab node, 14 s with
    three nodes applying). Its answer depends only on the Airflow packages,
    airflow.cfg and the rows of the Alembic version tables: the last "up to
    date" is remembered under a digest of those (:func:`_schema_key`, read
    without Airflow) and holds while they are unchanged.

    CLI Example:

    .. code-block:: bash

        salt '*' airflow.db_pending_migrations
    """
    stamp = _schema_stamp()
    key = _schema_key(**kwargs) if stamp else ""
    if key and os.path.isfile(stamp):
        with open(stamp, encoding="utf-8") as fh:
            if fh.read() == key:
                return []
    pending = _helper("db_pending_migrations", **kwargs)
    if not pending and key:
        os.makedirs(os.path.dirname(stamp), mode=0o700, exist_ok=True)
        fd = os.open(stamp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key)
    return pending


def _schema_stamp():
    """The minion's file holding the key of the last "schema up to date"."""
    cachedir = __opts__.get("cachedir")
    return os.path.join(cachedir, "airflow_ha", "airflow-schema-ok") if cachedir else None


def _schema_key(**kwargs):
    """A digest of the Airflow distributions (dist-info names carry the
    versions), airflow.cfg and the Alembic version rows (helper op
    ``schema_revisions``: SQLAlchemy only); '' when one cannot be read."""
    paths = _paths(**kwargs)
    lib = os.path.join(paths["venv"], "lib")
    dists = sorted(
        f"{py}/{name}"
        for py in (os.listdir(lib) if os.path.isdir(lib) else [])
        if os.path.isdir(os.path.join(lib, py, "site-packages"))
        for name in os.listdir(os.path.join(lib, py, "site-packages"))
        if name.startswith("apache_airflow") and name.endswith(".dist-info")
    )
    try:
        with open(paths["config"], "rb") as fh:
            cfg = hashlib.sha256(fh.read()).hexdigest()
        revisions = _helper("schema_revisions", **kwargs)
    except (OSError, CommandExecutionError) as exc:
        log.debug("airflow: no schema key (%s); asking Airflow", exc)
        return ""
    if not dists or not revisions:
        return ""
    blob = json.dumps({"dists": dists, "cfg": cfg, "revisions": revisions}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def db_migrate(only_if_pending=True, **kwargs):
    """
    Run Airflow's ``db migrate`` under a PostgreSQL advisory lock (nodes that
    race serialise; the later ones find nothing pending). Returns
    ``{"migrated": bool, "pending": [...]}``.

    CLI Example:

    .. code-block:: bash

        salt '*' airflow.db_migrate
    """
    return _helper("db_migrate", {"only_if_pending": bool(only_if_pending)}, timeout=1800, **kwargs)


# -- connections / variables / pools -------------------------------------------------
def connection_get(conn_id, **kwargs):
    """
    A connection's fields (the password masked unless ``reveal=True``),
    or None.

    CLI Example:

    .. code-block:: bash

        salt '*' airflow.connection_get my_postgres
    """
    reveal = kwargs.pop("reveal", False)
    conn = _helper("connection_get", {"conn_id": conn_id}, **kwargs)
    if conn and not reveal:
        conn["password"] = __utils__["ah_secrets.mask"](conn.get("password"))
    return conn


def connection_set(conn_id, secrets=(), **fields):
    """
    Create or update a connection with the given fields (conn_type, host,
    login, password, schema, port, extra, description).

    CLI Example:

    .. code-block:: bash

        salt '*' airflow.connection_set my_pg conn_type=postgres host=db port=5432
    """
    kwargs = {k: fields.pop(k) for k in list(fields) if k in ("venv", "home", "user", "config", "helper")}
    fields = {k: v for k, v in fields.items() if not k.startswith("__")}
    return _helper(
        "connection_set",
        {"conn_id": conn_id, "fields": fields},
        secrets=[fields.get("password"), *secrets],
        **kwargs,
    )


def connection_delete(conn_id, **kwargs):
    """
    Delete a connection; True when it existed.

    CLI Example:

    .. code-block:: bash

        salt '*' airflow.connection_delete my_pg
    """
    return _helper("connection_delete", {"conn_id": conn_id}, **kwargs)


def variable_get(key, **kwargs):
    """
    A variable as ``{"value", "description"}`` or None.

    CLI Example:

    .. code-block:: bash

        salt '*' airflow.variable_get my_var
    """
    return _helper("variable_get", {"key": key}, **kwargs)


def variable_set(key, value, description=None, **kwargs):
    """
    Create or update a variable (value sent on stdin).

    CLI Example:

    .. code-block:: bash

        salt '*' airflow.variable_set my_var 42
    """
    args = {"key": key, "value": str(value), "description": description}
    return _helper("variable_set", args, secrets=[str(value)], **kwargs)


def pool_get(name, **kwargs):
    """
    A pool as ``{"slots", "description", "include_deferred"}`` or None.

    CLI Example:

    .. code-block:: bash

        salt '*' airflow.pool_get default_pool
    """
    return _helper("pool_get", {"name": name}, **kwargs)


def pool_set(name, slots, description="", include_deferred=False, **kwargs):
    """
    Create or update a pool.

    CLI Example:

    .. code-block:: bash

        salt '*' airflow.pool_set etl 8 description='ETL jobs'
    """
    try:
        slots = int(slots)
    except (TypeError, ValueError) as exc:
        raise SaltInvocationError(f"pool {name}: slots must be an integer, got {slots!r}") from exc
    args = {
        "name": name,
        "slots": slots,
        "description": description or "",
        "include_deferred": bool(include_deferred),
    }
    return _helper("pool_set", args, **kwargs)


# -- DAGs ----------------------------------------------------------------------------
def dags_list(**kwargs):
    """
    DAGs known to the metadata DB: dag_id, is_paused, is_stale, fileloc.

    CLI Example:

    .. code-block:: bash

        salt '*' airflow.dags_list
    """
    return _helper("dags_list", **kwargs)


def dag_trigger(dag_id, run_id=None, conf=None, unpause=True, **kwargs):
    """
    Trigger a DAG run (unpausing the DAG first unless ``unpause=False``).
    Returns dag_id, run_id, state.

    CLI Example:

    .. code-block:: bash

        salt node1 airflow.dag_trigger parallel_check run_id=check-1
    """
    args = {"dag_id": dag_id, "run_id": run_id, "conf": conf, "unpause": bool(unpause)}
    return _helper("dag_trigger", args, **kwargs)


def dag_state(dag_id, run_id, **kwargs):
    """
    State of one DAG run with its task instances (state, hostname).

    CLI Example:

    .. code-block:: bash

        salt node1 airflow.dag_state parallel_check check-1
    """
    return _helper("dag_state", {"dag_id": dag_id, "run_id": run_id}, **kwargs)


# -- the node's airflow.cfg ------------------------------------------------------------
def config_file(**kwargs):
    """
    The airflow.cfg this node's Airflow reads (``<home>/airflow.cfg`` unless
    ``config`` is given).

    CLI Example:

    .. code-block:: bash

        salt '*' airflow.config_file
    """
    return _paths(**kwargs)["config"]
