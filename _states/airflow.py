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
def config_managed(name, sections, sensitive=None, user=None, group=None, mode=None):
    """
    Set ``sections`` (``{section: {key: value}}``) in the airflow.cfg at
    ``name``. Other keys, comments and blank lines are left alone. Changes are
    reported per key (``section.key: {old, new}``) with sensitive values
    masked. The file is replaced atomically and keeps its owner and mode (or
    gets ``user``/``group``/``mode`` when it is created).

    sensitive
        Extra ``section.key`` names to mask, besides the built-in list
        (passwords, secrets, keys, connection and broker URLs).

    .. code-block:: yaml

        airflow_ha-airflow-config-common:
          airflow.config_managed:
            - name: /var/lib/airflow/airflow.cfg
            - sections:
                core:
                  executor: CeleryExecutor
    """
    ret = _ret(name)
    if not isinstance(sections, dict) or not all(isinstance(v, dict) for v in sections.values()):
        return _fail(ret, "sections must be a mapping section -> key -> value")
    extra = list(sensitive or [])

    def masked(section, key, value):
        return __utils__["ah_secrets.mask_cfg"](section, key, value, extra)

    # read
    exists = os.path.isfile(name)
    text = ""
    if exists:
        with open(name, encoding="utf-8") as fh:
            text = fh.read()
    current = __salt__["airflow.parse_cfg"](text)
    # compare
    diff = {}
    for section, keys in sections.items():
        for key, value in keys.items():
            new_val = __salt__["airflow.cfg_str"](value)
            old_val = current.get(section, {}).get(str(key).lower())
            if old_val != new_val:
                diff[f"{section}.{str(key).lower()}"] = {
                    "old": masked(section, key, old_val),
                    "new": masked(section, key, new_val),
                }
    if not diff:
        ret["comment"] = f"{len(sum((list(k) for k in sections.values()), []))} keys already set in {name}"
        return ret
    # test mode
    if __opts__.get("test"):
        ret["result"] = None
        ret["changes"] = diff
        ret["comment"] = f"{len(diff)} key(s) would be set in {name}"
        return ret
    # act
    new_text = __salt__["airflow.render_cfg"](text, sections)
    directory = os.path.dirname(name) or "."
    try:
        if not os.path.isdir(directory):
            return _fail(ret, f"directory {directory} does not exist")
        fd, tmp = tempfile.mkstemp(prefix=".airflow.cfg.", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(new_text)
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
    except (OSError, CommandExecutionError) as exc:
        return _fail(ret, f"could not write {name}: {exc}")
    ret["changes"] = diff
    ret["comment"] = f"{len(diff)} key(s) set in {name}"
    return ret


# -- users ----------------------------------------------------------------------------------
def user_present(name, password, email, firstname=None, lastname=None, roles=("Admin",), **kwargs):
    """
    Ensure an Airflow (FAB) user exists with these roles, email and names, and
    that ``password`` is its password. The password is changed only when it
    no longer matches (checked against the stored hash); it never appears in
    changes or comments.

    .. code-block:: yaml

        airflow_ha-airflow-admin:
          airflow.user_present:
            - name: admin
            - password: {{ ah.secrets.admin_password }}
            - email: admin@example.com
            - roles: [Admin]
    """
    ret = _ret(name)
    paths = _paths(kwargs)
    if not password:
        return _fail(ret, f"user {name}: password is empty (set airflow_ha:secrets:admin_password)")
    try:
        roles = __salt__["airflow.normalize_roles"](list(roles) if not isinstance(roles, str) else roles)
    except SaltInvocationError as exc:
        return _fail(ret, f"user {name}: {exc}")
    firstname = firstname or name
    lastname = lastname or name
    try:
        status = __salt__["airflow.user_status"](name, password, **paths)
        user = status["user"]
        if user is None:
            if __opts__.get("test"):
                ret["result"] = None
                ret["changes"] = {"user": {"old": None, "new": name}}
                ret["comment"] = f"user {name} would be created"
                return ret
            __salt__["airflow.user_create"](name, password, email, firstname, lastname, roles, **paths)
            ret["changes"] = {"user": {"old": None, "new": name}, "roles": roles}
            ret["comment"] = f"user {name} created"
            return ret
        want = {"email": email, "firstname": firstname, "lastname": lastname, "roles": roles}
        diff = {k: {"old": user.get(k), "new": v} for k, v in want.items() if user.get(k) != v}
        pw_ok = status["password_ok"]
        if not pw_ok:
            diff["password"] = {"old": _mask(), "new": _mask()}
        if not diff:
            ret["comment"] = f"user {name} is as wanted"
            return ret
        if __opts__.get("test"):
            ret["result"] = None
            ret["changes"] = diff
            ret["comment"] = f"user {name} would be updated: {', '.join(sorted(diff))}"
            return ret
        upd = {k: v["new"] for k, v in diff.items() if k != "password"}
        __salt__["airflow.user_update"](name, password=None if pw_ok else password, **upd, **paths)
    except (CommandExecutionError, SaltInvocationError) as exc:
        return _fail(ret, exc)
    ret["changes"] = diff
    ret["comment"] = f"user {name} updated: {', '.join(sorted(diff))}"
    return ret


def user_absent(name, **kwargs):
    """
    Ensure an Airflow (FAB) user does not exist.

    .. code-block:: yaml

        airflow_ha-airflow-user-bob-absent:
          airflow.user_absent:
            - name: bob
    """
    ret = _ret(name)
    paths = _paths(kwargs)
    try:
        user = __salt__["airflow.user_get"](name, **paths)
        if user is None:
            ret["comment"] = f"user {name} is already absent"
            return ret
        if __opts__.get("test"):
            ret["result"] = None
            ret["changes"] = {"user": {"old": name, "new": None}}
            ret["comment"] = f"user {name} would be deleted"
            return ret
        __salt__["airflow.user_delete"](name, **paths)
    except CommandExecutionError as exc:
        return _fail(ret, exc)
    ret["changes"] = {"user": {"old": name, "new": None}}
    ret["comment"] = f"user {name} deleted"
    return ret


# -- database -----------------------------------------------------------------------------------
def db_migrated(name, **kwargs):
    """
    Ensure Airflow's metadata schema is migrated. ``db migrate`` runs only when
    migrations are pending, under a PostgreSQL advisory lock, so three nodes
    applying at once serialise and only the first one migrates (the others
    re-check under the lock and find nothing to do).

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
            ret["changes"] = {"pending_migrations": len(pending)}
            ret["comment"] = f"{len(pending)} migration(s) would be applied"
            return ret
        res = __salt__["airflow.db_migrate"](only_if_pending=True, **paths)
    except CommandExecutionError as exc:
        return _fail(ret, exc)
    if res.get("migrated"):
        ret["changes"] = {"applied_migrations": len(res.get("pending") or [])}
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
    ret = _ret(name)
    wanted = str(version).split(".")[0]
    installed = __salt__["airflow.version"](venv=name)
    if not installed or installed.split(".")[0] == wanted:
        ret["comment"] = (
            f"the venv has apache-airflow {installed}: upgradable in place to {version}"
            if installed
            else "no Airflow installed in the venv yet"
        )
        return ret
    ret["changes"] = {
        "venv": {"old": f"apache-airflow {installed}", "new": f"removed, rebuilt for {version}"}
    }
    if __opts__.get("test"):
        ret["result"] = None
        ret["comment"] = f"{name} would be removed: {installed} -> {version} crosses a major version"
        return ret
    try:
        __salt__["file.remove"](name)
    except CommandExecutionError as exc:
        ret["changes"] = {}
        return _fail(ret, exc)
    ret["comment"] = f"removed {name} (apache-airflow {installed}); the next states rebuild it for {version}"
    return ret


# -- connections / variables / pools ----------------------------------------------------------------
CONN_FIELDS = ("conn_type", "host", "login", "password", "schema", "port", "extra", "description")


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
    ret = _ret(name)
    paths = _paths(kwargs)
    if isinstance(extra, dict):
        import json  # noqa: PLC0415

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
    try:
        cur = __salt__["airflow.connection_get"](name, reveal=True, **paths)
        diff = {}
        for field, value in want.items():
            old = (cur or {}).get(field)
            if cur is None or old != value:
                if cur is None and value is None:
                    continue
                secret = field in ("password", "extra")
                diff[field] = {
                    "old": _mask(old) if secret else old,
                    "new": _mask(value) if secret else value,
                }
        if not diff:
            ret["comment"] = f"connection {name} is as wanted"
            return ret
        if __opts__.get("test"):
            ret["result"] = None
            ret["changes"] = diff
            ret["comment"] = f"connection {name} would be {'created' if cur is None else 'updated'}"
            return ret
        __salt__["airflow.connection_set"](name, **want, **paths)
    except CommandExecutionError as exc:
        return _fail(ret, exc)
    ret["changes"] = diff
    ret["comment"] = f"connection {name} {'created' if cur is None else 'updated'}"
    return ret


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
    ret = _ret(name)
    paths = _paths(kwargs)
    value = str(value)

    def show(v):
        return _mask(v) if sensitive else v

    try:
        cur = __salt__["airflow.variable_get"](name, **paths)
        diff = {}
        if cur is None or cur.get("value") != value:
            diff["value"] = {"old": show(cur.get("value") if cur else None), "new": show(value)}
        if description is not None and (cur or {}).get("description") != description:
            diff["description"] = {"old": (cur or {}).get("description"), "new": description}
        if not diff:
            ret["comment"] = f"variable {name} is as wanted"
            return ret
        if __opts__.get("test"):
            ret["result"] = None
            ret["changes"] = diff
            ret["comment"] = f"variable {name} would be set"
            return ret
        __salt__["airflow.variable_set"](name, value, description=description, **paths)
    except CommandExecutionError as exc:
        return _fail(ret, exc)
    ret["changes"] = diff
    ret["comment"] = f"variable {name} set"
    return ret


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
    try:
        cur = __salt__["airflow.pool_get"](name, **paths)
        diff = {k: {"old": (cur or {}).get(k), "new": v} for k, v in want.items() if (cur or {}).get(k) != v}
        if cur is not None and not diff:
            ret["comment"] = f"pool {name} is as wanted"
            return ret
        if __opts__.get("test"):
            ret["result"] = None
            ret["changes"] = diff
            ret["comment"] = f"pool {name} would be {'created' if cur is None else 'updated'}"
            return ret
        __salt__["airflow.pool_set"](name, **want, **paths)
    except (CommandExecutionError, SaltInvocationError) as exc:
        return _fail(ret, exc)
    ret["changes"] = diff
    ret["comment"] = f"pool {name} {'created' if cur is None else 'updated'}"
    return ret
