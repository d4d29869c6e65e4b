"""The leaf layout: every path that writes a leaf writes the bytes of one hand-written reference.

``leafhash.LAYOUT`` is the one definition (the structs, ``encode``, ``integrity.leaf_bytes``,
``parse_leaf``, the batch hasher ``hash_rows`` and the PostgreSQL expression derive from it);
``reference_leaf`` below spells the stored format out by hand, independently of it, so a change to
the layout that would change stored hashes fails here.
"""

from __future__ import annotations

import hashlib
from uuid import UUID

import pytest
from conftest import PostgresServer
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import integrity, leafhash, merkle
from ledger.integrity import tables
from ledger.integrity.leaves import split_leaf

positions = st.integers(0, 2**63 - 1)
versions = st.integers(0, 2**63 - 1)
ids = st.uuids()
topics = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)
states = st.binary(max_size=300)


def reference_leaf(position: int, oid: UUID, version: int, topic: str, state: bytes) -> bytes:
    """``0x01 ‖ u64 position ‖ 16-byte UUID ‖ u64 version ‖ u32 len ‖ topic ‖ u32 len ‖ state``."""
    text = topic.encode("utf-8")
    return (
        b"\x01"
        + position.to_bytes(8, "big")
        + oid.bytes
        + version.to_bytes(8, "big")
        + len(text).to_bytes(4, "big")
        + text
        + len(state).to_bytes(4, "big")
        + state
    )


def test_the_layout_is_the_stored_format() -> None:
    assert leafhash.LEAF_VERSION == 1
    assert [name for name, _ in leafhash.LAYOUT] == [
        "version",
        "position",
        "originator_id",
        "originator_version",
        "topic",
        "state",
    ]
    assert leafhash.HEAD.format == ">BQ16sQI" and leafhash.HASH_HEAD.format == ">xBQ16sQI"


@given(positions, ids, versions, topics, states)
def test_every_python_path_writes_the_reference_bytes(
    position: int, oid: UUID, version: int, topic: str, state: bytes
) -> None:
    expected = reference_leaf(position, oid, version, topic, state)
    assert leafhash.encode(position, oid.bytes, version, topic.encode("utf-8"), state) == expected
    assert integrity.leaf_bytes(position, oid, version, topic, state) == expected
    assert integrity.parse_leaf(expected) == integrity.Leaf(position, oid, version, topic, state)
    assert split_leaf(expected) == (position, oid.bytes, version, topic, state)
    assert leafhash.leaf_rows([(position, oid.hex, version, topic, state)]) == [expected]
    # the fast path: rows as SQLite gives them (the id as 32 hex digits), hashed behind RFC 9162's 0x00
    assert leafhash.hash_rows([(position, oid.hex, version, topic, state)]) == [merkle.leaf_hash(expected)]


@pytest.mark.postgres
@settings(deadline=None, max_examples=50)  # a round trip to the server per example, on a shared machine
@given(positions, ids, versions, topics, states)
def test_the_postgresql_expression_hashes_the_reference_bytes(
    postgres_server: PostgresServer, position: int, oid: UUID, version: int, topic: str, state: bytes
) -> None:
    """The expression ``verify`` and ``sync`` read PostgreSQL's leaf hashes with, over one row."""
    sql = (
        f"SELECT {tables._PG_LEAF_HASH} FROM (SELECT %s::bigint AS notification_id, %s::uuid AS originator_id, "
        "%s::bigint AS originator_version, %s::text AS topic, %s::bytea AS state) AS e"
    )
    row = postgres_server.conn.execute(sql, (position, oid, version, topic, state)).fetchone()
    expected = hashlib.sha256(b"\x00" + reference_leaf(position, oid, version, topic, state)).digest()
    assert bytes(row[0]) == expected
