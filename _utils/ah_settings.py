"""
The airflow_ha settings: the layers merged, validated and derived, once.

Why this file: every SLS file and template of the formula reads one dict,
``ah`` (map.jinja), and 46 files import map.jinja in one state run. The
layering (template-formula's order), the derived values (this node's roles,
each role's members, URLs, the etcd TLS paths, the node that runs one-time
jobs) and the call into the validator live here, in tested Python, and the
result is cached in the run's ``__context__`` so that the x509 checks and the
derivation run once per render, not once per file. Salt's ``slsutil.merge``
would merge but neither validate nor derive, and ``defaults.merge`` gives the
later layer no way to win over ``lookup`` the way template-formula's mapstack
does.

A ``_utils`` module, reached as ``__utils__["ah_settings.settings"]`` from
``_modules/airflow_ha.py``, which passes the loader dunders in as arguments;
it imports its siblings from its own folder (Salt gives ``_utils`` no
``__utils__``).
"""

import copy
import hashlib
import importlib.util
import ipaddress
import json
import os
import re
import shlex
import urllib.parse

_spec = importlib.util.spec_from_file_location(
    "_airflow_ha_ah_validate", os.path.join(os.path.dirname(os.path.abspath(__file__)), "ah_validate.py")
)
validator = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(validator)
schema = validator.schema
ah_nodes = validator.ah_nodes  # which node holds what, as the rules read it
_mon_spec = importlib.util.spec_from_file_location(
    "_airflow_ha_ah_monitoring", os.path.join(os.path.dirname(os.path.abspath(__file__)), "ah_monitoring.py")
)
monitoring = importlib.util.module_from_spec(_mon_spec)
_mon_spec.loader.exec_module(monitoring)

CONTAINERS = ("container", "systemd-nspawn", "lxc", "docker", "podman", "openvzve")
# Derived values that embed a secret.
SECRET_URLS = ("sql_alchemy_conn", "result_backend", "broker_url")
# libpq's bound on a connection attempt of Airflow (database and result
# backend), s: HAProxy 3.0 (Debian 13) can hold a client's connection open
# with no server behind it when the primary it was routed to dies during the
# startup handshake (seen in the lab after a leader kill: the dag-processor
# waited 30 min, the client timeout, for the answer to its first 8 bytes).
# Without a bound libpq waits as long; with it the attempt fails, Airflow
# retries on a fresh connection. Above a failover's HAProxy re-route (< 1 s)
# and PgBouncer's login on a busy host.
DB_CONNECT_TIMEOUT = 10
# Grains the layers and the derivation read (part of the cache key).
GRAINS = ("os_family", "osfinger", "virtual", "virtual_subtype")


def constraints_name(version, python, shipped):
    """The file name of Airflow's shipped constraints for VERSION on PYTHON
    ("3.13"): the Python-specific freeze when SHIPPED lists one (Python 3.13
    needs pins 3.11 does not, e.g. pyyaml-ft), else the version's own. The
    lab's wheelhouse picks its file by this rule too."""
    tagged = f"{version}-py{python}"
    return f"constraints-{tagged if tagged in shipped else version}.txt"


def merge(base, *layers):
    """Deep-merge ``layers`` into a copy of ``base``: dicts merge key by key,
    anything else (lists included) is replaced by the later layer."""
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


def layered(defaults, os_layers, pillar, grains):
    """The layers, later wins: defaults.yaml, os.yaml's ``os_family`` entry,
    its ``osfinger`` entry, ``airflow_ha:lookup``, then the ``airflow_ha``
    pillar (pillar beats lookup for a key both set, as template-formula)."""
    os_layers = os_layers if isinstance(os_layers, dict) else {}
    family = (os_layers.get("os_family") or {}).get(grains.get("os_family"), {})
    finger = (os_layers.get("osfinger") or {}).get(grains.get("osfinger"), {})
    user = {k: v for k, v in pillar.items() if k != "lookup"}
    lookup = pillar.get("lookup")
    return merge(defaults, family, finger, lookup if isinstance(lookup, dict) else {}, user)


def _cache_key(defaults, os_layers, pillar, grains):
    text = json.dumps(
        [defaults, os_layers, pillar, {g: grains.get(g) for g in GRAINS}], sort_keys=True, default=repr
    )
    return hashlib.sha256(text.encode()).hexdigest()


def settings(defaults, os_layers, pillar, minion_id, grains, context=None, reveal=False, cluster=False):
    """
    The merged and derived settings of ``minion_id`` (see :func:`layered`),
    with ``errors``: the validation problems (an empty list when valid).
    Secrets (and the URLs holding them) are masked unless ``reveal``.
    ``cluster``: the orchestration's view from the master (no minion of its
    own, no secrets needed): nodes, members and the cluster-wide values only.
    ``context`` (the loader's ``__context__``) caches the result per minion
    id and reveal flag; the inputs' digest tells a stale entry.
    """
    slot = f"airflow_ha.settings:{minion_id}:{bool(reveal)}:{bool(cluster)}"
    digest = _cache_key(defaults, os_layers, pillar, grains)
    if context is not None and context.get(slot, (None,))[0] == digest:
        return copy.deepcopy(context[slot][1])
    ah = _compute(defaults, os_layers, pillar, minion_id, grains, cluster)
    if not reveal:
        mask(ah)
    if context is not None:
        context[slot] = (digest, ah)
    return copy.deepcopy(ah)


def _compute(defaults, os_layers, pillar, minion_id, grains, cluster):
    if not isinstance(pillar, dict):
        ah = layered(defaults, os_layers, {}, grains)
        ah["errors"] = [
            f"airflow_ha: expected a mapping, got {type(pillar).__name__} — see pillar.example for the shape"
        ]
        return ah
    ah = layered(defaults, os_layers, pillar, grains)
    errors = validator.validate(ah, pillar, minion_id, cluster=cluster)
    if cluster:
        errors = [e for e in errors if not e.startswith("airflow_ha:secrets:")]
    ah["errors"] = errors
    if not errors:
        derive(ah, None if cluster else minion_id, grains)
    return ah


def mask(ah):
    """Replace every secret of ``ah`` (the schema's secret keys, and the
    derived URLs that hold one) with the mask, in place."""
    for path, key in schema.KEYS.items():
        if key.secret:
            _mask_path(ah, path.split(":"))
    airflow = ah.get("airflow")
    if isinstance(airflow, dict):
        for key in SECRET_URLS:
            if isinstance(airflow.get(key), str):
                airflow[key] = re.sub(r"://([^:/@]+):[^@]*@", rf"://\1:{schema.MASK}@", airflow[key])


def _mask_path(node, parts):
    if not isinstance(node, dict):
        return
    head, rest = parts[0], parts[1:]
    names = list(node) if head == "*" else [head] if head in node else []
    for name in names:
        if rest:
            _mask_path(node[name], rest)
        elif node[name] not in (None, ""):
            node[name] = schema.MASK


def unit_dropin(service, name):
    """The path of airflow_ha's drop-in NAME for systemd unit SERVICE."""
    return f"/etc/systemd/system/{service}.service.d/airflow-ha-{name}.conf"


def is_container(grains):
    virtual = str(grains.get("virtual", "")).lower()
    subtype = str(grains.get("virtual_subtype", "")).lower()
    return virtual in CONTAINERS or subtype in CONTAINERS


def derive(ah, minion_id, grains):
    """Add the derived values (valid settings only). ``minion_id`` None: the
    cluster-wide ones only (the orchestration)."""
    nodes = {}
    for node_id, node in sorted(ah["nodes"].items()):
        nodes[node_id] = {"address": str(node["address"]), "roles": list(ah_nodes.node_roles(ah, node))}
    ah["nodes"] = nodes
    ah["members"] = {
        role: [{"id": n, "address": d["address"]} for n, d in nodes.items() if role in d["roles"]]
        for role in schema.ROLES
    }
    # One-time cluster jobs (the Airflow admin user; the orchestration's
    # schema stage) run on one node: the first api node by name.
    ah["one_time_node"] = ah["members"]["api"][0]["id"]
    af = ah["airflow"]
    af["major"] = int(af["version"].split(".")[0])
    af["dags_folder"] = af["home"].rstrip("/") + "/dags"
    af["api_health_path"] = "/api/v2/monitor/health" if af["major"] == 3 else "/health"
    af["plugins_folder"] = af["home"].rstrip("/") + "/plugins"
    af["constraints_file"] = constraints_name(af["version"], af["python"], af["constraints_shipped"])
    # The port `csync2 -p` reaches the peers on: what the socket listens on.
    ah["csync2"]["peer_port"] = ah["csync2"]["port"]
    _etcd_urls(ah)
    p = ah["postgresql"]["patroni"]
    # Patroni's dynamic settings: bootstrap.dcs of config.yml for a new
    # cluster, PATCH /config from the leader for a running one (service.sls).
    p["dcs"] = {
        "ttl": p["ttl"],
        "loop_wait": p["loop_wait"],
        "retry_timeout": p["retry_timeout"],
        "maximum_lag_on_failover": p["maximum_lag_on_failover"],
        "synchronous_mode": p["synchronous_mode"],
        "postgresql": {"use_pg_rewind": p["use_pg_rewind"], "parameters": p["parameters"]},
    }
    _pgbackrest(ah)
    monitoring.derive(ah, minion_id)
    if minion_id is None:
        return
    m = ah["monitoring"]
    # the exporters and Prometheus bind this node's address: each that runs
    # here gets the boot drop-in (monitoring/boot.sls)
    m["boot_dropins"] = {
        m[k]["pkg"]: unit_dropin(m[k]["pkg"], "boot")
        for k in ("node_exporter", "postgres_exporter", "prometheus", "alertmanager")
        if m["enabled"] and (k == "node_exporter" or m["here"][k])
    }
    ah["minion_id"] = minion_id
    ah["address"] = nodes[minion_id]["address"]
    ah["roles"] = nodes[minion_id]["roles"]
    ah["network"]["cidr"] = str(
        ipaddress.IPv4Network(f"{ah['address']}/{ah['network']['prefix']}", strict=False)
    )
    af.update(_connection_urls(ah))
    ah["etcd"]["tls"]["here"] = bool(ah["etcd"]["tls"]["enabled"]) and minion_id in ah_nodes.etcd_tls_nodes(
        ah
    )
    e = ah["etcd"]
    # joining a running cluster with a blank data dir (airflow_ha_etcd.joined)
    e["peer_url"] = f"{e['scheme']}://{ah['address']}:{e['peer_port']}"
    # e["peer_urls"] (every db member's): the members the cluster must keep (airflow_ha_etcd.departed_removed)
    # the other db members' client URLs: etcd:endpoints without this node's
    e["peer_endpoints"] = [
        url for m, url in zip(ah["members"]["db"], e["endpoints"], strict=True) if m["id"] != minion_id
    ]
    e["initial_env"] = e["config_file"] + ".initial"
    e["join_env"] = e["data_dir"].rstrip("/") + ".join.env"
    e["join_dropin"] = unit_dropin(e["service"], "join")
    # the boot order and restart policy Debian's unit lacks (etcd/config.sls)
    e["boot_dropin"] = unit_dropin(e["service"], "boot")
    ah["postgresql"]["patroni"]["boot_dropin"] = unit_dropin(ah["postgresql"]["patroni"]["service"], "boot")
    ah["is_container"] = is_container(grains)
    # A container shares its host's clock: no time sync daemon inside.
    ah["time_sync"]["managed"] = not ah["is_container"]
    # The API server restarts in turn (airflow-restart-in-turn) where this
    # node can reach etcd: plain http, or a TLS certificate for it in pillar.
    tls_ok = not ah["etcd"]["tls"]["enabled"] or ah["etcd"]["tls"]["here"]

    def api_health_url(address):
        return f"http://{address}:{af['api_port']}{af['api_health_path']}"

    # this node's API server health (the restart in turn, the node metrics)
    af["api_health_url"] = api_health_url(ah["address"])
    af["api_restart"] = {
        "in_turn": "api" in ah["roles"] and tls_ok,
        "script": "/usr/local/lib/airflow_ha/airflow-restart-in-turn",
        "lock": f"{ah['cluster_name']}/airflow/api-restart",
        "marker": f"{ah['pgbackrest']['state_dir'].rstrip('/')}/restart-pending-api",
        # a healthy server is not taken down while one of these does not answer
        "peer_health_urls": [
            api_health_url(m["address"]) for m in ah["members"]["api"] if m["id"] != minion_id
        ],
    }
    b = ah["pgbackrest"]
    b["here"] = minion_id in b["nodes"]
    b["db_here"] = minion_id in b["db_nodes"]
    b["repo_here"] = minion_id == b["repo_host"]


def _etcd_urls(ah):
    """etcd's scheme, the URLs its clients use and the TLS file paths, so that
    no SLS file or template spells out http:// or a certificate path itself."""
    e = ah["etcd"]
    tls = e["tls"]
    scheme = "https" if tls["enabled"] else "http"
    e["scheme"] = scheme
    e["local_url"] = f"{scheme}://127.0.0.1:{e['client_port']}"
    e["endpoints"] = [f"{scheme}://{m['address']}:{e['client_port']}" for m in ah["members"]["db"]]
    e["peer_urls"] = [f"{scheme}://{m['address']}:{e['peer_port']}" for m in ah["members"]["db"]]
    d = tls["dir"].rstrip("/")
    tls["ca_file"] = f"{d}/ca.crt"
    tls["cert_file"] = f"{d}/node.crt"
    # One private key copy per user that reads it (0600 each).
    tls["key_files"] = {"etcd": f"{d}/etcd.key", "patroni": f"{d}/patroni.key", "airflow": f"{d}/airflow.key"}

    # etcdctl's TLS settings in a unit's environment: the dag-processor's lock
    # (user airflow) and the root timers on db nodes (etcd's key copy).
    def etcdctl_env(user):
        key = {"ETCDCTL_CACERT": tls["ca_file"], "ETCDCTL_CERT": tls["cert_file"]}
        return {**key, "ETCDCTL_KEY": tls["key_files"][user]} if tls["enabled"] else {}

    tls["etcdctl_env"] = etcdctl_env("airflow")
    tls["etcdctl_root_env"] = etcdctl_env("etcd")


def _connection_urls(ah):
    """Airflow's database, broker and result backend URLs (they hold secrets)."""
    q = urllib.parse.quote
    secrets = ah["secrets"]
    pg = ah["postgresql"]
    db_port = ah["pgbouncer"]["port"] if ah["pgbouncer"].get("enabled") else ah["haproxy"]["primary_port"]
    db_auth = f"{q(pg['user'], safe='')}:{q(secrets['airflow_db_password'], safe='')}"
    db = f"{db_auth}@127.0.0.1:{db_port}/{q(pg['database'], safe='')}?connect_timeout={DB_CONNECT_TIMEOUT}"
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


def _pgbackrest(ah):
    """pgBackRest's derived values (README "Backups and point-in-time
    restore"): who runs what, the commands Patroni runs, and Patroni's dynamic
    settings for archiving (added to postgresql:patroni:dcs, so the bootstrap
    and the live PATCH carry them), all only when pgbackrest:enabled."""
    b = ah["pgbackrest"]
    parts = ah_nodes.pgbackrest_nodes(ah) if b["enabled"] else {}
    b["stanza"] = ah["cluster_name"]
    b["nodes"] = sorted(parts)
    b["db_nodes"] = sorted(n for n, part in parts.items() if part["db"])
    backup = [m["id"] for m in ah["members"]["backup"]]
    b["repo_host"] = backup[0] if b["enabled"] and backup else None
    b["repos"] = [1, 2] if b["s3"]["enabled"] else [1]
    source = ah_nodes.pgbackrest_tls_source(ah)
    tls = b["tls"]
    tls["pillar"] = f"airflow_ha:{source}:tls"  # where the states read the PEMs (contents_pillar)
    d = tls["dir"].rstrip("/")
    tls.update(ca_file=f"{d}/ca.crt", cert_file=f"{d}/node.crt", key_file=f"{d}/node.key")
    base = f"pgbackrest --stanza={b['stanza']}"
    b["archive_push"] = f"{base} archive-push %p"
    b["archive_get"] = f'{base} archive-get %f "%p"'
    # Standbys and promotions fetch through the probe (files/archive-get.sh.jinja):
    # a dead repository host must not stall a failover.
    b["standby_restore_command"] = f'{b["archive_get_script"]} %f "%p"'
    state = b["state_dir"].rstrip("/")
    b["check_marker"] = f"{state}/pgbackrest-checked-{b['stanza']}.json"
    # present on the db nodes while airflow_ha.orch.restore runs: Patroni is
    # then started by the orchestration only (postgresql/service.sls refuses)
    b["restore_marker"] = f"{state}/restore-in-progress"
    b["restore_aside"] = ah["postgresql"]["data_dir"].rstrip("/") + ".pre-restore"
    p = ah["postgresql"]["patroni"]
    if b["enabled"]:
        pg = p["dcs"]["postgresql"]
        pg["parameters"] = {
            **p["parameters"],
            "archive_mode": "on",
            "archive_command": b["archive_push"],
            "archive_timeout": b["archive_timeout"],
        }
        pg["recovery_conf"] = {"restore_command": b["standby_restore_command"]}
        # A new replica restores the newest backup and replays WAL from the
        # repository (--delta keeps the files that match), so it does not load
        # the leader; pg_basebackup stays the fallback (no backup yet).
        pg["create_replica_methods"] = ["pgbackrest", "basebackup"]
        pg["pgbackrest"] = {
            "command": f"/usr/bin/{base} --delta restore",
            "keep_data": True,
            "no_params": True,
        }
    # The live PATCH (postgresql/service.sls): the same settings; with backups
    # off, pgBackRest's keys are removed from the DCS if an earlier apply set them.
    p["dcs_live"] = p["dcs"]
    if not b["enabled"]:
        off = {k: None for k in validator.PGBACKREST_PARAMETERS if k not in p["parameters"]}
        none = dict.fromkeys(("recovery_conf", "create_replica_methods", "pgbackrest"))
        p["dcs_live"] = {
            **p["dcs"],
            "postgresql": {**p["dcs"]["postgresql"], "parameters": {**p["parameters"], **off}, **none},
        }
    p["restore_bootstrap"] = _restore_bootstrap(ah) if b["enabled"] else None
    # airflow_ha.orch.restore's keys: which node restores, for how long at most
    restore = ah["restore"] = ah.get("restore") if isinstance(ah.get("restore"), dict) else {}
    restore.setdefault("timeout", schema.KEYS["restore:timeout"].default)
    if restore.get("target_time") and b["enabled"]:
        restore["target"] = validator.pgbackrest.parse_target_time(restore["target_time"])[0]
        restore.setdefault("node", b["db_nodes"][0])


def _restore_bootstrap(ah):
    """Patroni's custom bootstrap for airflow_ha.orch.restore (airflow_ha:restore
    given on the command line): pgBackRest restores the data directory and
    PostgreSQL replays WAL to the target, then promotes (Patroni's documented
    PITR bootstrap, docs/replica_bootstrap.rst). None without a restore."""
    restore = ah.get("restore") or {}
    if not restore.get("target_time"):
        return None
    target = validator.pgbackrest.parse_target_time(restore["target_time"])[0]
    b = ah["pgbackrest"]
    command = ["/usr/bin/pgbackrest", f"--stanza={b['stanza']}", "--delta"]
    recovery = {"restore_command": b["archive_get"], "recovery_target_timeline": "latest"}
    if target != "latest":
        command += [
            "--type=time",
            f"--target={target}",
            "--target-action=promote",
            "--target-timeline=latest",
        ]
        recovery.update(recovery_target_time=target, recovery_target_action="promote")
    return {
        "name": "airflow_ha_restore",
        "target": target,
        "config": {
            "command": shlex.join([*command, "restore"]),
            # pgBackRest takes no --scope/--datadir: its config names the stanza and pg1-path
            "no_params": True,
            # Patroni writes the recovery settings (recovery_conf) itself and
            # drops pgBackRest's copies from postgresql.auto.conf.
            "keep_existing_recovery_conf": False,
            "recovery_conf": recovery,
        },
    }
