"""What the national rules share: the regimes' dates, the filing clock of a use, and small helpers.

The same act is legal or not depending on the regime in force *on the day it happened* (DOMAIN.md),
so every rule first asks which regime governs a decision, by its effective date:

* MTM-2009 (卫生部令第… 医疗技术临床应用管理办法) from 2009-05-01 up to 2018-10-31;
* the 2015 transition (国卫医发〔2015〕71号, see ``transition2015``) from 2015-06-29, inside MTM-2009's span;
* MTM-2018 (国家卫生健康委员会令第1号) from 2018-11-01;
* EVAL-2026 (国卫办医政函〔2026〕66号) from 2026-03-04, for evaluation panels.

The *filing clock* is the one piece of reasoning several rules need (late filing, overdue filing,
use without a filing, the calendar warning), so it lives here once: MTM-2018#11 lets an institution
perform its first case and then file within 15 working days; MTM-2018#49 (and a province's own date,
e.g. HN-2018#六(一)) gives uses that were under way before the regime a fixed date instead.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cached_property

from ledger.errors import CalendarError
from projections.facts import Facts, Use
from projections.findings import Deadline
from projections.replay import Resolved
from projections.standing import (
    FILED,
    NOT_FILED,
    REJECTED,
    SUBMITTED,
    Grandfather,
    UseMachine,
    UseState,
    filing_in_force,
)

MTM2009_START = date(2009, 5, 1)
"""MTM-2009#61: in force from 2009-05-01."""
MTM2018_START = date(2018, 11, 1)
"""MTM-2018 (附则): in force from 2018-11-01; MTM-2009 rules judge only what happened before."""
EVAL2026_START = date(2026, 3, 4)
"""EVAL-2026#13: in force from the day it was issued, 2026-03-04."""
NATIONAL_GRANDFATHER = date(2019, 2, 1)
"""MTM-2018#49: uses under way before the regime file "自2019年2月1日以前" (by 2019-02-01)."""

FILING_KINDS = ("filing.submitted", "filing.completed", "filing.rejected")
_CLOCK_STATES = {NOT_FILED: "none", SUBMITTED: "submitted", FILED: "completed", REJECTED: "rejected"}
"""A use's filing standing as the filing clock names it."""


def _no_class(ref: str, day: date) -> str | None:
    del ref, day
    return None


def is_mtm2009(day: date) -> bool:
    """Judged by MTM-2009: on or after 2009-05-01 and before 2018-11-01."""
    return MTM2009_START <= day < MTM2018_START


def is_mtm2018(day: date) -> bool:
    """Judged by MTM-2018: on or after 2018-11-01."""
    return day >= MTM2018_START


def is_eval2026(day: date) -> bool:
    """Judged by EVAL-2026: on or after 2026-03-04."""
    return day >= EVAL2026_START


def ids(*decisions: Resolved | None) -> tuple[str, ...]:
    """The ids of the decisions that show a finding, in the order given, without repeats."""
    out: list[str] = []
    for d in decisions:
        if d is not None and d.record.id not in out:
            out.append(d.record.id)
    return tuple(out)


def the_day_after(day: date) -> date:
    return day + timedelta(days=1)


def grandfather_date(deadline: Deadline | None) -> date | None:
    """The fixed date of a ``grandfather`` deadline (``extra["by"]``), e.g. 2019-01-31 in Hunan."""
    if deadline is None or "by" not in deadline.extra:
        return None
    return date.fromisoformat(deadline.extra["by"])


def cases_with_state(use: Iterable[Resolved]) -> Iterator[tuple[Resolved, str, Resolved | None]]:
    """Each case of a use with the use's state then — ``active``, ``suspended`` or ``stopped`` — and the
    decision that made it so, in one pass (valid-time order, log order within a day).

    The state is the use's standing as ``projections.standing.UseMachine`` has it (one model for the
    rules and the public lists): a resumption (``use.resumed``) ends a suspension or a stop, and so
    does, for a stop, a new filing completed on a live submission (MTM-2018#11). A suspension
    recorded *after* a case on the same day does not cover it: the case is usually what led to it
    (MTM-2018#25(3): a serious adverse event, then "立即停止"). Linear in the use's length: an
    institution reports every case (MTM-2018#37).
    """
    machine = UseMachine()
    for d in use:
        if d.record.kind == "case.performed":
            yield d, machine.halt or "active", machine.halted_by
        else:
            machine.apply(d)


def interrupted(use: Use) -> bool:
    """Was the use ever suspended or stopped? If not, ``cases_with_state`` finds every case of it
    ``active``, and the rules of MTM-2018#25 and MTM-2009#41 need not walk its cases."""
    return any(d.record.kind in _INTERRUPTIONS for d in use.others)


_INTERRUPTIONS = frozenset({"use.suspended", "use.stopped"})


@dataclass(frozen=True)
class Clock:
    """The filing clock of one use (an institution's use of one restricted technology).

    ``grandfathered`` uses were under way before the regime: they file by the fixed ``by`` date
    (MTM-2018#49, or the province's own, e.g. HN-2018#六(一)) and only filings made under the new
    regime count. Other uses start the clock at their ``first_case`` and file within ``deadline``
    working days of it (MTM-2018#11, or the province's, e.g. HN-2018#二(二)).
    """

    institution: str
    technology: str
    grandfathered: bool
    first_case: Resolved | None
    """The first case of the technology while restricted under MTM-2018 (None for a grandfathered
    use without one)."""
    deadline: Deadline | None
    """The working-day deadline (``filing``) or, when grandfathered, the ``grandfather`` deadline."""
    by: date | None
    """The grandfather date; None for a use on the 15-working-day clock."""
    filings: tuple[Resolved, ...]
    """Filing decisions that count for this clock, in valid-time order."""
    states: tuple[UseState, ...] = ()
    """The use's states (``projections.standing``): what ``filing_spans`` reads."""
    grandfather: Grandfather | None = None
    tech_class: Callable[[str, date], str | None] | None = field(default=None, compare=False, repr=False)

    @property
    def first_filing(self) -> Resolved | None:
        """Only the first filing counts for the deadline: a new form after a change of the
        technical lead or of the principal (HN-2018 附件2 注2) is not a late filing."""
        return next((f for f in self.filings if f.record.kind == "filing.submitted"), None)

    @property
    def article(self) -> str:
        return self.deadline.article if self.deadline else "MTM-2018#11"

    @cached_property
    def filing_spans(self) -> tuple[tuple[date, str, Resolved | None], ...]:
        """``(since, state, last)``: from ``since`` on (up to the next span's day) the filing state is
        ``state`` — ``none``, ``submitted``, ``completed`` or ``rejected`` — and ``last`` the latest
        filing decision by then; the first span starts at ``date.min``. The state is the filing part
        of the use's standing (``projections.standing.filing_in_force``, the one model the public
        lists answer from): a completion with no live submission is void (none), a filing from
        before the regime lapses after the grandfather date (MTM-2018#49), a new form for a filed
        use keeps it completed (HN-2018 附件2 注2). A day's decisions all count on that day."""
        spans: list[tuple[date, str, Resolved | None]] = [(date.min, "none", None)]
        states = self.states
        days = sorted({s.decision.record.effective for s in states})
        if self.grandfather is not None and states:
            days = sorted({*days, self.grandfather.by + timedelta(days=1)})
        tech_class = self.tech_class or _no_class
        i, state, last = 0, None, None
        for day in days:
            while i < len(states) and states[i].decision.record.effective <= day:
                state = states[i]
                if state.decision.record.kind in FILING_KINDS:
                    last = state.decision
                i += 1
            filing = _CLOCK_STATES[filing_in_force(state, day, self.technology, tech_class, self.grandfather)]
            if spans[-1][1:] != (filing, last):
                spans.append((day, filing, last))
        return tuple(spans)

    @cached_property
    def _span_days(self) -> list[date]:
        return [since for since, _, _ in self.filing_spans]

    def filing_state(self, on: date) -> tuple[str, Resolved | None]:
        """``none``, ``submitted``, ``completed`` or ``rejected``: the last counted filing decision by ``on``."""
        _, state, last = self.filing_spans[bisect_right(self._span_days, on) - 1]
        return state, last

    def filing_states(self) -> Callable[[date], tuple[str, Resolved | None]]:
        """``filing_state``, for callers that ask a use's days one by one (each answer is a bisection)."""
        return self.filing_state

    def due(self, facts: Facts) -> date:
        """The last day to file. Raises ``CalendarError`` when counting needs an unknown year."""
        if self.by is not None:
            return self.by
        assert self.first_case is not None and self.deadline is not None
        return facts.calendar().add_workdays(self.first_case.record.effective, self.deadline.working_days)

    def past_due(self, facts: Facts, day: date) -> bool:
        """Is ``day`` after the last day to file? Counts only up to ``day``, so a year after it
        need not be known. Raises ``CalendarError`` otherwise."""
        if self.by is not None:
            return day > self.by
        assert self.first_case is not None and self.deadline is not None
        start = self.first_case.record.effective
        return facts.calendar().workdays_between(start, day) > self.deadline.working_days


def filing_clock(facts: Facts, use: Use, technology: str) -> Clock | None:
    """The clock of ``use`` under MTM-2018, or None when no restricted case started one.

    Grandfathered (MTM-2018#49): the technology is restricted on the grandfather date, and the
    institution used it before the regime began (a case before 2018-11-01), or before the
    technology entered a catalogue published after that day (Hunan's 2018 list came out on
    2018-11-19; HN-2018#六(一) covers uses "before this notice") while still before that date.
    Otherwise the first case of the technology while restricted, on or after 2018-11-01, starts the
    clock (MTM-2018#11).
    """
    cases = use.cases
    if not cases:
        return None
    institution = cases[0].record.fields["institution"]
    tech_class = facts.tech_class
    grandfather = facts.deadline("grandfather", MTM2018_START)
    by = grandfather_date(grandfather)
    if by is not None and tech_class(technology, by) == "restricted" and _used_before(facts, use, technology, by):
        first = _first_restricted(facts, use, technology)
        filings = tuple(d for d in use.others if d.record.kind in FILING_KINDS and is_mtm2018(d.record.effective))
        standing = _standing(facts, institution, technology)
        return Clock(institution, technology, True, first, grandfather, by, filings, *standing)
    first = _first_restricted(facts, use, technology)
    if first is None:
        return None
    deadline = facts.deadline("filing", first.record.effective)
    if deadline is None:
        return None
    filings = tuple(d for d in use.others if d.record.kind in FILING_KINDS)
    standing = _standing(facts, institution, technology)
    return Clock(institution, technology, False, first, deadline, None, filings, *standing)


def _standing(
    facts: Facts, institution: str, technology: str
) -> tuple[tuple[UseState, ...], Grandfather | None, Callable[[str, date], str | None]]:
    """What a clock reads of the use's standing: its states, the grandfather clause, the catalogue."""
    return tuple(facts.use_states((institution, technology))), facts.grandfather, facts.tech_class


def _used_before(facts: Facts, use: Use, technology: str, by: date) -> bool:
    """A case before 2018-11-01, or by the grandfather date while the technology was not yet
    restricted (MTM-2018#49, HN-2018#六(一)). Cases are in date order: once one is on or after
    2018-11-01 and after ``by``, so is every later one, and none of them can count."""
    for c in use.cases:
        day = c.record.effective
        if day < MTM2018_START:
            return True
        if day > by:
            return False
        if facts.tech_class(technology, day) != "restricted":
            return True
    return False


def _first_restricted(facts: Facts, use: Use, technology: str) -> Resolved | None:
    """The first case on or after 2018-11-01 of the technology while restricted (MTM-2018#11)."""
    tech_class = facts.tech_class
    for c in use.cases_on(MTM2018_START):
        if tech_class(technology, c.record.effective) == "restricted":
            return c
    return None


def clocks(facts: Facts) -> list[Clock]:
    """Every use's filing clock in this scope, by institution then technology: worked out once per
    scope, for the four rules of MTM-2018#11 and #49 that read it."""
    return list(facts.shared("national.clocks", _clocks))


def _clocks(facts: Facts) -> list[Clock]:
    out = []
    for (_, technology), use in sorted(facts.uses.items()):
        clock = filing_clock(facts, use, technology)
        if clock is not None:
            out.append(clock)
    return out


def unknown_year(error: CalendarError) -> str:
    """The sentence of a ``CalendarError`` that names the missing year, for a finding's message."""
    text = str(error)
    return text.split(". This calendar", maxsplit=1)[0]
