"""The ledger as the server opens it: read-only by construction, and what an outage looks like.

SQLite: the file is opened through a ``mode=ro`` URI, so no statement of any request can write
it (SQLite refuses before touching the file). PostgreSQL: the server connects as a role that may
only ``SELECT``, whose sessions are read-only and have a statement timeout (docs/api.md gives the
SQL), so a slow query ends in the database rather than holding a worker. Tables are
never created: the writer (``ledger init``/``import``/``checkpoint``/``project --follow``) made them.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any
from urllib.parse import quote

from eventsourcing.persistence import PersistenceError

from ledger import integrity
from ledger.application import LedgerApplication, database_env
from ledger.errors import ConfigurationError, StorageError
from projections.views import Views

QUERY_SECONDS = 10.0
"""The longest one query may run before the database ends it (PostgreSQL) or the request is
answered 503 (SQLite, where the query cannot be interrupted from outside its thread)."""


def readonly_env(db: str | None) -> dict[str, str]:
    """``database_env`` for a server that must never write: SQLite through a ``mode=ro`` URI,
    PostgreSQL with read-only sessions and a statement timeout; neither creates a table."""
    env = dict(database_env(db))
    env["CREATE_TABLE"] = "no"
    if "SQLITE_DBNAME" in env:
        name = env["SQLITE_DBNAME"]
        if ":memory:" in name or "mode=memory" in name:
            msg = "an in-memory ledger cannot be served: give the file or the PostgreSQL URL of a ledger"
            raise ConfigurationError(msg)
        if not os.path.exists(name):
            msg = f"no ledger at {name}: create it with `ledger init` first (the server only reads)"
            raise ConfigurationError(msg)
        env["SQLITE_DBNAME"] = f"file:{quote(os.path.abspath(name))}?mode=ro"
    else:
        env["POSTGRES_PRE_PING"] = "yes"  # a connection dropped by a restart is replaced, not used
        env["POSTGRES_CONNECT_TIMEOUT"] = "2"
    return env


def open_readonly(db: str | None) -> tuple[LedgerApplication, Views]:
    """The ledger and its views, read-only; the views are read as the follower left them (they
    are caught up by ``ledger project --follow``, never by a request)."""
    app = LedgerApplication(readonly_env(db))
    # The Merkle tables exist in any ledger a checkpoint was signed in; a read-only connection
    # cannot create them, so integrity is told they are there (a ledger without them has no proof).
    integrity.assume_tables(app)
    return app, Views(app, catch_up=False)


def is_outage(error: BaseException) -> bool:
    """Whether ``error`` says the database cannot be reached (a restart, a network cut, a full
    pool), as opposed to a refusal of this request: the server answers 503 and stays up."""
    if isinstance(error, PersistenceError | StorageError):
        return True
    try:
        import psycopg
    except ImportError:  # pragma: no cover - the postgres extra is not installed
        return isinstance(error, sqlite3.OperationalError)
    return isinstance(error, psycopg.OperationalError | psycopg.InterfaceError | sqlite3.OperationalError)


def describe_outage(error: BaseException) -> str:
    text: Any = str(error).splitlines()[0] if str(error) else type(error).__name__
    return f"the ledger's database is not answering ({text}); try again shortly"
