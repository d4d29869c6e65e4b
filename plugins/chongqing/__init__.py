"""Chongqing (CQ-2017, 渝卫发〔2017〕44号): filings with district or city, the 5-working-day notice.

Contributes, through the ``ledger`` entry-point group like any third-party province: its
jurisdiction, catalogue file (empty: CQ-2017's 35 第二类 technologies of 渝卫医〔2010〕46号 are not
named in the seeds, and its restricted ones are the national list) and demo history; the
``public-notice`` deadline (5 working days, CQ-2017#二(二)); the rules and the validator of its own
fields (``rules``: ``chongqing.expert_review``, ``chongqing.public_notice_start`` /
``chongqing.public_notice_end`` on ``filing.completed``), the notice those fields record
(``ledger_public_notice``, read by the disclosure views); and ``ledger chongqing notices``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from ledger import Body, Competence, DecisionRecord, Jurisdiction, hookimpl
from plugins.chongqing import bodies, clocks, rules
from projections import Deadline, Rule

if TYPE_CHECKING:
    import click

__version__ = "0.1.0"
DATA = Path(__file__).parent / "data"
CHONGQING = Jurisdiction("chongqing", "重庆市", aliases=("重庆",))


@hookimpl
def ledger_jurisdictions() -> list[Jurisdiction]:
    return [CHONGQING]


@hookimpl
def ledger_bodies() -> list[Body | Competence]:
    return list(bodies.BODIES)


@hookimpl
def ledger_reference_data() -> list[Path]:
    return [DATA / "catalog.jsonl"]


@hookimpl
def ledger_demo_data() -> list[Path]:
    return [DATA / "demo.jsonl"]


@hookimpl
def ledger_validate_decision(decision: DecisionRecord) -> Iterable[tuple[str, str]]:
    """Refuse ``chongqing.*`` fields that cannot be what they claim (see ``rules.validate``)."""
    if not decision.extensions:  # it checks only plugins' fields: most decisions carry none
        return []
    return list(rules.validate(decision))


@hookimpl
def ledger_public_notice(decision: DecisionRecord) -> tuple[date, date] | None:
    """CQ-2017#二(二): the notice the completion records (``clocks.recorded_notice``); a recorded end
    without a start runs from the completion. None where no end is recorded."""
    start, end = clocks.recorded_notice(decision)
    if decision.kind != "filing.completed" or end is None:
        return None
    return start or decision.effective, end


@hookimpl
def ledger_rules() -> list[Rule]:
    return [*rules.RULES, *clocks.RULES]


@hookimpl
def ledger_deadlines() -> list[Deadline]:
    return list(rules.DEADLINES)


@hookimpl
def ledger_register_commands(cli: click.Group) -> None:
    from plugins.chongqing.commands import chongqing_group

    cli.add_command(chongqing_group)
