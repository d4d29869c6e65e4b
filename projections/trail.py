"""Inspection trails: every decision about a subject, in effective-date order, with its basis.

An inspector reads the trail to see what happened and on what legal ground (MTM-2018#35,
MTM-2009#46). Unlike the catalogue and the disclosure lists, a trail shows corrections and
retractions *as well as* what they correct: the record of a change is itself evidence.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from ledger.decisions import DecisionRecord

SUMMARY_FIELDS = (
    "name",
    "class",
    "technology",
    "physician",
    "technical_lead",
    "committee",
    "outcome",
    "level",
    "case",
    "reason",
    "deadline",
    "amount_yuan",
    "corrects",
    "retracts",
    "fields",
)


@dataclass(frozen=True)
class TrailEntry:
    effective: date
    position: int
    decision_id: str
    kind: str
    by: str
    basis: str | None
    summary: str


def trail(
    log: Iterable[tuple[int, DecisionRecord]],
    *,
    institution: str | None = None,
    physician: str | None = None,
    technology: str | None = None,
    institutions_in: set[str] | None = None,
    as_of: date | None = None,
    known_at: int | None = None,
) -> list[TrailEntry]:
    """Decisions matching every given subject filter, by effective date then record position.

    ``institutions_in`` restricts to decisions about those institutions (a province's trail).
    Corrections and retractions follow the subject of the decision they change.
    """
    subjects: dict[str, bool] = {}
    out = []
    for position, record in log:
        if known_at is not None and position > known_at:
            break
        if record.kind in ("decision.corrected", "decision.retracted"):
            target = str(record.fields.get("corrects") or record.fields.get("retracts"))
            matches = subjects.get(target, False)
        else:
            f = record.fields
            matches = (
                (institution is None or f.get("institution") == institution)
                and (physician is None or physician in (f.get("physician"), f.get("technical_lead")))
                and (technology is None or f.get("technology") == technology or _ref(f) == technology)
                and (institutions_in is None or f.get("institution") in institutions_in)
            )
        subjects[record.id] = matches
        if matches and (as_of is None or record.effective <= as_of):
            out.append(
                TrailEntry(
                    record.effective, position, record.id, record.kind, record.by, record.basis, summarise(record)
                )
            )
    out.sort(key=lambda e: (e.effective, e.position))
    return out


def _ref(fields: dict[str, object] | object) -> str | None:
    if isinstance(fields, dict) and "catalog" in fields and "code" in fields:
        return f"{fields['catalog']}:{fields['code']}"
    return None


def summarise(record: DecisionRecord) -> str:
    """One line of the fields an inspector looks at first."""
    parts = []
    for name in SUMMARY_FIELDS:
        if name in record.fields:
            value = record.fields[name]
            if isinstance(value, dict):
                value = ", ".join(f"{k}={v}" for k, v in value.items())
            parts.append(f"{name}={value}")
    return "; ".join(parts)
