"""
airflow_ha's ONE secret policy: which airflow.cfg keys hold secrets, the mask
that replaces them, and how secrets are kept out of text and rendered SLS data.

Pure Python (standard library only) so that the same file serves three kinds of
reader:

- Salt modules and states, as a Salt ``_utils`` module (``saltutil.sync_all``
  syncs it): ``__utils__["ah_secrets.is_sensitive"](section, key)``,
  ``__utils__["ah_secrets.mask"](value)``, ``__utils__["ah_secrets.scrub"](text, secrets)``;
- the helper that runs inside the Airflow venv (``airflow-ha-helper``) and the
  csync2 watcher, which have no Salt: the formula ships this very file next to
  them (``salt://_utils/ah_secrets.py``) and they ``import ah_secrets`` from
  their own directory;
- the unit tests, which import it by path.

Secret references: a rendered SLS must not hold a secret (``state.show_sls``
and the master's job cache would show it). A value that embeds one is rendered
as a reference instead, ``@@pillar:airflow_ha:secrets:fernet_key@@`` (the
pillar value as is) or ``@@pillar_url:PATH@@`` (percent-encoded, for a URL's
user info); the state that writes the file resolves references from the
minion's pillar at run time (:func:`resolve`).
"""

import re
import urllib.parse

# ONE mask, everywhere a secret would otherwise be shown.
MASK = "***"

# Words that mark an airflow.cfg key (``section.key``, lower-case) as secret.
# Airflow's own list (configuration.sensitive_config_values) is covered:
# sql_alchemy_conn, sql_alchemy_engine_args, fernet_key, broker_url,
# result_backend, flower_basic_auth, smtp_password, secret_key, jwt_secret,
# [secrets] backend_kwargs, sentry_dsn. The broad words ("key", "conn") may
# mask a harmless key too; they never let a secret through.
SENSITIVE_WORDS = (
    "password",
    "secret",
    "fernet",
    "sql_alchemy_conn",
    "engine_args",
    "broker_url",
    "result_backend",
    "token",
    "key",
    "conn",
    "basic_auth",
    "backend_kwargs",
    "dsn",
)

# Secrets shorter than this are not replaced in free text (they would mangle it).
MIN_SCRUB_LEN = 3

_URL_CREDENTIALS = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")
_REF = re.compile(r"@@(pillar|pillar_url):([A-Za-z0-9_.:-]+)@@")


def is_sensitive(section, key):
    """True when the airflow.cfg key ``[section] key`` holds a secret."""
    low = f"{section}.{key}".lower()
    return any(word in low for word in SENSITIVE_WORDS)


def mask(value=MASK):
    """The mask for a secret value (``mask()``: the mask itself); None and ''
    stay as they are (nothing to hide)."""
    if value is None or value == "":
        return value
    return MASK


def mask_cfg(section, key, value, extra=()):
    """``value``, masked when ``[section] key`` is sensitive (or named in ``extra``
    as ``section.key``)."""
    if is_sensitive(section, key) or f"{section}.{key}".lower() in {e.lower() for e in extra}:
        return mask(value)
    return value


def scrub(text, secrets=()):
    """``text`` with every secret in ``secrets`` (raw and percent-encoded)
    replaced by the mask, and the password of any ``scheme://user:password@``
    URL masked."""
    text = "" if text is None else str(text)
    texts = (str(s) for s in secrets if isinstance(s, (str, int, float)) and not isinstance(s, bool))
    for secret in sorted(texts, key=len, reverse=True):
        if len(secret) < MIN_SCRUB_LEN:
            continue
        for form in {secret, urllib.parse.quote(secret, safe="")}:
            text = text.replace(form, MASK)
    return _URL_CREDENTIALS.sub(rf"\g<1>{MASK}@", text)


def pillar_get(pillar, path, default=None):
    """The value at ``path`` (``a:b:c``) in ``pillar``, or ``default``.

    Walks the dict itself: Salt 3008's ``pillar.get`` returns a mask for
    pillar strings outside template rendering (unless ``unmask=True``, which
    older Salt lacks). On a minion ``__pillar__`` is a loader context object
    that acts like a mapping but is no ``dict``: index it, do not type-check it."""
    node = pillar
    for part in str(path).split(":"):
        if isinstance(node, (str, bytes, list, tuple)) or not hasattr(node, "__getitem__"):
            return default
        try:
            node = node[part]
        except (KeyError, TypeError):
            return default
    return node


def to_refs(value, secrets, base="airflow_ha:secrets"):
    """``value`` (a string) with each secret of ``secrets`` (``{name: value}``)
    replaced by a reference to ``base:name``: the percent-encoded form by
    ``@@pillar_url:…@@``, the raw form by ``@@pillar:…@@``. Longest secrets first,
    so a secret containing another one is not split."""
    text = str(value)
    # a secret given as a YAML number is a secret too (its text is what lands in a file)
    items = sorted(
        (
            (n, str(s))
            for n, s in (secrets or {}).items()
            if isinstance(s, (str, int, float)) and not isinstance(s, bool) and len(str(s)) >= MIN_SCRUB_LEN
        ),
        key=lambda item: len(item[1]),
        reverse=True,
    )
    for name, secret in items:
        quoted = urllib.parse.quote(secret, safe="")
        if quoted != secret:
            text = text.replace(quoted, f"@@pillar_url:{base}:{name}@@")
        text = text.replace(secret, f"@@pillar:{base}:{name}@@")
    return text


def ref(path):
    """A reference to the whole pillar value at ``path``."""
    return f"@@pillar:{path}@@"


def has_refs(value):
    """True when ``value`` holds a secret reference."""
    return isinstance(value, str) and bool(_REF.search(value))


def resolve(value, pillar):
    """``value`` with every secret reference replaced by the pillar value it
    names. Raises ``KeyError`` naming the pillar path when one is not set."""
    if not isinstance(value, str):
        return value

    def one(match):
        kind, path = match.groups()
        found = pillar_get(pillar, path)
        if found is None or found == "":
            raise KeyError(path)
        found = str(found)
        return urllib.parse.quote(found, safe="") if kind == "pillar_url" else found

    return _REF.sub(one, value)
