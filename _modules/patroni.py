"""
Access to Patroni's REST API (etcd's health, Patroni's DCS, is read by the
``airflow_ha_etcd`` module).

Why custom code: Salt ships no Patroni module, and the questions the formula
asks ("is there a leader yet?", "is this node the leader?") need the JSON of
Patroni's ``GET /cluster`` parsed, not only an HTTP status.

Only GET endpoints are used; they need no authentication. Every function
raises ``CommandExecutionError`` with a message naming the URL and the cause
when the API cannot be reached or answers something unexpected.

The REST address defaults to ``restapi.connect_address`` of the local Patroni
configuration (``/etc/patroni/config.yml``); pass ``host``/``port`` to ask
another node.

CLI examples::

    salt node1 patroni.cluster
    salt node1 patroni.leader
    salt '*' patroni.is_leader
    salt node1 patroni.members host=10.77.0.12
"""

import json
import logging

try:
    import yaml

    HAS_YAML = True
except ImportError:  # pragma: no cover
    HAS_YAML = False

from salt.exceptions import CommandExecutionError, SaltInvocationError

log = logging.getLogger(__name__)

__virtualname__ = "patroni"

DEFAULT_CONFIG = "/etc/patroni/config.yml"
DEFAULT_PORT = 8008
# Patroni < 4 calls the primary "master" in /patroni; /cluster says "leader".
LEADER_ROLES = ("leader", "master", "primary", "standby_leader")
REPLICA_ROLES = ("replica", "sync_standby", "quorum_standby")


def __virtual__():
    if not HAS_YAML:
        return False, "patroni module: PyYAML is required"
    return __virtualname__


def _http_request(method, url, timeout, body=None, auth=None):
    """(status, text) of ``method`` ``url``; raises CommandExecutionError when
    unreachable (Patroni answers 503 on /leader, /primary, /replica for "no":
    a valid answer)."""
    return __utils__["ah_http.request"](method, url, timeout, body=body, auth=auth)


def _http_get(url, timeout):
    """GET ``url``; return (status, body text). Raises CommandExecutionError."""
    return _http_request("GET", url, timeout)


def _read_config(config_file):
    try:
        with open(config_file, encoding="utf-8") as fh:
            conf = yaml.safe_load(fh) or {}
    except FileNotFoundError:
        raise CommandExecutionError(
            f"{config_file} does not exist: Patroni is not configured on this "
            "node; pass host=<address> to ask another node"
        ) from None
    except (OSError, yaml.YAMLError) as exc:
        raise CommandExecutionError(f"cannot read {config_file}: {exc}") from None
    return conf if isinstance(conf, dict) else {}


def _config_address(config_file):
    """(host, port) from restapi.connect_address of a Patroni config file."""
    conf = _read_config(config_file)
    restapi = conf.get("restapi")
    address = (restapi or {}).get("connect_address") or (restapi or {}).get("listen")
    if not address or ":" not in str(address):
        raise CommandExecutionError(
            f"{config_file} has no restapi.connect_address (host:port); pass host=<address> instead"
        )
    host, _, port = str(address).rpartition(":")
    try:
        return host, int(port)
    except ValueError:
        raise CommandExecutionError(
            f"{config_file}: restapi.connect_address {address!r} has no numeric port"
        ) from None


def _base_url(host, port, config_file):
    if host is None:
        host, conf_port = _config_address(config_file or DEFAULT_CONFIG)
        port = port if port is not None else conf_port
    if not isinstance(host, str) or not host or "/" in host:
        raise SaltInvocationError(f"patroni: host must be an address or name, got {host!r}")
    try:
        port = int(port if port is not None else DEFAULT_PORT)
    except (TypeError, ValueError):
        raise SaltInvocationError(f"patroni: port must be a number, got {port!r}") from None
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _get_json(path, host=None, port=None, timeout=5, config_file=None):
    url = _base_url(host, port, config_file) + path
    status, body = _http_get(url, timeout)
    try:
        data = json.loads(body)
    except ValueError:
        raise CommandExecutionError(
            f"{url} answered HTTP {status} with a body that is not JSON: {body[:200]!r}"
        ) from None
    if status >= 500 and path == "/cluster":
        raise CommandExecutionError(f"{url} answered HTTP {status}: {body[:200]}")
    if not isinstance(data, dict):
        raise CommandExecutionError(f"{url} answered unexpected JSON: {body[:200]!r}")
    return data


def cluster(host=None, port=None, timeout=5, config_file=None):
    """
    Return Patroni's ``GET /cluster`` document (``members``, ``scope``, ...).

    host
        Patroni REST API address; default: restapi.connect_address of ``config_file``.
    port
        REST API port (default: from the config file, else 8008).
    timeout
        Seconds per HTTP request.
    config_file
        Patroni configuration to read the address from (default /etc/patroni/config.yml).

    CLI Example:

    .. code-block:: bash

        salt node1 patroni.cluster
    """
    data = _get_json("/cluster", host, port, timeout, config_file)
    if not isinstance(data.get("members"), list):
        raise CommandExecutionError(f"Patroni /cluster answer has no members list: {json.dumps(data)[:200]}")
    return data


def members(host=None, port=None, timeout=5, config_file=None):
    """
    Return the members of the Patroni cluster, each reduced to name, role,
    state, host, port, timeline and lag (``None`` when Patroni gives none).

    CLI Example:

    .. code-block:: bash

        salt node1 patroni.members
    """
    out = []
    for member in cluster(host, port, timeout, config_file)["members"]:
        out.append(
            {
                "name": member.get("name"),
                "role": member.get("role"),
                "state": member.get("state"),
                "host": member.get("host"),
                "port": member.get("port"),
                "timeline": member.get("timeline"),
                "lag": member.get("lag", member.get("receive_lag")),
            }
        )
    return out


def leader(host=None, port=None, timeout=5, config_file=None):
    """
    Return the name of the running leader of the cluster, or ``None`` when
    there is none (election in progress, or the leader is not running).

    CLI Example:

    .. code-block:: bash

        salt node1 patroni.leader
    """
    for member in cluster(host, port, timeout, config_file)["members"]:
        if member.get("role") in LEADER_ROLES and member.get("state") == "running":
            return member.get("name")
    return None


def is_leader(name=None, host=None, port=None, timeout=5, config_file=None, default=None):
    """
    True when the Patroni member ``name`` (default: this minion's id, which
    the formula uses as Patroni's member name) is the running leader.

    default
        When given (e.g. ``False``), returned instead of raising when Patroni
        cannot be asked (not configured or not answering). The formula's
        ``onlyif`` guards use ``default: false``, so ``test=True`` on a fresh
        node skips leader-only states instead of failing.

    CLI Example:

    .. code-block:: bash

        salt '*' patroni.is_leader
    """
    if name is None:
        name = __grains__.get("id") or __opts__.get("id")
    try:
        return leader(host, port, timeout, config_file) == name
    except CommandExecutionError:
        if default is None:
            raise
        log.info("patroni.is_leader: Patroni cannot be asked, answering %s", default)
        return default


def replicas(host=None, port=None, timeout=5, config_file=None):
    """
    Return the names of the members that are replicas (any state).

    CLI Example:

    .. code-block:: bash

        salt node1 patroni.replicas
    """
    return [m["name"] for m in members(host, port, timeout, config_file) if m.get("role") in REPLICA_ROLES]


def dynamic_config(host=None, port=None, timeout=5, config_file=None):
    """
    Return the cluster's dynamic configuration stored in the DCS (``GET /config``):
    ttl, loop_wait, retry_timeout, maximum_lag_on_failover, postgresql, ...

    CLI Example:

    .. code-block:: bash

        salt node1 patroni.dynamic_config
    """
    return _get_json("/config", host, port, timeout, config_file)


def patch_dynamic_config(changes, host=None, port=None, timeout=10, config_file=None):
    """
    Merge ``changes`` (a dict, same shape as ``dynamic_config``) into the
    dynamic configuration with ``PATCH /config``, as ``patronictl edit-config``
    does; a ``None`` value removes a key. Authenticates with the REST API
    credentials of the local Patroni config file (restapi.authentication),
    so no password travels through Salt. Returns the new configuration.

    Some PostgreSQL parameters (e.g. max_connections) only apply after a
    restart: Patroni then flags the members "pending restart"; restart them
    with ``patronictl restart`` in a maintenance window.

    CLI Example:

    .. code-block:: bash

        salt node1 patroni.patch_dynamic_config '{"ttl": 20, "loop_wait": 5}'
    """
    if not isinstance(changes, dict) or not changes:
        raise SaltInvocationError("patroni.patch_dynamic_config: changes must be a non-empty dict")
    conf_file = config_file or DEFAULT_CONFIG
    auth = (_read_config(conf_file).get("restapi") or {}).get("authentication") or {}
    creds = (auth["username"], auth["password"]) if auth.get("username") else None
    url = _base_url(host, port, config_file) + "/config"
    status, body = _http_request("PATCH", url, timeout, body=changes, auth=creds)
    if status == 401:
        raise CommandExecutionError(
            f"{url} refused the credentials of {conf_file} (restapi.authentication): HTTP 401"
        )
    if status != 200:
        raise CommandExecutionError(f"PATCH {url} answered HTTP {status}: {body[:200]}")
    try:
        return json.loads(body)
    except ValueError:
        raise CommandExecutionError(f"PATCH {url} answered a body that is not JSON: {body[:200]!r}") from None
