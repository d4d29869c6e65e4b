"""``ledger hunan deadlines``: each Hunan institution's filing deadlines, and where each one stands.

A hospital's quality office (and the 市州 authority) asks, for every restricted technology the
institution uses: when was the first case, by when must it be filed (15 working days, HN-2018#二(二);
2019-01-31 for uses under way before HN-2018, HN-2018#六(一)), was it filed, and if not, how many
working days are left. Built on the views (``projections.views.Views``): the trail gives each use's
cases and filings, and each use's filing clock is ``projections.clock``'s — the one the national
rules judge by (the standing of the use, Hunan's deadlines overriding the national ones, Hunan's
calendar) — so this list cannot disagree with the trail's findings.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import click

from ledger import CalendarError
from plugins.hunan.rules import MTM2018_START
from projections import Clock, Named, emit, filing_clock, format_option, open_views, option_day, time_options

if TYPE_CHECKING:
    from projections import Facts, Views

COLUMNS = (
    "institution",
    "institution_name",
    "technology",
    "technology_name",
    "first_case",
    "due",
    "filed",
    "status",
    "article",
)


def deadline_rows(
    views: Views, *, institution: str | None, as_of: date, known_at: int | str | None = None
) -> list[dict[str, Any]]:
    """One row per use of a restricted technology by a Hunan institution, as of ``as_of``: the filing
    clock of the use (``projections.clock``, on the standing of the use and the plugins' deadlines),
    the one the national rules judge by, so the list and the findings never disagree."""
    n = views.position_at(known_at)
    names = {i.institution: i.name for i in views.institutions("hunan", as_of=as_of, known_at=n)}
    institutions = [institution] if institution is not None else sorted(names)
    catalogues: dict[date, dict[str, str]] = {}

    def technology_name(technology: str, day: date) -> str:
        if day not in catalogues:
            catalogues[day] = {e.ref: e.name for e in views.catalog("hunan", as_of=day, known_at=n)}
        return catalogues[day].get(technology, "")

    rows = []
    for inst in institutions:
        facts = views.facts_for(inst, as_of=as_of, known_at=n)
        if facts.jurisdiction != "hunan":
            continue
        for (_, technology), use in sorted(facts.uses.items()):
            clock = filing_clock(facts, use, technology, MTM2018_START)
            if clock is None:
                continue
            row = _row(facts, clock, use.cases[0].record.effective, names.get(inst, ""), as_of)
            started = clock.first_case.record.effective if clock.first_case else clock.by or as_of
            row["technology_name"] = technology_name(technology, as_of) or technology_name(technology, started)
            rows.append(row)
    return rows


def _row(facts: Facts, clock: Clock, first_used: date, institution_name: str, as_of: date) -> dict[str, Any]:
    """Where one clock stands on ``as_of``: due, filed (the first submission, as MTM-2018#11 and
    HN-2018#二(二) count it), and on time, late, overdue or open."""
    first_filing = clock.first_filing
    filed = first_filing.record.effective if first_filing else None
    first_case = clock.first_case.record.effective if clock.first_case else None
    row: dict[str, Any] = {
        "institution": clock.institution,
        "institution_name": institution_name,
        "technology": clock.technology,
        "first_case": f"{first_used} (under way before HN-2018)" if clock.grandfathered else str(first_case or ""),
        "filed": filed.isoformat() if filed else "",
        "article": clock.article,
    }
    try:
        due = clock.due(facts)
        late = clock.past_due(facts, filed or as_of)
    except CalendarError as e:
        row.update(due="", status=f"cannot count: {str(e).split('. This calendar')[0]}")
        return row
    row["due"] = due.isoformat()
    if filed is not None:
        row["status"] = "filed late" if late else "filed on time"
    elif late:
        gone = "stop unless filed (grandfather date passed)"
        row["status"] = gone if clock.grandfathered else "overdue: no filing yet"
    elif clock.grandfathered:
        row["status"] = "open"
    else:
        try:  # working days still open, today included: as_of … due
            left = facts.calendar().workdays_between(as_of - timedelta(days=1), due)
        except CalendarError as e:
            row["status"] = f"open (cannot count the days left: {str(e).split('. This calendar')[0]})"
            return row
        row["status"] = f"open: {left} working day{'s' if left != 1 else ''} left"
    return row


@click.group("hunan")
def hunan_group() -> None:
    """Hunan (HN-2018, 湘卫医发〔2018〕11号)."""


@hunan_group.command("deadlines")
@click.option(
    "--institution",
    type=Named("institution"),
    help="one institution, by licence number or name (default: every Hunan institution)",
)
@time_options
@format_option
@click.pass_context
def deadlines_command(
    ctx: click.Context, institution: str | None, as_of: str | None, known_at: str | None, fmt: str
) -> None:
    """Filing deadlines of restricted technologies (HN-2018#二(二), #六(一)) and where each stands.

    \b
    Example:
      ledger hunan deadlines --institution 44860321X43010211A1001 --as-of 2019-06-30
    """
    day = option_day(as_of, "--as-of") or date.today()
    rows = deadline_rows(open_views(ctx), institution=institution, as_of=day, known_at=known_at)
    emit(rows, COLUMNS, fmt)
