"""The disclosure lists' read path gives exactly the answers of the plain one it replaced.

``Views.filings``, ``training_bases``, ``trainees`` and ``case_counts`` join the institutions in
scope into one query per list, and count cases from ``view_case_totals`` (kept by
``CasesProjection`` beside its rows), falling back to ``view_cases`` where a total cannot answer
(another day, an earlier position). The reference below does what the views did before: the
scope's institutions read apart, every list filtered by them, names looked up, and each case in
force counted row by row — for every scope, many days and many positions, with corrections and
retractions of cases among the decisions (MTM-2018#24, #30, #37, #40).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import projections.views.lists as views_module
from ledger.errors import ConfigurationError
from projections.runner import NOW
from projections.standing import grandfather_for, standing
from projections.views import (
    CaseCount,
    FilingRow,
    InstitutionRow,
    TraineeRow,
    TrainingBaseRow,
    Views,
)
from tests.strategies import bench_generator, decision_files, opened_ledger, to_jsonl

RICH = (
    "technology.reclassified",
    "filing.completed",
    "use.suspended",
    "training_base.filed",
    "trainee.certified",
    "case.performed",
    "decision.corrected",
    "decision.retracted",
)
SETTINGS = settings(max_examples=25)


# --- the reference: the read path as it was ------------------------------------------------------


def scope(
    views: Views, day: str, n: int, province: str | None, institution: str | None
) -> tuple[dict[str, InstitutionRow], str, tuple[Any, ...]]:
    if institution is not None:
        found = views._institution(day, n, institution)
        if found is not None and province and found.province not in views._province_names(province):
            found = None
        return ({institution: found} if found else {}), "institution = ?", (institution,)
    institutions = views._institutions(day, n, province)
    if not province:
        return institutions, "", ()
    keys = sorted(institutions)
    return institutions, f"institution IN ({', '.join('?' * len(keys))})" if keys else "0 = 1", tuple(keys)


def notice_until(views: Views, province: str, filed_on: date | None) -> date | None:
    return None if filed_on is None else views._notice_ends(province, filed_on)


def ref_filings(views: Views, province: str | None, institution: str | None, day: str, n: int) -> list[FilingRow]:
    institutions, where, params = scope(views, day, n, province, institution)
    rows = views._rows(
        "view_filings",
        (
            "institution",
            "technology",
            "status",
            "filing",
            "filed_on",
            "authority",
            "submitted_on",
            "pending_on",
            "halted_on",
            "decisions",
        ),
        where,
        params,
        day,
        n,
    )
    names = views._technology_names(day, n, (r[1] for r in rows))
    tech_class, _ = views._tech_class_lookup(n)
    out = []
    for r in rows:
        inst = institutions.get(r[0])
        if inst is None:
            continue
        filed_on = date.fromisoformat(r[4]) if r[4] else None
        grandfather = grandfather_for(views.deadlines, views.code_of_province(inst.province))
        status = standing(
            r[2],
            r[3],
            filed_on,
            date.fromisoformat(r[7]) if r[7] else None,
            date.fromisoformat(day),
            r[1],
            tech_class,
            grandfather,
        )
        until = notice_until(views, inst.province, filed_on) if status == "filed" else None
        if until is not None and day <= until.isoformat():
            status = "in public notice"
        halted = date.fromisoformat(r[8]) if r[8] and status in ("suspended", "stopped") else None
        out.append(
            FilingRow(
                r[0],
                inst.name,
                inst.city,
                r[1],
                names.get(r[1], ""),
                status,
                filed_on,
                r[5],
                date.fromisoformat(r[6]) if r[6] else None,
                halted or date.fromisoformat(r[10]),
                tuple(r[9].split(",")),
                until,
                halted,
            )
        )
    return sorted(out, key=lambda f: (f.technology, f.filed_on or date.max, f.institution))


def ref_training_bases(views: Views, province: str | None, day: str, n: int) -> list[TrainingBaseRow]:
    institutions, where, params = scope(views, day, n, province, None)
    rows = views._rows(
        "view_training_bases",
        ("institution", "technology", "status", "enrolment_notice", "filed_on", "decisions"),
        where,
        params,
        day,
        n,
    )
    names = views._technology_names(day, n, (r[1] for r in rows))
    return sorted(
        (
            TrainingBaseRow(
                r[0],
                institutions[r[0]].name,
                r[1],
                names.get(r[1], ""),
                r[2],
                date.fromisoformat(r[3]) if r[3] else None,
                date.fromisoformat(r[4]) if r[4] else None,
                tuple(r[5].split(",")),
            )
            for r in rows
            if r[0] in institutions
        ),
        key=lambda b: (b.technology, b.institution),
    )


def ref_trainees(views: Views, province: str | None, day: str, n: int) -> list[TraineeRow]:
    institutions, where, params = scope(views, day, n, province, None)
    rows = views._rows("view_trainees", ("physician", "institution", "technology"), where, params, day, n)
    names = views._technology_names(day, n, (r[2] for r in rows))
    people = views._physician_names(day, n, sorted({r[0] for r in rows if r[1] in institutions}))
    return sorted(
        (
            TraineeRow(
                people.get(r[0], ""),
                r[1],
                institutions[r[1]].name,
                r[2],
                names.get(r[2], ""),
                date.fromisoformat(r[3]),
                physician=r[0],
            )
            for r in rows
            if r[1] in institutions
        ),
        key=lambda t: (t.technology, t.certified_on, t.physician),
    )


def ref_case_counts(views: Views, province: str | None, institution: str | None, day: str, n: int) -> list[CaseCount]:
    """Each case row in force on ``day`` as known at ``n`` counted one by one, in Python."""
    institutions, _, _ = scope(views, day, n, province, institution)
    as_of = date.fromisoformat(day)
    restricted = {e.ref for e in views.catalog(as_of=as_of, known_at=n) if e.tech_class == "restricted"}
    for j in views.jurisdictions:
        restricted |= {
            e.ref
            for e in views.catalog(j.code, as_of=as_of, known_at=n)
            if e.catalog == j.code and e.tech_class == "restricted"
        }
    counts: dict[tuple[str, str], int] = defaultdict(int)
    with views.db.transaction(write=False) as c:
        rows = c.execute(
            f"SELECT institution, technology, valid_from, valid_to, known_from, known_to "
            f"FROM {views.db.table('view_cases')}"
        ).fetchall()
        for inst, technology, vf, vt, kf, kt in rows:
            if vf <= day < vt and kf <= n < kt and inst in institutions and technology in restricted:
                counts[(inst, technology)] += 1
    names = views._technology_names(day, n, (t for _, t in counts))
    return [CaseCount(i, t, names.get(t, ""), k) for (i, t), k in sorted(counts.items())]


def totals_from_rows(views: Views) -> list[tuple[Any, ...]]:
    """What ``view_case_totals`` must hold: a pure function of ``view_cases``' rows."""
    out: dict[tuple[str, str], list[Any]] = {}
    with views.db.transaction(write=False) as c:
        rows = c.execute(
            f"SELECT institution, technology, valid_from, valid_to, known_from, known_to "
            f"FROM {views.db.table('view_cases')}"
        ).fetchall()
    for inst, technology, vf, vt, kf, kt in rows:
        total = out.setdefault((inst, technology), [inst, technology, 0, vf, vt, 0])
        total[2] += kt == NOW
        total[3] = max(total[3], vf)
        total[4] = min(total[4], vt)
        total[5] = max(total[5], kf if kt == NOW else kt)
    return sorted(tuple(t) for t in out.values())


def stored_totals(views: Views) -> list[tuple[Any, ...]]:
    with views.db.transaction(write=False) as c:
        rows = c.execute(
            f"SELECT institution, technology, cases, max_from, min_to, known_from "
            f"FROM {views.db.table('view_case_totals')}"
        ).fetchall()
    return sorted(tuple(r) for r in rows)


# --- the comparison --------------------------------------------------------------------------------


@contextmanager
def counted_by_key(limit: int) -> Iterator[None]:
    """Cases the totals cannot answer counted key by key up to ``limit``, in one pass beyond."""
    before = views_module._COUNTED_BY_KEY
    views_module._COUNTED_BY_KEY = limit
    try:
        yield
    finally:
        views_module._COUNTED_BY_KEY = before


def same_answers(
    views: Views, scopes: list[tuple[str | None, str | None]], days: list[date], positions: list[int | None]
) -> int:
    """Every list of every scope on every day as known at every position, against the reference;
    returns how many case counts came out non-zero (so a test knows it compared something)."""
    counted = 0
    for as_of in days:
        for known_at in positions:
            day, n = views._when(as_of, known_at)
            for province, institution in scopes:
                assert views.filings(province, institution, as_of=as_of, known_at=known_at) == ref_filings(
                    views, province, institution, day, n
                )
                expected = ref_case_counts(views, province, institution, day, n)
                for limit in (0, 10_000):  # the scan of the scope, and key by key
                    with counted_by_key(limit):
                        assert views.case_counts(province, institution, as_of=as_of, known_at=known_at) == expected
                counted += sum(c.cases for c in expected)
                if institution is None:
                    assert views.training_bases(province, as_of=as_of, known_at=known_at) == ref_training_bases(
                        views, province, day, n
                    )
                    assert views.trainees(province, as_of=as_of, known_at=known_at) == ref_trainees(
                        views, province, day, n
                    )
    return counted


@SETTINGS
@given(lines=decision_files(kinds=RICH, max_extra=12), batch=st.integers(min_value=1, max_value=6))
def test_disclosure_of_a_file_caught_up_in_batches_equals_the_plain_read(
    tmp_path_factory: Any, lines: list[dict[str, Any]], batch: int
) -> None:
    with opened_ledger(tmp_path_factory.mktemp("disclosure") / "l.sqlite") as app:
        app.import_lines(to_jsonl(lines).splitlines(keepends=True), source="<test>")
        views = Views(app, catch_up=False)
        # Small batches: a case and its correction or retraction in different ones, so that the
        # totals take rows closed in the database as well as rows opened and closed in a batch.
        views.runner.catch_up(batch=batch)
        assert stored_totals(views) == totals_from_rows(views)
        incremental = stored_totals(views)
        views.runner.rebuild(["cases"])
        assert stored_totals(views) == incremental

        n = app.position()
        effective = sorted({date.fromisoformat(d["effective"]) for d in lines})
        days = [effective[len(effective) // 2], effective[-1] - timedelta(days=1), date.today()]
        institutions = sorted({d["institution"] for d in lines if d["kind"] == "institution.registered"})
        scopes: list[tuple[str | None, str | None]] = [(None, None), ("hunan", None), ("chongqing", None)]
        scopes += [(None, i) for i in institutions[:2]] + [("hunan", i) for i in institutions[:1]]
        same_answers(views, scopes, days, [None, n // 2, n - 1])


def test_disclosure_of_a_generated_ledger_equals_the_plain_read(tmp_path: Path) -> None:
    """A national-scale file in small (``bench/generate.py``): busy institutions, corrections and
    retractions of cases, provinces with and without a public notice (CQ-2017)."""
    with opened_ledger(tmp_path / "ledger.sqlite") as app:
        app.import_lines([line + "\n" for line in bench_generator().lines(4000, 7)], source="generated")
        views = Views(app, catch_up=False)
        views.runner.catch_up(batch=50)
        assert stored_totals(views) == totals_from_rows(views)
        n = app.position()
        with views.db.transaction(write=False) as c:
            busiest = [
                r[0]
                for r in c.execute(
                    f"SELECT institution FROM {views.db.table('view_case_totals')} GROUP BY institution "
                    "ORDER BY SUM(cases) DESC, institution LIMIT 3"
                ).fetchall()
            ]
            closed = c.execute(
                f"SELECT COUNT(*) FROM {views.db.table('view_cases')} WHERE known_to < ?", (NOW,)
            ).fetchone()
        assert closed is not None and closed[0] > 0  # corrected or retracted cases are compared too
        scopes: list[tuple[str | None, str | None]] = [
            (None, None),
            ("hunan", None),
            ("chongqing", None),
            *((None, i) for i in busiest),
        ]
        counted = same_answers(
            views, scopes, [date.today(), date(2021, 6, 30), date(2019, 3, 1)], [None, n // 2, n - 7]
        )
        assert counted > 100


def test_a_province_without_a_plugin_is_refused(tmp_path: Path) -> None:
    """As before: a province no plugin speaks for is a configuration error, not an empty list."""
    with opened_ledger(tmp_path / "ledger.sqlite") as app:
        views = Views(app)
        for read in (views.filings, views.training_bases, views.trainees, views.case_counts):
            with pytest.raises(ConfigurationError):
                read("atlantis")


@pytest.mark.postgres
@settings(max_examples=5)
@given(lines=decision_files(kinds=RICH, max_extra=8), batch=st.integers(min_value=1, max_value=4))
def test_totals_and_lists_are_the_same_on_postgresql(
    tmp_path_factory: Any, postgres_server: Any, lines: list[dict[str, Any]], batch: int
) -> None:
    """PostgreSQL upserts the totals from a temporary table (``CasesProjection.written``)."""
    schema = postgres_server.create_schema()
    try:
        with (
            opened_ledger(tmp_path_factory.mktemp("db") / "l.sqlite") as lite,
            opened_ledger(postgres_server.url(schema)) as pg,
        ):
            answers = []
            for app in (lite, pg):
                app.import_lines(to_jsonl(lines).splitlines(keepends=True), source="<test>")
                views = Views(app, catch_up=False)
                views.runner.catch_up(batch=batch)
                assert stored_totals(views) == totals_from_rows(views)
                day = max(date.fromisoformat(d["effective"]) for d in lines)
                answers.append(
                    [
                        stored_totals(views),
                        *(views.case_counts(p, as_of=a) for p in (None, "hunan") for a in (day, None)),
                        *(views.filings(p) for p in (None, "chongqing")),
                        views.trainees(),
                        views.training_bases("hunan"),
                    ]
                )
            assert answers[0] == answers[1]
    finally:
        postgres_server.drop_schema(schema)
