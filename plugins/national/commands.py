"""``ledger national deadline``: count working days on a jurisdiction's calendar, as the rules do.

An inspector checking a finding by hand asks "what is the 15th working day after 2019-04-22 in
Hunan?" (MTM-2018#11: 2019-05-14, because of the May Day 调休). This answers it on exactly the
calendar the trail uses — China's official calendar, plus the years plugins and
``LEDGER_CALENDAR_DIR`` add — and names the schedules the answer rests on.
"""

from __future__ import annotations

from datetime import date

import click

from ledger import CalendarError, ConfigurationError, WorkdayCalendar, plugin_manager


def calendar_for(jurisdiction: str) -> WorkdayCalendar:
    """The calendar of ``jurisdiction`` as the views build it: China's, plus plugins' years."""
    pm = plugin_manager()
    years = [y for contributed in pm.hook.ledger_calendar_years(jurisdiction=jurisdiction) for y in contributed or ()]
    return WorkdayCalendar.china(sorted(years, key=lambda y: (y.year, y.source)))


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        msg = f"expected a date YYYY-MM-DD, got {value!r}"
        raise ConfigurationError(msg) from None


@click.group("national")
def national_group() -> None:
    """National regimes (MTM-2009, MTM-2018, EVAL-2026): helpers for inspectors."""


@national_group.command("deadline")
@click.argument("start")
@click.option(
    "--days",
    type=click.IntRange(min=1),
    default=15,
    show_default=True,
    help="working days: 15 filing (MTM-2018#11), 3 training base (#29), 5 trainee list / public notice",
)
@click.option("--province", default="national", show_default=True, help="whose calendar (national, hunan, …)")
def deadline_command(start: str, days: int, province: str) -> None:
    """The DAYS-th working day after START (the last day of a DAYS-working-day term).

    \b
    Example:
      ledger national deadline 2019-09-27 --days 3 --province hunan
    """
    calendar = calendar_for(province)
    begin = _date(start)
    try:
        due = calendar.add_workdays(begin, days)
    except CalendarError as e:
        raise ConfigurationError(str(e)) from None
    click.echo(due.isoformat())
    sources = sorted({calendar.schedule(y).source for y in range(begin.year, due.year + 1)})
    click.echo(
        f"{days} working days after {begin} on the {province} calendar; schedules: {'; '.join(sources)}", err=True
    )
