"""The rebuild's fast paths give exactly what the plain ones give.

* ``decision_from_state`` (the runner's decoder of stored records) makes the record
  ``record_from_state`` makes, for every kind;
* ``LogReader`` reads back, by position, the records the runner pages through (what a view's
  inputs now point at instead of copying them);
* whatever the batch boundaries (a case in one batch, its correction in the next, a retraction of
  that correction in a third…), catching up gives the views a rebuild gives: the views keyed by a
  decision's own id (cases, trainees) find a key's earlier decisions in the ledger's index, the
  others in their inputs, and a key new in a batch skips the bookkeeping;
* a ledger whose views were built by the previous version (inputs holding each record's text) is
  rebuilt on opening, to the same views, and rebuilding leaves the connection's
  ``secure_delete`` as it found it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.application import LedgerApplication
from ledger.decisions import record_from_state
from projections.runner import LogReader, TimelineProjection, _kind, decision_from_state
from projections.views import Views
from tests.strategies import ALL_KINDS, EXAMPLE_FILE, decision_files, opened_ledger, to_jsonl

SETTINGS = settings(max_examples=20)
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
"""Kinds every generated file has at least once (as in test_properties)."""


def record(app: LedgerApplication, lines: list[dict[str, Any]]) -> None:
    app.import_lines(to_jsonl(lines).splitlines(keepends=True), source="<test>")


def dump(views: Views) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every view, both time axes included."""
    out = {}
    with views.db.transaction(write=False) as c:
        for p in views.runner.projections.values():
            table = getattr(p, "table", None)
            if table is not None:
                rows = c.execute(f"SELECT * FROM {table}").fetchall()
                out[p.name] = sorted(rows, key=lambda r: tuple(map(str, r)))
    return out


def stored(app: LedgerApplication) -> list[tuple[int, str, Any]]:
    """``(position, topic, state)`` of every stored event, decoded by the ledger's transcoder."""
    decode = app.mapper.transcoder.decode
    with Views(app, catch_up=False).db.transaction(write=False) as c:
        rows = c.execute("SELECT rowid, topic, state FROM stored_events ORDER BY rowid").fetchall()
    return [(int(p), str(t), decode(s)) for p, t, s in rows]


@SETTINGS
@given(lines=decision_files(kinds=ALL_KINDS, max_extra=6))
def test_decision_from_state_is_record_from_state(tmp_path_factory: Any, lines: list[dict[str, Any]]) -> None:
    with opened_ledger(tmp_path_factory.mktemp("decode") / "l.sqlite") as app:
        record(app, lines)
        events = stored(app)
        assert {_kind(topic) for _, topic, _ in events} >= set(ALL_KINDS)
        for _, topic, state in events:
            fast = decision_from_state(topic, state)
            plain = record_from_state(_kind(topic), state)
            assert fast == plain
            assert vars(fast) == vars(plain)
            assert list(vars(fast)) == list(vars(plain))


@SETTINGS
@given(lines=decision_files(kinds=RICH, max_extra=6))
def test_the_log_reader_reads_what_the_runner_pages(tmp_path_factory: Any, lines: list[dict[str, Any]]) -> None:
    with opened_ledger(tmp_path_factory.mktemp("reader") / "l.sqlite") as app:
        record(app, lines)
        runner = Views(app, catch_up=False).runner
        paged = {p: r for page in runner._pages(0, 7) for p, r in page}
        with runner.db.transaction(write=False) as c:
            read = LogReader(app, runner.db).records(c, list(paged))
        assert read.keys() == paged.keys()
        for position, r in read.items():
            if r.kind != "decision.corrected":  # a correction's fields as its canonical text reads back
                assert r == paged[position]


@SETTINGS
@given(lines=decision_files(kinds=RICH, max_extra=10), size=st.integers(1, 6))
def test_any_batch_boundaries_give_the_rebuilt_views(
    tmp_path_factory: Any, lines: list[dict[str, Any]], size: int
) -> None:
    with opened_ledger(tmp_path_factory.mktemp("batches") / "l.sqlite") as app:
        record(app, lines)
        views = Views(app, catch_up=False)
        views.runner.catch_up(batch=size)
        incremental = dump(views)
        views.runner.rebuild()
        assert dump(views) == incremental
        for name in views.runner.projections:
            views.runner.rebuild([name])
        assert dump(views) == incremental


@SETTINGS
@given(lines=decision_files(kinds=RICH, max_extra=10), cut=st.integers(min_value=0))
def test_views_of_records_imported_one_by_one_equal_the_rebuilt_ones(
    tmp_path_factory: Any, lines: list[dict[str, Any]], cut: int
) -> None:
    """Each decision in a batch of its own, after a rebuild of the first ones: a correction or a
    retraction always finds its target's key in storage, never in its batch."""
    n = cut % len(lines)
    with opened_ledger(tmp_path_factory.mktemp("one") / "l.sqlite") as app:
        views = Views(app, catch_up=False)
        record(app, lines[:n])
        views.runner.rebuild()
        for line in lines[n:]:
            record(app, [line])
            views.runner.catch_up(batch=1)
        incremental = dump(views)
        views.runner.rebuild()
        assert dump(views) == incremental


def test_views_of_the_previous_version_are_rebuilt_on_opening(tmp_path: Path) -> None:
    with opened_ledger(tmp_path / "l.sqlite") as app:
        record(app, EXAMPLE_FILE)
        views = Views(app)
        expected = dump(views)
        timelines = [p for p in views.runner.projections.values() if isinstance(p, TimelineProjection)]
        with views.db.transaction() as c:
            for p in timelines:
                # What version 1 left: inputs holding each record's text, cases' and trainees' too.
                c.execute(f"DROP TABLE IF EXISTS {p.inputs}")
                c.execute(
                    f"CREATE TABLE {p.inputs} (key TEXT NOT NULL, decision_id TEXT NOT NULL, "
                    "position INTEGER NOT NULL, record TEXT NOT NULL, PRIMARY KEY (key, position))"
                )
                c.execute(f"INSERT INTO {p.inputs} VALUES ('stale', 'stale', 1, '{{}}')")
                c.execute(f"DELETE FROM {p.table}")
                c.execute("UPDATE ledger_tracking SET version = 1 WHERE projection = ?", (p.name,))
    with opened_ledger(tmp_path / "l.sqlite") as app:
        views = Views(app)
        assert dump(views) == expected
        with views.db.transaction(write=False) as c:
            tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()}
            assert "view_cases_inputs" not in tables
            assert "view_trainees_inputs" not in tables
            columns = [r[1] for r in c.execute("PRAGMA table_info(view_filings_inputs)").fetchall()]
            assert columns == ["key", "decision_id", "position"]
            versions = dict(c.execute("SELECT projection, version FROM ledger_tracking").fetchall())
        assert all(versions[p.name] == p.version for p in timelines)


def test_rebuilding_leaves_secure_delete_as_it_was(tmp_path: Path) -> None:
    with opened_ledger(tmp_path / "l.sqlite") as app:
        record(app, EXAMPLE_FILE)
        views = Views(app)

        def settings_() -> set[int]:
            with views.db.transaction(write=False) as c:
                return {int(c.execute("PRAGMA secure_delete").fetchone()[0])}  # type: ignore[index]

        before = settings_()
        views.runner.rebuild()
        assert settings_() == before


def test_a_case_corrected_twice_in_batches_of_its_own(tmp_path: Path) -> None:
    """A case, a correction of one field, a correction of another, then a retraction of the
    first correction, each applied in a batch of its own: the key's earlier decisions come from
    the ledger's index (cases keep no inputs), and the row shows both corrections."""
    case = next(d for d in EXAMPLE_FILE if d["kind"] == "case.performed")
    later = [
        {
            "id": "FIX-1",
            "kind": "decision.corrected",
            "effective": "2019-05-01",
            "by": case["by"],
            "corrects": case["id"],
            "fields": {"level": 3},
        },
        {
            "id": "FIX-2",
            "kind": "decision.corrected",
            "effective": "2019-05-02",
            "by": case["by"],
            "corrects": case["id"],
            "fields": {"case": "ZY-CORRECTED"},
        },
        {
            "id": "FIX-3",
            "kind": "decision.retracted",
            "effective": "2019-05-03",
            "by": case["by"],
            "retracts": "FIX-1",
            "reason": "录入有误",
        },
    ]
    with opened_ledger(tmp_path / "one.sqlite") as app:
        views = Views(app, catch_up=False)
        record(app, EXAMPLE_FILE)
        views.runner.catch_up()
        for line in later:
            record(app, [line])
            views.runner.catch_up(batch=1)
        incremental = dump(views)
        with views.db.transaction(write=False) as c:
            open_rows = c.execute(
                "SELECT level, known_from FROM view_cases WHERE key = ? AND known_to = ?", (case["id"], 2**62)
            ).fetchall()
        views.runner.rebuild()
        assert dump(views) == incremental
    with opened_ledger(tmp_path / "all.sqlite") as app:
        record(app, [*EXAMPLE_FILE, *later])
        assert dump(Views(app)) == incremental
    assert [level for level, _ in open_rows] == ["3"]
