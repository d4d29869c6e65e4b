"""Views as text: one table for people, JSON or CSV for programs, the same everywhere.

The command line and plugins' commands print through ``emit`` so that every table lines up with
Chinese text (full-width characters take two columns) and every CSV is safe to open in a
spreadsheet: RFC 4180 line ends, and cells a spreadsheet would run as a formula neutralised.

What people read shows every character that is there. Stored texts are kept exactly, but a table
(and a published page, through ``visible``) writes control characters (C0, C1), bidirectional
overrides and isolates, zero-width and other invisible format characters as escapes
(``\\u202e``): a name cannot reverse the text after it, hide a character or drive the terminal.
JSON and CSV are for programs and stay exact (JSON escapes what it must; CSV quotes cells that
hold a line end and neutralises formulas only).
"""

from __future__ import annotations

import csv
import re
import sys
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal
from typing import IO, Any

from ledger import canonical
from projections.runner import FOREVER

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
END_OF_TIME = date.fromisoformat(FOREVER)
"""Where the views' rows still in force end (``valid_to``): not a day anything is in force on."""

INVISIBLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\xad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e"
    "\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ud800-\udfff\ufeff\ufff9-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0001\U000e0020-\U000e007f]"
)
"""Characters a reader cannot see as themselves: Unicode's controls (Cc), format characters (Cf:
bidi overrides and isolates, zero-width joiners and spaces, the BOM, tags), line and paragraph
separators (Zl, Zp) and lone surrogates (Cs). A class, not a per-character lookup, so that a
table of many rows costs one regex scan per cell."""


def display_width(text: str) -> int:
    """Columns ``text`` takes in a terminal: full-width (CJK) characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def visible(text: str) -> str:
    """``text`` with every ``INVISIBLE`` character written as its Python escape (``\\x85``,
    ``\\u202e``, ``\\n``): for tables and pages, never for what a program reads."""
    if not INVISIBLE.search(text):
        return text
    return INVISIBLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


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


def shown_cell(value: Any) -> str:
    """A value as one cell of a table for people: ``cell_text`` made ``visible``."""
    return visible(cell_text(value))


def safe_csv(text: str) -> str:
    """Neutralise cells a spreadsheet would execute as a formula (CSV injection)."""
    return "'" + text if text.startswith(FORMULA_START) else text


def emit(rows: Iterable[dict[str, Any]], columns: Sequence[str], fmt: str, out: IO[str] | None = None) -> None:
    """Print ``rows`` as a table (people), or a JSON array, JSON Lines or CSV (programs).

    JSON, JSON Lines and CSV are written row by row as ``rows`` yields them: a long log streams
    in constant memory, its first row out at once. (The JSON array has the bytes of
    ``canonical.dumps`` of the whole list.) A table needs every row to size its columns."""
    out = out or sys.stdout
    if fmt in ("json", "jsonl"):
        _emit_json(rows, columns, out, lines=fmt == "jsonl")
        return
    if fmt == "csv":
        # A byte-order mark wherever a CSV goes (stdout too): a spreadsheet then reads it as UTF-8.
        out.write("\ufeff")
        # CRLF rows (RFC 4180): a cell holding a bare CR or LF is then quoted, so it cannot end a row
        # and smuggle an unneutralised formula into a new cell.
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(columns)
        for r in rows:
            writer.writerow([safe_csv(cell_text(r.get(c))) for c in columns])
        return
    rows = list(rows)
    headings = [visible(c) for c in columns]
    cells = [[shown_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max([display_width(h)] + [display_width(row[i]) for row in cells]) for i, h in enumerate(headings)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v + " " * (w - display_width(v)) for v, w in zip(values, widths, strict=True)).rstrip()

    out.write(line(headings) + "\n")
    out.write(line(["-" * w for w in widths]) + "\n")
    for row in cells:
        out.write(line(row) + "\n")
    if not rows:
        out.write("(none)\n")


def _emit_json(rows: Iterable[dict[str, Any]], columns: Sequence[str], out: IO[str], *, lines: bool) -> None:
    """Each row as one canonical JSON object: one per line, or the items of one array."""
    sep, end = ("", "\n") if lines else (",", "")
    if not lines:
        out.write("[")
    for i, r in enumerate(rows):
        out.write((sep if i else "") + canonical.dumps({c: r.get(c) for c in columns}) + end)
    if not lines:
        out.write("]\n")
