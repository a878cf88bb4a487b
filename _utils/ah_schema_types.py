"""
The vocabulary the airflow_ha pillar schema is written in: the :class:`Key`
class (one pillar key), its small constructors (``_port``, ``_secret``, ...),
who sets a key (``PILLAR``, ``PARAMETER``, ``FLAG``, ``INTERNAL``) and the
value sets and patterns the key table uses (roles, csync2 policies, names,
systemd calendar expressions).

Why this file: ``ah_schema.py`` held this, the key table and the checks in
902 lines, over the formula's ~600-line limit for a module. The table
(``ah_schema_keys.py``) is built from what is here; the checks
(``ah_schema.py``) read the table. ``ah_schema`` re-exports every public name
of this file, which is the way to reach them.

A ``_utils`` module: synced by ``saltutil.sync_all`` (it gives ``__utils__``
no function) and imported by path by ``ah_schema_keys.py``. Standard library
only, no imports.
"""

# What a node that lists no roles holds (the symmetric design).
DEFAULT_ROLES = ("db", "broker", "scheduler", "api", "worker", "triggerer", "dag_processor", "flower")
# backup: the pgBackRest repository host (repo1 and its TLS server), opt-in:
# one node holds it when pgbackrest:enabled. monitor: a Prometheus server
# (with monitoring:enabled; two nodes, so monitoring survives a node loss).
ROLES = (*DEFAULT_ROLES, "backup", "monitor")
# csync2 2.0 rejects anything else ("Unknown auto-setting"); it has no `first`.
CSYNC2_POLICIES = ("none", "younger", "older", "bigger", "smaller", "left", "right")
TIME_SYNC_DAEMONS = ("systemd-timesyncd", "chrony")

# Who sets a key: the user in pillar (documented in pillar.example), a
# platform parameter (package/service/path names: `airflow_ha:lookup`, or
# pillar, which wins), a run-time flag given on the command line, or the
# formula itself (refused in pillar and lookup).
PILLAR, PARAMETER, FLAG, INTERNAL = "pillar", "parameter", "flag", "internal"

_IDENT = r"^[A-Za-z_][A-Za-z0-9_-]{0,62}$"
_IDENT_HINT = "use letters, digits, '_' and '-'"
# A systemd OnCalendar expression: one line of the characters it uses.
_CALENDAR = r"^[A-Za-z0-9*:.,/~ +-]{1,80}$"
_CALENDAR_HINT = (
    "is not a systemd calendar expression — e.g. 'Sun *-*-* 01:00:00' or daily (check it with "
    "systemd-analyze calendar)"
)


class Key:
    """One pillar key. ``kind``: bool, int, port, str, enum, path, url, ipv4,
    tz, list, map (a mapping: fixed children, or any names with a ``*``
    child), params (name -> scalar) or cfg (section -> key -> scalar)."""

    __slots__ = (
        "kind",
        "default",
        "doc",
        "secret",
        "where",
        "choices",
        "low",
        "high",
        "pattern",
        "hint",
        "item",
        "noun",
        "unit",
        "min_len",
        "schemes",
    )

    def __init__(self, kind, default=None, doc="", **opts):
        self.kind, self.default, self.doc = kind, default, doc
        self.secret = opts.pop("secret", False)
        self.where = opts.pop("where", PILLAR)
        for name in self.__slots__[5:]:
            setattr(self, name, opts.pop(name, None))
        if opts:
            raise TypeError(f"unknown Key options {sorted(opts)}")


def _port(default, component, doc="", where=PILLAR):
    """A TCP port; ``component`` names it in a port-collision message."""
    return Key("port", default, doc or f"{component} port", low=1, high=65535, noun=component, where=where)


def _pkg(default, what):
    return Key("str", default, f"Debian package of {what}", where=PARAMETER)


def _file(default, doc, where=PARAMETER):
    return Key("path", default, doc, where=where)


def _secret(min_len, doc):
    return Key("str", None, doc, secret=True, min_len=min_len)


def _ms(default, doc):
    return Key("int", default, doc, low=100, high=10000, unit="ms")


def _count(default, doc, low=1, high=None, unit=None, where=PILLAR):
    return Key("int", default, doc, low=low, high=high, unit=unit, where=where)


def _strings(default, doc, where=PILLAR):
    return Key("list", default, doc, item=Key("str"), where=where)


def _name(default, doc, where=PILLAR):
    return Key("str", default, doc, pattern=_IDENT, hint=_IDENT_HINT, where=where)
