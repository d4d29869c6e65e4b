"""What a bitemporal row of a view holds, and how a timeline of states becomes rows.

A row is in force on ``[valid_from, valid_to)`` and held true on ``[known_from, known_to)``
(ARCHITECTURE.md rule 3); a row still in force has ``valid_to == FOREVER``, one still held true
``known_to == NOW``. Values are stored as text so that the comparisons stay indexed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from ledger import canonical

FOREVER = "9999-12-31"
"""``valid_to`` of a row still in force; a date string so that comparisons stay indexed."""
NOW = 2**62
"""``known_to`` of a row the ledger still holds true."""


@dataclass(frozen=True)
class TimelineRow:
    """One state of a key, in force on ``[valid_from, valid_to)``."""

    valid_from: date
    valid_to: date | None
    values: tuple[Any, ...]


def intervals(states: Sequence[tuple[date, tuple[Any, ...] | None]]) -> list[TimelineRow]:
    """Rows from a sequence of (day, state) changes; ``None`` means "not in the list"."""
    rows: list[TimelineRow] = []
    for i, (day, state) in enumerate(states):
        # Several changes on one day: the last one stands.
        if i + 1 < len(states) and states[i + 1][0] == day:
            continue
        if rows and rows[-1].valid_to is None:
            last = rows[-1]
            if last.values == state:
                continue
            rows[-1] = TimelineRow(last.valid_from, day, last.values)
        if state is not None:
            rows.append(TimelineRow(day, None, state))
    return rows


def row_sort_key(row: tuple[Any, ...]) -> tuple[str, ...]:
    """The order new rows are opened in: by their stored values, None first."""
    return tuple("" if v is None else str(v) for v in row)


def stored_row(row: TimelineRow) -> tuple[Any, ...]:
    """``row`` as stored: ``valid_from``, ``valid_to`` and its values as text (``stored_text``)."""
    return (
        row.valid_from.isoformat(),
        row.valid_to.isoformat() if row.valid_to else FOREVER,
        *(None if v is None else stored_text(v) for v in row.values),
    )


def stored_text(value: Any) -> str:
    """A value as a view's column stores it: a string as it is, anything else its canonical JSON."""
    if isinstance(value, str):
        return value
    return canonical.dumps(value)
