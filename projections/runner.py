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
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from ledger import canonical
from ledger.application import LedgerApplication
from ledger.decisions import DecisionRecord, from_json_dict
from ledger.sql import Cursor, Database
from projections.replay import Resolved, resolve

BATCH = 1000
FOREVER = "9999-12-31"
"""``valid_to`` of a row still in force; a date string so that comparisons stay indexed."""
NOW = 2**62
"""``known_to`` of a row the ledger still holds true."""

CORRECTION_KINDS = ("decision.corrected", "decision.retracted")


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


class TimelineProjection(Projection):
    """A bitemporal view whose rows are the timeline of each key (see the module docstring)."""

    table: str
    columns: tuple[str, ...]
    """The value columns of a row (after ``key``)."""
    indexes: tuple[tuple[str, ...], ...] = ()

    @abstractmethod
    def keys(self, record: DecisionRecord) -> Iterable[str]:
        """The keys a (non-correction) decision feeds; corrections follow their target."""

    @abstractmethod
    def timeline(self, key: str, decisions: Sequence[Resolved]) -> list[TimelineRow]:
        """The rows of ``key`` from its decisions (corrections applied, in valid-time order)."""

    # -- machinery --------------------------------------------------------------------------

    @property
    def inputs(self) -> str:
        return f"{self.table}_inputs"

    def create(self, db: Database, c: Cursor) -> None:
        cols = ", ".join(f"{col} TEXT" for col in self.columns)
        t = db.table(self.table)
        c.execute(
            f"CREATE TABLE IF NOT EXISTS {t} (key TEXT NOT NULL, {cols}, valid_from TEXT NOT NULL, "
            f"valid_to TEXT NOT NULL, known_from {db.bigint} NOT NULL, known_to {db.bigint} NOT NULL)"
        )
        c.execute(f"CREATE INDEX IF NOT EXISTS {self.table}_key ON {t} (key, known_to)")
        c.execute(f"CREATE INDEX IF NOT EXISTS {self.table}_time ON {t} (valid_from, known_from)")
        for cols_ in self.indexes:
            name = f"{self.table}_{'_'.join(cols_)}"
            c.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {t} ({', '.join(cols_)}, valid_from)")
        i = db.table(self.inputs)
        c.execute(
            f"CREATE TABLE IF NOT EXISTS {i} (key TEXT NOT NULL, decision_id TEXT NOT NULL, "
            f"position {db.bigint} NOT NULL, record TEXT NOT NULL, PRIMARY KEY (key, position))"
        )
        c.execute(f"CREATE INDEX IF NOT EXISTS {self.inputs}_decision ON {i} (decision_id)")

    def drop(self, db: Database, c: Cursor) -> None:
        c.execute(f"DROP TABLE IF EXISTS {db.table(self.table)}")
        c.execute(f"DROP TABLE IF EXISTS {db.table(self.inputs)}")

    def process(self, db: Database, c: Cursor, batch: Sequence[tuple[int, DecisionRecord]]) -> None:
        inputs = db.table(self.inputs)
        for position, record in batch:
            if record.kind in CORRECTION_KINDS:
                target = record.fields.get("corrects") or record.fields.get("retracts")
                keys = [
                    r[0]
                    for r in c.execute(f"SELECT DISTINCT key FROM {inputs} WHERE decision_id = ?", (target,)).fetchall()
                ]
            else:
                keys = sorted(set(self.keys(record)))
            if not keys:
                continue
            text = canonical.dumps(record.to_json_dict())
            c.executemany(
                f"INSERT INTO {inputs} (key, decision_id, position, record) VALUES (?, ?, ?, ?)",
                [(key, record.id, position, text) for key in keys],
            )
            for key in keys:
                self._refresh(db, c, key, position)

    def _refresh(self, db: Database, c: Cursor, key: str, position: int) -> None:
        inputs = db.table(self.inputs)
        rows = c.execute(f"SELECT position, record FROM {inputs} WHERE key = ? ORDER BY position", (key,)).fetchall()
        log = [(int(p), from_json_dict(_loads(text))) for p, text in rows]
        new = {_stored(r) for r in self.timeline(key, resolve(log))}
        t = db.table(self.table)
        cols = ", ".join(self.columns)
        old = {
            tuple(r)
            for r in c.execute(
                f"SELECT valid_from, valid_to, {cols} FROM {t} WHERE key = ? AND known_to = ?", (key, NOW)
            ).fetchall()
        }
        gone = old - new
        for row in gone:
            c.execute(
                f"UPDATE {t} SET known_to = ? WHERE key = ? AND known_to = ? AND valid_from = ? AND valid_to = ? "
                + "".join(
                    f"AND {col} IS NOT DISTINCT FROM ? " if db.dialect == "postgres" else f"AND {col} IS ? "
                    for col in self.columns
                ),
                (position, key, NOW, *row),
            )
        c.executemany(
            f"INSERT INTO {t} (key, valid_from, valid_to, {cols}, known_from, known_to) "
            f"VALUES (?, ?, ?, {', '.join('?' * len(self.columns))}, ?, ?)",
            [(key, *row, position, NOW) for row in sorted(new - old, key=_sort_key)],
        )


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


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return canonical.dumps(value)


def _loads(text: str) -> dict[str, Any]:
    import json
    from decimal import Decimal

    loaded: dict[str, Any] = json.loads(text, parse_float=Decimal)
    return loaded


class Runner:
    """Runs projections over one ledger: catch up after writes, rebuild on demand, follow."""

    def __init__(self, app: LedgerApplication, projections: Sequence[Projection]) -> None:
        names = [p.name for p in projections]
        if len(set(names)) != len(names):
            msg = f"two projections share a name: {sorted(names)}"
            raise ValueError(msg)
        self.app = app
        self.db = Database(app.store)
        self.projections = {p.name: p for p in projections}
        self._ready = False

    def _setup(self) -> None:
        if self._ready:
            return
        tracking = self.db.table("ledger_tracking")
        with self.db.transaction() as c:
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
                    p.drop(self.db, c)
                    c.execute(f"DELETE FROM {tracking} WHERE projection = ?", (p.name,))
                    known.pop(p.name)
                p.create(self.db, c)
                if p.name not in known:
                    c.execute(
                        f"INSERT INTO {tracking} (projection, position, version) VALUES (?, 0, ?)", (p.name, p.version)
                    )
        self._ready = True

    def positions(self) -> dict[str, int]:
        """Each projection's tracked position (the last record it has applied)."""
        self._setup()
        with self.db.transaction(write=False) as c:
            rows = c.execute(f"SELECT projection, position FROM {self.db.table('ledger_tracking')}").fetchall()
        return {name: int(pos) for name, pos in rows if name in self.projections}

    def catch_up(self, names: Iterable[str] | None = None, *, batch: int = BATCH) -> int:
        """Apply every record not yet applied; returns how many records were read."""
        self._setup()
        chosen = [self.projections[n] for n in (names or self.projections)]
        if not chosen:
            return 0
        start = min(self.positions()[p.name] for p in chosen)
        read = 0
        for page in self._pages(start, batch):
            read += len(page)
            last = page[-1][0]
            with self.db.transaction() as c:
                # Lock the positions (SQLite's BEGIN IMMEDIATE already does): two followers never
                # apply the same record twice, the second sees what the first committed.
                lock = " FOR UPDATE" if self.db.dialect == "postgres" else ""
                tracked = dict(
                    c.execute(f"SELECT projection, position FROM {self.db.table('ledger_tracking')}{lock}").fetchall()
                )
                for p in chosen:
                    todo = [(pos, r) for pos, r in page if pos > int(tracked[p.name])]
                    if todo:
                        p.process(self.db, c, todo)
                        c.execute(
                            f"UPDATE {self.db.table('ledger_tracking')} SET position = ? WHERE projection = ?",
                            (last, p.name),
                        )
        return read

    def _pages(self, after: int, batch: int) -> Iterator[list[tuple[int, DecisionRecord]]]:
        page: list[tuple[int, DecisionRecord]] = []
        for notification, event in self.app.notifications(after=after, batch=batch):
            page.append((notification.id, self.app.to_record(event)))
            if len(page) >= batch:
                yield page
                page = []
        if page:
            yield page

    def rebuild(self, names: Iterable[str] | None = None) -> int:
        """Drop and rebuild projections from the first record."""
        self._setup()
        chosen = [self.projections[n] for n in (names or self.projections)]
        tracking = self.db.table("ledger_tracking")
        with self.db.transaction() as c:
            for p in chosen:
                p.drop(self.db, c)
                p.create(self.db, c)
                c.execute(f"UPDATE {tracking} SET position = 0 WHERE projection = ?", (p.name,))
        return self.catch_up([p.name for p in chosen])

    def follow(self, *, poll: float = 0.5, stop_after: float | None = None) -> None:
        """Catch up, then keep catching up as records arrive (``ledger project --follow``)."""
        started = time.monotonic()
        while stop_after is None or time.monotonic() - started < stop_after:
            if not self.catch_up():
                time.sleep(poll)
