"""The CLI's answers as data: what ``ledger <view> --format json`` prints, before it is printed.

A stop-gap until the command line's own query code moves to ``projections.queries``; the API's
tests compare every answer here with the CLI's output, so the two cannot drift apart unseen.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from ledger.application import LedgerApplication, RecordedDecision
from ledger.plugins import describe, jurisdictions
from projections.views import Views

LOG_COLUMNS = ("position", "recorded_at", "effective", "id", "kind", "by", "basis", "subject")


def catalog(views: Views, province: str | None, as_of: date | None, known_at: int | None) -> list[dict[str, Any]]:
    return [
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


_FILING_COLUMNS = (
    "technology",
    "technology_name",
    "institution_name",
    "city",
    "status",
    "filed_on",
    "authority",
    "notice_until",
)


def disclosure(
    views: Views, province: str | None, institution: str | None, as_of: date | None, known_at: int | None
) -> dict[str, list[dict[str, Any]]]:
    sections: dict[str, list[dict[str, Any]]] = {}
    filings = views.public_filings(province, institution, as_of=as_of, known_at=known_at)
    sections["filings"] = [{c: getattr(f, c) for c in _FILING_COLUMNS} for f in filings]
    if institution is None:
        bases = views.training_bases(province, as_of=as_of, known_at=known_at)
        cols = ("technology", "technology_name", "institution_name", "status", "enrolment_notice", "filed_on")
        sections["training_bases"] = [{c: getattr(b, c) for c in cols} for b in bases]
        trainees = views.trainees(province, as_of=as_of, known_at=known_at)
        cols = ("technology", "technology_name", "physician_name", "institution_name", "certified_on")
        sections["trainees"] = [{c: getattr(t, c) for c in cols} for t in trainees]
    else:
        privileges = views.privileges(institution, as_of=as_of, known_at=known_at)
        sections["privileges"] = [
            {
                "physician_name": p.physician_name,
                "level": p.level,
                "procedures": list(p.procedures),
                "status": p.status,
                "since": p.since,
            }
            for p in privileges
        ]
    cases = views.case_counts(province, institution, as_of=as_of, known_at=known_at)
    cols = ("technology", "technology_name", "institution", "cases")
    sections["cases"] = [{c: getattr(k, c) for c in cols} for k in cases]
    return sections


ENTRY_COLUMNS = ("effective", "position", "id", "kind", "by", "basis", "summary")
FINDING_COLUMNS = ("effective", "severity", "article", "rule", "message", "decisions")


def trail(views: Views, subject: dict[str, str | None], as_of: date | None, known_at: int | None) -> dict[str, Any]:
    found = views.trail(**subject, as_of=as_of, known_at=known_at)
    return {
        "entries": [{c: (e.decision_id if c == "id" else getattr(e, c)) for c in ENTRY_COLUMNS} for e in found.entries],
        "findings": [
            {c: (list(f.decisions) if c == "decisions" else getattr(f, c)) for c in FINDING_COLUMNS}
            for f in found.findings
        ],
    }


def log_row(d: RecordedDecision) -> dict[str, Any]:
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


def jurisdiction_names(views: Views, code: str) -> list[str]:
    for j in jurisdictions(views.pm):
        if code in (j.code, j.name):
            return sorted({j.code, j.name, *j.aliases})
    return [code]


def decision(app: LedgerApplication, decision_id: str) -> list[dict[str, Any]]:
    d = app.decision(decision_id)
    return [d.to_json_dict(), *(c.to_json_dict() for c in d.corrections)]


def plugins(views: Views) -> list[dict[str, Any]]:
    return [
        {
            "name": p.name,
            "version": p.version,
            "distribution": p.distribution,
            "hooks": list(p.hooks),
            "contributes": {k: list(v) for k, v in p.contributes.items()},
        }
        for p in describe(views.pm)
    ]


def canonical_line(value: Any) -> str:
    from ledger import canonical

    return canonical.dumps(value)
