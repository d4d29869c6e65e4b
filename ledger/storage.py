"""Storage: eventsourcing's SQLite and PostgreSQL recorders, extended for a ledger.

Two things eventsourcing's recorders do not give, and an audit ledger needs:

* **One transaction per decision file**, however large, with reads inside it. Import checks each
  line against what is already recorded *and* against earlier lines of the same file, then writes
  in batches with one ``executemany`` each (ARCHITECTURE.md rule 7), and commits once at the end
  or not at all. ``write()`` opens that transaction (SQLite ``BEGIN IMMEDIATE``; PostgreSQL the
  same ``EXCLUSIVE`` table lock eventsourcing takes, so notification ids stay gap-free in commit
  order) and hands out a ``WriteSession``.
* **A decision index** (``ledger_decisions``): one row per decision, written in the same
  transaction as its event. It answers "is this id recorded, with what content?" (idempotent
  import), "is this institution known as of that date?" and "where is decision X?" with one
  indexed read each, instead of a scan of the log. It is derived from the events alone and could
  be rebuilt from them; the events stay the only source of truth.

Stored events are append-only: on SQLite, triggers refuse UPDATE and DELETE of ``stored_events``
and of the index; on PostgreSQL the same triggers, plus the role setup of docs/reliability.md.
"""

from __future__ import annotations

import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

from ledger.errors import ConcurrencyError, StorageError

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class DecisionRow:
    """A decision's row in the index: where its event is, and what identifies its content."""

    decision_id: str
    position: int
    originator_id: UUID
    originator_version: int
    kind: str
    subject: str
    effective: date
    digest: bytes
    target: str | None
    jurisdiction: str | None


INDEX_COLUMNS = (
    "decision_id, position, originator_id, originator_version, kind, subject, effective, digest, target, jurisdiction"
)


class WriteSession(ABC):
    """Reads and writes inside one open write transaction (see ``LedgerRecorder.write``)."""

    @abstractmethod
    def find_decision(self, decision_id: str) -> DecisionRow | None:
        """The indexed row of a recorded decision, or None."""

    @abstractmethod
    def known_since(self, subject: str, creating_kind: str) -> date | None:
        """Earliest ``effective`` of a decision of ``creating_kind`` about ``subject``, or None."""

    @abstractmethod
    def latest(self, subject: str, kind: str) -> DecisionRow | None:
        """The last recorded decision of ``kind`` about ``subject``, or None."""

    @abstractmethod
    def last_version(self, originator_id: UUID) -> int:
        """The subject's current version (0 for a subject with no events yet)."""

    @abstractmethod
    def jurisdiction_of(self, subject: str) -> str | None:
        """The jurisdiction recorded for a subject's creating decision, or None."""

    @abstractmethod
    def stored_event(self, originator_id: UUID, version: int) -> StoredEvent:
        """One stored event, read inside this transaction (so it sees what this file wrote)."""

    @abstractmethod
    def append(self, stored: Sequence[StoredEvent], rows: Sequence[DecisionRow]) -> list[int]:
        """Insert events and their index rows; returns their positions (notification ids).

        ``rows[i].position`` is ignored: the storage assigns positions.
        """


class LedgerRecorder(ApplicationRecorder):
    """What the ledger needs from a recorder beyond eventsourcing's ``ApplicationRecorder``."""

    @abstractmethod
    def write(self) -> Any:
        """Context manager: one write transaction, committed on success, rolled back on error."""

    @abstractmethod
    def decision_rows(
        self,
        *,
        ids: Sequence[str] = (),
        target: str | None = None,
        subject: str | None = None,
        kinds: Sequence[str] = (),
        jurisdictions: Sequence[str] = (),
        effective_from: date | None = None,
        effective_to: date | None = None,
        after: int = 0,
        limit: int = 1000,
    ) -> list[DecisionRow]:
        """Index rows matching every given filter, in log order, positions after ``after``."""


def _row(values: Sequence[Any]) -> DecisionRow:
    oid = values[2]
    eff = values[6]
    return DecisionRow(
        decision_id=values[0],
        position=values[1],
        originator_id=oid if isinstance(oid, UUID) else UUID(oid),
        originator_version=values[3],
        kind=values[4],
        subject=values[5],
        effective=eff if isinstance(eff, date) else date.fromisoformat(eff),
        digest=bytes(values[7]),
        target=values[8],
        jurisdiction=values[9],
    )


def _filters(
    placeholder: str,
    *,
    ids: Sequence[str],
    target: str | None,
    subject: str | None,
    kinds: Sequence[str],
    jurisdictions: Sequence[str],
    effective_from: date | None,
    effective_to: date | None,
    after: int,
) -> tuple[str, list[Any]]:
    """The WHERE clause of ``decision_rows``, shared by both databases."""
    where = [f"position > {placeholder}"]
    params: list[Any] = [after]

    def any_of(column: str, values: Sequence[Any]) -> None:
        where.append(f"{column} IN ({', '.join([placeholder] * len(values))})")
        params.extend(values)

    if ids:
        any_of("decision_id", list(ids))
    if target is not None:
        where.append(f"target = {placeholder}")
        params.append(target)
    if subject is not None:
        where.append(f"subject = {placeholder}")
        params.append(subject)
    if kinds:
        any_of("kind", list(kinds))
    if jurisdictions:
        any_of("jurisdiction", list(jurisdictions))
    if effective_from is not None:
        where.append(f"effective >= {placeholder}")
        params.append(effective_from.isoformat())
    if effective_to is not None:
        where.append(f"effective <= {placeholder}")
        params.append(effective_to.isoformat())
    return " AND ".join(where), params


# --- SQLite ---------------------------------------------------------------------------------


class SQLiteLedgerRecorder(SQLiteApplicationRecorder, LedgerRecorder):
    """eventsourcing's SQLite recorder with the decision index and append-only triggers."""

    def __init__(self, datastore: SQLiteDatastore, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name)

    def construct_create_table_statements(self) -> list[str]:
        t = self.events_table_name
        return [
            *super().construct_create_table_statements(),
            "CREATE TABLE IF NOT EXISTS ledger_decisions ("
            "decision_id TEXT PRIMARY KEY, position INTEGER NOT NULL UNIQUE, "
            "originator_id TEXT NOT NULL, originator_version INTEGER NOT NULL, "
            "kind TEXT NOT NULL, subject TEXT NOT NULL, effective TEXT NOT NULL, "
            "digest BLOB NOT NULL, target TEXT, jurisdiction TEXT) WITHOUT ROWID",
            "CREATE INDEX IF NOT EXISTS ledger_decisions_subject ON ledger_decisions (subject, kind, effective)",
            "CREATE INDEX IF NOT EXISTS ledger_decisions_target ON ledger_decisions (target) WHERE target IS NOT NULL",
            "CREATE INDEX IF NOT EXISTS ledger_decisions_kind ON ledger_decisions (kind, position)",
            "CREATE TABLE IF NOT EXISTS ledger_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
            f"INSERT OR IGNORE INTO ledger_meta VALUES ('schema_version', '{SCHEMA_VERSION}')",
            *[
                f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, 'the ledger is append-only: {op} on {table} refused'); END"
                for table in (t, "ledger_decisions")
                for op in ("UPDATE", "DELETE")
            ],
        ]

    @contextmanager
    def write(self) -> Iterator[WriteSession]:
        try:
            with self.datastore.get_connection(commit=True) as conn:
                cursor = conn.cursor()
                try:
                    cursor.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError as e:
                    msg = f"the ledger is busy (another writer holds it): {e}"
                    raise ConcurrencyError(msg) from e
                try:
                    yield _SQLiteWriteSession(cursor, self.events_table_name)
                except BaseException:
                    conn.rollback()
                    raise
                conn.commit()
        except sqlite3.IntegrityError as e:
            msg = f"another writer recorded a decision about the same subject first: {e}"
            raise ConcurrencyError(msg) from e
        except sqlite3.OperationalError as e:
            msg = f"SQLite refused the write: {e}"
            raise StorageError(msg) from e

    def decision_rows(self, *, limit: int = 1000, **filters: Any) -> list[DecisionRow]:
        where, params = _filters("?", **{**_DEFAULT_FILTERS, **filters})
        sql = f"SELECT {INDEX_COLUMNS} FROM ledger_decisions WHERE {where} ORDER BY position LIMIT ?"
        with self.datastore.transaction(commit=False) as c:
            c.execute(sql, [*params, limit])
            return [_row(tuple(r)) for r in c.fetchall()]


_DEFAULT_FILTERS: dict[str, Any] = {
    "ids": (),
    "target": None,
    "subject": None,
    "kinds": (),
    "jurisdictions": (),
    "effective_from": None,
    "effective_to": None,
    "after": 0,
}


class _SQLiteWriteSession(WriteSession):
    def __init__(self, cursor: Any, events_table: str) -> None:
        self.c = cursor
        self.events_table = events_table

    def find_decision(self, decision_id: str) -> DecisionRow | None:
        self.c.execute(f"SELECT {INDEX_COLUMNS} FROM ledger_decisions WHERE decision_id = ?", (decision_id,))
        r = self.c.fetchone()
        return _row(tuple(r)) if r else None

    def known_since(self, subject: str, creating_kind: str) -> date | None:
        self.c.execute(
            "SELECT MIN(effective) FROM ledger_decisions WHERE subject = ? AND kind = ?", (subject, creating_kind)
        )
        value = self.c.fetchone()[0]
        return date.fromisoformat(value) if value else None

    def latest(self, subject: str, kind: str) -> DecisionRow | None:
        self.c.execute(
            f"SELECT {INDEX_COLUMNS} FROM ledger_decisions WHERE subject = ? AND kind = ? "
            "ORDER BY position DESC LIMIT 1",
            (subject, kind),
        )
        r = self.c.fetchone()
        return _row(tuple(r)) if r else None

    def jurisdiction_of(self, subject: str) -> str | None:
        self.c.execute(
            "SELECT jurisdiction FROM ledger_decisions WHERE subject = ? ORDER BY position LIMIT 1", (subject,)
        )
        r = self.c.fetchone()
        return r[0] if r else None

    def last_version(self, originator_id: UUID) -> int:
        self.c.execute(
            f"SELECT MAX(originator_version) FROM {self.events_table} WHERE originator_id = ?", (originator_id.hex,)
        )
        return self.c.fetchone()[0] or 0

    def stored_event(self, originator_id: UUID, version: int) -> StoredEvent:
        self.c.execute(
            f"SELECT topic, state FROM {self.events_table} WHERE originator_id = ? AND originator_version = ?",
            (originator_id.hex, version),
        )
        topic, state = self.c.fetchone()
        return StoredEvent(originator_id=originator_id, originator_version=version, topic=topic, state=state)

    def append(self, stored: Sequence[StoredEvent], rows: Sequence[DecisionRow]) -> list[int]:
        if not stored:
            return []
        self.c.execute(f"SELECT MAX(rowid) FROM {self.events_table}")
        first = (self.c.fetchone()[0] or 0) + 1
        self.c.executemany(
            f"INSERT INTO {self.events_table} (originator_id, originator_version, topic, state) VALUES (?,?,?,?)",
            [(_hex(s.originator_id), s.originator_version, s.topic, s.state) for s in stored],
        )
        positions = list(range(first, first + len(stored)))
        self.c.executemany(
            f"INSERT INTO ledger_decisions ({INDEX_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
            [
                (
                    r.decision_id,
                    p,
                    r.originator_id.hex,
                    r.originator_version,
                    r.kind,
                    r.subject,
                    r.effective.isoformat(),
                    r.digest,
                    r.target,
                    r.jurisdiction,
                )
                for r, p in zip(rows, positions, strict=True)
            ],
        )
        return positions


def _hex(originator_id: UUID | str) -> str:
    return originator_id.hex if isinstance(originator_id, UUID) else originator_id
