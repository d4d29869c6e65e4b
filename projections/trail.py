"""Inspection trails: every decision about a subject in effective-date order, with its basis,
and the findings the rules derive from them (MTM-2018#35, MTM-2009#46).

Unlike the catalogue and the disclosure lists, a trail shows corrections and retractions *as well
as* what they change: the record of a change is itself evidence. So the trail's rows are the
decisions themselves, one per record, never closed: ``--known-at N`` selects rows recorded up to
N and ``--as-of D`` those effective by D. Findings are not stored (ARCHITECTURE.md rule 2): they
are judged when the trail is read, by every enabled plugin's rules, over the decisions of each
institution in the trail as in force on D and known at N.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ledger.application import CORRECTION_KINDS
from ledger.decisions import DecisionRecord
from ledger.sql import Cursor, Database
from projections.runner import Projection, record_text

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
    "enrolment_notice",
    "deadline",
    "amount_yuan",
    "corrects",
    "retracts",
    "fields",
)


def summarise(record: DecisionRecord) -> str:
    """One line of the fields an inspector looks at first.

    Worked out when the trail projection stores the decision (its ``summary`` column), not when a
    trail is read: a busy institution's trail has thousands of rows."""
    fields = record.fields
    parts = []
    for name in SUMMARY_FIELDS:
        if name in fields:
            value = fields[name]
            if isinstance(value, dict):
                value = ", ".join(f"{k}={v}" for k, v in value.items())
            parts.append(f"{name}={value}")
    return "; ".join(parts)


class TrailProjection(Projection):
    """One row per decision with the subjects it concerns, indexed for every trail filter."""

    name = "trail"
    version = 2
    """2: the ``summary`` column (a trail read no longer parses each record to summarise it)."""
    table = "view_trail"
    columns = (
        "position",
        "decision_id",
        "kind",
        "effective",
        "by_",
        "basis",
        "institution",
        "physician",
        "technology",
        "jurisdiction",
        "target",
        "record",
        "summary",
    )

    def create(self, db: Database, c: Cursor) -> None:
        t = db.table(self.table)
        c.execute(
            f"CREATE TABLE IF NOT EXISTS {t} (position {db.bigint} PRIMARY KEY, decision_id TEXT NOT NULL, "
            "kind TEXT NOT NULL, effective TEXT NOT NULL, by_ TEXT NOT NULL, basis TEXT, institution TEXT, "
            "physician TEXT, technology TEXT, jurisdiction TEXT, target TEXT, record TEXT NOT NULL, "
            "summary TEXT NOT NULL)"
        )
        c.execute(f"CREATE INDEX IF NOT EXISTS {self.table}_decision_id ON {t} (decision_id, effective)")
        for _, sql in self.deferrable_indexes(db):
            c.execute(sql)

    def deferrable_indexes(self, db: Database) -> list[tuple[str, str]]:
        # ``decision_id``'s index is not among them: ``process`` finds what a correction is about by it.
        t = db.table(self.table)
        return [
            (f"{self.table}_{col}", f"CREATE INDEX IF NOT EXISTS {self.table}_{col} ON {t} ({col}, effective)")
            for col in ("institution", "physician", "technology", "jurisdiction")
        ]

    def drop(self, db: Database, c: Cursor) -> None:
        c.execute(f"DROP TABLE IF EXISTS {db.table(self.table)}")

    def process(self, db: Database, c: Cursor, batch: Sequence[tuple[int, DecisionRecord]]) -> None:
        t = db.table(self.table)
        first, last = batch[0][0], batch[-1][0]
        jurisdiction = dict(
            c.execute(
                f"SELECT position, jurisdiction FROM {db.table('ledger_decisions')} WHERE position BETWEEN ? AND ?",
                (first, last),
            ).fetchall()
        )
        subjects: dict[str, tuple[Any, ...]] = {}
        rows = []
        for position, record in batch:
            f = record.fields
            target = None
            if record.kind in CORRECTION_KINDS:
                target = str(f.get("corrects") or f.get("retracts"))
                about = (
                    subjects.get(target)
                    or c.execute(
                        f"SELECT institution, physician, technology FROM {t} WHERE decision_id = ?", (target,)
                    ).fetchone()
                    or (None, None, None)
                )
            else:
                technology = f.get("technology")
                if record.kind.startswith("technology."):
                    technology = f"{f['catalog']}:{f['code']}"
                about = (f.get("institution"), f.get("physician") or f.get("technical_lead"), technology)
            subjects[record.id] = about
            rows.append(
                (
                    position,
                    record.id,
                    record.kind,
                    record.effective.isoformat(),
                    record.by,
                    record.basis,
                    *about,
                    jurisdiction.get(position),
                    target,
                    record_text(record),
                    summarise(record),
                )
            )
        c.insert_many(t, self.columns, ("bigint", *("text" for _ in self.columns[1:])), rows)


def trail_projections() -> Iterable[Projection]:
    return [TrailProjection()]
