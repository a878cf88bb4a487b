# ruff: noqa: PLC0415 - Airflow is imported lazily, per operation
"""airflow_ha helper: runs inside the Airflow venv, talks to Airflow's Python API.

Called by the ``airflow`` execution module (``_modules/airflow.py``) as
``<venv>/bin/python airflow-ha-helper`` with AIRFLOW_HOME in the environment and
ONE JSON request on stdin: ``{"op": "user_get", "args": {...}}``. Secrets
(passwords, connection passwords, variable values) travel only on stdin, never in
argv. While the operation runs, file descriptor 1 points at stderr, so whatever
Airflow logs or prints (deprecation warnings, log lines) cannot corrupt the
answer; the answer is ONE line on the real stdout::

    AIRFLOW_HA_RESULT {"ok": true, "result": ...}
    AIRFLOW_HA_RESULT {"ok": false, "error": "..."}

Works with Airflow 3.x and 2.11.x (FAB auth manager provider for users).

Which airflow.cfg keys are secret, and the mask, come from ``ah_secrets`` (the
formula's ``_utils/ah_secrets.py``, installed next to this script: Python puts
a script's own directory first on sys.path).
"""

import json
import os
import sys
import warnings

import ah_secrets

MARKER = "AIRFLOW_HA_RESULT "
# pg_advisory_lock key of airflow_ha's migration gate (distinct from Airflow's
# own DBLocks ids, which upgradedb() takes inside it).
MIGRATE_LOCK_ID = 0x41484D47  # "AHMG"


def _airflow_cfg():
    """airflow.cfg ($AIRFLOW_CONFIG) as read without Airflow."""
    import configparser

    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(os.environ.get("AIRFLOW_CONFIG", ""))
    return cfg


class HelperError(Exception):
    """An error the caller should see as a plain message."""


def _session():
    from airflow import settings

    if settings.Session is None:  # pragma: no cover - configure_orm ran at import
        settings.configure_orm()
    return settings.Session()


# -- info / config ----------------------------------------------------------
def op_version():
    import airflow

    return airflow.__version__


def op_config_get(section, key, reveal=False):
    from airflow.configuration import conf

    if not conf.has_option(section, key):
        return {"found": False, "value": None}
    value = conf.get(section, key)
    if not reveal:
        value = ah_secrets.mask_cfg(section, key, value)
    return {"found": True, "value": value}


def op_config_list(section=None):
    from airflow.configuration import conf

    data = conf.as_dict(display_source=False, display_sensitive=False)
    # Airflow hides its own list of sensitive keys; ah_secrets' list is wider.
    data = {sec: {k: ah_secrets.mask_cfg(sec, k, v) for k, v in keys.items()} for sec, keys in data.items()}
    if section:
        if section not in data:
            raise HelperError(f"no section [{section}] in the Airflow configuration")
        return {section: data[section]}
    return data


# -- users (FAB auth manager) -----------------------------------------------
def _appbuilder():
    try:
        from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder
    except ImportError as exc:  # pragma: no cover - depends on the venv
        raise HelperError(
            "the FAB provider is missing: install apache-airflow with the 'fab' extra "
            "and set [core] auth_manager to the FabAuthManager"
        ) from exc
    return get_application_builder()


def _user_dict(user):
    return {
        "username": user.username,
        "email": user.email,
        "firstname": user.first_name,
        "lastname": user.last_name,
        "roles": sorted(role.name for role in user.roles),
        "active": bool(user.active),
    }


def _roles(sm, names):
    roles = []
    for name in names:
        role = sm.find_role(name)
        if role is None:
            valid = sorted(r.name for r in sm.get_all_roles())
            raise HelperError(f"role {name!r} does not exist; valid roles: {', '.join(valid)}")
        roles.append(role)
    return roles


def op_users_list():
    with _appbuilder() as appbuilder:
        return [_user_dict(u) for u in appbuilder.sm.get_all_users()]


def op_user_get(username):
    with _appbuilder() as appbuilder:
        user = appbuilder.sm.find_user(username=username)
        return _user_dict(user) if user else None


def op_user_create(username, password, email, firstname, lastname, roles):
    if not password:
        raise HelperError("user_create needs a non-empty password")
    with _appbuilder() as appbuilder:
        sm = appbuilder.sm
        if sm.find_user(username=username):
            raise HelperError(f"user {username!r} already exists")
        role_objs = _roles(sm, roles or ["Viewer"])
        user = sm.add_user(username, firstname, lastname, email, role_objs[0], password)
        if not user:
            raise HelperError(f"could not create user {username!r} (is the email {email!r} already used?)")
        if len(role_objs) > 1:
            user.roles = role_objs
            sm.update_user(user)
        return _user_dict(user)


def op_user_update(username, password=None, email=None, firstname=None, lastname=None, roles=None):
    with _appbuilder() as appbuilder:
        sm = appbuilder.sm
        user = sm.find_user(username=username)
        if user is None:
            raise HelperError(f"user {username!r} does not exist")
        if email is not None:
            user.email = email
        if firstname is not None:
            user.first_name = firstname
        if lastname is not None:
            user.last_name = lastname
        if roles is not None:
            user.roles = _roles(sm, roles)
        sm.update_user(user)
        if password:
            sm.reset_password(user.id, password)
        return _user_dict(sm.find_user(username=username))


def op_user_delete(username):
    with _appbuilder() as appbuilder:
        sm = appbuilder.sm
        user = sm.find_user(username=username)
        if user is None:
            return False
        if not sm.del_register_user(user):
            raise HelperError(f"could not delete user {username!r}")
        return True


def op_user_check_password(username, password):
    from werkzeug.security import check_password_hash

    with _appbuilder() as appbuilder:
        user = appbuilder.sm.find_user(username=username)
        if user is None:
            raise HelperError(f"user {username!r} does not exist")
        return bool(user.password) and check_password_hash(user.password, password or "")


def _user_by_sql(username):
    """``{"user": dict or None, "hash": str}`` read with SQL from FAB's tables
    (``ab_user``, ``ab_user_role``, ``ab_role``), without starting the FAB app
    (the admin-user state took 3.1 s of a lab re-apply through FAB, 2.0 s
    with this read). Usernames match case-insensitively, like FAB's default
    ``auth_username_ci``. None when that read cannot decide (tables missing,
    or several users match): the caller asks FAB instead."""
    from sqlalchemy import text

    session = _session()
    try:
        rows = session.execute(
            text(
                "SELECT id, username, email, first_name, last_name, active, password"
                " FROM ab_user WHERE lower(username) = lower(:name)"
            ),
            {"name": username},
        ).fetchall()
        if len(rows) > 1:
            return None
        if not rows:
            return {"user": None, "hash": None}
        uid, uname, email, first, last, active, pwhash = rows[0]
        roles = session.execute(
            text(
                "SELECT r.name FROM ab_role r JOIN ab_user_role ur ON ur.role_id = r.id"
                " WHERE ur.user_id = :uid"
            ),
            {"uid": uid},
        ).fetchall()
    except Exception:  # noqa: BLE001 - no FAB tables here (another auth manager): FAB decides
        return None
    finally:
        session.close()
    user = {
        "username": uname,
        "email": email,
        "firstname": first,
        "lastname": last,
        "roles": sorted(r[0] for r in roles),
        "active": bool(active),
    }
    return {"user": user, "hash": pwhash}


def _user_by_fab(username):
    """``{"user": dict or None, "hash": str}`` as FAB's security manager finds it."""
    with _appbuilder() as appbuilder:
        user = appbuilder.sm.find_user(username=username)
        if user is None:
            return {"user": None, "hash": None}
        return {"user": _user_dict(user), "hash": user.password}


def op_user_status(username, password=None):
    """The user (or None) and whether ``password`` matches: one SQL read
    (_user_by_sql), or one FAB app start-up when that cannot decide."""
    from werkzeug.security import check_password_hash

    found = _user_by_sql(username) or _user_by_fab(username)
    if found["user"] is None:
        return {"user": None, "password_ok": None}
    ok = None
    if password is not None:
        ok = bool(found["hash"]) and check_password_hash(found["hash"], password)
    return {"user": found["user"], "password_ok": ok}


# -- database -----------------------------------------------------------------
def op_db_check():
    from sqlalchemy import text

    session = _session()
    try:
        session.execute(text("SELECT 1"))
        return True
    finally:
        session.close()


def _pending():
    from airflow.utils import db

    pending = []
    with db._configured_alembic_environment() as env:
        context = env.get_context()
        source = list(env.script.get_heads())
        current = list(context.get_current_heads())
        if set(source) != set(current):
            for rev in env.script.iterate_revisions(source, current or "base"):
                pending.append(rev.revision)
            if not pending:  # pragma: no cover - odd alembic states
                pending.append(",".join(source))
    try:  # Airflow 3: external DB managers (FAB tables)
        from airflow.utils.db_manager import RunDBManager

        if not RunDBManager().check_migration(_session()):
            pending.append("external-db-managers")
    except ImportError:
        pass
    return pending


def op_schema_revisions():
    """{table: [version_num, ...]} of every Alembic version table (Airflow's
    and an external DB manager's such as FAB's), read with SQLAlchemy alone:
    no Airflow import. The airflow module's key for its "up to date" cache."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    url = os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN") or _airflow_cfg().get(
        "database", "sql_alchemy_conn", fallback=""
    )
    if not url.startswith("postgresql"):
        raise HelperError("schema_revisions reads PostgreSQL only")
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            tables = conn.execute(
                text(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
                    "AND table_name LIKE 'alembic_version%' ORDER BY table_name"
                )
            )
            return {
                t: sorted(r[0] for r in conn.execute(text(f'SELECT version_num FROM "{t}"')))
                for (t,) in list(tables)
            }
    finally:
        engine.dispose()


def op_db_pending_migrations():
    return _pending()


def op_db_migrate(only_if_pending=True):
    """Migrate under a PostgreSQL advisory lock: racing nodes serialise and the
    later ones find nothing pending."""
    from airflow import settings
    from airflow.utils import db
    from sqlalchemy import text

    conn = settings.engine.connect()
    locked = conn.dialect.name == "postgresql"
    try:
        if locked:
            conn.execute(text("SELECT pg_advisory_lock(:id)"), {"id": MIGRATE_LOCK_ID})
        before = _pending()
        if only_if_pending and not before:
            return {"migrated": False, "pending": []}
        db.upgradedb()
        after = _pending()
        if after:
            raise HelperError(f"migrations still pending after db migrate: {after}")
        return {"migrated": True, "pending": before}
    finally:
        if locked:
            conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": MIGRATE_LOCK_ID})
        conn.close()


# -- DAGs -------------------------------------------------------------------
def op_dags_list():
    from airflow.models import DagModel

    session = _session()
    try:
        out = []
        for dag in session.query(DagModel).order_by(DagModel.dag_id):
            stale = getattr(dag, "is_stale", None)
            if stale is None:
                stale = not getattr(dag, "is_active", True)
            out.append(
                {
                    "dag_id": dag.dag_id,
                    "is_paused": bool(dag.is_paused),
                    "is_stale": bool(stale),
                    "fileloc": dag.fileloc,
                }
            )
        return out
    finally:
        session.close()


def op_dag_trigger(dag_id, run_id=None, conf=None, unpause=True):
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.models import DagModel

    session = _session()
    try:
        dag = session.query(DagModel).filter(DagModel.dag_id == dag_id).one_or_none()
        if dag is None:
            raise HelperError(f"DAG {dag_id!r} is not known (not parsed yet?)")
        if unpause and dag.is_paused:
            dag.is_paused = False
            session.commit()
    finally:
        session.close()
    kwargs = {"run_id": run_id, "conf": conf}
    try:
        from airflow.utils.types import DagRunTriggeredByType

        kwargs["triggered_by"] = DagRunTriggeredByType.CLI
    except ImportError:  # pragma: no cover - old 2.x
        pass
    run = trigger_dag(dag_id, **kwargs)
    return {"dag_id": dag_id, "run_id": run.run_id, "state": str(run.state)}


def op_dag_state(dag_id, run_id):
    from airflow.models import DagRun, TaskInstance

    session = _session()
    try:
        run = session.query(DagRun).filter(DagRun.dag_id == dag_id, DagRun.run_id == run_id).one_or_none()
        if run is None:
            raise HelperError(f"no run {run_id!r} of DAG {dag_id!r}")
        tis = session.query(TaskInstance).filter(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
        tasks = [
            {
                "task_id": ti.task_id,
                "map_index": ti.map_index,
                "state": str(ti.state) if ti.state else None,
                "hostname": ti.hostname,
            }
            for ti in tis
        ]
        return {"dag_id": dag_id, "run_id": run_id, "state": str(run.state), "tasks": tasks}
    finally:
        session.close()


# -- connections / variables / pools ---------------------------------------------
CONN_FIELDS = ("conn_type", "host", "login", "password", "schema", "port", "extra", "description")


def _conn_dict(conn):
    out = {}
    for field in CONN_FIELDS:
        out[field] = getattr(conn, field, None)
    return out


def op_connection_get(conn_id):
    from airflow.models import Connection

    session = _session()
    try:
        conn = session.query(Connection).filter(Connection.conn_id == conn_id).one_or_none()
        return _conn_dict(conn) if conn else None
    finally:
        session.close()


def op_connection_set(conn_id, fields):
    from airflow.models import Connection

    unknown = set(fields) - set(CONN_FIELDS)
    if unknown:
        raise HelperError(f"unknown connection fields {sorted(unknown)}; valid: {list(CONN_FIELDS)}")
    session = _session()
    try:
        conn = session.query(Connection).filter(Connection.conn_id == conn_id).one_or_none()
        if conn is None:
            conn = Connection(conn_id=conn_id, **fields)
            session.add(conn)
        else:
            for field, value in fields.items():
                setattr(conn, field, value)
        session.commit()
        return True
    finally:
        session.close()


def op_connection_delete(conn_id):
    from airflow.models import Connection

    session = _session()
    try:
        n = session.query(Connection).filter(Connection.conn_id == conn_id).delete()
        session.commit()
        return bool(n)
    finally:
        session.close()


def op_variable_get(key):
    from airflow.models import Variable

    session = _session()
    try:
        var = session.query(Variable).filter(Variable.key == key).one_or_none()
        if var is None:
            return None
        return {"value": var.val, "description": var.description}
    finally:
        session.close()


def op_variable_set(key, value, description=None):
    from airflow.models import Variable

    session = _session()
    try:
        var = session.query(Variable).filter(Variable.key == key).one_or_none()
        if var is None:
            var = Variable(key=key, val=value, description=description)
            session.add(var)
        else:
            var.set_val(value)
            if description is not None:
                var.description = description
        session.commit()
        return True
    finally:
        session.close()


def op_pool_get(name):
    from airflow.models.pool import Pool

    session = _session()
    try:
        pool = session.query(Pool).filter(Pool.pool == name).one_or_none()
        if pool is None:
            return None
        return {
            "slots": pool.slots,
            "description": pool.description or "",
            "include_deferred": bool(pool.include_deferred),
        }
    finally:
        session.close()


def op_pool_set(name, slots, description="", include_deferred=False):
    from airflow.models.pool import Pool

    Pool.create_or_update_pool(name, int(slots), description or "", bool(include_deferred))
    return True


OPS = {name[3:]: func for name, func in globals().items() if name.startswith("op_")}


def _direct_database():
    """
    With PgBouncer (transaction pooling) in front of the database, session
    state does not survive a transaction: the advisory locks that serialise
    ``db migrate`` (ours and Airflow's own) would be taken on one server
    connection and released on another. airflow.cfg then names the local
    HAProxy's leader port as ``[airflow_ha] migration_db_port``, and this
    helper (migrations, users, connections: short admin sessions) talks to
    PostgreSQL through it instead. Set before Airflow is imported, in this
    process' environment only.
    """
    cfg = _airflow_cfg()
    port = cfg.get("airflow_ha", "migration_db_port", fallback="")
    url = cfg.get("database", "sql_alchemy_conn", fallback="")
    if not (port and url):
        return
    from sqlalchemy.engine import make_url

    direct = make_url(url).set(port=int(port))
    os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = direct.render_as_string(hide_password=False)


def main():
    real_stdout = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # Airflow's noise goes to stderr
    sys.stdout = sys.stderr
    warnings.simplefilter("ignore")
    try:
        request = json.loads(sys.stdin.read() or "{}")
        _direct_database()
        op = request.get("op")
        if op not in OPS:
            raise HelperError(f"unknown operation {op!r}; known: {sorted(OPS)}")
        result = {"ok": True, "result": OPS[op](**(request.get("args") or {}))}
    except HelperError as exc:
        result = {"ok": False, "error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - reported to the caller, not raised
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    real_stdout.write(MARKER + json.dumps(result, default=str) + "\n")
    real_stdout.flush()
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
