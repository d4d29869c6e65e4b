"""The ledger application: records decisions as events and reads them back.

``LedgerApplication`` is an eventsourcing ``Application`` (msgpack transcoder, SQLite or
PostgreSQL recorder chosen from one URL). Writes take a path of their own, below eventsourcing's
aggregate ``save()``: a decision file is checked line by line against the ledger *as of each
decision's effective date* and written in batches inside one transaction (ARCHITECTURE.md rule 7),
so a file is recorded wholly or not at all, and importing it again adds nothing.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, unquote, urlparse
from uuid import UUID

import pluggy
from eventsourcing.application import Application
from eventsourcing.persistence import Notification, StoredEvent, Transcoder

from ledger import aggregates, authority
from ledger import events as ev
from ledger.decisions import DecisionRecord, check_correction, kind_specs, parse_line, record_from_state
from ledger.errors import (
    ConfigurationError,
    ConflictingDecision,
    DecisionError,
    LedgerError,
    MalformedDecision,
    NotFound,
    StorageError,
    UnknownDecision,
    UnknownReference,
    UnsignedDecision,
)
from ledger.storage import DecisionRow, LedgerRecorder, WriteSession
from ledger.transcoder import MsgpackTranscoder

DB_ENV = "LEDGER_DB"
BATCH = 1000
MAX_LINE_BYTES = 1 << 20
"""A decision is a few hundred bytes; a megabyte-long line is an error, not a decision."""


def default_db_path() -> Path:
    """Where the ledger lives when neither ``--db`` nor ``LEDGER_DB`` says: the user's data dir."""
    import platformdirs

    return Path(platformdirs.user_data_dir("medtech-ledger")) / "ledger.sqlite"


def database_env(db: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """eventsourcing settings for a ledger URL: a file path (SQLite) or ``postgresql://…``."""
    url = str(db) if db is not None else os.environ.get(DB_ENV) or str(default_db_path())
    if url.startswith(("postgresql://", "postgres://")):
        parsed = urlparse(url)
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
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "APPLICATION_RECORDER_TOPIC": "ledger.storage:SQLiteLedgerRecorder",
        "SQLITE_DBNAME": str(path) if ":memory:" not in url and "mode=memory" not in url else url,
        "SQLITE_LOCK_TIMEOUT": os.environ.get("LEDGER_LOCK_TIMEOUT", "30"),
    }


def redact(url: str) -> str:
    """A database URL safe to print: the password replaced, never shown."""
    parsed = urlparse(url)
    if parsed.password:
        return url.replace(f":{parsed.password}@", ":***@")
    return url


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

    @property
    def plugins(self) -> pluggy.PluginManager:
        if self._plugins is None:
            from ledger.plugins import plugin_manager

            self._plugins = plugin_manager()
        return self._plugins

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
        with self.store.write() as session:
            writer = _FileWriter(self, session, result)
            lineno = 0
            for lineno, line in enumerate(lines, 1):
                if progress is not None:
                    progress(len(line))
                if len(line) > MAX_LINE_BYTES:
                    raise MalformedDecision(f"line is longer than {MAX_LINE_BYTES} bytes", file=source, line=lineno)
                if not line.strip():
                    continue
                try:
                    writer.add(parse_line(line))
                except DecisionError as e:
                    raise e.located(file=source, line=lineno) from None
            try:
                writer.flush()
            except DecisionError as e:
                raise e.located(file=source, line=lineno) from None
        return result

    def record(self, decision: DecisionRecord, *, source: str = "<record>") -> ImportResult:
        """Record one decision (``ledger record``), with the same checks as an import."""
        result = ImportResult(source)
        with self.store.write() as session:
            writer = _FileWriter(self, session, result)
            try:
                writer.add(decision)
                writer.flush()
            except DecisionError as e:
                raise e.located(file=source) from None
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
        return self._decode(stored[0])

    def _decode(self, stored: StoredEvent) -> ev.Decision:
        event = self.mapper.to_domain_event(stored)
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


@dataclass
class _FileWriter:
    """Checks and buffers the decisions of one file inside one open write transaction.

    Lines wait in a batch until ``BATCH`` of them are ready; what an unflushed line makes known
    (an id, a newly registered institution, a subject's next version) is kept here so that later
    lines of the same batch see it, exactly as they would see it once written.
    """

    app: LedgerApplication
    session: WriteSession
    result: ImportResult
    recorded_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    events: list[ev.Decision] = field(default_factory=list)
    rows: list[DecisionRow] = field(default_factory=list)
    pending: dict[str, DecisionRow] = field(default_factory=dict)
    known: dict[tuple[str, str], date] = field(default_factory=dict)
    versions: dict[UUID, int] = field(default_factory=dict)
    jurisdictions: dict[str, str | None] = field(default_factory=dict)
    authority_keys: dict[str, str | None] = field(default_factory=dict)

    def add(self, record: DecisionRecord) -> None:
        self._validate_with_plugins(record)
        digest = record.digest()
        existing = self.pending.get(record.id) or self.session.find_decision(record.id)
        if existing is not None:
            if existing.digest == digest:
                self.result.unchanged += 1
                return
            msg = (
                f"decision {record.id!r} is already recorded (position {existing.position}) with "
                "different content; decisions are never rewritten: record a decision.corrected instead"
            )
            raise ConflictingDecision(msg, field="id")
        self._check_signature(record)
        for name, ref_kind, value in record.references():
            self._check_known(record, name, ref_kind, value)

        target: str | None = None
        if record.kind in ("decision.corrected", "decision.retracted"):
            record, target, subject, jurisdiction = self._target(record)
        else:
            subject = aggregates.subject_of(record.kind, record.fields)
            jurisdiction = self._jurisdiction(record, subject)

        originator_id = aggregates.aggregate_id(subject)
        version = self._next_version(originator_id)
        event = self._event(record, subject, originator_id, version)
        row = DecisionRow(
            decision_id=record.id,
            position=0,
            originator_id=originator_id,
            originator_version=version,
            kind=record.kind,
            subject=subject,
            effective=record.effective,
            digest=digest,
            target=target,
            jurisdiction=jurisdiction,
        )
        self.events.append(event)
        self.rows.append(row)
        self.pending[record.id] = row
        if record.kind == "authority.key_registered":
            self.authority_keys[record.fields["authority"]] = record.fields["public_key"]
        if record.kind in aggregates.CREATING_KINDS.values():
            key = (subject, record.kind)
            self.known[key] = min(self.known.get(key, record.effective), record.effective)
        if len(self.events) >= BATCH:
            self.flush()

    def flush(self) -> None:
        if not self.events:
            return
        mapper = self.app.mapper
        stored = [mapper.to_stored_event(e) for e in self.events]
        positions = self.session.append(stored, self.rows)
        self.result.recorded += len(positions)
        if self.result.first_position is None:
            self.result.first_position = positions[0]
        self.result.last_position = positions[-1]
        self.events.clear()
        self.rows.clear()
        self.pending.clear()
        self.known.clear()
        if len(self.versions) > 100_000:
            self.versions.clear()

    def _validate_with_plugins(self, record: DecisionRecord) -> None:
        problems: list[tuple[str, str]] = []
        for contributed in self.app.plugins.hook.ledger_validate_decision(decision=record):
            problems.extend(contributed or ())
        if problems:
            name, message = sorted(problems)[0]
            raise MalformedDecision(message, field=name)

    def _check_signature(self, record: DecisionRecord) -> None:
        """Once an authority has registered its key, every decision ``by`` it that is recorded
        after that must carry its valid signature (issue 6, "Authority"): nobody else can write
        in its name. A key is replaced by a new registration, which itself needs the old key's
        signature when the authority registers it."""
        key = self.authority_keys.get(record.by, "")
        if key == "":
            self.flush()
            row = self.session.latest(f"authority:{record.by}", "authority.key_registered")
            key = None
            if row is not None:
                stored = self.session.stored_event(row.originator_id, row.originator_version)
                registration = self.app._decode(stored)
                assert isinstance(registration, ev.AuthorityKeyRegistered)
                key = registration.public_key
            self.authority_keys[record.by] = key
        if key is None:
            return
        if record.signature is None:
            msg = f"{record.by!r} has registered a signing key: its decisions must be signed (`ledger sign`)"
            raise UnsignedDecision(msg, field="signature")
        if not authority.verify(record, key):
            msg = f"the signature does not verify with the key {record.by!r} registered"
            raise UnsignedDecision(msg, field="signature")

    def _check_known(self, record: DecisionRecord, name: str, ref_kind: str, value: str) -> None:
        """A decision may only name what the ledger knows as of its effective date (DECISIONS.md)."""
        subject = aggregates.reference_subject(ref_kind, value)
        creating = aggregates.CREATING_KINDS[ref_kind]
        since = self.known.get((subject, creating))
        stored = self.session.known_since(subject, creating)
        if stored is not None and (since is None or stored < since):
            since = stored
        if since is None:
            msg = f"unknown {ref_kind} {value!r}: no {creating} decision for it in the ledger"
            raise UnknownReference(msg, field=name)
        if since > record.effective:
            msg = (
                f"{ref_kind} {value!r} is known only from {since.isoformat()}, after this decision's "
                f"effective date {record.effective.isoformat()}"
            )
            raise UnknownReference(msg, field=name)

    def _target(self, record: DecisionRecord) -> tuple[DecisionRecord, str, str, str | None]:
        """The decision a correction or retraction points at; it lands on the same subject."""
        name = "corrects" if record.kind == "decision.corrected" else "retracts"
        target_id = record.fields[name]
        self.flush()  # so the target, even from this file, is readable in storage
        row = self.session.find_decision(target_id)
        if row is None:
            raise UnknownDecision(f"no decision with id {target_id!r} to {name[:-1]}", field=name)
        if row.kind == "decision.retracted" or (
            record.kind == "decision.corrected" and row.kind == "decision.corrected"
        ):
            msg = f"{target_id!r} is itself a {row.kind}; point at the original decision instead"
            raise MalformedDecision(msg, field=name)
        if record.kind == "decision.corrected":
            stored = self.session.stored_event(row.originator_id, row.originator_version)
            target = self.app.to_record(self.app._decode(stored))
            normalised = check_correction(target, record.fields["fields"])
            record = dataclasses.replace(record, fields={**record.fields, "fields": normalised})
        return record, target_id, row.subject, row.jurisdiction

    def _jurisdiction(self, record: DecisionRecord, subject: str) -> str | None:
        """The catalogue, or the province of the institution, a decision belongs to."""
        f = record.fields
        if record.kind.startswith("technology."):
            return str(f["catalog"])
        if record.kind == "institution.registered":
            self.jurisdictions[subject] = f["province"]
            return str(f["province"])
        if record.kind == "authority.key_registered":
            return None
        institution = f.get("institution")
        if institution is None:  # an evaluation panel: the catalogue of its technology
            return str(f["technology"]).partition(":")[0]
        key = f"institution:{institution}"
        if key not in self.jurisdictions:
            self.jurisdictions[key] = self.session.jurisdiction_of(key)
        return self.jurisdictions[key]

    def _next_version(self, originator_id: UUID) -> int:
        current = self.versions.get(originator_id)
        if current is None:
            current = self.session.last_version(originator_id)
        self.versions[originator_id] = current + 1
        return current + 1

    def _event(self, record: DecisionRecord, subject: str, originator_id: UUID, version: int) -> ev.Decision:
        spec = kind_specs()[record.kind]
        kwargs = {f.attr: record.fields.get(f.name) for f in spec.fields}
        return spec.event_class(
            originator_id=originator_id,
            originator_version=version,
            timestamp=self.recorded_at,
            decision_id=record.id,
            effective=record.effective,
            by=record.by,
            basis=record.basis,
            note=record.note,
            subject=subject,
            extensions=dict(record.extensions),
            signature=record.signature,
            **kwargs,
        )
