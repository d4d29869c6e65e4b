"""The standing of a use: one model of where an institution's use of a technology stands on a day.

A *use* is one institution × one technology. Its standing on a day, as known at a position, is one of

* ``not filed`` — no filing decision yet (or only a refusal of nothing);
* ``submitted`` — the institution submitted its filing (MTM-2018#11), the authority has not answered;
* ``filed`` — the filing authority completed a live submission (MTM-2018#11-#12, #40: 经备案);
* ``rejected`` — the authority refused the submission;
* ``void`` — a completion with no live submission behind it (never submitted, or its submission
  retracted): the authority completed nothing, so the use is not filed, and the rules flag it;
* ``suspended`` / ``stopped`` — a suspension or stop in force (MTM-2018#25, #41-#44), dated as
  recorded; ``use.resumed`` lifts either, a new completed filing lifts a stop (MTM-2018#11);
* ``lapsed`` — filed before the regime and not filed again by its grandfather date (MTM-2018#49:
  2019-02-01; a province's own, e.g. HN-2018#六(一): 2019-01-31), so no longer filed after it;
* ``prohibited`` — the technology is prohibited on the day (MTM-2018#9-#10): nothing is filed;
* ``delisted`` — the technology has no catalogue entry in force on the day (no longer restricted).

Two steps, both here and nowhere else (ARCHITECTURE.md rule 9): ``UseMachine`` walks a use's
decisions in valid-time order and says, after each, what the use's own decisions make of it
(``UseState``); ``standing`` then reads one such state on a day against the catalogue in force
(prohibited, delisted) and the grandfather date (lapsed). The filings view stores the states
(``projections.disclosure``) and ``Views`` applies ``standing`` to the rows in force; the rules'
facts (``projections.facts``) run the same machine over the decisions they judge. The dates of a
regime (the grandfather date and the regime's first day) come from plugins' ``Deadline`` data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from typing import NamedTuple

from projections.findings import Deadline
from projections.replay import Resolved

NOT_FILED = "not filed"
SUBMITTED = "submitted"
FILED = "filed"
REJECTED = "rejected"
VOID = "void"
SUSPENDED = "suspended"
STOPPED = "stopped"
LAPSED = "lapsed"
PROHIBITED = "prohibited"
DELISTED = "delisted"

PUBLISHED = frozenset({FILED, SUSPENDED, STOPPED})
"""The standings the public lists show: uses 经备案 (MTM-2018#40), suspended and stopped ones
(#41-#44). A submission, a refusal, a void or lapsed filing, or a prohibited or delisted
technology is not a filing in force, so it is not published."""

USE_KINDS = frozenset(
    {"filing.submitted", "filing.completed", "filing.rejected", "use.suspended", "use.resumed", "use.stopped"}
)
"""The kinds that change a use's own state (cases and reviews do not)."""

TechClass = Callable[[str, date], str | None]
"""``(technology ref, day) -> class`` of the catalogue entry in force that day, or None."""


class UseState(NamedTuple):
    """A use as its own decisions leave it after ``decision`` (``UseMachine``)."""

    status: str
    """``suspended`` or ``stopped`` while one is in force, else ``filing``."""
    filing: str
    """``not filed``, ``submitted``, ``filed``, ``rejected`` or ``void``."""
    filed_on: date | None
    """The day of the completion in force (a filing date, never a stop date)."""
    authority: str | None
    submitted_on: date | None
    """The day of the latest live submission."""
    pending_on: date | None
    """The day of the earliest submission the authority has not answered yet."""
    halted_on: date | None
    """The day of the suspension or stop in force, as recorded."""
    halted_by: Resolved | None
    decision: Resolved
    """The decision after which the use stands so."""
    unbacked: bool = False
    """``decision`` is a completion with no live submission (flagged, MTM-2018#11)."""


class UseMachine:
    """A use's own decisions, one at a time in valid-time order (effective date, then position)."""

    def __init__(self) -> None:
        self.filing = NOT_FILED
        self.halt: str | None = None
        self.halted_on: date | None = None
        self.halted_by: Resolved | None = None
        self.filed_on: date | None = None
        self.authority: str | None = None
        self.submitted_on: date | None = None
        self.pending_on: date | None = None

    def apply(self, d: Resolved) -> UseState | None:
        """The use's state after ``d``; None when ``d`` is not one of ``USE_KINDS``."""
        r = d.record
        kind = r.kind
        day = r.effective
        unbacked = False
        if kind == "filing.submitted":
            self.submitted_on = day
            if self.pending_on is None:
                self.pending_on = day
            if self.filing != FILED:  # a new form for a filed use keeps it filed (HN-2018 附件2 注2)
                self.filing = SUBMITTED
        elif kind == "filing.completed":
            if self.pending_on is None:  # nothing submitted (or its submission retracted)
                unbacked = True
                if self.filing != FILED:
                    self.filing = VOID
            else:
                self.filing, self.filed_on, self.authority, self.pending_on = FILED, day, r.by, None
                if self.halt == STOPPED:  # filed again after a stop (MTM-2018#11): the stop ends
                    self.halt = self.halted_on = self.halted_by = None
        elif kind == "filing.rejected":
            if self.pending_on is not None:
                self.pending_on = None
                if self.filing == SUBMITTED:
                    self.filing = REJECTED
        elif kind == "use.suspended":
            if self.halt != STOPPED:  # a stop is not softened by a later suspension
                self.halt, self.halted_on, self.halted_by = SUSPENDED, day, d
        elif kind == "use.resumed":
            self.halt = self.halted_on = self.halted_by = None
        elif kind == "use.stopped":
            self.halt, self.halted_on, self.halted_by = STOPPED, day, d
        else:
            return None
        return UseState(
            self.halt or self.filing,
            self.filing,
            self.filed_on,
            self.authority,
            self.submitted_on,
            self.pending_on,
            self.halted_on,
            self.halted_by,
            d,
            unbacked,
        )


def use_states(decisions: Iterable[Resolved]) -> list[UseState]:
    """The state after each of a use's own decisions (``decisions`` in valid-time order)."""
    machine = UseMachine()
    return [s for s in map(machine.apply, decisions) if s is not None]


@dataclass(frozen=True)
class Grandfather:
    """A regime's grandfather clause: uses under way before ``since`` file again by ``by``."""

    since: date
    """The regime's first day: a filing made before it does not count after ``by``."""
    by: date
    article: str


def grandfather_for(deadlines: Iterable[Deadline], jurisdiction: str | None) -> Grandfather | None:
    """The ``grandfather`` deadline of ``jurisdiction`` (its own, else the national one), from
    plugins' data (MTM-2018#49; HN-2018#六(一))."""
    found = [d for d in deadlines if d.name == "grandfather" and "by" in d.extra]
    chosen = [d for d in found if d.jurisdiction == jurisdiction] or [d for d in found if d.jurisdiction == "national"]
    if not chosen:
        return None
    d = min(chosen, key=lambda d: d.valid_from)
    return Grandfather(d.valid_from, date.fromisoformat(d.extra["by"]), d.article)


def lapsed(
    filing: str,
    filed_on: date | None,
    pending_on: date | None,
    day: date,
    technology: str,
    tech_class: TechClass,
    grandfather: Grandfather | None,
) -> bool:
    """Has a filing from before the regime lapsed by ``day``? Only after the grandfather date, only
    for a technology restricted on it (MTM-2018#49), and only when no submission made under the
    regime by that date is still live (completed ones moved ``filed_on`` into the regime)."""
    if grandfather is None or day <= grandfather.by:
        return False
    if filing == FILED:
        if filed_on is None or filed_on >= grandfather.since:
            return False
        if pending_on is not None and grandfather.since <= pending_on <= grandfather.by:
            return False
    elif filing == SUBMITTED:
        if pending_on is None or pending_on >= grandfather.since:
            return False
    else:
        return False
    return tech_class(technology, grandfather.by) == "restricted"


def standing(
    status: str,
    filing: str,
    filed_on: date | None,
    pending_on: date | None,
    day: date,
    technology: str,
    tech_class: TechClass,
    grandfather: Grandfather | None,
) -> str:
    """The standing on ``day`` of a use whose own decisions left it in ``status`` / ``filing``
    (a ``UseState``'s fields, or a filings-view row's). A stop stands whatever the catalogue says;
    otherwise a prohibited technology (MTM-2018#9-#10) or one with no entry in force is not filed."""
    if status == STOPPED:
        return STOPPED
    cls = tech_class(technology, day)
    if cls == "prohibited":
        return PROHIBITED
    if cls is None:
        return DELISTED
    if lapsed(filing, filed_on, pending_on, day, technology, tech_class, grandfather):
        return LAPSED
    return status


def state_standing(
    state: UseState | None, day: date, technology: str, tech_class: TechClass, grandfather: Grandfather | None
) -> str:
    """``standing`` of a ``UseState`` (``not filed`` when the use has none yet)."""
    if state is None:
        return NOT_FILED
    return standing(
        state.status, state.filing, state.filed_on, state.pending_on, day, technology, tech_class, grandfather
    )


def filing_in_force(
    state: UseState | None, day: date, technology: str, tech_class: TechClass, grandfather: Grandfather | None
) -> str:
    """The filing part of a use's standing on ``day``, for the filing clock (MTM-2018#11, #49):
    ``filed``, ``submitted``, ``rejected``, or ``not filed`` (never filed, void, or lapsed). The
    catalogue's class is the rules' own question, case by case."""
    if state is None:
        return NOT_FILED
    if lapsed(state.filing, state.filed_on, state.pending_on, day, technology, tech_class, grandfather):
        return NOT_FILED
    return NOT_FILED if state.filing == VOID else state.filing
