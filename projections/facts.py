"""Facts: what a rule may know when it judges one scope on one day.

A scope is one institution (every decision naming it, with corrections applied and retractions
removed) or the national scope (panels that name no institution). The facts hold only decisions
effective on or before ``as_of`` and known at the trail's position, so a finding judged "as of
D" is exactly what the decisions in force on D show: a filing that has not happened yet by D is
missing on D, not late.

The helpers below answer the questions the regulations ask, so rules stay short and cite their
article rather than re-deriving state.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from typing import Any, NamedTuple, TypeVar

from ledger.competence import Registry
from ledger.jurisdictions import NATIONAL
from ledger.workdays import WorkdayCalendar
from projections.findings import Deadline
from projections.replay import Resolved, valid_order
from projections.standing import Grandfather, UseState, grandfather_for, state_standing, use_states

TechClassLookup = Callable[[str, date], str | None]
"""``(technology ref, day) -> class`` of the catalogue entry in force that day, or None."""
ClassesOf = Callable[[str], Collection[str | None]]
"""``technology ref -> every class`` the same catalogue gives it on some day (``Facts.may_be``)."""

T = TypeVar("T")


@dataclass(frozen=True)
class Facts:
    """The decisions of one scope as in force on ``as_of``, with the lookups rules need."""

    scope: str
    """``institution:<licence>`` or ``national``."""
    jurisdiction: str | None
    """The scope's jurisdiction code (``hunan``), or None when the province has no plugin."""
    as_of: date
    decisions: Sequence[Resolved]
    """In valid-time order: effective date, then record position."""
    tech_class: TechClassLookup
    calendar_for: Callable[[str], WorkdayCalendar] = field(repr=False)
    deadlines: Sequence[Deadline] = ()
    classes_of: ClassesOf | None = field(default=None, repr=False)
    """What ``tech_class`` can answer for a technology on any day; None when the lookup cannot say
    (then ``may_be`` answers yes, and rules ask case by case)."""
    bodies: Registry | None = field(default=None, repr=False, compare=False)
    """The bodies and competences of the plugins that built these facts (``ledger.competence``),
    so a rule judges who decided against the same plugins as the import; None: the process's."""

    # --- selection -----------------------------------------------------------------------------

    def of_kind(self, *kinds: str) -> list[Resolved]:
        """The decisions of ``kinds``, in valid-time order (a fresh list: callers may keep it)."""
        index = self._kind_index
        if len(kinds) == 1:
            return [self.decisions[i] for i in index.get(kinds[0], ())]
        found = [index[k] for k in dict.fromkeys(kinds) if k in index]
        if len(found) == 1:
            return [self.decisions[i] for i in found[0]]
        # Positions in ``decisions`` are distinct and each list is sorted: one C sort of their
        # concatenation is the merge (heapq.merge's generator costs a Python step per item).
        return [self.decisions[i] for i in sorted([i for positions in found for i in positions])]

    @cached_property
    def _kind_index(self) -> dict[str, list[int]]:
        """Where each kind's decisions sit in ``decisions``: every rule asks ``of_kind`` of the same
        scope, and a busy institution's scope holds thousands of cases (MTM-2018#37)."""
        index: dict[str, list[int]] = defaultdict(list)
        for i, d in enumerate(self.decisions):
            index[d.record.kind].append(i)
        return dict(index)

    def shared(self, key: str, compute: Callable[[Facts], T]) -> T:
        """``compute(self)``, worked out once per scope for every rule that asks under ``key``
        (e.g. the filing clocks four MTM-2018#11 rules share). ``compute`` must depend on the facts
        alone, so that sharing it changes no answer; keys are namespaced by plugin (``national.clocks``)."""
        memo: dict[str, Any] = self.__dict__.setdefault("_shared", {})
        if key not in memo:
            memo[key] = compute(self)
        result: T = memo[key]
        return result

    @cached_property
    def by_use(self) -> dict[tuple[str, str], list[Resolved]]:
        """Decisions about one institution's use of one technology, in valid-time order."""
        out: dict[tuple[str, str], list[Resolved]] = {}
        for d in self.of_kind(*self._use_kinds):
            f = d.record.fields
            if "technology" in f:
                out.setdefault((f["institution"], f["technology"]), []).append(d)
        return out

    @cached_property
    def uses(self) -> dict[tuple[str, str], Use]:
        """``by_use`` split into each use's cases (with their days, for bisection) and the rest,
        under the same keys in the same order.

        An institution reports every case (MTM-2018#37): a busy one's uses hold thousands of cases
        and a few dozen other decisions (reviews, filings, suspensions). A rule that looks for the
        cases between two of those decisions bisects ``case_days`` instead of walking the use."""
        cases: dict[tuple[str, str], tuple[list[Resolved], list[date]]] = {}
        others: dict[tuple[str, str], list[tuple[int, Resolved]]] = {}
        index = self._kind_index
        decisions = self.decisions
        for i in index.get("case.performed", ()):  # most of a busy scope: a loop of its own
            d = decisions[i]
            r = d.record
            f = r.fields
            if "technology" in f:
                key = (f["institution"], f["technology"])
                found = cases.get(key)
                if found is None:
                    found = cases[key] = ([], [])
                found[0].append(d)
                found[1].append(r.effective)
        for kind in self._use_kinds:
            if kind != "case.performed":
                for i in index[kind]:
                    d = decisions[i]
                    f = d.record.fields
                    if "technology" in f:
                        others.setdefault((f["institution"], f["technology"]), []).append((i, d))
        parts = {
            key: Use(*cases.get(key, ([], [])), [d for _, d in sorted(others.get(key, ()))])  # back in valid-time order
            for key in cases.keys() | others.keys()
        }
        # In the order of ``by_use``: by each use's first decision.
        return {key: parts[key] for key in sorted(parts, key=lambda key: _first_of(parts[key]))}

    @cached_property
    def _use_kinds(self) -> list[str]:
        """The kinds in this scope about the use of a technology (reviews, cases, filings, uses)."""
        return [k for k in self._kind_index if k.split(".")[0] in _USE_PREFIXES]

    def history(self, use: Use) -> list[Resolved]:
        """Every decision of ``use`` in valid-time order (its list in ``by_use``), for the few rules
        that replay a use step by step, without building ``by_use`` for every use."""
        return sorted([*use.cases, *use.others], key=valid_order)

    @cached_property
    def institution(self) -> Resolved | None:
        """The scope's own registration, if the scope is an institution."""
        regs = self.of_kind("institution.registered")
        return regs[0] if regs else None

    # --- questions the rules ask ------------------------------------------------------------

    def may_be(self, ref: str, *classes: str) -> bool:
        """Could ``tech_class(ref, day)`` be one of ``classes`` on some day? Yes when the lookup
        cannot say (``classes_of`` None). A rule that needs a class (MTM-2018#9: prohibited) skips a
        technology that never has it instead of asking for each of its thousands of cases."""
        if self.classes_of is None:
            return True
        return not set(classes).isdisjoint(self.classes_of(ref))

    def calendar(self) -> WorkdayCalendar:
        """The working-day calendar of this scope's jurisdiction (national when it has none)."""
        return self.calendar_for(self.jurisdiction or NATIONAL)

    def deadline(self, name: str, on: date) -> Deadline | None:
        """The deadline ``name`` in force on ``on`` here: the province's own, else the national one."""
        return deadline_in_force(self.deadlines, name, self.jurisdiction, on)

    def registered(self, physician: str, institution: str, on: date) -> bool:
        """Was ``physician`` registered at ``institution`` on ``on``? (technical lead, MTM-2018#11)"""
        days, states = self._timelines[0].get((physician, institution), _NONE)
        i = bisect_right(days, on)
        return bool(states[i - 1]) if i else False

    def privilege(self, physician: str, institution: str, on: date) -> Resolved | None:
        """The grant in force for ``physician`` at ``institution`` on ``on`` (None if none, or
        suspended or revoked since the last grant)."""
        days, grants = self._timelines[1].get((physician, institution), _NONE)
        i = bisect_right(days, on)
        grant: Resolved | None = grants[i - 1] if i else None
        return grant

    def standing(self, physician: str, institution: str, on: date) -> Standing:
        """``registered`` and ``privilege`` on ``on`` at once, with the days around ``on`` that
        share both answers: a rule asking for every case (MTM-2018#20) asks again only when a
        case falls outside them."""
        registrations, grants = self._timelines
        key = (physician, institution)
        days, states = registrations.get(key, _NONE)
        i = bisect_right(days, on)
        since = days[i - 1] if i else date.min
        until = days[i] if i < len(days) else date.max
        registered = bool(states[i - 1]) if i else False
        days, states = grants.get(key, _NONE)
        i = bisect_right(days, on)
        if i and days[i - 1] > since:
            since = days[i - 1]
        if i < len(days) and days[i] < until:
            until = days[i]
        return Standing(since, until, registered, states[i - 1] if i else None)

    @cached_property
    def _timelines(self) -> tuple[_Timelines, _Timelines]:
        """Registrations and grants per (physician, institution) as (days, states), built once so
        that each question is a bisect rather than a replay of the scope: a rule asks for every
        case (MTM-2018#20). The last change of a day wins, as in a replay in valid-time order;
        ``of_kind`` keeps that order, so the days are sorted."""
        registered: _Timelines = {}
        grants: _Timelines = {}
        for d in self.of_kind(*_REGISTRATION, "privilege.granted", *_GRANT_ENDS):
            r = d.record
            kind = r.kind
            state: Any
            if kind in _REGISTRATION:
                target, state = registered, kind == "physician.registered"
            elif kind == "privilege.granted":
                target, state = grants, d
            else:
                target, state = grants, None
            f = r.fields
            days, states = target.setdefault((f.get("physician"), f.get("institution")), ([], []))
            days.append(r.effective)
            states.append(state)
        return registered, grants

    # --- the standing of a use (``projections.standing``, the one model) ---------------------

    @cached_property
    def grandfather(self) -> Grandfather | None:
        """The grandfather clause of this scope's jurisdiction (MTM-2018#49; HN-2018#六(一))."""
        return grandfather_for(self.deadlines, self.jurisdiction)

    def use_states(self, key: tuple[str, str]) -> list[UseState]:
        """The states a use's own decisions leave it in (``UseMachine``), in valid-time order."""
        memo: dict[tuple[str, str], list[UseState]] = self.__dict__.setdefault("_use_states", {})
        found = memo.get(key)
        if found is None:
            use = self.uses.get(key)
            found = memo[key] = use_states(use.others) if use is not None else []
        return found

    def use_state(self, key: tuple[str, str], on: date) -> UseState | None:
        """The state of a use at the end of ``on`` (None: no filing or use decision by then)."""
        states = self.use_states(key)
        i = bisect_right(states, on, key=_state_day)
        return states[i - 1] if i else None

    def use_standing(self, key: tuple[str, str], on: date) -> str:
        """Where the use ``(institution, technology)`` stands on ``on``: the same answer the public
        lists give for that day and position (``projections.standing.standing``)."""
        return state_standing(self.use_state(key, on), on, key[1], self.tech_class, self.grandfather)

    def first(self, use: Iterable[Resolved], kind: str, **where: Any) -> Resolved | None:
        """The earliest decision of ``kind`` in ``use`` whose fields match ``where``."""
        for d in use:
            if d.record.kind == kind and all(d.record.fields.get(k) == v for k, v in where.items()):
                return d
        return None


class Use(NamedTuple):
    """One use (``Facts.uses``): its cases, their days (sorted), and its other decisions, each in
    valid-time order."""

    cases: list[Resolved]
    case_days: list[date]
    others: list[Resolved]

    def cases_on(self, since: date, until: date | None = None) -> list[Resolved]:
        """The cases effective on or after ``since`` and before ``until`` (None: no end), in
        valid-time order: two bisections of the case days, not a walk of thousands of cases."""
        days = self.case_days
        lo = bisect_left(days, since)
        hi = len(days) if until is None else bisect_left(days, until, lo)
        return self.cases[lo:hi]

    def cases_after(self, decision: Resolved, before: Resolved | None = None) -> list[Resolved]:
        """The cases after ``decision`` of the use (one of ``others``) and, if given, before
        ``before``, in valid-time order (effective date, then position, as in ``Facts.decisions``)."""
        return self.cases[self._after(decision) : len(self.cases) if before is None else self._after(before)]

    def _after(self, decision: Resolved) -> int:
        """Where ``decision`` would sit among the cases: the index of the first case after it."""
        day, position = decision.record.effective, decision.position
        cases = self.cases
        i = bisect_left(self.case_days, day)
        while i < len(cases) and cases[i].record.effective == day and cases[i].position < position:
            i += 1
        return i


def deadline_in_force(deadlines: Iterable[Deadline], name: str, jurisdiction: str | None, on: date) -> Deadline | None:
    """The deadline ``name`` in force on ``on`` in ``jurisdiction``: its own, else the national one
    (the first of ``deadlines`` that fits, so their order decides between two that overlap)."""
    candidates = [
        d for d in deadlines if d.name == name and d.valid_from <= on and (d.valid_to is None or on < d.valid_to)
    ]
    chosen = [d for d in candidates if d.jurisdiction == jurisdiction] or [
        d for d in candidates if d.jurisdiction == NATIONAL
    ]
    return chosen[0] if chosen else None


class Standing(NamedTuple):
    """A physician at an institution from ``since`` up to (not including) ``until`` (``Facts.standing``)."""

    since: date
    until: date
    registered: bool
    grant: Resolved | None


def _state_day(state: UseState) -> date:
    return state.decision.record.effective


def _first_of(use: Use) -> tuple[date, int]:
    """Where a use's first decision sits in valid-time order."""
    return min(valid_order(part[0]) for part in (use.cases, use.others) if part)


_USE_PREFIXES = frozenset({"review", "case", "filing", "use"})
_Timelines = dict[tuple[Any, Any], tuple[list[date], list[Any]]]
_NONE: tuple[list[date], list[Any]] = ([], [])
_REGISTRATION = frozenset({"physician.registered", "physician.deregistered"})
_GRANT_ENDS = frozenset({"privilege.suspended", "privilege.revoked"})
