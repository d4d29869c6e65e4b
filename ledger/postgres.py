"""The PostgreSQL path: eventsourcing's own recorder, with the ledger's index and write sessions.

Imported only when ``LEDGER_DB`` is a ``postgresql://`` URL, so that the embedded SQLite default
needs no database driver (install the extra ``postgres`` for this module).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import PersistenceError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from psycopg.sql import SQL, Identifier

from ledger.errors import ConcurrencyError, StorageError
from ledger.sql import Cursor
from ledger.storage import (
    _DEFAULT_FILTERS,
    CHECKED_COLUMNS,
    EVENTS_TABLE,
    INDEX_COLUMNS,
    INDEX_TABLE,
    META_TABLE,
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


class PostgresLedgerRecorder(PostgresApplicationRecorder, LedgerRecorder):
    """eventsourcing's PostgreSQL recorder with the decision index and append-only triggers."""

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = EVENTS_TABLE) -> None:
        # eventsourcing's factory names the table after the application's class (``ledger_events``):
        # not used, so that the log is ``EVENTS_TABLE`` on both databases whatever a class is called.
        del events_table_name
        super().__init__(datastore, events_table_name=EVENTS_TABLE)
        self.index_table = INDEX_TABLE
        self.meta_table = META_TABLE
        schema = Identifier(self.datastore.schema)
        index = Identifier(self.index_table)
        events = Identifier(self.events_table_name)
        self.sql_create_statements.extend(
            [
                SQL(
                    "CREATE TABLE IF NOT EXISTS {schema}.{index} ("
                    "decision_id text PRIMARY KEY, position bigint NOT NULL UNIQUE, "
                    "originator_id uuid NOT NULL, originator_version bigint NOT NULL, "
                    "kind text NOT NULL, subject text NOT NULL, effective date NOT NULL, "
                    "digest bytea NOT NULL, target text, jurisdiction text)"
                ).format(schema=schema, index=index),
                SQL("CREATE INDEX IF NOT EXISTS {name} ON {schema}.{index} (subject, kind, effective)").format(
                    name=Identifier(f"{self.index_table}_subject"), schema=schema, index=index
                ),
                SQL("CREATE INDEX IF NOT EXISTS {name} ON {schema}.{index} (target) WHERE target IS NOT NULL").format(
                    name=Identifier(f"{self.index_table}_target"), schema=schema, index=index
                ),
                SQL("CREATE INDEX IF NOT EXISTS {name} ON {schema}.{index} (kind, position)").format(
                    name=Identifier(f"{self.index_table}_kind"), schema=schema, index=index
                ),
                SQL("CREATE TABLE IF NOT EXISTS {schema}.{meta} (key text PRIMARY KEY, value text NOT NULL)").format(
                    schema=schema, meta=Identifier(self.meta_table)
                ),
                SQL("INSERT INTO {schema}.{meta} VALUES ('schema_version', {v}) ON CONFLICT DO NOTHING").format(
                    schema=schema, meta=Identifier(self.meta_table), v=str(SCHEMA_VERSION)
                ),
                SQL(
                    "CREATE OR REPLACE FUNCTION {schema}.ledger_refuse_change() RETURNS trigger "
                    "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION "
                    "'the ledger is append-only: % on % refused', TG_OP, TG_TABLE_NAME; END $$"
                ).format(schema=schema),
                *[
                    SQL(
                        "CREATE OR REPLACE TRIGGER {name} BEFORE UPDATE OR DELETE OR TRUNCATE ON {schema}.{table} "
                        "FOR EACH STATEMENT EXECUTE FUNCTION {schema}.ledger_refuse_change()"
                    ).format(name=Identifier(f"{table}_append_only"), schema=schema, table=Identifier(table))
                    for table in (self.events_table_name, self.index_table)
                ],
                # Writers serialise on an EXCLUSIVE lock of the events table (eventsourcing's
                # ``_lock_table``), which PostgreSQL grants only to a role that may UPDATE, DELETE
                # or TRUNCATE the table. This function, run with its owner's rights, takes that
                # lock for a writer that may only INSERT and SELECT (docs/reliability.md, roles).
                SQL(
                    "CREATE OR REPLACE FUNCTION {schema}.{lock}() RETURNS void LANGUAGE plpgsql "
                    "SECURITY DEFINER SET search_path = pg_catalog, pg_temp "
                    "AS $$ BEGIN LOCK TABLE {schema}.{events} IN EXCLUSIVE MODE; END $$"
                ).format(schema=schema, lock=Identifier(self._lock_function_name), events=events),
                SQL("REVOKE ALL ON FUNCTION {schema}.{lock}() FROM PUBLIC").format(
                    schema=schema, lock=Identifier(self._lock_function_name)
                ),
            ]
        )
        self._events = events
        self._index = index
        self._lock_call = SQL("SELECT {schema}.{lock}()").format(
            schema=schema, lock=Identifier(self._lock_function_name)
        )
        self._lock_via_function: bool | None = None

    def create_table(self) -> None:
        """eventsourcing's ``create_table``, in one transaction serialised by an advisory lock,
        skipped while another process writes if the ledger's tables are already there.

        Several processes opening a new schema at once otherwise race on PostgreSQL's catalog: a
        ``CREATE TYPE`` or ``CREATE TABLE IF NOT EXISTS`` run twice at the same moment fails with a
        unique violation, and ``CREATE OR REPLACE FUNCTION/TRIGGER`` in two transactions can
        deadlock. With the lock, the second waits for the first and finds everything there.

        The statements lock the events table (``CREATE INDEX`` and ``CREATE TRIGGER`` take SHARE
        locks even when there is nothing to create), which a writer's EXCLUSIVE lock holds off: so
        every command, a reader's too, would wait for a whole import. They are tried with a short
        lock timeout; if a writer holds the table and the last object the statements create exists
        (they run in one transaction: then all of them ran), there is nothing to create.
        """
        self._refuse_old_name()
        try:
            self._create_all(patience="200ms")
        except PersistenceError as e:
            if not isinstance(e.__cause__, psycopg.errors.LockNotAvailable):
                raise
            if not self._created():
                self._create_all(patience=None)
        self.datastore.register_type_adapters()

    def _refuse_old_name(self) -> None:
        """A ledger made before the events table had one name on both databases holds its log in
        ``OLD_EVENTS_TABLE``: refuse to open it (creating ``EVENTS_TABLE`` beside it would show an
        empty ledger) and say how its owner renames it; not renamed here, as the writer roles'
        grants on the lock function must be given again (docs/reliability.md, "Roles")."""
        with self.datastore.transaction(commit=False) as curs:
            schema = self.datastore.schema
            curs.execute(
                "SELECT to_regclass(%s) IS NOT NULL AS old, to_regclass(%s) IS NOT NULL AS new",
                (_qualified(schema, OLD_EVENTS_TABLE), _qualified(schema, EVENTS_TABLE)),
            )
            row = curs.fetchone()
        if row is not None and row["old"] and not row["new"]:
            msg = (
                f"this ledger's log is in the table {OLD_EVENTS_TABLE!r}, its name before it was "
                f"{EVENTS_TABLE!r} on both databases; as the tables' owner, rename it in one transaction "
                f'(docs/reliability.md, "Renaming the events table"), then open the ledger again:\n'
                + rename_statements(schema)
            )
            raise StorageError(msg)

    def _create_all(self, patience: str | None) -> None:
        with self.datastore.transaction(commit=True) as curs:
            if patience is not None:
                curs.execute(SQL("SET LOCAL lock_timeout = {}").format(patience))
            curs.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{self.datastore.schema}.{self.events_table_name}",)
            )
            for statement in self.sql_create_statements:
                if "CREATE TYPE" in statement.as_string():  # no IF NOT EXISTS for types
                    try:
                        with curs.connection.transaction():  # a savepoint
                            curs.execute(statement, prepare=False)
                    except psycopg.errors.DuplicateObject:
                        pass
                else:
                    curs.execute(statement, prepare=False)

    def _created(self) -> bool:
        with self.datastore.transaction(commit=False) as curs:
            name = SQL("{}.{}()").format(Identifier(self.datastore.schema), Identifier(self._lock_function_name))
            curs.execute("SELECT to_regprocedure(%s) IS NOT NULL AS found", (name.as_string(curs),))
            row = curs.fetchone()
            return bool(row and row["found"])

    @property
    def _lock_function_name(self) -> str:
        return f"{self.events_table_name}_lock"

    def _lock_table(self, curs: Any) -> None:
        """Take the writers' lock: through the owner's function where this role may run it (a
        writer that may only INSERT), else with eventsourcing's own ``LOCK TABLE``."""
        if self._lock_via_function is None:
            name = SQL("{}.{}()").format(Identifier(self.datastore.schema), Identifier(self._lock_function_name))
            curs.execute(
                "SELECT CASE WHEN to_regprocedure(%(f)s) IS NULL THEN false "
                "ELSE has_function_privilege(to_regprocedure(%(f)s), 'EXECUTE') END AS ok",
                {"f": name.as_string(curs)},
            )
            self._lock_via_function = bool(curs.fetchone()["ok"])
        if not self._lock_via_function:
            super()._lock_table(curs)
            return
        curs.execute(self.lock_table_statements[0], prepare=True)  # SET LOCAL lock_timeout
        curs.execute(self._lock_call, prepare=True)

    @contextmanager
    def write(self) -> Iterator[WriteSession]:
        try:
            with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
                self._lock_table(curs)
                self._notify_channel(curs)
                yield _PostgresWriteSession(self, curs)
        except (psycopg.Error, PersistenceError) as e:
            raise _storage_error(e) from e

    def decision_rows(self, *, limit: int = 1000, **filters: Any) -> list[DecisionRow]:
        where, params = _filters("%s", **{**_DEFAULT_FILTERS, **filters})
        sql = SQL(
            "SELECT {cols}, e.originator_id AS e_id, e.originator_version AS e_version FROM {schema}.{index} d "
            "LEFT JOIN {schema}.{events} e ON e.notification_id = d.position WHERE "
        ).format(
            cols=SQL(CHECKED_COLUMNS), schema=Identifier(self.datastore.schema), index=self._index, events=self._events
        ) + SQL(where + " ORDER BY position LIMIT %s")
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(sql, [*params, limit])
            return [_checked(tuple(r.values())) for r in curs.fetchall()]


OLD_EVENTS_TABLE = "ledger_events"
"""Where ledgers made on PostgreSQL before ``EVENTS_TABLE`` hold their log (the application's name)."""


def _qualified(schema: str, name: str) -> str:
    return ".".join('"' + part.replace('"', '""') + '"' for part in (schema, name))


def rename_statements(schema: str) -> str:
    """The SQL that moves an old ledger's log to ``EVENTS_TABLE`` with its sequence, index, primary
    key and trigger (the lock function is made anew under its new name when the ledger opens)."""
    old, new = OLD_EVENTS_TABLE, EVENTS_TABLE
    return "\n".join(
        [
            "BEGIN;",
            f"ALTER TABLE {_qualified(schema, old)} RENAME TO {new};",
            f"ALTER SEQUENCE {_qualified(schema, old + '_notification_id_seq')} RENAME TO {new}_notification_id_seq;",
            f"ALTER INDEX {_qualified(schema, old + '_notification_id_idx')} RENAME TO {new}_notification_id_idx;",
            f"ALTER INDEX {_qualified(schema, old + '_pkey')} RENAME TO {new}_pkey;",
            f"ALTER TRIGGER {old}_append_only ON {_qualified(schema, new)} RENAME TO {new}_append_only;",
            f"DROP FUNCTION {_qualified(schema, old + '_lock')}();",
            "COMMIT;",
        ]
    )


def _storage_error(e: Exception) -> StorageError:
    """The ledger's error for a failed write. eventsourcing's datastore re-raises psycopg's errors
    as its own (``PersistenceError`` subclasses) with psycopg's as the cause: look through to it,
    so that a lost race on a subject's version is a ``ConcurrencyError``, not an opaque failure."""
    cause = e.__cause__ if isinstance(e, PersistenceError) and isinstance(e.__cause__, psycopg.Error) else e
    if isinstance(cause, psycopg.errors.UniqueViolation):
        return ConcurrencyError(f"another writer recorded a decision about the same subject first: {e}")
    if isinstance(cause, psycopg.errors.LockNotAvailable):
        return ConcurrencyError(f"the ledger is busy (another writer holds it): {e}")
    return StorageError(f"PostgreSQL refused the write: {e}")


class _PostgresWriteSession(WriteSession):
    def __init__(self, recorder: PostgresLedgerRecorder, curs: Any) -> None:
        self.r = recorder
        self.c = curs
        schema = Identifier(recorder.datastore.schema)
        with_events = SQL(
            "SELECT {cols}, e.originator_id AS e_id, e.originator_version AS e_version FROM {s}.{i} d "
            "LEFT JOIN {s}.{e} e ON e.notification_id = d.position "
        ).format(cols=SQL(CHECKED_COLUMNS), s=schema, i=recorder._index, e=recorder._events)
        self.q_find = with_events + SQL("WHERE d.decision_id = %s")
        self.q_known = SQL("SELECT MIN(effective) AS m FROM {s}.{i} WHERE subject = %s AND kind = %s").format(
            s=schema, i=recorder._index
        )
        self.q_latest = SQL(
            "SELECT {cols} FROM {s}.{i} WHERE subject = %s AND kind = %s ORDER BY position DESC LIMIT 1"
        ).format(cols=SQL(INDEX_COLUMNS), s=schema, i=recorder._index)
        self.q_juris = SQL("SELECT jurisdiction FROM {s}.{i} WHERE subject = %s ORDER BY position LIMIT 1").format(
            s=schema, i=recorder._index
        )
        self.q_version = SQL("SELECT MAX(originator_version) AS m FROM {s}.{e} WHERE originator_id = %s").format(
            s=schema, e=recorder._events
        )
        self.q_event = SQL(
            "SELECT topic, state FROM {s}.{e} WHERE originator_id = %s AND originator_version = %s"
        ).format(s=schema, e=recorder._events)
        # One binary COPY per batch: psycopg's executemany sends a statement per row, an ``unnest``
        # of arrays escapes every value; COPY costs least (docs/performance.md).
        self.q_index = SQL("COPY {s}.{i} ({cols}) FROM STDIN (FORMAT BINARY)").format(
            s=schema, i=recorder._index, cols=SQL(INDEX_COLUMNS)
        )
        self.q_events = SQL(
            "COPY {s}.{e} (originator_id, originator_version, topic, state, notification_id) FROM STDIN (FORMAT BINARY)"
        ).format(s=schema, e=recorder._events)
        self.q_positions = SQL(
            "SELECT nextval(pg_get_serial_sequence(%s, 'notification_id')) AS p FROM generate_series(1, %s)"
        )
        self.events_name = _qualified(recorder.datastore.schema, recorder.events_table_name)
        self.q_find_many = with_events + SQL("WHERE d.decision_id = ANY(%s)")
        self.q_known_many = SQL(
            "SELECT subject, kind, MIN(effective) AS m FROM {s}.{i} WHERE subject = ANY(%s) AND kind = ANY(%s) "
            "GROUP BY subject, kind"
        ).format(s=schema, i=recorder._index)
        self.q_latest_many = SQL(
            "SELECT DISTINCT ON (subject) {cols} FROM {s}.{i} WHERE subject = ANY(%s) AND kind = %s "
            "ORDER BY subject, position DESC"
        ).format(cols=SQL(INDEX_COLUMNS), s=schema, i=recorder._index)
        self.q_juris_many = SQL(
            "SELECT DISTINCT ON (subject) subject, jurisdiction FROM {s}.{i} WHERE subject = ANY(%s) "
            "ORDER BY subject, position"
        ).format(s=schema, i=recorder._index)
        self.q_version_many = SQL(
            "SELECT originator_id, MAX(originator_version) AS m FROM {s}.{e} WHERE originator_id = ANY(%s) "
            "GROUP BY originator_id"
        ).format(s=schema, e=recorder._events)

    def find_decision(self, decision_id: str) -> DecisionRow | None:
        self.c.execute(self.q_find, (decision_id,))
        r = self.c.fetchone()
        return _checked(tuple(r.values())) if r else None

    def known_since(self, subject: str, creating_kind: str) -> date | None:
        self.c.execute(self.q_known, (subject, creating_kind))
        value: date | None = self.c.fetchone()["m"]
        return value

    def latest(self, subject: str, kind: str) -> DecisionRow | None:
        self.c.execute(self.q_latest, (subject, kind))
        r = self.c.fetchone()
        return _row(tuple(r.values())) if r else None

    def jurisdiction_of(self, subject: str) -> str | None:
        self.c.execute(self.q_juris, (subject,))
        r = self.c.fetchone()
        return r["jurisdiction"] if r else None

    def last_version(self, originator_id: UUID) -> int:
        self.c.execute(self.q_version, (originator_id,))
        return int(self.c.fetchone()["m"] or 0)

    def stored_event(self, originator_id: UUID, version: int) -> StoredEvent:
        self.c.execute(self.q_event, (originator_id, version))
        r = self.c.fetchone()
        return StoredEvent(originator_id=originator_id, originator_version=version, topic=r["topic"], state=r["state"])

    def append(self, stored: Sequence[StoredEvent], rows: Sequence[DecisionRow]) -> list[int]:
        return self._copy(
            [(s.originator_id, s.originator_version, s.topic, s.state) for s in stored],
            [
                (
                    r.decision_id,
                    r.originator_id,
                    r.originator_version,
                    r.kind,
                    r.subject,
                    r.effective,
                    r.digest,
                    r.target,
                    r.jurisdiction,
                )
                for r in rows
            ],
        )

    def append_staged(
        self, events: Sequence[StagedEvent], rows: Sequence[StagedRow], also: Sequence[StagedTable] = ()
    ) -> list[int]:
        ids = {h: UUID(hex=h) for h, *_ in events}  # one UUID per subject of the batch
        positions = self._copy(
            [(ids[h], version, topic, state) for h, version, topic, state in events],
            [(r[0], ids[r[1]], *r[2:]) for r in rows],
        )
        for table in also:
            self.insert_rows(*table)
        return positions

    def insert_rows(
        self, table: str, columns: Sequence[str], types: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        Cursor(self.c, "postgres", None).insert_many(table, columns, types, rows)

    def _copy(self, events: Sequence[tuple[Any, ...]], rows: Sequence[tuple[Any, ...]]) -> list[int]:
        """Insert events (originator id, version, topic, state) and their index rows (``DecisionRow``
        less its position), with their positions; returns the positions."""
        if not events:
            return []
        # Positions from the events table's own sequence, then one binary COPY of the events with
        # them: what eventsourcing's ``INSERT … SELECT FROM unnest(composite[]) RETURNING`` does,
        # without escaping every state into the text of a composite array (slow with psycopg's
        # pure-Python adapters). This session holds the writers' EXCLUSIVE lock of the
        # table, so the positions increase in log order as before.
        self.c.execute(self.q_positions, (self.events_name, len(events)))
        positions = sorted(int(row["p"]) for row in self.c.fetchall())
        with self.c.copy(self.q_events) as copy:
            copy.set_types(["uuid", "int8", "text", "bytea", "int8"])
            for e, p in zip(events, positions, strict=True):
                copy.write_row((*e, p))
        if len(rows) != len(positions):  # pragma: no cover - one position per inserted event
            msg = f"{len(positions)} positions for {len(rows)} index rows"
            raise StorageError(msg)
        with self.c.copy(self.q_index) as copy:
            copy.set_types(["text", "int8", "uuid", "int8", "text", "text", "date", "bytea", "text", "text"])
            for r, p in zip(rows, positions, strict=True):
                copy.write_row((r[0], p, *r[1:]))
        return positions

    def find_decisions(self, decision_ids: Collection[str]) -> dict[str, DecisionRow]:
        self.c.execute(self.q_find_many, (list(decision_ids),))
        return {r["decision_id"]: _checked(tuple(r.values())) for r in self.c.fetchall()}

    def known_since_many(self, keys: Collection[tuple[str, str]]) -> dict[tuple[str, str], date]:
        wanted = set(keys)
        self.c.execute(self.q_known_many, (sorted({s for s, _ in keys}), sorted({k for _, k in keys})))
        return {(r["subject"], r["kind"]): r["m"] for r in self.c.fetchall() if (r["subject"], r["kind"]) in wanted}

    def latest_many(self, subjects: Collection[str], kind: str) -> dict[str, DecisionRow]:
        self.c.execute(self.q_latest_many, (list(subjects), kind))
        return {r["subject"]: _row(tuple(r.values())) for r in self.c.fetchall()}

    def last_versions(self, originator_ids: Collection[UUID]) -> dict[UUID, int]:
        ids = list(originator_ids)
        found = dict.fromkeys(ids, 0)
        self.c.execute(self.q_version_many, (ids,))
        for r in self.c.fetchall():
            found[r["originator_id"]] = int(r["m"] or 0)
        return found

    def jurisdictions_of(self, subjects: Collection[str]) -> dict[str, str | None]:
        keys = list(subjects)
        found: dict[str, str | None] = dict.fromkeys(keys)
        self.c.execute(self.q_juris_many, (keys,))
        for r in self.c.fetchall():
            found[r["subject"]] = r["jurisdiction"]
        return found
