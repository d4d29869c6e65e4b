"""The projection runner: consumes the log in order, keeps each view's position, rebuilds from zero.

Each projection keeps its tracked position in ``ledger_tracking`` and writes its rows in the same
transaction as that position, so a view is always exactly "the log up to N" — after a crash, a
projection resumes from its last committed batch and never applies a record twice. Work is taken
in batches of notifications (one transaction per batch, ``executemany`` writes), never one
transaction per event (ARCHITECTURE.md rule 7).

Why not eventsourcing's ``ProjectionRunner``: it follows an application through
``recorder.subscribe()``, which SQLite's recorder does not implement (NOTES.md); reading
``select_notifications`` in batches works on both databases, and on PostgreSQL ``ledger project
--follow`` adds LISTEN/NOTIFY-driven waiting on top.

**Bitemporal rows** (ARCHITECTURE.md rule 3). A ``TimelineProjection`` says, for a key (a
technology, a use, a privilege…), which decisions feed it and how they make a timeline of
``[valid_from, valid_to)`` rows. When a decision at position *p* touches a key, the runner
recomputes that key's timeline from its inputs as known at *p*, closes the open rows that differ
(``known_to = p``) and inserts the new ones (``known_from = p``). Nothing else is ever changed,
so ``--as-of D --known-at N`` is one indexed select over rows with ``valid_from <= D < valid_to``
and ``known_from <= N < known_to``.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

from ledger import canonical
from ledger.application import LedgerApplication
from ledger.decisions import DecisionRecord, record_from_state, record_from_text
from ledger.errors import StorageError, UnreadableRecord
from ledger.sql import Cursor, Database
from ledger.storage import EVENTS_TABLE
from ledger.topics import checked_state, event_class, kind_of, read_state
from projections.replay import Resolved, resolve

BATCH = 1000
BATCH_REBUILD = 10_000
"""Records per transaction when rebuilding: fewer commits (each one a sync of the WAL)."""
FOREVER = "9999-12-31"
"""``valid_to`` of a row still in force; a date string so that comparisons stay indexed."""
NOW = 2**62
"""``known_to`` of a row the ledger still holds true."""

CORRECTION_KINDS = ("decision.corrected", "decision.retracted")

T = TypeVar("T")


@dataclass(frozen=True)
class TimelineRow:
    """One state of a key, in force on ``[valid_from, valid_to)``."""

    valid_from: date
    valid_to: date | None
    values: tuple[Any, ...]


class Projection(ABC):
    """A read model built from the log alone. ``version`` changes when its tables change shape:
    the runner then rebuilds it from zero."""

    name: str
    version: int = 1

    @abstractmethod
    def create(self, db: Database, c: Cursor) -> None:
        """Create this projection's tables (idempotently)."""

    @abstractmethod
    def drop(self, db: Database, c: Cursor) -> None:
        """Drop this projection's tables, for a rebuild."""

    @abstractmethod
    def process(self, db: Database, c: Cursor, batch: Sequence[tuple[int, DecisionRecord]]) -> None:
        """Apply a batch of decisions, in log order, inside the runner's transaction."""

    def deferrable_indexes(self, db: Database) -> list[tuple[str, str]]:
        """``(name, CREATE INDEX statement)`` of the indexes ``create`` makes that only queries
        use, not ``process``: a rebuild drops them, loads, then creates them (sorting once is
        cheaper than maintaining an index row by row)."""
        del db
        return []


class TimelineProjection(Projection):
    """A bitemporal view whose rows are the timeline of each key (see the module docstring).

    A key's inputs (the decisions that fed it) are kept as references into the log — ``(key,
    decision_id, position)`` in ``<table>_inputs`` — not as copies of the records: the log already
    holds every record, and a key's decisions are read back from it (``LogReader``) only when a
    later decision touches the key again. A view whose keys are its decisions' own ids
    (``keys_are_decision_ids``: cases, trainees) keeps no inputs at all: such a key's decisions are
    the decision itself and what corrects or retracts it, which the ledger's decision index
    (``ledger_decisions``: id, position, target) already says.
    """

    version = 2
    """2: inputs are references into the log (1 stored each record's canonical text again)."""

    table: str
    columns: tuple[str, ...]
    """The value columns of a row (after ``key``)."""
    indexes: tuple[tuple[str, ...], ...] = ()

    kinds: frozenset[str] | None = None
    """The kinds of decision ``keys`` can name a key for, when a projection knows them: the runner
    then skips other decisions (corrections aside) without asking. None: ask ``keys`` every time."""

    keys_are_decision_ids: bool = False
    """True when a decision (not a correction) of one of ``kinds`` feeds exactly the key named by
    its own id, and no other decision does: such a key is new (ids are unique in a ledger), so the
    batch need not look for its earlier inputs, and the view keeps none (see above)."""

    log: LogReader | None = None
    """Where a key's earlier decisions are read back from; the runner sets it."""

    @abstractmethod
    def keys(self, record: DecisionRecord) -> Iterable[str]:
        """The keys a (non-correction) decision feeds; corrections follow their target."""

    @abstractmethod
    def timeline(self, key: str, decisions: Sequence[Resolved]) -> list[TimelineRow]:
        """The rows of ``key`` from its decisions (corrections applied, in valid-time order)."""

    def first_rows(self, key: str, position: int, record: DecisionRecord) -> list[list[Any]]:
        """The stored rows (``key``, ``valid_from``, ``valid_to``, values, ``known_from``,
        ``known_to``) of a key whose only decision is ``record``: what ``process`` opens for it
        (a subclass may build them more directly, to the same values)."""
        rows = {_stored(r) for r in self.timeline(key, [Resolved(position, record)])}
        return [[key, *row, position, NOW] for row in sorted(rows, key=_sort_key)]

    # -- machinery --------------------------------------------------------------------------

    @property
    def inputs(self) -> str:
        return f"{self.table}_inputs"

    def create(self, db: Database, c: Cursor) -> None:
        if self.keys_are_decision_ids and self.kinds is None:
            msg = f"{self.name}: keys_are_decision_ids needs the kinds that feed the view"
            raise TypeError(msg)
        cols = ", ".join(f"{col} TEXT" for col in self.columns)
        t = db.table(self.table)
        c.execute(
            f"CREATE TABLE IF NOT EXISTS {t} (key TEXT NOT NULL, {cols}, valid_from TEXT NOT NULL, "
            f"valid_to TEXT NOT NULL, known_from {db.bigint} NOT NULL, known_to {db.bigint} NOT NULL)"
        )
        c.execute(f"CREATE INDEX IF NOT EXISTS {self.table}_key ON {t} (key, known_to)")
        for _, sql in self.deferrable_indexes(db):
            c.execute(sql)
        if self.keys_are_decision_ids:
            return
        i = db.table(self.inputs)
        c.execute(
            f"CREATE TABLE IF NOT EXISTS {i} (key TEXT NOT NULL, decision_id TEXT NOT NULL, "
            f"position {db.bigint} NOT NULL, PRIMARY KEY (key, position))"
        )
        c.execute(f"CREATE INDEX IF NOT EXISTS {self.inputs}_decision ON {i} (decision_id)")

    def deferrable_indexes(self, db: Database) -> list[tuple[str, str]]:
        t = db.table(self.table)
        out = [(f"{self.table}_time", f"CREATE INDEX IF NOT EXISTS {self.table}_time ON {t} (valid_from, known_from)")]
        for cols_ in self.indexes:
            name = f"{self.table}_{'_'.join(cols_)}"
            out.append((name, f"CREATE INDEX IF NOT EXISTS {name} ON {t} ({', '.join(cols_)}, valid_from)"))
        return out

    def drop(self, db: Database, c: Cursor) -> None:
        c.execute(f"DROP TABLE IF EXISTS {db.table(self.table)}")
        c.execute(f"DROP TABLE IF EXISTS {db.table(self.inputs)}")  # also a version 1 view's copies

    def process(self, db: Database, c: Cursor, batch: Sequence[tuple[int, DecisionRecord]]) -> None:
        """Apply a batch: what one decision at a time would do, with the database asked once per
        batch. The keys the batch touches are read once (their inputs and their open rows); each
        decision is then applied in memory, in log order — its inputs appended, its keys'
        timelines recomputed, rows that changed closed at its position and new ones opened — and
        the batch's inputs, closings and new rows are written with one ``executemany`` each. A row
        opened and closed within the batch is written once, already closed. A key with nothing
        before the batch and one decision in it (most keys of a rebuild: each case) gets its rows
        from ``first_rows`` without the bookkeeping."""
        plan = self._plan(db, c, batch)
        if not plan:
            return
        state = self._load(db, c, plan, batch[0][0])
        new_inputs: list[tuple[str, str, int]] = []
        keep_inputs = not self.keys_are_decision_ids
        closed: list[tuple[Any, ...]] = []  # rows read from the database, closed in this batch
        opened: list[list[Any]] = []  # rows opened in this batch (their known_to may change)
        first_rows = self.first_rows
        for position, record, keys in plan:
            # What a key's log holds is the record as the log reads back (``LogReader``).
            read = _as_logged(record)
            correction = read.kind in CORRECTION_KINDS
            for key in keys:
                if keep_inputs:
                    new_inputs.append((key, record.id, position))
                entry = state.get(key)
                if entry is None:
                    if not correction:
                        opened.extend(first_rows(key, position, read))
                        continue
                    entry = state[key] = ([], {})  # pragma: no cover - a correction's key has a log
                log, open_rows = entry
                if log or correction:
                    log.append((position, read))
                    resolved = resolve(log)
                else:  # what ``resolve`` makes of a key's first decision, without its dictionaries
                    log.append((position, read))
                    resolved = [Resolved(position, read)]
                new = {_stored(r) for r in self.timeline(key, resolved)}
                for row in [r for r in open_rows if r not in new]:
                    where = open_rows.pop(row)
                    if where < 0:
                        closed.append((position, key, NOW, *row))
                    else:
                        opened[where][-1] = position
                for row in sorted(new.difference(open_rows), key=_sort_key):
                    open_rows[row] = len(opened)
                    opened.append([key, *row, position, NOW])
        t = db.table(self.table)
        if new_inputs:
            c.insert_many(db.table(self.inputs), ("key", "decision_id", "position"), _INPUT_TYPES, new_inputs)
        c.executemany(
            f"UPDATE {t} SET known_to = ? WHERE key = ? AND known_to = ? AND valid_from = ? AND valid_to = ? "
            + "".join(
                f"AND {col} IS NOT DISTINCT FROM ? " if db.dialect == "postgres" else f"AND {col} IS ? "
                for col in self.columns
            ),
            closed,
        )
        c.insert_many(
            t,
            ("key", "valid_from", "valid_to", *self.columns, "known_from", "known_to"),
            ("text", "text", "text", *("text" for _ in self.columns), "bigint", "bigint"),
            opened,
        )
        self.written(db, c, closed, opened)

    def written(
        self, db: Database, c: Cursor, closed: Sequence[tuple[Any, ...]], opened: Sequence[Sequence[Any]]
    ) -> None:
        """What ``process`` has just written, in the same transaction: the rows it closed
        (``(position, key, NOW, valid_from, valid_to, *values)``: rows that were open in the
        database) and those it opened (``[key, valid_from, valid_to, *values, known_from,
        known_to]``; one opened and closed within the batch has the closing position as
        ``known_to``). A projection that keeps a table derived from its rows (the cases' counts)
        brings it up to date here; by default, nothing."""

    def _plan(
        self, db: Database, c: Cursor, batch: Sequence[tuple[int, DecisionRecord]]
    ) -> list[tuple[int, DecisionRecord, list[str]]]:
        """The keys each decision of the batch touches (a correction: those of what it corrects)."""
        kinds = self.kinds
        first = batch[0][0]
        if kinds is not None:  # only the decisions that can touch this view, still in log order
            batch = _of_kinds(batch, kinds)
        targets = {t for _, r in batch if r.kind in CORRECTION_KINDS and (t := _target(r)) is not None}
        # decision id -> the keys it fed (before the batch, then earlier in it)
        fed = self._fed(db, c, sorted(targets), first) if targets else {}
        plan = []
        for position, record in batch:
            if record.kind in CORRECTION_KINDS:
                keys = list(fed.get(_target(record) or "", ()))
            elif kinds is not None and record.kind not in kinds:
                continue
            else:
                keys = sorted(set(self.keys(record)))
            if not keys:
                continue
            if record.id in targets:  # a later correction in the batch finds them
                fed.setdefault(record.id, []).extend(keys)
            plan.append((position, record, keys))
        return plan

    def _fed(self, db: Database, c: Cursor, targets: Sequence[str], before: int) -> dict[str, list[str]]:
        """The keys each of ``targets`` fed, for those recorded before position ``before``."""
        fed: dict[str, list[str]] = {}
        if self.keys_are_decision_ids:
            # An original of one of ``kinds`` fed its own id; a correction (which a retraction may
            # point at), what its own target fed.
            found = _decisions(db, c, "decision_id", targets, before)
            chain = sorted({str(t) for _, kind, t, _ in found if kind in CORRECTION_KINDS and t is not None})
            found += _decisions(db, c, "decision_id", chain, before)
            about = {d: (kind, t) for d, kind, t, _ in found}
            kinds = self.kinds or frozenset()

            def keys_of(decision_id: str, depth: int = 0) -> list[str]:
                kind, target = about.get(decision_id, ("", None))
                if kind in CORRECTION_KINDS:
                    return keys_of(str(target), depth + 1) if target is not None and depth < 2 else []
                return [decision_id] if kind in kinds else []

            for target in targets:
                if keys := keys_of(target):
                    fed[target] = keys
            return fed
        inputs = db.table(self.inputs)
        for chunk in _chunks(targets):
            for key, decision_id in c.execute(
                f"SELECT DISTINCT key, decision_id FROM {inputs} WHERE decision_id IN ({', '.join('?' * len(chunk))}) "
                "ORDER BY key",
                chunk,
            ).fetchall():
                fed.setdefault(decision_id, []).append(key)
        return fed

    def _load(
        self, db: Database, c: Cursor, plan: Sequence[tuple[int, DecisionRecord, list[str]]], before: int
    ) -> dict[str, tuple[list[tuple[int, DecisionRecord]], dict[tuple[Any, ...], int]]]:
        """Each touched key's inputs and open rows as recorded before the batch (open rows map to
        -1: "in the database"). Keys absent from the result have nothing before the batch and one
        decision in it."""
        state: dict[str, tuple[list[tuple[int, DecisionRecord]], dict[tuple[Any, ...], int]]] = {}
        touches: dict[str, int] = {}
        wanted: list[str] = []
        for _, record, keys in plan:
            fresh = self.keys_are_decision_ids and record.kind not in CORRECTION_KINDS
            for key in keys:
                seen = touches.get(key)
                touches[key] = 1 if seen is None else seen + 1
                if seen is None and not fresh:
                    wanted.append(key)
        if wanted:
            positions = self._positions(db, c, wanted, before)
            assert self.log is not None, "a TimelineProjection runs inside a Runner"
            records = self.log.records(c, [p for ps in positions.values() for p in ps])
            for key, ps in positions.items():
                state[key] = ([(p, records[p]) for p in ps], {})
            t = db.table(self.table)
            cols = ", ".join(self.columns)
            for chunk in _chunks(wanted):
                marks = ", ".join("?" * len(chunk))
                for key, *row in c.execute(
                    f"SELECT key, valid_from, valid_to, {cols} FROM {t} WHERE key IN ({marks}) AND known_to = ?",
                    [*chunk, NOW],
                ).fetchall():
                    state.setdefault(key, ([], {}))[1][tuple(row)] = -1
        for key, count in touches.items():
            if count > 1 and key not in state:
                state[key] = ([], {})
        return state

    def _positions(self, db: Database, c: Cursor, keys: Sequence[str], before: int) -> dict[str, list[int]]:
        """The positions of the decisions that fed each of ``keys`` before position ``before``, in
        log order (keys with none are left out)."""
        out: dict[str, list[int]] = {}
        if self.keys_are_decision_ids:
            # The decision itself, what corrects or retracts it, and what retracts a correction.
            owner = {key: key for key in keys}
            for decision_id, _, _, position in _decisions(db, c, "decision_id", keys, before):
                out.setdefault(decision_id, []).append(position)
            frontier = list(keys)
            for _ in range(2):
                found = _decisions(db, c, "target", frontier, before)
                frontier = []
                for decision_id, _, target, position in found:
                    owner[decision_id] = owner[str(target)]
                    out.setdefault(owner[decision_id], []).append(position)
                    frontier.append(decision_id)
                if not frontier:
                    break
            for ps in out.values():
                ps.sort()
            return out
        inputs = db.table(self.inputs)
        for chunk in _chunks(keys):
            for key, position in c.execute(
                f"SELECT key, position FROM {inputs} WHERE key IN ({', '.join('?' * len(chunk))}) "
                "ORDER BY key, position",
                chunk,
            ).fetchall():
                out.setdefault(key, []).append(int(position))
        return out


_GROUPED: list[tuple[Sequence[tuple[int, DecisionRecord]], dict[str, list[int]]]] = []
"""The last batch ``_of_kinds`` grouped, with the indexes of its records by kind: every view with
``kinds`` is given the same page in turn, so the page is walked once, not once per view."""


def _of_kinds(batch: Sequence[tuple[int, DecisionRecord]], kinds: frozenset[str]) -> list[tuple[int, DecisionRecord]]:
    """The decisions of ``batch`` of one of ``kinds`` or a correction, in log order."""
    if _GROUPED and _GROUPED[0][0] is batch:
        groups = _GROUPED[0][1]
    else:
        groups = {}
        for i, (_, record) in enumerate(batch):
            group = groups.get(record.kind)
            if group is None:
                groups[record.kind] = [i]
            else:
                group.append(i)
        _GROUPED[:] = [(batch, groups)]
    wanted = [groups[k] for k in kinds.union(CORRECTION_KINDS) if k in groups]
    if len(wanted) == 1:
        return [batch[i] for i in wanted[0]]
    return [batch[i] for i in sorted(i for group in wanted for i in group)]


def _decisions(
    db: Database, c: Cursor, column: str, values: Sequence[str], before: int
) -> list[tuple[str, str, str | None, int]]:
    """``(decision_id, kind, target, position)`` of the decisions recorded before ``before`` whose
    ``column`` (``decision_id`` or ``target``) is one of ``values``, from the ledger's index."""
    out: list[tuple[str, str, str | None, int]] = []
    table = db.table("ledger_decisions")
    for chunk in _chunks(values):
        out.extend(
            (str(d), str(kind), None if target is None else str(target), int(position))
            for d, kind, target, position in c.execute(
                f"SELECT decision_id, kind, target, position FROM {table} "
                f"WHERE {column} IN ({', '.join('?' * len(chunk))}) AND position < ?",
                [*chunk, before],
            ).fetchall()
        )
    return out


class LogReader:
    """Reads stored records back by position, inside the runner's transaction: what a view's
    inputs point at. The same records ``Runner`` pages through (``record_from_state`` of the
    stored state, after the mapper's cipher and compressor when the ledger has them)."""

    def __init__(self, app: LedgerApplication, db: Database) -> None:
        mapper = app.mapper
        decode = mapper.transcoder.decode
        cipher, compressor = mapper.cipher, mapper.compressor

        def state(data: bytes) -> Any:
            if cipher is not None:
                data = cipher.decrypt(data)
            if compressor is not None:
                data = compressor.decompress(data)
            return decode(data)

        self._state = decode if cipher is None and compressor is None else state
        events = EVENTS_TABLE
        if db.dialect == "postgres":
            self._sql = f"SELECT notification_id, topic, state FROM {db.table(events)} WHERE notification_id IN "
        else:
            self._sql = f"SELECT rowid, topic, state FROM {events} WHERE rowid IN "

    def records(self, c: Cursor, positions: Iterable[int]) -> dict[int, DecisionRecord]:
        """The record at each position, as a view's log holds it (``_as_logged``)."""
        wanted = sorted(set(positions))
        out: dict[int, DecisionRecord] = {}
        for chunk in _chunks(wanted):
            c.execute(f"{self._sql}({', '.join('?' * len(chunk))})", chunk, binary=True)
            for position, topic, state in c.fetchall():
                out[int(position)] = _as_logged(stored_decision(int(position), topic, state, self._state))
        if len(out) != len(wanted):
            missing = sorted(set(wanted) - set(out))[:5]
            msg = f"the views refer to records missing from the log (positions {missing}): run `ledger verify`"
            raise StorageError(msg)
        return out


def _as_logged(record: DecisionRecord) -> DecisionRecord:
    """A record as a key's log holds it: for every kind but a correction that is the record; a
    correction's ``fields`` (normalised Python values when recorded) as its canonical text reads
    back, which is what views have always applied (``apply_correction`` re-checks them)."""
    if record.kind != "decision.corrected":
        return record
    return record_from_text(record_text(record))


def decision_from_state(topic: str, state: Mapping[str, Any]) -> DecisionRecord:
    """``record_from_state`` of an already decoded state of ``topic``, checked as ``stored_decision``
    checks what the runner pages through."""
    cls = event_class(topic)
    return record_from_state(cls.kind, checked_state(cls, state))


def stored_decision(position: int, topic: str, data: bytes, decode: Callable[[bytes], Any]) -> DecisionRecord:
    """The decision of the stored record at ``position``: its topic looked up, never imported, and
    its state decoded and checked (``ledger.topics.read_state``), so a record the vocabulary does
    not read is an ``UnreadableRecord`` naming its position, not a traceback in a projection."""
    try:
        cls, state = read_state(topic, data, decode)
    except UnreadableRecord as e:
        raise e.located(position=position) from None
    return record_from_state(cls.kind, state)


def _kind(topic: str) -> str:
    """The kind of decision a stored topic holds (``ledger.events:CasePerformed`` → ``case.performed``)."""
    return kind_of(topic)


_INPUT_TYPES = ("text", "text", "bigint")


def _target(record: DecisionRecord) -> str | None:
    target = record.fields.get("corrects") or record.fields.get("retracts")
    return str(target) if target is not None else None


def _chunks(keys: Sequence[T], size: int = 500) -> Iterator[list[T]]:
    for start in range(0, len(keys), size):
        yield list(keys[start : start + size])


_TEXTS: dict[int, tuple[DecisionRecord, str]] = {}


def record_text(record: DecisionRecord) -> str:
    """The canonical JSON of a record (what views store as a record's text), computed once per
    record of the runner's current page however many projections ask."""
    cached = _TEXTS.get(id(record))
    if cached is not None and cached[0] is record:
        return cached[1]
    text = canonical.dumps(record.to_json_dict())
    if len(_TEXTS) < 4 * BATCH_REBUILD:
        _TEXTS[id(record)] = (record, text)
    return text


def intervals(states: Sequence[tuple[date, tuple[Any, ...] | None]]) -> list[TimelineRow]:
    """Rows from a sequence of (day, state) changes; ``None`` means "not in the list"."""
    rows: list[TimelineRow] = []
    for i, (day, state) in enumerate(states):
        # Several changes on one day: the last one stands.
        if i + 1 < len(states) and states[i + 1][0] == day:
            continue
        if rows and rows[-1].valid_to is None:
            last = rows[-1]
            if last.values == state:
                continue
            rows[-1] = TimelineRow(last.valid_from, day, last.values)
        if state is not None:
            rows.append(TimelineRow(day, None, state))
    return rows


def _sort_key(row: tuple[Any, ...]) -> tuple[str, ...]:
    return tuple("" if v is None else str(v) for v in row)


def _stored(row: TimelineRow) -> tuple[Any, ...]:
    return (
        row.valid_from.isoformat(),
        row.valid_to.isoformat() if row.valid_to else FOREVER,
        *(None if v is None else _text(v) for v in row.values),
    )


def stored_text(value: Any) -> str:
    """A value as a view's column stores it: a string as it is, anything else its canonical JSON."""
    if isinstance(value, str):
        return value
    return canonical.dumps(value)


_text = stored_text


class Runner:
    """Runs projections over one ledger: catch up after writes, rebuild on demand, follow."""

    def __init__(
        self, app: LedgerApplication, projections: Sequence[Projection], *, db: Database | None = None
    ) -> None:
        """``db``: where the views are written, when not beside the log (``projections.audit``
        rebuilds into a scratch database that reads the log of ``app``)."""
        names = [p.name for p in projections]
        if len(set(names)) != len(names):
            msg = f"two projections share a name: {sorted(names)}"
            raise ValueError(msg)
        self.app = app
        self.db = db or Database(app.store)
        self.projections = {p.name: p for p in projections}
        self.log = LogReader(app, self.db)
        self._ready = False

    def _setup(self) -> None:
        if self._ready:
            return
        tracking = self.db.table("ledger_tracking")
        with self.db.transaction() as c:
            self._serialise(c)
            c.execute(
                f"CREATE TABLE IF NOT EXISTS {tracking} (projection TEXT PRIMARY KEY, "
                f"position {self.db.bigint} NOT NULL, version INTEGER NOT NULL)"
            )
            known = {
                r[0]: (int(r[1]), int(r[2]))
                for r in c.execute(f"SELECT projection, position, version FROM {tracking}").fetchall()
            }
            for p in self.projections.values():
                if p.name in known and known[p.name][1] != p.version:
                    with self._dropping(c):
                        p.drop(self.db, c)
                    c.execute(f"DELETE FROM {tracking} WHERE projection = ?", (p.name,))
                    known.pop(p.name)
                p.create(self.db, c)
                if p.name not in known:
                    c.execute(
                        f"INSERT INTO {tracking} (projection, position, version) VALUES (?, 0, ?)", (p.name, p.version)
                    )
        self._ready = True

    @contextmanager
    def _dropping(self, c: Cursor) -> Iterator[None]:
        """Drop views without overwriting their pages with zeros.

        This SQLite is built with ``secure_delete`` on, so dropping a view's tables wrote every
        freed page again (through the WAL, then the checkpoint): the largest share of a rebuild's
        writes. A view holds nothing the log does not (it is derived from it), so its freed pages
        need no scrubbing; the setting is per connection, and put back as it was before the
        transaction ends (the ledger's own tables are append-only: nothing of theirs is freed)."""
        if self.db.dialect != "sqlite":
            yield
            return
        row = c.execute("PRAGMA secure_delete").fetchone()
        c.execute("PRAGMA secure_delete = 0")
        try:
            yield
        finally:
            c.execute(f"PRAGMA secure_delete = {int(row[0]) if row else 0}")

    def _serialise(self, c: Cursor) -> None:
        """On PostgreSQL, one runner at a time changes the views (issue 6, concurrency). Without
        it, a runner creating its tables (``CREATE INDEX IF NOT EXISTS`` takes a SHARE lock even
        when the index exists) deadlocks with one applying a batch (ROW EXCLUSIVE) in another
        table order, and two runners creating the tables of a new schema collide in the catalog.
        SQLite's ``BEGIN IMMEDIATE`` already serialises them."""
        self.db.serialise(c, "ledger_tracking")

    def positions(self) -> dict[str, int]:
        """Each projection's tracked position (the last record it has applied)."""
        self._setup()
        with self.db.transaction(write=False) as c:
            rows = c.execute(f"SELECT projection, position FROM {self.db.table('ledger_tracking')}").fetchall()
        return {name: int(pos) for name, pos in rows if name in self.projections}

    def catch_up(
        self, names: Iterable[str] | None = None, *, batch: int | None = None, until: int | None = None
    ) -> int:
        """Apply every record not yet applied (up to position ``until``, when given); returns how
        many records were read.

        ``batch``: records per transaction; by default ``BATCH``, then ``BATCH_REBUILD`` once a
        page comes back full (after a large import: fewer, larger transactions)."""
        self._setup()
        chosen = [self.projections[n] for n in (names or self.projections)]
        if not chosen:
            return 0
        start = min(self.positions()[p.name] for p in chosen)
        read = 0
        for page in self._pages(start, batch, until):
            read += len(page)
            last = page[-1][0]
            _TEXTS.clear()
            _GROUPED.clear()
            with self.db.transaction() as c:
                self._serialise(c)
                # Lock the positions (SQLite's BEGIN IMMEDIATE already does): two followers never
                # apply the same record twice, the second sees what the first committed.
                lock = " FOR UPDATE" if self.db.dialect == "postgres" else ""
                tracked = dict(
                    c.execute(f"SELECT projection, position FROM {self.db.table('ledger_tracking')}{lock}").fetchall()
                )
                advanced = []
                for p in chosen:
                    if isinstance(p, TimelineProjection):
                        p.log = self.log
                    done = int(tracked[p.name])
                    todo = page if page[0][0] > done else [(pos, r) for pos, r in page if pos > done]
                    if todo:
                        p.process(self.db, c, todo)
                        advanced.append(p.name)
                if advanced:  # one statement for all: a round trip each counts on PostgreSQL
                    c.execute(
                        f"UPDATE {self.db.table('ledger_tracking')} SET position = ? "
                        f"WHERE projection IN ({', '.join('?' * len(advanced))})",
                        (last, *advanced),
                    )
        return read

    def _pages(
        self, after: int, batch: int | None, until: int | None = None
    ) -> Iterator[list[tuple[int, DecisionRecord]]]:
        """Pages of ``batch`` records; by default ``BATCH``, then ``BATCH_REBUILD`` once a page
        came back full (a large backlog: fewer, larger transactions)."""
        if not self._plain_storage():
            yield from self._event_pages(after, batch or BATCH, until)
            return
        size = batch or BATCH
        # The records straight from the stored state (``record_from_state``), as ``to_record``
        # reads them from an event, without making a Notification and an event per record.
        decode = self.app.mapper.transcoder.decode
        events = EVENTS_TABLE
        if self.db.dialect == "postgres":
            sql = (
                f"SELECT notification_id, topic, state FROM {self.db.table(events)} WHERE notification_id > ? "
                "AND notification_id <= ? ORDER BY notification_id LIMIT ?"
            )
        else:
            sql = f"SELECT rowid, topic, state FROM {events} WHERE rowid > ? AND rowid <= ? ORDER BY rowid LIMIT ?"
        last = NOW if until is None else until
        while True:
            with self.db.transaction(write=False) as c:
                rows = c.execute(sql, (after, last, size), binary=True).fetchall()
            page = [(int(p), stored_decision(int(p), topic, state, decode)) for p, topic, state in rows]
            if page:
                yield page
                after = page[-1][0]
            if len(rows) < size:
                return
            if batch is None:
                size = BATCH_REBUILD

    def _plain_storage(self) -> bool:
        """Are stored states the transcoder's bytes as they are (no cipher, no compression)?"""
        mapper = self.app.mapper
        return mapper.cipher is None and mapper.compressor is None

    def _event_pages(
        self, after: int, batch: int, until: int | None = None
    ) -> Iterator[list[tuple[int, DecisionRecord]]]:
        page: list[tuple[int, DecisionRecord]] = []
        for notification, event in self.app.notifications(after=after, batch=batch, stop=until):
            page.append((notification.id, self.app.to_record(event)))
            if len(page) >= batch:
                yield page
                page = []
        if page:
            yield page

    def rebuild(self, names: Iterable[str] | None = None) -> int:
        """Drop and rebuild projections from the first record.

        Loads in transactions of ``BATCH_REBUILD`` records, and creates the indexes that only
        queries use (``deferrable_indexes``) once the rows are in."""
        self._setup()
        chosen = [self.projections[n] for n in (names or self.projections)]
        tracking = self.db.table("ledger_tracking")
        with self.db.transaction() as c, self._dropping(c):
            self._serialise(c)
            for p in chosen:
                p.drop(self.db, c)
                p.create(self.db, c)
                for name, _ in p.deferrable_indexes(self.db):
                    c.execute(f"DROP INDEX IF EXISTS {self.db.table(name)}")
                c.execute(f"UPDATE {tracking} SET position = 0 WHERE projection = ?", (p.name,))
        try:
            return self.catch_up([p.name for p in chosen], batch=BATCH_REBUILD)
        finally:
            with self.db.transaction() as c:
                self._serialise(c)
                for p in chosen:
                    for _, sql in p.deferrable_indexes(self.db):
                        c.execute(sql)

    def follow(self, *, poll: float = 0.5, stop_after: float | None = None) -> None:
        """Catch up, then keep catching up as records arrive (``ledger project --follow``)."""
        started = time.monotonic()
        while stop_after is None or time.monotonic() - started < stop_after:
            if not self.catch_up():
                time.sleep(poll)
