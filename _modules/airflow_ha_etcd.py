"""
Read etcd's health (etcd is Patroni's DCS in the airflow_ha formula).

Why custom: Salt's own etcd module (``salt.modules.etcd_mod``) reads and
writes keys through the python-etcd v2 client; it does not answer "does this
member have a leader, i.e. does the cluster have quorum?", which the formula
waits for before starting Patroni. That is etcd's ``GET /health``.

Named ``airflow_ha_etcd``, not ``etcd``: Salt core already owns the virtual
name ``etcd`` (``salt.modules.etcd_mod`` and ``salt.states.etcd_mod``), so a
custom ``etcd`` module would collide with it (README: "Module names").

CLI Example:

.. code-block:: bash

    salt node1 airflow_ha_etcd.health
    salt node1 airflow_ha_etcd.health https://127.0.0.1:2379 cacert=/etc/etcd/airflow-ha-tls/ca.crt
"""

import json

from salt.exceptions import CommandExecutionError, SaltInvocationError

__virtualname__ = "airflow_ha_etcd"


def __virtual__():
    return __virtualname__


def _http_get(url, timeout, context=None):
    """GET ``url``; return (status, body text). Raises CommandExecutionError."""
    return __utils__["ah_http.request"]("GET", url, timeout, context=context)


def health(url="http://127.0.0.1:2379", timeout=5, cacert=None, cert=None, key=None):
    """
    Return True when the etcd member at ``url`` reports ``{"health": "true"}``
    on ``/health`` (it has a leader, i.e. the cluster has quorum), False when
    it answers that it is unhealthy. Raises when it cannot be reached.

    With etcd's TLS on (``https://``): ``cacert`` is the CA file that signed
    the member's certificate (default: the system CAs), ``cert``/``key`` the
    client certificate and key files etcd asks for (client cert auth).

    CLI Example:

    .. code-block:: bash

        salt node1 airflow_ha_etcd.health http://10.77.0.11:2379
        salt node1 airflow_ha_etcd.health https://127.0.0.1:2379 \\
            cacert=/etc/etcd/airflow-ha-tls/ca.crt cert=/etc/etcd/airflow-ha-tls/node.crt \\
            key=/etc/etcd/airflow-ha-tls/etcd.key
    """
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise SaltInvocationError(f"airflow_ha_etcd.health: url must be http(s)://..., got {url!r}")
    context = None
    if cacert or cert or key:
        if not url.startswith("https://"):
            raise SaltInvocationError(
                f"airflow_ha_etcd.health: cacert/cert/key need an https:// url, got {url!r}"
            )
        context = __utils__["ah_http.tls_context"](cacert, cert, key)
    status, body = _http_get(url.rstrip("/") + "/health", timeout, context=context)
    try:
        data = json.loads(body)
    except ValueError:
        raise CommandExecutionError(
            f"{url}/health answered HTTP {status} with a body that is not JSON: {body[:200]!r}"
        ) from None
    return status == 200 and str(data.get("health")).lower() == "true"
