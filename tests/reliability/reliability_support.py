"""What the reliability tests (issue 6) look at after inflicting a fault: the ledger's contents,
its views, and — on PostgreSQL — whether a killed client's server session has really ended.

Views are compared *modulo position numbering*: a PostgreSQL transaction that was killed or lost a
race still consumed numbers of the notification sequence, so positions may have gaps that an
uninterrupted run does not have. Every position a view holds (``position``, ``known_from``,
``known_to``) is therefore written as the id of the decision recorded there, which is what the
position means; ``known_to`` of rows still held true stays ``NOW``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ledger.application import LedgerApplication
from ledger.sql import Database
from ledger.storage import EVENTS_TABLE
from projections.runner import NOW

POSITION_COLUMNS = frozenset({"position", "known_from", "known_to"})


@contextmanager
def open_ledger(url: str) -> Iterator[LedgerApplication]:
    app = LedgerApplication.open(url)
    try:
        yield app
    finally:
        app.close()


def decision_ids(app: LedgerApplication) -> list[str]:
    """Every recorded decision's id, in log order (from the decision index)."""
    return [row.decision_id for row in app.store.decision_rows(limit=10**9)]


def event_count(app: LedgerApplication) -> int:
    """How many events the log holds (counted in the events table, not the index)."""
    db = Database(app.store)
    table = db.table(EVENTS_TABLE)
    with db.transaction(write=False) as c:
        row = c.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])


def view_tables(db: Database) -> list[str]:
    with db.transaction(write=False) as c:
        if db.dialect == "postgres":
            rows = c.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = ? AND table_name LIKE ?",
                (db.schema, "view%"),
            ).fetchall()
        else:
            sql = "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE ?"
            rows = c.execute(sql, ("view%",)).fetchall()
    return sorted(str(r[0]) for r in rows)


def views(app: LedgerApplication) -> dict[str, list[tuple[str, ...]]]:
    """Every row of every view table (``view_*``, with the timelines' inputs), both time axes
    included, positions written as decision ids; rows sorted, values as text."""
    by_position = {row.position: row.decision_id for row in app.store.decision_rows(limit=10**9)}

    def value(column: str, v: Any) -> str:
        if column in POSITION_COLUMNS and v is not None:
            return "NOW" if int(v) == NOW else by_position.get(int(v), f"?{v}")
        return "" if v is None else str(v)

    db = Database(app.store)
    out: dict[str, list[tuple[str, ...]]] = {}
    tables = view_tables(db)
    with db.transaction(write=False) as c:  # one snapshot of every view
        for table in tables:
            c.execute(f"SELECT * FROM {db.table(table)}")
            columns = [d[0] for d in getattr(c.raw, "sqlite_cursor", c.raw).description]
            rows = c.fetchall()
            out[table] = sorted(tuple(value(col, v) for col, v in zip(columns, r, strict=True)) for r in rows)
    return out


def tracked_positions(app: LedgerApplication) -> dict[str, int]:
    db = Database(app.store)
    with db.transaction(write=False) as c:
        rows = c.execute(f"SELECT projection, position FROM {db.table('ledger_tracking')}").fetchall()
    return {str(name): int(pos) for name, pos in rows}


def wait_for_sessions_to_end(admin: Any, application_name: str, *, patience: float = 30.0) -> None:
    """Wait until the server holds no session of ``application_name`` (set through ``PGAPPNAME``
    in a killed client's environment): only then is its transaction surely rolled back — or,
    had its COMMIT reached the server before the kill, committed — and the ledger's state final.
    """
    deadline = time.monotonic() + patience
    while True:
        row = admin.execute(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = %s", (application_name,)
        ).fetchone()
        if not row[0]:
            return
        if time.monotonic() > deadline:
            msg = f"the server still holds a session of {application_name} {patience} s after its client was killed"
            raise AssertionError(msg)
        time.sleep(0.02)
