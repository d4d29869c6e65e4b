"""``bench/generate.py`` (issue 8): exactly N valid decisions, the same ones for the same seed;
``bench/run.py``'s storage floors: they copy every row the ledger wrote, and leave the ledger as it was.

Only correctness: the benchmark's speed is measured by ``bench/run.py``, never asserted in a test.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

from ledger.application import LedgerApplication
from projections.views import Views
from tests.strategies import bench_generator, bench_script, opened_ledger


@pytest.fixture(scope="module")
def generate() -> ModuleType:
    return bench_generator()


def _file(generate: ModuleType, n: int, seed: int) -> str:
    out = io.StringIO()
    assert generate.Generator(n, seed, out).run() == n
    return out.getvalue()


def test_deterministic_per_seed_and_exactly_n_lines(generate: ModuleType) -> None:
    first = _file(generate, 3000, 7)
    assert first == _file(generate, 3000, 7)
    assert first != _file(generate, 3000, 8)
    lines = first.splitlines()
    assert len(lines) == 3000
    ids = [json.loads(line)["id"] for line in lines]
    assert len(set(ids)) == len(ids)


def test_a_generated_file_imports_into_an_empty_ledger(generate: ModuleType, tmp_path: Path) -> None:
    text = _file(generate, 4000, 1)
    kinds = Counter(json.loads(line)["kind"] for line in text.splitlines())
    assert kinds.most_common(1)[0][0] == "case.performed"  # the bulk: case-by-case reports
    for kind in ("institution.registered", "physician.registered", "filing.completed", "privilege.granted"):
        assert kinds[kind] > 0, kind
    provinces = {json.loads(line).get("province") for line in text.splitlines()} - {None}
    assert len(provinces) == 31
    app = LedgerApplication.open(tmp_path / "ledger.sqlite")
    try:
        result = app.import_lines(text.splitlines(keepends=True), source="generated")
        assert result.recorded == 4000
        again = app.import_lines(text.splitlines(keepends=True), source="generated")
        assert (again.recorded, again.unchanged) == (0, 4000)
    finally:
        app.close()


def test_the_storage_floors_copy_what_the_ledger_wrote_and_leave_it_as_it_was(
    generate: ModuleType, ledger_url: str, tmp_path: Path
) -> None:
    """``floor-import`` and ``floor-rebuild`` (the writes alone, SQL only) write every record, index
    row and view row the ledger holds into copies, and take the copies away again."""
    run = bench_script("run")
    with opened_ledger(ledger_url) as app:
        app.import_lines([line + "\n" for line in generate.lines(1500, 5)], source="generated")
        views = Views(app)
        views.runner.catch_up()
        before = list(app.export())
        db = views.runner.db
        with db.transaction(write=False) as c:
            if db.dialect == "postgres":
                c.execute("SELECT tablename FROM pg_tables WHERE schemaname = ?", (db.schema,))
            else:
                c.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            tables = [str(t) for (t,) in c.fetchall() if str(t).startswith("view_")]  # the built-in views' names
            view_rows = sum(int(c.execute(f"SELECT COUNT(*) FROM {db.table(t)}").fetchone()[0]) for t in tables)
    imported = run.step_floor_import(ledger_url, str(tmp_path))
    assert (imported["records"], imported["index_rows"]) == (1500, 1500)
    assert imported["rate"] > 0
    rebuilt = run.step_floor_rebuild(ledger_url, str(tmp_path))
    assert rebuilt["records"] == 1500
    assert (rebuilt["tables"], rebuilt["rows"]) == (len(tables), view_rows)
    assert len(tables) >= 9  # a table a view at least
    assert rebuilt["indexes"] >= rebuilt["tables"]
    with opened_ledger(ledger_url) as app:
        assert list(app.export()) == before
    assert not list(tmp_path.glob("floor-*"))
    if run._pg(ledger_url):
        conn = run._pg_connect(ledger_url)
        try:
            left = conn.execute(
                "SELECT COUNT(*) FROM pg_namespace WHERE nspname = %s", (f"{run._schema(ledger_url)}_floor",)
            ).fetchone()[0]
        finally:
            conn.close()
        assert left == 0
    summary = run.summarise(
        {
            "decisions": 1500,
            "database": "sqlite",
            "date": "2026-11-26",
            "steps": {"raw-insert": {"rate": 2 * imported["rate"]}, "floor-import": imported},
        }
    )
    assert summary["import_floor_ratio"] == 0.5


def test_tiles_and_follow_copy_the_whole_log_and_take_the_copy_away(
    generate: ModuleType, ledger_url: str, tmp_path: Path
) -> None:
    """``tiles`` publishes every record under a fresh checkpoint, ``follow`` copies them all into a
    ledger of its own (a SQLite file or a schema beside the ledger), which it removes after."""
    run = bench_script("run")
    with opened_ledger(ledger_url) as app:
        app.import_lines([line + "\n" for line in generate.lines(600, 7)], source="generated")
    tiles = run.step_tiles(ledger_url, str(tmp_path))
    assert (tiles["records"], tiles["files"]) == (600, 2 * 3 + 1)  # 3 level-0 tiles and bundles, 1 level-1 tile
    followed = run.step_follow(ledger_url, str(tmp_path))
    assert followed["records"] == 600 and followed["rate"] > 0
    assert not list(tmp_path.glob("follow-copy*"))
    summary = run.summarise(
        {
            "decisions": 600,
            "database": "sqlite",
            "date": "2026-12-04",
            "steps": {"floor-import": {"rate": 2 * followed["rate"]}, "follow": followed},
        }
    )
    assert summary["follow_ratio"] == 0.5
