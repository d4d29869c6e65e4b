"""The questions regulators, hospitals and inspectors ask, answered from the views.

``Views(app)`` is the read side's public API (plugins' reports and commands use it too). Every
question takes ``as_of`` (valid time: what was in force that day; default today) and ``known_at``
(record time: a position, or a timestamp resolved to the last position recorded by then; default
now). Each answer is one indexed select over bitemporal rows (ARCHITECTURE.md rule 3); the views
catch up with the log before answering, so they never lag a write.
"""

from __future__ import annotations

import json
from bisect import insort
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cached_property
from typing import Any

import pluggy

from ledger.application import LedgerApplication, no_cycle_collection
from ledger.competence import registry
from ledger.decisions import DecisionRecord, record_from_text
from ledger.errors import CalendarError, ConfigurationError
from ledger.frozen import assemble
from ledger.jurisdictions import NATIONAL, Jurisdiction
from ledger.plugins import jurisdictions
from ledger.workdays import WorkdayCalendar
from projections.catalog import CatalogEntry, CatalogProjection
from projections.disclosure import FILINGS_COLUMNS, disclosure_projections
from projections.facts import ClassesOf, Facts, TechClassLookup
from projections.findings import SEVERITY_ORDER, Deadline, Finding, Rule
from projections.replay import Resolved, apply_correction, resolve
from projections.runner import CORRECTION_KINDS, NOW, Projection, Runner
from projections.standing import FILED, PUBLISHED, STOPPED, SUSPENDED, Grandfather, grandfather_for, standing
from projections.trail import TrailProjection


def builtin_projections(pm: pluggy.PluginManager | None = None) -> list[Projection]:
    """The core's views; with ``pm``, the filings keep the public notice its plugins read."""
    return [CatalogProjection(), *disclosure_projections(_notice_of(pm) if pm else None), TrailProjection()]


def _notice_of(pm: pluggy.PluginManager) -> Callable[[DecisionRecord], tuple[date, date] | None]:
    def notice(record: DecisionRecord) -> tuple[date, date] | None:
        answers = [a for a in pm.hook.ledger_public_notice(decision=record) if a is not None]
        return min(answers) if answers else None

    return notice


def all_projections(pm: pluggy.PluginManager) -> list[Projection]:
    """Built-in projections and those plugins contribute, sorted by name."""
    extra = [p for contributed in pm.hook.ledger_projections() for p in contributed or ()]
    return sorted([*builtin_projections(pm), *extra], key=lambda p: p.name)


@dataclass(frozen=True)
class InstitutionRow:
    institution: str
    name: str
    province: str
    city: str
    category: str
    level: str
    licensing_authority: str


@dataclass(frozen=True)
class FilingRow:
    institution: str
    institution_name: str
    city: str
    technology: str
    technology_name: str
    status: str
    filed_on: date | None
    authority: str | None
    submitted_on: date | None
    since: date
    decisions: tuple[str, ...]
    notice_until: date | None = None
    """For provinces with a public notice (CQ-2017): the last day of the notice. Until then the
    filing does not count as done, and ``status`` says ``in public notice``."""
    halted_on: date | None = None
    """The recorded day of the suspension or stop in force (MTM-2018#25, #41-#44)."""


@dataclass(frozen=True)
class TrainingBaseRow:
    institution: str
    institution_name: str
    technology: str
    technology_name: str
    status: str
    enrolment_notice: date | None
    filed_on: date | None
    decisions: tuple[str, ...]


@dataclass(frozen=True)
class TraineeRow:
    physician_name: str
    institution: str
    institution_name: str
    technology: str
    technology_name: str
    certified_on: date
    physician: str = field(repr=False, default="")
    """The practising licence number: for inspectors, never published (see projections.publish)."""


@dataclass(frozen=True)
class PrivilegeRow:
    physician: str
    physician_name: str
    institution: str
    level: int | None
    procedures: tuple[str, ...]
    status: str
    since: date


_IN_FORCE = "{0}.valid_from <= ? AND {0}.valid_to > ? AND {0}.known_from <= ? AND {0}.known_to > ?"
"""The rows of a view (alias ``{0}``) in force on a day as known at a position: (day, day, n, n)."""

_COUNTED_BY_KEY = 64
"""Up to this many (institution, technology) the totals cannot answer are counted one by one (an
indexed count each); more, in one pass over the scope's cases."""


@dataclass(frozen=True)
class CaseCount:
    institution: str
    technology: str
    technology_name: str
    cases: int


@dataclass(frozen=True)
class TrailEntry:
    effective: date
    position: int
    decision_id: str
    kind: str
    by: str
    basis: str | None
    institution: str | None
    physician: str | None
    technology: str | None
    summary: str


@dataclass(frozen=True)
class Trail:
    entries: list[TrailEntry]
    findings: list[Finding]


class Views:
    """Read the views of one ledger (see the module docstring)."""

    def __init__(self, app: LedgerApplication, *, catch_up: bool = True) -> None:
        self.app = app
        self.pm = app.plugins
        self.runner = Runner(app, all_projections(self.pm))
        self.db = self.runner.db
        if catch_up:
            self.runner.catch_up()

    # --- time -------------------------------------------------------------------------------

    def position_at(self, known_at: int | str | datetime | None) -> int:
        """A ``--known-at`` value as a position: an integer is one; a timestamp is the last
        position recorded at or before it (record times never decrease along the log)."""
        if known_at is None:
            return NOW - 1  # everything recorded: rows still held true have known_to == NOW
        if isinstance(known_at, int):
            return min(known_at, NOW - 1)
        if isinstance(known_at, str):
            if known_at.isascii() and known_at.isdigit():  # not "²" or "١٢" (issue 6, hostile input)
                return min(int(known_at), NOW - 1)  # a position past any the log holds: everything
            try:
                moment = datetime.fromisoformat(known_at)
            except ValueError:
                msg = f"--known-at takes a position or an ISO timestamp, got {known_at!r}"
                raise ConfigurationError(msg) from None
        else:
            moment = known_at
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        lo, hi = 0, self.app.position()
        while lo < hi:  # the largest position whose record time is <= moment
            mid = (lo + hi + 1) // 2
            notes = self.app.store.select_notifications(mid, 1)
            if not notes:
                hi = mid - 1
                continue
            recorded = self.app._decode(notes[0]).timestamp
            if recorded <= moment:
                lo = notes[0].id
                lo = min(mid, lo)
            else:
                hi = mid - 1
        return lo

    def _when(self, as_of: date | None, known_at: int | str | datetime | None) -> tuple[str, int]:
        return (as_of or date.today()).isoformat(), self.position_at(known_at)

    def _rows(
        self, table: str, columns: Sequence[str], where: str, params: Sequence[Any], day: str, n: int
    ) -> list[tuple[Any, ...]]:
        t = self.db.table(table)
        sql = (
            f"SELECT {', '.join(columns)}, valid_from FROM {t} WHERE valid_from <= ? AND valid_to > ? "
            f"AND known_from <= ? AND known_to > ?{(' AND ' + where) if where else ''}"
        )
        with self.db.transaction(write=False) as c:
            return c.execute(sql, (day, day, n, n, *params)).fetchall()

    # --- jurisdictions ----------------------------------------------------------------------

    @cached_property
    def jurisdictions(self) -> list[Jurisdiction]:
        return jurisdictions(self.pm)

    def jurisdiction(self, code: str) -> Jurisdiction:
        for j in self.jurisdictions:
            if code in (j.code, j.name, *j.aliases):
                return j
        known = ", ".join(j.code for j in self.jurisdictions)
        msg = f"no plugin speaks for the province {code!r} (known: {known})"
        raise ConfigurationError(msg)

    def code_of_province(self, province: str | None) -> str | None:
        if province is None:
            return None
        for j in self.jurisdictions:
            if j.matches(province):
                return j.code
        return None

    def _province_names(self, province: str) -> list[str]:
        j = self.jurisdiction(province)
        return sorted({j.code, j.name, *j.aliases})

    # --- catalogue --------------------------------------------------------------------------

    def catalog(
        self, province: str | None = None, *, as_of: date | None = None, known_at: int | str | datetime | None = None
    ) -> list[CatalogEntry]:
        """The catalogue in force: national entries plus the province's own (MTM-2018#5-#9)."""
        day, n = self._when(as_of, known_at)
        catalogs = [NATIONAL] + ([self.jurisdiction(province).code] if province else [])
        rows = self._rows(
            "view_catalog",
            ("catalog", "code", "name", "class", "version", "decisions"),
            f"catalog IN ({', '.join('?' * len(catalogs))})",
            catalogs,
            day,
            n,
        )
        from projections.catalog import CLASS_ORDER

        entries = [CatalogEntry(r[0], r[1], r[2], r[3], r[4], r[5], date.fromisoformat(r[6])) for r in rows]
        return sorted(entries, key=lambda e: (e.catalog != NATIONAL, CLASS_ORDER.get(e.tech_class, 9), e.code))

    def _institutions(self, day: str, n: int, province: str | None = None) -> dict[str, InstitutionRow]:
        where, params = "", ()  # type: tuple[str, tuple[str, ...]]
        if province:
            names = self._province_names(province)
            where, params = f"province IN ({', '.join('?' * len(names))})", tuple(names)
        rows = self._rows(
            "view_institutions",
            ("institution", "name", "province", "city", "category", "level", "licensing_authority"),
            where,
            params,
            day,
            n,
        )
        return {r[0]: InstitutionRow(*r[:7]) for r in rows}

    def _institution(self, day: str, n: int, institution: str) -> InstitutionRow | None:
        """One institution as ``_institutions`` has it, by its key (not the whole country's list)."""
        rows = self._rows(
            "view_institutions",
            ("institution", "name", "province", "city", "category", "level", "licensing_authority"),
            "key = ?",
            (institution,),
            day,
            n,
        )
        found = {r[0]: InstitutionRow(*r[:7]) for r in rows}
        return found.get(institution)

    def _scope(self, day: str, n: int, province: str | None, institution: str | None) -> tuple[str, list[Any]]:
        """The condition (and its parameters) on ``view_institutions`` rows ``i`` that keeps the
        institutions a list may show: registered on ``day`` as known at ``n`` (as
        ``_institutions`` has them), in ``province``, or just ``institution``. A list joins it
        (``_joined``), so that a province's or an institution's list reads its own rows, not the
        country's, and the institutions' own rows are not read apart."""
        where = [_IN_FORCE.format("i")]
        params: list[Any] = [day, day, n, n]
        if province:
            names = self._province_names(province)
            where.append(f"i.province IN ({', '.join('?' * len(names))})")
            params.extend(names)
        if institution is not None:
            where.append("i.key = ?")
            params.append(institution)
        return " AND ".join(where), params

    def _joined(self, day: str, n: int, province: str | None, institution: str | None) -> tuple[str, list[Any]]:
        """``JOIN`` of a list's rows ``v`` with their institutions ``i`` in scope (``_scope``)."""
        where, params = self._scope(day, n, province, institution)
        return f"JOIN {self.db.table('view_institutions')} i ON i.key = v.institution AND {where}", params

    def _listed(
        self, table: str, columns: Sequence[str], day: str, n: int, province: str | None, institution: str | None
    ) -> list[tuple[Any, ...]]:
        """The rows of the list ``table`` in force on ``day`` as known at ``n``, of the
        institutions in scope (``_scope``): ``columns``, then ``valid_from``, and the
        institution's name, city and province, joined (not the scope's institutions read apart).
        (The technologies' names are read apart: a few for hundreds of rows.)"""
        join, params = self._joined(day, n, province, institution)
        sql = (
            f"SELECT {', '.join('v.' + c for c in columns)}, v.valid_from, i.name, i.city, i.province "
            f"FROM {self.db.table(table)} v {join} WHERE {_IN_FORCE.format('v')}"
        )
        with self.db.transaction(write=False) as c:
            return c.execute(sql, (*params, day, day, n, n)).fetchall()

    def _technology_names(self, day: str, n: int, refs: Iterable[str] | None = None) -> dict[str, str]:
        """Names by technology reference: the whole catalogue's, or only those of ``refs``."""
        if refs is None:
            rows = self._rows("view_catalog", ("catalog", "code", "name"), "", (), day, n)
            return {f"{r[0]}:{r[1]}": r[2] for r in rows}
        keys = sorted(set(refs))
        names: dict[str, str] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            rows = self._rows(
                "view_catalog", ("catalog", "code", "name"), f"key IN ({', '.join('?' * len(chunk))})", chunk, day, n
            )
            names.update((f"{r[0]}:{r[1]}", r[2]) for r in rows)
        return names

    def institutions(
        self, province: str | None = None, *, as_of: date | None = None, known_at: int | str | datetime | None = None
    ) -> list[InstitutionRow]:
        day, n = self._when(as_of, known_at)
        return sorted(self._institutions(day, n, province).values(), key=lambda i: (i.province, i.city, i.institution))

    # --- disclosure -------------------------------------------------------------------------

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

    def _physician_names(self, day: str, n: int, physicians: Sequence[str] | None = None) -> dict[str, str]:
        """Names by practising licence number: every physician's, or only ``physicians``'."""
        # A physician deregistered since keeps the name they had: the list shows who was certified.
        t = self.db.table("view_physicians")
        sql = f"SELECT physician, name FROM {t} WHERE valid_from <= ? AND known_from <= ? AND known_to > ?"
        names: dict[str, str] = {}
        with self.db.transaction(write=False) as c:
            if physicians is None:
                names.update(c.execute(sql + " ORDER BY valid_from", (day, n, n)).fetchall())
                return names
            for start in range(0, len(physicians), 500):
                chunk = physicians[start : start + 500]
                names.update(
                    c.execute(
                        sql + f" AND physician IN ({', '.join('?' * len(chunk))}) ORDER BY valid_from",
                        (day, n, n, *chunk),
                    ).fetchall()
                )
        return names

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
            f"SELECT k.catalog, k.code, k.name FROM {self.db.table('view_catalog')} k WHERE {_IN_FORCE.format('k')} "
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
            sql = f"SELECT COUNT(*) FROM {t} v WHERE v.institution = ? AND v.technology = ? AND {_IN_FORCE.format('v')}"
            for inst, technology in keys:
                row = c.execute(sql, (inst, technology, day, day, n, n)).fetchone()
                if row and row[0]:
                    out[(inst, technology)] = int(row[0])
            return out
        wanted = set(keys)
        scope, params = self._scope(day, n, province, institution)
        sql = (
            f"SELECT v.institution, v.technology, COUNT(*) FROM {t} v WHERE {_IN_FORCE.format('v')} AND v.institution "
            f"IN (SELECT i.key FROM {self.db.table('view_institutions')} i WHERE {scope}) "
            "GROUP BY v.institution, v.technology"
        )
        for inst, technology, count in c.execute(sql, (day, day, n, n, *params)).fetchall():
            if (inst, technology) in wanted:
                out[(inst, technology)] = int(count)
        return out

    # --- trails and findings ----------------------------------------------------------------

    @no_cycle_collection()
    def trail(
        self,
        *,
        province: str | None = None,
        institution: str | None = None,
        physician: str | None = None,
        technology: str | None = None,
        as_of: date | None = None,
        known_at: int | str | datetime | None = None,
        findings: bool = True,
    ) -> Trail:
        """Every decision about the subject in effective-date order, with the findings (issue 3)."""
        day, n = self._when(as_of, known_at)
        where, params = [], []
        for column, value in (("institution", institution), ("physician", physician), ("technology", technology)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if province is not None:
            names = self._province_names(province)
            where.append(f"jurisdiction IN ({', '.join('?' * len(names))})")
            params.extend(names)
        logged: list[tuple[int, DecisionRecord]] = []
        if findings:
            # Judged: each record is parsed anyway, so the entry takes its envelope from it.
            rows = self._trail_rows(" AND ".join(where), params, day, n, records=True)
            logged = [(int(r[0]), record_from_text(r[5])) for r in rows]
            entries = [
                assemble(
                    TrailEntry,
                    {
                        "effective": record.effective,
                        "position": position,
                        "decision_id": record.id,
                        "kind": record.kind,
                        "by": record.by,
                        "basis": record.basis,
                        "institution": r[1],
                        "physician": r[2],
                        "technology": r[3],
                        "summary": r[4],
                    },
                )
                for r, (position, record) in zip(rows, logged, strict=True)
            ]
        else:
            entries = [
                assemble(
                    TrailEntry,
                    {
                        "effective": date.fromisoformat(r[3]),
                        "position": int(r[0]),
                        "decision_id": r[1],
                        "kind": r[2],
                        "by": r[4],
                        "basis": r[5],
                        "institution": r[6],
                        "physician": r[7],
                        "technology": r[8],
                        "summary": r[9],
                    },
                )
                for r in self._trail_rows(" AND ".join(where), params, day, n, records=False)
            ]
        judged: list[Finding] = []
        if findings:
            scopes = sorted({e.institution for e in entries if e.institution})
            # One institution's whole trail is exactly the rows its findings are judged on.
            whole = institution is not None and physician is None and technology is None and province is None
            for scope in scopes:
                judged.extend(
                    self.findings_for(
                        scope,
                        as_of=date.fromisoformat(day),
                        known_at=n,
                        _logged=logged if whole and scope == institution else None,
                    )
                )
            judged = [
                f
                for f in judged
                if (institution is None or f.institution == institution)
                and (physician is None or f.physician == physician)
                and (technology is None or f.technology == technology)
            ]
            if province in (None, NATIONAL) and institution is None and physician is None:
                judged.extend(
                    f
                    for f in self.findings_for(None, as_of=date.fromisoformat(day), known_at=n)
                    if technology is None or f.technology == technology
                )
        judged.sort(key=lambda f: (f.effective, SEVERITY_ORDER.get(f.severity, 9), f.rule, f.decisions))
        return Trail(entries, judged)

    def _trail_rows(
        self, where: str, params: Sequence[Any], day: str, n: int, *, records: bool = True
    ) -> list[tuple[Any, ...]]:
        """Trail rows in valid-time order. With ``records``: position, institution, physician,
        technology, summary and the record's text (what a judged trail reads: the record holds the
        rest); without: position, decision_id, kind, effective, by_, basis, institution,
        physician, technology, summary (a trail shown without findings parses nothing).

        The record's text is kept in the view although the log holds the same record: read from
        the log (joined by position, msgpack-decoded, ``record_from_state``) a record costs ≈ 8.5
        µs against 4 µs parsed from its text, and a busy institution's trail has thousands."""
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
            "AND kind IN ('decision.corrected', 'decision.retracted') ORDER BY position"
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
                "institution IS NULL AND kind IN ('panel.concluded', 'decision.corrected', 'decision.retracted')",
                (),
                day,
                known_at,
            )
        else:
            logged = self._logged("institution = ?", (institution,), day, known_at)
        later = self._later_changes(institution, day, known_at)
        if later:
            logged = [*logged, *later]
        decisions = _decisions(logged, as_of)
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
        candidates = [
            d
            for d in self.deadlines
            if d.name == name and d.valid_from <= on and (d.valid_to is None or on < d.valid_to)
        ]
        own = [d for d in candidates if d.jurisdiction == jurisdiction]
        chosen = own or [d for d in candidates if d.jurisdiction == NATIONAL]
        return chosen[0] if chosen else None

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


_NO_CLASS: frozenset[str] = frozenset()
TIMELINES_KEPT = 16
"""Catalogues (one per position asked) a ``Views`` keeps for the rules: a long-lived one is asked
about ever newer positions."""


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _decisions(logged: Sequence[tuple[int, DecisionRecord]], as_of: date) -> list[Resolved]:
    """``resolve(log, as_of=as_of)`` of trail records that are each effective by ``as_of``, in
    valid-time order (the order ``_trail_rows`` selects): the same list, without re-sorting them.
    A busy institution's scope has thousands of records and a few corrections: the records they
    do not touch become ``Resolved`` as they are, in order, and the corrected ones are put in place."""
    if len({r.id for _, r in logged}) != len(logged):  # an id twice: ``resolve`` says which one counts
        return resolve(sorted(logged, key=_first), as_of=as_of)
    changes = [item for item in logged if item[1].kind in _CHANGES]
    if not changes:
        return [
            assemble(Resolved, {"position": position, "record": record, "corrected_by": ()})
            for position, record in logged
            if record.effective <= as_of
        ]
    retracted: set[str] = set()
    fixes: dict[str, list[tuple[int, DecisionRecord]]] = {}
    for position, change in changes:
        if change.kind == "decision.corrected":
            fixes.setdefault(change.fields["corrects"], []).append((position, change))
        else:
            retracted.add(change.fields["retracts"])
    touched = retracted | fixes.keys() | {change.id for _, change in changes}
    out = [
        assemble(Resolved, {"position": position, "record": record, "corrected_by": ()})
        for position, record in logged
        if record.id not in touched and record.effective <= as_of
    ]
    for position, as_logged in logged:
        fixed = fixes.get(as_logged.id)
        if not fixed or as_logged.id in retracted or as_logged.kind in _CHANGES:
            continue
        fixed.sort(key=_first)  # applied in log order
        record = as_logged
        for _, fix in fixed:
            record = apply_correction(record, fix)
        if record.effective <= as_of:  # a correction may move a decision's effective date: put it in place
            insort(out, Resolved(position, record, tuple(fix.id for _, fix in fixed)), key=_valid_order)
    return out


_CHANGES = frozenset(CORRECTION_KINDS)


def _first(item: tuple[int, DecisionRecord]) -> int:
    return item[0]


def _valid_order(resolved: Resolved) -> tuple[date, int]:
    return resolved.record.effective, resolved.position


def catch_up(app: LedgerApplication) -> int:
    """Bring every projection up to the end of the log (after a write)."""
    return Runner(app, all_projections(app.plugins)).catch_up()
