"""
The airflow_ha pillar validator: the schema walk plus the cross-key rules.

Why this file: a bad pillar must be refused on every node, with one list naming
every problem, its key path and the fix, before any state runs (map.jinja
hands the list to the first state, which fails with it). Types, enums, ranges
and unknown keys come from the schema (``ah_schema.check``); what one key
cannot say about itself is an explicit rule here: nodes and roles, secrets'
formats, port collisions, Patroni's and etcd's timing, the VIP, the Airflow
version and its constraints, pgBackRest and a restore's keys. The certificate
rules (etcd TLS, csync2 and pgBackRest certificates, with ``cryptography``,
which ships with Salt, when importable) are in ``ah_validate_tls.py``; which
node holds what is read in ``ah_nodes.py``, which the settings read too. No
rule ever echoes a secret.

A ``_utils`` module (no loader dunders; everything comes in as arguments),
reached as ``__utils__["ah_validate.validate"]``; it imports its siblings
(``ah_validate_tls``, through it ``ah_nodes`` and ``ah_schema``, and
``ah_pgbackrest``) from its own folder because Salt gives ``_utils`` no
``__utils__``.
"""

import base64
import binascii
import importlib.util
import ipaddress
import os
import re

_spec = importlib.util.spec_from_file_location(
    "_airflow_ha_ah_validate_tls",
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "ah_validate_tls.py"),
)
tls = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tls)
# one copy of each sibling: the ones the certificate rules loaded
ah_nodes = tls.ah_nodes
schema = ah_nodes.schema
get = ah_nodes.get
_spec = importlib.util.spec_from_file_location(
    "_airflow_ha_ah_pgbackrest", os.path.join(os.path.dirname(os.path.abspath(__file__)), "ah_pgbackrest.py")
)
pgbackrest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pgbackrest)

HOSTNAME_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
COOKIE_RE = re.compile(r"^[A-Za-z0-9]+$")
PSK_RE = re.compile(r"^[A-Za-z0-9._-]+$")

# Every TCP port the stack listens on: colon path -> the component using it.
PORTS = {p: k.noun for p, k in schema.KEYS.items() if k.kind == "port"}
# Airflow's log servers bind these with no host or port option
# (airflow/utils/serve_logs).
FIXED_PORTS = {8793: "Airflow worker log server", 8794: "Airflow triggerer log server"}


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def format_errors(errors):
    """Render a list of validation problems as one readable message."""
    lines = [f"airflow_ha: the pillar has {len(errors)} problem(s); nothing was changed:"]
    lines.extend(f"  - {e}" for e in errors)
    return "\n".join(lines)


def validate(ah, pillar, minion_id, cluster=False):
    """
    Every problem of the ``airflow_ha`` pillar, as a list of messages that
    start with the key path and end with the fix. ``ah`` is the merged data,
    ``pillar`` the raw ``airflow_ha`` pillar (its ``lookup`` is checked at its
    own path). ``cluster``: the orchestration's view (no minion of its own).
    """
    user = {k: v for k, v in pillar.items() if k != "lookup"}
    errors, shape_ok = schema.check(user)
    lookup = pillar.get("lookup")
    if isinstance(lookup, dict):
        more, lookup_ok = schema.check(
            {k: v for k, v in lookup.items() if k != "lookup"}, "airflow_ha:lookup"
        )
        errors.extend(more)
        shape_ok = shape_ok and lookup_ok
        if "lookup" in lookup:
            errors.append("airflow_ha:lookup:lookup: lookup inside lookup — move its keys up one level")
    if not shape_ok:
        # The merged data is not trustworthy past this point.
        return errors
    errors.extend(_rule_general(ah))
    errors.extend(_rule_nodes(ah, None if cluster else minion_id))
    errors.extend(_rule_vip(ah))
    errors.extend(_rule_secrets(ah))
    errors.extend(_rule_ports(ah))
    errors.extend(_rule_airflow(ah))
    errors.extend(_rule_timing(ah))
    errors.extend(tls.rule_etcd_tls(ah, pillar))
    errors.extend(tls.rule_csync2_certs(ah))
    errors.extend(_rule_pgbackrest(ah, pillar))
    errors.extend(_rule_restore(ah))
    errors.extend(_rule_monitoring(ah))
    return errors


def _rule_monitoring(ah):
    """A `monitor` node runs Prometheus only with monitoring:enabled."""
    holders = [
        n for n, node in sorted((ah.get("nodes") or {}).items()) if "monitor" in ah_nodes.node_roles(ah, node)
    ]
    if holders and get(ah, "monitoring:enabled") is not True:
        return [
            f"airflow_ha:nodes:{holders[0]}:roles: role 'monitor' runs Prometheus, but "
            "monitoring:enabled is false — turn monitoring on or remove the role"
        ]
    return []


def _rule_general(ah):
    errors = []
    if get(ah, "proxy:pip:no_index") is True and not get(ah, "proxy:pip:find_links"):
        errors.append(
            "airflow_ha:proxy:pip:no_index: true needs proxy:pip:find_links — "
            "set find_links to your wheelhouse or turn no_index off"
        )
    return errors


def _node_address(path, node, addresses, networks, prefix):
    address = node.get("address")
    if address is None:
        return [f"{path}:address: missing — set the node's address, e.g. 10.0.0.11"]
    try:
        ip = ipaddress.IPv4Address(address)
    except ValueError:
        return []  # the schema reported it
    if ip.is_loopback or ip.is_unspecified or ip.is_multicast:
        return [f"{path}:address: {address} cannot be used — give the address other nodes reach it on"]
    errors = []
    if str(ip) in addresses:
        errors.append(
            f"{path}:address: {ip} is also the address of {addresses[str(ip)]} — every node needs its own address"
        )
    addresses[str(ip)] = path.rsplit(":", 1)[1]
    if _is_int(prefix) and 8 <= prefix <= 30:
        networks.add(ipaddress.IPv4Network(f"{ip}/{prefix}", strict=False))
    return errors


def _rule_nodes(ah, minion_id):
    nodes = ah.get("nodes")
    if not nodes:
        return ["airflow_ha:nodes: no nodes — list every cluster node (minion id -> address)"]
    errors, addresses, networks = [], {}, set()
    prefix = get(ah, "network:prefix")
    holders = {role: [] for role in schema.ROLES}
    for node_id, node in nodes.items():
        path = f"airflow_ha:nodes:{node_id}"
        if not isinstance(node_id, str) or not HOSTNAME_RE.match(node_id):
            errors.append(
                f"{path}: {node_id!r} is not usable as a host name (csync2, RabbitMQ and "
                "Patroni use it) — use lowercase letters, digits and '-'"
            )
        errors.extend(_node_address(path, node, addresses, networks, prefix))
        roles = ah_nodes.node_roles(ah, node)
        if not isinstance(roles, list):
            continue  # the schema reported it
        for role in roles:
            if role in holders:
                holders[role].append(node_id)
        if len(set(map(str, roles))) != len(roles):
            errors.append(f"{path}:roles: a role is listed twice — list each role once")
    if len(networks) > 1:
        errors.append(
            "airflow_ha:nodes: the node addresses are not in one /"
            f"{prefix} subnet ({', '.join(sorted(str(n) for n in networks))}) — fix the "
            "addresses or airflow_ha:network:prefix"
        )
    if minion_id is not None and minion_id not in nodes:
        errors.append(
            f"airflow_ha:nodes: this minion ({minion_id}) is not listed — add it to "
            "airflow_ha:nodes or do not target it"
        )
    version = str(get(ah, "airflow:version", ""))
    required = list(schema.REQUIRED_ROLES) + (["dag_processor"] if version.startswith("3.") else [])
    for role in required:
        if not holders[role]:
            errors.append(
                f"airflow_ha:nodes: no node has role {role!r} — add {role!r} to at least one node's roles"
            )
    db = len(holders["db"])
    if ah.get("single_node") is True:
        if len(nodes) != 1:
            errors.append(
                f"airflow_ha:single_node: true allows exactly one node, {len(nodes)} are "
                "listed — remove single_node or list one node"
            )
    elif db and db not in (3, 5):
        errors.append(
            f"airflow_ha:nodes: {db} nodes have role 'db'; etcd and Patroni need 3 or 5 "
            "for a quorum that survives a node loss (single_node: true for a 1-node test)"
        )
    return errors


def _rule_vip(ah):
    vip = ah.get("vip") or {}
    if vip.get("enabled") is not True:
        return []
    errors = []
    addresses = {
        str(n.get("address")): node_id
        for node_id, n in (ah.get("nodes") or {}).items()
        if isinstance(n, dict)
    }
    prefix = get(ah, "network:prefix")
    networks = set()
    for address in addresses:
        try:
            networks.add(ipaddress.IPv4Network(f"{address}/{prefix}", strict=False))
        except ValueError:
            pass
    try:
        vip_ip = ipaddress.IPv4Address(str(vip.get("address")))
    except ValueError:
        errors.append(f"airflow_ha:vip:address: {vip.get('address')!r} is not an IPv4 address")
    else:
        if str(vip_ip) in addresses:
            errors.append(
                f"airflow_ha:vip:address: {vip_ip} is node {addresses[str(vip_ip)]}'s "
                "address — pick a free address in the nodes' subnet"
            )
        if len(networks) == 1 and vip_ip not in next(iter(networks)):
            errors.append(
                f"airflow_ha:vip:address: {vip_ip} is outside the nodes' subnet "
                f"{next(iter(networks))} — VRRP moves it only within that subnet"
            )
    if not vip.get("interface"):
        errors.append("airflow_ha:vip:interface: set the network interface the VIP lives on, e.g. eth0")
    return errors


def _rule_secrets(ah):
    errors = []
    secrets = ah.get("secrets") or {}
    for name, key in schema.SECRETS.items():
        switches = schema.OPTIONAL_SECRETS.get(name, ())
        if any(get(ah, switch) is not True for switch in switches):
            continue
        path, value, what = f"airflow_ha:secrets:{name}", secrets.get(name), key.doc
        if value is None or value == "":
            errors.append(f"{path}: missing ({what}) — set it in pillar, the same on every node")
        elif not isinstance(value, str):
            continue  # the schema reported it
        elif any(c.isspace() for c in value) or any(ord(c) < 32 for c in value):
            errors.append(f"{path}: contains whitespace or control characters — generate it again")
        elif name == "fernet_key":
            errors.extend(_check_fernet(path, value))
        elif len(value.encode()) < key.min_len:
            errors.append(f"{path}: too short ({len(value.encode())} bytes, at least {key.min_len}) ({what})")
        else:
            errors.extend(_secret_format(name, path, value))
    return errors


def _secret_format(name, path, value):
    if name == "erlang_cookie" and not COOKIE_RE.match(value):
        return [f"{path}: use letters and digits only (it is an Erlang atom)"]
    if name == "erlang_cookie" and re.fullmatch(r"[A-Z]{20}", value):
        return [
            f"{path}: 20 capital letters look like a cookie Erlang generated, and Debian's "
            "rabbitmq-server postinst replaces such a cookie — add digits or lowercase letters"
        ]
    if name == "csync2_psk" and (len(value) != 64 or not PSK_RE.match(value)):
        return [
            f"{path}: must be exactly 64 characters of letters, digits, '.', '_' or '-' "
            "(the format `csync2 -k` writes)"
        ]
    if name == "admin_password" and "," in value:
        return [
            f"{path}: must not contain ',' (it is also Flower's basic-auth password, and "
            "Flower splits its credential list on ',') — generate it again"
        ]
    if name == "keepalived_password" and len(value) > 8:
        return [f"{path}: VRRP password authentication uses at most 8 characters"]
    return []


def _check_fernet(path, value):
    try:
        raw = base64.urlsafe_b64decode(value.encode())
    except (binascii.Error, ValueError):
        raw = None
    if raw is None or len(raw) != 32 or len(value) != 44:
        return [
            f"{path}: not a valid Fernet key (32 bytes, url-safe base64, 44 characters) — "
            "generate one with: python3 -c 'import base64,os;"
            "print(base64.urlsafe_b64encode(os.urandom(32)).decode())'"
        ]
    return []


def _rule_ports(ah):
    errors, seen = [], {}
    for path, what in PORTS.items():
        feature = path.split(":", 1)[0]
        if feature in ("pgbouncer", "pgbackrest", "monitoring") and get(ah, f"{feature}:enabled") is not True:
            continue
        port = get(ah, path)
        if not _is_int(port) or not 1 <= port <= 65535:
            continue  # the schema reported it
        if port in FIXED_PORTS:
            errors.append(
                f"airflow_ha:{path}: port {port} is taken by the {FIXED_PORTS[port]} "
                "(it has no setting) — pick another port"
            )
        elif port in seen:
            errors.append(
                f"airflow_ha:{path}: port {port} is already used by {seen[port][1]} "
                f"(airflow_ha:{seen[port][0]}) — give each service its own port"
            )
        else:
            seen[port] = (path, what)
    return errors


def _rule_airflow(ah):
    errors = []
    version = get(ah, "airflow:version")
    if not isinstance(version, str) or not re.match(r"^\d+\.\d+\.\d+$", version):
        return errors  # the schema reported it
    shipped = get(ah, "airflow:constraints_shipped") or []
    if ".".join(version.split(".")[:2]) not in schema.SUPPORTED_AIRFLOW:
        errors.append(
            f"airflow_ha:airflow:version: {version} is not supported — use "
            f"{' or '.join(v + '.x' for v in schema.SUPPORTED_AIRFLOW)}"
        )
    elif (python := _python_problem(version, get(ah, "airflow:python"))) is not None:
        errors.append(python)
    elif version not in shipped and not get(ah, "airflow:constraints_url"):
        errors.append(
            f"airflow_ha:airflow:version: no constraints file is shipped for {version} (shipped: "
            f"{', '.join(shipped)}) — pick a shipped version or set airflow_ha:airflow:constraints_url"
        )
    return errors


def _python_problem(version, python):
    """Why Airflow VERSION cannot run on the node's PYTHON ('3.13'), or None."""
    if not isinstance(python, str) or not re.match(r"^3\.\d+$", python):
        return None  # the schema reported it
    low, high = schema.AIRFLOW_PYTHON[".".join(version.split(".")[:2])]
    have = tuple(int(n) for n in python.split("."))
    if low <= have <= high:
        return None
    fits = [v + ".x" for v, (lo, hi) in schema.AIRFLOW_PYTHON.items() if lo <= have <= hi]
    return (
        f"airflow_ha:airflow:version: Airflow {version} runs on Python {low[0]}.{low[1]}–{high[0]}.{high[1]}, "
        f"but this node's python3 is {python} (airflow_ha:airflow:python, set per OS release) — "
        + (f"use Airflow {' or '.join(fits)} on this OS" if fits else "no supported Airflow runs on it")
    )


def _rule_timing(ah):
    errors = []
    ttl, loop, retry = (get(ah, f"postgresql:patroni:{k}") for k in ("ttl", "loop_wait", "retry_timeout"))
    if all(_is_int(v) for v in (ttl, loop, retry)) and loop + 2 * retry > ttl:
        errors.append(
            f"airflow_ha:postgresql:patroni:ttl: {ttl} is less than loop_wait + 2 * "
            f"retry_timeout ({loop + 2 * retry}) — Patroni would demote a healthy leader; "
            "raise ttl or lower the others"
        )
    # A DB failover lasts about ttl plus a few seconds (lab: 15-25 s with ttl 20), and no
    # task heartbeat lands meanwhile: a shorter timeout fails every running task at each
    # failover (false zombies), and so does a worker giving up on its API calls sooner
    # (each failed heartbeat has retried for the whole window first).
    beat_timeout = get(ah, "airflow:recovery:heartbeat_timeout")
    floor = ttl + 10 if _is_int(ttl) else None
    if floor and _is_int(beat_timeout) and beat_timeout < floor:
        errors.append(
            f"airflow_ha:airflow:recovery:heartbeat_timeout: {beat_timeout} s is shorter than a database "
            f"failover can last (postgresql:patroni:ttl + 10 = {floor} s): every running task would be "
            f"failed at each failover — set at least {floor}"
        )
    window = get(ah, "airflow:recovery:api_retry_window")
    if floor and _is_int(window) and window < floor:
        errors.append(
            f"airflow_ha:airflow:recovery:api_retry_window: {window} s is shorter than a database "
            f"failover can last ({floor} s): a task starting or ending on a live node during a "
            f"failover would fail — set at least {floor}"
        )
    beat, election = get(ah, "etcd:heartbeat_interval"), get(ah, "etcd:election_timeout")
    if _is_int(beat) and _is_int(election) and election < 5 * beat:
        errors.append(
            f"airflow_ha:etcd:election_timeout: {election} ms is less than 5 * heartbeat_interval "
            f"({5 * beat} ms) — etcd refuses to start: raise it or lower heartbeat_interval"
        )
    debounce, max_delay = get(ah, "csync2:watcher:debounce_ms"), get(ah, "csync2:watcher:max_delay_ms")
    if _is_int(debounce) and _is_int(max_delay) and max_delay < debounce:
        errors.append(
            f"airflow_ha:csync2:watcher:max_delay_ms: {max_delay} must be an integer of at least "
            f"debounce_ms ({debounce})"
        )
    return errors


# PostgreSQL settings the formula sets itself once pgBackRest archives.
PGBACKREST_PARAMETERS = ("archive_mode", "archive_command", "restore_command", "archive_timeout")


def _rule_pgbackrest(ah, pillar):
    errors = []
    enabled = get(ah, "pgbackrest:enabled") is True
    holders = [n for n, part in sorted(ah_nodes.pgbackrest_nodes(ah).items()) if part["backup"]]
    lookup_tls = get(pillar, "lookup:pgbackrest:tls")
    if isinstance(lookup_tls, dict) and set(lookup_tls) & {"ca_cert", "certs"}:
        errors.append(
            "airflow_ha:lookup:pgbackrest:tls: ca_cert and certs belong under airflow_ha:pgbackrest:tls — "
            "move them there"
        )
    certs = get(ah, "pgbackrest:tls:certs") or {}
    for node_id in certs:
        if node_id not in (ah.get("nodes") or {}):
            errors.append(
                f"airflow_ha:pgbackrest:tls:certs:{node_id}: not a node of airflow_ha:nodes — remove it or "
                "fix the node name"
            )
    if not enabled:
        errors.extend(
            f"airflow_ha:nodes:{n}:roles: role 'backup' holds pgBackRest's repository, but "
            "airflow_ha:pgbackrest:enabled is false — turn it on or drop the role"
            for n in holders
        )
        if get(ah, "pgbackrest:s3:enabled") is True:
            errors.append(
                "airflow_ha:pgbackrest:s3:enabled: repo2 is pgBackRest's second repository — "
                "set airflow_ha:pgbackrest:enabled: true too, or turn s3 off"
            )
        return errors
    if len(holders) != 1:
        errors.append(
            f"airflow_ha:nodes: pgbackrest:enabled needs exactly one node with role 'backup' (the host of "
            f"repo1 and of the scheduled backups); {len(holders)} have it"
            + (f" ({', '.join(holders)})" if holders else "")
            + " — add 'backup' to one node's roles (a db node, or a host of its own)"
        )
    parameters = get(ah, "postgresql:patroni:parameters") or {}
    for name in PGBACKREST_PARAMETERS:
        if isinstance(parameters, dict) and name in parameters:
            errors.append(
                f"airflow_ha:postgresql:patroni:parameters:{name}: set by the formula when "
                "pgbackrest:enabled (pgBackRest archives and restores WAL) — remove it"
            )
    retention = get(ah, "pgbackrest:retention") or {}
    full, diff, archive = (retention.get(k) for k in ("full", "diff", "archive"))
    if all(_is_int(v) for v in (full, diff, archive)):
        most = full if retention.get("archive_type") == "full" else full + diff
        if archive > most:
            errors.append(
                f"airflow_ha:pgbackrest:retention:archive: {archive} is more backups than are kept "
                f"({most}: retention:full{'' if retention.get('archive_type') == 'full' else ' + diff'}) — WAL "
                f"is only kept for backups that exist: set at most {most}"
            )
    s3 = get(ah, "pgbackrest:s3") or {}
    if s3.get("enabled") is True:
        for name in ("endpoint", "bucket", "region"):
            if not s3.get(name):
                errors.append(f"airflow_ha:pgbackrest:s3:{name}: empty — repo2 on S3 needs its {name}")
    errors.extend(tls.rule_pgbackrest_tls(ah))
    return errors


def _rule_restore(ah):
    """The restore orchestration's command-line keys (airflow_ha:restore)."""
    restore = ah.get("restore")
    if not isinstance(restore, dict) or not restore:
        return []
    errors = []
    if get(ah, "pgbackrest:enabled") is not True:
        errors.append(
            "airflow_ha:restore: a restore needs pgBackRest's repository — airflow_ha:pgbackrest:enabled is false"
        )
    target = restore.get("target_time")
    if target is None:
        errors.append(
            "airflow_ha:restore:target_time: missing — give 'latest' or a time with its zone, e.g. "
            'pillar=\'{"restore": {"target_time": "2024-05-01 12:00:00+00"}}\''
        )
    elif isinstance(target, str):
        try:
            pgbackrest.parse_target_time(target)
        except ValueError as exc:
            errors.append(f"airflow_ha:restore:target_time: {exc}")
    node = restore.get("node")
    db = [n for n, part in ah_nodes.pgbackrest_nodes(ah).items() if part["db"]]
    if node is not None and node not in db:
        errors.append(
            f"airflow_ha:restore:node: {node!r} is not a db node — give one of {', '.join(sorted(db))}"
        )
    return errors
