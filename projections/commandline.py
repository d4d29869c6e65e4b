"""What the ``ledger`` command line and plugins' commands share: the views of the ledger the run is
pointed at, the time and format options, and how a day given to an option is read.

A plugin's command (``ledger_register_commands``) uses these instead of its own copies, so that
``ledger hunan deadlines --as-of 2019-05-14`` opens the same ledger (``--db``) on the same
connection, and reads and refuses a day exactly as ``ledger trail --as-of`` does.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar

import click

from ledger.application import LedgerApplication
from ledger.decisions import parse_date
from ledger.errors import DecisionError, MalformedDecision
from projections.output import END_OF_TIME
from projections.runner import FOREVER
from projections.views import Views

F = TypeVar("F", bound=Callable[..., Any])
FORMATS = ("table", "json", "csv")
"""What ``--format`` offers: a table for people, JSON or CSV for programs (``output.emit``)."""


def open_app(ctx: click.Context) -> LedgerApplication:
    """The ledger the root command's ``--db`` names (``obj["db"]``), opened once per run and closed
    when the run ends: every command of the run, the CLI's and plugins' alike, shares it."""
    root = ctx.find_root()
    obj = root.ensure_object(dict)
    if "app" not in obj:
        app = LedgerApplication.open(obj.get("db"))
        obj["app"] = app
        root.call_on_close(app.close)
    result: LedgerApplication = obj["app"]
    return result


def open_views(ctx: click.Context) -> Views:
    """The views of the run's ledger (``open_app``), caught up and opened once per run."""
    obj = ctx.find_root().ensure_object(dict)
    if "views" not in obj:
        obj["views"] = Views(open_app(ctx))
    views: Views = obj["views"]
    return views


def time_options(f: F) -> F:
    """``--as-of`` (valid time) and ``--known-at`` (record time), on every view."""
    f = click.option(
        "--known-at",
        "known_at",
        metavar="POSITION|TIMESTAMP",
        help="as the ledger knew it then: a log position or an ISO timestamp",
    )(f)
    return click.option(
        "--as-of", "as_of", metavar="YYYY-MM-DD", help="what was in force on that day (default: today)"
    )(f)


def format_option(f: F) -> F:
    """``--format``: one of ``FORMATS``, a table unless asked otherwise."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default="table",
        show_default=True,
        help="table for people; json or csv for programs",
    )(f)


def parse_day(value: str, name: str) -> date:
    """A day a command's option (``--as-of``, ``--from``) asks about: a real date before
    ``END_OF_TIME``. Asked as of that day, every view would be empty; it is refused instead.
    Raises ``MalformedDecision`` naming the option (the command line makes it a usage error)."""
    day = parse_date(value, name)
    if day >= END_OF_TIME:
        msg = f"{value} is the end of time in the views, not a day anything is in force on: give a day before {FOREVER}"
        raise MalformedDecision(msg, field=name)
    return day


def option_day(value: str | None, name: str) -> date | None:
    """``parse_day`` for a command's option, the CLI's and plugins' alike: None when not given; a
    day that cannot be asked about is click's usage error (exit 2), naming the option."""
    if value is None:
        return None
    try:
        return parse_day(value, name)
    except DecisionError as e:
        raise click.BadParameter(e.message, param_hint=name) from None
