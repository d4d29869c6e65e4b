"""Replay: the meaning of corrections and retractions, applied to a stream of decisions.

A correction never rewrites the decision it corrects (DECISIONS.md, Corrections): the original
stays in the log, and views show the corrected values. A retraction removes a decision from views
but not from the log or the trails. This module is the one place that says how, so every view and
the reference replay of the tests agree.

``known_at`` cuts the log by record position (what the ledger knew then); ``as_of`` cuts by valid
time (what was in force on that day) *after* corrections are applied, because a correction may move
a decision's effective date.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from ledger.decisions import DecisionRecord, check_correction


@dataclass(frozen=True)
class Resolved:
    """A decision as views see it: corrected values applied, with where it was recorded."""

    position: int
    record: DecisionRecord
    corrected_by: tuple[str, ...] = ()


def resolve(
    log: Iterable[tuple[int, DecisionRecord]],
    *,
    as_of: date | None = None,
    known_at: int | None = None,
) -> list[Resolved]:
    """The decisions in force, in valid-time order (effective date, then record position)."""
    log = list(log)
    if known_at is None and len({r.id for _, r in log}) == len(log) and not any(r.kind in _CHANGES for _, r in log):
        # Nothing corrected or retracted, no id twice, no cut by record time (the common case,
        # and what a view asks thousands of times): each decision as it is.
        plain = [Resolved(position, record) for position, record in log if as_of is None or record.effective <= as_of]
        plain.sort(key=_valid_order)
        return plain
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
        if as_of is not None and record.effective > as_of:
            continue
        out.append(Resolved(position, record, tuple(f.id for f in fixes)))
    out.sort(key=lambda r: (r.record.effective, r.position))
    return out


_CHANGES = frozenset({"decision.corrected", "decision.retracted"})


def _valid_order(resolved: Resolved) -> tuple[date, int]:
    return resolved.record.effective, resolved.position


def apply_correction(record: DecisionRecord, correction: DecisionRecord) -> DecisionRecord:
    """``record`` with the values of ``correction.fields`` in place of its own."""
    changes = check_correction(record, correction.fields["fields"])
    envelope = {k: changes.pop(k) for k in ("effective", "by", "basis", "note") if k in changes}
    extensions = {k: changes.pop(k) for k in list(changes) if "." in k}
    fields = {k: v for k, v in {**record.fields, **changes}.items() if v is not None}
    return dataclasses.replace(
        record,
        **envelope,
        fields=fields,
        extensions={**record.extensions, **extensions},
    )
