"""Chongqing's own clock (CQ-2017#二(二)): the experts' formal review, then a notice of 5 working days.

"市卫生计生委将委托医疗技术审核机构专家对医疗机构提交的备案表进行临床应用能力形式审核，审核通过后公示，公示期为
5个工作日". ``rules`` already flags a notice that is missing, shorter than 5 working days or begun before the
completion; these rules flag the rest of the clock, from what the completion records
(``chongqing.expert_review``, ``chongqing.public_notice_start`` / ``_end``):

* ``chongqing.notice-overrun`` — a notice recorded as running longer than its 5 working days (the
  first day counted): the filing stays "in public notice", not done, for longer than CQ-2017 allows;
* ``chongqing.review-after-notice`` — the review's recorded date (the text starts ``YYYY-MM-DD``) is
  after the notice began: "审核通过后公示", the notice follows a passed review.

The authority's 15 working days from the submission (MTM-2018#11) are the national rule's
(``national.authority-late``), counted on Chongqing's calendar.

``recorded_notice`` is the one reading of a completion's notice dates: the recorded ones win; only
where none is recorded is the end worked out from the completion day (``rules.notice_end``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, timedelta

from ledger import CalendarError, DecisionRecord
from plugins.chongqing.rules import EXPERT_REVIEW, NOTICE_END, NOTICE_START, ONLY_CHONGQING, _filings
from projections import Facts, Finding, Rule

_LEADING_DATE = re.compile(r"\A\s*(\d{4}-\d{2}-\d{2})")


def recorded_notice(record: DecisionRecord) -> tuple[date | None, date | None]:
    """The notice's first and last day as the completion records them (None where not recorded)."""
    out: list[date | None] = []
    for name in (NOTICE_START, NOTICE_END):
        value = record.extensions.get(name)
        try:
            out.append(date.fromisoformat(value) if isinstance(value, str) else None)
        except ValueError:
            out.append(None)
    return out[0], out[1]


def review_day(record: DecisionRecord) -> date | None:
    """The day of the experts' formal review, where its recorded text starts with one."""
    text = record.extensions.get(EXPERT_REVIEW)
    found = _LEADING_DATE.match(text) if isinstance(text, str) else None
    if found is None:
        return None
    try:
        return date.fromisoformat(found.group(1))
    except ValueError:
        return None


def check_notice_overrun(facts: Facts) -> Iterator[Finding]:
    """CQ-2017#二(二): "公示期为5个工作日" — a recorded notice longer than that (its first day counted)."""
    for d, _ in _filings(facts):
        r = d.record
        start, end = recorded_notice(r)
        deadline = facts.deadline("public-notice", r.effective)
        if start is None or end is None or deadline is None or start < r.effective:
            continue  # a notice begun before the completion is ``chongqing.public-notice``'s
        try:
            days = facts.calendar().workdays_between(start - timedelta(days=1), end)
            if days <= deadline.working_days:
                continue
            due = facts.calendar().add_workdays(start, deadline.working_days - 1)
        except CalendarError:
            continue  # the length cannot be counted: ``chongqing.public-notice`` says so
        yield Finding.of(
            NOTICE_OVERRUN,
            d,
            f"filing of {r.fields['technology']} noticed {start} to {end}: {days} working days, longer than "
            f"the {deadline.working_days} of CQ-2017 (the notice should have ended on {due})",
            severity="irregular",
            effective=due + timedelta(days=1),
            article=deadline.article,
        )


def check_review_after_notice(facts: Facts) -> Iterator[Finding]:
    """CQ-2017#二(二): "审核通过后公示" — the notice begins only after the experts' review passed."""
    for d, tech_class in _filings(facts):
        r = d.record
        if tech_class != "restricted":
            continue
        reviewed = review_day(r)
        start, _ = recorded_notice(r)
        begun = start or r.effective
        if reviewed is None or reviewed <= begun or begun < r.effective:
            continue  # a notice begun before the completion is ``chongqing.public-notice``'s
        yield Finding.of(
            REVIEW_AFTER_NOTICE,
            d,
            f"restricted filing of {r.fields['technology']}: the experts' formal review is dated {reviewed}, "
            f"after its public notice began on {begun} (审核通过后公示)",
            severity="irregular",
            effective=reviewed,
        )


NOTICE_OVERRUN = Rule(
    "chongqing.notice-overrun",
    "CQ-2017#二(二)",
    "Public notice longer than 5 working days",
    check_notice_overrun,
    ONLY_CHONGQING,
)
REVIEW_AFTER_NOTICE = Rule(
    "chongqing.review-after-notice",
    "CQ-2017#二(二)",
    "Expert review dated after the notice began",
    check_review_after_notice,
    ONLY_CHONGQING,
)

RULES: tuple[Rule, ...] = (NOTICE_OVERRUN, REVIEW_AFTER_NOTICE)
"""Chongqing's clock rules, contributed by ``ledger_rules``."""
