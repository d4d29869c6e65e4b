"""The ledger application: records decisions as events and reads them back.

``LedgerApplication`` is an eventsourcing ``Application`` (msgpack transcoder, SQLite or
PostgreSQL recorder chosen from one URL). Writes take a path of their own, below eventsourcing's
aggregate ``save()``: a decision file is checked line by line against the ledger *as of each
decision's effective date* and written in batches inside one transaction (ARCHITECTURE.md rule 7),
so a file is recorded wholly or not at all, and importing it again adds nothing.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
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

from ledger import aggregates, authority, competence
from ledger import events as ev
from ledger.competence import normal
from ledger.decisions import (
    DecisionRecord,
    check_correction,
    kind_specs,
    may_name_uncatalogued,
    parse_line_digest,
    record_from_state,
    reference_fields,
)
from ledger.errors import (
    ConfigurationError,
    ConflictingDecision,
    DecisionError,
    IncompetentDecision,
    LedgerError,
    MalformedDecision,
    NotFound,
    StorageError,
    UnknownDecision,
    UnknownReference,
    UnreadableRecord,
    UnsignedDecision,
)
from ledger.frozen import assemble
from ledger.jurisdictions import NATIONAL
from ledger.storage import DecisionRow, LedgerRecorder, StagedEvent, StagedRow, WriteSession
from ledger.topics import LedgerMapper
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


@contextmanager
def no_cycle_collection() -> Iterator[None]:
    """Python's cyclic garbage collector paused while a file is imported, or a trail judged
    (``Views.trail``'s decorator). Both make many small objects that hold no reference cycles
    (records, rows, states, entries, findings), which reference counting frees; the collector runs
    on allocation counts alone, so it would scan the heap and the import's caches (up to ``CACHE``
    entries) again and again for nothing: ≈ 5% of an import's instructions at 10,000 lines, ≈ 15%
    of a 3,000-decision trail and its slowest samples (docs/performance.md). It runs again
    afterwards — if it was running before."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


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


_Reference = tuple[str, str, str, tuple[str, str]]
"""A reference of a line: field, reference kind, value, and (the subject it names, the kind of
decision that creates that subject)."""
_Line = tuple[
    DecisionRecord,
    bytes,
    "int | None",
    list[_Reference],
    "str | None",
    "tuple[UUID, str] | None",
    "str | None",
    "str | None",
    "bytes | None",
]
"""A line read and checked on its own, with what its check against the ledger needs worked out as
it is read (``_FileWriter._read``): record, digest, line number, references, subject and aggregate
(id, hex) — None for a correction (its subject is its target's) or where the line alone does not
say —, its jurisdiction where the line says it, else the institution whose jurisdiction it is
(``_jurisdiction_source``), and its event's stored state (None where that is made at the check)."""
_UNKNOWN: Any = object()


@dataclass(frozen=True)
class _KindPlan:
    """How a kind's event is stored, worked out once per kind."""

    event_class: type[ev.Decision]
    topic: str
    plain: bool
    """``_plain_event_class``: the state is built here, not by the class's ``__init__``."""
    attributes: tuple[tuple[str, str], ...]
    """The kind's own fields, in event order: (event attribute, JSON name)."""


@cache
def _kind_plan(kind: str) -> _KindPlan:
    spec = kind_specs()[kind]
    cls = spec.event_class
    return _KindPlan(cls, get_topic(cls), _plain_event_class(cls), tuple((f.attr, f.name) for f in spec.fields))


@cache
def _reference_plan(kind: str) -> tuple[tuple[tuple[str, str, str, str], ...], bool]:
    """``decisions.reference_fields(kind)`` with, for each field, what its subject key puts before
    the value (``aggregates.reference_prefix``: the key is ``reference_subject``'s) and the kind of
    decision that creates that subject."""
    names, by_code = reference_fields(kind)
    plan = tuple(
        (name, ref_kind, aggregates.reference_prefix(ref_kind), aggregates.CREATING_KINDS[ref_kind])
        for name, ref_kind in names
    )
    return plan, by_code


def _jurisdiction_source(kind: str, f: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The catalogue, or the province of the institution, a decision belongs to, as far as the
    decision itself says: (its jurisdiction, None), or (None, the subject key of the institution
    whose recorded jurisdiction it is: ``_FileWriter._jurisdiction`` looks it up)."""
    if kind.startswith("technology."):
        return str(f["catalog"]), None
    if kind == "institution.registered":
        return str(f["province"]), None
    if kind == "authority.key_registered":
        return None, None
    institution = f.get("institution")
    if institution is None:  # an evaluation panel: the catalogue of its technology
        return str(f["technology"]).partition(":")[0], None
    return None, f"institution:{institution}"


def _packer(mapper: Mapper[Any]) -> Callable[[Any], bytes] | None:
    """What eventsourcing's ``Mapper.to_stored_event`` does to an event's state, without the event,
    where that is all it does: the mapper writes as eventsourcing's (``LedgerMapper`` changes only
    reading), without compression or
    encryption, and its transcoder the ledger's msgpack one (then its packer, made once for the
    file: the same bytes as ``MsgpackTranscoder.encode``). None otherwise: then the mapper is used."""
    transcoder = getattr(mapper, "transcoder", None)
    if (
        type(mapper) not in (Mapper, LedgerMapper)
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

    A line is read and checked on its own as it comes (parsed, plugins' validators, digest), and
    what does not depend on the ledger is worked out then (``_read``: its references' subjects, its
    own subject, aggregate id, jurisdiction, event state); then it waits in a batch. When ``BATCH``
    lines wait, the batch is checked against the ledger — with one query per kind of lookup for the
    whole batch (ids, references, versions, jurisdictions, authorities' keys), not one per line —
    in file order, and handed to storage as plain rows (``WriteSession.append_staged``; SQLite
    writes them while the next batch is read). What a line makes known (an id, a newly registered
    institution, a subject's next version) is kept here, so that later lines see it exactly as they
    would see it once written; so the refusals, their order and their messages are those of
    checking each line in turn: a line's own refusal waits until every earlier line has been
    checked against the ledger.
    """

    app: LedgerApplication
    session: WriteSession
    result: ImportResult
    source: str | None = None
    recorded_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    waiting: list[_Line] = field(default_factory=list)
    events: list[StagedEvent] = field(default_factory=list)
    rows: list[StagedRow] = field(default_factory=list)
    pending: dict[str, tuple[StagedRow, Mapping[str, Any] | bytes]] = field(default_factory=dict)
    """This batch's decisions by id: their index rows and their events' states (or stored states)."""
    known: dict[tuple[str, str], date] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    """Each subject's last version, by subject key."""
    jurisdictions: dict[str, str | None] = field(default_factory=dict)
    authority_keys: dict[str, str | None] = field(default_factory=dict)
    stored_known: dict[tuple[str, str], date | None] = field(default_factory=dict)
    """What storage (this file's written batches included) answers to ``known_since``."""
    aggregate_ids: dict[str, tuple[UUID, str]] = field(default_factory=dict)
    """Subject key -> its aggregate id, and that id's 32 hex digits (as SQLite stores it)."""
    # This batch's answers from storage, read once before its lines are checked.
    stored_rows: dict[str, DecisionRow] = field(default_factory=dict)
    stored_versions: dict[str, int] = field(default_factory=dict)
    stored_jurisdictions: dict[str, str | None] = field(default_factory=dict)
    stored_keys: dict[str, DecisionRow] = field(default_factory=dict)
    national: dict[str, DecisionRecord] | None = None
    """The national catalogue's decisions (and their corrections) by id, as committed before this
    file, once a provincial listing asks whether the nation prohibits it (``prohibited_nationally``)."""
    file_national: dict[str, DecisionRecord] = field(default_factory=dict)
    national_timelines: dict[str, list[tuple[date, str | None, str | None]]] | None = None
    """``_national_timelines`` of both, worked out when first asked after either changed."""
    """This file's decisions about the national catalogue (bounded by the catalogue's size)."""
    asked_keys: set[str] = field(default_factory=set)
    """The authorities whose keys this batch's prefetch asked storage for (``stored_keys``)."""
    validators: list[Callable[[DecisionRecord], Any]] | Literal[False] | None = None
    """The plugins' ``ledger_validate_decision`` functions (``_plain_validators``), once known."""
    pack: Callable[[Any], bytes] | None = None
    """The transcoder's encoding, where the mapper is eventsourcing's own (``_packer``)."""

    def __post_init__(self) -> None:
        self.pack = _packer(self.app.mapper)

    def line(self, text: bytes | str, lineno: int) -> None:
        """Read one line of a decision file: what ``add(parse_line(text))`` does, with the digest
        taken from the line where it can be (``parse_line_digest``)."""
        try:
            record, digest = parse_line_digest(text)
            self._validate_with_plugins(record)
            if digest is None:
                digest = record.digest()
        except DecisionError as e:
            self._refuse(e, lineno)
        self.take(record, digest, lineno)

    def take(self, record: DecisionRecord, digest: bytes, lineno: int | None) -> None:
        """A line read and checked on its own: to be checked against the ledger with its batch."""
        waiting = self.waiting
        waiting.append(self._read(record, digest, lineno))
        if len(waiting) >= BATCH:
            self.flush()

    def add(self, record: DecisionRecord, lineno: int | None = None) -> None:
        try:
            self._validate_with_plugins(record)
            digest = record.digest()
        except DecisionError as e:
            self._refuse(e, lineno)
        self.take(record, digest, lineno)

    def _read(self, record: DecisionRecord, digest: bytes, lineno: int | None) -> _Line:
        """What a line's check needs that does not depend on the ledger (``_Line``). Whatever
        cannot be worked out here is left to the check, which then works it out, and refuses, in
        order."""
        kind = record.kind
        f = record.fields
        names, by_code = _reference_plan(kind)
        references = [
            (name, ref_kind, value, (f"{prefix}{value}", creating))
            for name, ref_kind, prefix, creating in names
            if (value := f.get(name)) is not None
        ]
        if by_code:
            value = f"{f['catalog']}:{f['code']}"
            key = (aggregates.reference_subject("technology", value), aggregates.CREATING_KINDS["technology"])
            references.append(("code", "technology", value, key))
        if kind in CORRECTION_KINDS:
            return record, digest, lineno, references, None, None, None, None, None
        try:
            subject = aggregates.subject_of(kind, f)
            fixed, institution = _jurisdiction_source(kind, f)
        except (KeyError, TypeError, AttributeError):  # refused in order when the line is checked
            return record, digest, lineno, references, None, None, None, None, None
        aggregate = self.aggregate_ids.get(subject)
        if aggregate is None:
            aggregate = self._aggregate_id(subject)
        state = None
        plan = _kind_plan(kind)
        if self.pack is not None and plan.plain:
            try:
                state = self.pack(self._state(record, subject, plan))
            except Exception:  # then the check packs it, and fails, in order
                state = None
        return record, digest, lineno, references, subject, aggregate, fixed, institution, state

    def _refuse(self, error: DecisionError, lineno: int | None) -> NoReturn:
        self.flush()  # the lines before this one are checked first: theirs would be the refusal
        raise error.located(file=self.source, line=lineno) from None

    def flush(self) -> None:
        """Check the waiting lines against the ledger, in order, then write them."""
        if self.waiting:
            batch, self.waiting = self.waiting, []
            self._prefetch(batch)
            check = self._check
            for line in batch:
                try:
                    check(line)
                except DecisionError as e:
                    raise e.located(file=self.source, line=line[2]) from None
        self._write()

    def _prefetch(self, batch: Sequence[_Line]) -> None:
        """Ask storage, once per kind of question, what the checks of ``batch`` will need."""
        ids: set[str] = set()
        refs: set[tuple[str, str]] = set()
        subjects: dict[UUID, str] = {}
        institutions: set[str] = set()
        authorities: set[str] = set()
        if len(self.stored_known) > CACHE:
            self.stored_known.clear()
        if len(self.aggregate_ids) > CACHE:
            self.aggregate_ids.clear()
        stored_known = self.stored_known
        authority_keys = self.authority_keys
        versions = self.versions
        jurisdictions = self.jurisdictions
        for record, _, _, references, subject, aggregate, _, institution, _ in batch:
            ids.add(record.id)
            by = normal(record.by)
            if by not in authority_keys:
                authorities.add(f"authority:{by}")
            kind = record.kind
            if kind in CORRECTION_KINDS:
                f = record.fields
                target = f.get("corrects") if kind == "decision.corrected" else f.get("retracts")
                if isinstance(target, str):
                    ids.add(target)
                continue
            for *_, key in references:
                if key not in stored_known:
                    refs.add(key)
            if subject is None or aggregate is None:  # worked out, and refused, at the check
                continue
            if subject not in versions:
                subjects[aggregate[0]] = subject
            if institution is not None and institution not in jurisdictions:
                institutions.add(institution)
        s = self.session
        self.stored_rows = s.find_decisions(ids) if ids else {}
        if refs:
            found = s.known_since_many(refs)
            for key in refs:
                stored_known[key] = found.get(key)
        self.stored_versions = (
            {subjects[oid]: version for oid, version in s.last_versions(subjects).items()} if subjects else {}
        )
        self.stored_jurisdictions = s.jurisdictions_of(institutions) if institutions else {}
        self.stored_keys = s.latest_many(authorities, "authority.key_registered") if authorities else {}
        self.asked_keys = {a.removeprefix("authority:") for a in authorities}

    def _aggregate_id(self, subject: str) -> tuple[UUID, str]:
        found = self.aggregate_ids.get(subject)
        if found is None:
            oid = aggregates.aggregate_id(subject)
            found = self.aggregate_ids[subject] = (oid, oid.hex)
        return found

    def _check(self, line: _Line) -> None:
        """Check one line against the ledger and this file's earlier lines, and stage its event."""
        record, digest, _, references, subject, aggregate, fixed, institution, state = line
        decision_id = record.id
        waiting = self.pending.get(decision_id)
        if waiting is not None or decision_id in self.stored_rows:
            if waiting is not None:  # earlier in this batch: not written yet, so at position 0
                existing_digest, position = waiting[0][6], 0
            else:
                existing = self.stored_rows[decision_id]
                existing_digest, position = existing.digest, existing.position
            if existing_digest == digest:
                self.result.unchanged += 1
                return
            msg = (
                f"decision {decision_id!r} is already recorded (position {position}) with "
                "different content; decisions are never rewritten: record a decision.corrected instead"
            )
            raise ConflictingDecision(msg, field="id")
        kind = record.kind
        if kind == "authority.key_registered":
            self._check_rekey(record)
        elif kind not in CORRECTION_KINDS and self.authority_keys.get(normal(record.by), "") is not None:
            self._check_signature(record)  # (else no key: nothing to check)
        known = self.known
        stored_known = self.stored_known
        effective = record.effective
        for name, ref_kind, value, key in references:
            stored = stored_known.get(key, _UNKNOWN)
            # Known to storage in time, and not created anew in this batch: nothing more to see.
            if stored is _UNKNOWN or stored is None or stored > effective or key in known:
                self._check_known(record, name, ref_kind, value, key)
        if kind in _JUDGED and (kind not in _OWN or record.by != record.fields.get("institution")):
            self._check_competence(record)  # (an institution deciding for itself: nothing to judge)
        target: str | None = None
        if kind in CORRECTION_KINDS:
            record, target, subject, jurisdiction, original = self._target(record)
            self._check_governing_keys(record, original.by)
            self._check_competence(record, original)
            aggregate = self._aggregate_id(subject)
            state = None
        else:
            if subject is None or aggregate is None:  # what ``_read`` could not work out
                subject = aggregates.subject_of(kind, record.fields)
                aggregate = self._aggregate_id(subject)
                fixed, institution = _jurisdiction_source(kind, record.fields)
            if kind == "institution.registered":
                self.jurisdictions[subject] = record.fields["province"]
            jurisdiction = fixed if institution is None else self._jurisdiction(institution)

        versions = self.versions
        version = versions.get(subject)
        if version is None:
            version = self.stored_versions.get(subject)
            if version is None:
                version = self.session.last_version(aggregate[0])
        version += 1
        versions[subject] = version
        made: Mapping[str, Any] | bytes
        if state is None:
            event, made = self._event(record, subject, aggregate, version)
        else:
            event, made = (aggregate[1], version, _kind_plan(kind).topic, state), state
        row = (decision_id, aggregate[1], version, kind, subject, effective, digest, target, jurisdiction)
        self.events.append(event)
        self.rows.append(row)
        self.pending[decision_id] = (row, made)
        if jurisdiction == NATIONAL and (kind in _CATALOGUE_KINDS or target is not None):
            self.file_national[decision_id] = record
            self.national_timelines = None
        if kind == "authority.key_registered":
            self.authority_keys[record.fields["authority"]] = record.fields["public_key"]
        if kind in _CREATING:
            key = (subject, kind)
            known[key] = min(known.get(key, effective), effective)

    def _write(self) -> None:
        if not self.events:
            return
        events, rows = self.events, self.rows
        self.events, self.rows = [], []  # handed over: storage may write them after this returns
        positions = self.session.append_staged(events, rows)
        self.result.recorded += len(positions)
        if self.result.first_position is None:
            self.result.first_position = positions[0]
        self.result.last_position = positions[-1]
        for key, day in self.known.items():  # storage now knows these subjects from then
            if key in self.stored_known:
                before = self.stored_known[key]
                self.stored_known[key] = day if before is None else min(before, day)
        self.pending.clear()
        self.known.clear()
        if len(self.versions) > CACHE:
            self.versions.clear()

    def _validate_with_plugins(self, record: DecisionRecord) -> None:
        validators = self.validators
        if validators is None:
            validators = self.validators = _plain_validators(self.app.plugins)
        if validators is False:
            results = self.app.plugins.hook.ledger_validate_decision(decision=record)
        else:
            # Every validator is called, in pluggy's order, before any problem is raised.
            results = [r for r in [v(record) for v in validators] if r is not None]
            if not any(results):
                return
        problems: list[tuple[str, str]] = []
        for contributed in results:
            problems.extend(contributed or ())
        if problems:
            name, message = sorted(problems)[0]
            raise MalformedDecision(message, field=name)

    def _key(self, name: str) -> str | None:
        """The current key of authority ``name``: this file's registrations (``authority_keys``),
        else storage's (the batch's prefetch asked for every ``by``; others are asked here)."""
        name = normal(name)  # ``by`` is compared after NFC; a key's holder is written in NFC
        key = self.authority_keys.get(name, "")
        if key != "":
            return key
        subject = f"authority:{name}"
        row = self.stored_keys.get(subject)
        if row is None and name not in self.asked_keys:
            row = self.session.latest(subject, "authority.key_registered")
        key = None
        if row is not None:
            registration = self.app._decode(self.session.stored_event(row.originator_id, row.originator_version))
            assert isinstance(registration, ev.AuthorityKeyRegistered)
            key = registration.public_key
        self.authority_keys[name] = key
        return key

    def _check_signature(self, record: DecisionRecord) -> str | None:
        """Once an authority has registered its key, every decision ``by`` it that is recorded
        after that must carry its valid signature: nobody else can write in its name. Returns
        that key (None: ``by`` has none)."""
        key = self._key(record.by)
        if key is None:
            return None
        if record.signature is None:
            msg = f"{record.by!r} has registered a signing key: its decisions must be signed (`ledger sign`)"
            raise UnsignedDecision(msg, field="signature")
        if not authority.verify(record, key):
            msg = f"the signature does not verify with the key {record.by!r} registered"
            raise UnsignedDecision(msg, field="signature")
        return key

    def _check_rekey(self, record: DecisionRecord) -> None:
        """Key continuity (docs/reliability.md, "Trust model"): an authority's key is registered
        by that authority itself, or by a body above it that holds a registered key (and signs
        with it); once it has a key, a new one is registered only under its current key or under
        that superior's. So an unsigned registration by another body never re-keys anyone."""
        holder = record.fields["authority"]
        by_key = self._check_signature(record)
        if normal(record.by) == holder:
            return  # a first key (trust on first use), or a rotation signed with the current key
        if not self.app.competence.above(record.by, holder):
            msg = (
                f"{holder!r}'s signing key is registered by {holder!r} itself, or by a body above it "
                f"that holds a registered key; {record.by!r} is neither"
            )
            raise IncompetentDecision(msg, field="by")
        if by_key is None:
            current = self._key(holder)
            if current is not None:
                msg = f"{holder!r} has a signing key: only its current key, or a key of a body above it, replaces it"
            else:
                msg = f"a body above {holder!r} registers its key only under its own registered key"
            raise UnsignedDecision(msg, field="signature")

    def _check_governing_keys(self, record: DecisionRecord, author: str) -> None:
        """A correction or retraction carries the signature of its own ``by`` (if keyed), and of
        the key that governs the decision it changes: its author's, unless it is recorded by a
        keyed body above that author (who then signed with its own key). A correction that puts a
        decision in another body's name (``fields.by``) needs that body's key too."""
        by_key = self._check_signature(record)
        governed = [author]
        moved = record.fields.get("fields", {}).get("by") if record.kind == "decision.corrected" else None
        if isinstance(moved, str):
            governed.append(moved)
        for name in governed:
            if normal(name) == normal(record.by):
                continue
            key = self._key(name)
            if key is None or (by_key is not None and self.app.competence.above(record.by, name)):
                continue
            if not authority.verify(record, key):
                msg = (
                    f"{name!r} has registered a signing key: a {record.kind} of its decision must carry "
                    "its signature (or be recorded and signed by a body above it)"
                )
                raise UnsignedDecision(msg, field="signature")

    def _check_competence(self, record: DecisionRecord, target: DecisionRecord | None = None) -> None:
        """Refuse what cannot be a real decision (``ledger.competence.refusal``): a hospital
        amending a catalogue, a province listing what only the nation may, a decision changed by
        a body that is neither its author nor above it. ``target``: what a correction changes."""
        corrected = None
        if target is not None and record.kind == "decision.corrected":
            corrected = _corrected(target, record.fields["fields"])
        found = competence.refusal(self.app.competence, record, self, target, corrected)
        if found is not None:
            name, message = found
            raise IncompetentDecision(message, field=name)

    # ``competence.Lookup``: what the judgement asks of the ledger.

    def is_institution(self, name: str) -> bool:
        """Is ``name`` the licence of an institution registered in the ledger or this file?"""
        key = (aggregates.reference_subject("institution", name), "institution.registered")
        if key in self.known:
            return True
        stored = self.stored_known.get(key, _UNKNOWN)
        if stored is _UNKNOWN:
            stored = self.stored_known[key] = self.session.known_since(*key)
        return stored is not None

    def listed_name(self, technology: str) -> str | None:
        """The name a catalogue entry was listed under (this file's listing, else storage's)."""
        subject = aggregates.reference_subject("technology", technology)
        for row, made in self.pending.values():
            if row[4] == subject and row[3] == "technology.listed":
                state = self.app.mapper.transcoder.decode(made) if isinstance(made, bytes) else made
                return str(state["name"])
        row_ = self.session.latest(subject, "technology.listed")
        if row_ is None:
            return None
        listed = self.app._decode(self.session.stored_event(row_.originator_id, row_.originator_version))
        return str(self.app.to_record(listed).fields["name"])

    def prohibited_nationally(self, name: str, day: date) -> str | None:
        """The national code listed as ``name`` and prohibited on ``day`` (MTM-2009#9), from the
        national catalogue's decisions: storage's, read once per file, and this file's."""
        if self.national is None:  # committed before this file (another connection: not this file's)
            kinds = [*_CATALOGUE_KINDS, *CORRECTION_KINDS]
            self.national = {r.record.id: r.record for r in self.app.records(kinds=kinds, jurisdictions=[NATIONAL])}
        if self.national_timelines is None:  # again only after this file changed the national catalogue
            self.national_timelines = _national_timelines({**self.national, **self.file_national}.values())
        wanted = competence.plain_name(name)
        for code, timeline in self.national_timelines.items():
            listed_as, cls = None, None
            for effective, entry_name, entry_class in timeline:
                if effective > day:
                    break
                listed_as = entry_name if entry_name is not None else listed_as
                cls = entry_class
            if cls == "prohibited" and listed_as is not None and competence.plain_name(listed_as) == wanted:
                return code
        return None

    def _check_known(self, record: DecisionRecord, name: str, ref_kind: str, value: str, key: tuple[str, str]) -> None:
        """A decision may only name what the ledger knows as of its effective date (DECISIONS.md).
        ``key`` is the subject ``value`` names and the kind of decision that creates it. A
        ``technology`` field needs its technology listed, on any date; an evaluation panel's need
        not even that (``may_name_uncatalogued``)."""
        subject, creating = key
        since = self.known.get(key)
        stored = self.stored_known.get(key, _UNKNOWN)
        if stored is _UNKNOWN:  # a reference the batch's look-up did not see coming (a corrected record's)
            stored = self.stored_known[key] = self.session.known_since(subject, creating)
        if stored is not None and (since is None or stored < since):
            since = stored
        if since is None:
            if name == "technology" and may_name_uncatalogued(record.kind, record.fields):
                return
            msg = f"unknown {ref_kind} {value!r}: no {creating} decision for it in the ledger"
            raise UnknownReference(msg, field=name)
        # A technology is in use before a catalogue lists it (a listing says from when it is
        # restricted, not that it exists): its use may predate the listing. A catalogue change
        # (``code``) may not.
        if since > record.effective and name != "technology":
            msg = (
                f"{ref_kind} {value!r} is known only from {since.isoformat()}, after this decision's "
                f"effective date {record.effective.isoformat()}"
            )
            raise UnknownReference(msg, field=name)

    def _target(self, record: DecisionRecord) -> tuple[DecisionRecord, str, str, str | None, DecisionRecord]:
        """The decision a correction or retraction points at; it lands on the same subject. Also
        that decision as recorded (its ``by`` is its author, whose key governs changes to it)."""
        name = "corrects" if record.kind == "decision.corrected" else "retracts"
        target_id = record.fields[name]
        waiting = self.pending.get(target_id)  # earlier in this batch, or else in storage
        row = _pending_row(waiting[0]) if waiting is not None else self.stored_rows.get(target_id)
        if row is None and target_id not in self.stored_rows:
            row = self.session.find_decision(target_id)
        if row is None:
            raise UnknownDecision(f"no decision with id {target_id!r} to {name[:-1]}", field=name)
        if row.kind == "decision.retracted" or (
            record.kind == "decision.corrected" and row.kind == "decision.corrected"
        ):
            msg = f"{target_id!r} is itself a {row.kind}; point at the original decision instead"
            raise MalformedDecision(msg, field=name)
        if waiting is not None:
            state = waiting[1]
            if isinstance(state, bytes):  # as ``_read`` stored it
                state = self.app.mapper.transcoder.decode(state)
            target = record_from_state(row.kind, state)
        else:
            original = self.app._decode(self.session.stored_event(row.originator_id, row.originator_version))
            target = self.app.to_record(original)
        if record.kind == "decision.corrected":
            normalised = check_correction(target, record.fields["fields"])
            record = dataclasses.replace(record, fields={**record.fields, "fields": normalised})
        return record, target_id, row.subject, row.jurisdiction, target

    def _jurisdiction(self, institution: str) -> str | None:
        """The jurisdiction recorded for an institution (its subject key): this file's, else storage's."""
        jurisdictions = self.jurisdictions
        if institution not in jurisdictions:
            if institution in self.stored_jurisdictions:
                jurisdictions[institution] = self.stored_jurisdictions[institution]
            else:
                jurisdictions[institution] = self.session.jurisdiction_of(institution)
        return jurisdictions[institution]

    def _state(self, record: DecisionRecord, subject: str, plan: _KindPlan) -> dict[str, Any]:
        """The state of a plain event class's event (``_plain_event_class``): what its dataclass's
        ``__init__`` builds — the same ``__dict__``, in field order, so the same stored bytes —
        without its per-field ``object.__setattr__`` (≈5 µs a line), less the two fields the
        mapper takes out of it (originator id and version): what the mapper would encode."""
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
        get = record.fields.get
        for attr, name in plan.attributes:
            state[attr] = get(name)
        return state

    def _event(
        self, record: DecisionRecord, subject: str, aggregate: tuple[UUID, str], version: int
    ) -> tuple[StagedEvent, Mapping[str, Any]]:
        """The stored form of a checked line's event, and its state (which ``record_from_state``
        reads back), where ``_read`` did not make them: a correction's, or where the mapper is not
        eventsourcing's own or the event class not plain."""
        plan = _kind_plan(record.kind)
        if plan.plain:
            state = self._state(record, subject, plan)
            if self.pack is not None:
                return (aggregate[1], version, plan.topic, self.pack(state)), state
            # eventsourcing's mapper builds the events it reads back the same way.
            event = assemble(plan.event_class, {"originator_id": aggregate[0], "originator_version": version, **state})
        else:
            kwargs = {attr: record.fields.get(name) for attr, name in plan.attributes}
            event = plan.event_class(
                originator_id=aggregate[0],
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
            state = vars(event)
        stored = self.app.mapper.to_stored_event(event)
        return (aggregate[1], stored.originator_version, stored.topic, stored.state), state


_CREATING = frozenset(aggregates.CREATING_KINDS.values())
_CATALOGUE_KINDS = ("technology.listed", "technology.reclassified", "technology.delisted")
_JUDGED = frozenset(
    c.kind
    for c in competence.TABLE
    if (c.refuse or c.who in ("filing-authority", "regulator", "institution-or-regulator", "orderer"))
    and c.kind not in CORRECTION_KINDS
)
"""Kinds whose ``by`` core may refuse (``competence.refusal``); corrections are judged apart."""
_OWN = frozenset(
    c.kind for c in competence.TABLE if c.who in ("institution-own", "institution-or-regulator", "orderer")
)
"""Kinds an institution may decide for itself."""


def _corrected(target: DecisionRecord, changes: Mapping[str, Any]) -> DecisionRecord:
    """``target`` with a correction's (normalised) values in place: the decision as it will stand."""
    envelope = {k: changes[k] for k in ("effective", "by", "basis", "note") if k in changes}
    fields = dict(target.fields)
    for name, value in changes.items():
        if name in envelope or "." in name:
            continue
        if value is None:
            fields.pop(name, None)
        else:
            fields[name] = value
    return dataclasses.replace(target, **envelope, fields=fields)


def _national_timelines(
    records: Iterable[DecisionRecord],
) -> dict[str, list[tuple[date, str | None, str | None]]]:
    """Per national code, ``(effective, name listed, class)`` in valid-time order, with corrections
    applied and retracted decisions left out (the read side's replay, for the one question the
    import asks of the national catalogue: MTM-2009#9)."""
    originals: dict[str, DecisionRecord] = {}
    fixes: dict[str, list[Mapping[str, Any]]] = {}
    retracted: set[str] = set()
    for r in records:
        if r.kind == "decision.corrected":
            fixes.setdefault(r.fields["corrects"], []).append(r.fields["fields"])
        elif r.kind == "decision.retracted":
            retracted.add(r.fields["retracts"])
        elif r.kind in _CATALOGUE_KINDS:
            originals[r.id] = r
    out: dict[str, list[tuple[date, str | None, str | None]]] = {}
    for decision_id, original in originals.items():
        if decision_id in retracted:
            continue
        r = original
        for changes in fixes.get(decision_id, ()):
            r = _corrected(r, changes)
        cls = None if r.kind == "technology.delisted" else r.fields.get("class")
        out.setdefault(r.fields["code"], []).append((r.effective, r.fields.get("name"), cls))
    for timeline in out.values():
        timeline.sort(key=lambda t: t[0])
    return out


def _pending_row(staged: StagedRow) -> DecisionRow:
    """A staged index row as ``DecisionRow`` (position 0: not written yet)."""
    decision_id, originator, version, kind, subject, effective, digest, target, jurisdiction = staged
    return DecisionRow(
        decision_id, 0, UUID(hex=originator), version, kind, subject, effective, digest, target, jurisdiction
    )
