"""The projection runner: consumes the log in order, keeps each view's position, rebuilds from zero.

One module per part: ``tracking`` (the ``Runner``: tracked positions, catch-up in batches, rebuild,
follow), ``projection`` (``Projection`` and the bitemporal ``TimelineProjection``), ``log``
(pages of records and records read back by position) and ``rows`` (what a stored row holds).
"""

from __future__ import annotations

from ledger.application import CORRECTION_KINDS as CORRECTION_KINDS
from projections.runner.log import (
    BATCH,
    BATCH_REBUILD,
    LogReader,
    decision_from_state,
    record_text,
    stored_decision,
)
from projections.runner.log import _kind as _kind
from projections.runner.projection import Projection, TimelineProjection
from projections.runner.rows import FOREVER, NOW, TimelineRow, intervals, stored_text
from projections.runner.tracking import Runner

__all__ = [
    "BATCH",
    "BATCH_REBUILD",
    "FOREVER",
    "NOW",
    "LogReader",
    "Projection",
    "Runner",
    "TimelineProjection",
    "TimelineRow",
    "decision_from_state",
    "intervals",
    "record_text",
    "stored_decision",
    "stored_text",
]
