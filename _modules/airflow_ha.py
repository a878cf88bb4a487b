"""
Settings and validation for the airflow_ha formula.

Every SLS file of the formula gets its data from ``airflow_ha/map.jinja``, which
calls :func:`settings` with the layered parameters. The layering, the derived
values (this node's roles, the members of each role, connection URLs) and the
validation live here rather than in Jinja so that they are unit-tested, and so
that a bad pillar is refused with one message listing every problem before any
state runs on any node.

CLI examples:

.. code-block:: bash

    salt '*' airflow_ha.validate
    salt node1 airflow_ha.settings
"""

import base64
import binascii
import copy
import datetime
import ipaddress
import re
import urllib.parse

import salt.utils.yaml
from salt.exceptions import CommandExecutionError

try:  # in Salt's own dependencies; the deeper certificate checks are skipped without it
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID

    HAS_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover
    HAS_CRYPTOGRAPHY = False

__virtualname__ = "airflow_ha"

ROLES = ("db", "broker", "scheduler", "api", "worker", "triggerer", "dag_processor", "flower")

# Roles the cluster cannot work without. dag_processor is needed by Airflow 3
# only (2.x schedulers parse DAGs themselves); flower is optional.
REQUIRED_ROLES = ("db", "broker", "scheduler", "api", "worker", "triggerer")

SECRETS = {
    # name: (minimum length, what it is for)
    "postgres_superuser_password": (12, "PostgreSQL superuser (postgres)"),
    "postgres_replication_password": (12, "PostgreSQL replication user"),
    "postgres_rewind_password": (12, "PostgreSQL pg_rewind user"),
    "patroni_api_password": (12, "Patroni REST API basic auth"),
    "airflow_db_password": (12, "Airflow's PostgreSQL role"),
    "rabbitmq_password": (12, "RabbitMQ user Airflow connects as"),
    "rabbitmq_admin_password": (12, "RabbitMQ management admin"),
    "erlang_cookie": (20, "RabbitMQ Erlang cookie"),
    "csync2_psk": (64, "csync2 pre-shared key"),
    "fernet_key": (44, "Airflow [core] fernet_key"),
    "api_secret_key": (16, "Airflow [api] secret_key"),
    "jwt_secret": (64, "Airflow [api_auth] jwt_secret"),
    "admin_password": (8, "Airflow admin user"),
}
# Only needed when the feature using it is on.
OPTIONAL_SECRETS = {
    "keepalived_password": (4, "keepalived VRRP authentication"),
}

SUPPORTED_AIRFLOW = ("3.3", "2.11")
# csync2 2.0 rejects anything else ("Unknown auto-setting"); it has no `first`.
CSYNC2_POLICIES = ("none", "younger", "older", "bigger", "smaller", "left", "right")
TIME_SYNC_DAEMONS = ("systemd-timesyncd", "chrony")
HOSTNAME_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
COOKIE_RE = re.compile(r"^[A-Za-z0-9]+$")
CONTAINERS = ("container", "systemd-nspawn", "lxc", "docker", "podman", "openvzve")
PSK_RE = re.compile(r"^[A-Za-z0-9._-]+$")
PEM_CERT = "-----BEGIN CERTIFICATE-----"
PEM_KEY_RE = re.compile(r"-----BEGIN (?:RSA |EC )?PRIVATE KEY-----")
# Keys of airflow_ha:etcd:tls and of one node's entry under certs.
ETCD_TLS_KEYS = ("enabled", "ca_cert", "certs", "dir")
ETCD_TLS_CERT_KEYS = ("cert", "key")

# Top-level keys of the airflow_ha pillar whose value is a mapping.
MAPPING_KEYS = (
    "network",
    "time_sync",
    "proxy",
    "vip",
    "etcd",
    "postgresql",
    "haproxy",
    "pgbouncer",
    "rabbitmq",
    "csync2",
    "airflow",
    "secrets",
    "lookup",
)
# Every top-level key a user may set. Anything else is almost always a typo,
# which would otherwise be silently ignored.
PILLAR_KEYS = ("cluster_name", "single_node", "nodes", "timezone", "base_packages", "clean", *MAPPING_KEYS)

# Every TCP port the stack listens on: (dotted path, component that uses it).
PORTS = (
    ("etcd:client_port", "etcd"),
    ("etcd:peer_port", "etcd"),
    ("postgresql:port", "PostgreSQL"),
    ("postgresql:patroni:rest_port", "Patroni REST API"),
    ("haproxy:primary_port", "HAProxy primary"),
    ("haproxy:replica_port", "HAProxy replicas"),
    ("haproxy:stats_port", "HAProxy stats"),
    ("haproxy:api_port", "HAProxy Airflow API"),
    ("pgbouncer:port", "PgBouncer"),
    ("rabbitmq:port", "RabbitMQ AMQP"),
    ("rabbitmq:management_port", "RabbitMQ management"),
    ("rabbitmq:dist_port", "RabbitMQ distribution"),
    ("rabbitmq:epmd_port", "epmd"),
    ("csync2:port", "csync2"),
    ("airflow:api_port", "Airflow API server"),
    ("airflow:flower_port", "Flower"),
    ("airflow:scheduler_health_port", "Airflow scheduler health"),
)
# Fixed ports Airflow's log servers bind with no host option (FACTS).
FIXED_PORTS = {8793: "Airflow worker log server", 8794: "Airflow triggerer log server"}


def __virtual__():
    return __virtualname__


def merge(base, *layers):
    """
    Deep-merge ``layers`` into a copy of ``base``: dicts merge key by key,
    anything else (lists included) is replaced by the later layer.

    CLI example:

    .. code-block:: bash

        salt-call airflow_ha.merge '{a: {b: 1}}' '{a: {c: 2}}'
    """
    result = copy.deepcopy(base) if isinstance(base, dict) else {}
    for layer in layers:
        if not isinstance(layer, dict):
            continue
        for key, value in layer.items():
            if isinstance(value, dict) and isinstance(result.get(key), dict):
                result[key] = merge(result[key], value)
            else:
                result[key] = copy.deepcopy(value)
    return result


def _get(data, path, default=None):
    node = data
    for part in path.split(":"):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def _load_parameters():
    """Read the formula's parameters/ from the fileserver (CLI use)."""
    out = []
    for name in ("defaults", "os"):
        text = __salt__["cp.get_file_str"](f"salt://airflow_ha/parameters/{name}.yaml")
        if not text:
            raise CommandExecutionError(
                f"salt://airflow_ha/parameters/{name}.yaml is not on the fileserver: "
                "add the formula to file_roots or gitfs"
            )
        out.append(salt.utils.yaml.safe_load(text) or {})
    return out


def _layered(defaults, os_layers, pillar):
    grains = __grains__
    os_layers = os_layers if isinstance(os_layers, dict) else {}
    family = _get(os_layers, "os_family", {}).get(grains.get("os_family"), {})
    finger = _get(os_layers, "osfinger", {}).get(grains.get("osfinger"), {})
    user = {k: v for k, v in pillar.items() if k != "lookup"} if isinstance(pillar, dict) else {}
    lookup = pillar.get("lookup", {}) if isinstance(pillar, dict) else {}
    return merge(defaults, family, finger, user, lookup if isinstance(lookup, dict) else {})


MASK = "**********"
# Derived values that embed a secret.
SECRET_URLS = ("sql_alchemy_conn", "result_backend", "broker_url")


def settings(defaults=None, os_layers=None, pillar=None, minion_id=None, reveal=False):
    """
    Return the merged and derived settings of this minion.

    Layers, later wins: ``defaults`` (parameters/defaults.yaml), the
    ``os_family`` then ``osfinger`` entry of ``os_layers`` (parameters/os.yaml),
    the ``airflow_ha`` pillar without ``lookup``, then ``airflow_ha:lookup``.
    Adds ``errors``: the validation problems (an empty list when valid).
    Secrets (and the URLs holding them) are masked unless ``reveal=True``,
    which map.jinja passes: a CLI call never prints them in a job return.

    CLI example:

    .. code-block:: bash

        salt node1 airflow_ha.settings
    """
    if defaults is None or os_layers is None:
        defaults, os_layers = _load_parameters()
    if pillar is None:
        pillar = __pillar__.get("airflow_ha", {})
    minion_id = minion_id or __opts__["id"]
    errors = []
    if not isinstance(pillar, dict):
        errors.append(
            f"airflow_ha: expected a mapping, got {type(pillar).__name__} — see pillar.example for the shape"
        )
        pillar = {}
    ah = _layered(defaults, os_layers, pillar)
    errors.extend(_validate(ah, pillar, minion_id))
    ah["errors"] = errors
    if not errors:
        _derive(ah, minion_id)
    if not reveal:
        _mask(ah)
    return ah


def _mask(ah):
    if isinstance(ah.get("secrets"), dict):
        ah["secrets"] = {name: MASK for name in ah["secrets"]}
    # etcd's private keys (airflow_ha:etcd:tls:certs:<node>:key) are secrets too.
    certs = _get(ah, "etcd:tls:certs")
    if isinstance(certs, dict):
        for entry in certs.values():
            if isinstance(entry, dict) and "key" in entry:
                entry["key"] = MASK
    airflow = ah.get("airflow")
    if isinstance(airflow, dict):
        for key in SECRET_URLS:
            if key in airflow:
                airflow[key] = re.sub(r"://([^:/@]+):[^@]*@", rf"://\1:{MASK}@", airflow[key])


def validate(pillar=None, minion_id=None):
    """
    Validate the airflow_ha pillar for this minion. Returns ``True`` when valid;
    otherwise fails with every problem, each naming its pillar key and the fix.

    CLI example:

    .. code-block:: bash

        salt '*' airflow_ha.validate
    """
    ah = settings(pillar=pillar, minion_id=minion_id)
    if ah["errors"]:
        raise CommandExecutionError(format_errors(ah["errors"]))
    return True


def format_errors(errors):
    """Render a list of validation problems as one readable message."""
    lines = [f"airflow_ha: the pillar has {len(errors)} problem(s); nothing was changed:"]
    lines.extend(f"  - {e}" for e in errors)
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# validation


def _validate(ah, pillar, minion_id):
    errors = []
    for key in pillar:
        if key not in PILLAR_KEYS:
            errors.append(
                f"airflow_ha:{key}: unknown key — remove it or fix the spelling "
                f"(known keys: {', '.join(PILLAR_KEYS)})"
            )
    for key in MAPPING_KEYS:
        value = pillar.get(key)
        if value is not None and not isinstance(value, dict):
            errors.append(
                f"airflow_ha:{key}: expected a mapping, got {type(value).__name__} "
                "— see pillar.example for its keys"
            )
    if errors:
        # The merged data is not trustworthy past this point.
        return errors
    errors.extend(_validate_general(ah))
    errors.extend(_validate_nodes(ah, minion_id))
    errors.extend(_validate_secrets(ah))
    errors.extend(_validate_ports(ah))
    errors.extend(_validate_components(ah))
    errors.extend(_validate_etcd_tls(ah, pillar))
    return errors


def _validate_general(ah):
    errors = []
    name = ah.get("cluster_name")
    if not isinstance(name, str) or not re.match(r"^[a-z][a-z0-9-]{0,40}$", name):
        errors.append(
            f"airflow_ha:cluster_name: {name!r} is not valid — use lowercase letters, "
            "digits and '-', starting with a letter (at most 41 characters)"
        )
    if not isinstance(ah.get("single_node"), bool):
        errors.append(
            f"airflow_ha:single_node: {ah.get('single_node')!r} is not a boolean — use true or false"
        )
    tz = ah.get("timezone")
    if not isinstance(tz, str) or not re.match(r"^[A-Za-z0-9_+\-/]+$", tz):
        errors.append(f"airflow_ha:timezone: {tz!r} is not a time zone name — e.g. UTC or Europe/Berlin")
    daemon = _get(ah, "time_sync:daemon")
    if daemon not in TIME_SYNC_DAEMONS:
        errors.append(
            f"airflow_ha:time_sync:daemon: {daemon!r} is not supported — use one of "
            f"{', '.join(TIME_SYNC_DAEMONS)}"
        )
    servers = _get(ah, "time_sync:ntp_servers")
    if not isinstance(servers, list):
        errors.append("airflow_ha:time_sync:ntp_servers: expected a list of NTP server names")
    apt_proxy = _get(ah, "proxy:apt")
    if apt_proxy and not _is_url(apt_proxy):
        errors.append(
            f"airflow_ha:proxy:apt: {apt_proxy!r} is not an http(s) URL — e.g. http://10.0.0.1:3142"
        )
    pip = _get(ah, "proxy:pip")
    if not isinstance(pip, dict):
        errors.append("airflow_ha:proxy:pip: expected a mapping — see pillar.example")
    else:
        for key in ("index_url", "proxy"):
            if pip.get(key) and not _is_url(pip[key]):
                errors.append(f"airflow_ha:proxy:pip:{key}: {pip[key]!r} is not an http(s) URL")
        for key in ("find_links", "trusted_hosts"):
            if not isinstance(pip.get(key, []), list):
                errors.append(f"airflow_ha:proxy:pip:{key}: expected a list")
        if pip.get("no_index") and not pip.get("find_links"):
            errors.append(
                "airflow_ha:proxy:pip:no_index: true needs proxy:pip:find_links — "
                "set find_links to your wheelhouse or turn no_index off"
            )
    prefix = _get(ah, "network:prefix")
    if not isinstance(prefix, int) or isinstance(prefix, bool) or not 8 <= prefix <= 30:
        errors.append(
            f"airflow_ha:network:prefix: {prefix!r} is not a prefix length — use the nodes' "
            "subnet prefix, 8..30 (e.g. 24)"
        )
    return errors


def _positive_int(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _absolute_dir(value):
    """An absolute path other than / (a folder the formula owns or fills)."""
    return isinstance(value, str) and value.startswith("/") and value.rstrip("/") != ""


def _is_url(value):
    if not isinstance(value, str):
        return False
    parsed = urllib.parse.urlparse(value)
    return parsed.scheme in ("http", "https") and bool(parsed.netloc)


def _validate_nodes(ah, minion_id):
    errors = []
    nodes = ah.get("nodes")
    if not isinstance(nodes, dict):
        return [
            f"airflow_ha:nodes: expected a mapping of minion id -> {{address, roles}}, "
            f"got {type(nodes).__name__} — see pillar.example"
        ]
    if not nodes:
        return ["airflow_ha:nodes: no nodes — list every cluster node (minion id -> address)"]
    addresses = {}
    prefix = _get(ah, "network:prefix")
    networks = set()
    all_roles = ah.get("all_roles") or list(ROLES)
    holders = {role: [] for role in ROLES}
    for node_id, node in nodes.items():
        path = f"airflow_ha:nodes:{node_id}"
        if not isinstance(node_id, str) or not HOSTNAME_RE.match(node_id):
            errors.append(
                f"{path}: {node_id!r} is not usable as a host name (csync2, RabbitMQ and "
                "Patroni use it) — use lowercase letters, digits and '-'"
            )
        if not isinstance(node, dict):
            errors.append(f"{path}: expected a mapping with `address` (and optional `roles`)")
            continue
        unknown = sorted(set(node) - {"address", "roles"})
        if unknown:
            errors.append(f"{path}: unknown key(s) {', '.join(unknown)} — a node has `address` and `roles`")
        address = node.get("address")
        try:
            ip = ipaddress.IPv4Address(str(address)) if address is not None else None
        except ValueError:
            ip = None
        if ip is None:
            errors.append(
                f"{path}:address: {address!r} is not an IPv4 address — set the node's address, e.g. 10.0.0.11"
            )
        elif ip.is_loopback or ip.is_unspecified or ip.is_multicast:
            errors.append(
                f"{path}:address: {address} cannot be used — give the address other nodes reach it on"
            )
        else:
            if str(ip) in addresses:
                errors.append(
                    f"{path}:address: {ip} is also the address of {addresses[str(ip)]} — "
                    "every node needs its own address"
                )
            addresses[str(ip)] = node_id
            if isinstance(prefix, int) and 8 <= prefix <= 30:
                networks.add(ipaddress.IPv4Network(f"{ip}/{prefix}", strict=False))
        roles = node.get("roles", all_roles)
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            errors.append(f"{path}:roles: expected a list of role names ({', '.join(ROLES)})")
            continue
        for role in roles:
            if role not in ROLES:
                errors.append(f"{path}:roles: unknown role {role!r} — roles are {', '.join(ROLES)}")
            else:
                holders[role].append(node_id)
        if len(set(roles)) != len(roles):
            errors.append(f"{path}:roles: a role is listed twice — list each role once")
    if len(networks) > 1:
        errors.append(
            "airflow_ha:nodes: the node addresses are not in one /"
            f"{prefix} subnet ({', '.join(sorted(str(n) for n in networks))}) — fix the "
            "addresses or airflow_ha:network:prefix"
        )
    if minion_id not in nodes:
        errors.append(
            f"airflow_ha:nodes: this minion ({minion_id}) is not listed — add it to "
            "airflow_ha:nodes or do not target it"
        )
    version = str(_get(ah, "airflow:version", ""))
    required = list(REQUIRED_ROLES) + (["dag_processor"] if version.startswith("3.") else [])
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
    vip = ah.get("vip") or {}
    if vip.get("enabled"):
        try:
            vip_ip = ipaddress.IPv4Address(str(vip.get("address")))
        except ValueError:
            vip_ip = None
        if vip_ip is None:
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
        vrid = vip.get("virtual_router_id")
        if not isinstance(vrid, int) or isinstance(vrid, bool) or not 1 <= vrid <= 255:
            errors.append(f"airflow_ha:vip:virtual_router_id: {vrid!r} must be an integer 1..255")
        if not isinstance(vip.get("interface"), str) or not vip.get("interface"):
            errors.append("airflow_ha:vip:interface: set the network interface the VIP lives on, e.g. eth0")
    return errors


def _validate_secrets(ah):
    errors = []
    secrets = ah.get("secrets")
    if not isinstance(secrets, dict):
        return ["airflow_ha:secrets: expected a mapping of secret name -> value"]
    wanted = dict(SECRETS)
    if _get(ah, "vip:enabled"):
        wanted.update(OPTIONAL_SECRETS)
    for name, (minimum, what) in wanted.items():
        path = f"airflow_ha:secrets:{name}"
        value = secrets.get(name)
        if value is None or value == "":
            errors.append(f"{path}: missing ({what}) — set it in pillar, the same on every node")
            continue
        if not isinstance(value, str):
            errors.append(f"{path}: must be a string ({what}) — quote it in YAML")
            continue
        if any(c.isspace() for c in value) or any(ord(c) < 32 for c in value):
            errors.append(f"{path}: contains whitespace or control characters — generate it again")
            continue
        if name == "fernet_key":
            errors.extend(_check_fernet(path, value))
        elif len(value.encode()) < minimum:
            errors.append(f"{path}: too short ({len(value.encode())} bytes, at least {minimum}) ({what})")
        elif name == "erlang_cookie" and not COOKIE_RE.match(value):
            errors.append(f"{path}: use letters and digits only (it is an Erlang atom)")
        elif name == "erlang_cookie" and re.fullmatch(r"[A-Z]{20}", value):
            errors.append(
                f"{path}: 20 capital letters look like a cookie Erlang generated, and Debian's "
                "rabbitmq-server postinst replaces such a cookie — add digits or lowercase letters"
            )
        elif name == "csync2_psk" and (len(value) != 64 or not PSK_RE.match(value)):
            errors.append(
                f"{path}: must be exactly 64 characters of letters, digits, '.', '_' or '-' "
                "(the format `csync2 -k` writes)"
            )
        elif name == "admin_password" and "," in value:
            errors.append(
                f"{path}: must not contain ',' (it is also Flower's basic-auth password, and "
                "Flower splits its credential list on ',') — generate it again"
            )
        elif name == "keepalived_password" and len(value) > 8:
            errors.append(f"{path}: VRRP password authentication uses at most 8 characters")
    unknown = sorted(set(secrets) - set(SECRETS) - set(OPTIONAL_SECRETS))
    for name in unknown:
        errors.append(f"airflow_ha:secrets:{name}: unknown secret — remove it or fix the spelling")
    return errors


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


def _validate_ports(ah):
    errors = []
    seen = {}
    for path, what in PORTS:
        if path.startswith("pgbouncer:") and not _get(ah, "pgbouncer:enabled"):
            continue
        port = _get(ah, path)
        if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
            errors.append(f"airflow_ha:{path}: {port!r} is not a TCP port (1..65535)")
            continue
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


def _validate_components(ah):
    errors = []
    version = _get(ah, "airflow:version")
    if not isinstance(version, str) or not re.match(r"^\d+\.\d+\.\d+$", version):
        errors.append(
            f"airflow_ha:airflow:version: {version!r} is not a version — use e.g. '3.3.2' (quote it in YAML)"
        )
    elif ".".join(version.split(".")[:2]) not in SUPPORTED_AIRFLOW:
        errors.append(
            f"airflow_ha:airflow:version: {version} is not supported — use "
            f"{' or '.join(v + '.x' for v in SUPPORTED_AIRFLOW)}"
        )
    elif version not in (_get(ah, "airflow:constraints_shipped") or []) and not _get(
        ah, "airflow:constraints_url"
    ):
        errors.append(
            f"airflow_ha:airflow:version: no constraints file is shipped for {version} (shipped: "
            f"{', '.join(_get(ah, 'airflow:constraints_shipped') or [])}) — pick a shipped version or "
            "set airflow_ha:airflow:constraints_url"
        )
    url = _get(ah, "airflow:constraints_url")
    if url and not (_is_url(url) or str(url).startswith("salt://")):
        errors.append(f"airflow_ha:airflow:constraints_url: {url!r} — use an http(s) or salt:// URL")
    for key in ("worker_concurrency", "parallelism"):
        value = _get(ah, f"airflow:{key}")
        if not _positive_int(value):
            errors.append(f"airflow_ha:airflow:{key}: {value!r} must be a positive integer")
    config = _get(ah, "airflow:config")
    if not isinstance(config, dict) or not all(isinstance(v, dict) for v in config.values()):
        errors.append(
            "airflow_ha:airflow:config: expected section -> {key: value} mappings, e.g. "
            "{core: {load_examples: 'False'}}"
        )
    admin = _get(ah, "airflow:admin")
    if not isinstance(admin, dict) or not admin.get("username"):
        errors.append("airflow_ha:airflow:admin:username: set the admin user's name")
    elif re.search(r"[:,\s]", str(admin["username"])):
        errors.append(
            f"airflow_ha:airflow:admin:username: {admin['username']!r} contains ':', ',' or "
            "whitespace — it is also Flower's basic-auth user (user:password,...): pick a plain name"
        )
    for path in ("airflow:home", "airflow:venv", "postgresql:data_dir"):
        value = _get(ah, path)
        if not _absolute_dir(value):
            errors.append(f"airflow_ha:{path}: {value!r} must be an absolute path (not /)")
    auto = _get(ah, "csync2:auto")
    if auto not in CSYNC2_POLICIES:
        errors.append(
            f"airflow_ha:csync2:auto: {auto!r} is not a csync2 policy — use one of "
            f"{', '.join(CSYNC2_POLICIES)}"
        )
    watcher = _get(ah, "csync2:watcher")
    if not isinstance(watcher, dict):
        errors.append("airflow_ha:csync2:watcher: expected a mapping — see pillar.example")
    else:
        if not isinstance(watcher.get("enabled"), bool):
            errors.append(
                f"airflow_ha:csync2:watcher:enabled: {watcher.get('enabled')!r} — use true or false"
            )
        if not isinstance(watcher.get("tie_break", True), bool):
            errors.append(
                f"airflow_ha:csync2:watcher:tie_break: {watcher.get('tie_break')!r} — use true or false"
            )
        debounce = watcher.get("debounce_ms")
        max_delay = watcher.get("max_delay_ms", debounce)
        if not _positive_int(debounce):
            errors.append(
                f"airflow_ha:csync2:watcher:debounce_ms: {debounce!r} must be a positive integer (ms)"
            )
        elif not _positive_int(max_delay) or max_delay < debounce:
            errors.append(
                f"airflow_ha:csync2:watcher:max_delay_ms: {max_delay!r} must be an integer of at least "
                f"debounce_ms ({debounce})"
            )
    interval = _get(ah, "csync2:periodic:interval_minutes")
    if not _positive_int(interval):
        errors.append(f"airflow_ha:csync2:periodic:interval_minutes: {interval!r} must be a positive integer")
    refresh = _get(ah, "airflow:dag_refresh_interval", 10)
    if not _positive_int(refresh):
        errors.append(
            f"airflow_ha:airflow:dag_refresh_interval: {refresh!r} must be a positive integer (seconds)"
        )
    method = _get(ah, "csync2:periodic:method")
    if method not in ("timer", "cron"):
        errors.append(f"airflow_ha:csync2:periodic:method: {method!r} — use timer or cron")
    for path in ("csync2:extra_dirs", "csync2:exclude"):
        value = _get(ah, path)
        if not isinstance(value, list):
            errors.append(f"airflow_ha:{path}: expected a list")
    for d in _get(ah, "csync2:extra_dirs") or []:
        if not isinstance(d, str) or not d.startswith("/"):
            errors.append(f"airflow_ha:csync2:extra_dirs: {d!r} must be an absolute path")
    nodes_mode = _get(ah, "rabbitmq:broker_url_nodes")
    if nodes_mode not in ("all", "local"):
        errors.append(f"airflow_ha:rabbitmq:broker_url_nodes: {nodes_mode!r} — use all or local")
    qtype = _get(ah, "rabbitmq:queue_type")
    if qtype not in ("quorum", "classic"):
        errors.append(f"airflow_ha:rabbitmq:queue_type: {qtype!r} — use quorum (HA) or classic")
    for path in ("rabbitmq:vhost", "rabbitmq:user", "postgresql:database", "postgresql:user"):
        value = _get(ah, path)
        if not isinstance(value, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_-]{0,62}$", value):
            errors.append(f"airflow_ha:{path}: {value!r} — use letters, digits, '_' and '-'")
    for path in ("ttl", "loop_wait", "retry_timeout"):
        value = _get(ah, f"postgresql:patroni:{path}")
        if not _positive_int(value):
            errors.append(f"airflow_ha:postgresql:patroni:{path}: {value!r} must be a positive integer")
    ttl = _get(ah, "postgresql:patroni:ttl")
    loop = _get(ah, "postgresql:patroni:loop_wait")
    retry = _get(ah, "postgresql:patroni:retry_timeout")
    if all(isinstance(v, int) for v in (ttl, loop, retry)) and loop + 2 * retry > ttl:
        errors.append(
            f"airflow_ha:postgresql:patroni:ttl: {ttl} is less than loop_wait + 2 * "
            f"retry_timeout ({loop + 2 * retry}) — Patroni would demote a healthy leader; "
            "raise ttl or lower the others"
        )
    return errors


def _etcd_tls_nodes(ah):
    """Nodes that talk to etcd and so need a certificate with TLS on: the db
    nodes (etcd members, Patroni) and, on Airflow 3, the dag_processor nodes
    (etcdctl lock)."""
    nodes = ah.get("nodes") if isinstance(ah.get("nodes"), dict) else {}
    all_roles = ah.get("all_roles") or list(ROLES)
    airflow3 = str(_get(ah, "airflow:version", "")).startswith("3.")
    out = {}
    for node_id, node in nodes.items():
        roles = node.get("roles", all_roles) if isinstance(node, dict) else []
        roles = roles if isinstance(roles, list) else []
        if "db" in roles or (airflow3 and "dag_processor" in roles):
            out[node_id] = {"address": str(node.get("address")), "server": "db" in roles}
    return out


def _validate_etcd_tls(ah, pillar):
    path = "airflow_ha:etcd:tls"
    tls = _get(ah, "etcd:tls")
    if not isinstance(tls, dict):
        return [f"{path}: expected a mapping {{enabled, ca_cert, certs}} — see pillar.example"]
    errors = []
    # The states read the PEMs from this pillar path (contents_pillar, so a
    # key never shows in rendered state data): lookup cannot carry them.
    lookup_tls = _get(pillar, "lookup:etcd:tls")
    if isinstance(lookup_tls, dict) and set(lookup_tls) & {"ca_cert", "certs"}:
        errors.append(
            "airflow_ha:lookup:etcd:tls: ca_cert and certs belong under airflow_ha:etcd:tls — move them there"
        )
    for key in sorted(set(tls) - set(ETCD_TLS_KEYS)):
        errors.append(
            f"{path}:{key}: unknown key — remove it or fix the spelling (known keys: {', '.join(ETCD_TLS_KEYS)})"
        )
    enabled = tls.get("enabled")
    if not isinstance(enabled, bool):
        errors.append(f"{path}:enabled: {enabled!r} is not a boolean — use true or false")
    tls_dir = tls.get("dir")
    if not _absolute_dir(tls_dir):
        errors.append(f"{path}:dir: {tls_dir!r} must be an absolute path (not /)")
    certs = tls.get("certs")
    if not isinstance(certs, dict):
        errors.append(f"{path}:certs: expected a mapping of node name -> {{cert, key}} — see pillar.example")
        certs = {}
    nodes = ah.get("nodes") if isinstance(ah.get("nodes"), dict) else {}
    for node_id in certs:
        if node_id not in nodes:
            errors.append(
                f"{path}:certs:{node_id}: not a node of airflow_ha:nodes — remove it or fix the node name"
            )
    if enabled is not True:
        return errors
    ca_cert = tls.get("ca_cert")
    ca = None
    if not isinstance(ca_cert, str) or PEM_CERT not in ca_cert:
        errors.append(
            f"{path}:ca_cert: missing or not a PEM certificate — set the CA certificate that signed "
            f"the nodes' certificates ({PEM_CERT} ...)"
        )
    elif HAS_CRYPTOGRAPHY:
        ca, problem = _load_cert(ca_cert)
        if problem:
            errors.append(f"{path}:ca_cert: {problem} — set the PEM of the CA certificate")
    for node_id, node in sorted(_etcd_tls_nodes(ah).items()):
        entry_path = f"{path}:certs:{node_id}"
        entry = certs.get(node_id)
        if not isinstance(entry, dict):
            errors.append(
                f"{entry_path}: missing — a node that talks to etcd needs {{cert, key}} (PEM) when "
                f"{path}:enabled is true"
            )
            continue
        for key in sorted(set(entry) - set(ETCD_TLS_CERT_KEYS)):
            errors.append(f"{entry_path}:{key}: unknown key — a node's entry has `cert` and `key`")
        cert, key = entry.get("cert"), entry.get("key")
        cert_ok = isinstance(cert, str) and PEM_CERT in cert
        if not cert_ok:
            errors.append(f"{entry_path}:cert: missing or not a PEM certificate ({PEM_CERT} ...)")
        key_ok = isinstance(key, str) and PEM_KEY_RE.search(key) is not None
        if not key_ok:
            what = (
                "encrypted (etcd cannot read it)" if "ENCRYPTED PRIVATE KEY" in str(key) else "missing or not"
            )
            errors.append(
                f"{entry_path}:key: {what} a PEM private key (-----BEGIN ... PRIVATE KEY-----) — "
                "give the node's unencrypted key"
            )
        if cert_ok and HAS_CRYPTOGRAPHY:
            errors.extend(_check_node_cert(entry_path, cert, key if key_ok else None, ca, node))
    return errors


def _load_cert(pem):
    """(certificate, None) or (None, what is wrong) — never the PEM itself."""
    try:
        return x509.load_pem_x509_certificate(pem.strip().encode()), None
    except ValueError:
        return None, "cannot be parsed as a PEM certificate"


def _check_node_cert(path, pem, key_pem, ca, node):
    """The deeper checks of one node's certificate (cryptography available)."""
    cert, problem = _load_cert(pem)
    if problem:
        return [f"{path}:cert: {problem}"]
    errors = []
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        ips = {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    except x509.ExtensionNotFound:
        ips = set()
    # Server (and peer) certificates are checked against the address clients
    # connect to: the node's address, and 127.0.0.1 for the local clients.
    wanted = [node["address"], "127.0.0.1"] if node["server"] else []
    missing = [ip for ip in wanted if ip not in ips]
    if missing:
        errors.append(
            f"{path}:cert: its subjectAltName lacks IP {', IP '.join(missing)} (has: "
            f"{', '.join(sorted(ips)) or 'no IP'}) — issue it with SANs IP:{node['address']},IP:127.0.0.1"
        )
    try:
        eku = set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        eku = None  # no restriction: any usage
    if eku is not None:
        need = {ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth"}
        if node["server"]:
            need[ExtendedKeyUsageOID.SERVER_AUTH] = "serverAuth"
        lacking = [name for oid, name in need.items() if oid not in eku]
        if lacking:
            errors.append(
                f"{path}:cert: its extendedKeyUsage lacks {' and '.join(sorted(lacking))} — etcd uses "
                "one certificate as server, peer and client: issue it with serverAuth,clientAuth"
            )
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
                f"{path}:cert: not signed by airflow_ha:etcd:tls:ca_cert — issue it from that CA "
                "or set the CA that signed it"
            )
    if key_pem is not None:
        try:
            key = serialization.load_pem_private_key(key_pem.strip().encode(), password=None)
        except (ValueError, TypeError):
            errors.append(f"{path}:key: cannot be parsed as an unencrypted PEM private key")
        else:
            fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
            if key.public_key().public_bytes(*fmt) != cert.public_key().public_bytes(*fmt):
                errors.append(
                    f"{path}:key: does not belong to {path}:cert — give the key of that certificate"
                )
    return errors


# ---------------------------------------------------------------------------
# derived values


def _derive(ah, minion_id):
    all_roles = ah.get("all_roles") or list(ROLES)
    nodes = {}
    for node_id, node in sorted(ah["nodes"].items()):
        nodes[node_id] = {"address": str(node["address"]), "roles": list(node.get("roles", all_roles))}
    ah["nodes"] = nodes
    ah["minion_id"] = minion_id
    ah["address"] = nodes[minion_id]["address"]
    ah["roles"] = nodes[minion_id]["roles"]
    ah["members"] = {
        role: [{"id": n, "address": d["address"]} for n, d in nodes.items() if role in d["roles"]]
        for role in ROLES
    }
    ah["network"]["cidr"] = str(
        ipaddress.IPv4Network(f"{ah['address']}/{ah['network']['prefix']}", strict=False)
    )
    version = ah["airflow"]["version"]
    ah["airflow"]["major"] = int(version.split(".")[0])
    ah["airflow"]["dags_folder"] = ah["airflow"]["home"].rstrip("/") + "/dags"
    ah["airflow"]["plugins_folder"] = ah["airflow"]["home"].rstrip("/") + "/plugins"
    ah["airflow"].update(_connection_urls(ah))
    _etcd_urls(ah)
    ah["is_container"] = _is_container()
    # A container shares its host's clock: no time sync daemon inside.
    ah["time_sync"]["managed"] = not ah["is_container"]


def _etcd_urls(ah):
    """etcd's scheme, the URLs its clients use and the TLS file paths, so that
    no SLS file or template spells out http:// or a certificate path itself."""
    e = ah["etcd"]
    tls = e["tls"]
    scheme = "https" if tls["enabled"] else "http"
    e["scheme"] = scheme
    e["local_url"] = f"{scheme}://127.0.0.1:{e['client_port']}"
    e["endpoints"] = [f"{scheme}://{m['address']}:{e['client_port']}" for m in ah["members"]["db"]]
    d = tls["dir"].rstrip("/")
    tls["ca_file"] = f"{d}/ca.crt"
    tls["cert_file"] = f"{d}/node.crt"
    # One private key copy per user that reads it (0600 each).
    tls["key_files"] = {"etcd": f"{d}/etcd.key", "patroni": f"{d}/patroni.key", "airflow": f"{d}/airflow.key"}
    # etcdctl's TLS settings for the dag-processor's lock (its unit's environment).
    tls["etcdctl_env"] = (
        {
            "ETCDCTL_CACERT": tls["ca_file"],
            "ETCDCTL_CERT": tls["cert_file"],
            "ETCDCTL_KEY": tls["key_files"]["airflow"],
        }
        if tls["enabled"]
        else {}
    )
    # This node has a certificate (it is an etcd member or client).
    tls["here"] = bool(tls["enabled"]) and ah["minion_id"] in _etcd_tls_nodes(ah)


def _is_container():
    virtual = str(__grains__.get("virtual", "")).lower()
    subtype = str(__grains__.get("virtual_subtype", "")).lower()
    return virtual in CONTAINERS or subtype in CONTAINERS


def _connection_urls(ah):
    """Airflow's database, broker and result backend URLs (they hold secrets)."""
    q = urllib.parse.quote
    secrets = ah["secrets"]
    pg = ah["postgresql"]
    db_port = ah["pgbouncer"]["port"] if ah["pgbouncer"].get("enabled") else ah["haproxy"]["primary_port"]
    db_auth = f"{q(pg['user'], safe='')}:{q(secrets['airflow_db_password'], safe='')}"
    db = f"{db_auth}@127.0.0.1:{db_port}/{q(pg['database'], safe='')}"
    rmq = ah["rabbitmq"]
    brokers = ah["members"]["broker"]
    if rmq["broker_url_nodes"] == "local" and ah["minion_id"] in [b["id"] for b in brokers]:
        brokers = [b for b in brokers if b["id"] == ah["minion_id"]]
    amqp_auth = f"{q(rmq['user'], safe='')}:{q(secrets['rabbitmq_password'], safe='')}"
    vhost = q(rmq["vhost"], safe="")
    broker_url = ";".join(f"amqp://{amqp_auth}@{b['id']}:{rmq['port']}/{vhost}" for b in brokers)
    return {
        "sql_alchemy_conn": f"postgresql+psycopg2://{db}",
        "result_backend": f"db+postgresql://{db}",
        "broker_url": broker_url,
        "execution_api_server_url": f"http://127.0.0.1:{ah['haproxy']['api_port']}/execution/",
    }
