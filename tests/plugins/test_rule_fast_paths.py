"""The rules find what they found case by case (``case_by_case``), in the same order, while they
skip the cases that cannot matter; and the lookups they skip by answer as the plain ones.

Histories are drawn around the days the regimes turn on (MTM-2009, the 2015 transition, CQ-2017,
MTM-2018, HN-2018's notice and grandfather date, a year the calendar does not know), with many
cases on the same days as filings, reviews, suspensions, registrations and grants, in any log
order. Each is judged as of several days, in Hunan, in Chongqing and in a province without a
plugin, and every rule's findings are compared with the reference's.
"""

from __future__ import annotations

import dataclasses
from bisect import bisect_right
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import case_by_case
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from plugin_testing import (
    Log,
    TechClasses,
    calendars_of,
    case,
    completed,
    demo_log,
    facts_for,
    hunan_history,
    institutions_in,
    log_of,
    plugin_manager,
    rules_of,
    submitted,
)

from plugins.national.common import Clock, clocks
from projections.facts import Facts
from projections.replay import Resolved
from projections.standing import use_states

TECHS = ("national:G10", "national:P01", "hunan:S14", "chongqing:Q2")
CLASSES = ("restricted", "prohibited", "class2", "class3", "clinical-research")
PHYSICIANS = ("D1", "D2", "D3")
TURNS = tuple(
    date.fromisoformat(d)
    for d in (
        "2009-05-01",
        "2015-06-29",
        "2017-05-22",
        "2018-11-01",
        "2018-11-19",
        "2019-01-31",
        "2019-02-01",
        "2019-04-22",
        "2026-03-04",
        "2026-12-20",
    )
)
"""Days the regimes turn on; 2019-04-22 is 15 working days before 2019-05-14 (the May holidays);
from 2026-12-20 on, counting 15 working days needs 2027, a year the calendar does not know."""
PROVINCES = ("湖南省", "重庆市", "广东省")
REGISTERED = {
    "id": "doc",
    "kind": "physician.registered",
    "effective": "2005-02-01",
    "by": "长沙市卫生局",
    "physician": "D1",
    "institution": "H1",
}
SETTINGS = settings(max_examples=150)

days = st.builds(lambda turn, offset: turn + timedelta(days=offset), st.sampled_from(TURNS), st.integers(-20, 60))


def _event(kind: str, day: date, tech: str, physician: str, n: int, extra: dict[str, Any]) -> dict[str, Any]:
    d: dict[str, Any] = {"id": f"E{n:03d}", "kind": kind, "effective": day.isoformat(), "by": "H1", "institution": "H1"}
    if kind.startswith("physician."):
        d["physician"] = physician
        if kind == "physician.registered":
            d |= {"name": f"医生{physician}", "title": "主任医师"}
    elif kind.startswith("privilege."):
        d["physician"] = physician
        if kind == "privilege.granted":
            d |= {"level": extra["level"] or 4, "procedures": extra["procedures"]}
        else:
            d["reason"] = "考核"
    else:
        d["technology"] = tech
        if kind == "case.performed":
            d |= {"physician": physician, "case": f"C{n}"}
            if extra["level"] is not None:
                d["level"] = extra["level"]
        elif kind == "filing.submitted":
            d |= {"technical_lead": physician, "materials": ["备案表"]}
        elif kind == "review.concluded":
            d |= {"committee": extra["committee"], "outcome": extra["outcome"]}
        elif kind in ("filing.rejected", "use.suspended", "use.stopped"):
            d["reason"] = "材料不全"
    return d


EVENT_KINDS = (
    *["case.performed"] * 6,
    "filing.submitted",
    "filing.submitted",
    "filing.completed",
    "filing.completed",
    "filing.rejected",
    "review.concluded",
    "review.concluded",
    "use.suspended",
    "use.resumed",
    "use.stopped",
    "physician.registered",
    "physician.deregistered",
    "physician.deregistered",
    "privilege.granted",
    "privilege.suspended",
    "privilege.revoked",
)


def _events(
    near: st.SearchStrategy[date], techs: list[str], physicians: tuple[str, ...]
) -> st.SearchStrategy[tuple[Any, ...]]:
    return st.tuples(
        st.sampled_from(EVENT_KINDS),
        near,
        st.sampled_from(techs),
        st.sampled_from(physicians),
        st.fixed_dictionaries(
            {
                "level": st.sampled_from((None, 1, 2, 3, 4)),
                "procedures": st.lists(st.sampled_from((*TECHS, "关节置换")), max_size=2, unique=True),
                "committee": st.sampled_from(("ethics", "ethics", "management")),
                "outcome": st.sampled_from(("approved", "rejected")),
            }
        ),
    )


@st.composite
def histories(draw: Any) -> tuple[Log, str]:
    """One institution's history: its catalogue (each technology listed and reclassified on drawn
    days), then its decisions — about one or two technologies, around one or two of the days the
    regimes turn on — some of them in the log out of their effective order."""
    # Half of the histories are one busy use under MTM-2018: a restricted technology, its cases,
    # filings and ethics reviews, and its technical lead leaving (MTM-2018#11, #13, HN-2018 附件2 注2).
    busy = draw(st.booleans())
    province = draw(st.sampled_from(("湖南省", *PROVINCES) if busy else PROVINCES))
    eras = draw(st.lists(st.sampled_from(TURNS[3:] if busy else TURNS), min_size=1, max_size=2))
    # Few distinct days, so that cases fall on the days of filings, reviews and registrations.
    offsets = draw(st.lists(st.integers(-30, 90), min_size=3, max_size=12, unique=True))
    near = st.builds(lambda turn, k: turn + timedelta(days=k), st.sampled_from(eras), st.sampled_from(offsets))
    lines: list[dict[str, Any]] = []
    for k, tech in enumerate(TECHS):
        catalog, code = tech.split(":")
        listed = date(2015, 6, 29) if busy else draw(st.one_of(near, days, st.just(date(2008, 1, 1))))
        changes = draw(st.lists(st.tuples(near, st.sampled_from(CLASSES)), max_size=0 if busy else 2))
        first_class = "restricted" if busy else draw(st.sampled_from(CLASSES))
        for j, (day, cls) in enumerate([(listed, first_class), *sorted(changes)]):
            if j and day <= listed:
                continue
            kind = "technology.listed" if j == 0 else "technology.reclassified"
            d = {
                "id": f"T{k}{j}",
                "kind": kind,
                "effective": day.isoformat(),
                "by": "国家卫生健康委",
                "catalog": catalog,
                "code": code,
                "class": cls,
            }
            if j == 0:
                d |= {"name": f"技术{k}", "version": "v"}
            lines.append(d)
    lines.append(
        {
            "id": "inst",
            "kind": "institution.registered",
            "effective": "2005-01-01",
            "by": "卫生局",
            "institution": "H1",
            "name": "测试医院",
            "province": province,
            "city": "长沙市",
            "category": "医院",
            "level": "三级",
            "licensing_authority": "长沙市卫生健康委员会",
        }
    )
    for physician in PHYSICIANS[: 2 if busy else draw(st.integers(1, 3))]:
        lines.append(
            {
                "id": f"reg-{physician}",
                "kind": "physician.registered",
                "effective": "2006-01-01",
                "by": "卫生局",
                "physician": physician,
                "name": f"医生{physician}",
                "institution": "H1",
                "title": "主任医师",
            }
        )
        if draw(st.booleans()):
            lines.append(
                {
                    "id": f"grant-{physician}",
                    "kind": "privilege.granted",
                    "effective": "2006-01-01",
                    "by": "H1",
                    "institution": "H1",
                    "physician": physician,
                    "level": draw(st.integers(1, 4)),
                    "procedures": draw(st.lists(st.sampled_from(TECHS), max_size=3, unique=True)),
                }
            )
    techs = [TECHS[0]] if busy else draw(st.lists(st.sampled_from(TECHS), min_size=1, max_size=2, unique=True))
    drawn = draw(st.lists(_events(near, techs, PHYSICIANS[:2] if busy else PHYSICIANS), min_size=1, max_size=60))
    decisions = [
        _event(kind, day, tech, physician, n, extra) for n, (kind, day, tech, physician, extra) in enumerate(drawn)
    ]
    # Same-day decisions in either log order: a case recorded before or after the filing of its day.
    decisions = (
        draw(st.permutations(decisions)) if draw(st.booleans()) else sorted(decisions, key=lambda d: d["effective"])
    )
    return log_of([*lines, *decisions]), province


def classes_of(log: Log) -> Callable[[str], set[str | None]]:
    """Every class each technology has in the log's catalogue (what ``Views`` gives ``Facts``)."""
    found: dict[str, set[str | None]] = {}
    for _, r in log:
        if r.kind.startswith("technology."):
            found.setdefault(f"{r.fields['catalog']}:{r.fields['code']}", set()).add(r.fields.get("class"))
    return lambda ref: found.get(ref, set())


def judged_both_ways(log: Log, institution: str, as_of: date) -> None:
    """Every rule on the facts ``Views`` builds (with ``classes_of``) finds what its reference finds
    on plain facts; the filing clocks and states are the reference's too."""
    pm = plugin_manager()
    tech_class, calendar_for = TechClasses(log), calendars_of(pm)
    fast = facts_for(log, institution, as_of=as_of, pm=pm, tech_class=tech_class, calendar_for=calendar_for)
    fast = dataclasses.replace(fast, classes_of=classes_of(log))
    plain = facts_for(log, institution, as_of=as_of, pm=pm, tech_class=tech_class, calendar_for=calendar_for)
    reference_clocks = case_by_case.clocks(plain)
    plain.shared("national.clocks", lambda _: reference_clocks)  # the three other clock rules read these
    assert clocks(fast) == reference_clocks
    for clock in reference_clocks:
        for f in [None, *clock.filings]:
            day = f.record.effective if f else as_of
            for on in (day, day - timedelta(days=1)):
                assert clock.filing_state(on) == case_by_case.filing_state(clock, on)
    for rule in rules_of(pm):
        if rule.applies_to(fast.jurisdiction):
            reference = case_by_case.CHECKS.get(rule.id, rule.check)
            assert list(rule.check(fast)) == list(reference(plain)), (institution, as_of, rule.id)


@SETTINGS
@given(history=histories(), picks=st.lists(st.sampled_from((*TURNS, date(2027, 6, 30))), min_size=1, max_size=2))
def test_rules_find_what_they_found_case_by_case(history: tuple[Log, str], picks: list[date]) -> None:
    log, _ = history
    for as_of in sorted({*picks, date(2030, 1, 1)}):
        judged_both_ways(log, "H1", as_of)


def test_rules_find_what_they_found_case_by_case_in_the_demo() -> None:
    """The shipped demo histories (Hunan's and Chongqing's), judged both ways as of several days."""
    log = demo_log()
    for institution in institutions_in(log):
        for as_of in (date(2017, 12, 31), date(2018, 12, 31), date(2019, 6, 30), date(2026, 1, 1)):
            judged_both_ways(log, institution, as_of)


SAME_DAY = [
    # HN-2018 附件2 注2: a case recorded before the filing of its day is not under it; one after is.
    (
        "湖南省",
        [
            case("c0", "2019-01-10"),
            submitted("f1", "2019-01-10"),
            case("c1", "2019-01-10"),
            case("c2", "2019-03-01"),
            {**REGISTERED, "id": "dereg", "kind": "physician.deregistered", "effective": "2019-03-01"},
            case("c3", "2019-03-01"),
            submitted("f2", "2019-03-01", lead="D1"),
            case("c4", "2019-03-02"),
            case("c5", "2019-03-02"),
        ],
    ),
    # CQ-2017#二(二): cases before, on and after the notice of the filing ran out, up to MTM-2018.
    (
        "重庆市",
        [
            case("c1", "2017-06-01"),
            completed("f1", "2017-06-05", by="重庆市卫生和计划生育委员会"),
            case("c2", "2017-06-09"),
            case("c3", "2017-06-12"),
            case("c4", "2018-11-02"),
        ],
    ),
    # MTM-2018#11: the 15 working days after the first case run into a year the calendar does not know;
    # or they do not, and the cases after them are unfiled up to the end of the last year it knows.
    ("广东省", [case("c1", "2026-12-20"), case("c2", "2027-01-04"), case("c3", "2027-02-01")]),
    (
        "广东省",
        [
            case("c1", "2026-11-02"),
            case("c2", "2026-12-01"),
            case("c3", "2026-12-28"),
            case("c4", "2027-01-04"),
            case("c5", "2027-02-01"),
        ],
    ),
]


@pytest.mark.parametrize(("province", "decisions"), SAME_DAY)
def test_rules_find_what_they_found_case_by_case_on_the_same_days(
    province: str, decisions: list[dict[str, Any]]
) -> None:
    log = hunan_history(
        *[{**d, "technology": "national:G10"} if "technology" in d else d for d in decisions], province=province
    )
    for as_of in (date(2018, 6, 30), date(2019, 1, 10), date(2019, 3, 1), date(2027, 6, 30), date(2030, 1, 1)):
        judged_both_ways(log, "H1", as_of)


# --- the lookups the rules skip by ------------------------------------------------------------------


@SETTINGS
@given(history=histories(), picks=st.lists(days, min_size=1, max_size=6))
def test_uses_split_by_use_and_standing_answers_registered_and_privilege(
    history: tuple[Log, str], picks: list[date]
) -> None:
    log, _ = history
    facts = facts_for(log, "H1", as_of=date(2030, 1, 1))
    # ``uses``: the same uses as ``by_use``, in its order, each split into cases and the rest.
    assert list(facts.uses) == list(facts.by_use)
    for key, use in facts.uses.items():
        whole = facts.by_use[key]
        assert use.cases == [d for d in whole if d.record.kind == "case.performed"]
        assert use.case_days == [d.record.effective for d in use.cases]
        assert use.others == [d for d in whole if d.record.kind != "case.performed"]
        assert facts.history(use) == whole
        for since in picks:
            for until in (None, *picks):
                assert use.cases_on(since, until) == [
                    d
                    for d in use.cases
                    if since <= d.record.effective and (until is None or d.record.effective < until)
                ]
        for k, other in enumerate(use.others):
            before = use.others[k + 1] if k + 1 < len(use.others) else None
            assert use.cases_after(other, before) == [
                d
                for d in whole[whole.index(other) + 1 : (whole.index(before) if before else len(whole))]
                if d.record.kind == "case.performed"
            ]
    # ``standing``: ``registered`` and ``privilege`` at once, the same on every day it says it holds.
    for physician in PHYSICIANS:
        for on in picks:
            now = facts.standing(physician, "H1", on)
            assert now.since <= on < now.until
            for day in {on, now.since, now.until - timedelta(days=1)}:
                assert now.registered == _registered(facts, physician, day)
                assert now.grant == _grant(facts, physician, day)


def _registered(facts: Facts, physician: str, on: date) -> bool:
    state = False
    for d in facts.decisions:
        f = d.record.fields
        if (
            d.record.kind in ("physician.registered", "physician.deregistered")
            and d.record.effective <= on
            and (f.get("physician") == physician and f.get("institution") == "H1")
        ):
            state = d.record.kind == "physician.registered"
    return state


def _grant(facts: Facts, physician: str, on: date) -> Resolved | None:
    grant = None
    for d in facts.decisions:
        f = d.record.fields
        if d.record.effective <= on and f.get("physician") == physician and f.get("institution") == "H1":
            if d.record.kind == "privilege.granted":
                grant = d
            elif d.record.kind in ("privilege.suspended", "privilege.revoked"):
                grant = None
    return grant


def test_may_be_answers_yes_when_the_lookup_cannot_say() -> None:
    """``Facts.may_be`` (MTM-2018#9: only technologies ever prohibited are looked up case by case)."""
    log = log_of([])
    facts = facts_for(log, None, as_of=date(2020, 1, 1))
    assert facts.classes_of is None and facts.may_be("national:X", "prohibited")
    facts = dataclasses.replace(facts, classes_of=lambda ref: {"restricted"} if ref == "national:X" else set())
    assert facts.may_be("national:X", "restricted", "prohibited")
    assert not facts.may_be("national:X", "prohibited")
    assert not facts.may_be("national:Y", "restricted")


def test_filing_spans_say_the_filing_state_of_every_day() -> None:
    """MTM-2018#11 and HN-2018 附件2 注2: the filing state of a day is the last span started by it
    (the filing part of the use's standing, ``projections.standing``)."""
    start = date(2020, 1, 1)
    kinds = ("filing.submitted", "filing.rejected", "filing.submitted", "filing.completed", "filing.submitted")
    filings = tuple(
        Resolved(k, _record(f"F{k}", kind, start + timedelta(days=k // 2 * 5))) for k, kind in enumerate(kinds)
    )
    clock = Clock("H1", "hunan:S14", False, None, None, None, filings, tuple(use_states(filings)))
    assert [(since, state) for since, state, _ in clock.filing_spans] == [
        (date.min, "none"),
        (start, "rejected"),
        (start + timedelta(days=5), "completed"),
        (start + timedelta(days=10), "completed"),
    ]
    span_days = [since for since, _, _ in clock.filing_spans]
    for offset in range(-2, 14):
        day = start + timedelta(days=offset)
        assert clock.filing_state(day) == case_by_case.filing_state(clock, day)
        assert clock.filing_spans[bisect_right(span_days, day) - 1][1:] == case_by_case.filing_state(clock, day)


def _record(decision_id: str, kind: str, day: date) -> Any:
    from ledger.decisions import DecisionRecord

    return DecisionRecord(decision_id, kind, day, "auth", None, None, {}, {})
