"""medtech-ledger: an event-sourced audit ledger of medical-technology regulation in China.

The public API is small and explicit: open a ledger, record decisions, read them back.

>>> from ledger import LedgerApplication
>>> app = LedgerApplication.open("ledger.sqlite")        # or "postgresql://…"
>>> app.import_lines(open("decisions.jsonl", "rb"), source="decisions.jsonl")
"""

from ledger.application import ImportResult, LedgerApplication, RecordedDecision
from ledger.decisions import DecisionRecord, parse_line
from ledger.errors import LedgerError
from ledger.hookspecs import hookimpl
from ledger.jurisdictions import Jurisdiction

__all__ = [
    "DecisionRecord",
    "ImportResult",
    "Jurisdiction",
    "LedgerApplication",
    "LedgerError",
    "RecordedDecision",
    "hookimpl",
    "parse_line",
]
__version__ = "0.1.0"
