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

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from heapq import merge
from typing import Any, TypeVar

from ledger.workdays import WorkdayCalendar
from projections.findings import Deadline
from projections.replay import Resolved

TechClassLookup = Callable[[str, date], str | None]
"""``(technology ref, day) -> class`` of the catalogue entry in force that day, or None."""

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

    # --- selection -----------------------------------------------------------------------------

    def of_kind(self, *kinds: str) -> list[Resolved]:
        """The decisions of ``kinds``, in valid-time order (a fresh list: callers may keep it)."""
        index = self._kind_index
        if len(kinds) == 1:
            return [self.decisions[i] for i in index.get(kinds[0], ())]
        found = [index[k] for k in dict.fromkeys(kinds) if k in index]
        if len(found) == 1:
            return [self.decisions[i] for i in found[0]]
        return [self.decisions[i] for i in merge(*found)]

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
        out: dict[tuple[str, str], list[Resolved]] = defaultdict(list)
        for d in self.decisions:
            f = d.record.fields
            if d.record.kind.split(".")[0] in ("review", "case", "filing", "use") and "technology" in f:
                out[(f["institution"], f["technology"])].append(d)
        return dict(out)

    @cached_property
    def institution(self) -> Resolved | None:
        """The scope's own registration, if the scope is an institution."""
        regs = self.of_kind("institution.registered")
        return regs[0] if regs else None

    # --- questions the rules ask ------------------------------------------------------------

    def calendar(self) -> WorkdayCalendar:
        """The working-day calendar of this scope's jurisdiction (national when it has none)."""
        return self.calendar_for(self.jurisdiction or "national")

    def deadline(self, name: str, on: date) -> Deadline | None:
        """The deadline ``name`` in force on ``on`` here: the province's own, else the national one."""
        candidates = [
            d
            for d in self.deadlines
            if d.name == name and d.valid_from <= on and (d.valid_to is None or on < d.valid_to)
        ]
        own = [d for d in candidates if d.jurisdiction == self.jurisdiction]
        national = [d for d in candidates if d.jurisdiction == "national"]
        chosen = own or national
        return chosen[0] if chosen else None

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

    @cached_property
    def _timelines(self) -> tuple[_Timelines, _Timelines]:
        """Registrations and grants per (physician, institution) as (days, states), built in one
        pass so that each question is a bisect rather than a replay of the scope: a rule asks for
        every case (MTM-2018#20). The last change of a day wins, as in a replay in valid-time order;
        ``decisions`` is in that order, so the days are sorted."""
        registered: _Timelines = {}
        grants: _Timelines = {}
        for d in self.decisions:
            r = d.record
            kind = r.kind
            state: Any
            if kind in _REGISTRATION:
                target, state = registered, kind == "physician.registered"
            elif kind == "privilege.granted":
                target, state = grants, d
            elif kind in _GRANT_ENDS:
                target, state = grants, None
            else:
                continue
            f = r.fields
            days, states = target.setdefault((f.get("physician"), f.get("institution")), ([], []))
            days.append(r.effective)
            states.append(state)
        return registered, grants

    def use_status(self, use: Iterable[Resolved], on: date) -> str:
        """``active``, ``suspended`` or ``stopped`` for a use on ``on`` (MTM-2018#25, #41-#44)."""
        status = "active"
        for d in use:
            if d.record.effective > on:
                break
            kind = d.record.kind
            if kind == "use.suspended":
                status = "suspended"
            elif kind == "use.resumed" and status == "suspended":
                status = "active"
            elif kind == "use.stopped":
                status = "stopped"
        return status

    def first(self, use: Iterable[Resolved], kind: str, **where: Any) -> Resolved | None:
        """The earliest decision of ``kind`` in ``use`` whose fields match ``where``."""
        for d in use:
            if d.record.kind == kind and all(d.record.fields.get(k) == v for k, v in where.items()):
                return d
        return None


_Timelines = dict[tuple[Any, Any], tuple[list[date], list[Any]]]
_NONE: tuple[list[date], list[Any]] = ([], [])
_REGISTRATION = frozenset({"physician.registered", "physician.deregistered"})
_GRANT_ENDS = frozenset({"privilege.suspended", "privilege.revoked"})
