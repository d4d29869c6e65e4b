"""The leaf layout: the one definition of the bytes a stored record's Merkle leaf commits to.

A leaf is ``LAYOUT`` written out: fixed-width big-endian integers and the subject's 16 UUID bytes,
then the topic (UTF-8) and the state, each after its ``u32`` length, so no two records share an
encoding. Everything that writes a leaf derives from ``LAYOUT``: the structs below (Python's
encoder ``encode``, its inverse ``integrity.parse_leaf``, the batch hasher ``hash_rows``) and the
PostgreSQL expression ``pg_leaf_hash`` that hashes leaves where the rows are read.

The batch hasher is the fast path of ``verify`` and ``sync``; ``verify``'s read-ahead helper
processes run this file as a script (``python -I ledger/leafhash.py …``, see
``integrity.readahead``), so it imports only the standard library and starts without loading the
ledger. ``encode`` is the reference the fast path and the PostgreSQL expression are tested against
(``tests/ledger/test_leafhash.py``, which also writes the layout out by hand).
"""

from __future__ import annotations

import hashlib
import sqlite3
import struct
import sys
from collections.abc import Mapping, Sequence
from typing import Any

LEAF_VERSION = 1
"""First byte of every leaf (cf. RFC 6962 §3.4 ``MerkleTreeLeaf.version``): lets a future layout
be told apart from this one. Part of the stored format: never change what version 1 means."""

LAYOUT: tuple[tuple[str, str], ...] = (
    ("version", "B"),
    ("position", "Q"),
    ("originator_id", "16s"),
    ("originator_version", "Q"),
    ("topic", "*"),
    ("state", "*"),
)
"""The leaf's fields in order, as ``struct`` formats (big-endian); ``*`` is a byte string after
its ``u32`` length. Part of the stored format: every leaf of every ledger is these bytes."""

_FIXED = "".join(fmt for _, fmt in LAYOUT if fmt != "*")
_VARIABLE = tuple(name for name, fmt in LAYOUT if fmt == "*")
if [fmt for _, fmt in LAYOUT][len(LAYOUT) - len(_VARIABLE) :] != ["*"] * len(_VARIABLE):  # pragma: no cover
    raise AssertionError("the layout's fixed fields come first, then the length-prefixed ones")

LENGTH = struct.Struct(">I")
"""The length before each byte string."""
HEAD = struct.Struct(">" + _FIXED + "I")
"""The fixed fields and the first byte string's length: what a leaf starts with."""
HASH_HEAD = struct.Struct(">x" + _FIXED + "I")
"""``HEAD`` behind the RFC 9162 leaf prefix 0x00 (the ``x`` pad byte): a leaf hash needs no
extra concatenation."""


def encode(position: int, originator_id: bytes, originator_version: int, topic: bytes, state: bytes) -> bytes:
    """The leaf of one stored record (its id as 16 bytes, its topic as UTF-8): the reference."""
    return HEAD.pack(LEAF_VERSION, position, originator_id, originator_version, len(topic)) + (
        topic + LENGTH.pack(len(state)) + state
    )


def hash_rows(rows: Sequence[tuple[Any, ...]]) -> list[bytes]:
    """The leaf hash of each (position, id as 32 hex digits, version, topic, state) row: ``encode``
    behind the leaf prefix, inlined (tested against it).

    Raises on any row that is not exactly that (``bytes.fromhex`` takes only ``str``, ``struct``
    only ``int`` and a 16-byte id, ``str`` has ``encode`` and ``bytes`` has not): the caller then
    reads the batch the careful way, where each malformed record is found at its position."""
    sha, head, length, fromhex, version = hashlib.sha256, HASH_HEAD.pack, LENGTH.pack, bytes.fromhex, LEAF_VERSION
    return [
        sha(head(version, p, fromhex(o), v, len(t := tp.encode())) + t + length(len(s)) + s).digest()
        for p, o, v, tp, s in rows
    ]


def leaf_rows(rows: Sequence[tuple[Any, ...]]) -> list[bytes]:
    """The leaf of each (position, id as 32 hex digits, version, topic, state) row: ``encode``
    inlined, raising as ``hash_rows`` does on a row that is not exactly that (tested against it).
    What an entry bundle of the tiled log holds."""
    head, length, fromhex, version = HEAD.pack, LENGTH.pack, bytes.fromhex, LEAF_VERSION
    return [head(version, p, fromhex(o), v, len(t := tp.encode())) + t + length(len(s)) + s for p, o, v, tp, s in rows]


_PG_FIXED = {"Q": "int8send({}::bigint)", "16s": "uuid_send({})"}


def pg_leaf_hash(columns: Mapping[str, str]) -> str:
    """``SHA-256(0x00 ‖ leaf)`` as a PostgreSQL expression over ``columns`` (each field's SQL
    expression; the byte strings' must be ``bytea``), written from ``LAYOUT``: the version is the
    constant ``LEAF_VERSION``, ``int8send`` is big-endian, ``uuid_send`` gives the 16 bytes and
    ``int4send(octet_length(…))`` the ``u32`` length.

    Why: hashing where the row is read returns 32 bytes instead of a whole record per row; the
    server reads the same stored bytes the client would, so this trusts nothing the client would
    not (``prove`` still rebuilds each leaf it hands out in Python and checks it)."""
    parts = ["decode('00', 'hex')"]  # the RFC 9162 leaf prefix
    for name, fmt in LAYOUT:
        if name == "version":
            parts.append(f"decode('{struct.pack('>' + fmt, LEAF_VERSION).hex()}', 'hex')")
        elif fmt == "*":
            parts.append(f"int4send(octet_length({columns[name]})) || {columns[name]}")
        else:
            parts.append(_PG_FIXED[fmt].format(columns[name]))
    return f"sha256({' || '.join(parts)})"


FRAME = struct.Struct(">QQQQ")
"""A helper's frame before each range's hashes: records, low and high position (low, high], first position."""


def serve(path: str, sql: str, stop: int, span: int, k: int, step: int) -> None:
    """A helper process: hash every ``step``-th range of ``span`` positions from the ``k``-th on,
    up to ``stop``, on its own read-only connection, writing frames to standard output. It stops
    at the first range it cannot hash this way (``verify`` reads that one, and the rest, itself)."""
    out = sys.stdout.buffer
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA query_only = 1")
    con.execute("BEGIN")
    while k * span < stop:
        low, high = k * span, min(k * span + span, stop)
        try:
            rows = con.execute(sql, (low, high, span)).fetchall()
            if {len(r[1]) for r in rows} - {32}:
                break
            packed = b"".join(hash_rows(rows))
        except Exception:
            break
        out.write(FRAME.pack(len(rows), low, high, rows[0][0] if rows else 0) + packed)
        k += step
    out.flush()


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2], *map(int, sys.argv[3:7]))
