"""_modules/patroni.py on Patroni REST API answers recorded in the lab
(test/unit/data/patroni/, see its README), and its HTTP helper against a real
HTTP server on 127.0.0.1."""

import http.server
import json
import socket
import threading

import pytest
from salt.exceptions import CommandExecutionError, SaltInvocationError
from testlib import ROOT, RouteHandler, load_module, utils_dunder

patroni = load_module("patroni")
DATA = ROOT / "test" / "unit" / "data" / "patroni"


def recorded(name):
    return (DATA / name).read_text()


@pytest.fixture
def configure_loader_modules():
    return {
        patroni: {
            "__grains__": {"id": "node1"},
            "__opts__": {"id": "node1"},
            "__salt__": {},
            "__utils__": utils_dunder("ah_http"),
        }
    }


@pytest.fixture
def answers(monkeypatch):
    """Route _http_get to recorded bodies: {url: (status, body)}; records the URLs asked."""
    table = {}
    asked = []

    def fake(url, timeout, context=None):
        asked.append(url)
        if url not in table:
            raise CommandExecutionError(f"cannot reach {url}: [Errno 111] Connection refused")
        return table[url]

    monkeypatch.setattr(patroni, "_http_get", fake)
    table["asked"] = asked
    return table


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "config.yml"
    path.write_text(
        "scope: airflow-ha-lab\nname: node1\nrestapi:\n"
        "  listen: 10.77.0.11:8008\n  connect_address: 10.77.0.11:8008\n"
    )
    return str(path)


HEALTHY = "cluster_healthy.json"
NO_LEADER = "cluster_leader_killed.json"
NEW_LEADER = "cluster_new_leader.json"


def leader_in(name):
    members = json.loads(recorded(name))["members"]
    return [m["name"] for m in members if m["role"] == "leader" and m["state"] == "running"]


def test_recordings_are_what_their_names_say():
    assert len(leader_in(HEALTHY)) == 1
    assert leader_in(NO_LEADER) == []
    assert len(leader_in(NEW_LEADER)) == 1
    assert leader_in(NEW_LEADER) != leader_in(HEALTHY)


def test_cluster_reads_the_address_from_patroni_config(answers, config_file):
    answers["http://10.77.0.11:8008/cluster"] = (200, recorded(HEALTHY))
    data = patroni.cluster(config_file=config_file)
    assert answers["asked"] == ["http://10.77.0.11:8008/cluster"]
    assert len(data["members"]) == 3


def test_explicit_host_and_port_win_over_config(answers, config_file):
    answers["http://10.77.0.12:9008/cluster"] = (200, recorded(HEALTHY))
    patroni.cluster(host="10.77.0.12", port=9008, config_file=config_file)
    assert answers["asked"] == ["http://10.77.0.12:9008/cluster"]


def test_leader_and_is_leader_on_healthy_cluster(answers):
    answers["http://h:8008/cluster"] = (200, recorded(HEALTHY))
    expected = leader_in(HEALTHY)[0]
    assert patroni.leader(host="h") == expected
    assert patroni.is_leader(name=expected, host="h") is True
    others = [m["name"] for m in patroni.members(host="h") if m["name"] != expected]
    assert len(others) == 2
    assert all(patroni.is_leader(name=o, host="h") is False for o in others)


def test_is_leader_defaults_to_minion_id(answers):
    answers["http://h:8008/cluster"] = (200, recorded(HEALTHY))
    assert patroni.is_leader(host="h") is (leader_in(HEALTHY)[0] == "node1")


def test_no_leader_while_leader_node_is_dead(answers):
    answers["http://h:8008/cluster"] = (200, recorded(NO_LEADER))
    assert patroni.leader(host="h") is None
    assert patroni.is_leader(name="node1", host="h") is False


def test_new_leader_after_failover(answers):
    answers["http://h:8008/cluster"] = (200, recorded(NEW_LEADER))
    assert patroni.leader(host="h") == leader_in(NEW_LEADER)[0]


def test_members_and_replicas(answers):
    answers["http://h:8008/cluster"] = (200, recorded(HEALTHY))
    members = patroni.members(host="h")
    assert sorted(m["name"] for m in members) == ["node1", "node2", "node3"]
    assert set(members[0]) == {"name", "role", "state", "host", "port", "timeline", "lag"}
    reps = patroni.replicas(host="h")
    assert len(reps) == 2
    assert leader_in(HEALTHY)[0] not in reps
    assert all(m["lag"] == 0 for m in members if m["name"] in reps)


def test_unreachable_api_raises_clear_error(answers):
    with pytest.raises(CommandExecutionError, match=r"cannot reach http://h:8008/cluster"):
        patroni.leader(host="h")


def test_non_json_answer_is_a_clear_error(answers):
    answers["http://h:8008/cluster"] = (200, "<html>proxy error</html>")
    with pytest.raises(CommandExecutionError, match="not JSON"):
        patroni.cluster(host="h")


def test_answer_without_members_is_a_clear_error(answers):
    answers["http://h:8008/cluster"] = (200, recorded("patroni_replica.json"))
    with pytest.raises(CommandExecutionError, match="no members list"):
        patroni.cluster(host="h")


def test_missing_config_file_names_the_file_and_the_fix(tmp_path):
    missing = str(tmp_path / "nope.yml")
    with pytest.raises(CommandExecutionError, match=r"nope\.yml does not exist.*host="):
        patroni.cluster(config_file=missing)


def test_config_without_restapi_address(tmp_path):
    path = tmp_path / "c.yml"
    path.write_text("scope: x\n")
    with pytest.raises(CommandExecutionError, match="restapi.connect_address"):
        patroni.cluster(config_file=str(path))


@pytest.mark.parametrize("host", ["", "http://x/", 5])
def test_bad_host_is_refused(host):
    with pytest.raises(SaltInvocationError, match="host must be"):
        patroni.cluster(host=host)


def test_bad_port_is_refused():
    with pytest.raises(SaltInvocationError, match="port must be a number"):
        patroni.cluster(host="h", port="eighty")


# --- the real HTTP helper, against a server on loopback -----------------------------------


@pytest.fixture
def server():
    httpd = http.server.HTTPServer(("127.0.0.1", 0), RouteHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_http_get_returns_status_and_body(server):
    RouteHandler.routes = {"/cluster": (200, recorded(HEALTHY)), "/leader": (503, '{"role": "replica"}')}
    port = server.server_address[1]
    assert patroni.leader(host="127.0.0.1", port=port) == leader_in(HEALTHY)[0]
    status, body = patroni._http_get(f"http://127.0.0.1:{port}/leader", 5)
    assert status == 503
    assert json.loads(body)["role"] == "replica"


def test_http_get_server_error_on_cluster_is_an_error(server):
    RouteHandler.routes = {"/cluster": (500, '{"error": "boom"}')}
    with pytest.raises(CommandExecutionError, match="HTTP 500"):
        patroni.cluster(host="127.0.0.1", port=server.server_address[1])


def test_http_get_connection_refused():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    with pytest.raises(CommandExecutionError, match=f"cannot reach http://127.0.0.1:{port}/cluster"):
        patroni.cluster(host="127.0.0.1", port=port, timeout=2)


def test_dynamic_config_recorded(answers):
    answers["http://h:8008/config"] = (200, recorded("config_bootstrap.json"))
    conf = patroni.dynamic_config(host="h")
    assert {"ttl", "loop_wait", "retry_timeout", "postgresql"} <= set(conf)


class _PatchHandler(RouteHandler):
    seen = []

    def do_PATCH(self):  # noqa: N802 (http.server API)
        length = int(self.headers["Content-Length"])
        body = json.loads(self.rfile.read(length))
        self.seen.append((self.headers.get("Authorization"), body))
        status = 200 if self.headers.get("Authorization") == "Basic cGF0cm9uaTpzM2NyZXQ=" else 401
        data = json.dumps({"ttl": body.get("ttl", 30), "loop_wait": 10}).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def patch_server():
    _PatchHandler.seen = []
    httpd = http.server.HTTPServer(("127.0.0.1", 0), _PatchHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _conf(tmp_path, port, password):
    path = tmp_path / "config.yml"
    path.write_text(
        f"restapi:\n  connect_address: 127.0.0.1:{port}\n"
        f"  authentication: {{username: patroni, password: {password}}}\n"
    )
    return str(path)


def test_patch_dynamic_config_authenticates_from_config_file(tmp_path, patch_server):
    conf = _conf(tmp_path, patch_server.server_address[1], "s3cret")
    assert patroni.patch_dynamic_config({"ttl": 20}, config_file=conf)["ttl"] == 20
    assert _PatchHandler.seen == [("Basic cGF0cm9uaTpzM2NyZXQ=", {"ttl": 20})]


def test_patch_dynamic_config_wrong_password_is_clear(tmp_path, patch_server):
    conf = _conf(tmp_path, patch_server.server_address[1], "wrong")
    with pytest.raises(CommandExecutionError, match=r"refused the credentials.*HTTP 401"):
        patroni.patch_dynamic_config({"ttl": 20}, config_file=conf)


def test_patch_dynamic_config_refuses_empty_changes():
    with pytest.raises(SaltInvocationError, match="non-empty dict"):
        patroni.patch_dynamic_config({}, host="h")


def test_is_leader_default_instead_of_error(answers, tmp_path):
    assert patroni.is_leader(host="h", default=False) is False
    assert patroni.is_leader(config_file=str(tmp_path / "none.yml"), default=False) is False
    with pytest.raises(CommandExecutionError):
        patroni.is_leader(host="h")
