"""What the rules see: their list, the deadlines and calendars plugins contribute, the catalogue's
classes as known at a position, and one scope's decisions as ``Facts``.

Findings are judged when they are read, never stored (ARCHITECTURE.md rule 2): ``findings_for``
builds a scope's ``Facts`` from the trail's rows (the records as the views keep them, corrections
applied by ``projections.replay.resolve``) and runs every enabled plugin's rules over them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from functools import cached_property
from typing import Any

from ledger.application import CORRECTION_KINDS
from ledger.competence import registry
from ledger.decisions import DecisionRecord, record_from_text
from ledger.jurisdictions import NATIONAL
from ledger.workdays import WorkdayCalendar
from projections.facts import ClassesOf, Facts, TechClassLookup, deadline_in_force
from projections.findings import Deadline, Finding, Rule
from projections.replay import resolve
from projections.views.registers import Registers


class RulesContext(Registers):
    """The rules, their deadlines and calendars, and the facts they judge (see the module docstring)."""

    def _trail_rows(
        self, where: str, params: Sequence[Any], day: str, n: int, *, records: bool = True
    ) -> list[tuple[Any, ...]]:
        """Trail rows in valid-time order. With ``records``: position, institution, physician,
        technology, summary and the record's text (what a judged trail reads: the record holds the
        rest); without: position, decision_id, kind, effective, by_, basis, institution,
        physician, technology, summary (a trail shown without findings parses nothing).

        The record's text is kept in the view although the log holds the same record: parsing
        the text is cheaper than reading the record back from the log (joined by position,
        msgpack-decoded), and a busy institution's trail has thousands (docs/performance.md,
        "reading a trail's records from the log")."""
        t = self.db.table("view_trail")
        columns = (
            "position, institution, physician, technology, summary, record"
            if records
            else "position, decision_id, kind, effective, by_, basis, institution, physician, technology, summary"
        )
        sql = (
            f"SELECT {columns} FROM {t} WHERE effective <= ? AND position <= ?"
            f"{(' AND ' + where) if where else ''} ORDER BY effective, position"
        )
        with self.db.transaction(write=False) as c:
            return c.execute(sql, (day, n, *params)).fetchall()

    def _later_changes(self, institution: str | None, day: str, n: int) -> list[tuple[int, DecisionRecord]]:
        """Corrections and retractions of the scope known at ``n`` but dated after ``day``. The views
        apply a correction or retraction whatever its own date (``projections.replay.resolve``), so
        the rules' facts do too: a submission retracted later is not live on any day, in the lists
        and in the rules alike (``projections.standing``)."""
        t = self.db.table("view_trail")
        scope = "institution IS NULL" if institution is None else "institution = ?"
        sql = (
            f"SELECT position, record FROM {t} WHERE effective > ? AND position <= ? AND {scope} "
            f"AND kind IN ({_CHANGES_SQL}) ORDER BY position"
        )
        params: tuple[Any, ...] = (day, n) if institution is None else (day, n, institution)
        with self.db.transaction(write=False) as c:
            return [(int(r[0]), record_from_text(r[1])) for r in c.execute(sql, params).fetchall()]

    def _logged(self, where: str, params: Sequence[Any], day: str, n: int) -> list[tuple[int, DecisionRecord]]:
        """(position, record) of the trail rows ``where`` selects, in valid-time order."""
        return [(int(r[0]), record_from_text(r[5])) for r in self._trail_rows(where, params, day, n)]

    def findings_for(
        self,
        institution: str | None,
        *,
        as_of: date,
        known_at: int,
        _logged: Sequence[tuple[int, DecisionRecord]] | None = None,
    ) -> list[Finding]:
        """Judge one scope: an institution, or (``None``) the panels that name no institution.

        ``_logged``: the scope's trail, (position, record) in valid-time order, already read
        (``trail`` passes its own, so one query reads and parses each record once)."""
        facts = self.facts_for(institution, as_of=as_of, known_at=known_at, _logged=_logged)
        out: list[Finding] = []
        for rule in self.rules:
            if rule.applies_to(facts.jurisdiction):
                out.extend(rule.check(facts))
        return out

    def facts_for(
        self,
        institution: str | None,
        *,
        as_of: date,
        known_at: int,
        _logged: Sequence[tuple[int, DecisionRecord]] | None = None,
    ) -> Facts:
        """What the rules know of one scope on ``as_of`` as known at ``known_at`` (``findings_for``)."""
        day = as_of.isoformat()
        if _logged is not None:
            logged = _logged
        elif institution is None:
            logged = self._logged(
                f"institution IS NULL AND kind IN ('panel.concluded', {_CHANGES_SQL})",
                (),
                day,
                known_at,
            )
        else:
            logged = self._logged("institution = ?", (institution,), day, known_at)
        later = self._later_changes(institution, day, known_at)
        if later:
            logged = [*logged, *later]
        decisions = resolve(logged, as_of=as_of, in_valid_order=True)
        jurisdiction = NATIONAL
        if institution is not None:
            inst = self._institution(day, known_at, institution)
            jurisdiction = self.code_of_province(inst.province) if inst else None  # type: ignore[assignment]
        tech_class, classes_of = self._tech_class_lookup(known_at)
        return Facts(
            scope=f"institution:{institution}" if institution else NATIONAL,
            jurisdiction=jurisdiction,
            as_of=as_of,
            decisions=decisions,
            tech_class=tech_class,
            calendar_for=self.calendar,
            deadlines=self.deadlines,
            classes_of=classes_of,
            bodies=registry(self.pm),
        )

    @cached_property
    def rules(self) -> list[Rule]:
        """Every enabled plugin's rules, by id, so that no result depends on load order."""
        found = [r for contributed in self.pm.hook.ledger_rules() for r in contributed or ()]
        return sorted(found, key=lambda r: r.id)

    @cached_property
    def deadlines(self) -> list[Deadline]:
        found = [d for contributed in self.pm.hook.ledger_deadlines() for d in contributed or ()]
        return sorted(found, key=lambda d: (d.name, d.jurisdiction, d.valid_from))

    def _deadline(self, name: str, jurisdiction: str | None, on: date) -> Deadline | None:
        return deadline_in_force(self.deadlines, name, jurisdiction, on)

    _calendars: dict[str, WorkdayCalendar]

    def calendar(self, jurisdiction: str) -> WorkdayCalendar:
        """China's official calendar plus the years plugins add for ``jurisdiction``."""
        cache = self.__dict__.setdefault("_calendars", {})
        if jurisdiction not in cache:
            years = [
                y
                for contributed in self.pm.hook.ledger_calendar_years(jurisdiction=jurisdiction)
                for y in contributed or ()
            ]
            cache[jurisdiction] = WorkdayCalendar.china(sorted(years, key=lambda y: (y.year, y.source)))
        result: WorkdayCalendar = cache[jurisdiction]
        return result

    def _tech_class_lookup(self, known_at: int) -> tuple[TechClassLookup, ClassesOf]:
        """``(tech_class, classes_of)`` for ``Facts``, from the catalogue as known at ``known_at``.

        Kept per position, for as long as this ``Views`` lives: the rows known at a position the
        catalogue view has reached never change. "Now" (``known_at`` past that position) is the
        view's own position, read each time, so a ``Views`` kept open sees what other processes
        record once the views have caught up with it."""
        cache: dict[int, tuple[dict[str, list[tuple[str, str, str]]], dict[str, frozenset[str]]]]
        cache = self.__dict__.setdefault("_timelines", {})
        with self.db.transaction(write=False) as c:
            tracked = c.execute(
                f"SELECT position FROM {self.db.table('ledger_tracking')} WHERE projection = ?", ("catalog",)
            ).fetchone()
            if tracked is not None:
                known_at = min(known_at, int(tracked[0]))
            if known_at not in cache:
                if len(cache) >= TIMELINES_KEPT:
                    cache.clear()
                timeline: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
                for key, cls, vf, vt in c.execute(
                    f"SELECT key, class, valid_from, valid_to FROM {self.db.table('view_catalog')} "
                    "WHERE known_from <= ? AND known_to > ?",
                    (known_at, known_at),
                ).fetchall():
                    timeline[key].append((vf, vt, cls))
                # Every class a technology has on some day, for ``Facts.may_be``.
                ever = {key: frozenset(cls for _, _, cls in rows) for key, rows in timeline.items()}
                cache[known_at] = (dict(timeline), ever)
        timelines, classes = cache[known_at]

        memo: dict[tuple[str, date], str | None] = {}

        def tech_class(ref: str, on: date) -> str | None:
            # Rules ask for the same (technology, day) over and over (every case of a use): one
            # lookup per pair and query. The timelines are fixed for ``known_at``, so is the answer.
            key = (ref, on)
            try:
                return memo[key]
            except KeyError:
                pass
            found = None
            day = on.isoformat()
            for vf, vt, cls in timelines.get(ref, ()):
                if vf <= day < vt:
                    found = cls
                    break
            memo[key] = found
            return found

        def classes_of(ref: str) -> frozenset[str]:
            return classes.get(ref, _NO_CLASS)

        return tech_class, classes_of


_CHANGES_SQL = ", ".join(f"'{kind}'" for kind in sorted(CORRECTION_KINDS))
"""The kinds that change another decision, as an SQL list."""
_NO_CLASS: frozenset[str] = frozenset()
TIMELINES_KEPT = 16
"""Catalogues (one per position asked) a ``Views`` keeps for the rules: a long-lived one is asked
about ever newer positions."""
