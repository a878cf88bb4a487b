"""
States for Apache Airflow installed by the airflow_ha formula.

Why custom: Salt has no Airflow states. ``ini.options_present`` could set
airflow.cfg keys, but it reports the old and new values in ``changes`` (the
fernet key, database and broker URLs would land in job returns) and rewrites
the file through its own parser. ``config_managed`` edits only the given keys
line by line and masks sensitive values. Users, migrations, connections,
variables and pools go through the ``airflow`` execution module (Airflow's
Python API via a helper, secrets on stdin only).

Every function follows read -> compare -> test mode -> act -> before/after.
"""

import json
import os
import tempfile

from salt.exceptions import CommandExecutionError, SaltInvocationError

__virtualname__ = "airflow"

PATH_KWARGS = ("venv", "home", "user", "config", "helper")


def __virtual__():
    if "airflow.version" in __salt__:
        return __virtualname__
    return (False, "the airflow execution module (_modules/airflow.py) is not loaded")


def _ret(name):
    return {"name": name, "result": True, "changes": {}, "comment": ""}


def _paths(kwargs):
    return {k: kwargs[k] for k in PATH_KWARGS if kwargs.get(k)}


def _mask(value="<a secret>"):
    """The formula's one mask (ah_secrets) for a secret value; None and '' stay."""
    return __utils__["ah_secrets.mask"](value)


def _fail(ret, exc):
    ret["result"] = False
    ret["comment"] = str(exc)
    return ret


# -- airflow.cfg -------------------------------------------------------------------------
def _cfg(name):
    """airflow.cfg at ``name``: (exists, text, {section: {key: value}})."""
    exists = os.path.isfile(name)
    text = ""
    if exists:
        with open(name, encoding="utf-8") as fh:
            text = fh.read()
    return exists, text, __utils__["ah_airflow_cfg.parse_cfg"](text)


def _write_atomic(name, text, exists, user, group, mode):
    directory = os.path.dirname(name) or "."
    if not os.path.isdir(directory):
        raise CommandExecutionError(f"directory {directory} does not exist: create it first")
    fd, tmp = tempfile.mkstemp(prefix=".airflow.cfg.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        if exists:
            st = os.stat(name)
            os.chmod(tmp, st.st_mode & 0o7777)
            os.chown(tmp, st.st_uid, st.st_gid)
        else:
            os.chmod(tmp, int(str(mode or "0600"), 8))
            if user or group:
                __salt__["file.chown"](tmp, user or "root", group or "root")
        os.replace(tmp, name)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def config_managed(name, sections, sensitive=None, user=None, group=None, mode=None):
    """
    Set ``sections`` (``{section: {key: value}}``) in the airflow.cfg at
    ``name``. Other keys, comments and blank lines are left alone. Changes are
    reported per key (``section.key: {old, new}``) with sensitive values
    masked. The file is replaced atomically and keeps its owner and mode (or
    gets ``user``/``group``/``mode`` when it is created).

    A value may hold secret references (``@@pillar:PATH@@``, or
    ``@@pillar_url:PATH@@`` percent-encoded, see ``_utils/ah_secrets.py``):
    they are resolved from this minion's pillar here, so the rendered SLS
    (``airflow.desired_config(ah, secret_refs=True)``) holds no secret. A
    value that held a reference is always masked in ``changes``.

    sensitive
        Extra ``section.key`` names to mask, besides the formula's list
        (``ah_secrets.SENSITIVE_WORDS``: passwords, secrets, keys, connection
        and broker URLs, ...).

    .. code-block:: yaml

        airflow_ha-airflow-config-common:
          airflow.config_managed:
            - name: /var/lib/airflow/airflow.cfg
            - sections:
                core:
                  executor: CeleryExecutor
                  fernet_key: '@@pillar:airflow_ha:secrets:fernet_key@@'
    """
    ret = _ret(name)
    if not isinstance(sections, dict) or not all(isinstance(v, dict) for v in sections.values()):
        return _fail(ret, "sections must be a mapping section -> key -> value")
    extra = [str(s).lower() for s in (sensitive or [])]
    want = {}
    try:
        for section, keys in sections.items():
            for key, value in keys.items():
                text = __utils__["ah_airflow_cfg.cfg_str"](value)
                if __utils__["ah_secrets.has_refs"](text):
                    extra.append(f"{section}.{key}".lower())
                    text = __utils__["ah_secrets.resolve"](text, __pillar__)
                want.setdefault(section, {})[str(key).lower()] = text
    except KeyError as exc:
        return _fail(ret, f"pillar key {exc.args[0]} is not set: the airflow.cfg of {name} needs it")

    def diff_of(current):
        diff = {}
        for section, keys in want.items():
            for key, new_val in keys.items():
                old_val = current.get(section, {}).get(key)
                if old_val != new_val:
                    mask = __utils__["ah_secrets.mask_cfg"]
                    diff[f"{section}.{key}"] = {
                        "old": mask(section, key, old_val, extra),
                        "new": mask(section, key, new_val, extra),
                    }
        return diff

    try:
        # read -> compare
        exists, text, current = _cfg(name)
        diff = diff_of(current)
        if not diff:
            ret["comment"] = f"{sum(len(k) for k in want.values())} keys already set in {name}"
            return ret
        # test mode: the same changes a real run reports
        ret["changes"] = diff
        if __opts__.get("test"):
            ret["result"] = None
            ret["comment"] = f"{len(diff)} key(s) would be set in {name}"
            return ret
        # act, then re-read and verify
        _write_atomic(name, __utils__["ah_airflow_cfg.render_cfg"](text, want), exists, user, group, mode)
        left = diff_of(_cfg(name)[2])
    except (OSError, CommandExecutionError) as exc:
        ret["changes"] = {}
        return _fail(ret, f"could not write {name}: {exc}")
    if left:
        return _fail(ret, f"{name} was written but still differs in {', '.join(sorted(left))}")
    ret["comment"] = f"{len(diff)} key(s) set in {name}"
    return ret


# -- the one shape of the states below -------------------------------------------------------
def _converge(ret, what, read, compare, write, verb=None, same="is as wanted"):
    """The one shape of the states below: read -> compare -> test mode (the
    same ``changes`` a real run reports) -> act -> re-read and verify.
    ``compare(current)`` returns the masked diff; ``write(current)`` acts;
    ``verb`` says what acting does (default: created, or updated)."""
    try:
        cur = read()
        diff = compare(cur)
        if not diff:
            ret["comment"] = f"{what} {same}"
            return ret
        verb = verb or ("created" if cur is None else "updated")
        ret["changes"] = diff
        if __opts__.get("test"):
            ret["result"] = None
            ret["comment"] = f"{what} would be {verb}"
            return ret
        write(cur)
        left = compare(read())
    except (CommandExecutionError, SaltInvocationError) as exc:
        ret["changes"] = {}
        return _fail(ret, exc)
    if left:
        return _fail(ret, f"{what} still differs after the change: {', '.join(sorted(left))}")
    ret["comment"] = f"{what} {verb}"
    return ret


# -- users ----------------------------------------------------------------------------------
def _user_diff(name, status, want):
    """What differs between Airflow's user (``airflow.user_status``, None when
    there is none) and ``want``."""
    user = (status or {}).get("user")
    if user is None:
        return {"user": {"old": None, "new": name}}
    diff = {k: {"old": user.get(k), "new": v} for k, v in want.items() if user.get(k) != v}
    if not status["password_ok"]:
        diff["password"] = {"old": _mask(), "new": _mask()}
    return diff


def user_present(
    name,
    password=None,
    email=None,
    firstname=None,
    lastname=None,
    roles=("Admin",),
    password_pillar=None,
    **kwargs,
):
    """
    Ensure an Airflow (FAB) user exists with these roles, email and names, and
    that its password is ``password`` (or the pillar value at
    ``password_pillar``, read on the minion: the rendered SLS then holds no
    secret). The password is changed only when it no longer matches (checked
    against the stored hash); it never appears in changes or comments.

    .. code-block:: yaml

        airflow_ha-airflow-admin:
          airflow.user_present:
            - name: admin
            - password_pillar: airflow_ha:secrets:admin_password
            - email: admin@example.com
            - roles: [Admin]
    """
    ret = _ret(name)
    paths = _paths(kwargs)
    if password_pillar:
        password = __utils__["ah_secrets.pillar_get"](__pillar__, password_pillar)
    if not password:
        where = password_pillar or "airflow_ha:secrets:admin_password"
        return _fail(ret, f"user {name}: password is empty (set the pillar key {where})")
    if not email:
        return _fail(ret, f"user {name}: email is required (FAB refuses users without one)")
    try:
        roles = __utils__["ah_airflow_cfg.normalize_roles"](
            list(roles) if not isinstance(roles, str) else roles
        )
    except SaltInvocationError as exc:
        return _fail(ret, f"user {name}: {exc}")
    want = {"email": email, "firstname": firstname or name, "lastname": lastname or name, "roles": roles}

    def read():
        status = __salt__["airflow.user_status"](name, password, **paths)
        return status if status["user"] is not None else None

    def write(cur):
        if cur is None:
            __salt__["airflow.user_create"](
                name, password, email, want["firstname"], want["lastname"], roles, **paths
            )
            return
        upd = {k: v["new"] for k, v in _user_diff(name, cur, want).items() if k != "password"}
        pw = None if cur["password_ok"] else password
        __salt__["airflow.user_update"](name, password=pw, **upd, **paths)

    return _converge(ret, f"user {name}", read, lambda cur: _user_diff(name, cur, want), write)


def user_absent(name, **kwargs):
    """
    Ensure an Airflow (FAB) user does not exist.

    .. code-block:: yaml

        airflow_ha-airflow-user-bob-absent:
          airflow.user_absent:
            - name: bob
    """
    paths = _paths(kwargs)
    return _converge(
        _ret(name),
        f"user {name}",
        lambda: __salt__["airflow.user_get"](name, **paths),
        lambda cur: {"user": {"old": name, "new": None}} if cur is not None else {},
        lambda cur: __salt__["airflow.user_delete"](name, **paths),
        verb="deleted",
        same="is already absent",
    )


# -- database -----------------------------------------------------------------------------------
def db_migrated(name, **kwargs):
    """
    Ensure Airflow's metadata schema is migrated. ``db migrate`` runs only when
    migrations are pending, under a PostgreSQL advisory lock, so three nodes
    applying at once serialise and only the first one migrates (the others
    re-check under the lock and find nothing to do). ``changes`` is
    ``{"migrations": {"old": <pending>, "new": 0}}`` in test mode and in a
    real run alike.

    .. code-block:: yaml

        airflow_ha-airflow-db-migrated:
          airflow.db_migrated:
            - name: airflow
    """
    ret = _ret(name)
    paths = _paths(kwargs)
    try:
        pending = __salt__["airflow.db_pending_migrations"](**paths)
        if not pending:
            ret["comment"] = "the Airflow schema is up to date"
            return ret
        if __opts__.get("test"):
            ret["result"] = None
            ret["changes"] = {"migrations": {"old": len(pending), "new": 0}}
            ret["comment"] = f"{len(pending)} migration(s) would be applied"
            return ret
        res = __salt__["airflow.db_migrate"](only_if_pending=True, **paths)
        left = __salt__["airflow.db_pending_migrations"](**paths)
    except CommandExecutionError as exc:
        return _fail(ret, exc)
    if left:
        return _fail(ret, f"migrations still pending after db migrate: {', '.join(map(str, left))}")
    if res.get("migrated"):
        ret["changes"] = {"migrations": {"old": len(res.get("pending") or pending), "new": 0}}
        ret["comment"] = "Airflow schema migrated"
    else:
        ret["comment"] = "another node migrated the schema meanwhile"
    return ret


# -- the venv across the 2.x -> 3.x package split ----------------------------------------------
def venv_compatible(name, version):
    """
    Remove the Airflow venv at ``name`` when the apache-airflow installed in it
    has a different major version than ``version``; the install states that
    follow build a fresh venv. Same major (or no venv yet): nothing to do.

    Why: Airflow 3 split ``apache-airflow`` into ``apache-airflow-core`` and
    ``apache-airflow-task-sdk``. Upgrading a 2.x venv in place, pip installs
    the new distributions, then uninstalls apache-airflow 2.x together with
    files the new core now owns (``airflow/utils/__init__.py`` ...): the venv
    is left broken (``cannot import name 'db' from 'airflow.utils' (unknown
    location)``, seen in the lab). The venv holds only what the formula pip
    installs, so a rebuild loses nothing; running units keep their loaded
    code until the install's watch restarts them.

    .. code-block:: yaml

        airflow_ha-airflow-venv-compatible:
          airflow.venv_compatible:
            - name: /opt/airflow/venv
            - version: 3.3.2
    """
    wanted = str(version).split(".")[0]

    def compare(installed):
        if not installed or installed.split(".")[0] == wanted:
            return {}
        return {"venv": {"old": f"apache-airflow {installed}", "new": f"removed, rebuilt for {version}"}}

    return _converge(
        _ret(name),
        f"the venv {name}",
        lambda: __salt__["airflow.version"](venv=name),
        compare,
        lambda installed: __salt__["file.remove"](name),
        verb=f"removed: its major version differs from {version}; the next states rebuild it",
        same=f"needs no rebuild for {version} (no Airflow yet, or the same major version)",
    )


# -- connections / variables / pools ----------------------------------------------------------------
def connection_present(
    name,
    conn_type,
    host=None,
    login=None,
    password=None,
    schema=None,
    port=None,
    extra=None,
    description=None,
    **kwargs,
):
    """
    Ensure an Airflow connection exists with these fields. The password (and
    ``extra``, which often holds tokens) are shown masked in changes.

    .. code-block:: yaml

        airflow_ha-airflow-connection-warehouse:
          airflow.connection_present:
            - name: warehouse
            - conn_type: postgres
            - host: db.example
            - login: etl
            - password: {{ pillar.warehouse_password }}
    """
    paths = _paths(kwargs)
    if isinstance(extra, dict):
        extra = json.dumps(extra, sort_keys=True)
    want = {
        "conn_type": conn_type,
        "host": host,
        "login": login,
        "password": password,
        "schema": schema,
        "port": int(port) if port not in (None, "") else None,
        "extra": extra,
        "description": description,
    }

    def compare(cur):
        diff = {}
        for field, value in want.items():
            old = (cur or {}).get(field)
            if (cur is None and value is not None) or (cur is not None and old != value):
                secret = field in ("password", "extra")
                diff[field] = {"old": _mask(old) if secret else old, "new": _mask(value) if secret else value}
        return diff

    return _converge(
        _ret(name),
        f"connection {name}",
        lambda: __salt__["airflow.connection_get"](name, reveal=True, **paths),
        compare,
        lambda cur: __salt__["airflow.connection_set"](name, **want, **paths),
    )


def variable_present(name, value, description=None, sensitive=True, **kwargs):
    """
    Ensure an Airflow variable has ``value``. Values are masked in changes
    unless ``sensitive=False``.

    .. code-block:: yaml

        airflow_ha-airflow-variable-env:
          airflow.variable_present:
            - name: environment
            - value: production
            - sensitive: false
    """
    paths = _paths(kwargs)
    value = str(value)

    def show(v):
        return _mask(v) if sensitive else v

    def compare(cur):
        diff = {}
        if cur is None or cur.get("value") != value:
            diff["value"] = {"old": show(cur.get("value") if cur else None), "new": show(value)}
        if description is not None and (cur or {}).get("description") != description:
            diff["description"] = {"old": (cur or {}).get("description"), "new": description}
        return diff

    return _converge(
        _ret(name),
        f"variable {name}",
        lambda: __salt__["airflow.variable_get"](name, **paths),
        compare,
        lambda cur: __salt__["airflow.variable_set"](name, value, description=description, **paths),
    )


def pool_present(name, slots, description="", include_deferred=False, **kwargs):
    """
    Ensure an Airflow pool exists with ``slots`` slots.

    .. code-block:: yaml

        airflow_ha-airflow-pool-etl:
          airflow.pool_present:
            - name: etl
            - slots: 8
    """
    ret = _ret(name)
    paths = _paths(kwargs)
    try:
        slots = int(slots)
    except (TypeError, ValueError):
        return _fail(ret, f"pool {name}: slots must be an integer, got {slots!r}")
    want = {"slots": slots, "description": description or "", "include_deferred": bool(include_deferred)}

    def compare(cur):
        return {k: {"old": (cur or {}).get(k), "new": v} for k, v in want.items() if (cur or {}).get(k) != v}

    return _converge(
        ret,
        f"pool {name}",
        lambda: __salt__["airflow.pool_get"](name, **paths),
        compare,
        lambda cur: __salt__["airflow.pool_set"](name, **want, **paths),
    )
