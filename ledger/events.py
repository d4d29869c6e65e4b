"""The ledger's vocabulary: one frozen event class per kind of decision in DECISIONS.md.

Events are facts, forever (ARCHITECTURE.md rule 1). Each class's topic (``ledger.events:<Class>``)
is written into every stored record, so a class here is never renamed or moved without
``eventsourcing.utils.register_topic(old_topic, cls)``; ``tests/ledger/test_events.py`` pins every
topic so that a refactor which would orphan stored events fails loudly.

A decision's own fields mirror DECISIONS.md one to one. The attribute name is the JSON field name,
except where Python forbids it (``class`` → ``tech_class``, declared with ``JsonName``). Fields a
plugin adds under its own prefix (``hunan.form``) travel in ``extensions`` untouched: plugins add
fields, never new meanings for core kinds.

The record time is eventsourcing's ``timestamp`` (set by the ledger, never by the file); the
position in the log is the notification id the storage assigns.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal

from eventsourcing.domain import DomainEvent

TechClass = Literal["prohibited", "restricted", "class2", "class3", "clinical-research"]
Level = Literal["三级", "二级", "一级", "未定级"]
Committee = Literal["management", "ethics"]
ReviewOutcome = Literal["approved", "rejected"]
PanelKind = Literal["technical-audit", "evaluation"]
Vote = Literal["for", "against"]
PanelOutcome = Literal["pass", "fail", "prohibit", "restrict", "strengthen", "no-change"]
SurgeryGrade = Literal[1, 2, 3, 4]
AssessmentOutcome = Literal["meets", "does-not-meet"]


@dataclass(frozen=True)
class JsonName:
    """``Annotated`` marker: the JSON field name of an attribute whose name Python reserves."""

    name: str


@dataclass(frozen=True)
class Decision(DomainEvent):
    """What every decision carries (DECISIONS.md, "Every decision").

    ``subject`` is the natural key of the aggregate the decision lands on (see
    ``ledger.aggregates``); it is stored so that a history can be read per subject without
    re-deriving it, and so that a correction lands on the subject of what it corrects.
    """

    kind: ClassVar[str] = ""

    decision_id: str
    effective: date
    by: str
    basis: str | None
    note: str | None
    subject: str
    extensions: dict[str, Any]
    signature: str | None
    """base64 Ed25519 signature by the ``by`` authority's registered key (see ``ledger.authority``)."""


# --- Catalogues -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TechnologyListed(Decision):
    kind: ClassVar[str] = "technology.listed"
    catalog: str
    code: str
    name: str
    tech_class: Annotated[TechClass, JsonName("class")]
    version: str


@dataclass(frozen=True)
class TechnologyReclassified(Decision):
    kind: ClassVar[str] = "technology.reclassified"
    catalog: str
    code: str
    tech_class: Annotated[TechClass, JsonName("class")]


@dataclass(frozen=True)
class TechnologyDelisted(Decision):
    kind: ClassVar[str] = "technology.delisted"
    catalog: str
    code: str


# --- Institutions and physicians ------------------------------------------------------------


@dataclass(frozen=True)
class InstitutionRegistered(Decision):
    kind: ClassVar[str] = "institution.registered"
    institution: str
    name: str
    province: str
    city: str
    category: str
    level: Level
    licensing_authority: str


@dataclass(frozen=True)
class PhysicianRegistered(Decision):
    kind: ClassVar[str] = "physician.registered"
    physician: str
    name: str
    institution: str
    title: str


@dataclass(frozen=True)
class PhysicianDeregistered(Decision):
    kind: ClassVar[str] = "physician.deregistered"
    physician: str
    institution: str


# --- Filings and use of a technology at an institution -------------------------------------


@dataclass(frozen=True)
class ReviewConcluded(Decision):
    kind: ClassVar[str] = "review.concluded"
    institution: str
    technology: str
    committee: Committee
    outcome: ReviewOutcome


@dataclass(frozen=True)
class CasePerformed(Decision):
    kind: ClassVar[str] = "case.performed"
    institution: str
    technology: str
    physician: str
    case: str
    level: SurgeryGrade | None


@dataclass(frozen=True)
class FilingSubmitted(Decision):
    kind: ClassVar[str] = "filing.submitted"
    institution: str
    technology: str
    technical_lead: str
    materials: list[str]


@dataclass(frozen=True)
class FilingCompleted(Decision):
    kind: ClassVar[str] = "filing.completed"
    institution: str
    technology: str


@dataclass(frozen=True)
class FilingRejected(Decision):
    kind: ClassVar[str] = "filing.rejected"
    institution: str
    technology: str
    reason: str


@dataclass(frozen=True)
class UseSuspended(Decision):
    kind: ClassVar[str] = "use.suspended"
    institution: str
    technology: str
    reason: str


@dataclass(frozen=True)
class UseResumed(Decision):
    kind: ClassVar[str] = "use.resumed"
    institution: str
    technology: str


@dataclass(frozen=True)
class UseStopped(Decision):
    kind: ClassVar[str] = "use.stopped"
    institution: str
    technology: str
    reason: str


@dataclass(frozen=True)
class SelfAssessmentConcluded(Decision):
    """The institution's self-assessment of a restricted technology against its management norm
    (MTM-2018#11(1), HN-2018#二(二) "进行自我评估，符合条件的可以开展临床应用"); added by this project."""

    kind: ClassVar[str] = "self_assessment.concluded"
    institution: str
    technology: str
    outcome: AssessmentOutcome
    standard: str | None
    """The management norm assessed against (e.g. 国卫办医发〔2017〕7号), if named."""


# --- Privileges -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PrivilegeGranted(Decision):
    kind: ClassVar[str] = "privilege.granted"
    institution: str
    physician: str
    level: SurgeryGrade
    procedures: list[str]


@dataclass(frozen=True)
class PrivilegeSuspended(Decision):
    kind: ClassVar[str] = "privilege.suspended"
    institution: str
    physician: str
    reason: str


@dataclass(frozen=True)
class PrivilegeRevoked(Decision):
    kind: ClassVar[str] = "privilege.revoked"
    institution: str
    physician: str
    reason: str


@dataclass(frozen=True)
class GradingCataloguePublished(Decision):
    """An institution's surgical grading catalogue (手术分级管理目录, MTM-2018#15(2), #18, #24;
    MTM-2009#38): each procedure with its grade 1–4. A later one replaces it whole; added by this project."""

    kind: ClassVar[str] = "grading_catalogue.published"
    institution: str
    procedures: dict[str, SurgeryGrade]
    version: str | None
    """The catalogue's own title or edition, if it has one."""


# --- Certifications -------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingBaseFiled(Decision):
    kind: ClassVar[str] = "training_base.filed"
    institution: str
    technology: str
    enrolment_notice: date


@dataclass(frozen=True)
class TrainingBaseStopped(Decision):
    kind: ClassVar[str] = "training_base.stopped"
    institution: str
    technology: str
    reason: str


@dataclass(frozen=True)
class TraineeCertified(Decision):
    kind: ClassVar[str] = "trainee.certified"
    physician: str
    institution: str
    technology: str


@dataclass(frozen=True)
class PanelConcluded(Decision):
    kind: ClassVar[str] = "panel.concluded"
    panel: PanelKind
    technology: str
    institution: str | None
    members: list[str]
    recused: list[str]
    votes: dict[str, Vote]
    outcome: PanelOutcome


# --- Oversight ------------------------------------------------------------------------------


@dataclass(frozen=True)
class InspectionRecorded(Decision):
    kind: ClassVar[str] = "inspection.recorded"
    institution: str
    findings: list[str]


@dataclass(frozen=True)
class CorrectionOrdered(Decision):
    kind: ClassVar[str] = "correction.ordered"
    institution: str
    technology: str | None
    deadline: date


@dataclass(frozen=True)
class PenaltyImposed(Decision):
    kind: ClassVar[str] = "penalty.imposed"
    institution: str
    amount_yuan: Decimal
    reason: str


# --- Corrections ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DecisionCorrected(Decision):
    kind: ClassVar[str] = "decision.corrected"
    corrects: str
    fields: dict[str, Any]


@dataclass(frozen=True)
class DecisionRetracted(Decision):
    kind: ClassVar[str] = "decision.retracted"
    retracts: str
    reason: str


# --- Authorities ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AuthorityKeyRegistered(Decision):
    """From this record on, decisions ``by`` ``authority`` must carry its signature."""

    kind: ClassVar[str] = "authority.key_registered"
    authority: str
    public_key: str


EVENT_CLASSES: dict[str, type[Decision]] = {
    cls.kind: cls
    for cls in (
        TechnologyListed,
        TechnologyReclassified,
        TechnologyDelisted,
        InstitutionRegistered,
        PhysicianRegistered,
        PhysicianDeregistered,
        ReviewConcluded,
        CasePerformed,
        FilingSubmitted,
        FilingCompleted,
        FilingRejected,
        UseSuspended,
        UseResumed,
        UseStopped,
        PrivilegeGranted,
        PrivilegeSuspended,
        PrivilegeRevoked,
        TrainingBaseFiled,
        TrainingBaseStopped,
        TraineeCertified,
        PanelConcluded,
        InspectionRecorded,
        CorrectionOrdered,
        PenaltyImposed,
        DecisionCorrected,
        DecisionRetracted,
        AuthorityKeyRegistered,
        SelfAssessmentConcluded,
        GradingCataloguePublished,
    )
}
"""Every kind of DECISIONS.md, by its name. The one registry the parser and the exporter use."""

COMMON_FIELDS = frozenset(f.name for f in dataclasses.fields(Decision))
