"""_modules/airflow_ha_etcd.py: etcd's /health on recorded answers, and over
TLS with client certificates against a real HTTPS server on 127.0.0.1."""

import http.server
import json
import pathlib
import ssl
import threading

import pytest
from salt.exceptions import CommandExecutionError, SaltInvocationError
from testlib import ROOT, RouteHandler, load_module, utils_dunder

etcd = load_module("airflow_ha_etcd")


def recorded(name):
    """An answer recorded in the lab (test/unit/data/patroni, see its README)."""
    return (ROOT / "test" / "unit" / "data" / "patroni" / name).read_text()


@pytest.fixture
def configure_loader_modules():
    return {etcd: {"__salt__": {}, "__opts__": {}, "__utils__": utils_dunder("ah_http")}}


@pytest.fixture
def answers(monkeypatch):
    """Route _http_get to recorded bodies: {url: (status, body)}."""
    table = {}

    def fake(url, timeout, context=None):
        if url not in table:
            raise CommandExecutionError(f"cannot reach {url}: [Errno 111] Connection refused")
        return table[url]

    monkeypatch.setattr(etcd, "_http_get", fake)
    return table


def test_etcd_health_recorded(answers):
    answers["http://127.0.0.1:2379/health"] = (200, recorded("etcd_health.json"))
    assert etcd.health() is True
    answers["http://10.77.0.12:2379/health"] = (503, '{"health":"false","reason":"RAFT NO LEADER"}')
    assert etcd.health("http://10.77.0.12:2379/") is False


def test_etcd_version(answers):
    answers["http://127.0.0.1:2379/version"] = (200, '{"etcdserver":"3.4.23","etcdcluster":"3.0.0"}')
    assert etcd.version() == {"server": "3.4.23", "cluster": "3.0.0"}
    answers["http://10.77.0.12:2379/version"] = (200, "404 page not found")
    with pytest.raises(CommandExecutionError, match="without etcdserver/etcdcluster"):
        etcd.version("http://10.77.0.12:2379")


def test_etcd_health_bad_url():
    with pytest.raises(SaltInvocationError, match="http"):
        etcd.health("10.77.0.11:2379")


# --- over TLS (client certificate auth), against a server on loopback ----------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """CA, server cert (SAN 127.0.0.1) and a client cert from another node, as files."""
    from testlib import load_lab_pki

    tls = load_lab_pki().etcd_tls_pillar(
        {"node1": "10.77.0.11", "node2": "10.77.0.12"}, tmp_path_factory.mktemp("pki")
    )
    out = tmp_path_factory.mktemp("files")
    files = {"ca": out / "ca.crt"}
    files["ca"].write_text(tls["ca_cert"])
    for node in ("node1", "node2"):
        for kind in ("cert", "key"):
            files[f"{node}.{kind}"] = out / f"{node}.{kind}"
            files[f"{node}.{kind}"].write_text(tls["certs"][node][kind])
    return {k: str(v) for k, v in files.items()}


@pytest.fixture
def tls_server(pki):
    """An HTTPS server on 127.0.0.1 that requires a client certificate from the CA."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=pki["ca"])
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_cert_chain(pki["node1.cert"], pki["node1.key"])
    httpd = http.server.HTTPServer(("127.0.0.1", 0), RouteHandler)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    RouteHandler.routes = {"/health": (200, recorded("etcd_health.json"))}
    yield f"https://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_etcd_health_tls_with_client_certificate(tls_server, pki):
    assert etcd.health(tls_server, cacert=pki["ca"], cert=pki["node2.cert"], key=pki["node2.key"])
    RouteHandler.routes = {"/health": (503, '{"health":"false","reason":"RAFT NO LEADER"}')}
    assert etcd.health(tls_server, cacert=pki["ca"], cert=pki["node2.cert"], key=pki["node2.key"]) is False


def test_etcd_health_tls_refused_without_client_certificate(tls_server, pki):
    with pytest.raises(CommandExecutionError, match="cannot reach https://127.0.0.1"):
        etcd.health(tls_server, timeout=3, cacert=pki["ca"])


def test_etcd_health_tls_refuses_an_unknown_server(tls_server, pki):
    # Without the CA the server's certificate cannot be verified.
    with pytest.raises(CommandExecutionError, match="CERTIFICATE_VERIFY_FAILED"):
        etcd.health(tls_server, timeout=3, cert=pki["node2.cert"], key=pki["node2.key"])


def test_etcd_health_tls_bad_arguments(pki, tmp_path):
    with pytest.raises(SaltInvocationError, match="need an https:// url"):
        etcd.health("http://127.0.0.1:2379", cacert=pki["ca"])
    with pytest.raises(SaltInvocationError, match="cannot load the CA certificate /nonexistent/ca.crt"):
        etcd.health("https://127.0.0.1:2379", cacert="/nonexistent/ca.crt")
    with pytest.raises(SaltInvocationError, match="needs its certificate"):
        etcd.health("https://127.0.0.1:2379", key=pki["node2.key"])
    wrong = tmp_path / "wrong.key"
    wrong.write_text(pathlib.Path(pki["node1.key"]).read_text())
    with pytest.raises(SaltInvocationError, match="cannot load the client certificate") as exc:
        etcd.health("https://127.0.0.1:2379", cacert=pki["ca"], cert=pki["node2.cert"], key=str(wrong))
    assert "PRIVATE KEY" not in str(exc.value)


def test_etcd_health_passes_the_tls_context(monkeypatch, pki):
    seen = []

    def fake(url, timeout, context=None):
        seen.append((url, context))
        return 200, recorded("etcd_health.json")

    monkeypatch.setattr(etcd, "_http_get", fake)
    assert etcd.health(
        "https://127.0.0.1:2379", cacert=pki["ca"], cert=pki["node2.cert"], key=pki["node2.key"]
    )
    assert etcd.health("https://127.0.0.1:2379")
    assert seen[0][0] == "https://127.0.0.1:2379/health"
    assert isinstance(seen[0][1], ssl.SSLContext) and seen[0][1].verify_mode == ssl.CERT_REQUIRED
    assert seen[1][1] is None  # no TLS arguments: urllib's default context


# --- membership: join_plan over a fake v3 cluster API ----------------------

N1, N2, N3 = "http://10.77.0.11:2379", "http://10.77.0.12:2379", "http://10.77.0.13:2379"
P3 = "http://10.77.0.13:2380"


def raw(mid, name, n, started=True, added=False):
    """A member as etcd lists it: one that never started has no clientURLs;
    a day-1 one keeps its name, one added at runtime has none (see
    etcd_members_unstarted.json)."""
    peer = f"http://10.77.0.1{n}:2380"
    client = [f"http://10.77.0.1{n}:2379"] if started else []
    return {
        "ID": mid,
        "name": "" if added and not started else name,
        "peerURLs": [peer],
        "clientURLs": client,
    }


@pytest.fixture
def cluster(monkeypatch, tmp_path):
    """A fake etcd: the members' list, who is healthy, and the calls made."""
    fake = {"members": [raw("11", "node1", 1), raw("12", "node2", 2), raw("13", "node3", 3)],
            "healthy": {N1, N2}, "calls": []}  # fmt: skip

    def request(method, url, timeout, body=None, context=None, auth=None):
        base, _, path = url.partition("/v3/")
        if url.endswith("/health"):
            base = url[: -len("/health")]
            if base not in {N1, N2, N3} or (base == N3 and N3 not in fake["healthy"]):
                raise CommandExecutionError(f"cannot reach {url}: [Errno 111] Connection refused")
            return 200, '{"health": "%s"}' % ("true" if base in fake["healthy"] else "false")
        fake["calls"].append((path, body))
        if path == "cluster/member/remove":
            fake["members"] = [m for m in fake["members"] if m["ID"] != body["ID"]]
        if path == "cluster/member/add":
            fake["members"].append({"ID": "99", "peerURLs": body["peerURLs"]})
        return 200, json.dumps({"members": fake["members"]})

    monkeypatch.setitem(etcd.__utils__, "ah_http.request", request)
    fake["data_dir"] = str(tmp_path / "airflow-ha")
    return fake


def plan(cluster, name="node3", peer=P3, endpoints=(N1, N2)):
    return etcd.join_plan(name, peer, list(endpoints), cluster["data_dir"])


def test_join_plan_member_with_data_does_nothing(cluster):
    pathlib.Path(cluster["data_dir"], "member").mkdir(parents=True)
    assert plan(cluster)["action"] == "member"
    assert cluster["calls"] == []


def test_join_plan_day_one_no_healthy_peer_bootstraps(cluster):
    cluster["healthy"] = set()
    p = plan(cluster)
    assert p["action"] == "bootstrap"
    assert "no leader" in p["reason"]


def test_join_plan_never_started_member_starts_as_configured(cluster):
    # the cold converge of a slow third node: the others formed the cluster
    cluster["members"][2] = raw("13", "node3", 3, started=False)
    assert plan(cluster)["action"] == "start"
    assert cluster["calls"] == [("cluster/member/list", {})]


def test_join_plan_recorded_unstarted_day_one_member(cluster):
    """etcd 3.4.23's own answer: m3 of a static bootstrap, never started."""
    listed = json.loads(recorded("etcd_members_unstarted.json"))["members"]
    cluster["members"] = listed
    p = etcd.join_plan("m3", "http://127.0.0.1:23803", [N1, N2], cluster["data_dir"])
    assert p["action"] == "start", p["reason"]


def test_join_plan_added_member_that_never_started_resumes(cluster):
    cluster["members"][2] = raw("99", "node3", 3, started=False, added=True)
    p = plan(cluster)
    assert p["action"] == "resume" and p["stale"] is None


def test_join_plan_rebuilt_host_replaces_its_stale_member(cluster):
    p = plan(cluster)
    assert p["action"] == "replace"
    assert p["stale"]["id"] == "13" and p["via"] == N1
    assert sorted(p["healthy"]) == ["11", "12"]


def test_join_plan_refuses_when_the_member_answers_healthy(cluster):
    cluster["healthy"] = {N1, N2, N3}
    p = plan(cluster)
    assert p["action"] == "refuse"
    assert "never removing a healthy member" in p["reason"]


def test_join_plan_refuses_without_quorum(cluster):
    cluster["members"].append(raw("14", "node4", 4))
    cluster["members"].append(raw("15", "node5", 5))
    # 5 members, 2 healthy: removing node3 leaves 4 with 2 healthy
    p = plan(cluster)
    assert p["action"] == "refuse"
    assert "without quorum" in p["reason"]


def test_join_plan_new_node_is_added(cluster):
    cluster["healthy"] = {N1, N2, N3}
    p = plan(cluster, name="node4", peer="http://10.77.0.14:2380", endpoints=(N1, N2, N3))
    assert p["action"] == "add"
    cluster["healthy"] = {N1, N2}  # 2 of 3 healthy: 4 members need 3
    assert plan(cluster, name="node4", peer="http://10.77.0.14:2380")["action"] == "refuse"


def test_member_remove_and_add_call_the_cluster_api(cluster):
    assert etcd.member_remove(N1, "13") is True
    listed = etcd.member_add(N1, P3)
    assert [c[0] for c in cluster["calls"]] == ["cluster/member/remove", "cluster/member/add"]
    assert cluster["calls"][0][1] == {"ID": "13"}
    assert listed[-1] == {"id": "99", "name": "", "peer_urls": [P3], "client_urls": []}
    with pytest.raises(SaltInvocationError, match="decimal"):
        etcd.member_remove(N1, "node3")


def test_cluster_api_error_names_the_member(cluster, monkeypatch):
    monkeypatch.setitem(
        etcd.__utils__, "ah_http.request", lambda *a, **k: (503, "etcdserver: unhealthy cluster")
    )
    with pytest.raises(CommandExecutionError, match="member list answered HTTP 503"):
        etcd.members(N1)


# --- scale-in: members of nodes that left the pillar ---------------------------------

PEERS3 = [f"http://10.77.0.1{n}:2380" for n in (1, 2, 3)]


def test_departed_plan_removes_a_down_member_of_a_node_scaled_in(cluster):
    cluster["members"].append(raw("14", "node4", 4))
    p = etcd.departed_plan(PEERS3, N1)
    assert p["action"] == "remove" and [m["name"] for m in p["departed"]] == ["node4"]
    assert not [c for c in cluster["calls"] if c[0] != "cluster/member/list"], "a plan changes nothing"


def test_departed_plan_never_removes_a_healthy_member(cluster, monkeypatch):
    cluster["members"].append(raw("14", "node4", 4))
    real = etcd.health
    monkeypatch.setattr(etcd, "health", lambda url, **k: True if "10.77.0.14" in url else real(url, **k))
    p = etcd.departed_plan(PEERS3, N1)
    assert p["action"] == "refuse" and "answers healthy" in p["reason"]


def test_departed_plan_refuses_without_quorum_of_the_rest(cluster):
    cluster["members"].append(raw("14", "node4", 4))
    cluster["healthy"] = {N1}
    p = etcd.departed_plan(PEERS3, N1)
    assert p["action"] == "refuse" and "1 of the 3 remaining" in p["reason"]


def test_departed_plan_nothing_to_do(cluster):
    assert etcd.departed_plan(PEERS3, N1)["action"] == "ok"


def test_join_plan_adds_one_member_at_a_time(cluster):
    cluster["healthy"] = {N1, N2, N3}
    cluster["members"].append(raw("99", "node4", 4, started=False, added=True))
    p = plan(cluster, name="node5", peer="http://10.77.0.15:2380", endpoints=(N1, N2, N3))
    assert p["action"] == "wait" and "http://10.77.0.14:2380 was added" in p["reason"]
