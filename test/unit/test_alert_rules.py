"""The alert rules' own contract (promtool runs them: make rules): every
alert has a promtool test where it fires, every failure mode of issue 15 has
an alert, and the rendered file carries the pillar's thresholds."""

import pathlib
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "test" / "tools"))
import promtool_rules  # noqa: E402


def alerts(text):
    return {r["alert"]: r for g in yaml.safe_load(text)["groups"] for r in g["rules"]}


def fired_in_tests():
    fired = set()
    for path in (ROOT / "test" / "promtool").glob("*.yml"):
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                if case.get("exp_alerts"):
                    fired.add(case["alertname"])
    return fired


def test_every_alert_has_a_firing_promtool_test():
    missing = sorted(set(alerts(promtool_rules.render())) - fired_in_tests())
    assert not missing, f"alerts without a promtool test where they fire: {missing}"


def test_every_failure_mode_has_an_alert():
    names = set(alerts(promtool_rules.render()))
    for mode in (
        "NodeDown",
        "EtcdMemberDown",
        "EtcdNoLeader",
        "PatroniNoLeader",
        "PatroniTwoPrimaries",
        "ReplicaLag",
        "ReplicaNotStreaming",
        "PrimaryBackendDown",
        "RabbitmqNodeDown",
        "RabbitmqPartition",
        "QuorumQueueBelowQuorum",
        "SchedulerHeartbeatStale",
        "NoDagProcessor",
        "TwoDagProcessors",
        "Csync2Conflict",
        "Csync2Unsynced",
        "BackupTooOld",
        "DiskFilling",
    ):
        assert f"AirflowHa{mode}" in names


def test_backup_alert_only_with_backups():
    assert "AirflowHaBackupTooOld" not in alerts(promtool_rules.render(backups=False))


def test_thresholds_come_from_the_pillar_defaults():
    rules = alerts(promtool_rules.render())
    assert rules["AirflowHaReplicaLag"]["expr"].count("16777216") == 1
    assert rules["AirflowHaNodeDown"]["for"] == "1m"
    assert "> 120" in rules["AirflowHaSchedulerHeartbeatStale"]["expr"]
