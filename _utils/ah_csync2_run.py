"""
csync2 run on this minion, for the two files of the ``csync2`` execution
module (``_modules/csync2.py``: push, check, status; ``_modules/csync2_db.py``:
its database): the command line (one client at a time, the peers' port), a
failed run read from its exit code and stderr, the configuration file read,
this host's csync2 name and csync2's state folder.

Why this file: both module files drive the same binary under the same lock
and must fail with the same messages, and Salt's loader gives module files no
shared private helpers; ``cmd.run_all`` knows neither the lock nor csync2's
errors. A Salt ``_utils`` module (no loader dunders: the module passes
``cmd.run_all`` and its options in), reached as
``__utils__["ah_csync2_run.<name>"]``; it imports ``ah_csync2`` (the parsers)
from its own folder because Salt gives ``_utils`` no ``__utils__``.
"""

import importlib.util
import os
import socket

import salt.utils.path
from salt.exceptions import CommandExecutionError, SaltInvocationError

_spec = importlib.util.spec_from_file_location(
    "_airflow_ha_ah_csync2", os.path.join(os.path.dirname(os.path.abspath(__file__)), "ah_csync2.py")
)
ah_csync2 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ah_csync2)

DEFAULT_STATE_DIR = "/var/lib/csync2"
LOCK_FILE = "/run/lock/airflow_ha-csync2.lock"


def virtual(name):
    """A module file's ``__virtual__`` answer: ``name``, or (False, why) when
    the csync2 binary is missing."""
    if not salt.utils.path.which("csync2"):
        return (
            False,
            "csync2 module: the csync2 binary is not installed (state airflow_ha.csync2 installs it)",
        )
    return name


def state_dir(opts):
    """csync2's own database folder (built into the binary; a minion option
    ``csync2.state_dir`` for tests and odd builds)."""
    return opts.get("csync2.state_dir") or DEFAULT_STATE_DIR


def myname():
    """csync2's own name for this host: the lower-cased hostname (no -N is used)."""
    return socket.gethostname().lower()


def read_config(path):
    """csync2's configuration file ``path``, parsed (``ah_csync2.parse_config``)."""
    try:
        with open(path, encoding="utf-8") as fh:
            return ah_csync2.parse_config(fh.read())
    except OSError as exc:
        raise CommandExecutionError(
            f"csync2: cannot read {path}: {exc.strerror} (state airflow_ha.csync2 writes it)"
        ) from None


def call(name, *args):
    """``ah_csync2.<name>(*args)``, its ValueError (a bad argument) as
    SaltInvocationError."""
    try:
        return getattr(ah_csync2, name)(*args)
    except ValueError as exc:
        raise SaltInvocationError(str(exc)) from None


def run(run_all, args, port=None):
    """Run ``csync2 [-p PORT] ARGS`` with ``run_all`` (``cmd.run_all``); its
    return, with ``stdout`` and ``stderr`` always set."""
    # one csync2 client at a time on this node (the watcher and the timer
    # take the same lock): concurrent runs fight over the sqlite database
    cmd = ["flock", "-w", "120", LOCK_FILE, "csync2"] if salt.utils.path.which("flock") else ["csync2"]
    if port is not None:
        cmd += ["-p", str(port)]
    cmd += list(args)
    ret = run_all(cmd, python_shell=False, ignore_retcode=True, output_loglevel="debug")
    ret.setdefault("stdout", "")
    ret.setdefault("stderr", "")
    return ret


def check_ok(ret, what):
    """Raise when a csync2 run failed (exit code, or a configuration error on stderr)."""
    err = ah_csync2.config_error(ret["stderr"])
    if ret["retcode"] != 0 or err:
        detail = err or ret["stderr"].strip() or f"exit code {ret['retcode']}"
        raise CommandExecutionError(
            f"csync2 {what} failed: {detail} (check /etc/csync2.cfg and this host's name; "
            "salt-call csync2.status shows both)"
        )
