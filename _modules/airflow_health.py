"""
Health of the Airflow components on a node: ``airflow.health`` and
``airflow.wait_healthy`` (the orchestration's health gate).

Part of the ``airflow`` execution module (``_modules/airflow.py`` drives
Airflow through its venv helper; airflow.cfg handling is in
``_utils/ah_airflow_cfg.py``). Both files declare the virtual name ``airflow``:
Salt's loader looks a function ``airflow.x`` up in every module file whose name
contains ``airflow`` and merges what they define, so ``salt '*' airflow.health``
keeps its name. This file needs no Airflow import: it reads the node's
airflow.cfg, systemd and the components' HTTP probes.
"""

import json
import time

from salt.exceptions import CommandExecutionError

__virtualname__ = "airflow"


def __virtual__():
    return __virtualname__


def _http_json(url, timeout):
    """(status, decoded JSON or text) of GET ``url``; (status, None) for an
    HTTP error status, (None, reason) when it cannot be reached."""
    try:
        status, text = __utils__["ah_http.request"]("GET", url, timeout)
    except CommandExecutionError as exc:
        return None, str(exc)
    if status >= 400:
        return status, None
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def health(host=None, api_port=None, scheduler_port=None, flower_port=None, timeout=5, **kwargs):
    """
    Health of the Airflow components on this node: each unit's systemd state,
    plus the API server's health endpoint (3.x ``/api/v2/monitor/health``,
    2.x ``/health``), the scheduler's health server and Flower's
    ``/healthcheck``. Hosts and ports come from this node's airflow.cfg (what
    the components bind to) unless given. A component counts as healthy when
    its unit is active and its probe (if any) answers 200 (3.x API: every
    sub-system reports healthy). Units not enabled here are reported with
    ``"enabled": false`` and do not make the node unhealthy.

    CLI Example:

    .. code-block:: bash

        salt '*' airflow.health
        salt node1 airflow.health host=10.77.0.11 api_port=8080
    """
    cfg = __utils__["ah_airflow_cfg.read_cfg_file"](__salt__["airflow.config_file"](**kwargs))

    def pick(section, key, default):
        value = (cfg.get(section) or {}).get(key) or default
        return "127.0.0.1" if value in ("0.0.0.0", "::", "") else value

    major = int(str(__salt__["airflow.version"](**kwargs) or "3").split(".", 1)[0])
    components = __utils__["ah_airflow_cfg.all_components"](major)
    if major >= 3:
        api = (host or pick("api", "host", "127.0.0.1"), api_port or pick("api", "port", 8080))
    else:
        api = (
            host or pick("webserver", "web_server_host", "127.0.0.1"),
            api_port or pick("webserver", "web_server_port", 8080),
        )
    sched = (
        host or pick("scheduler", "scheduler_health_check_server_host", "127.0.0.1"),
        scheduler_port or pick("scheduler", "scheduler_health_check_server_port", 8974),
    )
    flower = (
        host or pick("celery", "flower_host", "127.0.0.1"),
        flower_port or pick("celery", "flower_port", 5555),
    )
    probes = {
        "api-server": f"http://{api[0]}:{api[1]}/api/v2/monitor/health",
        "webserver": f"http://{api[0]}:{api[1]}/health",
        "scheduler": f"http://{sched[0]}:{sched[1]}/health",
        "flower": f"http://{flower[0]}:{flower[1]}/healthcheck",
    }
    out = {}
    healthy = True
    for comp in components:
        unit = f"airflow-{comp}"
        enabled = bool(__salt__["service.enabled"](unit))
        active = bool(__salt__["service.status"](unit))
        entry = {"unit": unit, "enabled": enabled, "active": active}
        ok = active
        if comp in probes and active:
            status, body = _http_json(probes[comp], timeout)
            entry["http_status"] = status
            if isinstance(body, dict):
                entry["detail"] = body
            ok = status == 200
            if comp == "api-server" and isinstance(body, dict):
                ok = ok and all(
                    (v or {}).get("status") in ("healthy", None) for v in body.values() if isinstance(v, dict)
                )
        entry["healthy"] = ok
        if enabled and not ok:
            healthy = False
        out[comp] = entry
    out["healthy"] = healthy
    return out


def wait_healthy(timeout=300, interval=5, **kwargs):
    """
    Poll :py:func:`health` until every enabled component on this node is
    healthy; return the last report. Raises with the unhealthy components
    after ``timeout`` seconds (the orchestration's health gate).

    CLI Example:

    .. code-block:: bash

        salt '*' airflow.wait_healthy timeout=600
    """
    deadline = time.monotonic() + float(timeout)
    while True:
        report = health(**kwargs)
        if report.get("healthy"):
            return report
        if time.monotonic() >= deadline:
            bad = sorted(
                k for k, v in report.items() if isinstance(v, dict) and v["enabled"] and not v["healthy"]
            )
            raise CommandExecutionError(f"Airflow not healthy after {timeout} s: {', '.join(bad)}")
        time.sleep(float(interval))
