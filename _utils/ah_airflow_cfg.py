"""
airflow.cfg handling for the airflow_ha formula, without Airflow and without
Salt's loader: parse and edit airflow.cfg text, the values the formula sets on
a node (:func:`desired_config`), which components read which key, and the
components of each Airflow major version.

A Salt ``_utils`` module (``saltutil.sync_all`` syncs it): the ``airflow``
execution module and state reach it as ``__utils__["ah_airflow_cfg.<name>"]``;
the public ``airflow.desired_config`` / ``airflow.config_groups`` /
``airflow.components`` the SLS files call are thin wrappers over it.
"""

import os
import re

from salt.exceptions import SaltInvocationError

COMPONENTS_3 = ("api-server", "scheduler", "dag-processor", "triggerer", "worker", "flower")
COMPONENTS_2 = ("webserver", "scheduler", "triggerer", "worker", "flower")


def all_components(major=3):
    """The Airflow components (systemd units ``airflow-<name>``) of a major version."""
    return COMPONENTS_3 if int(major) >= 3 else COMPONENTS_2


def read_cfg_file(path):
    """
    Parse an airflow.cfg file WITHOUT Airflow: ``{section: {key: value}}``
    (raw strings, the file's own content only). Returns {} when it is missing.
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
    """
    if isinstance(value, bool):
        return "True" if value else "False"
    if value is None:
        return ""
    return str(value)


def normalize_roles(roles):
    """
    Roles as a sorted list (accepts a list or a comma-separated string).
    """
    if roles is None:
        return None
    if isinstance(roles, str):
        roles = [r.strip() for r in roles.split(",") if r.strip()]
    if not isinstance(roles, (list, tuple)) or not roles:
        raise SaltInvocationError("roles must be a non-empty list of role names, e.g. ['Admin']")
    return sorted(str(r) for r in roles)


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
    """
    match = re.match(r"^\s*(\d+)\.(\d+)", str(version_string))
    if not match or match.group(1) not in ("2", "3"):
        raise SaltInvocationError(
            f"airflow_ha:airflow:version {version_string!r} is not supported: use 3.3.x (default) or 2.11.x"
        )
    return int(match.group(1))


def _derived(ah, path):
    """A value ``airflow_ha.settings`` derives (ah_settings.derive)."""
    cur = ah
    for part in path.split(":"):
        if not isinstance(cur, dict) or cur.get(part) in (None, ""):
            raise SaltInvocationError(
                f"airflow_ha:{path} is derived by airflow_ha.settings: pass the settings "
                "(map.jinja's ah, or salt-call airflow_ha.settings reveal=True), not the raw pillar"
            )
        cur = cur[part]
    return cur


def desired_config(ah):
    """
    The airflow.cfg values the formula sets on this node, ``{section: {key:
    value}}``, computed from the formula settings ``ah`` (map.jinja), with
    ``ah.airflow.config`` (user overrides) merged last. Every value is read
    from the settings: defaults live in parameters/defaults.yaml, and the
    database/broker URLs and the Execution API URL are derived there once.
    """
    af = ah["airflow"]
    major = major_of(af["version"])
    address = _need(ah, "address")
    home = af["home"]
    cfg = {
        "core": {
            "executor": "CeleryExecutor",
            "auth_manager": FAB_AUTH_MANAGER,
            "fernet_key": _need(ah, "secrets:fernet_key"),
            "dags_folder": _derived(ah, "airflow:dags_folder"),
            "plugins_folder": _derived(ah, "airflow:plugins_folder"),
            "parallelism": af["parallelism"],
            "load_examples": "False",
        },
        "database": {"sql_alchemy_conn": _derived(ah, "airflow:sql_alchemy_conn")},
        "celery": {
            "broker_url": _derived(ah, "airflow:broker_url"),
            "result_backend": _derived(ah, "airflow:result_backend"),
            "worker_concurrency": af["worker_concurrency"],
            # A publish may have to open a new broker connection, and kombu's
            # failover can hand it a dead node first, whose connect hangs
            # (airflow_ha_celery_config: broker_connection_timeout 2 s). With
            # Airflow's 1 s the scheduler failed a dead node's retried tasks
            # without running them (task-recovery drill): leave room to fail over.
            "operation_timeout": 10,
            "flower_host": address,
            "flower_port": af["flower_port"],
            # Flower can stop workers and revoke tasks: HTTP basic auth with the
            # Airflow admin's login (/healthcheck stays open for probes).
            "flower_basic_auth": f"{af['admin']['username']}:{_need(ah, 'secrets:admin_password')}",
        },
        "scheduler": {
            "enable_health_check": "True",
            "scheduler_health_check_server_host": address,
            "scheduler_health_check_server_port": af["scheduler_health_port"],
        },
        "logging": {
            "base_log_folder": f"{home}/logs",
            "logging_level": "INFO",
        },
    }
    if ah["rabbitmq"]["queue_type"] == "quorum":
        cfg["celery"]["celery_config_options"] = CELERY_CONFIG_MODULE
    if ah["pgbouncer"][
        "enabled"
    ]:  # the venv helper migrates around PgBouncer (airflow_ha_helper._direct_database)
        cfg["airflow_ha"] = {"migration_db_port": ah["haproxy"]["primary_port"]}
    if major >= 3:
        cfg["core"]["execution_api_server_url"] = _derived(ah, "airflow:execution_api_server_url")
        cfg["api"] = {
            "host": address,
            "port": af["api_port"],
            "secret_key": _need(ah, "secrets:api_secret_key"),
        }
        cfg["api_auth"] = {"jwt_secret": _need(ah, "secrets:jwt_secret")}
        cfg["dag_processor"] = {"refresh_interval": af["dag_refresh_interval"]}
    else:
        cfg["webserver"] = {
            "web_server_host": address,
            "web_server_port": af["api_port"],
            "secret_key": _need(ah, "secrets:api_secret_key"),
        }
        cfg["scheduler"]["dag_dir_list_interval"] = af["dag_refresh_interval"]
    for section, keys in recovery_config(af["recovery"], major).items():
        cfg.setdefault(section, {}).update(keys)
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


def recovery_config(recovery, major=3):
    """
    airflow.cfg keys that bound how long a task of a dead worker stays
    "running": the scheduler fails a task whose heartbeats stopped for
    ``heartbeat_timeout`` s (checked every ``detection_interval`` s) and the
    task's retries run it elsewhere; a worker stops its own task after
    ``max_failed_heartbeats`` failed heartbeats (3.x; 5 s apart). Airflow's
    defaults (300 s, 10 s, 3) stall a dead node's tasks for 6 minutes.

    A scheduler only fails the tasks it queued itself; those of a scheduler
    that died with the node (or restarted after a DB failover) wait until a
    live scheduler adopts them: every ``orphaned_tasks_check_interval`` (300 s
    by default), once the dead job is ``scheduler_health_check_threshold``
    stale (30 s). The drill saw a lost task re-run 5.5 min after the kill for
    that. Here adoption (25 s + 10 s) ends before the heartbeat timeout.

    A worker's calls to the Execution API (the task's start, heartbeats, its
    end) retry every ``API_RETRY_EVERY`` s for ``api_retry_window`` s (3.x;
    Airflow's 5 tries 1-8 s apart give up after 4-15 s). A DB failover makes
    the API servers answer 500 for 15-25 s: with Airflow's budget a task
    that started or ended on a live node then failed too, and its retry took
    the slot a dead node's task needed (the leader's node kill re-ran tasks
    61-114 s after the kill instead of ~50 s).
    """
    timeout, every = recovery["heartbeat_timeout"], recovery["detection_interval"]
    adoption = {"scheduler_health_check_threshold": 25, "orphaned_tasks_check_interval": 10}
    if int(major) >= 3:
        return {
            "scheduler": {
                "task_instance_heartbeat_timeout": timeout,
                "task_instance_heartbeat_timeout_detection_interval": every,
                **adoption,
            },
            "workers": {
                "max_failed_heartbeats": recovery["max_failed_heartbeats"],
                **api_retries(recovery["api_retry_window"]),
            },
        }
    return {
        "scheduler": {
            "scheduler_zombie_task_threshold": timeout,
            "zombie_detection_interval": every,
            **adoption,
        }
    }


API_RETRY_EVERY = 3  # s between two tries of an Execution API call


def api_retries(window):
    """[workers] keys retrying an Execution API call every API_RETRY_EVERY s for ``window`` s."""
    return {
        "execution_api_retries": -(-int(window) // API_RETRY_EVERY) + 1,
        "execution_api_retry_wait_min": API_RETRY_EVERY,
        "execution_api_retry_wait_max": API_RETRY_EVERY,
    }


def units_for_key(section, key, major=3):
    """
    The Airflow components that read an airflow.cfg key (so only they restart
    when it changes). Unknown keys affect every component.
    """
    allc = all_components(major)
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
    if section == "workers" and key.startswith("execution_api_"):
        return ["worker", "triggerer", "dag-processor"]  # every user of the Execution API client
    if section == "workers":  # 3.x: read by the Celery worker's task supervisor
        return ["worker"]
    return list(allc)


def config_groups(values, major=3):
    """
    Split ``{section: {key: value}}`` into groups of keys read by the same
    components: ``{group: {"units": [...], "values": {section: {key: v}}}}``.
    Group ``common`` holds keys every component reads. The SLS makes one
    ``airflow.config_managed`` state per group and each service watches only
    the groups naming it.
    """
    allc = all_components(major)
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
    """
    idx = 0 if int(major) >= 3 else 1
    allc = all_components(major)
    wanted = {ROLE_COMPONENTS[r][idx] for r in (roles or []) if r in ROLE_COMPONENTS}
    return {
        comp: {"enabled": comp in wanted, "command": COMMANDS[comp], "unit": f"airflow-{comp}"}
        for comp in allc
    }
