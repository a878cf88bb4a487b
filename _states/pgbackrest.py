"""
pgBackRest states for the airflow_ha formula, run on the backup node (the
repository host): the stanza exists on every repository, ``pgbackrest check``
passed once for this stanza and PostgreSQL cluster, and each repository
holds a full backup (a point-in-time restore needs one to start from).

Why custom: ``cmd.run`` with ``unless`` would run ``stanza-create`` or a
backup, but could not say in ``test=True`` what would change without doing
it, nor re-read pgBackRest's answer to verify the change. Each state reads
``pgbackrest.info`` (the execution module), compares, reports the same
``changes`` in test mode as in a real run, acts, and reads again. A
pgBackRest that cannot be asked yet (a first ``test=True`` run: not
installed, no config) makes the state ``None`` in test mode: the real run
would act. No secret is ever in ``changes`` or ``comment``: the module's
messages are pgBackRest's, which redacts them.
"""

import json
import os

from salt.exceptions import CommandExecutionError, SaltInvocationError

__virtualname__ = "pgbackrest"


def __virtual__():
    ok = "pgbackrest.info" in __salt__
    return __virtualname__ if ok else (False, "pgbackrest state: the pgbackrest module is not available")


def _ret(name, result=False):
    """The one return of these states; ``result`` False until a path sets it."""
    return {"name": name, "result": result, "changes": {}, "comment": ""}


def _read(name, config, ret):
    """pgbackrest.info, or None with ``ret`` filled in (test mode: None)."""
    try:
        return __salt__["pgbackrest.info"](stanza=name, config=config, archive_times=False)
    except (CommandExecutionError, SaltInvocationError) as exc:
        test = bool(__opts__["test"])
        ret["result"] = None if test else False
        ret["comment"] = f"pgBackRest cannot be asked about stanza {name}: {exc}" + (
            "; the real run would go ahead once it is installed and configured" if test else ""
        )
        return None


def stanza_present(name, config=None):
    """
    The stanza ``name`` exists on every repository of ``config`` (the
    repository side's config): ``stanza-create`` when one lacks it.

    .. code-block:: yaml

        airflow_ha-pgbackrest-stanza:
          pgbackrest.stanza_present:
            - name: airflow-ha
            - config: /etc/pgbackrest/repo.conf
    """
    ret = _ret(name)
    info = _read(name, config, ret)
    if info is None:
        return ret
    if not __utils__["ah_pgbackrest.missing_stanza"](info):
        ret.update(result=True, comment=f"stanza {name} exists ({info['status']})")
        return ret
    lacking = [r["repo"] for r in info["repos"] if r["status_code"] in (1, 3)] or ["all"]
    ret["changes"] = {"stanza": {"old": None, "new": name}, "repos": lacking}
    if __opts__["test"]:
        ret.update(result=None, comment=f"stanza {name} would be created on repo(s) {lacking}")
        return ret
    try:
        __salt__["pgbackrest.stanza_create"](stanza=name, config=config)
        after = __salt__["pgbackrest.info"](stanza=name, config=config, archive_times=False)
    except (CommandExecutionError, SaltInvocationError) as exc:
        ret.update(changes={}, comment=f"stanza {name} could not be created: {exc}")
        return ret
    if __utils__["ah_pgbackrest.missing_stanza"](after):
        ret.update(changes={}, comment=f"stanza-create ended well but info still lacks stanza {name}")
        return ret
    ret.update(result=True, comment=f"stanza {name} created")
    return ret


def checked(name, marker, config=None, timeout=None):
    """
    ``pgbackrest check`` passed for stanza ``name`` — once: the pass is noted
    in ``marker`` (JSON: stanza, the repositories), and the check runs again
    only when the marker is missing or names other repositories (a new S3
    repository, a recreated stanza). ``check`` switches WAL on the primary
    and waits for the segment to reach every repository.

    .. code-block:: yaml

        airflow_ha-pgbackrest-check:
          pgbackrest.checked:
            - name: airflow-ha
            - marker: /var/lib/airflow_ha/pgbackrest-checked-airflow-ha.json
            - config: /etc/pgbackrest/repo.conf
    """
    ret = _ret(name)
    info = _read(name, config, ret)
    if info is None:
        return ret
    want = {"stanza": name, "repos": sorted(r["repo"] for r in info["repos"])}
    try:
        with open(marker, encoding="utf-8") as fh:
            have = json.load(fh)
    except (OSError, ValueError):
        have = None
    if have == want:
        ret.update(result=True, comment=f"pgbackrest check of {name} passed before (noted in {marker})")
        return ret
    ret["changes"] = {"checked": {"old": have, "new": want}}
    if __opts__["test"]:
        ret.update(result=None, comment=f"pgbackrest check of {name} would run (archiving from the primary)")
        return ret
    try:
        __salt__["pgbackrest.check"](stanza=name, config=config, timeout=timeout)
    except (CommandExecutionError, SaltInvocationError) as exc:
        ret.update(changes={}, comment=f"pgbackrest check of {name} failed: {exc}")
        return ret
    os.makedirs(os.path.dirname(marker), mode=0o755, exist_ok=True)
    with open(marker, "w", encoding="utf-8") as fh:
        json.dump(want, fh)
    ret.update(result=True, comment=f"pgbackrest check of {name} passed")
    return ret


def full_backup_present(name, repo=1, config=None, timeout=None):
    """
    Repository ``repo`` holds a good full backup of stanza ``name``; if not,
    one is taken now (a stanza without one cannot be restored from, and new
    replicas fall back to pg_basebackup). Scheduled backups are the timers'.

    .. code-block:: yaml

        airflow_ha-pgbackrest-first-full-repo1:
          pgbackrest.full_backup_present:
            - name: airflow-ha
            - repo: 1
            - config: /etc/pgbackrest/repo.conf
    """
    ret = _ret(name)
    info = _read(name, config, ret)
    if info is None:
        return ret

    def fulls(data):
        return [b for b in data["backups"] if b["type"] == "full" and not b["error"] and b["repo"] == repo]

    have = fulls(info)
    if have:
        ret.update(result=True, comment=f"repo{repo} holds full backup {have[-1]['label']} of {name}")
        return ret
    ret["changes"] = {"full_backup": {"old": None, "new": f"a full backup on repo{repo}"}}
    if __opts__["test"]:
        ret.update(result=None, comment=f"a first full backup of {name} would be taken on repo{repo}")
        return ret
    try:
        taken = __salt__["pgbackrest.backup"](
            type="full", stanza=name, config=config, repo=repo, timeout=timeout
        )
        after = __salt__["pgbackrest.info"](stanza=name, config=config, archive_times=False)
    except (CommandExecutionError, SaltInvocationError) as exc:
        ret.update(changes={}, comment=f"the first full backup of {name} on repo{repo} failed: {exc}")
        return ret
    if not fulls(after):
        ret.update(
            changes={}, comment=f"backup {taken.get('label')} ended but repo{repo} lists no good full backup"
        )
        return ret
    ret["changes"] = {"full_backup": {"old": None, "new": taken["label"]}}
    ret.update(
        result=True,
        comment=f"full backup {taken['label']} of {name} taken on repo{repo} in {taken['took']} s",
    )
    return ret
