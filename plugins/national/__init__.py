"""The national regimes: MTM-2009, the 2015 transition, MTM-2018, EVAL-2026, and the national
catalogue (prohibited, third-class, restricted 2015 and 2022) as reference decisions.

Registered through the ``ledger`` entry-point group like any province (ARCHITECTURE.md rule 4).
Each regime is a module whose ``RULES`` judge only decisions effective while it was in force:
``mtm2009`` (2009-05-01 → 2018-10-31), ``transition2015`` (2015-06-29; catalogue changes only),
``mtm2018`` (from 2018-11-01) and ``eval2026`` (from 2026-03-04). Its deadlines are the national
ones a province may override by name; its calendar hook adds the years found in
``LEDGER_CALENDAR_DIR`` (``calendars``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ledger import Body, Competence, YearSchedule, hookimpl
from plugins.national import (
    bodies,
    calendars,
    clocks,
    competence,
    conditions,
    enforcement,
    eval2026,
    grades2009,
    mtm2009,
    mtm2018,
    transition2015,
)
from plugins.national.common import MTM2018_START, NATIONAL_GRANDFATHER
from projections import Deadline, Rule

if TYPE_CHECKING:
    import click

__version__ = "0.1.0"
DATA = Path(__file__).parent / "data"

DEADLINES: tuple[Deadline, ...] = (
    Deadline("filing", 15, "MTM-2018#11", valid_from=MTM2018_START),
    Deadline("training-base", 3, "MTM-2018#29", valid_from=MTM2018_START),
    Deadline(
        "grandfather",
        0,
        "MTM-2018#49",
        valid_from=MTM2018_START,
        extra={"by": NATIONAL_GRANDFATHER.isoformat()},
    ),
)
"""MTM-2018's working-day deadlines; ``grandfather`` is a fixed date (``extra["by"]``), not a count."""


@hookimpl
def ledger_bodies() -> list[Body | Competence]:
    return list(bodies.BODIES)


@hookimpl
def ledger_reference_data() -> list[Path]:
    return [DATA / "catalog.jsonl"]


@hookimpl
def ledger_rules() -> list[Rule]:
    return [
        *mtm2009.RULES,
        *grades2009.RULES,
        *transition2015.RULES,
        *mtm2018.RULES,
        *conditions.RULES,
        *clocks.RULES,
        *enforcement.RULES,
        *eval2026.RULES,
        *competence.RULES,
    ]


@hookimpl
def ledger_deadlines() -> list[Deadline]:
    return [*DEADLINES, *clocks.DEADLINES]


@hookimpl
def ledger_calendar_years(jurisdiction: str) -> list[YearSchedule]:
    """Years from ``LEDGER_CALENDAR_DIR``, for every jurisdiction: China has one official calendar."""
    del jurisdiction
    return calendars.extra_years()


@hookimpl
def ledger_register_commands(cli: click.Group) -> None:
    from plugins.national.commands import national_group

    cli.add_command(national_group)
