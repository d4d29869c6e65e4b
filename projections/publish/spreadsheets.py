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


def write_xlsx(table: Table, path: Path | str | IO[bytes]) -> None:
    """Write ``table`` (and its ``sheets``) as an XLSX workbook laid out like the official form.

    Each sheet: the header lines above (the first as the form's title, merged across the
    columns), the column headings, then the rows, with each ``Column``'s number format (``@``
    keeps ``20190514`` as text) and width. Text is always stored as text, never as a formula, so a
    name that starts with ``=`` cannot run in the regulator's spreadsheet.
    """
    from openpyxl import Workbook  # type: ignore[import-untyped]
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE  # type: ignore[import-untyped]
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Side  # type: ignore[import-untyped]
    from openpyxl.utils import get_column_letter  # type: ignore[import-untyped]

    thin = Side(style="thin", color="808080")
    border = Border(left=thin, right=thin, top=thin, bottom=thin)
    taken: set[str] = set()
    wb = Workbook()
    wb.properties.creator = "medtech-ledger"

    def fill(ws: Any, t: Table, title: str) -> None:
        ws.title = _sheet_title(title, taken)
        columns: Sequence[Column] = t.columns
        width = max(len(columns), 1)
        row = 1
        for i, line in enumerate(t.header_lines):
            cell = ws.cell(row=row, column=1, value=ILLEGAL_CHARACTERS_RE.sub("", line))
            cell.data_type = "s"
            if i == 0:
                cell.font = Font(bold=True, size=14)
                cell.alignment = Alignment(horizontal="center", vertical="center")
                ws.row_dimensions[row].height = 24
            if width > 1:
                ws.merge_cells(start_row=row, start_column=1, end_row=row, end_column=width)
            row += 1
        heading_row = row
        for c, column in enumerate(columns, start=1):
            cell = ws.cell(row=row, column=c, value=column.name)
            cell.data_type = "s"
            cell.font = Font(bold=True)
            cell.fill = PatternFill("solid", fgColor="E8ECF2")
            cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
            cell.border = border
        widths = [display_width(c.name) for c in columns]
        for values in t.rows:
            row += 1
            for c, column in enumerate(columns, start=1):
                value = _xlsx_value(values.get(column.key))
                if isinstance(value, str):
                    value = ILLEGAL_CHARACTERS_RE.sub("", value)
                cell = ws.cell(row=row, column=c, value=value)
                if isinstance(value, str):
                    cell.data_type = "s"  # never a formula (openpyxl reads a leading = as one)
                if column.number_format:
                    cell.number_format = column.number_format
                elif isinstance(value, datetime):
                    cell.number_format = "yyyy-mm-dd hh:mm:ss"
                elif isinstance(value, date):
                    cell.number_format = "yyyy-mm-dd"
                cell.border = border
                shown = value.isoformat() if isinstance(value, (date, datetime)) else str(value or "")
                widths[c - 1] = max(widths[c - 1], display_width(shown))
        for c, column in enumerate(columns, start=1):
            ws.column_dimensions[get_column_letter(c)].width = column.width or min(max(widths[c - 1] + 2, 8), 60)
        ws.freeze_panes = ws.cell(row=heading_row + 1, column=1)
        if t.rows and columns:
            ws.auto_filter.ref = f"A{heading_row}:{get_column_letter(len(columns))}{row}"
        ws.print_title_rows = f"{heading_row}:{heading_row}"

    fill(wb.active, table, table.title)
    for name, sheet in table.sheets.items():
        fill(wb.create_sheet(), sheet, name)
    try:
        wb.save(path if not isinstance(path, Path) else str(path))
    except OSError as e:
        msg = f"cannot write {path}: {e.strerror}"
        raise ConfigurationError(msg) from e
