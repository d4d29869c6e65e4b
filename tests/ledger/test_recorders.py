"""The ledger's recorders pass eventsourcing's own recorder suite, and refuse to change the past.

``ApplicationRecorderTestCase`` (shipped in ``eventsourcing.tests.persistence``) exercises
insert/select, notification ids, concurrency and throughput; our recorders extend eventsourcing's,
so they must pass it unchanged. The append-only triggers are then checked directly with the
databases' own drivers, outside the ledger's code.
"""

from __future__ import annotations

import sqlite3
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import PG_SETTINGS, PostgresServer, connect_postgres
from eventsourcing.sqlite import SQLiteDatastore
from eventsourcing.tests.persistence import ApplicationRecorderTestCase
from strategies import EXAMPLE_FILE, to_jsonl

from ledger.application import LedgerApplication
from ledger.sqlite import SQLiteLedgerRecorder

# --- eventsourcing's suite ------------------------------------------------------------------


class TestSQLiteLedgerRecorder(ApplicationRecorderTestCase[SQLiteLedgerRecorder]):
    """On a SQLite file (an in-memory database cannot be shared by the suite's threads)."""

    def setUp(self) -> None:
        self._dir = tempfile.TemporaryDirectory()
        self.db_path = str(Path(self._dir.name) / "recorder.sqlite")
        self.recorders: list[SQLiteLedgerRecorder] = []
        self._threads_before = set(threading.enumerate())

    def tearDown(self) -> None:
        # eventsourcing's concurrency test signals its reader threads to stop but does not join
        # them; closing a SQLite connection while one of them is still inside a query crashes the
        # process (sqlite3 is not safe against that). Let them finish first.
        for thread in set(threading.enumerate()) - self._threads_before:
            thread.join(timeout=10)
        for recorder in self.recorders:
            recorder.datastore.close()
        self._dir.cleanup()

    def create_recorder(self) -> SQLiteLedgerRecorder:
        # As the ledger opens it (LEDGER_LOCK_TIMEOUT, 30 s): the suite's threads contend for the
        # write lock, and on a loaded machine eventsourcing's 5 s default is not always enough.
        recorder = SQLiteLedgerRecorder(SQLiteDatastore(db_name=self.db_path, lock_timeout=30))
        recorder.create_table()
        self.recorders.append(recorder)
        return recorder

    def test_creates_the_ledger_tables(self) -> None:
        self.create_recorder()
        with sqlite3.connect(self.db_path) as conn:
            names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger')")}
        assert {"stored_events", "ledger_decisions", "ledger_meta"} <= names
        assert {f"{t}_no_{op}" for t in ("stored_events", "ledger_decisions") for op in ("update", "delete")} <= names

    def test_create_table_twice(self) -> None:
        self.create_recorder()
        self.create_recorder()  # IF NOT EXISTS everywhere: reopening a ledger is harmless


@pytest.mark.postgres
class TestPostgresLedgerRecorder(ApplicationRecorderTestCase[Any]):
    """On a schema of its own in the test database; skipped with the reason when there is no server."""

    server: PostgresServer | None = None

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        try:
            cls.server = connect_postgres()
        except pytest.skip.Exception as e:
            raise __import__("unittest").SkipTest(str(e)) from None

    @classmethod
    def tearDownClass(cls) -> None:
        if cls.server is not None:
            cls.server.close()
        super().tearDownClass()

    def setUp(self) -> None:
        assert self.server is not None
        self.schema = self.server.create_schema()
        self.datastores: list[Any] = []

    def tearDown(self) -> None:
        for datastore in self.datastores:
            datastore.close()
        assert self.server is not None
        self.server.drop_schema(self.schema)

    def create_recorder(self) -> Any:
        from eventsourcing.postgres import PostgresDatastore

        from ledger.postgres import PostgresLedgerRecorder

        datastore = PostgresDatastore(
            **PG_SETTINGS,
            schema=self.schema,
            # The suite writes from 10 threads at once.
            pool_size=4,
            max_overflow=8,
        )
        self.datastores.append(datastore)
        recorder = PostgresLedgerRecorder(datastore)
        recorder.create_table()
        return recorder

    def test_insert_subscribe(self) -> None:
        # LISTEN/NOTIFY works on PostgreSQL (SQLite raises NotImplementedError: NOTES.md).
        self.optional_test_insert_subscribe()

    def test_creates_the_ledger_tables(self) -> None:
        self.create_recorder()
        assert self.server is not None
        rows = self.server.conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (self.schema,)
        ).fetchall()
        assert {"stored_events", "ledger_decisions", "ledger_meta"} <= {r[0] for r in rows}


del ApplicationRecorderTestCase  # so that pytest does not collect the abstract base


# --- append-only, checked from outside the ledger -------------------------------------------


@pytest.fixture
def sqlite_ledger(tmp_path: Path) -> str:
    path = str(tmp_path / "ledger.sqlite")
    app = LedgerApplication.open(path)
    try:
        app.import_lines(to_jsonl(EXAMPLE_FILE).splitlines(), source="example.jsonl")
    finally:
        app.close()
    return path


SQLITE_CHANGES = [
    ("stored_events", "UPDATE stored_events SET state = x'00' WHERE rowid = 1", "UPDATE"),
    ("stored_events", "UPDATE stored_events SET topic = 'x'", "UPDATE"),
    ("stored_events", "DELETE FROM stored_events WHERE rowid = 3", "DELETE"),
    ("stored_events", "DELETE FROM stored_events", "DELETE"),
    ("ledger_decisions", "UPDATE ledger_decisions SET digest = x'00' WHERE position = 1", "UPDATE"),
    ("ledger_decisions", "UPDATE ledger_decisions SET decision_id = 'EX-99' WHERE decision_id = 'EX-01'", "UPDATE"),
    ("ledger_decisions", "DELETE FROM ledger_decisions WHERE position = 2", "DELETE"),
    ("ledger_decisions", "DELETE FROM ledger_decisions", "DELETE"),
]


@pytest.mark.parametrize(("table", "sql", "op"), SQLITE_CHANGES, ids=[s[1][:40] for s in SQLITE_CHANGES])
def test_sqlite_refuses_changes_to_the_past(sqlite_ledger: str, table: str, sql: str, op: str) -> None:
    conn = sqlite3.connect(sqlite_ledger)
    try:
        before = conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
        with pytest.raises(sqlite3.DatabaseError, match=f"the ledger is append-only: {op} on {table} refused"):
            conn.execute(sql)
        conn.rollback()
        assert conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall() == before
    finally:
        conn.close()
    app = LedgerApplication.open(sqlite_ledger)
    try:
        assert app.position() == len(EXAMPLE_FILE)
        assert [r.id for r in app.export()] == [d["id"] for d in EXAMPLE_FILE]
    finally:
        app.close()


def test_sqlite_still_appends(sqlite_ledger: str) -> None:
    app = LedgerApplication.open(sqlite_ledger)
    try:
        extra = {**EXAMPLE_FILE[22], "id": "EX-99", "effective": "2024-06-01"}
        assert app.import_lines(to_jsonl([extra]).splitlines(), source="more.jsonl").recorded == 1
    finally:
        app.close()


@pytest.fixture
def postgres_ledger(postgres_server: PostgresServer) -> Iterator[tuple[PostgresServer, str]]:
    schema = postgres_server.create_schema()
    try:
        app = LedgerApplication.open(postgres_server.url(schema))
        try:
            app.import_lines(to_jsonl(EXAMPLE_FILE).splitlines(), source="example.jsonl")
        finally:
            app.close()
        yield postgres_server, schema
    finally:
        postgres_server.drop_schema(schema)


POSTGRES_CHANGES = [
    ("stored_events", "UPDATE {s}.stored_events SET state = '\\x00'::bytea WHERE notification_id = 1", "UPDATE"),
    ("stored_events", "DELETE FROM {s}.stored_events WHERE notification_id = 3", "DELETE"),
    ("stored_events", "DELETE FROM {s}.stored_events", "DELETE"),
    ("stored_events", "TRUNCATE {s}.stored_events CASCADE", "TRUNCATE"),
    ("ledger_decisions", "UPDATE {s}.ledger_decisions SET digest = '\\x00'::bytea WHERE position = 1", "UPDATE"),
    ("ledger_decisions", "DELETE FROM {s}.ledger_decisions WHERE position = 2", "DELETE"),
    ("ledger_decisions", "TRUNCATE {s}.ledger_decisions", "TRUNCATE"),
]


@pytest.mark.postgres
@pytest.mark.parametrize(("table", "sql", "op"), POSTGRES_CHANGES, ids=[c[1][:40] for c in POSTGRES_CHANGES])
def test_postgres_refuses_changes_to_the_past(
    postgres_ledger: tuple[PostgresServer, str], table: str, sql: str, op: str
) -> None:
    import psycopg

    server, schema = postgres_ledger
    with server.connect() as conn:
        count = conn.execute(f'SELECT count(*) FROM "{schema}".{table}').fetchone()
        with pytest.raises(psycopg.errors.RaiseException, match=f"the ledger is append-only: {op} on {table} refused"):
            conn.execute(sql.format(s=f'"{schema}"'))
        assert conn.execute(f'SELECT count(*) FROM "{schema}".{table}').fetchone() == count
    app = LedgerApplication.open(server.url(schema))
    try:
        assert [r.id for r in app.export()] == [d["id"] for d in EXAMPLE_FILE]
    finally:
        app.close()


@pytest.mark.postgres
def test_postgres_ledger_with_the_old_events_table_is_refused_with_the_rename(
    postgres_ledger: tuple[PostgresServer, str],
) -> None:
    """A ledger made when PostgreSQL's log was ``ledger_events`` (named after the application class)
    is refused with the SQL that renames it; that SQL, run as given, opens it with nothing changed."""
    from ledger.errors import StorageError
    from ledger.postgres import rename_statements

    server, schema = postgres_ledger
    s = f'"{schema}"'
    app = LedgerApplication.open(server.url(schema))
    try:
        before = [r.to_json() for r in app.export()]
    finally:
        app.close()
    with server.connect() as conn:  # the ledger as it was made before the table had one name
        for sql in (
            f"ALTER TABLE {s}.stored_events RENAME TO ledger_events",
            f"ALTER SEQUENCE {s}.stored_events_notification_id_seq RENAME TO ledger_events_notification_id_seq",
            f"ALTER INDEX {s}.stored_events_notification_id_idx RENAME TO ledger_events_notification_id_idx",
            f"ALTER INDEX {s}.stored_events_pkey RENAME TO ledger_events_pkey",
            f"ALTER TRIGGER stored_events_append_only ON {s}.ledger_events RENAME TO ledger_events_append_only",
            f"ALTER FUNCTION {s}.stored_events_lock() RENAME TO ledger_events_lock",
        ):
            conn.execute(sql)
    with pytest.raises(StorageError, match="ALTER TABLE") as refused:
        LedgerApplication.open(server.url(schema))
    assert rename_statements(schema) in str(refused.value)
    with server.connect() as conn:  # nothing was created beside the old table
        found = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
        ).fetchall()
        assert "stored_events" not in {r[0] for r in found}
        conn.execute(rename_statements(schema))
    app = LedgerApplication.open(server.url(schema))
    try:
        assert [r.to_json() for r in app.export()] == before
        app.import_lines(to_jsonl(EXAMPLE_FILE).splitlines(), source="again.jsonl")  # writes: nothing new
        assert app.position() == len(before)
    finally:
        app.close()
    with server.connect() as conn:
        functions = {
            r[0]
            for r in conn.execute(
                "SELECT proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE nspname = %s",
                (schema,),
            ).fetchall()
        }
        assert "stored_events_lock" in functions
        assert "ledger_events_lock" not in functions
