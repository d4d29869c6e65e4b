"""Enforcement as findings: correction orders that were not followed, fines outside the law's ranges.

The ledger records a regulator's correction order (``correction.ordered``, with its ``deadline``) and
its fines (``penalty.imposed``); these rules say where what followed breaks the regime in force:

* ``national.correction-ignored`` — MTM-2018#41 (and #44): "责令限期改正；逾期不改的，暂停或者停止相关医疗
  技术临床应用". A use that goes on after the deadline with no suspension or stop since the order
  shows an order nobody followed — neither the institution nor the regulator. Before 2018-11-01
  MTM-2009#50 ("卫生行政部门应当立即责令其改正") is cited. The ledger holds no decision saying a
  correction was made, so the finding says what it shows: use went on, nothing stopped it.
* ``national.fine-range`` — MTM-2018#41: "处以三千元以下罚款；造成严重后果的，处以三千元以上三万元以下
  罚款"; #44: "给予三万元以下罚款"; #42 provides no fine at all. The article is read from the fine's
  ``basis`` (else its ``reason``); a serious outcome is what the statute calls it, "严重后果", in the
  fine's ``reason``, ``basis`` or ``note``. A fine naming no article (no ``basis``, or one citing
  MTM-2018 without an article) is judged against the highest cap either article allows (¥30,000); one
  whose ``basis`` is another law is that law's business. #43 fines under 《医疗机构管理条例》#47, whose amounts
  are not in the seeds: not judged.
* ``national.fine-before-deadline`` — MTM-2018#41, #44: both fine only "逾期不改的" (after a correction
  deadline has passed): a fine under #41 or #44 with no earlier correction order whose deadline had
  passed by the fine's day.

Fines before 2018-11-01 are not judged: MTM-2009 sets no fine of its own (#48 refers to the 条例).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from decimal import Decimal

from plugins.national.common import cases_with_state, interrupted, is_mtm2009, is_mtm2018, the_day_after
from projections import Facts, Finding, Resolved, Rule, Use

FINE_CAP_41 = Decimal(3000)
"""MTM-2018#41: "处以三千元以下罚款"."""
FINE_SERIOUS_41 = (Decimal(3000), Decimal(30000))
"""MTM-2018#41: "造成严重后果的，处以三千元以上三万元以下罚款" (both ends included: 以上, 以下)."""
FINE_CAP_44 = Decimal(30000)
"""MTM-2018#44: "给予三万元以下罚款"."""
SERIOUS = "严重后果"
"""The statute's own words for the outcome that raises #41's range."""

_ARTICLE = re.compile(r"MTM-2018#(4[1-4])(?!\d)")
_CHINESE_ARTICLE = re.compile(r"第四十([一二三四])条")
_CHINESE_DIGITS = {"一": "41", "二": "42", "三": "43", "四": "44"}
_INTERRUPTIONS = frozenset({"use.suspended", "use.stopped"})


def fine_article(record: Resolved) -> str | None:
    """The article of MTM-2018 (``41``…``44``) a fine is imposed under: its ``basis``, else its ``reason``."""
    r = record.record
    for text in (r.basis, r.fields.get("reason")):
        if not text:
            continue
        found = _ARTICLE.search(text)
        if found:
            return found.group(1)
        chinese = _CHINESE_ARTICLE.search(text)
        if chinese:
            return _CHINESE_DIGITS[chinese.group(1)]
    return None


def _serious(record: Resolved) -> bool:
    r = record.record
    return any(SERIOUS in (text or "") for text in (r.fields.get("reason"), r.basis, r.note))


def _yuan(amount: Decimal) -> str:
    return f"¥{amount:,.2f}".replace(".00", "")


# --- MTM-2018#41, #44; MTM-2009#50: a correction order's deadline passed, use went on ---------------


def order_article(order: Resolved) -> str:
    """MTM-2009#50 before 2018-11-01; from then MTM-2018#44 where the order says so, else #41."""
    r = order.record
    if is_mtm2009(r.effective):
        return "MTM-2009#50"
    return "MTM-2018#44" if r.basis and "MTM-2018#44" in r.basis else "MTM-2018#41"


def check_correction_ignored(facts: Facts) -> Iterator[Finding]:
    """MTM-2018#41, #44 (MTM-2009#50 before 2018-11-01): cases after a correction order's deadline with
    no suspension or stop of the use since the order.

    The order's ``technology`` names the use; an order that names none covers every restricted
    technology of the institution (each judged on its case's day). A case while the use is already
    suspended or stopped is ``national.use-while-suspended``'s, not this rule's. One finding per order
    and use, on the day of the first case after the deadline."""
    for order in facts.of_kind("correction.ordered"):
        r = order.record
        deadline: date = r.fields["deadline"]
        if deadline >= facts.as_of or not (is_mtm2009(r.effective) or is_mtm2018(r.effective)):
            continue
        named = r.fields.get("technology")
        if named is not None:
            key = (r.fields["institution"], named)
            chosen = [(key, facts.uses[key])] if key in facts.uses else []
        else:
            chosen = [(key, use) for key, use in sorted(facts.uses.items()) if facts.may_be(key[1], "restricted")]
        for (_, technology), use in chosen:
            if not use.cases_on(the_day_after(deadline)):
                continue
            went_on = _cases_after_deadline(facts, order, use, named is None)
            if went_on is None:
                continue
            first, last = went_on[0].record, went_on[1].record
            article = order_article(order)
            yield Finding.of(
                CORRECTION_IGNORED,
                went_on[0],
                f"{technology} used after the correction deadline {deadline} of {r.id} ({r.effective}, by "
                f"{r.by}): cases from {first.effective} to {last.effective}, and no suspension or stop since the "
                f"order ({article}: 逾期不改的，暂停或者停止相关医疗技术临床应用)",
                severity="serious",
                decisions=(order, went_on[0]),
                article=article,
            )


def _cases_after_deadline(
    facts: Facts, order: Resolved, use: Use, restricted_only: bool
) -> tuple[Resolved, Resolved] | None:
    """The first and last cases of ``use`` after ``order``'s deadline while the use was active, before
    any suspension or stop that came after the order (valid-time order: day, then log position); with
    ``restricted_only``, of the technology while restricted. None: no such case."""
    deadline = order.record.fields["deadline"]

    def counts(case: Resolved) -> bool:
        r = case.record
        return not restricted_only or facts.tech_class(r.fields["technology"], r.effective) == "restricted"

    if not interrupted(use):  # never suspended or stopped: every case after the deadline went on
        cases = use.cases_on(the_day_after(deadline))
        first = next((c for c in cases if counts(c)), None)
        last = next((c for c in reversed(cases) if counts(c)), None)
        return (first, last) if first is not None and last is not None else None
    since = (order.record.effective, order.position)
    until = min(
        (
            (d.record.effective, d.position)
            for d in use.others
            if d.record.kind in _INTERRUPTIONS and (d.record.effective, d.position) >= since
        ),
        default=None,
    )
    went_on: list[Resolved] = []
    for case, state, _ in cases_with_state(facts.history(use)):
        day = case.record.effective
        if until is not None and (day, case.position) > until:
            break
        if day > deadline and state == "active" and counts(case):
            went_on.append(case)
    return (went_on[0], went_on[-1]) if went_on else None


# --- MTM-2018#41-#44: fines within the statutory ranges ----------------------------------------------


def check_fine_range(facts: Facts) -> Iterator[Finding]:
    """MTM-2018#41 (¥3,000; ¥3,000–30,000 for 严重后果), #42 (no fine), #44 (¥30,000): a fine outside the
    range of the article it is imposed under (see the module docstring)."""
    for fine in facts.of_kind("penalty.imposed"):
        r = fine.record
        if not is_mtm2018(r.effective):
            continue
        amount: Decimal = r.fields["amount_yuan"]
        article = fine_article(fine)
        problem = None
        if article == "41":
            if _serious(fine):
                low, high = FINE_SERIOUS_41
                if not low <= amount <= high:
                    problem = f"with serious consequences (严重后果) #41 fines {_yuan(low)} to {_yuan(high)}"
            elif amount > FINE_CAP_41:
                problem = (
                    f"#41 fines up to {_yuan(FINE_CAP_41)} (¥3,000–30,000 only where serious consequences, "
                    "严重后果, are recorded)"
                )
        elif article == "42":
            if amount > 0:
                problem = "#42 (training bases) orders the training stopped and published; it provides no fine"
        elif article == "44":
            if amount > FINE_CAP_44:
                problem = f"#44 fines up to {_yuan(FINE_CAP_44)}"
        elif article is None and (r.basis is None or "MTM-2018" in r.basis) and amount > FINE_CAP_44:
            problem = f"no article of MTM-2018 named, and neither #41 nor #44 fines more than {_yuan(FINE_CAP_44)}"
        if problem is None:
            continue
        cited = f"MTM-2018#{article}" if article else "MTM-2018#41"
        yield Finding.of(
            FINE_RANGE,
            fine,
            f"fine of {_yuan(amount)} imposed on {r.effective} by {r.by} ({r.id}): {problem}",
            severity="irregular",
            article=cited,
        )


def check_fine_before_deadline(facts: Facts) -> Iterator[Finding]:
    """MTM-2018#41, #44: a fine follows a correction order whose deadline passed ("逾期不改的"). A fine
    under either article with no earlier order whose deadline was before the fine's day."""
    deadlines = sorted(
        (d.record.fields["deadline"], d.record.effective, d) for d in facts.of_kind("correction.ordered")
    )
    for fine in facts.of_kind("penalty.imposed"):
        r = fine.record
        article = fine_article(fine)
        if not is_mtm2018(r.effective) or article not in ("41", "44"):
            continue
        if any(deadline < r.effective and ordered <= r.effective for deadline, ordered, _ in deadlines):
            continue
        pending = [d for deadline, ordered, d in deadlines if ordered <= r.effective]
        why = (
            f"the deadline of {pending[-1].record.id} ({pending[-1].record.fields['deadline']}) had not passed"
            if pending
            else "no correction was ordered before it"
        )
        yield Finding.of(
            FINE_BEFORE_DEADLINE,
            fine,
            f"fine of {_yuan(r.fields['amount_yuan'])} on {r.effective} ({r.id}) under #{article}, which fines "
            f"only after a correction deadline has passed (逾期不改的): {why}",
            severity="irregular",
            decisions=(fine, *pending[-1:]),
            article=f"MTM-2018#{article}",
        )


CORRECTION_IGNORED = Rule(
    "national.correction-ignored",
    "MTM-2018#41",
    "Use went on after a correction deadline, nothing stopped it",
    check_correction_ignored,
)
FINE_RANGE = Rule("national.fine-range", "MTM-2018#41", "Fine outside the range of its article", check_fine_range)
FINE_BEFORE_DEADLINE = Rule(
    "national.fine-before-deadline",
    "MTM-2018#41",
    "Fine before a correction deadline had passed",
    check_fine_before_deadline,
)

RULES: tuple[Rule, ...] = (CORRECTION_IGNORED, FINE_RANGE, FINE_BEFORE_DEADLINE)
"""Enforcement's rules (MTM-2018#41-#44, MTM-2009#50), contributed by ``ledger_rules``."""
