"""``ledger hunan deadlines``: each Hunan institution's filing deadlines, and where each one stands.

A hospital's quality office (and the 市州 authority) asks, for every restricted technology the
institution uses: when was the first case, by when must it be filed (15 working days, HN-2018#二(二);
2019-01-31 for uses under way before HN-2018, HN-2018#六(一)), was it filed, and if not, how many
working days are left. Built on the views (``projections.views.Views``): the trail gives each use's
cases and filings, the catalogue as of the first case says whether it was restricted, and the
counting uses Hunan's calendar as the trail's findings do.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import click

from ledger.application import LedgerApplication
from ledger.errors import CalendarError
from plugins.hunan.rules import DEADLINES, HN_GRANDFATHER, MTM2018_START
from projections.output import emit, option_day

if TYPE_CHECKING:
    from projections.views import TrailEntry, Views

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


def open_views(ctx: click.Context) -> Views:
    """The views of the ledger the ``ledger`` command was pointed at (``--db``), opened once per run.

    The root context's ``obj`` holds ``db`` and, once opened, ``app`` (the CLI's convention), so a
    plugin's command shares the CLI's connection instead of opening a second one.
    """
    from projections.views import Views

    root = ctx.find_root()
    obj = root.ensure_object(dict)
    app = obj.get("app")
    if app is None:
        app = LedgerApplication.open(obj.get("db"))
        obj["app"] = app
        root.call_on_close(app.close)
    return Views(app)


def deadline_rows(
    views: Views, *, institution: str | None, as_of: date, known_at: int | str | None = None
) -> list[dict[str, Any]]:
    """One row per use of a restricted technology by a Hunan institution, as of ``as_of``."""
    entries = views.trail(
        province="hunan", institution=institution, as_of=as_of, known_at=known_at, findings=False
    ).entries
    names = {i.institution: i.name for i in views.institutions("hunan", as_of=as_of, known_at=known_at)}
    uses: dict[tuple[str, str], list[TrailEntry]] = {}
    for e in entries:
        if e.institution and e.technology and e.kind in ("case.performed", "filing.submitted"):
            uses.setdefault((e.institution, e.technology), []).append(e)
    calendar = views.calendar("hunan")
    classes: dict[date, dict[str, tuple[str, str]]] = {}

    def catalog_on(day: date) -> dict[str, tuple[str, str]]:
        if day not in classes:
            classes[day] = {e.ref: (e.tech_class, e.name) for e in views.catalog("hunan", as_of=day, known_at=known_at)}
        return classes[day]

    filing, grandfather = DEADLINES[0], DEADLINES[2]
    rows = []
    for (inst, technology), use in sorted(uses.items()):
        cases = [e for e in use if e.kind == "case.performed"]
        restricted_cases = [
            c
            for c in cases
            if c.effective >= MTM2018_START and catalog_on(c.effective).get(technology, ("", ""))[0] == "restricted"
        ]
        gf = catalog_on(HN_GRANDFATHER).get(technology, ("", ""))[0] == "restricted" and any(
            c.effective < MTM2018_START
            or (c.effective <= HN_GRANDFATHER and catalog_on(c.effective).get(technology, ("", ""))[0] != "restricted")
            for c in cases
        )
        if not gf and not restricted_cases:
            continue
        filings = [e for e in use if e.kind == "filing.submitted" and (not gf or e.effective >= MTM2018_START)]
        first_filing = filings[0].effective if filings else None
        first_case = restricted_cases[0].effective if restricted_cases else None
        name = catalog_on(as_of).get(technology) or catalog_on(first_case or HN_GRANDFATHER).get(technology)
        row: dict[str, Any] = {
            "institution": inst,
            "institution_name": names.get(inst, ""),
            "technology": technology,
            "technology_name": name[1] if name else "",
            "first_case": f"{cases[0].effective} (under way before HN-2018)"
            if gf
            else first_case.isoformat()
            if first_case
            else "",
            "filed": first_filing.isoformat() if first_filing else "",
            "article": grandfather.article if gf else filing.article,
        }
        try:
            if gf:
                due = HN_GRANDFATHER
                late = (first_filing or as_of) > due
                left = None
            else:
                assert first_case is not None
                due = calendar.add_workdays(first_case, filing.working_days)
                late = (first_filing or as_of) > due
                # working days still open, today included: as_of … due
                left = calendar.workdays_between(as_of - timedelta(days=1), due)
        except CalendarError as e:
            row.update(due="", status=f"cannot count: {str(e).split('. This calendar')[0]}")
            rows.append(row)
            continue
        row["due"] = due.isoformat()
        if first_filing is not None:
            row["status"] = "filed late" if late else "filed on time"
        elif late:
            row["status"] = "stop unless filed (grandfather date passed)" if gf else "overdue: no filing yet"
        else:
            row["status"] = "open" if left is None else f"open: {left} working day{'s' if left != 1 else ''} left"
        rows.append(row)
    return rows


@click.group("hunan")
def hunan_group() -> None:
    """Hunan (HN-2018, 湘卫医发〔2018〕11号)."""


@hunan_group.command("deadlines")
@click.option("--institution", help="one institution's licence number (default: every Hunan institution)")
@click.option("--as-of", "as_of", help="where things stood on YYYY-MM-DD (default: today)")
@click.option("--known-at", "known_at", help="as the ledger knew it at this position or timestamp")
@click.option("--format", "fmt", type=click.Choice(("table", "json", "csv")), default="table", show_default=True)
@click.pass_context
def deadlines_command(
    ctx: click.Context, institution: str | None, as_of: str | None, known_at: str | None, fmt: str
) -> None:
    """Filing deadlines of restricted technologies (HN-2018#二(二), #六(一)) and where each stands."""
    day = option_day(as_of, "--as-of") or date.today()
    rows = deadline_rows(open_views(ctx), institution=institution, as_of=day, known_at=known_at)
    emit(rows, COLUMNS, fmt)
