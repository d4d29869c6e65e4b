"""An institution's surgical grading catalogue (手术分级管理目录) as of a day, for its 院务公开 (MTM-2018#24).

MTM-2018#18 has each institution keep a catalogue of its procedures graded 一级…四级 (MTM-2009#38's four
levels), #15(2) has its management body set it, and #24 publishes it. The catalogue enters the ledger
as ``grading_catalogue.published``; ``disclosure.GradingCataloguesProjection`` keeps the one in force
per institution on both time axes, and ``grading_catalogue`` reads it — the institution page of the
site asks here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from projections.views import Views


@dataclass(frozen=True)
class GradedProcedure:
    name: str
    grade: int
    """1–4 (一级…四级, MTM-2009#38)."""


@dataclass(frozen=True)
class GradingCatalogue:
    institution: str
    version: str | None
    since: date
    """The day the catalogue in force took effect."""
    decision: str
    procedures: tuple[GradedProcedure, ...]
    """By grade, highest first, then by name."""


def grading_catalogue(
    views: Views, institution: str, *, as_of: date | None = None, known_at: int | str | datetime | None = None
) -> GradingCatalogue | None:
    """The catalogue of ``institution`` in force on ``as_of`` as known at ``known_at`` (None: none published)."""
    day, n = views._when(as_of, known_at)
    rows = views._rows(
        "view_grading_catalogues", ("procedures", "version", "decision"), "institution = ?", (institution,), day, n
    )
    if not rows:
        return None
    procedures, version, decision, since = rows[0]
    graded = json.loads(procedures) if procedures else {}
    return GradingCatalogue(
        institution=institution,
        version=version,
        since=date.fromisoformat(since),
        decision=decision,
        procedures=tuple(
            sorted(
                (GradedProcedure(name, int(grade)) for name, grade in graded.items()), key=lambda p: (-p.grade, p.name)
            )
        ),
    )
