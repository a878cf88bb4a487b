"""
pgBackRest's answers, read: ``info --output=json``, ``repo-ls --output=json``,
its error codes, restore target times and the restore window.

Why this file: the ``pgbackrest`` execution module, the ``pgbackrest`` states,
the validator (a restore target's format) and the settings (the normalised
target Patroni's bootstrap gets) all need the same reading of pgBackRest; here
it is pure Python over text and numbers, tested on recorded shapes
(test/unit/data/pgbackrest), with no process started. Salt has no pgBackRest
module to lean on.

A Salt ``_utils`` module (``__utils__["ah_pgbackrest.parse_info"]`` from the
module and states); ``ah_validate`` and ``ah_settings`` import it by path.
Standard library only.
"""

import datetime
import json
import re

# pgBackRest's error codes (src/build/error/error.yaml, 2.45) that have a fix
# worth naming; the process exit code is the error code.
HINTS = {
    38: "PostgreSQL is running on this node: stop Patroni first",
    40: "the target folder is not empty: restore into an empty data directory or pass --delta",
    49: "a pgBackRest TLS server cannot be reached: is pgbackrest.service running on the node named in "
    "the message, and is its port open from here?",
    50: "another pgBackRest command holds the stanza's lock (a scheduled backup?): wait for it to finish",
    55: "the stanza is missing from the repository: apply airflow_ha.pgbackrest on the backup node "
    "(it runs stanza-create)",
    56: "no PostgreSQL primary could be reached: is the Patroni leader running and its pgBackRest TLS "
    "server up?",
    75: "the repository has no backup to restore from: take one (salt <backup node> pgbackrest.backup)",
    82: "a WAL segment was not archived in time: look at pg_stat_archiver and the PostgreSQL log on the "
    "primary (archive_command, archive_mode = on needs a restart)",
    87: "archive_mode is off on the primary: Patroni applies it only after a restart (patronictl restart)",
    95: "the repository cannot be decrypted: secrets:pgbackrest_cipher_pass is not the passphrase the "
    "stanza was created with",
    105: "a TLS peer refused this node: its certificate's CN must be listed in tls-server-auth (the "
    "node ids) and be signed by the configured CA",
}

# info's stanza and repo status codes (src/command/info/info.c)
STATUS_OK, STATUS_MISSING_STANZA_PATH, STATUS_NO_BACKUP, STATUS_MISSING_STANZA_DATA = 0, 1, 2, 3
MISSING_STANZA = (STATUS_MISSING_STANZA_PATH, STATUS_MISSING_STANZA_DATA)

_TIME_RE = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})([.,]\d{1,6})?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$"
)
_ERROR_RE = re.compile(r"ERROR: \[(\d+)\]: (.*)")


def parse_target_time(value):
    """``(normalised, epoch)`` of a restore target: ``("latest", None)``, or the
    time in UTC as pgBackRest and PostgreSQL both read it
    (``2024-05-01 12:00:00+00``, fractions kept) and its epoch seconds.
    Raises ValueError saying what to give instead."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("give 'latest' or a time with its zone, e.g. '2024-05-01 12:00:00+00'")
    text = value.strip()
    if text.lower() == "latest":
        return "latest", None
    match = _TIME_RE.match(text)
    if not match:
        raise ValueError(
            f"{text!r} is not a time pgBackRest reads — give YYYY-MM-DD HH:MM:SS with its zone, "
            "e.g. '2024-05-01 12:00:00+00' (or 'latest')"
        )
    day, clock, fraction, zone = match.groups()
    if zone is None:
        raise ValueError(
            f"{text!r} has no time zone (pgBackRest would read it in the node's local time) — "
            "add one, e.g. '+00'"
        )
    zone = "+00:00" if zone == "Z" else zone
    if len(zone) == 3:
        zone += ":00"
    elif ":" not in zone:
        zone = f"{zone[:3]}:{zone[3:]}"
    micro = (fraction or ".0")[1:].ljust(6, "0")
    try:
        when = datetime.datetime.fromisoformat(f"{day}T{clock}.{micro}{zone}")
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a valid time ({exc})") from None
    utc = when.astimezone(datetime.timezone.utc)
    shown = utc.strftime("%Y-%m-%d %H:%M:%S") + (f".{utc.microsecond:06d}".rstrip("0") if fraction else "")
    return shown.rstrip(".") + "+00", utc.timestamp()


def iso(epoch):
    """An epoch as ``2024-05-01T12:00:00Z`` (None stays None)."""
    if epoch is None:
        return None
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def error_of(text):
    """``(code, message)`` of the last ``ERROR: [NNN]: ...`` line in ``text``, or (None, None)."""
    found = _ERROR_RE.findall(text or "")
    if not found:
        return None, None
    code, message = found[-1]
    return int(code), message.strip()


def explain(text, returncode=None):
    """One line: pgBackRest's error and the fix for its code, if one is known."""
    code, message = error_of(text)
    code = code if code is not None else returncode
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    what = message or (lines[-1] if lines else "no output")
    hint = HINTS.get(code)
    return f"[{code}] {what}" + (f" — {hint}" if hint else "")


def stanza_sections(config_text):
    """The stanza sections of a pgBackRest config file (not [global], not
    [x:command])."""
    names = re.findall(r"^\s*\[([^\]]+)\]\s*$", config_text or "", re.M)
    return [n for n in names if n != "global" and ":" not in n]


def _backup(entry):
    ts = entry.get("timestamp") or {}
    info = entry.get("info") or {}
    repo = info.get("repository") or {}
    archive = entry.get("archive") or {}
    lsn = entry.get("lsn") or {}
    start, stop = ts.get("start"), ts.get("stop")
    return {
        "label": entry.get("label"),
        "type": entry.get("type"),
        "repo": (entry.get("database") or {}).get("repo-key"),
        "start": start,
        "stop": stop,
        "start_iso": iso(start),
        "stop_iso": iso(stop),
        "seconds": (stop - start) if isinstance(start, int) and isinstance(stop, int) else None,
        "size": info.get("size"),
        "delta": info.get("delta"),
        "repo_size": repo.get("size"),
        "repo_delta": repo.get("delta"),
        "wal_start": archive.get("start"),
        "wal_stop": archive.get("stop"),
        "lsn_start": lsn.get("start"),
        "lsn_stop": lsn.get("stop"),
        "prior": entry.get("prior"),
        # pgBackRest 2.36+ flags a backup whose files had page checksum errors
        "error": bool(entry.get("error", False)),
    }


def _age(epoch, now):
    return None if epoch is None else max(0, int(now - epoch))


def _last(backups, now, kind=None):
    good = [b for b in backups if not b["error"] and (kind is None or b["type"] == kind)]
    if not good:
        return None
    newest = max(good, key=lambda b: b["stop"] or 0)
    return {
        **{k: newest[k] for k in ("label", "type", "repo", "stop", "stop_iso")},
        "age": _age(newest["stop"], now),
    }


def parse_info(text, stanza, now, archive_times=None):
    """The structured ``info`` of ``stanza`` from ``pgbackrest --output=json
    info`` (``text``). ``archive_times``: {repo key: mtime of the newest
    archived WAL file} (from repo-ls); ``now``: epoch seconds. Raises
    ValueError when the text is not info's JSON or lacks the stanza."""
    try:
        data = json.loads(text)
    except ValueError:
        raise ValueError(f"pgbackrest info did not print JSON: {str(text)[:200]!r}") from None
    found = (
        [s for s in data if isinstance(s, dict) and s.get("name") == stanza] if isinstance(data, list) else []
    )
    if not found:
        raise ValueError(f"pgbackrest info does not list stanza {stanza!r}")
    raw = found[0]
    status = raw.get("status") or {}
    backups = sorted(
        (_backup(b) for b in raw.get("backup") or []), key=lambda b: (b["stop"] or 0, b["label"] or "")
    )
    archive_times = archive_times or {}
    wal = []
    for entry in raw.get("archive") or []:
        key = (entry.get("database") or {}).get("repo-key")
        wal.append(
            {
                "repo": key,
                "archive_id": entry.get("id"),
                "min": entry.get("min"),
                "max": entry.get("max"),
                "max_time": archive_times.get(key) if entry.get("max") else None,
            }
        )
    # the current PostgreSQL (the newest archive id of each repo) is what a restore uses
    timed = [w for w in wal if w["max_time"] is not None]
    last_archive = None
    if timed:
        newest = max(timed, key=lambda w: w["max_time"])
        last_archive = {
            "wal": newest["max"],
            "repo": newest["repo"],
            "time": newest["max_time"],
            "time_iso": iso(newest["max_time"]),
            "age": _age(newest["max_time"], now),
        }
    good = [b for b in backups if not b["error"] and b["stop"] is not None]
    restorable = None
    if good:
        start = min(b["stop"] for b in good)
        end = last_archive["time"] if last_archive else max(b["stop"] for b in good)
        restorable = {"from": start, "from_iso": iso(start), "to": end, "to_iso": iso(end)}
    return {
        "stanza": stanza,
        "status": status.get("message"),
        "status_code": status.get("code"),
        "backup_running": bool(((status.get("lock") or {}).get("backup") or {}).get("held")),
        "cipher": raw.get("cipher"),
        "repos": [
            {
                "repo": r.get("key"),
                "cipher": r.get("cipher"),
                "status": (r.get("status") or {}).get("message"),
                "status_code": (r.get("status") or {}).get("code"),
            }
            for r in raw.get("repo") or []
        ],
        "backups": backups,
        "wal": wal,
        "last_backup": _last(backups, now),
        "last_full": _last(backups, now, "full"),
        "last_archive": last_archive,
        "restorable": restorable,
    }


def missing_stanza(info):
    """True when a repository (or the stanza as a whole) lacks the stanza."""
    codes = [info.get("status_code")] + [r.get("status_code") for r in info.get("repos") or []]
    return any(code in MISSING_STANZA for code in codes)


def newest_file_time(text, wal):
    """The modification time of the newest file named ``wal...`` in a
    ``repo-ls --output=json`` answer, or None."""
    try:
        listing = json.loads(text)
    except ValueError:
        return None
    times = [
        entry.get("time")
        for name, entry in (listing.items() if isinstance(listing, dict) else [])
        if isinstance(entry, dict) and entry.get("type") == "file" and str(name).startswith(wal)
    ]
    times = [t for t in times if isinstance(t, int)]
    return max(times) if times else None


def plan(info, target):
    """Which backup a restore to ``target`` (normalised, see
    :func:`parse_target_time`) starts from, and whether the target lies in the
    restorable window. Returns the plan; raises ValueError with the reason a
    restore must be refused. pgBackRest picks the same backup itself: per
    repository in order, the newest whose stop time is before the target."""
    normalised, epoch = parse_target_time(target)
    good = [b for b in info["backups"] if not b["error"] and b["stop"] is not None]
    if not good:
        raise ValueError(f"stanza {info['stanza']} has no usable backup: there is nothing to restore from")
    window = info["restorable"]
    if epoch is None:
        # restore without a target: the newest backup of the first repository that has one
        first = min(b["repo"] or 0 for b in good)
        chosen = max((b for b in good if (b["repo"] or 0) == first), key=lambda b: b["stop"])
    else:
        if epoch <= window["from"]:
            raise ValueError(
                f"{normalised} is not after the end of the oldest backup ({window['from_iso']}): the earliest "
                "time a restore can reach is just after it"
            )
        if epoch > window["to"]:
            what = (
                "the newest archived WAL" if info["last_archive"] else "the newest backup (no WAL time known)"
            )
            raise ValueError(
                f"{normalised} is after {what} ({window['to_iso']}): the WAL to replay up to it is not in "
                "the repository"
            )
        repos = sorted({b["repo"] or 0 for b in good})
        chosen = None
        for repo in repos:
            before = [b for b in good if (b["repo"] or 0) == repo and b["stop"] < epoch]
            if before:
                chosen = max(before, key=lambda b: b["stop"])
                break
    return {
        "stanza": info["stanza"],
        "target": normalised,
        "backup": chosen["label"],
        "backup_type": chosen["type"],
        "backup_stop": chosen["stop_iso"],
        "repo": chosen["repo"],
        "restorable_from": window["from_iso"],
        "restorable_to": window["to_iso"],
    }
