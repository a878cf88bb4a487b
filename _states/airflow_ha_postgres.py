"""
PostgreSQL roles whose password comes from pillar, for the airflow_ha formula.

Why custom: Salt's ``postgres_user.present`` takes the password as an
argument, so the SLS would render it into the state data (``state.show_sls``,
the master's job cache). This state reads it from the minion's pillar by key
(``password_pillar``) and hands it to ``postgres_user.present``, which keeps
doing the work (SCRAM verifier computed by Salt, only changed attributes
altered). Named ``airflow_ha_postgres`` because Salt core owns ``postgres``
(the execution module) and ``postgres_user`` (the state).
"""

__virtualname__ = "airflow_ha_postgres"


def __virtual__():
    if "postgres_user.present" in __states__:
        return __virtualname__
    return (False, "Salt's postgres_user state is not available")


def _ret(name):
    return {"name": name, "result": True, "changes": {}, "comment": ""}


def user_present(name, password_pillar, **kwargs):
    """
    Ensure the PostgreSQL role ``name`` exists with the password held in the
    pillar key ``password_pillar``; every other argument is passed to
    ``postgres_user.present`` as is. The password never appears in changes or
    comments.

    .. code-block:: yaml

        airflow_ha-postgresql-airflow-role:
          airflow_ha_postgres.user_present:
            - name: airflow
            - password_pillar: airflow_ha:secrets:airflow_db_password
            - encrypted: scram-sha-256
            - login: true
    """
    password = __utils__["ah_secrets.pillar_get"](__pillar__, password_pillar)
    if not isinstance(password, str) or not password:
        ret = _ret(name)
        ret["result"] = False
        ret["comment"] = (
            f"pillar key {password_pillar} is not set: put the password of PostgreSQL role {name!r} "
            "there (see pillar.example)"
        )
        return ret
    kwargs = {k: v for k, v in kwargs.items() if not k.startswith("__")}
    ret = __states__["postgres_user.present"](name=name, password=password, **kwargs)
    ret["comment"] = __utils__["ah_secrets.scrub"](ret.get("comment"), [password])
    return ret
