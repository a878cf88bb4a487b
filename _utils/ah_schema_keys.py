"""
The airflow_ha pillar schema's data: :data:`KEYS`, every key of the pillar,
its type, default, allowed values or range, whether it is a secret and who
sets it, in the order of the README's pillar table.

Why this file: ``ah_schema.py`` held the table, its vocabulary and the checks
in 902 lines, over the formula's ~600-line limit for a module; the table
alone is ~560 lines. Its vocabulary (``Key`` and its constructors) is in
``ah_schema_types.py``, the checks and the tables derived from this one are
in ``ah_schema.py``, which re-exports :data:`KEYS`: read it there.

A ``_utils`` module: synced by ``saltutil.sync_all`` (no function for
``__utils__``) and imported by path by ``ah_schema.py``. Standard library only.
"""

import importlib.util
import os

_types_spec = importlib.util.spec_from_file_location(
    "_airflow_ha_ah_schema_types",
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "ah_schema_types.py"),
)
_types = importlib.util.module_from_spec(_types_spec)
_types_spec.loader.exec_module(_types)
# The vocabulary, by the names the table uses; ah_schema re-exports these
# objects (not a second load of ah_schema_types: the same Key class).
DEFAULT_ROLES, ROLES = _types.DEFAULT_ROLES, _types.ROLES
CSYNC2_POLICIES, TIME_SYNC_DAEMONS = _types.CSYNC2_POLICIES, _types.TIME_SYNC_DAEMONS
PILLAR, PARAMETER, FLAG, INTERNAL = _types.PILLAR, _types.PARAMETER, _types.FLAG, _types.INTERNAL
_CALENDAR, _CALENDAR_HINT = _types._CALENDAR, _types._CALENDAR_HINT
Key = _types.Key
_port, _pkg, _file, _secret, _ms = _types._port, _types._pkg, _types._file, _types._secret, _types._ms
_count, _strings, _name = _types._count, _types._strings, _types._name

# Every key of the airflow_ha pillar, in the order of the README table. A
# mapping's own entry (kind map) is optional: a path with children is a
# mapping; `*` stands for any name (a node, a secret's owner...).
KEYS = {
    "cluster_name": Key(
        "str",
        "airflow-ha",
        "Patroni scope, keepalived and csync2 names",
        pattern=r"^[a-z][a-z0-9-]{0,40}$",
        hint="is not valid — use lowercase letters, digits and '-', starting with a letter (at most 41 characters)",
    ),
    "single_node": Key("bool", False, "allow exactly one node holding every role (kitchen, tests only)"),
    "clean": Key(
        "bool", False, "run a component's clean SLS (given on the command line, never kept)", where=FLAG
    ),
    "restore:target_time": Key(
        "str",
        None,
        "airflow_ha.orch.restore only: 'latest' or a time with its zone, e.g. '2024-05-01 12:00:00+00' "
        "(given on the command line, never kept)",
        where=FLAG,
    ),
    "restore:node": Key(
        "str",
        None,
        "airflow_ha.orch.restore only: the db node that restores (default: the first)",
        where=FLAG,
    ),
    "restore:timeout": _count(
        3600, "airflow_ha.orch.restore only: how long the restore may take", unit="s", where=FLAG
    ),
    "nodes": Key("map", {}, "minion id -> node; 3 or 5 `db` nodes (or single_node)", noun="node"),
    "nodes:*:address": Key(
        "ipv4",
        None,
        "required: the IPv4 address the other nodes reach this node on (/etc/hosts)",
        hint="set the node's address, e.g. 10.0.0.11",
    ),
    "nodes:*:roles": Key(
        "list",
        None,
        "this node's roles (default: all_roles)",
        item=Key("enum", choices=ROLES, noun="role"),
        noun="role",
    ),
    "all_roles": Key(
        "list",
        list(DEFAULT_ROLES),
        "the roles of a node that lists none",
        item=Key("enum", choices=ROLES, noun="role"),
        noun="role",
        where=PARAMETER,
    ),
    "network:prefix": Key(
        "int", 24, "prefix length of the nodes' subnet (pg_hba, etcd, VIP check)", low=8, high=30
    ),
    "timezone": Key("tz", "UTC", "the nodes' time zone, e.g. UTC or Europe/Berlin"),
    "time_sync:daemon": Key(
        "enum", "systemd-timesyncd", "time sync daemon (skipped in containers)", choices=TIME_SYNC_DAEMONS
    ),
    "time_sync:ntp_servers": _strings([], "NTP servers (empty: the distribution's)"),
    "proxy:apt": Key("url", "", "apt proxy for every node, e.g. http://10.0.0.1:3142"),
    "proxy:pip:index_url": Key("url", "", "pip index for the Airflow venv"),
    "proxy:pip:find_links": _strings([], "pip find-links (a wheelhouse)"),
    "proxy:pip:no_index": Key("bool", False, "install only from find_links"),
    "proxy:pip:proxy": Key("url", "", "HTTP(S) proxy for pip"),
    "proxy:pip:trusted_hosts": _strings([], "pip trusted hosts"),
    "base_packages": _strings(
        ["ca-certificates", "curl", "python3", "python3-venv", "tzdata"],
        "packages every node gets",
        where=PARAMETER,
    ),
    "vip:enabled": Key("bool", False, "a keepalived floating address following a healthy HAProxy"),
    "vip:address": Key("str", "", "the VIP: in the nodes' subnet, not a node's address"),
    "vip:interface": Key("str", "eth0", "network interface the VIP lives on"),
    "vip:virtual_router_id": Key("int", 51, "VRRP virtual router id", low=1, high=255),
    "secrets": Key("map", {}, "every secret, identical on all nodes", noun="secret"),
    "secrets:postgres_superuser_password": _secret(12, "PostgreSQL superuser (postgres)"),
    "secrets:postgres_replication_password": _secret(12, "PostgreSQL replication user"),
    "secrets:postgres_rewind_password": _secret(12, "PostgreSQL pg_rewind user"),
    "secrets:patroni_api_password": _secret(12, "Patroni REST API basic auth"),
    "secrets:airflow_db_password": _secret(12, "Airflow's PostgreSQL role"),
    "secrets:rabbitmq_password": _secret(12, "RabbitMQ user Airflow connects as"),
    "secrets:rabbitmq_admin_password": _secret(12, "RabbitMQ management admin"),
    "secrets:erlang_cookie": _secret(20, "RabbitMQ Erlang cookie"),
    "secrets:keepalived_password": _secret(
        4, "keepalived VRRP authentication (with vip:enabled; 4 to 8 characters)"
    ),
    "secrets:csync2_psk": _secret(64, "csync2 pre-shared key"),
    "secrets:fernet_key": _secret(44, "Airflow [core] fernet_key"),
    "secrets:api_secret_key": _secret(16, "Airflow [api] secret_key"),
    "secrets:jwt_secret": _secret(64, "Airflow [api_auth] jwt_secret"),
    "secrets:admin_password": _secret(8, "Airflow admin user"),
    "secrets:pgbackrest_cipher_pass": _secret(
        32,
        "pgBackRest repository encryption passphrase (with pgbackrest:enabled; never change it once a "
        "stanza exists: the repository could not be read any more)",
    ),
    "secrets:postgres_exporter_password": _secret(
        12, "PostgreSQL role of prometheus-postgres-exporter (with monitoring:enabled)"
    ),
    "secrets:pgbackrest_s3_key": _secret(
        4, "S3 access key of pgBackRest's repo2 (with pgbackrest:s3:enabled)"
    ),
    "secrets:pgbackrest_s3_key_secret": _secret(
        8, "S3 secret key of pgBackRest's repo2 (with pgbackrest:s3:enabled)"
    ),
    "etcd:pkg": _pkg("etcd-server", "the etcd server"),
    "etcd:client_pkg": _pkg("etcd-client", "etcdctl"),
    "etcd:service": Key("str", "etcd", "etcd's systemd unit", where=PARAMETER),
    "etcd:client_port": _port(2379, "etcd", "etcd client port"),
    "etcd:peer_port": _port(2380, "etcd", "etcd peer port"),
    "etcd:token": Key("str", "airflow-ha-etcd", "etcd initial cluster token"),
    "etcd:data_dir": _file("/var/lib/etcd/airflow-ha", "etcd member data"),
    "etcd:config_file": _file("/etc/default/etcd", "etcd's environment file"),
    "etcd:heartbeat_interval": _count(100, "etcd heartbeat interval", high=10000, unit="ms", where=PARAMETER),
    "etcd:election_timeout": _count(1000, "etcd election timeout", high=50000, unit="ms", where=PARAMETER),
    "etcd:wait_timeout": _count(300, "how long a state run waits for etcd quorum", unit="s", where=PARAMETER),
    "etcd:tls:enabled": Key(
        "bool", False, "https with client and peer certificate auth (choose it at first build)"
    ),
    "etcd:tls:ca_cert": Key("str", "", "PEM of the CA that signed the nodes' certificates"),
    "etcd:tls:certs": Key(
        "map", {}, "node -> {cert, key}: every db (and Airflow 3 dag_processor) node", noun="node"
    ),
    "etcd:tls:certs:*:cert": Key("str", None, "the node's PEM certificate (SANs: its address, 127.0.0.1)"),
    "etcd:tls:certs:*:key": Key("str", None, "the node's unencrypted PEM private key", secret=True),
    "etcd:tls:dir": _file("/etc/etcd/airflow-ha-tls", "where the CA, certificate and keys are written"),
    "postgresql:version": Key(
        "int", 15, "PostgreSQL major (os.yaml sets it per release)", low=10, high=40, where=PARAMETER
    ),
    "postgresql:port": _port(5432, "PostgreSQL"),
    "postgresql:database": _name("airflow", "Airflow's database"),
    "postgresql:user": _name("airflow", "Airflow's PostgreSQL role"),
    "postgresql:superuser": _name("postgres", "PostgreSQL superuser", where=PARAMETER),
    "postgresql:replication_user": _name("replicator", "replication user", where=PARAMETER),
    "postgresql:rewind_user": _name("rewind", "pg_rewind user", where=PARAMETER),
    "postgresql:data_dir": _file("/var/lib/postgresql/patroni", "PostgreSQL data dir (Patroni's)"),
    "postgresql:patroni:pkg": _pkg("patroni", "Patroni"),
    "postgresql:patroni:extra_pkgs": _strings(
        ["python3-etcd", "python3-psycopg2"], "Patroni's extra Debian packages", where=PARAMETER
    ),
    "postgresql:patroni:service": Key("str", "patroni", "Patroni's systemd unit", where=PARAMETER),
    "postgresql:patroni:patches": Key(
        "map",
        {},
        "fixes applied to the distribution's Patroni (os.yaml: Debian 12 and 13)",
        noun="patch",
        where=PARAMETER,
    ),
    "postgresql:patroni:patches:*:target": Key(
        "path", None, "the Patroni file the patch changes", where=PARAMETER
    ),
    "postgresql:patroni:patches:*:patch": Key(
        "str", None, "the patch, in airflow_ha/postgresql/files/", where=PARAMETER
    ),
    "postgresql:patroni:config_file": _file("/etc/patroni/config.yml", "Patroni's configuration"),
    "postgresql:patroni:rest_port": _port(8008, "Patroni REST API"),
    "postgresql:patroni:api_user": _name("patroni", "Patroni REST API user", where=PARAMETER),
    "postgresql:patroni:wait_timeout": _count(
        300, "how long a state run waits for a leader", unit="s", where=PARAMETER
    ),
    "postgresql:patroni:ttl": _count(
        20, "leader key TTL: a dead leader is replaced after about this", low=20, unit="s"
    ),
    "postgresql:patroni:loop_wait": _count(10, "Patroni loop interval", unit="s"),
    "postgresql:patroni:retry_timeout": _count(5, "DCS and PostgreSQL retry timeout", low=3, unit="s"),
    "postgresql:patroni:maximum_lag_on_failover": _count(
        1048576, "most lag a failover candidate may have", low=0, unit="bytes"
    ),
    "postgresql:patroni:use_pg_rewind": Key("bool", True, "rejoin an old leader with pg_rewind"),
    "postgresql:patroni:remove_data_directory_on_rewind_failure": Key(
        "bool",
        True,
        "a replica whose pg_rewind failed against a healthy leader is wiped and cloned again (else it stays "
        "stopped until an operator acts)",
    ),
    "postgresql:patroni:remove_data_directory_on_diverged_timelines": Key(
        "bool", True, "a replica on a diverged timeline that pg_rewind cannot bring back is cloned again"
    ),
    "postgresql:patroni:synchronous_mode": Key(
        "bool",
        True,
        "Patroni synchronous replication: a commit waits for one standby, so a failover never loses an "
        "acknowledged write",
    ),
    "postgresql:patroni:parameters": Key(
        "params",
        {
            "max_connections": 300,
            "wal_level": "replica",
            "hot_standby": "on",
            "max_wal_senders": 10,
            "max_replication_slots": 10,
            "wal_log_hints": "on",
        },
        "PostgreSQL parameters (name -> scalar), passed through to Patroni's DCS config",
    ),
    "haproxy:pkg": _pkg("haproxy", "HAProxy"),
    "haproxy:service": Key("str", "haproxy", "HAProxy's systemd unit", where=PARAMETER),
    "haproxy:config_file": _file("/etc/haproxy/haproxy.cfg", "HAProxy's configuration"),
    "haproxy:primary_port": _port(5000, "HAProxy primary", "-> the Patroni leader"),
    "haproxy:replica_port": _port(5001, "HAProxy replicas", "-> the replicas (round robin)"),
    "haproxy:stats_port": _port(7000, "HAProxy stats", "stats page on each node's address"),
    "haproxy:api_port": _port(
        8090, "HAProxy Airflow API", "-> every node's Airflow API server (execution API)"
    ),
    "haproxy:check:inter_ms": _ms(1000, "HAProxy health-check timing for the Patroni backends"),
    "haproxy:check:fastinter_ms": _ms(500, "HAProxy health-check timing for the Patroni backends"),
    "haproxy:check:downinter_ms": _ms(500, "HAProxy health-check timing for the Patroni backends"),
    "haproxy:check:rise": _count(1, "HAProxy health-check timing for the Patroni backends", high=10),
    "haproxy:check:fall": _count(2, "HAProxy health-check timing for the Patroni backends", high=10),
    "keepalived:pkg": _pkg("keepalived", "keepalived"),
    "keepalived:service": Key("str", "keepalived", "keepalived's systemd unit", where=PARAMETER),
    "keepalived:config_file": _file("/etc/keepalived/keepalived.conf", "keepalived's configuration"),
    "pgbouncer:enabled": Key("bool", False, "Airflow reaches HAProxy through a local PgBouncer"),
    "pgbouncer:pkg": _pkg("pgbouncer", "PgBouncer"),
    "pgbouncer:service": Key("str", "pgbouncer", "PgBouncer's systemd unit", where=PARAMETER),
    "pgbouncer:port": _port(6432, "PgBouncer"),
    "pgbouncer:pool_mode": Key(
        "enum", "transaction", "PgBouncer pool mode", choices=("session", "transaction", "statement")
    ),
    "pgbouncer:default_pool_size": _count(20, "server connections per user/database pair"),
    "pgbouncer:max_client_conn": _count(1000, "most client connections", where=PARAMETER),
    "pgbouncer:idle_transaction_timeout": _count(
        300,
        "close a server connection left idle in a transaction this long (Airflow can leak them)",
        unit="s",
    ),
    "pgbackrest:enabled": Key(
        "bool",
        False,
        "WAL archiving, backups and point-in-time restore with pgBackRest (one node holds role backup)",
    ),
    "pgbackrest:pkg": _pkg("pgbackrest", "pgBackRest"),
    "pgbackrest:service": Key(
        "str", "pgbackrest", "pgBackRest's TLS server unit (Debian's pgbackrest.service)", where=PARAMETER
    ),
    "pgbackrest:config_file": _file(
        "/etc/pgbackrest/pgbackrest.conf", "the database side (archive-push/get, restore) and the TLS server"
    ),
    "pgbackrest:repo_config_file": _file(
        "/etc/pgbackrest/repo.conf", "the repository side on the backup node (backup, expire, check, info)"
    ),
    "pgbackrest:repo_path": _file("/var/lib/pgbackrest", "repo1, on the backup node", where=PILLAR),
    "pgbackrest:spool_path": _file("/var/spool/pgbackrest", "asynchronous archiving's queue"),
    "pgbackrest:log_path": _file("/var/log/pgbackrest", "pgBackRest's log files"),
    "pgbackrest:state_dir": _file(
        "/var/lib/airflow_ha", "where the formula notes that pgbackrest check passed once"
    ),
    "pgbackrest:port": _port(8432, "pgBackRest TLS server"),
    "pgbackrest:process_max": _count(
        2, "processes for backup, restore and asynchronous archiving (each compresses)", high=32
    ),
    "pgbackrest:archive_async": Key(
        "bool", True, "asynchronous archive-push and archive-get (WAL in batches through the spool path)"
    ),
    "pgbackrest:archive_timeout": _count(
        60,
        "PostgreSQL archive_timeout: a WAL segment with writes is archived at least this often, which "
        "bounds what a restore to 'latest' can miss (0: off)",
        low=0,
        high=3600,
        unit="s",
    ),
    "pgbackrest:repo_probe_ms": _ms(
        500,
        "a standby's or a promotion's WAL fetch first checks that repo1's TLS server takes a TCP "
        "connection within this time; if not, it answers 'not archived' at once and PostgreSQL "
        "streams from the primary (pgBackRest alone waits ~2 min per file for a dead host)",
    ),
    "pgbackrest:archive_get_script": _file(
        "/usr/local/lib/airflow_ha/pgbackrest-archive-get",
        "PostgreSQL's restore_command on the db nodes (the probe, then pgbackrest archive-get)",
    ),
    "pgbackrest:backup_standby": Key(
        "bool", False, "read a backup's files from a standby (the primary still starts and stops it)"
    ),
    "pgbackrest:retention:full": _count(2, "full backups kept; older ones expire with their WAL", high=100),
    "pgbackrest:retention:diff": _count(6, "differential backups kept", high=100),
    "pgbackrest:retention:archive_type": Key(
        "enum",
        "full",
        "the backups archive counts: full ones, or full and differential ones",
        choices=("full", "diff"),
    ),
    "pgbackrest:retention:archive": _count(
        2,
        "backups (of archive_type) whose WAL is kept: point-in-time restores reach back to the oldest",
        high=100,
    ),
    "pgbackrest:schedule:full": Key(
        "str",
        "Sun *-*-* 01:00:00",
        "systemd OnCalendar of the full backup (on the backup node)",
        pattern=_CALENDAR,
        hint=_CALENDAR_HINT,
    ),
    "pgbackrest:schedule:diff": Key(
        "str",
        "Mon..Sat *-*-* 01:00:00",
        "systemd OnCalendar of the differential backup (on the backup node)",
        pattern=_CALENDAR,
        hint=_CALENDAR_HINT,
    ),
    "pgbackrest:tls:ca_cert": Key(
        "str", "", "PEM of the CA of pgBackRest's TLS certificates (empty: etcd:tls's are reused)"
    ),
    "pgbackrest:tls:certs": Key(
        "map", {}, "node -> {cert, key}: every db and backup node (empty: etcd:tls's)", noun="node"
    ),
    "pgbackrest:tls:certs:*:cert": Key(
        "str", None, "the node's PEM certificate (CN and a DNS SAN = its minion id; serverAuth, clientAuth)"
    ),
    "pgbackrest:tls:certs:*:key": Key("str", None, "the node's unencrypted PEM private key", secret=True),
    "pgbackrest:tls:dir": _file("/etc/pgbackrest/tls", "where the CA, certificate and key are written"),
    "pgbackrest:s3:enabled": Key("bool", False, "a second repository (repo2) on S3-compatible storage"),
    "pgbackrest:s3:endpoint": Key(
        "str", "", "S3 endpoint, e.g. s3.eu-west-1.amazonaws.com or minio.internal"
    ),
    "pgbackrest:s3:bucket": Key("str", "", "the bucket (it must exist)"),
    "pgbackrest:s3:region": Key(
        "str", "", "the bucket's region (MinIO: its configured region, e.g. us-east-1)"
    ),
    "pgbackrest:s3:path": _file("/airflow-ha", "repo2's folder in the bucket", where=PILLAR),
    "pgbackrest:s3:uri_style": Key(
        "enum",
        "host",
        "bucket in the host name (host) or in the path (path: MinIO)",
        choices=("host", "path"),
    ),
    "pgbackrest:s3:port": Key("int", 443, "the endpoint's HTTPS port", low=1, high=65535),
    "pgbackrest:s3:verify_tls": Key("bool", True, "check the endpoint's TLS certificate"),
    "rabbitmq:pkg": _pkg("rabbitmq-server", "RabbitMQ"),
    "rabbitmq:service": Key("str", "rabbitmq-server", "RabbitMQ's systemd unit", where=PARAMETER),
    "rabbitmq:port": _port(5672, "RabbitMQ AMQP"),
    "rabbitmq:management_port": _port(
        15672, "RabbitMQ management", "management UI/API port (node address only)"
    ),
    "rabbitmq:dist_port": _port(25672, "RabbitMQ distribution", "Erlang distribution port"),
    "rabbitmq:epmd_port": _port(4369, "epmd", where=PARAMETER),
    "rabbitmq:epmd_socket": Key("str", "epmd.socket", "epmd's systemd socket unit", where=PARAMETER),
    "rabbitmq:conf_dir": _file("/etc/rabbitmq", "RabbitMQ's configuration folder"),
    "rabbitmq:home": _file("/var/lib/rabbitmq", "RabbitMQ's home (the Erlang cookie)"),
    "rabbitmq:partition_handling": Key(
        "enum",
        "autoheal",
        "cluster_partition_handling: what a broker cut off from the others does",
        choices=("autoheal", "pause_minority", "ignore"),
    ),
    "rabbitmq:vhost": _name("airflow", "Airflow's vhost"),
    "rabbitmq:user": _name("airflow", "the user Airflow connects as"),
    "rabbitmq:admin_user": _name("admin", "management admin user"),
    "rabbitmq:queue_type": Key(
        "enum", "quorum", "Celery's queues: quorum (HA) or classic", choices=("quorum", "classic")
    ),
    "rabbitmq:broker_url_nodes": Key(
        "enum",
        "all",
        "broker_url lists every broker node (all) or this one (local)",
        choices=("all", "local"),
    ),
    "monitoring:enabled": Key(
        "bool",
        False,
        "Prometheus metrics: exporters on every node, Prometheus and its alert rules on `monitor` nodes",
    ),
    "monitoring:scrape_interval": _count(15, "how often Prometheus scrapes every target", high=300, unit="s"),
    "monitoring:retention_days": _count(15, "how long Prometheus keeps samples", high=3650, unit="d"),
    "monitoring:node_exporter:pkg": _pkg("prometheus-node-exporter", "the host exporter"),
    "monitoring:node_exporter:port": _port(9100, "node exporter"),
    "monitoring:node_exporter:textfile_dir": _file(
        "/var/lib/prometheus/node-exporter",
        "the node exporter's textfile collector folder (Debian's default)",
    ),
    "monitoring:postgres_exporter:pkg": _pkg("prometheus-postgres-exporter", "the PostgreSQL exporter"),
    "monitoring:postgres_exporter:port": _port(9187, "PostgreSQL exporter"),
    "monitoring:postgres_exporter:user": _name("airflow_ha_exporter", "its PostgreSQL role (pg_monitor)"),
    "monitoring:haproxy_port": _port(8405, "HAProxy Prometheus exporter", "HAProxy's built-in exporter"),
    "monitoring:rabbitmq_port": _port(15692, "RabbitMQ Prometheus", "the rabbitmq_prometheus plugin's port"),
    "monitoring:etcd_port": _port(2381, "etcd metrics", "etcd's plain-http listen-metrics URL"),
    "monitoring:airflow_port": _port(
        9112, "Airflow metrics", "Airflow's metrics in Prometheus' format (the formula's OTLP bridge)"
    ),
    "monitoring:otlp_port": _port(
        4318, "Airflow OTLP receiver", "where Airflow pushes its OpenTelemetry metrics (127.0.0.1)"
    ),
    "monitoring:formula_interval": _count(
        30, "how often the formula's own metrics (csync2, dag-processor) are written", high=600, unit="s"
    ),
    "monitoring:prometheus:pkg": _pkg("prometheus", "Prometheus"),
    "monitoring:prometheus:port": _port(9090, "Prometheus"),
    "monitoring:alertmanager:enabled": Key(
        "bool", False, "Alertmanager beside Prometheus on `monitor` nodes"
    ),
    "monitoring:alertmanager:pkg": _pkg("prometheus-alertmanager", "Alertmanager"),
    "monitoring:alertmanager:port": _port(9093, "Alertmanager"),
    "monitoring:alertmanager:cluster_port": _port(9094, "Alertmanager cluster"),
    "monitoring:alertmanager:webhook_url": Key(
        "url", "", "where Alertmanager posts alerts (a webhook receiver); empty: alerts stay in its UI"
    ),
    "monitoring:alerts:for_minutes": _count(
        1, "how long a condition must hold before its alert fires", high=60, unit="min"
    ),
    "monitoring:alerts:replica_lag_bytes": _count(
        16777216, "a replica lagging more than this alerts", unit="bytes"
    ),
    "monitoring:alerts:scheduler_stale_seconds": _count(
        120, "no scheduler heartbeat for this long alerts", low=30, unit="s"
    ),
    "monitoring:alerts:csync2_unsynced_seconds": _count(
        600, "files waiting to be pushed for this long alert", low=60, unit="s"
    ),
    "monitoring:alerts:backup_max_age_hours": _count(
        30, "the newest backup older than this alerts (with pgbackrest:enabled)", unit="h"
    ),
    "monitoring:alerts:disk_free_percent": _count(
        10, "a filesystem with less free space alerts", high=90, unit="%"
    ),
    "csync2:pkg": _pkg("csync2", "csync2"),
    "csync2:watcher_pkg": _pkg("inotify-tools", "the watcher's inotify tools"),
    "csync2:config_file": _file("/etc/csync2.cfg", "csync2's configuration"),
    "csync2:key_file": _file("/etc/csync2.key", "csync2's pre-shared key file"),
    "csync2:port": _port(30865, "csync2"),
    "csync2:extra_dirs": Key("list", [], "folders to sync besides dags/ and plugins/", item=Key("path")),
    "csync2:exclude": _strings(["*.pyc", "__pycache__", ".*.swp", "*~", ".#*"], "patterns never synced"),
    "csync2:auto": Key(
        "enum",
        "younger",
        "conflict policy (the loser is kept in backup_dir)",
        choices=CSYNC2_POLICIES,
        noun="a csync2 policy",
    ),
    "csync2:ssl_key": _file("/etc/csync2_ssl_key.pem", "this node's csync2 TLS key"),
    "csync2:ssl_cert": _file("/etc/csync2_ssl_cert.pem", "this node's csync2 TLS certificate"),
    "csync2:certs": Key(
        "map",
        {},
        "node -> {cert, key}: every node's csync2 certificate from pillar, so a rebuilt host keeps the "
        "one its peers pinned (else each node makes its own once)",
        noun="node",
    ),
    "csync2:certs:*:cert": Key(
        "str", None, "the node's self-signed PEM certificate (one subject on all nodes)"
    ),
    "csync2:certs:*:key": Key("str", None, "the node's unencrypted PEM private key", secret=True),
    "csync2:backup_dir": _file("/var/lib/csync2/backup", "where a conflict's losing version is kept"),
    "csync2:backup_generations": _count(3, "versions kept per file in backup_dir", where=PARAMETER),
    "csync2:catch_up_timeout": _count(
        300,
        "a node whose Airflow has not run yet (new or rebuilt) waits this long for its peers to push the "
        "synced folders before its Airflow units start",
        unit="s",
    ),
    "csync2:watcher:enabled": Key("bool", True, "inotify watcher: push changes within about a second"),
    "csync2:watcher:debounce_ms": _count(200, "push once the folder was quiet this long", unit="ms"),
    "csync2:watcher:max_delay_ms": _count(2000, "... but at the latest after this long", unit="ms"),
    "csync2:watcher:tie_break": Key(
        "bool", True, "a conflict both sides lost: the first node forces its copy"
    ),
    "csync2:periodic:method": Key(
        "enum", "timer", "the backstop full sync: systemd timer or cron", choices=("timer", "cron")
    ),
    "csync2:periodic:interval_minutes": _count(5, "minutes between full syncs", unit="min"),
    "airflow:version": Key(
        "str",
        "3.3.2",
        "Airflow version: 3.3.x or 2.11.x (a shipped constraints file or constraints_url)",
        pattern=r"^\d+\.\d+\.\d+$",
        hint="is not a version — use e.g. '3.3.2' (quote it in YAML)",
    ),
    "airflow:python": Key(
        "str",
        "3.11",
        "minor version of the node's python3, which the Airflow venv runs (per OS release)",
        pattern=r"^3\.\d+$",
        hint="is not a Python 3 minor version — use e.g. '3.11' (quote it in YAML)",
        where=PARAMETER,
    ),
    "airflow:constraints_shipped": _strings(
        ["3.3.2", "3.3.2-py3.13", "2.11.2"],
        "versions with a constraints file in airflow_ha/airflow/files/ (-pyX.Y: for that Python only)",
        where=INTERNAL,
    ),
    "airflow:constraints_url": Key(
        "url",
        "",
        "constraints file for an unshipped version (http(s):// or salt://)",
        schemes=("http", "https", "salt"),
    ),
    "airflow:user": _name("airflow", "system user running Airflow"),
    "airflow:group": _name("airflow", "its group", where=PARAMETER),
    "airflow:home": _file("/var/lib/airflow", "AIRFLOW_HOME (dags/ and plugins/ below it)", where=PILLAR),
    "airflow:venv": _file("/opt/airflow/venv", "the Airflow venv", where=PILLAR),
    "airflow:extras": _strings(["celery", "postgres", "fab"], "apache-airflow extras", where=PARAMETER),
    "airflow:api_port": _port(8080, "Airflow API server", "API server port (2.x: the webserver's)"),
    "airflow:flower_port": _port(5555, "Flower"),
    "airflow:scheduler_health_port": _port(8974, "Airflow scheduler health"),
    "airflow:worker_concurrency": _count(4, "Celery worker concurrency"),
    "airflow:parallelism": _count(32, "[core] parallelism"),
    "airflow:dag_refresh_interval": _count(
        10, "seconds between scans of the dags folder for new files", unit="s"
    ),
    "airflow:recovery:heartbeat_timeout": _count(
        40,
        "a running task that has not heartbeated for this long is failed and retried elsewhere "
        "([scheduler] task_instance_heartbeat_timeout; 2.x scheduler_zombie_task_threshold)",
        low=20,
        high=3600,
        unit="s",
    ),
    "airflow:recovery:detection_interval": _count(
        5, "how often the scheduler looks for such tasks", high=60, unit="s"
    ),
    "airflow:recovery:api_retry_window": _count(
        30,
        "a worker's or triggerer's call to the Execution API is retried, 3 s apart, for this long "
        "before it fails: it must outlast a database failover, or tasks on live nodes fail with it "
        "(3.x [workers] execution_api_retries)",
        low=10,
        high=600,
        unit="s",
    ),
    "airflow:recovery:max_failed_heartbeats": _count(
        2,
        "heartbeats failed in a row (each after api_retry_window of retries) before a worker "
        "stops its own task: a worker cut off from every API server stops it after about "
        "max_failed_heartbeats * (api_retry_window + 5) s (3.x [workers])",
        high=100,
    ),
    "airflow:api_restart_timeout": _count(
        300,
        "a changed config or venv restarts the API servers one node at a time (an etcd lock): "
        "each node waits at most this long for its turn and its server's health",
        low=30,
        high=3600,
        unit="s",
    ),
    "airflow:dag_processor:lock_ttl": _count(
        10, "lease of the dag-processor's etcd lock", unit="s", where=PARAMETER
    ),
    "airflow:admin:username": Key(
        "str",
        "admin",
        "the Airflow admin user (also Flower's basic-auth user)",
        pattern=r"^[^:,\s]+$",
        hint="use a plain name without ':', ',' or whitespace — it is also Flower's basic-auth user "
        "(user:password,...)",
    ),
    "airflow:admin:email": Key("str", "admin@example.com", "the admin's e-mail"),
    "airflow:admin:firstname": Key("str", "Airflow", "the admin's first name"),
    "airflow:admin:lastname": Key("str", "Admin", "the admin's last name"),
    "airflow:admin:role": Key("str", "Admin", "the admin's Airflow role", where=PARAMETER),
    "airflow:config": Key("cfg", {}, "any airflow.cfg key (section -> key -> scalar), applied last"),
    "lookup": Key(
        "map", {}, "overrides for parameters/ (package, service and path names); pillar wins", where=PARAMETER
    ),
}
