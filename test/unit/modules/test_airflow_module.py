"""_modules/airflow.py with Salt's loader mocked: output parsing, airflow.cfg
editing, the helper call (no secret in argv), desired config and key->unit groups."""

import copy
import json
import pathlib
from unittest.mock import MagicMock

import pytest
import salt.utils.yaml
from salt.exceptions import CommandExecutionError, SaltInvocationError
from testlib import ROOT, airflow_dunders, airflow_ha_dunders, load_module, utils_dunder

airflow = load_module("airflow")
airflow_config = load_module("airflow_config")
airflow_health = load_module("airflow_health")
airflow_ha = load_module("airflow_ha")
ah_cfg = load_module("ah_airflow_cfg", "utils")

PARAMS = ROOT / "airflow_ha" / "parameters"
DEFAULTS = salt.utils.yaml.safe_load(pathlib.Path(PARAMS / "defaults.yaml").read_text())
OS_LAYERS = salt.utils.yaml.safe_load(pathlib.Path(PARAMS / "os.yaml").read_text())
EXAMPLE = salt.utils.yaml.safe_load((ROOT / "pillar.example").read_text())["airflow_ha"]


@pytest.fixture
def run_all():
    return MagicMock(
        return_value={"retcode": 0, "stdout": 'AIRFLOW_HA_RESULT {"ok": true, "result": null}', "stderr": ""}
    )


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "home"
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    home.mkdir()
    (home / "airflow.cfg").write_text("[core]\n")
    (venv / "bin" / "python").write_text("")
    (venv / "bin" / "airflow-ha-helper").write_text("")
    return {"home": str(home), "venv": str(venv), "user": "airflow"}


@pytest.fixture
def configure_loader_modules(run_all):
    return {
        airflow: airflow_dunders(run_all),
        airflow_health: {
            "__salt__": {"airflow.config_file": airflow.config_file, "airflow.version": airflow.version},
            "__utils__": utils_dunder("ah_airflow_cfg", "ah_http"),
        },
        airflow_config: {"__utils__": utils_dunder("ah_secrets", "ah_airflow_cfg")},
        airflow_ha: airflow_ha_dunders(),
    }


def settings(pillar=None, minion_id="node1"):
    return airflow_ha.settings(DEFAULTS, OS_LAYERS, pillar or copy.deepcopy(EXAMPLE), minion_id, reveal=True)


# -- parsing -----------------------------------------------------------------------
# -- the helper call ------------------------------------------------------------------
def test_helper_refuses_without_airflow_cfg(tmp_path, run_all):
    with pytest.raises(CommandExecutionError, match="random keys"):
        airflow.db_check(home=str(tmp_path), venv=str(tmp_path))
    run_all.assert_not_called()


def test_user_create_sends_the_password_on_stdin_only(home, run_all):
    run_all.return_value["stdout"] = 'AIRFLOW_HA_RESULT {"ok": true, "result": {"username": "bob"}}'
    airflow.user_create("bob", "pw-Very-Secret", "b@x", "Bob", "B", roles=["Op", "Admin"], **home)
    args, kwargs = run_all.call_args
    assert "pw-Very-Secret" not in json.dumps(args)
    assert all("pw-Very-Secret" not in str(v) for k, v in kwargs.items() if k != "stdin")
    req = json.loads(kwargs["stdin"])
    assert req["op"] == "user_create"
    assert req["args"]["password"] == "pw-Very-Secret"
    assert req["args"]["roles"] == ["Admin", "Op"]
    assert kwargs["env"]["AIRFLOW_HOME"] == home["home"]
    assert kwargs["env"]["AIRFLOW_CONFIG"].endswith("airflow.cfg")
    assert kwargs["python_shell"] is False
    assert kwargs["output_loglevel"] == "quiet"
    assert args[0] == [home["venv"] + "/bin/python", home["venv"] + "/bin/airflow-ha-helper"]


def test_helper_runs_as_the_airflow_user_unless_already_it(home, run_all, monkeypatch):
    airflow.db_check(**home)
    assert run_all.call_args[1]["runas"] == "airflow"
    import getpass  # noqa: PLC0415

    airflow.db_check(**dict(home, user=getpass.getuser()))
    assert run_all.call_args[1]["runas"] is None


def test_helper_error_is_raised_with_secrets_scrubbed(home, run_all):
    run_all.return_value = {
        "retcode": 1,
        "stdout": 'AIRFLOW_HA_RESULT {"ok": false, "error": "bad pw-Very-Secret at postgresql://u:dbpass@h/db"}',
        "stderr": "",
    }
    with pytest.raises(CommandExecutionError) as err:
        airflow.user_check_password("bob", "pw-Very-Secret", **home)
    assert "pw-Very-Secret" not in str(err.value)
    assert "dbpass" not in str(err.value)
    assert "u:***@h" in str(err.value)


def test_helper_without_answer_reports_stderr_tail(home, run_all):
    run_all.return_value = {"retcode": 1, "stdout": "", "stderr": "Traceback...\nImportError: boom"}
    with pytest.raises(CommandExecutionError, match="ImportError: boom"):
        airflow.users_list(**home)


def test_version_reads_package_metadata_without_airflow_cfg(tmp_path, run_all):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text("")
    run_all.return_value = {"retcode": 0, "stdout": "some warning\n3.3.2\n", "stderr": ""}
    assert airflow.version(venv=str(venv)) == "3.3.2"
    assert airflow.version(venv=str(tmp_path / "none")) == ""


def test_pool_set_rejects_non_integer_slots(home):
    with pytest.raises(SaltInvocationError, match="slots must be an integer"):
        airflow.pool_set("p", "many", **home)


def test_normalize_roles():
    assert ah_cfg.normalize_roles("Op, Admin") == ["Admin", "Op"]
    assert ah_cfg.normalize_roles(("Viewer",)) == ["Viewer"]
    with pytest.raises(SaltInvocationError):
        ah_cfg.normalize_roles([])


# -- desired configuration --------------------------------------------------------------
def test_desired_config_for_node1_of_the_example():
    ah = settings()
    cfg = airflow_config.desired_config(ah)
    assert cfg["core"]["executor"] == "CeleryExecutor"
    assert cfg["core"]["auth_manager"] == ah_cfg.FAB_AUTH_MANAGER
    assert cfg["core"]["fernet_key"] == EXAMPLE["secrets"]["fernet_key"]
    assert cfg["core"]["dags_folder"] == "/var/lib/airflow/dags"
    assert cfg["core"]["execution_api_server_url"] == "http://127.0.0.1:8090/execution/"
    assert cfg["api"]["host"] == "10.77.0.11"
    assert cfg["api_auth"]["jwt_secret"] == EXAMPLE["secrets"]["jwt_secret"]
    assert cfg["scheduler"]["scheduler_health_check_server_host"] == "10.77.0.11"
    assert cfg["dag_processor"]["refresh_interval"] == "10"
    assert "127.0.0.1:5000/airflow" in cfg["database"]["sql_alchemy_conn"]
    assert cfg["celery"]["result_backend"].startswith("db+postgresql")
    assert len(cfg["celery"]["broker_url"].split(";")) == 3
    assert cfg["celery"]["celery_config_options"] == ah_cfg.CELERY_CONFIG_MODULE
    admin = EXAMPLE["airflow"]["admin"]["username"]
    assert cfg["celery"]["flower_basic_auth"] == f"{admin}:{EXAMPLE['secrets']['admin_password']}"
    assert load_module("ah_secrets", "utils").is_sensitive("celery", "flower_basic_auth")
    assert ah_cfg.units_for_key("celery", "flower_basic_auth") == ["flower"]
    assert "webserver" not in cfg


@pytest.mark.parametrize("version", ["3.3.2", "2.11.2"])
def test_desired_config_secret_refs_hold_no_secret_and_resolve_to_the_same(version):
    pillar = copy.deepcopy(EXAMPLE)
    pillar["airflow"]["version"] = version
    pillar["airflow"]["config"] = {"smtp": {"SMTP_Password": "smtp-Very-Secret", "smtp_host": "mail"}}
    ah = settings(pillar)
    cfg = airflow_config.desired_config(ah)
    refs = airflow_config.desired_config(ah, secret_refs=True)
    text = json.dumps(refs)
    for secret in [*EXAMPLE["secrets"].values(), "smtp-Very-Secret"]:
        assert str(secret) not in text
    assert refs["core"]["fernet_key"] == "@@pillar:airflow_ha:secrets:fernet_key@@"
    assert refs["smtp"]["smtp_password"] == "@@pillar:airflow_ha:airflow:config:smtp:SMTP_Password@@"
    assert refs["smtp"]["smtp_host"] == "mail"
    ah_secrets = load_module("ah_secrets", "utils")
    resolved = {
        s: {k: ah_secrets.resolve(v, {"airflow_ha": pillar}) for k, v in keys.items()}
        for s, keys in refs.items()
    }
    assert resolved == cfg


def test_desired_config_task_recovery_timings():
    pillar = copy.deepcopy(EXAMPLE)
    pillar["airflow"]["recovery"] = {
        "heartbeat_timeout": 45,
        "detection_interval": 4,
        "api_retry_window": 40,
        "max_failed_heartbeats": 12,
    }
    cfg = airflow_config.desired_config(settings(pillar))
    assert cfg["scheduler"]["task_instance_heartbeat_timeout"] == "45"
    assert cfg["scheduler"]["task_instance_heartbeat_timeout_detection_interval"] == "4"
    assert cfg["workers"]["max_failed_heartbeats"] == "12"
    # every 3 s for 40 s: 14 waits of 3 s, 15 tries
    assert (
        cfg["workers"]["execution_api_retries"],
        cfg["workers"]["execution_api_retry_wait_min"],
        cfg["workers"]["execution_api_retry_wait_max"],
    ) == ("15", "3", "3")
    assert ah_cfg.units_for_key("workers", "execution_api_retries") == [
        "worker",
        "triggerer",
        "dag-processor",
    ]
    assert cfg["celery"]["operation_timeout"] == "10"  # a publish may fail over past a dead broker
    assert cfg["scheduler"]["orphaned_tasks_check_interval"] == "10"  # a dead scheduler's tasks are adopted
    assert int(cfg["scheduler"]["scheduler_health_check_threshold"]) + 10 < 45
    assert ah_cfg.units_for_key("workers", "max_failed_heartbeats") == ["worker"]
    assert ah_cfg.units_for_key("scheduler", "task_instance_heartbeat_timeout") == ["scheduler"]
    pillar["airflow"]["version"] = "2.11.2"
    cfg = airflow_config.desired_config(settings(pillar))
    assert cfg["scheduler"]["scheduler_zombie_task_threshold"] == "45"
    assert cfg["scheduler"]["zombie_detection_interval"] == "4"
    assert "workers" not in cfg


def test_desired_config_pgbouncer_and_local_broker():
    pillar = copy.deepcopy(EXAMPLE)
    pillar["pgbouncer"]["enabled"] = True
    pillar["rabbitmq"]["broker_url_nodes"] = "local"
    cfg = airflow_config.desired_config(settings(pillar, "node2"))
    assert ":6432/" in cfg["database"]["sql_alchemy_conn"]
    assert len(cfg["celery"]["broker_url"].split(";")) == 1


def test_desired_config_user_overrides_win_last():
    pillar = copy.deepcopy(EXAMPLE)
    pillar["airflow"]["config"] = {"core": {"parallelism": 7}, "webserver": {"expose_config": True}}
    cfg = airflow_config.desired_config(settings(pillar))
    assert cfg["core"]["parallelism"] == "7"
    assert cfg["webserver"]["expose_config"] == "True"


def test_desired_config_airflow_2_has_webserver_and_no_dag_processor():
    pillar = copy.deepcopy(EXAMPLE)
    pillar["airflow"]["version"] = "2.11.2"
    cfg = airflow_config.desired_config(settings(pillar))
    assert cfg["webserver"]["web_server_host"] == "10.77.0.11"
    assert cfg["webserver"]["secret_key"] == EXAMPLE["secrets"]["api_secret_key"]
    assert "dag_processor" not in cfg
    assert "api_auth" not in cfg
    assert "execution_api_server_url" not in cfg["core"]


def test_desired_config_names_a_missing_secret():
    ah = settings()
    del ah["secrets"]["fernet_key"]
    with pytest.raises(SaltInvocationError, match="airflow_ha:secrets:fernet_key"):
        airflow_config.desired_config(ah)


def test_desired_config_rejects_bad_overrides():
    ah = settings()
    ah["airflow"]["config"] = {"core": "parallelism=3"}
    with pytest.raises(SaltInvocationError, match="airflow_ha:airflow:config:core"):
        airflow_config.desired_config(ah)


@pytest.mark.parametrize("version", ["1.10.15", "4.0.0", "latest"])
def test_major_of_rejects_unsupported_versions(version):
    with pytest.raises(SaltInvocationError, match="not supported"):
        ah_cfg.major_of(version)


# -- which units read which key ------------------------------------------------------------
def test_units_for_key():
    assert ah_cfg.units_for_key("celery", "worker_concurrency") == ["worker"]
    assert ah_cfg.units_for_key("celery", "flower_port") == ["flower"]
    assert ah_cfg.units_for_key("api", "port") == ["api-server"]
    assert ah_cfg.units_for_key("api", "port", major=2) == ["webserver"]
    assert ah_cfg.units_for_key("dag_processor", "refresh_interval") == ["dag-processor"]
    assert sorted(ah_cfg.units_for_key("core", "fernet_key")) == sorted(ah_cfg.COMPONENTS_3)
    assert sorted(ah_cfg.units_for_key("celery", "broker_url")) == sorted(ah_cfg.COMPONENTS_3)


def test_config_groups_split_by_reader():
    groups = airflow_config.config_groups(
        {
            "core": {"executor": "C"},
            "celery": {"worker_concurrency": "2", "broker_url": "amqp://"},
            "api": {"port": "1"},
        }
    )
    assert groups["worker"] == {"units": ["worker"], "values": {"celery": {"worker_concurrency": "2"}}}
    assert groups["common"]["values"] == {"core": {"executor": "C"}, "celery": {"broker_url": "amqp://"}}
    assert groups["api-server"]["units"] == ["api-server"]
    # every key lands in exactly one group
    total = sum(len(k) for g in groups.values() for k in g["values"].values())
    assert total == 4


def test_components_follow_roles_and_version():
    comps = airflow_config.components(["api", "worker", "dag_processor"], 3)
    assert {c for c, v in comps.items() if v["enabled"]} == {"api-server", "worker", "dag-processor"}
    assert comps["worker"]["command"] == "celery worker"
    assert comps["flower"]["unit"] == "airflow-flower"
    comps2 = airflow_config.components(["api", "dag_processor", "scheduler"], 2)
    assert "dag-processor" not in comps2
    assert {c for c, v in comps2.items() if v["enabled"]} == {"webserver", "scheduler"}


def test_health_probes_the_configured_addresses(home, run_all, monkeypatch):
    with open(home["home"] + "/airflow.cfg", "w") as fh:
        fh.write(
            "[api]\nhost = 10.0.0.5\nport = 8081\n[scheduler]\nscheduler_health_check_server_host = 0.0.0.0\n"
            "[celery]\nflower_host = 10.0.0.5\n"
        )
    run_all.return_value = {"retcode": 0, "stdout": "3.3.2\n", "stderr": ""}
    enabled = {"airflow-api-server", "airflow-scheduler", "airflow-flower"}
    airflow_health.__salt__["service.enabled"] = lambda unit: unit in enabled
    airflow_health.__salt__["service.status"] = lambda unit: unit in enabled
    seen = []

    def fake_http(url, timeout):
        seen.append(url)
        if "monitor/health" in url:
            return 200, {"metadatabase": {"status": "healthy"}, "scheduler": {"status": "unhealthy"}}
        return 200, None

    monkeypatch.setattr(airflow_health, "_http_json", fake_http)
    out = airflow_health.health(**home)
    assert "http://10.0.0.5:8081/api/v2/monitor/health" in seen
    assert "http://127.0.0.1:8974/health" in seen
    assert "http://10.0.0.5:5555/healthcheck" in seen
    assert out["api-server"]["healthy"] is False  # one sub-system unhealthy
    assert out["scheduler"]["healthy"] is True
    assert out["worker"] == {"unit": "airflow-worker", "enabled": False, "active": False, "healthy": False}
    assert out["healthy"] is False


def test_wait_healthy_raises_naming_the_unhealthy(monkeypatch):
    reports = iter([{"healthy": False, "worker": {"enabled": True, "healthy": False}}] * 3)
    monkeypatch.setattr(airflow_health, "health", lambda **kw: next(reports))
    with pytest.raises(CommandExecutionError, match="worker"):
        airflow_health.wait_healthy(timeout=0, interval=0)
    monkeypatch.setattr(airflow_health, "health", lambda **kw: {"healthy": True})
    assert airflow_health.wait_healthy(timeout=0)["healthy"] is True


def test_health_http_probe_against_a_loopback_server():
    import http.server  # noqa: PLC0415
    import threading  # noqa: PLC0415

    from testlib import RouteHandler  # noqa: PLC0415

    RouteHandler.routes = {"/ok": (200, '{"a": 1}'), "/text": (200, "OK"), "/bad": (503, '{"x": 1}')}
    httpd = http.server.HTTPServer(("127.0.0.1", 0), RouteHandler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        assert airflow_health._http_json(base + "/ok", 5) == (200, {"a": 1})
        assert airflow_health._http_json(base + "/text", 5) == (200, "OK")
        assert airflow_health._http_json(base + "/bad", 5) == (503, None)
    finally:
        httpd.shutdown()
        httpd.server_close()
    status, reason = airflow_health._http_json(base + "/ok", 1)
    assert status is None and "cannot reach" in reason
