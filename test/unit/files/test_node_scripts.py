"""The small programs the formula installs on nodes, run for real with fake
tools on PATH (each fake logs its argv) and real sockets on 127.0.0.1:
rabbitmq-heal (rabbitmq/files/rabbitmq-heal.sh), etcd-leader-elsewhere
(postgresql/files/etcd-leader-elsewhere.py) and airflow-restart-in-turn
(airflow/files/airflow-restart-in-turn.sh)."""

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

FILES = Path(__file__).resolve().parents[3] / "airflow_ha"
HEAL = FILES / "rabbitmq" / "files" / "rabbitmq-heal.sh"
MOVER = FILES / "postgresql" / "files" / "etcd-leader-elsewhere.py"
IN_TURN = FILES / "airflow" / "files" / "airflow-restart-in-turn.sh"


def fake(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text(f'#!/bin/bash\necho "{name} $*" >> "$FAKE_LOG"\n{body}\n')
    path.chmod(0o755)


@pytest.fixture
def tools(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    log.write_text("")
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", FAKE_LOG=str(log))
    return bin_dir, log, env


def run_ok(cmd, env, log):
    """Run a node script; it must exit 0. Its stdout and the fakes' call log."""
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout, log.read_text()


def listener():
    """A listening TCP socket on loopback and its port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    return sock, sock.getsockname()[1]


def free_port():
    sock, port = listener()
    sock.close()
    return port


# -- rabbitmq-heal -------------------------------------------------------------------
@pytest.fixture
def heal(tools, tmp_path):
    bin_dir, log, env = tools
    env["RABBITMQ_HEAL_STAMP"] = str(tmp_path / "down")
    fake(bin_dir, "systemctl", 'exit "${SYSTEMCTL_RC:-0}"')
    fake(bin_dir, "epmd", 'echo "name rabbit at port 25672"')
    fake(bin_dir, "rabbitmq-diagnostics", "exit 69")  # the app is not running

    def run(amqp, dist, *peers):
        return run_ok(["bash", str(HEAL), "rabbitmq-server", str(amqp), str(dist), *peers], env, log)

    return run, tmp_path / "down", env


def test_heal_leaves_a_running_app_alone(heal):
    run, stamp, _ = heal
    amqp, port = listener()
    out, calls = run(port, free_port(), "127.0.0.1")
    assert calls == "" and not stamp.exists()
    amqp.close()


def test_heal_restarts_only_after_grace_with_a_majority(heal):
    run, stamp, _ = heal
    dist, dist_port = listener()
    # app down, VM up, both peers reachable: first sight only stamps
    out, calls = run(free_port(), dist_port, "127.0.0.1", "127.0.0.1")
    assert stamp.exists() and "restart" not in calls
    stamp.write_text(f"{int(time.time()) - 31}\n")  # stopped for 31 s
    out, calls = run(free_port(), dist_port, "127.0.0.1", "127.0.0.1")
    assert "systemctl restart rabbitmq-server" in calls
    assert "restarting rabbitmq-server" in out and not stamp.exists()
    dist.close()


def test_heal_never_restarts_a_minority(heal):
    run, stamp, _ = heal
    stamp.write_text(f"{int(time.time()) - 300}\n")
    out, calls = run(free_port(), free_port(), "127.0.0.1", "127.0.0.1")  # no peer answers
    assert "restart" not in calls and not stamp.exists()


def test_heal_leaves_a_unit_systemd_is_starting(heal):
    run, stamp, env = heal
    env["SYSTEMCTL_RC"] = "3"  # is-active: activating / inactive
    stamp.write_text(f"{int(time.time()) - 300}\n")
    dist, dist_port = listener()
    out, calls = run(free_port(), dist_port, "127.0.0.1")
    assert "restart" not in calls and not stamp.exists()
    dist.close()


# -- etcd-leader-elsewhere -------------------------------------------------------------
class Primary(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):  # noqa: N802
        self.send_response(self.status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def mover(tools):
    bin_dir, log, env = tools
    server = http.server.HTTPServer(("127.0.0.1", 0), Primary)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/primary"

    def run(status=200, me=1, leader=1, healthy=("http://b:2379",)):
        Primary.status = status
        members = {"members": [
            {"ID": 1, "name": "a", "clientURLs": ["http://a:2379"]},
            {"ID": 255, "name": "b", "clientURLs": ["http://b:2379"]},
        ]}  # fmt: skip
        body = f"""
shift  # --command-timeout=3s
case "$1" in
  endpoint) if [ "$2" = status ]; then echo '[{{"Status": {{"header": {{"member_id": {me}}}, "leader": {leader}}}}}]';
            else case " {" ".join(healthy)} " in *" $ETCDCTL_ENDPOINTS "*) exit 0;; *) exit 1;; esac; fi;;
  member) echo '{json.dumps(members)}';;
esac
"""
        fake(bin_dir, "etcdctl", body)
        log.write_text("")
        return run_ok([sys.executable, str(MOVER), url], env, log)

    yield run
    server.shutdown()


def test_mover_does_nothing_off_the_primary(mover):
    out, calls = mover(status=503)
    assert calls == ""


def test_mover_leaves_a_leader_on_another_node(mover):
    out, calls = mover(me=1, leader=255)
    assert "move-leader" not in calls


def test_mover_hands_the_leadership_to_a_healthy_member(mover):
    out, calls = mover(me=1, leader=1)
    assert "etcdctl --command-timeout=3s move-leader ff" in calls
    assert "moved off the Patroni primary to b" in out


def test_mover_never_moves_to_an_unhealthy_member(mover):
    out, calls = mover(me=1, leader=1, healthy=())
    assert "move-leader" not in calls and "left as is" in out


# -- airflow-restart-in-turn ---------------------------------------------------------
class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.send_response(type(self).status)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *_args):
        pass


@pytest.fixture
def in_turn(tools, tmp_path):
    """The script with a fake etcdctl (its exec form: runs the command it is
    given, as while holding the lock) and a fake systemctl; real health
    endpoints on loopback (this node's and a peer's) whose status the test sets."""
    bin_dir, log, env = tools
    # lock --ttl 30 NAME CMD...: like etcdctl, a dashed word after NAME is a flag it refuses
    # get/put/del: one key in a file (the failed-restart record)
    store = tmp_path / "failed-key"
    fake(
        bin_dir,
        "etcdctl",
        f'case $1 in get) cat "{store}" 2>/dev/null; exit 0;; put) echo "$3" > "{store}"; exit 0;;'
        f' del) rm -f "{store}"; exit 0;; esac\n'
        'shift 4; for a in "$@"; do case $a in -*) echo "unknown flag: $a" >&2; exit 1;; esac; done; exec "$@"',
    )
    fake(bin_dir, "systemctl", '[ "$1" = show ] && echo no; exit 0')
    servers, urls = [], {}
    for name in ("own", "peer"):
        handler = type(f"Health{name}", (_Health,), {"status": 200})
        server = http.server.HTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        urls[name] = (handler, f"http://127.0.0.1:{server.server_port}/api/v2/monitor/health")
    marker = tmp_path / "restart-pending-api"
    yield urls, marker, dict(env, FAILED_KEY=str(store)), log
    for server in servers:
        server.shutdown()


def _in_turn(urls, marker, env, limit=20):
    cmd = [str(IN_TURN), "ah/airflow/api-restart", "airflow-api-server", urls["own"][1], str(marker),
           str(limit), urls["peer"][1]]  # fmt: skip
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=30, check=False)


def test_in_turn_does_nothing_without_the_marker(in_turn):
    urls, marker, env, log = in_turn
    proc = _in_turn(urls, marker, env)
    assert proc.returncode == 0 and log.read_text() == ""


def test_in_turn_restarts_under_the_lock_and_clears_the_marker_once_healthy(in_turn):
    urls, marker, env, log = in_turn
    marker.touch()
    proc = _in_turn(urls, marker, env)
    assert proc.returncode == 0, proc.stderr
    lines = log.read_text().splitlines()
    assert lines[0].startswith("etcdctl lock --ttl 30 ah/airflow/api-restart ")
    assert "systemctl restart airflow-api-server" in lines
    assert not marker.exists() and "healthy" in proc.stdout


def test_in_turn_keeps_the_marker_when_the_server_stays_unhealthy(in_turn):
    urls, marker, env, _log = in_turn
    marker.touch()
    urls["own"][0].status = 503  # down before and after the restart: it is restarted
    proc = _in_turn(urls, marker, env, limit=3)
    assert proc.returncode == 1 and marker.exists()
    assert "not healthy" in proc.stdout and "refuse" in proc.stdout


def test_in_turn_refuses_while_another_nodes_restart_is_recorded_failed(in_turn):
    urls, marker, env, log = in_turn
    marker.touch()
    Path(env["FAILED_KEY"]).write_text("some-other-node\n")
    proc = _in_turn(urls, marker, env)
    assert proc.returncode == 3 and "some-other-node did not come back healthy" in proc.stdout
    assert "systemctl restart" not in log.read_text() and marker.exists()


def test_in_turn_a_failed_restart_is_recorded_and_cleared_once_healthy(in_turn):
    urls, marker, env, _log = in_turn
    marker.touch()
    urls["own"][0].status = 503
    assert _in_turn(urls, marker, env, limit=2).returncode == 1
    me = subprocess.run(["hostname"], capture_output=True, text=True, check=True).stdout.strip()
    assert Path(env["FAILED_KEY"]).read_text().strip() == me
    urls["own"][0].status = 200  # fixed: this node's next turn clears the record
    proc = _in_turn(urls, marker, env)
    assert proc.returncode == 0 and not Path(env["FAILED_KEY"]).exists() and not marker.exists()


def test_in_turn_a_peer_that_does_not_answer_does_not_block(in_turn):
    """A node being added has no API server yet: the others still restart in turn."""
    urls, marker, env, log = in_turn
    marker.touch()
    urls["peer"][0].status = 503
    proc = _in_turn(urls, marker, env)
    assert proc.returncode == 0 and "does not answer" in proc.stdout
    assert "systemctl restart airflow-api-server" in log.read_text() and not marker.exists()
