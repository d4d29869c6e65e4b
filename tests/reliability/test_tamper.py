"""The tamper suite: every table ``verify`` answers for, edited one way at a time.

A ledger of ``EXAMPLE_FILE`` (one decision of every kind, every kind, a correction and a retraction) with one
signed checkpoint, on SQLite and on PostgreSQL. Each edit is what someone holding the database
does: drop the append-only triggers of the table, then UPDATE, DELETE or INSERT (or, for the
duplicate index row, rebuild the table without its unique keys). Then ``ledger verify --key
K.pub --strict`` must exit non-zero, naming what it found. The untouched ledger passes.

The table of edits tried and caught is in docs/reliability.md, "Tamper suite": a test below
checks that every edit here has its row there, so the two cannot drift apart.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple
from urllib.parse import parse_qs, urlparse

import pytest
from conftest import run_cli
from strategies import EXAMPLE_FILE, to_jsonl
from test_postgres_roles import Roles, roles, set_up_as_documented  # noqa: F401 - ``roles`` is a fixture

from ledger import integrity
from ledger.application import LedgerApplication
from ledger.checkpoints import generate_key

ROOT = Path(__file__).resolve().parents[2]
N = len(EXAMPLE_FILE)
NODES = sum(N >> level for level in range(N.bit_length()))
"""The nodes a tree of ``N`` leaves stores: every complete subtree's root, level by level."""
TABLES = (
    "stored_events",
    "ledger_decisions",
    "ledger_merkle_nodes",
    "ledger_merkle_leaves",
    "ledger_merkle_tree",
    "ledger_checkpoints",
)


class Edit(NamedTuple):
    """One edit: its SQL on SQLite and on PostgreSQL (None: the same text), and what verify says."""

    table: str
    sqlite: tuple[str, ...]
    postgres: tuple[str, ...] | None
    caught: str


def same(*sql: str) -> tuple[tuple[str, ...], None]:
    return sql, None


EDITS: dict[str, Edit] = {
    # --- events: the log itself (the Merkle tree over it and the signed checkpoint) ---------
    "events: one byte of a state": Edit(
        "stored_events",
        (
            "UPDATE stored_events SET state = CAST(substr(state, 1, 40) || x'58' || substr(state, 42) AS BLOB) "
            "WHERE rowid = 9",
        ),
        ("UPDATE stored_events SET state = overlay(state placing '\\x58'::bytea from 41 for 1) WHERE rowid = 9",),
        "first disagreement at position 9",
    ),
    "events: topic": Edit(
        "stored_events",
        *same("UPDATE stored_events SET topic = (SELECT topic FROM stored_events WHERE rowid = 28) WHERE rowid = 14"),
        "first disagreement at position 14",
    ),
    "events: version": Edit(
        "stored_events",
        *same("UPDATE stored_events SET originator_version = originator_version + 7 WHERE rowid = 15"),
        "first disagreement at position 15",
    ),
    "events: delete one": Edit(
        "stored_events", *same("DELETE FROM stored_events WHERE rowid = 20"), "the record at position 20 is missing"
    ),
    "events: insert one": Edit(
        "stored_events",
        *same(
            "INSERT INTO stored_events (originator_id, originator_version, topic, state) SELECT originator_id, "
            "originator_version + 50, topic, state FROM stored_events WHERE rowid = 26"
        ),
        f"no row for the event at position {N + 1}",
    ),
    # --- the decision index ---------------------------------------------------------------
    "index: delete a row": Edit(
        "ledger_decisions",
        *same("DELETE FROM ledger_decisions WHERE position = 5"),
        "no row for the event at position 5",
    ),
    "index: rename an id": Edit(
        "ledger_decisions",
        *same("UPDATE ledger_decisions SET decision_id = 'EX-99' WHERE position = 7"),
        "the row at position 7 ('EX-99') disagrees with its event: decision_id 'EX-99' (the event says 'EX-07')",
    ),
    "index: change a jurisdiction": Edit(
        "ledger_decisions",
        *same("UPDATE ledger_decisions SET jurisdiction = 'chongqing' WHERE position = 26"),
        "jurisdiction 'chongqing' (the event says",
    ),
    "index: change a digest": Edit(
        "ledger_decisions",
        *same(
            "UPDATE ledger_decisions SET digest = (SELECT digest FROM ledger_decisions WHERE position = 9) "
            "WHERE position = 10"
        ),
        "the row at position 10 ('EX-10') disagrees with its event: digest",
    ),
    "index: change a correction's target": Edit(
        "ledger_decisions",
        *same("UPDATE ledger_decisions SET target = 'EX-01' WHERE position = 32"),
        "target 'EX-01' (the event says",
    ),
    "index: insert an extra row (INSERT only)": Edit(
        "ledger_decisions",
        (
            "INSERT INTO ledger_decisions SELECT 'EX-34', 99999, originator_id, originator_version, kind, subject, "
            "effective, digest, target, jurisdiction FROM ledger_decisions WHERE position = 1",
        ),
        None,
        "the row of 'EX-34' names position 99999, where there is no event (planted)",
    ),
    "index: duplicate a row (unique keys dropped)": Edit(
        "ledger_decisions",
        (
            "CREATE TABLE copied AS SELECT * FROM ledger_decisions",
            "DROP TABLE ledger_decisions",
            "ALTER TABLE copied RENAME TO ledger_decisions",
            "INSERT INTO ledger_decisions SELECT * FROM ledger_decisions WHERE position = 3",
        ),
        (
            "ALTER TABLE ledger_decisions DROP CONSTRAINT ledger_decisions_pkey",
            "ALTER TABLE ledger_decisions DROP CONSTRAINT ledger_decisions_position_key",
            "INSERT INTO ledger_decisions SELECT * FROM ledger_decisions WHERE position = 3",
        ),
        "a second row ('EX-03') for the event at position 3",
    ),
    # --- the Merkle node store, leaf map and tree state ---------------------------------------
    "nodes: a leaf hash": Edit(
        "ledger_merkle_nodes",
        ("UPDATE ledger_merkle_nodes SET hash = zeroblob(32) WHERE level = 0 AND idx = 11",),
        ("UPDATE ledger_merkle_nodes SET hash = decode(repeat('00', 32), 'hex') WHERE level = 0 AND idx = 11",),
        "node store disagrees with storage at position 12",
    ),
    "nodes: an interior node": Edit(
        "ledger_merkle_nodes",
        ("UPDATE ledger_merkle_nodes SET hash = zeroblob(32) WHERE level = 2 AND idx = 3",),
        ("UPDATE ledger_merkle_nodes SET hash = decode(repeat('00', 32), 'hex') WHERE level = 2 AND idx = 3",),
        "node (2, 3) is not the hash of its two children",
    ),
    "nodes: delete one": Edit(
        "ledger_merkle_nodes",
        *same("DELETE FROM ledger_merkle_nodes WHERE level = 1 AND idx = 4"),
        "the Merkle node store lacks nodes of level 1",
    ),
    "nodes: insert one": Edit(
        "ledger_merkle_nodes",
        *same(
            "INSERT INTO ledger_merkle_nodes SELECT 0, 40, hash FROM ledger_merkle_nodes WHERE level = 0 AND idx = 0"
        ),
        f"the Merkle node store holds {NODES + 1} nodes where a tree of {N} has {NODES}",
    ),
    "leaf map: swap two leaves": Edit(
        "ledger_merkle_leaves",
        *same(
            "UPDATE ledger_merkle_leaves SET leaf_index = 1000 WHERE leaf_index = 4",
            "UPDATE ledger_merkle_leaves SET leaf_index = 4 WHERE leaf_index = 5",
            "UPDATE ledger_merkle_leaves SET leaf_index = 5 WHERE leaf_index = 1000",
        ),
        "the Merkle leaf map sends position 5 to leaf 5",
    ),
    "tree state: frontier": Edit(
        "ledger_merkle_tree",
        (
            "UPDATE ledger_merkle_tree SET frontier = "
            "CAST(substr(frontier, 1, 8) || zeroblob(32) || substr(frontier, 41) AS BLOB)",
        ),
        (
            "UPDATE ledger_merkle_tree SET frontier = "
            "overlay(frontier placing decode(repeat('00', 32), 'hex') from 9 for 32)",
        ),
        "the stored Merkle frontier is not the tree's",
    ),
    # --- the checkpoints -------------------------------------------------------------------
    "checkpoints: the signed note": Edit(
        "ledger_checkpoints",
        *same("UPDATE ledger_checkpoints SET note = replace(note, 'time 2', 'time 1')"),
        "invalid signature",
    ),
    "checkpoints: size": Edit(
        "ledger_checkpoints",
        *same("UPDATE ledger_checkpoints SET size = 32"),
        f"its row disagrees with its signed note: size 32 (the note says {N})",
    ),
    "checkpoints: time": Edit(
        "ledger_checkpoints",
        *same("UPDATE ledger_checkpoints SET time = '2030-01-01T00:00:00Z'"),
        "its row disagrees with its signed note: time '2030-01-01T00:00:00Z'",
    ),
    "checkpoints: delete all": Edit(
        "ledger_checkpoints",
        *same("DELETE FROM ledger_checkpoints"),
        f"no signed checkpoint: none of the {N} records is covered by a signature",
    ),
}


@pytest.fixture(scope="module")
def keys() -> tuple[str, str]:
    return generate_key("tamper-suite")


@pytest.fixture
def history(ledger_url: str, keys: tuple[str, str], tmp_path: Path) -> tuple[str, Path]:
    """EXAMPLE_FILE recorded and signed; the ledger's URL and its verifier key file."""
    app = LedgerApplication.open(ledger_url)
    try:
        app.import_lines(to_jsonl(EXAMPLE_FILE).splitlines(), source="example.jsonl")
        integrity.checkpoint(app, keys[0])
    finally:
        app.close()
    vkey = tmp_path / "ledger.pub"
    vkey.write_text(keys[1] + "\n", encoding="utf-8")
    return ledger_url, vkey


@pytest.fixture
def tamper(backend: str, request: pytest.FixtureRequest) -> Iterator[Callable[[str, Edit], None]]:
    """Applies an edit as someone holding the database: the append-only triggers dropped first."""

    def on_sqlite(url: str, edit: Edit) -> None:
        con = sqlite3.connect(url)
        try:
            for table in TABLES:
                for op in ("update", "delete"):
                    con.execute(f"DROP TRIGGER IF EXISTS {table}_no_{op}")
            for sql in edit.sqlite:
                con.execute(sql)
            con.commit()
        finally:
            con.close()

    def on_postgres(url: str, edit: Edit) -> None:
        schema = parse_qs(urlparse(url).query)["schema"][0]
        with request.getfixturevalue("postgres_server").connect() as con:
            con.execute(f'SET search_path TO "{schema}"')
            for table in TABLES:
                con.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            for sql in edit.postgres or edit.sqlite:
                con.execute(sql.replace("rowid", "notification_id"))

    yield on_sqlite if backend == "sqlite" else on_postgres


def _verify(url: str, vkey: Path) -> tuple[int, str]:
    result = run_cli(["verify", "--key", str(vkey), "--strict"], url)
    assert "Traceback" not in result.stderr
    return result.exit_code, result.stderr + result.stdout


def test_the_untouched_ledger_passes_strict_verify(history: tuple[str, Path]) -> None:
    code, out = _verify(*history)
    assert code == 0, out
    # under the signed checkpoint, the index rows are checked against its decision-index digest
    assert f"{N} records, 1 of 1 checkpoints verified, {N} decision index rows checked ({N} by a signed digest)" in out


@pytest.mark.parametrize("name", sorted(EDITS))
def test_every_edit_is_caught(history: tuple[str, Path], tamper: Callable[[str, Edit], None], name: str) -> None:
    url, vkey = history
    edit = EDITS[name]
    tamper(url, edit)
    code, out = _verify(url, vkey)
    assert code != 0, f"{name}: verify passed\n{out}"
    assert edit.caught in out, f"{name}: {out}"


def test_every_edit_has_its_row_in_the_documentation() -> None:
    doc = (ROOT / "docs" / "reliability.md").read_text(encoding="utf-8")
    section = doc.split("## Tamper suite", 1)[1].split("\n## ", 1)[0]
    rows = {m.group(1).strip() for m in re.finditer(r"^\| ([^|]+?) \|", section, flags=re.M)}
    assert set(EDITS) <= rows, sorted(set(EDITS) - rows)


def test_the_writer_roles_insert_alone_plants_nothing_silently(
    roles: Roles,  # noqa: F811 - the documented roles' fixture, imported
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    keys: tuple[str, str],
) -> None:
    """Finding 2, with the privileges of docs/reliability.md's writer (INSERT and SELECT on the
    log's tables, no trigger touched): a planted index row no longer blocks the real decision
    with "already recorded (position 99999)" or shows another one; import and ``show`` stop with
    a clear error pointing to ``verify``, which names the row."""
    set_up_as_documented(roles, monkeypatch)
    url = roles.url(roles.writer)
    first, rest = EXAMPLE_FILE[:-1], EXAMPLE_FILE[-1:]
    (tmp_path / "first.jsonl").write_bytes(to_jsonl(first))
    (tmp_path / "rest.jsonl").write_bytes(to_jsonl(rest))
    (tmp_path / "ledger.pub").write_text(keys[1] + "\n", encoding="utf-8")
    assert run_cli(["import", str(tmp_path / "first.jsonl")], url).exit_code == 0
    planted = rest[0]["id"]
    with roles.connect(roles.writer) as conn:
        conn.execute(
            f'INSERT INTO "{roles.schema}".ledger_decisions SELECT %s, 99999, originator_id, originator_version, '
            f'kind, subject, effective, digest, target, jurisdiction FROM "{roles.schema}".ledger_decisions '
            "WHERE position = 1",
            (planted,),
        )
    imported = run_cli(["import", str(tmp_path / "rest.jsonl")], url)
    assert imported.exit_code == 9, imported.stderr
    assert f"the decision index says '{planted}' is at position 99999, but there is no event there" in imported.stderr
    assert "ledger verify" in imported.stderr and "already recorded" not in imported.stderr
    shown = run_cli(["show", planted], url)
    assert shown.exit_code == 9 and "Traceback" not in shown.stderr
    code, out = _verify(url, tmp_path / "ledger.pub")
    assert code == 9 and f"the row of '{planted}' names position 99999, where there is no event (planted)" in out
