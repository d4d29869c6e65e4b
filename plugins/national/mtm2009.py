"""MTM-2009 (医疗技术临床应用管理办法, 卫医政发〔2009〕18号), in force 2009-05-01 → 2018-10-31.

Three classes of technology (MTM-2009#7): the first managed by the institution, the second
approved by the province, the third by the Ministry of Health, each after a *technical audit*
(技术审核) of the institution's capability. The rules here judge decisions effective before
2018-11-01 only; from that day MTM-2018 (``mtm2018``) applies.

* ``national.audit-panel`` — MTM-2009#27: an audit is decided by a collegial panel of 3 or more
  members, an odd number, and its conclusion follows more than half of them.
* ``national.audit-wait`` — MTM-2009#23(3), #24: after a failed audit, no new audit of the same
  technology for the same institution within 12 months.
* ``national.unapproved-use`` — MTM-2009#21, #34: a second- or third-class technology is used
  clinically only after a passed audit (then approval and registration); until the 2015 transition
  (``transition2015``) abolished that admission approval.
* ``national.prohibited-2009`` — MTM-2009#13, #58: no clinical use of a technology the Ministry
  abolished or prohibited (异种干细胞治疗技术、异种基因治疗技术、人类体细胞克隆技术 …).
* ``national.use-while-stopped-2009`` — MTM-2009#41-#43, #50(5): no use after the institution had
  to stop, or was ordered to stop, a technology.

The ledger records who voted; MTM-2009 records no approval or registration decision of its own
kind, so a *passed technical audit* is what the ledger can show of "approved" (documented as a
simplification, not a rule of the regime).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

from plugins.national.common import MTM2009_START, cases_with_state, interrupted, is_mtm2009
from plugins.national.transition2015 import TRANSITION_2015
from projections import Facts, Finding, Resolved, Rule


def participants(panel: Resolved) -> list[str]:
    """Members who took part: the members less those who recused (回避, MTM-2009#20)."""
    f = panel.record.fields
    recused = set(f.get("recused") or ())
    return [m for m in f["members"] if m not in recused]


def votes_for(panel: Resolved) -> int:
    votes = panel.record.fields.get("votes") or {}
    return sum(1 for v in votes.values() if v == "for")


def check_audit_panel(facts: Facts) -> Iterator[Finding]:
    """MTM-2009#27: "参加…技术审核的人员数量应当为3人以上单数" and "根据半数以上审核人员的意见形成技术审核结论".

    The size is counted over those who took part (members less recusals); ``pass`` needs more than
    half of them voting ``for``, and ``fail`` must not contradict such a majority.
    """
    for panel in facts.of_kind("panel.concluded"):
        r = panel.record
        f = r.fields
        if f["panel"] != "technical-audit" or not is_mtm2009(r.effective):
            continue
        taking_part = participants(panel)
        n, yes = len(taking_part), votes_for(panel)
        problems = []
        if n < 3 or n % 2 == 0:
            problems.append(f"{n} auditors took part; the rule asks for an odd number, at least 3")
        if f["outcome"] == "pass" and not 2 * yes > n:
            problems.append(f"'pass' with {yes} of {n} for: not more than half")
        if f["outcome"] == "fail" and 2 * yes > n:
            problems.append(f"'fail' although {yes} of {n} were for: the conclusion follows the majority")
        if not problems:
            continue
        yield Finding.of(
            AUDIT_PANEL,
            panel,
            f"technical audit of {f['technology']} on {r.effective}: " + "; ".join(problems),
            severity="serious",
        )


def twelve_months_after(day: date) -> date:
    """The same day a year later (29 February → 1 March): when a new audit may be applied for."""
    try:
        return day.replace(year=day.year + 1)
    except ValueError:
        return date(day.year + 1, 3, 1)


def check_audit_wait(facts: Facts) -> Iterator[Finding]:
    """MTM-2009#24 (and #23(3)): "距上次同一医疗技术未通过临床应用能力技术审核时间未满12个月的" may not apply.

    An audit of the same technology for the same institution concluded less than 12 months after
    a failed one. (The ledger holds the audits' conclusions, not the applications; a conclusion
    inside the 12 months shows the application was too.)
    """
    failed: dict[tuple[str | None, str], Resolved] = {}
    for panel in facts.of_kind("panel.concluded"):
        r = panel.record
        f = r.fields
        if f["panel"] != "technical-audit" or not is_mtm2009(r.effective):
            continue
        key = (f.get("institution"), f["technology"])
        previous = failed.get(key)
        if previous is not None and r.effective < twelve_months_after(previous.record.effective):
            yield Finding.of(
                AUDIT_WAIT,
                panel,
                f"technical audit of {f['technology']} on {r.effective}, less than 12 months after the failed "
                f"audit of {previous.record.effective} (MTM-2009#23(3), #24)",
                severity="irregular",
                decisions=(panel, previous),
            )
        if f["outcome"] == "fail":
            failed[key] = panel


def check_unapproved_use(facts: Facts) -> Iterator[Finding]:
    """MTM-2009#34 (and #21): a second- or third-class technology is used only after a passed technical
    audit (and the approval and registration that follow it), from 2009-05-01 until the 2015
    transition abolished the admission approval (国卫医发〔2015〕71号, 2015-06-29)."""
    first_pass: dict[tuple[str | None, str], date] = {}
    for p in facts.of_kind("panel.concluded"):
        f = p.record.fields
        if f["panel"] == "technical-audit" and f["outcome"] == "pass":
            first_pass.setdefault((f.get("institution"), f["technology"]), p.record.effective)
    for (institution, technology), use in sorted(facts.uses.items()):
        if not facts.may_be(technology, "class2", "class3"):
            continue
        passed_on = first_pass.get((institution, technology), date.max)
        for case in use.cases_on(MTM2009_START, TRANSITION_2015):
            r = case.record
            tech_class = facts.tech_class(technology, r.effective)
            if tech_class not in ("class2", "class3") or passed_on <= r.effective:
                continue
            yield Finding.of(
                UNAPPROVED_USE,
                case,
                f"case of {technology} ({tech_class}) on {r.effective} without a passed technical audit "
                "(MTM-2009#21, #34: used only after audit, approval and registration)",
                severity="serious",
            )


def check_prohibited_2009(facts: Facts) -> Iterator[Finding]:
    """MTM-2009#13, #58: "医疗机构不得在临床应用卫生部废除或者禁止使用的医疗技术" — a case of a technology
    that is ``prohibited`` in the catalogue on its day, before 2018-11-01 (only technologies ever
    prohibited need looking up)."""
    suspects = {technology for _, technology in facts.uses if facts.may_be(technology, "prohibited")}
    if not suspects:
        return
    for case in facts.of_kind("case.performed"):
        r = case.record
        if r.fields["technology"] not in suspects or not is_mtm2009(r.effective):
            continue
        if facts.tech_class(r.fields["technology"], r.effective) != "prohibited":
            continue
        yield Finding.of(
            PROHIBITED_2009,
            case,
            f"case of {r.fields['technology']}, a prohibited technology, on {r.effective} (MTM-2009#13, #58)",
            severity="grave",
        )


def check_stopped_2009(facts: Facts) -> Iterator[Finding]:
    """MTM-2009#41 (and #42-#43, #50(5)): a case on a day the use was suspended or stopped,
    before 2018-11-01 ("未按照本办法第四十一条规定立即停止"). A use never suspended or stopped has no such case."""
    for (_, technology), use in sorted(facts.uses.items()):
        if not interrupted(use):
            continue
        for case, state, why in cases_with_state(facts.history(use)):
            r = case.record
            if not is_mtm2009(r.effective) or state == "active":
                continue
            yield Finding.of(
                USE_WHILE_STOPPED_2009,
                case,
                f"case of {technology} on {r.effective} while its use was {state}",
                severity="serious",
                decisions=(case, why),
            )


AUDIT_PANEL = Rule("national.audit-panel", "MTM-2009#27", "Technical audit panel size or majority", check_audit_panel)
AUDIT_WAIT = Rule("national.audit-wait", "MTM-2009#24", "New audit within 12 months of a failed one", check_audit_wait)
UNAPPROVED_USE = Rule(
    "national.unapproved-use",
    "MTM-2009#34",
    "Second/third-class technology used without approval",
    check_unapproved_use,
)
PROHIBITED_2009 = Rule(
    "national.prohibited-2009", "MTM-2009#13", "Use of a prohibited technology (MTM-2009)", check_prohibited_2009
)
USE_WHILE_STOPPED_2009 = Rule(
    "national.use-while-stopped-2009",
    "MTM-2009#41",
    "Case while the use was stopped (MTM-2009)",
    check_stopped_2009,
)

RULES: tuple[Rule, ...] = (AUDIT_PANEL, AUDIT_WAIT, UNAPPROVED_USE, PROHIBITED_2009, USE_WHILE_STOPPED_2009)
"""MTM-2009's rules, contributed by ``ledger_rules``."""
