"""Shared hypothesis strategies: valid decision files (DECISIONS.md), as lists of JSON dicts.

``decision_files()`` draws files that a fresh, empty ledger must accept as they are: every
technology, institution and physician is registered earlier in the file with an effective date on
or before every decision that names it; corrections and retractions point at earlier decisions of
the same file; panels satisfy ``ledger.decisions._check_panel``. Every kind of
``ledger.events.EVENT_CLASSES`` can be drawn (``decision_files(kinds=ALL_KINDS)`` draws each at
least once), with and without the optional fields, with plugin fields (``"hunan.form": {…}`` on
filings, valid for the installed plugins; fields of uninstalled plugins, kept verbatim),
Chinese text, integer and decimal amounts. Values are what ``json.loads(…, parse_float=Decimal)``
gives back: strings (dates as ``YYYY-MM-DD``), ints, Decimals, lists, dicts, booleans and None.

``to_jsonl(file)`` writes a file as bytes; ``normalise(obj)`` drops the optional keys whose value is
None (as export does), for comparing what went in with what comes out.

``EXAMPLE_FILE`` is one hand-written file with every kind, for tests that want a fixed one.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import sys
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from hypothesis import strategies as st

from ledger import canonical
from ledger.application import LedgerApplication
from ledger.events import EVENT_CLASSES

ALL_KINDS: tuple[str, ...] = tuple(EVENT_CLASSES)

CATALOGS = ("national", "hunan", "chongqing")
PROVINCES = ("湖南省", "湖南", "重庆市", "北京市")
PUBLIC_KEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
"""A verifier key (the golang.org/x/mod/sumdb/note documentation's example)."""
AUTHORITIES = ("国家卫生健康委", "湖南省卫生健康委员会", "长沙市卫生健康委员会", "重庆市卫生健康委员会", "卫生部")
CITIES = ("长沙市", "湘潭市", "株洲市", "渝中区", "岳阳市")
CATEGORIES = ("医院", "妇幼保健院", "专科医院", "中医医院")
LEVELS = ("三级", "二级", "一级", "未定级")
TITLES = ("主任医师", "副主任医师", "主治医师", "住院医师")
TECH_CLASSES = ("prohibited", "restricted", "class2", "class3", "clinical-research")
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国"
BASES = ("MTM-2018#11", "MTM-2018#25(3)", "HN-2018#二(二)", "湘卫医发〔2018〕11号", "MTM-2009#27", "EVAL-2026#7")
TECH_NAMES = (
    "三级及以上呼吸内镜诊疗技术",
    "人工关节置换技术",
    "同种器官移植技术",
    "肿瘤消融治疗技术",
    "放射性粒子植入治疗技术",
)

FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2035, 12, 31)

# --- small values ---------------------------------------------------------------------------

_cjk = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF)
_free_text = st.text(
    # No surrogates, no C0/C1 controls (refused); tab, newline and return are allowed in text.
    alphabet=st.one_of(
        _cjk,
        st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")),
        st.sampled_from("\t\n\r \"\\'<>=+-@，。（）〔〕"),
    ),
    min_size=1,
    max_size=24,
).filter(lambda s: s.strip() != "")
chinese_text = st.one_of(st.text(alphabet=_cjk, min_size=1, max_size=16), _free_text)
"""Non-empty text with at least one non-space character, mostly Chinese."""

person_names = st.builds(
    lambda s, g: s + g, st.sampled_from(SURNAMES), st.text(alphabet=st.sampled_from(GIVEN), min_size=1, max_size=2)
)


def iso(d: date) -> str:
    return d.isoformat()


dates = st.dates(min_value=FIRST_DAY, max_value=LAST_DAY)
iso_dates = dates.map(iso)

amounts = st.one_of(
    st.integers(min_value=0, max_value=10**9),
    st.decimals(min_value=0, max_value=10**7, places=2, allow_nan=False, allow_infinity=False),
    st.sampled_from([Decimal("1.50"), Decimal("0.5"), Decimal("30000.00"), Decimal("1E+3"), Decimal("2.5E+4")]),
)
"""``amount_yuan``: integers and decimals (trailing zeros and exponents included), never negative."""

_json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.decimals(allow_nan=False, allow_infinity=False, places=3, min_value=-(10**6), max_value=10**6),
    chinese_text,
)
json_values = st.recursive(
    _json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(alphabet=_cjk, min_size=1, max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
"""Any JSON value a plugin field may hold (numbers with a fraction as Decimal, as the parser reads)."""

extension_names = st.sampled_from(["acme.form", "acme-x.code", "guangdong.批次", "third_party.ref", "shenzhen.附件"])
"""Fields of plugins that are not installed: the ledger keeps them verbatim, whatever they hold."""


_acme_form = st.fixed_dictionaries(
    {"表号": chinese_text}, optional={"页": st.integers(1, 99), "附件": st.lists(chinese_text, max_size=2)}
)
_extensions = st.one_of(
    st.just({}),
    st.just({}),
    st.fixed_dictionaries({"acme.form": _acme_form}),
    st.dictionaries(extension_names, json_values, max_size=2),
)


def extensions() -> st.SearchStrategy[dict[str, Any]]:
    """Fields of plugins that are not installed (``{"acme.form": {…}}``), often none.

    The installed plugins validate their own prefixes (``hunan.*``, ``chongqing.*``): those are
    drawn per kind by ``plugin_fields``.
    """
    return _extensions


hunan_forms = st.fixed_dictionaries(
    {},
    optional={
        "医疗机构名称": chinese_text,
        "技术名称": chinese_text,
        "技术编号": st.sampled_from(("S14", "G01")),
        "是否首次开展": st.sampled_from(("是", "否")),
        "是否符合相关医疗技术管理规范要求": st.sampled_from(("是", "否")),
        "技术负责人": st.lists(
            st.fixed_dictionaries({"姓名": person_names}, optional={"职称": chinese_text, "负责科室": chinese_text}),
            min_size=1,
            max_size=2,
        ),
        "备案时间": iso_dates,
    },
)
"""HN-2018 附件2 as ``hunan.form`` (on ``filing.submitted``): possibly incomplete, never ill-shaped."""

_notice = st.tuples(st.dates(min_value=FIRST_DAY, max_value=LAST_DAY - timedelta(days=30)), st.integers(0, 30)).map(
    lambda t: {
        "chongqing.public_notice_start": iso(t[0]),
        "chongqing.public_notice_end": iso(t[0] + timedelta(days=t[1])),
    }
)
_review = st.fixed_dictionaries({"chongqing.expert_review": chinese_text})
_PLUGIN_FIELDS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "filing.submitted": st.one_of(st.just({}), st.fixed_dictionaries({"hunan.form": hunan_forms})),
    "filing.completed": st.one_of(
        st.just({}), _review, _notice, st.tuples(_review, _notice).map(lambda t: t[0] | t[1])
    ),
}
_list_reported_after = st.one_of(st.none(), st.integers(0, 60))


def plugin_fields(kind: str, effective: date) -> st.SearchStrategy[dict[str, Any]]:
    """Fields of the installed plugins, valid for ``kind`` (see plugins/hunan/form.py, chongqing/rules.py)."""
    if kind == "trainee.certified":
        return _list_reported_after.map(
            lambda n: {} if n is None else {"hunan.list_reported": iso(min(effective + timedelta(days=n), LAST_DAY))}
        )
    return _PLUGIN_FIELDS.get(kind, st.just({}))


# --- the file builder -----------------------------------------------------------------------

_plain_text = chinese_text.filter(
    lambda s: s == s.strip() and not any(unicodedata.category(c) in ("Cc", "Cf") for c in s)
)
"""Text that can be an identifier: no hidden character, no white space at either end (ledger.decisions)."""
_authorities = st.one_of(st.sampled_from(AUTHORITIES), _plain_text)
KEEPERS = {
    "national": ("国家卫生健康委", "卫生部"),
    "hunan": ("湖南省卫生健康委员会",),
    "chongqing": ("重庆市卫生健康委员会",),
}
"""Who keeps each catalogue (ledger.competence: the commission the national one, a province its own)."""


@cache
def _declared_bodies() -> Callable[[str], object]:
    """``registry.body`` of the default plugins: a name some plugin declares (under any of its names)."""
    from ledger import competence
    from ledger.plugins import plugin_manager

    return competence.registry(plugin_manager()).body


def _keepers(catalog: str) -> st.SearchStrategy[str]:
    """The body that keeps ``catalog``, or a body the ledger does not know (which it does not judge):
    never another declared body, such as the commission under an older name (卫生计生委)."""
    unknown = _plain_text.filter(lambda name: _declared_bodies()(name) is None)
    return st.one_of(st.sampled_from(KEEPERS[catalog]), unknown)


def _classes(catalog: str) -> tuple[str, ...]:
    """The classes a catalogue may give: only the nation sets the prohibited list (MTM-2018#9–10)."""
    return TECH_CLASSES if catalog == "national" else tuple(c for c in TECH_CLASSES if c != "prohibited")


def _in_catalog(catalog: str, name: str) -> str:
    """A provincial entry's name, never one the nation may prohibit in the same file (MTM-2009#9)."""
    return name if catalog == "national" else f"{name}（{catalog}）"


_bases = st.one_of(st.just(None), st.just("absent"), st.sampled_from(BASES))
_notes = st.one_of(st.just("absent"), st.none(), st.just(""), chinese_text)
_days_after = st.one_of(st.just(0), st.integers(min_value=0, max_value=800))
_tech_names = st.one_of(st.sampled_from(TECH_NAMES), chinese_text)
_versions = st.sampled_from(("湖南省限制类医疗技术目录（2018版）", "国家限制类技术目录（2022版）"))
_institution_names = chinese_text.map(lambda s: s + "医院")
_case_refs = st.from_regex(r"(ZY|门诊)[0-9]{6}", fullmatch=True)
_case_levels = st.sampled_from(("absent", None, 1, 2, 3, 4))
_materials = st.lists(
    st.one_of(st.sampled_from(("备案表", "技术负责人资质", "伦理审查意见")), chinese_text), max_size=3
)
_reasons = st.one_of(st.sampled_from(("MTM-2018#25(3)", "材料不全")), chinese_text)
_texts = st.lists(chinese_text, max_size=3)
_grades = st.dictionaries(chinese_text, st.integers(1, 4), max_size=4)
"""A surgical grading catalogue (``grading_catalogue.published``): procedure → grade 1–4."""
_members = st.lists(person_names, min_size=1, max_size=9, unique=True)
_votes = st.sampled_from(("for", "against"))
OUTCOMES = {"technical-audit": ("pass", "fail"), "evaluation": ("prohibit", "restrict", "strengthen", "no-change")}


@dataclass
class _Known:
    """Something a later decision may name, and the day from which the ledger knows it."""

    value: str
    since: date
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class FileBuilder:
    """Builds one valid decision file, decision by decision, creating what each one needs first."""

    draw: Any
    lines: list[dict[str, Any]] = field(default_factory=list)
    technologies: list[_Known] = field(default_factory=list)
    institutions: list[_Known] = field(default_factory=list)
    physicians: list[_Known] = field(default_factory=list)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    codes: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    prefix: str = "T"

    # -- helpers --

    def choice(self, items: Sequence[Any]) -> Any:
        """One of ``items`` (drawn by index: cheaper than a new ``sampled_from`` per call)."""
        return items[self.draw(st.integers(0, len(items) - 1))]

    def flag(self) -> bool:
        return bool(self.draw(st.booleans()))

    def _id(self) -> str:
        n = next(self.ids)
        style = self.draw(st.integers(0, 2))
        if style == 1:
            return f"{self.prefix.lower()}/{2000 + n % 30}/{n:05d}"
        if style == 2:
            return f"湘-{self.prefix}-{n:04d}"
        return f"{self.prefix}-{n:04d}"

    def _after(self, *known: _Known) -> date:
        """An effective date on or after the day each of ``known`` became known."""
        start = max([k.since for k in known], default=FIRST_DAY)
        return min(start + timedelta(days=self.draw(_days_after)), LAST_DAY)

    def _envelope(self, kind: str, effective: date) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self._id(), "kind": kind, "effective": iso(effective), "by": self.draw(_authorities)}
        basis = self.draw(_bases)
        if basis != "absent":
            d["basis"] = basis
        note = self.draw(_notes)
        if note != "absent":
            d["note"] = note
        return d

    def _finish(self, d: dict[str, Any]) -> dict[str, Any]:
        d.update(self.draw(_extensions))
        d.update(self.draw(plugin_fields(d["kind"], date.fromisoformat(d["effective"]))))
        # JSON objects have no order that matters: write the keys in another order now and then.
        order = self.draw(st.integers(0, 3))
        if order == 1:
            d = dict(reversed(list(d.items())))
        elif order == 2:
            d = dict(sorted(d.items()))
        self.lines.append(d)
        return d

    def _pick(self, pool: list[_Known], make: Any) -> _Known:
        if pool and self.draw(st.integers(0, 3)) > 0:
            chosen: _Known = self.choice(pool)
            return chosen
        made: _Known = make()
        return made

    def technology(self) -> _Known:
        return self._pick(self.technologies, self.list_technology)

    def institution(self) -> _Known:
        return self._pick(self.institutions, self.register_institution)

    def physician(self, institution: _Known | None = None) -> _Known:
        pool = [p for p in self.physicians if institution is None or p.extra["institution"] == institution.value]
        return self._pick(pool, lambda: self.register_physician(institution))

    # -- the creating kinds --

    def list_technology(self) -> _Known:
        catalog = self.choice(CATALOGS)
        code = f"{self.choice('GSPC')}{next(self.codes):02d}"
        effective = self.draw(dates)
        d = self._envelope("technology.listed", effective)
        d |= {
            "by": self.draw(_keepers(catalog)),
            "catalog": catalog,
            "code": code,
            "name": _in_catalog(catalog, self.draw(_tech_names)),
            "class": self.choice(_classes(catalog)),
            "version": self.draw(_versions),
        }
        self._finish(d)
        known = _Known(f"{catalog}:{code}", effective, {"catalog": catalog, "code": code})
        self.technologies.append(known)
        return known

    def register_institution(self) -> _Known:
        effective = self.draw(dates)
        licence = f"4486{len(self.institutions) + 1:04d}{self.choice('X29')}43010211A1001"
        d = self._envelope("institution.registered", effective)
        province = self.choice(PROVINCES)
        d |= {
            "institution": licence,
            "name": self.draw(_institution_names),
            "province": province,
            "city": self.choice(CITIES),
            "category": self.choice(CATEGORIES),
            "level": self.choice(LEVELS),
            "licensing_authority": self.choice(AUTHORITIES),
        }
        self._finish(d)
        known = _Known(licence, effective, {"province": province})
        self.institutions.append(known)
        return known

    def register_physician(self, institution: _Known | None = None) -> _Known:
        institution = institution or self.institution()
        effective = self._after(institution)
        number = f"1104301{len(self.physicians) + 1:08d}"
        d = self._envelope("physician.registered", effective)
        d |= {
            "physician": number,
            "name": self.draw(person_names),
            "institution": institution.value,
            "title": self.choice(TITLES),
        }
        self._finish(d)
        known = _Known(number, effective, {"institution": institution.value})
        self.physicians.append(known)
        return known

    # -- every other kind --

    def add(self, kind: str) -> None:  # noqa: C901 — one branch a kind, each drawing what that kind needs, in order
        if kind == "technology.listed":
            self.list_technology()
        elif kind == "institution.registered":
            self.register_institution()
        elif kind == "physician.registered":
            self.register_physician()
        elif kind in ("technology.reclassified", "technology.delisted"):
            tech = self.technology()
            d = self._envelope(kind, self._after(tech))
            catalog = tech.extra["catalog"]
            d |= {"by": self.draw(_keepers(catalog)), "catalog": catalog, "code": tech.extra["code"]}
            if kind == "technology.reclassified":
                d["class"] = self.choice(_classes(catalog))
            self._finish(d)
        elif kind == "physician.deregistered":
            doc = self.physician()
            inst = self._institution_named(doc.extra["institution"])
            d = self._envelope(kind, self._after(doc, inst))
            d |= {"physician": doc.value, "institution": inst.value}
            self._finish(d)
        elif kind in ("privilege.granted", "privilege.suspended", "privilege.revoked"):
            inst = self.institution()
            doc = self.physician(inst)
            d = self._envelope(kind, self._after(inst, doc))
            d |= {"institution": inst.value, "physician": doc.value}
            if kind == "privilege.granted":
                d["level"] = self.draw(st.integers(1, 4))
                n = self.draw(st.integers(0, 3))
                d["procedures"] = [
                    self.choice(self.technologies).value
                    if self.technologies and self.flag()
                    else self.draw(chinese_text)
                    for _ in range(n)
                ]
            else:
                d["reason"] = self.draw(chinese_text)
            self._finish(d)
        elif kind in USE_KINDS:
            self._use(kind)
        elif kind == "panel.concluded":
            self._panel()
        elif kind == "inspection.recorded":
            inst = self.institution()
            d = self._envelope(kind, self._after(inst))
            d |= {"institution": inst.value, "findings": self.draw(_texts)}
            self._finish(d)
        elif kind == "correction.ordered":
            inst = self.institution()
            which = self.choice(("technology", "absent", "null"))
            ordered_tech = self.technology() if which == "technology" else None
            d = self._envelope(kind, self._after(inst, *([ordered_tech] if ordered_tech else [])))
            d["institution"] = inst.value
            if which != "absent":
                d["technology"] = ordered_tech.value if ordered_tech else None
            d["deadline"] = self.draw(iso_dates)
            self._finish(d)
        elif kind == "grading_catalogue.published":
            inst = self.institution()
            d = self._envelope(kind, self._after(inst))
            d |= {"institution": inst.value, "procedures": self.draw(_grades)}
            if self.flag():
                d["version"] = self.draw(chinese_text)
            self._finish(d)
        elif kind == "penalty.imposed":
            inst = self.institution()
            d = self._envelope(kind, self._after(inst))
            d |= {"institution": inst.value, "amount_yuan": self.draw(amounts), "reason": self.draw(chinese_text)}
            self._finish(d)
        elif kind == "decision.corrected":
            self._correction()
        elif kind == "decision.retracted":
            targets = [d for d in self.lines if d["kind"] not in ("decision.retracted", "authority.key_registered")]
            if not targets:
                self.register_institution()
                targets = [d for d in self.lines if d["kind"] != "authority.key_registered"]
            target = self.choice(targets)
            d = self._envelope(kind, self._day_after(target))
            # By the author (ledger.competence: a decision's author, or a body above it, retracts it).
            d |= {"by": target["by"], "retracts": target["id"], "reason": self.draw(chinese_text)}
            self._finish(d)
        elif kind == "authority.key_registered":
            # An authority no other generated decision is `by`: its later decisions would need
            # signatures, which tests/ledger/test_authority.py covers on its own.
            d = self._envelope(kind, self._after())
            # Registered by the authority itself (its first key: docs/reliability.md, "Trust model").
            holder = f"KEYHOLDER-{self.prefix}-{len(self.lines)}"
            d |= {"by": holder, "authority": holder, "public_key": PUBLIC_KEY}
            self._finish(d)
        else:  # pragma: no cover - a kind added to ledger.events must be added here too
            msg = f"tests/strategies.py cannot draw a {kind!r} decision yet"
            raise NotImplementedError(msg)

    def _institution_named(self, licence: str) -> _Known:
        return next(i for i in self.institutions if i.value == licence)

    def _day_after(self, target: dict[str, Any]) -> date:
        return min(date.fromisoformat(target["effective"]) + timedelta(days=self.draw(st.integers(0, 90))), LAST_DAY)

    def _use(self, kind: str) -> None:
        inst = self.institution()
        tech = self.technology()
        d = self._envelope(kind, date.min)  # the date is fixed below, once every reference is known
        refs = [inst, tech]
        d |= {"institution": inst.value, "technology": tech.value}
        if kind == "review.concluded":
            d["committee"] = self.choice(("management", "ethics"))
            d["outcome"] = self.choice(("approved", "rejected"))
        elif kind == "case.performed":
            doc = self.physician(inst)
            refs.append(doc)
            d["physician"] = doc.value
            d["case"] = self.draw(_case_refs)
            level = self.draw(_case_levels)
            if level != "absent":
                d["level"] = level
        elif kind == "self_assessment.concluded":
            d["outcome"] = self.choice(("meets", "does-not-meet"))
            if self.flag():
                d["standard"] = self.draw(chinese_text)
        elif kind == "filing.submitted":
            lead = self.physician(inst)
            refs.append(lead)
            d["technical_lead"] = lead.value
            d["materials"] = self.draw(_materials)
        elif kind in ("filing.rejected", "use.suspended", "use.stopped", "training_base.stopped"):
            d["reason"] = self.draw(_reasons)
        elif kind == "training_base.filed":
            d["enrolment_notice"] = self.draw(iso_dates)
        elif kind == "trainee.certified":
            doc = self.physician()
            refs.append(doc)
            d["physician"] = doc.value
        d["effective"] = iso(self._after(*refs))
        self._finish(d)

    def _panel(self) -> None:
        panel = self.choice(("technical-audit", "evaluation"))
        tech = self.technology()
        refs = [tech]
        members = self.draw(_members)
        recused = [m for m in members[1:] if self.draw(st.integers(0, 3)) == 0]
        voters = [m for m in members if m not in recused]
        votes = {m: self.draw(_votes) for m in voters if self.draw(st.integers(0, 4)) > 0}
        d = self._envelope("panel.concluded", date.min)
        d |= {"panel": panel, "technology": tech.value}
        if panel == "technical-audit" or self.flag():
            inst = self.institution()
            refs.append(inst)
            d["institution"] = inst.value
        elif self.flag():
            d["institution"] = None
        d |= {"members": members, "recused": recused, "votes": votes, "outcome": self.choice(OUTCOMES[panel])}
        d["effective"] = iso(self._after(*refs))
        self._finish(d)

    def _correction(self) -> None:
        unkeyed = ("decision.corrected", "decision.retracted", "authority.key_registered")
        targets = [d for d in self.lines if d["kind"] not in unkeyed]
        if not targets:
            self.register_institution()
            targets = [d for d in self.lines if d["kind"] not in unkeyed]
        target = self.choice(targets)
        choices = correctable_fields(target)
        names = sorted(choices)
        picked = sorted({self.choice(names) for _ in range(self.draw(st.integers(1, 3)))})
        fields = {name: self.draw(choices[name]) for name in picked}
        d = self._envelope("decision.corrected", self._day_after(target))
        d |= {"by": target["by"], "corrects": target["id"], "fields": fields}
        self._finish(d)


USE_KINDS = frozenset(
    {
        "review.concluded",
        "self_assessment.concluded",
        "case.performed",
        "filing.submitted",
        "filing.completed",
        "filing.rejected",
        "use.suspended",
        "use.resumed",
        "use.stopped",
        "training_base.filed",
        "training_base.stopped",
        "trainee.certified",
    }
)


_COMMON_CORRECTIONS: dict[str, st.SearchStrategy[Any]] = {
    "effective": iso_dates,
    "by": _authorities,
    "basis": st.one_of(st.sampled_from(BASES), st.none()),
    "note": st.one_of(chinese_text, st.just(""), st.none()),
    "acme.form": st.fixed_dictionaries({"表号": chinese_text}),
}
_KIND_CORRECTIONS: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "technology.listed": {"name": chinese_text, "class": st.sampled_from(TECH_CLASSES), "version": chinese_text},
    "technology.reclassified": {"class": st.sampled_from(TECH_CLASSES)},
    "institution.registered": {
        "name": chinese_text,
        "province": st.sampled_from(PROVINCES),
        "city": st.sampled_from(CITIES),
        "category": st.sampled_from(CATEGORIES),
        "level": st.sampled_from(LEVELS),
        "licensing_authority": st.sampled_from(AUTHORITIES),
    },
    "physician.registered": {"name": person_names, "title": st.sampled_from(TITLES)},
    "review.concluded": {
        "committee": st.sampled_from(("management", "ethics")),
        "outcome": st.sampled_from(("approved", "rejected")),
    },
    "case.performed": {"case": _case_refs, "level": st.sampled_from((None, 1, 2, 3, 4))},
    "filing.submitted": {"materials": _texts},
    "filing.rejected": {"reason": chinese_text},
    "use.suspended": {"reason": chinese_text},
    "use.stopped": {"reason": chinese_text},
    "privilege.granted": {"level": st.integers(1, 4), "procedures": st.lists(chinese_text, max_size=2)},
    "privilege.suspended": {"reason": chinese_text},
    "privilege.revoked": {"reason": chinese_text},
    "training_base.filed": {"enrolment_notice": iso_dates},
    "training_base.stopped": {"reason": chinese_text},
    "inspection.recorded": {"findings": _texts},
    "correction.ordered": {"deadline": iso_dates},
    "penalty.imposed": {"amount_yuan": amounts, "reason": chinese_text},
    "self_assessment.concluded": {"outcome": st.sampled_from(("meets", "does-not-meet"))},
    "grading_catalogue.published": {"procedures": _grades},
    "panel.concluded": {},  # outcome and votes depend on the panel: see correctable_fields
}


def correctable_fields(target: dict[str, Any]) -> dict[str, st.SearchStrategy[Any]]:
    """Per field a correction of ``target`` may change, a strategy of valid new values.

    Never a subject field (catalog, code, institution, physician, technology, panel) and never a
    reference (technical_lead): those are retracted and recorded anew.
    """
    kind = target["kind"]
    out = _COMMON_CORRECTIONS | _KIND_CORRECTIONS.get(kind, {})
    if kind.startswith("technology."):  # what its catalogue's keeper may decide (ledger.competence)
        catalog = target["catalog"]
        out = out | {"by": _keepers(catalog)}
        if kind != "technology.delisted":  # a delisting has no class to correct
            out["class"] = st.sampled_from(_classes(catalog))
        if "name" in out:
            out["name"] = chinese_text.map(lambda name: _in_catalog(catalog, name))
    if kind == "panel.concluded":
        out["outcome"] = st.sampled_from(OUTCOMES[target["panel"]])
        voters = tuple(m for m in target["members"] if m not in target["recused"])
        if voters:
            out["votes"] = st.dictionaries(st.sampled_from(voters), _votes)
    return out


@st.composite
def _decision_files(draw: Any, kinds: tuple[str, ...], max_extra: int, prefix: str) -> list[dict[str, Any]]:
    builder = FileBuilder(draw, prefix=prefix)
    wanted = list(kinds) + draw(st.lists(st.sampled_from(ALL_KINDS), max_size=max_extra))
    for kind in draw(st.permutations(wanted)):
        builder.add(kind)
    return builder.lines


def decision_files(
    *, kinds: Sequence[str] = (), max_extra: int = 12, prefix: str = "T"
) -> st.SearchStrategy[list[dict[str, Any]]]:
    """Valid decision files for an empty ledger: each of ``kinds`` at least once, plus up to
    ``max_extra`` decisions of any kind, plus whatever they need registered first.

    ``decision_files(kinds=ALL_KINDS)`` has every kind in every file. ``prefix`` starts every id
    (files meant for the same ledger need different prefixes).
    """
    unknown = set(kinds) - set(ALL_KINDS)
    if unknown:
        msg = f"unknown kinds {sorted(unknown)}"
        raise ValueError(msg)
    return _decision_files(tuple(kinds), max_extra, prefix)


def to_jsonl(lines: Iterable[dict[str, Any]]) -> bytes:
    """A decision file's bytes: one canonical JSON object per line, UTF-8."""
    return "".join(canonical.dumps(d) + "\n" for d in lines).encode("utf-8")


def parse_jsonl(text: str | bytes) -> list[dict[str, Any]]:
    """The objects of a JSON Lines text, numbers with a fraction as Decimal (as the ledger reads)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    # Split on newlines only: str.splitlines() would also split inside text at U+2028, U+0085….
    return [json.loads(line, parse_float=Decimal) for line in text.split("\n") if line.strip()]


OPTIONAL_TOP_LEVEL = frozenset({"basis", "note", "level", "institution", "technology"})


def normalise(obj: dict[str, Any]) -> dict[str, Any]:
    """A decision as export writes it back: top-level keys whose value is None left out.

    (Only optional keys can be None in a valid file; the values inside ``fields`` of a correction
    and inside plugin fields are kept as they are.)
    """
    return {k: v for k, v in obj.items() if v is not None}


# --- a fixed file with every kind -----------------------------------------------------------

HOSPITAL = "44860321X43010211A1001"
CLINIC = "44953360243030211A1001"
SURGEON = "110430100000001"
RESIDENT = "110430100000002"

EXAMPLE_FILE: list[dict[str, Any]] = [
    {"id": "EX-01", "kind": "technology.listed", "effective": "2018-11-19", "by": "湖南省卫生健康委员会",
     "basis": "HN-2018#二(二)", "catalog": "hunan", "code": "S14", "name": "人工关节置换技术", "class": "restricted",
     "version": "湖南省限制类医疗技术目录（2018版）", "note": "湘卫医发〔2018〕11号附件1。"},
    {"id": "EX-02", "kind": "technology.listed", "effective": "2018-11-19", "by": "国家卫生健康委",
     "catalog": "national", "code": "G01", "name": "同种胰岛移植技术", "class": "restricted",
     "version": "国家限制类技术目录（2018版）"},
    {"id": "EX-03", "kind": "institution.registered", "effective": "2003-09-18", "by": "长沙市卫生局",
     "institution": HOSPITAL, "name": "湘江示范医院", "province": "湖南省", "city": "长沙市", "category": "医院",
     "level": "三级", "licensing_authority": "长沙市卫生健康委员会", "acme.form": {"表号": "湘卫医-01", "页": 2}},
    {"id": "EX-04", "kind": "institution.registered", "effective": "2005-11-21", "by": "重庆市卫生局",
     "institution": CLINIC, "name": "山城示范医院", "province": "重庆市", "city": "渝中区", "category": "医院",
     "level": "二级", "licensing_authority": "重庆市卫生健康委员会"},
    {"id": "EX-05", "kind": "physician.registered", "effective": "2010-03-01", "by": "长沙市卫生健康委员会",
     "physician": SURGEON, "name": "胡德明", "institution": HOSPITAL, "title": "主任医师"},
    {"id": "EX-06", "kind": "physician.registered", "effective": "2012-07-01", "by": "长沙市卫生健康委员会",
     "physician": RESIDENT, "name": "彭小兰", "institution": HOSPITAL, "title": "住院医师"},
    {"id": "EX-07", "kind": "review.concluded", "effective": "2019-01-10", "by": HOSPITAL,
     "institution": HOSPITAL, "technology": "hunan:S14", "committee": "ethics", "outcome": "approved"},
    {"id": "EX-08", "kind": "privilege.granted", "effective": "2019-01-15", "by": HOSPITAL, "basis": "MTM-2018#20",
     "institution": HOSPITAL, "physician": SURGEON, "level": 4, "procedures": ["hunan:S14", "膝关节置换"]},
    {"id": "EX-09", "kind": "case.performed", "effective": "2019-04-22", "by": HOSPITAL, "institution": HOSPITAL,
     "technology": "hunan:S14", "physician": SURGEON, "case": "ZY2019000123", "level": 4},
    {"id": "EX-10", "kind": "case.performed", "effective": "2019-04-23", "by": HOSPITAL, "institution": HOSPITAL,
     "technology": "hunan:S14", "physician": SURGEON, "case": "ZY2019000124"},
    {"id": "EX-11", "kind": "filing.submitted", "effective": "2019-05-06", "by": HOSPITAL, "institution": HOSPITAL,
     "technology": "hunan:S14", "technical_lead": SURGEON, "materials": ["备案表", "技术负责人资质"],
     "hunan.form": {"技术名称": "人工关节置换技术", "技术编号": "S14", "是否首次开展": "是",
                    "技术负责人": [{"姓名": "胡德明", "职称": "主任医师", "负责科室": "骨科"}]}},
    {"id": "EX-12", "kind": "filing.completed", "effective": "2019-05-14", "by": "湖南省卫生健康委员会",
     "institution": HOSPITAL, "technology": "hunan:S14", "guangdong.批次": None},
    {"id": "EX-13", "kind": "filing.rejected", "effective": "2019-06-01", "by": "湖南省卫生健康委员会",
     "institution": HOSPITAL, "technology": "national:G01", "reason": "材料不全"},
    {"id": "EX-14", "kind": "use.suspended", "effective": "2020-02-01", "by": "湖南省卫生健康委员会",
     "institution": HOSPITAL, "technology": "hunan:S14", "reason": "MTM-2018#25(3)"},
    {"id": "EX-15", "kind": "use.resumed", "effective": "2020-05-01", "by": "湖南省卫生健康委员会",
     "institution": HOSPITAL, "technology": "hunan:S14"},
    {"id": "EX-16", "kind": "privilege.suspended", "effective": "2020-06-01", "by": HOSPITAL,
     "institution": HOSPITAL, "physician": RESIDENT, "reason": "考核不合格"},
    {"id": "EX-17", "kind": "privilege.revoked", "effective": "2020-07-01", "by": HOSPITAL,
     "institution": HOSPITAL, "physician": RESIDENT, "reason": "调离岗位"},
    {"id": "EX-18", "kind": "training_base.filed", "effective": "2020-09-01", "by": "湖南省卫生健康委员会",
     "institution": HOSPITAL, "technology": "hunan:S14", "enrolment_notice": "2020-08-28"},
    {"id": "EX-19", "kind": "trainee.certified", "effective": "2021-03-01", "by": HOSPITAL,
     "physician": RESIDENT, "institution": HOSPITAL, "technology": "hunan:S14"},
    {"id": "EX-20", "kind": "training_base.stopped", "effective": "2021-09-01", "by": "湖南省卫生健康委员会",
     "institution": HOSPITAL, "technology": "hunan:S14", "reason": "不再符合条件"},
    {"id": "EX-21", "kind": "panel.concluded", "effective": "2021-06-15", "by": "湖南省卫生健康委员会",
     "basis": "MTM-2009#27", "panel": "technical-audit", "technology": "hunan:S14", "institution": HOSPITAL,
     "members": ["胡德明", "彭小兰", "邹建军", "谢文斌", "黎春华"], "recused": ["黎春华"],
     "votes": {"胡德明": "for", "彭小兰": "for", "邹建军": "against", "谢文斌": "for"}, "outcome": "pass"},
    {"id": "EX-22", "kind": "panel.concluded", "effective": "2022-04-16", "by": "国家卫生健康委",
     "basis": "EVAL-2026#7", "panel": "evaluation", "technology": "national:G01",
     "members": ["赵明远", "钱立群", "孙慧敏"], "recused": [], "votes": {"赵明远": "for", "钱立群": "for"},
     "outcome": "strengthen"},
    {"id": "EX-23", "kind": "inspection.recorded", "effective": "2022-05-10", "by": "湖南省卫生健康委员会",
     "institution": HOSPITAL, "findings": ["未按规定逐例报送", "备案材料不全"]},
    {"id": "EX-24", "kind": "correction.ordered", "effective": "2022-05-11", "by": "湖南省卫生健康委员会",
     "institution": HOSPITAL, "technology": "hunan:S14", "deadline": "2022-06-30"},
    {"id": "EX-25", "kind": "correction.ordered", "effective": "2022-05-11", "by": "湖南省卫生健康委员会",
     "institution": HOSPITAL, "deadline": "2022-07-31"},
    {"id": "EX-26", "kind": "penalty.imposed", "effective": "2022-08-01", "by": "湖南省卫生健康委员会",
     "institution": HOSPITAL, "amount_yuan": 30000, "reason": "MTM-2018#46"},
    {"id": "EX-27", "kind": "penalty.imposed", "effective": "2022-08-02", "by": "湖南省卫生健康委员会",
     "institution": CLINIC, "amount_yuan": Decimal("1500.50"), "reason": "未按期整改"},
    {"id": "EX-28", "kind": "use.stopped", "effective": "2023-01-01", "by": "湖南省卫生健康委员会",
     "institution": HOSPITAL, "technology": "national:G01", "reason": "MTM-2018#25(3)"},
    {"id": "EX-29", "kind": "technology.reclassified", "effective": "2023-02-01", "by": "湖南省卫生健康委员会",
     "catalog": "hunan", "code": "S14", "class": "class2"},
    {"id": "EX-30", "kind": "technology.delisted", "effective": "2024-01-01", "by": "国家卫生健康委",
     "catalog": "national", "code": "G01"},
    {"id": "EX-31", "kind": "physician.deregistered", "effective": "2024-03-01", "by": "长沙市卫生健康委员会",
     "physician": RESIDENT, "institution": HOSPITAL},
    {"id": "EX-32", "kind": "decision.corrected", "effective": "2024-04-01", "by": "湖南省卫生健康委员会",
     "corrects": "EX-26", "fields": {"amount_yuan": 20000, "reason": "MTM-2018#46（复核后）"}},
    {"id": "EX-33", "kind": "decision.retracted", "effective": "2024-04-02", "by": HOSPITAL,
     "retracts": "EX-10", "reason": "重复报送"},
    {"id": "EX-KEY", "kind": "authority.key_registered", "effective": "2024-05-01", "by": "KEYHOLDER-EX",
     "authority": "KEYHOLDER-EX", "public_key": PUBLIC_KEY},
    {"id": "EX-SA", "kind": "self_assessment.concluded", "effective": "2019-01-08", "by": HOSPITAL,
     "basis": "MTM-2018#11", "institution": HOSPITAL, "technology": "national:G01", "outcome": "meets",
     "standard": "同种胰岛移植技术管理规范"},
    {"id": "EX-GC", "kind": "grading_catalogue.published", "effective": "2019-01-02", "by": CLINIC,
     "basis": "MTM-2018#24", "institution": CLINIC, "procedures": {"人工膝关节置换术": 4, "阑尾切除术": 2},
     "version": "2019年版"},
]  # fmt: skip
"""One decision of every kind (two of some), valid for an empty ledger, in this order."""

assert {d["kind"] for d in EXAMPLE_FILE} == set(ALL_KINDS), "EXAMPLE_FILE must cover every kind"


@cache
def bench_script(name: str) -> ModuleType:
    """``bench/<name>.py`` as a module (the benchmark's scripts are not a package)."""
    path = Path(__file__).resolve().parent.parent / "bench" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def bench_generator() -> ModuleType:
    """``bench/generate.py``: the national-scale generator whose files the benchmark, verify's
    fast path and the trail's read path are tested on."""
    return bench_script("generate")


@contextmanager
def opened_ledger(location: Path | str) -> Iterator[LedgerApplication]:
    """A ledger opened at ``location`` (a SQLite file or a PostgreSQL URL), closed when the block ends."""
    app = LedgerApplication.open(str(location))
    try:
        yield app
    finally:
        app.close()


# --- histories of uses, for the standing of a use (tests/projections/test_standing.py) ----------

STANDING_HOSPITALS = ("43010000000000011A1001", "43010000000000021A1001", "44010000000000011A1001")
"""Two in Hunan (湘江测试医院, 星城测试医院: HN-2018#六(一), 2019-01-31) and one in a province no plugin
speaks for (MTM-2018#49's national date, 2019-02-01)."""
STANDING_LEAD = "110430100000011"
STANDING_TECHNOLOGIES = ("national:Z01", "national:Z02")
_STANDING_DAYS = (
    "2016-04-06",
    "2018-10-15",
    "2018-12-01",
    "2019-01-20",
    "2019-01-31",
    "2019-02-01",
    "2019-03-01",
    "2019-06-01",
    "2020-01-10",
    "2020-03-01",
    "2021-01-05",
    "2022-04-19",
)
_DELISTED_ON = "2022-04-20"


def standing_base() -> list[dict[str, Any]]:
    """Two restricted technologies, the hospitals, and a technical lead registered at each."""
    out: list[dict[str, Any]] = [
        {
            "id": f"SB-T{i}",
            "kind": "technology.listed",
            "effective": "2015-06-29",
            "by": "国家卫生健康委",
            "catalog": ref.split(":")[0],
            "code": ref.split(":")[1],
            "name": f"测试技术{i}",
            "class": "restricted",
            "version": "限制临床应用的医疗技术（2015版）",
        }
        for i, ref in enumerate(STANDING_TECHNOLOGIES)
    ]
    names = ("湘江测试医院", "星城测试医院", "珠江测试医院")
    places = (
        ("湖南省", "长沙市", "长沙市卫生健康委员会"),
        ("湖南省", "长沙市", "长沙市卫生健康委员会"),
        ("广东省", "广州市", "广州市卫生健康委员会"),
    )
    for i, (institution, name, (province, city, authority)) in enumerate(
        zip(STANDING_HOSPITALS, names, places, strict=True)
    ):
        out.append(
            {
                "id": f"SB-I{i}",
                "kind": "institution.registered",
                "effective": "2010-01-01",
                "by": authority,
                "institution": institution,
                "name": name,
                "province": province,
                "city": city,
                "category": "医院",
                "level": "三级",
                "licensing_authority": authority,
            }
        )
        out.append(
            {
                "id": f"SB-P{i}",
                "kind": "physician.registered",
                "effective": "2010-01-01",
                "by": authority,
                "physician": STANDING_LEAD,
                "name": "胡德明",
                "institution": institution,
                "title": "主任医师",
            }
        )
    return out


@st.composite
def standing_histories(draw: Any, max_size: int = 14) -> list[dict[str, Any]]:
    """Histories of the uses of ``standing_base``: submissions, completions, refusals, suspensions,
    resumptions, stops, cases, retractions (on the retracted decision's day or later), a technology
    reclassified prohibited, the other delisted; days on both sides of the grandfather dates
    (2019-01-31 in Hunan, 2019-02-01 nationally). Recorded in any order of their days."""
    out: list[dict[str, Any]] = []
    retractable: list[dict[str, Any]] = []
    for k, (institution, technology) in enumerate(
        draw(
            st.lists(
                st.tuples(st.sampled_from(STANDING_HOSPITALS), st.sampled_from(STANDING_TECHNOLOGIES)),
                max_size=3,
                unique=True,
            )
        )
    ):  # uses filed under the 2015 list, to lapse or be filed again (MTM-2018#49)
        out.append(
            {
                "id": f"SO-{k}S",
                "kind": "filing.submitted",
                "effective": "2016-04-06",
                "by": institution,
                "institution": institution,
                "technology": technology,
                "technical_lead": STANDING_LEAD,
                "materials": ["临床应用备案表"],
            }
        )
        out.append(
            {
                "id": f"SO-{k}K",
                "kind": "filing.completed",
                "effective": "2016-04-20",
                "by": "长沙市卫生健康委员会",
                "institution": institution,
                "technology": technology,
            }
        )
        retractable.extend(out[-2:])
    for k in range(draw(st.integers(1, max_size))):
        did = f"SH-{k:02d}"
        kind = draw(
            st.sampled_from(
                (
                    "filing.submitted",
                    "filing.submitted",
                    "filing.completed",
                    "filing.completed",
                    "filing.rejected",
                    "use.suspended",
                    "use.resumed",
                    "use.stopped",
                    "case.performed",
                    "decision.retracted",
                )
            )
        )
        if kind == "decision.retracted":
            if not retractable:
                continue
            target = draw(st.sampled_from(retractable))
            retractable.remove(target)
            later = [day for day in _STANDING_DAYS if day >= target["effective"]] or [target["effective"]]
            out.append(
                {
                    "id": did,
                    "kind": kind,
                    "effective": draw(st.sampled_from(later)),
                    "by": target["by"],
                    "retracts": target["id"],
                    "reason": "撤回",
                }
            )
            continue
        institution = draw(st.sampled_from(STANDING_HOSPITALS))
        technology = draw(st.sampled_from(STANDING_TECHNOLOGIES))
        d: dict[str, Any] = {
            "id": did,
            "kind": kind,
            "effective": draw(st.sampled_from(_STANDING_DAYS)),
            "by": institution,
            "institution": institution,
            "technology": technology,
        }
        if kind == "filing.submitted":
            d |= {"technical_lead": STANDING_LEAD, "materials": ["临床应用备案表"]}
        elif kind in ("filing.completed", "filing.rejected", "use.suspended", "use.stopped"):
            d["by"] = "长沙市卫生健康委员会"
            if kind == "filing.rejected":
                d["reason"] = "材料不全"
            elif kind != "filing.completed":
                d["reason"] = "MTM-2018#25(3)"
        elif kind == "case.performed":
            d |= {"physician": STANDING_LEAD, "case": did}
        out.append(d)
        if kind != "case.performed":
            retractable.append(d)
    if draw(st.booleans()):
        ref = STANDING_TECHNOLOGIES[0]
        out.insert(
            draw(st.integers(0, len(out))),
            {
                "id": "SH-RC",
                "kind": "technology.reclassified",
                "effective": draw(st.sampled_from(_STANDING_DAYS)),
                "by": "国家卫生健康委",
                "catalog": ref.split(":")[0],
                "code": ref.split(":")[1],
                "class": "prohibited",
            },
        )
    if draw(st.booleans()):  # after every decision naming it: a reference must be known on its day
        ref = STANDING_TECHNOLOGIES[1]
        out.append(
            {
                "id": "SH-DL",
                "kind": "technology.delisted",
                "effective": _DELISTED_ON,
                "by": "国家卫生健康委",
                "catalog": ref.split(":")[0],
                "code": ref.split(":")[1],
            }
        )
    return out
