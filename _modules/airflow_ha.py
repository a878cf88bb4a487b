"""
Settings and validation for the airflow_ha formula: the public module.

Every SLS file of the formula gets its data from ``airflow_ha/map.jinja``,
which calls :func:`settings`. The work is done in ``_utils`` (synced with the
modules by ``saltutil.sync_all``): ``ah_schema`` declares every pillar key,
``ah_validate`` checks a pillar against it and the cross-key rules
(``ah_validate_tls`` the certificates, ``ah_nodes`` who holds which role),
``ah_settings`` layers, derives and caches. This module only supplies what the
loader knows (grains, pillar, the fileserver, ``__context__``) and is the
CLI: Salt's ``config.get``/``pillar.get`` return raw values, with neither the
formula's defaults nor its validation.

CLI examples:

.. code-block:: bash

    salt '*' airflow_ha.validate
    salt node1 airflow_ha.settings
"""

import salt.utils.yaml
from salt.exceptions import CommandExecutionError

__virtualname__ = "airflow_ha"


def __virtual__():
    return __virtualname__


def _util(name):
    try:
        return __utils__[name]
    except KeyError:
        raise CommandExecutionError(
            f"{name} is not available: the formula's _utils are not synced to this minion — "
            "run saltutil.sync_all (or salt-run saltutil.sync_all for the orchestration)"
        ) from None


def _load_parameters():
    """Read the formula's parameters/ from the fileserver (CLI use)."""
    out = []
    for name in ("defaults", "os"):
        text = __salt__["cp.get_file_str"](f"salt://airflow_ha/parameters/{name}.yaml")
        if not text:
            raise CommandExecutionError(
                f"salt://airflow_ha/parameters/{name}.yaml is not on the fileserver: "
                "add the formula to file_roots or gitfs"
            )
        out.append(salt.utils.yaml.safe_load(text) or {})
    return out


def settings(defaults=None, os_layers=None, pillar=None, minion_id=None, reveal=False, cluster=False):
    """
    Return the merged and derived settings of this minion.

    Layers, later wins: ``defaults`` (parameters/defaults.yaml), the
    ``os_family`` then ``osfinger`` entry of ``os_layers`` (parameters/os.yaml),
    ``airflow_ha:lookup``, then the rest of the ``airflow_ha`` pillar (pillar
    beats lookup). Adds ``errors``: the validation problems (an empty list when
    valid). Secrets (and the URLs holding them) are masked unless
    ``reveal=True``, which map.jinja passes: a CLI call never prints them in a
    job return. ``cluster=True``: the orchestration's view on the master (no
    minion of its own). Computed once per run (cached in ``__context__``).

    CLI example:

    .. code-block:: bash

        salt node1 airflow_ha.settings
        salt-run salt.cmd airflow_ha.settings cluster=True
    """
    if defaults is None or os_layers is None:
        defaults, os_layers = _load_parameters()
    if pillar is None:
        pillar = __pillar__.get("airflow_ha", {})
    return _util("ah_settings.settings")(
        defaults,
        os_layers,
        pillar,
        minion_id or __opts__["id"],
        dict(__grains__),
        context=__context__,
        reveal=reveal,
        cluster=cluster,
    )


def validate(pillar=None, minion_id=None):
    """
    Validate the airflow_ha pillar for this minion. Returns ``True`` when valid;
    otherwise fails with every problem, each naming its pillar key and the fix.

    CLI example:

    .. code-block:: bash

        salt '*' airflow_ha.validate
    """
    ah = settings(pillar=pillar, minion_id=minion_id)
    if ah["errors"]:
        raise CommandExecutionError(format_errors(ah["errors"]))
    return True


def format_errors(errors):
    """
    Render a list of validation problems as one readable message (the
    ``airflow_ha.validated`` state's comment).

    CLI example:

    .. code-block:: bash

        salt-call airflow_ha.format_errors '["airflow_ha:nodes: no nodes — list every cluster node"]'
    """
    return _util("ah_validate.format_errors")(errors)
