"""The SQLite path: eventsourcing's SQLite recorder with the ledger's index, append-only triggers
and write sessions (``ledger.storage`` says what they add, and ``ledger.postgres`` is the other path).
"""

from __future__ import annotations

import re
import sqlite3
import sys
from collections.abc import Collection, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, suppress
from datetime import date
from functools import lru_cache
from itertools import chain
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

from ledger.errors import ConcurrencyError, StorageError
from ledger.storage import (
    _DEFAULT_FILTERS,
    CHECKED_COLUMNS,
    EVENTS_TABLE,
    INDEX_COLUMNS,
    SCHEMA_VERSION,
    DecisionRow,
    LedgerRecorder,
    StagedEvent,
    StagedRow,
    StagedTable,
    WriteSession,
    _checked,
    _filters,
    _row,
)

WRITE_CACHE_KIB = -65536
"""SQLite's page cache while a write transaction is open: 64 MiB (``PRAGMA cache_size``; negative
is KiB) instead of its 2 MiB. A large import inserts into the middle of several indexes (ids,
subjects, kinds); with 2 MiB most of those pages have left the cache by the next batch and are
read back, and dirty ones spill into the WAL mid-transaction. Set back after."""


THREAD_ROWS = 100
"""Rows from which ``append_staged`` writes on the session's thread rather than in place."""
WRITE_STATEMENTS = 64
"""Compiled statements a write transaction's own connection keeps (``_write_connection``)."""
SWITCH_INTERVAL = 0.0001
"""The interpreter's switch interval (``sys.setswitchinterval``) while a write session has its
writing thread: a thread that wants the GIL back (the writer, after each statement: a few times a
batch) waits this long before the thread holding it must let go. With Python's default the writer
waited longer than the next batch takes to check, so the import waited on it (docs/performance.md,
"Import"). The thread holding the GIL is asked to let go only while another waits: nothing else changes."""


@contextmanager
def short_switch_interval() -> Iterator[None]:
    """``SWITCH_INTERVAL`` while the block runs (the writer thread gets the GIL back sooner), then
    the interval as it was, unless someone else has set it since."""
    before = sys.getswitchinterval()
    if before <= SWITCH_INTERVAL:
        yield
        return
    sys.setswitchinterval(SWITCH_INTERVAL)
    short = sys.getswitchinterval()  # as the interpreter rounds it: compared with what it gives back
    try:
        yield
    finally:
        if sys.getswitchinterval() == short:
            sys.setswitchinterval(before)


class SQLiteLedgerRecorder(SQLiteApplicationRecorder, LedgerRecorder):
    """eventsourcing's SQLite recorder with the decision index and append-only triggers."""

    def __init__(self, datastore: SQLiteDatastore, events_table_name: str = EVENTS_TABLE) -> None:
        # The factory's name is not used: the log is ``EVENTS_TABLE`` whatever the application is called.
        del events_table_name
        super().__init__(datastore, EVENTS_TABLE)

    def construct_create_table_statements(self) -> list[str]:
        t = self.events_table_name
        return [
            *super().construct_create_table_statements(),
            # Keyed by position (the rowid): rows go in at the end of the table, in log order, and
            # ``decision_id``'s index holds the id alone. Older ledgers have a table
            # keyed by ``decision_id`` (WITHOUT ROWID, with a UNIQUE index on ``position``) instead:
            # the same columns, the same queries, the same answers; only inserting into a large
            # one costs more (each row goes into the middle of a B-tree the size of the index).
            "CREATE TABLE IF NOT EXISTS ledger_decisions ("
            "decision_id TEXT NOT NULL UNIQUE, position INTEGER PRIMARY KEY, "
            "originator_id TEXT NOT NULL, originator_version INTEGER NOT NULL, "
            "kind TEXT NOT NULL, subject TEXT NOT NULL, effective TEXT NOT NULL, "
            "digest BLOB NOT NULL, target TEXT, jurisdiction TEXT)",
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

    def create_table(self) -> None:
        """eventsourcing's ``create_table``, in a ``BEGIN IMMEDIATE`` transaction, skipped while
        another process writes if the ledger's tables are already there.

        The statements write (``INSERT OR IGNORE`` of the schema version), and eventsourcing's
        deferred ``BEGIN`` reads first: once another process has written since that read, SQLite
        refuses the upgrade to a write at once ("database is locked", no waiting), so opening a
        ledger while others were writing to it failed. Taking the write lock first would instead
        make every command, a reader's too, wait for a whole import: so the lock is tried briefly,
        and if a writer holds it and the last object the statements create exists (they run in
        one transaction: then all of them ran), there is nothing to create.
        """
        with self.datastore.get_connection(commit=True) as conn:
            cursor = conn.cursor()
            cursor.execute("PRAGMA busy_timeout")
            patience = cursor.fetchone()[0]
            cursor.execute("PRAGMA busy_timeout = 100")
            try:
                cursor.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError:
                if self._created(cursor):
                    return
                cursor.execute(f"PRAGMA busy_timeout = {int(patience)}")
                cursor.execute("BEGIN IMMEDIATE")
            finally:
                cursor.execute(f"PRAGMA busy_timeout = {int(patience)}")
            try:
                self._create_table(cursor)
            except BaseException:
                conn.rollback()
                raise
            conn.commit()

    def _created(self, cursor: Any) -> bool:
        last = re.match(r"CREATE \w+ IF NOT EXISTS (\w+)", self.create_table_statements[-1])
        if last is None:  # pragma: no cover - the statements end with a trigger
            return False
        cursor.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = ?", (last.group(1),))
        return bool(cursor.fetchone()[0])

    @contextmanager
    def write(self) -> Iterator[WriteSession]:
        try:
            with self._write_connection() as conn:
                cursor = conn.cursor()
                try:
                    cursor.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError as e:
                    msg = f"the ledger is busy (another writer holds it): {e}"
                    raise ConcurrencyError(msg) from e
                cursor.execute("PRAGMA cache_size")
                cache_size = int(cursor.fetchone()[0])
                cursor.execute(f"PRAGMA cache_size = {WRITE_CACHE_KIB}")
                session = _SQLiteWriteSession(cursor, self.events_table_name, conn.cursor())
                try:
                    try:
                        yield session
                        session.settle()
                    except BaseException:
                        session.close()  # the error on its way out is the one to see
                        conn.rollback()
                        raise
                    conn.commit()
                finally:
                    session.close()
                    with suppress(sqlite3.Error):  # a broken connection: its own error is the one to see
                        cursor.execute(f"PRAGMA cache_size = {cache_size}")
        except sqlite3.IntegrityError as e:
            msg = f"another writer recorded a decision about the same subject first: {e}"
            raise ConcurrencyError(msg) from e
        except sqlite3.OperationalError as e:
            msg = f"SQLite refused the write: {e}"
            raise StorageError(msg) from e

    @contextmanager
    def _write_connection(self) -> Iterator[sqlite3.Connection]:
        """The connection of one write transaction. Where the ledger is a file, one of its own,
        made as eventsourcing makes its pool's (same file, lock timeout, threads) but with a
        statement cache: eventsourcing's connections keep one statement, so each of an import's
        statements (two inserts and five look-ups a batch, the same text batch after batch) was
        compiled again every time — a large part of what its multi-row inserts cost. An
        in-memory ledger exists only on the pool's connection: that one."""
        pool = getattr(self.datastore, "pool", None)
        name = getattr(pool, "db_name", None)
        if isinstance(name, str) and name and not getattr(pool, "is_sqlite_memory_mode", True):
            conn = sqlite3.connect(
                name,
                uri=True,
                isolation_level=None,
                check_same_thread=False,
                cached_statements=WRITE_STATEMENTS,
                timeout=getattr(pool, "lock_timeout", None) or 5,
            )
            try:
                yield conn
            finally:
                conn.close()
            return
        with self.datastore.get_connection(commit=True) as pooled:
            yield pooled.cursor().sqlite_cursor.connection

    def decision_rows(self, *, limit: int = 1000, **filters: Any) -> list[DecisionRow]:
        where, params = _filters("?", **{**_DEFAULT_FILTERS, **filters})
        sql = (
            f"SELECT {CHECKED_COLUMNS}, e.originator_id, e.originator_version FROM ledger_decisions d "
            f"LEFT JOIN {self.events_table_name} e ON e.rowid = d.position WHERE {where} ORDER BY position LIMIT ?"
        )
        with self.datastore.transaction(commit=False) as c:
            c.execute(sql, [*params, limit])
            return [_checked(tuple(r)) for r in c.fetchall()]


class _SQLiteWriteSession(WriteSession):
    """Reads and writes of one SQLite write transaction.

    ``append_staged`` writes on a thread of its own while the caller goes on (an import reads and
    checks its next batch of lines meanwhile; fewer than ``THREAD_ROWS`` rows are written in
    place): each table's rows go in with one multi-row ``INSERT … VALUES``, a single statement,
    so SQLite works through the whole batch with the GIL released — unlike ``executemany``, which
    takes the GIL back after every row and so fights the caller's thread for it
    (docs/performance.md, "Import"). The rows and positions are those of ``append``. The
    connection is used by one thread at a time: the cursor (``c``) waits for a write in progress
    before any other statement, and ``LedgerRecorder.write`` before the transaction ends; an error
    of that write is raised there.
    """

    def __init__(self, cursor: Any, events_table: str, writer: sqlite3.Cursor) -> None:
        self._cursor = cursor
        self.events_table = events_table
        self._writer = writer
        self._thread: ThreadPoolExecutor | None = None
        self._writing: Future[None] | None = None
        self._next: int | None = None
        """The next position, once this session has read it (``append_staged``)."""
        self._scoped = ExitStack()
        """Process-wide state changed while this session writes on its thread (``short_switch_interval``)."""

    @property
    def c(self) -> Any:
        if self._writing is not None:
            self.settle()
        return self._cursor

    def settle(self) -> None:
        writing, self._writing = self._writing, None
        if writing is not None:
            writing.result()  # the write's own error, if it failed

    def close(self) -> None:
        """End of the transaction, whichever way: wait for a write in progress (its error, if
        any, gives way to the one the transaction ends with), end the thread, and set the switch
        interval back."""
        writing, self._writing = self._writing, None
        while writing is not None and not writing.done():
            with suppress(KeyboardInterrupt):  # a write takes milliseconds: never leave it running
                writing.exception()
        if self._thread is not None:
            self._thread.shutdown(wait=True)
            self._thread = None
        self._scoped.close()

    def _run(self, statements: list[tuple[str, list[Any]]]) -> None:
        for sql, params in statements:
            self._writer.execute(sql, params)

    def _with_events(self, where: str) -> str:
        return (
            f"SELECT {CHECKED_COLUMNS}, e.originator_id, e.originator_version FROM ledger_decisions d "
            f"LEFT JOIN {self.events_table} e ON e.rowid = d.position WHERE {where}"
        )

    def find_decision(self, decision_id: str) -> DecisionRow | None:
        self.c.execute(self._with_events("d.decision_id = ?"), (decision_id,))
        r = self.c.fetchone()
        return _checked(tuple(r)) if r else None

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

    def _chunks(self, sql: str, keys: Sequence[Any], fixed: Sequence[Any] = ()) -> Iterator[Any]:
        """Rows of ``sql`` (whose ``{keys}`` is an ``IN`` list) for every chunk of ``keys``."""
        for start in range(0, len(keys), _IN_CHUNK):
            chunk = keys[start : start + _IN_CHUNK]
            self.c.execute(sql.format(keys=", ".join("?" * len(chunk))), [*chunk, *fixed])
            yield from self.c.fetchall()

    def find_decisions(self, decision_ids: Collection[str]) -> dict[str, DecisionRow]:
        sql = self._with_events("d.decision_id IN ({keys})")
        return {r[0]: _checked(tuple(r)) for r in self._chunks(sql, list(decision_ids))}

    def known_since_many(self, keys: Collection[tuple[str, str]]) -> dict[tuple[str, str], date]:
        kinds = sorted({kind for _, kind in keys})
        subjects = sorted({subject for subject, _ in keys})
        if not kinds:
            return {}
        sql = (
            "SELECT subject, kind, MIN(effective) FROM ledger_decisions WHERE subject IN ({keys}) "
            f"AND kind IN ({', '.join('?' * len(kinds))}) GROUP BY subject, kind"
        )
        wanted = set(keys)
        return {
            (subject, kind): date.fromisoformat(day)
            for subject, kind, day in self._chunks(sql, subjects, kinds)
            if (subject, kind) in wanted and day
        }

    def latest_many(self, subjects: Collection[str], kind: str) -> dict[str, DecisionRow]:
        # SQLite takes the bare columns of an aggregate query from the row holding the MAX.
        sql = (
            f"SELECT {INDEX_COLUMNS}, MAX(position) FROM ledger_decisions WHERE subject IN ({{keys}}) AND kind = ? "
            "GROUP BY subject"
        )
        return {r[5]: _row(tuple(r)[:10]) for r in self._chunks(sql, list(subjects), (kind,))}

    def last_versions(self, originator_ids: Collection[UUID]) -> dict[UUID, int]:
        ids = list(originator_ids)
        found = dict.fromkeys(ids, 0)
        by_hex = {oid.hex: oid for oid in ids}
        sql = (
            f"SELECT originator_id, MAX(originator_version) FROM {self.events_table} "
            "WHERE originator_id IN ({keys}) GROUP BY originator_id"
        )
        for hex_id, version in self._chunks(sql, list(by_hex)):
            found[by_hex[hex_id]] = version or 0
        return found

    def jurisdictions_of(self, subjects: Collection[str]) -> dict[str, str | None]:
        keys = list(subjects)
        found: dict[str, str | None] = dict.fromkeys(keys)
        # The bare column comes from the row holding the MIN: the subject's first decision.
        sql = (
            "SELECT subject, jurisdiction, MIN(position) FROM ledger_decisions WHERE subject IN ({keys}) "
            "GROUP BY subject"
        )
        for subject, jurisdiction, _ in self._chunks(sql, keys):
            found[subject] = jurisdiction
        return found

    def append(self, stored: Sequence[StoredEvent], rows: Sequence[DecisionRow]) -> list[int]:
        if not stored:
            return []
        self.c.execute(f"SELECT MAX(rowid) FROM {self.events_table}")
        first = (self.c.fetchone()[0] or 0) + 1
        self._next = None  # read again by the next ``append_staged``
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

    def append_staged(
        self, events: Sequence[StagedEvent], rows: Sequence[StagedRow], also: Sequence[StagedTable] = ()
    ) -> Sequence[int]:
        if not events:
            return []
        if len(rows) != len(events):  # pragma: no cover - one index row per event
            msg = f"{len(events)} events for {len(rows)} index rows"
            raise StorageError(msg)
        if self._next is None:
            self.c.execute(f"SELECT MAX(rowid) FROM {self.events_table}")
            self._next = (self.c.fetchone()[0] or 0) + 1
        first = self._next
        positions = range(first, first + len(events))
        days = {day: day.isoformat() for day in {r[5] for r in rows}}  # a batch names few days
        index = [
            (r[0], p, r[1], r[2], r[3], r[4], days[r[5]], r[6], r[7], r[8])
            for r, p in zip(rows, positions, strict=True)
        ]
        events_head = f"INSERT INTO {self.events_table} (originator_id, originator_version, topic, state)"
        index_head = f"INSERT INTO ledger_decisions ({INDEX_COLUMNS})"
        statements = [*_multirow(events_head, events, self._writer), *_multirow(index_head, index, self._writer)]
        for table, columns, _, table_rows in also:
            if table_rows:
                statements += _multirow(f"INSERT INTO {table} ({', '.join(columns)})", table_rows, self._writer)
        self.settle()  # one write at a time, in log order
        self._next = first + len(events)
        if len(events) < THREAD_ROWS:  # a decision recorded, a small file: not worth a thread
            for sql, params in statements:
                self._cursor.execute(sql, params)
            return positions
        if self._thread is None:
            self._scoped.enter_context(short_switch_interval())
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-append")
        self._writing = self._thread.submit(self._run, statements)
        return positions


def _multirow(head: str, rows: Sequence[Sequence[Any]], cursor: sqlite3.Cursor) -> list[tuple[str, list[Any]]]:
    """``executemany(head + " VALUES (?,…)", rows)`` as a few multi-row statements (as many rows
    each as SQLite takes parameters) with their parameters."""
    width = len(rows[0])
    step = max(1, cursor.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width)
    return [
        (_values_sql(head, width, len(chunk)), list(chain.from_iterable(chunk)))
        for chunk in (rows[i : i + step] for i in range(0, len(rows), step))
    ]


@lru_cache(maxsize=16)
def _values_sql(head: str, width: int, count: int) -> str:
    one = "(" + ",".join("?" * width) + ")"
    return f"{head} VALUES {','.join([one] * count)}"


_IN_CHUNK = 500
"""Keys per ``IN (…)`` list of a bulk read (SQLite allows 32,766 parameters; 500 keeps plans small)."""


def _hex(originator_id: UUID | str) -> str:
    return originator_id.hex if isinstance(originator_id, UUID) else originator_id
