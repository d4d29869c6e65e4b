"""EVAL-2026 (医疗技术临床应用情况评估工作规程, 国卫办医政函〔2026〕66号), in force from 2026-03-04.

When a technology in clinical use shows one of the triggers of EVAL-2026#5, the NHC's guidance
centre has experts evaluate it (#6-#7), and the NHC acts on the conclusion (#8): prohibit it (it
joins the negative list), restrict it (it joins the restricted list), or strengthen its management
(revised norms and quality control — no catalogue change).

* ``national.evaluation-panel`` — EVAL-2026#7: "论证专家人数应为奇数，不少于7名 … 经超过三分之二的专家同意有效；
  对可能影响结论公正性的专家采取回避原则". Recused experts take no part in the 论证, so both the size
  and the two-thirds are counted over the experts who took part (members less recusals): 11 members
  with 2 recused is a panel of 9, and 8 of 9 for is more than two thirds.
* ``national.evaluation-followup`` — EVAL-2026#8(一)(二): a valid conclusion ``prohibit`` is followed by
  the technology's reclassification to ``prohibited``; ``restrict`` by its listing as ``restricted``
  (or stricter). Judged as of the view's day: until the catalogue change is recorded, the trail
  shows the conclusion not yet acted upon. ``strengthen`` (#8(三)) and ``no-change`` need none.

Evaluation panels name no institution, so these rules see them in the national scope. The
technology evaluated is usually in no catalogue yet (MTM-2018#12: most technologies in clinical use
are not): the panel names it by the national ref it has or will have (``national:G18``, or
``national:<its name>`` for one never listed), which the import accepts for evaluation panels only
(``ledger.decisions.may_name_uncatalogued``); a ``prohibit`` or ``restrict`` conclusion is followed
up until the national catalogue lists that ref.
"""

from __future__ import annotations

from collections.abc import Iterator

from plugins.national.common import is_eval2026
from projections import Facts, Finding, Resolved, Rule


def _taking_part(panel: Resolved) -> list[str]:
    f = panel.record.fields
    recused = set(f.get("recused") or ())
    return [m for m in f["members"] if m not in recused]


def _for(panel: Resolved) -> int:
    return sum(1 for v in (panel.record.fields.get("votes") or {}).values() if v == "for")


def panel_problems(panel: Resolved) -> list[str]:
    """What breaks EVAL-2026#7 in an evaluation panel (empty when it is valid)."""
    n, yes = len(_taking_part(panel)), _for(panel)
    problems = []
    if n < 7 or n % 2 == 0:
        problems.append(f"{n} experts took part; the rule asks for an odd number, at least 7")
    if not 3 * yes > 2 * n:
        problems.append(f"{yes} of {n} for: a conclusion needs more than two thirds")
    return problems


def _evaluations(facts: Facts) -> Iterator[Resolved]:
    for panel in facts.of_kind("panel.concluded"):
        if panel.record.fields["panel"] == "evaluation" and is_eval2026(panel.record.effective):
            yield panel


def check_evaluation_panel(facts: Facts) -> Iterator[Finding]:
    """EVAL-2026#7: an evaluation panel of an odd number of at least 7 experts, concluding with
    more than two thirds of them (counted over the experts who took part, recusals excluded)."""
    for panel in _evaluations(facts):
        problems = panel_problems(panel)
        if not problems:
            continue
        r = panel.record
        yield Finding.of(
            EVALUATION_PANEL,
            panel,
            f"evaluation of {r.fields['technology']} on {r.effective} (outcome {r.fields['outcome']}): "
            + "; ".join(problems),
            severity="serious",
        )


FOLLOW_UP = {"prohibit": ("prohibited",), "restrict": ("restricted", "prohibited")}
"""Outcome → the classes that carry it out (EVAL-2026#8(一), (二))."""


def check_evaluation_followup(facts: Facts) -> Iterator[Finding]:
    """EVAL-2026#8: a valid ``prohibit`` or ``restrict`` conclusion not (yet) carried into the catalogue
    as of the view's day. Invalid panels are ``national.evaluation-panel``'s finding instead."""
    for panel in _evaluations(facts):
        r = panel.record
        wanted = FOLLOW_UP.get(r.fields["outcome"])
        if wanted is None or panel_problems(panel):
            continue
        technology = r.fields["technology"]
        now = facts.tech_class(technology, facts.as_of)
        if now in wanted:
            continue
        yield Finding.of(
            EVALUATION_FOLLOWUP,
            panel,
            f"evaluation concluded '{r.fields['outcome']}' for {technology} on {r.effective}; as of "
            f"{facts.as_of} the catalogue still has it as {now or 'not listed'}",
            severity="irregular",
        )


EVALUATION_PANEL = Rule(
    "national.evaluation-panel",
    "EVAL-2026#7",
    "Evaluation panel size or two-thirds majority",
    check_evaluation_panel,
)
EVALUATION_FOLLOWUP = Rule(
    "national.evaluation-followup",
    "EVAL-2026#8",
    "Evaluation conclusion not carried into the catalogue",
    check_evaluation_followup,
)

RULES: tuple[Rule, ...] = (EVALUATION_PANEL, EVALUATION_FOLLOWUP)
"""EVAL-2026's rules, contributed by ``ledger_rules``."""
