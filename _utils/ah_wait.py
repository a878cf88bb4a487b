"""
The one shape of the formula's wait states (Patroni leader, etcd quorum):
they change nothing, they hold the state run until a peer-dependent condition
holds, and in test mode they ask once and tell the truth (True when it holds,
None when the real run would wait). A Salt ``_utils`` module:
``__utils__["ah_wait.wait"]`` (and its parts ``poll``, ``check_args``).
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


def wait(name, check, timeout, interval, test, held, pending, failed, unusable=None):
    """The state return for ``name`` (``changes`` always empty) from polling
    ``check`` (see :func:`poll`); the comments come from ``held(detail)``,
    ``pending(detail, timeout)`` (test mode: the real run would wait) and
    ``failed(detail, waited)``. A SaltInvocationError raised by ``check`` (a
    file it needs cannot be loaded) does not wait: ``unusable(exc)`` says so;
    in test mode the result is None (the file may not be written yet)."""
    ret = {"name": name, "result": False, "changes": {}, "comment": ""}
    try:
        timeout, interval = check_args(timeout, interval)
    except SaltInvocationError as exc:
        ret.update(result=False, comment=str(exc))
        return ret
    try:
        ok, detail, waited = poll(check, timeout, interval, once=test)
    except SaltInvocationError as exc:
        text = unusable(exc) if unusable else str(exc)
        ret.update(
            result=None if test else False, comment=text + ("; the real run would wait" if test else "")
        )
        return ret
    if ok:
        ret.update(result=True, comment=held(detail))
    elif test:
        ret.update(result=None, comment=pending(detail, timeout))
    else:
        ret.update(result=False, comment=failed(detail, waited))
    return ret
