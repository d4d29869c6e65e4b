"""What the read commands answer, as plain data: the command line formats it, the HTTP API serialises it.

Each function takes the views (or the application) and the same parameters as the command's
options, already parsed (days as ``date``, ``known_at`` as the views take it), and returns a
``Section`` (one table), ``Sections`` (several, by name) or a ``Shown`` decision. Their
``to_json()`` is the shape of ``--format json``, so an endpoint that serialises the same result
with ``ledger.canonical.dumps`` answers exactly what the command line prints.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from itertools import islice
from typing import Any

import pluggy

from ledger import integrity
from ledger.application import LedgerApplication, RecordedDecision
from ledger.checkpoints import note_signers
from ledger.decisions import DecisionRecord
from ledger.errors import LedgerError, PluginError, UnreadableRecord
from ledger.plugins import describe, jurisdictions, plugin_manager
from projections import localtime
from projections.plots import FILINGS_OVER_TIME
from projections.reports import Report
from projections.views import Views

KnownAt = int | str | datetime | None

CATALOG_COLUMNS = ("code", "name", "class", "version", "since", "decision")
LOG_COLUMNS = ("position", "recorded_at", "effective", "id", "kind", "by", "basis", "subject")
ENTRY_COLUMNS = ("effective", "position", "id", "kind", "by", "basis", "summary")
FINDING_COLUMNS = (
    "effective",
    "severity",
    "article",
    "rule",
    "message",
    "institution",
    "institution_name",
    "technology",
    "technology_name",
    "physician",
    "physician_name",
    "decisions",
)
"""A finding names whom it concerns: institution, technology and physician, by key and name."""
FINDING_DROP = ("decisions", "physician", "institution", "rule", "technology_name", "article")
ENTRY_DROP = ("basis", "position", "by")
LOG_DROP = ("recorded_at", "basis", "by", "subject")
FILING_COLUMNS = (
    "technology",
    "technology_name",
    "institution",
    "institution_name",
    "city",
    "status",
    "filed_on",
    "authority",
    "notice_until",
)
TRAINING_BASE_COLUMNS = (
    "technology",
    "technology_name",
    "institution",
    "institution_name",
    "status",
    "enrolment_notice",
    "filed_on",
)
TRAINEE_COLUMNS = ("technology", "technology_name", "physician_name", "institution", "institution_name", "certified_on")
PRIVILEGE_COLUMNS = ("physician_name", "level", "procedures", "status", "since", "institution", "institution_name")
CASE_COLUMNS = ("technology", "technology_name", "institution", "institution_name", "cases")
_BY_KEY = 64
"""Up to this many institutions are named one indexed read each; more, by reading their province's."""


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
    drop: tuple[str, ...] = ()
    """The columns a table for people leaves out first when a terminal is too narrow (``output.emit``)."""

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

    @property
    def names(self) -> list[str]:
        """The sections' names, in order."""
        return [s.name for s in self.sections]

    def only(self, name: str) -> Sections:
        """Just the section ``name`` (``--section``), shown whatever the options left out."""
        return Sections([replace(s, shown=True) for s in self.sections if s.name == name])


class _Names:
    """Names of institutions, technologies and physicians as the views have them on a day, known
    at a position: what a row shows beside the keys it holds."""

    def __init__(self, views: Views, as_of: date | None, known_at: KnownAt) -> None:
        self.views = views
        self.day, self.n = views._when(as_of, known_at)

    def institutions(self, keys: Iterable[str | None], province: str | None = None) -> dict[str, str]:
        wanted = sorted({k for k in keys if k})
        if len(wanted) > _BY_KEY:
            rows = self.views._institutions(self.day, self.n, province)
            return {k: rows[k].name for k in wanted if k in rows}
        found = (self.views._institution(self.day, self.n, k) for k in wanted)
        return {i.institution: i.name for i in found if i is not None}

    def technologies(self, refs: Iterable[str | None]) -> dict[str, str]:
        return self.views._technology_names(self.day, self.n, (r for r in refs if r))

    def physicians(self, keys: Iterable[str | None]) -> dict[str, str]:
        return self.views._physician_names(self.day, self.n, sorted({k for k in keys if k}))


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
    return Section("catalog", CATALOG_COLUMNS, rows, drop=("decision", "version", "since"))


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
    sections = [Section("filings", FILING_COLUMNS, filings, drop=("authority", "notice_until", "institution", "city"))]
    names = _Names(views, as_of, known_at)
    if institution is None:
        bases = views.training_bases(province, as_of=as_of, known_at=known_at)
        sections.append(
            Section(
                "training_bases",
                TRAINING_BASE_COLUMNS,
                [vars(b) for b in bases],
                drop=("enrolment_notice", "institution"),
            )
        )
        trainees = views.trainees(province, as_of=as_of, known_at=known_at)
        sections.append(Section("trainees", TRAINEE_COLUMNS, [vars(t) for t in trainees], drop=("institution",)))
    else:
        own = names.institutions([institution]).get(institution)
        privileges = [
            vars(p) | {"procedures": list(p.procedures), "institution_name": own}
            for p in views.privileges(institution, as_of=as_of, known_at=known_at)
        ]
        sections.append(Section("privileges", PRIVILEGE_COLUMNS, privileges, drop=("institution", "institution_name")))
    counts = views.case_counts(province, institution, as_of=as_of, known_at=known_at)
    called = names.institutions((c.institution for c in counts), province)
    cases = [vars(c) | {"institution_name": called.get(c.institution)} for c in counts]
    sections.append(Section("cases", CASE_COLUMNS, cases, drop=("institution",)))
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
    names = _Names(views, as_of, known_at)
    institutions = names.institutions(f.institution for f in found.findings)
    technologies = names.technologies(f.technology for f in found.findings)
    physicians = names.physicians(f.physician for f in found.findings)
    findings = [
        vars(f)
        | {
            "decisions": list(f.decisions),
            "institution_name": institutions.get(f.institution) if f.institution else None,
            "technology_name": technologies.get(f.technology) if f.technology else None,
            "physician_name": physicians.get(f.physician) if f.physician else None,
        }
        for f in found.findings
    ]
    return Sections(
        [
            Section("entries", ENTRY_COLUMNS, entries, shown=not findings_only, heading="decisions", drop=ENTRY_DROP),
            Section("findings", FINDING_COLUMNS, findings, drop=FINDING_DROP),
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
        "recorded_at": localtime.shown(d.recorded_at),
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
    from_position: int = 1,
    limit: int | None = None,
) -> Iterator[dict[str, Any]]:
    """The decisions in record order from position ``from_position`` on, filtered, at most
    ``limit``: one ``log_row`` at a time, read in pages, never the whole log held."""
    after = max(from_position, 1) - 1
    records: Iterable[RecordedDecision]
    if subject or kinds or jurisdiction or date_from or date_to:
        records = app.records(
            after=after,
            subject=subject,
            kinds=kinds,
            jurisdictions=jurisdiction_names(jurisdiction) if jurisdiction else (),
            effective_from=date_from,
            effective_to=date_to,
            limit=limit,
        )
    else:  # the whole log: its notifications in pages, each event read with its page, not one by one
        records = _whole_log(app, after) if limit is None else islice(_whole_log(app, after), limit)
    return (log_row(d) for d in records)


def _whole_log(app: LedgerApplication, after: int) -> Iterator[RecordedDecision]:
    """Every decision after position ``after``, from the notification log in pages. A record that
    cannot be read is named by its decision id too, as the decision index knows it."""
    notifications = app.notifications(after=after)
    while True:
        try:
            n, e = next(notifications)
        except StopIteration:
            return
        except UnreadableRecord as error:
            rows = app.store.decision_rows(after=(error.position or 1) - 1, limit=1) if error.position else []
            raise error.located(decision_id=rows[0].decision_id if rows else None) from None
        yield RecordedDecision(app.to_record(e), n.id, e.timestamp, e.subject, e.originator_version)


def log(app: LedgerApplication, **filters: Any) -> Section:
    """``log_rows`` as one table (for a bounded ``limit``; stream ``log_rows`` otherwise)."""
    return Section("log", LOG_COLUMNS, list(log_rows(app, **filters)))


def export(app: LedgerApplication, *, from_position: int = 1, limit: int | None = None) -> Iterator[DecisionRecord]:
    """The log as decisions in record order from ``from_position`` on (at most ``limit``), read in
    pages: the whole log re-imports to the same ledger."""
    records = app.export(after=max(from_position, 1) - 1)
    return records if limit is None else islice(records, limit)


def show(app: LedgerApplication, decision_id: str) -> Shown:
    """One decision with its record time, position, and the decisions that correct it."""
    d = app.decision(decision_id)
    return Shown(d, d.corrections)


CHECKPOINT_COLUMNS = ("seq", "size", "time", "origin", "signed_by", "root")


def checkpoints(app: LedgerApplication) -> list[dict[str, Any]]:
    """The checkpoints the ledger signed, oldest first, each with its signed note."""
    return [
        {
            "seq": cp.seq,
            "size": cp.size,
            "time": cp.time,
            "origin": cp.origin,
            "root": integrity.base64_hash(cp.root),
            "signed_by": signed_by(cp.note),
            "note": cp.note,
        }
        for cp in integrity.stored_checkpoints(app)
    ]


def signed_by(note: str) -> str:
    """The keys a stored note claims to be signed by (name+key id), unverified: `verify` checks."""
    try:
        return ", ".join(f"{name}+{kid:08x}" for name, kid in note_signers(note))
    except LedgerError:
        return "(unreadable note)"


def plugins(pm: pluggy.PluginManager) -> list[dict[str, Any]]:
    """Every plugin (built-in and installed): version, distribution, hooks, what it contributes."""
    return [
        {
            "name": p.name,
            "version": p.version,
            "distribution": p.distribution,
            "hooks": list(p.hooks),
            "contributes": {k: list(v) for k, v in p.contributes.items()},
        }
        for p in describe(pm)
    ]


def reports(pm: pluggy.PluginManager) -> dict[str, Report]:
    """The built-in reports and every enabled plugin's, by name; a name claimed twice is refused."""
    found = [FILINGS_OVER_TIME, *(r for c in pm.hook.ledger_reports() for r in c or ())]
    out: dict[str, Report] = {}
    for report in sorted(found, key=lambda r: r.name):
        if report.name in out:
            raise PluginError(f"two reports are named {report.name!r}")
        out[report.name] = report
    return out
