"""
State for the airflow_ha formula's pillar check.

Why a custom state: ``test.fail_without_changes`` replaces its comment with a
generic text under ``test=True``, so a dry run would not say what is wrong.
This state reports the same problems in both modes.
"""

__virtualname__ = "airflow_ha"


def __virtual__():
    return __virtualname__


def _ret(name):
    return {"name": name, "changes": {}, "result": True, "comment": ""}


def validated(name, errors=None):
    """
    Succeed when ``errors`` (computed by ``airflow_ha.settings`` while the SLS
    rendered) is empty; otherwise fail with every problem listed, with or
    without ``test=True``. Never changes anything.

    .. code-block:: yaml

        airflow_ha-validate-pillar:
          airflow_ha.validated:
            - errors: {{ ah.errors | json }}
            - failhard: true
    """
    ret = _ret(name)
    if errors:
        ret["result"] = False
        ret["comment"] = __salt__["airflow_ha.format_errors"](errors)
    else:
        ret["comment"] = "The airflow_ha pillar is valid."
    return ret
