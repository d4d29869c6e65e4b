"""What the national rules share: the regimes' dates, the filing clock of a use, and small helpers.

The same act is legal or not depending on the regime in force *on the day it happened* (DOMAIN.md),
so every rule first asks which regime governs a decision, by its effective date:

* MTM-2009 (卫生部令第… 医疗技术临床应用管理办法) from 2009-05-01 up to 2018-10-31;
* the 2015 transition (国卫医发〔2015〕71号, see ``transition2015``) from 2015-06-29, inside MTM-2009's span;
* MTM-2018 (国家卫生健康委员会令第1号) from 2018-11-01;
* EVAL-2026 (国卫办医政函〔2026〕66号) from 2026-03-04, for evaluation panels.

The *filing clock* is the one piece of reasoning several rules need (late filing, overdue filing,
use without a filing, the calendar warning) and a province's deadline list too, so it lives once in
``projections.clock``, counted here from MTM-2018's first day: MTM-2018#11 lets an institution
perform its first case and then file within 15 working days; MTM-2018#49 (and a province's own date,
e.g. HN-2018#六(一)) gives uses that were under way before the regime a fixed date instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date, timedelta

from ledger import CalendarError
from projections import Clock, Facts, Resolved, Use, UseMachine, filing_clock

MTM2009_START = date(2009, 5, 1)
"""MTM-2009#61: in force from 2009-05-01."""
MTM2018_START = date(2018, 11, 1)
"""MTM-2018 (附则): in force from 2018-11-01; MTM-2009 rules judge only what happened before."""
EVAL2026_START = date(2026, 3, 4)
"""EVAL-2026#13: in force from the day it was issued, 2026-03-04."""
NATIONAL_GRANDFATHER = date(2019, 2, 1)
"""MTM-2018#49: uses under way before the regime file "自2019年2月1日以前" (by 2019-02-01)."""


def is_mtm2009(day: date) -> bool:
    """Judged by MTM-2009: on or after 2009-05-01 and before 2018-11-01."""
    return MTM2009_START <= day < MTM2018_START


def is_mtm2018(day: date) -> bool:
    """Judged by MTM-2018: on or after 2018-11-01."""
    return day >= MTM2018_START


def is_eval2026(day: date) -> bool:
    """Judged by EVAL-2026: on or after 2026-03-04."""
    return day >= EVAL2026_START


def the_day_after(day: date) -> date:
    return day + timedelta(days=1)


def cases_with_state(use: Iterable[Resolved]) -> Iterator[tuple[Resolved, str, Resolved | None]]:
    """Each case of a use with the use's state then — ``active``, ``suspended`` or ``stopped`` — and the
    decision that made it so, in one pass (valid-time order, log order within a day).

    The state is the use's standing as ``projections.standing.UseMachine`` has it (one model for the
    rules and the public lists): a resumption (``use.resumed``) ends a suspension or a stop, and so
    does, for a stop, a new filing completed on a live submission (MTM-2018#11). A suspension
    recorded *after* a case on the same day does not cover it: the case is usually what led to it
    (MTM-2018#25(3): a serious adverse event, then "立即停止"). Linear in the use's length: an
    institution reports every case (MTM-2018#37).
    """
    machine = UseMachine()
    for d in use:
        if d.record.kind == "case.performed":
            yield d, machine.halt or "active", machine.halted_by
        else:
            machine.apply(d)


def interrupted(use: Use) -> bool:
    """Was the use ever suspended or stopped? If not, ``cases_with_state`` finds every case of it
    ``active``, and the rules of MTM-2018#25 and MTM-2009#41 need not walk its cases."""
    return any(d.record.kind in _INTERRUPTIONS for d in use.others)


_INTERRUPTIONS = frozenset({"use.suspended", "use.stopped"})


def clocks(facts: Facts) -> list[Clock]:
    """Every use's filing clock in this scope, by institution then technology: worked out once per
    scope, for the four rules of MTM-2018#11 and #49 that read it."""
    return list(facts.shared("national.clocks", _clocks))


def _clocks(facts: Facts) -> list[Clock]:
    out = []
    for (_, technology), use in sorted(facts.uses.items()):
        clock = filing_clock(facts, use, technology, MTM2018_START)
        if clock is not None:
            out.append(clock)
    return out


def unknown_year(error: CalendarError) -> str:
    """The sentence of a ``CalendarError`` that names the missing year, for a finding's message."""
    text = str(error)
    return text.split(". This calendar", maxsplit=1)[0]
