"""
The airflow_ha pillar validator's certificate rules: etcd's TLS material
(``airflow_ha:etcd:tls``), csync2's pillar certificates (``csync2:certs``) and
pgBackRest's TLS (``pgbackrest:tls``, or etcd's certificates reused).

Why this file: a certificate without the node's address in its SANs, the
usages its daemon needs, the CA's signature or its own key fails only when
the daemons meet (a TLS handshake error in a journal, well into a run); these
rules name the key path and the fix before any state runs. The PEMs are
parsed with ``cryptography`` (in Salt's own dependencies) when importable;
without it only their markers are checked. Salt's ``x509_v2`` module issues
and reads one minion's certificates; it does not check a cluster's set
against its nodes. No rule ever echoes a key.

Called by ``ah_validate.validate``, which holds the other cross-key rules. A
``_utils`` module (no loader dunders; everything comes in as arguments); it
imports ``ah_nodes`` from its own folder because Salt gives ``_utils`` no
``__utils__``.
"""

import datetime
import importlib.util
import os
import re

try:  # in Salt's own dependencies; the deeper certificate checks are skipped without it
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID

    HAS_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover
    HAS_CRYPTOGRAPHY = False

_spec = importlib.util.spec_from_file_location(
    "_airflow_ha_ah_nodes", os.path.join(os.path.dirname(os.path.abspath(__file__)), "ah_nodes.py")
)
ah_nodes = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ah_nodes)
get = ah_nodes.get

PEM_CERT = "-----BEGIN CERTIFICATE-----"
PEM_KEY_RE = re.compile(r"-----BEGIN (?:RSA |EC )?PRIVATE KEY-----")


def rule_etcd_tls(ah, pillar):
    """etcd:tls: its PEMs (and the secrets) under their own pillar path, not lookup;
    certificates only for nodes of airflow_ha:nodes; with TLS on, the CA and the
    certificate of every node that talks to etcd (SANs, usages, the CA's
    signature, expiry, the key)."""
    path = "airflow_ha:etcd:tls"
    tls = get(ah, "etcd:tls")
    errors = []
    # The states read the PEMs from this pillar path (contents_pillar, so a
    # key never shows in rendered state data): lookup cannot carry them.
    lookup_tls = get(pillar, "lookup:etcd:tls")
    if isinstance(lookup_tls, dict) and set(lookup_tls) & {"ca_cert", "certs"}:
        errors.append(
            "airflow_ha:lookup:etcd:tls: ca_cert and certs belong under airflow_ha:etcd:tls — move them there"
        )
    if isinstance(get(pillar, "lookup:secrets"), dict):
        errors.append(
            "airflow_ha:lookup:secrets: secrets belong under airflow_ha:secrets (the states read them "
            "from that pillar path) — move them there"
        )
    certs = tls.get("certs") or {}
    nodes = ah.get("nodes") or {}
    for node_id in certs:
        if node_id not in nodes:
            errors.append(
                f"{path}:certs:{node_id}: not a node of airflow_ha:nodes — remove it or fix the node name"
            )
    if tls.get("enabled") is not True:
        return errors
    ca, more = _ca_cert(path, tls.get("ca_cert"))
    errors.extend(more)
    for node_id, node in sorted(ah_nodes.etcd_tls_nodes(ah).items()):

        def check(entry_path, cert, key, node=node):
            return _check_node_cert(entry_path, cert, key, ca, node)

        errors.extend(_node_tls(f"{path}:certs:{node_id}", certs.get(node_id), check))
    return errors


def rule_csync2_certs(ah):
    """csync2:certs: all nodes or none; each a self-signed certificate with
    its key, one subject on every node (csync2 2.0 fails the handshake with a
    different subject per node)."""
    path = "airflow_ha:csync2:certs"
    certs = get(ah, "csync2:certs") or {}
    if not certs:
        return []
    nodes = ah.get("nodes") or {}
    errors = [
        f"{path}:{n}: not a node of airflow_ha:nodes — remove it or fix the node name"
        for n in sorted(set(certs) - set(nodes))
    ]
    subjects = {}

    def check(entry_path, cert_pem, key_pem):
        cert, problem = _load_cert(cert_pem)
        if problem:
            return [f"{entry_path}:cert: {problem} — give the node's PEM certificate"]
        subjects[entry_path] = cert.subject.rfc4514_string()
        return _check_key_matches(entry_path, key_pem, cert) if key_pem else []

    for node_id in sorted(nodes):
        errors.extend(
            _node_tls(f"{path}:{node_id}", certs.get(node_id), check, user="csync2", needs="every node")
        )
    if len(set(subjects.values())) > 1:
        errors.append(
            f"{path}: the certificates' subjects differ ({', '.join(sorted(set(subjects.values())))}) — "
            "give every node's certificate the same subject (csync2 2.0 refuses the handshake otherwise)"
        )
    return errors


def rule_pgbackrest_tls(ah):
    """Every pgBackRest node's certificate: pgBackRest's TLS client checks the
    server's certificate against the host name it dials (the node id, a DNS
    SAN: it reads no IP SAN), its server authorizes a client by the
    certificate's CN (tls-server-auth lists the node ids)."""
    source = ah_nodes.pgbackrest_tls_source(ah)
    if source == "etcd" and get(ah, "etcd:tls:enabled") is not True:
        return [
            "airflow_ha:pgbackrest:tls:certs: empty and airflow_ha:etcd:tls is off — pgBackRest's TLS "
            "server needs certificates: set pgbackrest:tls:ca_cert and certs (see pillar.example), or "
            "turn on etcd:tls to reuse its certificates"
        ]
    path = f"airflow_ha:{source}:tls"
    tls = get(ah, f"{source}:tls") or {}
    errors = []
    if source == "pgbackrest":
        ca, errors = _ca_cert(path, tls.get("ca_cert"))
    else:  # the etcd rule reports a bad CA already
        ca = (
            _load_cert(tls.get("ca_cert"))[0]
            if HAS_CRYPTOGRAPHY and PEM_CERT in str(tls.get("ca_cert"))
            else None
        )
    for node_id in sorted(ah_nodes.pgbackrest_nodes(ah)):

        def check(entry_path, cert, key, node_id=node_id):
            return _check_pgbackrest_cert(entry_path, cert, key, ca, node_id, f"{path}:ca_cert")

        entry = (tls.get("certs") or {}).get(node_id)
        if source == "etcd" and isinstance(entry, dict) and node_id in ah_nodes.etcd_tls_nodes(ah):
            # etcd's rule checked the PEMs themselves: add what pgBackRest needs
            cert = entry.get("cert")
            if HAS_CRYPTOGRAPHY and isinstance(cert, str) and PEM_CERT in cert:
                errors.extend(_check_pgbackrest_names(f"{path}:certs:{node_id}", cert, node_id))
            continue
        errors.extend(
            _node_tls(
                f"{path}:certs:{node_id}",
                entry,
                check,
                user="pgbackrest",
                needs="a db or backup node (pgBackRest's TLS server and client)",
            )
        )
    return errors


def _ca_cert(path, ca_cert):
    """(the CA certificate or None, problems) of ``path``:ca_cert."""
    if not isinstance(ca_cert, str) or PEM_CERT not in ca_cert:
        return None, [
            f"{path}:ca_cert: missing or not a PEM certificate — set the CA certificate that signed "
            f"the nodes' certificates ({PEM_CERT} ...)"
        ]
    if not HAS_CRYPTOGRAPHY:
        return None, []
    ca, problem = _load_cert(ca_cert)
    return ca, [f"{path}:ca_cert: {problem} — set the PEM of the CA certificate"] if problem else []


def _node_tls(entry_path, entry, check, user="etcd", needs="a node that talks to etcd"):
    """The PEM pair at ``entry_path`` ({cert, key}); ``check(path, cert, key or None)``
    makes the deeper checks (cryptography available)."""
    if not isinstance(entry, dict):
        return [
            f"{entry_path}: missing — {needs} needs {{cert, key}} (PEM) when "
            f"airflow_ha:{user}:tls:enabled is true"
            if user == "etcd"
            else f"{entry_path}: missing — {needs} needs {{cert, key}} (PEM)"
        ]
    errors = []
    cert, key = entry.get("cert"), entry.get("key")
    cert_ok = isinstance(cert, str) and PEM_CERT in cert
    if not cert_ok:
        errors.append(f"{entry_path}:cert: missing or not a PEM certificate ({PEM_CERT} ...)")
    key_ok = isinstance(key, str) and PEM_KEY_RE.search(key) is not None
    if not key_ok:
        what = (
            f"encrypted ({user} cannot read it)" if "ENCRYPTED PRIVATE KEY" in str(key) else "missing or not"
        )
        errors.append(
            f"{entry_path}:key: {what} a PEM private key (-----BEGIN ... PRIVATE KEY-----) — "
            "give the node's unencrypted key"
        )
    if cert_ok and HAS_CRYPTOGRAPHY:
        errors.extend(check(entry_path, cert, key if key_ok else None))
    return errors


def _load_cert(pem):
    """(certificate, None) or (None, what is wrong) — never the PEM itself."""
    try:
        return x509.load_pem_x509_certificate(pem.strip().encode()), None
    except ValueError:
        return None, "cannot be parsed as a PEM certificate"


def _check_node_cert(path, pem, key_pem, ca, node):
    """The deeper checks of one node's etcd certificate (cryptography available)."""
    cert, problem = _load_cert(pem)
    if problem:
        return [f"{path}:cert: {problem}"]
    errors = []
    ips = {str(ip) for ip in _sans(cert, x509.IPAddress)}
    # Server (and peer) certificates are checked against the address clients
    # connect to: the node's address, and 127.0.0.1 for the local clients.
    wanted = [node["address"], "127.0.0.1"] if node["server"] else []
    missing = [ip for ip in wanted if ip not in ips]
    if missing:
        errors.append(
            f"{path}:cert: its subjectAltName lacks IP {', IP '.join(missing)} (has: "
            f"{', '.join(sorted(ips)) or 'no IP'}) — issue it with SANs IP:{node['address']},IP:127.0.0.1"
        )
    lacking = _eku_lacking(cert, server=node["server"])
    if lacking:
        errors.append(
            f"{path}:cert: its extendedKeyUsage lacks {' and '.join(lacking)} — etcd uses "
            "one certificate as server, peer and client: issue it with serverAuth,clientAuth"
        )
    return errors + _cert_validity(path, cert, key_pem, ca, "airflow_ha:etcd:tls:ca_cert")


def _sans(cert, kind):
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            kind
        )
    except x509.ExtensionNotFound:
        return []


def _eku_lacking(cert, server=True):
    """The usages (clientAuth, and serverAuth when ``server``) the certificate's
    extendedKeyUsage leaves out, sorted; none without the extension (any usage)."""
    try:
        eku = set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return []
    need = {ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth"}
    if server:
        need[ExtendedKeyUsageOID.SERVER_AUTH] = "serverAuth"
    return sorted(name for oid, name in need.items() if oid not in eku)


def _cert_validity(path, cert, key_pem, ca, ca_path):
    """Expiry, the CA's signature (the CA at ``ca_path``) and the key's match."""
    errors = []
    not_after = getattr(cert, "not_valid_after_utc", None) or cert.not_valid_after.replace(
        tzinfo=datetime.timezone.utc
    )
    if not_after < datetime.datetime.now(datetime.timezone.utc):
        errors.append(f"{path}:cert: expired on {not_after:%Y-%m-%d} — issue a new certificate")
    if ca is not None and hasattr(cert, "verify_directly_issued_by"):
        try:
            cert.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            errors.append(
                f"{path}:cert: not signed by {ca_path} — issue it from that CA or set the CA that signed it"
            )
    if key_pem is not None:
        errors.extend(_check_key_matches(path, key_pem, cert))
    return errors


def _check_key_matches(path, key_pem, cert):
    try:
        key = serialization.load_pem_private_key(key_pem.strip().encode(), password=None)
    except (ValueError, TypeError):
        return [f"{path}:key: cannot be parsed as an unencrypted PEM private key"]
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if key.public_key().public_bytes(*fmt) != cert.public_key().public_bytes(*fmt):
        return [f"{path}:key: does not belong to {path}:cert — give the key of that certificate"]
    return []


def _check_pgbackrest_names(path, pem, node_id):
    cert, problem = _load_cert(pem)
    if problem:
        return [f"{path}:cert: {problem}"]
    errors = []
    names = list(_sans(cert, x509.DNSName))
    if node_id not in names:
        errors.append(
            f"{path}:cert: its subjectAltName lacks DNS:{node_id} (has: {', '.join(names) or 'no DNS name'}) — "
            f"pgBackRest checks a server's certificate against the host name it dials (the node id): issue "
            f"it with SAN DNS:{node_id}"
        )
    cns = [a.value for a in cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)]
    if cns != [node_id]:
        errors.append(
            f"{path}:cert: its CN is {', '.join(map(str, cns)) or 'empty'}, not {node_id} — pgBackRest's server "
            f"authorizes a client by its certificate's CN (tls-server-auth lists the node ids): issue it "
            f"with /CN={node_id}"
        )
    lacking = _eku_lacking(cert)
    if lacking:
        errors.append(
            f"{path}:cert: its extendedKeyUsage lacks {' and '.join(lacking)} — a pgBackRest node is "
            "server and client with one certificate: issue it with serverAuth,clientAuth"
        )
    return errors


def _check_pgbackrest_cert(path, pem, key_pem, ca, node_id, ca_path):
    errors = _check_pgbackrest_names(path, pem, node_id)
    cert, problem = _load_cert(pem)
    return errors if problem else errors + _cert_validity(path, cert, key_pem, ca, ca_path)
