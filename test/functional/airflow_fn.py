"""Shared bits of the functional tier."""

FERNET = "Q0hBTkdFLU1FLWZlcm5ldC1rZXktMzItYnl0ZXMhISE="
JWT = "fn-jwt-" + "0123456789abcdef" * 4


def base_config(home, db_url):
    return {
        "core": {
            "executor": "LocalExecutor",
            "auth_manager": "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager",
            "fernet_key": FERNET,
            "dags_folder": f"{home}/dags",
            "load_examples": "False",
        },
        "database": {"sql_alchemy_conn": db_url},
        "api": {"secret_key": "fn-api-secret-9d2b"},
        "api_auth": {"jwt_secret": JWT},
        "logging": {"base_log_folder": f"{home}/logs"},
    }


def paths(env):
    return {k: v for k, v in env.items() if not k.startswith("_")}
