"""The runner: each projection's tracked position, catch-up in batches, rebuild, follow.

Each projection keeps its tracked position in ``ledger_tracking`` and writes its rows in the same
transaction as that position, so a view is always exactly "the log up to N" — after a crash, a
projection resumes from its last committed batch and never applies a record twice. Work is taken
in batches of notifications (one transaction per batch, ``executemany`` writes), never one
transaction per event (ARCHITECTURE.md rule 7).

Why not eventsourcing's ``ProjectionRunner``: it follows an application through
``recorder.subscribe()``, which SQLite's recorder does not implement (NOTES.md); reading
``select_notifications`` in batches works on both databases, and on PostgreSQL ``ledger project
--follow`` adds LISTEN/NOTIFY-driven waiting on top.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

from ledger.application import LedgerApplication
from ledger.decisions import DecisionRecord
from ledger.sql import Cursor, Database
from ledger.storage import EVENTS_TABLE
from projections.runner.log import BATCH, BATCH_REBUILD, LogReader, clear_texts, stored_decision
from projections.runner.projection import Projection, TimelineProjection, clear_grouped
from projections.runner.rows import NOW


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
        """On PostgreSQL, one runner at a time changes the views. Without
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
            clear_texts()
            clear_grouped()
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
