"""The tables beside the events: the node store, the leaf map, the tree state, the checkpoints.

``open_log`` gives what every part of ``ledger.integrity`` reads the ledger through (``Log``: the
database, the statements that read its events, the names of its tables) and creates the tables
the first time; ``fetch_rows`` reads rows cheaply on both databases.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ledger import leafhash, merkle
from ledger.checkpoints import b64encode
from ledger.sql import Cursor, Database
from ledger.storage import EVENTS_TABLE

if TYPE_CHECKING:
    from ledger.application import LedgerApplication

BATCH = 10_000
"""Records per read (and per write transaction in ``sync``): memory stays constant."""

NODES = "ledger_merkle_nodes"
LEAVES = "ledger_merkle_leaves"
TREE = "ledger_merkle_tree"
CHECKPOINTS = "ledger_checkpoints"

_prepared: weakref.WeakSet[Any] = weakref.WeakSet()


@dataclass(frozen=True)
class Log:
    """The ledger's database plus what the integrity code needs to read its events."""

    db: Database
    select_events: str  # (after, stop, limit) -> (position, originator_id, version, topic, state, ok)
    select_event_at: str  # (position,) -> the same columns
    max_position: str
    select_hashes: str | None = None  # PostgreSQL: (after, stop, limit) -> (position, leaf hash)
    select_plain: str | None = None  # SQLite: (after, stop, limit) -> the columns as stored, unchecked
    events: str = EVENTS_TABLE  # the events table, qualified
    position: str = "rowid"  # its position column
    index: str = "ledger_decisions"  # the decision index, qualified

    def t(self, name: str) -> str:
        return self.db.table(name)


_PG_LEAF_HASH = leafhash.pg_leaf_hash(
    {
        "position": "notification_id",
        "originator_id": "originator_id",
        "originator_version": "originator_version",
        "topic": "convert_to(topic, 'UTF8')",
        "state": "state",
    }
)
"""The leaf hash of a row of PostgreSQL's events table, computed where the row is read."""


def open_log(app: LedgerApplication) -> Log:
    """The ledger's ``Log``; creates the tables beside the events the first time a store is seen."""
    db = Database(app.store)
    events_name = EVENTS_TABLE
    if db.dialect == "postgres":  # the schema enforces every column's type
        events, pos = db.table(events_name), "notification_id"
        cols = f"{pos}, originator_id, originator_version, topic, state, TRUE"
    else:
        # SQLite stores any value in any column, and a TEXT value that is not UTF-8 cannot even be
        # read as text: read the bytes as they are and report the storage classes separately, so
        # a tampered row is reported at its position instead of stopping the verification.
        events, pos = events_name, "rowid"
        cols = (
            f"{pos}, CAST(originator_id AS BLOB), originator_version, CAST(topic AS BLOB), CAST(state AS BLOB), "
            "typeof(originator_id) = 'text' AND typeof(originator_version) = 'integer' "
            "AND typeof(topic) = 'text' AND typeof(state) = 'blob'"
        )
    where = f"FROM {events} WHERE {pos} > ? AND {pos} <= ? ORDER BY {pos} LIMIT ?"
    log = Log(
        db=db,
        select_events=f"SELECT {cols} {where}",
        select_event_at=f"SELECT {cols} FROM {events} WHERE {pos} = ?",
        max_position=f"SELECT MAX({pos}) FROM {events}",
        select_hashes=f"SELECT {pos}, {_PG_LEAF_HASH} {where}" if db.dialect == "postgres" else None,
        select_plain=(
            None
            if db.dialect == "postgres"
            else f"SELECT {pos}, originator_id, originator_version, topic, state {where}"
        ),
        events=events,
        position=pos,
        index=db.table(getattr(app.store, "index_table", "ledger_decisions")),
    )
    if app.store not in _prepared:
        _create_tables(log)
        _prepared.add(app.store)
    return log


def assume_tables(app: LedgerApplication) -> None:
    """Read ``app``'s integrity tables as they are, never creating them: a read-only connection
    (``ledger serve``) cannot, and a ledger without them simply has no proof to give."""
    _prepared.add(app.store)


def _create_tables(log: Log) -> None:
    """Create the node store, leaf map, tree state and checkpoint tables, idempotently.

    The node, leaf and checkpoint tables are append-only like the events (triggers refuse UPDATE
    and DELETE): against mistakes, not attackers, who are what ``verify`` is for.
    """
    db, blob, big = log.db, log.db.blob, log.db.bigint
    pg = db.dialect == "postgres"
    rowid = "" if pg else " WITHOUT ROWID"
    statements = [
        f"CREATE TABLE IF NOT EXISTS {log.t(NODES)} (level INTEGER NOT NULL, idx {big} NOT NULL, "
        f"hash {blob} NOT NULL, PRIMARY KEY (level, idx)){rowid}",
        f"CREATE TABLE IF NOT EXISTS {log.t(LEAVES)} (position {big} PRIMARY KEY, leaf_index {big} NOT NULL UNIQUE)",
        f"CREATE TABLE IF NOT EXISTS {log.t(TREE)} (id INTEGER PRIMARY KEY CHECK (id = 1), size {big} NOT NULL, "
        f"last_position {big} NOT NULL, frontier {blob} NOT NULL, log_id TEXT NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {log.t(CHECKPOINTS)} (seq {big} PRIMARY KEY, size {big} NOT NULL, "
        f"root {blob} NOT NULL, time TEXT NOT NULL, origin TEXT NOT NULL, note TEXT NOT NULL)",
        f"INSERT INTO {log.t(TREE)} (id, size, last_position, frontier, log_id) VALUES (1, 0, 0, ?, ?) "
        "ON CONFLICT DO NOTHING",
    ]
    if pg:
        fn = f'"{db.schema}".ledger_integrity_refuse_change'
        statements.append(
            f"CREATE OR REPLACE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION "
            "'the ledger is append-only: % on % refused', TG_OP, TG_TABLE_NAME; END $$"
        )
        statements += [
            f"CREATE OR REPLACE TRIGGER {name}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {log.t(name)} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {fn}()"
            for name in (NODES, LEAVES, CHECKPOINTS)
        ]
    else:
        statements += [
            f"CREATE TRIGGER IF NOT EXISTS {name}_no_{op.lower()} BEFORE {op} ON {name} "
            f"BEGIN SELECT RAISE(ABORT, 'the ledger is append-only: {op} on {name} refused'); END"
            for name in (NODES, LEAVES, CHECKPOINTS)
            for op in ("UPDATE", "DELETE")
        ]
    with db.transaction() as c:
        db.serialise(c, "ledger_merkle")  # concurrent first `ledger verify`s on a new schema
        for sql in statements:
            if sql.startswith("INSERT"):
                c.execute(sql, (merkle.Frontier().to_bytes(), os.urandom(8).hex()))
            else:  # no parameters: PostgreSQL must not read the function body's % as placeholders
                c.raw.execute(sql)


def fetch_rows(c: Cursor, sql: str, params: Sequence[Any]) -> Sequence[Sequence[Any]]:
    """Rows as plain sequences, cheaply: SQLite's ``Row`` as it comes, PostgreSQL's as tuples in
    binary format (``bytea`` not unescaped from hex text): converting every row one by one
    would be a large share of ``verify``'s work."""
    if c.dialect == "sqlite":
        c.execute(sql, params)
        rows: Sequence[Sequence[Any]] = c.raw.fetchall()
        return rows
    from psycopg.rows import tuple_row

    c.raw.row_factory = tuple_row
    c.raw.execute(sql.replace("?", "%s"), params, binary=True)
    pg_rows: Sequence[Sequence[Any]] = c.raw.fetchall()
    return pg_rows


def shown(value: Any) -> str:
    """A stored value as a message names it: bytes in base64, anything else its short ``repr``."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return b64encode(bytes(value))
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
