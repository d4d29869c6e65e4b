"""The decision index: recomputed from the events, and the digest chain the checkpoints sign.

The index is outside the Merkle tree, so ``checkpoint`` recomputes the rows of the records it
newly covers from their events (``check_index``), refuses to sign if one disagrees, and signs a
digest chain of the rows as an extension line (``decision-index <position> <digest>``,
``ledger.indexhash``). ``verify --key`` hashes the stored rows under the newest verified one
against it and recomputes only the rows after it (``verify_index``); all of them without a key,
with ``full``, or (to name them) where the digest disagrees.
"""

from __future__ import annotations

import hmac
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any
from uuid import UUID

from ledger import indexhash
from ledger.decisions import record_from_state
from ledger.importchecks import CORRECTION_KINDS
from ledger.importer import jurisdiction_source
from ledger.integrity.tables import Log, fetch_rows, shown
from ledger.internals import state_decoder
from ledger.sql import Cursor
from ledger.topics import read_state

if TYPE_CHECKING:
    from ledger.application import LedgerApplication
    from ledger.integrity.readahead import IndexHelper

INDEX_NAMED = 20
"""Disagreements of the decision index named one by one in a report; beyond that, counted."""

_INDEX_COLUMNS = (
    "decision_id",
    "originator_id",
    "originator_version",
    "kind",
    "subject",
    "effective",
    "digest",
    "target",
    "jurisdiction",
)


@dataclass
class IndexCheck:
    """What ``verify`` found comparing the decision index with the events it is derived from."""

    rows: int = 0
    events: int = 0
    problems: list[str] = field(default_factory=list)
    unnamed: int = 0
    signed: int = 0  # rows checked by a signed digest instead of recomputed

    def add(self, text: str) -> None:
        if len(self.problems) < INDEX_NAMED:
            self.problems.append(text)
        else:
            self.unnamed += 1

    def messages(self) -> list[str]:
        more = [f"and {self.unnamed} more disagreements of the decision index"] if self.unnamed else []
        return [f"decision index: {p}" for p in self.problems] + more


UNKNOWN: Any = object()
"""A jurisdiction the events alone cannot give (the index disagrees where it points): not compared."""


_CORRECTION_FIELDS = dict(zip(CORRECTION_KINDS, ("corrects", "retracts"), strict=True))
"""Each correction kind's field naming the decision it changes."""


def derived_fields(
    topic: Any, state: Any, decode: Callable[[bytes], Any]
) -> tuple[str, str, str, date, bytes, str | None, str | None, str | None]:
    """What an event's index row is derived from, by the event alone: ``(decision id, kind,
    subject, effective, digest, target, fixed jurisdiction, institution)`` (``IndexDeriver.resolve``
    gives the rest). Raises (``ValueError``, ``KeyError``…) where the event cannot be read."""
    if isinstance(topic, bytes):
        topic = topic.decode("utf-8")
    # Looked up and checked as every reader does (``ledger.topics``): an event whose topic or
    # state no reader would take is reported here too, even after the last checkpoint.
    cls, values = read_state(topic, state if type(state) is bytes else bytes(state), decode)
    kind = cls.kind
    record = record_from_state(kind, values)
    name = _CORRECTION_FIELDS.get(kind)
    if name is not None:
        target, fixed, institution = record.fields[name], None, None
    else:
        target = None
        fixed, institution = jurisdiction_source(kind, record.fields)
    return record.id, kind, values["subject"], record.effective, record.digest(), target, fixed, institution


class IndexDeriver:
    """An event's index row as the import derives it (``ledger.application``: the kind from the
    topic, the digest of the record, the target of a correction, the jurisdiction of the
    catalogue or of the institution), for events read in log order.

    An institution's jurisdiction is that of its first registration (``jurisdiction_of``); a
    correction's is its target's, read from the index row of the target (checked when it was
    passed, earlier in the log). Memory stays bounded: the institutions' cache is emptied past
    ``CACHE`` entries and asked of the index again.
    """

    CACHE = 100_000

    def __init__(self, c: Cursor, log: Log, app: LedgerApplication) -> None:
        self.c, self.log = c, log
        self.decode = state_decoder(app.mapper)
        self.corrections = _CORRECTION_FIELDS
        self.institutions: dict[str, str | None] = {}
        self.dates = log.db.dialect == "postgres"  # the index's days come back as dates, else as text
        self.days: dict[date, str] = {}

    def day(self, effective: date) -> str:
        """``effective.isoformat()``, kept: a log names a few thousand distinct days."""
        if len(self.days) > self.CACHE:
            self.days.clear()
        text = self.days[effective] = effective.isoformat()
        return text

    def row(self, topic: Any, state: Any) -> tuple[Any, ...]:
        """``(decision id, kind, subject, effective, digest, target, jurisdiction)``; raises
        (``ValueError``, ``KeyError``…) where the event cannot be read."""
        return self.resolve(*derived_fields(topic, state, self.decode))

    def resolve(
        self,
        decision_id: str,
        kind: str,
        subject: str,
        effective: date,
        digest: bytes,
        target: str | None,
        fixed: str | None,
        institution: str | None,
    ) -> tuple[Any, ...]:
        """``row``'s answer from an event's ``derived_fields``: its jurisdiction, the one part that
        depends on the events before it (in log order)."""
        if kind in self.corrections:
            jurisdiction = self._target_jurisdiction(target) if target is not None else UNKNOWN
        else:
            if kind == "institution.registered":
                self._remember(subject, fixed)
            jurisdiction = fixed if institution is None else self._jurisdiction(institution)
        return decision_id, kind, subject, effective, digest, target, jurisdiction

    def _remember(self, institution: str, jurisdiction: str | None) -> None:
        if len(self.institutions) >= self.CACHE:
            self.institutions.clear()
        self.institutions.setdefault(institution, jurisdiction)

    def _jurisdiction(self, institution: str) -> Any:
        if institution in self.institutions:
            return self.institutions[institution]
        # Past the cache: the institution's first event, found through the index but read and
        # derived here, so a row altered in the index does not vouch for itself.
        sql = f"SELECT MIN(position) FROM {self.log.index} WHERE subject = ?"
        return self._derived_at(self.c.execute(sql, (institution,)).fetchone(), institution, subject=True)

    def _target_jurisdiction(self, target: str) -> Any:
        sql = f"SELECT position FROM {self.log.index} WHERE decision_id = ?"
        return self._derived_at(self.c.execute(sql, (target,)).fetchone(), target, subject=False)

    def _derived_at(self, found: Sequence[Any] | None, key: str, *, subject: bool) -> Any:
        """The jurisdiction derived from the event at a position the index names, if that event
        is the one looked for (its decision id or subject is ``key``); else ``UNKNOWN`` (the
        index disagrees there, and is reported at that position)."""
        if found is None or found[0] is None:
            return UNKNOWN
        columns = "CAST(topic AS BLOB), CAST(state AS BLOB)" if self.log.db.dialect == "sqlite" else "topic, state"
        sql = f"SELECT {columns} FROM {self.log.events} WHERE {self.log.position} = ?"
        event = self.c.execute(sql, (found[0],)).fetchone()
        if event is None:
            return UNKNOWN
        try:
            decision_id, _, event_subject, _, _, _, jurisdiction = self.row(*event)
        except Exception:  # an unreadable event: reported at its own position
            return UNKNOWN
        return jurisdiction if (event_subject if subject else decision_id) == key else UNKNOWN


def check_index(
    c: Cursor, log: Log, app: LedgerApplication, stop: int, batch: int, *, after: int = 0, bounded: bool = False
) -> IndexCheck:
    """Recompute the decision index from the events and compare it, row by row, in log order.

    The index is outside the Merkle tree, and import, ``show``, ``log`` and the views' look-ups
    answer from it: every event must have its row, with the content the import derives from that
    event, and no row may lack its event. Streams the events joined with their rows by position,
    ``batch`` positions at a time (one read transaction: the snapshot the tree was checked in).
    Only positions after ``after`` (those a signed index digest covers are checked by
    ``verify_index``); rows without an event are looked for up to ``stop`` when ``bounded``
    (what a checkpoint is about to cover), else at every position after ``after``.
    """
    out = IndexCheck()
    derive = IndexDeriver(c, log, app)
    index_columns = ", ".join(f"d.{name}" for name in ("position", *_INDEX_COLUMNS))
    sql = (
        f"SELECT e.{log.position}, e.originator_id, e.originator_version, e.topic, e.state, {index_columns} "
        f"FROM {log.events} e LEFT JOIN {log.index} d ON d.position = e.{log.position} "
        f"WHERE e.{log.position} > ? AND e.{log.position} <= ? ORDER BY e.{log.position}"
    )
    careful = sql
    if log.db.dialect == "sqlite":  # text that is not UTF-8 cannot be read as text: read bytes then
        text = ("decision_id", "originator_id", "kind", "subject", "effective", "target", "jurisdiction")
        for name in ("e.originator_id", "e.topic", "e.state", *(f"d.{n}" for n in text)):
            careful = careful.replace(f"{name},", f"CAST({name} AS BLOB),", 1).replace(
                f"{name} FROM", f"CAST({name} AS BLOB) FROM", 1
            )
    first, previous = after, None
    while after < stop:
        high = min(stop, after + batch)
        try:
            rows = fetch_rows(c, sql, (after, high))
        except sqlite3.OperationalError:
            rows = [_as_text(row) for row in fetch_rows(c, careful, (after, high))]
        for row in rows:
            position = row[0]
            if position == previous:  # a second row joined to the same event
                out.add(f"a second row ({row[6]!r}) for the event at position {position}")
                continue
            previous = position
            out.events += 1
            if row[5] is None:
                out.add(f"no row for the event at position {position}: its decision is hidden from look-ups")
                continue
            out.rows += 1
            _compare_row(out, derive, row)
        after = high
    where, params = ("position > ? AND position <= ?", (first, stop)) if bounded else ("position > ?", (first,))
    (count,) = c.execute(f"SELECT COUNT(*) FROM {log.index} WHERE {where}", params).fetchone() or (0,)
    if int(count) != out.rows:
        extra = c.execute(
            f"SELECT d.position, d.decision_id FROM {log.index} d WHERE {where} AND NOT EXISTS (SELECT 1 FROM "
            f"{log.events} e WHERE e.{log.position} = d.position) ORDER BY d.position LIMIT {INDEX_NAMED + 1}",
            params,
        ).fetchall()
        for position, decision_id in extra:
            out.add(f"the row of {decision_id!r} names position {position}, where there is no event (planted)")
        if not extra:
            out.add(f"{count} rows for {out.rows} events")
    return out


INDEX_SEED = indexhash.SEED
"""``D_0``, the digest of the empty index: the chain starts here (docs/reliability.md)."""


def index_row_bytes(
    position: int,
    decision_id: str,
    originator_id: UUID,
    originator_version: int,
    kind: str,
    subject: str,
    effective: date,
    digest: bytes,
    target: str | None,
    jurisdiction: str | None,
) -> bytes:
    """The canonical bytes of one decision-index row: a MessagePack array of its ten values, in
    this order, each in its smallest encoding (integers as integers, texts as ``str``, the
    digest as ``bin``, an absent target or jurisdiction as ``nil``), the subject's UUID as its 32
    lower-case hex digits, the day as ``YYYY-MM-DD``. The reference definition; ``verify`` and
    ``checkpoint`` have the database give the values in this form (``index_select``)."""
    return indexhash.PACK(
        (
            position,
            decision_id,
            originator_id.hex,
            originator_version,
            kind,
            subject,
            effective.isoformat(),
            digest,
            target,
            jurisdiction,
        )
    )


def index_select(log: Log) -> str:
    """Every index row with a position in ``(after, stop]``, in position order, its values as
    ``index_row_bytes`` takes them (PostgreSQL's ``uuid`` and ``date`` as that text; SQLite
    stores them so). SQLite gives each value with the type it is stored as, so a value stored as
    another type than the import writes packs to other bytes."""
    if log.db.dialect == "postgres":
        uuid_text, day = "replace(originator_id::text, '-', '')", "to_char(effective, 'YYYY-MM-DD')"
    else:
        uuid_text, day = "originator_id", "effective"
    return (
        f"SELECT position, decision_id, {uuid_text}, originator_version, kind, subject, {day}, digest, target, "
        f"jurisdiction FROM {log.index} WHERE position > ? AND position <= ? ORDER BY position"
    )


def index_fetch(c: Cursor, log: Log) -> indexhash.Fetch:
    sql = index_select(log)
    return lambda after, stop: fetch_rows(c, sql, (after, stop))


@dataclass(frozen=True)
class IndexLink:
    """A checkpoint's signed ``decision-index`` line: the index digest up to ``position``."""

    label: str
    position: int
    digest: bytes


def _signed_index(fetch: indexhash.Fetch, chain: Sequence[IndexLink], batch: int) -> tuple[bool, int]:
    """Whether the stored rows up to the last link's position hash, link by link, to its signed
    digest; and how many rows were hashed. Any row that cannot be read as stored (SQLite text
    that is not UTF-8) is a disagreement: the caller then recomputes the rows to name it."""
    try:
        digest, rows = indexhash.chain(fetch, [link.position for link in chain], batch)
    except (sqlite3.Error, ValueError, TypeError):
        return False, 0
    return hmac.compare_digest(digest, chain[-1].digest), rows


def verify_index(
    c: Cursor,
    log: Log,
    app: LedgerApplication,
    stop: int,
    batch: int,
    chain: Sequence[IndexLink],
    helper: IndexHelper | None = None,
) -> IndexCheck:
    """The decision index checked by the signed digest up to the last link, recomputed after it;
    recomputed whole without a link, or when the digest disagrees (to name the rows)."""
    done = helper.result() if helper is not None else None
    if not chain:
        return check_index(c, log, app, stop, batch)
    last = chain[-1]
    if done is not None and helper is not None and helper.positions == [link.position for link in chain]:
        matches, hashed = hmac.compare_digest(done[0], last.digest), done[1]
    else:
        matches, hashed = _signed_index(index_fetch(c, log), chain, batch)
    if not matches:
        out = check_index(c, log, app, stop, batch)
        if not out.problems:
            out.add(
                f"its rows up to position {last.position} do not hash to the digest signed in {last.label}, though "
                "each agrees with its event: a checkpoint's decision-index line or a row's stored type was altered"
            )
        return out
    out = check_index(c, log, app, stop, batch, after=last.position)
    out.rows += hashed
    out.signed = hashed
    return out


def _as_text(row: Sequence[Any]) -> tuple[Any, ...]:
    """A row read as bytes (``CAST … AS BLOB``) with its text columns as text again; bytes that
    are not UTF-8 become U+FFFD, so they match nothing the events derive."""
    text = {1, 6, 7, 9, 10, 11, 13, 14}  # originator ids, index text columns (not the state, digest)
    return tuple(v.decode("utf-8", "replace") if k in text and isinstance(v, bytes) else v for k, v in enumerate(row))


def _compare_row(out: IndexCheck, derive: IndexDeriver, row: Sequence[Any]) -> None:
    position, oid, version, topic, state = row[:5]
    stored = row[6:]
    try:
        decision_id, kind, subject, effective, digest, target, jurisdiction = derive.row(topic, state)
    except Exception as e:  # a malformed event: the tree check names it; its row cannot be judged
        out.add(f"the event at position {position} cannot be read ({type(e).__name__}: {e}): its row is unchecked")
        return
    day = effective if derive.dates else derive.days.get(effective) or derive.day(effective)
    expected = (decision_id, oid, version, kind, subject, day, digest, target, jurisdiction)
    if stored == expected:  # the stored row as the database gives it (SQLite: the day as text)
        return
    got = list(stored)
    if isinstance(got[5], date):
        got[5], expected = got[5].isoformat(), (*expected[:5], effective.isoformat(), *expected[6:])
    if isinstance(got[6], (bytearray, memoryview)):
        got[6] = bytes(got[6])
    differ = [
        f"{name} {shown(have)} (the event says {shown(want)})"
        for name, have, want in zip(_INDEX_COLUMNS, got, expected, strict=True)
        if have != want and want is not UNKNOWN
    ]
    if not differ:
        return
    out.add(f"the row at position {position} ({shown(stored[0])}) disagrees with its event: {', '.join(differ)}")
