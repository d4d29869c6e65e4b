"""The rows the views answer with: one frozen dataclass per kind of row a list or a trail shows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from projections.findings import Finding


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
