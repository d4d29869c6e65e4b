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
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Any, ClassVar, Literal, NoReturn
from urllib.parse import parse_qs, unquote, urlparse
from uuid import UUID

import pluggy
from eventsourcing.application import Application
from eventsourcing.domain import DomainEvent
from eventsourcing.persistence import Mapper, Notification, StoredEvent, Transcoder
from eventsourcing.utils import get_topic

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
from ledger.frozen import assemble
from ledger.storage import DecisionRow, LedgerRecorder, WriteSession
from ledger.transcoder import MsgpackTranscoder, packer

DB_ENV = "LEDGER_DB"
BATCH = 1000
MAX_LINE_BYTES = 1 << 20
"""A decision is a few hundred bytes; a megabyte-long line is an error, not a decision."""
CORRECTION_KINDS = ("decision.corrected", "decision.retracted")


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
        "APPLICATION_RECORDER_TOPIC": "ledger.storage:SQLiteLedgerRecorder",
        "SQLITE_DBNAME": str(path) if ":memory:" not in url and "mode=memory" not in url else url,
        "SQLITE_LOCK_TIMEOUT": os.environ.get("LEDGER_LOCK_TIMEOUT", "30"),
    }


_PASSWORD_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^:@/]*:).*@", re.DOTALL)
"""``scheme://user:`` then anything up to the last ``@``: the password, even one holding an
unescaped ``@``, ``/`` or ``:`` that would confuse a URL parser (issue 6)."""


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
            writer = _FileWriter(self, session, result, source=source)
            for lineno, line in enumerate(lines, 1):
                if progress is not None:
                    progress(len(line))
                if len(line) > MAX_LINE_BYTES:
                    writer.flush()  # a refusal of an earlier line comes first
                    raise MalformedDecision(f"line is longer than {MAX_LINE_BYTES} bytes", file=source, line=lineno)
                if not line.strip():
                    continue
                writer.line(line, lineno)
            writer.flush()
        return result

    def record(self, decision: DecisionRecord, *, source: str = "<record>") -> ImportResult:
        """Record one decision (``ledger record``), with the same checks as an import."""
        result = ImportResult(source)
        with self.store.write() as session:
            writer = _FileWriter(self, session, result, source=source)
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


_COMMON_ORDER = (
    "originator_id",
    "originator_version",
    "timestamp",
    "decision_id",
    "effective",
    "by",
    "basis",
    "note",
    "subject",
    "extensions",
    "signature",
)


@cache
def _plain_event_class(cls: type[ev.Decision]) -> bool:
    """Can ``_FileWriter._event`` build this class's events directly? Only if its fields are the
    common ones then the kind's own, in that order, with no checks beyond eventsourcing's."""
    spec = kind_specs()[cls.kind]
    names = tuple(f.name for f in dataclasses.fields(cls))
    return (
        names == (*_COMMON_ORDER, *(f.attr for f in spec.fields))
        and cls.__post_init__ is DomainEvent.__post_init__
        and getattr(cls, "class_version", 1) == 1
    )


def _plain_validators(pm: pluggy.PluginManager) -> list[Callable[[DecisionRecord], Any]] | Literal[False]:
    """The functions pluggy calls for ``ledger_validate_decision``, in its order, to be called
    directly (pluggy's dispatch costs more per line than the validators: issue 8); False when
    pluggy must call them itself: a wrapper, a traced or monitored manager, a pluggy we do not
    know. Called directly they get the same argument and give the same results in the same order
    (pluggy calls the last registered first and keeps the results that are not None)."""
    hook = pm.hook.ledger_validate_decision
    inner = getattr(pm, "_inner_hookexec", None)
    default = getattr(pluggy._manager, "_multicall", None)  # only compared, never called
    if inner is None or inner is not default or getattr(hook, "_hookexec", None) != pm._hookexec:
        return False
    functions = []
    for impl in reversed(hook.get_hookimpls()):
        if impl.hookwrapper or impl.wrapper or impl.argnames not in (("decision",), ()):
            return False
        function = impl.function
        functions.append(function if impl.argnames else (lambda _record, f=function: f()))
    return functions


_Prepared = tuple[list[tuple[str, str, str, tuple[str, str]]], str | None, UUID | None]
"""What ``_FileWriter._prefetch`` works out for a line's check (see there)."""
_Staged = tuple[UUID, int, str, dict[str, Any]]
"""A checked line's event as the mapper would store it: originator id, version, topic, the state to
encode (``_FileWriter._event``)."""
_UNKNOWN: Any = object()


@cache
def _topic(cls: type[ev.Decision]) -> str:
    return get_topic(cls)


def _packer(mapper: Mapper[Any]) -> Callable[[Any], bytes] | None:
    """What eventsourcing's ``Mapper.to_stored_event`` does to an event's state, without the event,
    where that is all it does: the mapper is exactly eventsourcing's, without compression or
    encryption, and its transcoder the ledger's msgpack one (then its packer, made once for the
    file: the same bytes as ``MsgpackTranscoder.encode``). None otherwise: then the mapper is used."""
    transcoder = getattr(mapper, "transcoder", None)
    if (
        type(mapper) is not Mapper
        or mapper.compressor is not None
        or mapper.cipher is not None
        or type(transcoder) is not MsgpackTranscoder
    ):
        return None
    return packer()


CACHE = 100_000
"""Entries each of the import's caches (versions, references, aggregate ids) holds before it is
emptied: bounded memory, whatever the size of the file or of the ledger."""


@dataclass
class _FileWriter:
    """Checks and buffers the decisions of one file inside one open write transaction.

    A line is checked on its own (parsed, plugins' validators, digest) as it is read, then waits in
    a batch. When ``BATCH`` lines wait, the batch is checked against the ledger — with one query
    per kind of lookup for the whole batch (ids, references, versions, jurisdictions, authorities'
    keys), not one per line — in file order, and written with one ``executemany`` per table.
    What a line makes known (an id, a newly registered institution, a subject's next version) is
    kept here, so that later lines see it exactly as they would see it once written; so the
    refusals, their order and their messages are those of checking each line in turn: a line's
    own refusal waits until every earlier line has been checked against the ledger.
    """

    app: LedgerApplication
    session: WriteSession
    result: ImportResult
    source: str | None = None
    recorded_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    waiting: list[tuple[DecisionRecord, bytes, int | None]] = field(default_factory=list)
    events: list[ev.Decision | _Staged] = field(default_factory=list)
    rows: list[DecisionRow] = field(default_factory=list)
    pending: dict[str, tuple[DecisionRow, Mapping[str, Any]]] = field(default_factory=dict)
    """This batch's decisions by id: their index rows and their events' states."""
    known: dict[tuple[str, str], date] = field(default_factory=dict)
    versions: dict[UUID, int] = field(default_factory=dict)
    jurisdictions: dict[str, str | None] = field(default_factory=dict)
    authority_keys: dict[str, str | None] = field(default_factory=dict)
    stored_known: dict[tuple[str, str], date | None] = field(default_factory=dict)
    """What storage (this file's written batches included) answers to ``known_since``."""
    aggregate_ids: dict[str, UUID] = field(default_factory=dict)
    # This batch's answers from storage, read once before its lines are checked.
    stored_rows: dict[str, DecisionRow] = field(default_factory=dict)
    stored_versions: dict[UUID, int] = field(default_factory=dict)
    stored_jurisdictions: dict[str, str | None] = field(default_factory=dict)
    stored_keys: dict[str, DecisionRow] = field(default_factory=dict)
    validators: list[Callable[[DecisionRecord], Any]] | Literal[False] | None = None
    """The plugins' ``ledger_validate_decision`` functions (``_plain_validators``), once known."""
    pack: Callable[[Any], bytes] | None = None
    """The transcoder's encoding, where the mapper is eventsourcing's own (``_packer``)."""

    def __post_init__(self) -> None:
        self.pack = _packer(self.app.mapper)

    def line(self, text: bytes | str, lineno: int) -> None:
        """Read one line of a decision file."""
        try:
            record = parse_line(text)
        except DecisionError as e:
            self._refuse(e, lineno)
        self.add(record, lineno)

    def add(self, record: DecisionRecord, lineno: int | None = None) -> None:
        try:
            self._validate_with_plugins(record)
            digest = record.digest()
        except DecisionError as e:
            self._refuse(e, lineno)
        self.waiting.append((record, digest, lineno))
        if len(self.waiting) >= BATCH:
            self.flush()

    def _refuse(self, error: DecisionError, lineno: int | None) -> NoReturn:
        self.flush()  # the lines before this one are checked first: theirs would be the refusal
        raise error.located(file=self.source, line=lineno) from None

    def flush(self) -> None:
        """Check the waiting lines against the ledger, in order, then write them."""
        if self.waiting:
            batch, self.waiting = self.waiting, []
            prepared = self._prefetch(batch)
            check = self._check
            for (record, digest, lineno), line in zip(batch, prepared, strict=True):
                try:
                    check(record, digest, line)
                except DecisionError as e:
                    raise e.located(file=self.source, line=lineno) from None
        self._write()

    def _prefetch(self, batch: Sequence[tuple[DecisionRecord, bytes, int | None]]) -> list[_Prepared]:
        """Ask storage, once per kind of question, what the checks of ``batch`` will need; returns
        what each line's check needs that does not change while the batch is checked, worked out
        once: its references with their keys (``DecisionRecord.references``), its subject and
        aggregate id (None for corrections, and where ``subject_of`` fails: the check fails then)."""
        ids: set[str] = set()
        refs: set[tuple[str, str]] = set()
        subjects: set[UUID] = set()
        institutions: set[str] = set()
        authorities: set[str] = set()
        if len(self.stored_known) > CACHE:
            self.stored_known.clear()
        if len(self.aggregate_ids) > CACHE:
            self.aggregate_ids.clear()
        prepared: list[_Prepared] = []
        creating = aggregates.CREATING_KINDS
        stored_known = self.stored_known
        for record, _, _ in batch:
            f = record.fields
            ids.add(record.id)
            named = [
                (name, ref_kind, value, (aggregates.reference_subject(ref_kind, value), creating[ref_kind]))
                for name, ref_kind, value in record.references()
            ]
            if record.by not in self.authority_keys:
                authorities.add(f"authority:{record.by}")
            if record.kind in CORRECTION_KINDS:
                prepared.append((named, None, None))
                target = f.get("corrects") if record.kind == "decision.corrected" else f.get("retracts")
                if isinstance(target, str):
                    ids.add(target)
                continue
            for *_, key in named:
                if key not in stored_known:
                    refs.add(key)
            try:
                subject = aggregates.subject_of(record.kind, f)
            except (KeyError, TypeError):  # refused in order when the line is checked
                prepared.append((named, None, None))
                continue
            oid = self._aggregate_id(subject)
            prepared.append((named, subject, oid))
            if oid not in self.versions:
                subjects.add(oid)
            institution = f.get("institution")
            if isinstance(institution, str) and f"institution:{institution}" not in self.jurisdictions:
                institutions.add(f"institution:{institution}")
        s = self.session
        self.stored_rows = s.find_decisions(ids) if ids else {}
        if refs:
            found = s.known_since_many(refs)
            for key in refs:
                self.stored_known[key] = found.get(key)
        self.stored_versions = s.last_versions(subjects) if subjects else {}
        self.stored_jurisdictions = s.jurisdictions_of(institutions) if institutions else {}
        self.stored_keys = s.latest_many(authorities, "authority.key_registered") if authorities else {}
        return prepared

    def _aggregate_id(self, subject: str) -> UUID:
        oid = self.aggregate_ids.get(subject)
        if oid is None:
            oid = self.aggregate_ids[subject] = aggregates.aggregate_id(subject)
        return oid

    def _check(self, record: DecisionRecord, digest: bytes, prepared: _Prepared) -> None:
        """Check one line against the ledger and this file's earlier lines, and stage its event."""
        waiting = self.pending.get(record.id)
        existing = waiting[0] if waiting is not None else self.stored_rows.get(record.id)
        if existing is not None:
            if existing.digest == digest:
                self.result.unchanged += 1
                return
            msg = (
                f"decision {record.id!r} is already recorded (position {existing.position}) with "
                "different content; decisions are never rewritten: record a decision.corrected instead"
            )
            raise ConflictingDecision(msg, field="id")
        if self.authority_keys.get(record.by, "") is not None:  # else no key: nothing to check
            self._check_signature(record)
        references, subject, originator_id = prepared
        for name, ref_kind, value, key in references:
            self._check_known(record, name, ref_kind, value, key)

        target: str | None = None
        if record.kind in CORRECTION_KINDS:
            record, target, subject, jurisdiction = self._target(record)
            originator_id = self._aggregate_id(subject)
        else:
            if subject is None or originator_id is None:  # what ``_prefetch`` could not work out
                subject = aggregates.subject_of(record.kind, record.fields)
                originator_id = self._aggregate_id(subject)
            jurisdiction = self._jurisdiction(record, subject)

        version = self._next_version(originator_id)
        event, state = self._event(record, subject, originator_id, version)
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
        self.pending[record.id] = (row, state)
        if record.kind == "authority.key_registered":
            self.authority_keys[record.fields["authority"]] = record.fields["public_key"]
        if record.kind in aggregates.CREATING_KINDS.values():
            key = (subject, record.kind)
            self.known[key] = min(self.known.get(key, record.effective), record.effective)

    def _write(self) -> None:
        if not self.events:
            return
        mapper = self.app.mapper
        pack = self.pack
        stored = [
            StoredEvent(e[0], e[1], e[2], pack(e[3])) if pack is not None and type(e) is tuple else
            mapper.to_stored_event(e)  # type: ignore[arg-type]
            for e in self.events
        ]
        positions = self.session.append(stored, self.rows)
        self.result.recorded += len(positions)
        if self.result.first_position is None:
            self.result.first_position = positions[0]
        self.result.last_position = positions[-1]
        for key, day in self.known.items():  # storage now knows these subjects from then
            if key in self.stored_known:
                before = self.stored_known[key]
                self.stored_known[key] = day if before is None else min(before, day)
        self.events.clear()
        self.rows.clear()
        self.pending.clear()
        self.known.clear()
        if len(self.versions) > CACHE:
            self.versions.clear()

    def _validate_with_plugins(self, record: DecisionRecord) -> None:
        problems: list[tuple[str, str]] = []
        validators = self.validators
        if validators is None:
            validators = self.validators = _plain_validators(self.app.plugins)
        results = (
            self.app.plugins.hook.ledger_validate_decision(decision=record)
            if validators is False
            else [r for r in (v(record) for v in validators) if r is not None]
        )
        for contributed in results:
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
            # Not registered by this file (its registrations are in ``authority_keys``): storage.
            row = self.stored_keys.get(f"authority:{record.by}")
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

    def _check_known(
        self, record: DecisionRecord, name: str, ref_kind: str, value: str, key: tuple[str, str]
    ) -> None:
        """A decision may only name what the ledger knows as of its effective date (DECISIONS.md).
        ``key`` is the subject ``value`` names and the kind of decision that creates it."""
        subject, creating = key
        since = self.known.get(key)
        stored = self.stored_known.get(key, _UNKNOWN)
        if stored is _UNKNOWN:  # a reference the batch's look-up did not see coming (a corrected record's)
            stored = self.stored_known[key] = self.session.known_since(subject, creating)
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
        waiting = self.pending.get(target_id)  # earlier in this batch, or else in storage
        row = waiting[0] if waiting is not None else self.stored_rows.get(target_id)
        if row is None and target_id not in self.stored_rows:
            row = self.session.find_decision(target_id)
        if row is None:
            raise UnknownDecision(f"no decision with id {target_id!r} to {name[:-1]}", field=name)
        if row.kind == "decision.retracted" or (
            record.kind == "decision.corrected" and row.kind == "decision.corrected"
        ):
            msg = f"{target_id!r} is itself a {row.kind}; point at the original decision instead"
            raise MalformedDecision(msg, field=name)
        if record.kind == "decision.corrected":
            if waiting is not None:
                target = record_from_state(row.kind, waiting[1])
            else:
                original = self.app._decode(self.session.stored_event(row.originator_id, row.originator_version))
                target = self.app.to_record(original)
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
            if key in self.stored_jurisdictions:
                self.jurisdictions[key] = self.stored_jurisdictions[key]
            else:
                self.jurisdictions[key] = self.session.jurisdiction_of(key)
        return self.jurisdictions[key]

    def _next_version(self, originator_id: UUID) -> int:
        current = self.versions.get(originator_id)
        if current is None:
            current = self.stored_versions.get(originator_id)
            if current is None:
                current = self.session.last_version(originator_id)
        self.versions[originator_id] = current + 1
        return current + 1

    def _event(
        self, record: DecisionRecord, subject: str, originator_id: UUID, version: int
    ) -> tuple[ev.Decision | _Staged, Mapping[str, Any]]:
        """The event of a checked line (or, where the mapper is eventsourcing's own, what it would
        store of it: ``_Staged``), and its state (which ``record_from_state`` reads back)."""
        spec = kind_specs()[record.kind]
        if _plain_event_class(spec.event_class):
            # What the dataclass's ``__init__`` builds — the same ``__dict__``, in field order, so
            # the same stored bytes — without its per-field ``object.__setattr__`` (≈5 µs a line);
            # eventsourcing's mapper builds the events it reads back the same way. Where the mapper
            # is eventsourcing's own, no event at all: its state, less the two fields the mapper
            # takes out of it, is what the mapper would encode.
            state = {
                "timestamp": self.recorded_at,
                "decision_id": record.id,
                "effective": record.effective,
                "by": record.by,
                "basis": record.basis,
                "note": record.note,
                "subject": subject,
                "extensions": dict(record.extensions),
                "signature": record.signature,
            }
            fields = record.fields
            for f in spec.fields:
                state[f.attr] = fields.get(f.name)
            if self.pack is not None:
                return (originator_id, version, _topic(spec.event_class), state), state
            state = {"originator_id": originator_id, "originator_version": version, **state}
            return assemble(spec.event_class, state), state
        kwargs = {f.attr: record.fields.get(f.name) for f in spec.fields}
        event = spec.event_class(
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
        return event, vars(event)
