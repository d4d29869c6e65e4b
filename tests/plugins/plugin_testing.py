"""Helpers for the plugins' tests: decision lists in memory, Facts per scope, findings — no database.

(A module, not ``conftest.py``: a second ``conftest`` module without ``__init__.py`` would replace the
root one in ``sys.modules`` under pytest's default import mode, and tests that ``from conftest
import …`` would get this one.)

Rules are judged on ``Facts`` exactly as ``projections.views.Views.findings_for`` builds them, but
from an in-memory log: a scope is an institution (every decision naming it, plus the corrections
and retractions of those) or the national scope (panels naming no institution). The catalogue
lookup (``tech_class``) is a timeline per technology built once from the same log.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import pluggy

import plugins.chongqing
import plugins.hunan
import plugins.national
from ledger.competence import registry
from ledger.decisions import DecisionRecord, parse_line
from ledger.jurisdictions import NATIONAL
from ledger.plugins import jurisdictions, make_plugin_manager
from ledger.workdays import WorkdayCalendar
from projections.facts import Facts
from projections.findings import Deadline, Finding, Rule
from projections.replay import resolve

Log = list[tuple[int, DecisionRecord]]

NATIONAL_CATALOG = plugins.national.DATA / "catalog.jsonl"
HUNAN_CATALOG = plugins.hunan.DATA / "catalog.jsonl"
HUNAN_DEMO = plugins.hunan.DATA / "demo.jsonl"
CHONGQING_CATALOG = plugins.chongqing.DATA / "catalog.jsonl"
CHONGQING_DEMO = plugins.chongqing.DATA / "demo.jsonl"

XIANGJIANG = "44860321X43010211A1001"  # 湘江示范医院 (长沙市)
LIANCHENG = "44953360243030211A1001"  # 莲城示范医院 (湘潭市)
XINGCHENG = "44871105643010521A1001"  # 星城示范妇幼保健院 (长沙市)
XIANGDONG = "55063217843020311A1001"  # 湘东示范医院 (株洲市)
YUZHOU = "45038217650010611A1001"  # 渝州示范医院 (委属, 重庆)
ELING = "45291038X50010311A1001"  # 鹅岭示范医院 (渝中区)


def read(*paths: Path) -> list[DecisionRecord]:
    """The decisions of decision files, in file order (blank lines skipped)."""
    out = []
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                out.append(parse_line(line))
    return out


def log_of(records: Iterable[DecisionRecord | dict[str, Any]], start: int = 1) -> Log:
    """Number decisions (or JSON-like dicts, parsed through ``parse_line``) as a log from ``start``."""
    out = []
    for i, r in enumerate(records, start):
        out.append((i, r if isinstance(r, DecisionRecord) else parse_line(json.dumps(r, ensure_ascii=False))))
    return out


def demo_log() -> Log:
    """Every plugin's reference data, then the demo histories — as ``ledger demo`` records them."""
    return log_of(read(NATIONAL_CATALOG, HUNAN_CATALOG, CHONGQING_CATALOG, HUNAN_DEMO, CHONGQING_DEMO))


class TechClasses:
    """``(ref, day) -> class`` from the technology decisions of a log (corrections applied)."""

    def __init__(self, log: Log, known_at: int | None = None) -> None:
        timeline: dict[str, list[tuple[date, str | None]]] = {}
        catalog_log = [(p, r) for p, r in log if r.kind.startswith(("technology.", "decision."))]
        for item in resolve(catalog_log, known_at=known_at):
            r = item.record
            if not r.kind.startswith("technology."):
                continue
            ref = f"{r.fields['catalog']}:{r.fields['code']}"
            cls = None if r.kind == "technology.delisted" else r.fields["class"]
            timeline.setdefault(ref, []).append((r.effective, cls))
        self._days = {ref: [d for d, _ in items] for ref, items in timeline.items()}
        self._classes = {ref: [c for _, c in items] for ref, items in timeline.items()}

    def __call__(self, ref: str, on: date) -> str | None:
        days = self._days.get(ref)
        if not days:
            return None
        i = bisect_right(days, on)
        return self._classes[ref][i - 1] if i else None


def plugin_manager(**kwargs: Any) -> pluggy.PluginManager:
    """A plugin manager with the built-in plugins (``disabled`` defaults to none, whatever the env says)."""
    kwargs.setdefault("disabled", frozenset())
    return make_plugin_manager(**kwargs)


def rules_of(pm: pluggy.PluginManager) -> list[Rule]:
    return sorted((r for rs in pm.hook.ledger_rules() for r in rs or ()), key=lambda r: r.id)


def deadlines_of(pm: pluggy.PluginManager) -> list[Deadline]:
    return sorted(
        (d for ds in pm.hook.ledger_deadlines() for d in ds or ()), key=lambda d: (d.name, d.jurisdiction, d.valid_from)
    )


def calendars_of(pm: pluggy.PluginManager) -> Callable[[str], WorkdayCalendar]:
    cache: dict[str, WorkdayCalendar] = {}

    def calendar(jurisdiction: str) -> WorkdayCalendar:
        if jurisdiction not in cache:
            years = [y for ys in pm.hook.ledger_calendar_years(jurisdiction=jurisdiction) for y in ys or ()]
            cache[jurisdiction] = WorkdayCalendar.china(years)
        return cache[jurisdiction]

    return calendar


def institutions_in(log: Log) -> list[str]:
    return sorted({r.fields["institution"] for _, r in log if r.kind == "institution.registered"})


def scope_log(log: Log, institution: str | None) -> Log:
    """The decisions of one scope, with the corrections and retractions of those decisions."""
    chosen: set[str] = set()
    out = []
    for p, r in log:
        if r.kind in ("decision.corrected", "decision.retracted"):
            target = r.fields.get("corrects") or r.fields.get("retracts")
            if target in chosen:
                out.append((p, r))
            continue
        if institution is None:
            keep = r.kind == "panel.concluded" and "institution" not in r.fields
        else:
            keep = r.fields.get("institution") == institution
        if keep:
            chosen.add(r.id)
            out.append((p, r))
    return out


def facts_for(
    log: Log,
    institution: str | None,
    *,
    as_of: date,
    pm: pluggy.PluginManager | None = None,
    known_at: int | None = None,
    tech_class: Callable[[str, date], str | None] | None = None,
    calendar_for: Callable[[str], WorkdayCalendar] | None = None,
) -> Facts:
    """The Facts of one scope (``None``: national) as ``Views.findings_for`` builds them."""
    pm = pm or plugin_manager()
    mine = scope_log(log, institution)
    decisions = resolve(mine, as_of=as_of, known_at=known_at)
    jurisdiction: str | None = NATIONAL
    if institution is not None:
        regs = [d.record for d in decisions if d.record.kind == "institution.registered"]
        province = regs[-1].fields["province"] if regs else None
        jurisdiction = next((j.code for j in jurisdictions(pm) if province and j.matches(province)), None)
    return Facts(
        scope=f"institution:{institution}" if institution else NATIONAL,
        jurisdiction=jurisdiction,
        as_of=as_of,
        decisions=decisions,
        tech_class=tech_class or TechClasses(log, known_at),
        calendar_for=calendar_for or calendars_of(pm),
        deadlines=deadlines_of(pm),
        bodies=registry(pm),
    )


def judge(
    log: Log,
    *,
    as_of: date,
    pm: pluggy.PluginManager | None = None,
    rules: Sequence[Rule] | None = None,
    known_at: int | None = None,
    institutions: Iterable[str | None] | None = None,
) -> list[Finding]:
    """Every rule over every scope (each institution, then the national scope), sorted."""
    pm = pm or plugin_manager()
    rules = rules_of(pm) if rules is None else rules
    classes = TechClasses(log, known_at)
    calendars = calendars_of(pm)
    scopes = list(institutions) if institutions is not None else [*institutions_in(log), None]
    out: list[Finding] = []
    for scope in scopes:
        facts = facts_for(log, scope, as_of=as_of, pm=pm, known_at=known_at, tech_class=classes, calendar_for=calendars)
        for rule in rules:
            if rule.applies_to(facts.jurisdiction):
                found = list(rule.check(facts))
                for f in found:
                    assert f.rule.split(".")[0] == rule.id.split(".")[0], (rule.id, f.rule)
                    assert f.article, rule.id
                out.extend(found)
    return sorted(out)


def summary(findings: Iterable[Finding]) -> set[tuple[str, str, tuple[str, ...]]]:
    """``(rule, article, decisions)`` of each finding: what the tables of the tests compare."""
    return {(f.rule, f.article, f.decisions) for f in findings}


def about(findings: Iterable[Finding], decision_id: str) -> list[Finding]:
    """Findings whose evidence includes ``decision_id``."""
    return [f for f in findings if decision_id in f.decisions]


# Small hand-made histories: a Hunan hospital, its physicians, and the catalogue entries they use.

BASE: list[dict[str, Any]] = [
    {
        "id": "cat/S14",
        "kind": "technology.listed",
        "effective": "2018-11-19",
        "by": "湖南省卫生健康委员会",
        "catalog": "hunan",
        "code": "S14",
        "name": "人工关节置换技术",
        "class": "restricted",
        "version": "HN-2018",
    },
    {
        "id": "cat/G10",
        "kind": "technology.listed",
        "effective": "2015-06-29",
        "by": "国家卫生计生委",
        "catalog": "national",
        "code": "G10",
        "name": "肿瘤消融治疗技术",
        "class": "restricted",
        "version": "2015",
    },
    {
        "id": "cat/P01",
        "kind": "technology.listed",
        "effective": "2018-11-01",
        "by": "国家卫生健康委",
        "catalog": "national",
        "code": "P01",
        "name": "代孕技术",
        "class": "prohibited",
        "version": "MTM-2018#9",
    },
    {
        "id": "cat/C3",
        "kind": "technology.listed",
        "effective": "2009-05-01",
        "by": "卫生部",
        "catalog": "national",
        "code": "C3",
        "name": "人工心脏植入技术",
        "class": "class3",
        "version": "MTM-2009",
    },
    {
        "id": "inst",
        "kind": "institution.registered",
        "effective": "2005-01-01",
        "by": "长沙市卫生局",
        "institution": "H1",
        "name": "测试医院",
        "province": "湖南省",
        "city": "长沙市",
        "category": "医院",
        "level": "三级",
        "licensing_authority": "长沙市卫生健康委员会",
    },
    {
        "id": "doc",
        "kind": "physician.registered",
        "effective": "2005-02-01",
        "by": "长沙市卫生局",
        "physician": "D1",
        "name": "张医生",
        "institution": "H1",
        "title": "主任医师",
    },
    {
        "id": "grant",
        "kind": "privilege.granted",
        "effective": "2005-03-01",
        "by": "H1",
        "institution": "H1",
        "physician": "D1",
        "level": 4,
        "procedures": ["hunan:S14", "national:G10", "national:P01", "national:C3"],
    },
    *(
        # MTM-2018#21: the technology-management committee's 论证, a condition of use like ethics (#13),
        # on the day each technology is listed (a decision cannot name it before).
        {
            "id": f"mgmt/{ref}",
            "kind": "review.concluded",
            "effective": day,
            "by": "H1",
            "institution": "H1",
            "technology": ref,
            "committee": "management",
            "outcome": "approved",
        }
        for ref, day in (
            ("hunan:S14", "2018-11-19"),
            ("national:G10", "2015-06-29"),
            ("national:P01", "2018-11-01"),
            ("national:C3", "2009-05-01"),
        )
    ),
]


def hunan_history(*decisions: dict[str, Any], province: str = "湖南省") -> Log:
    """``BASE`` (in ``province``) followed by ``decisions``; ids and dates as given."""
    base = [dict(d, province=province) if d["kind"] == "institution.registered" else d for d in BASE]
    return log_of([*base, *decisions])


def case(
    cid: str,
    day: str,
    tech: str = "hunan:S14",
    *,
    physician: str = "D1",
    level: int | None = 4,
    institution: str = "H1",
) -> dict[str, Any]:
    d: dict[str, Any] = {
        "id": cid,
        "kind": "case.performed",
        "effective": day,
        "by": institution,
        "institution": institution,
        "technology": tech,
        "physician": physician,
        "case": cid,
    }
    if level is not None:
        d["level"] = level
    return d


def ethics(rid: str, day: str, tech: str = "hunan:S14", outcome: str = "approved") -> dict[str, Any]:
    return {
        "id": rid,
        "kind": "review.concluded",
        "effective": day,
        "by": "H1",
        "institution": "H1",
        "technology": tech,
        "committee": "ethics",
        "outcome": outcome,
    }


def submitted(
    fid: str, day: str, tech: str = "hunan:S14", lead: str = "D1", *, ext: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A filing; ``ext`` adds plugin fields (``{"hunan.form": …}``)."""
    return {
        "id": fid,
        "kind": "filing.submitted",
        "effective": day,
        "by": "H1",
        "institution": "H1",
        "technology": tech,
        "technical_lead": lead,
        "materials": ["备案表"],
        **(ext or {}),
    }


def completed(
    fid: str, day: str, tech: str = "hunan:S14", by: str = "长沙市卫生健康委员会", *, ext: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "id": fid,
        "kind": "filing.completed",
        "effective": day,
        "by": by,
        "institution": "H1",
        "technology": tech,
        **(ext or {}),
    }


def rejected(fid: str, day: str, tech: str = "hunan:S14") -> dict[str, Any]:
    return {
        "id": fid,
        "kind": "filing.rejected",
        "effective": day,
        "by": "长沙市卫生健康委员会",
        "institution": "H1",
        "technology": tech,
        "reason": "材料不全",
    }
