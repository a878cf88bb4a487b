"""Through a real master: custom modules sync, the formula renders on three
minions, and a bad pillar is refused by the validator with no change."""

MINIONS = ("node1", "node2", "node3")


def test_sync_all_delivers_custom_modules(salt_minions, salt_cli):
    ret = salt_cli.run("saltutil.sync_all", minion_tgt="*")
    assert ret.returncode == 0, ret
    for mid in MINIONS:
        modules = ret.data[mid]["modules"]
        states = ret.data[mid]["states"]
        assert "modules.airflow_ha" in modules or _already_synced(salt_cli, mid)
        assert "states.airflow_ha" in states or _already_synced(salt_cli, mid)


def test_utils_sync_and_airflow_module_spans_two_files(salt_minions, salt_cli):
    """_utils reach the minions (saltutil.sync_all), and the loader merges
    _modules/airflow.py and _modules/airflow_health.py under one name."""
    ret = salt_cli.run("saltutil.sync_utils", minion_tgt="node1")
    assert ret.returncode == 0, ret
    ret = salt_cli.run("sys.list_functions", "airflow", minion_tgt="node1")
    funcs = set(ret.data)
    assert {"airflow.config_get", "airflow.desired_config", "airflow.health", "airflow.wait_healthy"} <= funcs
    assert not {"airflow.parse_cfg", "airflow.is_sensitive", "airflow.parse_result"} & funcs
    ret = salt_cli.run("airflow.components", '["api", "worker"]', "3", minion_tgt="node1")
    assert ret.data["api-server"]["enabled"] is True and ret.data["flower"]["enabled"] is False, ret
    ret = salt_cli.run("sys.list_functions", "airflow_ha_etcd", minion_tgt="node1")
    assert "airflow_ha_etcd.health" in ret.data, ret


def _already_synced(salt_cli, mid):
    ret = salt_cli.run("sys.list_functions", "airflow_ha", minion_tgt=mid)
    return "airflow_ha.settings" in ret.data


def test_show_sls_renders_on_every_minion(salt_minions, salt_cli):
    ret = salt_cli.run("state.show_sls", "airflow_ha", "queue=True", minion_tgt="*")
    assert ret.returncode == 0, ret
    for mid in MINIONS:
        states = ret.data[mid]
        assert isinstance(states, dict), f"{mid}: {states}"
        assert "airflow_ha-validate-pillar" in states
        assert "airflow_ha-common-hosts" in states


def test_validate_module_through_master(salt_minions, salt_cli):
    ret = salt_cli.run("airflow_ha.validate", minion_tgt="node2")
    assert ret.data is True, ret


def test_bad_pillar_is_refused_with_no_change(salt_minions, salt_cli):
    bad = (
        '{"airflow_ha": {"secrets": {"jwt_secret": "short"}, "nodes": {"node4": {"address": "10.77.0.14"}}}}'
    )
    ret = salt_cli.run("state.apply", "airflow_ha", f"pillar={bad}", "queue=True", minion_tgt="node1")
    states = ret.data
    assert isinstance(states, dict), ret
    assert len(states) == 1, f"only the check may run, got {list(states)}"
    (result,) = states.values()
    assert result["result"] is False
    assert result["changes"] == {}
    assert "airflow_ha:secrets:jwt_secret: too short" in result["comment"]
    assert "4 nodes have role 'db'" in result["comment"]
    assert "short" not in result["comment"].split("jwt_secret:")[0]
