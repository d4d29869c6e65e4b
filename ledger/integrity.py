"""Tamper evidence: an RFC 9162 Merkle log over every stored record, signed checkpoints, proofs.

Why: an audit ledger whose operator could quietly rewrite history is not an audit ledger. Triggers
make the tables append-only against mistakes, not against someone with the database file. What
holds against that is what transparency logs (Certificate Transparency, Trillian/Tessera,
Sigstore) give: a Merkle tree over the log whose roots the ledger signs (C2SP tlog-checkpoint), so
anyone holding a checkpoint can check that the log was only ever appended to, and anyone holding a
proof bundle can check one decision with no database at all.

Leaves (``leaf_bytes``)
    Leaf ``i`` is the ``i``-th stored record in notification order, as canonical bytes: a format
    byte, the position, the subject's UUID, its version, the topic and the state, with fixed-width
    big-endian integers and length-prefixed strings so that no two records share an encoding.
    Changing, removing or reordering any stored record therefore changes the root. PostgreSQL
    positions may have gaps, so the leaf index is not the position: ``ledger_merkle_leaves`` maps
    one to the other.

The tree beside the events (ARCHITECTURE.md rule 7)
    ``ledger_merkle_nodes(level, idx, hash)`` holds every finished perfect subtree (level 0 = leaf
    hashes, RFC 9162 §2.1.1 ``SHA-256(0x00 ‖ leaf)``), ``ledger_merkle_tree`` the size, the last
    position and the right frontier (``merkle.Frontier``). ``sync`` appends from the stored size to
    the end of the log in batches: O(1) amortised hashing per leaf, constant memory, one bulk
    insert per table per batch (``executemany`` on SQLite, ``unnest`` of arrays on PostgreSQL).
    A proof (RFC 9162 §2.1.3, §2.1.4) reads O(log n) nodes.

Checkpoints (C2SP tlog-checkpoint + signed-note, ``ledger.checkpoints``)
    ``checkpoint`` signs (origin, size, root, time) and keeps the note in ``ledger_checkpoints``.
    A log must never sign two inconsistent checkpoints, so it first checks a consistency proof
    from the node store against every stored checkpoint and refuses if one fails.

Verification (``verify``)
    Recomputes every leaf from the stored records, streaming in batches, and folds them into a
    fresh frontier; the node store is *not* trusted for the roots, which are compared with each
    signed checkpoint. The level-0 hashes written when the tree was built are compared a batch at
    a time, and leaf by leaf only where a batch differs, to name the first position where storage
    and the recorded history disagree. On a large SQLite log, helper processes read and hash
    ranges of records ahead (``_Prefetcher``) while this one compares and folds.

The decision index (``_check_index``, ``ledger.indexhash``)
    Outside the tree, so ``checkpoint`` recomputes the rows of the records it newly covers from
    their events, refuses to sign if one disagrees, and signs a digest chain of the rows as an
    extension line (``decision-index <position> <digest>``). ``verify --key`` hashes the stored
    rows under the newest verified one against it and recomputes only the rows after it; all of
    them without a key, with ``full``, or (to name them) where the digest disagrees.

Offline proofs (``prove`` / ``verify_proof``)
    A JSON bundle with the decision, its leaf bytes, the inclusion proof and the signed note, plus
    the same evidence as a C2SP ``tlog-proof`` text (leaf bytes as its ``extra`` data), checkable
    with the verifier key alone.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import os
import re
import sqlite3
import struct
import subprocess
import sys
import time
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast
from uuid import UUID

from ledger import aggregates, canonical, indexhash, leafhash, merkle
from ledger.checkpoints import (
    Checkpoint,
    SignerKey,
    VerifierKey,
    check_origin,
    format_time,
    generate_key,
    note_signers,
    open_note,
    parse_checkpoint,
    sign,
)
from ledger.decisions import MAX_DEPTH, record_from_state
from ledger.decisions import _decoder as json_decoder
from ledger.errors import (
    ConfigurationError,
    DecisionError,
    IntegrityError,
    MalformedProof,
    NotFound,
    SignatureError,
    UnreadableRecord,
)
from ledger.leafhash import LEAF_VERSION
from ledger.sql import Cursor, Database
from ledger.topics import read_state
from ledger.transcoder import MsgpackTranscoder

if TYPE_CHECKING:
    from ledger.application import LedgerApplication

__all__ = [
    "BUNDLE_FORMAT",
    "LEAF_VERSION",
    "Disagreement",
    "Leaf",
    "ProofReport",
    "StoredCheckpoint",
    "TreeState",
    "VerifyReport",
    "base64_hash",
    "checkpoint",
    "consistency_proof",
    "default_key_path",
    "default_origin",
    "dump_bundle",
    "inclusion_proof",
    "keygen",
    "leaf_bytes",
    "load_bundle",
    "load_signer_key",
    "load_verifier_keys",
    "parse_leaf",
    "prove",
    "root_at",
    "stored_checkpoints",
    "sync",
    "tlog_proof_text",
    "tree_state",
    "verify",
    "verify_proof",
]

BATCH = 10_000
"""Records per read (and per write transaction in ``sync``): memory stays constant."""


BUNDLE_FORMAT = "medtech-ledger/proof@v1"
TLOG_PROOF_HEADER = "c2sp.org/tlog-proof@v1"

NODES = "ledger_merkle_nodes"
LEAVES = "ledger_merkle_leaves"
TREE = "ledger_merkle_tree"
CHECKPOINTS = "ledger_checkpoints"

# version, position, subject UUID, subject version, topic length; the hashing variant starts with
# the RFC 9162 leaf prefix 0x00 (the ``x`` pad byte) so a leaf hash needs no extra concatenation.
_HEAD = struct.Struct(">BQ16sQI")
_HASH_HEAD = leafhash.HASH_HEAD
_LEN = leafhash.LENGTH
_NODE_PREFIX = b"\x01"
_sha256 = hashlib.sha256


# --- leaves ---------------------------------------------------------------------------------


def leaf_bytes(position: int, originator_id: UUID, originator_version: int, topic: str, state: bytes) -> bytes:
    """The canonical bytes of one stored record: what its leaf in the tree commits to.

    ``0x01 ‖ u64 position ‖ 16-byte UUID ‖ u64 version ‖ u32 len ‖ topic (UTF-8) ‖ u32 len ‖ state``.
    Fixed widths and length prefixes make the encoding injective: two different records never
    give the same bytes, so no byte of a record can change without changing its leaf hash.
    """
    return _leaf(position, originator_id.bytes, originator_version, topic.encode("utf-8"), bytes(state))


def _leaf(position: int, oid: bytes, version: int, topic: bytes, state: bytes) -> bytes:
    return _HEAD.pack(LEAF_VERSION, position, oid, version, len(topic)) + topic + _LEN.pack(len(state)) + state


@dataclass(frozen=True)
class Leaf:
    """A stored record as a leaf commits to it (see ``leaf_bytes``)."""

    position: int
    originator_id: UUID
    originator_version: int
    topic: str
    state: bytes


def parse_leaf(data: bytes) -> Leaf:
    """Inverse of ``leaf_bytes``; strict (no trailing bytes), raises ``ValueError`` otherwise."""
    if len(data) < _HEAD.size + _LEN.size:
        raise ValueError("leaf is too short")
    version, position, oid, ov, topic_len = _HEAD.unpack_from(data)
    if version != LEAF_VERSION:
        raise ValueError(f"leaf format {version} is not {LEAF_VERSION}")
    at = _HEAD.size + topic_len
    if len(data) < at + _LEN.size:
        raise ValueError("leaf is too short for its topic")
    topic = data[_HEAD.size : at].decode("utf-8")
    (state_len,) = _LEN.unpack_from(data, at)
    at += _LEN.size
    if len(data) != at + state_len:
        raise ValueError("leaf length does not match its state length")
    return Leaf(position, UUID(bytes=oid), ov, topic, bytes(data[at:]))


def _uuid_bytes(value: Any) -> bytes:
    """The 16 bytes of a stored originator id (PostgreSQL gives a UUID, SQLite hex text as bytes)."""
    if isinstance(value, UUID):
        return value.bytes
    if isinstance(value, bytes):
        value = value.decode("ascii")
    if isinstance(value, str) and len(value) == 32:
        return bytes.fromhex(value)
    return UUID(str(value)).bytes


def _row_leaf(row: Sequence[Any]) -> bytes:
    """Leaf bytes of a raw ``_Log.select_events`` row; ``ValueError`` if the row is malformed."""
    position, oid, version, topic, state, well_typed = row[:6]
    if not well_typed or not isinstance(state, bytes) or not isinstance(topic, (bytes, str)):
        raise ValueError("a column holds a value of the wrong type")
    topic_bytes = topic if isinstance(topic, bytes) else topic.encode("utf-8")
    return _leaf(int(position), _uuid_bytes(oid), int(version), topic_bytes, state)


def _read_leaves(
    c: Cursor, log: _Log, after: int, stop: int, batch: int, *, fast: bool
) -> tuple[Sequence[Sequence[Any]], list[bytes | None], bool]:
    """The next ``batch`` records after ``after`` (each row's position first), their leaf hashes,
    and whether every one is well-formed.

    A hash is None where the record is malformed (a column of the wrong storage class, an id that
    is not a UUID): its leaf can match nothing. The hot loop of ``verify`` and ``sync``.

    SQLite, ``fast`` (see ``_fast_reads``): the plain columns (no ``CAST``, no ``typeof``: in a
    result column they cost as much as reading the row) hashed by one comprehension. The sqlite3
    module maps each storage class to one Python type, so a well-typed row is exactly one that
    gives a ``str`` id, an ``int`` version, a ``str`` topic and a ``bytes`` state; anything else
    fails inside the comprehension (``bytes.fromhex`` takes only ``str``, ``struct`` only ``int``,
    ``str`` has ``encode`` and ``bytes`` has not, ``bytes + str`` raises) or in the length check
    of the ids, and so does a TEXT value that is not UTF-8 (the module cannot decode it). Then the
    batch is read again the careful way (``select_events``: bytes as stored, storage classes
    checked by SQLite) and hashed row by row, so each malformed record is found at its position.
    The careful way is the reference; both give the same hashes (``tests/ledger/test_verify_fast.py``).
    """
    if log.select_hashes is not None:
        pg_rows = _fetch_rows(c, log.select_hashes, (after, stop, batch))
        pg_hashes = [None if h is None else bytes(h) for _, h in pg_rows]
        return pg_rows, pg_hashes, all(h is not None for _, h in pg_rows)
    if fast and log.select_plain is not None:
        try:
            c.raw.execute(log.select_plain, (after, stop, batch))
            rows: list[tuple[Any, ...]] = c.raw.fetchall()
            if {len(row[1]) for row in rows} <= {32}:  # the careful way reads other lengths as UUID text
                hashes: list[bytes | None] = list(leafhash.hash_rows(rows))
                return rows, hashes, True
        except Exception:  # a malformed record in this batch: read it again, the careful way
            pass
    rows_, careful = _read_leaves_carefully(c, log, after, stop, batch)
    return rows_, careful, None not in careful


def _fast_reads(c: Cursor, log: _Log) -> bool:
    """Whether ``_read_leaves`` may take its fast path in this transaction (SQLite only).

    It re-encodes text as UTF-8 where the careful way reads the stored bytes (``CAST(… AS
    BLOB)``): the same bytes only in a UTF-8 database, SQLite's default and every ledger's. It
    also wants plain tuples: a ``sqlite3.Row`` per record costs more than it gives.
    """
    if log.select_plain is None:
        return False
    # the sqlite3 cursor itself (eventsourcing wraps it): only this transaction's cursor changes
    getattr(c.raw, "sqlite_cursor", c.raw).row_factory = None
    row = c.execute("PRAGMA encoding").fetchone()
    return row is not None and row[0] == "UTF-8"


def _read_leaves_carefully(
    c: Cursor, log: _Log, after: int, stop: int, batch: int
) -> tuple[Sequence[Sequence[Any]], list[bytes | None]]:
    """``_read_leaves`` row by row from ``select_events``: the reference, and malformed rows' path."""
    sha, head_pack, len_pack, fromhex, version = _sha256, _HASH_HEAD.pack, _LEN.pack, bytes.fromhex, LEAF_VERSION
    rows = _fetch_rows(c, log.select_events, (after, stop, batch))
    out: list[bytes | None] = []
    append = out.append
    for row in rows:
        position, oid, ov, topic, state, well_typed = row
        try:
            if not well_typed:
                raise ValueError(position)
            ob = fromhex(oid.decode()) if len(oid) == 32 else _uuid_bytes(oid)
            leaf = head_pack(version, position, ob, ov, len(topic)) + topic + len_pack(len(state)) + state
            append(sha(leaf).digest())
        except Exception:  # a malformed row (wrong types, not a UUID): its leaf can match nothing
            append(None)
    return rows, out


def _fold(stack: Sequence[bytes]) -> bytes:
    """Root of a frontier stack (largest subtree first), RFC 9162 §2.1.1 split at powers of two."""
    if not stack:
        return merkle.EMPTY_ROOT
    r = stack[-1]
    for h in reversed(stack[:-1]):
        r = _sha256(_NODE_PREFIX + h + r).digest()
    return r


# --- tables beside the events ---------------------------------------------------------------

_prepared: weakref.WeakSet[Any] = weakref.WeakSet()


@dataclass(frozen=True)
class _Log:
    """The ledger's database plus what the integrity code needs to read its events."""

    db: Database
    select_events: str  # (after, stop, limit) -> (position, originator_id, version, topic, state, ok)
    select_event_at: str  # (position,) -> the same columns
    max_position: str
    select_hashes: str | None = None  # PostgreSQL: (after, stop, limit) -> (position, leaf hash)
    select_plain: str | None = None  # SQLite: (after, stop, limit) -> the columns as stored, unchecked
    events: str = "stored_events"  # the events table, qualified
    position: str = "rowid"  # its position column
    index: str = "ledger_decisions"  # the decision index, qualified

    def t(self, name: str) -> str:
        return self.db.table(name)


_PG_LEAF_HASH = (
    f"sha256(decode('00{LEAF_VERSION:02x}', 'hex') || int8send(notification_id::bigint) || uuid_send(originator_id) "
    "|| int8send(originator_version::bigint) || int4send(octet_length(convert_to(topic, 'UTF8'))) "
    "|| convert_to(topic, 'UTF8') || int4send(octet_length(state)) || state)"
)
"""RFC 9162 leaf hash ``SHA-256(0x00 ‖ leaf_bytes(…))`` computed by PostgreSQL, byte for byte the
layout of ``leaf_bytes`` (``int8send``/``int4send`` are big-endian; ``uuid_send`` the 16 bytes).
Why: without psycopg's C extension, loading a 300-byte ``bytea`` per row costs more than all the
rest of ``verify``; hashing where the row is read returns 32 bytes instead. The server reads the
same stored bytes the client would, so this trusts nothing the client would not; ``prove`` still
rebuilds each leaf it hands out in Python and checks it against the signed root."""


def _log(app: LedgerApplication) -> _Log:
    db = Database(app.store)
    events_name: str = app.store.events_table_name  # type: ignore[attr-defined]
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
    log = _Log(
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


def _create_tables(log: _Log) -> None:
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


@dataclass(frozen=True)
class TreeState:
    """The log-backed tree as stored: ``size`` leaves, the last one at ``last_position``."""

    size: int
    last_position: int
    root: bytes
    log_id: str


def _read_tree(c: Cursor, log: _Log, *, lock: bool = False) -> tuple[TreeState, merkle.Frontier]:
    lock_sql = " FOR UPDATE" if lock and log.db.dialect == "postgres" else ""
    row = c.execute(
        f"SELECT size, last_position, frontier, log_id FROM {log.t(TREE)} WHERE id = 1{lock_sql}"
    ).fetchone()
    if row is None:  # pragma: no cover - created with the table
        raise IntegrityError(f"the Merkle tree state ({TREE}) is missing")
    size, last, raw, log_id = row
    try:
        frontier = merkle.Frontier.from_bytes(bytes(raw))
    except ValueError as e:
        raise IntegrityError(f"the stored Merkle frontier is corrupt: {e}") from None
    if frontier.size != size:
        raise IntegrityError(f"the stored Merkle frontier has {frontier.size} leaves, the tree says {size}")
    return TreeState(int(size), int(last), frontier.root(), str(log_id)), frontier


def _node_reader(c: Cursor, log: _Log) -> merkle.GetNode:
    """``get_node`` over the node store, cached for the life of one transaction."""
    cache: dict[tuple[int, int], bytes] = {}
    sql = f"SELECT hash FROM {log.t(NODES)} WHERE level = ? AND idx = ?"

    def get_node(level: int, index: int) -> bytes:
        key = (level, index)
        found = cache.get(key)
        if found is None:
            row = c.execute(sql, key).fetchone()
            if row is None:
                raise IntegrityError(f"the Merkle node store lacks node ({level}, {index}): run `ledger verify`")
            found = cache[key] = bytes(row[0])
        return found

    return get_node


def tree_state(app: LedgerApplication) -> TreeState:
    """The tree as last synced (no sync)."""
    log = _log(app)
    with log.db.transaction(write=False) as c:
        return _read_tree(c, log)[0]


def sync(app: LedgerApplication, *, batch: int = BATCH) -> TreeState:
    """Extend the tree from its stored size to the end of the log; idempotent.

    Each batch of records is hashed into the frontier and written (nodes, leaf map, new state) in
    one transaction, so an interrupted sync resumes where it committed. Before extending, the
    last leaf is re-read and compared with its stored hash: a truncated or rewritten tail is
    refused here, in O(1), rather than silently built upon.
    """
    log = _log(app)
    state_sql = f"UPDATE {log.t(TREE)} SET size = ?, last_position = ?, frontier = ? WHERE id = 1"
    checked_tail = False
    while True:
        with log.db.transaction() as c:
            state, frontier = _read_tree(c, log, lock=True)
            if not checked_tail:
                _check_tail(c, log, state)
                checked_tail = True
            rows, hashes, complete = _read_leaves(
                c, log, state.last_position, 2**63 - 1, batch, fast=_fast_reads(c, log)
            )
            if not rows:
                return state
            if not complete:
                position = next(row[0] for row, h in zip(rows, hashes, strict=True) if h is None)
                msg = f"the record at position {position} is malformed: run `ledger verify`"
                raise IntegrityError(msg)
            positions = [row[0] for row in rows]
            leaves = list(zip(positions, range(frontier.size, frontier.size + len(rows)), strict=True))
            nodes = frontier.extend_with_nodes(cast("list[bytes]", hashes))
            _insert_many(c, log, NODES, ("level", "idx", "hash"), ("integer", "bigint", "bytea"), nodes)
            _insert_many(c, log, LEAVES, ("position", "leaf_index"), ("bigint", "bigint"), leaves)
            c.execute(state_sql, (frontier.size, positions[-1], frontier.to_bytes()))
            state = TreeState(frontier.size, positions[-1], frontier.root(), state.log_id)
        if len(rows) < batch:
            return state


def _insert_many(
    c: Cursor, log: _Log, table: str, columns: Sequence[str], pg_types: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Insert rows in one statement: ``executemany`` on SQLite, ``unnest`` of arrays on PostgreSQL.

    Why not ``executemany`` on PostgreSQL too: psycopg sends one statement per row (pipelined),
    ≈60 µs each without its C extension; one ``INSERT … SELECT unnest(…)`` per batch is ≈1 µs a row.
    """
    if not rows:
        return
    names = ", ".join(columns)
    if log.db.dialect == "postgres":
        arrays = ", ".join(f"%b::{t}[]" for t in pg_types)  # %b: binary arrays, no bytea escaping
        c.raw.execute(
            f"INSERT INTO {log.t(table)} ({names}) SELECT * FROM unnest({arrays})",
            [list(col) for col in zip(*rows, strict=True)],
        )
    else:
        c.executemany(f"INSERT INTO {log.t(table)} ({names}) VALUES ({', '.join('?' * len(columns))})", rows)


def _check_tail(c: Cursor, log: _Log, state: TreeState) -> None:
    if state.size == 0:
        return
    row = c.execute(log.select_event_at, (state.last_position,)).fetchone()
    if row is None:
        raise IntegrityError(
            f"the record at position {state.last_position}, the last one in the Merkle tree, is gone: "
            "the log was truncated; run `ledger verify`"
        )
    try:
        h = merkle.leaf_hash(_row_leaf(row))
    except (ValueError, TypeError):
        h = b""
    if not hmac.compare_digest(h, _node_reader(c, log)(0, state.size - 1)):
        raise IntegrityError(
            f"the record at position {state.last_position} changed since it entered the Merkle tree: "
            "run `ledger verify`"
        )


def root_at(app: LedgerApplication, size: int, *, sync_first: bool = True) -> bytes:
    """The root of the first ``size`` leaves, from O(log n) stored nodes (syncs first unless told
    not to: a read-only server reads the tree as the writer left it)."""
    state = sync(app) if sync_first else tree_state(app)
    if not 0 <= size <= state.size:
        raise NotFound(f"the tree has {state.size} leaves, not {size}")
    log = _log(app)
    with log.db.transaction(write=False) as c:
        return merkle.root_from(_node_reader(c, log), size)


def inclusion_proof(app: LedgerApplication, leaf_index: int, size: int) -> list[bytes]:
    """RFC 9162 §2.1.3.1 audit path of ``leaf_index`` in the tree of ``size``, O(log n) reads."""
    state = sync(app)
    if not 0 <= leaf_index < size <= state.size:
        raise NotFound(f"no leaf {leaf_index} in a tree of size {size} (the tree has {state.size})")
    log = _log(app)
    with log.db.transaction(write=False) as c:
        return merkle.inclusion_proof_from(_node_reader(c, log), leaf_index, size)


def consistency_proof(app: LedgerApplication, old_size: int, new_size: int, *, sync_first: bool = True) -> list[bytes]:
    """RFC 9162 §2.1.4.1 proof that the tree of ``old_size`` prefixes that of ``new_size``."""
    state = sync(app) if sync_first else tree_state(app)
    if not 0 <= old_size <= new_size <= state.size:
        raise NotFound(f"sizes {old_size} ≤ {new_size} are not within the tree's {state.size}")
    log = _log(app)
    with log.db.transaction(write=False) as c:
        return merkle.consistency_proof_from(_node_reader(c, log), old_size, new_size)


# --- checkpoints ----------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredCheckpoint:
    """One signed checkpoint as the ledger keeps it."""

    seq: int
    size: int
    root: bytes
    time: str
    origin: str
    note: str
    faults: tuple[str, ...] = ()
    """What is wrong with the row's own columns (a size that is not a number…): -1 / empty stand in."""


def _stored(c: Cursor, log: _Log) -> list[StoredCheckpoint]:
    """Every stored checkpoint row, oldest first, read as it is: a column holding what it should
    not (SQLite stores anything anywhere) is a fault of that row, never an exception."""
    sql = f"SELECT seq, size, root, time, origin, note FROM {log.t(CHECKPOINTS)} ORDER BY seq"
    if log.db.dialect == "sqlite":  # text that is not UTF-8 cannot be read as text
        sql = sql.replace("time, origin, note", "CAST(time AS BLOB), CAST(origin AS BLOB), CAST(note AS BLOB)")
    out = []
    for k, (seq, size, stored_root, *texts) in enumerate(c.execute(sql).fetchall(), 1):
        faults: list[str] = []

        def number(value: Any, name: str, faults: list[str] = faults) -> int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            faults.append(f"its {name} {_shown(value)} is not a number")
            return -1

        root = bytes(stored_root) if isinstance(stored_root, (bytes, bytearray, memoryview)) else b""
        if len(root) != merkle.HASH_SIZE:
            faults.append(f"its root {_shown(stored_root)} is not a {merkle.HASH_SIZE}-byte hash")
            root = b""
        strings = []
        for name, value in zip(("time", "origin", "note"), texts, strict=True):
            try:
                strings.append(value.decode("utf-8") if isinstance(value, bytes) else str(value))
            except UnicodeDecodeError:
                faults.append(f"its {name} is not UTF-8 text")
                strings.append("")
        seq_number = number(seq, "seq")
        out.append(
            StoredCheckpoint(
                seq_number if seq_number >= 0 else k,
                number(size, "size"),
                root,
                strings[0],
                strings[1],
                strings[2],
                tuple(faults),
            )
        )
    return out


def stored_checkpoints(app: LedgerApplication) -> list[StoredCheckpoint]:
    """Every checkpoint the ledger signed, oldest first."""
    log = _log(app)
    with log.db.transaction(write=False) as c:
        return _stored(c, log)


def _unverified(note: str) -> Checkpoint:
    """The checkpoint a signed note carries, without checking its signatures (no key at hand)."""
    split = note.rfind("\n\n")
    if split < 0:
        raise SignatureError("malformed note: no blank line before the signatures")
    return parse_checkpoint(note[: split + 1])


def default_origin(app: LedgerApplication) -> str:
    """The origin line of this log: the one it last signed, else ``medtech-ledger/<log id>``.

    The log id is random, made once when the tree tables are created, so two ledgers never
    share an origin (witnesses tell logs apart by it) and one ledger keeps its own for ever.
    """
    log = _log(app)
    with log.db.transaction(write=False) as c:
        stored = _stored(c, log)
        if stored:
            return stored[-1].origin
        return f"medtech-ledger/{_read_tree(c, log)[0].log_id}"


def checkpoint(
    app: LedgerApplication,
    signer_key: str | SignerKey,
    origin: str | None = None,
    *,
    now: datetime | None = None,
    rotate_key: bool = False,
    new_origin: bool = False,
) -> str:
    """Sync, then sign (origin, size, root, time) as a C2SP checkpoint, keep it, return the note.

    Refuses (``IntegrityError``) when the tree is not consistent with a checkpoint already signed:
    for each stored one, an RFC 9162 §2.1.4 consistency proof from the node store must verify
    against its signed root. A log that signed two inconsistent checkpoints would have proved
    it rewrote history; refusing keeps that from ever being signed.

    A log keeps its identity: the key and the origin of the last signed checkpoint. Another key
    is refused unless ``rotate_key`` (a key rotation, docs/reliability.md), another origin unless
    ``new_origin``; with the same key, the last checkpoint's signature must verify with it (a
    row claiming this key's signature that does not verify was forged). The origin must be one
    C2SP allows (``checkpoints.check_origin``).
    """
    key = signer_key if isinstance(signer_key, SignerKey) else SignerKey.parse(signer_key)
    sync(app)
    log = _log(app)
    with log.db.transaction() as c:
        state, _ = _read_tree(c, log, lock=True)
        get_node = _node_reader(c, log)
        root = merkle.root_from(get_node, state.size)
        if not hmac.compare_digest(root, state.root):
            raise IntegrityError("the Merkle node store and the stored frontier disagree: run `ledger verify`")
        stored = _stored(c, log)
        _check_consistent(stored, state, get_node)
        last = stored[-1] if stored else None
        if origin is None:
            origin = last.origin if last is not None else f"medtech-ledger/{state.log_id}"
        elif last is not None and origin != last.origin and not new_origin:
            raise ConfigurationError(
                f"checkpoint #{last.seq} was signed for the origin {last.origin!r}, not {origin!r}: a log keeps its "
                "origin; give --new-origin to sign under another one on purpose"
            )
        try:
            check_origin(origin)
        except ValueError as e:
            raise ConfigurationError(f"cannot make a checkpoint: {e}") from None
        if last is not None:
            _check_same_key(last, key, rotate_key)
        index_position, index_digest = _index_link(c, log, app, stored, state)
        when = (now or datetime.now(UTC)).replace(microsecond=0)
        try:
            cp = Checkpoint(origin, state.size, root).with_time(when).with_index(index_position, index_digest)
        except ValueError as e:
            raise ConfigurationError(f"cannot make a checkpoint: {e}") from None
        note = sign(cp, key)
        seq = (stored[-1].seq if stored else 0) + 1
        c.execute(
            f"INSERT INTO {log.t(CHECKPOINTS)} (seq, size, root, time, origin, note) VALUES (?, ?, ?, ?, ?, ?)",
            (seq, state.size, root, format_time(when), origin, note),
        )
    return note


def _index_link(
    c: Cursor, log: _Log, app: LedgerApplication, stored: Sequence[StoredCheckpoint], state: TreeState
) -> tuple[int, bytes]:
    """The ``decision-index`` line the new checkpoint signs: the rows of the records it newly
    covers (after the last index line signed, up to the tree's last position) are recomputed
    from their events first, and signing is refused where one disagrees, so a digest is only
    ever signed over rows that were checked. Incremental: the rows signed before are not read."""
    after, previous = _last_index_line(stored)
    if after > state.last_position:
        raise IntegrityError(
            f"the last signed decision-index line covers positions up to {after}, but the tree ends at position "
            f"{state.last_position}: refusing to sign"
        )
    found = _check_index(c, log, app, state.last_position, BATCH, after=after, bounded=True)
    if found.problems:
        raise IntegrityError(
            f"the decision index disagrees with its events at the records this checkpoint would cover (positions "
            f"{after + 1} to {state.last_position}): {'; '.join(found.messages())}: refusing to sign; run "
            "`ledger verify`"
        )
    return state.last_position, indexhash.link(_index_fetch(c, log), previous, after, state.last_position, BATCH)[0]


def _check_same_key(last: StoredCheckpoint, key: SignerKey, rotate_key: bool) -> None:
    """Refuse to sign with another key than the last checkpoint's, unless rotating on purpose;
    with the same key, the last checkpoint must really carry its signature."""
    try:
        signers = note_signers(last.note)
    except SignatureError as e:
        raise IntegrityError(f"stored checkpoint #{last.seq} is not a readable note ({e}): refusing to sign") from None
    mine = (key.name, key.key_id)
    if mine not in signers:
        if rotate_key:
            return
        named = ", ".join(f"{name}+{kid:08x}" for name, kid in signers)
        raise ConfigurationError(
            f"checkpoint #{last.seq} was signed by {named}, not by this key ({key.name}+{key.key_id:08x}): "
            "refusing to sign with another key; give --rotate-key if the log's key is being replaced "
            "(docs/reliability.md, key rotation)"
        )
    try:
        open_note(last.note, [key.verifier()])
    except SignatureError as e:
        raise IntegrityError(
            f"stored checkpoint #{last.seq} names this key but its signature does not verify ({e}): "
            "the checkpoints were altered; run `ledger verify`"
        ) from None


def _check_consistent(stored: Sequence[StoredCheckpoint], state: TreeState, get_node: merkle.GetNode) -> None:
    seen: set[tuple[int, bytes]] = set()
    for cp in stored:
        if cp.faults:
            raise IntegrityError(f"stored checkpoint #{cp.seq}: {'; '.join(cp.faults)}: refusing to sign")
        try:
            signed = _unverified(cp.note)
        except SignatureError as e:
            raise IntegrityError(
                f"stored checkpoint #{cp.seq} is not a readable note ({e}): refusing to sign"
            ) from None
        if (signed.size, signed.root) != (cp.size, cp.root):
            raise IntegrityError(
                f"stored checkpoint #{cp.seq}: its row says size {cp.size}, its signed note size {signed.size} "
                "with another root: refusing to sign"
            )
        if (cp.size, cp.root) in seen:
            continue
        seen.add((cp.size, cp.root))
        if cp.size > state.size:
            raise IntegrityError(
                f"stored checkpoint #{cp.seq} covers {cp.size} records but the tree has only {state.size}: "
                "refusing to sign a smaller log"
            )
        proof = merkle.consistency_proof_from(get_node, cp.size, state.size)
        if not merkle.verify_consistency(cp.size, state.size, cp.root, state.root, proof):
            raise IntegrityError(
                f"the tree of {state.size} records is not consistent with checkpoint #{cp.seq} "
                f"(size {cp.size}, root {_b64(cp.root)}): refusing to sign a checkpoint that contradicts it"
            )


# --- verification ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Disagreement:
    """Where storage first disagrees with the recorded history, and how."""

    position: int | None
    leaf_index: int
    reason: str
    pinpointed: bool = True


@dataclass
class VerifyReport:
    """What ``verify`` found. ``ok`` is False when anything disagrees; ``check`` raises then."""

    records: int = 0
    tree_size: int = 0
    checkpoints_total: int = 0
    checkpoints_verified: int = 0
    covered: int = 0
    seconds: float = 0.0
    signatures_checked: bool = False
    index_rows: int = 0
    index_signed: int = 0
    """Of ``index_rows``, those checked against a signed index digest rather than recomputed."""
    first_disagreement: Disagreement | None = None
    problems: list[str] = field(default_factory=list)
    signature_problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    """What holds but is not covered by a verified signature (no checkpoint, records after the
    last one, no key given): said always, a failure only under ``check(strict=True)``."""

    @property
    def ok(self) -> bool:
        return not self.problems and not self.signature_problems and self.first_disagreement is None

    @property
    def rate(self) -> float:
        """Records checked per second."""
        return self.records / self.seconds if self.seconds > 0 else float(self.records)

    def summary(self) -> str:
        signatures = "signatures checked" if self.signatures_checked else "signatures not checked (give --key)"
        uncovered = self.records - self.covered
        tail = f"; {uncovered} newer records not yet covered by a checkpoint" if uncovered > 0 else ""
        signed = f" ({self.index_signed} by a signed digest)" if self.index_signed else ""
        return (
            f"{self.records} records, {self.checkpoints_verified} of {self.checkpoints_total} checkpoints verified, "
            f"{self.index_rows} decision index rows checked{signed}, {self.rate:,.0f} records/s "
            f"({self.seconds:.2f} s); {signatures}{tail}"
        )

    def message(self) -> str:
        parts = []
        d = self.first_disagreement
        if d is not None:
            where = f"position {d.position}" if d.position is not None else f"leaf {d.leaf_index}"
            lead = "first disagreement at" if d.pinpointed else "first disagreement at or after"
            parts.append(f"storage disagrees with the signed history: {lead} {where} (leaf {d.leaf_index}): {d.reason}")
        parts.extend(self.problems)
        parts.extend(self.signature_problems)
        return "; ".join(parts)

    def check(self, *, strict: bool = False) -> None:
        """Raise ``IntegrityError`` (or ``SignatureError`` if only signatures failed) unless ok;
        ``strict``: also while anything is not covered by a verified signature (``warnings``)."""
        if self.ok:
            if strict and self.warnings:
                raise IntegrityError(
                    "not every record is covered by a verified signature (--strict): " + "; ".join(self.warnings)
                )
            return
        if self.first_disagreement is None and not self.problems:
            raise SignatureError(self.message())
        raise IntegrityError(self.message())


@dataclass
class _Target:
    label: str
    size: int
    root: bytes
    verified: bool = False
    index: tuple[int, bytes] | None = None  # the signed decision-index line, if any
    seq: int | None = None  # its row of ``ledger_checkpoints`` (None: a note given from outside)
    signed: bool = False  # its signature verified with a given key


def _load_targets(
    stored: Sequence[StoredCheckpoint],
    given: Sequence[str],
    keys: Sequence[str | VerifierKey],
    report: VerifyReport,
) -> list[_Target]:
    """Every checkpoint to check, sorted by size; signatures are checked first when keys are given.

    A stored checkpoint is checked by what its *signed note* says: the row's ``size`` and ``root``
    columns are only an index and must agree with it.
    """
    targets: list[_Target] = []
    origins = {cp.origin for cp in stored}
    notes: list[tuple[str, str, StoredCheckpoint | None]] = [(f"checkpoint #{cp.seq}", cp.note, cp) for cp in stored]
    notes += [(f"given checkpoint {i}", note, None) for i, note in enumerate(given, 1)]
    for label, note, row in notes:
        signature_ok = bool(keys)
        try:
            signed = open_note(note, keys)[0] if keys else _unverified(note)
        except SignatureError as e:
            signature_ok = False
            if not keys:
                report.problems.append(f"{label} is not a readable checkpoint: {e}")
                continue
            report.signature_problems.append(f"{label}: {e}")
            try:
                signed = _unverified(note)
            except SignatureError:
                continue
        if row is None and origins and signed.origin not in origins:
            report.problems.append(f"{label} is for log {signed.origin!r}, not this one ({', '.join(sorted(origins))})")
            continue
        if row is not None:
            _compare_checkpoint_row(label, row, signed, report)
        seq = None if row is None else row.seq
        targets.append(_Target(label, signed.size, signed.root, False, signed.index, seq, signature_ok))
    return sorted(targets, key=lambda t: t.size)


def _compare_checkpoint_row(label: str, row: StoredCheckpoint, signed: Checkpoint, report: VerifyReport) -> None:
    """The row's columns are an index of its note (``checkpoints``, ``prove`` and signing read
    them): each must say what the signed note says."""
    report.problems.extend(f"{label}: {fault}" for fault in row.faults)
    try:
        when = signed.time
        signed_time = "" if when is None else format_time(when)
    except SignatureError:
        signed_time = "?"
    differ = [
        f"{name} {_shown(have)} (the note says {_shown(want)})"
        for name, have, want in (
            ("size", row.size, signed.size),
            ("root", row.root, signed.root),
            ("time", row.time, signed_time),
            ("origin", row.origin, signed.origin),
        )
        if have != want and not (name == "size" and have == -1) and not (name == "root" and not have)
    ]
    if differ:
        report.problems.append(f"{label}: its row disagrees with its signed note: {', '.join(differ)}")


def verify(
    app: LedgerApplication,
    checkpoints: Sequence[str] = (),
    keys: Sequence[str | VerifierKey] = (),
    *,
    batch: int = BATCH,
    full: bool = False,
) -> VerifyReport:
    """Recompute the tree from storage and check it against every checkpoint; never trusts nodes.

    ``checkpoints`` are extra signed notes (e.g. files an auditor kept); ``keys`` verifier keys: when
    given, every checkpoint must carry a valid signature by one of them. Returns a report; call
    ``report.check()`` to raise on failure. Reads the log in batches in one read transaction
    (a consistent snapshot), hashing with ``hashlib`` directly and no per-record objects.

    The decision index: with ``keys``, the rows up to the last stored checkpoint whose signature
    and root verified and which signs a ``decision-index`` line are hashed as stored against that
    digest (``_verify_index``); the rows after it are recomputed from their events. Without a key
    (nothing to trust the digest by), with ``full``, or where the digest disagrees (to name the
    rows), every row is recomputed.
    """
    started = time.perf_counter()
    log = _log(app)
    report = VerifyReport(signatures_checked=bool(keys))
    with log.db.transaction(write=False) as c:
        try:
            tree_size = _read_tree(c, log)[0].size
        except IntegrityError as e:  # the state row is not trusted anyway: fall back on the leaf map
            report.problems.append(str(e))
            found = c.execute(f"SELECT MAX(leaf_index) FROM {log.t(LEAVES)}").fetchone()
            tree_size = int(found[0]) + 1 if found and found[0] is not None else 0
        stored = _stored(c, log)
        targets = _load_targets(stored, list(checkpoints), keys, report)
        report.tree_size = tree_size
        report.checkpoints_total = len(targets)
        stop = c.execute(log.max_position).fetchone()
        stop_position = int(stop[0]) if stop and stop[0] is not None else 0
        # The chain is known from the signed notes before the scan, and hashed meanwhile; it is
        # trusted only up to the checkpoints whose roots the scan verifies.
        hinted = [] if full or not keys else _index_chain_links(targets, roots_checked=False)
        helper = _IndexHelper.start(c, log, hinted, batch)
        try:
            scan = _scan(c, log, tree_size, stop_position, targets, batch)
        except BaseException:
            if helper is not None:
                helper.close()
            raise
        chain = [] if full or not keys else _index_chain_links(targets)
        index = _verify_index(c, log, app, stop_position, batch, chain, helper)
        report.problems.extend(_check_tree_tables(c, log, tree_size, batch))
        first_uncovered = _position_after(c, log, max((t.size for t in targets if t.verified), default=0))
    report.records = scan.records
    report.index_rows = index.rows
    report.index_signed = index.signed
    report.problems.extend(index.messages())
    report.checkpoints_verified = sum(t.verified for t in targets)
    report.covered = max((t.size for t in targets if t.verified), default=0)
    _judge(report, scan)
    _uncovered(report, first_uncovered)
    report.seconds = time.perf_counter() - started
    return report


def _position_after(c: Cursor, log: _Log, leaves: int) -> int | None:
    """The position of the first stored record after the first ``leaves`` leaves."""
    last = _expected_position(c, log, leaves - 1) if leaves else 0
    if last is None:
        return None
    found = c.execute(f"SELECT MIN({log.position}) FROM {log.events} WHERE {log.position} > ?", (last,)).fetchone()
    return None if found is None or found[0] is None else int(found[0])


def _uncovered(report: VerifyReport, first_position: int | None) -> None:
    """Say what no verified signature covers (with every checkpoint deleted, "0 of 0 verified"
    used to pass in silence): a failure under ``--strict``."""
    if not report.signatures_checked:
        report.warnings.append("signatures not checked: give --key with the ledger's verifier key")
    if report.records == 0:
        return
    if report.checkpoints_total == 0:
        report.warnings.append(
            f"no signed checkpoint: none of the {report.records} records is covered by a signature (a log rewritten "
            "after its checkpoints were deleted cannot be told from the real one: keep checkpoints outside the "
            "ledger and give them with --checkpoint)"
        )
    elif report.covered < report.records:
        where = f" (positions {first_position} on)" if first_position is not None else ""
        report.warnings.append(
            f"{report.records - report.covered} records{where} are after the last verified checkpoint: no signature "
            "covers them yet (`ledger checkpoint` signs them)"
        )


@dataclass
class _Scan:
    records: int = 0
    mismatch: Disagreement | None = None
    failed: _Target | None = None
    last_ok: int = 0  # largest verified checkpoint size below the first failure
    position_at_last_ok: int | None = None
    missing_from: int | None = None  # expected position of the first leaf storage no longer has


def _scan(c: Cursor, log: _Log, tree_size: int, stop: int, targets: list[_Target], batch: int) -> _Scan:
    """The hot loop: stream records, hash leaves, fold the frontier, compare as it goes.

    Per batch: the leaf hashes (``_read_leaves``, or ahead of time by ``_Prefetcher``'s helper
    processes); the level-0 hashes the node store recorded for them compared all at once
    (``_level0_matches``), and leaf by leaf only when that fails, to name the first leaf that
    differs; then the batch folded into the frontier (``merkle.extend_stack``) in pieces that end
    at each checkpoint's size, where the root is compared with the signed one.
    """
    fold = _Fold(targets)
    fast = _fast_reads(c, log)
    after = 0
    helpers = _Prefetcher.start(c, log, fast, stop, batch)
    try:
        while helpers is not None:
            got = helpers.next(after)
            if got is None:  # done, or a helper met a record it will not judge: go on here
                break
            n, high, first_position, packed = got
            recorded = 32 * max(0, min(n, tree_size - fold.size))
            if not (fold.size < fold.next_check < fold.size + n) and (
                fold.out.mismatch is not None or not recorded or _level0_matches(c, log, fold.size, packed[:recorded])
            ):
                if n:
                    fold.add(first_position, [packed[i : i + 32] for i in range(0, 32 * n, 32)])
                after = high
                continue
            # a checkpoint ends inside the range (positions are needed there) or it differs from
            # the node store: read it here, and go on with the helpers if they read the same
            rows, found, complete = _read_leaves(c, log, after, high, high - after, fast=fast)
            if len(rows) != n:
                break  # not what this transaction sees: read the rest here
            fold.add_batch(c, log, rows, found, complete, tree_size)
            after = high
    finally:
        if helpers is not None:
            helpers.close()
    while True:
        rows, found, complete = _read_leaves(c, log, after, stop, batch, fast=fast)
        if not rows:
            break
        fold.add_batch(c, log, rows, found, complete, tree_size)
        after = rows[-1][0]
        if len(rows) < batch:
            break
    return fold.finish(c, log, tree_size)


_MALFORMED = _sha256(b"\x02malformed").digest()
"""What a malformed record's leaf counts as in the recomputed tree: nothing it could match."""


class _Fold:
    """The recomputed tree of ``verify``: a frontier stack, settled against each checkpoint."""

    def __init__(self, targets: list[_Target]) -> None:
        self.out = _Scan()
        self.pending = list(targets)  # sorted by size
        self.stack: list[bytes] = []
        self.size = 0
        self.next_check = -1
        self._next()
        while self.next_check == 0:  # an empty-tree checkpoint
            _settle(self.out, self.pending.pop(0), merkle.EMPTY_ROOT, 0)
            self._next()
        self.want_position = self.out.position_at_last_ok is None

    def _next(self) -> None:
        self.next_check = self.pending[0].size if self.pending else -1

    def add(self, first_position: int, hashes: list[bytes]) -> None:
        """Leaves that no checkpoint ends inside of (only the first one's position is known)."""
        if self.want_position:
            self.out.position_at_last_ok = first_position
            self.want_position = False
        self.size = merkle.extend_stack(self.stack, self.size, hashes)
        self._settle_due()

    def add_batch(
        self,
        c: Cursor,
        log: _Log,
        rows: Sequence[Sequence[Any]],
        found: list[bytes | None],
        complete: bool,
        tree_size: int,
    ) -> None:
        """A batch read here: checked against the node store (until the first disagreement),
        then cut where checkpoints end, each piece's first position at hand."""
        if self.out.mismatch is None:
            self.out.mismatch = _first_mismatch(c, log, rows, found, complete, self.size, tree_size)
        hashes = cast("list[bytes]", found) if complete else [h or _MALFORMED for h in found]
        done, first = 0, self.size
        while done < len(rows):
            end = min(len(rows), self.next_check - first) if self.next_check > self.size else len(rows)
            self.add(rows[done][0], hashes[done:end])
            done = end

    def _settle_due(self) -> None:
        while self.size == self.next_check:
            ok = _settle(self.out, self.pending.pop(0), _fold(self.stack), self.size)
            if ok and self.out.failed is None:
                self.want_position = True  # the next leaf's position is where trust ends
            self._next()

    def finish(self, c: Cursor, log: _Log, tree_size: int) -> _Scan:
        out, size = self.out, self.size
        out.records = size
        if out.mismatch is None and size < tree_size:
            out.missing_from = _expected_position(c, log, size)
            out.mismatch = Disagreement(
                out.missing_from,
                size,
                f"storage ends after {size} records but {tree_size} were recorded in the tree: "
                + (
                    f"records from position {out.missing_from} on are missing"
                    if out.missing_from is not None
                    else "records are missing"
                ),
            )
        for target in self.pending:  # checkpoints larger than what storage holds
            if out.failed is None:
                out.failed = target
        return out


_WORKER_MIN = 200_000
"""Records below which ``verify`` reads alone: a helper process costs ≈ 30 ms to start."""

_HELPERS = 2
"""Helper processes: on two cores two of them and the folding here keep both busy."""


def _cores() -> int:
    """Cores this process may run on: helpers only pay where there is a second one."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


class _Prefetcher:
    """Reads and hashes the log's leaves in helper processes while ``verify`` folds the tree.

    Why: on SQLite, reading a record and hashing its leaf is two thirds of ``verify``'s work and
    needs nothing from the tree, so other cores can do it ahead (ranges of positions dealt out in
    turn, each through a pipe that blocks when it is full: memory stays flat) while this process
    compares the level-0 hashes and folds. The helpers open the same file on their own
    connections and read positions up to ``stop``, fixed in this transaction: the log is
    append-only, so they see the records this transaction's snapshot holds. Nothing they send is
    trusted beyond that: a range whose hashes differ from the node store's is read again here,
    and any failure (no process, a short read, another count of records) only means the rest is
    read here.
    """

    _frame = leafhash.FRAME

    def __init__(self, procs: list[subprocess.Popen[bytes]]) -> None:
        self._procs = procs
        self._turn = 0

    @classmethod
    def start(cls, c: Cursor, log: _Log, fast: bool, stop: int, batch: int) -> _Prefetcher | None:
        """Helpers reading from position 0 to ``stop``; None where there is no file to share (an
        in-memory database), the log is small, or the fast path is off."""
        if not fast or log.select_plain is None or stop < _WORKER_MIN or not sys.executable or _cores() < 2:
            return None
        found = [row for row in c.execute("PRAGMA database_list").fetchall() if row[1] == "main"]
        path = found[0][2] if found else ""  # "" for an in-memory or temporary database
        if not isinstance(path, str) or not path or not os.path.isfile(path):
            return None
        procs: list[subprocess.Popen[bytes]] = []
        try:
            for k in range(_HELPERS):
                args = [path, log.select_plain, str(stop), str(batch), str(k), str(_HELPERS)]
                procs.append(
                    subprocess.Popen(  # our interpreter, our code, no shell
                        [sys.executable, "-I", leafhash.__file__, *args],
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.DEVNULL,
                    )
                )
        except OSError:
            cls(procs).close()
            return None
        with contextlib.suppress(ImportError, OSError, AttributeError, ValueError):  # Linux only; optional
            import fcntl

            for proc in procs:  # room for a few batches ahead, so a helper seldom waits on this one
                fcntl.fcntl(cast("IO[bytes]", proc.stdout).fileno(), fcntl.F_SETPIPE_SZ, 1 << 20)
        return cls(procs)

    def next(self, low: int) -> tuple[int, int, int, bytes] | None:
        """The range after position ``low``: (records, high position, first position, their
        hashes end to end); None at the end, or when a helper stopped or strayed."""
        stdout = self._procs[self._turn].stdout
        self._turn = (self._turn + 1) % len(self._procs)
        if stdout is None:  # pragma: no cover - always piped
            return None
        head = stdout.read(self._frame.size)
        if len(head) < self._frame.size:
            return None
        n, got_low, high, first = self._frame.unpack(head)
        packed = stdout.read(32 * n)
        if got_low != low or len(packed) < 32 * n:
            return None
        return n, high, first, packed

    def close(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()


def _first_mismatch(
    c: Cursor,
    log: _Log,
    rows: Sequence[Sequence[Any]],
    found: list[bytes | None],
    complete: bool,
    first: int,
    tree_size: int,
) -> Disagreement | None:
    """The first leaf of a batch (leaf ``first`` on) that is malformed or not what the tree recorded.

    The recorded level-0 hashes are checked all at once; leaf by leaf only when they differ.
    Leaves beyond ``tree_size`` were never recorded: only a malformed one disagrees there.
    """
    recorded = max(0, min(len(found), tree_size - first))
    if complete and (recorded == 0 or _level0_matches(c, log, first, b"".join(cast("list[bytes]", found[:recorded])))):
        return None
    expected = _expected(c, log, first, first + recorded) if recorded else []
    for k, h in enumerate(found):
        position = rows[k][0]
        if h is None:
            return Disagreement(position, first + k, "the stored record is malformed (not what was written)")
        if k < recorded and h != expected[k]:
            return _describe(position, _expected_position(c, log, first + k), expected[k], first + k)
    return None


def _level0_matches(c: Cursor, log: _Log, start: int, packed: bytes) -> bool:
    """Whether the node store's level-0 hashes from leaf ``start`` on are exactly ``packed``
    (32-byte hashes end to end).

    One aggregate per batch instead of a row per leaf: the concatenation in ``idx`` order is
    compared with the concatenation of the recomputed hashes (same count, same bytes, same order).
    A false answer only sends the batch to ``_expected``, which reads the rows one by one.
    """
    count = len(packed) // merkle.HASH_SIZE
    end = start + count
    if log.db.dialect == "postgres":
        sql = (
            f"SELECT count(*), string_agg(hash, ''::bytea ORDER BY idx) FROM {log.t(NODES)} "
            "WHERE level = 0 AND idx >= ? AND idx < ?"
        )
    else:  # group_concat keeps a BLOB's bytes (as TEXT); the CAST hands them back unchanged
        sql = (
            f"SELECT count(*), CAST(group_concat(hash, '') AS BLOB) FROM (SELECT hash FROM {log.t(NODES)} "
            "WHERE level = 0 AND idx >= ? AND idx < ? ORDER BY idx)"
        )
    rows = _fetch_rows(c, sql, (start, end))
    if not rows:  # pragma: no cover - an aggregate always returns one row
        return False
    found, joined = rows[0]
    return found == count and joined is not None and bytes(joined) == packed


def _fetch_rows(c: Cursor, sql: str, params: Sequence[Any]) -> Sequence[Sequence[Any]]:
    """Rows as plain sequences, cheaply: SQLite's ``Row`` as it comes, PostgreSQL's as tuples in
    binary format (``bytea`` not unescaped from hex text). Converting a million rows one by one
    would cost a fifth of ``verify``."""
    if c.dialect == "sqlite":
        c.execute(sql, params)
        rows: Sequence[Sequence[Any]] = c.raw.fetchall()
        return rows
    from psycopg.rows import tuple_row

    c.raw.row_factory = tuple_row
    c.raw.execute(sql.replace("?", "%s"), params, binary=True)
    pg_rows: Sequence[Sequence[Any]] = c.raw.fetchall()
    return pg_rows


def _settle(out: _Scan, target: _Target, root: bytes, size: int) -> bool:
    target.verified = hmac.compare_digest(root, target.root)
    if target.verified:
        if out.failed is None:
            out.last_ok = size
    elif out.failed is None:
        out.failed = target
    return target.verified


def _expected(c: Cursor, log: _Log, start: int, end: int) -> list[bytes | None]:
    """Level-0 hashes recorded for leaves ``[start, end)``; None where one is missing.

    Positions are not read here: a leaf's bytes include its position, so a moved record already
    shows as a different hash, and the leaf map is read only for the first one that differs.
    """
    where = f"FROM {log.t(NODES)} WHERE level = 0 AND idx >= ? AND idx < ? ORDER BY idx"
    rows = _fetch_rows(c, f"SELECT hash {where}", (start, end))
    if len(rows) == end - start:  # unique keys in a range of that many: complete and in order
        return [r[0] for r in rows]
    by_index: dict[int, bytes] = {
        int(r[0]): bytes(r[1]) for r in _fetch_rows(c, f"SELECT idx, hash {where}", (start, end))
    }
    return [by_index.get(i) for i in range(start, end)]


def _expected_position(c: Cursor, log: _Log, index: int) -> int | None:
    row = c.execute(f"SELECT position FROM {log.t(LEAVES)} WHERE leaf_index = ?", (index,)).fetchone()
    return None if row is None else int(row[0])


def _describe(actual: int, expected: int | None, expected_hash: bytes | None, index: int) -> Disagreement:
    if expected is None or expected_hash is None:
        return Disagreement(actual, index, f"the Merkle node store lacks leaf {index}: it was altered")
    if actual > expected:
        return Disagreement(expected, index, f"the record at position {expected} is missing (deleted)")
    if actual < expected:
        return Disagreement(actual, index, f"the record at position {actual} was never in the tree (inserted)")
    return Disagreement(actual, index, f"the record at position {actual} was changed after it was recorded")


def _judge(report: VerifyReport, scan: _Scan) -> None:
    """Turn what the scan saw into the report's verdict and its first disagreement."""
    failed, mismatch = scan.failed, scan.mismatch
    if mismatch is not None and mismatch.leaf_index < scan.last_ok:
        # Storage matches a signed checkpoint that covers this leaf: the node store is what changed.
        report.problems.append(
            f"the Merkle node store disagrees with storage at position {mismatch.position} (leaf "
            f"{mismatch.leaf_index}) although storage matches the signed checkpoint of size {scan.last_ok}: "
            "the node store was altered"
        )
        mismatch = None
    if failed is not None:
        signed = f"{failed.label} (size {failed.size}, root {_b64(failed.root)})"
        if failed.size > scan.records:
            detail = f"{signed} covers {failed.size} records but storage holds only {scan.records}"
        else:
            detail = f"the root recomputed from storage does not match {signed}"
        if mismatch is not None and mismatch.leaf_index < failed.size:
            report.first_disagreement = Disagreement(
                mismatch.position, mismatch.leaf_index, f"{mismatch.reason}; {detail}"
            )
        else:
            report.first_disagreement = Disagreement(
                scan.position_at_last_ok if scan.last_ok < scan.records else None,
                scan.last_ok,
                f"{detail}; storage agrees with the Merkle node store up to there, so either both were altered "
                "or the checkpoint was not signed over this log",
                pinpointed=False,
            )
    elif mismatch is not None:
        report.first_disagreement = Disagreement(
            mismatch.position,
            mismatch.leaf_index,
            f"{mismatch.reason} (after the last signed checkpoint: caught by the Merkle node store)",
        )


# --- the tables of the tree -----------------------------------------------------------------


def _check_tree_tables(c: Cursor, log: _Log, tree_size: int, batch: int) -> list[str]:
    """The node store above level 0, the leaf map and the stored tree state, against the tree.

    The scan compared level 0 with the leaves recomputed from storage; here each level above must
    hold exactly the hashes of the pairs below it (RFC 9162 §2.1.1), so by induction every stored
    node is the recomputed tree's (proofs and signing read them). The leaf map must send the
    ``i``-th record's position to ``i``, and the stored frontier and last position must be the
    tree's. Each level is read as one concatenation per batch (as ``_level0_matches`` reads).
    """
    problems: list[str] = []
    size, level = tree_size, 0
    while size >= 2 and not problems:
        count = size // 2
        for start in range(0, count, batch):
            end = min(count, start + batch)
            below = _level_blob(c, log, level, 2 * start, 2 * end)
            above = _level_blob(c, log, level + 1, start, end)
            if below is None or above is None:
                problems.append(f"the Merkle node store lacks nodes of level {level + 1 if below else level}")
                break
            sha, prefix = _sha256, _NODE_PREFIX
            expected = b"".join(sha(prefix + below[k : k + 64]).digest() for k in range(0, len(below), 64))
            if above != expected:
                first = next(i for i in range(0, len(above), 32) if above[i : i + 32] != expected[i : i + 32]) // 32
                problems.append(
                    f"the Merkle node store's node ({level + 1}, {start + first}) is not the hash of its two children: "
                    "the node store was altered (proofs and signing read it)"
                )
                break
        size, level = count, level + 1
    wanted = sum(tree_size >> k for k in range(tree_size.bit_length()))
    (found,) = c.execute(f"SELECT COUNT(*) FROM {log.t(NODES)}").fetchone() or (0,)
    if int(found) != wanted:
        problems.append(f"the Merkle node store holds {found} nodes where a tree of {tree_size} has {wanted}")
    problems.extend(_check_leaf_map(c, log, tree_size))
    try:
        state, frontier = _read_tree(c, log)
        recomputed = merkle.Frontier.from_get_node(_node_reader(c, log), tree_size)
    except (IntegrityError, ValueError):
        return problems  # already said (the state row), or the nodes are missing (said above)
    if frontier.nodes != recomputed.nodes:
        problems.append("the stored Merkle frontier is not the tree's: the tree state was altered")
    if tree_size and _expected_position(c, log, tree_size - 1) != state.last_position:
        problems.append(f"the tree state's last position {state.last_position} is not its last leaf's")
    return problems


def _level_blob(c: Cursor, log: _Log, level: int, start: int, end: int) -> bytes | None:
    """The node store's hashes of ``level`` from ``start`` to ``end`` (exclusive), end to end;
    None unless exactly those are there."""
    if log.db.dialect == "postgres":
        sql = (
            f"SELECT count(*), string_agg(hash, ''::bytea ORDER BY idx) FROM {log.t(NODES)} "
            "WHERE level = ? AND idx >= ? AND idx < ?"
        )
    else:
        sql = (
            f"SELECT count(*), CAST(group_concat(hash, '') AS BLOB) FROM (SELECT hash FROM {log.t(NODES)} "
            "WHERE level = ? AND idx >= ? AND idx < ? ORDER BY idx)"
        )
    rows = _fetch_rows(c, sql, (level, start, end))
    if not rows or rows[0][0] != end - start or rows[0][1] is None:
        return None
    joined = bytes(rows[0][1])
    return joined if len(joined) == merkle.HASH_SIZE * (end - start) else None


def _check_leaf_map(c: Cursor, log: _Log, tree_size: int) -> list[str]:
    """The leaf map sends the ``i``-th stored record's position to ``i``, for every leaf: its
    positions are those of the records up to the last leaf's (as many, all of them there) and
    its indexes are their ranks."""
    leaves = log.t(LEAVES)
    (count,) = c.execute(f"SELECT COUNT(*) FROM {leaves}").fetchone() or (0,)
    if int(count) != tree_size:
        return [f"the Merkle leaf map has {count} leaves where the tree has {tree_size}"]
    if not tree_size:
        return []
    misplaced = c.execute(
        f"SELECT position, leaf_index FROM (SELECT position, leaf_index, ROW_NUMBER() OVER (ORDER BY position) AS r "
        f"FROM {leaves}) ranked WHERE r - 1 <> leaf_index ORDER BY r LIMIT 1"
    ).fetchone()
    if misplaced is not None:
        return [f"the Merkle leaf map sends position {misplaced[0]} to leaf {misplaced[1]}: it was altered"]
    last = c.execute(f"SELECT position FROM {leaves} WHERE leaf_index = ?", (tree_size - 1,)).fetchone()
    (matched,) = c.execute(
        f"SELECT COUNT(*) FROM {leaves} l JOIN {log.events} e ON e.{log.position} = l.position"
    ).fetchone() or (0,)
    (records,) = c.execute(
        f"SELECT COUNT(*) FROM {log.events} WHERE {log.position} <= ?", (last[0] if last else 0,)
    ).fetchone() or (0,)
    if int(matched) != tree_size or int(records) != tree_size:
        return ["the Merkle leaf map names positions that are not the records' (it was altered, or records were)"]
    return []


# --- the decision index ---------------------------------------------------------------------

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


def _state_decoder(app: LedgerApplication) -> Any:
    """What ``Mapper.to_domain_event`` does to a stored state before the event is built."""
    mapper = app.mapper
    decode, cipher, compressor = mapper.transcoder.decode, mapper.cipher, mapper.compressor
    if cipher is None and compressor is None:
        return decode

    def full(state: bytes) -> Any:
        if cipher is not None:
            state = cipher.decrypt(state)
        if compressor is not None:
            state = compressor.decompress(state)
        return decode(state)

    return full


def _shown(value: Any) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _b64(bytes(value))
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


UNKNOWN: Any = object()
"""A jurisdiction the events alone cannot give (the index disagrees where it points): not compared."""


class _IndexDeriver:
    """An event's index row as the import derives it (``ledger.application``: the kind from the
    topic, the digest of the record, the target of a correction, the jurisdiction of the
    catalogue or of the institution), for events read in log order.

    An institution's jurisdiction is that of its first registration (``jurisdiction_of``); a
    correction's is its target's, read from the index row of the target (checked when it was
    passed, earlier in the log). Memory stays bounded: the institutions' cache is emptied past
    ``CACHE`` entries and asked of the index again.
    """

    CACHE = 100_000

    def __init__(self, c: Cursor, log: _Log, app: LedgerApplication) -> None:
        from ledger.application import CORRECTION_KINDS, _jurisdiction_source

        self.c, self.log = c, log
        self.decode = _state_decoder(app)
        self.corrections = dict(zip(CORRECTION_KINDS, ("corrects", "retracts"), strict=True))
        self.source = _jurisdiction_source
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
        if isinstance(topic, bytes):
            topic = topic.decode("utf-8")
        # Looked up and checked as every reader does (``ledger.topics``): an event whose topic or
        # state no reader would take is reported here too, even after the last checkpoint.
        cls, values = read_state(topic, state if type(state) is bytes else bytes(state), self.decode)
        kind = cls.kind
        record = record_from_state(kind, values)
        subject = values["subject"]
        target: str | None = None
        name = self.corrections.get(kind)
        if name is not None:
            target = record.fields[name]
            jurisdiction = self._target_jurisdiction(target)
        else:
            fixed, institution = self.source(kind, record.fields)
            if kind == "institution.registered":
                self._remember(subject, fixed)
            jurisdiction = fixed if institution is None else self._jurisdiction(institution)
        return record.id, kind, subject, record.effective, record.digest(), target, jurisdiction

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


def _check_index(
    c: Cursor, log: _Log, app: LedgerApplication, stop: int, batch: int, *, after: int = 0, bounded: bool = False
) -> IndexCheck:
    """Recompute the decision index from the events and compare it, row by row, in log order.

    The index is outside the Merkle tree, and import, ``show``, ``log`` and the views' look-ups
    answer from it: every event must have its row, with the content the import derives from that
    event, and no row may lack its event. Streams the events joined with their rows by position,
    ``batch`` positions at a time (one read transaction: the snapshot the tree was checked in).
    Only positions after ``after`` (those a signed index digest covers are checked by
    ``_index_chain``); rows without an event are looked for up to ``stop`` when ``bounded``
    (what a checkpoint is about to cover), else at every position after ``after``.
    """
    out = IndexCheck()
    derive = _IndexDeriver(c, log, app)
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
            rows = _fetch_rows(c, sql, (after, high))
        except sqlite3.OperationalError:
            rows = [_as_text(row) for row in _fetch_rows(c, careful, (after, high))]
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


# --- the decision index's signed digest ---------------------------------------------------

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
    ``checkpoint`` have the database give the values in this form (``_index_select``)."""
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


def _index_select(log: _Log) -> str:
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


def _index_fetch(c: Cursor, log: _Log) -> indexhash.Fetch:
    sql = _index_select(log)
    return lambda after, stop: _fetch_rows(c, sql, (after, stop))


@dataclass(frozen=True)
class _IndexLink:
    """A checkpoint's signed ``decision-index`` line: the index digest up to ``position``."""

    label: str
    position: int
    digest: bytes


def _last_index_line(stored: Sequence[StoredCheckpoint]) -> tuple[int, bytes]:
    """(position, digest) of the newest stored checkpoint carrying an index line, else the
    chain's start ``(0, INDEX_SEED)``: where the next checkpoint's link begins."""
    for cp in reversed(stored):
        line = _unverified(cp.note).index
        if line is not None:
            return line
    return 0, INDEX_SEED


def _signed_index(fetch: indexhash.Fetch, chain: Sequence[_IndexLink], batch: int) -> tuple[bool, int]:
    """Whether the stored rows up to the last link's position hash, link by link, to its signed
    digest; and how many rows were hashed. Any row that cannot be read as stored (SQLite text
    that is not UTF-8) is a disagreement: the caller then recomputes the rows to name it."""
    try:
        digest, rows = indexhash.chain(fetch, [link.position for link in chain], batch)
    except (sqlite3.Error, ValueError, TypeError):
        return False, 0
    return hmac.compare_digest(digest, chain[-1].digest), rows


class _IndexHelper:
    """``indexhash.chain`` of a SQLite ledger in a helper process, while ``verify`` scans the log.

    Why: reading the index rows is ≈ 3 µs a row, a third of the whole check, and needs nothing
    from the scan, so another core can do it meanwhile (as ``_Prefetcher``'s helpers read the
    log). The helper opens the file read-only on its own connection and reads the rows up to a
    signed position, which the append-only index never changes: the rows this transaction's
    snapshot holds. Only a digest comes back, compared with the signed one; any failure (no
    process, no answer) only means the rows are hashed here afterwards.
    """

    def __init__(self, proc: subprocess.Popen[bytes], positions: list[int]) -> None:
        self._proc, self.positions = proc, positions

    @classmethod
    def start(cls, c: Cursor, log: _Log, chain: Sequence[_IndexLink], batch: int) -> _IndexHelper | None:
        if not chain or log.db.dialect != "sqlite" or not sys.executable or _cores() < 2:
            return None
        found = [row for row in c.execute("PRAGMA database_list").fetchall() if row[1] == "main"]
        path = found[0][2] if found else ""  # "" for an in-memory or temporary database
        if not isinstance(path, str) or not path or not os.path.isfile(path):
            return None
        positions = [link.position for link in chain]
        args = [path, _index_select(log), str(batch), *map(str, positions)]
        try:
            proc = subprocess.Popen(  # our interpreter, our code, no shell
                [sys.executable, "-I", indexhash.__file__, *args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
        except OSError:
            return None
        return cls(proc, positions)

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.communicate()

    def result(self) -> tuple[bytes, int] | None:
        """(digest, rows hashed), or None where the helper gave no well-formed answer."""
        try:
            out, _ = self._proc.communicate()
        except OSError:
            self._proc.kill()
            self._proc.wait()
            return None
        digest, _, rows = out.decode("ascii", "replace").strip().partition(" ")
        if self._proc.returncode != 0 or len(digest) != 64 or not rows.isdigit():
            return None
        try:
            return bytes.fromhex(digest), int(rows)
        except ValueError:
            return None


def _index_chain_links(targets: Sequence[_Target], *, roots_checked: bool = True) -> list[_IndexLink]:
    """The signed index lines of the stored checkpoints, oldest first, up to the newest one a
    verified signature and a verified root vouch for; empty when there is none. Before the scan
    (``roots_checked=False``), the roots are not asked about: what the chain would be."""
    ordered = sorted((t for t in targets if t.seq is not None), key=lambda t: t.seq or 0)
    links: list[_IndexLink] = []
    trusted = 0
    for t in ordered:
        if t.index is not None:
            links.append(_IndexLink(t.label, *t.index))
            if t.signed and (t.verified or not roots_checked):
                trusted = len(links)
    return links[:trusted]


def _verify_index(
    c: Cursor,
    log: _Log,
    app: LedgerApplication,
    stop: int,
    batch: int,
    chain: Sequence[_IndexLink],
    helper: _IndexHelper | None = None,
) -> IndexCheck:
    """The decision index checked by the signed digest up to the last link, recomputed after it;
    recomputed whole without a link, or when the digest disagrees (to name the rows)."""
    done = helper.result() if helper is not None else None
    if not chain:
        return _check_index(c, log, app, stop, batch)
    last = chain[-1]
    if done is not None and helper is not None and helper.positions == [link.position for link in chain]:
        matches, hashed = hmac.compare_digest(done[0], last.digest), done[1]
    else:
        matches, hashed = _signed_index(_index_fetch(c, log), chain, batch)
    if not matches:
        out = _check_index(c, log, app, stop, batch)
        if not out.problems:
            out.add(
                f"its rows up to position {last.position} do not hash to the digest signed in {last.label}, though "
                "each agrees with its event: a checkpoint's decision-index line or a row's stored type was altered"
            )
        return out
    out = _check_index(c, log, app, stop, batch, after=last.position)
    out.rows += hashed
    out.signed = hashed
    return out


def _as_text(row: Sequence[Any]) -> tuple[Any, ...]:
    """A row read as bytes (``CAST … AS BLOB``) with its text columns as text again; bytes that
    are not UTF-8 become U+FFFD, so they match nothing the events derive."""
    text = {1, 6, 7, 9, 10, 11, 13, 14}  # originator ids, index text columns (not the state, digest)
    return tuple(v.decode("utf-8", "replace") if k in text and isinstance(v, bytes) else v for k, v in enumerate(row))


def _compare_row(out: IndexCheck, derive: _IndexDeriver, row: Sequence[Any]) -> None:
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
        f"{name} {_shown(have)} (the event says {_shown(want)})"
        for name, have, want in zip(_INDEX_COLUMNS, got, expected, strict=True)
        if have != want and want is not UNKNOWN
    ]
    if not differ:
        return
    out.add(f"the row at position {position} ({_shown(stored[0])}) disagrees with its event: {', '.join(differ)}")


# --- offline proofs -------------------------------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def base64_hash(raw: bytes) -> str:
    """A hash as checkpoints and proofs spell it: standard padded base64."""
    return _b64(raw)


def _unb64(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise ValueError(f"{what} is not a base64 string")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{what} is not valid base64") from None
    if _b64(raw) != text:
        raise ValueError(f"{what} is not canonical base64")
    return raw


def tlog_proof_text(index: int, proof: Sequence[bytes], note: str, extra: bytes | None = None) -> str:
    """The C2SP ``tlog-proof@v1`` text: header, ``extra``, ``index``, hashes, blank, checkpoint."""
    lines = [TLOG_PROOF_HEADER]
    if extra is not None:
        lines.append(f"extra {_b64(extra)}")
    lines.append(f"index {index}")
    lines.extend(_b64(h) for h in proof)
    return "\n".join(lines) + "\n\n" + note


def _json_value(value: Any) -> Any:
    """A value as canonical JSON reads it back (dates as text, Decimals kept exact)."""
    return json.loads(canonical.dumps(value), parse_float=Decimal)


def prove(
    app: LedgerApplication,
    decision_id: str,
    signer_key: str | SignerKey | None = None,
    *,
    origin: str | None = None,
    sync_first: bool = True,
) -> dict[str, Any]:
    """A self-contained, offline-checkable proof that a decision is in the signed log.

    Proves against the latest stored checkpoint (the largest); when none covers the decision, signs
    a new one with ``signer_key`` or refuses. The bundle is checked (all but the signature) before
    it is returned, so the ledger never hands out a proof that does not verify.
    """
    recorded = app.decision(decision_id)
    if sync_first:  # a read-only server proves against what the writer synced and signed
        sync(app)
    log = _log(app)
    with log.db.transaction(write=False) as c:
        stored = _stored(c, log)
        found = c.execute(f"SELECT leaf_index FROM {log.t(LEAVES)} WHERE position = ?", (recorded.position,)).fetchone()
    if found is None:
        raise IntegrityError(f"position {recorded.position} is not in the Merkle tree: run `ledger verify`")
    leaf_index = int(found[0])
    latest = max(stored, key=lambda cp: (cp.size, cp.seq), default=None)
    if latest is None or latest.size <= leaf_index:
        if signer_key is None:
            raise NotFound(
                f"no signed checkpoint covers position {recorded.position} yet: run `ledger checkpoint` "
                "or pass a signer key to sign one"
            )
        checkpoint(app, signer_key, origin)
        with log.db.transaction(write=False) as c:
            latest = max(_stored(c, log), key=lambda cp: (cp.size, cp.seq))
    with log.db.transaction(write=False) as c:
        row = c.execute(log.select_event_at, (recorded.position,)).fetchone()
        if row is None:
            raise IntegrityError(f"the record at position {recorded.position} is gone: run `ledger verify`")
        data = _row_leaf(row)
        proof = merkle.inclusion_proof_from(_node_reader(c, log), leaf_index, latest.size)
    bundle: dict[str, Any] = {
        "format": BUNDLE_FORMAT,
        "decision": _json_value(recorded.record.to_json_dict()),
        "position": recorded.position,
        "recorded_at": recorded.recorded_at.isoformat(),
        "subject": recorded.subject,
        "leaf_index": leaf_index,
        "leaf": _b64(data),
        "tree_size": latest.size,
        "inclusion_proof": [_b64(h) for h in proof],
        "checkpoint": latest.note,
        "tlog_proof": tlog_proof_text(leaf_index, proof, latest.note, data),
    }
    report = verify_proof(bundle, (), check_signature=False)
    if not report.ok:
        raise IntegrityError(
            f"the proof of {decision_id} does not verify against checkpoint #{latest.seq}: "
            f"{'; '.join(report.problems)}; run `ledger verify`"
        )
    return bundle


def dump_bundle(bundle: Mapping[str, Any]) -> str:
    """The bundle as JSON text (canonical: Decimals exact, dates as ``YYYY-MM-DD``)."""
    return canonical.dumps(bundle) + "\n"


MAX_BUNDLE_BYTES = 8 << 20
"""A bundle holds one decision (a line of at most 1 MiB), its leaf twice in base64 and at most 64
hashes: a file larger than this is not one, and is refused before it is parsed."""
MAX_BUNDLE_DEPTH = MAX_DEPTH + 4
"""The deepest nesting of lists and objects a bundle can hold: a decision's values nest at most
``MAX_DEPTH`` deep, inside the decision, its ``fields`` and the bundle. Deeper is refused before
the JSON is parsed, so no bundle can exhaust the parser's stack."""
MAX_PROOF_HASHES = 64
"""An inclusion proof in a tree of fewer than 2**64 leaves has at most 64 hashes."""

_BUNDLE_FIELDS = frozenset(
    {
        "format",
        "decision",
        "position",
        "recorded_at",
        "subject",
        "leaf_index",
        "leaf",
        "tree_size",
        "inclusion_proof",
        "checkpoint",
        "tlog_proof",
    }
)
_OPTIONAL_FIELDS = frozenset({"tlog_proof"})
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


def _nesting_exceeds(text: str, limit: int) -> bool:
    """Whether JSON ``text`` opens more than ``limit`` lists and objects inside one another: its
    strings taken out first (a bracket in a string is text), then its brackets counted."""
    depth = 0
    for bracket in _BRACKET.finditer(_JSON_STRING.sub("", text)):
        if bracket.group() in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def load_bundle(text: str | bytes) -> dict[str, Any]:
    """Parse a bundle file, or refuse it with ``MalformedProof``: larger than ``MAX_BUNDLE_BYTES``,
    not UTF-8, nested deeper than ``MAX_BUNDLE_DEPTH``, not JSON, a key twice in one object (JSON
    readers differ on which of two values they show: a bundle means one thing or nothing), or not
    an object. Numbers with a fraction stay ``Decimal`` so they compare exactly."""
    if len(text) > MAX_BUNDLE_BYTES:
        raise MalformedProof(f"the proof file is larger than {MAX_BUNDLE_BYTES} bytes: not a proof bundle")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise MalformedProof(f"the proof file is not UTF-8 text (byte {e.start}: {e.reason})") from None
    if _nesting_exceeds(text, MAX_BUNDLE_DEPTH):
        raise MalformedProof(f"the proof file nests lists and objects more than {MAX_BUNDLE_DEPTH} levels deep")
    try:
        obj = json_decoder().decode(text)
    except DecisionError as e:  # a key twice, NaN or Infinity (the decision parser's own refusals)
        raise MalformedProof(f"the proof file is not a bundle: {e}") from None
    except RecursionError:  # pragma: no cover - _nesting_exceeds refuses what could get here
        raise MalformedProof("the proof file nests lists and objects too deeply") from None
    except ValueError as e:
        raise MalformedProof(f"the proof file is not JSON: {e}") from None
    if not isinstance(obj, dict):
        raise MalformedProof("the proof file is not a JSON object")
    return obj


@dataclass(frozen=True)
class _Bundle:
    """A bundle's fields, each of its type; nothing in them decoded beyond base64 yet."""

    decision: dict[str, Any]
    position: int
    recorded_at: str
    subject: str
    leaf_index: int
    leaf: bytes
    tree_size: int
    proof: list[bytes]
    note: str
    tlog_proof: str | None


def _bundle_fields(bundle: Mapping[str, Any]) -> _Bundle:
    """The bundle's fields, or ``MalformedProof`` naming the first that is missing, unknown, of
    the wrong type or not canonical base64."""
    missing = sorted(_BUNDLE_FIELDS - _OPTIONAL_FIELDS - bundle.keys())
    unknown = sorted(map(repr, bundle.keys() - _BUNDLE_FIELDS))
    if bundle.get("format") != BUNDLE_FORMAT:
        raise MalformedProof(f"not a {BUNDLE_FORMAT} bundle (field 'format')")
    if missing:
        raise MalformedProof(f"the bundle has no field {', '.join(map(repr, missing))}")
    if unknown:
        raise MalformedProof(f"the bundle has unknown fields {', '.join(unknown[:5])}")
    for name in ("position", "leaf_index", "tree_size"):
        value = bundle[name]
        if type(value) is not int or not 0 <= value < 2**64:
            raise MalformedProof(f"field {name!r} is not an integer from 0 to 2**64 - 1")
    for name in ("recorded_at", "subject", "checkpoint"):
        if type(bundle[name]) is not str:
            raise MalformedProof(f"field {name!r} is not a string")
    tlog = bundle.get("tlog_proof")
    if tlog is not None and type(tlog) is not str:
        raise MalformedProof("field 'tlog_proof' is not a string")
    if type(bundle["decision"]) is not dict:
        raise MalformedProof("field 'decision' is not an object")
    hashes = bundle["inclusion_proof"]
    if type(hashes) is not list or len(hashes) > MAX_PROOF_HASHES:
        raise MalformedProof(f"field 'inclusion_proof' is not a list of at most {MAX_PROOF_HASHES} hashes")
    try:
        leaf = _unb64(bundle["leaf"], "field 'leaf'")
        proof = [_unb64(h, f"field 'inclusion_proof' [{i}]") for i, h in enumerate(hashes)]
    except ValueError as e:
        raise MalformedProof(str(e)) from None
    if any(len(h) != merkle.HASH_SIZE for h in proof):
        raise MalformedProof(f"field 'inclusion_proof' holds a hash that is not {merkle.HASH_SIZE} bytes")
    return _Bundle(
        decision=bundle["decision"],
        position=bundle["position"],
        recorded_at=bundle["recorded_at"],
        subject=bundle["subject"],
        leaf_index=bundle["leaf_index"],
        leaf=leaf,
        tree_size=bundle["tree_size"],
        proof=proof,
        note=bundle["checkpoint"],
        tlog_proof=tlog,
    )


@dataclass
class ProofReport:
    """What ``verify_proof`` found about one bundle. Every value shown (decision, position, leaf,
    size, origin, time) is set only once the part of the bundle it comes from has verified."""

    decision_id: str | None = None
    position: int | None = None
    leaf_index: int | None = None
    tree_size: int | None = None
    origin: str | None = None
    checkpoint_time: str | None = None
    signers: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    signature_problem: str | None = None
    malformed: str | None = None
    """Why the input is no bundle at all (``MalformedProof``; also the one problem): then nothing
    else was looked at."""

    @property
    def ok(self) -> bool:
        return not self.problems and self.signature_problem is None

    def summary(self) -> str:
        return (
            f"decision {self.decision_id} is at position {self.position} (leaf {self.leaf_index}) of the log "
            f"{self.origin} of {self.tree_size} records, signed by {', '.join(self.signers) or '(not checked)'}"
            + (f" at {self.checkpoint_time}" if self.checkpoint_time else "")
        )

    def check(self) -> None:
        """Raise ``MalformedProof`` (exit 11) for what is no bundle, ``SignatureError`` (10) for a
        checkpoint whose signature does not verify, ``IntegrityError`` (9) for anything else."""
        if self.malformed is not None:
            raise MalformedProof(self.malformed)
        if self.signature_problem is not None:
            raise SignatureError(f"the proof's checkpoint does not verify: {self.signature_problem}")
        if self.problems:
            raise IntegrityError("the proof does not verify: " + "; ".join(self.problems))


def verify_proof(
    bundle: Mapping[str, Any] | str | bytes,
    verifier_keys: Sequence[str | VerifierKey],
    *,
    check_signature: bool = True,
) -> ProofReport:
    """Check a bundle from ``prove`` with no database, each step only once the ones before held:

    1. it is a bundle (``load_bundle``, then every field of its type: ``_bundle_fields``);
    2. the checkpoint note carries a valid signature by one of ``verifier_keys`` (C2SP signed-note);
    3. the leaf bytes hash (RFC 9162 §2.1.1) to a leaf the inclusion proof (§2.1.3.2) places at
       ``leaf_index`` in the tree of the checkpoint's size and root, and the C2SP tlog-proof text,
       if present, says the same;
    4. only then is the leaf decoded (its topic looked up, never imported, its state checked:
       ``ledger.topics``), and the decision, position, subject and record time shown must be
       exactly what it holds.
    Never raises for a bad bundle: every failure is in the report (``report.check()``).
    """
    report = ProofReport()
    try:
        if not isinstance(bundle, (str, bytes)):  # a bundle in memory is read as its file would be
            try:
                bundle = canonical.dumps(bundle)
            except (TypeError, ValueError, RecursionError) as e:
                raise MalformedProof(f"the bundle is not JSON data: {e}") from None
        fields = _bundle_fields(load_bundle(bundle))
    except MalformedProof as e:
        report.malformed = str(e)
        report.problems.append(report.malformed)
        return report
    try:
        if check_signature:
            cp, report.signers = open_note(fields.note, verifier_keys)
        else:
            cp = _unverified(fields.note)
    except SignatureError as e:
        report.signature_problem = str(e)
        return report
    if fields.tree_size != cp.size:
        report.problems.append(f"tree_size {fields.tree_size} is not the checkpoint's size {cp.size}")
    if not merkle.verify_inclusion(merkle.leaf_hash(fields.leaf), fields.leaf_index, cp.size, fields.proof, cp.root):
        report.problems.append(
            f"the inclusion proof does not place this leaf at index {fields.leaf_index} in the signed tree of "
            f"{cp.size} records"
        )
    tlog = tlog_proof_text(fields.leaf_index, fields.proof, fields.note, fields.leaf)
    if fields.tlog_proof is not None and fields.tlog_proof != tlog:
        report.problems.append("the C2SP tlog-proof text disagrees with the bundle's fields")
    if report.problems:
        return report  # nothing the signature does not cover is decoded
    report.origin, report.tree_size, report.leaf_index = cp.origin, cp.size, fields.leaf_index
    try:
        report.checkpoint_time = format_time(cp.time) if cp.time else None
    except (SignatureError, ValueError):  # pragma: no cover - parse_checkpoint checked it
        report.checkpoint_time = None
    _check_leaf(fields, report)
    return report


def _check_leaf(fields: _Bundle, report: ProofReport) -> None:
    """Step 4 of ``verify_proof``: the leaf, now known to be in the signed tree, against what the
    bundle shows. A leaf the ledger could not have written is a problem, never a traceback."""
    try:
        leaf = parse_leaf(fields.leaf)
        cls, state = read_state(leaf.topic, leaf.state, MsgpackTranscoder().decode)
        recorded = record_from_state(cls.kind, state)
        recorded_json = recorded.to_json_dict()
        recorded_text = canonical.dumps(recorded_json, sort_keys=True)
    except UnreadableRecord as e:
        report.problems.append(f"the leaf {e}")
        return
    except (ValueError, TypeError, UnicodeDecodeError) as e:
        report.problems.append(f"the leaf is not a record the ledger writes: {e}")
        return
    if leaf.position != fields.position:
        report.problems.append(f"the leaf is the record at position {leaf.position}, not {fields.position}")
    if recorded_text != canonical.dumps(fields.decision, sort_keys=True):
        shown = fields.decision
        differing = sorted(k for k in {*shown, *recorded_json} if _json_value(recorded_json.get(k)) != shown.get(k))
        report.problems.append(
            f"the decision shown differs from the recorded one in {', '.join(differing) or 'its form'}"
        )
    if aggregates.aggregate_id(state["subject"]) != leaf.originator_id:
        report.problems.append("the leaf's subject id does not belong to its subject")
    if fields.subject != state["subject"]:
        report.problems.append(f"subject {fields.subject!r} is not the recorded {state['subject']!r}")
    if fields.recorded_at != state["timestamp"].isoformat():
        report.problems.append("recorded_at is not the recorded time")
    if not report.problems:
        report.decision_id, report.position = recorded.id, leaf.position


# --- keys -----------------------------------------------------------------------------------


def default_key_path() -> Path:
    """Where ``ledger keygen`` writes and ``ledger checkpoint`` reads the signer key by default."""
    import platformdirs

    return Path(platformdirs.user_data_dir("medtech-ledger")) / "checkpoint.key"


@contextmanager
def _exclusive(path: Path, mode: int) -> Iterator[Any]:
    """A new file created with ``mode`` from the start (O_EXCL: never an existing one)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise ConfigurationError(f"{path} already exists: refusing to overwrite a key") from None
    except OSError as e:
        raise ConfigurationError(f"cannot create {path}: {e.strerror}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        yield handle


def keygen(path: str | os.PathLike[str], name: str) -> str:
    """Write a new Ed25519 signer key to ``path`` (mode 0600) and its verifier key to ``path.pub``.

    Returns the verifier key (public). The signer key is written once, created with 0600 so it is
    never readable by others even for a moment, and never printed; an existing file is never
    overwritten (a lost signing key would orphan every checkpoint it signed).
    """
    key_path = Path(path).expanduser()
    pub_path = key_path.with_name(key_path.name + ".pub")
    for p in (key_path, pub_path):
        if p.exists():
            raise ConfigurationError(f"{p} already exists: refusing to overwrite a key")
    try:
        skey, vkey = generate_key(name)
    except SignatureError as e:
        raise ConfigurationError(str(e)) from None
    try:
        key_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as e:
        raise ConfigurationError(f"cannot create {key_path.parent}: {e.strerror}") from None
    with _exclusive(key_path, 0o600) as handle:
        handle.write(skey + "\n")
    try:
        with _exclusive(pub_path, 0o644) as handle:
            handle.write(vkey + "\n")
    except ConfigurationError:
        key_path.unlink()
        raise
    return vkey


def load_signer_key(path: str | os.PathLike[str]) -> SignerKey:
    """Read a signer key file; refuse one that others can read (as ssh does)."""
    key_path = Path(path).expanduser()
    try:
        mode = key_path.stat().st_mode
        text = key_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigurationError(f"no signer key at {key_path}: make one with `ledger keygen`") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigurationError(f"cannot read the signer key {key_path}: {e}") from None
    if os.name == "posix" and mode & 0o077:
        raise ConfigurationError(f"the signer key {key_path} is readable by others: chmod 600 {key_path}")
    try:
        return SignerKey.parse(text.strip())
    except SignatureError as e:
        raise ConfigurationError(f"{key_path}: {e}") from None


def load_verifier_keys(paths: Sequence[str | os.PathLike[str]]) -> list[str]:
    """Verifier keys from files: one key per non-empty line, ``#`` comments allowed."""
    keys: list[str] = []
    for path in paths:
        try:
            text = Path(path).expanduser().read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigurationError(f"cannot read the verifier key {path}: {e}") from None
        found = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
        if not found:
            raise ConfigurationError(f"{path} holds no verifier key")
        for line in found:
            if line.startswith("PRIVATE+KEY+"):
                raise ConfigurationError(f"{path} holds a signer (private) key: give the .pub file")
            VerifierKey.parse(line)
        keys.extend(found)
    return keys
