"""Newly announced years of China's working-day calendar, as data (LEDGER_CALENDAR_DIR).

``chinese-calendar`` 1.11 knows 2004–2026; every December the State Council announces the next
year's 放假调休安排. Rather than wait for a library upgrade, an operator writes that year's schedule
as a JSON file (format: ``ledger/data/calendars/README.md``) into the directory named by the
environment variable ``LEDGER_CALENDAR_DIR``. The national plugin contributes those years through
``ledger_calendar_years`` for every jurisdiction (the official calendar is national; a province
that adjusts it contributes its own years in its plugin), and a year given there replaces the same
year from the library as a whole.

A directory that is named but missing, or a file that is not a valid schedule, is an error
(``CalendarError``) rather than silently ignored: a deadline resting on a misspelt path would
otherwise be counted on the wrong calendar, or not at all.
"""

from __future__ import annotations

import os
from pathlib import Path

from ledger import YearSchedule, load_year_dir

CALENDAR_DIR_ENV = "LEDGER_CALENDAR_DIR"


def extra_years(environ: os._Environ[str] | dict[str, str] | None = None) -> list[YearSchedule]:
    """The year files in ``$LEDGER_CALENDAR_DIR`` (none when the variable is unset or empty)."""
    env = os.environ if environ is None else environ
    directory = env.get(CALENDAR_DIR_ENV, "").strip()
    if not directory:
        return []
    return load_year_dir(Path(directory))
