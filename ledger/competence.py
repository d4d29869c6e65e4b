"""Competence: who may decide what, held as data and judged in one place (ARCHITECTURE.md rule 10).

Each kind of decision names the bodies that may make it, by jurisdiction and role (``TABLE``).
Plugins declare their public bodies — every name a body has decided under, its jurisdiction, its
role and the body above it — and any competence of their own (a province's filing authority)
through ``ledger_bodies``; core holds no province's names. What cannot be a real decision is
refused at import (``ledger.application``); what is real but irregular is recorded and flagged by
a rule on the read side, which asks the same ``Registry``. docs/decisions.md, "Who may decide
what", has the table in words.

A ``by`` that is neither a declared body nor a registered institution is not judged: the ledger
cannot tell who it is, so it neither refuses nor flags on competence (its signature, once its key
is registered, is still required).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Literal, Protocol

from ledger.errors import PluginError
from ledger.jurisdictions import NATIONAL

if TYPE_CHECKING:
    import pluggy

    from ledger.decisions import DecisionRecord

Role = Literal["commission", "province", "city", "district", "agency"]
"""``commission``: the national health commission (sets the national and the prohibited lists);
``province``: a provincial commission (its own catalogue, training bases); ``city`` and
``district``: the authorities that license institutions and receive their filings; ``agency``: a
body acting for one of those (an expert centre), which decides nothing on its own authority."""

REGULATORS: frozenset[str] = frozenset({"commission", "province", "city", "district"})
"""Roles that may order, suspend, stop and fine (县级以上卫生行政部门, MTM-2018#35, #41)."""

Who = Literal[
    "catalogue-keeper",
    "key-holder",
    "institution-own",
    "institution-or-regulator",
    "filing-authority",
    "regulator",
    "orderer",
    "author",
    "anyone",
]
"""How a kind's competent bodies are found (``Registry.competent``):

* ``catalogue-keeper``: the commission for the national catalogue, the province's commission for
  its own (MTM-2009#8–9, MTM-2018#9–10);
* ``key-holder``: the authority itself, or a body above it that holds a registered key;
* ``institution-own``: the institution the decision is about (its own cases, submissions, reviews,
  privileges), or a regulator entering it on its behalf;
* ``institution-or-regulator``: the institution itself (MTM-2018#25) or a regulator with
  jurisdiction over it;
* ``filing-authority``: the authority that issued the institution's licence, or one above it
  (HN-2018#二(二); a province may declare its own, CQ-2017#二(二));
* ``regulator``: a body of the institution's jurisdiction (or the nation) with a regulator's role
  (MTM-2018#35, #41–44);
* ``orderer``: the body that ordered the suspension or stop being lifted, or one above it;
* ``author``: the author of the decision corrected or retracted, or a body above it;
* ``anyone``: not judged.
"""


@dataclass(frozen=True, order=True)
class Body:
    """A public body a plugin speaks for, as decisions write it in ``by``."""

    names: tuple[str, ...]
    """Its current name first, then the earlier names it decided under (卫生厅 → 卫健委): one body."""
    jurisdiction: str
    """``national`` or the province's code (``hunan``)."""
    role: Role
    parent: str | None = None
    """A name of the body directly above it; None for the national commission."""
    place: str | None = None
    """The city or district it governs (``长沙市``), for a ``city`` or ``district``."""

    @property
    def name(self) -> str:
        return self.names[0]

    @classmethod
    def local(cls, place: str, *, jurisdiction: str, role: Role, parent: str) -> Body:
        """The health authority of a city or district, under the names it has decided under
        (卫生健康委员会 since 2018, 卫生和计划生育委员会 or 卫生计生委 from 2013, 卫生局 before)."""
        suffixes = ("卫生健康委员会", "卫生和计划生育委员会", "卫生计生委", "卫生局")
        names = tuple(f"{place}{suffix}" for suffix in suffixes)
        return cls(names=names, jurisdiction=jurisdiction, role=role, parent=parent, place=place)


@dataclass(frozen=True, order=True)
class Competence:
    """Who may make one kind of decision in one jurisdiction, and what a breach is."""

    kind: str
    who: Who
    article: str
    """The article that says who decides (``MTM-2018#11``)."""
    refuse: bool = False
    """True: a decision by another body cannot be real and is refused at import; False: it is
    recorded and flagged as a finding citing ``article``."""
    jurisdiction: str = NATIONAL
    """Where it applies; a province's own entry overrides the national one for its institutions."""


_CATALOGUE = ("technology.listed", "technology.reclassified", "technology.delisted")
_INSTITUTIONS_OWN = (
    "case.performed",
    "filing.submitted",
    "review.concluded",
    "privilege.granted",
    "privilege.suspended",
    "privilege.revoked",
    "trainee.certified",
)

TABLE: tuple[Competence, ...] = (
    *(Competence(kind, "catalogue-keeper", "MTM-2018#9–10, MTM-2009#8–9", refuse=True) for kind in _CATALOGUE),
    Competence("authority.key_registered", "key-holder", "docs/reliability.md#trust-model", refuse=True),
    *(Competence(kind, "institution-own", "MTM-2018#6", refuse=True) for kind in _INSTITUTIONS_OWN),
    Competence("filing.completed", "filing-authority", "MTM-2018#11"),
    Competence("filing.rejected", "filing-authority", "MTM-2018#11"),
    Competence("correction.ordered", "regulator", "MTM-2018#41"),
    Competence("penalty.imposed", "regulator", "MTM-2018#41"),
    Competence("use.suspended", "institution-or-regulator", "MTM-2018#25, #41"),
    Competence("use.stopped", "institution-or-regulator", "MTM-2018#25, #41"),
    Competence("use.resumed", "orderer", "MTM-2018#41"),
    Competence("decision.corrected", "author", "MTM-2018#35", refuse=True),
    Competence("decision.retracted", "author", "MTM-2018#35", refuse=True),
)
"""The national default for each kind (kinds not named here are not judged). A plugin's
``Competence`` for its jurisdiction overrides the entry of the same kind there."""


def normal(name: str) -> str:
    """A name as it is compared: NFC (a decomposed and a composed 省 are one name). Remembered: an
    import asks it of every line's ``by``, and a file names few bodies."""
    found = _NORMALS.get(name)
    if found is None:
        if len(_NORMALS) > 10_000:
            _NORMALS.clear()
        found = _NORMALS[name] = unicodedata.normalize("NFC", name)
    return found


_NORMALS: dict[str, str] = {}


@dataclass(frozen=True)
class Registry:
    """The bodies and competences every plugin declared, sorted; asked by the import and the rules."""

    bodies: tuple[Body, ...] = ()
    competences: tuple[Competence, ...] = ()

    @cached_property
    def _by_name(self) -> dict[str, Body]:
        out: dict[str, Body] = {}
        for body in self.bodies:
            for name in body.names:
                key = normal(name)
                if key in out and out[key] != body:
                    msg = f"two plugins declare a body named {name!r}"
                    raise PluginError(msg)
                out[key] = body
        return out

    @cached_property
    def _table(self) -> dict[tuple[str, str], Competence]:
        out = {(c.kind, c.jurisdiction): c for c in TABLE}
        for c in self.competences:
            out[(c.kind, c.jurisdiction)] = c
        return out

    def body(self, name: str | None) -> Body | None:
        """The declared body ``name`` is a name of (after NFC), or None."""
        return None if name is None else self._by_name.get(normal(name))

    def chain(self, body: Body) -> Iterator[Body]:
        """``body`` and the bodies above it, nearest first (a cycle stops at the first repeat)."""
        seen: set[str] = set()
        current: Body | None = body
        while current is not None and current.name not in seen:
            seen.add(current.name)
            yield current
            current = self.body(current.parent)

    def above(self, upper: str, lower: str) -> bool:
        """Is ``upper`` a declared body strictly above the declared body ``lower``?"""
        u, low = self.body(upper), self.body(lower)
        if u is None or low is None or u == low:
            return False
        return any(b == u for b in self.chain(low))

    def same_or_above(self, upper: str, lower: str) -> bool:
        """Is ``upper`` the same declared body as ``lower`` (under any of its names), or above it?"""
        u, low = self.body(upper), self.body(lower)
        return u is not None and low is not None and any(b == u for b in self.chain(low))

    def competence(self, kind: str, jurisdiction: str | None) -> Competence | None:
        """Who may decide ``kind`` in ``jurisdiction``: its own entry, else the national one."""
        table = self._table
        if jurisdiction is not None and (kind, jurisdiction) in table:
            return table[(kind, jurisdiction)]
        return table.get((kind, NATIONAL))

    def regulates(self, name: str, jurisdiction: str | None, licensed_by: str | None) -> bool | None:
        """Is body ``name`` a regulator with jurisdiction over an institution of ``jurisdiction``
        licensed by ``licensed_by`` (MTM-2018#35)? None when ``name`` is not a declared body.

        The nation regulates everywhere; a province its own; a city or district the institutions it
        licensed (and any in its place when the licensing authority is not declared). None also
        when the institution's province is unknown (no plugin speaks for it): nothing to judge."""
        body = self.body(name)
        if body is None:
            return None
        if body.role not in REGULATORS:
            return False
        if body.jurisdiction == NATIONAL:
            return True
        if jurisdiction is None:
            return None
        if body.jurisdiction != jurisdiction:
            return False
        if body.role == "province":
            return True
        licensing = self.body(licensed_by)
        if licensing is None:
            return True
        return self.same_or_above(name, licensing.name)

    def keeps(self, name: str, catalog: str) -> bool | None:
        """May body ``name`` change catalogue ``catalog`` (MTM-2009#8–9, MTM-2018#10)? None when
        ``name`` is not a declared body."""
        body = self.body(name)
        if body is None:
            return None
        wanted: Role = "commission" if catalog == NATIONAL else "province"
        return body.role == wanted and body.jurisdiction == catalog


def build(contributed: Iterable[Iterable[Body | Competence] | None]) -> Registry:
    """A registry from what ``ledger_bodies`` returned, sorted (no result depends on load order)."""
    bodies: set[Body] = set()
    competences: set[Competence] = set()
    for items in contributed:
        for item in items or ():
            if isinstance(item, Body):
                bodies.add(item)
            elif isinstance(item, Competence):
                competences.add(item)
            else:
                msg = f"ledger_bodies returned {item!r}: a Body or a Competence"
                raise PluginError(msg)
    registry = Registry(tuple(sorted(bodies)), tuple(sorted(competences)))
    registry._by_name  # noqa: B018 - a name claimed twice fails when plugins load, not mid-import
    return registry


@lru_cache(maxsize=16)
def registry(pm: pluggy.PluginManager) -> Registry:
    """The registry of a plugin manager's plugins (built once per manager; a few kept)."""
    return build(pm.hook.ledger_bodies())


EMPTY = Registry()


# --- what core refuses at import ---------------------------------------------------------------


class Lookup(Protocol):
    """What the judgement needs from the ledger (the import answers it from storage and the file)."""

    def is_institution(self, name: str) -> bool:
        """Is ``name`` the licence of a registered institution?"""

    def prohibited_nationally(self, name: str, day: date) -> str | None:
        """The code of a national catalogue entry named ``name`` that is prohibited on ``day``."""

    def listed_name(self, technology: str) -> str | None:
        """The name a catalogue entry (``hunan:S01``) was listed under, or None."""


def plain_name(name: str) -> str:
    """A technology's name as names are matched across catalogues: NFKC, without white space."""
    return "".join(unicodedata.normalize("NFKC", name).split())


def refusal(
    registry: Registry,
    record: DecisionRecord,
    lookup: Lookup,
    target: DecisionRecord | None = None,
    corrected: DecisionRecord | None = None,
) -> tuple[str, str] | None:
    """Why ``record`` cannot be a real decision, as ``(field, message citing its article)``; None
    when it can be (it may still be flagged on the read side). ``target`` is the decision a
    correction or retraction changes, and ``corrected`` that decision as a correction makes it."""
    kind = record.kind
    by = record.by
    if kind in ("decision.corrected", "decision.retracted"):
        assert target is not None
        found = _changer(registry, record, lookup, target)
        if found is None and corrected is not None and corrected.kind in _CATALOGUE:
            found = _catalogue(registry, corrected, lookup)  # the decision as the correction makes it
        return found
    if kind in _CATALOGUE:
        return _catalogue(registry, record, lookup)
    entry = registry.competence(kind, None)
    if entry is None or entry.who in {"anyone", "key-holder"}:
        return None
    f = record.fields
    own = f.get("institution")
    if entry.who in ("institution-own", "institution-or-regulator", "orderer"):
        if own is not None and normal(by) != normal(own) and lookup.is_institution(by):
            return "by", (
                f"{by!r} is another institution: an institution decides {kind} only for itself "
                f"({own!r}); a regulator may record it on its behalf ({entry.article})"
            )
        return None
    if entry.who in ("filing-authority", "regulator") and lookup.is_institution(by):
        return "by", f"{by!r} is an institution: a {kind} is a health authority's decision ({entry.article})"
    return None


def _changer(
    registry: Registry, record: DecisionRecord, lookup: Lookup, target: DecisionRecord
) -> tuple[str, str] | None:
    """A decision is corrected or retracted by its author, or by a body above it (MTM-2018#35)."""
    by, author = record.by, target.by
    if normal(by) == normal(author):
        return None
    what = "corrects" if record.kind == "decision.corrected" else "retracts"
    if lookup.is_institution(by):
        return "by", (
            f"{by!r} is an institution: it {what} only its own decisions, not one by {author!r} "
            "(a decision's author, or a body above it, changes it)"
        )
    if registry.body(by) is not None and registry.body(author) is not None and not registry.same_or_above(by, author):
        return "by", (
            f"{by!r} is not {author!r} nor a body above it: a decision's author, or a body above it, {what} it"
        )
    return None


def _catalogue(registry: Registry, record: DecisionRecord, lookup: Lookup) -> tuple[str, str] | None:
    """Catalogues are the national commission's and each province's own (MTM-2009#8–9,
    MTM-2018#9–10): no institution changes one, no province another's, and no province lists
    what the nation prohibits — nor any technology as ``prohibited``: that list is the nation's."""
    f = record.fields
    by, catalog = record.by, f["catalog"]
    if lookup.is_institution(by):
        return "by", (
            f"{by!r} is an institution: only the national commission changes the national catalogue, "
            f"and a province its own (MTM-2018#10, MTM-2009#8–9); not the {catalog} catalogue"
        )
    if registry.keeps(by, catalog) is False:
        body = registry.body(by)
        assert body is not None
        return "by", (
            f"{by!r} ({body.role}, {body.jurisdiction}) does not keep the {catalog} catalogue: the national "
            "commission keeps the national one, a province its own (MTM-2018#10, MTM-2009#8–9)"
        )
    if catalog == NATIONAL or record.kind == "technology.delisted":
        return None
    if f.get("class") == "prohibited":
        return "class", (
            "only the national commission sets the prohibited list (MTM-2018#9–10): a provincial "
            "catalogue lists no technology as prohibited"
        )
    name = f.get("name") if record.kind == "technology.listed" else lookup.listed_name(f"{catalog}:{f['code']}")
    if name is None:
        return None
    code = lookup.prohibited_nationally(name, record.effective)
    if code is not None:
        where = "name" if record.kind == "technology.listed" else "code"
        return where, (
            f"{name!r} is prohibited nationally (national:{code}) on {record.effective}: a province may not "
            "list a technology the nation prohibits or abolished (MTM-2009#9, MTM-2018#9)"
        )
    return None
