"""_utils/ah_secrets.py: the one list of sensitive words, the one mask,
scrubbing and secret references."""

import pytest
from testlib import load_module

ah_secrets = load_module("ah_secrets", "utils")
MASK = ah_secrets.MASK


@pytest.mark.parametrize(
    ("section", "key", "sensitive"),
    [
        ("core", "fernet_key", True),
        ("database", "sql_alchemy_conn", True),
        ("database", "sql_alchemy_engine_args", True),
        ("celery", "broker_url", True),
        ("celery", "result_backend", True),
        ("celery", "flower_basic_auth", True),
        ("api_auth", "jwt_secret", True),
        ("api", "secret_key", True),
        ("webserver", "secret_key", True),
        ("smtp", "smtp_password", True),
        ("secrets", "backend_kwargs", True),
        ("sentry", "sentry_dsn", True),
        ("core", "executor", False),
        ("celery", "worker_concurrency", False),
        ("api", "port", False),
    ],
)
def test_is_sensitive(section, key, sensitive):
    assert ah_secrets.is_sensitive(section, key) is sensitive
    assert ah_secrets.is_sensitive(section.upper(), key.upper()) is sensitive


def test_mask_keeps_nothing_to_hide_visible():
    assert ah_secrets.mask("s3cret") == MASK
    assert ah_secrets.mask(None) is None
    assert ah_secrets.mask("") == ""


def test_mask_cfg_masks_sensitive_and_extra_keys_only():
    assert ah_secrets.mask_cfg("core", "fernet_key", "abc") == MASK
    assert ah_secrets.mask_cfg("core", "executor", "CeleryExecutor") == "CeleryExecutor"
    assert ah_secrets.mask_cfg("custom", "thing", "v", extra=["Custom.Thing"]) == MASK


def test_scrub_masks_secrets_raw_encoded_and_url_passwords():
    text = "bad p@ss/word! and p%40ss%2Fword%21 at postgresql://u:dbpass@h/db; ok"
    out = ah_secrets.scrub(text, ["p@ss/word!", None, "ab"])
    assert "p@ss" not in out and "p%40ss" not in out and "dbpass" not in out
    assert "u:***@h" in out
    assert ah_secrets.scrub(None) == ""
    assert ah_secrets.scrub("ab ab", ["ab"]) == "ab ab"  # too short to replace
    assert ah_secrets.scrub("pin 123456 ok", [123456, True]) == "pin *** ok"


def test_pillar_get_walks_the_dict():
    pillar = {"a": {"b": {"c": "v"}}}
    assert ah_secrets.pillar_get(pillar, "a:b:c") == "v"
    assert ah_secrets.pillar_get(pillar, "a:x:c", "d") == "d"
    assert ah_secrets.pillar_get({"a": "str"}, "a:b") is None


def test_refs_round_trip_through_the_pillar():
    secrets = {"db": "p@ss/w", "mq": "plainsecret", "short": "x"}
    url = "postgresql+psycopg2://airflow:p%40ss%2Fw@127.0.0.1:5000/airflow"
    ref = ah_secrets.to_refs(url, secrets)
    assert "p%40ss" not in ref and ah_secrets.has_refs(ref)
    assert "@@pillar_url:airflow_ha:secrets:db@@" in ref
    pillar = {"airflow_ha": {"secrets": secrets}}
    assert ah_secrets.resolve(ref, pillar) == url
    raw = ah_secrets.to_refs("admin:plainsecret", secrets)
    assert raw == "admin:@@pillar:airflow_ha:secrets:mq@@"
    assert ah_secrets.resolve(raw, pillar) == "admin:plainsecret"
    assert ah_secrets.resolve(ah_secrets.ref("airflow_ha:secrets:db"), pillar) == "p@ss/w"
    assert ah_secrets.resolve(5, pillar) == 5
    assert not ah_secrets.has_refs("plain")


def test_resolve_names_the_missing_pillar_key():
    with pytest.raises(KeyError, match="airflow_ha:secrets:gone"):
        ah_secrets.resolve("x @@pillar:airflow_ha:secrets:gone@@", {})


def test_refs_cover_a_secret_given_as_a_number():
    ref = ah_secrets.to_refs("admin:123456789012", {"n": 123456789012, "flag": True})
    assert ref == "admin:@@pillar:airflow_ha:secrets:n@@"
    assert ah_secrets.resolve(ref, {"airflow_ha": {"secrets": {"n": 123456789012}}}) == "admin:123456789012"


def test_pillar_get_walks_salts_loader_context_too():
    """On a minion __pillar__ is a NamedLoaderContext (a mapping, not a dict):
    the lab's first apply of the secret references failed on every node."""
    from salt.loader.context import LoaderContext, NamedLoaderContext

    ctx = LoaderContext()
    pillar = NamedLoaderContext("__pillar__", ctx, {"airflow_ha": {"secrets": {"x": "s3cret-value"}}})
    assert not isinstance(pillar, dict)
    assert ah_secrets.pillar_get(pillar, "airflow_ha:secrets:x") == "s3cret-value"
    assert ah_secrets.pillar_get(pillar, "airflow_ha:secrets:missing", "d") == "d"
    assert ah_secrets.pillar_get(pillar, "airflow_ha:secrets:x:deeper", "d") == "d"
