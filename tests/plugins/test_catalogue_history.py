"""Catalogue history as the seeds state it, on SQLite and PostgreSQL (``app``): the third class ends
with the 2015 notice (国卫医发〔2015〕71号), labels follow each list's own version, the 2015 notice's
prohibited examples date from it, Hunan's S-codes can be grandfathered (HN-2018#六(一)), and a
technology can be evaluated before it is catalogued (MTM-2018#12, EVAL-2026#8)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli
from plugin_testing import HUNAN_CATALOG, NATIONAL_CATALOG

from cli import import_reference
from ledger.application import LedgerApplication
from ledger.errors import DecisionError, UnknownReference
from projections.findings import Finding
from projections.views import Views

THIRD_CLASS = {f"national:C3-{i:02d}" for i in range(1, 20)}
KEPT_IN_2022 = {f"national:G{i:02d}" for i in (1, 2, 3, 4, 6, 7, 8, 10, 11, 13)}
DROPPED_IN_2022 = {f"national:G{i:02d}" for i in (5, 9, 12, 14, 15)}
PROHIBITED_EXAMPLES_2015 = {"national:C3-01", *(f"national:P18-0{i}" for i in range(1, 5))}
LIST_2015 = "限制临床应用的医疗技术（2015版）"
LIST_2022 = "国家限制类技术目录（2022年版）"

CITY = "长沙市卫生健康委员会"
H1 = "H1-LICENCE"


def load(app: LedgerApplication, decisions: list[dict[str, Any]], source: str = "history.jsonl") -> None:
    app.import_lines([json.dumps(d, ensure_ascii=False).encode() for d in decisions], source=source)


@pytest.fixture
def views(app: LedgerApplication) -> Views:
    """The shipped national and Hunan catalogues, as ``ledger init`` records them."""
    import_reference(app, [NATIONAL_CATALOG, HUNAN_CATALOG])
    return Views(app)


def classes(views: Views, day: date, province: str | None = "hunan") -> dict[str, str]:
    return {e.ref: e.tech_class for e in views.catalog(province, as_of=day)}


# --- 国卫医发〔2015〕71号: the third class ends ------------------------------------------------------------


def test_third_class_in_force_before_the_2015_notice(views: Views) -> None:
    """MTM-2009#8 and its annex: the nineteen third-class technologies, until 2015-06-28."""
    before = classes(views, date(2014, 1, 1))
    assert {ref for ref, cls in before.items() if cls == "class3"} == THIRD_CLASS
    assert len(before) == 22  # with MTM-2009#58's three prohibited technologies
    assert {ref for ref, cls in classes(views, date(2015, 6, 28)).items() if cls == "class3"} == THIRD_CLASS


def test_the_2015_notice_ends_the_third_class(views: Views) -> None:
    """国卫医发〔2015〕71号 (2015-06-29) abolished third-class admission approval: from that day no
    technology is third-class, nationally or in Hunan, then (2019) or now."""
    for day in (date(2015, 6, 29), date(2019, 6, 1), date(2026, 12, 1)):
        assert "class3" not in classes(views, day).values(), day
        assert "class3" not in classes(views, day, None).values(), day


def test_hunan_catalogue_2019_has_53_rows(views: Views) -> None:
    """HN-2018#二(一)(二) with 附件1, as of 2019-06-01: the national prohibited technologies (MTM-2009#58's
    three, and the five examples of 国卫医发〔2015〕71号), G01–G15 and S01–S29 restricted, and the one
    third-class technology the 2015 notice kept under clinical-research management (C3-02)."""
    hunan = classes(views, date(2019, 6, 1))
    assert len(hunan) == 53
    assert Counter(hunan.values()) == {"prohibited": 8, "restricted": 44, "clinical-research": 1}
    assert {ref for ref, cls in hunan.items() if cls == "prohibited"} == {
        *PROHIBITED_EXAMPLES_2015,
        "national:P09-01",
        "national:P09-02",
        "national:P09-03",
    }


def test_cli_catalogue_of_2019_and_2014(tmp_path: Path) -> None:
    """``ledger catalog --province hunan --as-of``: 53 rows in 2019 (HN-2018 附件1 and the 2015 notice),
    the third class still there in 2014 (MTM-2009#8)."""
    db = str(tmp_path / "ledger.sqlite")
    assert run_cli(["init"], db).exit_code == 0

    def rows(day: str) -> list[dict[str, Any]]:
        result = run_cli(["catalog", "--province", "hunan", "--as-of", day, "--format", "json"], db)
        assert result.exit_code == 0, result.stderr
        rows: list[dict[str, Any]] = json.loads(result.stdout)
        return rows

    assert len(rows("2019-06-01")) == 53
    assert sum(1 for r in rows("2014-01-01") if r["class"] == "class3") == 19


# --- labels follow each list's own version -------------------------------------------------------------


def test_the_ten_kept_items_carry_the_2022_label_from_2022_04_20(views: Views) -> None:
    """国家限制类技术目录（2022年版）, in force 2022-04-20 (MTM-2018#10): the ten items it keeps show the
    2015 list's label before that day and the 2022 list's after, restricted throughout."""

    def versions(day: date) -> dict[str, str]:
        return {e.ref: e.version for e in views.catalog("hunan", as_of=day) if e.catalog == "national"}

    assert {versions(date(2021, 1, 1))[ref] for ref in KEPT_IN_2022 | DROPPED_IN_2022} == {LIST_2015}
    after = versions(date(2023, 1, 1))
    assert {ref for ref, version in after.items() if version == LIST_2022} == KEPT_IN_2022 | {
        "national:G16",
        "national:G17",
    }
    assert not DROPPED_IN_2022 & after.keys()
    for day in (date(2022, 4, 19), date(2022, 4, 20)):
        assert {classes(views, day)[ref] for ref in KEPT_IN_2022} == {"restricted"}
    g10 = next(e for e in views.catalog("hunan", as_of=date(2023, 1, 1)) if e.ref == "national:G10")
    assert (g10.since, g10.listed_by) == (date(2022, 4, 20), "national/2022/listed/G10")


def test_a_filing_of_a_kept_item_stands_under_the_2022_list(app: LedgerApplication) -> None:
    """MTM-2018#40: 湘江's G10, filed in 2019 (HN-2018#六(一)), is still listed as filed in 2023: the
    2022 list kept the technology, so its filing stands."""
    import_reference(app, [NATIONAL_CATALOG, HUNAN_CATALOG, Path(HUNAN_CATALOG).with_name("demo.jsonl")])
    rows = {(f.institution, f.technology): f.status for f in Views(app).filings("hunan", as_of=date(2023, 1, 1))}
    assert rows[("44860321X43010211A1001", "national:G10")] == "filed"


# --- the prohibited examples date from the 2015 notice -----------------------------------------------


def test_prohibited_examples_date_from_the_2015_notice(views: Views) -> None:
    """seeds/001 quotes the examples (脑下垂体酒精毁损术…, 克隆治疗技术、代孕技术, 除医疗目的以外的肢体延长术,
    角膜放射状切开术) from 国卫医发〔2015〕71号, 2015-06-29; MTM-2018#9 names none, and HN-2018#二(一)
    (2018-11-19) restates them. The listings are corrected, not rewritten."""
    national = classes(views, date(2015, 6, 29), None)
    assert {ref for ref in PROHIBITED_EXAMPLES_2015 if national.get(ref) == "prohibited"} == PROHIBITED_EXAMPLES_2015
    assert not PROHIBITED_EXAMPLES_2015 & {
        ref for ref, cls in classes(views, date(2015, 6, 28), None).items() if cls == "prohibited"
    }
    corrected = views.app.decision("national/2018/corrected/P18-02")
    record = views.app.decision("national/2018/listed/P18-02").record
    assert (record.effective, record.basis) == (date(2018, 11, 1), "MTM-2018#9")  # the original stays
    fields = corrected.record.fields["fields"]
    assert (fields["effective"], fields["basis"]) == (date(2015, 6, 29), "国卫医发〔2015〕71号")
    # As the ledger knew it before the correction: from 2018-11-01 (two time axes).
    before = views.catalog(None, as_of=date(2016, 1, 1), known_at=corrected.position - 1)
    assert "national:P18-02" not in {e.ref for e in before}


def test_a_ledger_of_the_old_catalogue_takes_the_new_one(app: LedgerApplication) -> None:
    """Reference data enters as decisions, idempotent by id: the history above is added to the old
    lines, none of which changed, so a ledger initialised before takes it without a conflict."""
    lines = NATIONAL_CATALOG.read_bytes().splitlines()
    old = [line for line in lines if json.loads(line)["id"] in OLD_IDS]
    assert len(old) == len(OLD_IDS)
    app.import_lines(old, source="old.jsonl")
    result = app.import_lines(lines, source="catalog.jsonl")
    assert (result.unchanged, result.recorded) == (len(OLD_IDS), len(lines) - len(OLD_IDS))


OLD_IDS = frozenset(
    [
        *(f"national/2009/listed/P09-0{i}" for i in (1, 2, 3)),
        *(f"national/2009/listed/C3-{i:02d}" for i in range(1, 20)),
        *(f"national/2015/listed/G{i:02d}" for i in range(1, 16)),
        "national/2015/reclassified/C3-01",
        "national/2015/reclassified/C3-02",
        "national/2015/delisted/C3-11",
        "national/2015/delisted/C3-16",
        "national/2015/delisted/C3-09",
        *(f"national/2018/listed/P18-0{i}" for i in range(1, 5)),
        *(f"national/2022/delisted/G{i:02d}" for i in (5, 9, 12, 14, 15)),
        "national/2022/listed/G16",
        "national/2022/listed/G17",
    ]
)
"""The 53 decisions the national catalogue shipped before its history was completed."""


# --- HN-2018#六(一): Hunan's S-codes can be grandfathered ---------------------------------------------------


def hospital(*decisions: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "id": "t/inst",
            "kind": "institution.registered",
            "effective": "2005-01-01",
            "by": "长沙市卫生局",
            "institution": H1,
            "name": "测试医院",
            "province": "湖南省",
            "city": "长沙市",
            "category": "医院",
            "level": "三级",
            "licensing_authority": CITY,
        },
        {
            "id": "t/doc",
            "kind": "physician.registered",
            "effective": "2005-02-01",
            "by": "长沙市卫生局",
            "physician": "D1",
            "name": "张医生",
            "institution": H1,
            "title": "主任医师",
        },
        {
            "id": "t/ethics",
            "kind": "review.concluded",
            "effective": "2018-05-02",
            "by": H1,
            "institution": H1,
            "technology": "hunan:S14",
            "committee": "ethics",
            "outcome": "approved",
        },
        *decisions,
    ]


def s14_use(submitted: str, completed: str) -> list[dict[str, Any]]:
    """A use of 人工关节置换技术 (hunan:S14) under way since June 2018, before Hunan listed it."""
    return hospital(
        {
            "id": "t/case",
            "kind": "case.performed",
            "effective": "2018-06-15",
            "by": H1,
            "institution": H1,
            "technology": "hunan:S14",
            "physician": "D1",
            "case": "ZY2018-0615",
        },
        {
            "id": "t/submitted",
            "kind": "filing.submitted",
            "effective": submitted,
            "by": H1,
            "institution": H1,
            "technology": "hunan:S14",
            "technical_lead": "D1",
            "materials": ["备案表"],
        },
        {
            "id": "t/completed",
            "kind": "filing.completed",
            "effective": completed,
            "by": CITY,
            "institution": H1,
            "technology": "hunan:S14",
        },
    )


def findings_of(views: Views, institution: str = H1) -> list[Finding]:
    return views.trail(institution=institution, as_of=date(2019, 12, 31)).findings


def test_a_use_begun_before_the_2018_listing_is_recorded_and_filed_in_time(views: Views) -> None:
    """HN-2018#六(一): a use under way before the notice files by 2019-01-31; filed 2019-01-20, completed
    2019-01-25, it is not late, although its first case was months before S14 was listed."""
    load(views.app, s14_use("2019-01-20", "2019-01-25"))
    assert views.app.decision("t/case").record.effective == date(2018, 6, 15)
    fresh = Views(views.app)
    findings = findings_of(fresh)
    assert not [f for f in findings if f.rule in ("national.late-filing", "national.unfiled-use")], findings
    # MTM-2018#40: and the public list shows it filed, on the day the authority completed it.
    listed = {(f.institution, f.technology): f for f in fresh.filings("hunan", as_of=date(2019, 6, 1))}
    assert (listed[(H1, "hunan:S14")].status, listed[(H1, "hunan:S14")].filed_on) == ("filed", date(2019, 1, 25))


def test_a_grandfathered_use_filed_after_2019_01_31_is_late(views: Views) -> None:
    """HN-2018#六(一) (beside MTM-2018#49): the same use filed on 2019-03-01 is late, from 2019-02-01."""
    load(views.app, s14_use("2019-03-01", "2019-03-08"))
    late = [f for f in findings_of(Views(views.app)) if f.rule == "national.late-filing"]
    assert [(f.article, f.effective, f.decisions) for f in late] == [
        ("MTM-2018#49, HN-2018#六(一)", date(2019, 2, 1), ("t/submitted",))
    ]
    assert "2019-01-31" in late[0].message


def test_a_case_before_the_listing_is_not_a_restricted_case(views: Views) -> None:
    """MTM-2018#12: before 2018-11-19 S14 was in no catalogue, so its 2018 cases need no filing; from
    the listing the grandfather date applies (HN-2018#六(一)): a case after it, unfiled, is flagged."""
    load(
        views.app,
        hospital(
            {
                "id": "t/case",
                "kind": "case.performed",
                "effective": "2018-06-15",
                "by": H1,
                "institution": H1,
                "technology": "hunan:S14",
                "physician": "D1",
                "case": "ZY2018-0615",
            },
            {
                "id": "t/case2",
                "kind": "case.performed",
                "effective": "2019-02-11",
                "by": H1,
                "institution": H1,
                "technology": "hunan:S14",
                "physician": "D1",
                "case": "ZY2019-0211",
            },
        ),
    )
    unfiled = [f for f in findings_of(Views(views.app)) if f.rule == "national.unfiled-use"]
    assert [(f.decisions[0], f.article) for f in unfiled] == [("t/case2", "MTM-2018#49, HN-2018#六(一)")]


def test_an_unknown_code_and_a_catalogue_change_before_the_listing_are_still_refused(views: Views) -> None:
    """DECISIONS.md, Refused: a technology the ledger has never listed is unknown, whatever the day; and a
    catalogue cannot change an entry before it was listed (a reclassification of S14 in 2018-06)."""
    before = views.app.position()
    with pytest.raises(UnknownReference) as unknown:
        load(
            views.app,
            hospital(
                {
                    "id": "t/case",
                    "kind": "case.performed",
                    "effective": "2019-06-15",
                    "by": H1,
                    "institution": H1,
                    "technology": "hunan:S99",
                    "physician": "D1",
                    "case": "ZY",
                },
            ),
        )
    assert (unknown.value.line, unknown.value.field) == (4, "technology")
    with pytest.raises(UnknownReference) as early:
        load(
            views.app,
            [
                {
                    "id": "t/re",
                    "kind": "technology.reclassified",
                    "effective": "2018-06-01",
                    "by": "湖南省卫生健康委员会",
                    "catalog": "hunan",
                    "code": "S14",
                    "class": "prohibited",
                }
            ],
        )
    assert early.value.field == "code"
    assert "known only from 2018-11-19" in early.value.message
    assert views.app.position() == before


# --- MTM-2018#12, EVAL-2026#8: evaluated before it is catalogued ------------------------------------------


def panel(
    pid: str, technology: str, outcome: str, *, kind: str = "evaluation", day: str = "2026-05-06"
) -> dict[str, Any]:
    members = [f"专家{i}" for i in range(1, 8)]
    return {
        "id": pid,
        "kind": "panel.concluded",
        "effective": day,
        "by": "国家卫生健康委医管中心",
        "basis": "EVAL-2026#7",
        "panel": kind,
        "technology": technology,
        "members": members,
        "recused": [],
        "votes": {m: "for" for m in members},
        "outcome": outcome,
    }


def national_findings(views: Views, day: date) -> list[Finding]:
    fresh = Views(views.app)
    return fresh.findings_for(None, as_of=day, known_at=fresh.app.position())


def test_an_evaluation_of_an_uncatalogued_technology_is_recorded_and_judged(views: Views) -> None:
    """EVAL-2026#2, #5: technologies in clinical use are evaluated, most of them in no catalogue
    (MTM-2018#12). A ``strengthen`` conclusion (#8(三)) asks no catalogue change; a ``restrict`` one
    (#8(二)) is followed up until the national catalogue lists the technology."""
    load(views.app, [panel("E1", "national:经颅磁刺激治疗技术", "strengthen"), panel("E2", "national:G18", "restrict")])
    found = national_findings(views, date(2026, 6, 1))
    assert [(f.rule, f.article, f.decisions) for f in found] == [
        ("national.evaluation-followup", "EVAL-2026#8", ("E2",))
    ]
    assert "not listed" in found[0].message
    load(
        views.app,
        [
            {
                "id": "national/2026/listed/G18",
                "kind": "technology.listed",
                "effective": "2026-07-01",
                "by": "国家卫生健康委",
                "basis": "EVAL-2026#8",
                "catalog": "national",
                "code": "G18",
                "name": "某评估后列入限制类的技术",
                "class": "restricted",
                "version": "国家限制类技术目录",
            }
        ],
    )
    assert national_findings(views, date(2026, 8, 1)) == []


def test_an_uncatalogued_evaluation_is_still_judged_by_eval_2026_7(views: Views) -> None:
    """EVAL-2026#7: an odd number of at least 7 experts, whatever the technology's catalogue."""
    small = panel("E3", "national:经颅磁刺激治疗技术", "no-change")
    small["members"] = small["members"][:5]
    small["votes"] = {m: "for" for m in small["members"]}
    load(views.app, [small])
    assert [f.rule for f in national_findings(views, date(2026, 6, 1))] == ["national.evaluation-panel"]


AUDIT = {**panel("A1", "national:G18", "pass", kind="technical-audit", day="2012-01-01"), "institution": H1}


@pytest.mark.parametrize(
    "decisions",
    [[*hospital()[:1], AUDIT], [panel("E4", "hunan:S99", "restrict")]],
    ids=["audit", "provincial-code"],
)
def test_only_an_evaluation_may_name_a_technology_no_catalogue_lists(
    views: Views, decisions: list[dict[str, Any]]
) -> None:
    """A technical audit (MTM-2009#27) is of a catalogued technology; an evaluation names an
    uncatalogued one by the national ref it will have (EVAL-2026#8 lists nationally), so an unknown
    provincial code is still an unknown code (DECISIONS.md, Refused)."""
    before = views.app.position()
    with pytest.raises(DecisionError) as error:
        load(views.app, decisions)
    assert isinstance(error.value, UnknownReference), error.value
    assert (error.value.line, error.value.field) == (len(decisions), "technology")
    assert views.app.position() == before
