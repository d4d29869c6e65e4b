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
  be rebuilt from them; the events stay the only source of truth. It is outside the Merkle tree,
  so ``ledger verify`` recomputes every row from its event (``ledger.integrity.index.check_index``),
  and a look-up believes a row only together with its event at that position (``_checked``).

Stored events are append-only: on SQLite, triggers refuse UPDATE and DELETE of ``stored_events``
and of the index; on PostgreSQL the same triggers, plus the role setup of docs/reliability.md. The
recorders themselves are ``ledger.sqlite`` and ``ledger.postgres``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeAlias
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, StoredEvent

from ledger.errors import IntegrityError

SCHEMA_VERSION = 1
EVENTS_TABLE = "stored_events"
"""The events table, by this one name on both databases: not derived from the application's class
name (as eventsourcing's factories do), so that renaming a class never hides the log from projections."""
INDEX_TABLE = "ledger_decisions"
"""The decision index, by the same name on both databases."""
META_TABLE = "ledger_meta"


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

CHECKED_COLUMNS = ", ".join(f"d.{name.strip()}" for name in INDEX_COLUMNS.split(","))
"""``INDEX_COLUMNS`` of the index as ``d``, to be followed by its event's originator id and version
(``e.originator_id, e.originator_version`` of the events joined on the position): ``_checked``."""


StagedEvent: TypeAlias = tuple[str, int, str, bytes]
"""An event to append, as plain values: ``(originator, version, topic, state)`` — its originator id
(32 hex digits, as SQLite stores it), version, topic, and state (the transcoder's bytes). A plain
tuple, not a named one: an import makes one per decision, and storage reads it by position."""

StagedRow: TypeAlias = tuple[str, str, int, str, str, date, bytes, str | None, str | None]
"""Its index row, as plain values: ``(decision_id, originator, version, kind, subject, effective,
digest, target, jurisdiction)`` — ``DecisionRow`` less the position, with the originator id in hex."""


StagedTable: TypeAlias = tuple[str, Sequence[str], Sequence[str], Sequence[Sequence[Any]]]
"""Rows of another table written with a batch, in its transaction: ``(table, columns, types,
rows)``, the table's name qualified and the columns' PostgreSQL types (``ledger.follow`` writes the
Merkle tree over the records it copies so)."""


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

    def append_staged(
        self, events: Sequence[StagedEvent], rows: Sequence[StagedRow], also: Sequence[StagedTable] = ()
    ) -> Sequence[int]:
        """``append`` of an import's plain rows (no ``StoredEvent`` or ``DecisionRow`` made per
        decision), then ``also``'s rows of other tables; returns the positions. A session may
        still be writing them when this returns (SQLite: ``_SQLiteWriteSession``); its reads, and
        the end of its transaction, wait for them (``settle``). The lists are the session's from
        then on: the caller makes new ones."""
        stored = [StoredEvent(UUID(hex=h), version, topic, state) for h, version, topic, state in events]
        index = [DecisionRow(r[0], 0, UUID(hex=r[1]), *r[2:]) for r in rows]
        positions = self.append(stored, index)
        for table in also:
            self.insert_rows(*table)
        return positions

    def insert_rows(
        self, table: str, columns: Sequence[str], types: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        """Insert plain rows into another table (its name qualified) in this transaction."""
        raise NotImplementedError(f"{type(self).__name__} writes no other table")

    def settle(self) -> None:  # noqa: B027 - by default a session writes what it is handed at once
        """Wait until what ``append_staged`` handed over is written; raise the error of writing it."""

    # Bulk reads: the same answers as the methods above for many keys at once, so that an import
    # asks the index once per batch of lines, not once per line (ARCHITECTURE.md rule 7). These
    # defaults call the single-key methods; the SQLite and PostgreSQL sessions answer each with
    # one query per chunk of keys.

    def find_decisions(self, decision_ids: Collection[str]) -> dict[str, DecisionRow]:
        """``find_decision`` for each id; ids not recorded are left out."""
        found = {i: self.find_decision(i) for i in decision_ids}
        return {i: row for i, row in found.items() if row is not None}

    def known_since_many(self, keys: Collection[tuple[str, str]]) -> dict[tuple[str, str], date]:
        """``known_since(subject, creating_kind)`` for each key; keys never created are left out."""
        found = {key: self.known_since(*key) for key in keys}
        return {key: day for key, day in found.items() if day is not None}

    def latest_many(self, subjects: Collection[str], kind: str) -> dict[str, DecisionRow]:
        """``latest(subject, kind)`` for each subject; subjects without one are left out."""
        found = {s: self.latest(s, kind) for s in subjects}
        return {s: row for s, row in found.items() if row is not None}

    def last_versions(self, originator_ids: Collection[UUID]) -> dict[UUID, int]:
        """``last_version`` for each id (0 for a subject with no events yet)."""
        return {oid: self.last_version(oid) for oid in originator_ids}

    def jurisdictions_of(self, subjects: Collection[str]) -> dict[str, str | None]:
        """``jurisdiction_of`` for each subject (None where nothing is recorded about it)."""
        return {s: self.jurisdiction_of(s) for s in subjects}


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


def _checked(values: Sequence[Any]) -> DecisionRow:
    """An index row read with its event's originator id and version (``CHECKED_COLUMNS``, the
    events joined on the position): the row, or ``IntegrityError`` where no such event is there.

    Why: the index is outside the Merkle tree, and a role that may only INSERT can plant a row
    (an id at a position with no event, or with another decision's event): an import would
    then call a new decision "already recorded", ``show`` display another one. A row is only
    believed with its event; ``ledger verify`` compares every row with its event."""
    row = _row(values[:10])
    oid, version = values[10], values[11]
    if oid is None:
        what = "there is no event there"
    elif (oid if isinstance(oid, UUID) else UUID(str(oid))) != row.originator_id or version != row.originator_version:
        what = "the event there is another decision's"
    else:
        return row
    msg = (
        f"the decision index says {row.decision_id!r} is at position {row.position}, but {what}: "
        "the index was altered; run `ledger verify`"
    )
    raise IntegrityError(msg)


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
