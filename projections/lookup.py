"""Names people type, resolved against what the ledger holds.

An inspector knows 湘江示范医院, ``S14``, 湖南 or 长沙, not ``44860321X43010211A1001``,
``hunan:S14``, ``hunan`` or ``长沙市``. Every option that names an institution, physician,
technology, province or city resolves its value here, once, to the key the views use; a value that
names nothing is an error with the nearest names (``difflib``), and one that names several lists
them. A typo must never read as "nothing found", which an inspector takes for "nothing wrong".
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import click

from ledger.errors import NotFound
from projections import localtime
from projections.commandline import open_views, option_day
from projections.views import InstitutionRow, Views

KINDS = ("institution", "physician", "technology", "province", "city")
_SUFFIXES = ("省", "市", "自治区", "特别行政区", "区", "县", "州")


@dataclass(frozen=True)
class Candidate:
    """One thing a name may mean: its key, and how it is shown in a "did you mean"."""

    key: str
    label: str
    names: tuple[str, ...]
    """Every spelling that means it exactly (its key, its name, a code without its catalogue)."""


class Lookup:
    """The institutions, physicians, technologies, provinces and cities a ledger has ever held,
    read once per command, and the resolution of a typed value to one of them."""

    def __init__(self, views: Views) -> None:
        self.views = views
        self._cache: dict[str, list[Candidate]] = {}
        self._keys: dict[str, set[str]] = {}

    def resolve(self, kind: str, value: str, option: str | None = None) -> str:
        """The key ``value`` names among the ``kind``'s: exactly (key, name, code, a province or
        city without 省/市), else as the only one whose name contains it. Raises ``NotFound``
        with the nearest names, or with the candidates when it names several."""
        typed = value.strip()
        if kind in _KEYED and self._is_key(kind, typed):
            return typed
        candidates = self.candidates(kind)
        exact = _unique(c for c in candidates if typed in c.names or typed.casefold() in c.names)
        if len(exact) == 1:
            return exact[0].key
        partial = exact or _unique(c for c in candidates if typed and any(typed in n for n in c.names[1:]))
        where = f"{option}: " if option else ""
        if len(partial) == 1:
            return partial[0].key
        if partial:
            shown = "; ".join(c.label for c in partial[:12]) + (" …" if len(partial) > 12 else "")
            msg = f"{where}{value!r} names {len(partial)} {_PLURAL[kind]}: {shown}; give one of their keys"
            raise NotFound(msg)
        msg = f"{where}no {kind} {value!r} in the ledger{_hint(typed, kind, candidates)}"
        raise NotFound(msg)

    def _is_key(self, kind: str, typed: str) -> bool:
        """Is ``typed`` a key the view holds? One indexed look, so that a command given a licence
        number or ``hunan:S14`` does not read every name the ledger holds."""
        table, column = _KEYED[kind]
        with self.views.db.transaction(write=False) as c:
            sql = f"SELECT 1 FROM {self.views.db.table(table)} WHERE {column} = ? LIMIT 1"
            return c.execute(sql, (typed,)).fetchone() is not None

    def holds(self, kind: str, key: str) -> bool:
        """Does the ledger hold the ``kind`` keyed ``key`` (a licence, ``hunan:S14``)?"""
        if kind not in self._keys:
            self._keys[kind] = {c.key for c in self.candidates(kind)}
        return key in self._keys[kind]

    def candidates(self, kind: str) -> list[Candidate]:
        if kind not in self._cache:
            self._cache[kind] = _READERS[kind](self.views)
        return self._cache[kind]


_KEYED = {
    "institution": ("view_institutions", "key"),
    "physician": ("view_physicians", "physician"),
    "technology": ("view_catalog", "key"),
}
"""Where a key of each kind is looked up by index: the table and its indexed column."""

_PLURAL = {
    "institution": "institutions",
    "physician": "physicians",
    "technology": "technologies",
    "province": "provinces",
    "city": "cities",
}


def _hint(typed: str, kind: str, candidates: Sequence[Candidate]) -> str:
    """A "did you mean …?" with the nearest spellings (difflib), else where to find the names."""
    spellings = {n: c for c in candidates for n in c.names}
    near = difflib.get_close_matches(typed, list(spellings), n=6, cutoff=0.5)
    labels = list(dict.fromkeys(spellings[n].label for n in near))[:3]
    if labels:
        return f"; did you mean {' or '.join(labels)}?"
    if kind in ("institution", "physician"):
        return f" (`ledger {_PLURAL[kind]}` lists them)"
    if kind == "technology":
        return " (`ledger catalog` lists them)"
    return f" (known: {', '.join(c.label for c in candidates[:20])})"


def _unique(found: Iterable[Candidate]) -> list[Candidate]:
    return list({c.key: c for c in found}.values())


def _all_rows(views: Views, table: str, columns: Sequence[str]) -> list[tuple[Any, ...]]:
    """Every row a view ever held (any day, any position), latest first: names change, and an
    inspector may ask about what was."""
    sql = f"SELECT DISTINCT {', '.join(columns)} FROM {views.db.table(table)} ORDER BY valid_from DESC"
    with views.db.transaction(write=False) as c:
        return c.execute(sql).fetchall()


def _licensed(table: str, column: str) -> Callable[[Views], list[Candidate]]:
    """The reader of institutions or physicians: each licence with every name it was held under."""

    def read(views: Views) -> list[Candidate]:
        names: dict[str, list[str]] = {}
        for licence, name, _ in _all_rows(views, table, (column, "name", "valid_from")):
            names.setdefault(licence, [licence]).append(name)
        return [Candidate(k, f"{v[1]} ({k})", tuple(dict.fromkeys(v))) for k, v in names.items()]

    return read


def _technologies(views: Views) -> list[Candidate]:
    rows = _all_rows(views, "view_catalog", ("catalog", "code", "name", "valid_from"))
    names: dict[str, list[str]] = {}
    for catalog, code, name, _ in rows:
        ref = f"{catalog}:{code}"
        names.setdefault(ref, [ref, code, code.casefold()]).append(name)
    return [Candidate(k, f"{k} {v[3]}", tuple(dict.fromkeys(v))) for k, v in names.items()]


def _provinces(views: Views) -> list[Candidate]:
    return [
        Candidate(j.code, f"{j.code} ({j.name})", (j.code, j.name, *j.aliases, *_without_suffix(j.name)))
        for j in views.jurisdictions
    ]


def _cities(views: Views) -> list[Candidate]:
    rows = _all_rows(views, "view_institutions", ("city", "province", "valid_from"))
    cities = dict.fromkeys(r[0] for r in rows if r[0])
    return [Candidate(c, c, (c, *_without_suffix(c))) for c in cities]


def _without_suffix(name: str) -> tuple[str, ...]:
    """湖南省 → 湖南, 长沙市 → 长沙: how people write a province or city (a name of one
    character, 沙 of 沙区, is too short to mean anything alone)."""
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            return (name.removesuffix(suffix),)
    return ()


_READERS: dict[str, Callable[[Views], list[Candidate]]] = {
    "institution": _licensed("view_institutions", "institution"),
    "physician": _licensed("view_physicians", "physician"),
    "technology": _technologies,
    "province": _provinces,
    "city": _cities,
}


def lookup_of(ctx: click.Context) -> Lookup:
    """The command's ``Lookup``, over the views its command line opened (``open_views``)."""
    obj = ctx.find_root().ensure_object(dict)
    if "lookup" not in obj:
        obj["lookup"] = Lookup(open_views(ctx))
    found: Lookup = obj["lookup"]
    return found


class Named(click.ParamType[Any, Any]):
    """An option naming an institution, physician, technology, province or city: its value is
    resolved (``Lookup.resolve``) to the key the views use, once, before the command runs.
    ``type=Named("institution")`` is all an option needs."""

    def __init__(self, kind: str) -> None:
        if kind not in KINDS:
            raise ValueError(kind)
        self.kind = kind
        self.name = kind

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str) or ctx is None:
            return value
        option = param.opts[0] if param is not None and param.opts else None
        return lookup_of(ctx).resolve(self.kind, value, option)


_SUBJECT_PARTS = {
    "institution": ("institution",),
    "physician": ("physician",),
    "technology": ("technology",),
    "use": ("institution", "technology"),
    "training_base": ("institution", "technology"),
}
"""What each part of a subject (``use:INSTITUTION|TECHNOLOGY``) names; other subjects pass as given."""


class Subject(click.ParamType[Any, Any]):
    """A subject (``institution:湘江示范医院``, ``use:湘江示范医院|S14``) with each part resolved
    as ``Named`` resolves it, to the subject the log keys decisions by."""

    name = "subject"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        kind, sep, rest = value.partition(":") if isinstance(value, str) else ("", "", "")
        parts = _SUBJECT_PARTS.get(kind)
        if ctx is None or not sep or parts is None:
            return value
        values = rest.split("|")
        if len(values) != len(parts):
            self.fail(f"{kind}: takes {'|'.join(p.upper() for p in parts)}", param, ctx)
        option = param.opts[0] if param is not None and param.opts else None
        found = lookup_of(ctx)
        return f"{kind}:" + "|".join(found.resolve(k, v, option) for k, v in zip(parts, values, strict=True))


NAMED_OPTIONS = {
    "institution": "institution",
    "physician": "physician",
    "technology": "technology",
    "province": "province",
    "jurisdiction": "province",
    "city": "city",
}
"""Option names that always name one of ``KINDS`` (a plugin's report's ``--city`` too)."""


class DayText(click.ParamType[str, Any]):
    """A day for an option whose command takes text (a report's ``--as-of``): checked as every
    ``--as-of`` is (``commandline.option_day``, a usage error when bad), passed on as given."""

    name = "YYYY-MM-DD"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        option = param.opts[0] if param is not None and param.opts else "--as-of"
        option_day(value, option)
        return value


def option_type(option: str) -> click.ParamType[Any, Any] | None:
    """How a value of an option called ``option`` is read where the option is declared by name
    only (a report's options): names resolved (``Named``), days checked (``DayText``)."""
    if option == "as-of":
        return DayText()
    kind = NAMED_OPTIONS.get(option)
    return Named(kind) if kind else None


# --- listing institutions and physicians ---------------------------------------------------


def _level_matches(level: str, wanted: str) -> bool:
    """``--level 3``, ``三``, ``三级`` all mean 三级."""
    digits = {"1": "一", "2": "二", "3": "三"}
    wanted = digits.get(wanted.strip(), wanted.strip())
    return level == wanted or level.removesuffix("级") == wanted.removesuffix("级")


def institutions(
    views: Views,
    *,
    name: str | None = None,
    province: str | None = None,
    city: str | None = None,
    level: str | None = None,
    as_of: date | None = None,
    known_at: str | None = None,
) -> list[InstitutionRow]:
    """The institutions registered on ``as_of`` as known at ``known_at``, filtered: ``name`` a
    part of the name (or the licence), ``city`` and ``province`` resolved, ``level`` as 三级 or 3."""
    rows = views.institutions(province, as_of=as_of or localtime.today(), known_at=known_at)
    found = [
        r
        for r in rows
        if (name is None or name in r.name or name == r.institution)
        and (city is None or r.city == city)
        and (level is None or _level_matches(r.level, level))
    ]
    if not found:
        _refuse_a_typo(views, "institution", name)
        if level is not None and not any(_level_matches(r.level, level) for r in rows):
            levels = ", ".join(sorted({r.level for r in rows if r.level}))
            raise NotFound(f"--level: no institution of level {level!r} here (levels: {levels or 'none'})")
    return found


def _refuse_a_typo(views: Views, kind: str, name: str | None) -> None:
    """A ``--name`` that no ``kind`` the ledger ever held contains is a typo, not an empty list:
    refused with the nearest names, as every option that names something is."""
    if name is None:
        return
    candidates = _READERS[kind](views)
    if not any(name in n for c in candidates for n in c.names):
        raise NotFound(f"--name: no {kind} named like {name!r} in the ledger{_hint(name, kind, candidates)}")


@dataclass(frozen=True)
class PhysicianRow:
    physician: str
    name: str
    title: str
    institution: str
    institution_name: str
    city: str
    level: str


def physicians(
    views: Views,
    *,
    name: str | None = None,
    institution: str | None = None,
    province: str | None = None,
    city: str | None = None,
    level: str | None = None,
    as_of: date | None = None,
    known_at: str | None = None,
) -> list[PhysicianRow]:
    """The physicians registered on ``as_of`` (as known at ``known_at``) at the institutions
    ``institutions`` keeps, filtered by a part of the name (or the licence) and the institution."""
    places = {
        i.institution: i
        for i in institutions(views, province=province, city=city, level=level, as_of=as_of, known_at=known_at)
    }
    day = (as_of or localtime.today()).isoformat()
    n = views.position_at(known_at)
    t = views.db.table("view_physicians")
    sql = (
        f"SELECT physician, name, title, institution FROM {t} "
        "WHERE valid_from <= ? AND valid_to > ? AND known_from <= ? AND known_to > ?"
    )
    with views.db.transaction(write=False) as c:
        rows = c.execute(sql, (day, day, n, n)).fetchall()
    found = [
        PhysicianRow(p, pname, title or "", inst, places[inst].name, places[inst].city, places[inst].level)
        for p, pname, title, inst in rows
        if inst in places
        and (institution is None or inst == institution)
        and (name is None or name in pname or name == p)
    ]
    if not found:
        _refuse_a_typo(views, "physician", name)
    return sorted(found, key=lambda r: (r.city, r.institution, r.physician))
