"""test/lab/lab_pki.py: the lab's etcd CA and node certificates."""

import ipaddress
import stat

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID
from testlib import load_lab_pki

lab_pki = load_lab_pki()
NODES = {"node1": "10.77.0.11", "node2": "10.77.0.12", "node3": "10.77.0.13"}


def _cert(pem):
    return x509.load_pem_x509_certificate(pem.encode())


def test_pillar_shape_files_and_certificates(tmp_path):
    tls = lab_pki.etcd_tls_pillar(NODES, tmp_path / "pki")
    assert tls["enabled"] is True
    assert sorted(tls["certs"]) == sorted(NODES)
    assert tls["ca_cert"].startswith("-----BEGIN CERTIFICATE-----")
    ca = _cert(tls["ca_cert"])
    for name, address in NODES.items():
        entry = tls["certs"][name]
        assert "PRIVATE KEY-----" in entry["key"]
        cert = _cert(entry["cert"])
        cert.verify_directly_issued_by(ca)
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert set(sans.get_values_for_type(x509.IPAddress)) == {
            ipaddress.ip_address(address),
            ipaddress.ip_address("127.0.0.1"),
        }
        assert sans.get_values_for_type(x509.DNSName) == [name]
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
        assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days >= 3649
        key = serialization.load_pem_private_key(entry["key"].encode(), None)
        assert key.public_key().public_numbers() == cert.public_key().public_numbers()
    files = sorted(p.name for p in (tmp_path / "pki").iterdir())
    assert files == sorted(["ca.crt", "ca.key", *(f"{n}.{e}" for n in NODES for e in ("crt", "key"))])
    for path in (tmp_path / "pki").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE((tmp_path / "pki").stat().st_mode) == 0o700


def test_second_call_reuses_everything(tmp_path):
    first = lab_pki.etcd_tls_pillar(NODES, tmp_path)
    assert lab_pki.etcd_tls_pillar(NODES, tmp_path) == first


def test_changed_address_renews_only_that_node(tmp_path):
    first = lab_pki.etcd_tls_pillar(NODES, tmp_path)
    moved = dict(NODES, node2="10.77.0.22")
    second = lab_pki.etcd_tls_pillar(moved, tmp_path)
    assert second["ca_cert"] == first["ca_cert"]
    assert second["certs"]["node1"] == first["certs"]["node1"]
    assert second["certs"]["node2"]["cert"] != first["certs"]["node2"]["cert"]
    sans = _cert(second["certs"]["node2"]["cert"]).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert ipaddress.ip_address("10.77.0.22") in sans.value.get_values_for_type(x509.IPAddress)


def test_new_ca_renews_every_node(tmp_path):
    first = lab_pki.etcd_tls_pillar(NODES, tmp_path)
    (tmp_path / "ca.key").unlink()
    second = lab_pki.etcd_tls_pillar(NODES, tmp_path)
    assert second["ca_cert"] != first["ca_cert"]
    ca = _cert(second["ca_cert"])
    for name in NODES:
        assert second["certs"][name]["cert"] != first["certs"][name]["cert"]
        _cert(second["certs"][name]["cert"]).verify_directly_issued_by(ca)


def test_damaged_node_files_are_replaced(tmp_path):
    lab_pki.etcd_tls_pillar(NODES, tmp_path)
    (tmp_path / "node3.crt").write_text("garbage")
    tls = lab_pki.etcd_tls_pillar(NODES, tmp_path)
    assert tls["certs"]["node3"]["cert"].startswith("-----BEGIN CERTIFICATE-----")
