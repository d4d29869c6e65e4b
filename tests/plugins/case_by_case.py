"""The rules that judge every case, as they were written before they learnt to skip: each walks
every decision of a use or of the scope and asks ``Facts`` about each case (the reference of
``test_rule_fast_paths.py``).

The rules now in ``plugins`` find the few cases that can matter first — by the spans of days
between a use's filings, reviews or a physician's registrations (``Facts.uses``, ``Use.cases_on``,
``Facts.standing``), by the classes a technology ever has (``Facts.may_be``) — and must find
exactly what these find, in the same order. Only the rules and helpers that changed are here;
each keeps its article.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from datetime import date, timedelta
from typing import Any

from ledger.errors import CalendarError
from plugins.chongqing.rules import CQ2017, notice_end
from plugins.hunan.rules import MTM2018_START as HN_MTM2018_START
from plugins.national.common import (
    MTM2009_START,
    MTM2018_START,
    cases_with_state,
    is_mtm2009,
    is_mtm2018,
)
from plugins.national.mtm2018 import _days, cite
from plugins.national.transition2015 import TRANSITION_2015
from projections.clock import FILING_KINDS, Clock, grandfather_date
from projections.facts import Facts
from projections.findings import Finding
from projections.replay import Resolved
from projections.standing import filing_in_force, use_states

Check = Callable[[Facts], Iterator[Finding]]


def ids(*decisions: Resolved | None) -> tuple[str, ...]:
    """The ids of the decisions that show a finding, in the order given, without repeats."""
    out: list[str] = []
    for d in decisions:
        if d is not None and d.record.id not in out:
            out.append(d.record.id)
    return tuple(out)


# --- the filing clock (MTM-2018#11, #49) -----------------------------------------------------------


def filing_state(clock: Clock, on: date) -> tuple[str, Resolved | None]:
    """The filing state on ``on``: the use's last state by then, read by ``filing_in_force`` (the one
    model), and the last filing decision by then (HN-2018 附件2 注2: a new form for a filed use keeps
    it completed; MTM-2018#49: a filing from before the regime lapses after the grandfather date)."""
    state, last = None, None
    for s in clock.states:
        if s.decision.record.effective > on:
            break
        state = s
        if s.decision.record.kind in FILING_KINDS:
            last = s.decision
    tech_class = clock.tech_class or (lambda ref, day: None)
    filing = filing_in_force(state, on, clock.technology, tech_class, clock.grandfather)
    return {"not filed": "none", "filed": "completed"}.get(filing, filing), last


def filing_clock(facts: Facts, use: Sequence[Resolved], technology: str) -> Clock | None:
    """MTM-2018#11, #49: the clock of a use, scanning all its cases."""
    cases = [d for d in use if d.record.kind == "case.performed"]
    if not cases:
        return None
    institution = use[0].record.fields["institution"]
    grandfather = facts.deadline("grandfather", MTM2018_START)
    by = grandfather_date(grandfather)
    if (
        by is not None
        and facts.tech_class(technology, by) == "restricted"
        and any(
            c.record.effective < MTM2018_START
            or (c.record.effective <= by and facts.tech_class(technology, c.record.effective) != "restricted")
            for c in cases
        )
    ):
        first = next(
            (
                c
                for c in cases
                if is_mtm2018(c.record.effective) and facts.tech_class(technology, c.record.effective) == "restricted"
            ),
            None,
        )
        filings = tuple(d for d in use if d.record.kind in FILING_KINDS and is_mtm2018(d.record.effective))
        return Clock(institution, technology, True, first, grandfather, by, filings, *standing_of(facts, use))
    first = next(
        (
            c
            for c in cases
            if is_mtm2018(c.record.effective) and facts.tech_class(technology, c.record.effective) == "restricted"
        ),
        None,
    )
    if first is None:
        return None
    deadline = facts.deadline("filing", first.record.effective)
    if deadline is None:
        return None
    filings = tuple(d for d in use if d.record.kind in FILING_KINDS)
    return Clock(institution, technology, False, first, deadline, None, filings, *standing_of(facts, use))


def standing_of(facts: Facts, use: Sequence[Resolved]) -> tuple[Any, ...]:
    """The use's states (``projections.standing``, replayed over the whole use), its grandfather
    clause and the catalogue: what a clock reads of the use's standing."""
    return tuple(use_states(use)), facts.grandfather, facts.tech_class


def clocks(facts: Facts) -> list[Clock]:
    out = []
    for (_, technology), use in sorted(facts.by_use.items()):
        clock = filing_clock(facts, use, technology)
        if clock is not None:
            out.append(clock)
    return out


# --- MTM-2018 ---------------------------------------------------------------------------------


def check_prohibited(facts: Facts) -> Iterator[Finding]:
    """MTM-2018#9: every case and filing, its class looked up on its day."""
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


def check_unfiled_use(facts: Facts) -> Iterator[Finding]:
    """MTM-2018#11, #49: every case of every clock's use, its filing state replayed."""
    for clock in clocks(facts):
        for case in facts.by_use[(clock.institution, clock.technology)]:
            r = case.record
            if r.kind != "case.performed" or not is_mtm2018(r.effective):
                continue
            state, last = filing_state(clock, r.effective)
            if state not in ("rejected", "none") or facts.tech_class(clock.technology, r.effective) != "restricted":
                continue
            if state == "rejected":
                why = f"its filing was rejected ({last.record.id if last else '?'})"
            else:
                try:
                    if not clock.past_due(facts, r.effective):
                        continue
                except CalendarError:
                    continue
                why = (
                    f"no filing submitted by the grandfather date {clock.by}"
                    if clock.grandfathered
                    else f"no filing submitted within {clock.article}'s {_days(clock)} working days of the first case"
                )
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


def check_ethics(facts: Facts) -> Iterator[Finding]:
    """MTM-2018#13: every case, its latest ethics review found by bisection."""
    for (institution, technology), use in sorted(facts.by_use.items()):
        reviews = [d for d in use if d.record.kind == "review.concluded" and d.record.fields["committee"] == "ethics"]
        days = [d.record.effective for d in reviews]
        for case in use:
            r = case.record
            if r.kind != "case.performed" or not is_mtm2018(r.effective):
                continue
            i = bisect_right(days, r.effective)
            latest = reviews[i - 1] if i else None
            if latest is not None and latest.record.fields["outcome"] == "approved":
                continue
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


def check_suspended_use(facts: Facts) -> Iterator[Finding]:
    """MTM-2018#25: every case of every use, with the use's state then."""
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


def check_privilege(facts: Facts) -> Iterator[Finding]:
    """MTM-2018#20: every case, its physician's registration and grant asked afresh."""
    registered, privilege, tech_class = facts.registered, facts.privilege, facts.tech_class
    for case in facts.of_kind("case.performed"):
        r = case.record
        on = r.effective
        if not is_mtm2018(on):
            continue
        f = r.fields
        physician, institution, technology = f["physician"], f["institution"], f["technology"]
        grant = privilege(physician, institution, on)
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


# --- MTM-2009 ---------------------------------------------------------------------------------


def check_unapproved_use(facts: Facts) -> Iterator[Finding]:
    """MTM-2009#34: every case of every use before the 2015 transition."""
    first_pass: dict[tuple[str | None, str], date] = {}
    for p in facts.of_kind("panel.concluded"):
        f = p.record.fields
        if f["panel"] == "technical-audit" and f["outcome"] == "pass":
            first_pass.setdefault((f.get("institution"), f["technology"]), p.record.effective)
    for (institution, technology), use in sorted(facts.by_use.items()):
        passed_on = first_pass.get((institution, technology), date.max)
        for case in use:
            r = case.record
            if r.kind != "case.performed" or not MTM2009_START <= r.effective < TRANSITION_2015:
                continue
            tech_class = facts.tech_class(technology, r.effective)
            if tech_class not in ("class2", "class3") or passed_on <= r.effective:
                continue
            yield Finding(
                effective=r.effective,
                rule="national.unapproved-use",
                article="MTM-2009#34",
                severity="serious",
                message=f"case of {technology} ({tech_class}) on {r.effective} without a passed technical audit "
                "(MTM-2009#21, #34: used only after audit, approval and registration)",
                decisions=ids(case),
                institution=institution,
                technology=technology,
                physician=r.fields.get("physician"),
            )


def check_prohibited_2009(facts: Facts) -> Iterator[Finding]:
    """MTM-2009#13, #58: every case, its class looked up on its day."""
    for case in facts.of_kind("case.performed"):
        r = case.record
        if not is_mtm2009(r.effective) or facts.tech_class(r.fields["technology"], r.effective) != "prohibited":
            continue
        yield Finding(
            effective=r.effective,
            rule="national.prohibited-2009",
            article="MTM-2009#13",
            severity="grave",
            message=f"case of {r.fields['technology']}, a prohibited technology, on {r.effective} (MTM-2009#13, #58)",
            decisions=ids(case),
            institution=r.fields["institution"],
            technology=r.fields["technology"],
            physician=r.fields.get("physician"),
        )


def check_stopped_2009(facts: Facts) -> Iterator[Finding]:
    """MTM-2009#41: every case of every use, with the use's state then."""
    for (institution, technology), use in sorted(facts.by_use.items()):
        for case, state, why in cases_with_state(use):
            r = case.record
            if not is_mtm2009(r.effective) or state == "active":
                continue
            yield Finding(
                effective=r.effective,
                rule="national.use-while-stopped-2009",
                article="MTM-2009#41",
                severity="serious",
                message=f"case of {technology} on {r.effective} while its use was {state}",
                decisions=ids(case, why),
                institution=institution,
                technology=technology,
                physician=r.fields.get("physician"),
            )


# --- HN-2018, CQ-2017 -----------------------------------------------------------------------


def _last_change(facts: Facts, physician: str, institution: str, day: date) -> Resolved | None:
    current = None
    for d in facts.of_kind("physician.registered", "physician.deregistered"):
        f = d.record.fields
        if f["physician"] == physician and f["institution"] == institution and d.record.effective <= day:
            current = d
    return current


def _on(facts: Facts, physician: str, institution: str, day: date) -> bool:
    last = _last_change(facts, physician, institution, day)
    return last is not None and last.record.kind == "physician.registered"


def check_lead_left(facts: Facts) -> Iterator[Finding]:
    """HN-2018 附件2 注2: every case of every use, the latest filing's lead asked afresh."""
    for (institution, technology), use in sorted(facts.by_use.items()):
        latest: Resolved | None = None
        reported: set[str] = set()
        for d in use:
            r = d.record
            if r.kind == "filing.submitted":
                latest = d
                continue
            if r.kind != "case.performed" or r.effective < HN_MTM2018_START or latest is None:
                continue
            if latest.record.id in reported:
                continue
            lead = latest.record.fields["technical_lead"]
            if not _on(facts, lead, institution, latest.record.effective):
                continue
            if _on(facts, lead, institution, r.effective):
                continue
            reported.add(latest.record.id)
            left = _last_change(facts, lead, institution, r.effective)
            yield Finding(
                effective=r.effective,
                rule="hunan.lead-left",
                article="HN-2018 附件2 注2",
                severity="irregular",
                message=f"case of {technology} on {r.effective}: technical lead {lead} of filing "
                f"{latest.record.id} has left the institution and no new filing form was submitted",
                decisions=tuple(x.record.id for x in (d, latest, left) if x is not None),
                institution=institution,
                technology=technology,
                physician=lead,
            )


def check_use_before_filing(facts: Facts) -> Iterator[Finding]:
    """CQ-2017#二(二): every case of every use begun under CQ-2017."""
    for (institution, technology), use in sorted(facts.by_use.items()):
        cases = [d for d in use if d.record.kind == "case.performed"]
        if not cases or cases[0].record.effective < CQ2017:
            continue
        ends = [
            notice_end(facts, s.decision.record)
            for s in use_states(use)
            if s.decision.record.kind == "filing.completed" and not s.unbacked
        ]
        done_from = min((end + timedelta(days=1) for end in ends if end is not None), default=date.max)
        for case in cases:
            r = case.record
            if not CQ2017 <= r.effective < MTM2018_START or r.effective >= done_from:
                continue
            if facts.tech_class(technology, r.effective) not in ("restricted", "class2"):
                continue
            yield Finding(
                effective=r.effective,
                rule="chongqing.use-before-filing",
                article="CQ-2017#二(二)",
                severity="serious",
                message=f"case of {technology} on {r.effective} before its filing was done (completed and publicly "
                "noticed for 5 working days)",
                decisions=(r.id,),
                institution=institution,
                technology=technology,
                physician=r.fields.get("physician"),
            )


CHECKS: dict[str, Check] = {
    "national.prohibited": check_prohibited,
    "national.unfiled-use": check_unfiled_use,
    "national.ethics": check_ethics,
    "national.use-while-suspended": check_suspended_use,
    "national.privilege": check_privilege,
    "national.unapproved-use": check_unapproved_use,
    "national.prohibited-2009": check_prohibited_2009,
    "national.use-while-stopped-2009": check_stopped_2009,
    "hunan.lead-left": check_lead_left,
    "chongqing.use-before-filing": check_use_before_filing,
}
"""By rule id, the reference of each rule that changed; the other rules are their own reference
(the three others that read the filing clocks do so through ``clocks`` here, see the test)."""
