"""Network partition of the Patroni leader's node, destructive: runs after the
failover test (file name) and only in the lab.

One round of test/lab/drills.d/partition, shorter than `make drills` (30 s
cut): the leader's node is cut off the lab bridge and healed. It passes only
with no moment of two primaries or two dag-processors (sampled twice a
second inside every node), no acknowledged write lost, and the cluster whole
again after the heal with no hand step (one leader, every replica streaming
on its timeline, RabbitMQ running on every node without a partition).

Set AIRFLOW_HA_SKIP_FAILOVER=1 to leave the cluster alone.
"""

import drill_lib  # test/lab, on sys.path through conftest
import pytest


@pytest.fixture(scope="module")
def lab_cluster(db_nodes_to_break, role_nodes):
    if set(db_nodes_to_break) != set(role_nodes("broker")):
        pytest.skip("the drill needs the db nodes to hold the broker too")
    return db_nodes_to_break


def test_leader_partition_one_writer_nothing_lost_heals(lab_cluster):
    proc, figures = drill_lib.run_drill(
        "partition", "--rounds", "1", "--cut", "30", "--after", "20", timeout=900
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert figures["partition_two_primaries_max"] == "0.0 s"
    assert figures["partition_two_dag_processors_max"] == "0.0 s"
    assert figures["partition_acked_lost_total"] == "0 n"
