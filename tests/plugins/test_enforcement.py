"""Enforcement, the authorities' clocks, the conditions for use, MTM-2009's grades and the surgical
grading catalogue — each from a small decision file, with its article, and the case on time.

* MTM-2018#41, #44 (MTM-2009#50): a correction deadline passed with use going on; fines outside the
  statutory ranges; a fine before the deadline passed.
* MTM-2018#11: the filing authority's 15 working days; a submission still pending past them.
* CQ-2017#二(二): the notice longer than 5 working days; the experts' review after the notice began;
  the recorded notice dates win over computed ones.
* MTM-2018#21 (management committee), MTM-2018#11(1) / HN-2018#二(二) (self-assessment), MTM-2009#38–39.
* MTM-2018#24: the institution page shows the surgical grading catalogue (手术分级管理目录).

The rules are judged in memory (``plugin_testing.judge``) and, for each area, on a real ledger on
SQLite and PostgreSQL (the ``app`` fixture), through ``Views.trail`` as an inspector reads it.
"""

from __future__ import annotations

import io
import json
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.utils import get_topic
from plugin_testing import (
    case,
    completed,
    ethics,
    facts_for,
    hunan_history,
    judge,
    log_of,
    rejected,
    submitted,
    summary,
)

from ledger.application import LedgerApplication
from ledger.events import EVENT_CLASSES, GradingCataloguePublished, SelfAssessmentConcluded
from plugins.chongqing.commands import notice_rows
from plugins.national.clocks import check_authority_late
from projections.findings import Deadline, Finding
from projections.grading import GradedProcedure, grading_catalogue

CITY = "长沙市卫生健康委员会"
CQ_CITY = "重庆市卫生健康委员会"


def only(found: list[Finding], *rules: str) -> list[Finding]:
    return [f for f in found if f.rule in rules]


def order(
    oid: str, day: str, deadline: str, tech: str | None = "hunan:S14", basis: str = "MTM-2018#41"
) -> dict[str, Any]:
    d: dict[str, Any] = {
        "id": oid,
        "kind": "correction.ordered",
        "effective": day,
        "by": CITY,
        "basis": basis,
        "institution": "H1",
        "deadline": deadline,
    }
    if tech is not None:
        d["technology"] = tech
    return d


def fine(
    pid: str, day: str, amount: int, basis: str | None = "MTM-2018#41", reason: str = "逾期未改正"
) -> dict[str, Any]:
    d: dict[str, Any] = {
        "id": pid,
        "kind": "penalty.imposed",
        "effective": day,
        "by": CITY,
        "institution": "H1",
        "amount_yuan": amount,
        "reason": reason,
    }
    if basis is not None:
        d["basis"] = basis
    return d


def use_decision(kind: str, did: str, day: str, tech: str = "hunan:S14", **more: Any) -> dict[str, Any]:
    return {"id": did, "kind": kind, "effective": day, "by": CITY, "institution": "H1", "technology": tech, **more}


def review(rid: str, day: str, tech: str, outcome: str = "approved", committee: str = "management") -> dict[str, Any]:
    return {
        "id": rid,
        "kind": "review.concluded",
        "effective": day,
        "by": "H1",
        "institution": "H1",
        "technology": tech,
        "committee": committee,
        "outcome": outcome,
    }


def assessment(aid: str, day: str, outcome: str, tech: str = "hunan:S14") -> dict[str, Any]:
    return {
        "id": aid,
        "kind": "self_assessment.concluded",
        "effective": day,
        "by": "H1",
        "basis": "MTM-2018#11",
        "institution": "H1",
        "technology": tech,
        "outcome": outcome,
        "standard": "人工关节置换技术临床应用管理规范",
    }


def grant(gid: str, day: str, level: int) -> dict[str, Any]:
    return {
        "id": gid,
        "kind": "privilege.granted",
        "effective": day,
        "by": "H1",
        "institution": "H1",
        "physician": "D1",
        "level": level,
        "procedures": [],
    }


FILED_S14 = (
    ethics("e", "2019-04-01"),
    case("c1", "2019-04-22"),
    submitted("f1", "2019-05-06"),
    completed("k1", "2019-05-20"),
)
"""A Hunan hospital's use of hunan:S14, filed on time: the ground every scenario starts from."""


def recorded(app: LedgerApplication, *decisions: dict[str, Any]) -> None:
    """Import ``decisions`` as one decision file (JSON Lines), through the ordinary import path."""
    text = "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in decisions)
    app.import_lines(io.BytesIO(text.encode()), source="small.jsonl")


def trail_findings(app: LedgerApplication, as_of: date, institution: str = "H1") -> list[Finding]:
    from projections.views import Views

    return Views(app).trail(institution=institution, as_of=as_of).findings


def decisions_of(log: list[tuple[int, Any]]) -> list[dict[str, Any]]:
    """The log back as decision-file lines (the in-memory tests and the ledger read the same file)."""
    return [json.loads(r.to_json()) for _, r in log]


# --- MTM-2018#41, #44; MTM-2009#50: correction deadlines -------------------------------------------------


def test_mtm2018_41_use_after_the_correction_deadline_with_nothing_stopping_it() -> None:
    log = hunan_history(
        *FILED_S14, order("o1", "2020-09-10", "2020-10-30"), case("c2", "2020-11-05"), case("c3", "2020-11-20")
    )
    found = only(judge(log, as_of=date(2020, 12, 31)), "national.correction-ignored")
    assert summary(found) == {("national.correction-ignored", "MTM-2018#41", ("o1", "c2"))}
    assert found[0].effective == date(2020, 11, 5) and found[0].severity == "serious"
    assert "cases from 2020-11-05 to 2020-11-20" in found[0].message and "2020-10-30" in found[0].message
    # As of the deadline's day nothing is late yet.
    assert only(judge(log, as_of=date(2020, 10, 30)), "national.correction-ignored") == []


@pytest.mark.parametrize(
    "after",
    [
        [case("c2", "2020-10-20")],  # only before the deadline
        [use_decision("use.suspended", "s1", "2020-10-31", reason="逾期未改正，暂停"), case("c2", "2020-11-05")],
        [
            use_decision("use.suspended", "s1", "2020-10-01", reason="暂停"),
            use_decision("use.resumed", "r1", "2020-10-20"),
            case("c2", "2020-11-05"),
        ],
        [use_decision("use.stopped", "s1", "2020-10-31", reason="停止"), case("c2", "2020-11-05")],
    ],
    ids=["before-deadline", "suspended-after-deadline", "suspended-and-lifted", "stopped"],
)
def test_mtm2018_41_no_finding_when_use_stopped_in_time_or_was_acted_on(after: list[dict[str, Any]]) -> None:
    log = hunan_history(*FILED_S14, order("o1", "2020-09-10", "2020-10-30"), *after)
    assert only(judge(log, as_of=date(2020, 12, 31)), "national.correction-ignored") == []


def test_mtm2018_41_an_order_naming_no_technology_covers_the_restricted_ones() -> None:
    log = hunan_history(
        *FILED_S14,
        order("o1", "2020-09-10", "2020-10-30", tech=None),
        case("c2", "2020-11-05"),
        case("x1", "2020-11-06", "national:C3"),
    )
    found = only(judge(log, as_of=date(2020, 12, 31)), "national.correction-ignored")
    assert [(f.technology, f.decisions) for f in found] == [("hunan:S14", ("o1", "c2"))]  # C3 is not restricted


def test_mtm2018_44_order_is_cited_and_mtm2009_50_before_2018() -> None:
    log = hunan_history(
        *FILED_S14, order("o1", "2020-09-10", "2020-10-30", basis="MTM-2018#44"), case("c2", "2020-11-05")
    )
    assert {f.article for f in only(judge(log, as_of=date(2020, 12, 31)), "national.correction-ignored")} == {
        "MTM-2018#44"
    }
    early = hunan_history(
        order("o0", "2016-01-10", "2016-03-01", tech="national:G10", basis="MTM-2009#50"),
        case("g1", "2016-03-15", "national:G10"),
    )
    assert summary(only(judge(early, as_of=date(2016, 12, 31)), "national.correction-ignored")) == {
        ("national.correction-ignored", "MTM-2009#50", ("o0", "g1"))
    }


# --- MTM-2018#41, #42, #44: fines --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "basis", "reason", "article"),
    [
        (50000, "MTM-2018#41", "逾期未改正", "MTM-2018#41"),
        (2000, "MTM-2018#41", "逾期未改正", None),
        (3000, "MTM-2018#41", "逾期未改正", None),
        (3001, "MTM-2018#41", "逾期未改正", "MTM-2018#41"),
        (20000, "MTM-2018#41", "逾期未改正，造成严重后果", None),
        (2000, "MTM-2018#41", "逾期未改正，造成严重后果", "MTM-2018#41"),
        (30000, "MTM-2018#41", "造成严重后果", None),
        (30001, "MTM-2018#41", "造成严重后果", "MTM-2018#41"),
        (30000, "MTM-2018#44", "管理混乱导致严重不良后果，逾期不改", None),
        (35000, "MTM-2018#44", "管理混乱导致严重不良后果，逾期不改", "MTM-2018#44"),
        (1000, "MTM-2018#42", "培训基地未备案", "MTM-2018#42"),
        (50000, None, "依据《办法》第四十一条，逾期未改正", "MTM-2018#41"),
        (50000, None, "逾期未改正", "MTM-2018#41"),
        (50000, "MTM-2018#43", "开展禁止类技术", None),
        (50000, "医疗机构管理条例#47", "超出登记范围", None),
    ],
)
def test_mtm2018_41_44_fines_outside_the_statutory_ranges(
    amount: int, basis: str | None, reason: str, article: str | None
) -> None:
    log = hunan_history(
        *FILED_S14, order("o1", "2020-09-10", "2020-10-30"), fine("p1", "2020-11-16", amount, basis, reason)
    )
    found = only(judge(log, as_of=date(2020, 12, 31)), "national.fine-range")
    assert summary(found) == ({("national.fine-range", article, ("p1",))} if article else set())


def test_fines_before_2018_11_01_are_not_judged_by_mtm2018() -> None:
    log = hunan_history(fine("p0", "2017-06-01", 50000, "MTM-2009#50"))
    assert only(judge(log, as_of=date(2017, 12, 31)), "national.fine-range", "national.fine-before-deadline") == []


@pytest.mark.parametrize(
    ("before", "expected"),
    [
        ([order("o1", "2020-09-10", "2020-10-30")], set()),
        ([order("o1", "2020-09-10", "2020-12-30")], {("national.fine-before-deadline", "MTM-2018#41", ("p1", "o1"))}),
        ([], {("national.fine-before-deadline", "MTM-2018#41", ("p1",))}),
    ],
    ids=["deadline-passed", "deadline-not-yet", "no-order"],
)
def test_mtm2018_41_a_fine_follows_a_passed_correction_deadline(
    before: list[dict[str, Any]], expected: set[Any]
) -> None:
    log = hunan_history(*FILED_S14, *before, fine("p1", "2020-11-16", 2000))
    assert summary(only(judge(log, as_of=date(2020, 12, 31)), "national.fine-before-deadline")) == expected


# --- MTM-2018#11: the filing authority's clock -------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "late"),
    [
        (completed("k1", "2019-03-22"), False),  # the 15th working day after 2019-03-01
        (completed("k1", "2019-03-25"), True),
        (completed("k1", "2019-04-15"), True),
        (rejected("k1", "2019-04-15"), True),
    ],
)
def test_mtm2018_11_the_authority_answers_within_15_working_days(answer: dict[str, Any], late: bool) -> None:
    log = hunan_history(submitted("f1", "2019-03-01"), answer)
    found = only(judge(log, as_of=date(2019, 12, 31)), "national.authority-late", "national.submission-pending")
    if not late:
        assert found == []
        return
    assert summary(found) == {("national.authority-late", "MTM-2018#11", ("k1", "f1"))}
    assert found[0].effective == date(2019, 3, 23) and found[0].severity == "irregular"
    assert "by 2019-03-22" in found[0].message


def test_mtm2018_11_a_submission_pending_past_the_authoritys_clock() -> None:
    log = hunan_history(submitted("f1", "2019-03-01"))
    rules = ("national.authority-late", "national.submission-pending")
    assert only(judge(log, as_of=date(2019, 3, 22)), *rules) == []
    found = only(judge(log, as_of=date(2019, 3, 25)), *rules)
    assert summary(found) == {("national.submission-pending", "MTM-2018#11", ("f1",))}
    assert found[0].effective == date(2019, 3, 23)
    years_later = only(judge(log, as_of=date(2023, 6, 1)), *rules)
    assert [f.rule for f in years_later] == ["national.submission-pending"]
    # Once answered, the same delay shows as the authority's late answer instead.
    answered = hunan_history(submitted("f1", "2019-03-01"), completed("k1", "2019-04-15"))
    assert [f.rule for f in only(judge(answered, as_of=date(2023, 6, 1)), *rules)] == ["national.authority-late"]


def test_mtm2018_11_a_new_form_for_a_filed_use_starts_no_authority_clock() -> None:
    """HN-2018 附件2 注2: a new form after a change of lead is recorded; the use stays filed."""
    log = hunan_history(*FILED_S14, submitted("f2", "2021-07-20"))
    rules = ("national.authority-late", "national.submission-pending")
    assert only(judge(log, as_of=date(2022, 1, 1)), *rules) == []


def test_mtm2018_11_a_provinces_own_authority_deadline_overrides_the_national_one() -> None:
    """A province's ``filing-authority`` deadline replaces the nation's for its institutions and is cited beside it."""
    log = hunan_history(submitted("f1", "2019-03-01"), completed("k1", "2019-03-20"))
    facts = facts_for(log, "H1", as_of=date(2019, 12, 31))
    assert list(check_authority_late(facts)) == []  # the 13th working day: within the nation's 15
    own = Deadline("filing-authority", 10, "HN-TEST#1", "hunan", valid_from=date(2018, 11, 1))
    found = list(check_authority_late(replace(facts, deadlines=[*facts.deadlines, own])))
    assert [(f.rule, f.article, f.effective) for f in found] == [
        ("national.authority-late", "MTM-2018#11, HN-TEST#1", date(2019, 3, 16))
    ]


# --- CQ-2017#二(二): Chongqing's review and notice -------------------------------------------------------------

CQ_BASE: list[dict[str, Any]] = [
    {
        "id": "cat/G04",
        "kind": "technology.listed",
        "effective": "2015-06-29",
        "by": "国家卫生计生委",
        "catalog": "national",
        "code": "G04",
        "name": "同种异体角膜移植技术",
        "class": "restricted",
        "version": "2015",
    },
    {
        "id": "inst",
        "kind": "institution.registered",
        "effective": "2007-10-09",
        "by": "渝中区卫生局",
        "institution": "Q1",
        "name": "测试医院",
        "province": "重庆市",
        "city": "渝中区",
        "category": "医院",
        "level": "二级",
        "licensing_authority": "渝中区卫生健康委员会",
    },
    {
        "id": "sub",
        "kind": "filing.submitted",
        "effective": "2019-04-03",
        "by": "Q1",
        "institution": "Q1",
        "technology": "national:G04",
        "technical_lead": "D9",
        "materials": ["临床应用备案表"],
    },
]


def cq_completion(notice: tuple[str, str], review: str = "2019-04-16") -> dict[str, Any]:
    return {
        "id": "done",
        "kind": "filing.completed",
        "effective": "2019-04-17",
        "by": CQ_CITY,
        "institution": "Q1",
        "technology": "national:G04",
        "chongqing.expert_review": f"{review} 专家形式审核：通过",
        "chongqing.public_notice_start": notice[0],
        "chongqing.public_notice_end": notice[1],
    }


def cq_log(*decisions: dict[str, Any]) -> list[tuple[int, Any]]:
    doc = {
        "id": "doc",
        "kind": "physician.registered",
        "effective": "2009-11-09",
        "by": "渝中区卫生局",
        "physician": "D9",
        "name": "邓医生",
        "institution": "Q1",
        "title": "主任医师",
    }
    return log_of([*CQ_BASE[:2], doc, CQ_BASE[2], *decisions])


CQ_RULES = ("chongqing.notice-overrun", "chongqing.review-after-notice", "chongqing.public-notice")


@pytest.mark.parametrize(
    ("notice", "review", "expected"),
    [
        (("2019-04-17", "2019-04-23"), "2019-04-16", set()),
        (("2019-04-17", "2019-04-30"), "2019-04-16", {("chongqing.notice-overrun", "CQ-2017#二(二)", ("done",))}),
        (("2019-04-17", "2019-04-23"), "2019-04-20", {("chongqing.review-after-notice", "CQ-2017#二(二)", ("done",))}),
    ],
    ids=["on-time", "notice-overrun", "review-after-notice"],
)
def test_cq2017_2_2_review_then_a_notice_of_5_working_days(
    notice: tuple[str, str], review: str, expected: set[Any]
) -> None:
    found = only(judge(cq_log(cq_completion(notice, review)), as_of=date(2019, 12, 31)), *CQ_RULES)
    assert summary(found) == expected
    if notice[1] == "2019-04-30":
        assert found[0].effective == date(2019, 4, 24)  # the notice's 5th working day is 2019-04-23
        assert "11 working days" in found[0].message  # Sunday 2019-04-28 was a make-up working day


def test_cq2017_rules_do_not_judge_hunan() -> None:
    log = hunan_history(*FILED_S14, province="湖南省")
    assert only(judge(log, as_of=date(2019, 12, 31)), *CQ_RULES) == []


# --- MTM-2018#21, #11(1): management review and self-assessment ---------------------------------------------

S19 = {
    "id": "cat/S19",
    "kind": "technology.listed",
    "effective": "2018-11-19",
    "by": "湖南省卫生健康委员会",
    "catalog": "hunan",
    "code": "S19",
    "name": "冠心病介入治疗技术",
    "class": "restricted",
    "version": "HN-2018",
}


@pytest.mark.parametrize(
    ("reviews", "expected"),
    [
        ([], {("national.management-review", "MTM-2018#21", ("c1",))}),
        ([review("m1", "2019-02-01", "hunan:S19")], set()),
        (
            [review("m1", "2019-02-01", "hunan:S19", "rejected"), review("m2", "2019-03-10", "hunan:S19")],
            {("national.management-review", "MTM-2018#21", ("c1", "m1", "m2"))},
        ),
        (
            [review("m1", "2019-02-01", "hunan:S19", committee="ethics")],  # ethics is not the management committee
            {("national.management-review", "MTM-2018#21", ("c1",))},
        ),
    ],
    ids=["none", "approved-before", "rejected-then-approved-after", "ethics-only"],
)
def test_mtm2018_21_management_committee_approves_before_use(reviews: list[dict[str, Any]], expected: set[Any]) -> None:
    log = hunan_history(S19, ethics("e", "2019-01-01", "hunan:S19"), *reviews, case("c1", "2019-03-01", "hunan:S19"))
    assert summary(only(judge(log, as_of=date(2019, 12, 31)), "national.management-review")) == expected


@pytest.mark.parametrize(
    ("assessments", "expected"),
    [
        ([assessment("a1", "2019-04-01", "meets")], set()),
        (
            [assessment("a1", "2019-04-01", "does-not-meet")],
            {("national.self-assessment", "MTM-2018#11(1)", ("c1", "a1"))},
        ),
        (
            [assessment("a1", "2019-04-01", "does-not-meet"), assessment("a2", "2019-04-25", "meets")],
            {("national.self-assessment", "MTM-2018#11(1)", ("c1", "a1", "a2"))},
        ),
        ([assessment("a1", "2019-04-01", "does-not-meet"), assessment("a2", "2019-04-10", "meets")], set()),
    ],
    ids=["meets", "does-not-meet", "meets-only-later", "meets-before-the-case"],
)
def test_mtm2018_11_1_hn2018_2_2_only_a_use_that_meets_its_norm_may_start(
    assessments: list[dict[str, Any]], expected: set[Any]
) -> None:
    log = hunan_history(*assessments, *FILED_S14)
    assert summary(only(judge(log, as_of=date(2019, 12, 31)), "national.self-assessment")) == expected


@pytest.mark.parametrize(
    ("answers", "said"),
    [
        ({}, None),
        ({"是否符合相关医疗技术管理规范要求": "否"}, "是否符合相关医疗技术管理规范要求"),
        ({"是否对照相关医疗技术管理规范进行自我评估": "否"}, "是否对照相关医疗技术管理规范进行自我评估"),
    ],
)
def test_hn2018_2_2_the_filing_form_says_the_norm_was_not_met(answers: dict[str, str], said: str | None) -> None:
    form = {
        "技术编号": "S14",
        "是否对照相关医疗技术管理规范进行自我评估": "是",
        "是否符合相关医疗技术管理规范要求": "是",
        **answers,
    }
    log = hunan_history(
        ethics("e", "2019-04-01"),
        case("c1", "2019-04-22"),
        submitted("f1", "2019-05-06", ext={"hunan.form": form}),
        completed("k1", "2019-05-20"),
    )
    found = only(judge(log, as_of=date(2019, 12, 31)), "hunan.self-assessment")
    if said is None:
        assert found == []
        return
    assert summary(found) == {("hunan.self-assessment", "HN-2018#二(二)", ("f1",))}
    assert said in found[0].message
    elsewhere = hunan_history(
        ethics("e", "2019-04-01"),
        case("c1", "2019-04-22"),
        submitted("f1", "2019-05-06", ext={"hunan.form": form}),
        completed("k1", "2019-05-20"),
        province="广东省",
    )
    assert only(judge(elsewhere, as_of=date(2019, 12, 31)), "hunan.self-assessment") == []


# --- MTM-2009#38-39: grades before 2018-11-01 --------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "level", "expected"),
    [
        ("2016-03-01", 3, {("national.privilege-2009", "MTM-2009#39", ("c1", "g2"))}),
        ("2016-03-01", 2, set()),
        ("2016-03-01", None, set()),
        ("2019-03-01", 3, set()),  # from 2018-11-01: MTM-2018#20 (national.privilege)
    ],
)
def test_mtm2009_38_39_a_case_above_the_granted_grade(day: str, level: int | None, expected: set[Any]) -> None:
    log = hunan_history(grant("g2", "2015-01-05", 2), case("c1", day, "national:G10", level=level))
    found = judge(log, as_of=date(2019, 12, 31))
    assert summary(only(found, "national.privilege-2009")) == expected
    if day >= "2018-11-01":
        assert [f.article for f in only(found, "national.privilege")] == ["MTM-2018#20"]


# --- every area on a real ledger: SQLite and PostgreSQL ----------------------------------------------------


def test_enforcement_and_clocks_in_the_trail_of_a_ledger(app: LedgerApplication) -> None:
    """One small decision file: a correction ignored (MTM-2018#41), a fine above #41's cap, an authority
    late (MTM-2018#11), a submission pending (#11), a case without the management committee (#21), a
    case while the self-assessment says "does not meet" (#11(1)), and an MTM-2009 grade (#38-39)."""
    log = hunan_history(
        S19,
        *FILED_S14,
        order("o1", "2020-09-10", "2020-10-30"),
        case("c2", "2020-11-05"),
        fine("p1", "2020-11-16", 50000),
        submitted("f9", "2019-03-01", "national:G10"),
        completed("k9", "2019-04-15", "national:G10"),
        submitted("f8", "2021-03-01", "hunan:S19"),
        ethics("e8", "2021-01-01", "hunan:S19"),
        case("c8", "2021-03-02", "hunan:S19"),
        assessment("a1", "2021-05-01", "does-not-meet"),
        case("c9", "2021-05-10"),
        grant("g2", "2015-01-05", 2),
        case("c0", "2016-03-01", "national:G10", level=3),
    )
    recorded(app, *decisions_of(log))
    found = {(f.rule, f.article, f.decisions) for f in trail_findings(app, date(2021, 12, 31))}
    assert {
        ("national.correction-ignored", "MTM-2018#41", ("o1", "c2")),
        ("national.fine-range", "MTM-2018#41", ("p1",)),
        ("national.authority-late", "MTM-2018#11", ("k9", "f9")),
        ("national.submission-pending", "MTM-2018#11", ("f8",)),
        ("national.management-review", "MTM-2018#21", ("c8",)),
        ("national.self-assessment", "MTM-2018#11(1)", ("c9", "a1")),
        ("national.privilege-2009", "MTM-2009#39", ("c0", "g2")),
    } <= found
    # As of a day before any of it, none of it: each finding arises on its own day.
    early = {f.rule for f in trail_findings(app, date(2019, 3, 22))}
    assert early.isdisjoint(
        {
            "national.correction-ignored",
            "national.fine-range",
            "national.authority-late",
            "national.submission-pending",
            "national.self-assessment",
        }
    )


def test_on_time_enforcement_and_clocks_give_no_finding_in_a_ledger(app: LedgerApplication) -> None:
    log = hunan_history(
        *FILED_S14,
        order("o1", "2020-09-10", "2020-10-30"),
        case("c2", "2020-10-20"),
        use_decision("use.suspended", "s1", "2020-10-31", reason="逾期未改正"),
        fine("p1", "2020-11-16", 2000),
        assessment("a1", "2019-04-01", "meets"),
    )
    recorded(app, *decisions_of(log))
    rules = {
        "national.correction-ignored",
        "national.fine-range",
        "national.fine-before-deadline",
        "national.authority-late",
        "national.submission-pending",
        "national.management-review",
        "national.self-assessment",
        "national.privilege-2009",
    }
    assert [f for f in trail_findings(app, date(2021, 12, 31)) if f.rule in rules] == []


def test_chongqing_notice_as_recorded_in_a_ledger(app: LedgerApplication) -> None:
    """CQ-2017#二(二): the notice recorded (2019-04-17 … 04-30) is the one shown, not 5 working days
    computed from the completion (… 04-23); and its overrun is a finding."""
    from projections.views import Views

    recorded(app, *decisions_of(cq_log(cq_completion(("2019-04-17", "2019-04-30")))))
    views = Views(app)
    [row] = notice_rows(views, as_of=date(2019, 4, 26))
    assert (row["technology"], row["filed_on"], row["notice_until"]) == ("national:G04", "2019-04-17", "2019-04-30")
    assert notice_rows(views, as_of=date(2019, 5, 6)) == []
    found = {(f.rule, f.article) for f in views.trail(institution="Q1", as_of=date(2019, 12, 31)).findings}
    assert ("chongqing.notice-overrun", "CQ-2017#二(二)") in found


def test_chongqing_notice_computed_only_where_none_is_recorded(app: LedgerApplication) -> None:
    from projections.views import Views

    bare = {
        "id": "done",
        "kind": "filing.completed",
        "effective": "2019-04-17",
        "by": CQ_CITY,
        "institution": "Q1",
        "technology": "national:G04",
        "chongqing.expert_review": "2019-04-16 专家形式审核：通过",
    }
    recorded(app, *decisions_of(cq_log(bare)))
    views = Views(app)
    assert [r["notice_until"] for r in notice_rows(views, as_of=date(2019, 4, 23))] == ["2019-04-23"]
    assert notice_rows(views, as_of=date(2019, 4, 24)) == []


# --- MTM-2018#24: the surgical grading catalogue ----------------------------------------------------------

CATALOGUE_2019 = {
    "id": "gc1",
    "kind": "grading_catalogue.published",
    "effective": "2019-01-02",
    "by": "H1",
    "basis": "MTM-2018#18",
    "institution": "H1",
    "version": "2019年版",
    "procedures": {"阑尾切除术": 2, "人工膝关节置换术": 4, "腹腔镜胆囊切除术": 3},
}
CATALOGUE_2021 = {
    "id": "gc2",
    "kind": "grading_catalogue.published",
    "effective": "2021-01-04",
    "by": "H1",
    "basis": "MTM-2018#18",
    "institution": "H1",
    "version": "2021年版",
    "procedures": {"阑尾切除术": 2, "人工膝关节置换术": 4, "经皮冠状动脉介入治疗术": 4},
}


def test_new_kinds_have_pinned_topics_and_old_files_need_none() -> None:
    assert get_topic(SelfAssessmentConcluded) == "ledger.events:SelfAssessmentConcluded"
    assert get_topic(GradingCataloguePublished) == "ledger.events:GradingCataloguePublished"
    assert EVENT_CLASSES["self_assessment.concluded"] is SelfAssessmentConcluded
    assert EVENT_CLASSES["grading_catalogue.published"] is GradingCataloguePublished


def test_mtm2018_24_grading_catalogue_in_force_as_of_and_as_known(app: LedgerApplication) -> None:
    from projections.views import Views

    recorded(app, *decisions_of(hunan_history(CATALOGUE_2019)))
    first_known = app.position()
    recorded(app, CATALOGUE_2021)
    views = Views(app)
    assert grading_catalogue(views, "H1", as_of=date(2018, 12, 31)) is None
    old = grading_catalogue(views, "H1", as_of=date(2020, 6, 1))
    assert old is not None and (old.version, old.since, old.decision) == ("2019年版", date(2019, 1, 2), "gc1")
    assert old.procedures == (
        GradedProcedure("人工膝关节置换术", 4),
        GradedProcedure("腹腔镜胆囊切除术", 3),
        GradedProcedure("阑尾切除术", 2),
    )
    new = grading_catalogue(views, "H1", as_of=date(2022, 1, 1))
    assert new is not None and new.decision == "gc2"
    assert GradedProcedure("经皮冠状动脉介入治疗术", 4) in new.procedures
    assert GradedProcedure("腹腔镜胆囊切除术", 3) not in new.procedures  # a new catalogue replaces the old whole
    before = grading_catalogue(views, "H1", as_of=date(2022, 1, 1), known_at=first_known)
    assert before is not None and before.decision == "gc1"
    recorded(
        app,
        {
            "id": "gc2-fix",
            "kind": "decision.corrected",
            "effective": "2021-02-01",
            "by": "H1",
            "corrects": "gc2",
            "fields": {"procedures": {"阑尾切除术": 1}},
        },
    )
    fixed = grading_catalogue(Views(app), "H1", as_of=date(2022, 1, 1))
    assert fixed is not None and fixed.procedures == (GradedProcedure("阑尾切除术", 1),)


def test_mtm2018_24_the_institution_page_shows_its_grading_catalogue(app: LedgerApplication, tmp_path: Path) -> None:
    from projections.publish import publish, slug
    from projections.views import Views

    recorded(app, *decisions_of(hunan_history(CATALOGUE_2019, CATALOGUE_2021)))
    publish(Views(app), tmp_path / "site", province="hunan", as_of=date(2022, 1, 1))
    html = (tmp_path / f"site/hunan/institutions/{slug('H1')}.html").read_text(encoding="utf-8")
    section = html[html.index("<h2>手术分级管理目录</h2>") : html.index("<h2>手术分级授权</h2>")]
    assert "2021年版" in section and "2021-01-04" in section and "gc2" in section
    assert '经皮冠状动脉介入治疗术</td><td data-label="手术级别">四级手术' in section
    assert '阑尾切除术</td><td data-label="手术级别">二级手术' in section
    assert "腹腔镜胆囊切除术" not in section
    publish(Views(app), tmp_path / "old", province="hunan", as_of=date(2018, 12, 1))
    old = (tmp_path / f"old/hunan/institutions/{slug('H1')}.html").read_text(encoding="utf-8")
    assert "未公布手术分级管理目录" in old
