"""The PostgreSQL path: eventsourcing's own recorder, with the ledger's index and write sessions.

Imported only when ``LEDGER_DB`` is a ``postgresql://`` URL, so that the embedded SQLite default
needs no database driver (install the extra ``postgres`` for this module).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from psycopg.sql import SQL, Identifier

from ledger.errors import ConcurrencyError, StorageError
from ledger.storage import (
    _DEFAULT_FILTERS,
    INDEX_COLUMNS,
    SCHEMA_VERSION,
    DecisionRow,
    LedgerRecorder,
    WriteSession,
    _filters,
    _row,
)


class PostgresLedgerRecorder(PostgresApplicationRecorder, LedgerRecorder):
    """eventsourcing's PostgreSQL recorder with the decision index and append-only triggers."""

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        prefix = events_table_name.removesuffix("_events")
        self.index_table = f"{prefix}_decisions"
        self.meta_table = f"{prefix}_meta"
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
            ]
        )
        self._events = events
        self._index = index

    @contextmanager
    def write(self) -> Iterator[WriteSession]:
        try:
            with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
                self._lock_table(curs)
                self._notify_channel(curs)
                yield _PostgresWriteSession(self, curs)
        except psycopg.errors.UniqueViolation as e:
            msg = f"another writer recorded a decision about the same subject first: {e}"
            raise ConcurrencyError(msg) from e
        except psycopg.errors.LockNotAvailable as e:
            msg = f"the ledger is busy (another writer holds it): {e}"
            raise ConcurrencyError(msg) from e
        except psycopg.Error as e:
            msg = f"PostgreSQL refused the write: {e}"
            raise StorageError(msg) from e

    def decision_rows(self, *, limit: int = 1000, **filters: Any) -> list[DecisionRow]:
        where, params = _filters("%s", **{**_DEFAULT_FILTERS, **filters})
        sql = SQL("SELECT {cols} FROM {schema}.{index} WHERE ").format(
            cols=SQL(INDEX_COLUMNS), schema=Identifier(self.datastore.schema), index=self._index
        ) + SQL(where + " ORDER BY position LIMIT %s")
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(sql, [*params, limit])
            return [_row(tuple(r.values())) for r in curs.fetchall()]


class _PostgresWriteSession(WriteSession):
    def __init__(self, recorder: PostgresLedgerRecorder, curs: Any) -> None:
        self.r = recorder
        self.c = curs
        schema = Identifier(recorder.datastore.schema)
        self.q_find = SQL("SELECT {cols} FROM {s}.{i} WHERE decision_id = %s").format(
            cols=SQL(INDEX_COLUMNS), s=schema, i=recorder._index
        )
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
        self.q_index = SQL("INSERT INTO {s}.{i} ({cols}) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)").format(
            s=schema, i=recorder._index, cols=SQL(INDEX_COLUMNS)
        )

    def find_decision(self, decision_id: str) -> DecisionRow | None:
        self.c.execute(self.q_find, (decision_id,))
        r = self.c.fetchone()
        return _row(tuple(r.values())) if r else None

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
        if not stored:
            return []
        pg_events = [
            self.r.construct_pg_stored_event(s.originator_id, s.originator_version, s.topic, s.state) for s in stored
        ]
        self.c.execute(self.r.insert_events_statement, (pg_events,))
        positions = [int(row["notification_id"]) for row in self.c.fetchall()]
        self.c.executemany(
            self.q_index,
            [
                (
                    r.decision_id,
                    p,
                    r.originator_id,
                    r.originator_version,
                    r.kind,
                    r.subject,
                    r.effective,
                    r.digest,
                    r.target,
                    r.jurisdiction,
                )
                for r, p in zip(rows, positions, strict=True)
            ],
        )
        return positions
