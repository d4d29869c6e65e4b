"""Hunan (HN-2018, 湘卫医发〔2018〕11号): the provincial catalogue S01–S29 and Hunan's rules.

Contributes, through the ``ledger`` entry-point group like any third-party province:

* its jurisdiction and catalogue (``data/catalog.jsonl``, 湖南省限制类医疗技术目录（2018版）) and an
  illustrative history (``data/demo.jsonl``);
* deadlines that override the national ones for Hunan's institutions (``rules.DEADLINES``: filing
  15 working days HN-2018#二(二), grandfather 2019-01-31 HN-2018#六(一), trainee list 5 working days
  HN-2018#五);
* rules (``rules.RULES``), the validator of the annex-2 filing form ``hunan.form`` (``form``);
* the annex-5 semi-annual filing summary ``hunan-filing-summary`` (``report``);
* the command ``ledger hunan deadlines`` (``commands``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from ledger import Body, Competence, DecisionRecord, Jurisdiction, hookimpl
from plugins.hunan import assessment, bodies, form, report, rules
from projections import Deadline, Report, Rule

if TYPE_CHECKING:
    import click

__version__ = "0.1.0"
DATA = Path(__file__).parent / "data"
HUNAN = Jurisdiction("hunan", "湖南省", aliases=("湖南",))


@hookimpl
def ledger_jurisdictions() -> list[Jurisdiction]:
    return [HUNAN]


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
    """Refuse a ``hunan.*`` field that cannot be what it claims (HN-2018 附件2; see ``form``)."""
    if not decision.extensions:  # it checks only plugins' fields: most decisions carry none
        return []
    return list(form.validate(decision))


@hookimpl
def ledger_rules() -> list[Rule]:
    return [*rules.RULES, *assessment.RULES]


@hookimpl
def ledger_deadlines() -> list[Deadline]:
    return list(rules.DEADLINES)


@hookimpl
def ledger_reports() -> list[Report]:
    return [report.FILING_SUMMARY]


@hookimpl
def ledger_register_commands(cli: click.Group) -> None:
    from plugins.hunan.commands import hunan_group

    cli.add_command(hunan_group)
