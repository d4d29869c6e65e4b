"""Views checked against the log: what ``ledger verify --views`` runs.

A view is derived from the log alone (ARCHITECTURE.md rule 11), so the way to check one is to
derive it again: every enabled projection (built-in and plugins' own) is rebuilt from the log into
a scratch database, each to the position its tracking row claims, and each of its tables is then
compared with the stored one, row for row. Nothing is trusted from the stored views, not even which
tables a projection has: those are the tables its ``create`` makes in the empty scratch.

Where the rebuild goes
    SQLite: a temporary file of its own, with the ledger's file attached read-only (``mode=ro``),
    so nothing this module runs can write to the ledger; PostgreSQL: a scratch schema beside the
    ledger's, dropped at the end, where the views' tables go while the log and the decision index
    are read from the ledger's schema.

Bounded memory
    The rebuild is the runner's own, in batches of ``BATCH_REBUILD`` records. The comparison is one
    aggregate per table, run by the database (``UNION ALL`` of both sides, grouped by every column,
    keeping the groups whose counts differ): a multiset comparison, so a duplicated row is caught
    too, and the database sorts or hashes with its own bounded work memory (spilling to temporary
    files), never this process. At most ``limit`` differences per table come back to Python.

The tracking table
    A tracking row claims "this view is the log up to N": the rebuild goes to N, so a moved
    position shows as the rows of the records in between. A position past the end of the log, a
    version other than the projection's, a missing row beside existing tables are reported as such.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ledger.application import LedgerApplication
from ledger.errors import ConfigurationError, IntegrityError, StorageError
from ledger.sql import Cursor, Database
from ledger.storage import EVENTS_TABLE
from projections.runner import BATCH_REBUILD, Projection, Runner

TRACKING = "ledger_tracking"
DECISION_INDEX = "ledger_decisions"
SCRATCH_CACHE_KIB = 8 * 1024
"""SQLite page cache of the scratch connection: the rebuild's writes and the comparison's sorts
stay within it and spill to temporary files beyond (``temp_store = FILE``)."""
SHOWN = 40
"""Characters of a value shown in a message (records are long JSON texts)."""


@dataclass
class ViewsReport:
    """What ``verify_views`` found. ``ok`` is False when any view disagrees; ``check`` raises then."""

    views: int = 0
    tables: int = 0
    rows: int = 0
    positions: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        at = sorted(set(self.positions.values()))
        where = f"position {at[0]}" if len(at) == 1 else f"positions {at[0]}–{at[-1]}" if at else "no position"
        head = (
            f"views: {self.views} projections ({self.tables} tables, {self.rows} rows) equal to a rebuild from "
            f"the log at {where} ({self.seconds:.2f} s)"
        )
        return "\n".join([head, *self.notes])

    def message(self) -> str:
        return "the views disagree with a rebuild from the log:\n" + "\n".join(f"  {p}" for p in self.problems)

    def check(self) -> None:
        """Raise ``IntegrityError`` naming every disagreement, unless ok."""
        if not self.ok:
            raise IntegrityError(self.message())


def verify_views(
    app: LedgerApplication, projections: Sequence[Projection] | None = None, *, limit: int = 20
) -> ViewsReport:
    """Compare every view of ``projections`` (by default every enabled one) with a rebuild from the
    log to its tracked position; at most ``limit`` differences are reported per table."""
    if projections is None:
        from projections.views import all_projections

        projections = all_projections(app.plugins)
    started = time.perf_counter()
    report = ViewsReport()
    with _scratch(app) as scratch:
        owned = _create(scratch, projections)
        runner = Runner(app, projections, db=scratch)
        runner.positions()  # the tracking table, in the scratch
        _drop_query_indexes(scratch, projections)
        done = dict.fromkeys((p.name for p in projections), 0)
        for _ in range(3):  # the views may move on while a rebuild runs: catch the scratch up too
            claimed, end = _claims(scratch)
            if any(_position(claimed, name) < done[name] for name in done):
                msg = "the views were rebuilt while being verified: run `ledger verify --views` again"
                raise StorageError(msg)
            targets = {name: max(0, min(_position(claimed, name), end)) for name in done}
            _rebuild(runner, targets, done)
            with scratch.transaction(write=False) as c:
                scratch.snapshot(c)
                again, end = _claims_in(scratch, c)
                if {n: v for n, v in again.items() if n in done} != {n: v for n, v in claimed.items() if n in done}:
                    continue
                _check_tracking(scratch, c, projections, again, end, owned, report)
                for p in projections:
                    if p.name not in again or _whole(again[p.name][0]) is None:  # ``_check_tracking`` says why
                        continue
                    report.views += 1
                    at = targets[p.name]
                    for table in owned[p.name]:
                        report.rows += _compare(scratch, c, f"{p.name} ({table}, log up to {at})", table, limit, report)
                        report.tables += 1
            report.positions = {name: _position(claimed, name) for name in done if name in claimed}
            break
        else:
            msg = "the views kept moving while being verified: run `ledger verify --views` again"
            raise StorageError(msg)
    report.seconds = time.perf_counter() - started
    return report


# --- the scratch database ---------------------------------------------------------------------


class _Scratch(Database):
    """Where the rebuild goes. ``table`` names a view's table there, or the ledger's own tables
    (the log, the decision index) where they are; ``source`` and ``scratch`` name one side."""

    def source(self, name: str) -> str:
        raise NotImplementedError

    def scratch(self, name: str) -> str:
        raise NotImplementedError

    def tables(self, c: Cursor) -> set[str]:
        """The tables in the scratch."""
        raise NotImplementedError

    def columns(self, c: Cursor, name: str, *, source: bool) -> list[tuple[str, str, bool]]:
        """``(column, type, in the primary key)`` of a table, in order; empty when there is none."""
        raise NotImplementedError

    def snapshot(self, c: Cursor) -> None:
        """Make the transaction read one state of the ledger throughout."""


class _SQLiteScratch(_Scratch):
    def __init__(self, app: LedgerApplication, path: Path, ledger_file: str) -> None:
        super().__init__(app.store)
        self.conn = sqlite3.connect(path, uri=True, isolation_level=None, check_same_thread=False, timeout=30)
        for pragma in ("journal_mode = OFF", "synchronous = OFF", "temp_store = FILE"):
            self.conn.execute(f"PRAGMA {pragma}")
        self.conn.execute(f"PRAGMA cache_size = {-SCRATCH_CACHE_KIB}")
        # Read-only: a statement naming a view's table that the scratch lacks cannot reach the ledger's.
        self.conn.execute("ATTACH DATABASE ? AS ledger", (f"file:{quote(ledger_file)}?mode=ro",))

    def source(self, name: str) -> str:
        return f"ledger.{name}"

    def scratch(self, name: str) -> str:
        return f"main.{name}"

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Cursor]:
        raw = self.conn.cursor()
        raw.execute("BEGIN")
        try:
            yield Cursor(raw, "sqlite", None)
        except BaseException:
            self.conn.rollback()
            raise
        if write:
            self.conn.commit()
        else:
            self.conn.rollback()

    def tables(self, c: Cursor) -> set[str]:
        return {str(r[0]) for r in c.execute("SELECT name FROM main.sqlite_master WHERE type = 'table'").fetchall()}

    def columns(self, c: Cursor, name: str, *, source: bool) -> list[tuple[str, str, bool]]:
        rows = c.execute(f"PRAGMA {'ledger' if source else 'main'}.table_info({_quote(name)})").fetchall()
        return [(str(r[1]), str(r[2]).upper(), bool(r[5])) for r in sorted(rows, key=lambda r: int(r[0]))]

    def close(self) -> None:
        self.conn.close()


class _PostgresScratch(_Scratch):
    def __init__(self, app: LedgerApplication, name: str) -> None:
        super().__init__(app.store)
        self.ledger_schema = self.schema
        self.schema = name
        self.read = frozenset({EVENTS_TABLE, DECISION_INDEX})
        """What projections read from the ledger: the log and its decision index. Every other name
        is the scratch's, so nothing the rebuild runs can write to the ledger's schema."""

    def table(self, name: str) -> str:
        return self.source(name) if name in self.read else self.scratch(name)

    def source(self, name: str) -> str:
        return f"{_quote(self.ledger_schema or 'public')}.{name}"

    def scratch(self, name: str) -> str:
        return f"{_quote(self.schema or '')}.{name}"

    def snapshot(self, c: Cursor) -> None:
        c.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")

    def tables(self, c: Cursor) -> set[str]:
        # The catalogue itself: ``information_schema``'s views are slow to ask, question by question.
        rows = c.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = ? AND c.relkind IN ('r', 'p')",
            (self.schema,),
        ).fetchall()
        return {str(r[0]) for r in rows}

    def columns(self, c: Cursor, name: str, *, source: bool) -> list[tuple[str, str, bool]]:
        rows = c.execute(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod), coalesce(a.attnum = ANY(i.indkey), false) "
            "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary "
            "WHERE n.nspname = ? AND c.relname = ? AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            (self.ledger_schema if source else self.schema, name),
        ).fetchall()
        return [(str(r[0]), str(r[1]).upper(), bool(r[2])) for r in rows]


@contextmanager
def _scratch(app: LedgerApplication) -> Iterator[_Scratch]:
    """A scratch database for ``app``'s views, removed when the block ends."""
    ledger = Database(app.store)
    if ledger.dialect == "sqlite":
        pool = getattr(app.store.datastore, "pool", None)  # type: ignore[attr-defined]
        name = getattr(pool, "db_name", None)
        if not isinstance(name, str) or getattr(pool, "is_sqlite_memory_mode", True):
            msg = "verify --views needs a ledger in a file or on PostgreSQL (an in-memory ledger cannot be attached)"
            raise ConfigurationError(msg)
        with tempfile.TemporaryDirectory(prefix="ledger-verify-") as folder:
            sqlite_scratch = _SQLiteScratch(app, Path(folder) / "views.sqlite", str(Path(name).resolve()))
            try:
                yield sqlite_scratch
            except sqlite3.Error as e:
                msg = f"verify --views: SQLite refused the operation: {e}"
                raise StorageError(msg) from e
            finally:
                sqlite_scratch.close()
        return
    import psycopg

    schema = f"{ledger.schema}_verify_{uuid.uuid4().hex[:8]}"
    if len(schema.encode()) > 63:  # PostgreSQL's longest identifier
        schema = f"ledger_verify_{uuid.uuid4().hex}"
    try:
        with ledger.transaction() as c:
            c.execute(f"CREATE SCHEMA {_quote(schema)}")
    except psycopg.Error as e:
        msg = f"verify --views needs a scratch schema for the rebuild and PostgreSQL refused one: {e}"
        raise StorageError(msg) from e
    try:
        yield _PostgresScratch(app, schema)
    except psycopg.Error as e:
        msg = f"verify --views: PostgreSQL refused the operation: {e}"
        raise StorageError(msg) from e
    finally:
        with ledger.transaction() as c:
            c.execute(f"DROP SCHEMA IF EXISTS {_quote(schema)} CASCADE")


def _create(scratch: _Scratch, projections: Sequence[Projection]) -> dict[str, list[str]]:
    """Create each projection's tables in the empty scratch: the tables it makes are its own."""
    owned: dict[str, list[str]] = {}
    with scratch.transaction() as c:
        seen = scratch.tables(c)
        for p in projections:
            p.create(scratch, c)
            now = scratch.tables(c)
            owned[p.name] = sorted(now - seen)
            seen = now
    return owned


def _drop_query_indexes(scratch: _Scratch, projections: Sequence[Projection]) -> None:
    """The indexes only queries use: a rebuild loads faster without them, and the comparison groups."""
    with scratch.transaction() as c:
        for p in projections:
            for name, _ in p.deferrable_indexes(scratch):
                c.execute(f"DROP INDEX IF EXISTS {scratch.scratch(name)}")


def _claims(scratch: _Scratch) -> tuple[dict[str, tuple[Any, Any]], int]:
    with scratch.transaction(write=False) as c:
        return _claims_in(scratch, c)


def _claims_in(scratch: _Scratch, c: Cursor) -> tuple[dict[str, tuple[Any, Any]], int]:
    """The ledger's tracking rows (projection → position, version, as stored: an edited SQLite row
    may hold text) and the last position of its log."""
    claimed: dict[str, tuple[Any, Any]] = {}
    if _exists(scratch, c, TRACKING):
        for name, position, version in c.execute(
            f"SELECT projection, position, version FROM {scratch.source(TRACKING)}"
        ).fetchall():
            claimed[str(name)] = (position, version)
    column = "notification_id" if scratch.dialect == "postgres" else "rowid"
    row = c.execute(f"SELECT max({column}) FROM {scratch.source(EVENTS_TABLE)}").fetchone()
    return claimed, int(row[0]) if row and row[0] is not None else 0


def _whole(value: Any) -> int | None:
    """A stored position or version, if it is a whole number."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _position(claimed: dict[str, tuple[Any, Any]], name: str) -> int:
    """Where a projection's rebuild goes: its claimed position (0 when it claims none it could hold)."""
    position = _whole(claimed.get(name, (0, 0))[0])
    return 0 if position is None else position


def _exists(scratch: _Scratch, c: Cursor, table: str) -> bool:
    return bool(scratch.columns(c, table, source=True))


def _rebuild(runner: Runner, targets: dict[str, int], done: dict[str, int]) -> None:
    """Catch the scratch's views up to each one's target, one pass over the log."""
    for until in sorted({t for name, t in targets.items() if t > done[name]}):
        names = [name for name, t in targets.items() if t >= until and done[name] < until]
        runner.catch_up(names, batch=BATCH_REBUILD, until=until)
        for name in names:
            done[name] = until


def _check_tracking(
    scratch: _Scratch,
    c: Cursor,
    projections: Sequence[Projection],
    claimed: dict[str, tuple[Any, Any]],
    end: int,
    owned: dict[str, list[str]],
    report: ViewsReport,
) -> None:
    """What a tracking row claims that a rebuild cannot show: its version, a position past the log."""
    for p in projections:
        claim = claimed.get(p.name)
        if claim is None:
            built = [t for t in owned[p.name] if _exists(scratch, c, t)]
            if built:
                report.problems.append(f"{p.name}: {TRACKING} has no row for it, yet its tables exist ({built[0]}…)")
            continue
        position, version = claim
        if version != p.version or _whole(version) is None:
            report.problems.append(
                f"{p.name}: {TRACKING} says version {_value(version)}, the projection is version {p.version}"
            )
        if _whole(position) is None:
            report.problems.append(f"{p.name}: {TRACKING} says position {_value(position)}, not a position in the log")
        elif position > end:
            report.problems.append(f"{p.name}: {TRACKING} says position {position}, but the log ends at {end}")
        elif position < 0:
            report.problems.append(f"{p.name}: {TRACKING} says position {position}")
    names = {p.name for p in projections}
    for name in sorted(set(claimed) - names):
        report.notes.append(
            f"not verified: {TRACKING} tracks {name!r} at position {_value(claimed[name][0])}, "
            "a projection not enabled here"
        )


def _compare(scratch: _Scratch, c: Cursor, where: str, table: str, limit: int, report: ViewsReport) -> int:
    """Compare one table with its rebuild; returns the rebuild's rows. Differences go to ``report``,
    each line starting with ``where`` (the view, the table and the position compared at)."""
    ours = scratch.columns(c, table, source=False)
    theirs = scratch.columns(c, table, source=True)
    if not theirs:
        report.problems.append(f"{where}: the table is missing")
        return 0
    stored = {name: kind for name, kind, _ in theirs}
    missing = [name for name, _, _ in ours if name not in stored]
    extra = sorted(set(stored) - {name for name, _, _ in ours})
    changed = [name for name, kind, _ in ours if name in stored and stored[name] != kind]
    if missing or extra or changed:
        report.problems.append(
            f"{where}: columns differ (missing {missing}, not in a rebuild {extra}, of another type {changed})"
        )
        return 0
    names = [name for name, _, _ in ours]
    ident = [i for i, (_, _, key) in enumerate(ours) if key] or [0]
    cols = ", ".join(_quote(n) for n in names)
    sql = (
        f"SELECT {cols}, sum(in_view), sum(in_rebuild) FROM ("
        f"SELECT {cols}, 1 AS in_view, 0 AS in_rebuild FROM {scratch.source(table)} UNION ALL "
        f"SELECT {cols}, 0, 1 FROM {scratch.scratch(table)}) AS both_sides "
        f"GROUP BY {cols} HAVING sum(in_view) <> sum(in_rebuild) "
        f"ORDER BY {', '.join(str(i + 1) for i in ident)}, {len(names) + 1} LIMIT {int(limit) + 1}"
    )
    found = [(tuple(r[:-2]), int(r[-2]), int(r[-1])) for r in c.execute(sql).fetchall()]
    report.problems.extend(_describe(where, names, ident, found[:limit]))
    if len(found) > limit:
        report.problems.append(f"{where}: more differences after these {limit}")
    row = c.execute(f"SELECT count(*) FROM {scratch.scratch(table)}").fetchone()
    return int(row[0]) if row else 0


def _describe(
    where: str, names: Sequence[str], ident: Sequence[int], found: Sequence[tuple[tuple[Any, ...], int, int]]
) -> list[str]:
    """One line per difference: a row of the view paired with the rebuild's row of the same key
    (the fewest columns apart) says which columns differ; the others are extra or missing rows."""
    extra = [row for row, view, rebuilt in found if view == 1 and rebuilt == 0]
    missing = [row for row, view, rebuilt in found if view == 0 and rebuilt == 1]
    lines: list[str] = []
    for row in extra:
        same_key = [m for m in missing if all(m[i] == row[i] for i in ident)]
        if not same_key:
            lines.append(f"{where}: {_key(names, ident, row)}: a row not in a rebuild from the log: {_row(names, row)}")
            continue
        other = min(same_key, key=lambda m: sum(a != b for a, b in zip(row, m, strict=True)))
        missing.remove(other)
        diffs = ", ".join(
            f"{n} is {_value(a)} in the view, {_value(b)} in a rebuild"
            for n, a, b in zip(names, row, other, strict=True)
            if a != b or type(a) is not type(b)
        )
        lines.append(f"{where}: {_key(names, ident, row)}: {diffs} (a rebuild's row: {_row(names, other)})")
    for row in missing:
        lines.append(f"{where}: {_key(names, ident, row)}: a row missing, a rebuild has it: {_row(names, row)}")
    for row, view, rebuilt in found:
        if (view, rebuilt) not in ((1, 0), (0, 1)):
            lines.append(
                f"{where}: {_key(names, ident, row)}: a row {view}× in the view, {rebuilt}× in a rebuild: "
                + _row(names, row)
            )
    return lines


def _key(names: Sequence[str], ident: Sequence[int], row: tuple[Any, ...]) -> str:
    return ", ".join(f"{names[i]}={_value(row[i])}" for i in ident)


def _row(names: Sequence[str], row: tuple[Any, ...]) -> str:
    return "{" + ", ".join(f"{n}: {_value(v)}" for n, v in zip(names, row, strict=True)) + "}"


def _value(value: Any) -> str:
    """A value as a message shows it: ``repr`` (controls and bidi characters escaped), cut short."""
    text = repr(value)
    return text if len(text) <= SHOWN else text[: SHOWN - 1] + "…"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
