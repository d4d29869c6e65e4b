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

from bisect import bisect_right
from collections.abc import Iterator

from ledger.errors import CalendarError
from plugins.national.common import (
    Clock,
    cases_with_state,
    clocks,
    ids,
    is_mtm2018,
    the_day_after,
    unknown_year,
)
from projections.facts import Facts
from projections.findings import Deadline, Finding, Rule


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
    technology was prohibited is not one.
    """
    for d in facts.of_kind("case.performed", "filing.submitted"):
        r = d.record
        if not is_mtm2018(r.effective) or facts.tech_class(r.fields["technology"], r.effective) != "prohibited":
            continue
        what = "case" if r.kind == "case.performed" else "filing"
        yield Finding(
            effective=r.effective,
            rule="national.prohibited",
            article="MTM-2018#9",
            severity="grave",
            message=f"{what} of {r.fields['technology']}, a prohibited technology (禁止类技术) on {r.effective}: "
            "prohibited technologies are never used clinically (MTM-2018#9, #43(2))",
            decisions=ids(d),
            institution=r.fields["institution"],
            technology=r.fields["technology"],
            physician=r.fields.get("physician"),
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
    done what #11 asks of it.
    """
    for clock in clocks(facts):
        filing_state = clock.filing_states()
        for case in facts.by_use[(clock.institution, clock.technology)]:
            r = case.record
            if r.kind != "case.performed" or not is_mtm2018(r.effective):
                continue
            state, last = filing_state(r.effective)
            # Most cases are of a filed use: the class is looked up only for the others.
            if state not in ("rejected", "none") or facts.tech_class(clock.technology, r.effective) != "restricted":
                continue
            if state == "rejected":
                why = f"its filing was rejected ({last.record.id if last else '?'})"
            elif state == "none":
                try:
                    if not clock.past_due(facts, r.effective):
                        continue
                except CalendarError:
                    continue  # national.calendar-unknown says why this cannot be judged
                why = (
                    f"no filing submitted by the grandfather date {clock.by}" if clock.grandfathered
                    else f"no filing submitted within {clock.article}'s {_days(clock)} working days of the first case"
                )
            else:
                continue
            article = "MTM-2018#49" if clock.grandfathered and state == "none" else "MTM-2018#11"
            yield Finding(
                effective=r.effective,
                rule="national.unfiled-use",
                article=cite(article, clock.deadline),
                severity="serious",
                message=f"case of restricted technology {clock.technology} on {r.effective} without a filing: {why}",
                decisions=ids(case, last, None if clock.grandfathered else clock.first_case),
                institution=clock.institution,
                technology=clock.technology,
                physician=r.fields.get("physician"),
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
        yield Finding(
            effective=the_day_after(due),
            rule="national.late-filing",
            article=cite(article, clock.deadline),
            severity="irregular",
            message=f"{clock.technology} filed on {filed}, later than {since}",
            decisions=ids(first, clock.first_case),
            institution=clock.institution,
            technology=clock.technology,
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
        yield Finding(
            effective=the_day_after(due),
            rule="national.filing-overdue",
            article=cite("MTM-2018#11", clock.deadline),
            severity="serious",
            message=f"{clock.technology}: first case on {clock.first_case.record.effective}, filing due by {due}, "
            f"none submitted as of {facts.as_of}",
            decisions=ids(clock.first_case),
            institution=clock.institution,
            technology=clock.technology,
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
        yield Finding(
            effective=clock.first_case.record.effective,
            rule="national.calendar-unknown",
            article=clock.article,
            severity="irregular",
            message=f"the filing deadline of {clock.technology} ({_days(clock)} working days after the first case on "
            f"{clock.first_case.record.effective}, {clock.article}) cannot be computed: {unknown_year(error)}",
            decisions=ids(clock.first_case, first),
            institution=clock.institution,
            technology=clock.technology,
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
        yield Finding(
            effective=r.effective,
            rule="national.calendar-unknown",
            article=deadline.article,
            severity="irregular",
            message=f"the training-base deadline ({deadline.working_days} working days after the enrolment notice of "
            f"{r.fields['enrolment_notice']}, {deadline.article}) cannot be computed: {unknown_year(error)}",
            decisions=ids(d),
            institution=r.fields["institution"],
            technology=r.fields["technology"],
        )


# --- MTM-2018#13: ethics approval before use --------------------------------------------------------


def check_ethics(facts: Facts) -> Iterator[Finding]:
    """MTM-2018#13: "未经本机构伦理委员会审查通过的医疗技术，特别是限制类医疗技术，不得应用于临床".

    A case of a restricted technology on a day when the institution's ethics committee had not
    approved it (no ``review.concluded`` with ``committee=ethics``, or the latest one rejected).
    """
    for (institution, technology), use in sorted(facts.by_use.items()):
        reviews = [d for d in use if d.record.kind == "review.concluded" and d.record.fields["committee"] == "ethics"]
        days = [d.record.effective for d in reviews]
        for case in use:
            r = case.record
            if r.kind != "case.performed" or not is_mtm2018(r.effective):
                continue
            i = bisect_right(days, r.effective)  # reviews concluded by the end of the case's day
            latest = reviews[i - 1] if i else None
            if latest is not None and latest.record.fields["outcome"] == "approved":
                continue  # most cases: approved (the class is looked up only for the others)
            if facts.tech_class(technology, r.effective) != "restricted":
                continue
            later = next((d for d in reviews[i:] if d.record.fields["outcome"] == "approved"), None)
            state = "rejected it" if latest is not None else "not approved it"
            tail = f" (approved only on {later.record.effective})" if later is not None else ""
            yield Finding(
                effective=r.effective,
                rule="national.ethics",
                article="MTM-2018#13",
                severity="serious",
                message=f"case of restricted technology {technology} on {r.effective}: the ethics committee had "
                f"{state}{tail}",
                decisions=ids(case, latest, later),
                institution=institution,
                technology=technology,
                physician=r.fields.get("physician"),
            )


# --- MTM-2018#25, #41-#44: no use while suspended or stopped ----------------------------------------


def check_suspended_use(facts: Facts) -> Iterator[Finding]:
    """MTM-2018#25 (and #41-#44): a case on a day the use was suspended or stopped.

    #25 obliges the institution to stop at once on its grounds; a regulator's suspension or stop
    (#41-#44) has the same effect. Resumption (``use.resumed``) or a new completed filing after a
    stop ends it.
    """
    for (institution, technology), use in sorted(facts.by_use.items()):
        for case, state, why in cases_with_state(use):
            r = case.record
            if not is_mtm2018(r.effective) or state == "active":
                continue
            since = why.record.effective if why else r.effective
            yield Finding(
                effective=r.effective,
                rule="national.use-while-suspended",
                article="MTM-2018#25",
                severity="serious",
                message=f"case of {technology} on {r.effective} while its use was {state} (since {since})",
                decisions=ids(case, why),
                institution=institution,
                technology=technology,
                physician=r.fields.get("physician"),
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
    registered, privilege, tech_class = facts.registered, facts.privilege, facts.tech_class
    for case in facts.of_kind("case.performed"):
        r = case.record
        on = r.effective
        if not is_mtm2018(on):
            continue
        f = r.fields
        physician, institution, technology = f["physician"], f["institution"], f["technology"]
        grant = privilege(physician, institution, on)
        if grant is not None and registered(physician, institution, on):
            g = grant.record.fields
            level = f.get("level")
            procedures = g.get("procedures")
            if (level is None or level <= g["level"]) and (not procedures or technology in procedures):
                continue  # the common case: a registered physician within the grant
        problems = []
        if not registered(physician, institution, on):
            problems.append("the physician is not registered at the institution")
        if grant is None:
            problems.append("no surgical privilege in force")
        else:
            g = grant.record.fields
            level = f.get("level")
            if level is not None and level > g["level"]:
                problems.append(f"a grade-{level} operation by a physician granted level {g['level']}")
            procedures = list(g.get("procedures") or ())
            refs = [p for p in procedures if ":" in p]
            restricted = tech_class(technology, on) == "restricted"
            if procedures and technology not in procedures and (refs or restricted):
                problems.append(f"{technology} is not among the granted procedures")
        if not problems:
            continue
        yield Finding(
            effective=r.effective,
            rule="national.privilege",
            article="MTM-2018#20",
            severity="serious",
            message=f"case {f['case']} of {technology} on {r.effective}: " + "; ".join(problems),
            decisions=ids(case, grant),
            institution=institution,
            technology=technology,
            physician=physician,
        )


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
        yield Finding(
            effective=r.effective,
            rule="national.technical-lead",
            article="MTM-2018#11(3)",
            severity="irregular",
            message=f"the filing of {r.fields['technology']} names technical lead {lead}, who is not registered at "
            f"the institution on {r.effective}",
            decisions=ids(d),
            institution=institution,
            technology=r.fields["technology"],
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
        yield Finding(
            effective=the_day_after(due),
            rule="national.training-base",
            article=cite("MTM-2018#29", deadline),
            severity="irregular",
            message=f"training base for {r.fields['technology']} filed on {r.effective}, {elapsed} working days after "
            f"its enrolment notice of {notice}; due by {due} ({deadline.working_days} working days)",
            decisions=ids(d),
            institution=r.fields["institution"],
            technology=r.fields["technology"],
        )


RULES: tuple[Rule, ...] = (
    Rule("national.prohibited", "MTM-2018#9", "Use or filing of a prohibited technology", check_prohibited),
    Rule("national.unfiled-use", "MTM-2018#11", "Restricted technology used without a filing", check_unfiled_use),
    Rule("national.late-filing", "MTM-2018#11", "Filing later than the deadline after the first case",
         check_late_filing),
    Rule("national.filing-overdue", "MTM-2018#11", "Filing deadline passed, no filing yet", check_filing_overdue),
    Rule("national.calendar-unknown", "MTM-2018#11", "A working-day deadline the calendar cannot count",
         check_calendar_unknown),
    Rule("national.ethics", "MTM-2018#13", "Case before the ethics committee approved", check_ethics),
    Rule("national.use-while-suspended", "MTM-2018#25", "Case while the use was suspended or stopped",
         check_suspended_use),
    Rule("national.privilege", "MTM-2018#20", "Case outside the physician's granted level or procedures",
         check_privilege),
    Rule("national.technical-lead", "MTM-2018#11(3)", "Technical lead not registered at the institution",
         check_technical_lead),
    Rule("national.training-base", "MTM-2018#29", "Training base filed later than 3 working days after its notice",
         check_training_base),
)
"""MTM-2018's rules, contributed by ``ledger_rules`` (each cites its article)."""
