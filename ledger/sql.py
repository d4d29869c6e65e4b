"""One small SQL interface over the ledger's database, for what lives beside the events.

The Merkle node store, checkpoints and the projections' view tables live in the same database as
the events (one SQLite file; one PostgreSQL schema), so that a view's rows and its tracked position
commit together. They need plain SQL, not eventsourcing's recorder API; this module gives them one
way to run it on either database: ``?`` placeholders (rewritten to ``%s`` for PostgreSQL), rows as
tuples, and a transaction that commits on success and rolls back on error.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal

from ledger.errors import StorageError
from ledger.storage import LedgerRecorder

Dialect = Literal["sqlite", "postgres"]


class Cursor:
    """A cursor that speaks ``?`` placeholders on both databases and returns tuples."""

    def __init__(self, raw: Any, dialect: Dialect, schema: str | None) -> None:
        self.raw = raw
        self.dialect = dialect
        self.schema = schema

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.dialect == "postgres" else sql

    def execute(self, sql: str, params: Sequence[Any] = (), *, binary: bool = False) -> Cursor:
        """Run one statement. ``binary``: PostgreSQL sends the results in its binary format (a
        ``bytea`` as its bytes, not as hex text to decode: what reading stored events wants)."""
        if binary and self.dialect == "postgres":
            self.raw.execute(self._sql(sql), params, binary=True)
        else:
            self.raw.execute(self._sql(sql), params)
        return self

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.raw.executemany(self._sql(sql), rows)

    def insert_many(
        self, table: str, columns: Sequence[str], types: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        """``INSERT INTO table (columns)`` every row: one ``executemany`` on SQLite, one binary
        ``COPY`` on PostgreSQL.

        ``types`` are the columns' PostgreSQL types (``text``, ``bigint``…). Why ``COPY``:
        psycopg's ``executemany`` sends a statement per row, an ``unnest`` of text arrays escapes
        every value; a binary ``COPY`` costs least (docs/performance.md). It runs inside the
        cursor's transaction, like any statement.
        """
        if not rows:
            return
        names = ", ".join(columns)
        if self.dialect == "postgres":
            with self.raw.copy(f"COPY {table} ({names}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types([_PG_COPY_TYPES.get(t, t) for t in types])
                for row in rows:
                    copy.write_row(row)
        else:
            self.raw.executemany(f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))})", rows)

    def fetchone(self) -> tuple[Any, ...] | None:
        row = self.raw.fetchone()
        return None if row is None else _tuple(row)

    def fetchall(self) -> list[tuple[Any, ...]]:
        rows: list[Any] = self.raw.fetchall()
        if not rows or type(rows[0]) is tuple:  # what ``Database.transaction``'s cursors give
            return rows
        return [_tuple(r) for r in rows]


_PG_COPY_TYPES = {"bigint": "int8", "integer": "int4"}
"""psycopg's names for the types ``COPY … (FORMAT BINARY)`` writes."""


def _tuple(row: Any) -> tuple[Any, ...]:
    if isinstance(row, dict):
        return tuple(row.values())
    return tuple(row)


class Database:
    """The ledger's database, for tables beside the events (see the module docstring)."""

    def __init__(self, recorder: LedgerRecorder) -> None:
        self.recorder = recorder
        self.dialect: Dialect = "postgres" if type(recorder).__module__ == "ledger.postgres" else "sqlite"
        datastore: Any = recorder.datastore  # type: ignore[attr-defined]
        self._datastore = datastore
        self.schema: str | None = getattr(datastore, "schema", None) if self.dialect == "postgres" else None
        self.blob = "BYTEA" if self.dialect == "postgres" else "BLOB"
        self.bigint = "BIGINT" if self.dialect == "postgres" else "INTEGER"

    def serialise(self, c: Cursor, what: str) -> None:
        """Hold, until the transaction ends, the lock that serialises writers of ``what``.

        On PostgreSQL a transaction-scoped advisory lock per schema and name: two processes
        creating the same tables of a new schema would otherwise collide in the catalog, and one
        creating indexes (SHARE) can deadlock with one writing rows (ROW EXCLUSIVE). SQLite's
        ``BEGIN IMMEDIATE`` already serialises every writer."""
        if self.dialect == "postgres":
            c.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (f"{self.schema}.{what}",))

    def table(self, name: str) -> str:
        """A table's qualified name (PostgreSQL tables live in the ledger's schema)."""
        return f'"{self.schema}".{name}' if self.schema else name

    def has_table(self, c: Cursor, name: str) -> bool:
        """Whether table ``name`` exists, asked without touching it: a missing table queried on
        PostgreSQL would abort the whole transaction, and a read-only connection cannot create it."""
        if self.dialect == "postgres":
            row = c.execute("SELECT to_regclass(?) IS NOT NULL", (self.table(name),)).fetchone()
        else:
            row = c.execute("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone()
        return bool(row and row[0])

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Cursor]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        if self.dialect == "postgres":
            from psycopg.rows import tuple_row

            with (
                self._datastore.get_connection() as conn,
                conn.transaction(force_rollback=not write),
                conn.cursor(row_factory=tuple_row) as curs,  # tuples, not dicts: ``Cursor`` gives tuples
            ):
                yield Cursor(curs, "postgres", self.schema)
            return
        try:
            with self._datastore.get_connection(commit=write) as conn:
                raw = conn.cursor()
                # Plain tuples, not eventsourcing's ``sqlite3.Row``: ``Cursor`` gives tuples, and a
                # Row made and copied per row costs more than the row (a trail reads thousands).
                getattr(raw, "sqlite_cursor", raw).row_factory = None
                raw.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    yield Cursor(raw, "sqlite", None)
                except BaseException:
                    conn.rollback()
                    raise
                if write:
                    conn.commit()
                else:
                    conn.rollback()
        except sqlite3.OperationalError as e:
            msg = f"SQLite refused the operation: {e}"
            raise StorageError(msg) from e
