"""Which read models a ledger's views are made of: the core's and those its plugins contribute."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pluggy

from ledger.application import LedgerApplication
from ledger.decisions import DecisionRecord
from projections.catalog import CatalogProjection
from projections.disclosure import disclosure_projections
from projections.runner import Projection, Runner
from projections.trail import TrailProjection


def builtin_projections(pm: pluggy.PluginManager | None = None) -> list[Projection]:
    """The core's views; with ``pm``, the filings keep the public notice its plugins read."""
    return [CatalogProjection(), *disclosure_projections(_notice_of(pm) if pm else None), TrailProjection()]


def _notice_of(pm: pluggy.PluginManager) -> Callable[[DecisionRecord], tuple[date, date] | None]:
    def notice(record: DecisionRecord) -> tuple[date, date] | None:
        answers = [a for a in pm.hook.ledger_public_notice(decision=record) if a is not None]
        return min(answers) if answers else None

    return notice


def all_projections(pm: pluggy.PluginManager) -> list[Projection]:
    """Built-in projections and those plugins contribute, sorted by name."""
    extra = [p for contributed in pm.hook.ledger_projections() for p in contributed or ()]
    return sorted([*builtin_projections(pm), *extra], key=lambda p: p.name)


def catch_up(app: LedgerApplication) -> int:
    """Bring every projection up to the end of the log (after a write)."""
    return Runner(app, all_projections(app.plugins)).catch_up()
