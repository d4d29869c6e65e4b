"""The public disclosure lists, as bitemporal timelines (MTM-2018#24, #30, #40; CQ-2017 公示).

What the rules say must be public: per province the institutions filed for each restricted
technology, with filing date and authority (MTM-2018#40), suspended and stopped uses, the filed
training bases (#30) and certified trainees; per institution its restricted technologies, the
surgical grades granted and its restricted-technology cases (院务公开, #24). Each list is a
``TimelineProjection``; ``projections.views`` answers the questions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from ledger.decisions import DecisionRecord
from ledger.events import EVENT_CLASSES
from ledger.sql import Database
from projections.replay import Resolved
from projections.runner import FOREVER, NOW, TimelineProjection, TimelineRow, intervals, stored_text


def _kinds(*prefixes: str) -> frozenset[str]:
    """Every kind of decision whose name starts with one of ``prefixes`` (what ``keys`` tests)."""
    return frozenset(kind for kind in EVENT_CLASSES if kind.startswith(prefixes))


def _ids(decisions: Iterable[Resolved]) -> str:
    return ",".join(d.record.id for d in decisions)


class InstitutionsProjection(TimelineProjection):
    """Institutions with their province, city and licensing authority (joins every list)."""

    name = "institutions"
    table = "view_institutions"
    columns = ("institution", "name", "province", "city", "category", "level", "licensing_authority", "decision")
    indexes = (("province",),)
    kinds = frozenset({"institution.registered"})

    def keys(self, record: DecisionRecord) -> Iterable[str]:
        if record.kind == "institution.registered":
            yield record.fields["institution"]

    def timeline(self, key: str, decisions: Sequence[Resolved]) -> list[TimelineRow]:
        states: list[tuple[date, tuple[Any, ...] | None]] = []
        for d in decisions:
            f = d.record.fields
            states.append(
                (
                    d.record.effective,
                    (
                        key,
                        f["name"],
                        f["province"],
                        f["city"],
                        f["category"],
                        f["level"],
                        f["licensing_authority"],
                        d.record.id,
                    ),
                )
            )
        return intervals(states)


class PhysiciansProjection(TimelineProjection):
    """Physicians registered at institutions (their names, never their licence numbers, are public)."""

    name = "physicians"
    table = "view_physicians"
    columns = ("physician", "institution", "name", "title")
    indexes = (("institution",), ("physician",))  # physician: the names on a list of trainees or grades
    kinds = frozenset({"physician.registered", "physician.deregistered"})

    def keys(self, record: DecisionRecord) -> Iterable[str]:
        if record.kind in ("physician.registered", "physician.deregistered"):
            yield f"{record.fields['physician']}|{record.fields['institution']}"

    def timeline(self, key: str, decisions: Sequence[Resolved]) -> list[TimelineRow]:
        physician, _, institution = key.partition("|")
        states: list[tuple[date, tuple[Any, ...] | None]] = []
        for d in decisions:
            f = d.record.fields
            if d.record.kind == "physician.registered":
                states.append((d.record.effective, (physician, institution, f["name"], f["title"])))
            else:
                states.append((d.record.effective, None))
        return intervals(states)


class FilingsProjection(TimelineProjection):
    """Each institution's use of each technology: submitted, filed, rejected, suspended, stopped.

    ``filed_on`` is the day the filing authority completed the filing (MTM-2018#11-#12) and
    ``authority`` who did; suspension and stop keep them, so the list shows what was filed and
    what happened to it since (MTM-2018#40, #41-#44).
    """

    name = "filings"
    table = "view_filings"
    columns = ("institution", "technology", "status", "filed_on", "authority", "submitted_on", "decisions")
    indexes = (("institution",), ("technology",))
    kinds = _kinds("filing.", "use.")

    def keys(self, record: DecisionRecord) -> Iterable[str]:
        kind = record.kind.split(".")[0]
        if kind in ("filing", "use"):
            yield f"{record.fields['institution']}|{record.fields['technology']}"

    def timeline(self, key: str, decisions: Sequence[Resolved]) -> list[TimelineRow]:
        institution, _, technology = key.partition("|")
        status: str | None = None
        filed_on: str | None = None
        authority: str | None = None
        submitted_on: str | None = None
        seen: list[Resolved] = []
        states: list[tuple[date, tuple[Any, ...] | None]] = []
        for d in decisions:
            r = d.record
            seen.append(d)
            if r.kind == "filing.submitted":
                submitted_on = r.effective.isoformat()
                if status in (None, "rejected"):
                    status = "submitted"
            elif r.kind == "filing.completed":
                filed_on, authority = r.effective.isoformat(), r.by
                if status in (None, "submitted", "rejected"):
                    status = "filed"
            elif r.kind == "filing.rejected":
                if status in (None, "submitted"):
                    status = "rejected"
            elif r.kind == "use.suspended":
                status = "suspended"
            elif r.kind == "use.resumed" and status == "suspended":
                status = "filed" if filed_on else "submitted" if submitted_on else None
            elif r.kind == "use.stopped":
                status = "stopped"
            if status is None:
                continue
            states.append(
                (r.effective, (institution, technology, status, filed_on, authority, submitted_on, _ids(seen)))
            )
        return intervals(states)


class TrainingBasesProjection(TimelineProjection):
    """Training bases filed with the province, and stopped (MTM-2018#29-#30, #42)."""

    name = "training_bases"
    table = "view_training_bases"
    columns = ("institution", "technology", "status", "enrolment_notice", "filed_on", "decisions")
    indexes = (("institution",),)
    kinds = _kinds("training_base.")

    def keys(self, record: DecisionRecord) -> Iterable[str]:
        if record.kind.startswith("training_base."):
            yield f"{record.fields['institution']}|{record.fields['technology']}"

    def timeline(self, key: str, decisions: Sequence[Resolved]) -> list[TimelineRow]:
        institution, _, technology = key.partition("|")
        states: list[tuple[date, tuple[Any, ...] | None]] = []
        notice = filed = None
        seen: list[Resolved] = []
        for d in decisions:
            r = d.record
            seen.append(d)
            if r.kind == "training_base.filed":
                notice, filed = r.fields["enrolment_notice"].isoformat(), r.effective.isoformat()
                states.append((r.effective, (institution, technology, "filed", notice, filed, _ids(seen))))
            else:
                states.append((r.effective, (institution, technology, "stopped", notice, filed, _ids(seen))))
        return intervals(states)


class OneDecisionProjection(TimelineProjection):
    """A list with one row per decision (a case, a certification), in force from its effective
    date until retracted; a correction replaces the row."""

    kind: str
    keys_are_decision_ids = True

    def __init__(self) -> None:
        self.kinds = frozenset({self.kind})

    def keys(self, record: DecisionRecord) -> Iterable[str]:
        if record.kind == self.kind:
            yield record.id

    def timeline(self, key: str, decisions: Sequence[Resolved]) -> list[TimelineRow]:
        return [TimelineRow(d.record.effective, None, self.values(d.record)) for d in decisions]

    def values(self, record: DecisionRecord) -> tuple[Any, ...]:
        return tuple(record.fields.get(c) for c in self.columns)

    def first_rows(self, key: str, position: int, record: DecisionRecord) -> list[list[Any]]:
        # ``timeline``'s one row, stored, built directly: a rebuild makes one per case.
        fields = record.fields
        values = [fields.get(c) for c in self.columns]
        return [
            [
                key,
                record.effective.isoformat(),
                FOREVER,
                *(v if v is None or type(v) is str else str(v) if type(v) is int else stored_text(v) for v in values),
                position,
                NOW,
            ]
        ]


class TraineesProjection(OneDecisionProjection):
    """Physicians certified by a training base (MTM-2018#33; HN-2018 §五)."""

    name = "trainees"
    table = "view_trainees"
    kind = "trainee.certified"
    columns = ("physician", "institution", "technology")
    indexes = (("institution",),)


class CasesProjection(OneDecisionProjection):
    """Cases of restricted technologies reported one by one (逐例报送, MTM-2018#37)."""

    name = "cases"
    table = "view_cases"
    kind = "case.performed"
    columns = ("institution", "technology", "physician", "level")
    indexes = ()  # the covering index below serves every lookup by institution and technology

    def deferrable_indexes(self, db: Database) -> list[tuple[str, str]]:
        # Counting a province's cases (``Views.case_counts``) reads this index alone, not the rows:
        # 4× faster (issue 8: 219 → 55 ms for Hunan's ≈ 250,000 cases in a 5M-decision ledger).
        name = f"{self.table}_counts"
        covering = "institution, technology, valid_from, valid_to, known_from, known_to"
        return [
            *super().deferrable_indexes(db),
            (name, f"CREATE INDEX IF NOT EXISTS {name} ON {db.table(self.table)} ({covering})"),
        ]


class PrivilegesProjection(TimelineProjection):
    """Surgical grades and procedures granted to physicians (MTM-2018#20, MTM-2009#38; 院务公开 #24)."""

    name = "privileges"
    table = "view_privileges"
    columns = ("physician", "institution", "level", "procedures", "status", "decision")
    indexes = (("institution",),)
    kinds = _kinds("privilege.")

    def keys(self, record: DecisionRecord) -> Iterable[str]:
        if record.kind.startswith("privilege."):
            yield f"{record.fields['physician']}|{record.fields['institution']}"

    def timeline(self, key: str, decisions: Sequence[Resolved]) -> list[TimelineRow]:
        physician, _, institution = key.partition("|")
        states: list[tuple[date, tuple[Any, ...] | None]] = []
        level: Any = None
        procedures: Any = None
        for d in decisions:
            r = d.record
            if r.kind == "privilege.granted":
                level, procedures = r.fields["level"], r.fields["procedures"]
                states.append((r.effective, (physician, institution, level, procedures, "granted", r.id)))
            elif r.kind == "privilege.suspended":
                states.append((r.effective, (physician, institution, level, procedures, "suspended", r.id)))
            else:
                states.append((r.effective, (physician, institution, level, procedures, "revoked", r.id)))
        return intervals(states)


def disclosure_projections() -> list[TimelineProjection]:
    return [
        InstitutionsProjection(),
        PhysiciansProjection(),
        FilingsProjection(),
        TrainingBasesProjection(),
        TraineesProjection(),
        CasesProjection(),
        PrivilegesProjection(),
    ]
