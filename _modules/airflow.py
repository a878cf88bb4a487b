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

Settings come from keyword arguments, else from the minion's config/pillar
(``airflow_ha:airflow:venv``, ``:home``, ``:user``), else the formula's
defaults (/opt/airflow/venv, /var/lib/airflow, airflow).

No command runs before ``<home>/airflow.cfg`` exists: Airflow writes a config
with RANDOM fernet/JWT/secret keys on first use, which must never happen on a
cluster node (every node needs the pillar's keys).
"""

import json
import logging
import os
import pwd
import re
import time
import urllib.error
import urllib.request
from urllib.parse import quote

from salt.exceptions import CommandExecutionError, SaltInvocationError

log = logging.getLogger(__name__)

__virtualname__ = "airflow"

MARKER = "AIRFLOW_HA_RESULT "
DEFAULTS = {
    "venv": "/opt/airflow/venv",
    "home": "/var/lib/airflow",
    "user": "airflow",
}
COMPONENTS_3 = ("api-server", "scheduler", "dag-processor", "triggerer", "worker", "flower")
COMPONENTS_2 = ("webserver", "scheduler", "triggerer", "worker", "flower")


def __virtual__():
    return __virtualname__


# -- plumbing -----------------------------------------------------------------
def _opt(name, kwargs):
    if kwargs.get(name):
        return kwargs[name]
    value = __salt__["config.get"](f"airflow_ha:airflow:{name}", None)
    return value or DEFAULTS[name]


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


def parse_result(stdout):
    """
    Find the helper's answer in ``stdout`` (the last marker line), ignoring any
    noise around it. Returns the decoded dict or None.

    CLI Example:

    .. code-block:: bash

        salt '*' airflow.parse_result 'noise\\nAIRFLOW_HA_RESULT {"ok": true, "result": 1}'
    """
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
    data = parse_result(res.get("stdout"))
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
    paths = _paths(**kwargs)
    if not os.path.isfile(paths["python"]):
        return ""
    res = __salt__["cmd.run_all"](
        [
            paths["python"],
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
    The effective configuration (sensitive values hidden by Airflow), all
    sections or one.

    CLI Example:

    .. code-block:: bash

        salt '*' airflow.config_list celery
    """
    return _helper("config_list", {"section": section}, **kwargs)


def read_cfg_file(path):
    """
    Parse an airflow.cfg file WITHOUT Airflow: ``{section: {key: value}}``
    (raw strings, the file's own content only). Returns {} when it is missing.

    CLI Example:

    .. code-block:: bash

        salt '*' airflow.read_cfg_file /var/lib/airflow/airflow.cfg
    """
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as fh:
        return parse_cfg(fh.read())


_SECTION_RE = re.compile(r"^\s*\[([^\]]+)\]\s*$")
_KEY_RE = re.compile(r"^([^#;\s=][^=]*?)\s*=\s?(.*)$")


def parse_cfg(text):
    """
    Parse airflow.cfg text into ``{section: {key: value}}`` (keys lower-case,
    comments ignored, last duplicate wins).

    CLI Example:

    .. code-block:: bash

        salt '*' airflow.parse_cfg '[core]\\nexecutor = CeleryExecutor'
    """
    data = {}
    section = None
    for line in text.splitlines():
        match = _SECTION_RE.match(line)
        if match:
            section = match.group(1).strip()
            data.setdefault(section, {})
            continue
        if section is None:
            continue
        match = _KEY_RE.match(line)
        if match:
            data[section][match.group(1).strip().lower()] = match.group(2).rstrip()
    return data


def render_cfg(text, values):
    """
    Return ``text`` with ``values`` (``{section: {key: value}}``) set: existing
    keys are replaced in place, missing keys are appended at the end of their
    section, missing sections at the end of the file. Every other line
    (comments, other keys, blank lines) is kept as it is.

    CLI Example:

    .. code-block:: bash

        salt '*' airflow.render_cfg '[core]\\nx = 1' '{"core": {"x": "2"}}'
    """
    lines = text.splitlines()
    want = {s: {str(k).lower(): cfg_str(v) for k, v in keys.items()} for s, keys in values.items()}
    done = {s: set() for s in want}
    out = []
    section = None
    section_end = {}  # section -> index in out after its last non-blank line

    for line in lines:
        match = _SECTION_RE.match(line)
        if match:
            section = match.group(1).strip()
            out.append(line)
            section_end[section] = len(out)
            continue
        kmatch = _KEY_RE.match(line) if section is not None else None
        if kmatch and section in want and kmatch.group(1).strip().lower() in want[section]:
            key = kmatch.group(1).strip().lower()
            out.append(f"{kmatch.group(1).strip()} = {want[section][key]}")
            done[section].add(key)
        else:
            out.append(line)
        if section is not None and line.strip():
            section_end[section] = len(out)

    # Missing keys of existing sections: insert after the section's last line.
    inserts = []
    for sec, keys in want.items():
        missing = [k for k in keys if k not in done[sec]]
        if missing and sec in section_end:
            inserts.append((section_end[sec], [f"{k} = {keys[k]}" for k in missing]))
    for idx, new in sorted(inserts, key=lambda x: x[0], reverse=True):
        out[idx:idx] = new
    # Missing sections at the end.
    for sec, keys in want.items():
        if sec not in section_end and keys:
            if out and out[-1].strip():
                out.append("")
            out.append(f"[{sec}]")
            out.extend(f"{k} = {v}" for k, v in keys.items())
    return "\n".join(out) + "\n"


def cfg_str(value):
    """
    The text airflow.cfg holds for ``value`` (booleans as True/False, None as
    an empty string).

    CLI Example:

    .. code-block:: bash

        salt '*' airflow.cfg_str true
    """
    if isinstance(value, bool):
        return "True" if value else "False"
    if value is None:
        return ""
    return str(value)


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


def normalize_roles(roles):
    """
    Roles as a sorted list (accepts a list or a comma-separated string).

    CLI Example:

    .. code-block:: bash

        salt '*' airflow.normalize_roles Admin,Op
    """
    if roles is None:
        return None
    if isinstance(roles, str):
        roles = [r.strip() for r in roles.split(",") if r.strip()]
    if not isinstance(roles, (list, tuple)) or not roles:
        raise SaltInvocationError("roles must be a non-empty list of role names, e.g. ['Admin']")
    return sorted(str(r) for r in roles)


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
        "roles": normalize_roles(roles),
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
        "roles": normalize_roles(roles),
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
    whether ``password`` is its current password, read in one Airflow start-up
    (what ``airflow.user_present`` needs).

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

    CLI Example:

    .. code-block:: bash

        salt '*' airflow.db_pending_migrations
    """
    return _helper("db_pending_migrations", **kwargs)


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


# -- health ---------------------------------------------------------------------------
def _http_json(url, timeout):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - local URL
            body = resp.read().decode("utf-8", "replace")
            try:
                return resp.status, json.loads(body)
            except ValueError:
                return resp.status, body
    except urllib.error.HTTPError as exc:
        return exc.code, None
    except (urllib.error.URLError, OSError) as exc:
        return None, str(getattr(exc, "reason", exc))


def health(host=None, api_port=None, scheduler_port=None, flower_port=None, timeout=5, **kwargs):
    """
    Health of the Airflow components on this node: each unit's systemd state,
    plus the API server's health endpoint (3.x ``/api/v2/monitor/health``,
    2.x ``/health``), the scheduler's health server and Flower's
    ``/healthcheck``. Hosts and ports come from this node's airflow.cfg (what
    the components bind to) unless given. A component counts as healthy when
    its unit is active and its probe (if any) answers 200 (3.x API: every
    sub-system reports healthy). Units not enabled here are reported with
    ``"enabled": false`` and do not make the node unhealthy.

    CLI Example:

    .. code-block:: bash

        salt '*' airflow.health
        salt node1 airflow.health host=10.77.0.11 api_port=8080
    """
    paths = _paths(**kwargs)
    cfg = read_cfg_file(paths["config"])

    def pick(section, key, default):
        value = (cfg.get(section) or {}).get(key) or default
        return "127.0.0.1" if value in ("0.0.0.0", "::", "") else value

    major = int(str(version(**kwargs) or "3").split(".", 1)[0])
    components = COMPONENTS_3 if major >= 3 else COMPONENTS_2
    if major >= 3:
        api = (host or pick("api", "host", "127.0.0.1"), api_port or pick("api", "port", 8080))
    else:
        api = (
            host or pick("webserver", "web_server_host", "127.0.0.1"),
            api_port or pick("webserver", "web_server_port", 8080),
        )
    sched = (
        host or pick("scheduler", "scheduler_health_check_server_host", "127.0.0.1"),
        scheduler_port or pick("scheduler", "scheduler_health_check_server_port", 8974),
    )
    flower = (
        host or pick("celery", "flower_host", "127.0.0.1"),
        flower_port or pick("celery", "flower_port", 5555),
    )
    probes = {
        "api-server": f"http://{api[0]}:{api[1]}/api/v2/monitor/health",
        "webserver": f"http://{api[0]}:{api[1]}/health",
        "scheduler": f"http://{sched[0]}:{sched[1]}/health",
        "flower": f"http://{flower[0]}:{flower[1]}/healthcheck",
    }
    out = {}
    healthy = True
    for comp in components:
        unit = f"airflow-{comp}"
        enabled = bool(__salt__["service.enabled"](unit))
        active = bool(__salt__["service.status"](unit))
        entry = {"unit": unit, "enabled": enabled, "active": active}
        ok = active
        if comp in probes and active:
            status, body = _http_json(probes[comp], timeout)
            entry["http_status"] = status
            if isinstance(body, dict):
                entry["detail"] = body
            ok = status == 200
            if comp == "api-server" and isinstance(body, dict):
                ok = ok and all(
                    (v or {}).get("status") in ("healthy", None) for v in body.values() if isinstance(v, dict)
                )
        entry["healthy"] = ok
        if enabled and not ok:
            healthy = False
        out[comp] = entry
    out["healthy"] = healthy
    return out


# -- desired configuration ----------------------------------------------------------------
FAB_AUTH_MANAGER = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
CELERY_CONFIG_MODULE = "airflow_ha_celery_config.CELERY_CONFIG"


def _need(data, path):
    cur = data
    for part in path.split(":"):
        if not isinstance(cur, dict) or part not in cur or cur[part] in (None, ""):
            raise SaltInvocationError(
                f"pillar key airflow_ha:{path} is missing or empty: set it in the airflow_ha pillar "
                "(see pillar.example)"
            )
        cur = cur[part]
    return cur


def major_of(version_string):
    """
    Major version (int) of an Airflow version string; raises a clear error for
    unsupported ones.

    CLI Example:

    .. code-block:: bash

        salt '*' airflow.major_of 3.3.2
    """
    match = re.match(r"^\s*(\d+)\.(\d+)", str(version_string))
    if not match or match.group(1) not in ("2", "3"):
        raise SaltInvocationError(
            f"airflow_ha:airflow:version {version_string!r} is not supported: use 3.3.x (default) or 2.11.x"
        )
    return int(match.group(1))


def desired_config(ah):
    """
    The airflow.cfg values the formula sets on this node, ``{section: {key:
    value}}``, computed from the formula settings ``ah`` (map.jinja), with
    ``ah.airflow.config`` (user overrides) merged last.

    CLI Example:

    .. code-block:: bash

        salt node1 airflow.desired_config "$(salt-call --out=json airflow_ha.settings reveal=True)"
    """
    af = ah.get("airflow") or {}
    major = major_of(af.get("version", "3.3.2"))
    address = _need(ah, "address")
    home = af.get("home", DEFAULTS["home"])

    pg = ah.get("postgresql") or {}
    pgb = ah.get("pgbouncer") or {}
    db_port = (
        pgb.get("port", 6432) if pgb.get("enabled") else (ah.get("haproxy") or {}).get("primary_port", 5000)
    )
    db_pw = quote(str(_need(ah, "secrets:airflow_db_password")), safe="")
    db_url = (
        f"postgresql+psycopg2://{quote(str(pg.get('user', 'airflow')), safe='')}:{db_pw}"
        f"@127.0.0.1:{db_port}/{pg.get('database', 'airflow')}"
    )

    mq = ah.get("rabbitmq") or {}
    mq_pw = quote(str(_need(ah, "secrets:rabbitmq_password")), safe="")
    mq_user = quote(str(mq.get("user", "airflow")), safe="")
    vhost = quote(str(mq.get("vhost", "airflow")), safe="")
    brokers = [m["address"] for m in ((ah.get("members") or {}).get("broker") or [])]
    if mq.get("broker_url_nodes", "all") == "local" or not brokers:
        brokers = [address if address in brokers else "127.0.0.1"]
    elif address in brokers:  # this node's broker first, then the others
        idx = brokers.index(address)
        brokers = brokers[idx:] + brokers[:idx]
    broker_url = ";".join(f"amqp://{mq_user}:{mq_pw}@{b}:{mq.get('port', 5672)}/{vhost}" for b in brokers)

    # The foundation's settings() derives the same URLs: prefer them when present.
    db_url = af.get("sql_alchemy_conn") or db_url
    broker_url = af.get("broker_url") or broker_url
    result_backend = af.get("result_backend") or "db+" + db_url
    api_port = af.get("api_port", 8080)
    haproxy_api = (ah.get("haproxy") or {}).get("api_port", 8090)
    cfg = {
        "core": {
            "executor": "CeleryExecutor",
            "auth_manager": FAB_AUTH_MANAGER,
            "fernet_key": _need(ah, "secrets:fernet_key"),
            "dags_folder": f"{home}/dags",
            "plugins_folder": f"{home}/plugins",
            "parallelism": af.get("parallelism", 32),
            "load_examples": "False",
        },
        "database": {"sql_alchemy_conn": db_url},
        "celery": {
            "broker_url": broker_url,
            "result_backend": result_backend,
            "worker_concurrency": af.get("worker_concurrency", 4),
            "flower_host": address,
            "flower_port": af.get("flower_port", 5555),
            # Flower can stop workers and revoke tasks: HTTP basic auth with the
            # Airflow admin's login (/healthcheck stays open for probes).
            "flower_basic_auth": (
                f"{(af.get('admin') or {}).get('username', 'admin')}:{_need(ah, 'secrets:admin_password')}"
            ),
        },
        "scheduler": {
            "enable_health_check": "True",
            "scheduler_health_check_server_host": address,
            "scheduler_health_check_server_port": af.get("scheduler_health_port", 8974),
        },
        "logging": {
            "base_log_folder": f"{home}/logs",
            "logging_level": "INFO",
        },
    }
    if mq.get("queue_type", "quorum") == "quorum":
        cfg["celery"]["celery_config_options"] = CELERY_CONFIG_MODULE
    if major >= 3:
        cfg["core"]["execution_api_server_url"] = (
            af.get("execution_api_server_url") or f"http://127.0.0.1:{haproxy_api}/execution/"
        )
        cfg["api"] = {
            "host": address,
            "port": api_port,
            "secret_key": _need(ah, "secrets:api_secret_key"),
        }
        cfg["api_auth"] = {"jwt_secret": _need(ah, "secrets:jwt_secret")}
        cfg["dag_processor"] = {"refresh_interval": af.get("dag_refresh_interval", 10)}
    else:
        cfg["webserver"] = {
            "web_server_host": address,
            "web_server_port": api_port,
            "secret_key": _need(ah, "secrets:api_secret_key"),
        }
        cfg["scheduler"]["dag_dir_list_interval"] = af.get("dag_refresh_interval", 10)
    overrides = af.get("config") or {}
    if not isinstance(overrides, dict):
        raise SaltInvocationError("airflow_ha:airflow:config must be a mapping section -> key -> value")
    for section, keys in overrides.items():
        if not isinstance(keys, dict):
            raise SaltInvocationError(
                f"airflow_ha:airflow:config:{section} must be a mapping key -> value, got {type(keys).__name__}"
            )
        cfg.setdefault(section, {}).update({str(k).lower(): v for k, v in keys.items()})
    return {s: {k: cfg_str(v) for k, v in keys.items()} for s, keys in cfg.items()}


def units_for_key(section, key, major=3):
    """
    The Airflow components that read an airflow.cfg key (so only they restart
    when it changes). Unknown keys affect every component.

    CLI Example:

    .. code-block:: bash

        salt '*' airflow.units_for_key celery worker_concurrency
    """
    allc = COMPONENTS_3 if int(major) >= 3 else COMPONENTS_2
    api = "api-server" if int(major) >= 3 else "webserver"
    section = section.lower()
    key = key.lower()
    if section == "celery":
        if key.startswith("worker_"):
            return ["worker"]
        if key.startswith("flower_"):
            return ["flower"]
    if section in ("api", "webserver", "fab") and key in (
        "host",
        "port",
        "workers",
        "web_server_host",
        "web_server_port",
        "web_server_worker_timeout",
        "workers",
        "access_logfile",
        "expose_config",
    ):
        return [api]
    if section == "scheduler" and key not in ("dag_dir_list_interval",):
        return ["scheduler"]
    if section == "dag_processor":
        return ["dag-processor"] if int(major) >= 3 else ["scheduler"]
    if section == "triggerer":
        return ["triggerer"]
    return list(allc)


def config_groups(values, major=3):
    """
    Split ``{section: {key: value}}`` into groups of keys read by the same
    components: ``{group: {"units": [...], "values": {section: {key: v}}}}``.
    Group ``common`` holds keys every component reads. The SLS makes one
    ``airflow.config_managed`` state per group and each service watches only
    the groups naming it.

    CLI Example:

    .. code-block:: bash

        salt '*' airflow.config_groups '{"celery": {"worker_concurrency": 4}}'
    """
    allc = COMPONENTS_3 if int(major) >= 3 else COMPONENTS_2
    groups = {}
    for section, keys in (values or {}).items():
        for key, value in keys.items():
            units = units_for_key(section, key, major)
            name = "common" if set(units) == set(allc) else "-".join(sorted(units))
            grp = groups.setdefault(name, {"units": sorted(units), "values": {}})
            grp["values"].setdefault(section, {})[key] = value
    return groups


ROLE_COMPONENTS = {
    "api": ("api-server", "webserver"),
    "scheduler": ("scheduler", "scheduler"),
    "dag_processor": ("dag-processor", None),
    "triggerer": ("triggerer", "triggerer"),
    "worker": ("worker", "worker"),
    "flower": ("flower", "flower"),
}
COMMANDS = {
    "api-server": "api-server",
    "webserver": "webserver",
    "scheduler": "scheduler",
    "dag-processor": "dag-processor",
    "triggerer": "triggerer",
    "worker": "celery worker",
    "flower": "celery flower",
}


def components(roles, major=3):
    """
    The Airflow components (systemd units ``airflow-<component>``) of this
    Airflow major version, each with ``enabled`` (this node's roles ask for
    it) and the ``airflow`` sub-command it runs. 2.x has a webserver instead
    of the api-server and no standalone dag-processor.

    CLI Example:

    .. code-block:: bash

        salt '*' airflow.components '[api, worker]' 3
    """
    idx = 0 if int(major) >= 3 else 1
    allc = COMPONENTS_3 if int(major) >= 3 else COMPONENTS_2
    wanted = {ROLE_COMPONENTS[r][idx] for r in (roles or []) if r in ROLE_COMPONENTS}
    return {
        comp: {"enabled": comp in wanted, "command": COMMANDS[comp], "unit": f"airflow-{comp}"}
        for comp in allc
    }


def wait_healthy(timeout=300, interval=5, **kwargs):
    """
    Poll :py:func:`health` until every enabled component on this node is
    healthy; return the last report. Raises with the unhealthy components
    after ``timeout`` seconds (the orchestration's health gate).

    CLI Example:

    .. code-block:: bash

        salt '*' airflow.wait_healthy timeout=600
    """
    deadline = time.monotonic() + float(timeout)
    while True:
        report = health(**kwargs)
        if report.get("healthy"):
            return report
        if time.monotonic() >= deadline:
            bad = sorted(
                k for k, v in report.items() if isinstance(v, dict) and v["enabled"] and not v["healthy"]
            )
            raise CommandExecutionError(f"Airflow not healthy after {timeout} s: {', '.join(bad)}")
        time.sleep(float(interval))
