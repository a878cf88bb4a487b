"""A dead node replaced by a blank host, destructive: only in the lab.

One round of test/lab/drills.d/node_replace (issue 13): while a DAG run is
going, a db node is killed, its disk replaced by the base rootfs (`labctl
wipe`: same minion id, address and key) and booted, and the formula applied
once to every node. It passes only when that one apply succeeds and leaves
etcd with every node a started member, Patroni with one leader and every
replica streaming on its timeline, RabbitMQ with every quorum queue on
every node, the rebuilt node holding every DAG file of its peers, Airflow
healthy there, the DAG run succeeded, and a second apply changing nothing.
The victim is a db node that is not the Patroni leader's; `make drills`
also replaces the leader's node (a failover on top of the rebuild).

Set AIRFLOW_HA_SKIP_FAILOVER=1 to leave the cluster alone.
"""

import drill_lib  # test/lab, on sys.path through conftest


def test_blank_host_rebuilt_by_one_apply_cluster_whole_run_succeeds(spare_db_node):
    victim = spare_db_node
    proc, figures = drill_lib.run_drill("node_replace", "--node", victim, timeout=2400)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert figures[f"node_replace_{victim}_dag_run"] == "success"
    assert figures[f"node_replace_{victim}_reapply_changes"].split()[0] == "0"
