"""etcd, Patroni and the node exporter come back by themselves after a failed
start: the trap a boot hits when the node's address comes up after the daemon
starts (the PostgreSQL exporter, Prometheus and Alertmanager carry the same
drop-in, monitoring/boot.sls).

CI at 732fd18: node3 was killed and started again; etcd and Patroni were both
dead 300 s later and a re-apply started them. Debian's etcd.service runs
Restart=on-abnormal (an exit 1 such as "bind: cannot assign requested
address" is never retried) and patroni.service restarts 100 ms apart (five
failures hit systemd's start limit in half a second); both are ordered after
network.target only. The formula's boot drop-in (common/files/boot-dropin.conf)
orders them after network-online.target and restarts a failed exit 5 s apart.

The test reproduces a failed start on a replica's node, without touching its
address: a listener holds the daemon's own port on the node's address while
the daemon starts, so it exits 1, then lets go. The daemon must be running
again without anyone starting it. Only in the lab (it stops daemons).
"""

import time

import drill_lib  # test/lab, on sys.path through conftest
import pytest

HOLD_S = 8  # the port stays taken longer than one restart delay (5 s)

# On the node: take ADDR:PORT, start UNIT (it cannot bind, exits 1), let go.
HOLD = """
set -e
systemctl stop {unit}
python3 -c '
import socket, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("{addr}", {port}))
s.listen()
open("/run/airflow_ha-test-hold", "w").close()
time.sleep({hold})
' &
while [ ! -e /run/airflow_ha-test-hold ]; do sleep 0.1; done
rm -f /run/airflow_ha-test-hold
systemctl start --no-block {unit}
wait
"""


def unit_show(node_exec, name, unit):
    out = node_exec(name, f"systemctl show {unit} -p ActiveState -p NRestarts -p Result").stdout
    return dict(line.split("=", 1) for line in out.split())


def lookup(ah, path):
    for key in path:
        ah = ah[key]
    return ah


@pytest.mark.parametrize(
    "unit_key,port_key",
    [
        (("etcd", "service"), ("etcd", "peer_port")),
        (("postgresql", "patroni", "service"), ("postgresql", "patroni", "rest_port")),
        (("monitoring", "node_exporter", "pkg"), ("monitoring", "node_exporter", "port")),
    ],
    ids=["etcd", "patroni", "node_exporter"],
)
def test_daemon_restarts_after_a_failed_start(
    unit_key, port_key, spare_db_node, db_nodes_to_break, ah, address, node_exec, wait_for, require_unit
):
    node = spare_db_node
    unit, value = lookup(ah, unit_key), lookup(ah, port_key)
    require_unit(unit, [node])
    before = int(unit_show(node_exec, node, unit)["NRestarts"])
    res = node_exec(node, HOLD.format(unit=unit, addr=address(node), port=value, hold=HOLD_S))
    assert res.rc == 0, f"holding {address(node)}:{value} on {node} failed: {res.stderr}"
    time.sleep(1)
    shown = wait_for(
        lambda: (s := unit_show(node_exec, node, unit))["ActiveState"] == "active" and s, timeout=60
    )
    last = shown or unit_show(node_exec, node, unit)
    assert shown, (
        f"{unit} on {node} not running again 60 s after its port was freed: {last}"
        " (a failed start must be retried: airflow_ha-boot.conf, Restart=on-failure, RestartSec=5)"
    )
    assert int(last["NRestarts"]) > before, (
        f"{unit} on {node} never failed to start: the test proved nothing ({last})"
    )
    took, why = drill_lib.wait_whole(db_nodes_to_break, 180)
    assert took is not None, f"cluster not whole 180 s after {unit} came back on {node}: {why}"
