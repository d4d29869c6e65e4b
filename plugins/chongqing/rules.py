"""CQ-2017 (渝卫发〔2017〕44号): Chongqing's filings, their authorities, expert review and public notice.

CQ-2017 (2017-05-22) abolished admission approval in Chongqing and put two kinds of technology
under filing (一): 第二类 (the 35 of 渝卫医〔2010〕46号 and their like) and the 15 restricted ones.
Its §二(二) says who receives a filing and what follows:

* ``chongqing.filing-authority`` — a 第二类 filing goes to the institution's local authority (区县,
  i.e. the one that issued its licence), a city-run (委属) institution's to the city; a restricted
  filing always goes to the city (重庆市卫生健康委员会, in 2017 重庆市卫生和计划生育委员会);
* ``chongqing.expert-review`` — for a restricted filing the city has experts of a technical-audit
  body do a formal review of capability (形式审核) before the notice (``chongqing.expert_review``);
* ``chongqing.public-notice`` — every filing is publicly noticed (公示) for 5 working days, the first
  day counted (``chongqing.public_notice_start`` … ``chongqing.public_notice_end``, counted on
  Chongqing's calendar with the ``public-notice`` deadline);
* ``chongqing.use-before-filing`` — before MTM-2018, CQ-2017 asked an institution that "拟新开展"
  (intends to start) a technology to file first; a filing counts as done only once its notice has
  run, so a case before that is use without a filing. From 2018-11-01 MTM-2018#11's order (first
  case, then filing) applies and the national rules judge it.

All apply to Chongqing's institutions only, to decisions from 2017-05-22.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, timedelta

from ledger import CalendarError, DecisionRecord
from projections import Deadline, Facts, Finding, Resolved, Rule

CHONGQING = "chongqing"
CQ2017 = date(2017, 5, 22)
MTM2018_START = date(2018, 11, 1)
CITY_AUTHORITIES = ("重庆市卫生健康委员会", "重庆市卫生和计划生育委员会", "重庆市卫生计生委", "重庆市卫生健康委")
"""The city's health authority under its 2018 name and its 2017 one (the same body)."""

EXPERT_REVIEW = "chongqing.expert_review"
NOTICE_START = "chongqing.public_notice_start"
NOTICE_END = "chongqing.public_notice_end"
KNOWN_FIELDS = (EXPERT_REVIEW, NOTICE_START, NOTICE_END)

DEADLINES: tuple[Deadline, ...] = (Deadline("public-notice", 5, "CQ-2017#二(二)", CHONGQING, valid_from=CQ2017),)
"""CQ-2017#二(二): "公示期为5个工作日" (counting the notice's first day)."""

_DATE = re.compile(r"\A\d{4}-\d{2}-\d{2}\Z")


def validate(decision: DecisionRecord) -> Iterator[tuple[str, str]]:
    """Refuse ``chongqing.*`` fields that cannot be what they claim: unknown names, notice dates not
    written YYYY-MM-DD or ending before they start, and these fields on a decision other than the
    filing's completion (where CQ-2017 puts the review and the notice)."""
    ext = decision.extensions
    for name in sorted(ext):
        if name.startswith("chongqing.") and name not in KNOWN_FIELDS:
            yield name, f"unknown Chongqing field; Chongqing's fields are {', '.join(KNOWN_FIELDS)}"
        elif name in KNOWN_FIELDS and decision.kind != "filing.completed":
            yield name, f"belongs on filing.completed (the city's review and notice), not on {decision.kind}"
    if EXPERT_REVIEW in ext and (not isinstance(ext[EXPERT_REVIEW], str) or not ext[EXPERT_REVIEW].strip()):
        yield EXPERT_REVIEW, "expected text describing the experts' formal review and its result"
    days = {}
    for name in (NOTICE_START, NOTICE_END):
        if name in ext:
            value = ext[name]
            if not isinstance(value, str) or not _DATE.match(value):
                yield name, f"expected a date YYYY-MM-DD, got {value!r}"
                continue
            try:
                days[name] = date.fromisoformat(value)
            except ValueError:
                yield name, f"{value} is not a real date"
    if len(days) == 2 and days[NOTICE_END] < days[NOTICE_START]:
        yield NOTICE_END, f"the notice ends ({days[NOTICE_END]}) before it starts ({days[NOTICE_START]})"


def _institution_on(facts: Facts, day: date) -> Resolved | None:
    current = None
    for d in facts.of_kind("institution.registered"):
        if d.record.effective <= day:
            current = d
    return current


def _filings(facts: Facts) -> Iterator[tuple[Resolved, str]]:
    """Completed filings from CQ-2017 on, of the classes it files (restricted, class 2), with the class."""
    for d in facts.of_kind("filing.completed"):
        r = d.record
        if r.effective < CQ2017:
            continue
        tech_class = facts.tech_class(r.fields["technology"], r.effective)
        if tech_class in ("restricted", "class2"):
            yield d, tech_class


def check_filing_authority(facts: Facts) -> Iterator[Finding]:
    """CQ-2017#二(二), #三: restricted filings with the city; 第二类 with the authority of the institution's
    area (the one that issued its licence), 委属 institutions' with the city."""
    for d, tech_class in _filings(facts):
        r = d.record
        inst = _institution_on(facts, r.effective)
        if tech_class == "restricted":
            expected: tuple[str, ...] = CITY_AUTHORITIES
            what = "the city (限制类技术向市卫生健康委备案)"
        else:
            if inst is None:
                continue
            licensing = inst.record.fields["licensing_authority"]
            city_run = licensing in CITY_AUTHORITIES
            expected = CITY_AUTHORITIES if city_run else (licensing,)
            what = "the city (委属医疗机构)" if city_run else f"the local authority {licensing} (第二类)"
        if r.by.strip() in expected:
            continue
        yield Finding.of(
            FILING_AUTHORITY,
            d,
            f"{r.fields['technology']} ({tech_class}) filed with {r.by}; CQ-2017 files it with {what}",
            severity="irregular",
        )


def check_expert_review(facts: Facts) -> Iterator[Finding]:
    """CQ-2017#二(二): "市卫生计生委将委托医疗技术审核机构专家对…备案表进行临床应用能力形式审核，审核通过后公示"."""
    for d, tech_class in _filings(facts):
        r = d.record
        if tech_class != "restricted" or r.extensions.get(EXPERT_REVIEW):
            continue
        yield Finding.of(
            NO_EXPERT_REVIEW,
            d,
            f"restricted filing of {r.fields['technology']} completed without a recorded expert formal review",
            severity="irregular",
        )


def notice_end(facts: Facts, filing: DecisionRecord) -> date | None:
    """The last day of a filing's public notice: as recorded, else 5 working days from its completion."""
    recorded = filing.extensions.get(NOTICE_END)
    if isinstance(recorded, str):
        return date.fromisoformat(recorded)
    deadline = facts.deadline("public-notice", filing.effective)
    if deadline is None:
        return None
    try:
        return (
            facts.calendar().add_workdays(filing.effective, deadline.working_days - 1)
            if deadline.working_days > 1
            else filing.effective
        )
    except CalendarError:
        return None


def check_public_notice(facts: Facts) -> Iterator[Finding]:
    """CQ-2017#二(二): "审核通过后公示，公示期为5个工作日" — every filing (第二类 and restricted) is
    noticed for 5 working days, its first day counted; a missing or shorter notice is a finding."""
    for d, _ in _filings(facts):
        r = d.record
        start, end = r.extensions.get(NOTICE_START), r.extensions.get(NOTICE_END)
        deadline = facts.deadline("public-notice", r.effective)
        if deadline is None:
            continue
        problem = None
        if not isinstance(start, str) or not isinstance(end, str):
            problem = "no public notice (公示) recorded"
        else:
            first, last = date.fromisoformat(start), date.fromisoformat(end)
            try:
                days = facts.calendar().workdays_between(first - timedelta(days=1), last)
            except CalendarError as e:
                problem = f"the notice's length cannot be counted: {str(e).split('. This calendar')[0]}"
            else:
                if days < deadline.working_days:
                    problem = f"noticed {first} to {last}: {days} working days, not {deadline.working_days}"
                elif first < r.effective:
                    problem = f"the notice starts on {first}, before the filing was completed on {r.effective}"
        if problem is None:
            continue
        yield Finding.of(
            PUBLIC_NOTICE,
            d,
            f"filing of {r.fields['technology']}: {problem}",
            severity="irregular",
            article=deadline.article,
        )


def check_use_before_filing(facts: Facts) -> Iterator[Finding]:
    """CQ-2017#二(二) (with #二(一)): between 2017-05-22 and 2018-10-31, an institution that starts a restricted or
    第二类 technology files first; the filing counts once its 5-working-day notice has run. A case before
    that — in a use begun under CQ-2017 — is use without a filing. A completion counts only when it
    filed a live submission (the use's standing, ``projections.standing``)."""
    for (institution, technology), use in sorted(facts.uses.items()):
        if not use.cases or use.case_days[0] < CQ2017:
            continue  # begun before CQ-2017: the earlier regime's approval or filing governs it
        cases = use.cases_on(CQ2017, MTM2018_START)
        if not cases or not facts.may_be(technology, "restricted", "class2"):
            continue
        # The completions that filed the use (``projections.standing``): not one void for want of a
        # live submission (MTM-2018#11; CQ-2017#二(二) files what the institution submitted).
        ends = [
            notice_end(facts, s.decision.record)
            for s in facts.use_states((institution, technology))
            if s.decision.record.kind == "filing.completed" and not s.unbacked
        ]
        done_from = min((end + timedelta(days=1) for end in ends if end is not None), default=date.max)
        for case in cases:
            r = case.record
            if r.effective >= done_from:
                break
            if facts.tech_class(technology, r.effective) not in ("restricted", "class2"):
                continue
            yield Finding.of(
                USE_BEFORE_FILING,
                case,
                f"case of {technology} on {r.effective} before its filing was done (completed and publicly "
                "noticed for 5 working days)",
                severity="serious",
            )


ONLY_CHONGQING = frozenset({CHONGQING})

FILING_AUTHORITY = Rule(
    "chongqing.filing-authority",
    "CQ-2017#二(二)",
    "Filed with the wrong authority",
    check_filing_authority,
    ONLY_CHONGQING,
)
NO_EXPERT_REVIEW = Rule(
    "chongqing.expert-review",
    "CQ-2017#二(二)",
    "Restricted filing without the experts' formal review",
    check_expert_review,
    ONLY_CHONGQING,
)
PUBLIC_NOTICE = Rule(
    "chongqing.public-notice",
    "CQ-2017#二(二)",
    "Public notice missing or shorter than 5 working days",
    check_public_notice,
    ONLY_CHONGQING,
)
USE_BEFORE_FILING = Rule(
    "chongqing.use-before-filing",
    "CQ-2017#二(二)",
    "Case before the filing was done (CQ-2017)",
    check_use_before_filing,
    ONLY_CHONGQING,
)

RULES: tuple[Rule, ...] = (FILING_AUTHORITY, NO_EXPERT_REVIEW, PUBLIC_NOTICE, USE_BEFORE_FILING)
