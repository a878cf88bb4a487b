"""Task recovery, destructive: runs last (file name) and only in the lab.

One round of test/lab/drills.d/task_recovery (`make drills` kills each node
in turn): a node is killed while it runs tasks of a DAG run; the run must
succeed with the lost tasks re-run on a live node, never two live copies of
a task at once, and the cluster whole again after the node is started.
The suite's bound is looser than the drill's 60 s target (--max-rerun 120):
the CI lab with backups and monitoring on measured a re-run 75.8 s after the
kill; the 60 s figure is checked by `make drills` (issue 12, still open).
The victim is a db node that is not the Patroni leader's: killing the
leader's node adds a database failover to the lost worker (re-runs 54-56 s
after the kill since the Execution API retry window outlasts a failover;
71-114 s before), and `make drills` kills every node, the leader's included.

Set AIRFLOW_HA_SKIP_FAILOVER=1 to leave the cluster alone.
"""

import drill_lib  # test/lab, on sys.path through conftest


def test_node_killed_mid_run_its_tasks_rerun_elsewhere_run_succeeds(spare_db_node):
    victim = spare_db_node
    proc, figures = drill_lib.run_drill(
        "task_recovery", "--nodes", victim, "--max-rerun", "120", timeout=1500
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-8000:]
    assert int(figures[f"task_recovery_{victim}_lost_tasks"].split()[0]) > 0, (
        "the kill caught no running task"
    )
    assert figures[f"task_recovery_{victim}_two_live_copies"] == "0 n"
