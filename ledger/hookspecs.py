"""What a plugin can contribute: the hook specifications.

Every regime and province, the built-in ones included, is a plugin found through the ``ledger``
entry-point group (ARCHITECTURE.md rule 4); core reaches it only through these hooks. Hook names
are prefixed ``ledger_`` so that a misspelt implementation is caught by ``check_pending()``.
Results of a hook come back in an order that depends on registration: core always sorts them by a
stable key before using them, so no result depends on load order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import pluggy

if TYPE_CHECKING:
    import click

    from ledger.competence import Body, Competence
    from ledger.decisions import DecisionRecord
    from ledger.jurisdictions import Jurisdiction
    from ledger.workdays import YearSchedule

PROJECT = "ledger"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# What the read-side hooks return is made with ``projections`` (``Rule``, ``Deadline``, ``Projection``,
# ``Report``), which core never imports (ARCHITECTURE.md, layers): each is typed here by what core
# and ``ledger plugins`` read of it; the read side's classes have that shape (mypy, in ``projections``).


@runtime_checkable
class ContributedRule(Protocol):
    """A rule (``projections.Rule``): a unique ``<plugin>.<name>`` id, the article it enforces."""

    @property
    def id(self) -> str: ...
    @property
    def article(self) -> str: ...
    @property
    def title(self) -> str: ...
    def applies_to(self, jurisdiction: str | None) -> bool: ...


@runtime_checkable
class ContributedDeadline(Protocol):
    """A working-day deadline (``projections.Deadline``), found by name for a jurisdiction and day."""

    @property
    def name(self) -> str: ...
    @property
    def working_days(self) -> int: ...
    @property
    def article(self) -> str: ...
    @property
    def jurisdiction(self) -> str: ...
    @property
    def valid_from(self) -> date: ...
    @property
    def valid_to(self) -> date | None: ...


@runtime_checkable
class ContributedProjection(Protocol):
    """A read model (``projections.Projection``): rebuilt from zero when its ``version`` changes."""

    @property
    def name(self) -> str: ...
    @property
    def version(self) -> int: ...


@runtime_checkable
class ContributedReport(Protocol):
    """A report (``projections.Report``) that ``ledger report NAME`` writes."""

    @property
    def name(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def article(self) -> str | None: ...


@hookspec
def ledger_jurisdictions() -> Sequence[Jurisdiction]:
    """Called once when plugins load. Return the jurisdictions this plugin speaks for
    (``Jurisdiction(code="hunan", name="湖南省", …)``); codes are unique across plugins."""


@hookspec
def ledger_reference_data() -> Sequence[Path]:
    """Called by ``ledger init`` and ``ledger demo``. Return decision files (JSON Lines) of
    reference data — catalogues with their real dates — to be recorded through the ordinary
    import path, idempotently by id. From then on the log, not the plugin, is the source of truth."""


@hookspec
def ledger_demo_data() -> Sequence[Path]:
    """Called by ``ledger demo`` after every plugin's reference data is recorded. Return decision
    files of an illustrative history (fictitious institutions and people)."""


@hookspec
def ledger_bodies() -> Sequence[Body | Competence]:
    """Called once when plugins load. Return the public bodies this plugin speaks for
    (``ledger.Body``: every name it has decided under, its jurisdiction, its role, the
    body above it) and any ``Competence`` it sets for its jurisdiction (who completes a filing there,
    citing the article); core judges who may decide what from these alone (ARCHITECTURE.md rule 10)."""


@hookspec
def ledger_validate_decision(decision: DecisionRecord) -> Iterable[tuple[str, str]] | None:
    """Called for every decision before it is recorded. Return ``(field, message)`` problems with
    this plugin's own fields (those prefixed with its name) or with kinds it governs; any problem
    refuses the decision (and its whole file) with a clear error. Return nothing when all is well.
    Findings — things that are recorded but irregular — belong in rules, not here."""


@hookspec
def ledger_public_notice(decision: DecisionRecord) -> tuple[date, date] | None:
    """Called by the disclosure views for a use's filing completion (as corrected) where its
    province has a public notice (a ``public-notice`` deadline, e.g. CQ-2017#二(二)). Return the
    notice's first and last day as this plugin's own fields record them, or None when they do not:
    the recorded period wins, and only where none is recorded is it worked out from the deadline."""


@hookspec
def ledger_calendar_years(jurisdiction: str) -> Iterable[YearSchedule] | None:
    """Called when a working-day calendar for ``jurisdiction`` (``national`` or a province code) is
    built. Return official schedules (放假调休安排) to add to or override China's calendar, e.g. a
    newly announced year or a province's own adjustment."""


@hookspec
def ledger_rules() -> Sequence[ContributedRule]:
    """Called when a trail is built. Return ``projections.Rule`` objects: each judges the
    ``projections.Facts`` of one scope and yields ``Finding``s citing its article. Rule ids are
    ``<plugin>.<name>`` and unique; a province's rules name their jurisdiction."""


@hookspec
def ledger_deadlines() -> Sequence[ContributedDeadline]:
    """Called when a trail or disclosure list is built. Return ``projections.Deadline``s:
    working-day deadlines of a regime (``jurisdiction="national"``) or a province, which override
    the national deadline of the same name for that province's institutions."""


@hookspec
def ledger_projections() -> Sequence[ContributedProjection]:
    """Called when the projection runner starts. Return extra ``projections.Projection``
    objects (a plugin's own read models); they are tracked, caught up and rebuilt like the
    built-in ones, and listed by ``ledger plugins``."""


@hookspec
def ledger_reports() -> Sequence[ContributedReport]:
    """Called by ``ledger report``. Return ``projections.Report`` objects: a name, the
    options it takes and a function from the views to a table (with the header rows and column
    formats of an official form), written as CSV or XLSX by the CLI."""


@hookspec
def ledger_register_commands(cli: click.Group) -> None:
    """Called once when the ``ledger`` command line starts. Add this plugin's click commands or
    groups to ``cli`` (``cli.add_command``); a disabled plugin's commands are simply absent."""


def _unused(*_: Any) -> None:  # pragma: no cover - keeps the TYPE_CHECKING imports honest
    pass
