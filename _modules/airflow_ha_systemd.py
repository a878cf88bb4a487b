"""
systemd start times for the airflow_ha formula: which files and units are
newer than a running unit (``airflow_ha_rabbitmq.restarted_if_stale``).

Why a custom module: Salt's ``service`` module tells whether a unit runs,
not since when. Comparing file mtimes with the unit's start time restarts a
daemon only when the running process has not read a file (not right after
the package's postinst started it with the files in place), and also
catches a change whose restart a failed earlier run lost.
``systemctl show -P InactiveExitTimestamp`` gives that start time.

CLI Example:

.. code-block:: bash

    salt node1 airflow_ha_systemd.stale rabbitmq-server '[/etc/rabbitmq/rabbitmq.conf]'
"""

import datetime
import os

from salt.exceptions import CommandExecutionError

__virtualname__ = "airflow_ha_systemd"


def __virtual__():
    return __virtualname__


def _unit_started(unit):
    """When ``unit`` last left the inactive state (epoch seconds), or None."""
    res = __salt__["cmd.run_all"](
        ["systemctl", "show", "--timestamp=us+utc", "-P", "InactiveExitTimestamp", unit],
        python_shell=False,
        ignore_retcode=True,
        output_loglevel="quiet",
    )
    text = (res.get("stdout") or "").strip()
    if res["retcode"] != 0 or not text or text in ("n/a", "0"):
        return None
    try:
        # "Wed 2026-11-25 12:26:23.123456 UTC"
        stamp = datetime.datetime.strptime(" ".join(text.split()[1:3]), "%Y-%m-%d %H:%M:%S.%f")
    except ValueError as exc:
        raise CommandExecutionError(f"systemctl show {unit}: unexpected timestamp {text!r}") from exc
    return stamp.replace(tzinfo=datetime.timezone.utc).timestamp()


def stale(unit, paths=(), units=()):
    """
    What changed since ``unit`` last started: the files among ``paths`` and
    the units among ``units`` (e.g. epmd.socket) that are newer than it.
    An empty list means the running unit already uses them all; a unit that is
    not running is never stale (starting it reads everything anew).

    CLI Example:

    .. code-block:: bash

        salt node1 airflow_ha_systemd.stale rabbitmq-server '[/etc/rabbitmq/rabbitmq.conf]'
    """
    if not __salt__["service.status"](unit):
        return []
    started = _unit_started(unit)
    if started is None:
        return []
    newer = []
    for path in paths:
        try:
            if os.stat(path).st_mtime > started:
                newer.append(path)
        except FileNotFoundError:
            continue
    for other in units:
        other_started = _unit_started(other)
        if other_started is not None and other_started > started:
            newer.append(other)
    return newer
