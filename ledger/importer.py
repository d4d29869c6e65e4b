"""Import: a decision file checked line by line against the ledger, then staged and written.

Check, then stage: each line is read and checked on its own as it comes (parsed, the plugins'
validators, digest), and what does not depend on the ledger is worked out then (``Line``: its
references' subjects, its own subject, aggregate id, jurisdiction, event state). When ``BATCH``
lines wait, the batch is checked against the ledger in file order — with one query per kind of
look-up for the whole batch (ids, references, versions, jurisdictions, authorities' keys), not one
per line — and its events and index rows are staged for storage as plain rows
(``WriteSession.append_staged``; SQLite writes them while the next batch is read). What a line
makes known (an id, a newly registered institution, a subject's next version) is kept here, so
that later lines see it exactly as they would once written: the refusals, their order and their
messages are those of checking each line in turn.
"""

from __future__ import annotations

import dataclasses
import gc
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cache
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, NoReturn
from uuid import UUID

from eventsourcing.utils import get_topic

from ledger import aggregates, authority, canonical, competence
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
    ConflictingDecision,
    DecisionError,
    IncompetentDecision,
    MalformedDecision,
    UnknownDecision,
    UnknownReference,
    UnsignedDecision,
)
from ledger.frozen import assemble
from ledger.internals import packer_for, plain_event_class, plain_validators
from ledger.jurisdictions import NATIONAL
from ledger.storage import DecisionRow, StagedEvent, StagedRow, WriteSession

if TYPE_CHECKING:
    from ledger.application import ImportResult, LedgerApplication

BATCH = 1000
"""Lines checked against the ledger together (one query per kind of look-up) and written together."""
CORRECTION_KINDS = ("decision.corrected", "decision.retracted")


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


class Reference(NamedTuple):
    """A reference of a line to a subject the ledger must know."""

    field: str
    ref_kind: str
    value: str
    key: tuple[str, str]
    """The subject ``value`` names, and the kind of decision that creates that subject."""


class Line(NamedTuple):
    """A line read and checked on its own, with what its check against the ledger needs worked
    out as it is read (``Importer._read``); None where the line alone does not say."""

    record: DecisionRecord
    digest: bytes
    lineno: int | None
    references: list[Reference]
    subject: str | None
    """Its subject key (None for a correction: its subject is its target's)."""
    aggregate: tuple[UUID, str] | None
    """That subject's aggregate id, and its 32 hex digits (as SQLite stores it)."""
    fixed: str | None
    """Its jurisdiction, where the line says it (``_jurisdiction_source``)..."""
    institution: str | None
    """...else the institution whose recorded jurisdiction it is."""
    state: bytes | None
    """Its event's stored state, where it could be made here."""


class Placed(NamedTuple):
    """Where a checked decision's event goes (``Importer._place``)."""

    subject: str
    aggregate: tuple[UUID, str]
    jurisdiction: str | None
    target: str | None
    """The decision a correction or retraction changes."""
    state: bytes | None


class Pending(NamedTuple):
    """A decision of the batch not yet written: its index row, and its event's state (or stored state)."""

    row: StagedRow
    state: Mapping[str, Any] | bytes


class KindCodec(NamedTuple):
    """How the import reads, judges and stores one kind of decision, compiled once (``kind_codec``)."""

    kind: str
    event_class: type[ev.Decision]
    topic: str
    plain: bool
    """``plain_event_class``: the event's state is built here, not by the class's ``__init__``."""
    attributes: tuple[tuple[str, str], ...]
    """The kind's own fields, in event order: (event attribute, JSON name)."""
    references: tuple[tuple[str, str, str, str], ...]
    """``reference_fields``, each with what its subject key puts before the value
    (``aggregates.reference_prefix``) and the kind of decision that creates that subject."""
    by_code: bool
    """Do its ``catalog`` and ``code`` name a listed technology?"""
    correction: bool
    creating: bool
    catalogue: bool
    judged: bool
    """May core refuse its ``by`` (``competence.refusal``)? Corrections are judged apart."""
    own: bool
    """May an institution decide it for itself?"""


@cache
def kind_codec(kind: str) -> KindCodec:
    spec = kind_specs()[kind]
    cls = spec.event_class
    names, by_code = reference_fields(kind)
    references = tuple(
        (name, ref_kind, aggregates.reference_prefix(ref_kind), aggregates.CREATING_KINDS[ref_kind])
        for name, ref_kind in names
    )
    return KindCodec(
        kind,
        cls,
        get_topic(cls),
        plain_event_class(cls),
        tuple((f.attr, f.name) for f in spec.fields),
        references,
        by_code,
        correction=kind in CORRECTION_KINDS,
        creating=kind in _CREATING,
        catalogue=kind in _CATALOGUE_KINDS,
        judged=kind in _JUDGED,
        own=kind in _OWN,
    )


MAX_LEAF_BYTES = 0xFFFF
"""The most a record's leaf bytes (``ledger.integrity.leaf_bytes``) may hold: an entry bundle of
the tiled log stores each leaf after a big-endian uint16 length."""


def _check_leaf_size(record: DecisionRecord, originator_id: UUID, event: StagedEvent) -> None:
    """Refuse a decision whose record would not fit an entry bundle, naming its largest field."""
    from ledger.integrity import leaf_bytes

    size = len(leaf_bytes(0, originator_id, event.version, event.topic, event.state))
    if size <= MAX_LEAF_BYTES:
        return
    values = record.to_json_dict()
    largest = max(values, key=lambda name: len(canonical.dumps(values[name]).encode("utf-8")))
    msg = (
        f"the decision's stored record is {size} bytes, more than the {MAX_LEAF_BYTES} a log entry holds; "
        f"its largest field is '{largest}': shorten it, or keep the text elsewhere and cite it"
    )
    raise MalformedDecision(msg, field=largest)


_UNKNOWN: Any = object()
"""A cache's answer for a key it was never asked."""

CACHE = 100_000
"""Entries each of the import's caches (versions, references, aggregate ids) holds before it is
emptied: bounded memory, whatever the size of the file or of the ledger."""


@dataclass
class Importer:
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
    waiting: list[Line] = field(default_factory=list)
    events: list[StagedEvent] = field(default_factory=list)
    rows: list[StagedRow] = field(default_factory=list)
    pending: dict[str, Pending] = field(default_factory=dict)
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
    """The plugins' ``ledger_validate_decision`` functions (``plain_validators``), once known."""
    pack: Callable[[Any], bytes] | None = None
    """The transcoder's encoding, where the mapper is eventsourcing's own (``packer_for``)."""

    def __post_init__(self) -> None:
        self.pack = packer_for(self.app.mapper)

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

    def _read(self, record: DecisionRecord, digest: bytes, lineno: int | None) -> Line:
        """What a line's check needs that does not depend on the ledger (``Line``). Whatever
        cannot be worked out here is left to the check, which then works it out, and refuses, in
        order."""
        codec = kind_codec(record.kind)
        f = record.fields
        references = [
            Reference(name, ref_kind, value, (f"{prefix}{value}", creating))
            for name, ref_kind, prefix, creating in codec.references
            if (value := f.get(name)) is not None
        ]
        if codec.by_code:
            value = f"{f['catalog']}:{f['code']}"
            key = (aggregates.reference_subject("technology", value), aggregates.CREATING_KINDS["technology"])
            references.append(Reference("code", "technology", value, key))
        if codec.correction:
            return Line(record, digest, lineno, references, None, None, None, None, None)
        try:
            subject = aggregates.subject_of(codec.kind, f)
            fixed, institution = _jurisdiction_source(codec.kind, f)
        except (KeyError, TypeError, AttributeError):  # refused in order when the line is checked
            return Line(record, digest, lineno, references, None, None, None, None, None)
        aggregate = self.aggregate_ids.get(subject)
        if aggregate is None:
            aggregate = self._aggregate_id(subject)
        state = None
        if self.pack is not None and codec.plain:
            try:
                state = self.pack(self._state(record, subject, codec))
            except Exception:  # then the check packs it, and fails, in order
                state = None
        return Line(record, digest, lineno, references, subject, aggregate, fixed, institution, state)

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
                    raise e.located(file=self.source, line=line.lineno) from None
        self._write()

    def _prefetch(self, batch: Sequence[Line]) -> None:
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

    def _check(self, line: Line) -> None:
        """Check one line against the ledger and this file's earlier lines, then stage its event."""
        record = line.record
        if self._recorded_already(record.id, line.digest):
            self.result.unchanged += 1
            return
        codec = kind_codec(record.kind)
        if codec.kind == "authority.key_registered":
            self._check_rekey(record)
        elif not codec.correction and self.authority_keys.get(normal(record.by), "") is not None:
            self._check_signature(record)  # (else no key: nothing to check)
        self._check_references(record, line.references)
        if codec.judged and (not codec.own or record.by != record.fields.get("institution")):
            self._check_competence(record)  # (an institution deciding for itself: nothing to judge)
        if codec.correction:
            record, placed = self._place_correction(record)
        else:
            placed = self._place(line)
        self._stage(record, line.digest, codec, placed)

    def _recorded_already(self, decision_id: str, digest: bytes) -> bool:
        """Is this decision recorded (or earlier in this file) with the same content? Refused
        where it is with other content: decisions are never rewritten."""
        waiting = self.pending.get(decision_id)
        if waiting is not None:  # earlier in this batch: not written yet, so at position 0
            existing_digest, position = waiting.row.digest, 0
        elif decision_id in self.stored_rows:
            existing = self.stored_rows[decision_id]
            existing_digest, position = existing.digest, existing.position
        else:
            return False
        if existing_digest == digest:
            return True
        msg = (
            f"decision {decision_id!r} is already recorded (position {position}) with "
            "different content; decisions are never rewritten: record a decision.corrected instead"
        )
        raise ConflictingDecision(msg, field="id")

    def _check_references(self, record: DecisionRecord, references: Sequence[Reference]) -> None:
        known, stored_known, effective = self.known, self.stored_known, record.effective
        for name, ref_kind, value, key in references:
            stored = stored_known.get(key, _UNKNOWN)
            # Known to storage in time, and not created anew in this batch: nothing more to see.
            if stored is _UNKNOWN or stored is None or stored > effective or key in known:
                self._check_known(record, name, ref_kind, value, key)

    def _place_correction(self, record: DecisionRecord) -> tuple[DecisionRecord, Placed]:
        """Where a correction or retraction goes: its target's subject (checked with its keys and competence)."""
        record, target, subject, jurisdiction, original = self._target(record)
        self._check_governing_keys(record, original.by)
        self._check_competence(record, original)
        return record, Placed(subject, self._aggregate_id(subject), jurisdiction, target, None)

    def _place(self, line: Line) -> Placed:
        """Where a decision goes: its subject and jurisdiction (worked out here where ``_read`` could not)."""
        record, kind = line.record, line.record.kind
        subject, aggregate, fixed, institution = line.subject, line.aggregate, line.fixed, line.institution
        if subject is None or aggregate is None:
            subject = aggregates.subject_of(kind, record.fields)
            aggregate = self._aggregate_id(subject)
            fixed, institution = _jurisdiction_source(kind, record.fields)
        if kind == "institution.registered":
            self.jurisdictions[subject] = record.fields["province"]
        jurisdiction = fixed if institution is None else self._jurisdiction(institution)
        return Placed(subject, aggregate, jurisdiction, None, line.state)

    def _next_version(self, subject: str, originator_id: UUID) -> int:
        version = self.versions.get(subject)
        if version is None:
            version = self.stored_versions.get(subject)
            if version is None:
                version = self.session.last_version(originator_id)
        self.versions[subject] = version + 1
        return version + 1

    def _stage(self, record: DecisionRecord, digest: bytes, codec: KindCodec, placed: Placed) -> None:
        """A checked decision's event and index row, staged for the batch's write; and what it makes known."""
        subject, aggregate = placed.subject, placed.aggregate
        version = self._next_version(subject, aggregate[0])
        made: Mapping[str, Any] | bytes
        if placed.state is None:
            event, made = self._event(record, subject, aggregate, version)
        else:
            event, made = StagedEvent(aggregate[1], version, codec.topic, placed.state), placed.state
        _check_leaf_size(record, aggregate[0], event)
        row = StagedRow(
            record.id, aggregate[1], version, codec.kind, subject, record.effective, digest, placed.target,
            placed.jurisdiction,
        )  # fmt: skip
        self.events.append(event)
        self.rows.append(row)
        self.pending[record.id] = Pending(row, made)
        if row.jurisdiction == NATIONAL and (codec.catalogue or row.target is not None):
            self.file_national[record.id] = record
            self.national_timelines = None
        if codec.kind == "authority.key_registered":
            self.authority_keys[record.fields["authority"]] = record.fields["public_key"]
        if codec.creating:
            key = (subject, codec.kind)
            self.known[key] = min(self.known.get(key, row.effective), row.effective)

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
            validators = self.validators = plain_validators(self.app.plugins)
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
            if row.subject == subject and row.kind == "technology.listed":
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
        row = _pending_row(waiting.row) if waiting is not None else self.stored_rows.get(target_id)
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
            state = waiting.state
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

    def _state(self, record: DecisionRecord, subject: str, codec: KindCodec) -> dict[str, Any]:
        """The state of a plain event class's event (``plain_event_class``): what its dataclass's
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
        for attr, name in codec.attributes:
            state[attr] = get(name)
        return state

    def _event(
        self, record: DecisionRecord, subject: str, aggregate: tuple[UUID, str], version: int
    ) -> tuple[StagedEvent, Mapping[str, Any]]:
        """The stored form of a checked line's event, and its state (which ``record_from_state``
        reads back), where ``_read`` did not make them: a correction's, or where the mapper is not
        eventsourcing's own or the event class not plain."""
        codec = kind_codec(record.kind)
        if codec.plain:
            state = self._state(record, subject, codec)
            if self.pack is not None:
                return StagedEvent(aggregate[1], version, codec.topic, self.pack(state)), state
            # eventsourcing's mapper builds the events it reads back the same way.
            event = assemble(codec.event_class, {"originator_id": aggregate[0], "originator_version": version, **state})
        else:
            kwargs = {attr: record.fields.get(name) for attr, name in codec.attributes}
            event = codec.event_class(
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
        return StagedEvent(aggregate[1], stored.originator_version, stored.topic, stored.state), state


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
