"""The node store and its sync: the Merkle tree kept beside the events, and proofs read from it.

``ledger_merkle_nodes(level, idx, hash)`` holds every finished perfect subtree (level 0 = leaf
hashes, RFC 9162 §2.1.1), ``ledger_merkle_tree`` the size, the last position and the right
frontier (``merkle.Frontier``). ``sync`` appends from the stored size to the end of the log in
batches: constant memory, one bulk insert per table per batch. A proof (RFC 9162 §2.1.3, §2.1.4)
reads O(log n) nodes. ``check_tree_tables`` is how ``verify`` holds the store to the tree it
recomputed.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from itertools import count, repeat
from typing import TYPE_CHECKING, Any, cast

from ledger import merkle
from ledger.errors import IntegrityError, NotFound
from ledger.integrity.leaves import fast_reads, read_leaves, row_leaf
from ledger.integrity.tables import BATCH, LEAVES, NODES, TREE, Log, fetch_rows, open_log
from ledger.sql import Cursor

if TYPE_CHECKING:
    from ledger.application import LedgerApplication


@dataclass(frozen=True)
class TreeState:
    """The log-backed tree as stored: ``size`` leaves, the last one at ``last_position``."""

    size: int
    last_position: int
    root: bytes
    log_id: str


def read_tree(c: Cursor, log: Log, *, lock: bool = False) -> tuple[TreeState, merkle.Frontier]:
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


def node_reader(c: Cursor, log: Log) -> merkle.GetNode:
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
    log = open_log(app)
    with log.db.transaction(write=False) as c:
        return read_tree(c, log)[0]


def sync(app: LedgerApplication, *, batch: int = BATCH) -> TreeState:
    """Extend the tree from its stored size to the end of the log; idempotent.

    Each batch of records is hashed into the frontier and written (nodes, leaf map, new state) in
    one transaction, so an interrupted sync resumes where it committed. Before extending, the
    last leaf is re-read and compared with its stored hash: a truncated or rewritten tail is
    refused here, in O(1), rather than silently built upon.
    """
    log = open_log(app)
    checked_tail = False
    while True:
        with log.db.transaction() as c:
            state, frontier = read_tree(c, log, lock=True)
            if not checked_tail:
                _check_tail(c, log, state)
                checked_tail = True
            rows, hashes, complete = read_leaves(c, log, state.last_position, 2**63 - 1, batch, fast=fast_reads(c, log))
            if not rows:
                return state
            if not complete:
                position = next(row[0] for row, h in zip(rows, hashes, strict=True) if h is None)
                msg = f"the record at position {position} is malformed: run `ledger verify`"
                raise IntegrityError(msg)
            positions = [row[0] for row in rows]
            extend_tree(c, log, frontier, positions, cast("list[bytes]", hashes))
            state = TreeState(frontier.size, positions[-1], frontier.root(), state.log_id)
        if len(rows) < batch:
            return state


NODE_COLUMNS = (("level", "idx", "hash"), ("integer", "bigint", "bytea"))
"""The node store's columns and their PostgreSQL types."""
LEAF_COLUMNS = (("position", "leaf_index"), ("bigint", "bigint"))
"""The leaf map's columns and their PostgreSQL types."""


def extend_tree(
    c: Cursor, log: Log, frontier: merkle.Frontier, positions: Sequence[int], hashes: Sequence[bytes]
) -> None:
    """Add leaves to the stored tree in ``c``'s transaction (``tree_rows``, then the new size,
    last position and frontier). ``frontier`` is the stored one (``read_tree``, locked)."""
    if not hashes:
        return
    nodes, leaves = tree_rows(frontier, positions, hashes)
    _insert_many(c, log, NODES, *NODE_COLUMNS, nodes)
    _insert_many(c, log, LEAVES, *LEAF_COLUMNS, leaves)
    save_tree(c, log, frontier, positions[-1])


def tree_rows(
    frontier: merkle.Frontier, positions: Sequence[int], hashes: Sequence[bytes]
) -> tuple[list[tuple[int, int, bytes]], list[tuple[int, int]]]:
    """What adding leaves writes to the tree's tables: the nodes they complete, and where each
    leaf's record is (the leaf map). ``hashes`` are the records' leaf hashes at ``positions``, in
    log order; ``frontier`` is extended by them."""
    leaves = list(zip(positions, range(frontier.size, frontier.size + len(hashes)), strict=True))
    nodes: list[tuple[int, int, bytes]] = []
    frontier.extend(hashes, on_node=partial(_rows_of_nodes, nodes))
    return nodes, leaves


def save_tree(c: Cursor, log: Log, frontier: merkle.Frontier, last_position: int) -> None:
    """The tree's size, last position and right frontier, after ``tree_rows`` wrote its rows."""
    c.execute(
        f"UPDATE {log.t(TREE)} SET size = ?, last_position = ?, frontier = ? WHERE id = 1",
        (frontier.size, last_position, frontier.to_bytes()),
    )


def _rows_of_nodes(into: list[tuple[int, int, bytes]], level: int, index: int, hashes: Sequence[bytes]) -> None:
    """``Frontier.extend``'s ``on_node``: the completed nodes as rows of the node store."""
    into.extend(zip(repeat(level), count(index), hashes))


def _insert_many(
    c: Cursor, log: Log, table: str, columns: Sequence[str], pg_types: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Insert rows in one statement: ``executemany`` on SQLite, ``unnest`` of arrays on PostgreSQL.

    Why not ``executemany`` on PostgreSQL too: psycopg sends one statement per row (pipelined),
    many times the cost of one ``INSERT … SELECT unnest(…)`` per batch (docs/performance.md).
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


def _check_tail(c: Cursor, log: Log, state: TreeState) -> None:
    if state.size == 0:
        return
    row = c.execute(log.select_event_at, (state.last_position,)).fetchone()
    if row is None:
        raise IntegrityError(
            f"the record at position {state.last_position}, the last one in the Merkle tree, is gone: "
            "the log was truncated; run `ledger verify`"
        )
    try:
        h = merkle.leaf_hash(row_leaf(row))
    except (ValueError, TypeError):
        h = b""
    if not hmac.compare_digest(h, node_reader(c, log)(0, state.size - 1)):
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
    log = open_log(app)
    with log.db.transaction(write=False) as c:
        return merkle.root_from(node_reader(c, log), size)


def inclusion_proof(app: LedgerApplication, leaf_index: int, size: int) -> list[bytes]:
    """RFC 9162 §2.1.3.1 audit path of ``leaf_index`` in the tree of ``size``, O(log n) reads."""
    state = sync(app)
    if not 0 <= leaf_index < size <= state.size:
        raise NotFound(f"no leaf {leaf_index} in a tree of size {size} (the tree has {state.size})")
    log = open_log(app)
    with log.db.transaction(write=False) as c:
        return merkle.inclusion_proof_from(node_reader(c, log), leaf_index, size)


def consistency_proof(app: LedgerApplication, old_size: int, new_size: int, *, sync_first: bool = True) -> list[bytes]:
    """RFC 9162 §2.1.4.1 proof that the tree of ``old_size`` prefixes that of ``new_size``."""
    state = sync(app) if sync_first else tree_state(app)
    if not 0 <= old_size <= new_size <= state.size:
        raise NotFound(f"sizes {old_size} ≤ {new_size} are not within the tree's {state.size}")
    log = open_log(app)
    with log.db.transaction(write=False) as c:
        return merkle.consistency_proof_from(node_reader(c, log), old_size, new_size)


def expected_position(c: Cursor, log: Log, index: int) -> int | None:
    row = c.execute(expected_position_sql(log), (index,)).fetchone()
    return None if row is None else int(row[0])


def check_tree_tables(c: Cursor, log: Log, tree_size: int, batch: int) -> list[str]:
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
            below = level_blob(c, log, level, 2 * start, 2 * end)
            above = level_blob(c, log, level + 1, start, end)
            if below is None or above is None:
                problems.append(f"the Merkle node store lacks nodes of level {level + 1 if below else level}")
                break
            sha, prefix = hashlib.sha256, b"\x01"  # RFC 9162 §2.1.1 interior node
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
        state, frontier = read_tree(c, log)
        recomputed = merkle.Frontier.from_get_node(node_reader(c, log), tree_size)
    except (IntegrityError, ValueError):
        return problems  # already said (the state row), or the nodes are missing (said above)
    if frontier.nodes != recomputed.nodes:
        problems.append("the stored Merkle frontier is not the tree's: the tree state was altered")
    if tree_size and expected_position(c, log, tree_size - 1) != state.last_position:
        problems.append(f"the tree state's last position {state.last_position} is not its last leaf's")
    return problems


def level_blob(c: Cursor, log: Log, level: int, start: int, end: int) -> bytes | None:
    """The node store's hashes of ``level`` from ``start`` to ``end`` (exclusive), end to end;
    None unless exactly those are there."""
    return blob_of(fetch_rows(c, level_blob_sql(log), (level, start, end)), end - start)


def level_blob_sql(log: Log) -> str:
    """``level_blob``'s query: (level, start, end) -> (count, the hashes end to end)."""
    if log.db.dialect == "postgres":
        return (
            f"SELECT count(*), string_agg(hash, ''::bytea ORDER BY idx) FROM {log.t(NODES)} "
            "WHERE level = ? AND idx >= ? AND idx < ?"
        )
    return (
        f"SELECT count(*), CAST(group_concat(hash, '') AS BLOB) FROM (SELECT hash FROM {log.t(NODES)} "
        "WHERE level = ? AND idx >= ? AND idx < ? ORDER BY idx)"
    )


def blob_of(rows: Sequence[Sequence[Any]], count: int) -> bytes | None:
    """``level_blob`` of its query's rows: the ``count`` hashes, or None unless exactly those."""
    if not rows or rows[0][0] != count or rows[0][1] is None:
        return None
    joined = bytes(rows[0][1])
    return joined if len(joined) == merkle.HASH_SIZE * count else None


def expected_position_sql(log: Log) -> str:
    """``expected_position``'s query: (leaf index,) -> (the position of its record,)."""
    return f"SELECT position FROM {log.t(LEAVES)} WHERE leaf_index = ?"


def _check_leaf_map(c: Cursor, log: Log, tree_size: int) -> list[str]:
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
