"""The filing clock of a use: by when an institution must file, and where its filing stands.

MTM-2018#11 lets an institution perform its first case of a restricted technology and then file
within 15 working days (a province's own deadline of the same name overrides it, e.g.
HN-2018#二(二)); MTM-2018#49 (and a province's own date, e.g. HN-2018#六(一)) gives uses under way
before the regime a fixed date instead. One reading for every reader — the national rules of #11
and #49 and a province's deadline list (``ledger hunan deadlines``) — built on the standing of the
use (``projections.standing``) and the plugins' ``Deadline`` data. The regime's first day is the
caller's (a plugin's constant), never a literal here.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cached_property

from projections.facts import Facts, Use
from projections.findings import Deadline
from projections.replay import Resolved
from projections.standing import FILED, NOT_FILED, REJECTED, SUBMITTED, Grandfather, UseState, filing_in_force

FILING_KINDS = ("filing.submitted", "filing.completed", "filing.rejected")
_CLOCK_STATES = {NOT_FILED: "none", SUBMITTED: "submitted", FILED: "completed", REJECTED: "rejected"}
"""A use's filing standing as the filing clock names it."""


def _no_class(ref: str, day: date) -> str | None:
    del ref, day
    return None


def grandfather_date(deadline: Deadline | None) -> date | None:
    """The fixed date of a ``grandfather`` deadline (``extra["by"]``), e.g. 2019-01-31 in Hunan."""
    if deadline is None or "by" not in deadline.extra:
        return None
    return date.fromisoformat(deadline.extra["by"])


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


def filing_clock(facts: Facts, use: Use, technology: str, regime_start: date) -> Clock | None:
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
    grandfather = facts.deadline("grandfather", regime_start)
    by = grandfather_date(grandfather)
    if (
        by is not None
        and tech_class(technology, by) == "restricted"
        and _used_before(facts, use, technology, by, regime_start)
    ):
        first = _first_restricted(facts, use, technology, regime_start)
        filings = tuple(d for d in use.others if d.record.kind in FILING_KINDS and d.record.effective >= regime_start)
        standing = _standing(facts, institution, technology)
        return Clock(institution, technology, True, first, grandfather, by, filings, *standing)
    first = _first_restricted(facts, use, technology, regime_start)
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


def _used_before(facts: Facts, use: Use, technology: str, by: date, regime_start: date) -> bool:
    """A case before 2018-11-01, or by the grandfather date while the technology was not yet
    restricted (MTM-2018#49, HN-2018#六(一)). Cases are in date order: once one is on or after
    2018-11-01 and after ``by``, so is every later one, and none of them can count."""
    for c in use.cases:
        day = c.record.effective
        if day < regime_start:
            return True
        if day > by:
            return False
        if facts.tech_class(technology, day) != "restricted":
            return True
    return False


def _first_restricted(facts: Facts, use: Use, technology: str, regime_start: date) -> Resolved | None:
    """The first case on or after 2018-11-01 of the technology while restricted (MTM-2018#11)."""
    tech_class = facts.tech_class
    for c in use.cases_on(regime_start):
        if tech_class(technology, c.record.effective) == "restricted":
            return c
    return None
