"""
The airflow_ha data read by key path and by node: a value at a colon path, a
node's roles, the nodes that need an etcd certificate, pgBackRest's nodes and
where its certificates come from.

Why this file: the validator's rules (``ah_validate``, ``ah_validate_tls``)
and the settings (``ah_settings``: this node's roles, the etcd TLS paths,
pgBackRest's parts) must agree on which node holds what, so both read it
here. Salt's ``pillar.get`` reads the raw pillar, not the merged data with
``all_roles`` applied.

A ``_utils`` module (no loader dunders; everything comes in as arguments),
imported by path by its siblings, as it imports ``ah_schema`` (the roles):
Salt gives ``_utils`` no ``__utils__``.
"""

import importlib.util
import os

_spec = importlib.util.spec_from_file_location(
    "_airflow_ha_ah_schema", os.path.join(os.path.dirname(os.path.abspath(__file__)), "ah_schema.py")
)
schema = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(schema)


def get(data, path, default=None):
    """``data``'s value at a colon path, or ``default``."""
    node = data
    for part in path.split(":"):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def node_roles(ah, node):
    """A node's roles: its own list, else ``all_roles``."""
    roles = node.get("roles") if isinstance(node, dict) else None
    return list(ah.get("all_roles") or schema.ROLES) if roles is None else roles


def etcd_tls_nodes(ah):
    """Nodes that talk to etcd and so need a certificate with TLS on: the db
    nodes (etcd members, Patroni) and, on Airflow 3, the dag_processor nodes
    (etcdctl lock)."""
    nodes = ah.get("nodes") if isinstance(ah.get("nodes"), dict) else {}
    airflow3 = str(get(ah, "airflow:version", "")).startswith("3.")
    out = {}
    for node_id, node in nodes.items():
        roles = node_roles(ah, node)
        roles = roles if isinstance(roles, list) else []
        if "db" in roles or (airflow3 and "dag_processor" in roles):
            out[node_id] = {"address": str(node.get("address")), "server": "db" in roles}
    return out


def pgbackrest_nodes(ah):
    """The nodes pgBackRest runs on, each with its part: the db nodes (their
    PostgreSQL archives and restores) and the backup node (the repository)."""
    out = {}
    for node_id, node in (ah.get("nodes") or {}).items():
        roles = node_roles(ah, node)
        roles = roles if isinstance(roles, list) else []
        if "db" in roles or "backup" in roles:
            out[node_id] = {"db": "db" in roles, "backup": "backup" in roles}
    return out


def pgbackrest_tls_source(ah):
    """Where pgBackRest's CA and node certificates come from: its own
    (pgbackrest:tls) or, when that has no certificates, etcd:tls's."""
    return "pgbackrest" if get(ah, "pgbackrest:tls:certs") else "etcd"
