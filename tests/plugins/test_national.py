"""The national regimes' rules (MTM-2009, MTM-2018, EVAL-2026), one test or more per article.

Hand-made histories use ``plugin_testing.hunan_history`` (a Hunan hospital ``H1``) or the same history in a
province no plugin speaks for (``province="广东省"``: national deadlines only). The shipped demo is
judged in full in ``test_hunan.py`` and ``test_chongqing.py``; here it checks the national findings
and that results do not depend on plugin load order.
"""

from __future__ import annotations

import json
import random
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from plugin_testing import case as case_
from plugin_testing import (
    completed,
    demo_log,
    ethics,
    facts_for,
    hunan_history,
    judge,
    plugin_manager,
    rejected,
    rules_of,
    submitted,
    summary,
)

import plugins.chongqing
import plugins.hunan
import plugins.national
from ledger.errors import CalendarError
from plugins.national import DEADLINES, calendars
from plugins.national.mtm2009 import twelve_months_after
from projections.findings import Finding

GD = "广东省"  # a province without a plugin: the national deadlines and rules only


def only(findings: list[Finding], rule: str) -> list[Finding]:
    return [f for f in findings if f.rule == rule]


# --- deadlines and rules contributed ---------------------------------------------------------------


def test_national_deadlines_cite_mtm2018_11_29_49() -> None:
    """MTM-2018#11 (15 working days), #29 (3), #49 (grandfather date 2019-02-01)."""
    by_name = {d.name: d for d in DEADLINES}
    assert (by_name["filing"].working_days, by_name["filing"].article) == (15, "MTM-2018#11")
    assert (by_name["training-base"].working_days, by_name["training-base"].article) == (3, "MTM-2018#29")
    assert by_name["grandfather"].extra == {"by": "2019-02-01"}
    assert by_name["grandfather"].article == "MTM-2018#49"
    assert all(d.jurisdiction == "national" for d in DEADLINES)


def test_every_national_rule_cites_its_article_in_id_docstring_and_title() -> None:
    rules = plugins.national.ledger_rules()
    assert len({r.id for r in rules}) == len(rules)
    for rule in rules:
        assert rule.id.startswith("national.")
        assert rule.jurisdictions is None
        assert rule.article.split("#")[0] in ("MTM-2009", "MTM-2018", "EVAL-2026")
        assert rule.article in (rule.check.__doc__ or ""), rule.id


# --- MTM-2018#9: prohibited --------------------------------------------------------------------------


def test_mtm2018_9_case_or_filing_of_a_prohibited_technology_is_grave() -> None:
    log = hunan_history(
        case_("c1", "2019-03-01", "national:P01"),
        submitted("f1", "2019-03-05", "national:P01"),
        case_("c0", "2018-10-30", "national:P01"),  # before it was listed prohibited (2018-11-01)
    )
    found = only(judge(log, as_of=date(2019, 6, 1)), "national.prohibited")
    assert [(f.decisions, f.severity, f.article) for f in found] == [
        (("c1",), "grave", "MTM-2018#9"),
        (("f1",), "grave", "MTM-2018#9"),
    ]


def test_mtm2009_13_58_prohibited_before_2018_is_judged_by_mtm2009() -> None:
    log = hunan_history(
        {
            "id": "cat/P09",
            "kind": "technology.listed",
            "effective": "2009-05-01",
            "by": "卫生部",
            "catalog": "national",
            "code": "P09",
            "name": "人类体细胞克隆技术",
            "class": "prohibited",
            "version": "MTM-2009#58",
        },
        case_("c1", "2012-03-01", "national:P09"),
    )
    found = judge(log, as_of=date(2013, 1, 1))
    assert summary(found) == {("national.prohibited-2009", "MTM-2009#13", ("c1",))}
    assert found[0].severity == "grave"


# --- MTM-2018#11: the filing clock -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filed", "late"),
    [("2019-05-14", False), ("2019-05-15", True)],
)
def test_mtm2018_11_filing_within_15_working_days_counts_the_may_day_make_up_days(filed: str, late: bool) -> None:
    """MTM-2018#11, HN-2018#二(二): first case 2019-04-22; 04-28 and 05-05 (Sundays) were working days,
    05-01..04 off, so the 15th working day is 2019-05-14 (NOTES.md)."""
    log = hunan_history(
        ethics("e", "2019-04-01"), case_("c1", "2019-04-22"), submitted("f1", filed), completed("k1", "2019-05-20")
    )  # the authority answers in time (MTM-2018#11)
    found = judge(log, as_of=date(2019, 12, 31))
    if not late:
        assert found == []
        return
    assert summary(found) == {("national.late-filing", "MTM-2018#11, HN-2018#二(二)", ("f1", "c1"))}
    assert found[0].effective == date(2019, 5, 15)  # the day after the deadline
    assert "2019-05-14" in found[0].message


def test_mtm2018_11_outside_a_province_plugin_cites_the_national_article_alone() -> None:
    log = hunan_history(
        ethics("e", "2019-04-01"),
        case_("c1", "2019-04-22"),
        submitted("f1", "2019-05-20"),
        completed("k1", "2019-05-27"),
        province=GD,
    )
    assert summary(judge(log, as_of=date(2019, 12, 31))) == {("national.late-filing", "MTM-2018#11", ("f1", "c1"))}


def test_mtm2018_11_overdue_until_filed_then_late_from_the_day_after_the_deadline() -> None:
    """As of a day past the deadline without a filing: "no filing yet" (MTM-2018#11, #41(4)); once the
    filing exists, the same irregularity shows as a late filing placed on 2019-05-15."""
    log = hunan_history(ethics("e", "2019-04-01"), case_("c1", "2019-04-22"), submitted("f1", "2019-05-24"))
    assert judge(log, as_of=date(2019, 5, 14)) == []
    overdue = judge(log, as_of=date(2019, 5, 15))
    assert summary(overdue) == {("national.filing-overdue", "MTM-2018#11, HN-2018#二(二)", ("c1",))}
    assert overdue[0].effective == date(2019, 5, 15) and overdue[0].severity == "serious"
    late = judge(log, as_of=date(2019, 5, 24))
    assert [f.rule for f in late] == ["national.late-filing"]
    assert late[0].effective == date(2019, 5, 15)


def test_mtm2018_11_only_the_first_filing_counts_a_new_form_after_a_change_of_lead_is_not_late() -> None:
    """MTM-2018#11 with HN-2018 附件2 注2: a new form when the technical lead changes is a new filing of
    an already filed use — not a late first filing."""
    log = hunan_history(
        {
            "id": "doc2",
            "kind": "physician.registered",
            "effective": "2019-01-01",
            "by": "长沙市卫生健康委员会",
            "physician": "D2",
            "name": "李医生",
            "institution": "H1",
            "title": "主任医师",
        },
        ethics("e", "2019-04-01"),
        case_("c1", "2019-04-22"),
        submitted("f1", "2019-05-06"),
        completed("k1", "2019-05-20"),
        submitted("f2", "2019-11-12", lead="D2"),
        case_("c2", "2019-11-20"),
        completed("k2", "2019-11-26"),
    )
    assert judge(log, as_of=date(2020, 1, 1)) == []


def test_mtm2018_11_cases_after_the_deadline_without_a_filing_are_unfiled_use() -> None:
    """MTM-2018#11: cases before the deadline are the clock running (first case, then filing); a case
    after it with nothing submitted is use without a filing; a pending filing is not."""
    log = hunan_history(
        ethics("e", "2019-04-01"),
        case_("c1", "2019-04-22"),
        case_("c2", "2019-05-10"),
        case_("c3", "2019-05-20"),
        submitted("f1", "2019-05-24"),
        case_("c4", "2019-05-27"),
        completed("k1", "2019-06-10"),
        case_("c5", "2019-06-11"),
    )
    found = judge(log, as_of=date(2019, 12, 31))
    assert summary(only(found, "national.unfiled-use")) == {
        ("national.unfiled-use", "MTM-2018#11, HN-2018#二(二)", ("c3", "c1")),
    }
    assert {f.rule for f in found} == {"national.unfiled-use", "national.late-filing"}


def test_mtm2018_11_a_case_after_a_rejected_filing_is_unfiled_use() -> None:
    log = hunan_history(
        ethics("e", "2019-04-01"),
        case_("c1", "2019-04-22"),
        submitted("f1", "2019-05-06"),
        rejected("r1", "2019-05-20"),
        case_("c2", "2019-05-22"),
        submitted("f2", "2019-06-03"),
        case_("c3", "2019-06-04"),
        completed("k2", "2019-06-10"),
    )
    found = judge(log, as_of=date(2019, 12, 31))
    assert summary(found) == {("national.unfiled-use", "MTM-2018#11, HN-2018#二(二)", ("c2", "r1", "c1"))}
    assert "rejected" in found[0].message


# --- MTM-2018#49: uses under way before 2018-11-01 ---------------------------------------------------


@pytest.mark.parametrize(
    ("province", "filed", "expected"),
    [
        (GD, "2019-02-01", set()),
        (GD, "2019-02-02", {("national.late-filing", "MTM-2018#49", ("f1",))}),
        ("湖南省", "2019-01-31", set()),
        ("湖南省", "2019-02-01", {("national.late-filing", "MTM-2018#49, HN-2018#六(一)", ("f1",))}),
    ],
)
def test_mtm2018_49_grandfathered_uses_file_by_the_national_or_provincial_date(
    province: str, filed: str, expected: set[Any]
) -> None:
    """MTM-2018#49: by 2019-02-01 nationally; HN-2018#六(一): by 2019-01-31 in Hunan. Only filings made
    under MTM-2018 count — a transition-era filing (2016) does not."""
    log = hunan_history(
        ethics("e", "2016-03-01", "national:G10"),
        case_("c0", "2016-03-22", "national:G10"),
        submitted("f0", "2016-04-06", "national:G10"),
        completed("k0", "2016-04-20", "national:G10", by="湖南省卫生计生委"),
        submitted("f1", filed, "national:G10"),
        completed("k1", "2019-02-15", "national:G10"),
        province=province,
    )
    found = judge(log, as_of=date(2019, 12, 31))
    assert summary(found) == expected
    if expected:
        assert found[0].effective == date(2019, 2, 2) if province == GD else date(2019, 2, 1)


def test_mtm2018_49_a_grandfathered_use_that_did_not_refile_may_not_continue() -> None:
    """MTM-2018#49: "不按照规定备案的，不得再开展": no overdue finding for not filing (the use may stop), but
    a case after the date without a new filing is use without a filing."""
    log = hunan_history(
        ethics("e", "2016-03-01", "national:G10"),
        case_("c0", "2017-05-11", "national:G10"),
        case_("c1", "2019-01-15", "national:G10"),
        case_("c2", "2019-03-01", "national:G10"),
        province=GD,
    )
    found = judge(log, as_of=date(2019, 12, 31))
    assert summary(found) == {("national.unfiled-use", "MTM-2018#49", ("c2",))}


# --- MTM-2018#13: ethics ---------------------------------------------------------------------------------


def test_mtm2018_13_case_before_ethics_approval() -> None:
    log = hunan_history(
        case_("c1", "2019-03-12"),
        ethics("e1", "2019-03-20"),
        case_("c2", "2019-03-21"),
        case_("g1", "2019-03-01", "national:G10"),
        ethics("e2", "2019-02-01", "national:G10", "rejected"),
        submitted("f1", "2019-03-29"),
        submitted("f2", "2019-03-05", "national:G10"),
    )
    found = only(judge(log, as_of=date(2019, 12, 31)), "national.ethics")
    assert summary(found) == {
        ("national.ethics", "MTM-2018#13", ("c1", "e1")),
        ("national.ethics", "MTM-2018#13", ("g1", "e2")),
    }
    by_case = {f.decisions[0]: f.message for f in found}
    assert "approved only on 2019-03-20" in by_case["c1"]
    assert "rejected" in by_case["g1"]


def test_mtm2018_13_is_judged_only_for_restricted_technologies_and_from_2018_11_01() -> None:
    log = hunan_history(
        {
            "id": "cat/X",
            "kind": "technology.listed",
            "effective": "2015-01-01",
            "by": "卫生部",
            "catalog": "national",
            "code": "X",
            "name": "其他技术",
            "class": "clinical-research",
            "version": "x",
        },
        case_("c1", "2019-03-12", "national:X"),
        case_("c0", "2018-10-01", "national:G10"),
    )
    assert only(judge(log, as_of=date(2019, 12, 31)), "national.ethics") == []


# --- MTM-2018#25: suspended, stopped -------------------------------------------------------------------


def test_mtm2018_25_case_while_suspended_or_stopped() -> None:
    use = {"by": "H1", "institution": "H1", "technology": "hunan:S14"}
    log = hunan_history(
        ethics("e", "2019-04-01"),
        case_("c1", "2019-04-22"),
        submitted("f1", "2019-05-06"),
        completed("k1", "2019-05-20"),
        {"id": "s1", "kind": "use.suspended", "effective": "2020-08-05", "reason": "MTM-2018#25(3)", **use},
        case_("c2", "2020-08-12"),
        {"id": "r1", "kind": "use.resumed", "effective": "2020-09-15", **use},
        case_("c3", "2020-09-16"),
        {"id": "x1", "kind": "use.stopped", "effective": "2021-07-02", "reason": "MTM-2018#25(2)", **use},
        case_("c4", "2021-08-01"),
        submitted("f2", "2022-01-04"),
        completed("k2", "2022-01-20"),
        case_("c5", "2022-02-01"),
    )
    found = judge(log, as_of=date(2022, 12, 31))
    assert summary(found) == {
        ("national.use-while-suspended", "MTM-2018#25", ("c2", "s1")),
        ("national.use-while-suspended", "MTM-2018#25", ("c4", "x1")),
    }


def test_mtm2009_41_case_while_stopped_before_2018() -> None:
    log = hunan_history(
        {
            "id": "x1",
            "kind": "use.stopped",
            "effective": "2017-01-10",
            "by": "H1",
            "institution": "H1",
            "technology": "national:G10",
            "reason": "MTM-2009#41",
        },
        case_("c1", "2017-02-01", "national:G10"),
        province=GD,
    )
    assert summary(judge(log, as_of=date(2017, 12, 31))) == {
        ("national.use-while-stopped-2009", "MTM-2009#41", ("c1", "x1")),
    }


# --- MTM-2018#20: privileges ---------------------------------------------------------------------------


def grant(gid: str, day: str, physician: str, level: int, procedures: list[str]) -> dict[str, Any]:
    return {
        "id": gid,
        "kind": "privilege.granted",
        "effective": day,
        "by": "H1",
        "institution": "H1",
        "physician": physician,
        "level": level,
        "procedures": procedures,
    }


def doctor(pid: str, day: str) -> dict[str, Any]:
    return {
        "id": f"reg/{pid}",
        "kind": "physician.registered",
        "effective": day,
        "by": "长沙市卫生健康委员会",
        "physician": pid,
        "name": pid,
        "institution": "H1",
        "title": "主治医师",
    }


def test_mtm2018_20_case_above_the_granted_level_or_outside_the_procedures() -> None:
    """MTM-2018#20: HN-2019-0041's pattern — a level-4 S14 case by a physician granted level 2 for other
    procedures — is one finding naming both reasons."""
    log = hunan_history(
        ethics("e", "2019-01-01"),
        doctor("D2", "2010-01-01"),
        grant("g2", "2019-01-10", "D2", 2, ["骨折闭合复位外固定术", "清创缝合术"]),
        doctor("D3", "2010-01-01"),
        grant("g3", "2019-01-10", "D3", 3, ["hunan:S14"]),
        doctor("D4", "2010-01-01"),
        grant("g4", "2019-01-10", "D4", 4, ["national:G10"]),
        doctor("D5", "2010-01-01"),
        grant("g5", "2019-01-10", "D5", 3, []),
        case_("c1", "2019-02-01"),  # D1, level 4, S14 in procedures: fine
        case_("c2", "2019-02-02", physician="D2"),
        case_("c3", "2019-02-03", physician="D3", level=4),
        case_("c4", "2019-02-04", physician="D4"),
        case_("c5", "2019-02-05", physician="D5", level=3),  # empty procedures: level only
        case_("c6", "2019-02-06", physician="D6"),
        submitted("f1", "2019-02-10"),
    )
    found = only(judge(log, as_of=date(2019, 12, 31)), "national.privilege")
    by_case = {f.decisions[0]: f for f in found}
    assert set(by_case) == {"c2", "c3", "c4", "c6"}
    assert "granted level 2" in by_case["c2"].message and "not among the granted procedures" in by_case["c2"].message
    assert "granted level 3" in by_case["c3"].message and "procedures" not in by_case["c3"].message
    assert "not among the granted procedures" in by_case["c4"].message
    assert "no surgical privilege" in by_case["c6"].message and "not registered" in by_case["c6"].message
    assert all(f.article == "MTM-2018#20" and f.physician for f in found)


def test_mtm2018_20_suspended_privilege_and_later_grant() -> None:
    log = hunan_history(
        ethics("e", "2019-01-01"),
        case_("c1", "2019-01-10"),
        submitted("f1", "2019-01-20"),
        {
            "id": "ps",
            "kind": "privilege.suspended",
            "effective": "2019-08-23",
            "by": "H1",
            "institution": "H1",
            "physician": "D1",
            "reason": "待重新考核",
        },
        case_("c2", "2019-09-01"),
        grant("g2", "2020-01-06", "D1", 4, ["hunan:S14"]),
        case_("c3", "2020-01-07"),
    )
    found = only(judge(log, as_of=date(2020, 12, 31)), "national.privilege")
    assert [f.decisions for f in found] == [("c2",)]


# --- MTM-2018#11(3): technical lead ------------------------------------------------------------------


def test_mtm2018_11_3_technical_lead_must_be_registered_at_the_filing_institution() -> None:
    log = hunan_history(
        ethics("e", "2019-01-01"),
        case_("c1", "2019-07-16"),
        submitted("f1", "2019-08-02", lead="ELSEWHERE"),
        case_("g1", "2019-07-16", "national:G10"),
        ethics("e2", "2019-01-01", "national:G10"),
        submitted("f2", "2019-08-02", "national:G10", lead="D1"),
        completed("k1", "2019-08-09"),
        completed("k2", "2019-08-09", "national:G10"),
    )
    found = judge(log, as_of=date(2019, 12, 31))
    assert summary(found) == {("national.technical-lead", "MTM-2018#11(3)", ("f1",))}
    assert found[0].physician == "ELSEWHERE"


# --- MTM-2018#29: training bases ---------------------------------------------------------------------


def training_base(tid: str, day: str, notice: str) -> dict[str, Any]:
    return {
        "id": tid,
        "kind": "training_base.filed",
        "effective": day,
        "by": "湖南省卫生健康委员会",
        "institution": "H1",
        "technology": "national:G10",
        "enrolment_notice": notice,
    }


@pytest.mark.parametrize(
    ("notice", "filed", "due"),
    [
        ("2019-09-27", "2019-10-08", None),  # 09-29 make-up day, National Day off: 3rd working day 10-08
        ("2019-09-27", "2019-10-09", "2019-10-08"),
        ("2020-09-28", "2020-10-12", "2020-10-09"),  # HN-2020-0009's pattern
        ("2021-03-01", "2021-03-03", None),
    ],
)
def test_mtm2018_29_training_base_within_3_working_days_of_its_enrolment_notice(
    notice: str, filed: str, due: str | None
) -> None:
    log = hunan_history(training_base("t1", filed, notice))
    found = judge(log, as_of=date(2021, 12, 31))
    if due is None:
        assert found == []
        return
    assert summary(found) == {("national.training-base", "MTM-2018#29", ("t1",))}
    assert found[0].effective == date.fromisoformat(due) + timedelta(days=1)


# --- calendars -----------------------------------------------------------------------------------------


def year_file(directory: Path, year: int) -> Path:
    path = directory / f"{year}.json"
    path.write_text(
        json.dumps(
            {
                "year": year,
                "source": f"国务院办公厅关于{year}年部分节假日安排的通知（测试用）",
                "holidays": [f"{year}-01-01", f"{year}-01-02"],
                "workdays": [],
            }
        ),
        encoding="utf-8",
    )
    return path


def test_calendar_unknown_year_is_a_finding_not_a_guess(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """MTM-2018#11 counted into 2027, a year chinese-calendar 1.11 does not know: the trail says the
    deadline cannot be computed, naming 2027 — until that year's schedule is added as data."""
    monkeypatch.delenv(calendars.CALENDAR_DIR_ENV, raising=False)
    log = hunan_history(ethics("e", "2026-12-01"), case_("c1", "2026-12-20"))
    found = judge(log, as_of=date(2026, 12, 25))
    assert summary(found) == {("national.calendar-unknown", "HN-2018#二(二)", ("c1",))}
    assert found[0].severity == "irregular" and "2027" in found[0].message
    assert found[0].effective == date(2026, 12, 20)

    # A filing within the known year settles it: no guess is needed.
    settled = hunan_history(ethics("e", "2026-12-01"), case_("c1", "2026-12-20"), submitted("f1", "2026-12-28"))
    assert judge(settled, as_of=date(2026, 12, 31)) == []

    # The year announced, as data: the deadline is counted (2027-01-01/02 off in this test file).
    year_file(tmp_path, 2027)
    monkeypatch.setenv(calendars.CALENDAR_DIR_ENV, str(tmp_path))
    assert judge(log, as_of=date(2026, 12, 25)) == []
    overdue = judge(log, as_of=date(2027, 3, 1))
    assert [f.rule for f in overdue] == ["national.filing-overdue"]


def test_calendar_dir_hook_reads_year_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(calendars.CALENDAR_DIR_ENV, raising=False)
    assert plugins.national.ledger_calendar_years("hunan") == []
    year_file(tmp_path, 2027)
    monkeypatch.setenv(calendars.CALENDAR_DIR_ENV, str(tmp_path))
    assert [y.year for y in plugins.national.ledger_calendar_years("national")] == [2027]
    monkeypatch.setenv(calendars.CALENDAR_DIR_ENV, str(tmp_path / "missing"))
    with pytest.raises(CalendarError, match="does not exist"):
        plugins.national.ledger_calendar_years("hunan")


def test_national_deadline_command_counts_on_the_province_calendar(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(calendars.CALENDAR_DIR_ENV, raising=False)
    group = click.Group("ledger")
    plugins.national.ledger_register_commands(group)
    result = CliRunner().invoke(group, ["national", "deadline", "2019-04-22", "--province", "hunan"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "2019-05-14"
    result = CliRunner().invoke(group, ["national", "deadline", "2026-12-20"])
    assert result.exit_code != 0 and "2027" in str(result.exception)


# --- MTM-2009#27, #24, #34: technical audits ----------------------------------------------------------


def audit(
    pid: str,
    day: str,
    members: list[str],
    votes: dict[str, str],
    outcome: str,
    recused: list[str] | None = None,
    tech: str = "national:C3",
) -> dict[str, Any]:
    return {
        "id": pid,
        "kind": "panel.concluded",
        "effective": day,
        "by": "湖南省卫生厅",
        "panel": "technical-audit",
        "technology": tech,
        "institution": "H1",
        "members": members,
        "recused": recused or [],
        "votes": votes,
        "outcome": outcome,
    }


FIVE = ["a", "b", "c", "d", "e"]


@pytest.mark.parametrize(
    ("members", "votes", "outcome", "recused", "problem"),
    [
        (FIVE, {"a": "for", "b": "for", "c": "against", "d": "for", "e": "against"}, "pass", [], None),  # HN-2012-0002
        (FIVE[:4], {"a": "for", "b": "for", "c": "for", "d": "against"}, "pass", [], "odd number"),
        (FIVE[:1], {"a": "for"}, "pass", [], "at least 3"),
        (FIVE, {"a": "for", "b": "for", "c": "against", "d": "against"}, "pass", [], "not more than half"),
        (FIVE, {"a": "for", "b": "for", "c": "for", "d": "against"}, "pass", ["e"], "odd number"),
        (FIVE, {"a": "for", "b": "for", "c": "for", "d": "against"}, "fail", [], "follows the majority"),
    ],
)
def test_mtm2009_27_audit_panel_of_3_or_more_odd_members_concluding_by_majority(
    members: list[str], votes: dict[str, str], outcome: str, recused: list[str], problem: str | None
) -> None:
    log = hunan_history(audit("p1", "2012-06-15", members, votes, outcome, recused))
    found = judge(log, as_of=date(2013, 1, 1))
    if problem is None:
        assert found == []
        return
    assert summary(found) == {("national.audit-panel", "MTM-2009#27", ("p1",))}
    assert problem in found[0].message


def test_mtm2009_27_is_not_applied_to_panels_after_2018_11_01() -> None:
    log = hunan_history(audit("p1", "2019-06-15", FIVE[:2], {"a": "for", "b": "for"}, "pass"))
    assert judge(log, as_of=date(2020, 1, 1)) == []


def test_mtm2009_24_no_new_audit_within_12_months_of_a_failed_one() -> None:
    no = {"a": "against", "b": "against", "c": "for"}
    yes = {"a": "for", "b": "for", "c": "for"}
    log = hunan_history(
        audit("p1", "2012-01-10", FIVE[:3], no, "fail"),
        audit("p2", "2012-12-01", FIVE[:3], yes, "pass"),
        audit("p3", "2013-06-01", FIVE[:3], no, "fail"),
        audit("p4", "2014-06-01", FIVE[:3], yes, "pass"),
    )
    found = judge(log, as_of=date(2015, 1, 1))
    assert summary(found) == {("national.audit-wait", "MTM-2009#24", ("p2", "p1"))}
    assert twelve_months_after(date(2012, 2, 29)) == date(2013, 3, 1)


def test_mtm2009_34_third_class_used_only_after_a_passed_audit_until_the_2015_transition() -> None:
    """MTM-2009#21, #34; abolished by 国卫医发〔2015〕71号 on 2015-06-29 (transition2015)."""
    yes = {"a": "for", "b": "for", "c": "for"}
    log = hunan_history(
        case_("c1", "2011-05-01", "national:C3"),
        audit("p1", "2012-06-15", FIVE[:3], yes, "pass"),
        case_("c2", "2012-07-01", "national:C3"),
    )
    other = hunan_history(case_("c3", "2015-07-01", "national:C3"))
    assert summary(judge(log, as_of=date(2016, 1, 1))) == {("national.unapproved-use", "MTM-2009#34", ("c1",))}
    assert judge(other, as_of=date(2016, 1, 1)) == []


# --- EVAL-2026#7, #8: evaluation panels ----------------------------------------------------------------


def evaluation(
    pid: str, day: str, n: int, yes: int, outcome: str, recused: int = 0, tech: str = "national:G10"
) -> dict[str, Any]:
    members = [f"m{i}" for i in range(n)]
    out, voting = members[:recused], members[recused:]
    votes = {m: "for" if i < yes else "against" for i, m in enumerate(voting)}
    return {
        "id": pid,
        "kind": "panel.concluded",
        "effective": day,
        "by": "国家卫生健康委医疗管理服务指导中心",
        "panel": "evaluation",
        "technology": tech,
        "members": members,
        "recused": out,
        "votes": votes,
        "outcome": outcome,
    }


@pytest.mark.parametrize(
    ("n", "yes", "recused", "problem"),
    [
        (11, 8, 2, None),  # HN-2026-0007: 9 took part, 8 for
        (7, 5, 0, None),
        (9, 7, 0, None),
        (9, 6, 0, "more than two thirds"),  # exactly two thirds is not more
        (5, 5, 0, "at least 7"),
        (8, 8, 0, "odd number"),
        (9, 8, 1, "odd number"),  # recusal leaves 8
    ],
)
def test_eval2026_7_panel_of_7_or_more_odd_experts_more_than_two_thirds(
    n: int, yes: int, recused: int, problem: str | None
) -> None:
    log = hunan_history(evaluation("p1", "2026-04-16", n, yes, "strengthen", recused))
    found = judge(log, as_of=date(2026, 6, 1))
    if problem is None:
        assert found == []
        return
    assert summary(found) == {("national.evaluation-panel", "EVAL-2026#7", ("p1",))}
    assert problem in found[0].message


def test_eval2026_7_applies_only_from_2026_03_04() -> None:
    log = hunan_history(evaluation("p1", "2026-03-03", 5, 3, "no-change"))
    assert judge(log, as_of=date(2026, 6, 1)) == []


def test_eval2026_8_prohibit_is_followed_by_reclassification_judged_as_of_the_view() -> None:
    log = hunan_history(
        evaluation("p1", "2026-04-16", 9, 9, "prohibit"),
        evaluation("p2", "2026-05-10", 9, 9, "restrict", tech="national:C3"),
        {
            "id": "rc",
            "kind": "technology.reclassified",
            "effective": "2026-07-01",
            "by": "国家卫生健康委",
            "catalog": "national",
            "code": "G10",
            "class": "prohibited",
        },
    )
    before = judge(log, as_of=date(2026, 6, 1))
    assert summary(before) == {
        ("national.evaluation-followup", "EVAL-2026#8", ("p1",)),
        ("national.evaluation-followup", "EVAL-2026#8", ("p2",)),
    }
    after = judge(log, as_of=date(2026, 7, 1))
    assert summary(after) == {("national.evaluation-followup", "EVAL-2026#8", ("p2",))}


# --- the demo, and load order ---------------------------------------------------------------------------


NATIONAL_ON_DEMO = {
    ("national.ethics", "MTM-2018#13", ("HN-2019-0010", "HN-2019-0012")),
    ("national.late-filing", "MTM-2018#11, HN-2018#二(二)", ("HN-2019-0022", "HN-2019-0020")),
    ("national.technical-lead", "MTM-2018#11(3)", ("HN-2019-0039",)),
    ("national.privilege", "MTM-2018#20", ("HN-2019-0041", "HN-2019-0002")),
    ("national.use-while-suspended", "MTM-2018#25", ("HN-2020-0005", "HN-2020-0004")),
    ("national.training-base", "MTM-2018#29", ("HN-2020-0009",)),
}


def test_national_findings_on_the_demo() -> None:
    found = judge(demo_log(), as_of=date(2026, 11, 1))
    assert summary(f for f in found if f.rule.startswith("national.")) == NATIONAL_ON_DEMO


def test_results_do_not_depend_on_plugin_load_order_or_rule_order() -> None:
    log = demo_log()
    builtins = (("national", plugins.national), ("hunan", plugins.hunan), ("chongqing", plugins.chongqing))
    forward = plugin_manager(extra=builtins)
    backward = plugin_manager(extra=tuple(reversed(builtins)))
    assert [r.id for r in rules_of(forward)] == [r.id for r in rules_of(backward)]
    unsorted = [r for rs in backward.hook.ledger_rules() for r in rs]
    shuffled = list(unsorted)
    random.Random(2026).shuffle(shuffled)
    results = [
        judge(log, as_of=date(2026, 11, 1), pm=forward),
        judge(log, as_of=date(2026, 11, 1), pm=backward, rules=unsorted),
        judge(log, as_of=date(2026, 11, 1), pm=backward, rules=shuffled),
    ]
    assert results[0] == results[1] == results[2]
    assert len(results[0]) == 6


def test_facts_deadline_prefers_the_province_and_falls_back_to_the_nation() -> None:
    log = hunan_history(province="湖南省")
    hunan = facts_for(log, "H1", as_of=date(2020, 1, 1))
    assert hunan.deadline("filing", date(2019, 5, 1)).article == "HN-2018#二(二)"  # type: ignore[union-attr]
    assert hunan.deadline("training-base", date(2019, 5, 1)).article == "MTM-2018#29"  # type: ignore[union-attr]
    elsewhere = facts_for(hunan_history(province=GD), "H1", as_of=date(2020, 1, 1))
    assert elsewhere.jurisdiction is None
    assert elsewhere.deadline("filing", date(2019, 5, 1)).article == "MTM-2018#11"  # type: ignore[union-attr]


def test_mtm2018_25_a_suspension_recorded_after_a_case_on_the_same_day_does_not_cover_it() -> None:
    """MTM-2018#25(3): the adverse case comes first, the suspension follows it the same day."""
    use = {"by": "H1", "institution": "H1", "technology": "hunan:S14", "reason": "MTM-2018#25(3)"}
    suspension = {"id": "s1", "kind": "use.suspended", "effective": "2019-06-03", **use}
    first = hunan_history(
        ethics("e", "2019-04-01"),
        case_("c1", "2019-04-22"),
        submitted("f1", "2019-05-06"),
        completed("k1", "2019-05-10"),
        case_("c2", "2019-06-03"),
        suspension,
    )
    assert judge(first, as_of=date(2019, 12, 31)) == []
    after = hunan_history(
        ethics("e", "2019-04-01"),
        case_("c1", "2019-04-22"),
        submitted("f1", "2019-05-06"),
        completed("k1", "2019-05-10"),
        suspension,
        case_("c2", "2019-06-03"),
    )
    assert summary(judge(after, as_of=date(2019, 12, 31))) == {
        ("national.use-while-suspended", "MTM-2018#25", ("c2", "s1")),
    }


def test_national_plugin_describes_its_hooks() -> None:
    from ledger.plugins import describe

    info = next(p for p in describe(plugin_manager()) if p.name == "national")
    assert info.version == "0.1.0"
    assert set(info.hooks) == {
        "ledger_reference_data",
        "ledger_rules",
        "ledger_deadlines",
        "ledger_calendar_years",
        "ledger_register_commands",
        "ledger_bodies",
    }
