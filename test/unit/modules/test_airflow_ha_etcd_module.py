"""_modules/airflow_ha_etcd.py: etcd's /health on recorded answers, and over
TLS with client certificates against a real HTTPS server on 127.0.0.1."""

import http.server
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
