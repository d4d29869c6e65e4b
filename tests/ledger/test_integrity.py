"""Tamper evidence: the log-backed RFC 9162 tree, signed checkpoints, verify, offline proofs.

The tree, checkpoint and verify tests run on SQLite and PostgreSQL (``app`` from conftest). The
tampering tests do what an attacker with the database does: drop the append-only triggers, then
change a byte of a state, delete a row, or swap two rows, and show that ``verify`` names the first
position that changed. Proof bundles are checked after the database is gone.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import sqlite3
import stat
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse
from uuid import UUID

import pluggy
import pytest
from conftest import run_cli
from strategies import EXAMPLE_FILE, to_jsonl

from ledger import hookspecs, indexhash, integrity, merkle
from ledger.application import LedgerApplication
from ledger.checkpoints import Checkpoint, generate_key, open_note, sign
from ledger.errors import ConfigurationError, IntegrityError, NotFound, SignatureError
from ledger.integrity import index as decision_index
from ledger.integrity import readahead, signing, tables
from ledger.sql import Database

HOSP = "44860321X43010211A1001"
CLINIC = "44953360243030211A1001"
DOC = "110430105000061"
DOC2 = "110430105000062"
HN = "湖南省卫生健康委员会"


def _tech(i: str, code: str, name: str) -> dict[str, Any]:
    return {
        "id": i,
        "kind": "technology.listed",
        "effective": "2018-11-19",
        "by": HN,
        "basis": "HN-2018#二(二)",
        "catalog": "hunan",
        "code": code,
        "name": name,
        "class": "restricted",
        "version": "湖南省限制类医疗技术目录（2018版）",
    }


def _inst(i: str, licence: str, name: str, effective: str) -> dict[str, Any]:
    return {
        "id": i,
        "kind": "institution.registered",
        "effective": effective,
        "by": "长沙市卫生局",
        "institution": licence,
        "name": name,
        "province": "湖南省",
        "city": "长沙市",
        "category": "医院",
        "level": "三级",
        "licensing_authority": "长沙市卫生健康委员会",
    }


def _doc(i: str, licence: str, institution: str, name: str) -> dict[str, Any]:
    return {
        "id": i,
        "kind": "physician.registered",
        "effective": "2010-03-01",
        "by": "长沙市卫生局",
        "physician": licence,
        "name": name,
        "institution": institution,
        "title": "主任医师",
    }


FILE_A = [
    _tech("T-S01", "S01", "三级及以上呼吸内镜诊疗技术"),
    _tech("T-S14", "S14", "人工关节置换技术"),
    _inst("I-1", HOSP, "湘江示范医院", "2003-09-18"),
    _inst("I-2", CLINIC, "莲城示范医院", "2005-11-21"),
]
"""Positions 1–4."""

FILE_B = [
    _doc("P-1", DOC, HOSP, "贺婉清"),
    _doc("P-2", DOC2, CLINIC, "冉海峰"),
    {
        "id": "PR-1",
        "kind": "privilege.granted",
        "effective": "2019-01-01",
        "by": HOSP,
        "institution": HOSP,
        "physician": DOC,
        "level": 3,
        "procedures": ["hunan:S14"],
    },
]
"""Positions 5–7; PR-1 is the second event of P-1's subject (version 2)."""

FILE_C = [
    _tech("T-S02", "S02", "三级及以上鼻科内镜诊疗技术"),
    {
        "id": "PEN-1",
        "kind": "penalty.imposed",
        "effective": "2022-08-02",
        "by": HN,
        "institution": HOSP,
        "amount_yuan": Decimal("1500.50"),
        "reason": "未按期整改",
    },
]
"""Positions 8–9."""


def record(app: LedgerApplication, lines: list[dict[str, Any]], source: str = "test.jsonl") -> None:
    app.import_lines(to_jsonl(lines).splitlines(), source=source)


def stored_leaves(app: LedgerApplication) -> list[bytes]:
    """Leaf data of every stored record, the slow and obvious way (the reference)."""
    return [
        integrity.leaf_bytes(n.id, UUID(str(n.originator_id)), n.originator_version, n.topic, n.state)
        for n in app.store.select_notifications(0, 10_000)
    ]


@pytest.fixture(scope="module")
def keys() -> tuple[str, str]:
    return generate_key("test-ledger")


# --- leaves ---------------------------------------------------------------------------------


def test_leaf_bytes_layout_and_round_trip() -> None:
    oid = UUID("6f1c7d2e-3b4a-5c6d-8e9f-0a1b2c3d4e5f")
    data = integrity.leaf_bytes(7, oid, 2, "ledger.events:X", b"\x81\xa1a\x01")
    assert data == (
        b"\x01"
        + (7).to_bytes(8, "big")
        + oid.bytes
        + (2).to_bytes(8, "big")
        + (15).to_bytes(4, "big")
        + b"ledger.events:X"
        + (4).to_bytes(4, "big")
        + b"\x81\xa1a\x01"
    )
    assert integrity.parse_leaf(data) == integrity.Leaf(7, oid, 2, "ledger.events:X", b"\x81\xa1a\x01")
    with pytest.raises(ValueError):
        integrity.parse_leaf(data + b"\x00")
    with pytest.raises(ValueError):
        integrity.parse_leaf(b"\x02" + data[1:])


def test_leaf_bytes_are_unambiguous() -> None:
    """Moving a byte from the topic to the state, or changing any field, changes the leaf."""
    oid = UUID(int=1)
    base = integrity.leaf_bytes(1, oid, 1, "ab", b"c")
    others = [
        integrity.leaf_bytes(1, oid, 1, "a", b"bc"),
        integrity.leaf_bytes(2, oid, 1, "ab", b"c"),
        integrity.leaf_bytes(1, UUID(int=2), 1, "ab", b"c"),
        integrity.leaf_bytes(1, oid, 2, "ab", b"c"),
        integrity.leaf_bytes(1, oid, 1, "ab", b"d"),
    ]
    assert len({base, *others}) == 6


# --- the incremental tree (SQLite and PostgreSQL) -------------------------------------------


def test_incremental_tree_equals_the_rfc_root(app: LedgerApplication) -> None:
    assert integrity.sync(app).size == 0
    assert integrity.tree_state(app).root == merkle.EMPTY_ROOT
    for lines in (FILE_A, FILE_B, FILE_C):
        record(app, lines)
        state = integrity.sync(app, batch=2)  # several batches per import
        leaves = stored_leaves(app)
        assert state.size == len(leaves)
        assert state.root == merkle.root_hash(leaves)
        assert state.last_position == app.position()
    assert integrity.sync(app) == state  # idempotent
    db = Database(app.store)
    with db.transaction(write=False) as c:
        nodes = c.execute(f"SELECT COUNT(*) FROM {db.table('ledger_merkle_nodes')}").fetchone()
        leaf_rows = c.execute(f"SELECT position, leaf_index FROM {db.table('ledger_merkle_leaves')}").fetchall()
    # every finished perfect subtree once: 9 leaves, 4 pairs, 2 quads, 1 of 8
    assert nodes is not None and nodes[0] == 9 + 4 + 2 + 1
    assert sorted(leaf_rows) == [(p, p - 1) for p in range(1, 10)]


def test_proofs_from_the_node_store_verify(app: LedgerApplication) -> None:
    for lines in (FILE_A, FILE_B, FILE_C):
        record(app, lines)
    leaves = stored_leaves(app)
    n = len(leaves)
    for size in range(1, n + 1):
        root = integrity.root_at(app, size)
        assert root == merkle.root_hash(leaves[:size])
        for index in range(size):
            proof = integrity.inclusion_proof(app, index, size)
            assert proof == merkle.inclusion_proof(leaves, index, size)
            assert merkle.verify_inclusion(merkle.leaf_hash(leaves[index]), index, size, proof, root)
        for old in range(size + 1):
            proof = integrity.consistency_proof(app, old, size)
            old_root = merkle.root_hash(leaves[:old])
            assert merkle.verify_consistency(old, size, old_root, root, proof)
    with pytest.raises(NotFound):
        integrity.inclusion_proof(app, 0, n + 1)


def test_checkpoint_then_more_then_checkpoint_is_consistent(app: LedgerApplication, keys: tuple[str, str]) -> None:
    skey, vkey = keys
    record(app, FILE_A)
    first = integrity.checkpoint(app, skey, now=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    record(app, FILE_B)
    record(app, FILE_C)
    second = integrity.checkpoint(app, skey)
    cp1, signers = open_note(first, [vkey])
    cp2, _ = open_note(second, [vkey])
    assert signers == ["test-ledger"]
    assert (cp1.size, cp2.size) == (4, 9)
    assert cp1.time == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert cp1.origin == cp2.origin == integrity.default_origin(app)
    assert cp1.origin.startswith("medtech-ledger/")
    proof = integrity.consistency_proof(app, 4, 9)
    assert merkle.verify_consistency(4, 9, cp1.root, cp2.root, proof)
    stored = integrity.stored_checkpoints(app)
    assert [(c.seq, c.size, c.note) for c in stored] == [(1, 4, first), (2, 9, second)]

    report = integrity.verify(app, keys=[vkey])
    assert report.ok, report.message()
    assert (report.records, report.checkpoints_verified, report.checkpoints_total) == (9, 2, 2)
    assert report.signatures_checked
    assert "9 records, 2 of 2 checkpoints verified" in report.summary()
    report.check()
    # a checkpoint kept outside the ledger counts too
    assert integrity.verify(app, [first], [vkey]).checkpoints_verified == 3


def test_origin_is_configurable_and_then_kept(app: LedgerApplication, keys: tuple[str, str]) -> None:
    record(app, FILE_A)
    note = integrity.checkpoint(app, keys[0], "example.org/ledger")
    assert note.startswith("example.org/ledger\n4\n")
    assert integrity.checkpoint(app, keys[0]).startswith("example.org/ledger\n")
    with pytest.raises(ConfigurationError):
        integrity.checkpoint(app, keys[0], "two\nlines")


def _forge(app: LedgerApplication, skey: str, size: int, root: bytes) -> None:
    """Insert a signed checkpoint for a tree this log never had (a signer misused, or a bug)."""
    note = sign(Checkpoint(integrity.default_origin(app), size, root).with_time(datetime.now(UTC)), skey)
    db = Database(app.store)
    with db.transaction() as c:
        row = c.execute(f"SELECT MAX(seq) FROM {db.table('ledger_checkpoints')}").fetchone()
        seq = (row[0] if row and row[0] else 0) + 1
        c.execute(
            f"INSERT INTO {db.table('ledger_checkpoints')} (seq, size, root, time, origin, note) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (seq, size, root, "2026-01-01T00:00:00Z", integrity.default_origin(app), note),
        )


def test_a_forged_older_checkpoint_stops_signing_and_fails_verify(
    app: LedgerApplication, keys: tuple[str, str]
) -> None:
    skey, vkey = keys
    record(app, FILE_A)
    integrity.checkpoint(app, skey)
    record(app, FILE_B)
    _forge(app, skey, 4, merkle.root_hash([b"another", b"history", b"of", b"four"]))
    with pytest.raises(IntegrityError, match="not consistent with checkpoint #2"):
        integrity.checkpoint(app, skey)
    assert len(integrity.stored_checkpoints(app)) == 2  # nothing was signed

    report = integrity.verify(app, keys=[vkey])
    assert not report.ok
    assert "checkpoint #2 (size 4" in report.message()
    assert report.checkpoints_verified == 1
    with pytest.raises(IntegrityError, match="first disagreement"):
        report.check()


def test_a_forged_checkpoint_file_fails_verify(app: LedgerApplication, keys: tuple[str, str]) -> None:
    skey, vkey = keys
    record(app, FILE_A)
    integrity.checkpoint(app, skey)
    forged = sign(Checkpoint(integrity.default_origin(app), 3, merkle.root_hash([b"x", b"y", b"z"])), skey)
    report = integrity.verify(app, [forged], [vkey])
    assert not report.ok
    assert "given checkpoint 1 (size 3" in report.message()
    other_log = sign(Checkpoint("example.org/other", 4, merkle.root_hash([b"x"] * 4)), skey)
    report = integrity.verify(app, [other_log], [vkey])
    assert not report.ok and "not this one" in report.message()


def test_verify_with_the_wrong_key_is_a_signature_failure(app: LedgerApplication, keys: tuple[str, str]) -> None:
    record(app, FILE_A)
    integrity.checkpoint(app, keys[0])
    _, other = generate_key("someone-else")
    report = integrity.verify(app, keys=[other])
    assert not report.ok
    assert report.first_disagreement is None
    with pytest.raises(SignatureError, match="checkpoint #1"):
        report.check()
    assert integrity.verify(app).ok  # without keys, signatures are not checked (and the report says so)
    assert "signatures not checked" in integrity.verify(app).summary()


def test_empty_ledger_verifies(app: LedgerApplication, keys: tuple[str, str]) -> None:
    note = integrity.checkpoint(app, keys[0])
    assert open_note(note, [keys[1]])[0].root == merkle.EMPTY_ROOT
    report = integrity.verify(app, keys=[keys[1]])
    assert report.ok and report.records == 0 and report.checkpoints_verified == 1


# --- tampering with the database directly ---------------------------------------------------


def _signed(url: str, skey: str) -> str:
    """FILE_A, checkpoint (size 4), FILE_B and FILE_C, checkpoint (size 9); closed again."""
    app = LedgerApplication.open(url)
    try:
        record(app, FILE_A)
        integrity.checkpoint(app, skey)
        record(app, FILE_B)
        record(app, FILE_C)
        integrity.checkpoint(app, skey)
    finally:
        app.close()
    return url


@pytest.fixture
def signed_ledger(ledger_url: str, keys: tuple[str, str]) -> str:
    """A signed ledger of 9 records on SQLite or PostgreSQL."""
    return _signed(ledger_url, keys[0])


@pytest.fixture
def signed_sqlite(sqlite_url: str, keys: tuple[str, str]) -> str:
    """The same on a SQLite file, for edits that depend on SQLite itself."""
    return _signed(sqlite_url, keys[0])


TRIGGERED = ("stored_events", "ledger_decisions", "ledger_merkle_nodes", "ledger_merkle_leaves", "ledger_checkpoints")
"""The tables whose append-only triggers an attacker drops (the same names on both databases)."""


@pytest.fixture
def attacker(backend: str, request: pytest.FixtureRequest) -> Iterator[Callable[[str, list[str]], None]]:
    """Runs SQL on the ledger's database as someone with the file (or the server) would."""

    def on_sqlite(url: str, statements: list[str]) -> None:
        con = sqlite3.connect(url)
        try:
            for table in TRIGGERED:
                for op in ("update", "delete"):
                    con.execute(f"DROP TRIGGER IF EXISTS {table}_no_{op}")
            for sql in statements:
                con.execute(sql)
            con.commit()
        finally:
            con.close()

    def on_postgres(url: str, statements: list[str]) -> None:
        schema = parse_qs(urlparse(url).query)["schema"][0]
        with request.getfixturevalue("postgres_server").connect() as con:
            con.execute(f'SET search_path TO "{schema}"')
            for name in TRIGGERED:
                con.execute(f"DROP TRIGGER IF EXISTS {name}_append_only ON {name}")
            for sql in statements:
                con.execute(sql.replace("rowid", "notification_id"))

    yield on_sqlite if backend == "sqlite" else on_postgres


def _verify(url: str, vkey: str) -> integrity.VerifyReport:
    app = LedgerApplication.open(url)
    try:
        return integrity.verify(app, keys=[vkey])
    finally:
        app.close()


def _fails_at(url: str, vkey: str, position: int, reason: str) -> integrity.VerifyReport:
    report = _verify(url, vkey)
    assert not report.ok
    d = report.first_disagreement
    assert d is not None, report.message()
    assert (d.position, d.pinpointed) == (position, True), report.message()
    assert reason in d.reason
    assert f"first disagreement at position {position} " in report.message()
    with pytest.raises(IntegrityError, match=f"first disagreement at position {position} "):
        report.check()
    return report


def test_untouched_ledger_verifies(signed_ledger: str, keys: tuple[str, str]) -> None:
    report = _verify(signed_ledger, keys[1])
    assert report.ok, report.message()
    assert report.checkpoints_verified == 2


def test_one_changed_byte_of_a_state_is_found(
    signed_ledger: str, keys: tuple[str, str], attacker: Callable[[str, list[str]], None], backend: str
) -> None:
    if backend == "sqlite":
        # || makes TEXT of BLOBs; CAST gives the same bytes back as a BLOB, as the ledger stored it
        change = (
            "UPDATE stored_events SET state = CAST(substr(state, 1, 10) || x'58' || substr(state, 12) AS BLOB) "
            "WHERE rowid = 6"
        )
    else:
        change = "UPDATE stored_events SET state = overlay(state placing '\\x58'::bytea from 11 for 1) WHERE rowid = 6"
    attacker(signed_ledger, [change])
    _fails_at(signed_ledger, keys[1], 6, "was changed")


def test_a_state_rewritten_as_text_is_found_not_a_crash(signed_sqlite: str, keys: tuple[str, str]) -> None:
    """A careless edit leaves a TEXT value that is not even UTF-8: reported at its position."""
    con = sqlite3.connect(signed_sqlite)
    con.execute("DROP TRIGGER stored_events_no_update")
    con.execute("UPDATE stored_events SET state = substr(state, 1, 10) || x'ff' || substr(state, 12) WHERE rowid = 4")
    con.commit()
    con.close()
    _fails_at(signed_sqlite, keys[1], 4, "malformed")


def test_a_deleted_row_is_found(
    signed_ledger: str, keys: tuple[str, str], attacker: Callable[[str, list[str]], None]
) -> None:
    attacker(
        signed_ledger, ["DELETE FROM stored_events WHERE rowid = 3", "DELETE FROM ledger_decisions WHERE position = 3"]
    )
    report = _fails_at(signed_ledger, keys[1], 3, "missing")
    assert "checkpoint #1 (size 4" in report.message()  # the earliest signed tree it breaks


def test_a_deleted_last_row_is_found_and_stops_signing(
    signed_ledger: str, keys: tuple[str, str], attacker: Callable[[str, list[str]], None]
) -> None:
    attacker(signed_ledger, ["DELETE FROM stored_events WHERE rowid = 9"])
    report = _fails_at(signed_ledger, keys[1], 9, "missing")
    assert "storage holds only 8" in report.message()
    app = LedgerApplication.open(signed_ledger)
    try:
        with pytest.raises(IntegrityError, match="position 9"):
            integrity.checkpoint(app, keys[0])
    finally:
        app.close()


def test_swapped_states_are_found(
    signed_ledger: str, keys: tuple[str, str], attacker: Callable[[str, list[str]], None], backend: str
) -> None:
    if backend == "sqlite":
        swap = [
            "UPDATE stored_events SET state = CASE rowid WHEN 2 THEN (SELECT state FROM stored_events WHERE rowid = 8) "
            "ELSE (SELECT state FROM stored_events WHERE rowid = 2) END WHERE rowid IN (2, 8)"
        ]
    else:
        swap = [
            "UPDATE stored_events e SET state = o.state FROM stored_events o "
            "WHERE (e.rowid, o.rowid) IN ((2, 8), (8, 2))"
        ]
    attacker(signed_ledger, swap)
    _fails_at(signed_ledger, keys[1], 2, "was changed")


def test_swapped_versions_are_found(
    signed_ledger: str, keys: tuple[str, str], attacker: Callable[[str, list[str]], None]
) -> None:
    # P-1 (position 5) and PR-1 (position 7) are versions 1 and 2 of the same physician.
    attacker(
        signed_ledger,
        [
            "UPDATE stored_events SET originator_version = 0 WHERE rowid = 5",
            "UPDATE stored_events SET originator_version = 1 WHERE rowid = 7",
            "UPDATE stored_events SET originator_version = 2 WHERE rowid = 5",
        ],
    )
    _fails_at(signed_ledger, keys[1], 5, "was changed")


def test_a_change_after_the_last_checkpoint_is_caught_by_the_node_store(
    ledger_url: str, keys: tuple[str, str], attacker: Callable[[str, list[str]], None]
) -> None:
    app = LedgerApplication.open(ledger_url)
    try:
        record(app, FILE_A)
        integrity.checkpoint(app, keys[0])
        record(app, FILE_B)
        integrity.sync(app)  # in the tree, not yet signed
    finally:
        app.close()
    attacker(ledger_url, ["UPDATE stored_events SET topic = 'ledger.events:PhysicianDeregistered' WHERE rowid = 6"])
    report = _fails_at(ledger_url, keys[1], 6, "after the last signed checkpoint")
    assert report.checkpoints_verified == 1


def test_storage_and_node_store_altered_together_still_fail(signed_sqlite: str, keys: tuple[str, str]) -> None:
    """The node store is never trusted for roots: rewriting it to match does not hide a change."""
    con = sqlite3.connect(signed_sqlite)
    for t in ("stored_events_no_update", "ledger_merkle_nodes_no_update"):
        con.execute(f"DROP TRIGGER {t}")
    con.execute("UPDATE stored_events SET state = CAST(state || x'00' AS BLOB) WHERE rowid = 2")
    pos, oid, ver, topic, state = con.execute(
        "SELECT rowid, originator_id, originator_version, topic, state FROM stored_events WHERE rowid = 2"
    ).fetchone()
    forged = merkle.leaf_hash(integrity.leaf_bytes(pos, UUID(oid), ver, topic, state))
    con.execute("UPDATE ledger_merkle_nodes SET hash = ? WHERE level = 0 AND idx = 1", (forged,))
    con.commit()
    con.close()
    report = _verify(signed_sqlite, keys[1])
    assert not report.ok
    d = report.first_disagreement
    assert d is not None and not d.pinpointed and d.position == 1
    assert "first disagreement at or after position 1" in report.message()


def test_an_altered_node_store_alone_is_reported(signed_sqlite: str, keys: tuple[str, str]) -> None:
    con = sqlite3.connect(signed_sqlite)
    con.execute("DROP TRIGGER ledger_merkle_nodes_no_update")
    con.execute("UPDATE ledger_merkle_nodes SET hash = zeroblob(32) WHERE level = 0 AND idx = 2")
    con.commit()
    con.close()
    report = _verify(signed_sqlite, keys[1])
    assert not report.ok and report.first_disagreement is None
    assert "node store disagrees with storage at position 3" in report.message()
    with pytest.raises(IntegrityError):
        report.check()


# --- offline proofs -------------------------------------------------------------------------


def test_prove_needs_a_checkpoint_or_a_key(app: LedgerApplication, keys: tuple[str, str]) -> None:
    record(app, FILE_A)
    with pytest.raises(NotFound, match="no signed checkpoint covers position 3"):
        integrity.prove(app, "I-1")
    bundle = integrity.prove(app, "I-1", keys[0])
    assert len(integrity.stored_checkpoints(app)) == 1
    assert integrity.verify_proof(bundle, [keys[1]]).ok
    record(app, FILE_B)
    with pytest.raises(NotFound):
        integrity.prove(app, "P-1")
    with pytest.raises(NotFound):
        integrity.prove(app, "no-such-decision")


def test_every_kind_of_decision_proves(ledger_url: str, keys: tuple[str, str]) -> None:
    """Each kind's stored state decodes back to the decision shown (plugins' own rules not needed)."""
    bare = pluggy.PluginManager(hookspecs.PROJECT)
    bare.add_hookspecs(hookspecs)
    app = LedgerApplication.open(ledger_url, plugins=bare)
    try:
        _prove_every_kind(app, keys)
    finally:
        app.close()


def _prove_every_kind(app: LedgerApplication, keys: tuple[str, str]) -> None:
    record(app, EXAMPLE_FILE)
    integrity.checkpoint(app, keys[0])
    for d in EXAMPLE_FILE:
        bundle = integrity.load_bundle(integrity.dump_bundle(integrity.prove(app, d["id"])))
        report = integrity.verify_proof(bundle, [keys[1]])
        assert report.ok, (d["id"], report.problems)
        assert report.decision_id == d["id"]
        assert report.tree_size == len(EXAMPLE_FILE)


@pytest.fixture
def proof_file(sqlite_url: str, tmp_path: Path, keys: tuple[str, str]) -> Path:
    """A proof of PEN-1 (with a decimal amount) written to a file; the ledger deleted afterwards."""
    app = LedgerApplication.open(sqlite_url)
    try:
        record(app, FILE_A)
        record(app, FILE_B)
        record(app, FILE_C)
        integrity.checkpoint(app, keys[0])
        bundle = integrity.prove(app, "PEN-1")
    finally:
        app.close()
    for suffix in ("", "-wal", "-shm"):
        Path(sqlite_url + suffix).unlink(missing_ok=True)
    path = tmp_path / "PEN-1.proof.json"
    path.write_text(integrity.dump_bundle(bundle), encoding="utf-8")
    return path


def test_a_proof_verifies_with_no_database(proof_file: Path, keys: tuple[str, str]) -> None:
    bundle = integrity.load_bundle(proof_file.read_text(encoding="utf-8"))
    assert bundle["decision"]["amount_yuan"] == Decimal("1500.50")
    assert bundle["tlog_proof"].startswith("c2sp.org/tlog-proof@v1\nextra ")
    assert "\nindex 8\n" in bundle["tlog_proof"]
    assert "\ndecision-index 9 " in bundle["checkpoint"]  # an extension line: the proof still verifies
    report = integrity.verify_proof(proof_file.read_text(encoding="utf-8"), [keys[1]])
    assert report.ok, report.problems
    assert (report.decision_id, report.position, report.leaf_index, report.tree_size) == ("PEN-1", 9, 8, 9)
    assert report.signers == ["test-ledger"]
    report.check()


def _b64_flip(text: str) -> str:
    raw = bytearray(base64.b64decode(text))
    raw[-1] ^= 1
    return base64.b64encode(bytes(raw)).decode()


def _sig_flip(note: str) -> str:
    body, _, sig_line = note.rstrip("\n").rpartition("\n")
    name, sig = sig_line.rsplit(" ", 1)
    return f"{body}\n{name} {_b64_flip(sig)}\n"


TAMPERS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "proof byte": (lambda b: b["inclusion_proof"].__setitem__(0, _b64_flip(b["inclusion_proof"][0])), "inclusion"),
    "decision field": (lambda b: b["decision"].__setitem__("amount_yuan", Decimal("150.50")), "amount_yuan"),
    "decision id": (lambda b: b["decision"].__setitem__("id", "PEN-2"), "differs"),
    "leaf byte": (lambda b: b.__setitem__("leaf", _b64_flip(b["leaf"])), "inclusion"),
    "position": (lambda b: b.__setitem__("position", 8), "not 8"),
    "leaf index": (lambda b: b.__setitem__("leaf_index", 7), "inclusion"),
    "recorded at": (lambda b: b.__setitem__("recorded_at", "2020-01-01T00:00:00+00:00"), "recorded time"),
    "tlog proof": (lambda b: b.__setitem__("tlog_proof", b["tlog_proof"].replace("index 8", "index 7")), "tlog-proof"),
    "not a bundle": (lambda b: b.__setitem__("format", "something else"), "bundle"),
}


@pytest.mark.parametrize("name", sorted(TAMPERS))
def test_a_tampered_bundle_is_rejected(proof_file: Path, keys: tuple[str, str], name: str) -> None:
    mutate, expected = TAMPERS[name]
    bundle = integrity.load_bundle(proof_file.read_text(encoding="utf-8"))
    mutate(bundle)
    report = integrity.verify_proof(json.loads(integrity.dump_bundle(bundle), parse_float=Decimal), [keys[1]])
    assert not report.ok
    assert report.signature_problem is None
    assert expected in "; ".join(report.problems)
    with pytest.raises(IntegrityError):
        report.check()


def test_a_bundle_with_a_bad_signature_or_the_wrong_key_is_rejected(proof_file: Path, keys: tuple[str, str]) -> None:
    bundle = integrity.load_bundle(proof_file.read_text(encoding="utf-8"))
    forged = copy.deepcopy(bundle)
    forged["checkpoint"] = _sig_flip(bundle["checkpoint"])
    report = integrity.verify_proof(forged, [keys[1]])
    assert report.signature_problem is not None and "invalid signature" in report.signature_problem
    with pytest.raises(SignatureError):
        report.check()
    report = integrity.verify_proof(bundle, [generate_key("test-ledger")[1]])
    assert report.signature_problem is not None and "no signature by a known key" in report.signature_problem
    assert not integrity.verify_proof("not json", [keys[1]]).ok


# --- keys -----------------------------------------------------------------------------------


def test_keygen_writes_a_private_key_only_its_owner_reads(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "ledger.key"
    vkey = integrity.keygen(path, "my-ledger")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().startswith("PRIVATE+KEY+my-ledger+")
    assert Path(f"{path}.pub").read_text().strip() == vkey
    assert integrity.load_signer_key(path).verifier().encode() == vkey
    assert integrity.load_verifier_keys([f"{path}.pub"]) == [vkey]
    with pytest.raises(ConfigurationError, match="refusing to overwrite"):
        integrity.keygen(path, "my-ledger")
    with pytest.raises(ConfigurationError, match="signer"):
        integrity.load_verifier_keys([path])
    os.chmod(path, 0o644)
    with pytest.raises(ConfigurationError, match="readable by others"):
        integrity.load_signer_key(path)
    with pytest.raises(ConfigurationError, match="ledger keygen"):
        integrity.load_signer_key(tmp_path / "missing.key")
    with pytest.raises(ConfigurationError):
        integrity.keygen(tmp_path / "bad.key", "has space")


# --- the decision index, checkpoint rows and identity -----------------------------------------


def _plant(backend: str, decision_id: str, position: int, oid: str) -> str:
    """An index row as a role that may only INSERT can plant it (no trigger dropped)."""
    digest = "x'00'" if backend == "sqlite" else "'\\x00'::bytea"
    return (
        "INSERT INTO ledger_decisions (decision_id, position, originator_id, originator_version, kind, subject, "
        f"effective, digest, target, jurisdiction) VALUES ('{decision_id}', {position}, '{oid}', 1, "
        f"'technology.listed', 'technology:hunan:S03', '2018-11-19', {digest}, NULL, 'hunan')"
    )


def test_a_planted_index_row_is_caught_and_blocks_nothing_silently(
    signed_ledger: str, keys: tuple[str, str], attacker: Callable[[str, list[str]], None], backend: str
) -> None:
    """Finding 2: INSERT alone (the writer role's privilege) planted a row that blocked a real
    import ("already recorded (position 99999)") and made ``show`` display another decision."""
    app = LedgerApplication.open(signed_ledger)
    try:
        s02 = app.store.decision_rows(ids=["T-S02"])[0]  # position 8
    finally:
        app.close()
    oid = s02.originator_id.hex if backend == "sqlite" else str(s02.originator_id)
    attacker(signed_ledger, [_plant(backend, "T-S03", 99999, oid), _plant(backend, "FAKE-1", 99998, oid)])
    report = _verify(signed_ledger, keys[1])
    assert not report.ok
    assert "the row of 'FAKE-1' names position 99998, where there is no event (planted)" in report.message()
    assert "the row of 'T-S03' names position 99999" in report.message()
    with pytest.raises(IntegrityError, match="decision index"):
        report.check()
    app = LedgerApplication.open(signed_ledger)
    try:
        with pytest.raises(IntegrityError, match=r"'T-S03' is at position 99999, but there is no event there.*verify"):
            record(app, [_tech("T-S03", "S03", "三级及以上咽喉科内镜诊疗技术")])
        with pytest.raises(IntegrityError, match="FAKE-1"):
            app.decision("FAKE-1")
        assert app.decision("T-S02").record.id == "T-S02"
    finally:
        app.close()


INDEX_EDITS = {
    "deleted": ("DELETE FROM ledger_decisions WHERE position = 6", "no row for the event at position 6"),
    "renamed": ("UPDATE ledger_decisions SET decision_id = 'P-9' WHERE position = 6", "decision_id 'P-9'"),
    "re-jurisdictioned": (
        "UPDATE ledger_decisions SET jurisdiction = 'chongqing' WHERE position = 9",
        "jurisdiction 'chongqing' (the event says",
    ),
    "other digest": (
        "UPDATE ledger_decisions SET digest = (SELECT digest FROM ledger_decisions WHERE position = 1) "
        "WHERE position = 2",
        "the row at position 2 ('T-S14') disagrees with its event: digest",
    ),
    "other effective": (
        "UPDATE ledger_decisions SET effective = '2001-01-01' WHERE position = 3",
        "effective '2001-01-01' (the event says '2003-09-18')",
    ),
    "other kind": ("UPDATE ledger_decisions SET kind = 'use.stopped' WHERE position = 7", "kind 'use.stopped'"),
    "other subject": (
        "UPDATE ledger_decisions SET subject = 'institution:X' WHERE position = 4",
        "subject 'institution:X'",
    ),
}


@pytest.mark.parametrize("edit", sorted(INDEX_EDITS))
def test_every_index_edit_is_caught_by_verify(
    signed_ledger: str, keys: tuple[str, str], attacker: Callable[[str, list[str]], None], edit: str
) -> None:
    """Finding 2: with the triggers dropped, deleting, renaming or re-jurisdictioning index rows
    hid decisions or let a second one with the same id in, and ``verify`` exited 0."""
    sql, reason = INDEX_EDITS[edit]
    attacker(signed_ledger, [sql])
    report = _verify(signed_ledger, keys[1])
    assert not report.ok and report.first_disagreement is None  # the log itself is intact
    assert reason in report.message(), report.message()
    assert report.index_signed == 0  # the signed digest disagreed: every row recomputed, to name it
    with pytest.raises(IntegrityError, match="decision index"):
        report.check()


def test_a_deleted_index_row_no_longer_lets_a_second_decision_in(
    signed_ledger: str, keys: tuple[str, str], attacker: Callable[[str, list[str]], None]
) -> None:
    attacker(signed_ledger, ["DELETE FROM ledger_decisions WHERE position = 2"])
    app = LedgerApplication.open(signed_ledger)
    try:
        record(app, [_tech("T-S14", "S14", "另一个名字")])  # accepted: the index no longer knows T-S14
    finally:
        app.close()
    assert "no row for the event at position 2" in _verify(signed_ledger, keys[1]).message()


def _delete_checkpoints(url: str, attacker: Callable[[str, list[str]], None], where: str = "") -> None:
    attacker(url, [f"DELETE FROM ledger_checkpoints {where}".strip()])


def test_with_every_checkpoint_deleted_verify_says_so_and_strict_fails(
    signed_ledger: str, keys: tuple[str, str], attacker: Callable[[str, list[str]], None]
) -> None:
    """Finding 6: deleting every checkpoint made ``verify --key`` pass ("0 of 0")."""
    _delete_checkpoints(signed_ledger, attacker)
    report = _verify(signed_ledger, keys[1])
    assert report.ok and report.checkpoints_total == 0  # nothing disagrees...
    assert any("no signed checkpoint: none of the 9 records" in w for w in report.warnings)  # ...but it is said
    report.check()
    with pytest.raises(IntegrityError, match="no signed checkpoint"):
        report.check(strict=True)


def test_records_after_the_last_checkpoint_are_said_and_strict_fails(signed_ledger: str, keys: tuple[str, str]) -> None:
    """Finding 10: records after the last checkpoint were unprotected and ``verify`` said nothing."""
    app = LedgerApplication.open(signed_ledger)
    try:
        record(app, [_tech("T-S03", "S03", "三级及以上咽喉科内镜诊疗技术"), _tech("T-S04", "S04", "四")])
        report = integrity.verify(app, keys=[keys[1]])
        assert report.ok
        assert report.warnings == [
            "2 records (positions 10 on) are after the last verified checkpoint: no signature covers them yet "
            "(`ledger checkpoint` signs them)"
        ]
        with pytest.raises(IntegrityError, match="2 records"):
            report.check(strict=True)
        integrity.checkpoint(app, keys[0])
        report = integrity.verify(app, keys=[keys[1]])
        assert report.warnings == []
        report.check(strict=True)
        unsigned = integrity.verify(app)
        with pytest.raises(IntegrityError, match="give --key"):
            unsigned.check(strict=True)
    finally:
        app.close()


def test_checkpoint_refuses_another_key_unless_rotating(app: LedgerApplication, keys: tuple[str, str]) -> None:
    """Finding 6: ``checkpoint`` signed silently with a different key."""
    record(app, FILE_A)
    integrity.checkpoint(app, keys[0])
    other, other_pub = generate_key("test-ledger")  # same name, another key
    record(app, FILE_B)
    with pytest.raises(ConfigurationError, match="--rotate-key"):
        integrity.checkpoint(app, other)
    assert len(integrity.stored_checkpoints(app)) == 1
    integrity.checkpoint(app, other, rotate_key=True)
    with pytest.raises(ConfigurationError, match="not by this key"):
        integrity.checkpoint(app, keys[0])  # the old key is not the log's any more
    report = integrity.verify(app, keys=[keys[1], other_pub])
    assert report.ok and report.checkpoints_verified == 2, report.message()


def test_checkpoint_refuses_when_the_last_row_is_another_keys_or_forged(
    app: LedgerApplication, keys: tuple[str, str]
) -> None:
    record(app, FILE_A)
    integrity.checkpoint(app, keys[0])
    _forge(app, generate_key("test-ledger")[0], 4, integrity.root_at(app, 4))  # same name, another key
    with pytest.raises(ConfigurationError, match="checkpoint #2 was signed by test-ledger"):
        integrity.checkpoint(app, keys[0])
    genuine = integrity.stored_checkpoints(app)[0].note
    altered = genuine.replace("\ntime 2", "\ntime 1", 1)  # claims this key's signature, which no longer verifies
    assert altered != genuine
    db, root, origin = Database(app.store), integrity.root_at(app, 4), integrity.default_origin(app)
    with db.transaction() as c:
        c.execute(
            f"INSERT INTO {db.table('ledger_checkpoints')} (seq, size, root, time, origin, note) "
            "VALUES (3, 4, ?, '2026-01-01T00:00:00Z', ?, ?)",
            (root, origin, altered),
        )
    with pytest.raises(IntegrityError, match="checkpoint #3 names this key but its signature does not verify"):
        integrity.checkpoint(app, keys[0])


def test_checkpoint_refuses_another_origin_unless_asked(app: LedgerApplication, keys: tuple[str, str]) -> None:
    """Finding 6: ``checkpoint`` signed a rewritten log under a new origin without a word."""
    record(app, FILE_A)
    integrity.checkpoint(app, keys[0], "example.org/ledger")
    with pytest.raises(ConfigurationError, match="--new-origin"):
        integrity.checkpoint(app, keys[0], "example.org/another")
    assert integrity.checkpoint(app, keys[0], "example.org/ledger").startswith("example.org/ledger\n")
    note = integrity.checkpoint(app, keys[0], "example.org/another", new_origin=True)
    assert note.startswith("example.org/another\n")


@pytest.mark.parametrize(
    "origin",
    ["", "two\nlines", "with space", "a+b", "tab\there", "x" * 256, "right\u202eleft", "zero\u200bwidth", "del\x7f"],
)
def test_origin_lines_are_validated(app: LedgerApplication, keys: tuple[str, str], origin: str) -> None:
    """C2SP tlog-checkpoint: non-empty, no white space or '+'; signed-note: no control character;
    tlog-cosignature: at most 255 bytes."""
    record(app, FILE_A)
    with pytest.raises(ConfigurationError, match="origin"):
        integrity.checkpoint(app, keys[0], origin)
    assert integrity.stored_checkpoints(app) == []
    assert integrity.checkpoint(app, keys[0], "例子.中国/ledger-" + "x" * 200).startswith("例子.中国/")


CHECKPOINT_ROW_EDITS = {
    "size": ("UPDATE ledger_checkpoints SET size = 3 WHERE seq = 1", "size 3 (the note says 4)"),
    "time": (
        "UPDATE ledger_checkpoints SET time = '2030-01-01T00:00:00Z' WHERE seq = 2",
        "checkpoint #2: its row disagrees with its signed note: time '2030-01-01T00:00:00Z'",
    ),
    "origin": ("UPDATE ledger_checkpoints SET origin = 'example.org/x' WHERE seq = 1", "origin 'example.org/x'"),
}


@pytest.mark.parametrize("edit", sorted(CHECKPOINT_ROW_EDITS))
def test_a_checkpoint_row_that_disagrees_with_its_note_is_caught(
    signed_ledger: str, keys: tuple[str, str], attacker: Callable[[str, list[str]], None], edit: str
) -> None:
    """Finding 6: the row's ``time`` and ``size`` were not compared with the signed note."""
    sql, reason = CHECKPOINT_ROW_EDITS[edit]
    attacker(signed_ledger, [sql])
    report = _verify(signed_ledger, keys[1])
    assert not report.ok and reason in report.message(), report.message()


def test_a_size_that_is_not_a_number_is_a_disagreement_not_a_traceback(
    signed_sqlite: str, keys: tuple[str, str]
) -> None:
    con = sqlite3.connect(signed_sqlite)
    con.execute("DROP TRIGGER ledger_checkpoints_no_update")
    con.execute("UPDATE ledger_checkpoints SET size = 'abc', time = x'ff' WHERE seq = 2")
    con.commit()
    con.close()
    report = _verify(signed_sqlite, keys[1])
    assert not report.ok
    assert "checkpoint #2: its size 'abc' is not a number" in report.message()
    assert "checkpoint #2: its time is not UTF-8 text" in report.message()
    assert report.checkpoints_verified == 2  # the signed notes themselves still verify
    app = LedgerApplication.open(signed_sqlite)
    try:
        with pytest.raises(IntegrityError, match="size 'abc' is not a number: refusing to sign"):
            integrity.checkpoint(app, keys[0])
        assert [cp.size for cp in integrity.stored_checkpoints(app)] == [4, -1]
    finally:
        app.close()


def _rewrite_and_rebuild_tree(url: str, attacker: Callable[[str, list[str]], None], backend: str) -> None:
    """What an attacker with the database does to hide a rewrite: change a record, then empty the
    tree tables so that the next sync builds a tree over the rewritten log."""
    if backend == "sqlite":
        change = (
            "UPDATE stored_events SET state = CAST(substr(state, 1, 10) || x'58' || substr(state, 12) AS BLOB) "
            "WHERE rowid = 3"
        )
    else:
        change = "UPDATE stored_events SET state = overlay(state placing '\\x58'::bytea from 11 for 1) WHERE rowid = 3"
    frontier = "x'0000000000000000'" if backend == "sqlite" else "'\\x0000000000000000'::bytea"
    attacker(
        url,
        [
            change,
            "DELETE FROM ledger_merkle_nodes",
            "DELETE FROM ledger_merkle_leaves",
            f"UPDATE ledger_merkle_tree SET size = 0, last_position = 0, frontier = {frontier}",
        ],
    )


def test_a_remaining_checkpoint_stops_signing_a_rewritten_log(
    signed_ledger: str, keys: tuple[str, str], attacker: Callable[[str, list[str]], None], backend: str
) -> None:
    """Finding 6: with checkpoints deleted, ``checkpoint`` signed a rewritten log. Whenever one
    checkpoint remains, the rewrite is refused; with none left, the ledger alone cannot tell (a
    checkpoint kept outside it can: docs/reliability.md)."""
    app = LedgerApplication.open(signed_ledger)
    try:
        outside = integrity.stored_checkpoints(app)[0].note
    finally:
        app.close()
    _delete_checkpoints(signed_ledger, attacker, "WHERE seq = 2")
    _rewrite_and_rebuild_tree(signed_ledger, attacker, backend)
    app = LedgerApplication.open(signed_ledger)
    try:
        with pytest.raises(IntegrityError, match="not consistent with checkpoint #1"):
            integrity.checkpoint(app, keys[0])
    finally:
        app.close()
    _delete_checkpoints(signed_ledger, attacker)
    app = LedgerApplication.open(signed_ledger)
    try:
        # Nothing left in the ledger to contradict the tree; only because this rewrite left a state
        # no reader takes (a field renamed) does checkpoint's check of the index rows it would
        # cover refuse it, naming the position. A well-formed rewrite would be signed.
        with pytest.raises(IntegrityError, match=r"position 3 cannot be read.*refusing to sign"):
            integrity.checkpoint(app, keys[0])
        alone = integrity.verify(app, keys=[keys[1]])
        assert not alone.ok and "position 3 cannot be read" in alone.message()
        caught = integrity.verify(app, [outside], [keys[1]])  # the checkpoint an auditor kept
        assert not caught.ok and "given checkpoint 1 (size 4" in caught.message()
    finally:
        app.close()


# --- the decision index under the checkpoints ------------------------------------------------


def _index_bytes_from_events(app: LedgerApplication) -> list[tuple[int, bytes]]:
    """Each event's index row as the import derives it, in ``index_row_bytes``' form (the
    reference definition of what a checkpoint signs), by position."""
    log = tables.open_log(app)
    with log.db.transaction(write=False) as c:
        derive = decision_index.IndexDeriver(c, log, app)
        sql = f"SELECT {log.position}, originator_id, originator_version, topic, state FROM {log.events} ORDER BY 1"
        out = []
        for position, oid, version, topic, state in c.execute(sql).fetchall():
            decision_id, kind, subject, effective, digest, target, jurisdiction = derive.row(topic, state)
            row = (position, decision_id, UUID(str(oid)), version, kind, subject, effective, digest, target)
            out.append((position, integrity.index_row_bytes(*row, jurisdiction)))
    return out


def _index_lines(app: LedgerApplication) -> list[tuple[int, bytes] | None]:
    return [signing.unverified(cp.note).index for cp in integrity.stored_checkpoints(app)]


def test_each_checkpoint_signs_the_digest_of_the_index_rows_recomputed_from_the_events(
    signed_ledger: str, keys: tuple[str, str]
) -> None:
    """The digest chain of docs/reliability.md: D_k = SHA-256(D_{k-1} ‖ the rows after P_{k-1} up
    to P_k), each row's bytes recomputed here from its event, not read from the index."""
    app = LedgerApplication.open(signed_ledger)
    try:
        rows = _index_bytes_from_events(app)
        lines = _index_lines(app)
        report = integrity.verify(app, keys=[keys[1]])
    finally:
        app.close()
    assert [line[0] for line in lines if line] == [rows[3][0], rows[8][0]]  # positions 4 and 9
    d1 = hashlib.sha256(integrity.INDEX_SEED + b"".join(b for p, b in rows if p <= lines[0][0])).digest()
    d2 = hashlib.sha256(d1 + b"".join(b for p, b in rows if p > lines[0][0])).digest()
    assert (lines[0][1], lines[1][1]) == (d1, d2)
    # verify --key: the rows are hashed as stored against the signed digest, none recomputed
    assert report.ok, report.message()
    assert (report.index_rows, report.index_signed) == (9, 9)
    assert "9 decision index rows checked (9 by a signed digest)" in report.summary()


def test_an_index_row_edited_under_the_signed_digest_is_named(
    signed_ledger: str, keys: tuple[str, str], attacker: Callable[[str, list[str]], None]
) -> None:
    """The fast path trusts no row: the digest disagrees, every row is recomputed, and the edited
    ones are named as before (one under each checkpoint here)."""
    attacker(
        signed_ledger,
        [
            "UPDATE ledger_decisions SET subject = 'T-S99' WHERE position = 2",
            "UPDATE ledger_decisions SET jurisdiction = 'chongqing' WHERE position = 7",
        ],
    )
    report = _verify(signed_ledger, keys[1])
    assert not report.ok and report.first_disagreement is None
    assert "the row at position 2 ('T-S14') disagrees with its event: subject 'T-S99'" in report.message()
    assert "the row at position 7" in report.message() and "jurisdiction 'chongqing'" in report.message()
    assert report.index_signed == 0


def test_a_deleted_earlier_checkpoint_breaks_the_index_chain(
    signed_ledger: str, keys: tuple[str, str], attacker: Callable[[str, list[str]], None]
) -> None:
    """Each link starts where the previous checkpoint's line ended: with checkpoint #1 gone, the
    rows no longer hash to #2's digest though each agrees with its event, and that is said."""
    _delete_checkpoints(signed_ledger, attacker, "WHERE seq = 1")
    report = _verify(signed_ledger, keys[1])
    assert not report.ok
    assert "its rows up to position 9 do not hash to the digest signed in checkpoint #2" in report.message()


def test_checkpoint_refuses_when_the_index_rows_it_would_cover_disagree(
    ledger_url: str, keys: tuple[str, str], attacker: Callable[[str, list[str]], None]
) -> None:
    """A checkpoint recomputes the rows of the records it newly covers and signs only if each
    agrees with its event; the rows an earlier checkpoint covered are not read again (their
    digest is signed: ``verify`` checks them)."""
    _signed(ledger_url, keys[0])  # two checkpoints, up to position 9
    app = LedgerApplication.open(ledger_url)
    try:
        record(app, [_tech("T-S03", "S03", "三级及以上咽喉科内镜诊疗技术"), _tech("T-S04", "S04", "四")])
    finally:
        app.close()
    attacker(ledger_url, ["UPDATE ledger_decisions SET kind = 'technology.delisted' WHERE position = 11"])
    app = LedgerApplication.open(ledger_url)
    try:
        with pytest.raises(IntegrityError, match=r"positions 10 to 11\).*the row at position 11 \('T-S04'\).*refusing"):
            integrity.checkpoint(app, keys[0])
        assert len(integrity.stored_checkpoints(app)) == 2  # nothing signed
    finally:
        app.close()
    attacker(
        ledger_url,
        [
            "UPDATE ledger_decisions SET kind = 'technology.listed' WHERE position = 11",  # put back
            "UPDATE ledger_decisions SET subject = 'T-S99' WHERE position = 2",  # under checkpoint #1
        ],
    )
    app = LedgerApplication.open(ledger_url)
    try:
        integrity.checkpoint(app, keys[0])  # incremental: positions 10 and 11 only
        report = integrity.verify(app, keys=[keys[1]])
    finally:
        app.close()
    assert "the row at position 2 ('T-S14') disagrees with its event" in report.message()


def test_an_old_checkpoint_without_the_index_line_still_verifies(
    signed_ledger: str, keys: tuple[str, str], attacker: Callable[[str, list[str]], None]
) -> None:
    """Checkpoints signed before the decision-index line existed stay valid: the rows they cover
    are recomputed from the events; the next checkpoint then checks and signs the whole index."""
    app = LedgerApplication.open(signed_ledger)
    try:
        stored = integrity.stored_checkpoints(app)
    finally:
        app.close()
    updates = []
    for cp in stored:
        old = signing.unverified(cp.note)
        plain = Checkpoint(old.origin, old.size, old.root, tuple(x for x in old.extensions if x.startswith("time ")))
        note = sign(plain, keys[0]).replace("'", "''")
        updates.append(f"UPDATE ledger_checkpoints SET note = '{note}' WHERE seq = {cp.seq}")
    attacker(signed_ledger, updates)
    app = LedgerApplication.open(signed_ledger)
    try:
        assert _index_lines(app) == [None, None]
        report = integrity.verify(app, keys=[keys[1]])
        assert report.ok, report.message()
        assert (report.checkpoints_verified, report.index_rows, report.index_signed) == (2, 9, 0)
        record(app, [_tech("T-S03", "S03", "三级及以上咽喉科内镜诊疗技术")])
        integrity.checkpoint(app, keys[0])  # no index line before: every row checked, then signed
        assert _index_lines(app)[-1] is not None
        report = integrity.verify(app, keys=[keys[1]])
        assert report.ok, report.message()
        assert (report.index_rows, report.index_signed) == (10, 10)
    finally:
        app.close()


def test_verify_full_recomputes_every_row(signed_ledger: str, keys: tuple[str, str], tmp_path: Path) -> None:
    """``--full`` (and no ``--key``: no verified signature to trust a digest by) recompute."""
    vkey = tmp_path / "ledger.pub"
    vkey.write_text(keys[1] + "\n", encoding="utf-8")
    fast = run_cli(["verify", "--key", str(vkey), "--strict"], signed_ledger)
    full = run_cli(["verify", "--key", str(vkey), "--strict", "--full"], signed_ledger)
    assert (fast.exit_code, full.exit_code) == (0, 0), fast.stderr + full.stderr
    assert "9 decision index rows checked (9 by a signed digest)" in fast.stdout
    assert "9 decision index rows checked," in full.stdout
    app = LedgerApplication.open(signed_ledger)
    try:
        assert integrity.verify(app).index_signed == 0
        assert integrity.verify(app, keys=[keys[1]], full=True).index_signed == 0
    finally:
        app.close()


def test_the_helper_process_hashes_the_index_as_this_one(signed_sqlite: str) -> None:
    """``verify``'s helper (``python -I ledger/indexhash.py``) gives the digest and row count the
    verifying process computes, for the chain of the stored checkpoints."""
    app = LedgerApplication.open(signed_sqlite)
    try:
        log = tables.open_log(app)
        lines = _index_lines(app)
        chain = [decision_index.IndexLink(f"#{k}", *line) for k, line in enumerate(lines, 1) if line]
        with log.db.transaction(write=False) as c:
            helper = readahead.IndexHelper.start(c, log, chain, 3)
            here = indexhash.chain(decision_index.index_fetch(c, log), [link.position for link in chain], 3)
    finally:
        app.close()
    if helper is None:
        pytest.skip("one core: no helper process")
    assert helper.result() == here
    assert here == (chain[-1].digest, 9)


def test_the_package_exports_what_it_declares() -> None:
    """``ledger.integrity`` re-exports its modules' public names: each declared one is there, once."""
    assert len(set(integrity.__all__)) == len(integrity.__all__)
    assert [name for name in integrity.__all__ if not hasattr(integrity, name)] == []
    assert integrity.verify.__module__ == "ledger.integrity.verification"
