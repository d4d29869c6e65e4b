"""``ledger chongqing notices``: the filings in their public-notice period (公示期) on a day.

CQ-2017#二(二): each filing is publicly noticed for 5 working days, and only then counts as done.
The city's disclosure page and an inspector ask the same question — which filings are being
noticed on a given day, until when? — answered here from the disclosure views (``Views.filings``,
whose ``status`` says ``in public notice`` and whose ``notice_until`` is the notice's last day: as
the completion records it, else counted on Chongqing's calendar).
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

import click

from projections.commandline import format_option, open_views, option_day, time_options
from projections.output import emit

if TYPE_CHECKING:
    from projections.views import Views

COLUMNS = ("institution", "institution_name", "technology", "technology_name", "filed_on", "notice_until", "authority")


def notice_rows(views: Views, *, as_of: date, known_at: int | str | None = None) -> list[dict[str, Any]]:
    """Chongqing's filings inside their public-notice period on ``as_of``: the notice the completion
    records (``Views.public_notice``, corrections as known at ``known_at``) wins; only where none is
    recorded is it the views' 5 working days from the completion."""
    n = views.position_at(known_at)
    out = []
    for f in views.filings(province="chongqing", as_of=as_of, known_at=known_at):
        if f.status not in ("filed", "in public notice"):
            continue
        recorded = views.public_notice(f.decisions, n, filed_on=f.filed_on)
        if recorded is not None:
            if not recorded[0] <= as_of <= recorded[1]:
                continue
        elif f.status != "in public notice":
            continue
        out.append(
            {
                "institution": f.institution,
                "institution_name": f.institution_name,
                "technology": f.technology,
                "technology_name": f.technology_name,
                "filed_on": f.filed_on.isoformat() if f.filed_on else None,
                "notice_until": f.notice_until.isoformat() if f.notice_until else None,
                "authority": f.authority,
            }
        )
    return out


@click.group("chongqing")
def chongqing_group() -> None:
    """Chongqing (CQ-2017, 渝卫发〔2017〕44号)."""


@chongqing_group.command("notices")
@time_options
@format_option
@click.pass_context
def notices_command(ctx: click.Context, as_of: str | None, known_at: str | None, fmt: str) -> None:
    """Filings inside their 5-working-day public notice (CQ-2017#二(二)) on --as-of."""
    day = option_day(as_of, "--as-of") or date.today()
    emit(notice_rows(open_views(ctx), as_of=day, known_at=known_at), COLUMNS, fmt)
