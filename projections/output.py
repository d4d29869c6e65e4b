"""Views as text: one table for people, JSON or CSV for programs, the same everywhere.

The command line and plugins' commands print through ``emit`` so that every table lines up with
Chinese text (full-width characters take two columns) and every CSV is safe to open in a
spreadsheet: RFC 4180 line ends, and cells a spreadsheet would run as a formula neutralised.
"""

from __future__ import annotations

import csv
import sys
import unicodedata
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import IO, Any

from ledger import canonical

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def display_width(text: str) -> int:
    """Columns ``text`` takes in a terminal: full-width (CJK) characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def cell_text(value: Any) -> str:
    """A value as one table or CSV cell."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(cell_text(v) for v in value)
    if isinstance(value, dict):
        return canonical.dumps(value)
    if isinstance(value, (date, Decimal)):
        return str(value)
    return str(value)


def safe_csv(text: str) -> str:
    """Neutralise cells a spreadsheet would execute as a formula (CSV injection)."""
    return "'" + text if text.startswith(FORMULA_START) else text


def emit(rows: Sequence[dict[str, Any]], columns: Sequence[str], fmt: str, out: IO[str] | None = None) -> None:
    """Print ``rows`` as a table (people), JSON Lines-free JSON array, or CSV (programs)."""
    out = out or sys.stdout
    if fmt == "json":
        out.write(canonical.dumps([{c: r.get(c) for c in columns} for r in rows]) + "\n")
        return
    if fmt == "csv":
        # CRLF rows (RFC 4180): a cell holding a bare CR or LF is then quoted, so it cannot end a row
        # and smuggle an unneutralised formula into a new cell.
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(columns)
        for r in rows:
            writer.writerow([safe_csv(cell_text(r.get(c))) for c in columns])
        return
    cells = [[cell_text(r.get(c)) for c in columns] for r in rows]
    widths = [max([display_width(c)] + [display_width(row[i]) for row in cells]) for i, c in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v + " " * (w - display_width(v)) for v, w in zip(values, widths, strict=True)).rstrip()

    out.write(line(list(columns)) + "\n")
    out.write(line(["-" * w for w in widths]) + "\n")
    for row in cells:
        out.write(line(row) + "\n")
    if not rows:
        out.write("(none)\n")
