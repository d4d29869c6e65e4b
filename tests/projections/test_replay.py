"""``resolve`` gives one answer whatever order its log comes in.

Callers hand it a log in record order (the runner, a key's inputs, the catalogue) or, with
``in_valid_order``, a trail's rows in valid-time order (``Views.facts_for``). Both must give what
the plain replay below gives (the implementation before it took either order): corrections applied
in record order, of an id recorded twice the later record, ``known_at`` a cut by position.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from ledger.decisions import DecisionRecord
from projections.replay import Resolved, apply_correction, resolve, valid_order

DAY = date(2020, 1, 1)


def reference(log: list[tuple[int, DecisionRecord]], as_of: date | None, known_at: int | None) -> list[Resolved]:
    """The replay of a log in record order, one step at a time."""
    originals: dict[str, tuple[int, DecisionRecord]] = {}
    corrections: dict[str, list[DecisionRecord]] = {}
    retracted: set[str] = set()
    for position, record in log:
        if known_at is not None and position > known_at:
            break
        if record.kind == "decision.corrected":
            corrections.setdefault(record.fields["corrects"], []).append(record)
        elif record.kind == "decision.retracted":
            retracted.add(record.fields["retracts"])
        else:
            originals[record.id] = (position, record)
    out = []
    for decision_id, (position, original) in originals.items():
        if decision_id in retracted:
            continue
        fixes = corrections.get(decision_id, [])
        record = original
        for fix in fixes:
            record = apply_correction(record, fix)
        if as_of is None or record.effective <= as_of:
            out.append(Resolved(position, record, tuple(f.id for f in fixes)))
    return sorted(out, key=lambda r: (r.record.effective, r.position))


def _record(i: int, step: tuple[str, int, int]) -> DecisionRecord:
    what, target, days = step
    effective = DAY + timedelta(days=days)
    if what == "corrected":
        fields = {
            "corrects": f"D{target}",
            "fields": {"effective": (DAY + timedelta(days=target * 7 % 40)).isoformat()},
        }
        return DecisionRecord(f"C{i}", "decision.corrected", effective, "auth", None, None, fields, {})
    if what == "retracted":
        return DecisionRecord(
            f"R{i}", "decision.retracted", effective, "auth", None, None, {"retracts": f"D{target}"}, {}
        )
    return DecisionRecord(f"D{target}", "filing.completed", effective, "auth", None, None, {}, {})


logs = st.lists(
    st.tuples(
        st.sampled_from(["original", "original", "original", "corrected", "retracted"]),
        st.integers(0, 8),
        st.integers(0, 40),
    ),
    max_size=30,
).map(lambda steps: [(i + 1, _record(i, step)) for i, step in enumerate(steps)])
cuts = st.tuples(st.none() | st.integers(0, 40).map(lambda d: DAY + timedelta(days=d)), st.none() | st.integers(0, 31))


@given(logs, cuts, st.randoms(use_true_random=False))
def test_any_order_of_the_log_resolves_as_the_record_order_does(
    log: list[tuple[int, DecisionRecord]], cut: tuple[date | None, int | None], rnd: random.Random
) -> None:
    as_of, known_at = cut
    expected = reference(log, as_of, known_at)
    assert resolve(log, as_of=as_of, known_at=known_at) == expected
    shuffled = list(log)
    rnd.shuffle(shuffled)
    assert resolve(shuffled, as_of=as_of, known_at=known_at) == expected
    in_valid_time = sorted(log, key=lambda item: (item[1].effective, item[0]))
    assert resolve(in_valid_time, as_of=as_of, known_at=known_at, in_valid_order=True) == expected


def test_a_correction_that_moves_a_decision_puts_it_in_its_place_in_valid_time() -> None:
    """DECISIONS.md, Corrections: a correction may move a decision's effective date, and so its place."""
    log = [(k, _record(k, ("original", k, k))) for k in range(1, 5)]
    log.append((5, _record(5, ("corrected", 1, 20))))  # D1 moves to day 7
    found = resolve(sorted(log, key=lambda item: (item[1].effective, item[0])), in_valid_order=True)
    assert [r.record.id for r in found] == ["D2", "D3", "D4", "D1"]
    assert found == sorted(found, key=valid_order)
    assert found[-1].corrected_by == ("C5",)
