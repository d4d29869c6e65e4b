"""The ledger application: records decisions as events and reads them back.

``LedgerApplication`` is an eventsourcing ``Application`` (msgpack transcoder, SQLite or
PostgreSQL recorder chosen from one URL). Writes take a path of their own, below eventsourcing's
aggregate ``save()``: a decision file is checked line by line against the ledger *as of each
decision's effective date* and written in batches inside one transaction (ARCHITECTURE.md rule 7),
so a file is recorded wholly or not at all, and importing it again adds nothing.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, unquote, urlparse
from uuid import UUID

import pluggy
from eventsourcing.application import Application
from eventsourcing.persistence import Mapper, Notification, StoredEvent, Transcoder

from ledger import aggregates, competence
from ledger import events as ev
from ledger.decisions import (
    DecisionRecord,
    record_from_state,
)
from ledger.errors import (
    ConfigurationError,
    LedgerError,
    MalformedDecision,
    NotFound,
    StorageError,
    UnreadableRecord,
)
from ledger.importchecks import CORRECTION_KINDS
from ledger.importer import Importer, no_cycle_collection
from ledger.storage import DecisionRow, LedgerRecorder
from ledger.topics import LedgerMapper
from ledger.transcoder import MsgpackTranscoder

DB_ENV = "LEDGER_DB"
BATCH = 1000
"""Decisions read from storage per query."""
MAX_LINE_BYTES = 1 << 20
"""A decision is a few hundred bytes; a megabyte-long line is an error, not a decision."""


def default_db_path() -> Path:
    """Where the ledger lives when neither ``--db`` nor ``LEDGER_DB`` says: the user's data dir."""
    import platformdirs

    return Path(platformdirs.user_data_dir("medtech-ledger")) / "ledger.sqlite"


def database_env(db: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """eventsourcing settings for a ledger URL: a file path (SQLite) or ``postgresql://…``."""
    url = str(db) if db is not None else os.environ.get(DB_ENV) or str(default_db_path())
    try:
        url.encode("utf-8")
    except UnicodeEncodeError:
        msg = f"the ledger's path or URL is not valid UTF-8 text: {redact(url)!r}"
        raise ConfigurationError(msg) from None
    if url.startswith(("postgresql://", "postgres://")):
        try:
            parsed = urlparse(url)
            parsed.port  # noqa: B018 - parsed lazily: a port out of range raises here, not later
        except ValueError as e:
            msg = f"not a usable PostgreSQL URL ({e}): {redact(url)}"
            raise ConfigurationError(msg) from None
        query = parse_qs(parsed.query)
        dbname = unquote(parsed.path.lstrip("/"))
        if not dbname:
            msg = "a PostgreSQL URL names its database: postgresql://user@host:5432/dbname"
            raise ConfigurationError(msg)
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "APPLICATION_RECORDER_TOPIC": "ledger.postgres:PostgresLedgerRecorder",
            "POSTGRES_DBNAME": dbname,
            "POSTGRES_HOST": parsed.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(parsed.port or 5432),
            "POSTGRES_USER": unquote(parsed.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(parsed.password or ""),
            "POSTGRES_SCHEMA": query.get("schema", ["public"])[0],
            "POSTGRES_CONNECT_TIMEOUT": "5",
        }
    if url.startswith("sqlite://"):
        url = url.removeprefix("sqlite://")
    path = Path(url).expanduser()
    if ":memory:" not in url and "mode=memory" not in url:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            msg = f"cannot create the ledger's folder {path.parent}: {e.strerror}"
            raise ConfigurationError(msg) from e
        except ValueError as e:  # e.g. an embedded NUL
            msg = f"not a usable path for the ledger ({e}): {url!r}"
            raise ConfigurationError(msg) from None
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "APPLICATION_RECORDER_TOPIC": "ledger.sqlite:SQLiteLedgerRecorder",
        "SQLITE_DBNAME": str(path) if ":memory:" not in url and "mode=memory" not in url else url,
        "SQLITE_LOCK_TIMEOUT": os.environ.get("LEDGER_LOCK_TIMEOUT", "30"),
    }


_PASSWORD_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^:@/]*:).*@", re.DOTALL)
"""``scheme://user:`` then anything up to the last ``@``: the password, even one holding an
unescaped ``@``, ``/`` or ``:`` that would confuse a URL parser."""


def redact(url: str) -> str:
    """A database URL safe to print: the password replaced, never shown (even in a URL that does
    not parse: a password may hold any character)."""
    return _PASSWORD_RE.sub(r"\1***@", url)


@dataclass(frozen=True)
class RecordedDecision:
    """A decision as the ledger holds it: what was decided, plus where and when it was recorded."""

    record: DecisionRecord
    position: int
    recorded_at: datetime
    subject: str
    version: int
    corrections: tuple[RecordedDecision, ...] = ()

    def to_json_dict(self) -> dict[str, Any]:
        out = self.record.to_json_dict()
        out["_position"] = self.position
        out["_recorded_at"] = self.recorded_at.isoformat()
        out["_subject"] = self.subject
        if self.corrections:
            out["_corrections"] = [c.record.id for c in self.corrections]
        return out


@dataclass
class ImportResult:
    """What one decision file did to the ledger."""

    source: str
    recorded: int = 0
    unchanged: int = 0
    first_position: int | None = None
    last_position: int | None = None

    @property
    def lines(self) -> int:
        return self.recorded + self.unchanged


class LedgerApplication(Application[UUID]):
    """The ledger. Open one with ``LedgerApplication.open(url)``; close it when done."""

    name = "Ledger"
    env: ClassVar[dict[str, str]] = {"IS_SNAPSHOTTING_ENABLED": "no"}

    def __init__(self, env: Mapping[str, str] | None = None, *, plugins: pluggy.PluginManager | None = None) -> None:
        try:
            super().__init__(env)
        except LedgerError:
            raise
        except Exception as e:
            msg = f"cannot open the ledger's database: {e}"
            raise StorageError(msg) from e
        self._plugins = plugins

    @classmethod
    def open(
        cls, db: str | os.PathLike[str] | None = None, *, plugins: pluggy.PluginManager | None = None
    ) -> LedgerApplication:
        return cls(database_env(db), plugins=plugins)

    def construct_transcoder(self) -> Transcoder:
        return MsgpackTranscoder()

    def construct_mapper(self) -> Mapper[UUID]:
        """eventsourcing's mapper with topics looked up in the vocabulary, never imported, and
        states checked against their class (``ledger.topics``): stored data never names code to run."""
        return self.factory.mapper(transcoder=self.construct_transcoder(), mapper_class=LedgerMapper)

    @property
    def plugins(self) -> pluggy.PluginManager:
        if self._plugins is None:
            from ledger.plugins import plugin_manager

            self._plugins = plugin_manager()
        return self._plugins

    @property
    def competence(self) -> competence.Registry:
        """Who may decide what: the bodies and competences the plugins declare (``ledger.competence``)."""
        return competence.registry(self.plugins)

    @property
    def store(self) -> LedgerRecorder:
        assert isinstance(self.recorder, LedgerRecorder)
        return self.recorder

    # --- writing ---------------------------------------------------------------------------

    def import_lines(
        self,
        lines: Iterable[bytes | str],
        *,
        source: str,
        progress: Callable[[int], None] | None = None,
    ) -> ImportResult:
        """Record a decision file: every line checked, all recorded in one transaction or none.

        Idempotent by id: a decision already recorded with the same content is left as it is; one
        with different content refuses the file. ``progress`` is told the bytes read so far.
        """
        result = ImportResult(source)
        with self.store.write() as session, no_cycle_collection():
            writer = Importer(self, session, result, source=source)
            for lineno, line in enumerate(lines, 1):
                if progress is not None:
                    progress(len(line))
                if len(line) > MAX_LINE_BYTES:
                    writer.flush()  # a refusal of an earlier line comes first
                    raise MalformedDecision(f"line is longer than {MAX_LINE_BYTES} bytes", file=source, line=lineno)
                if not line or line.isspace():  # (``strip`` would copy every line)
                    continue
                writer.line(line, lineno)
            writer.flush()
        return result

    def record(self, decision: DecisionRecord, *, source: str = "<record>") -> ImportResult:
        """Record one decision (``ledger record``), with the same checks as an import."""
        result = ImportResult(source)
        with self.store.write() as session:
            writer = Importer(self, session, result, source=source)
            writer.add(decision)
            writer.flush()
        return result

    # --- reading ---------------------------------------------------------------------------

    def to_record(self, event: ev.Decision) -> DecisionRecord:
        """The decision an event holds, in DECISIONS.md's terms (the inverse of recording it)."""
        return record_from_state(event.kind, vars(event))

    def event_at(self, row: DecisionRow) -> ev.Decision:
        stored = self.store.select_events(row.originator_id, gt=row.originator_version - 1, lte=row.originator_version)
        if not stored:  # pragma: no cover - the index and the events are written together
            msg = f"decision {row.decision_id} is indexed but its event is missing: run `ledger verify`"
            raise StorageError(msg)
        return self._decode(stored[0], position=row.position, decision_id=row.decision_id)

    def _decode(
        self, stored: StoredEvent, *, position: int | None = None, decision_id: str | None = None
    ) -> ev.Decision:
        """The event a stored record holds; ``UnreadableRecord`` naming its position (a
        notification's own, or the one given) for a topic or state the vocabulary does not read."""
        try:
            event = self.mapper.to_domain_event(stored)
        except UnreadableRecord as e:
            if position is None and isinstance(stored, Notification):
                position = stored.id
            raise e.located(position=position, decision_id=decision_id) from None
        assert isinstance(event, ev.Decision)
        return event

    def _recorded(
        self, row: DecisionRow, event: ev.Decision, corrections: Sequence[RecordedDecision] = ()
    ) -> RecordedDecision:
        return RecordedDecision(
            record=self.to_record(event),
            position=row.position,
            recorded_at=event.timestamp,
            subject=event.subject,
            version=event.originator_version,
            corrections=tuple(corrections),
        )

    def decision(self, decision_id: str) -> RecordedDecision:
        """One decision with its position, record time, and the decisions that correct it."""
        rows = self.store.decision_rows(ids=[decision_id], limit=1)
        if not rows:
            msg = f"no decision with id {decision_id!r} in this ledger"
            raise NotFound(msg)
        corrections = [self._recorded(r, self.event_at(r)) for r in self.store.decision_rows(target=decision_id)]
        return self._recorded(rows[0], self.event_at(rows[0]), corrections)

    def records(self, *, after: int = 0, limit: int | None = None, **filters: Any) -> Iterator[RecordedDecision]:
        """Decisions in record order, filtered through the decision index (see ``decision_rows``)."""
        remaining = limit
        while remaining is None or remaining > 0:
            page = BATCH if remaining is None else min(BATCH, remaining)
            rows = self.store.decision_rows(after=after, limit=page, **filters)
            for row in rows:
                yield self._recorded(row, self.event_at(row))
            if len(rows) < page:
                return
            after = rows[-1].position
            if remaining is not None:
                remaining -= len(rows)

    def notifications(
        self, *, after: int = 0, stop: int | None = None, batch: int = BATCH
    ) -> Iterator[tuple[Notification, ev.Decision]]:
        """Every stored record after position ``after`` in log order, decoded; streams in batches."""
        while True:
            page = self.store.select_notifications(after, batch, stop=stop, inclusive_of_start=False)
            for n in page:
                yield n, self._decode(n)
            if len(page) < batch:
                return
            after = page[-1].id

    def export(self, *, after: int = 0) -> Iterator[DecisionRecord]:
        """The whole log as decisions, in record order: re-imports to the same ledger."""
        for _, event in self.notifications(after=after):
            yield self.to_record(event)

    def position(self) -> int:
        """The position of the last recorded decision (0 for an empty ledger)."""
        return self.store.max_notification_id() or 0

    def history(self, subject: str) -> list[ev.Decision]:
        """Every decision about one subject, in version order."""
        return [self._decode(s) for s in self.store.select_events(aggregates.aggregate_id(subject))]


__all__ = [
    "CORRECTION_KINDS",
    "DB_ENV",
    "MAX_LINE_BYTES",
    "ImportResult",
    "LedgerApplication",
    "RecordedDecision",
    "database_env",
    "default_db_path",
    "no_cycle_collection",
    "redact",
]
