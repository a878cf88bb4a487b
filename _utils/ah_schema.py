"""
The airflow_ha pillar schema: every key, as data, and the check against it.

Why this schema: the pillar's keys, types, defaults, allowed values, ranges and
which of them are secrets used to be spread over a hand-written validator, a
README table and ``parameters/defaults.yaml``; a key misspelled below the top
level was silently ignored. Here each key is declared once (:data:`KEYS`), and
the rest is computed from it: :func:`check` (types, enums, ranges, unknown keys
with a "did you mean", at every depth), the README's pillar table
(test/tools/pillar_table.py) and the secret list. Cross-key rules (port collisions,
Patroni timing, nodes and roles, certificates) are functions in
``ah_validate.py`` and ``ah_validate_tls.py``. Salt has no schema for pillar
data (``salt.utils.schema`` describes configuration forms, not validation of
nested user data with key paths), and no dependency beyond the standard library
is assumed on a minion.

Three files, one public face: this one (the checks, the tables derived from
the keys, what the cross-key rules read) re-exports the names of
``ah_schema_keys.py`` (:data:`KEYS`, the table) and ``ah_schema_types.py``
(:class:`Key`, its constructors, ``ROLES``, ``PILLAR``...), which the formula's
~600-line limit for a module split off; other code reads them all here
(``ah_schema.KEYS``, ``ah_schema.ROLES``), never from those two.

Defaults: ``airflow_ha/parameters/defaults.yaml`` stays the file Salt reads
(map.jinja imports it through the fileserver, template-formula's layout, and it
carries the measured-fact comments operators read); the ``default`` of each key
here must equal it, key by key, which a unit test enforces
(test/unit/utils/test_ah_schema.py). The lead's keys land in that file, so a
generated file would be rewritten under everyone's feet; one test instead of a
generator keeps both honest.

A ``_utils`` module: synced by ``saltutil.sync_all``, reached from modules as
``__utils__["ah_schema.<function>"]`` and imported by path by its siblings and
the unit tests. Standard library only.
"""

import difflib
import importlib.util
import ipaddress
import os
import re
import urllib.parse

try:  # Python >= 3.9; the zone list is empty where tzdata is not installed
    import zoneinfo
except ImportError:  # pragma: no cover
    zoneinfo = None

# The key table, and through it its vocabulary (one load: the Key class of
# every entry of KEYS is the Key re-exported here).
_keys_spec = importlib.util.spec_from_file_location(
    "_airflow_ha_ah_schema_keys",
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "ah_schema_keys.py"),
)
_keys = importlib.util.module_from_spec(_keys_spec)
_keys_spec.loader.exec_module(_keys)
KEYS = _keys.KEYS
Key = _keys.Key
DEFAULT_ROLES, ROLES = _keys.DEFAULT_ROLES, _keys.ROLES
CSYNC2_POLICIES, TIME_SYNC_DAEMONS = _keys.CSYNC2_POLICIES, _keys.TIME_SYNC_DAEMONS
PILLAR, PARAMETER, FLAG, INTERNAL = _keys.PILLAR, _keys.PARAMETER, _keys.FLAG, _keys.INTERNAL

# Roles the cluster cannot work without. dag_processor is needed by Airflow 3
# only (2.x schedulers parse DAGs themselves); flower is optional.
REQUIRED_ROLES = ("db", "broker", "scheduler", "api", "worker", "triggerer")
SUPPORTED_AIRFLOW = ("3.3", "2.11")
# The Python minor versions each supported Airflow release runs on (its
# Requires-Python and classifiers): Airflow 2.11 stops at 3.12, so it cannot
# run on Debian 13's python3 (3.13).
AIRFLOW_PYTHON = {"3.3": ((3, 10), (3, 13)), "2.11": ((3, 9), (3, 12))}
# The one mask lives in ah_secrets (the secret policy, also shipped to the
# venv helper and the csync2 watcher); the settings mask with the same string.
_secrets_spec = importlib.util.spec_from_file_location(
    "_airflow_ha_ah_secrets", os.path.join(os.path.dirname(os.path.abspath(__file__)), "ah_secrets.py")
)
_secrets = importlib.util.module_from_spec(_secrets_spec)
_secrets_spec.loader.exec_module(_secrets)
MASK = _secrets.MASK


def _split(path):
    return tuple(path.split(":"))


SPECS = {_split(p): k for p, k in KEYS.items()}
# Mapping path -> its child names (implied by the paths below it).
CHILDREN = {}
for _path in SPECS:
    for _i in range(len(_path)):
        CHILDREN.setdefault(_path[:_i], [])
        if _path[_i] not in CHILDREN[_path[:_i]]:
            CHILDREN[_path[:_i]].append(_path[_i])
SECRETS = {p[-1]: k for p, k in SPECS.items() if p[0] == "secrets" and len(p) == 2}
# Only needed when the feature using it is on: secret -> the switches (all true).
OPTIONAL_SECRETS = {
    "postgres_exporter_password": ("monitoring:enabled",),
    "keepalived_password": ("vip:enabled",),
    "pgbackrest_cipher_pass": ("pgbackrest:enabled",),
    "pgbackrest_s3_key": ("pgbackrest:enabled", "pgbackrest:s3:enabled"),
    "pgbackrest_s3_key_secret": ("pgbackrest:enabled", "pgbackrest:s3:enabled"),
}


def _show(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:40] + "...'"


def _nearest(name, names):
    close = difflib.get_close_matches(str(name), [n for n in names if n != "*"], n=1, cutoff=0.6)
    return f"did you mean {close[0]}?" if close else ""


def _unit(key):
    return f" ({key.unit})" if key.unit else ""


def _int_problem(key, value):
    if isinstance(value, int) and not isinstance(value, bool):
        if (key.low is None or value >= key.low) and (key.high is None or value <= key.high):
            return None
    if key.kind == "port":
        return f"{_show(value)} is not a TCP port (1..65535)"
    if key.high is not None:
        return f"{_show(value)} must be an integer from {key.low} to {key.high}{_unit(key)}"
    if key.low == 1:
        return f"{_show(value)} must be a positive integer{_unit(key)}"
    return f"{_show(value)} must be an integer of at least {key.low}{_unit(key)}"


def _is_url(value, schemes=("http", "https")):
    if not isinstance(value, str):
        return False
    parsed = urllib.parse.urlparse(value)
    return parsed.scheme in schemes and bool(parsed.netloc or parsed.scheme == "salt")


def absolute_dir(value):
    """An absolute path other than / (a folder the formula owns or fills)."""
    return isinstance(value, str) and value.startswith("/") and value.rstrip("/") != ""


_SCALARS = (str, int, float, bool)
_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
_CFG_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _passthrough(path, value, depth):
    """Shape of a map handed to a daemon as is: names -> scalars (depth 1),
    or section -> name -> scalar (depth 2). Values are not guessed."""
    example = "{core: {load_examples: 'False'}}" if depth == 2 else "{max_connections: 300}"
    if not isinstance(value, dict):
        return [f"{path}: expected a mapping, got {type(value).__name__} — e.g. {example}"]
    errors = []
    name_re = _CFG_NAME if depth == 2 else _PARAM_NAME
    for name, item in value.items():
        sub = f"{path}:{name}"
        if not isinstance(name, str) or not name_re.match(name):
            errors.append(f"{sub}: {_show(name)} is not a valid name — use letters, digits and '_'")
        if depth == 2:
            if not isinstance(item, dict):
                errors.append(
                    f"{sub}: expected a mapping key -> value (airflow.cfg section -> key -> value), "
                    f"got {type(item).__name__} — e.g. {example}"
                )
            else:
                errors.extend(_passthrough(sub, item, 1))
        elif not isinstance(item, _SCALARS):
            errors.append(
                f"{sub}: expected a string, number or boolean, got {type(item).__name__} — "
                "give the value as the daemon's configuration file spells it"
            )
    return errors


def _zones():
    try:
        return zoneinfo.available_timezones() if zoneinfo else set()
    except Exception:  # pylint: disable=broad-except  # pragma: no cover
        return set()


def _leaf(key, path, value):
    """The problems of one value (never the value itself for a secret)."""
    kind = key.kind
    if kind in ("params", "cfg"):
        return _passthrough(path, value, 2 if kind == "cfg" else 1)
    if kind == "list":
        if not isinstance(value, list):
            return [
                f"{path}: expected a list{' of ' + key.noun + ' names' if key.noun else ''}, "
                f"got {type(value).__name__}"
            ]
        return [e for item in value for e in _leaf(key.item, path, item)]
    problem = None
    if kind == "bool" and not isinstance(value, bool):
        problem = f"{_show(value)} is not a boolean — use true or false"
    elif kind in ("int", "port"):
        problem = _int_problem(key, value)
    elif kind == "enum" and value not in key.choices:
        hint = _nearest(value, key.choices)
        if key.noun == "role":
            problem = f"unknown role {_show(value)} — roles are {', '.join(key.choices)}"
        else:
            problem = f"{_show(value)} is not {key.noun or 'supported'} — use one of {', '.join(key.choices)}"
        problem += f" ({hint})" if hint else ""
    elif kind in ("str", "path", "url", "ipv4", "tz") and not isinstance(value, str):
        problem = f"must be a string, got {type(value).__name__} — quote it in YAML"
    elif kind == "str" and key.pattern and not re.match(key.pattern, value):
        problem = (
            f"{_show(value)} {key.hint}" if key.hint.startswith("is ") else f"{_show(value)} — {key.hint}"
        )
    elif kind == "path" and not absolute_dir(value):
        problem = f"{_show(value)} must be an absolute path (not /)"
    elif kind == "url" and value and not _is_url(value, key.schemes or ("http", "https")):
        schemes = "an http(s) or salt:// URL" if key.schemes else "an http(s) URL, e.g. http://10.0.0.1:3142"
        problem = f"{_show(value)} is not {schemes}"
    elif kind == "ipv4":
        try:
            ipaddress.IPv4Address(value)
        except ValueError:
            problem = f"{_show(value)} is not an IPv4 address — {key.hint or 'e.g. 10.0.0.11'}"
    elif kind == "tz":
        zones = _zones()
        if not re.match(r"^[A-Za-z0-9_+\-/]+$", value) or (zones and value not in zones):
            hint = _nearest(value, zones)
            problem = f"{_show(value)} is not a time zone name — e.g. UTC or Europe/Berlin" + (
                f" ({hint})" if hint else ""
            )
    if problem and key.secret:
        problem = problem.replace(_show(value), "the value")
    return [f"{path}: {problem}"] if problem else []


def check(tree, prefix="airflow_ha", node=(), formula=False):
    """
    Every problem of ``tree`` (one layer of the pillar: the ``airflow_ha``
    mapping without ``lookup``, or ``lookup``'s content) against the schema,
    each starting with its full key path. Returns ``(errors, shape_ok)``:
    ``shape_ok`` is False when a mapping was not a mapping (the merged data is
    then not trustworthy for the cross-key rules). ``formula``: the tree is
    the formula's own (defaults.yaml), where internal keys belong.
    """
    errors, shape_ok = [], True
    names = CHILDREN.get(node, [])
    parent = SPECS.get(node)
    for name, value in tree.items():
        path = f"{prefix}:{name}"
        child = node + ((name,) if name in names else ("*",) if "*" in names else (None,))
        key = SPECS.get(child)
        if child[-1] is None:
            hint = _nearest(name, names)
            noun = parent.noun if parent is not None and parent.noun else "key"
            errors.append(
                f"{path}: unknown {noun} — {hint + ' ' if hint else ''}remove it or fix the spelling "
                f"(known: {', '.join(n for n in names if n != '*')})"
            )
        elif key is not None and key.where == INTERNAL and not formula:
            errors.append(f"{path}: set by the formula itself — remove it")
        elif child in CHILDREN:
            if not isinstance(value, dict):
                errors.append(f"{path}: expected a mapping, got {type(value).__name__} — see pillar.example")
                shape_ok = False
                continue
            sub_errors, sub_ok = check(value, path, child, formula)
            errors.extend(sub_errors)
            shape_ok = shape_ok and sub_ok
        elif key.kind == "map" and not isinstance(value, dict):
            errors.append(f"{path}: expected a mapping, got {type(value).__name__} — see pillar.example")
            shape_ok = False
        elif value is not None or key.default is not None:
            errors.extend(_leaf(key, path, value))
    return errors, shape_ok
