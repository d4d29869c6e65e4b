"""Chongqing (CQ-2017, 渝卫发〔2017〕44号): filing authorities, expert review, the 5-working-day public
notice, use before a filing was done; the validator of its fields; ``ledger chongqing notices``; the demo.
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
from conftest import run_cli
from plugin_testing import (
    CHONGQING_DEMO,
    ELING,
    NATIONAL_CATALOG,
    YUZHOU,
    about,
    demo_log,
    judge,
    log_of,
    plugin_manager,
    read,
    summary,
)

import plugins.chongqing
from ledger import canonical
from ledger.application import LedgerApplication
from ledger.decisions import parse_line
from plugins.chongqing.commands import notice_rows
from plugins.chongqing.rules import DEADLINES
from projections.views import Views

CITY = "重庆市卫生健康委员会"
CITY_2017 = "重庆市卫生和计划生育委员会"
DISTRICT = "渝中区卫生健康委员会"


def history(*decisions: dict[str, Any], licensing: str = DISTRICT) -> list[tuple[int, Any]]:
    base: list[dict[str, Any]] = [
        {
            "id": "cat/G04",
            "kind": "technology.listed",
            "effective": "2015-06-29",
            "by": "国家卫生计生委",
            "catalog": "national",
            "code": "G04",
            "name": "同种异体角膜移植技术",
            "class": "restricted",
            "version": "2015",
        },
        {
            "id": "cat/C2",
            "kind": "technology.listed",
            "effective": "2010-06-01",
            "by": "重庆市卫生局",
            "catalog": "chongqing",
            "code": "C2-01",
            "name": "某第二类技术",
            "class": "class2",
            "version": "渝卫医〔2010〕46号",
        },
        {
            "id": "inst",
            "kind": "institution.registered",
            "effective": "2007-10-09",
            "by": "渝中区卫生局",
            "institution": "Q1",
            "name": "测试医院",
            "province": "重庆市",
            "city": "渝中区",
            "category": "医院",
            "level": "二级",
            "licensing_authority": licensing,
        },
        {
            "id": "doc",
            "kind": "physician.registered",
            "effective": "2009-11-09",
            "by": "渝中区卫生局",
            "physician": "D1",
            "name": "邓医生",
            "institution": "Q1",
            "title": "主任医师",
        },
        {
            "id": "grant",
            "kind": "privilege.granted",
            "effective": "2010-01-01",
            "by": "Q1",
            "institution": "Q1",
            "physician": "D1",
            "level": 4,
            "procedures": ["national:G04", "chongqing:C2-01"],
        },
        {
            "id": "ethics",
            "kind": "review.concluded",
            "effective": "2010-01-01",
            "by": "Q1",
            "institution": "Q1",
            "technology": "national:G04",
            "committee": "ethics",
            "outcome": "approved",
        },
        {
            "id": "mgmt",
            "kind": "review.concluded",
            "effective": "2010-01-01",
            "by": "Q1",
            "institution": "Q1",
            "technology": "national:G04",
            "committee": "management",
            "outcome": "approved",
        },  # MTM-2018#21
    ]
    return log_of([*base, *decisions])


def completed(
    fid: str,
    day: str,
    tech: str = "national:G04",
    by: str = CITY,
    *,
    review: bool = True,
    notice: tuple[str, str] | None = None,
) -> dict[str, Any]:
    d: dict[str, Any] = {
        "id": fid,
        "kind": "filing.completed",
        "effective": day,
        "by": by,
        "institution": "Q1",
        "technology": tech,
    }
    if review:
        d["chongqing.expert_review"] = f"{day} 专家形式审核：通过"
    start, end = notice or (day, day)
    if notice is not None or review:
        d["chongqing.public_notice_start"], d["chongqing.public_notice_end"] = start, end
    return d


def case(cid: str, day: str, tech: str = "national:G04") -> dict[str, Any]:
    return {
        "id": cid,
        "kind": "case.performed",
        "effective": day,
        "by": "Q1",
        "institution": "Q1",
        "technology": tech,
        "physician": "D1",
        "case": cid,
        "level": 4,
    }


def submitted(fid: str, day: str, tech: str = "national:G04") -> dict[str, Any]:
    return {
        "id": fid,
        "kind": "filing.submitted",
        "effective": day,
        "by": "Q1",
        "institution": "Q1",
        "technology": tech,
        "technical_lead": "D1",
        "materials": ["临床应用备案表"],
    }


def test_chongqing_public_notice_deadline_is_5_working_days_cq2017() -> None:
    """CQ-2017#二(二): "公示期为5个工作日"."""
    [deadline] = DEADLINES
    assert (deadline.name, deadline.working_days, deadline.article, deadline.jurisdiction) == (
        "public-notice",
        5,
        "CQ-2017#二(二)",
        "chongqing",
    )


def test_every_chongqing_rule_names_its_province_and_cites_cq2017() -> None:
    for rule in plugins.chongqing.ledger_rules():
        assert rule.id.startswith("chongqing.") and rule.jurisdictions == frozenset({"chongqing"})
        assert rule.article.startswith("CQ-2017") and rule.article in (rule.check.__doc__ or "")


# --- the demo ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("as_of", [date(2017, 8, 10), date(2019, 4, 20), date(2020, 10, 9), date(2026, 11, 1)])
def test_demo_chongqing_has_no_finding(as_of: date) -> None:
    """CQ-2017-0006 (2017: filed, reviewed and noticed before the first case) and CQ-2020-0007 (noticed
    2020-09-29 … 2020-10-12 across National Day) are as CQ-2017 asks; nothing else is irregular."""
    found = judge(demo_log(), as_of=as_of, institutions=[YUZHOU, ELING])
    assert found == []


def test_demo_cq_2017_0006_filed_before_its_first_case_is_not_a_late_filing() -> None:
    found = judge(demo_log(), as_of=date(2026, 11, 1))
    assert about(found, "CQ-2017-0006") == [] and about(found, "CQ-2017-0005") == []


# --- CQ-2017#二(二): the authority ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tech", "by", "licensing", "wrong"),
    [
        ("national:G04", CITY, DISTRICT, False),  # restricted: always the city
        ("national:G04", CITY_2017, DISTRICT, False),  # the city under its 2017 name
        ("national:G04", DISTRICT, DISTRICT, True),
        ("chongqing:C2-01", DISTRICT, DISTRICT, False),  # class 2: the district
        ("chongqing:C2-01", CITY, DISTRICT, True),
        ("chongqing:C2-01", CITY, CITY, False),  # 委属: the city
    ],
)
def test_cq2017_2_2_filing_authority(tech: str, by: str, licensing: str, wrong: bool) -> None:
    log = history(completed("k1", "2019-04-17", tech, by, notice=("2019-04-17", "2019-04-23")), licensing=licensing)
    found = [f for f in judge(log, as_of=date(2019, 12, 31)) if f.rule == "chongqing.filing-authority"]
    assert summary(found) == ({("chongqing.filing-authority", "CQ-2017#二(二)", ("k1",))} if wrong else set())


def test_cq2017_2_2_restricted_filing_needs_the_experts_formal_review() -> None:
    filing = completed("k1", "2019-04-17", notice=("2019-04-17", "2019-04-23"))
    del filing["chongqing.expert_review"]
    # Each completion on a live submission: one without is MTM-2018#11's finding, not this rule's.
    found = judge(history(submitted("f1", "2019-04-03"), filing), as_of=date(2019, 12, 31))
    assert summary(found) == {("chongqing.expert-review", "CQ-2017#二(二)", ("k1",))}
    class2 = completed("k2", "2019-04-17", "chongqing:C2-01", DISTRICT, notice=("2019-04-17", "2019-04-23"))
    del class2["chongqing.expert_review"]
    assert judge(history(submitted("f2", "2019-04-03", "chongqing:C2-01"), class2), as_of=date(2019, 12, 31)) == []


@pytest.mark.parametrize(
    ("notice", "problem"),
    [
        (("2020-09-29", "2020-10-12"), None),  # 09-29, 09-30, 10-09, 10-10 (make-up Saturday), 10-12
        (("2020-09-29", "2020-10-10"), "4 working days"),
        (("2019-04-17", "2019-04-23"), None),
        (("2019-04-16", "2019-04-23"), "before the filing"),
        (None, "no public notice"),
    ],
)
def test_cq2017_2_2_public_notice_of_5_working_days_first_day_counted(
    notice: tuple[str, str] | None, problem: str | None
) -> None:
    day = notice[0] if notice and notice[0] >= "2020" else "2019-04-17"
    filing = completed("k1", day, notice=notice, review=notice is not None)
    # Submitted the day it was completed: the authority's own clock (MTM-2018#11) is not judged here.
    found = judge(history(submitted("f1", day), filing), as_of=date(2020, 12, 31))
    if problem is None:
        assert found == []
        return
    assert [f.rule for f in found if f.rule != "chongqing.expert-review"] == ["chongqing.public-notice"]
    assert problem in next(f for f in found if f.rule == "chongqing.public-notice").message


def test_cq2017_2_2_a_case_before_the_notice_ran_is_use_before_filing_until_2018_11_01() -> None:
    """CQ-2017#二(一)(二): in 2017–2018 a new technology was filed first and counted once noticed."""
    early = history(
        submitted("f1", "2017-07-17"),
        completed("k1", "2017-08-07", by=CITY_2017, notice=("2017-08-07", "2017-08-11")),
        case("c1", "2017-08-10"),
        case("c2", "2017-08-22"),
    )
    assert summary(judge(early, as_of=date(2017, 12, 31))) == {
        ("chongqing.use-before-filing", "CQ-2017#二(二)", ("c1",)),
    }
    # From 2018-11-01 MTM-2018#11's order applies (first case, then filing): not this rule's.
    later = history(
        case("c1", "2019-03-19"),
        submitted("f1", "2019-04-03"),
        completed("k1", "2019-04-17", notice=("2019-04-17", "2019-04-23")),
        case("c2", "2019-04-18"),
    )
    assert judge(later, as_of=date(2019, 12, 31)) == []


def test_cq2017_rules_do_not_judge_hunan() -> None:
    log = history(completed("k1", "2019-04-17", by="长沙市卫生健康委员会", review=False))
    log = [
        (p, r)
        if r.kind != "institution.registered"
        else (
            p,
            parse_line(
                json.dumps(
                    {**r.to_json_dict(), "effective": str(r.effective), "province": "湖南省"}, ensure_ascii=False
                )
            ),
        )
        for p, r in log
    ]
    assert not any(f.rule.startswith("chongqing.") for f in judge(log, as_of=date(2019, 12, 31)))


# --- validator ------------------------------------------------------------------------------------------


def problems(decision: dict[str, Any]) -> list[str]:
    record = parse_line(json.dumps(decision, ensure_ascii=False))
    return [name for name, _ in plugins.chongqing.ledger_validate_decision(record)]


def test_validator_accepts_the_demo() -> None:
    for record in read(CHONGQING_DEMO):
        assert list(plugins.chongqing.ledger_validate_decision(record)) == [], record.id


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"chongqing.public_notice_end": "2020/10/12"}, "chongqing.public_notice_end"),
        ({"chongqing.public_notice_start": "2020-02-30"}, "chongqing.public_notice_start"),
        ({"chongqing.public_notice_end": "2020-09-28"}, "chongqing.public_notice_end"),
        ({"chongqing.notice": "x"}, "chongqing.notice"),
        ({"chongqing.expert_review": " "}, "chongqing.expert_review"),
    ],
)
def test_validator_refuses_malformed_chongqing_fields(changes: dict[str, Any], field: str) -> None:
    decision = {**completed("k1", "2020-09-29", notice=("2020-09-29", "2020-10-12")), **changes}
    assert field in problems(decision)


def test_validator_refuses_notice_fields_on_another_kind() -> None:
    decision = {**submitted("f1", "2020-09-22"), "chongqing.public_notice_start": "2020-09-29"}
    assert problems(decision) == ["chongqing.public_notice_start"]


# --- a real ledger: the notices command --------------------------------------------------------------------


@pytest.fixture(scope="module")
def ledger_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, pluggy.PluginManager]]:
    pm = plugin_manager()
    path = str(tmp_path_factory.mktemp("chongqing") / "ledger.sqlite")
    app = LedgerApplication.open(path, plugins=pm)
    try:
        for file in (NATIONAL_CATALOG, CHONGQING_DEMO):
            with file.open("rb") as fh:
                app.import_lines(fh, source=file.name)
    finally:
        app.close()
    yield path, pm


def notices(ledger_db: tuple[str, pluggy.PluginManager], day: str) -> list[dict[str, Any]]:
    path, pm = ledger_db
    group = click.Group("ledger")
    pm.hook.ledger_register_commands(cli=group)
    app = LedgerApplication.open(path, plugins=pm)
    try:
        result = CliRunner().invoke(
            group,
            ["chongqing", "notices", "--as-of", day, "--format", "json"],
            obj={"db": path, "app": app},
            catch_exceptions=False,
        )
    finally:
        app.close()
    assert result.exit_code == 0, result.output
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


def test_cq_2020_0007_is_still_in_its_public_notice_on_2020_10_09(ledger_db: tuple[str, pluggy.PluginManager]) -> None:
    """CQ-2017#二(二): noticed 2020-09-29 … 2020-10-12; on 2020-10-09 it does not yet count as done."""
    [row] = notices(ledger_db, "2020-10-09")
    assert (row["institution_name"], row["technology"], row["filed_on"], row["notice_until"]) == (
        "鹅岭示范医院",
        "national:G04",
        "2020-09-29",
        "2020-10-12",
    )
    assert [r["technology"] for r in notices(ledger_db, "2020-10-12")] == ["national:G04"]
    assert notices(ledger_db, "2020-10-13") == []
    assert [r["technology"] for r in notices(ledger_db, "2017-08-11")] == ["national:G01"]


def test_notice_rows_on_views(ledger_db: tuple[str, pluggy.PluginManager]) -> None:
    from projections.views import Views

    path, pm = ledger_db
    app = LedgerApplication.open(path, plugins=pm)
    try:
        views = Views(app)
        assert notice_rows(views, as_of=date(2022, 6, 21))[0]["technology"] == "national:G16"
        assert notice_rows(views, as_of=date(2022, 6, 22)) == []
        assert views.trail(province="chongqing", as_of=date(2026, 11, 1)).findings == []
    finally:
        app.close()


def test_disabling_chongqing_removes_its_rules_command_and_deadline() -> None:
    every, without = plugin_manager(), plugin_manager(disabled=frozenset({"chongqing"}))

    def rule_ids(pm: pluggy.PluginManager) -> set[str]:
        return {r.id for rs in pm.hook.ledger_rules() for r in rs}

    assert rule_ids(every) - rule_ids(without) == {r.id for r in plugins.chongqing.ledger_rules()}
    group = click.Group("ledger")
    without.hook.ledger_register_commands(cli=group)
    assert "chongqing" not in group.commands and "hunan" in group.commands
    assert not any(d.jurisdiction == "chongqing" for ds in without.hook.ledger_deadlines() for d in ds)


def test_csv_output_neutralises_formulas_and_quotes_carriage_returns(capsys: pytest.CaptureFixture[str]) -> None:
    from plugins.chongqing.commands import emit

    emit([{"a": "=HYPERLINK(1)", "b": "x\r=cmd"}], ("a", "b"), "csv")
    out = capsys.readouterr().out
    assert out == '\ufeffa,b\r\n\'=HYPERLINK(1),"x\r=cmd"\r\n'


# --- the notice the completion records, in the views (disclosure and the published page) -------------------


def test_cq2017_2_2_the_recorded_notice_end_wins_over_the_computed_one(
    app: LedgerApplication, ledger_url: str, tmp_path: Path
) -> None:
    """CQ-2017#二(二): the notice as the completion records it (``chongqing.public_notice_end``,
    through ``ledger_public_notice``) is the one the disclosure list and the published page show;
    only a completion that records none gets 5 working days counted from it (here 2021-03-01 …
    03-05, where the recorded notice runs 03-02 … 03-08)."""
    decisions = [
        submitted("s-g04", "2021-02-22"),
        completed("f-g04", "2021-03-01", notice=("2021-03-02", "2021-03-08")),
        submitted("s-c2", "2021-02-22", "chongqing:C2-01"),
        completed("f-c2", "2021-03-01", "chongqing:C2-01", review=False),
    ]
    text = "".join(canonical.dumps(r.to_json_dict()) + "\n" for _, r in history(*decisions))
    app.import_lines(io.BytesIO(text.encode()), source="notice.jsonl")

    def shown(day: str, *known_at: str) -> dict[str, tuple[str, str]]:
        args = ["disclosure", "--province", "chongqing", "--as-of", day, "--format", "json", *known_at]
        result = run_cli(args, ledger_url)
        assert result.exit_code == 0, result.output
        return {f["technology"]: (f["status"], f["notice_until"]) for f in json.loads(result.stdout)["filings"]}

    assert shown("2021-03-04") == {
        "national:G04": ("in public notice", "2021-03-08"),
        "chongqing:C2-01": ("in public notice", "2021-03-05"),
    }
    assert shown("2021-03-08")["national:G04"] == ("in public notice", "2021-03-08")
    assert shown("2021-03-08")["chongqing:C2-01"] == ("filed", "2021-03-05")
    assert shown("2021-03-09")["national:G04"] == ("filed", "2021-03-08")
    assert [r["technology"] for r in notice_rows(Views(app), as_of=date(2021, 3, 8))] == ["national:G04"]

    # A correction of the recorded end counts from its position on; before it, the old end.
    before = app.decision("f-c2").position  # the last decision of the history
    correction = {
        "id": "fix",
        "kind": "decision.corrected",
        "effective": "2021-03-10",
        "by": CITY,
        "corrects": "f-g04",
        "fields": {"chongqing.public_notice_end": "2021-03-09"},
    }
    app.import_lines(io.BytesIO(json.dumps(correction, ensure_ascii=False).encode() + b"\n"), source="fix.jsonl")
    assert shown("2021-03-04")["national:G04"] == ("in public notice", "2021-03-09")
    assert shown("2021-03-04", "--known-at", str(before))["national:G04"] == ("in public notice", "2021-03-08")

    site = tmp_path / "site"
    result = run_cli(["publish", "--out", str(site), "--province", "chongqing", "--as-of", "2021-03-08"], ledger_url)
    assert result.exit_code == 0, result.output
    page = (site / "chongqing" / "filings.html").read_text(encoding="utf-8")
    assert "公示中（至 2021-03-09）" in page  # the recorded (corrected) end
    assert "2021-03-05" in page and "公示中（至 2021-03-05）" not in page  # computed: its notice has run
