"""
Small HTTP helpers for the formula's modules that read REST APIs (Patroni,
etcd, Airflow's health endpoints): one request function and one TLS context
builder, so that timeouts, error messages and client-certificate handling are
the same everywhere.

A Salt ``_utils`` module (``saltutil.sync_all`` syncs it), reached as
``__utils__["ah_http.request"]`` / ``__utils__["ah_http.tls_context"]``.
"""

import base64
import json
import ssl
import urllib.error
import urllib.request

from salt.exceptions import CommandExecutionError, SaltInvocationError


def request(method, url, timeout, body=None, auth=None, context=None):
    """``method`` ``url`` (JSON ``body``, basic ``auth`` (user, password), TLS
    ``context`` an ssl.SSLContext); return (status, text). An HTTP error
    status is an answer (Patroni says "no" with 503); an unreachable URL
    raises CommandExecutionError naming it and the cause (never ``auth``)."""
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as resp:  # nosec B310
            return resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CommandExecutionError(f"cannot reach {url}: {reason}") from None


def tls_context(cacert=None, cert=None, key=None):
    """An ssl context trusting ``cacert`` (else the system CAs) and presenting
    the client certificate ``cert``/``key`` when given. Raises
    SaltInvocationError naming the file it cannot load (never its content)."""
    if key and not cert:
        raise SaltInvocationError("a client key needs its certificate: pass cert too")
    try:
        ctx = ssl.create_default_context(cafile=cacert or None)
    except (OSError, ssl.SSLError) as exc:
        raise SaltInvocationError(f"cannot load the CA certificate {cacert}: {exc}") from None
    if cert:
        try:
            ctx.load_cert_chain(cert, key or None)
        except (OSError, ssl.SSLError) as exc:
            raise SaltInvocationError(
                f"cannot load the client certificate {cert} / key {key or cert}: {exc}"
            ) from None
    return ctx
