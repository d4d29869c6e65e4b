"""The questions regulators, hospitals and inspectors ask, answered from the views.

``Views(app)`` is the read side's public API (plugins' reports and commands use it too). Every
question takes ``as_of`` (valid time: what was in force that day; default today) and ``known_at``
(record time: a position, or a timestamp resolved to the last position recorded by then; default
now). Each answer is one indexed select over bitemporal rows (ARCHITECTURE.md rule 3); the views
catch up with the log before answering, so they never lag a write.

``Views`` is one class made of one part per concern, each in its module: ``base`` (time, the
select, jurisdictions), ``registers`` (catalogue, institutions, names), ``context`` (what the rules
see: rules, deadlines, calendars, facts), ``lists`` (the disclosure lists) and ``trails``.
"""

from __future__ import annotations

from projections.views.lists import Lists
from projections.views.models import all_projections, builtin_projections, catch_up
from projections.views.rows import (
    CaseCount,
    FilingRow,
    InstitutionRow,
    PrivilegeRow,
    Trail,
    TrailEntry,
    TraineeRow,
    TrainingBaseRow,
)
from projections.views.trails import Trails

__all__ = [
    "CaseCount",
    "FilingRow",
    "InstitutionRow",
    "PrivilegeRow",
    "Trail",
    "TrailEntry",
    "TraineeRow",
    "TrainingBaseRow",
    "Views",
    "all_projections",
    "builtin_projections",
    "catch_up",
]


class Views(Lists, Trails):
    """Read the views of one ledger (see the module docstring)."""
