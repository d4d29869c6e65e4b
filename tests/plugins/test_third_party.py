"""A province written only against the documented hooks (docs/plugins.md), with no change to core.

``Guangdong`` below is the worked example of docs/plugins.md, made up for the purpose (广东省 and its
"GD-2021" are fictitious here): it contributes a jurisdiction, a catalogue written as a reference
decision file, a deadline that overrides the national one, a validator of its own field, a rule with
findings, a report and a command. The test registers it the way ``pytest`` can without installing a
distribution — ``make_plugin_manager(extra=(("guangdong", plugin),))`` — and shows each contribution
working on a real ledger, through the same paths the CLI uses.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import click
import pluggy
import pytest
from click.testing import CliRunner

from ledger.application import LedgerApplication
from ledger.decisions import DecisionRecord
from ledger.errors import DecisionError
from ledger.hookspecs import hookimpl
from ledger.jurisdictions import Jurisdiction
from ledger.plugins import describe, make_plugin_manager
from projections.facts import Facts
from projections.findings import Deadline, Finding, Rule
from projections.reports import Column, Option, Report, Table

# --- the plugin, as a third party would write it ---------------------------------------------------

GUANGDONG = Jurisdiction("guangdong", "广东省", aliases=("广东",))

CATALOG = [
    {
        "id": "guangdong/2021/listed/Y01",
        "kind": "technology.listed",
        "effective": "2021-01-01",
        "by": "广东省卫生健康委员会",
        "basis": "GD-2021#1",
        "catalog": "guangdong",
        "code": "Y01",
        "name": "机器人辅助腔镜手术技术",
        "class": "restricted",
        "version": "广东省限制类医疗技术目录（示例）",
    },
]


def check_level(facts: Facts) -> Iterator[Finding]:
    """GD-2021#3 (fictitious): guangdong:Y01 is used only in 三级 hospitals."""
    inst = facts.institution
    if inst is None or inst.record.fields["level"] == "三级":
        return
    for case in facts.of_kind("case.performed"):
        r = case.record
        if r.fields["technology"] == "guangdong:Y01" and r.effective >= date(2021, 1, 1):
            yield Finding(
                effective=r.effective,
                rule="guangdong.level",
                article="GD-2021#3",
                severity="serious",
                message=f"Y01 used at a {inst.record.fields['level']} hospital; GD-2021#3 allows only 三级",
                decisions=(r.id, inst.record.id),
                institution=r.fields["institution"],
                technology="guangdong:Y01",
                physician=r.fields["physician"],
            )


def build_filings(views: Any, options: Mapping[str, str | None]) -> Table:
    """Guangdong's filed restricted technologies as of ``--as-of`` (a made-up form)."""
    day = date.fromisoformat(options.get("as-of") or date.today().isoformat())
    rows = [
        {
            "name": f.institution_name,
            "code": f.technology.partition(":")[2],
            "technology": f.technology_name,
            "filed": f.filed_on.strftime("%Y%m%d") if f.filed_on else "",
            "authority": f.authority or "",
        }
        for f in views.filings(province="guangdong", as_of=day)
    ]
    return Table(
        title="广东省限制类技术备案名单（示例）",
        columns=[
            Column("医疗机构名称", "name"),
            Column("技术编号", "code"),
            Column("技术名称", "technology"),
            Column("备案时间", "filed", number_format="@"),
            Column("备案机关", "authority"),
        ],
        rows=rows,
        header_lines=["广东省限制类技术备案名单（示例）", f"截至{day:%Y年%m月%d日}"],
    )


@click.group("guangdong")
def guangdong_group() -> None:
    """Guangdong (GD-2021, a made-up example)."""


@guangdong_group.command("filings")
@click.option("--as-of", "as_of", required=True)
@click.pass_context
def filings_command(ctx: click.Context, as_of: str) -> None:
    """Filed restricted technologies in Guangdong on --as-of, one per line."""
    from projections.views import Views

    root = ctx.find_root()
    obj = root.ensure_object(dict)
    if "app" not in obj:
        obj["app"] = LedgerApplication.open(obj.get("db"))
        root.call_on_close(obj["app"].close)
    for f in Views(obj["app"]).filings(province="guangdong", as_of=date.fromisoformat(as_of)):
        click.echo(f"{f.institution_name}\t{f.technology}\t{f.status}\t{f.filed_on or ''}")


@dataclass
class Guangdong:
    """The plugin object: every hook is a method marked ``@hookimpl``; ``data`` holds its files."""

    data: Path
    __version__ = "0.0.1"

    @hookimpl
    def ledger_jurisdictions(self) -> list[Jurisdiction]:
        return [GUANGDONG]

    @hookimpl
    def ledger_reference_data(self) -> list[Path]:
        path = self.data / "catalog.jsonl"
        path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in CATALOG), encoding="utf-8")
        return [path]

    @hookimpl
    def ledger_validate_decision(self, decision: DecisionRecord) -> Iterable[tuple[str, str]]:
        serial = decision.extensions.get("guangdong.robot_serial")
        if serial is not None and not isinstance(serial, str):
            yield "guangdong.robot_serial", "the robot's serial number is text"

    @hookimpl
    def ledger_deadlines(self) -> list[Deadline]:
        return [Deadline("filing", 10, "GD-2021#2", "guangdong", valid_from=date(2021, 1, 1))]

    @hookimpl
    def ledger_rules(self) -> list[Rule]:
        return [
            Rule("guangdong.level", "GD-2021#3", "Y01 only in 三级 hospitals", check_level, frozenset({"guangdong"}))
        ]

    @hookimpl
    def ledger_reports(self) -> list[Report]:
        return [
            Report(
                "guangdong-filings",
                "广东省限制类技术备案名单（示例）",
                build_filings,
                options=[Option("as-of", "the day, YYYY-MM-DD")],
                article="GD-2021#2",
            )
        ]

    @hookimpl
    def ledger_register_commands(self, cli: click.Group) -> None:
        cli.add_command(guangdong_group)


# --- the history the tests record ----------------------------------------------------------------------

HISTORY: list[dict[str, Any]] = [
    {
        "id": "GD-2021-0001",
        "kind": "institution.registered",
        "effective": "2010-01-01",
        "by": "佛山市卫生局",
        "institution": "GD1",
        "name": "珠江示范医院",
        "province": "广东省",
        "city": "佛山市",
        "category": "医院",
        "level": "二级",
        "licensing_authority": "佛山市卫生健康局",
    },
    {
        "id": "GD-2021-0002",
        "kind": "physician.registered",
        "effective": "2010-02-01",
        "by": "佛山市卫生局",
        "physician": "P1",
        "name": "梁医生",
        "institution": "GD1",
        "title": "主任医师",
    },
    {
        "id": "GD-2021-0003",
        "kind": "privilege.granted",
        "effective": "2021-02-01",
        "by": "GD1",
        "institution": "GD1",
        "physician": "P1",
        "level": 4,
        "procedures": ["guangdong:Y01"],
    },
    {
        "id": "GD-2021-0004",
        "kind": "review.concluded",
        "effective": "2021-03-01",
        "by": "GD1",
        "institution": "GD1",
        "technology": "guangdong:Y01",
        "committee": "ethics",
        "outcome": "approved",
    },
    {
        "id": "GD-2021-0005",
        "kind": "case.performed",
        "effective": "2021-03-08",
        "by": "GD1",
        "institution": "GD1",
        "technology": "guangdong:Y01",
        "physician": "P1",
        "case": "ZJ-001",
        "level": 4,
        "guangdong.robot_serial": "DV-0001",
    },
    {
        "id": "GD-2021-0006",
        "kind": "filing.submitted",
        "effective": "2021-03-24",
        "by": "GD1",
        "institution": "GD1",
        "technology": "guangdong:Y01",
        "technical_lead": "P1",
        "materials": ["备案表"],
    },
    {
        "id": "GD-2021-0007",
        "kind": "filing.completed",
        "effective": "2021-04-02",
        "by": "佛山市卫生健康局",
        "institution": "GD1",
        "technology": "guangdong:Y01",
    },
    {
        "id": "GD-2021-0008",
        "kind": "review.concluded",
        "effective": "2021-03-01",
        "by": "GD1",
        "institution": "GD1",
        "technology": "guangdong:Y01",
        "committee": "management",
        "outcome": "approved",
    },
]


@pytest.fixture
def plugin(tmp_path: Path) -> Guangdong:
    return Guangdong(tmp_path)


@pytest.fixture
def pm(plugin: Guangdong) -> pluggy.PluginManager:
    return make_plugin_manager(extra=(("guangdong", plugin),), disabled=frozenset())


@pytest.fixture
def ledger(tmp_path: Path, pm: pluggy.PluginManager) -> Iterator[tuple[str, LedgerApplication]]:
    """A ledger with every plugin's reference data (Guangdong's catalogue included) and the history."""
    path = str(tmp_path / "ledger.sqlite")
    app = LedgerApplication.open(path, plugins=pm)
    try:
        files = sorted({p for paths in pm.hook.ledger_reference_data() for p in paths or ()}, key=str)
        for file in files:
            with Path(file).open("rb") as fh:
                app.import_lines(fh, source=str(file))
        app.import_lines([json.dumps(d, ensure_ascii=False) for d in HISTORY], source="guangdong-demo.jsonl")
        yield path, app
    finally:
        app.close()


def test_the_plugin_is_listed_with_its_hooks(pm: pluggy.PluginManager) -> None:
    info = next(p for p in describe(pm) if p.name == "guangdong")
    assert info.version == "0.0.1"
    assert set(info.hooks) == {
        "ledger_jurisdictions",
        "ledger_reference_data",
        "ledger_validate_decision",
        "ledger_deadlines",
        "ledger_rules",
        "ledger_reports",
        "ledger_register_commands",
    }


def test_catalogue_enters_as_reference_decisions(ledger: tuple[str, LedgerApplication]) -> None:
    from projections.views import Views

    _, app = ledger
    catalog = Views(app).catalog("guangdong", as_of=date(2021, 6, 1))
    assert ("guangdong", "Y01", "restricted") in {(e.catalog, e.code, e.tech_class) for e in catalog}
    assert any(e.catalog == "national" for e in catalog)  # a province sees the national catalogue too


def test_rule_and_deadline_produce_findings_in_the_trail(ledger: tuple[str, LedgerApplication]) -> None:
    """GD-2021#3 (its rule) and GD-2021#2 (its 10-working-day deadline, read by the national
    MTM-2018#11 rule): first case 2021-03-08, 10th working day 2021-03-22, filed 2021-03-24."""
    from projections.views import Views

    _, app = ledger
    trail = Views(app).trail(province="guangdong", as_of=date(2021, 12, 31))
    found = {(f.rule, f.article, f.decisions) for f in trail.findings}
    assert found == {
        ("guangdong.level", "GD-2021#3", ("GD-2021-0005", "GD-2021-0001")),
        ("national.late-filing", "MTM-2018#11, GD-2021#2", ("GD-2021-0006", "GD-2021-0005")),
    }
    late = next(f for f in trail.findings if f.rule == "national.late-filing")
    assert late.effective == date(2021, 3, 23)


def test_validator_refuses_its_own_malformed_field(ledger: tuple[str, LedgerApplication]) -> None:
    _, app = ledger
    bad = {**HISTORY[4], "id": "GD-2021-0099", "case": "ZJ-099", "guangdong.robot_serial": ["DV", 1]}
    with pytest.raises(DecisionError) as error:
        app.import_lines([json.dumps(bad, ensure_ascii=False)], source="bad.jsonl")
    assert error.value.field == "guangdong.robot_serial"


def test_report_builds_from_the_views(ledger: tuple[str, LedgerApplication], pm: pluggy.PluginManager) -> None:
    from projections.views import Views

    _, app = ledger
    report = next(r for rs in pm.hook.ledger_reports() for r in rs if r.name == "guangdong-filings")
    table = report.build(Views(app), {"as-of": "2021-06-01"})
    assert [c.name for c in table.columns] == ["医疗机构名称", "技术编号", "技术名称", "备案时间", "备案机关"]
    assert [dict(r) for r in table.rows] == [
        {
            "name": "珠江示范医院",
            "code": "Y01",
            "technology": "机器人辅助腔镜手术技术",
            "filed": "20210402",
            "authority": "佛山市卫生健康局",
        },
    ]


def test_command_runs_on_the_ledger(ledger: tuple[str, LedgerApplication], pm: pluggy.PluginManager) -> None:
    path, app = ledger
    cli = click.Group("ledger")
    pm.hook.ledger_register_commands(cli=cli)
    assert {"guangdong", "hunan", "chongqing", "national"} <= set(cli.commands)
    # The CLI keeps its open ledger in the root context's obj (``db``, ``app``); so does this test, with
    # an app that knows the plugin (installed, it would be found through the entry point instead).
    result = CliRunner().invoke(
        cli, ["guangdong", "filings", "--as-of", "2021-06-01"], obj={"db": path, "app": app}, catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "珠江示范医院\tguangdong:Y01\tfiled\t2021-04-02"


def test_disabling_the_province_removes_exactly_its_contributions(plugin: Guangdong) -> None:
    on = make_plugin_manager(extra=(("guangdong", plugin),), disabled=frozenset())
    off = make_plugin_manager(extra=(("guangdong", plugin),), disabled=frozenset({"guangdong"}))

    def contributions(pm: pluggy.PluginManager) -> set[str]:
        cli = click.Group("ledger")
        pm.hook.ledger_register_commands(cli=cli)
        return (
            {f"rule:{r.id}" for rs in pm.hook.ledger_rules() for r in rs}
            | {f"report:{r.name}" for rs in pm.hook.ledger_reports() for r in rs or ()}
            | {f"deadline:{d.jurisdiction}:{d.name}" for ds in pm.hook.ledger_deadlines() for d in ds}
            | {f"command:{c}" for c in cli.commands}
            | {f"jurisdiction:{j.code}" for js in pm.hook.ledger_jurisdictions() for j in js}
        )

    assert contributions(on) - contributions(off) == {
        "rule:guangdong.level",
        "report:guangdong-filings",
        "deadline:guangdong:filing",
        "command:guangdong",
        "jurisdiction:guangdong",
    }
    assert contributions(off) <= contributions(on)
