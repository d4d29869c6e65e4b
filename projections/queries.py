"""What the read commands answer, as plain data: the command line formats it, the HTTP API serialises it.

Each function takes the views (or the application) and the same parameters as the command's
options, already parsed (days as ``date``, ``known_at`` as the views take it), and returns a
``Section`` (one table), ``Sections`` (several, by name) or a ``Shown`` decision. Their
``to_json()`` is the shape of ``--format json``, so an endpoint that serialises the same result
with ``ledger.canonical.dumps`` answers exactly what the command line prints.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from ledger.application import LedgerApplication, RecordedDecision
from ledger.plugins import jurisdictions, plugin_manager
from projections.views import Views

KnownAt = int | str | datetime | None

CATALOG_COLUMNS = ("code", "name", "class", "version", "since", "decision")
LOG_COLUMNS = ("position", "recorded_at", "effective", "id", "kind", "by", "basis", "subject")
ENTRY_COLUMNS = ("effective", "position", "id", "kind", "by", "basis", "summary")
FINDING_COLUMNS = ("effective", "severity", "article", "rule", "message", "decisions")


@dataclass(frozen=True)
class Section:
    """One table: its name, its columns in order, and its rows (dicts keyed by column)."""

    name: str
    columns: tuple[str, ...]
    rows: list[dict[str, Any]]
    shown: bool = True
    """False when the command was asked to leave it out (``--findings-only``): JSON still names
    it, empty, so that a program finds the same keys whatever the options."""

    heading: str | None = None
    """What a table for people calls it (default: its name, spaced)."""

    @property
    def title(self) -> str:
        """The heading printed above the table."""
        return self.heading or self.name.replace("_", " ")

    def to_json(self) -> list[dict[str, Any]]:
        """The rows with exactly the section's columns, in order."""
        return [{c: r.get(c) for c in self.columns} for r in self.rows]


@dataclass(frozen=True)
class Sections:
    """Several tables answering one question (a disclosure, a trail), in the order they print."""

    sections: list[Section]

    def to_json(self) -> dict[str, list[dict[str, Any]]]:
        """``{section name: its rows}``."""
        return {s.name: s.to_json() for s in self.sections}


@dataclass(frozen=True)
class Shown:
    """One decision as recorded, with the decisions that correct or retract it."""

    decision: RecordedDecision
    corrections: tuple[RecordedDecision, ...] = field(default=())

    def to_json(self) -> list[dict[str, Any]]:
        """The decision's record with its ``_position``, ``_recorded_at``, ``_subject``, then each correction's."""
        return [self.decision.to_json_dict(), *(c.to_json_dict() for c in self.corrections)]


def catalog(
    views: Views, province: str | None = None, *, as_of: date | None = None, known_at: KnownAt = None
) -> Section:
    """The catalogue in force: national entries, plus ``province``'s own (MTM-2018#5-#9)."""
    rows = [
        {
            "code": e.ref,
            "name": e.name,
            "class": e.tech_class,
            "version": e.version,
            "since": e.since,
            "decision": e.listed_by,
        }
        for e in views.catalog(province, as_of=as_of, known_at=known_at)
    ]
    return Section("catalog", CATALOG_COLUMNS, rows)


def disclosure(
    views: Views,
    province: str | None = None,
    institution: str | None = None,
    *,
    as_of: date | None = None,
    known_at: KnownAt = None,
) -> Sections:
    """What must be public: filings per restricted technology, training bases and trainees
    (MTM-2018#30, #40), or one institution's technologies, surgical grades and cases (#24)."""
    filings = [
        {
            "technology": f.technology,
            "technology_name": f.technology_name,
            "institution": f.institution,
            "institution_name": f.institution_name,
            "city": f.city,
            "status": f.status,
            "filed_on": f.filed_on,
            "authority": f.authority,
            "notice_until": f.notice_until,
        }
        for f in views.public_filings(province, institution, as_of=as_of, known_at=known_at)
    ]
    sections = [
        Section(
            "filings",
            (
                "technology",
                "technology_name",
                "institution_name",
                "city",
                "status",
                "filed_on",
                "authority",
                "notice_until",
            ),
            filings,
        )
    ]
    if institution is None:
        sections.append(
            Section(
                "training_bases",
                ("technology", "technology_name", "institution_name", "status", "enrolment_notice", "filed_on"),
                [vars(b) for b in views.training_bases(province, as_of=as_of, known_at=known_at)],
            )
        )
        sections.append(
            Section(
                "trainees",
                ("technology", "technology_name", "physician_name", "institution_name", "certified_on"),
                [vars(t) for t in views.trainees(province, as_of=as_of, known_at=known_at)],
            )
        )
    else:
        sections.append(
            Section(
                "privileges",
                ("physician_name", "level", "procedures", "status", "since"),
                [
                    vars(p) | {"procedures": list(p.procedures)}
                    for p in views.privileges(institution, as_of=as_of, known_at=known_at)
                ],
            )
        )
    sections.append(
        Section(
            "cases",
            ("technology", "technology_name", "institution", "cases"),
            [vars(c) for c in views.case_counts(province, institution, as_of=as_of, known_at=known_at)],
        )
    )
    return Sections(sections)


def trail(
    views: Views,
    *,
    province: str | None = None,
    institution: str | None = None,
    physician: str | None = None,
    technology: str | None = None,
    findings_only: bool = False,
    as_of: date | None = None,
    known_at: KnownAt = None,
) -> Sections:
    """Every decision about a subject in effective-date order with its basis (``entries``), and the
    findings the plugins' rules derive from them (``findings``; MTM-2018#35, MTM-2009#46)."""
    found = views.trail(
        province=province,
        institution=institution,
        physician=physician,
        technology=technology,
        as_of=as_of,
        known_at=known_at,
    )
    entries = [] if findings_only else [vars(e) | {"id": e.decision_id} for e in found.entries]
    findings = [vars(f) | {"decisions": list(f.decisions)} for f in found.findings]
    return Sections(
        [
            Section("entries", ENTRY_COLUMNS, entries, shown=not findings_only, heading="decisions"),
            Section("findings", FINDING_COLUMNS, findings),
        ]
    )


def jurisdiction_names(code: str) -> list[str]:
    """What decisions write for a jurisdiction: its code (catalogues) and its province's names."""
    for j in jurisdictions(plugin_manager()):
        if code in (j.code, j.name):
            return sorted({j.code, j.name, *j.aliases})
    return [code]


def log_row(d: RecordedDecision) -> dict[str, Any]:
    """One decision as a row of ``log``."""
    return {
        "position": d.position,
        "recorded_at": d.recorded_at.isoformat(timespec="seconds"),
        "effective": d.record.effective,
        "id": d.record.id,
        "kind": d.record.kind,
        "by": d.record.by,
        "basis": d.record.basis,
        "subject": d.subject,
    }


def log_rows(
    app: LedgerApplication,
    *,
    subject: str | None = None,
    kinds: Sequence[str] = (),
    jurisdiction: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    limit: int | None = None,
) -> Iterator[dict[str, Any]]:
    """The decisions in record order, filtered, one ``log_row`` at a time (read in pages)."""
    records: Iterable[RecordedDecision] = app.records(
        subject=subject,
        kinds=kinds,
        jurisdictions=jurisdiction_names(jurisdiction) if jurisdiction else (),
        effective_from=date_from,
        effective_to=date_to,
        limit=limit,
    )
    return (log_row(d) for d in records)


def log(app: LedgerApplication, **filters: Any) -> Section:
    """``log_rows`` as one table (for a bounded ``limit``; stream ``log_rows`` otherwise)."""
    return Section("log", LOG_COLUMNS, list(log_rows(app, **filters)))


def show(app: LedgerApplication, decision_id: str) -> Shown:
    """One decision with its record time, position, and the decisions that correct it."""
    d = app.decision(decision_id)
    return Shown(d, d.corrections)
