"""Read models rebuilt from the log alone: catalogues, disclosure lists, inspection trails.

What a plugin's rules, reports and commands are written with (docs/plugins.md) is exported here:
import it from ``projections``, not from the modules that define it, which may move.
"""

from typing import TYPE_CHECKING

from projections.clock import Clock, filing_clock
from projections.commandline import FORMATS, format_option, open_app, open_views, option_day, parse_day, time_options
from projections.facts import Facts, Standing, Use
from projections.findings import Deadline, Finding, Rule, Severity
from projections.lookup import Named
from projections.ordering import pinyin_key
from projections.output import emit
from projections.replay import Resolved, resolve
from projections.reports import Column, Option, Report, Table
from projections.runner import Projection
from projections.standing import UseMachine
from projections.views import (
    CaseCount,
    FilingRow,
    InstitutionRow,
    PrivilegeRow,
    Trail,
    TrailEntry,
    TraineeRow,
    TrainingBaseRow,
    Views,
)

__all__ = [
    "FORMATS",
    "CaseCount",
    "Clock",
    "Column",
    "Deadline",
    "Facts",
    "FilingRow",
    "Finding",
    "InstitutionRow",
    "Named",
    "Option",
    "PrivilegeRow",
    "Projection",
    "Report",
    "Resolved",
    "Rule",
    "Severity",
    "Standing",
    "Table",
    "Trail",
    "TrailEntry",
    "TraineeRow",
    "TrainingBaseRow",
    "Use",
    "UseMachine",
    "Views",
    "emit",
    "filing_clock",
    "format_option",
    "open_app",
    "open_views",
    "option_day",
    "parse_day",
    "pinyin_key",
    "resolve",
    "time_options",
]

if TYPE_CHECKING:  # the read side's classes have the shape the core's hooks declare (mypy checks it)
    from ledger.hookspecs import ContributedDeadline, ContributedProjection, ContributedReport, ContributedRule

    def _shapes(
        rule: Rule, deadline: Deadline, projection: Projection, report: Report
    ) -> tuple[ContributedRule, ContributedDeadline, ContributedProjection, ContributedReport]:
        return rule, deadline, projection, report
