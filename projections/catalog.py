"""The catalogue in force in a province: national entries plus the province's own, as of a date.

MTM-2018#5-#9 (and MTM-2009#7-#9 before it): the nation sets the prohibited and restricted lists,
a province adds its own restricted technologies; so a province's catalogue is the national
catalogue in force plus that province's additions, each with its code, class and version, and the
decision that put it there.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from ledger.decisions import DecisionRecord
from ledger.events import EVENT_CLASSES
from ledger.jurisdictions import NATIONAL
from projections.replay import Resolved, resolve
from projections.runner import TimelineProjection, TimelineRow, intervals

CLASS_ORDER = {"prohibited": 0, "restricted": 1, "class3": 2, "class2": 3, "clinical-research": 4}


@dataclass(frozen=True)
class CatalogEntry:
    catalog: str
    code: str
    name: str
    tech_class: str
    version: str
    listed_by: str
    """The decision that listed it; a reclassification's id follows after a comma."""
    since: date

    @property
    def ref(self) -> str:
        return f"{self.catalog}:{self.code}"


def catalog(
    log: Iterable[tuple[int, DecisionRecord]],
    *,
    province: str | None = None,
    as_of: date | None = None,
    known_at: int | None = None,
) -> list[CatalogEntry]:
    """The catalogue in force: national entries, plus ``province``'s when one is given."""
    wanted = {NATIONAL} | ({province} if province else set())
    entries: dict[tuple[str, str], CatalogEntry] = {}
    technology_log = ((p, r) for p, r in log if r.kind.startswith("technology.") or r.kind.startswith("decision."))
    for item in resolve(technology_log, as_of=as_of, known_at=known_at):
        r = item.record
        if not r.kind.startswith("technology."):
            continue
        f = r.fields
        key = (f["catalog"], f["code"])
        if f["catalog"] not in wanted:
            continue
        if r.kind == "technology.listed":
            entries[key] = CatalogEntry(f["catalog"], f["code"], f["name"], f["class"], f["version"], r.id, r.effective)
        elif r.kind == "technology.reclassified" and key in entries:
            old = entries[key]
            entries[key] = CatalogEntry(
                old.catalog, old.code, old.name, f["class"], old.version, f"{old.listed_by},{r.id}", r.effective
            )
        elif r.kind == "technology.delisted":
            entries.pop(key, None)
    return sorted(
        entries.values(),
        key=lambda e: (e.catalog != NATIONAL, CLASS_ORDER.get(e.tech_class, 9), e.code),
    )


class CatalogProjection(TimelineProjection):
    """The catalogue as a bitemporal view: one timeline per ``<catalog>:<code>``."""

    name = "catalog"
    table = "view_catalog"
    columns = ("catalog", "code", "name", "class", "version", "decisions")
    indexes = (("catalog",),)
    kinds = frozenset(kind for kind in EVENT_CLASSES if kind.startswith("technology."))

    def keys(self, record: DecisionRecord) -> Iterable[str]:
        if record.kind.startswith("technology."):
            yield f"{record.fields['catalog']}:{record.fields['code']}"

    def timeline(self, key: str, decisions: Sequence[Resolved]) -> list[TimelineRow]:
        catalog_code, _, code = key.partition(":")
        state: tuple[Any, ...] | None = None
        ids: list[str] = []
        states: list[tuple[date, tuple[Any, ...] | None]] = []
        for d in decisions:
            r = d.record
            f = r.fields
            if r.kind == "technology.listed":
                ids = [r.id]
                state = (catalog_code, code, f["name"], f["class"], f["version"], r.id)
            elif r.kind == "technology.reclassified" and state is not None:
                ids.append(r.id)
                state = (*state[:3], f["class"], state[4], ",".join(ids))
            elif r.kind == "technology.delisted":
                state = None
            states.append((r.effective, state))
        return intervals(states)
