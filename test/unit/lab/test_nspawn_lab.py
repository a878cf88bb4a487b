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
    "demo test-cluster bench bench-one kitchen airflow-version"
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


def test_cross_wheels_binary_then_pure_host_build_then_source(tmp_path, monkeypatch):
    """A pin with a wheel for the nodes' Python is fetched; one without is built
    on the host only when the result is pure; a compiled one goes to src/ with
    the build tools, for the rootfs to compile."""
    sys.path.insert(0, str(ROOT / "test" / "lab"))
    from nspawn_lab import crosswheels

    binary = {"msgpack==1.0": "msgpack-1.0-cp313-cp313-manylinux_2_17_x86_64.whl"}
    host = {"salt==1": "salt-1-py3-none-any.whl", "timelib==0.3": "timelib-0.3-cp311-cp311-linux_x86_64.whl"}
    calls = []

    def pip(*args, out):
        args = [str(a) for a in args]
        calls.append(args)
        pins = [a for a in args if "==" in a]
        if args[0] == "download" and "--only-binary=:all:" in args:
            dest = args[args.index("-d") + 1]
            if pins and all(p in binary for p in pins):
                for p in pins:
                    (tmp_path / "w" / binary[p]).touch()
                return True
            return dest.endswith("build")
        if args[0] == "wheel":
            (tmp_path / "w").joinpath(args[args.index("-w") + 1], host[pins[0]]).touch()
            return True
        return "--no-binary=:all:" in args  # a source download

    monkeypatch.setattr(crosswheels, "pip", pip)
    left = crosswheels.cross_wheels(
        ["msgpack==1.0", "salt==1", "timelib==0.3"], tmp_path / "w", (3, 13), None
    )
    assert left == ["timelib==0.3"]
    names = sorted(p.name for p in (tmp_path / "w").iterdir() if p.is_file())
    assert names == ["msgpack-1.0-cp313-cp313-manylinux_2_17_x86_64.whl", "salt-1-py3-none-any.whl"]
    build = calls[-1]
    assert build[build.index("-d") + 1].endswith("build") and "Cython" in build
    args = crosswheels.target_args((3, 13))
    assert args[args.index("--python-version") + 1] == "3.13" and "cp313" in args


def test_bench_with_an_unknown_script_is_refused_before_any_lab(tmp_path):
    proc = labctl(tmp_path, "bench", "db_failover", "no_such_bench")
    assert proc.returncode == 1
    assert "no bench.d script no_such_bench; there: " in proc.stderr
    assert not (tmp_path / "state").exists()  # nothing was brought up


def test_bench_selection():
    sys.path.insert(0, str(ROOT / "test" / "lab"))
    from nspawn_lab.bench import bench_selection

    assert bench_selection([]) is None
    assert bench_selection(["--no-scripts"]) == []
    assert bench_selection(["db_failover", "broker_loss"]) == ["db_failover", "broker_loss"]
