"""
The formula's airflow.cfg for this node: ``airflow.desired_config`` (the values
from the settings), ``airflow.config_groups`` (grouped by the units that read
them) and ``airflow.components`` (this node's systemd units).

Part of the ``airflow`` execution module: like ``_modules/airflow_health.py``
it declares the virtual name ``airflow`` and Salt's loader merges it with
``_modules/airflow.py`` (the venv-helper client), so the names stay
``airflow.desired_config`` and so on. Pure code: it reads no file and runs no
command (the work is in ``_utils/ah_airflow_cfg.py`` and ``_utils/ah_secrets.py``),
so config.sls can call it while rendering.
"""

__virtualname__ = "airflow"


def __virtual__():
    return __virtualname__


def desired_config(ah, secret_refs=False):
    """
    The airflow.cfg values the formula sets on this node, ``{section: {key:
    value}}``, computed from the formula settings ``ah`` (map.jinja), with
    ``ah.airflow.config`` (user overrides) merged last.

    secret_refs
        Replace every secret by a reference to the pillar key that holds it
        (``@@pillar:airflow_ha:secrets:fernet_key@@``; percent-encoded inside
        the database and broker URLs; a sensitive ``airflow:config`` override
        by its own pillar key), which ``airflow.config_managed`` resolves from
        the minion's pillar when it runs. The SLS passes this: no secret is in
        the rendered state data (``state.show_sls``, the job cache).

    CLI Example:

    .. code-block:: bash

        salt node1 airflow.desired_config "$(salt-call --out=json airflow_ha.settings reveal=True)" secret_refs=True
    """
    cfg = __utils__["ah_airflow_cfg.desired_config"](ah)
    if not secret_refs:
        return cfg
    secrets = ah.get("secrets") or {}
    overrides = (ah.get("airflow") or {}).get("config") or {}
    out = {}
    for section, keys in cfg.items():
        pillar_keys = {str(k).lower(): k for k in (overrides.get(section) or {})}
        for key, value in keys.items():
            text = __utils__["ah_secrets.to_refs"](value, secrets)
            if (
                key in pillar_keys
                and __utils__["ah_secrets.is_sensitive"](section, key)
                and not __utils__["ah_secrets.has_refs"](text)
            ):
                text = __utils__["ah_secrets.ref"](f"airflow_ha:airflow:config:{section}:{pillar_keys[key]}")
            out.setdefault(section, {})[key] = text
    return out


def config_groups(values, major=3):
    """
    ``values`` grouped by the Airflow components that read them, ``{group:
    {"units": [...], "values": {...}}}`` (``common``: read by all): config.sls
    makes one ``airflow.config_managed`` state per group, service.sls restarts
    a unit only for the groups naming it.

    CLI Example:

    .. code-block:: bash

        salt '*' airflow.config_groups '{"celery": {"worker_concurrency": 4}}'
    """
    return __utils__["ah_airflow_cfg.config_groups"](values, major)


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
    return __utils__["ah_airflow_cfg.components"](roles, major)
