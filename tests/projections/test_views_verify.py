"""``ledger verify --views``: every view and every tracked position compared with a rebuild from the log.

A view row edited in the database showed in ``ledger catalog`` (and on the site) while ``verify``
passed: the views were outside what ``verify`` checked. Here each single edit of a row of each
view table — a value changed, a row deleted, a row added, ``known_to`` or ``valid_to`` moved — and
each edit of the tracking table is made to a SQLite and a PostgreSQL ledger, and ``verify
--views`` must exit non-zero naming the view; an untouched ledger, and views that merely lag
behind the log, pass.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pluggy
import pytest

from ledger.application import LedgerApplication
from ledger.decisions import DecisionRecord
from ledger.errors import IntegrityError
from ledger.hookspecs import hookimpl
from ledger.plugins import make_plugin_manager
from ledger.sql import Cursor, Database
from projections.audit import verify_views
from projections.runner import FOREVER, NOW, Projection
from projections.views import Views, builtin_projections
from tests.conftest import PG_URL, run_cli
from tests.strategies import EXAMPLE_FILE, opened_ledger, to_jsonl

INTEGRITY_EXIT = IntegrityError.exit_code
N = len(EXAMPLE_FILE)
"""The example ledger's size: its last position."""


# --- a ledger, and a way to edit its tables behind the ledger's back ---------------------------------


class Tables:
    """Plain SQL on a ledger's database, as someone holding the database file or a role would run it."""

    def __init__(self, url: str) -> None:
        self.postgres = url.startswith("postgresql://")
        if self.postgres:
            import psycopg

            schema = parse_qs(urlparse(url).query)["schema"][0]
            self.conn: Any = psycopg.connect(PG_URL, autocommit=True)
            self.conn.execute(f'SET search_path TO "{schema}"')
            self.schema = schema
        else:
            self.conn = sqlite3.connect(url, isolation_level=None)

    def run(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cursor = self.conn.execute(sql.replace("?", "%s") if self.postgres else sql, params)
        return list(cursor.fetchall()) if cursor.description else []

    def tables(self) -> list[str]:
        if self.postgres:
            rows = self.run(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = ? AND table_type = 'BASE TABLE'",
                (self.schema,),
            )
        else:
            rows = self.run("SELECT name FROM sqlite_master WHERE type = 'table'")
        return sorted(str(r[0]) for r in rows)

    def columns(self, table: str) -> list[str]:
        if self.postgres:
            rows = self.run(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
                "ORDER BY ordinal_position",
                (self.schema, table),
            )
            return [str(r[0]) for r in rows]
        return [str(r[1]) for r in self.run(f"PRAGMA table_info({table})")]

    def rows(self, table: str) -> list[tuple[Any, ...]]:
        return sorted(self.run(f"SELECT * FROM {table}"), key=lambda r: tuple(map(str, r)))

    def where(self, columns: Sequence[str], row: Sequence[Any]) -> tuple[str, list[Any]]:
        """A WHERE clause matching ``row`` exactly (NULLs included)."""
        same = "IS NOT DISTINCT FROM" if self.postgres else "IS"
        return " AND ".join(f'"{c}" {same} ?' for c in columns), list(row)

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        marks = ", ".join("?" * len(columns))
        for row in rows:
            self.run(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", row)

    @contextmanager
    def kept(self, table: str) -> Iterator[list[tuple[Any, ...]]]:
        """The table's rows; whatever the block does to the table is undone when it ends."""
        columns, rows = self.columns(table), self.rows(table)
        try:
            yield rows
        finally:
            self.run(f"DELETE FROM {table}")
            self.insert(table, columns, rows)

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def example(ledger_url: str, tmp_path: Path) -> str:
    """A ledger holding one decision of every kind, its views caught up (as ``ledger import`` leaves them)."""
    path = tmp_path / "example.jsonl"
    path.write_bytes(to_jsonl(EXAMPLE_FILE))
    done = run_cli(["import", str(path)], ledger_url)
    assert done.exit_code == 0, done.stderr
    return ledger_url


@pytest.fixture
def tables(example: str) -> Iterator[Tables]:
    t = Tables(example)
    yield t
    t.close()


def verify_views_cli(url: str) -> tuple[int, str, str]:
    done = run_cli(["verify", "--views"], url)
    return done.exit_code, done.stdout, done.stderr


def view_tables(tables: Tables) -> list[str]:
    """Every table of the built-in views, as the database lists them (each must be covered)."""
    found = [t for t in tables.tables() if t.startswith("view_")]
    for p in builtin_projections():
        assert getattr(p, "table", None) in found, p.name
    return found


# --- an untouched ledger passes; finding 7's edit is caught --------------------------------------------


def test_an_untouched_ledger_passes(example: str) -> None:
    code, out, err = verify_views_cli(example)
    assert code == 0, err
    assert f"views: {len(builtin_projections())} projections" in out
    assert f"equal to a rebuild from the log at position {N}" in out


def test_an_edited_catalog_row_is_shown_by_catalog_and_caught_by_verify_views(example: str, tables: Tables) -> None:
    """The regression: a view row edited in the database changed what ``catalog`` shows while
    ``verify`` passed (it had no way to look at the views)."""
    tables.run("UPDATE view_catalog SET name = ? WHERE key = ? AND known_to = ?", ("伪造技术", "national:G01", NOW))
    shown = run_cli(["catalog", "--province", "hunan", "--as-of", "2020-01-01"], example)
    assert "伪造技术" in shown.stdout  # what a reader is shown comes from the view
    code, _, err = verify_views_cli(example)
    assert code == INTEGRITY_EXIT
    assert "catalog (view_catalog" in err
    assert "key='national:G01'" in err
    assert "name is '伪造技术' in the view, '同种胰岛移植技术' in a rebuild" in err


@pytest.mark.slow
def test_the_exit_code_of_a_real_process(example: str, tables: Tables) -> None:
    """What a shell script sees: ``ledger verify --views`` in a process of its own."""
    ledger = str(Path(sys.executable).parent / "ledger")
    ok = subprocess.run(
        [ledger, "--db", example, "verify", "--views"], check=False, capture_output=True, text=True, timeout=300
    )
    assert ok.returncode == 0, ok.stderr
    tables.run("DELETE FROM view_trainees")
    bad = subprocess.run(
        [ledger, "--db", example, "verify", "--views"], check=False, capture_output=True, text=True, timeout=300
    )
    assert bad.returncode == INTEGRITY_EXIT
    assert "trainees (view_trainees" in bad.stderr and "a row missing" in bad.stderr
    assert "Traceback" not in bad.stderr


# --- each edit of each view table ------------------------------------------------------------------


def _changed(value: Any) -> Any:
    """Another value of the same type: what an edit puts in a column."""
    if isinstance(value, str):
        return value + "†"
    return int(value) + 1


EDITS: dict[str, Callable[[Tables, str, list[str], tuple[Any, ...]], str | None]] = {}
"""edit name → f(tables, table, columns, a row of the table): makes the edit, returns what the
message must contain, or None when the edit does not apply to the table (no such column)."""


def _edit(name: str) -> Callable[[Callable[..., str | None]], Callable[..., str | None]]:
    def register(f: Callable[..., str | None]) -> Callable[..., str | None]:
        EDITS[name] = f
        return f

    return register


@_edit("update a value")
def _update(tables: Tables, table: str, columns: list[str], row: tuple[Any, ...]) -> str | None:
    # The last text column after the first (a value, not the key), not a time bound: those have edits of their own.
    i = max(i for i, v in enumerate(row) if i and isinstance(v, str) and columns[i] not in ("known_to", "valid_to"))
    where, params = tables.where(columns, row)
    tables.run(f'UPDATE {table} SET "{columns[i]}" = ? WHERE {where}', [_changed(row[i]), *params])
    return f"{columns[i]} is "


@_edit("delete a row")
def _delete(tables: Tables, table: str, columns: list[str], row: tuple[Any, ...]) -> str | None:
    where, params = tables.where(columns, row)
    tables.run(f"DELETE FROM {table} WHERE {where}", params)
    return "a row missing, a rebuild has it"


@_edit("insert a row")
def _insert(tables: Tables, table: str, columns: list[str], row: tuple[Any, ...]) -> str | None:
    # A row of the same shape for a key no decision made (the first column: a key or a position).
    forged = (_changed(row[0]) if isinstance(row[0], str) else int(row[0]) + 10_000, *row[1:])
    tables.insert(table, columns, [forged])
    return "a row not in a rebuild from the log"


@_edit("duplicate a row")
def _duplicate(tables: Tables, table: str, columns: list[str], row: tuple[Any, ...]) -> str | None:
    try:
        tables.insert(table, columns, [row])
    except Exception as e:  # a primary key refuses the same row twice: the edit cannot be made
        assert "unique" in str(e).lower(), e
        return None
    return "a row 2× in the view, 1× in a rebuild"


@_edit("move known_to")
def _known_to(tables: Tables, table: str, columns: list[str], row: tuple[Any, ...]) -> str | None:
    if "known_to" not in columns:
        return None
    i = columns.index("known_to")
    # A row the ledger holds true closed at its opening; a closed one opened again (a corrected value back).
    moved = row[columns.index("known_from")] if row[i] == NOW else NOW
    where, params = tables.where(columns, row)
    tables.run(f"UPDATE {table} SET known_to = ? WHERE {where}", [moved, *params])
    return "known_to is "


@_edit("move valid_to")
def _valid_to(tables: Tables, table: str, columns: list[str], row: tuple[Any, ...]) -> str | None:
    if "valid_to" not in columns:
        return None
    moved = "2099-01-01" if row[columns.index("valid_to")] == FOREVER else FOREVER
    where, params = tables.where(columns, row)
    tables.run(f"UPDATE {table} SET valid_to = ? WHERE {where}", [moved, *params])
    return "valid_to is "


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_each_edit_of_each_view_table_is_caught(example: str, tables: Tables, edit: str) -> None:
    projection_of = {}
    for p in builtin_projections():
        for attribute in ("table", "inputs", "totals"):
            if isinstance(name := getattr(p, attribute, None), str):
                projection_of[name] = p.name
    tried = []
    for table in view_tables(tables):
        columns = tables.columns(table)
        with tables.kept(table) as rows:
            assert rows, f"{table} is empty: the example should give every view rows"
            expected = EDITS[edit](tables, table, columns, rows[0])
            if expected is None:
                continue
            tried.append(table)
            code, _, err = verify_views_cli(example)
            assert code == INTEGRITY_EXIT, f"{edit} in {table} not caught"
            lines = [line for line in err.splitlines() if f"({table}, " in line]
            assert lines, err
            assert all(
                line.strip().startswith(f"{projection_of.get(table, '')} ({table}, log up to {N})") for line in lines
            )
            assert any(expected in line for line in lines), err
    assert tried
    assert verify_views_cli(example)[0] == 0  # each table put back as it was: the rebuild's again


# --- the tracking table ----------------------------------------------------------------------------


def test_a_lowered_position_is_caught_for_every_view(example: str, tables: Tables) -> None:
    """Position 0 claims an empty view: every view of the example has rows."""
    for p in builtin_projections():
        with tables.kept("ledger_tracking"):
            tables.run("UPDATE ledger_tracking SET position = 0 WHERE projection = ?", (p.name,))
            code, _, err = verify_views_cli(example)
            assert code == INTEGRITY_EXIT, p.name
            assert f"{p.name} (view_" in err and "log up to 0)" in err
            assert "a row not in a rebuild from the log" in err


def test_a_position_one_record_short_is_caught_where_that_record_shows(example: str, tables: Tables) -> None:
    """Every record has its trail row: the trail one record short is caught by that row. (A view the
    last record did not touch, claimed one record short, is exactly the log up to there: catching
    up again re-reads a record that changes nothing.)"""
    tables.run(f"UPDATE ledger_tracking SET position = {N - 1} WHERE projection = 'trail'")
    code, _, err = verify_views_cli(example)
    assert code == INTEGRITY_EXIT
    assert f"trail (view_trail, log up to {N - 1}): position={N}: a row not in a rebuild from the log" in err


def test_a_lagging_view_passes_and_a_raised_position_is_caught(example: str, tables: Tables) -> None:
    """A view behind the log (its rows and position agree) is sound; its position moved on without
    the rows is not."""
    tables.run("DELETE FROM view_trail WHERE position > 30")
    tables.run("UPDATE ledger_tracking SET position = 30 WHERE projection = 'trail'")
    code, out, err = verify_views_cli(example)
    assert code == 0, err
    assert f"positions 30–{N}" in out
    tables.run("UPDATE ledger_tracking SET position = 32 WHERE projection = 'trail'")
    code, _, err = verify_views_cli(example)
    assert code == INTEGRITY_EXIT
    assert "trail (view_trail, log up to 32): position=31: a row missing, a rebuild has it" in err


TRACKING_EDITS = [
    (f"UPDATE ledger_tracking SET position = {N + 1} WHERE projection = 'filings'",
     f"filings: ledger_tracking says position {N + 1}, but the log ends at {N}"),
    ("UPDATE ledger_tracking SET position = 9000 WHERE projection = 'trail'",
     f"trail: ledger_tracking says position 9000, but the log ends at {N}"),
    ("UPDATE ledger_tracking SET version = 99 WHERE projection = 'cases'",
     "cases: ledger_tracking says version 99"),
    ("DELETE FROM ledger_tracking WHERE projection = 'physicians'",
     "physicians: ledger_tracking has no row for it"),
    ("DROP TABLE ledger_tracking", "trail: ledger_tracking has no row for it, yet its tables exist"),
    ("DROP TABLE view_training_bases", f"training_bases (view_training_bases, log up to {N}): the table is missing"),
    ("ALTER TABLE view_catalog ADD COLUMN note TEXT", f"catalog (view_catalog, log up to {N}): columns differ"),
]  # fmt: skip
"""Edits of the tracking table, and of a view's tables as a whole."""


@pytest.mark.parametrize(("edit", "expected"), TRACKING_EDITS)
def test_each_edit_of_the_tracking_table_is_caught(example: str, tables: Tables, edit: str, expected: str) -> None:
    tables.run(edit)
    code, _, err = verify_views_cli(example)
    assert code == INTEGRITY_EXIT
    assert expected in err


def test_a_position_that_is_no_number_is_caught(example: str, tables: Tables) -> None:
    """SQLite stores what it is given: text in the position column is named, never a traceback.
    PostgreSQL refuses the edit itself (a bigint column), so there is nothing for verify to see."""
    edit = "UPDATE ledger_tracking SET position = 'abc', version = '4\u202e' WHERE projection = 'cases'"
    if tables.postgres:
        import psycopg

        with pytest.raises(psycopg.errors.InvalidTextRepresentation):
            tables.run(edit)
        return
    tables.run(edit)
    code, _, err = verify_views_cli(example)
    assert code == INTEGRITY_EXIT
    assert "cases: ledger_tracking says position 'abc', not a position in the log" in err
    assert "cases: ledger_tracking says version '4\\u202e', the projection is version 4" in err
    assert "Traceback" not in err


def test_a_tracking_row_of_no_enabled_projection_is_reported(example: str, tables: Tables) -> None:
    """A row naming a projection this ledger does not run (a disabled plugin's) answers nothing:
    shown, not an error. Once a projection of that name runs, its view is checked (below)."""
    tables.run("INSERT INTO ledger_tracking (projection, position, version) VALUES ('forged', 12, 1)")
    code, out, err = verify_views_cli(example)
    assert code == 0, err
    assert "not verified: ledger_tracking tracks 'forged' at position 12" in out


def test_differences_are_reported_a_bounded_number_per_table(example: str, tables: Tables) -> None:
    tables.run("DELETE FROM view_trail")
    with opened_ledger(example) as app:
        report = verify_views(app, limit=5)
    trail = [p for p in report.problems if p.startswith("trail (view_trail")]
    assert len(trail) == 6
    assert trail[-1].endswith("more differences after these 5")
    with pytest.raises(IntegrityError, match="view_trail"):
        report.check()


def test_verify_views_leaves_the_ledger_as_it_was(example: str, tables: Tables) -> None:
    """The rebuild goes elsewhere: no table of the ledger changes, no scratch schema stays."""
    before = {t: tables.rows(t) for t in tables.tables()}
    with opened_ledger(example) as app:
        assert verify_views(app).ok
    assert {t: tables.rows(t) for t in tables.tables()} == before
    if tables.postgres:
        left = tables.run("SELECT nspname FROM pg_namespace WHERE nspname LIKE ?", (f"{tables.schema}_verify_%",))
        assert left == []


def test_views_caught_up_while_being_verified_are_compared_where_they_end(
    ledger_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process catching the views up during the rebuild: the scratch follows them there."""
    from projections import audit

    with opened_ledger(ledger_url) as app:
        app.import_lines(to_jsonl(EXAMPLE_FILE[:20]).splitlines(keepends=True), source="first.jsonl")
        Views(app)
        rebuild = audit._rebuild
        calls = []

        def then_more(*args: Any) -> None:
            rebuild(*args)
            if not calls:  # the views move on once the scratch has been built to where they were
                app.import_lines(to_jsonl(EXAMPLE_FILE[20:]).splitlines(keepends=True), source="second.jsonl")
                Views(app)
            calls.append(args[1])

        monkeypatch.setattr(audit, "_rebuild", then_more)
        report = verify_views(app)
        assert report.ok, report.problems
        assert calls[0]["trail"] == 20 and calls[1]["trail"] == N
        assert set(report.positions.values()) == {N}


def test_views_behind_the_log_are_compared_at_their_own_position(ledger_url: str) -> None:
    """Records after the views' position (written by the Python API, no catch-up yet) are not
    expected in them."""
    with opened_ledger(ledger_url) as app:
        app.import_lines(to_jsonl(EXAMPLE_FILE[:20]).splitlines(keepends=True), source="first.jsonl")
        Views(app)  # catches up
        app.import_lines(to_jsonl(EXAMPLE_FILE[20:]).splitlines(keepends=True), source="second.jsonl")
        report = verify_views(app)
        assert report.ok, report.problems
        assert set(report.positions.values()) == {20}
        Views(app)
        assert verify_views(app).positions["trail"] == N


# --- a plugin's own projection -----------------------------------------------------------------------


class PenaltyTotals(Projection):
    """A plugin's own view, not a timeline: the yuan of penalties per institution, as a plugin
    might keep for a report of its own."""

    name = "example_penalties"
    table = "example_penalty_totals"

    def create(self, db: Database, c: Cursor) -> None:
        c.execute(
            f"CREATE TABLE IF NOT EXISTS {db.table(self.table)} (institution TEXT PRIMARY KEY, "
            f"yuan {db.bigint} NOT NULL, decisions TEXT NOT NULL)"
        )

    def drop(self, db: Database, c: Cursor) -> None:
        c.execute(f"DROP TABLE IF EXISTS {db.table(self.table)}")

    def process(self, db: Database, c: Cursor, batch: Sequence[tuple[int, DecisionRecord]]) -> None:
        t = db.table(self.table)
        for _, record in batch:
            if record.kind != "penalty.imposed":
                continue
            institution, yuan = record.fields["institution"], int(record.fields["amount_yuan"])
            found = c.execute(f"SELECT yuan, decisions FROM {t} WHERE institution = ?", (institution,)).fetchone()
            if found is None:
                c.execute(f"INSERT INTO {t} VALUES (?, ?, ?)", (institution, yuan, record.id))
            else:
                c.execute(
                    f"UPDATE {t} SET yuan = ?, decisions = ? WHERE institution = ?",
                    (int(found[0]) + yuan, f"{found[1]},{record.id}", institution),
                )


@dataclass
class ExamplePlugin:
    @hookimpl
    def ledger_projections(self) -> list[Projection]:
        return [PenaltyTotals()]


def with_plugin(enabled: bool) -> pluggy.PluginManager:
    disabled = frozenset() if enabled else frozenset({"example"})
    return make_plugin_manager(extra=(("example", ExamplePlugin()),), disabled=disabled)


def test_a_plugins_own_view_is_verified_and_its_tracking_too(ledger_url: str) -> None:
    app = LedgerApplication.open(ledger_url, plugins=with_plugin(enabled=True))
    try:
        app.import_lines(to_jsonl(EXAMPLE_FILE).splitlines(keepends=True), source="example.jsonl")
        Views(app)
        report = verify_views(app)
        assert report.ok, report.problems
        assert "example_penalties" in report.positions
        tables = Tables(ledger_url)
        try:
            assert tables.rows("example_penalty_totals")
            (institution, yuan, _), *_ = tables.rows("example_penalty_totals")
            tables.run("UPDATE example_penalty_totals SET yuan = 1 WHERE institution = ?", (institution,))
            report = verify_views(app)
            assert any(
                p.startswith(f"example_penalties (example_penalty_totals, log up to {N})") for p in report.problems
            )
            assert f"institution={institution!r}: yuan is 1 in the view, {yuan} in a rebuild" in report.message()
        finally:
            tables.close()
    finally:
        app.close()
    # The plugin disabled: its tracking row is named, not checked (its tables are not known).
    plain = LedgerApplication.open(ledger_url, plugins=with_plugin(enabled=False))
    try:
        report = verify_views(plain)
        assert report.ok
        assert any("'example_penalties'" in n for n in report.notes)
    finally:
        plain.close()


def test_planted_controls_are_shown_escaped(example: str, tables: Tables) -> None:
    """Controls and bidi characters planted in a view are shown escaped, never raw."""
    tables.run("UPDATE view_institutions SET name = ? WHERE known_to = ?", ("医院\u202e\x1b[31m", NOW))
    code, _, err = verify_views_cli(example)
    assert code == INTEGRITY_EXIT
    assert "\u202e" not in err and "\x1b" not in err
    assert "\\u202e" in err
