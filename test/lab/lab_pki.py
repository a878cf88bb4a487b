"""A small PKI for the lab's optional etcd TLS (airflow_ha:etcd:tls).

``etcd_tls_pillar({"node1": "10.77.0.11", ...}, directory)`` makes, once, a lab
CA and one certificate + key per node in ``directory`` (files 0600), and
returns the value of the pillar key ``airflow_ha:etcd:tls``. Later calls reuse
the files; a node's certificate is made again when its address changed, when
it no longer matches the CA, or when it is about to expire. Lab use only: the
CA key sits next to the certificates.

Every node certificate is an etcd server, peer and client certificate at once:
SANs = the node's IP address, 127.0.0.1 and the node name; extended key usage
serverAuth + clientAuth; ECDSA P-256; 10 years.

No Salt import: test/lab/nspawn_lab and the unit tests use it as a plain module.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=3650)
# Renew a node certificate that expires sooner than this.
RENEW_BEFORE = datetime.timedelta(days=30)
CA_NAME = "airflow_ha lab etcd CA"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _key_usage(ca: bool) -> x509.KeyUsage:
    """Digital signature for every certificate; certificate and CRL signing for the CA."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def make_ca(name: str = CA_NAME, validity: datetime.timedelta = VALIDITY):
    """A self-signed CA: (certificate, private key)."""
    key = _key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def make_cert(
    ca_cert: x509.Certificate,
    ca_key,
    name: str,
    addresses=(),
    dns_names=None,
    usages=(ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH),
    validity: datetime.timedelta = VALIDITY,
    start: datetime.datetime | None = None,
):
    """A certificate signed by the CA for ``name``: (certificate, private key).

    SANs: every IP in ``addresses`` and the DNS names (default: ``name``);
    valid from ``start`` (default: now) for ``validity``."""
    key = _key()
    now = start or _now()
    sans = [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
    sans += [x509.DNSName(d) for d in (dns_names if dns_names is not None else [name])]
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()), critical=False
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def _write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600 (atomically: tmp file, then rename)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _load_pair(cert_path: Path, key_path: Path):
    if not (cert_path.is_file() and key_path.is_file()):
        return None
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except ValueError:
        return None
    return cert, key


def _not_after(cert: x509.Certificate) -> datetime.datetime:
    value = getattr(cert, "not_valid_after_utc", None)
    return value if value is not None else cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)


def _same_public_key(cert: x509.Certificate, key) -> bool:
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return cert.public_key().public_bytes(*fmt) == key.public_key().public_bytes(*fmt)


def _signed_by(cert: x509.Certificate, ca_cert: x509.Certificate) -> bool:
    if cert.issuer != ca_cert.subject:
        return False
    if hasattr(cert, "verify_directly_issued_by"):  # cryptography >= 40
        try:
            cert.verify_directly_issued_by(ca_cert)
        except (ValueError, TypeError, InvalidSignature):
            return False
        return True
    try:  # older cryptography: the authority key id names the CA's key
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    except x509.ExtensionNotFound:
        return False
    return aki.key_identifier == x509.SubjectKeyIdentifier.from_public_key(ca_cert.public_key()).digest


def _node_cert_ok(cert, key, ca_cert, name: str, address: str) -> bool:
    if not _same_public_key(cert, key) or not _signed_by(cert, ca_cert):
        return False
    if _not_after(cert) - _now() < RENEW_BEFORE:
        return False
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    ips = {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    return {address, "127.0.0.1"} <= ips and name in sans.get_values_for_type(x509.DNSName)


def _ca(directory: Path):
    pair = _load_pair(directory / "ca.crt", directory / "ca.key")
    if pair and _same_public_key(*pair) and _not_after(pair[0]) - _now() > RENEW_BEFORE:
        return pair
    cert, key = make_ca()
    _write(directory / "ca.key", key_pem(key))
    _write(directory / "ca.crt", cert_pem(cert))
    return cert, key


def etcd_tls_pillar(node_names_to_addresses: dict, directory: Path) -> dict:
    """The pillar value of ``airflow_ha:etcd:tls`` for these nodes (name -> IPv4
    address), with the CA and node certificates kept in ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    ca_cert, ca_key = _ca(directory)
    certs = {}
    for name, given in sorted(node_names_to_addresses.items()):
        address = str(ipaddress.ip_address(str(given)))
        cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
        pair = _load_pair(cert_path, key_path)
        if pair is None or not _node_cert_ok(*pair, ca_cert, name, address):
            cert, key = make_cert(ca_cert, ca_key, name, [address, "127.0.0.1"])
            _write(key_path, key_pem(key))
            _write(cert_path, cert_pem(cert))
        certs[name] = {"cert": cert_path.read_text(), "key": key_path.read_text()}
    return {"enabled": True, "ca_cert": (directory / "ca.crt").read_text(), "certs": certs}


CSYNC2_SUBJECT = "airflow_ha lab csync2"


def csync2_certs_pillar(node_names, directory: Path) -> dict:
    """The pillar value of ``airflow_ha:csync2:certs``: one self-signed RSA
    certificate + key per node (csync2 pins its peers' certificates; from
    pillar, a wiped node presents the same one again), all with one subject,
    kept in ``directory`` and made again only when unusable or expiring."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CSYNC2_SUBJECT)])
    certs = {}
    for node in sorted(node_names):
        cert_path, key_path = directory / f"csync2-{node}.crt", directory / f"csync2-{node}.key"
        pair = _load_pair(cert_path, key_path)
        if pair is None or not _same_public_key(*pair) or _not_after(pair[0]) - _now() < RENEW_BEFORE:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            now = _now()
            cert = (
                x509.CertificateBuilder()
                .subject_name(name)
                .issuer_name(name)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + VALIDITY)
                .sign(key, hashes.SHA256())
            )
            _write(key_path, key_pem(key))
            _write(cert_path, cert_pem(cert))
        certs[node] = {"cert": cert_path.read_text(), "key": key_path.read_text()}
    return certs
