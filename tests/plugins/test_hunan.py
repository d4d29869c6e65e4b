"""Hunan (HN-2018): its deadlines, rules, form validator, annex-5 report and command; the shipped demo.

The demo's deliberate irregularities each produce exactly the findings listed in ``EXPECTED``; the
decisions named in ``NO_FINDING`` produce none. The report and the command run on a real ledger
(SQLite in a temporary directory) through the Views API, as the CLI runs them.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import click
import pluggy
import pytest
from click.testing import CliRunner
from plugin_testing import (
    CHONGQING_DEMO,
    HUNAN_CATALOG,
    HUNAN_DEMO,
    LIANCHENG,
    NATIONAL_CATALOG,
    XIANGDONG,
    XIANGJIANG,
    XINGCHENG,
    about,
    completed,
    deadlines_of,
    demo_log,
    ethics,
    hunan_history,
    judge,
    plugin_manager,
    read,
    rules_of,
    submitted,
    summary,
)
from plugin_testing import case as case_

import plugins.hunan
from ledger import canonical
from ledger.application import LedgerApplication
from ledger.decisions import parse_line
from ledger.errors import ConfigurationError, DecisionError
from plugins.hunan import form as annex2
from plugins.hunan.report import FILING_SUMMARY, half_year
from plugins.hunan.rules import DEADLINES

TODAY = date(2026, 11, 1)

EXPECTED = {
    # HN-2019-0010: first S03 case at 湘东 2019-03-12, ethics approval only 2019-03-20 (HN-2019-0012).
    ("national.ethics", "MTM-2018#13", ("HN-2019-0010", "HN-2019-0012")),
    # HN-2019-0022: 星城's S27 filing 2019-05-24; first case HN-2019-0020 2019-04-24, deadline 2019-05-16.
    ("national.late-filing", "MTM-2018#11, HN-2018#二(二)", ("HN-2019-0022", "HN-2019-0020")),
    # HN-2019-0039: 莲城's S19 filing names 110430102000152, registered at 湘江 (HN-2018 附件2).
    ("national.technical-lead", "MTM-2018#11(3)", ("HN-2019-0039",)),
    # HN-2019-0041: level-4 S14 case by a physician granted level 2 without S14 (HN-2019-0002).
    ("national.privilege", "MTM-2018#20", ("HN-2019-0041", "HN-2019-0002")),
    # HN-2020-0005: S03 case while suspended (HN-2020-0004, resumed HN-2020-0008).
    ("national.use-while-suspended", "MTM-2018#25", ("HN-2020-0005", "HN-2020-0004")),
    # HN-2020-0009: training base filed 2020-10-12; notice 2020-09-28, due 2020-10-09.
    ("national.training-base", "MTM-2018#29", ("HN-2020-0009",)),
}

NO_FINDING = (
    "HN-2019-0005",
    "HN-2019-0006",  # grandfathered G10, re-filed 2019-01-22 <= 2019-01-31 (HN-2018#六(一))
    "HN-2019-0021",  # filed on exactly the 15th working day (2019-05-14)
    "HN-2026-0003",
    "HN-2026-0004",
    "HN-2026-0005",  # across Spring Festival 2026
    "HN-2019-0043",  # training base on the 3rd working day across National Day 2019
    "HN-2023-0004",
    "HN-2023-0005",  # G05 delisted 2022-04-20: no longer restricted
    "HN-2012-0002",  # technical audit, 5 members, 3 for: pass (MTM-2009#27)
    "HN-2026-0007",  # evaluation, 11 members, 2 recused, 8 of 9 for (EVAL-2026#7)
    "HN-2019-0040",
    "HN-2019-0038",  # 莲城's S19: filed in time, authority is its licensing authority
    "HN-2016-0005",  # a transition-era filing with the province: not judged by HN-2018
)


@pytest.fixture(scope="module")
def hunan_findings() -> list[Any]:
    log = demo_log()
    hunan = {XIANGJIANG, LIANCHENG, XINGCHENG, XIANGDONG}
    return [f for f in judge(log, as_of=TODAY) if f.institution in hunan or f.institution is None]


# --- deadlines -------------------------------------------------------------------------------------


def test_hunan_deadlines_hn2018_2_2_15_days_5_5_days_6_1_grandfather() -> None:
    """HN-2018#二(二) 15 working days, #五 5 working days, #六(一) 2019-01-31 — all Hunan's own."""
    by_name = {d.name: d for d in DEADLINES}
    assert (by_name["filing"].working_days, by_name["filing"].article) == (15, "HN-2018#二(二)")
    assert (by_name["trainee-list"].working_days, by_name["trainee-list"].article) == (5, "HN-2018#五")
    assert by_name["grandfather"].extra == {"by": "2019-01-31"}
    assert by_name["grandfather"].article == "HN-2018#六(一)"
    assert {d.jurisdiction for d in DEADLINES} == {"hunan"}


# --- the demo ---------------------------------------------------------------------------------------


def test_demo_produces_exactly_the_listed_findings(hunan_findings: list[Any]) -> None:
    assert summary(hunan_findings) == EXPECTED
    assert len(hunan_findings) == len(EXPECTED)


@pytest.mark.parametrize("decision", NO_FINDING)
def test_demo_decisions_that_must_produce_no_finding(hunan_findings: list[Any], decision: str) -> None:
    assert about(hunan_findings, decision) == []


def test_demo_findings_arise_on_the_right_day(hunan_findings: list[Any]) -> None:
    on = {f.decisions[0]: f.effective for f in hunan_findings}
    assert on == {
        "HN-2019-0010": date(2019, 3, 12),
        "HN-2019-0022": date(2019, 5, 17),  # the day after the deadline 2019-05-16
        "HN-2019-0039": date(2019, 8, 2),
        "HN-2019-0041": date(2019, 8, 19),
        "HN-2020-0005": date(2020, 8, 12),
        "HN-2020-0009": date(2020, 10, 10),  # the day after 2020-10-09
    }


def test_demo_as_of_before_the_s27_filing_shows_it_overdue_not_late() -> None:
    """MTM-2018#11, HN-2018#二(二) as of 2019-05-20: the deadline (05-16) has passed, nothing filed."""
    log = demo_log()
    s27 = [f for f in judge(log, as_of=date(2019, 5, 20), institutions=[XINGCHENG])]
    assert summary(s27) == {("national.filing-overdue", "MTM-2018#11, HN-2018#二(二)", ("HN-2019-0020",))}
    assert judge(log, as_of=date(2019, 5, 16), institutions=[XINGCHENG]) == []


def test_demo_known_at_before_the_correction_shows_the_form_mismatch() -> None:
    """HN-2018 附件2: HN-2019-0021's technical_lead was first recorded as 欧阳敏 while its form names
    陈思远; HN-2019-0024 corrects it. Known before the correction, the trail shows the mismatch."""
    log = demo_log()
    at = next(p for p, r in log if r.id == "HN-2019-0024")
    before = judge(log, as_of=date(2019, 12, 31), known_at=at - 1, institutions=[XIANGJIANG])
    assert summary(before) == {("hunan.form-mismatch", "HN-2018#二(二)1", ("HN-2019-0021",))}
    after = judge(log, as_of=date(2019, 12, 31), known_at=at, institutions=[XIANGJIANG])
    assert about(after, "HN-2019-0021") == []


def test_demo_is_judged_the_same_with_chongqing_disabled() -> None:
    log = demo_log()
    pm = plugin_manager(disabled=frozenset({"chongqing"}))
    hunan = {XIANGJIANG, LIANCHENG, XINGCHENG, XIANGDONG}
    assert summary(f for f in judge(log, as_of=TODAY, pm=pm) if f.institution in hunan) == EXPECTED


# --- HN-2018#二(二): filing authority ---------------------------------------------------------------


def test_hn2018_2_2_filing_is_completed_by_the_licensing_authority() -> None:
    log = hunan_history(
        ethics("e", "2019-04-01"),
        case_("c1", "2019-04-22"),
        submitted("f1", "2019-05-06"),
        completed("k1", "2019-05-20", by="湖南省卫生健康委员会"),
        ethics("e2", "2016-01-01", "national:G10"),
        completed("k0", "2016-04-20", "national:G10", by="湖南省卫生和计划生育委员会"),  # transition era
    )
    found = judge(log, as_of=date(2019, 12, 31))
    assert summary(found) == {("hunan.filing-authority", "HN-2018#二(二)", ("k1", "inst"))}
    assert "长沙市卫生健康委员会" in found[0].message


def test_hunan_rules_do_not_judge_other_provinces() -> None:
    log = hunan_history(
        ethics("e", "2019-04-01"),
        case_("c1", "2019-04-22"),
        submitted("f1", "2019-05-06"),
        completed("k1", "2019-05-20", by="湖南省卫生健康委员会"),
        province="广东省",
    )
    assert judge(log, as_of=date(2019, 12, 31)) == []


# --- HN-2018 附件2: the filing form ---------------------------------------------------------------------


def form(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "医疗机构名称": "测试医院",
        "医疗机构类别": "医院",
        "医疗机构级别": "三级",
        "医疗机构主要负责人": "刘振华",
        "联系手机": "139****2101",
        "技术名称": "人工关节置换技术",
        "技术编号": "S14",
        "是否首次开展": "是",
        "技术负责人": [{"姓名": "张医生", "职称": "主任医师", "负责科室": "骨科"}],
        "相关培训情况": "规范化培训",
        "是否对照相关医疗技术管理规范进行自我评估": "是",
        "是否符合相关医疗技术管理规范要求": "是",
        "医疗机构意见": "同意开展并备案。（公章）",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def test_hn2018_2_2_1_annex2_complete_form_matching_its_filing_is_fine() -> None:
    log = hunan_history(
        ethics("e", "2019-04-01"),
        case_("c1", "2019-04-22"),
        submitted("f1", "2019-05-06", ext={"hunan.form": form()}),
        completed("k1", "2019-05-20"),
    )
    assert judge(log, as_of=date(2019, 12, 31)) == []


def test_hn2018_2_2_1_annex2_incomplete_form_is_a_finding() -> None:
    log = hunan_history(
        ethics("e", "2019-04-01"),
        case_("c1", "2019-04-22"),
        submitted("f1", "2019-05-06", ext={"hunan.form": form(医疗机构意见="", 联系手机=None)}),
        completed("k1", "2019-05-20"),
    )
    found = judge(log, as_of=date(2019, 12, 31))
    assert summary(found) == {("hunan.form-incomplete", "HN-2018#二(二)1", ("f1",))}
    assert "联系手机" in found[0].message and "医疗机构意见" in found[0].message


def test_hn2018_annex2_form_that_says_another_code_institution_or_lead_is_a_finding() -> None:
    log = hunan_history(
        ethics("e", "2019-04-01"),
        case_("c1", "2019-04-22"),
        submitted(
            "f1",
            "2019-05-06",
            ext={
                "hunan.form": form(
                    技术编号="S15",
                    医疗机构名称="别的医院",
                    技术负责人=[{"姓名": "王医生", "职称": "主任医师", "负责科室": "骨科"}],
                )
            },
        ),
        completed("k1", "2019-05-20"),
    )
    found = judge(log, as_of=date(2019, 12, 31))
    assert summary(found) == {("hunan.form-mismatch", "HN-2018#二(二)1", ("f1",))}
    assert all(s in found[0].message for s in ("S15", "别的医院", "王医生"))


def test_hn2018_annex2_note2_case_after_the_lead_left_without_a_new_form() -> None:
    """HN-2018 附件2 注2: a change of technical lead requires a new filing form."""
    left = {
        "id": "dereg",
        "kind": "physician.deregistered",
        "effective": "2021-06-30",
        "by": "长沙市卫生健康委员会",
        "physician": "D1",
        "institution": "H1",
    }
    newdoc = {
        "id": "doc2",
        "kind": "physician.registered",
        "effective": "2021-07-01",
        "by": "长沙市卫生健康委员会",
        "physician": "D2",
        "name": "李医生",
        "institution": "H1",
        "title": "主任医师",
    }
    grant2 = {
        "id": "grant2",
        "kind": "privilege.granted",
        "effective": "2021-07-01",
        "by": "H1",
        "institution": "H1",
        "physician": "D2",
        "level": 4,
        "procedures": ["hunan:S14"],
    }
    history = [
        ethics("e", "2019-04-01"),
        case_("c1", "2019-04-22"),
        submitted("f1", "2019-05-06"),
        completed("k1", "2019-05-20"),
        left,
        newdoc,
        grant2,
        case_("c2", "2021-08-02", physician="D2"),
    ]
    found = judge(hunan_history(*history), as_of=date(2021, 12, 31))
    assert summary(found) == {("hunan.lead-left", "HN-2018 附件2 注2", ("c2", "f1", "dereg"))}
    refiled = judge(
        hunan_history(
            *history[:-1], submitted("f2", "2021-07-20", lead="D2"), case_("c2", "2021-08-02", physician="D2")
        ),
        as_of=date(2021, 12, 31),
    )
    assert refiled == []


# --- HN-2018#五: trainee list ---------------------------------------------------------------------------


@pytest.mark.parametrize(("reported", "late"), [("2020-07-24", False), ("2020-07-27", True)])
def test_hn2018_5_passed_trainee_list_within_5_working_days(reported: str, late: bool) -> None:
    """HN-2018#五: certified Friday 2020-07-17; the 5th working day after is 2020-07-24."""
    certified = {
        "id": "t1",
        "kind": "trainee.certified",
        "effective": "2020-07-17",
        "by": "H1",
        "physician": "D1",
        "institution": "H1",
        "technology": "national:G10",
        "hunan.list_reported": reported,
    }
    found = judge(hunan_history(certified), as_of=date(2020, 12, 31))
    assert summary(found) == ({("hunan.trainee-list", "HN-2018#五", ("t1",))} if late else set())
    if late:
        assert found[0].effective == date(2020, 7, 25)


# --- validator ------------------------------------------------------------------------------------------


def problems(decision: dict[str, Any]) -> list[tuple[str, str]]:
    return list(plugins.hunan.ledger_validate_decision(parse_line(json.dumps(decision, ensure_ascii=False))))


def test_validator_accepts_every_form_in_the_demo_and_an_incomplete_one() -> None:
    for record in read(HUNAN_DEMO):
        assert list(annex2.validate(record)) == [], record.id
    assert problems(submitted("f1", "2019-05-06", ext={"hunan.form": form(联系手机=None)})) == []


@pytest.mark.parametrize(
    ("decision", "field"),
    [
        (submitted("f1", "2019-05-06", ext={"hunan.form": "附件2"}), "hunan.form"),
        (submitted("f1", "2019-05-06", ext={"hunan.form": form(是否首次开展="可能")}), "hunan.form.是否首次开展"),
        (submitted("f1", "2019-05-06", ext={"hunan.form": form(技术负责人="张医生")}), "hunan.form.技术负责人"),
        (
            submitted("f1", "2019-05-06", ext={"hunan.form": form(技术负责人=[{"职称": "主任医师"}])}),
            "hunan.form.技术负责人[0]",
        ),
        (submitted("f1", "2019-05-06", ext={"hunan.form": form(技术编号=14)}), "hunan.form.技术编号"),
        (completed("k1", "2019-05-20", ext={"hunan.form": form()}), "hunan.form"),
        (submitted("f1", "2019-05-06", ext={"hunan.from": form()}), "hunan.from"),
        (
            {
                "id": "t",
                "kind": "trainee.certified",
                "effective": "2020-07-17",
                "by": "H1",
                "physician": "D1",
                "institution": "H1",
                "technology": "national:G10",
                "hunan.list_reported": "2020-07-10",
            },
            "hunan.list_reported",
        ),
    ],
)
def test_validator_refuses_only_clearly_wrong_structure(decision: dict[str, Any], field: str) -> None:
    """HN-2018 附件2: not an object, wrong shapes, the wrong kind, unknown hunan.* fields."""
    assert field in [name for name, _ in problems(decision)]


# --- a real ledger: report and command ------------------------------------------------------------------


@pytest.fixture(scope="module")
def ledger_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, pluggy.PluginManager]]:
    pm = plugin_manager()
    path = str(tmp_path_factory.mktemp("hunan") / "ledger.sqlite")
    app = LedgerApplication.open(path, plugins=pm)
    try:
        for file in (NATIONAL_CATALOG, HUNAN_CATALOG, HUNAN_DEMO, CHONGQING_DEMO):
            with file.open("rb") as fh:
                app.import_lines(fh, source=file.name)
    finally:
        app.close()
    yield path, pm


@pytest.fixture
def views(ledger_db: tuple[str, pluggy.PluginManager]) -> Iterator[Any]:
    from projections.views import Views

    path, pm = ledger_db
    app = LedgerApplication.open(path, plugins=pm)
    try:
        yield Views(app)
    finally:
        app.close()


def test_views_trail_shows_exactly_the_demo_findings(views: Any) -> None:
    trail = views.trail(province="hunan", as_of=TODAY)
    assert summary(trail.findings) == EXPECTED


def test_hn2018_annex5_filing_summary_2019h1(views: Any) -> None:
    """HN-2018 附件5 (#六(二)): 医疗机构名称, 技术编号, 技术名称, 备案时间 (YYYYMMDD, text), 备案机关; per city."""
    table = FILING_SUMMARY.build(views, {"half": "2019H1"})
    assert [c.name for c in table.columns] == ["市州", "医疗机构名称", "技术编号", "技术名称", "备案时间", "备案机关"]
    assert next(c for c in table.columns if c.name == "备案时间").number_format == "@"
    assert table.header_lines[0] == "湖南省限制类医疗机构临床应用备案汇总表"
    assert [
        (r["city"], r["institution_name"], r["code"], r["technology_name"], r["filed_on"], r["authority"])
        for r in table.rows
    ] == [  # cities in pinyin order: changsha, zhuzhou
        ("长沙市", "湘江示范医院", "G10", "肿瘤消融治疗技术", "20190130", "长沙市卫生健康委员会"),
        ("长沙市", "湘江示范医院", "S14", "人工关节置换技术", "20190528", "长沙市卫生健康委员会"),
        ("长沙市", "星城示范妇幼保健院", "S27", "绒毛、脐血、羊水穿刺、细胞学诊断", "20190610", "长沙市卫生健康委员会"),
        ("株洲市", "湘东示范医院", "S03", "三级及以上消化内镜诊疗技术", "20190415", "株洲市卫生健康委员会"),
    ]
    assert list(table.sheets) == ["长沙市", "湘潭市", "株洲市"]  # 湘潭市: a nil return
    assert table.sheets["湘潭市"].rows == []
    changsha = table.sheets["长沙市"]
    assert [c.name for c in changsha.columns] == ["医疗机构名称", "技术编号", "技术名称", "备案时间", "备案机关"]
    assert "市州（公章）：长沙市" in changsha.header_lines[1] and "填报人" in changsha.header_lines[1]
    assert len(changsha.rows) == 3


def test_hn2018_annex5_filing_summary_2019h2_and_one_city(views: Any) -> None:
    table = FILING_SUMMARY.build(views, {"half": "2019H2"})
    assert [(r["institution_name"], r["code"], r["filed_on"], r["authority"]) for r in table.rows] == [
        ("湘江示范医院", "S19", "20190710", "长沙市卫生健康委员会"),  # changsha before xiangtan (pinyin)
        ("莲城示范医院", "S19", "20190816", "湘潭市卫生健康委员会"),
    ]
    xiangtan = FILING_SUMMARY.build(views, {"half": "2019H2", "city": "湘潭市"})
    assert [r["institution_name"] for r in xiangtan.rows] == ["莲城示范医院"]


def test_hn2018_annex5_half_option() -> None:
    assert half_year("2019H1") == (date(2019, 1, 1), date(2019, 6, 30))
    assert half_year("2019h2") == (date(2019, 7, 1), date(2019, 12, 31))
    with pytest.raises(ConfigurationError, match="2019H1"):
        half_year("2019-06")
    assert [o.name for o in FILING_SUMMARY.options] == ["half", "city"]
    assert FILING_SUMMARY.options[0].required


def run(ledger_db: tuple[str, pluggy.PluginManager], *args: str) -> Any:
    """Invoke a plugin command as the CLI does: the root context's obj holds ``db`` and the open ``app``
    (here one on this test's plugin manager, whatever LEDGER_DISABLE_PLUGINS says)."""
    path, pm = ledger_db
    group = click.Group("ledger")
    pm.hook.ledger_register_commands(cli=group)
    app = LedgerApplication.open(path, plugins=pm)
    try:
        return CliRunner().invoke(group, list(args), obj={"db": path, "app": app}, catch_exceptions=False)
    finally:
        app.close()


def test_hunan_deadlines_command(ledger_db: tuple[str, pluggy.PluginManager]) -> None:
    """HN-2018#二(二): 星城's S27 on 2019-05-20 is overdue; 湘江's S14 has working days left."""
    result = run(ledger_db, "hunan", "deadlines", "--as-of", "2019-05-10", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = {(r["institution_name"], r["technology"]): r for r in json.loads(result.stdout)}
    assert rows[("湘江示范医院", "hunan:S14")]["due"] == "2019-05-14"
    assert rows[("湘江示范医院", "hunan:S14")]["status"] == "open: 3 working days left"
    assert rows[("湘江示范医院", "national:G10")]["status"] == "filed on time"
    assert rows[("湘江示范医院", "national:G10")]["due"] == "2019-01-31"
    later = run(
        ledger_db, "hunan", "deadlines", "--as-of", "2019-05-20", "--institution", XINGCHENG, "--format", "json"
    )
    [row] = json.loads(later.stdout)
    assert (row["due"], row["status"], row["article"]) == ("2019-05-16", "overdue: no filing yet", "HN-2018#二(二)")
    by_name = ("--institution", "星城示范妇幼保健院", "--format", "json")
    assert run(ledger_db, "hunan", "deadlines", "--as-of", "2019-05-20", *by_name).stdout == later.stdout
    table = run(ledger_db, "hunan", "deadlines", "--as-of", "2019-06-30")
    assert "星城示范妇幼保健院" in table.stdout and "逾期备案" in table.stdout  # filed late, in Chinese first


# --- disabling Hunan ------------------------------------------------------------------------------------


def test_disabling_hunan_removes_exactly_its_rules_deadlines_reports_commands_and_findings() -> None:
    every = plugin_manager()
    without = plugin_manager(disabled=frozenset({"hunan"}))
    own_rules = {r.id for r in plugins.hunan.ledger_rules()}
    assert {r.id for r in rules_of(every)} - {r.id for r in rules_of(without)} == own_rules
    assert all(r.startswith("hunan.") for r in own_rules)
    assert set(deadlines_of(every)) - set(deadlines_of(without)) == set(DEADLINES)

    def reports(pm: pluggy.PluginManager) -> set[str]:
        return {r.name for rs in pm.hook.ledger_reports() for r in rs or ()}

    def commands(pm: pluggy.PluginManager) -> set[str]:
        group = click.Group("ledger")
        pm.hook.ledger_register_commands(cli=group)
        return set(group.commands)

    assert reports(every) - reports(without) == {"hunan-filing-summary"}
    assert commands(every) - commands(without) == {"hunan"}
    assert reports(without) <= reports(every) and commands(without) <= commands(every)

    log = demo_log()
    with_hunan = judge(log, as_of=TODAY, pm=every)
    without_hunan = judge(log, as_of=TODAY, pm=without)
    assert not any(f.rule.startswith("hunan.") for f in without_hunan)
    # The national findings stay; only the provincial citation goes with Hunan's deadlines.
    assert {(f.rule, f.decisions) for f in with_hunan} == {(f.rule, f.decisions) for f in without_hunan}
    late = next(f for f in without_hunan if f.rule == "national.late-filing")
    assert late.article == "MTM-2018#11"


def test_demo_files_are_valid_decisions() -> None:
    for path in (HUNAN_CATALOG, HUNAN_DEMO):
        assert all(record.id for record in read(Path(path)))


def test_import_refuses_a_form_that_is_not_an_object(tmp_path: Path) -> None:
    """HN-2018 附件2 through ``ledger_validate_decision``: the file is refused, naming the field."""
    pm = plugin_manager()
    app = LedgerApplication.open(str(tmp_path / "l.sqlite"), plugins=pm)
    try:
        with NATIONAL_CATALOG.open("rb") as fh:
            app.import_lines(fh, source="national")
        bad = [
            json.dumps(d, ensure_ascii=False)
            for d in [
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
                submitted("f1", "2019-05-06", tech="national:G10", ext={"hunan.form": ["附件2"]}),
            ]
        ]
        with pytest.raises(DecisionError) as error:
            app.import_lines([line.encode() for line in bad], source="bad.jsonl")
        assert error.value.field == "hunan.form"
        assert app.position() == len(NATIONAL_CATALOG.read_bytes().splitlines())  # the catalogue alone
    finally:
        app.close()


def test_hn2018_2_2_deadlines_list_and_findings_agree_on_a_retracted_submission(app: LedgerApplication) -> None:
    """HN-2018#二(二): a submission retracted later is no filing, on every day (the standing of a
    use): ``ledger hunan deadlines`` reads the same filing clock as ``national.filing-overdue``, so
    the list says overdue exactly where the trail finds it, never "filed" beside that finding."""
    from plugins.hunan.commands import deadline_rows
    from projections.views import Views

    retraction = {
        "id": "r1",
        "kind": "decision.retracted",
        "effective": "2019-05-30",
        "by": "H1",
        "retracts": "s1",
        "reason": "报送错误",
    }
    log = hunan_history(
        ethics("e1", "2019-04-01"), case_("c1", "2019-04-22"), submitted("s1", "2019-05-06"), retraction
    )
    text = "".join(canonical.dumps(r.to_json_dict()) + "\n" for _, r in log)
    app.import_lines(io.BytesIO(text.encode()), source="retracted.jsonl")
    views = Views(app)
    [row] = deadline_rows(views, institution="H1", as_of=date(2019, 6, 3))
    assert (row["due"], row["filed"], row["status"], row["article"]) == (
        "2019-05-14",
        "",
        "overdue: no filing yet",
        "HN-2018#二(二)",
    )
    found = views.trail(institution="H1", as_of=date(2019, 6, 3)).findings
    assert "national.filing-overdue" in {f.rule for f in found}
