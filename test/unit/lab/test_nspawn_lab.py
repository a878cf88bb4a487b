"""test/lab/nspawn_lab (labctl's package): its command table, the names the
drills and the verification suite import, and the commands that need no lab."""

import os
import subprocess
import sys

import pytest
from testlib import ROOT

LABCTL = ROOT / "test" / "lab" / "labctl"
COMMANDS = (
    "up down apply salt salt-run exec kill start wipe add remove partition heal drill drills status wheels verify "
    "demo test-cluster bench kitchen airflow-version"
).split()


def labctl(tmp_path, *args):
    env = dict(os.environ, LAB_STATE=str(tmp_path / "state"), LAB_CACHE=str(tmp_path / "cache"))
    env.pop("LAB_ID", None)
    return subprocess.run([LABCTL, *args], capture_output=True, text=True, env=env, timeout=60, check=False)


def test_usage_names_every_command(tmp_path):
    proc = labctl(tmp_path)
    assert proc.returncode == 2
    assert f"usage: labctl {'|'.join(COMMANDS)} [ARGS...]" in proc.stdout


def test_status_of_a_lab_that_is_down(tmp_path):
    proc = labctl(tmp_path, "status")
    assert (proc.returncode, proc.stdout) == (1, "lab: down\n")
    assert not (tmp_path / "state").exists()  # status writes nothing


def test_drill_without_a_name_lists_the_drills(tmp_path):
    proc = labctl(tmp_path, "drill")
    drills = sorted(p.name for p in (ROOT / "test/lab/drills.d").iterdir() if os.access(p, os.X_OK))
    assert proc.returncode == 1
    assert proc.stderr.strip().endswith("drills: " + " ".join(drills))


def test_the_names_drills_and_the_suite_import(tmp_path):
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import drill_lib as d; "
        "names = 'LAB VENV_BIN STATE LabError config nsenter node_pid1 node_env salt_cmd salt_job "
        "apply_state master_dir cmd_kill cmd_start cmd_partition cmd_heal'.split(); "
        "missing = [n for n in names if not hasattr(d.lab, n)]; print(missing); sys.exit(bool(missing))"
    )
    env = dict(os.environ, LAB_STATE=str(tmp_path / "state"))
    proc = subprocess.run(
        [sys.executable, "-c", code, ROOT / "test/lab"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_wipe_needs_a_lab(tmp_path):
    proc = labctl(tmp_path, "wipe", "node3")
    assert proc.returncode == 1 and "labctl" in proc.stderr


def test_add_and_remove_refuse_what_they_cannot_do(tmp_path, monkeypatch):
    """labctl add takes nodeN names only; remove never takes out a node
    test/lab/pillar names (a generated pillar cannot drop it)."""
    sys.path.insert(0, str(ROOT / "test" / "lab"))
    from nspawn_lab import conf, scale

    cfg = {"network": "10.77.0.0/24", "nodes": [{"name": "node1", "address": "10.77.0.11"}]}
    monkeypatch.setattr(scale, "config", lambda: cfg)
    with pytest.raises(conf.LabError, match="node1..node9"):
        scale.cmd_add(["worker7"])
    with pytest.raises(conf.LabError, match="already a lab node"):
        scale.cmd_add(["node1"])
    with pytest.raises(conf.LabError, match="test/lab/pillar names it"):
        scale.cmd_remove(["node3"])
    with pytest.raises(conf.LabError, match="not a lab node"):
        scale.cmd_remove(["node4"])


def test_demo_waits_for_every_api_bounded():
    """make demo's smoke check asks until each node's API answers (a node
    still starting is not reported 'no answer' at once), within a bound."""
    sys.path.insert(0, str(ROOT / "test" / "lab"))
    from nspawn_lab import verify

    cfg = {"nodes": [{"name": "node1"}, {"name": "node2"}]}
    asked = []

    def ask(node):
        asked.append(node["name"])
        return '{"ok": 1}' if node["name"] == "node1" or asked.count("node2") >= 3 else ""

    assert verify.wait_api(cfg, timeout=30, interval=0, ask=ask) == {
        "node1": '{"ok": 1}',
        "node2": '{"ok": 1}',
    }
    assert asked.count("node1") == 1 and asked.count("node2") == 3
    never = verify.wait_api(cfg, timeout=0.2, interval=0.05, ask=lambda node: "")
    assert never == {}


def test_bench_serial_waits_take_each_wait_states_longest_node():
    sys.path.insert(0, str(ROOT / "test" / "lab"))
    from nspawn_lab import bench

    def st(sid, ms):
        return {f"x_|-{sid}_|-n_|-f": {"__id__": sid, "duration": ms}}

    ret = {
        "node1": {
            **st("airflow_ha-etcd-wait-healthy", 1500.0),
            **st("airflow_ha-airflow-db-migrated", 42000.0),
        },
        "node2": {**st("airflow_ha-etcd-wait-healthy", 9000.0), **st("airflow_ha-common-hosts", 99000.0)},
        "node3": "Minion did not return",
    }
    assert bench.serial_waits(ret) == {"etcd quorum": 9.0, "Airflow schema migration": 42.0}
