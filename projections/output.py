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
import os
import re
import shutil
import sys
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal
from typing import IO, Any

from ledger import canonical
from projections import i18n
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


def emit(
    rows: Iterable[dict[str, Any]],
    columns: Sequence[str],
    fmt: str,
    out: IO[str] | None = None,
    *,
    drop: Sequence[str] = (),
    table: str | None = None,
) -> None:
    """Print ``rows`` as a table (people), or a JSON array, JSON Lines or CSV (programs).

    JSON, JSON Lines and CSV are written row by row as ``rows`` yields them: a long log streams
    in constant memory, its first row out at once. (The JSON array has the bytes of
    ``canonical.dumps`` of the whole list.) A table needs every row to size its columns; it
    speaks the language of ``i18n`` and fits ``table_width``, leaving out columns in ``drop``'s
    order when wrapping is not enough; ``table`` names it for headings of its own (``i18n.heading``)."""
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
    _table(list(rows), columns, out, drop, table)


TRANSLATED = frozenset({"status", "class", "severity"})
"""Columns whose values are words people read (statuses, classes, severities): translated in tables."""
MIN_WIDTH = 14
"""The narrowest a column is wrapped to (unless narrower already) before columns are left out
beyond a table's ``drop`` list."""
SHORT = 24
"""Columns at most this wide (dates, codes, licence numbers, names) are not wrapped while a column
of the ``drop`` list can be left out instead."""
GAP = "  "


def table_width(out: IO[str]) -> int | None:
    """How wide a table may be: ``COLUMNS`` when set, else the terminal's width when ``out`` is
    one; None (no limit) when writing to a file or a pipe, which nobody reads wrapped."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    isatty = getattr(out, "isatty", None)
    if isatty is not None and isatty():
        return shutil.get_terminal_size().columns
    return None


def _shown(row: dict[str, Any], column: str) -> str:
    """A cell as people read it: translated where it is a word of the ledger's, made ``visible``."""
    value = row.get(column)
    if column == "message" and isinstance(value, str) and isinstance(row.get("rule"), str):
        return visible(i18n.finding(row["rule"], value))
    if column in TRANSLATED and isinstance(value, str):
        return visible(i18n.value(value))
    return shown_cell(value)


def _table(
    rows: list[dict[str, Any]], columns: Sequence[str], out: IO[str], drop: Sequence[str], table: str | None = None
) -> None:
    """A table for people, as wide as ``table_width`` allows: the widest columns wrapped first,
    then columns left out in ``drop``'s order (said below the table) when wrapping is not enough."""
    kept = list(columns)
    headings = {c: visible(i18n.heading(c, table)) for c in columns}
    cells = [{c: _shown(r, c) for c in columns} for r in rows]
    natural = {c: max([display_width(headings[c])] + [display_width(r[c]) for r in cells]) for c in columns}
    limit = table_width(out)
    left_out: list[str] = []
    floors = {c: _roomy(w) for c, w in natural.items()}
    if limit is not None:
        spare = [c for c in drop if c in natural]
        tight = {c: min(w, MIN_WIDTH) for c, w in natural.items()}
        while _narrowest(kept, floors) > limit:
            if not spare and floors != tight:
                floors = tight  # every column in ``drop`` left out: wrap harder before leaving out more
                continue
            if not spare and len(kept) == 1:
                break
            gone = spare.pop(0) if spare else kept[-1]
            kept.remove(gone)
            left_out.append(gone)
    widths = _fit([natural[c] for c in kept], [floors[c] for c in kept], limit)

    def lines(values: Sequence[str]) -> list[str]:
        wrapped = [wrap(v, w) for v, w in zip(values, widths, strict=True)]
        height = max(len(w) for w in wrapped)
        return [
            GAP.join(
                (part[i] if i < len(part) else "") + " " * (w - display_width(part[i] if i < len(part) else ""))
                for part, w in zip(wrapped, widths, strict=True)
            ).rstrip()
            for i in range(height)
        ]

    body = [*lines([headings[c] for c in kept]), GAP.join("-" * w for w in widths)]
    for row in cells:
        body.extend(lines([row[c] for c in kept]))
    out.write("\n".join(body) + "\n")
    if not rows:
        out.write(i18n.message("(none)") + "\n")
    if left_out:
        note = (
            "columns left out for the width of the terminal: {columns} "
            "(--format csv or json shows them all; or widen COLUMNS)"
        )
        said = i18n.message(note).format(columns=", ".join(headings[c] for c in left_out))
        out.write("\n".join(wrap(said, limit) if limit else [said]) + "\n")


def _roomy(width: int) -> int:
    """How narrow a column of ``width`` is wrapped while columns may still be left out instead:
    short ones (dates, codes, licence numbers, names) not at all, long texts to a third."""
    return width if width <= SHORT else max(MIN_WIDTH, width // 3)


def _narrowest(kept: Sequence[str], floors: dict[str, int]) -> int:
    """The width of a table of ``kept`` with every column wrapped as narrow as ``floors``."""
    return sum(floors[c] for c in kept) + len(GAP) * (len(kept) - 1)


def _fit(natural: list[int], floors: list[int], limit: int | None) -> list[int]:
    """Column widths within ``limit``: the widest narrowed first, none below its floor, so that
    short columns stay whole and long texts wrap."""
    widths = list(natural)
    if limit is None:
        return widths
    excess = sum(widths) + len(GAP) * (len(widths) - 1) - limit
    while excess > 0:
        shrinkable = [k for k in range(len(widths)) if widths[k] > floors[k]]
        if not shrinkable:
            break
        i = max(shrinkable, key=lambda k: widths[k])
        widths[i] -= 1
        excess -= 1
    return widths


def wrap(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` terminal columns, broken where a line may break (after
    a space, beside a Chinese character) if that keeps most of the line, else between any two
    characters; never an empty list."""
    if display_width(text) <= width:
        return [text]
    out: list[str] = []
    line, used, may_break = "", 0, 0
    for ch in text:
        w = display_width(ch)
        if used + w > width and line:
            if may_break and display_width(line[may_break:]) <= width // 2:
                out.append(line[:may_break].rstrip(" "))
                line = line[may_break:].lstrip(" ")
            else:
                out.append(line)
                line = ""
            used, may_break = display_width(line), 0
        if line and (w == 2 or line[-1] == " " or display_width(line[-1]) == 2):
            may_break = len(line)
        line += ch
        used += w
    out.append(line)
    return out


def _emit_json(rows: Iterable[dict[str, Any]], columns: Sequence[str], out: IO[str], *, lines: bool) -> None:
    """Each row as one canonical JSON object: one per line, or the items of one array."""
    sep, end = ("", "\n") if lines else (",", "")
    if not lines:
        out.write("[")
    for i, r in enumerate(rows):
        out.write((sep if i else "") + canonical.dumps({c: r.get(c) for c in columns}) + end)
    if not lines:
        out.write("]\n")
