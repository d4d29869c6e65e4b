"""Findings: what an inspector looks for, derived from the decisions by rules that plugins contribute.

Findings are never stored as facts (ARCHITECTURE.md rule 2): a trail computes them by running every
enabled plugin's rules over the decisions it shows, so a rebuild — or a newer rule — recomputes
them, and disabling a province's plugin removes exactly its findings.

A rule is judged on ``Facts`` (``projections.facts``): the decisions of one scope (an institution,
or the national scope for panels without one) as in force on a day, with corrections applied.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from enum import Enum
from typing import TYPE_CHECKING, Literal

from ledger.frozen import assemble

if TYPE_CHECKING:
    from projections.facts import Facts
    from projections.replay import Resolved

Severity = Literal["grave", "serious", "irregular"]
SEVERITY_ORDER: dict[str, int] = {"grave": 0, "serious": 1, "irregular": 2}


class _Default(Enum):
    OF_DECISION = "the field of the decision the finding is about"


OF_DECISION = _Default.OF_DECISION
"""``Finding.of``'s default for ``institution``, ``technology``, ``physician``: the field of that
name on the decision the finding is about (absent: None)."""


@dataclass(frozen=True, order=True)
class Finding:
    """One irregularity, citing the rule it breaks and the decisions that show it."""

    effective: date
    """The day it arose (e.g. the day after a missed deadline): the trail places it there."""
    rule: str
    """The rule's stable id, ``<plugin>.<name>`` (``national.late-filing``)."""
    article: str
    """The article it breaks, ``MTM-2018#11``."""
    severity: Severity
    message: str
    decisions: tuple[str, ...] = ()
    institution: str | None = None
    technology: str | None = None
    physician: str | None = None

    @classmethod
    def of(
        cls,
        rule: Rule,
        about: Resolved,
        message: str,
        *,
        severity: Severity,
        decisions: Iterable[Resolved | None] | None = None,
        effective: date | None = None,
        article: str | None = None,
        institution: str | _Default | None = OF_DECISION,
        technology: str | _Default | None = OF_DECISION,
        physician: str | _Default | None = OF_DECISION,
    ) -> Finding:
        """A finding of ``rule`` about the decision ``about``: the rule's id and article, arising on
        the decision's day, shown by ``decisions`` (default: ``about`` alone; in the order given,
        without repeats or Nones), concerning the institution, technology and physician the
        decision names. Pass any of them to say otherwise (``article``: the rule's article with the
        province's beside it, ``effective``: the day after a missed deadline)."""
        fields = about.record.fields
        shown_by: list[str] = []
        for d in (about,) if decisions is None else decisions:
            if d is not None and d.record.id not in shown_by:
                shown_by.append(d.record.id)
        # Made without __init__ (``ledger.frozen``): a busy use's span without a filing makes one per case.
        return assemble(
            cls,
            {
                "effective": about.record.effective if effective is None else effective,
                "rule": rule.id,
                "article": rule.article if article is None else article,
                "severity": severity,
                "message": message,
                "decisions": tuple(shown_by),
                "institution": fields.get("institution") if institution is OF_DECISION else institution,
                "technology": fields.get("technology") if technology is OF_DECISION else technology,
                "physician": fields.get("physician") if physician is OF_DECISION else physician,
            },
        )


@dataclass(frozen=True)
class Rule:
    """A check contributed through ``ledger_rules``.

    ``check`` receives the facts of one scope and yields findings. ``jurisdictions`` limits the
    rule to institutions of those jurisdictions (``None``: everywhere); a province's own rule names
    its province so that it never judges another's institutions.
    """

    id: str
    article: str
    title: str
    check: Callable[[Facts], Iterable[Finding]]
    jurisdictions: frozenset[str] | None = None

    def applies_to(self, jurisdiction: str | None) -> bool:
        return self.jurisdictions is None or jurisdiction in self.jurisdictions


@dataclass(frozen=True)
class Deadline:
    """A deadline in working days that a regime or province sets, contributed by ``ledger_deadlines``.

    ``name`` says what it is for (``filing``: after the first case, MTM-2018#11;
    ``training-base``: after the enrolment notice, MTM-2018#29; ``trainee-list``: HN-2018 §五;
    ``public-notice``: CQ-2017). A province's deadline overrides the national one of the same name
    for its institutions.
    """

    name: str
    working_days: int
    article: str
    jurisdiction: str = "national"
    valid_from: date = date.min
    valid_to: date | None = None
    extra: dict[str, str] = field(default_factory=dict, compare=False)
