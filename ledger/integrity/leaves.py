"""Leaves: a stored record as the bytes its Merkle leaf commits to, and reading them in bulk.

The layout is ``ledger.leafhash``'s (``LAYOUT``), the one definition every path derives from.
Reading has two ways behind one seam (``read_leaves``): the careful one (``read_leaves_carefully``,
the reference: bytes as stored, storage classes checked by SQLite, a record at a time) and, on
SQLite, the fast one (plain columns hashed by ``leafhash.hash_rows``), tested to give the same
hashes (``tests/ledger/test_verify_fast.py``). PostgreSQL hashes where it reads
(``leafhash.pg_leaf_hash``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from ledger import leafhash
from ledger.integrity.tables import Log, fetch_rows
from ledger.leafhash import HEAD, LEAF_VERSION, LENGTH, encode
from ledger.merkle import leaf_hash
from ledger.sql import Cursor


def leaf_bytes(position: int, originator_id: UUID, originator_version: int, topic: str, state: bytes) -> bytes:
    """The canonical bytes of one stored record: what its leaf in the tree commits to.

    ``0x01 ‖ u64 position ‖ 16-byte UUID ‖ u64 version ‖ u32 len ‖ topic (UTF-8) ‖ u32 len ‖ state``
    (``leafhash.LAYOUT``). Fixed widths and length prefixes make the encoding injective: two
    different records never give the same bytes, so no byte of a record can change without
    changing its leaf hash.
    """
    return encode(position, originator_id.bytes, originator_version, topic.encode("utf-8"), bytes(state))


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
    position, oid, version, topic, state = split_leaf(data)
    return Leaf(position, UUID(bytes=oid), version, topic, state)


def split_leaf(data: bytes) -> tuple[int, bytes, int, str, bytes]:
    """``parse_leaf``'s fields as a plain tuple, the originator id as its 16 bytes: what ``follow``
    stores for every entry it copies, without a ``Leaf`` and a ``UUID`` made per entry."""
    size = len(data)
    if size < HEAD.size + LENGTH.size:
        raise ValueError("leaf is too short")
    version, position, oid, ov, topic_len = HEAD.unpack_from(data)
    if version != LEAF_VERSION:
        raise ValueError(f"leaf format {version} is not {LEAF_VERSION}")
    at = HEAD.size + topic_len
    if size < at + LENGTH.size:
        raise ValueError("leaf is too short for its topic")
    topic = data[HEAD.size : at].decode("utf-8")
    (state_len,) = LENGTH.unpack_from(data, at)
    at += LENGTH.size
    if size != at + state_len:
        raise ValueError("leaf length does not match its state length")
    return position, oid, ov, topic, bytes(data[at:])


def _uuid_bytes(value: Any) -> bytes:
    """The 16 bytes of a stored originator id (PostgreSQL gives a UUID, SQLite hex text as bytes)."""
    if isinstance(value, UUID):
        return value.bytes
    if isinstance(value, bytes):
        value = value.decode("ascii")
    if isinstance(value, str) and len(value) == 32:
        return bytes.fromhex(value)
    return UUID(str(value)).bytes


def row_leaf(row: Sequence[Any]) -> bytes:
    """Leaf bytes of a raw ``Log.select_events`` row; ``ValueError`` if the row is malformed."""
    position, oid, version, topic, state, well_typed = row[:6]
    if not well_typed or not isinstance(state, bytes) or not isinstance(topic, (bytes, str)):
        raise ValueError("a column holds a value of the wrong type")
    topic_bytes = topic if isinstance(topic, bytes) else topic.encode("utf-8")
    return encode(int(position), _uuid_bytes(oid), int(version), topic_bytes, state)


def read_leaves(
    c: Cursor, log: Log, after: int, stop: int, batch: int, *, fast: bool
) -> tuple[Sequence[Sequence[Any]], list[bytes | None], bool]:
    """The next ``batch`` records after ``after`` (each row's position first), their leaf hashes,
    and whether every one is well-formed.

    A hash is None where the record is malformed (a column of the wrong storage class, an id that
    is not a UUID): its leaf can match nothing. The hot loop of ``verify`` and ``sync``.

    SQLite, ``fast`` (see ``fast_reads``): the plain columns (no ``CAST``, no ``typeof``: in a
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
        pg_rows = fetch_rows(c, log.select_hashes, (after, stop, batch))
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
    rows_, careful = read_leaves_carefully(c, log, after, stop, batch)
    return rows_, careful, None not in careful


def read_leaf_bytes(c: Cursor, log: Log, after: int, count: int, *, fast: bool) -> list[bytes]:
    """The leaf bytes of the ``count`` records after position ``after``, in log order (an entry
    bundle's entries); ``ValueError`` if one is malformed. Two ways, as ``read_leaves``: the fast
    one (``leafhash.leaf_rows`` over the plain columns) and the careful one (``row_leaf``)."""
    if fast and log.select_plain is not None:
        try:
            c.raw.execute(log.select_plain, (after, 2**63 - 1, count))
            rows: list[tuple[Any, ...]] = c.raw.fetchall()
            if {len(row[1]) for row in rows} <= {32}:  # the careful way reads other lengths as UUID text
                return leafhash.leaf_rows(rows)
        except Exception:  # a malformed record among them: read them again, the careful way
            pass
    return [row_leaf(row) for row in fetch_rows(c, log.select_events, (after, 2**63 - 1, count))]


def fast_reads(c: Cursor, log: Log) -> bool:
    """Whether ``read_leaves`` may take its fast path in this transaction (SQLite only).

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


def read_leaves_carefully(
    c: Cursor, log: Log, after: int, stop: int, batch: int
) -> tuple[Sequence[Sequence[Any]], list[bytes | None]]:
    """``read_leaves`` row by row from ``select_events``: the reference, and malformed rows' path."""
    rows = fetch_rows(c, log.select_events, (after, stop, batch))
    out: list[bytes | None] = []
    append = out.append
    for row in rows:
        position, oid, ov, topic, state, well_typed = row
        try:
            if not well_typed:
                raise ValueError(position)
            append(leaf_hash(encode(position, _uuid_bytes(oid), ov, topic, state)))
        except Exception:  # a malformed row (wrong types, not a UUID): its leaf can match nothing
            append(None)
    return rows, out
