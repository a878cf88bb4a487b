"""
Polling for the formula's wait states (Patroni leader, etcd quorum): they
change nothing, they hold the state run until a peer-dependent condition
holds. A Salt ``_utils`` module: ``__utils__["ah_wait.poll"]``,
``__utils__["ah_wait.check_args"]``.
"""

import time

from salt.exceptions import CommandExecutionError, SaltInvocationError


def check_args(timeout, interval):
    """(timeout, interval) as floats; SaltInvocationError when they make no sense."""
    try:
        timeout = float(timeout)
        interval = float(interval)
    except (TypeError, ValueError):
        raise SaltInvocationError(
            f"timeout and interval must be numbers of seconds, got {timeout!r}, {interval!r}"
        ) from None
    if timeout < 0 or interval <= 0:
        raise SaltInvocationError("timeout must be >= 0 and interval > 0")
    return timeout, interval


def poll(check, timeout, interval, once):
    """Call ``check()`` -> (ok, detail) until ok or timeout (a
    CommandExecutionError counts as not ok, its message as the detail);
    return (ok, detail, seconds waited). ``once``: ask one time (test mode)."""
    start = time.monotonic()
    while True:
        try:
            ok, detail = check()
        except CommandExecutionError as exc:
            ok, detail = False, str(exc)
        waited = time.monotonic() - start
        if ok or once or waited >= timeout:
            return ok, detail, waited
        time.sleep(min(interval, max(timeout - waited, 0.1)))
