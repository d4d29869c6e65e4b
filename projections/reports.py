"""Reports: tables a regulator exchanges, built from the views, contributed through ``ledger_reports``.

A report is a name, the options it takes, and a function from the views to a ``Table``. The table
carries what an official form needs beyond rows — a title, header lines above the columns, and a
number format per column — so that the CLI can write it as CSV or as an XLSX sheet with the
form's layout, without knowing any province's forms.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from projections.views import Views


@dataclass(frozen=True)
class Column:
    name: str
    """The heading as the official form prints it (``医疗机构名称``)."""
    key: str
    """The key of each row's value."""
    number_format: str | None = None
    """An XLSX number format, e.g. ``@`` to keep ``20190514`` as text."""
    width: int | None = None


@dataclass(frozen=True)
class Table:
    title: str
    columns: Sequence[Column]
    rows: Sequence[Mapping[str, Any]]
    header_lines: Sequence[str] = ()
    """Lines above the column headings (the form's title, the reporting unit, the period)."""
    sheets: Mapping[str, Table] = field(default_factory=dict)
    """Further sheets (e.g. one per city); CSV writes only the main table."""
    notes: Sequence[str] = ()
    """The form's notes (注), printed below its rows in a spreadsheet."""


@dataclass(frozen=True)
class Option:
    """An option of a report on the command line (``--half 2019H1``)."""

    name: str
    help: str
    required: bool = False
    default: str | None = None


@dataclass(frozen=True)
class Report:
    name: str
    """Unique, prefixed with the plugin's jurisdiction (``hunan-filing-summary``)."""
    title: str
    build: Callable[[Views, Mapping[str, str | None]], Table]
    options: Sequence[Option] = ()
    article: str | None = None
