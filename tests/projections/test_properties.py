"""The invariants of the read side, as properties over generated decision files.

(a) a rebuilt view equals the incrementally built one, after any interleaving of imports;
(b) ``--as-of D`` equals the view built from only the decisions in force by D;
(c) ``--known-at N`` equals the view built from the first N records;
and replay is deterministic: the same file gives the same views on SQLite and PostgreSQL.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from ledger.application import LedgerApplication
from projections.runner import NOW, TimelineProjection
from projections.views import Views
from tests.strategies import decision_files, to_jsonl

CORRECTIONS = ("decision.corrected", "decision.retracted")
RICH = (
    "technology.reclassified",
    "filing.completed",
    "use.suspended",
    "privilege.granted",
    "trainee.certified",
    "case.performed",
    "decision.corrected",
    "decision.retracted",
)
"""Kinds every generated file has at least once, so that every view has rows to compare."""
SETTINGS = settings(max_examples=25)


@contextmanager
def ledger(url: str) -> Iterator[LedgerApplication]:
    app = LedgerApplication.open(url)
    try:
        yield app
    finally:
        app.close()


def record(app: LedgerApplication, lines: list[dict[str, Any]], source: str = "<test>") -> None:
    app.import_lines(to_jsonl(lines).splitlines(keepends=True), source=source)


def timeline_tables(views: Views) -> list[TimelineProjection]:
    return [p for p in views.runner.projections.values() if isinstance(p, TimelineProjection)]


def dump(views: Views) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every view, both time axes included (for rebuild == incremental)."""
    out = {}
    with views.db.transaction(write=False) as c:
        for p in timeline_tables(views):
            out[p.name] = sorted(
                c.execute(f"SELECT * FROM {views.db.table(p.table)}").fetchall(), key=lambda r: tuple(map(str, r))
            )
        out["trail"] = c.execute(f"SELECT * FROM {views.db.table('view_trail')} ORDER BY position").fetchall()
    return out


def valid_at(views: Views, day: date, known_at: int = NOW - 1) -> dict[str, list[tuple[Any, ...]]]:
    """The content of every view on ``day`` as known at ``known_at``: values and ``valid_from``."""
    out = {}
    d = day.isoformat()
    with views.db.transaction(write=False) as c:
        for p in timeline_tables(views):
            rows = c.execute(
                f"SELECT key, {', '.join(p.columns)}, valid_from FROM {views.db.table(p.table)} "
                "WHERE valid_from <= ? AND valid_to > ? AND known_from <= ? AND known_to > ?",
                (d, d, known_at, known_at),
            ).fetchall()
            out[p.name] = sorted(rows, key=lambda r: tuple(map(str, r)))
    return out


def timelines_known_at(views: Views, known_at: int) -> dict[str, list[tuple[Any, ...]]]:
    """Every view's whole valid-time timeline as known at ``known_at`` (record-time cut only)."""
    out = {}
    with views.db.transaction(write=False) as c:
        for p in timeline_tables(views):
            rows = c.execute(
                f"SELECT key, {', '.join(p.columns)}, valid_from, valid_to FROM {views.db.table(p.table)} "
                "WHERE known_from <= ? AND known_to > ?",
                (known_at, known_at),
            ).fetchall()
            out[p.name] = sorted(rows, key=lambda r: tuple(map(str, r)))
    return out


def without_moved_dates(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The file without corrections of ``effective`` (and retractions of dropped decisions), so
    that "in force by D" is decided by each original's own date."""
    kept: list[dict[str, Any]] = []
    ids: set[str] = set()
    for line in lines:
        d = line
        if d["kind"] == "decision.corrected" and "effective" in d["fields"]:
            fields = {k: v for k, v in d["fields"].items() if k != "effective"}
            if not fields:
                continue
            d = {**d, "fields": fields}
        if d["kind"] == "decision.retracted" and d["retracts"] not in ids:
            continue
        kept.append(d)
        ids.add(d["id"])
    return kept


def in_force_by(lines: list[dict[str, Any]], day: date) -> list[dict[str, Any]]:
    """Originals effective by ``day``, with every correction and retraction of them."""
    kept: list[dict[str, Any]] = []
    ids: set[str] = set()
    for d in lines:
        if d["kind"] in CORRECTIONS:
            target = d.get("corrects") or d.get("retracts")
            if target not in ids:
                continue
        elif date.fromisoformat(d["effective"]) > day:
            continue
        kept.append(d)
        ids.add(d["id"])
    return kept


# --- (a) rebuild equals incremental, after any interleaving of imports --------------------------


class Interleavings(RuleBasedStateMachine):
    """Import a file in chunks of any size, catching up after each; rebuild at any moment."""

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="ledger-stateful-"))
        self.app = LedgerApplication.open(self.tmp / "ledger.sqlite")
        self.views = Views(self.app)
        self.pending: list[dict[str, Any]] = []

    @initialize(lines=decision_files(kinds=RICH, max_extra=10))
    def draw_file(self, lines: list[dict[str, Any]]) -> None:
        self.pending = list(lines)

    @rule(size=st.integers(min_value=1, max_value=8))
    def import_chunk(self, size: int) -> None:
        chunk, self.pending = self.pending[:size], self.pending[size:]
        if chunk:
            record(self.app, chunk)
            self.views.runner.catch_up()

    @rule()
    def rebuild_everything(self) -> None:
        before = dump(self.views)
        self.views.runner.rebuild()
        assert dump(self.views) == before

    @rule(name=st.sampled_from(["catalog", "filings", "privileges", "trail", "cases"]))
    def rebuild_one(self, name: str) -> None:
        before = dump(self.views)
        self.views.runner.rebuild([name])
        assert dump(self.views) == before

    @invariant()
    def views_track_the_log(self) -> None:
        assert set(self.views.runner.positions().values()) <= {self.app.position()}

    def teardown(self) -> None:
        self.app.close()
        shutil.rmtree(self.tmp, ignore_errors=True)  # each example's ledger, not left in /tmp


Interleavings.TestCase.settings = settings(max_examples=15, stateful_step_count=8)
test_rebuild_equals_incremental = Interleavings.TestCase


# --- (b) as-of D equals the view of the decisions in force by D ---------------------------------


@SETTINGS
@given(lines=decision_files(kinds=RICH, max_extra=10).map(without_moved_dates), pick=st.integers(min_value=0))
def test_as_of_equals_the_decisions_in_force_by_that_day(
    tmp_path_factory: Any, lines: list[dict[str, Any]], pick: int
) -> None:
    days = sorted({date.fromisoformat(d["effective"]) for d in lines})
    day = days[pick % len(days)]
    tmp = tmp_path_factory.mktemp("asof")
    with ledger(str(tmp / "all.sqlite")) as full, ledger(str(tmp / "by-day.sqlite")) as partial:
        record(full, lines)
        record(partial, in_force_by(lines, day))
        assert valid_at(Views(full), day) == valid_at(Views(partial), day)
        full_trail = Views(full).trail(as_of=day, findings=False).entries
        partial_trail = Views(partial).trail(as_of=day, findings=False).entries
        assert [e.decision_id for e in full_trail if e.kind not in CORRECTIONS] == [
            e.decision_id for e in partial_trail if e.kind not in CORRECTIONS
        ]


# --- (c) known-at N equals the view built from the first N records ------------------------------


@SETTINGS
@given(lines=decision_files(kinds=RICH, max_extra=10), pick=st.integers(min_value=0))
def test_known_at_equals_the_first_n_records(tmp_path_factory: Any, lines: list[dict[str, Any]], pick: int) -> None:
    n = 1 + pick % len(lines)
    tmp = tmp_path_factory.mktemp("knownat")
    with ledger(str(tmp / "all.sqlite")) as full, ledger(str(tmp / "first-n.sqlite")) as first:
        record(full, lines)
        exported = [r.to_json_dict() for r in full.export()]
        record(first, [{k: (v.isoformat() if isinstance(v, date) else v) for k, v in d.items()} for d in exported[:n]])
        assert timelines_known_at(Views(full), n) == timelines_known_at(Views(first), NOW - 1)
        day = date.fromisoformat(max(d["effective"] for d in lines))
        assert [e.decision_id for e in Views(full).trail(as_of=day, known_at=n, findings=False).entries] == [
            e.decision_id for e in Views(first).trail(as_of=day, findings=False).entries
        ]


# --- determinism across databases ---------------------------------------------------------------


@pytest.mark.postgres
@settings(max_examples=5)
@given(lines=decision_files(kinds=RICH, max_extra=8))
def test_views_are_identical_on_sqlite_and_postgresql(
    tmp_path_factory: Any, postgres_server: Any, lines: list[dict[str, Any]]
) -> None:
    schema = postgres_server.create_schema()
    try:
        with ledger(str(tmp_path_factory.mktemp("db") / "l.sqlite")) as lite, ledger(postgres_server.url(schema)) as pg:
            record(lite, lines)
            record(pg, lines)
            assert dump(Views(lite)) == _normalise(dump(Views(pg)))
    finally:
        postgres_server.drop_schema(schema)


def _normalise(tables: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[tuple[Any, ...]]]:
    return {
        k: sorted(
            (tuple(int(v) if isinstance(v, int) else v for v in r) for r in rows), key=lambda r: tuple(map(str, r))
        )
        if k != "trail"
        else rows
        for k, rows in tables.items()
    }
