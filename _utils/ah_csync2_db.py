"""
csync2's own database files (``<state_dir>/*.db3``, sqlite): list them, read and drop
peers' pinned certificates, move them aside. Standard library only; the
``csync2`` execution module calls these as ``__utils__["ah_csync2_db.<name>"]``
and turns their errors (``sqlite3.Error``, ``OSError``) into
``CommandExecutionError`` with the fix.

What this relies on (csync2 2.0 on Debian 12, LINBIT's manual): each peer's
certificate is pinned in the ``x509_cert`` table (column ``peername``) the
first time it connects, and a changed certificate is refused until that row
is gone; a database moved away is re-created by the next ``csync2 -cr``.
"""

import os
import shutil
import sqlite3

DB_SUFFIXES = (".db3", ".db", ".db3-journal")


def db_files(state_dir):
    """csync2's database files in ``state_dir`` (sorted; [] if it is unreadable)."""
    try:
        names = os.listdir(state_dir)
    except OSError:
        return []
    return sorted(os.path.join(state_dir, n) for n in names if n.endswith(DB_SUFFIXES))


def pinned(dbs):
    """{peer: pinned certificate as csync2 stores it (hex of the DER, upper
    case)} over every ``.db3`` of ``dbs``. Raises ``sqlite3.Error`` (the file
    in ``args[-1]``) when a database cannot be read."""
    pins = {}
    for db in dbs:
        if not db.endswith(".db3"):
            continue
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as con:
                pins.update(
                    (str(p), str(c).upper())
                    for p, c in con.execute("SELECT peername, certdata FROM x509_cert")
                )
        except sqlite3.Error as exc:
            raise sqlite3.Error(str(exc), db) from None
    return pins


def forget_cert(dbs, peer):
    """Delete ``peer``'s pinned certificate from every ``.db3`` of ``dbs``;
    returns how many rows went. Raises ``sqlite3.Error`` (with the file in
    ``args[-1]``) when a database cannot be changed."""
    removed = 0
    for db in dbs:
        if not db.endswith(".db3"):
            continue
        try:
            with sqlite3.connect(db, timeout=10) as con:
                removed += con.execute("DELETE FROM x509_cert WHERE peername = ?", (peer,)).rowcount
        except sqlite3.Error as exc:
            raise sqlite3.Error(str(exc), db) from None
    return removed


def move_aside(dbs, aside, moved):
    """Move every file of ``dbs`` into the folder ``aside`` (made 0700),
    appending each moved path to ``moved`` (so a caller knows how far it got
    when ``OSError`` is raised)."""
    if dbs:
        os.makedirs(aside, mode=0o700, exist_ok=True)
    for db in dbs:
        shutil.move(db, os.path.join(aside, os.path.basename(db)))
        moved.append(db)
    return moved
