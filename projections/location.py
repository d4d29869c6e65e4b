"""Where the ledger is, and whether it is there: a read must never create the ledger it reads.

A typo in ``--db`` (a missing file or folder, ``mysql://…``) used to create an empty database and
answer "(none)", which an inspector reads as "nothing wrong". ``require_ledger`` refuses it,
saying how to make a ledger; only commands that write (``import``, ``init``, ``demo``,
``record``) may create one.
"""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path

from ledger.application import DB_ENV, default_db_path
from ledger.errors import ConfigurationError
from ledger.storage import EVENTS_TABLE

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_KNOWN_SCHEMES = ("postgresql", "postgres", "sqlite")
_HOW_TO_CREATE = "create one with `ledger init` (the plugins' catalogues) or `ledger import FILE`"


def ledger_url(db: str | None) -> str:
    """The ledger a command was given: ``--db``, else ``LEDGER_DB``, else the default file."""
    return db or os.environ.get(DB_ENV) or str(default_db_path())


def require_ledger(url: str, *, create: bool) -> None:
    """Refuse a database a command cannot mean: an unknown URL scheme always, and, for a command
    that only reads (``create`` false), a ledger that is not there (``ledger_exists``)."""
    if not ledger_exists(url) and not create:
        msg = f"no ledger at {Path(url.removeprefix('sqlite://')).expanduser()}: {_HOW_TO_CREATE}"
        raise ConfigurationError(msg)


def ledger_exists(url: str) -> bool:
    """Is there a ledger at ``url``? A SQLite file holding a log (a missing file or folder, or a
    file with no log in it, is none); PostgreSQL is taken to be there (connecting says if not).
    An unknown URL scheme is a ``ConfigurationError``, never a file of that name."""
    scheme = _SCHEME.match(url)
    if scheme and scheme.group(1).lower() not in _KNOWN_SCHEMES:
        msg = f"unknown database scheme {scheme.group(1)!r} in --db: a SQLite file path or postgresql://user@host/db"
        raise ConfigurationError(msg)
    if (scheme and scheme.group(1).lower() != "sqlite") or ":memory:" in url or "mode=memory" in url:
        return True
    path = Path(url.removeprefix("sqlite://")).expanduser()
    return path.is_file() and _holds_a_log(path)


def _holds_a_log(path: Path) -> bool:
    """Does the SQLite file hold a ledger's log? Opened read-only, so that asking creates nothing."""
    try:
        with sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True) as c:
            found = c.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (EVENTS_TABLE,)
            ).fetchone()
    except sqlite3.Error:
        return True  # not ours to judge here: opening it says what is wrong (locked, not a database)
    return found is not None
