"""The ground every question of the views stands on: the two time axes, the one select, jurisdictions.

Every question takes ``as_of`` (valid time: what was in force that day; default today) and
``known_at`` (record time: a position, or a timestamp resolved to the last position recorded by
then; default now), and is one indexed select over bitemporal rows (ARCHITECTURE.md rule 3).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from functools import cached_property
from typing import Any

from ledger.application import LedgerApplication
from ledger.errors import ConfigurationError
from ledger.jurisdictions import Jurisdiction
from ledger.plugins import jurisdictions
from projections.runner import NOW, Runner
from projections.views.models import all_projections

IN_FORCE = "{0}.valid_from <= ? AND {0}.valid_to > ? AND {0}.known_from <= ? AND {0}.known_to > ?"
"""The rows of a view (alias ``{0}``) in force on a day as known at a position: (day, day, n, n)."""


class ViewsBase:
    """Time resolution, the select of a view's rows in force, and the jurisdictions plugins speak for."""

    def __init__(self, app: LedgerApplication, *, catch_up: bool = True) -> None:
        self.app = app
        self.pm = app.plugins
        self.runner = Runner(app, all_projections(self.pm))
        self.db = self.runner.db
        if catch_up:
            self.runner.catch_up()

    # --- time -------------------------------------------------------------------------------

    def position_at(self, known_at: int | str | datetime | None) -> int:
        """A ``--known-at`` value as a position: an integer is one; a timestamp is the last
        position recorded at or before it (record times never decrease along the log)."""
        if known_at is None:
            return NOW - 1  # everything recorded: rows still held true have known_to == NOW
        if isinstance(known_at, int):
            return min(known_at, NOW - 1)
        if isinstance(known_at, str):
            if known_at.isascii() and known_at.isdigit():  # not "²" or "١٢", which isdigit also takes
                return min(int(known_at), NOW - 1)  # a position past any the log holds: everything
            try:
                moment = datetime.fromisoformat(known_at)
            except ValueError:
                msg = f"--known-at takes a position or an ISO timestamp, got {known_at!r}"
                raise ConfigurationError(msg) from None
        else:
            moment = known_at
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        lo, hi = 0, self.app.position()
        while lo < hi:  # the largest position whose record time is <= moment
            mid = (lo + hi + 1) // 2
            notes = self.app.store.select_notifications(mid, 1)
            if not notes:
                hi = mid - 1
                continue
            recorded = self.app._decode(notes[0]).timestamp
            if recorded <= moment:
                lo = notes[0].id
                lo = min(mid, lo)
            else:
                hi = mid - 1
        return lo

    def _when(self, as_of: date | None, known_at: int | str | datetime | None) -> tuple[str, int]:
        return (as_of or date.today()).isoformat(), self.position_at(known_at)

    def _rows(
        self, table: str, columns: Sequence[str], where: str, params: Sequence[Any], day: str, n: int
    ) -> list[tuple[Any, ...]]:
        t = self.db.table(table)
        sql = (
            f"SELECT {', '.join(columns)}, valid_from FROM {t} WHERE valid_from <= ? AND valid_to > ? "
            f"AND known_from <= ? AND known_to > ?{(' AND ' + where) if where else ''}"
        )
        with self.db.transaction(write=False) as c:
            return c.execute(sql, (day, day, n, n, *params)).fetchall()

    # --- jurisdictions ----------------------------------------------------------------------

    @cached_property
    def jurisdictions(self) -> list[Jurisdiction]:
        return jurisdictions(self.pm)

    def jurisdiction(self, code: str) -> Jurisdiction:
        for j in self.jurisdictions:
            if code in (j.code, j.name, *j.aliases):
                return j
        known = ", ".join(j.code for j in self.jurisdictions)
        msg = f"no plugin speaks for the province {code!r} (known: {known})"
        raise ConfigurationError(msg)

    def code_of_province(self, province: str | None) -> str | None:
        if province is None:
            return None
        for j in self.jurisdictions:
            if j.matches(province):
                return j.code
        return None

    def _province_names(self, province: str) -> list[str]:
        j = self.jurisdiction(province)
        return sorted({j.code, j.name, *j.aliases})
