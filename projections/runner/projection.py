"""Projections: read models built from the log alone, and the bitemporal kind most views are.

**Bitemporal rows** (ARCHITECTURE.md rule 3). A ``TimelineProjection`` says, for a key (a
technology, a use, a privilege…), which decisions feed it and how they make a timeline of
``[valid_from, valid_to)`` rows. When a decision at position *p* touches a key, the runner
recomputes that key's timeline from its inputs as known at *p*, closes the open rows that differ
(``known_to = p``) and inserts the new ones (``known_from = p``). Nothing else is ever changed,
so ``--as-of D --known-at N`` is one indexed select over rows with ``valid_from <= D < valid_to``
and ``known_from <= N < known_to``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import Any

from ledger.application import CORRECTION_KINDS
from ledger.decisions import DecisionRecord
from ledger.sql import Cursor, Database
from projections.replay import Resolved, resolve
from projections.runner.log import LogReader, as_logged, chunks
from projections.runner.rows import NOW, TimelineRow, row_sort_key, stored_row


class Projection(ABC):
    """A read model built from the log alone. ``version`` changes when its tables change shape:
    the runner then rebuilds it from zero."""

    name: str
    version: int = 1

    @abstractmethod
    def create(self, db: Database, c: Cursor) -> None:
        """Create this projection's tables (idempotently)."""

    @abstractmethod
    def drop(self, db: Database, c: Cursor) -> None:
        """Drop this projection's tables, for a rebuild."""

    @abstractmethod
    def process(self, db: Database, c: Cursor, batch: Sequence[tuple[int, DecisionRecord]]) -> None:
        """Apply a batch of decisions, in log order, inside the runner's transaction."""

    def deferrable_indexes(self, db: Database) -> list[tuple[str, str]]:
        """``(name, CREATE INDEX statement)`` of the indexes ``create`` makes that only queries
        use, not ``process``: a rebuild drops them, loads, then creates them (sorting once is
        cheaper than maintaining an index row by row)."""
        del db
        return []


class TimelineProjection(Projection):
    """A bitemporal view whose rows are the timeline of each key (see the module docstring).

    A key's inputs (the decisions that fed it) are kept as references into the log — ``(key,
    decision_id, position)`` in ``<table>_inputs`` — not as copies of the records: the log already
    holds every record, and a key's decisions are read back from it (``LogReader``) only when a
    later decision touches the key again. A view whose keys are its decisions' own ids
    (``keys_are_decision_ids``: cases, trainees) keeps no inputs at all: such a key's decisions are
    the decision itself and what corrects or retracts it, which the ledger's decision index
    (``ledger_decisions``: id, position, target) already says.
    """

    version = 2
    """2: inputs are references into the log (1 stored each record's canonical text again)."""

    table: str
    columns: tuple[str, ...]
    """The value columns of a row (after ``key``)."""
    indexes: tuple[tuple[str, ...], ...] = ()

    kinds: frozenset[str] | None = None
    """The kinds of decision ``keys`` can name a key for, when a projection knows them: the runner
    then skips other decisions (corrections aside) without asking. None: ask ``keys`` every time."""

    keys_are_decision_ids: bool = False
    """True when a decision (not a correction) of one of ``kinds`` feeds exactly the key named by
    its own id, and no other decision does: such a key is new (ids are unique in a ledger), so the
    batch need not look for its earlier inputs, and the view keeps none (see above)."""

    log: LogReader | None = None
    """Where a key's earlier decisions are read back from; the runner sets it."""

    @abstractmethod
    def keys(self, record: DecisionRecord) -> Iterable[str]:
        """The keys a (non-correction) decision feeds; corrections follow their target."""

    @abstractmethod
    def timeline(self, key: str, decisions: Sequence[Resolved]) -> list[TimelineRow]:
        """The rows of ``key`` from its decisions (corrections applied, in valid-time order)."""

    def first_rows(self, key: str, position: int, record: DecisionRecord) -> list[list[Any]]:
        """The stored rows (``key``, ``valid_from``, ``valid_to``, values, ``known_from``,
        ``known_to``) of a key whose only decision is ``record``: what ``process`` opens for it
        (a subclass may build them more directly, to the same values)."""
        rows = {stored_row(r) for r in self.timeline(key, [Resolved(position, record)])}
        return [[key, *row, position, NOW] for row in sorted(rows, key=row_sort_key)]

    # -- machinery --------------------------------------------------------------------------

    @property
    def inputs(self) -> str:
        return f"{self.table}_inputs"

    def create(self, db: Database, c: Cursor) -> None:
        if self.keys_are_decision_ids and self.kinds is None:
            msg = f"{self.name}: keys_are_decision_ids needs the kinds that feed the view"
            raise TypeError(msg)
        cols = ", ".join(f"{col} TEXT" for col in self.columns)
        t = db.table(self.table)
        c.execute(
            f"CREATE TABLE IF NOT EXISTS {t} (key TEXT NOT NULL, {cols}, valid_from TEXT NOT NULL, "
            f"valid_to TEXT NOT NULL, known_from {db.bigint} NOT NULL, known_to {db.bigint} NOT NULL)"
        )
        c.execute(f"CREATE INDEX IF NOT EXISTS {self.table}_key ON {t} (key, known_to)")
        for _, sql in self.deferrable_indexes(db):
            c.execute(sql)
        if self.keys_are_decision_ids:
            return
        i = db.table(self.inputs)
        c.execute(
            f"CREATE TABLE IF NOT EXISTS {i} (key TEXT NOT NULL, decision_id TEXT NOT NULL, "
            f"position {db.bigint} NOT NULL, PRIMARY KEY (key, position))"
        )
        c.execute(f"CREATE INDEX IF NOT EXISTS {self.inputs}_decision ON {i} (decision_id)")

    def deferrable_indexes(self, db: Database) -> list[tuple[str, str]]:
        t = db.table(self.table)
        out = [(f"{self.table}_time", f"CREATE INDEX IF NOT EXISTS {self.table}_time ON {t} (valid_from, known_from)")]
        for cols_ in self.indexes:
            name = f"{self.table}_{'_'.join(cols_)}"
            out.append((name, f"CREATE INDEX IF NOT EXISTS {name} ON {t} ({', '.join(cols_)}, valid_from)"))
        return out

    def drop(self, db: Database, c: Cursor) -> None:
        c.execute(f"DROP TABLE IF EXISTS {db.table(self.table)}")
        c.execute(f"DROP TABLE IF EXISTS {db.table(self.inputs)}")  # also a version 1 view's copies

    def process(self, db: Database, c: Cursor, batch: Sequence[tuple[int, DecisionRecord]]) -> None:
        """Apply a batch: what one decision at a time would do, with the database asked once per
        batch. The keys the batch touches are read once (their inputs and their open rows); each
        decision is then applied in memory, in log order — its inputs appended, its keys'
        timelines recomputed, rows that changed closed at its position and new ones opened — and
        the batch's inputs, closings and new rows are written with one ``executemany`` each. A row
        opened and closed within the batch is written once, already closed. A key with nothing
        before the batch and one decision in it (most keys of a rebuild: each case) gets its rows
        from ``first_rows`` without the bookkeeping."""
        plan = self._plan(db, c, batch)
        if not plan:
            return
        state = self._load(db, c, plan, batch[0][0])
        new_inputs: list[tuple[str, str, int]] = []
        keep_inputs = not self.keys_are_decision_ids
        closed: list[tuple[Any, ...]] = []  # rows read from the database, closed in this batch
        opened: list[list[Any]] = []  # rows opened in this batch (their known_to may change)
        first_rows = self.first_rows
        for position, record, keys in plan:
            # What a key's log holds is the record as the log reads back (``LogReader``).
            read = as_logged(record)
            correction = read.kind in CORRECTION_KINDS
            for key in keys:
                if keep_inputs:
                    new_inputs.append((key, record.id, position))
                entry = state.get(key)
                if entry is None:
                    if not correction:
                        opened.extend(first_rows(key, position, read))
                        continue
                    entry = state[key] = ([], {})  # pragma: no cover - a correction's key has a log
                log, open_rows = entry
                if log or correction:
                    log.append((position, read))
                    resolved = resolve(log)
                else:  # what ``resolve`` makes of a key's first decision, without its dictionaries
                    log.append((position, read))
                    resolved = [Resolved(position, read)]
                new = {stored_row(r) for r in self.timeline(key, resolved)}
                for row in [r for r in open_rows if r not in new]:
                    where = open_rows.pop(row)
                    if where < 0:
                        closed.append((position, key, NOW, *row))
                    else:
                        opened[where][-1] = position
                for row in sorted(new.difference(open_rows), key=row_sort_key):
                    open_rows[row] = len(opened)
                    opened.append([key, *row, position, NOW])
        t = db.table(self.table)
        if new_inputs:
            c.insert_many(db.table(self.inputs), ("key", "decision_id", "position"), _INPUT_TYPES, new_inputs)
        c.executemany(
            f"UPDATE {t} SET known_to = ? WHERE key = ? AND known_to = ? AND valid_from = ? AND valid_to = ? "
            + "".join(
                f"AND {col} IS NOT DISTINCT FROM ? " if db.dialect == "postgres" else f"AND {col} IS ? "
                for col in self.columns
            ),
            closed,
        )
        c.insert_many(
            t,
            ("key", "valid_from", "valid_to", *self.columns, "known_from", "known_to"),
            ("text", "text", "text", *("text" for _ in self.columns), "bigint", "bigint"),
            opened,
        )
        self.written(db, c, closed, opened)

    def written(
        self, db: Database, c: Cursor, closed: Sequence[tuple[Any, ...]], opened: Sequence[Sequence[Any]]
    ) -> None:
        """What ``process`` has just written, in the same transaction: the rows it closed
        (``(position, key, NOW, valid_from, valid_to, *values)``: rows that were open in the
        database) and those it opened (``[key, valid_from, valid_to, *values, known_from,
        known_to]``; one opened and closed within the batch has the closing position as
        ``known_to``). A projection that keeps a table derived from its rows (the cases' counts)
        brings it up to date here; by default, nothing."""

    def _plan(
        self, db: Database, c: Cursor, batch: Sequence[tuple[int, DecisionRecord]]
    ) -> list[tuple[int, DecisionRecord, list[str]]]:
        """The keys each decision of the batch touches (a correction: those of what it corrects)."""
        kinds = self.kinds
        first = batch[0][0]
        if kinds is not None:  # only the decisions that can touch this view, still in log order
            batch = _of_kinds(batch, kinds)
        targets = {t for _, r in batch if r.kind in CORRECTION_KINDS and (t := _target(r)) is not None}
        # decision id -> the keys it fed (before the batch, then earlier in it)
        fed = self._fed(db, c, sorted(targets), first) if targets else {}
        plan = []
        for position, record in batch:
            if record.kind in CORRECTION_KINDS:
                keys = list(fed.get(_target(record) or "", ()))
            elif kinds is not None and record.kind not in kinds:
                continue
            else:
                keys = sorted(set(self.keys(record)))
            if not keys:
                continue
            if record.id in targets:  # a later correction in the batch finds them
                fed.setdefault(record.id, []).extend(keys)
            plan.append((position, record, keys))
        return plan

    def _fed(self, db: Database, c: Cursor, targets: Sequence[str], before: int) -> dict[str, list[str]]:
        """The keys each of ``targets`` fed, for those recorded before position ``before``."""
        fed: dict[str, list[str]] = {}
        if self.keys_are_decision_ids:
            # An original of one of ``kinds`` fed its own id; a correction (which a retraction may
            # point at), what its own target fed.
            found = _decisions(db, c, "decision_id", targets, before)
            chain = sorted({str(t) for _, kind, t, _ in found if kind in CORRECTION_KINDS and t is not None})
            found += _decisions(db, c, "decision_id", chain, before)
            about = {d: (kind, t) for d, kind, t, _ in found}
            kinds = self.kinds or frozenset()

            def keys_of(decision_id: str, depth: int = 0) -> list[str]:
                kind, target = about.get(decision_id, ("", None))
                if kind in CORRECTION_KINDS:
                    return keys_of(str(target), depth + 1) if target is not None and depth < 2 else []
                return [decision_id] if kind in kinds else []

            for target in targets:
                if keys := keys_of(target):
                    fed[target] = keys
            return fed
        inputs = db.table(self.inputs)
        for chunk in chunks(targets):
            for key, decision_id in c.execute(
                f"SELECT DISTINCT key, decision_id FROM {inputs} WHERE decision_id IN ({', '.join('?' * len(chunk))}) "
                "ORDER BY key",
                chunk,
            ).fetchall():
                fed.setdefault(decision_id, []).append(key)
        return fed

    def _load(
        self, db: Database, c: Cursor, plan: Sequence[tuple[int, DecisionRecord, list[str]]], before: int
    ) -> dict[str, tuple[list[tuple[int, DecisionRecord]], dict[tuple[Any, ...], int]]]:
        """Each touched key's inputs and open rows as recorded before the batch (open rows map to
        -1: "in the database"). Keys absent from the result have nothing before the batch and one
        decision in it."""
        state: dict[str, tuple[list[tuple[int, DecisionRecord]], dict[tuple[Any, ...], int]]] = {}
        touches: dict[str, int] = {}
        wanted: list[str] = []
        for _, record, keys in plan:
            fresh = self.keys_are_decision_ids and record.kind not in CORRECTION_KINDS
            for key in keys:
                seen = touches.get(key)
                touches[key] = 1 if seen is None else seen + 1
                if seen is None and not fresh:
                    wanted.append(key)
        if wanted:
            positions = self._positions(db, c, wanted, before)
            assert self.log is not None, "a TimelineProjection runs inside a Runner"
            records = self.log.records(c, [p for ps in positions.values() for p in ps])
            for key, ps in positions.items():
                state[key] = ([(p, records[p]) for p in ps], {})
            t = db.table(self.table)
            cols = ", ".join(self.columns)
            for chunk in chunks(wanted):
                marks = ", ".join("?" * len(chunk))
                for key, *row in c.execute(
                    f"SELECT key, valid_from, valid_to, {cols} FROM {t} WHERE key IN ({marks}) AND known_to = ?",
                    [*chunk, NOW],
                ).fetchall():
                    state.setdefault(key, ([], {}))[1][tuple(row)] = -1
        for key, count in touches.items():
            if count > 1 and key not in state:
                state[key] = ([], {})
        return state

    def _positions(self, db: Database, c: Cursor, keys: Sequence[str], before: int) -> dict[str, list[int]]:
        """The positions of the decisions that fed each of ``keys`` before position ``before``, in
        log order (keys with none are left out)."""
        out: dict[str, list[int]] = {}
        if self.keys_are_decision_ids:
            # The decision itself, what corrects or retracts it, and what retracts a correction.
            owner = {key: key for key in keys}
            for decision_id, _, _, position in _decisions(db, c, "decision_id", keys, before):
                out.setdefault(decision_id, []).append(position)
            frontier = list(keys)
            for _ in range(2):
                found = _decisions(db, c, "target", frontier, before)
                frontier = []
                for decision_id, _, target, position in found:
                    owner[decision_id] = owner[str(target)]
                    out.setdefault(owner[decision_id], []).append(position)
                    frontier.append(decision_id)
                if not frontier:
                    break
            for ps in out.values():
                ps.sort()
            return out
        inputs = db.table(self.inputs)
        for chunk in chunks(keys):
            for key, position in c.execute(
                f"SELECT key, position FROM {inputs} WHERE key IN ({', '.join('?' * len(chunk))}) "
                "ORDER BY key, position",
                chunk,
            ).fetchall():
                out.setdefault(key, []).append(int(position))
        return out


_GROUPED: list[tuple[Sequence[tuple[int, DecisionRecord]], dict[str, list[int]]]] = []
"""The last batch ``_of_kinds`` grouped, with the indexes of its records by kind: every view with
``kinds`` is given the same page in turn, so the page is walked once, not once per view."""


def clear_grouped() -> None:
    """Forget the page ``_of_kinds`` grouped: the runner starts a new page."""
    _GROUPED.clear()


def _of_kinds(batch: Sequence[tuple[int, DecisionRecord]], kinds: frozenset[str]) -> list[tuple[int, DecisionRecord]]:
    """The decisions of ``batch`` of one of ``kinds`` or a correction, in log order."""
    if _GROUPED and _GROUPED[0][0] is batch:
        groups = _GROUPED[0][1]
    else:
        groups = {}
        for i, (_, record) in enumerate(batch):
            group = groups.get(record.kind)
            if group is None:
                groups[record.kind] = [i]
            else:
                group.append(i)
        _GROUPED[:] = [(batch, groups)]
    wanted = [groups[k] for k in kinds.union(CORRECTION_KINDS) if k in groups]
    if len(wanted) == 1:
        return [batch[i] for i in wanted[0]]
    return [batch[i] for i in sorted(i for group in wanted for i in group)]


def _decisions(
    db: Database, c: Cursor, column: str, values: Sequence[str], before: int
) -> list[tuple[str, str, str | None, int]]:
    """``(decision_id, kind, target, position)`` of the decisions recorded before ``before`` whose
    ``column`` (``decision_id`` or ``target``) is one of ``values``, from the ledger's index."""
    out: list[tuple[str, str, str | None, int]] = []
    table = db.table("ledger_decisions")
    for chunk in chunks(values):
        out.extend(
            (str(d), str(kind), None if target is None else str(target), int(position))
            for d, kind, target, position in c.execute(
                f"SELECT decision_id, kind, target, position FROM {table} "
                f"WHERE {column} IN ({', '.join('?' * len(chunk))}) AND position < ?",
                [*chunk, before],
            ).fetchall()
        )
    return out


_INPUT_TYPES = ("text", "text", "bigint")


def _target(record: DecisionRecord) -> str | None:
    target = record.fields.get("corrects") or record.fields.get("retracts")
    return str(target) if target is not None else None
