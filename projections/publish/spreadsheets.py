"""Spreadsheets: a report's ``Table`` written as an XLSX workbook laid out like the official form,
for regulators who exchange spreadsheets."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from ledger.errors import ConfigurationError
from projections.output import display_width
from projections.reports import Column, Table

_SHEET_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")


def _sheet_title(text: str, taken: set[str]) -> str:
    """An Excel sheet name: at most 31 characters, none of []:*?/\\, unique in the workbook."""
    base = _SHEET_FORBIDDEN.sub("_", text).strip("'") or "Sheet"
    name, n = base[:31], 2
    while name.lower() in taken:
        suffix = f"~{n}"
        name, n = base[: 31 - len(suffix)] + suffix, n + 1
    taken.add(name.lower())
    return name


def _xlsx_value(value: Any) -> Any:
    """A cell value openpyxl stores as data: numbers and dates as such, everything else as text."""
    if value is None or isinstance(value, (bool, int, float, Decimal, datetime, date)):
        return float(value) if isinstance(value, Decimal) else value
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


NIL_RETURN = "本期无填报事项（零报告）"
"""What the sheet of a unit with nothing to report says, so that a nil return is a filed form and
not a missing one."""
FILLED_BY = "填报人："


def write_xlsx(
    table: Table, path: Path | str | IO[bytes], *, filled_by: str | None = None, notes: Sequence[str] = ()
) -> None:
    """Write ``table`` (and its ``sheets``) as an XLSX workbook laid out like the official form.

    Each sheet: the header lines above (the first as the form's title, merged across the
    columns), the column headings, then the rows — or one line saying there is nothing to report
    — with each ``Column``'s number format (``@`` keeps ``20190514`` as text) and width, then the
    notes (注: the table's own, then ``notes``). ``filled_by`` is written after the form's 填报人.
    Printed, a sheet is A4 landscape, one page wide, the headings repeated on every page. Text is
    always stored as text, never as a formula, so a name that starts with ``=`` cannot run in the
    regulator's spreadsheet.
    """
    from openpyxl import Workbook  # type: ignore[import-untyped]

    taken: set[str] = set()
    wb = Workbook()
    wb.properties.creator = "medtech-ledger"
    _fill(wb.active, table, _sheet_title(table.title, taken), filled_by, notes)
    for name, sheet in table.sheets.items():
        _fill(wb.create_sheet(), sheet, _sheet_title(name, taken), filled_by, notes)
    try:
        wb.save(path if not isinstance(path, Path) else str(path))
    except OSError as e:
        msg = f"cannot write {path}: {e.strerror}"
        raise ConfigurationError(msg) from e


def _fill(ws: Any, t: Table, title: str, filled_by: str | None, notes: Sequence[str]) -> None:
    """One sheet: header lines, headings, rows (or the nil line), notes, print setup."""
    from openpyxl.utils import get_column_letter  # type: ignore[import-untyped]

    ws.title = title
    width = max(len(t.columns), 1)
    heading_row = _header(ws, _header_lines(t.header_lines, filled_by), width)
    _headings(ws, t.columns, heading_row)
    last = _rows(ws, t, heading_row) if t.rows else _nil(ws, heading_row + 1, width)
    _notes(ws, [*t.notes, *notes], last + 2, width)
    ws.freeze_panes = ws.cell(row=heading_row + 1, column=1)
    if t.rows and t.columns:
        ws.auto_filter.ref = f"A{heading_row}:{get_column_letter(len(t.columns))}{last}"
    _print_setup(ws, heading_row)


def _header_lines(lines: Sequence[str], filled_by: str | None) -> list[str]:
    """The form's header lines with ``filled_by`` after its 填报人 (or a line of its own)."""
    if not filled_by:
        return list(lines)
    out = [line.replace(FILLED_BY, FILLED_BY + filled_by, 1) for line in lines]
    return out if out != list(lines) else [*out, FILLED_BY + filled_by]


def _text(value: str) -> str:
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE  # type: ignore[import-untyped]

    return str(ILLEGAL_CHARACTERS_RE.sub("", value))


def _header(ws: Any, lines: Sequence[str], width: int) -> int:
    """Write the header lines from row 1, the first as the title; returns the headings' row."""
    from openpyxl.styles import Alignment, Font  # type: ignore[import-untyped]

    for row, line in enumerate(lines, start=1):
        cell = ws.cell(row=row, column=1, value=_text(line))
        cell.data_type = "s"
        if row == 1:
            cell.font = Font(bold=True, size=14)
            cell.alignment = Alignment(horizontal="center", vertical="center")
            ws.row_dimensions[row].height = 24
        if width > 1:
            ws.merge_cells(start_row=row, start_column=1, end_row=row, end_column=width)
    return len(lines) + 1


def _border() -> Any:
    from openpyxl.styles import Border, Side

    thin = Side(style="thin", color="808080")
    return Border(left=thin, right=thin, top=thin, bottom=thin)


def _headings(ws: Any, columns: Sequence[Column], row: int) -> None:
    from openpyxl.styles import Alignment, Font, PatternFill

    for c, column in enumerate(columns, start=1):
        cell = ws.cell(row=row, column=c, value=column.name)
        cell.data_type = "s"
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="E8ECF2")
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        cell.border = _border()


def _rows(ws: Any, t: Table, heading_row: int) -> int:
    """Write the rows under the headings, and size the columns; returns the last row."""
    from openpyxl.utils import get_column_letter

    border = _border()
    widths = [display_width(c.name) for c in t.columns]
    row = heading_row
    for values in t.rows:
        row += 1
        for c, column in enumerate(t.columns, start=1):
            cell = _cell(ws, row, c, column, values.get(column.key))
            cell.border = border
            value = cell.value
            shown = value.isoformat() if isinstance(value, (date, datetime)) else str(value or "")
            widths[c - 1] = max(widths[c - 1], display_width(shown))
    for c, column in enumerate(t.columns, start=1):
        ws.column_dimensions[get_column_letter(c)].width = column.width or min(max(widths[c - 1] + 2, 8), 60)
    return row


def _cell(ws: Any, row: int, c: int, column: Column, raw: Any) -> Any:
    value = _xlsx_value(raw)
    if isinstance(value, str):
        value = _text(value)
    cell = ws.cell(row=row, column=c, value=value)
    if isinstance(value, str):
        cell.data_type = "s"  # never a formula (openpyxl reads a leading = as one)
    if column.number_format:
        cell.number_format = column.number_format
    elif isinstance(value, datetime):
        cell.number_format = "yyyy-mm-dd hh:mm:ss"
    elif isinstance(value, date):
        cell.number_format = "yyyy-mm-dd"
    return cell


def _nil(ws: Any, row: int, width: int) -> int:
    """The one line of a sheet with nothing to report, across the columns; returns its row."""
    from openpyxl.styles import Alignment

    cell = ws.cell(row=row, column=1, value=NIL_RETURN)
    cell.data_type = "s"
    cell.alignment = Alignment(horizontal="center", vertical="center")
    cell.border = _border()
    if width > 1:
        ws.merge_cells(start_row=row, start_column=1, end_row=row, end_column=width)
    return row


def _notes(ws: Any, notes: Sequence[str], row: int, width: int) -> None:
    """注 below the table: one note as ``注：…``, several numbered ``1. …`` under a ``注：`` line."""
    from openpyxl.styles import Alignment

    if not notes:
        return
    lines = [f"注：{notes[0]}"] if len(notes) == 1 else ["注：", *(f"{i}. {n}" for i, n in enumerate(notes, 1))]
    for offset, line in enumerate(lines):
        cell = ws.cell(row=row + offset, column=1, value=_text(line))
        cell.data_type = "s"
        cell.alignment = Alignment(wrap_text=True, vertical="top")
        if width > 1:
            ws.merge_cells(start_row=row + offset, start_column=1, end_row=row + offset, end_column=width)


def _print_setup(ws: Any, heading_row: int) -> None:
    """A4 landscape, one page wide (as many pages tall as it takes), headings on every page."""
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.orientation = ws.ORIENTATION_LANDSCAPE
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_options.horizontalCentered = True
    ws.page_margins.left = ws.page_margins.right = 0.5
    ws.print_title_rows = f"{heading_row}:{heading_row}"
