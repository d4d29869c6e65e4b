"""MTM-2018 (医疗技术临床应用管理办法, 国家卫生健康委员会令第1号), in force from 2018-11-01.

The rules below turn decisions into the findings DECISIONS.md lists under "Recorded, and shown as
findings". They judge only decisions effective on or after 2018-11-01: what happened before is
MTM-2009's business (``mtm2009``), because an act is judged by the regime in force on its day.

Each finding is placed on the day it arose (``Finding.effective``): a late filing on the day after
its deadline, not on the day the filing finally came. A finding that needs a later decision to be
seen (a late filing) therefore appears only in views as of a day on which that decision exists,
while "no filing yet" (``national.filing-overdue``) is what a view shows before it.

Working days are counted on the scope's provincial calendar (``facts.calendar()``), and deadlines
are looked up by name (``facts.deadline``), so a province that sets its own (HN-2018#二(二)) is
cited with the national article. Where counting needs a year the calendar does not know, no rule
guesses: ``national.calendar-unknown`` says so instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

from ledger import CalendarError
from plugins.national.common import (
    MTM2018_START,
    cases_with_state,
    clocks,
    interrupted,
    is_mtm2018,
    the_day_after,
    unknown_year,
)
from projections import Clock, Deadline, Facts, Finding, Resolved, Rule, Standing, Use


def cite(article: str, deadline: Deadline | None) -> str:
    """``article``, plus a province's own article when its deadline applies (``MTM-2018#11, HN-2018#二(二)``)."""
    if deadline is None or deadline.article == article or deadline.jurisdiction == "national":
        return article
    return f"{article}, {deadline.article}"


def _institution(facts: Facts) -> str | None:
    return facts.scope.removeprefix("institution:") if facts.scope.startswith("institution:") else None


# --- MTM-2018#9: prohibited technologies are never used ---------------------------------------------


def check_prohibited(facts: Facts) -> Iterator[Finding]:
    """MTM-2018#9 (and #25(1), #43(2)): a technology on the negative list "禁止应用于临床".

    A case, or a filing, of a technology that is ``prohibited`` in the catalogue as of that day is
    the gravest finding. The class is looked up on the decision's own day, so a case before a
    technology was prohibited is not one. Only technologies ever prohibited need looking up.
    """
    suspects = {technology for _, technology in facts.uses if facts.may_be(technology, "prohibited")}
    if not suspects:
        return
    for d in facts.of_kind("case.performed", "filing.submitted"):
        r = d.record
        if r.fields["technology"] not in suspects or not is_mtm2018(r.effective):
            continue
        if facts.tech_class(r.fields["technology"], r.effective) != "prohibited":
            continue
        what = "case" if r.kind == "case.performed" else "filing"
        yield Finding.of(
            PROHIBITED,
            d,
            f"{what} of {r.fields['technology']}, a prohibited technology (禁止类技术) on {r.effective}: "
            "prohibited technologies are never used clinically (MTM-2018#9, #43(2))",
            severity="grave",
        )


# --- MTM-2018#11, #49: restricted use needs a filing -----------------------------------------------


def check_unfiled_use(facts: Facts) -> Iterator[Finding]:
    """MTM-2018#11 (and #49, #41(4)): a restricted technology used without its filing.

    The first case comes before the filing by design (MTM-2018#11: perform the first case, then
    file within 15 working days), so a case is irregular only when, on its day,

    * the filing was rejected and no later filing is pending or completed, or
    * no filing has been submitted and the filing deadline has passed — for a use under way
      before 2018-11-01, the grandfather date (MTM-2018#49: "不按照规定备案的，不得再开展").

    A submitted filing awaiting the authority does not make a case irregular: the institution has
    done what #11 asks of it. Most cases are of a filed use: only the cases of the spans of days
    without a filing (``Clock.filing_spans``) are looked at, and only their class is looked up.
    """
    for clock in clocks(facts):
        use = facts.uses[(clock.institution, clock.technology)]
        spans = clock.filing_spans
        for k, (since, state, last) in enumerate(spans):
            if state not in ("rejected", "none"):
                continue
            until = spans[k + 1][0] if k + 1 < len(spans) else None
            yield from _unfiled_cases(facts, clock, use.cases_on(max(since, MTM2018_START), until), state, last)


def _unfiled_cases(
    facts: Facts, clock: Clock, cases: list[Resolved], state: str, last: Resolved | None
) -> Iterator[Finding]:
    """``check_unfiled_use`` for ``cases`` of one span of days in filing state ``state`` (none or rejected).

    ``past``: a day found past due. A later day of the same year is past due too without asking
    the calendar again: it counts at least as many working days, through no other year."""
    if state == "rejected":
        why = f"its filing was rejected ({last.record.id if last else '?'})"
    elif clock.grandfathered:
        why = f"no filing submitted by the grandfather date {clock.by}"
    else:
        why = f"no filing submitted within {clock.article}'s {_days(clock)} working days of the first case"
    article = cite("MTM-2018#49" if clock.grandfathered and state == "none" else "MTM-2018#11", clock.deadline)
    first_case = None if clock.grandfathered else clock.first_case
    technology = clock.technology
    tech_class = facts.tech_class
    past: date | None = None
    for case in cases:
        r = case.record
        day = r.effective
        if tech_class(technology, day) != "restricted":
            continue
        if state == "none" and (past is None or day < past or day.year != past.year):
            try:
                if not clock.past_due(facts, day):
                    continue
            except CalendarError:
                continue  # national.calendar-unknown says why this cannot be judged
            past = day
        yield Finding.of(
            UNFILED_USE,
            case,
            f"case of restricted technology {technology} on {day} without a filing: {why}",
            severity="serious",
            decisions=(case, last, first_case),
            article=article,
        )


def _days(clock: Clock) -> int:
    return clock.deadline.working_days if clock.deadline else 15


def check_late_filing(facts: Facts) -> Iterator[Finding]:
    """MTM-2018#11 (province: HN-2018#二(二)); MTM-2018#49 for uses under way before 2018-11-01.

    The first filing of a use is late when it comes more than the deadline's working days after
    the first case (counted on the province's calendar, 调休 included), or after the grandfather
    date. Only the first filing counts: a new form after a change of technical lead or principal
    (HN-2018 附件2 注2) is not a late filing. The finding arises the day after the deadline.
    """
    for clock in clocks(facts):
        first = clock.first_filing
        if first is None:
            continue
        filed = first.record.effective
        try:
            if not clock.past_due(facts, filed):
                continue
            due = clock.due(facts)
        except CalendarError:
            continue  # national.calendar-unknown
        if clock.grandfathered:
            article, since = "MTM-2018#49", f"the grandfather date {due} for uses under way before 2018-11-01"
        else:
            assert clock.first_case is not None
            article = "MTM-2018#11"
            first_case = clock.first_case.record.effective
            since = f"{_days(clock)} working days after the first case on {first_case}, i.e. {due}"
        yield Finding.of(
            LATE_FILING,
            first,
            f"{clock.technology} filed on {filed}, later than {since}",
            severity="irregular",
            decisions=(first, clock.first_case),
            effective=the_day_after(due),
            article=cite(article, clock.deadline),
        )


def check_filing_overdue(facts: Facts) -> Iterator[Finding]:
    """MTM-2018#11 (province: HN-2018#二(二)), #41(4): the first case was performed, the deadline has
    passed as of the view's day, and no filing has been submitted yet.

    Not raised for a grandfathered use: MTM-2018#49 lets it stop instead of filing, and a case after
    the date is ``national.unfiled-use``. Once the filing comes, the view shows
    ``national.late-filing`` in its place.
    """
    for clock in clocks(facts):
        if clock.grandfathered or clock.first_case is None:
            continue
        if clock.first_filing is not None and clock.first_filing.record.effective <= facts.as_of:
            continue
        try:
            if not clock.past_due(facts, facts.as_of):
                continue
            due = clock.due(facts)
        except CalendarError:
            continue  # national.calendar-unknown
        yield Finding.of(
            FILING_OVERDUE,
            clock.first_case,
            f"{clock.technology}: first case on {clock.first_case.record.effective}, filing due by {due}, "
            f"none submitted as of {facts.as_of}",
            severity="serious",
            effective=the_day_after(due),
            article=cite("MTM-2018#11", clock.deadline),
            physician=None,
        )


def check_calendar_unknown(facts: Facts) -> Iterator[Finding]:
    """MTM-2018#11, #29 (and any province's deadline): a working-day deadline that cannot be computed.

    A finding about lateness is a statement about someone's conduct, so no rule guesses a year the
    official calendar (放假调休安排) does not cover. Where a deadline falls in, or must be counted
    through, such a year, and no filing already settled the question within known years, this says
    so — citing the year and how to add it (LEDGER_CALENDAR_DIR).
    """
    for clock in clocks(facts):
        if clock.by is not None or clock.first_case is None:
            continue
        first = clock.first_filing
        try:
            if first is not None and first.record.effective <= facts.as_of:
                clock.past_due(facts, first.record.effective)
            else:
                clock.due(facts)
            continue
        except CalendarError as e:
            error = e
        yield Finding.of(
            CALENDAR_UNKNOWN,
            clock.first_case,
            f"the filing deadline of {clock.technology} ({_days(clock)} working days after the first case on "
            f"{clock.first_case.record.effective}, {clock.article}) cannot be computed: {unknown_year(error)}",
            severity="irregular",
            decisions=(clock.first_case, first),
            article=clock.article,
            physician=None,
        )
    for d in facts.of_kind("training_base.filed"):
        r = d.record
        deadline = facts.deadline("training-base", r.fields["enrolment_notice"])
        if not is_mtm2018(r.effective) or deadline is None:
            continue
        try:
            facts.calendar().workdays_between(r.fields["enrolment_notice"], r.effective)
            continue
        except CalendarError as e:
            error = e
        yield Finding.of(
            CALENDAR_UNKNOWN,
            d,
            f"the training-base deadline ({deadline.working_days} working days after the enrolment notice of "
            f"{r.fields['enrolment_notice']}, {deadline.article}) cannot be computed: {unknown_year(error)}",
            severity="irregular",
            article=deadline.article,
        )


# --- MTM-2018#13: ethics approval before use --------------------------------------------------------


def check_ethics(facts: Facts) -> Iterator[Finding]:
    """MTM-2018#13: "未经本机构伦理委员会审查通过的医疗技术，特别是限制类医疗技术，不得应用于临床".

    A case of a restricted technology on a day when the institution's ethics committee had not
    approved it (no ``review.concluded`` with ``committee=ethics``, or the latest one rejected).
    The reviews cut a use's days into spans with the same latest review: the cases of spans whose
    latest review approved are not looked at, nor the uses of technologies never restricted.
    """
    for (_, technology), use in sorted(facts.uses.items()):
        if not facts.may_be(technology, "restricted"):
            continue
        reviews = [
            d for d in use.others if d.record.kind == "review.concluded" and d.record.fields["committee"] == "ethics"
        ]
        days = [d.record.effective for d in reviews]
        for i in range(len(reviews) + 1):
            # The cases of span i are those with bisect_right(days, day) == i: reviews[:i] concluded by their day.
            latest = reviews[i - 1] if i else None
            if latest is not None and latest.record.fields["outcome"] == "approved":
                continue
            since = max(days[i - 1], MTM2018_START) if i else MTM2018_START
            cases = use.cases_on(since, days[i] if i < len(days) else None)
            if not cases:
                continue
            later = next((d for d in reviews[i:] if d.record.fields["outcome"] == "approved"), None)
            state = "rejected it" if latest is not None else "not approved it"
            tail = f" (approved only on {later.record.effective})" if later is not None else ""
            for case in cases:
                r = case.record
                if facts.tech_class(technology, r.effective) != "restricted":
                    continue
                yield Finding.of(
                    ETHICS,
                    case,
                    f"case of restricted technology {technology} on {r.effective}: the ethics committee had "
                    f"{state}{tail}",
                    severity="serious",
                    decisions=(case, latest, later),
                )


def check_unbacked_completion(facts: Facts) -> Iterator[Finding]:
    """MTM-2018#11: the institution submits its filing materials and the authority files them, so a
    ``filing.completed`` with no live ``filing.submitted`` before it (never submitted, or its
    submission retracted) completed nothing. It is recorded, the use's standing is ``void`` — not
    filed, in the rules and on the public lists alike (``projections.standing``) — and flagged here."""
    for key, use in sorted(facts.uses.items()):
        if not any(d.record.kind == "filing.completed" for d in use.others):
            continue
        for state in facts.use_states(key):
            r = state.decision.record
            if not state.unbacked or not is_mtm2018(r.effective):
                continue
            yield Finding.of(
                COMPLETION_WITHOUT_SUBMISSION,
                state.decision,
                f"filing of {key[1]} completed on {r.effective} by {r.by} with no live submission (none "
                "submitted, or its submission retracted): it does not count as filed",
                severity="irregular",
            )


# --- MTM-2018#25, #41-#44: no use while suspended or stopped ----------------------------------------


def check_suspended_use(facts: Facts) -> Iterator[Finding]:
    """MTM-2018#25 (and #41-#44): a case on a day the use was suspended or stopped.

    #25 obliges the institution to stop at once on its grounds; a regulator's suspension or stop
    (#41-#44) has the same effect. Resumption (``use.resumed``) or a new completed filing after a
    stop ends it. A use never suspended or stopped has no such case.
    """
    for (_, technology), use in sorted(facts.uses.items()):
        if not interrupted(use):
            continue
        for case, state, why in cases_with_state(facts.history(use)):
            r = case.record
            if not is_mtm2018(r.effective) or state == "active":
                continue
            since = why.record.effective if why else r.effective
            yield Finding.of(
                USE_WHILE_SUSPENDED,
                case,
                f"case of {technology} on {r.effective} while its use was {state} (since {since})",
                severity="serious",
                decisions=(case, why),
            )


# --- MTM-2018#20: surgical privileges ------------------------------------------------------------


def check_privilege(facts: Facts) -> Iterator[Finding]:
    """MTM-2018#20: a physician operates only within the level and procedures the institution granted.

    A case is irregular when, on its day, the physician holds no grant in force (never granted,
    suspended or revoked), or is not registered at the institution, or the case's surgery grade is
    above the granted level, or the grant lists procedures that include technology references
    (``<catalog>:<code>``) but not this technology, or lists only named procedures while the
    technology is restricted. An empty procedure list limits by level only.
    """
    found = [
        item
        for (institution, technology), use in facts.uses.items()
        for item in _privilege_cases(facts, institution, technology, use)
    ]
    found.sort(key=_first)  # in the order of the cases (valid time), as judged case by case
    for _, finding in found:
        yield finding


def _privilege_cases(
    facts: Facts, institution: str, technology: str, use: Use
) -> Iterator[tuple[tuple[date, int], Finding]]:
    """``check_privilege`` for the cases of one use, each finding with its case's place in valid time.

    A physician's registration and grant change on a few days (``Facts.standing``): between them,
    each case of the use only compares its grade with the granted level, or is judged in full."""
    known: dict[str, tuple[date, date, int | None, Standing]] = {}
    for case in use.cases_on(MTM2018_START):
        r = case.record
        on = r.effective
        f = r.fields
        physician = f["physician"]
        now = known.get(physician)
        if now is None or not now[0] <= on < now[1]:
            standing = facts.standing(physician, institution, on)
            limit = None  # the highest grade allowed, if the physician may operate this technology at all
            if standing.grant is not None and standing.registered:
                g = standing.grant.record.fields
                procedures = g.get("procedures")
                if not procedures or technology in procedures:
                    limit = g["level"]
            now = known[physician] = (standing.since, standing.until, limit, standing)
        level = f.get("level")
        limit = now[2]
        if limit is not None and (level is None or level <= limit):
            continue  # the common case: a registered physician within the grant
        registered, grant = now[3].registered, now[3].grant
        problems = []
        if not registered:
            problems.append("the physician is not registered at the institution")
        if grant is None:
            problems.append("no surgical privilege in force")
        else:
            g = grant.record.fields
            if level is not None and level > g["level"]:
                problems.append(f"a grade-{level} operation by a physician granted level {g['level']}")
            procedures = list(g.get("procedures") or ())
            refs = [p for p in procedures if ":" in p]
            restricted = facts.tech_class(technology, on) == "restricted"
            if procedures and technology not in procedures and (refs or restricted):
                problems.append(f"{technology} is not among the granted procedures")
        if not problems:
            continue
        yield (
            (on, case.position),
            Finding.of(
                PRIVILEGE,
                case,
                f"case {f['case']} of {technology} on {r.effective}: " + "; ".join(problems),
                severity="serious",
                decisions=(case, grant),
            ),
        )


def _first(item: tuple[tuple[date, int], Finding]) -> tuple[date, int]:
    return item[0]


# --- MTM-2018#11(3): the technical lead is registered at the institution ------------------------------


def check_technical_lead(facts: Facts) -> Iterator[Finding]:
    """MTM-2018#11(3): the technical lead is "限于在本机构注册的执业医师" (also HN-2018#二(二)3, 附件2).

    A filing naming a technical lead who is not registered at the filing institution on the
    filing's day (e.g. registered elsewhere, practising here at several sites).
    """
    for d in facts.of_kind("filing.submitted"):
        r = d.record
        if not is_mtm2018(r.effective):
            continue
        lead, institution = r.fields["technical_lead"], r.fields["institution"]
        if facts.registered(lead, institution, r.effective):
            continue
        yield Finding.of(
            TECHNICAL_LEAD,
            d,
            f"the filing of {r.fields['technology']} names technical lead {lead}, who is not registered at "
            f"the institution on {r.effective}",
            severity="irregular",
            physician=lead,
        )


# --- MTM-2018#29: training bases file within 3 working days ----------------------------------------------


def check_training_base(facts: Facts) -> Iterator[Finding]:
    """MTM-2018#29: a training base files with the province within 3 working days of its first
    enrolment notice (首次发布招生公告之日起3个工作日内). The finding arises the day after the deadline."""
    for d in facts.of_kind("training_base.filed"):
        r = d.record
        notice = r.fields["enrolment_notice"]
        deadline = facts.deadline("training-base", notice)
        if not is_mtm2018(r.effective) or deadline is None:
            continue
        try:
            elapsed = facts.calendar().workdays_between(notice, r.effective)
            if elapsed <= deadline.working_days:
                continue
            due = facts.calendar().add_workdays(notice, deadline.working_days)
        except CalendarError:
            continue  # national.calendar-unknown
        yield Finding.of(
            TRAINING_BASE,
            d,
            f"training base for {r.fields['technology']} filed on {r.effective}, {elapsed} working days after "
            f"its enrolment notice of {notice}; due by {due} ({deadline.working_days} working days)",
            severity="irregular",
            effective=the_day_after(due),
            article=cite("MTM-2018#29", deadline),
        )


PROHIBITED = Rule("national.prohibited", "MTM-2018#9", "Use or filing of a prohibited technology", check_prohibited)
UNFILED_USE = Rule(
    "national.unfiled-use", "MTM-2018#11", "Restricted technology used without a filing", check_unfiled_use
)
LATE_FILING = Rule(
    "national.late-filing", "MTM-2018#11", "Filing later than the deadline after the first case", check_late_filing
)
FILING_OVERDUE = Rule(
    "national.filing-overdue", "MTM-2018#11", "Filing deadline passed, no filing yet", check_filing_overdue
)
COMPLETION_WITHOUT_SUBMISSION = Rule(
    "national.completion-without-submission",
    "MTM-2018#11",
    "Filing completed with no live submission",
    check_unbacked_completion,
)
CALENDAR_UNKNOWN = Rule(
    "national.calendar-unknown",
    "MTM-2018#11",
    "A working-day deadline the calendar cannot count",
    check_calendar_unknown,
)
ETHICS = Rule("national.ethics", "MTM-2018#13", "Case before the ethics committee approved", check_ethics)
USE_WHILE_SUSPENDED = Rule(
    "national.use-while-suspended",
    "MTM-2018#25",
    "Case while the use was suspended or stopped",
    check_suspended_use,
)
PRIVILEGE = Rule(
    "national.privilege", "MTM-2018#20", "Case outside the physician's granted level or procedures", check_privilege
)
TECHNICAL_LEAD = Rule(
    "national.technical-lead",
    "MTM-2018#11(3)",
    "Technical lead not registered at the institution",
    check_technical_lead,
)
TRAINING_BASE = Rule(
    "national.training-base",
    "MTM-2018#29",
    "Training base filed later than 3 working days after its notice",
    check_training_base,
)

RULES: tuple[Rule, ...] = (
    PROHIBITED,
    UNFILED_USE,
    LATE_FILING,
    FILING_OVERDUE,
    COMPLETION_WITHOUT_SUBMISSION,
    CALENDAR_UNKNOWN,
    ETHICS,
    USE_WHILE_SUSPENDED,
    PRIVILEGE,
    TECHNICAL_LEAD,
    TRAINING_BASE,
)
"""MTM-2018's rules, contributed by ``ledger_rules`` (each cites its article)."""
