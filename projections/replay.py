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
from bisect import insort
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from ledger.application import CORRECTION_KINDS
from ledger.decisions import DecisionRecord, check_correction
from ledger.frozen import assemble


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
    in_valid_order: bool = False,
) -> list[Resolved]:
    """The decisions in force, in valid-time order (effective date, then record position).

    ``log``: ``(position, record)`` in log order, or, with ``in_valid_order``, already in valid-time
    order (a trail's rows): then the decisions no correction touches keep that order without being
    sorted again, and the corrected ones are put in their place (a busy institution's scope has
    thousands of records and a few corrections). Either way corrections apply in log order, and of
    a decision id recorded twice the later record counts."""
    log = list(log)
    if known_at is None and len({r.id for _, r in log}) == len(log) and not any(r.kind in CHANGES for _, r in log):
        # Nothing corrected or retracted, no id twice, no cut by record time (the common case,
        # and what a view asks thousands of times): each decision as it is.
        plain = [
            assemble(Resolved, {"position": position, "record": record, "corrected_by": ()})
            for position, record in log
            if as_of is None or record.effective <= as_of
        ]
        if not in_valid_order:
            plain.sort(key=valid_order)
        return plain
    if known_at is not None:
        log = [item for item in log if item[0] <= known_at]
    corrections, retracted, latest = _changes(log)
    out: list[Resolved] = []
    corrected: list[Resolved] = []
    for position, original in log:
        if original.kind in CHANGES or original.id in retracted or latest[original.id] != position:
            continue
        fixes = corrections.get(original.id)
        if fixes:
            record = original
            for fix in fixes:
                record = apply_correction(record, fix)
            if as_of is None or record.effective <= as_of:
                corrected.append(Resolved(position, record, tuple(f.id for f in fixes)))
        elif as_of is None or original.effective <= as_of:
            out.append(_as_it_is(position, original))
    if in_valid_order:  # a correction may move a decision's effective date: put it in place
        for item in corrected:
            insort(out, item, key=valid_order)
    else:
        out.extend(corrected)
        out.sort(key=valid_order)
    return out


CHANGES = frozenset(CORRECTION_KINDS)
"""The kinds that change another decision instead of standing for themselves."""


def valid_order(resolved: Resolved) -> tuple[date, int]:
    """Where a decision sits in valid time: its effective date, then its record position."""
    return resolved.record.effective, resolved.position


def _changes(
    log: list[tuple[int, DecisionRecord]],
) -> tuple[dict[str, list[DecisionRecord]], set[str], dict[str, int]]:
    """The corrections of each decision id (in log order), the ids retracted, and the position of
    the record that counts for each id (the later one of an id recorded twice)."""
    corrections: dict[str, list[DecisionRecord]] = {}
    retracted: set[str] = set()
    for _, change in sorted((item for item in log if item[1].kind in CHANGES), key=_position):
        if change.kind == "decision.corrected":
            corrections.setdefault(change.fields["corrects"], []).append(change)
        else:
            retracted.add(change.fields["retracts"])
    latest: dict[str, int] = {}
    for position, record in log:
        if record.kind not in CHANGES and position > latest.get(record.id, -1):
            latest[record.id] = position
    return corrections, retracted, latest


def _position(item: tuple[int, DecisionRecord]) -> int:
    return item[0]


def _as_it_is(position: int, record: DecisionRecord) -> Resolved:
    return assemble(Resolved, {"position": position, "record": record, "corrected_by": ()})


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
