"""Leaf hashes of stored records, a batch at a time: the fast path of ``verify`` and ``sync``.

One definition for the two places that hash in bulk — ``integrity._read_leaves`` in the ledger's
own process, and ``verify``'s read-ahead helper processes, which run this file as a script (``python
-I ledger/leafhash.py …``, see ``integrity._Prefetcher``). It imports only the standard library,
so a helper starts in ≈ 30 ms without loading the ledger. The bytes hashed are
``integrity.leaf_bytes``' (the canonical definition, which the tests compare this with), behind
RFC 9162's leaf prefix 0x00.
"""

from __future__ import annotations

import hashlib
import sqlite3
import struct
import sys
from collections.abc import Sequence
from typing import Any

LEAF_VERSION = 1
"""First byte of every leaf (cf. RFC 6962 §3.4 ``MerkleTreeLeaf.version``): lets a future layout
be told apart from this one. Part of the stored format: never change what version 1 means."""

HASH_HEAD = struct.Struct(">xBQ16sQI")
"""The RFC 9162 leaf prefix 0x00 (the ``x`` pad byte), then a leaf's head: version, position,
subject UUID, subject version, topic length (the topic, the state's length and the state follow)."""
LENGTH = struct.Struct(">I")


def hash_rows(rows: Sequence[tuple[Any, ...]]) -> list[bytes]:
    """The leaf hash of each (position, id as 32 hex digits, version, topic, state) row.

    Raises on any row that is not exactly that (``bytes.fromhex`` takes only ``str``, ``struct``
    only ``int`` and a 16-byte id, ``str`` has ``encode`` and ``bytes`` has not): the caller then
    reads the batch the careful way, where each malformed record is found at its position."""
    sha, head, length, fromhex, version = hashlib.sha256, HASH_HEAD.pack, LENGTH.pack, bytes.fromhex, LEAF_VERSION
    return [
        sha(head(version, p, fromhex(o), v, len(t := tp.encode())) + t + length(len(s)) + s).digest()
        for p, o, v, tp, s in rows
    ]


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
