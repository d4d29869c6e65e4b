"""HN-2018#二(二): a restricted technology is used only after a self-assessment that finds the norm met.

"拟开展限制类医疗技术临床应用的医疗机构，应当按照相关医疗技术临床应用管理规范进行自我评估，符合条件的可以开展临床
应用". Annex 2 (the filing form, ``hunan.form``) asks the institution two boxes: whether it assessed
itself against the norm (是否对照相关医疗技术管理规范进行自我评估) and whether it meets it
(是否符合相关医疗技术管理规范要求). A form that answers 否 to either is the institution's own statement
that the condition for use was not met:

* ``hunan.self-assessment`` — a filing whose form answers 否 to either box, from 2018-11-01.

The core kind ``self_assessment.concluded`` records the assessment itself; the national rule
``national.self-assessment`` (MTM-2018#11(1)) judges the cases against it. This rule reads what
Hunan's own form says, which only the Hunan plugin knows.
"""

from __future__ import annotations

from collections.abc import Iterator

from plugins.hunan import form as annex2
from plugins.hunan.rules import ONLY_HUNAN, _forms
from projections import Facts, Finding, Rule

ASSESSED = "是否对照相关医疗技术管理规范进行自我评估"
MEETS = "是否符合相关医疗技术管理规范要求"


def check_self_assessment(facts: Facts) -> Iterator[Finding]:
    """HN-2018#二(二): "符合条件的可以开展临床应用" — the filing form says the norm was not assessed or not met."""
    for d, form in _forms(facts):
        said = [label for label in (ASSESSED, MEETS) if form.get(label) == "否"]
        if not said:
            continue
        r = d.record
        yield Finding.of(
            SELF_ASSESSMENT,
            d,
            f"the filing form ({annex2.FORM}) of {r.fields['technology']} answers 否 to "
            + "、".join(said)
            + ": only an institution that meets the norm may use the technology (符合条件的可以开展临床应用)",
            severity="serious",
        )


SELF_ASSESSMENT = Rule(
    "hunan.self-assessment",
    "HN-2018#二(二)",
    "Filing form says the norm was not assessed or not met",
    check_self_assessment,
    ONLY_HUNAN,
)

RULES: tuple[Rule, ...] = (SELF_ASSESSMENT,)
"""Hunan's self-assessment rule, contributed by ``ledger_rules``."""
