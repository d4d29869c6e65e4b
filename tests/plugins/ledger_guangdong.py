"""Guangdong (GD-2021, fictitious): the worked example of docs/plugins.md, as a third party writes it.

It imports nothing of the ledger but its public API — the names ``ledger`` and ``projections``
export — and ``test_third_party`` checks that, both by reading its imports and by watching what it
imports while it loads and runs. 广东省 and its "GD-2021" are made up for the purpose.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import click

from ledger import DecisionRecord, Jurisdiction, hookimpl
from projections import (
    Column,
    Deadline,
    Facts,
    Finding,
    Option,
    Report,
    Rule,
    Table,
    Views,
    open_views,
    option_day,
    time_options,
)

GD2021 = date(2021, 1, 1)
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

DEADLINES = [Deadline("filing", 10, "GD-2021#2", "guangdong", valid_from=GD2021)]


def check_level(facts: Facts) -> Iterator[Finding]:
    """GD-2021#3 (fictitious): guangdong:Y01 is used only in 三级 hospitals."""
    inst = facts.institution
    if inst is None or inst.record.fields["level"] == "三级":
        return
    for case in facts.of_kind("case.performed"):
        r = case.record
        if r.fields["technology"] == "guangdong:Y01" and r.effective >= GD2021:
            yield Finding.of(
                LEVEL,
                case,
                f"Y01 used at a {inst.record.fields['level']} hospital; GD-2021#3 allows only 三级",
                severity="serious",
                decisions=(case, inst),
            )


LEVEL = Rule("guangdong.level", "GD-2021#3", "Y01 only in 三级 hospitals", check_level, frozenset({"guangdong"}))
RULES = [LEVEL]


def build_filings(views: Views, options: Mapping[str, str | None]) -> Table:
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


FILINGS = Report(
    "guangdong-filings",
    "广东省限制类技术备案名单（示例）",
    build_filings,
    options=[Option("as-of", "the day, YYYY-MM-DD")],
    article="GD-2021#2",
)


@click.group("guangdong")
def guangdong_group() -> None:
    """Guangdong (GD-2021, a made-up example)."""


@guangdong_group.command("filings")
@time_options
@click.pass_context
def filings_command(ctx: click.Context, as_of: str | None, known_at: str | None) -> None:
    """Filed restricted technologies in Guangdong on --as-of (default: today), one per line."""
    day = option_day(as_of, "--as-of") or date.today()
    for f in open_views(ctx).filings(province="guangdong", as_of=day, known_at=known_at):
        click.echo(f"{f.institution_name}\t{f.technology}\t{f.status}\t{f.filed_on or ''}")


@dataclass
class Guangdong:
    """The plugin object: every hook is a method marked ``@hookimpl``; ``data`` holds its files (an
    installed plugin names its module in the entry point instead, with module-level hooks)."""

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
        return DEADLINES

    @hookimpl
    def ledger_rules(self) -> list[Rule]:
        return RULES

    @hookimpl
    def ledger_reports(self) -> list[Report]:
        return [FILINGS]

    @hookimpl
    def ledger_register_commands(self, cli: click.Group) -> None:
        cli.add_command(guangdong_group)
