"""The decision index's digest chain, signed by each checkpoint and checked by ``verify``.

One definition for the places that hash the index rows: ``integrity.checkpoint`` (which first
recomputes the rows it newly covers from their events), ``integrity.verify`` in its own process,
and ``verify``'s helper process on SQLite, which runs this file as a script (``python -I
ledger/indexhash.py …``, see ``integrity.readahead.IndexHelper``). It imports only the standard
library and msgpack, so the helper starts without loading the ledger.

A row's canonical bytes are the MessagePack array of its ten values (``integrity.index_row_bytes``,
the reference definition the tests compare this with); the digest signed at a checkpoint covering
positions up to ``P_k`` is ``D_k = SHA-256(D_{k-1} ‖ rows with a position in (P_{k-1}, P_k])``,
``D_0 = SEED``, ``P_0 = 0`` (docs/reliability.md, "The decision index under the checkpoints").
"""

from __future__ import annotations

import hashlib
import sqlite3
import sys
from collections.abc import Callable, Sequence
from typing import Any

import msgpack

SEED = hashlib.sha256(b"medtech-ledger decision-index v1").digest()
"""``D_0``, the digest of the empty index: every chain starts here."""

PACK: Callable[[Any], bytes] = msgpack.Packer(use_bin_type=True, autoreset=True).pack
"""A row's canonical bytes: the MessagePack array of its values (each in its smallest encoding,
texts as ``str``, bytes as ``bin``, None as ``nil``)."""

Fetch = Callable[[int, int], Sequence[Sequence[Any]]]
"""The index rows with a position in ``(after, stop]``, in position order, as ``PACK`` takes them."""


def link(fetch: Fetch, previous: bytes, after: int, stop: int, batch: int) -> tuple[bytes, int]:
    """``SHA-256(previous ‖ PACK(row) for each row in (after, stop])`` and how many rows: one
    link of the chain. Reads the rows as stored, ``batch`` positions at a time; no event is
    decoded, which is what makes it cheaper than recomputing each row (docs/performance.md)."""
    h, rows, pack = hashlib.sha256(previous), 0, PACK
    while after < stop:
        high = min(stop, after + batch)
        found = fetch(after, high)
        h.update(b"".join(map(pack, found)))
        rows += len(found)
        after = high
    return h.digest(), rows


def chain(fetch: Fetch, positions: Sequence[int], batch: int) -> tuple[bytes, int]:
    """The digest after the links ending at each of ``positions`` (the index lines of the
    checkpoints, oldest first) and the rows hashed; ``ValueError`` if the positions go back."""
    digest, after, rows = SEED, 0, 0
    for position in positions:
        if position < after:
            raise ValueError(f"the index lines go back from position {after} to {position}")
        digest, n = link(fetch, digest, after, position, batch)
        after, rows = position, rows + n
    return digest, rows


def serve(path: str, sql: str, batch: int, positions: Sequence[int]) -> None:
    """The helper: the chain of a SQLite ledger's index rows, written as ``<hex digest> <rows>``."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        digest, rows = chain(lambda after, stop: con.execute(sql, (after, stop)).fetchall(), positions, batch)
    finally:
        con.close()
    sys.stdout.write(f"{digest.hex()} {rows}\n")


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2], int(sys.argv[3]), [int(p) for p in sys.argv[4:]])
