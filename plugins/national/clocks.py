"""The filing authority's own clock (MTM-2018#11): "备案部门自收到完整材料之日起15个工作日内予备案".

An institution's lateness is ``mtm2018``'s business; this module judges the authority's. A
submission (``filing.submitted``) hands over the materials; the authority answers with a completion
(or a rejection). The clock runs from the latest submission before the answer — a new submission
while one is pending is the complete set of materials — and counts working days on the province's
calendar with the ``filing-authority`` deadline (a province may set its own under that name).

* ``national.authority-late`` — the answer came after the deadline: real but irregular, recorded and
  flagged on the day after the deadline.
* ``national.submission-pending`` — no answer yet on the trail's day, and the deadline has passed.

Only submissions from 2018-11-01 are judged. Where the calendar lacks a year, nothing is guessed:
the submission is left unjudged (as ``national.calendar-unknown`` does for the institution's clock).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

from ledger import CalendarError
from plugins.national.common import MTM2018_START, is_mtm2018, the_day_after
from plugins.national.mtm2018 import cite
from projections import Deadline, Facts, Finding, Resolved, Rule

DEADLINES: tuple[Deadline, ...] = (Deadline("filing-authority", 15, "MTM-2018#11", valid_from=MTM2018_START),)
"""MTM-2018#11: the filing authority completes within 15 working days of receiving complete materials."""

_ANSWERS = frozenset({"filing.completed", "filing.rejected"})


def answered(facts: Facts) -> Iterator[tuple[Resolved, Resolved | None]]:
    """Each submission from 2018-11-01 of a technology restricted that day (MTM-2018#11 files 限制类技术)
    that the clock runs from, with the authority's answer to it (None: none yet), use by use in
    valid-time order.

    A new form for a use already filed (a change of technical lead or principal, HN-2018 附件2 注2)
    asks for no new completion: the use stands filed, so no clock runs from it. After a stop, a
    submission is a new filing again."""
    for (_, technology), use in sorted(facts.uses.items()):
        if not facts.may_be(technology, "restricted"):
            continue
        pending: Resolved | None = None
        filed = False
        for d in use.others:
            kind = d.record.kind
            if kind == "filing.submitted" and not filed:
                day = d.record.effective
                pending = d if is_mtm2018(day) and facts.tech_class(technology, day) == "restricted" else None
            elif kind in _ANSWERS:
                filed = kind == "filing.completed"
                if pending is not None:
                    yield pending, d
                    pending = None
            elif kind == "use.stopped":
                filed = False
        if pending is not None:
            yield pending, None


def _overrun(facts: Facts, submitted: date, until: date) -> tuple[Deadline, int, date] | None:
    """The ``filing-authority`` deadline in force for a submission, the working days from it to
    ``until`` and its due day, where ``until`` is past the deadline; None where it is not, where no
    deadline is in force, or where the calendar lacks a year (nothing is guessed)."""
    deadline = facts.deadline("filing-authority", submitted)
    if deadline is None:
        return None
    try:
        elapsed = facts.calendar().workdays_between(submitted, until)
        if elapsed <= deadline.working_days:
            return None
        return deadline, elapsed, facts.calendar().add_workdays(submitted, deadline.working_days)
    except CalendarError:
        return None


def check_authority_late(facts: Facts) -> Iterator[Finding]:
    """MTM-2018#11: the authority's completion or rejection more than 15 working days after the submission."""
    for submission, answer in answered(facts):
        if answer is None:
            continue
        s, a = submission.record, answer.record
        late = _overrun(facts, s.effective, a.effective)
        if late is None:
            continue
        deadline, elapsed, due = late
        what = "completed" if a.kind == "filing.completed" else "rejected"
        yield Finding.of(
            AUTHORITY_LATE,
            submission,
            f"the filing of {s.fields['technology']} submitted on {s.effective} was {what} by {a.by} on "
            f"{a.effective}, {elapsed} working days later; the authority answers within {deadline.working_days} "
            f"working days of complete materials, i.e. by {due}",
            severity="irregular",
            decisions=(answer, submission),
            effective=the_day_after(due),
            article=cite("MTM-2018#11", deadline),
        )


def check_submission_pending(facts: Facts) -> Iterator[Finding]:
    """MTM-2018#11: a submission with no completion or rejection, past the authority's 15 working days
    on the trail's day. Once the answer comes, ``national.authority-late`` takes its place."""
    for submission, answer in answered(facts):
        if answer is not None:
            continue
        s = submission.record
        late = _overrun(facts, s.effective, facts.as_of)
        if late is None:
            continue
        deadline, _, due = late
        yield Finding.of(
            SUBMISSION_PENDING,
            submission,
            f"the filing of {s.fields['technology']} submitted on {s.effective} has had no completion or "
            f"rejection as of {facts.as_of}; the authority answers within {deadline.working_days} working days, "
            f"i.e. by {due}",
            severity="irregular",
            effective=the_day_after(due),
            article=cite("MTM-2018#11", deadline),
        )


AUTHORITY_LATE = Rule(
    "national.authority-late",
    "MTM-2018#11",
    "Filing authority answered later than 15 working days",
    check_authority_late,
)
SUBMISSION_PENDING = Rule(
    "national.submission-pending",
    "MTM-2018#11",
    "Submission unanswered past the authority's 15 working days",
    check_submission_pending,
)

RULES: tuple[Rule, ...] = (AUTHORITY_LATE, SUBMISSION_PENDING)
"""The filing authority's clock, contributed by ``ledger_rules``."""
