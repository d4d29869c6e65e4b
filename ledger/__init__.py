"""medtech-ledger: an event-sourced audit ledger of medical-technology regulation in China.

The public API is small and explicit: open a ledger, record decisions, read them back — and, for
plugin authors (docs/plugins.md), the names a regime or province is written with. Import them from
here (``from ledger import hookimpl, Jurisdiction``): the modules that define them are the ledger's
own business and may move.

>>> from ledger import LedgerApplication
>>> app = LedgerApplication.open("ledger.sqlite")        # or "postgresql://…"
>>> app.import_lines(open("decisions.jsonl", "rb"), source="decisions.jsonl")
"""

from ledger.application import ImportResult, LedgerApplication, RecordedDecision
from ledger.competence import Body, Competence, Registry, normal, registry
from ledger.decisions import DecisionRecord, parse_line
from ledger.errors import (
    CalendarError,
    ConfigurationError,
    DecisionError,
    LedgerError,
    MalformedDecision,
    NotFound,
    PluginError,
)
from ledger.hookspecs import (
    ContributedDeadline,
    ContributedProjection,
    ContributedReport,
    ContributedRule,
    hookimpl,
)
from ledger.jurisdictions import NATIONAL, Jurisdiction
from ledger.plugins import make_plugin_manager, plugin_manager
from ledger.workdays import WorkdayCalendar, YearSchedule, load_year_dir

__all__ = [
    "NATIONAL",
    "Body",
    "CalendarError",
    "Competence",
    "ConfigurationError",
    "ContributedDeadline",
    "ContributedProjection",
    "ContributedReport",
    "ContributedRule",
    "DecisionError",
    "DecisionRecord",
    "ImportResult",
    "Jurisdiction",
    "LedgerApplication",
    "LedgerError",
    "MalformedDecision",
    "NotFound",
    "PluginError",
    "RecordedDecision",
    "Registry",
    "WorkdayCalendar",
    "YearSchedule",
    "hookimpl",
    "load_year_dir",
    "make_plugin_manager",
    "normal",
    "parse_line",
    "plugin_manager",
    "registry",
]
__version__ = "0.1.0"
