"""The trail's read path gives exactly the answer of the straightforward one it replaced.

A trail is read from the ``summary`` column the projection stores, parses records only to judge
them (with msgspec when installed), resolves trail rows without re-sorting them (``resolve(..., in_valid_order=True)``),
and the rules ask ``Facts`` through indexes (``of_kind``, ``registered``, ``privilege``), shared
answers (``Facts.shared``) and a memoised ``tech_class``. The reference below does it the plain
way: every record parsed with the standard library, summarised, replayed by ``resolve`` in log
order, and judged on facts that scan their decisions for every question.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.application import LedgerApplication
from ledger.decisions import _TRUSTED_DECODE, DecisionRecord, from_trusted_json_dict
from projections.clock import FILING_KINDS, Clock
from projections.facts import Facts
from projections.findings import SEVERITY_ORDER, Finding
from projections.replay import Resolved, resolve
from projections.trail import summarise
from projections.views import Trail, TrailEntry, Views
from tests.strategies import bench_generator, decision_files, to_jsonl

T = TypeVar("T")
RICH = (
    "filing.completed",
    "use.suspended",
    "privilege.granted",
    "case.performed",
    "decision.corrected",
    "decision.retracted",
    "technology.reclassified",
)
SETTINGS = settings(max_examples=25)


class ScanningFacts(Facts):
    """``Facts`` as it was: every question replays the scope; nothing is shared between rules."""

    def of_kind(self, *kinds: str) -> list[Resolved]:
        return [d for d in self.decisions if d.record.kind in kinds]

    def shared(self, key: str, compute: Callable[[Facts], T]) -> T:
        return compute(self)

    def registered(self, physician: str, institution: str, on: date) -> bool:
        state = False
        for d in self.decisions:
            if d.record.effective > on:
                break
            f = d.record.fields
            if f.get("physician") != physician or f.get("institution") != institution:
                continue
            if d.record.kind == "physician.registered":
                state = True
            elif d.record.kind == "physician.deregistered":
                state = False
        return state

    def privilege(self, physician: str, institution: str, on: date) -> Resolved | None:
        current: Resolved | None = None
        for d in self.decisions:
            if d.record.effective > on:
                break
            f = d.record.fields
            if f.get("physician") != physician or f.get("institution") != institution:
                continue
            if d.record.kind == "privilege.granted":
                current = d
            elif d.record.kind in ("privilege.suspended", "privilege.revoked"):
                current = None
        return current


def plain_tech_class(views: Views, known_at: int) -> Callable[[str, date], str | None]:
    with views.db.transaction(write=False) as c:
        rows = c.execute(
            f"SELECT key, class, valid_from, valid_to FROM {views.db.table('view_catalog')} "
            "WHERE known_from <= ? AND known_to > ?",
            (known_at, known_at),
        ).fetchall()

    def tech_class(ref: str, on: date) -> str | None:
        day = on.isoformat()
        for key, cls, vf, vt in rows:
            if key == ref and vf <= day < vt:
                return cls  # type: ignore[no-any-return]
        return None

    return tech_class


def reference(views: Views, institution: str, as_of: date, known_at: int) -> tuple[Trail, list[Resolved]]:
    day = as_of.isoformat()
    with views.db.transaction(write=False) as c:
        rows = c.execute(
            "SELECT position, decision_id, kind, effective, by_, basis, institution, physician, technology, record "
            f"FROM {views.db.table('view_trail')} WHERE position <= ? AND institution = ? AND (effective <= ? "
            "OR kind IN ('decision.corrected', 'decision.retracted')) ORDER BY effective, position",
            (known_at, institution, day),
        ).fetchall()
    # The rules judge with every correction and retraction known, whatever its own date (as the views).
    records = {int(r[0]): from_trusted_json_dict(json.loads(r[9], parse_float=Decimal)) for r in rows}
    rows = [r for r in rows if r[3] <= day]
    entries = [
        TrailEntry(
            date.fromisoformat(r[3]), int(r[0]), r[1], r[2], r[4], r[5], r[6], r[7], r[8], summarise(records[int(r[0])])
        )
        for r in rows
    ]
    decisions = resolve(sorted(records.items()), as_of=as_of)
    found = views._institution(day, known_at, institution)
    jurisdiction = views.code_of_province(found.province) if found else None
    facts = ScanningFacts(
        scope=f"institution:{institution}",
        jurisdiction=jurisdiction,
        as_of=as_of,
        decisions=decisions,
        tech_class=plain_tech_class(views, known_at),
        calendar_for=views.calendar,
        deadlines=views.deadlines,
    )
    judged: list[Finding] = [
        f
        for rule in views.rules
        if rule.applies_to(jurisdiction)
        for f in rule.check(facts)
        if f.institution == institution
    ]
    judged.sort(key=lambda f: (f.effective, SEVERITY_ORDER.get(f.severity, 9), f.rule, f.decisions))
    return Trail(entries, judged), decisions


@SETTINGS
@given(lines=decision_files(kinds=RICH, max_extra=12), picks=st.lists(st.integers(min_value=0), min_size=3, max_size=3))
def test_trail_equals_the_plain_read(tmp_path_factory: Any, lines: list[dict[str, Any]], picks: list[int]) -> None:
    tmp: Path = tmp_path_factory.mktemp("trail")
    app = LedgerApplication.open(tmp / "ledger.sqlite")
    try:
        app.import_lines(to_jsonl(lines).splitlines(keepends=True), source="<test>")
        views = Views(app)
        n = app.position()
        days = sorted({date.fromisoformat(str(line["effective"])) for line in lines})
        with views.db.transaction(write=False) as c:
            institutions = [
                r[0]
                for r in c.execute(
                    f"SELECT DISTINCT institution FROM {views.db.table('view_trail')} WHERE institution IS NOT NULL "
                    "ORDER BY institution"
                ).fetchall()
            ]
        as_of = days[picks[0] % len(days)] + timedelta(days=picks[1] % 3)
        known_at = 1 + picks[2] % n
        for institution in institutions:
            for day, position in ((date.today(), n), (as_of, n), (date.today(), known_at), (as_of, known_at)):
                expected, decisions = reference(views, institution, day, position)
                assert views.trail(institution=institution, as_of=day, known_at=position) == expected
                assert views.trail(institution=institution, as_of=day, known_at=position, findings=False).entries == (
                    expected.entries
                )
                logged = views._logged("institution = ?", (institution,), day.isoformat(), position)
                logged += views._later_changes(institution, day.isoformat(), position)
                assert resolve(logged, as_of=day, in_valid_order=True) == decisions
    finally:
        app.close()


def _filing(k: int, kind: str, day: date) -> Resolved:
    return Resolved(k, DecisionRecord(f"F{k}", kind, day, "auth", None, None, {}, {}))


@settings(max_examples=200)
@given(
    filings=st.lists(st.tuples(st.sampled_from(FILING_KINDS), st.integers(0, 40)), max_size=8),
    days=st.lists(st.integers(-2, 45), max_size=12),
)
def test_filing_states_equal_filing_state(filings: list[tuple[str, int]], days: list[int]) -> None:
    """``Clock.filing_states`` (carried on from day to day) answers as ``Clock.filing_state``,
    whatever order the days come in."""
    start = date(2020, 1, 1)
    ordered = tuple(
        _filing(k, kind, start + timedelta(days=d)) for k, (kind, d) in enumerate(sorted(filings, key=lambda f: f[1]))
    )
    clock = Clock("I", "national:X", False, None, None, None, ordered)
    at = clock.filing_states()
    for d in sorted(days)[: len(days) // 2] + days:
        day = start + timedelta(days=d)
        assert at(day) == clock.filing_state(day)


@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.text()
        | st.decimals(allow_nan=False, allow_infinity=False).map(lambda d: d.normalize()),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
        max_leaves=10,
    )
)
def test_record_decoder_reads_canonical_json_as_the_standard_library(value: Any) -> None:
    from ledger import canonical

    text = canonical.dumps({"v": value})
    assert _TRUSTED_DECODE(text) == json.loads(text, parse_float=Decimal)


def _generated(n: int, seed: int) -> list[str]:
    """A national-scale file in small (``bench/generate.py``): busy institutions, corrections, and
    findings of every national and provincial rule."""
    return [line + "\n" for line in bench_generator().lines(n, seed)]


def test_trail_of_a_generated_ledger_equals_the_plain_read(tmp_path: Path) -> None:
    app = LedgerApplication.open(tmp_path / "ledger.sqlite")
    try:
        app.import_lines(_generated(4000, 3), source="generated")
        views = Views(app)
        n = app.position()
        with views.db.transaction(write=False) as c:
            institutions = [
                r[0]
                for r in c.execute(
                    f"SELECT institution, COUNT(*) AS k FROM {views.db.table('view_trail')} "
                    "WHERE institution IS NOT NULL "
                    "GROUP BY institution ORDER BY k DESC, institution"
                ).fetchall()
            ]
        judged = corrected = 0
        for k, institution in enumerate(institutions[:40]):
            for day, position in ((date.today(), n), (date(2019 + k % 7, 6, 30), n), (date.today(), n // 2 + k)):
                expected, decisions = reference(views, institution, day, position)
                assert views.trail(institution=institution, as_of=day, known_at=position) == expected
                judged += len(expected.findings)
                corrected += sum(1 for d in decisions if d.corrected_by)
        assert judged > 100 and corrected > 0  # the comparison covers findings and corrections
    finally:
        app.close()


def test_a_long_lived_views_judges_with_the_catalogue_the_views_hold_now(tmp_path: Path) -> None:
    """The catalogue a trail's rules read (``Views._tech_class_lookup``) is kept per position;
    "now" is the catalogue view's own position, so a ``Views`` kept open (a plugin's service, a
    notebook) sees a technology listed after it was made, once the views have caught up."""
    from ledger.decisions import parse_line
    from projections.views import catch_up
    from tests.strategies import EXAMPLE_FILE

    app = LedgerApplication.open(tmp_path / "ledger.sqlite")
    try:
        app.import_lines(to_jsonl(EXAMPLE_FILE).splitlines(keepends=True), source="example")
        views = Views(app)
        tech_class, classes_of = views._tech_class_lookup(views.position_at(None))
        assert tech_class("national:G99", date(2024, 1, 1)) is None
        listed = {"id": "LATE-1", "kind": "technology.listed", "effective": "2020-01-01", "by": "国家卫生健康委",
                  "catalog": "national", "code": "G99", "name": "后列技术", "class": "restricted",
                  "version": "国家限制类技术目录（2022版）"}  # fmt: skip
        app.record(parse_line(json.dumps(listed, ensure_ascii=False)))
        catch_up(app)  # what another process (``ledger record``, a follower) does
        tech_class, classes_of = views._tech_class_lookup(views.position_at(None))
        assert tech_class("national:G99", date(2024, 1, 1)) == "restricted"
        assert classes_of("national:G99") == {"restricted"}
        # as known before that record: still unlisted (rows known at a position never change)
        before = app.position() - 1
        assert views._tech_class_lookup(before)[0]("national:G99", date(2024, 1, 1)) is None
    finally:
        app.close()
