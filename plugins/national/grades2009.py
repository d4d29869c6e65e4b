"""MTM-2009's surgical grades (#38–39), judged before 2018-11-01 as ``national.privilege`` judges MTM-2018#20.

MTM-2009#38 grades surgery in four levels by risk and difficulty (一级…四级); #39: "医疗机构应当对具有不同
专业技术职务任职资格的医师开展不同级别的手术进行限定，并对其专业能力进行审核后授予相应的手术权限". A case
whose recorded grade (``case.performed`` ``level``) is above the level the institution had granted
the physician (``privilege.granted``, in force on the case's day) breaks that limit.

Only a grade above a grant is judged here: a case with no grade, or by a physician with no grant in
force, says nothing about a level under MTM-2009, whose grants the decision files of the time rarely
hold.
"""

from __future__ import annotations

from collections.abc import Iterator

from plugins.national.common import MTM2009_START, MTM2018_START
from projections import Facts, Finding, Rule


def check_privilege_2009(facts: Facts) -> Iterator[Finding]:
    """MTM-2009#39 (grades of #38): a case from 2009-05-01 to 2018-10-31 above the physician's granted level."""
    for (institution, technology), use in sorted(facts.uses.items()):
        for case in use.cases_on(MTM2009_START, MTM2018_START):
            r = case.record
            level = r.fields.get("level")
            if level is None:
                continue
            physician = r.fields["physician"]
            grant = facts.privilege(physician, institution, r.effective)
            if grant is None or level <= grant.record.fields["level"]:
                continue
            yield Finding.of(
                PRIVILEGE_2009,
                case,
                f"case {r.fields['case']} of {technology} on {r.effective}: grade-{level} operation "
                f"(MTM-2009#38) by a physician granted level {grant.record.fields['level']}",
                severity="serious",
                decisions=(case, grant),
            )


PRIVILEGE_2009 = Rule(
    "national.privilege-2009",
    "MTM-2009#39",
    "Case above the physician's granted grade (MTM-2009)",
    check_privilege_2009,
)

RULES: tuple[Rule, ...] = (PRIVILEGE_2009,)
"""MTM-2009's grade rule, contributed by ``ledger_rules``."""
