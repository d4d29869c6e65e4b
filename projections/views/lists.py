"""The public lists (MTM-2018#40-#44; 院务公开 #24) and what inspectors read beside them: filings
with each use's standing, training bases, trainees, surgical grades, and case counts.

Each list is one select of its view's rows joined with the institutions in scope
(``Registers._listed``); a use's standing on the day comes from ``projections.standing``, the one
model of it (ARCHITECTURE.md rule 9).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from ledger.errors import CalendarError
from ledger.frozen import assemble
from ledger.jurisdictions import NATIONAL
from projections.disclosure import FILINGS_COLUMNS
from projections.replay import resolve
from projections.standing import FILED, PUBLISHED, STOPPED, SUSPENDED, Grandfather, grandfather_for, standing
from projections.views.base import IN_FORCE
from projections.views.context import RulesContext
from projections.views.rows import CaseCount, FilingRow, PrivilegeRow, TraineeRow, TrainingBaseRow

_COUNTED_BY_KEY = 64
"""Up to this many (institution, technology) the totals cannot answer are counted one by one (an
indexed count each); more, in one pass over the scope's cases."""


class Lists(RulesContext):
    """The disclosure lists of a province, an institution or the country (see the module docstring)."""

    def filings(
        self,
        province: str | None = None,
        institution: str | None = None,
        *,
        as_of: date | None = None,
        known_at: int | str | datetime | None = None,
    ) -> list[FilingRow]:
        """Every use with a filing or use decision, with its standing on the day
        (``projections.standing``): filed (date, authority), submitted, rejected, void, suspended,
        stopped, lapsed, prohibited or delisted. What the public lists show is ``public_filings``."""
        day, n = self._when(as_of, known_at)
        rows = self._listed("view_filings", FILINGS_COLUMNS, day, n, province, institution)
        names = self._technology_names(day, n, (r[1] for r in rows))
        tech_class, _ = self._tech_class_lookup(n)
        on = date.fromisoformat(day)
        grandfathers: dict[str, Grandfather | None] = {}
        out = []
        for row in rows:
            inst, technology, stored, filing, filed, authority, submitted, pending, halted, ids = row[:10]
            recorded, since = row[10:12]
            name, city, seat = row[12:]
            filed_on = _date(filed)
            if seat not in grandfathers:
                grandfathers[seat] = grandfather_for(self.deadlines, self.code_of_province(seat))
            status = standing(stored, filing, filed_on, _date(pending), on, technology, tech_class, grandfathers[seat])
            notice_until = self._notice_until(seat, filed_on) if status == FILED else None
            if notice_until is not None and recorded is not None:
                notice_until = _date(recorded)  # as recorded on the completion (CQ-2017#二(二))
            if notice_until is not None and day <= notice_until.isoformat():
                status = "in public notice"
            halted_on = _date(halted)
            if status not in (SUSPENDED, STOPPED) or halted_on is None:
                halted_on = None
            out.append(
                assemble(
                    FilingRow,
                    {
                        "institution": inst,
                        "institution_name": name,
                        "city": city,
                        "technology": technology,
                        "technology_name": names.get(technology, ""),
                        "status": status,
                        "filed_on": filed_on,
                        "authority": authority,
                        "submitted_on": _date(submitted),
                        "since": halted_on or date.fromisoformat(since),
                        "decisions": tuple(ids.split(",")),
                        "notice_until": notice_until,
                        "halted_on": halted_on,
                    },
                )
            )
        return sorted(out, key=lambda f: (f.technology, f.filed_on or date.max, f.institution))

    def public_filings(
        self,
        province: str | None = None,
        institution: str | None = None,
        *,
        as_of: date | None = None,
        known_at: int | str | datetime | None = None,
    ) -> list[FilingRow]:
        """What the public lists show (``ledger disclosure`` and ``ledger publish`` alike): uses
        经备案 in force (MTM-2018#40; in public notice where CQ-2017 has one), and suspended and
        stopped uses (#41-#44). Not submissions, refusals, void or lapsed filings, nor prohibited
        or delisted technologies (``projections.standing.PUBLISHED``)."""
        return [
            f
            for f in self.filings(province, institution, as_of=as_of, known_at=known_at)
            if f.status in PUBLISHED or f.status == "in public notice"
        ]

    _notices: dict[tuple[str, date], date | None]

    def _notice_until(self, province: str, filed_on: date | None) -> date | None:
        """The last day of a filing's public notice where the province has one (CQ-2017).

        The same for every filing of a province filed the same day (the deadlines and calendars
        are the plugins', fixed for these views): worked out once per province and day."""
        if filed_on is None:
            return None
        cache = self.__dict__.setdefault("_notices", {})
        try:
            found: date | None = cache[(province, filed_on)]
        except KeyError:
            found = cache[(province, filed_on)] = self._notice_ends(province, filed_on)
        return found

    def public_notice(
        self, decision_ids: Sequence[str], known_at: int, *, filed_on: date | None = None
    ) -> tuple[date, date] | None:
        """The public notice (first day, last day) recorded on the latest filing completion among a
        use's ``decision_ids`` (the one of ``filed_on``, the completion in force, when given), as
        known at position ``known_at`` (corrections and retractions as ``resolve`` applies them),
        as a plugin reads its own fields (``ledger_public_notice``, CQ-2017#二(二)); None where none
        is recorded, and the deadline's count stands."""
        for decision_id in reversed(decision_ids):
            found = self.app.decision(decision_id)
            if found.record.kind != "filing.completed" or found.position > known_at:
                continue
            changes = sorted(found.corrections, key=lambda c: c.position)
            log = [(found.position, found.record), *((c.position, c.record) for c in changes)]
            resolved = resolve(log, known_at=known_at)
            if not resolved or (filed_on is not None and resolved[0].record.effective != filed_on):
                continue  # retracted as known then, or not the completion in force
            answers = [a for a in self.pm.hook.ledger_public_notice(decision=resolved[0].record) if a is not None]
            return min(answers) if answers else None
        return None

    def _notice_ends(self, province: str, filed_on: date) -> date | None:
        code = self.code_of_province(province)
        deadline = self._deadline("public-notice", code, filed_on)
        if deadline is None:
            return None
        try:
            # The notice runs for N working days counting the day it starts (CQ-2017 公示期).
            return (
                self.calendar(code or NATIONAL).add_workdays(filed_on, deadline.working_days - 1)
                if deadline.working_days > 1
                else filed_on
            )
        except CalendarError:
            return None

    def training_bases(
        self, province: str | None = None, *, as_of: date | None = None, known_at: int | str | datetime | None = None
    ) -> list[TrainingBaseRow]:
        """Training bases filed with the province, and stopped (MTM-2018#29-#30)."""
        day, n = self._when(as_of, known_at)
        rows = self._listed(
            "view_training_bases",
            ("institution", "technology", "status", "enrolment_notice", "filed_on", "decisions"),
            day,
            n,
            province,
            None,
        )
        names = self._technology_names(day, n, (r[1] for r in rows))
        return sorted(
            (
                assemble(
                    TrainingBaseRow,
                    {
                        "institution": inst,
                        "institution_name": name,
                        "technology": technology,
                        "technology_name": names.get(technology, ""),
                        "status": status,
                        "enrolment_notice": _date(notice),
                        "filed_on": _date(filed),
                        "decisions": tuple(ids.split(",")),
                    },
                )
                for inst, technology, status, notice, filed, ids, _, name, _, _ in rows
            ),
            key=lambda b: (b.technology, b.institution),
        )

    def trainees(
        self, province: str | None = None, *, as_of: date | None = None, known_at: int | str | datetime | None = None
    ) -> list[TraineeRow]:
        """Physicians certified by training bases (MTM-2018#33)."""
        day, n = self._when(as_of, known_at)
        rows = self._listed("view_trainees", ("physician", "institution", "technology"), day, n, province, None)
        names = self._technology_names(day, n, (r[2] for r in rows))
        people = self._physician_names(day, n, sorted({r[0] for r in rows}))
        return sorted(
            (
                assemble(
                    TraineeRow,
                    {
                        "physician_name": people.get(physician, ""),
                        "institution": inst,
                        "institution_name": name,
                        "technology": technology,
                        "technology_name": names.get(technology, ""),
                        "certified_on": date.fromisoformat(since),
                        "physician": physician,
                    },
                )
                for physician, inst, technology, since, name, _, _ in rows
            ),
            key=lambda t: (t.technology, t.certified_on, t.physician),
        )

    def privileges(
        self, institution: str, *, as_of: date | None = None, known_at: int | str | datetime | None = None
    ) -> list[PrivilegeRow]:
        """The surgical grades an institution has granted (MTM-2018#20, #24), to physicians
        registered there on the day: a grade ends with the registration it was granted under."""
        day, n = self._when(as_of, known_at)
        registered = {
            r[0] for r in self._rows("view_physicians", ("physician",), "institution = ?", (institution,), day, n)
        }
        rows = [
            r
            for r in self._rows(
                "view_privileges",
                ("physician", "institution", "level", "procedures", "status"),
                "institution = ?",
                (institution,),
                day,
                n,
            )
            if r[0] in registered
        ]
        people = self._physician_names(day, n, sorted({r[0] for r in rows}))
        return sorted(
            (
                PrivilegeRow(
                    r[0],
                    people.get(r[0], ""),
                    r[1],
                    int(r[2]) if r[2] else None,
                    tuple(json.loads(r[3])) if r[3] else (),
                    r[4],
                    date.fromisoformat(r[5]),
                )
                for r in rows
            ),
            key=lambda p: (p.physician_name, p.physician),
        )

    def case_counts(
        self,
        province: str | None = None,
        institution: str | None = None,
        *,
        as_of: date | None = None,
        known_at: int | str | datetime | None = None,
    ) -> list[CaseCount]:
        """Cases of restricted technologies per institution (逐例报送 MTM-2018#37; 院务公开 #24).

        Read from the cases' totals (``CasesProjection``): one row per institution and technology,
        exact on the days and positions where its count holds; only the others are counted in
        ``view_cases`` (an earlier ``--as-of`` or ``--known-at``, a case dated after the day)."""
        day, n = self._when(as_of, known_at)
        join, params = self._joined(day, n, province, institution)
        # Only technologies restricted on the day: the national list and every enabled province's
        # own (MTM-2018#5-#9), with their names.
        catalogs = sorted({NATIONAL, *(j.code for j in self.jurisdictions)})
        restricted_sql = (
            f"SELECT k.catalog, k.code, k.name FROM {self.db.table('view_catalog')} k WHERE {IN_FORCE.format('k')} "
            f"AND k.class = 'restricted' AND k.catalog IN ({', '.join('?' * len(catalogs))})"
        )
        sql = (
            "SELECT v.institution, v.technology, v.cases, v.max_from, v.min_to, v.known_from "
            f"FROM {self.db.table('view_case_totals')} v {join}"
        )
        counts: dict[tuple[str, str], int] = {}
        stale: list[tuple[str, str]] = []
        with self.db.transaction(write=False) as c:
            names = {f"{r[0]}:{r[1]}": r[2] for r in c.execute(restricted_sql, (day, day, n, n, *catalogs)).fetchall()}
            for inst, technology, cases, max_from, min_to, known_from in c.execute(sql, params).fetchall():
                if technology not in names:
                    continue
                if known_from <= n and max_from <= day < min_to:
                    if cases:
                        counts[(inst, technology)] = int(cases)
                else:
                    stale.append((inst, technology))
            if stale:
                counts.update(self._cases_counted(c, day, n, province, institution, stale))
        return [
            assemble(CaseCount, {"institution": i, "technology": t, "technology_name": names[t], "cases": k})
            for (i, t), k in sorted(counts.items())
        ]

    def _cases_counted(
        self,
        c: Any,
        day: str,
        n: int,
        province: str | None,
        institution: str | None,
        keys: Sequence[tuple[str, str]],
    ) -> dict[tuple[str, str], int]:
        """The cases of each of ``keys`` (institution, technology) in force on ``day`` as known at
        ``n``, counted in ``view_cases``' covering index: key by key when they are few, else in one
        pass over the cases of the scope, institution by institution in the index's order (so
        that SQLite groups them as it reads them, without sorting)."""
        t = self.db.table("view_cases")
        out: dict[tuple[str, str], int] = {}
        if len(keys) <= _COUNTED_BY_KEY:
            sql = f"SELECT COUNT(*) FROM {t} v WHERE v.institution = ? AND v.technology = ? AND {IN_FORCE.format('v')}"
            for inst, technology in keys:
                row = c.execute(sql, (inst, technology, day, day, n, n)).fetchone()
                if row and row[0]:
                    out[(inst, technology)] = int(row[0])
            return out
        wanted = set(keys)
        scope, params = self._scope(day, n, province, institution)
        sql = (
            f"SELECT v.institution, v.technology, COUNT(*) FROM {t} v WHERE {IN_FORCE.format('v')} AND v.institution "
            f"IN (SELECT i.key FROM {self.db.table('view_institutions')} i WHERE {scope}) "
            "GROUP BY v.institution, v.technology"
        )
        for inst, technology, count in c.execute(sql, (day, day, n, n, *params)).fetchall():
            if (inst, technology) in wanted:
                out[(inst, technology)] = int(count)
        return out


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None
