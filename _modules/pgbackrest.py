"""
Drive pgBackRest (the airflow_ha formula's backups and point-in-time restore).

Why custom: Salt ships no pgBackRest module. ``cmd.run`` could start a backup,
but the questions the formula, the restore orchestration and a health report
ask — "how old is the last good backup?", "when was the newest WAL archived?",
"can a restore reach this time?" — need ``pgbackrest info --output=json``
parsed, the newest WAL file's time read with ``repo-ls``, and pgBackRest's
error codes turned into a cause and a fix. The parsing lives in
``_utils/ah_pgbackrest.py`` (pure, tested on recorded shapes); this module
runs the commands.

Every command runs as ``postgres`` (pgBackRest's files, locks and logs belong
to it) with its options from the config file: secrets (the cipher passphrase,
S3 keys) never reach argv — pgBackRest refuses them on the command line and
prints them as ``<redacted>``. Functions raise ``CommandExecutionError`` with
pgBackRest's error and the fix.

The config defaults to the repository side (``/etc/pgbackrest/repo.conf``) on
the backup node, else the database side (``/etc/pgbackrest/pgbackrest.conf``);
the stanza to the only stanza section of that file.

CLI examples::

    salt node3 pgbackrest.info
    salt node3 pgbackrest.backup type=diff
    salt node3 pgbackrest.check
    salt node3 pgbackrest.restore_plan target_time='2024-05-01 12:00:00+00'
"""

import json
import os
import time

from salt.exceptions import CommandExecutionError, SaltInvocationError

__virtualname__ = "pgbackrest"

BINARY = "/usr/bin/pgbackrest"
REPO_CONFIG = "/etc/pgbackrest/repo.conf"
DB_CONFIG = "/etc/pgbackrest/pgbackrest.conf"
USER = "postgres"
TYPES = ("full", "diff", "incr")


def __virtual__():
    return __virtualname__


def _pgb(name):
    return __utils__[f"ah_pgbackrest.{name}"]


def _config(config):
    if config:
        return config
    return REPO_CONFIG if os.path.exists(REPO_CONFIG) else DB_CONFIG


def _stanza(stanza, config):
    if stanza:
        return stanza
    try:
        with open(config, encoding="utf-8") as fh:
            names = _pgb("stanza_sections")(fh.read())
    except OSError as exc:
        raise CommandExecutionError(
            f"cannot read {config} ({exc.strerror}): pgBackRest is not configured on this node — apply "
            "airflow_ha (pgbackrest:enabled) or pass config="
        ) from None
    if len(names) != 1:
        raise SaltInvocationError(f"{config} has stanzas {names or 'none'}: pass stanza=")
    return names[0]


def _run(args, config, timeout=None, what=None):
    """stdout of ``pgbackrest --config=CONFIG ARGS`` as postgres; raises with
    pgBackRest's error and its fix."""
    if not os.path.exists(BINARY):
        raise CommandExecutionError(f"{BINARY} is missing: install pgBackRest (apply airflow_ha.pgbackrest)")
    cmd = [BINARY, f"--config={config}", *args]
    res = __salt__["cmd.run_all"](
        cmd, runas=USER, python_shell=False, timeout=timeout, ignore_retcode=True, output_loglevel="debug"
    )
    if res.get("retcode") != 0:
        text = "\n".join(x for x in (res.get("stderr"), res.get("stdout")) if x)
        raise CommandExecutionError(
            f"pgbackrest {what or args[-1]} failed: {_pgb('explain')(text, res.get('retcode'))}"
        )
    return res.get("stdout") or ""


def _archive_times(stanza, config, archives):
    """{repo key: mtime of the newest archived WAL file}, read with repo-ls;
    a repository that cannot be listed is left out."""
    out = {}
    for entry in archives:
        wal, archive_id = entry.get("max"), entry.get("id")
        key = (entry.get("database") or {}).get("repo-key")
        if not wal or key is None or not archive_id:
            continue
        path = f"archive/{stanza}/{archive_id}/{wal[:16]}"
        try:
            text = _run(
                [f"--repo={key}", "--output=json", f"--filter=^{wal}", "repo-ls", path],
                config,
                what="repo-ls",
            )
        except CommandExecutionError:
            continue
        found = _pgb("newest_file_time")(text, wal)
        if found is not None:
            out[key] = max(found, out.get(key, 0))
    return out


def _info(stanza, config, archive_times=True):
    text = _run([f"--stanza={stanza}", "--output=json", "info"], config)
    archives = []
    if archive_times:
        try:
            raw = json.loads(text)
            archives = next((s.get("archive") or [] for s in raw if s.get("name") == stanza), [])
        except (ValueError, AttributeError, TypeError):
            archives = []  # parse_info below says what is wrong
    times = _archive_times(stanza, config, archives) if archives else {}
    try:
        return _pgb("parse_info")(text, stanza, time.time(), times)
    except ValueError as exc:
        raise CommandExecutionError(str(exc)) from None


def info(stanza=None, config=None, archive_times=True):
    """
    The stanza's backups and WAL, structured:

    - ``backups``: each with ``label``, ``type`` (full/diff/incr), ``repo``,
      ``start``/``stop`` (epoch; ``*_iso`` in UTC), ``seconds``, ``size``
      (database), ``repo_size`` (stored), ``wal_start``/``wal_stop``, ``error``;
    - ``wal``: per repository the archive id and ``min``/``max`` WAL;
    - ``last_backup``/``last_full``: the newest good one with its ``age`` (s);
    - ``last_archive``: the newest archived WAL, its time and ``age`` (s) —
      the monitoring hooks; ``restorable``: the window a restore can reach;
    - ``status``/``status_code`` (0 ok, 1 missing stanza path, 2 no valid
      backups, 3 missing stanza data), ``repos``, ``backup_running``.

    archive_times
        False: skip the ``repo-ls`` calls that time the newest WAL.

    CLI Example:

    .. code-block:: bash

        salt node3 pgbackrest.info
        salt node1 pgbackrest.info config=/etc/pgbackrest/pgbackrest.conf
    """
    config = _config(config)
    return _info(_stanza(stanza, config), config, archive_times)


def backup(type="full", stanza=None, config=None, repo=None, expire=True, standby=None, timeout=None):  # pylint: disable=redefined-builtin
    """
    Take a backup now and return it (label, type, repo, seconds, size, ...).
    Runs where the repository config is (the backup node); pgBackRest finds
    the primary itself and refuses to run twice at once (stanza lock).

    type
        full, diff or incr (pgBackRest makes a full one when no full exists).
    repo
        The repository (1, or 2 with S3); default: repo1.
    expire
        False: no automatic expire afterwards (the restore orchestration's
        backup must not expire what it restored from).
    standby
        False: read the files from the primary even with backup-standby in
        the config (right after a restore there is no standby yet).

    CLI Example:

    .. code-block:: bash

        salt node3 pgbackrest.backup
        salt node3 pgbackrest.backup type=diff repo=2
    """
    if type not in TYPES:
        raise SaltInvocationError(f"pgbackrest.backup: type must be one of {', '.join(TYPES)}, got {type!r}")
    config = _config(config)
    stanza = _stanza(stanza, config)
    before = {b["label"] for b in _info(stanza, config, False)["backups"]}
    args = [f"--stanza={stanza}", f"--type={type}"]
    args += [f"--repo={int(repo)}"] if repo is not None else []
    args += [] if expire else ["--no-expire-auto"]
    args += ["--no-backup-standby"] if standby is False else []
    started = time.monotonic()
    _run([*args, "backup"], config, timeout=timeout)
    took = time.monotonic() - started
    new = [b for b in _info(stanza, config, False)["backups"] if b["label"] not in before]
    if not new:
        raise CommandExecutionError(
            f"pgbackrest backup of {stanza} ended well but info lists no new backup — look at "
            "/var/log/pgbackrest on the backup node"
        )
    return {**new[-1], "took": round(took, 1)}


def check(stanza=None, config=None, timeout=None):
    """
    ``pgbackrest check``: the configuration of every repository is right and
    the primary's WAL reaches the archive (it switches WAL and waits for the
    segment). True, or raises with the cause.

    CLI Example:

    .. code-block:: bash

        salt node3 pgbackrest.check
    """
    config = _config(config)
    _run([f"--stanza={_stanza(stanza, config)}", "check"], config, timeout=timeout)
    return True


def stanza_create(stanza=None, config=None):
    """
    ``pgbackrest stanza-create`` on every repository (pgBackRest leaves an
    existing, matching stanza as it is). True, or raises with the cause.

    CLI Example:

    .. code-block:: bash

        salt node3 pgbackrest.stanza_create
    """
    config = _config(config)
    _run([f"--stanza={_stanza(stanza, config)}", "stanza-create"], config)
    return True


def restore_plan(target_time="latest", stanza=None, config=None, switch_wal=True):
    """
    What a restore to ``target_time`` ('latest', or a time with its zone)
    would start from, or a refusal (CommandExecutionError) when the target is
    outside the window the repository covers: before the end of the oldest
    backup, or after the newest archived WAL. Changes nothing in the
    repository. With ``switch_wal`` it first runs ``check`` (the primary
    switches WAL and waits until the segment is archived), so the newest WAL
    is as recent as it can be; a cluster that is down cannot, which the plan
    says (``wal_switch``).

    CLI Example:

    .. code-block:: bash

        salt node3 pgbackrest.restore_plan target_time='2024-05-01 12:00:00+00'
    """
    try:
        _pgb("parse_target_time")(target_time)
    except ValueError as exc:
        raise SaltInvocationError(f"pgbackrest.restore_plan: {exc}") from None
    config = _config(config)
    stanza = _stanza(stanza, config)
    switched = "forced (pgbackrest check passed)"
    if switch_wal:
        try:
            check(stanza, config)
        except CommandExecutionError as exc:
            switched = f"not forced: {exc}"
    else:
        switched = "not asked"
    data = _info(stanza, config)
    try:
        found = _pgb("plan")(data, target_time)
    except ValueError as exc:
        raise CommandExecutionError(f"refused: a restore of {stanza} to {target_time}: {exc}") from None
    return {**found, "wal_switch": switched, "last_archive": data["last_archive"]}
