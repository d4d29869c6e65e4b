"""``integrity.verify``'s fast paths give exactly the answers of its careful one.

``verify`` reads SQLite's plain columns and hashes a whole batch in one comprehension, checks the
node store's level-0 hashes a batch at a time, folds the tree a perfect subtree at a time, and on
large logs lets a helper process read and hash ahead. The reference is the same ledger verified
the careful way: one record per batch, storage classes checked by SQLite (``CAST``/``typeof``),
no helper. Whatever an attacker does to the file, both must report the same thing: same records,
same checkpoints verified, same first disagreement (position, leaf, reason), same problems.
"""

from __future__ import annotations

import io
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import astuple
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import integrity
from ledger.application import LedgerApplication
from ledger.checkpoints import generate_key
from ledger.integrity import leaves, readahead, tables, verification
from ledger.sql import Cursor
from tests.strategies import bench_generator

SIGNED = (37, 64, 150, 300)
"""Checkpoint sizes of the base ledger; 20 more records are in the tree, 10 more not yet."""


@pytest.fixture(scope="module")
def keys() -> tuple[str, str]:
    return generate_key("fast-verify-test")


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory, keys: tuple[str, str]) -> Path:
    """A SQLite ledger of 330 decisions: checkpoints at ``SIGNED``, synced to 320."""
    out = io.StringIO()
    assert bench_generator().Generator(330, 3, out).run() == 330
    lines = out.getvalue().splitlines(keepends=True)
    path = tmp_path_factory.mktemp("fast") / "ledger.sqlite"
    app = LedgerApplication.open(path)
    try:
        done = 0
        for size in (*SIGNED, 320, 330):
            app.import_lines(lines[done:size], source="generated")
            done = size
            if size in SIGNED:
                integrity.checkpoint(app, keys[0])
            elif size == 320:
                integrity.sync(app)
    finally:
        app.close()
    return path


TAMPERING: dict[str, list[str]] = {
    "state byte": ["UPDATE stored_events SET state = CAST(substr(state, 1, 7) || x'5a' || substr(state, 9) AS BLOB)"],
    "state as text": ["UPDATE stored_events SET state = CAST('abc' AS TEXT)"],
    "state not utf-8": ["UPDATE stored_events SET state = CAST(x'61ff62' AS TEXT)"],
    "state null": ["UPDATE stored_events SET state = NULL"],
    "id as blob": ["UPDATE stored_events SET originator_id = CAST(originator_id AS BLOB)"],
    "id upper case": ["UPDATE stored_events SET originator_id = upper(originator_id)"],
    "id with spaces": ["UPDATE stored_events SET originator_id = substr(originator_id, 1, 30) || '  '"],
    "id longer": ["UPDATE stored_events SET originator_id = originator_id || '  '"],
    "id hyphenated": [
        "UPDATE stored_events SET originator_id = substr(originator_id, 1, 8) || '-' || substr(originator_id, 9, 4) "
        "|| '-' || substr(originator_id, 13, 4) || '-' || substr(originator_id, 17, 4) || '-' "
        "|| substr(originator_id, 21)"
    ],
    "version as text": ["UPDATE stored_events SET originator_version = CAST(originator_version AS TEXT) || 'x'"],
    "version as real": ["UPDATE stored_events SET originator_version = originator_version + 0.5"],
    "version changed": ["UPDATE stored_events SET originator_version = originator_version + 1000"],
    "topic as blob": ["UPDATE stored_events SET topic = CAST(topic AS BLOB)"],
    "topic changed": ["UPDATE stored_events SET topic = topic || 'X'"],
    "deleted": ["DELETE FROM stored_events"],
    "level 0 altered": ["UPDATE ledger_merkle_nodes SET hash = zeroblob(32)"],
    "level 0 deleted": ["DELETE FROM ledger_merkle_nodes"],
}
"""What an attacker with the file does to one record (``WHERE`` added per example)."""


def _tamper(path: Path, kind: str, position: int) -> None:
    con = sqlite3.connect(path)
    try:
        for table in ("stored_events", "ledger_merkle_nodes"):
            for op in ("update", "delete"):
                con.execute(f"DROP TRIGGER IF EXISTS {table}_no_{op}")
        for sql in TAMPERING[kind]:
            where = f" WHERE level = 0 AND idx = {position - 1}" if "merkle" in sql else f" WHERE rowid = {position}"
            con.execute(sql + where)
        con.commit()
    finally:
        con.close()


HELPED: list[int] = []
"""Batches the helper process handed over, per fast ``verify`` (to show it ran)."""


def _report(path: Path, vkey: str, batch: int, *, careful: bool) -> tuple[Any, ...]:
    app = LedgerApplication.open(path)
    next_batch = readahead.Prefetcher.next
    handed = [0]

    def counting(self: readahead.Prefetcher, low: int) -> tuple[int, int, int, bytes] | None:
        got = next_batch(self, low)
        handed[0] += got is not None
        return got

    try:
        with pytest.MonkeyPatch.context() as mp:
            if careful:
                mp.setattr(verification, "fast_reads", lambda c, log: False)
                mp.setattr(readahead, "WORKER_MIN", 10**18)
            else:
                mp.setattr(readahead, "WORKER_MIN", 0)  # the helper process on this small log too
                mp.setattr(readahead.Prefetcher, "next", counting)
            report = integrity.verify(app, keys=[vkey], batch=batch)
    finally:
        app.close()
    HELPED.append(handed[0])
    fields = astuple(report)
    return (report.ok, report.message(), fields[:5], fields[6:])  # all but the seconds


def _copy(base: Path, path: Path) -> Path:
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{base}{suffix}").exists():
            shutil.copyfile(f"{base}{suffix}", f"{path}{suffix}")
    return path


@pytest.fixture
def copy_of(base: Path, tmp_path: Path) -> Iterator[Path]:
    yield _copy(base, tmp_path / "copy.sqlite")


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kind=st.sampled_from(sorted(TAMPERING)),
    position=st.integers(1, 330),
    batch=st.sampled_from([2, 3, 7, 16, 64, 100, 10_000]),
)
def test_fast_verify_reports_what_the_careful_one_does(
    base: Path, tmp_path: Path, keys: tuple[str, str], kind: str, position: int, batch: int
) -> None:
    path = _copy(base, tmp_path / f"{kind}-{position}-{batch}.sqlite".replace(" ", "_"))
    _tamper(path, kind, position)
    expected = _report(path, keys[1], 1, careful=True)
    assert _report(path, keys[1], batch, careful=False) == expected
    assert _report(path, keys[1], batch, careful=True) == expected


def test_untouched_ledger_verifies_every_way(copy_of: Path, keys: tuple[str, str]) -> None:
    for batch in (1, 5, 64, 10_000):
        for careful in (True, False):
            ok, message, counts, _ = _report(copy_of, keys[1], batch, careful=careful)
            assert ok, message
            assert counts == (330, 320, len(SIGNED), len(SIGNED), 300)
            if not careful:  # the helper read every batch but those a checkpoint ends inside
                assert HELPED[-1] >= (330 // batch) - len(SIGNED), (batch, HELPED[-1])


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(sorted(k for k in TAMPERING if "level 0" not in k)), position=st.integers(1, 330))
def test_fast_reads_hash_exactly_as_the_careful_ones(base: Path, tmp_path: Path, kind: str, position: int) -> None:
    path = _copy(base, tmp_path / f"reads-{kind}-{position}.sqlite".replace(" ", "_"))
    _tamper(path, kind, position)
    app = LedgerApplication.open(path)
    try:
        log = tables.open_log(app)
        with log.db.transaction(write=False) as c:
            assert leaves.fast_reads(c, log)
            fast_rows, fast, complete = leaves.read_leaves(c, log, 0, 2**62, 1000, fast=True)
            rows, careful = leaves.read_leaves_carefully(c, log, 0, 2**62, 1000)
            # the entries of a bundle (``read_leaf_bytes``): the same bytes both ways, or refused both ways
            bundles = [_leaf_bytes_or_error(c, log, fast=way) for way in (True, False)]
    finally:
        app.close()
    assert [r[0] for r in fast_rows] == [r[0] for r in rows]
    assert fast == careful
    assert complete == (None not in careful)
    assert bundles[0] == bundles[1]
    assert (bundles[0] == "refused") == (not complete)


def _leaf_bytes_or_error(c: Cursor, log: tables.Log, *, fast: bool) -> list[bytes] | str:
    try:
        return leaves.read_leaf_bytes(c, log, 0, 1000, fast=fast)
    except ValueError:
        return "refused"
