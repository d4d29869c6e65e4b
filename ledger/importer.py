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

import gc
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, NoReturn, TypeAlias
from uuid import UUID

from eventsourcing.utils import get_topic

from ledger import aggregates, canonical, competence
from ledger import events as ev
from ledger.competence import normal
from ledger.decisions import (
    DecisionRecord,
    kind_specs,
    parse_line_digest,
    reference_fields,
)
from ledger.errors import (
    ConflictingDecision,
    DecisionError,
    MalformedDecision,
)
from ledger.frozen import assemble
from ledger.importchecks import _CATALOGUE_KINDS, CORRECTION_KINDS, LedgerChecks, Reference, _pending_row
from ledger.internals import packer_for, plain_event_class, plain_validators
from ledger.jurisdictions import NATIONAL
from ledger.storage import StagedEvent, StagedRow

if TYPE_CHECKING:
    pass

BATCH = 1000
"""Lines checked against the ledger together (one query per kind of look-up) and written together."""


@contextmanager
def no_cycle_collection() -> Iterator[None]:
    """Python's cyclic garbage collector paused while a file is imported or a trail judged, then as
    it was: both make many small objects without cycles, which the collector would rescan for nothing."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def jurisdiction_source(kind: str, f: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The catalogue, or the province of the institution, a decision belongs to, as far as the
    decision itself says: (its jurisdiction, None), or (None, the subject key of the institution
    whose recorded jurisdiction it is: ``LedgerChecks._jurisdiction`` looks it up)."""
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
    leaf_room: int
    """The most state bytes an event of the kind may hold, its topic beside it, for its record to
    fit an entry bundle of the tiled log (``MAX_LEAF_BYTES``; ``ledger.integrity.leaf_bytes``)."""


@cache
def kind_codec(kind: str) -> KindCodec:
    spec = kind_specs()[kind]
    cls = spec.event_class
    topic = get_topic(cls)
    names, by_code = reference_fields(kind)
    references = tuple(
        (name, ref_kind, aggregates.reference_prefix(ref_kind), aggregates.CREATING_KINDS[ref_kind])
        for name, ref_kind in names
    )
    return KindCodec(
        kind,
        cls,
        topic,
        plain_event_class(cls),
        tuple((f.attr, f.name) for f in spec.fields),
        references,
        by_code,
        correction=kind in CORRECTION_KINDS,
        creating=kind in _CREATING,
        catalogue=kind in _CATALOGUE_KINDS,
        judged=kind in _JUDGED,
        own=kind in _OWN,
        leaf_room=MAX_LEAF_BYTES - _leaf_overhead(topic),
    )


Line: TypeAlias = tuple[
    DecisionRecord,
    bytes,
    int | None,
    KindCodec,
    str,
    list[Reference],
    str | None,
    tuple[UUID, str] | None,
    str | None,
    str | None,
    bytes | None,
]
"""A line read and checked on its own, with what its check against the ledger needs worked out as it
is read (``Importer.take``); None where the line alone does not say. In order:

``record``, ``digest``, ``lineno``, ``codec`` (its kind's ``kind_codec``), ``by`` (its ``by`` as
compared: ``competence.normal``), ``references`` (``Reference``), ``subject`` (its subject key; None
for a correction: its subject is its target's), ``aggregate`` (that subject's aggregate id, and its
32 hex digits, as SQLite stores it), ``fixed`` (its jurisdiction, where the line says it:
``jurisdiction_source``), ``institution`` (else the institution whose recorded jurisdiction it
is), ``state`` (its event's stored state, where it could be made here).

A plain tuple, unpacked by its readers, as ``Placed`` below: one is made for every line."""

Placed: TypeAlias = tuple[str, tuple[UUID, str], str | None, str | None, bytes | None]
"""Where a checked decision's event goes (``Importer._place``): ``(subject, aggregate, jurisdiction,
target, state)`` — ``target`` the decision a correction or retraction changes, ``state`` the
event's stored state where ``take`` made it."""


MAX_LEAF_BYTES = 0xFFFF
"""The most a record's leaf bytes (``ledger.integrity.leaf_bytes``) may hold: an entry bundle of
the tiled log stores each leaf after a big-endian uint16 length."""


def _check_leaf_size(record: DecisionRecord, originator_id: UUID, event: StagedEvent) -> None:
    """Refuse a decision whose record would not fit an entry bundle, naming its largest field. Asked
    only of an event whose state is over its kind's ``leaf_room``."""
    from ledger.integrity import leaf_bytes

    _, version, topic, state = event
    size = len(leaf_bytes(0, originator_id, version, topic, state))
    if size <= MAX_LEAF_BYTES:
        return
    values = record.to_json_dict()
    largest = max(values, key=lambda name: len(canonical.dumps(values[name]).encode("utf-8")))
    msg = (
        f"the decision's stored record is {size} bytes, more than the {MAX_LEAF_BYTES} a log entry holds; "
        f"its largest field is '{largest}': shorten it, or keep the text elsewhere and cite it"
    )
    raise MalformedDecision(msg, field=largest)


def _leaf_overhead(topic: str) -> int:
    """The bytes ``ledger.integrity.leaf_bytes`` adds to a record's state, with ``topic``: its
    fields have fixed widths, so they are as many for every record of that topic."""
    from ledger.integrity import leaf_bytes

    return len(leaf_bytes(0, UUID(int=0), 0, topic, b""))


CACHE = 100_000
"""Entries each of the import's caches (versions, references, aggregate ids) holds before it is
emptied: bounded memory, whatever the size of the file or of the ledger."""


@dataclass
class Importer(LedgerChecks):
    """Reads, checks and stages the decisions of one file inside one open write transaction (the
    module's docstring says how); a line's own refusal waits until every earlier line is checked."""

    source: str | None = None
    recorded_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    waiting: list[Line] = field(default_factory=list)
    events: list[StagedEvent] = field(default_factory=list)
    rows: list[StagedRow] = field(default_factory=list)
    versions: dict[str, int] = field(default_factory=dict)
    """Each subject's last version, by subject key: this file's, and storage's as each batch's
    prefetch found them."""
    aggregate_ids: dict[str, tuple[UUID, str]] = field(default_factory=dict)
    """Subject key -> its aggregate id, and that id's 32 hex digits (as SQLite stores it)."""
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

    def add(self, record: DecisionRecord, lineno: int | None = None) -> None:
        try:
            self._validate_with_plugins(record)
            digest = record.digest()
        except DecisionError as e:
            self._refuse(e, lineno)
        self.take(record, digest, lineno)

    def take(self, record: DecisionRecord, digest: bytes, lineno: int | None) -> None:
        """A line read and checked on its own: what its check needs that does not depend on the
        ledger worked out (``Line``), then it waits for its batch's check against the ledger.
        Whatever cannot be worked out here is left to the check, which then works it out, and
        refuses, in order."""
        codec = kind_codec(record.kind)
        f = record.fields
        references: list[Reference] = [
            (name, ref_kind, value, (f"{prefix}{value}", creating))
            for name, ref_kind, prefix, creating in codec.references
            if (value := f.get(name)) is not None
        ]
        if codec.by_code:
            value = f"{f['catalog']}:{f['code']}"
            key = (aggregates.reference_subject("technology", value), aggregates.CREATING_KINDS["technology"])
            references.append(("code", "technology", value, key))
        subject = aggregate = fixed = institution = state = None
        if not codec.correction:
            try:
                subject = aggregates.subject_of(codec.kind, f)
                fixed, institution = jurisdiction_source(codec.kind, f)
            except (KeyError, TypeError, AttributeError):  # refused in order when the line is checked
                subject = fixed = institution = None
            else:
                aggregate = self.aggregate_ids.get(subject)
                if aggregate is None:
                    aggregate = self._aggregate_id(subject)
                if self.pack is not None and codec.plain:
                    try:
                        state = self.pack(self._state(record, subject, codec))
                    except Exception:  # then the check packs it, and fails, in order
                        state = None
        by = normal(record.by)
        waiting = self.waiting
        waiting.append((record, digest, lineno, codec, by, references, subject, aggregate, fixed, institution, state))
        if len(waiting) >= BATCH:
            self.flush()

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
                    raise e.located(file=self.source, line=line[2]) from None  # its ``lineno``
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
        for record, _, _, codec, by, references, subject, aggregate, _, institution, _ in batch:
            ids.add(record.id)
            if by not in authority_keys:
                authorities.add(f"authority:{by}")
            if codec.correction:
                f = record.fields
                target = f.get("corrects") if codec.kind == "decision.corrected" else f.get("retracts")
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
        found_versions = s.last_versions(subjects) if subjects else {}
        versions.update({subjects[oid]: version for oid, version in found_versions.items()})
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
        record, digest, _, codec, by, references, _, _, _, _, _ = line
        if self._recorded_already(record.id, digest):
            self.result.unchanged += 1
            return
        if codec.kind == "authority.key_registered":
            self._check_rekey(record)
        elif not codec.correction and self.authority_keys.get(by, "") is not None:
            self._check_signature(record)  # (else no key: nothing to check)
        self._check_references(record, references)
        if codec.judged and (not codec.own or record.by != record.fields.get("institution")):
            self._check_competence(record)  # (an institution deciding for itself: nothing to judge)
        if codec.correction:
            record, placed = self._place_correction(record)
        else:
            placed = self._place(line)
        self._stage(record, digest, codec, placed)

    def _recorded_already(self, decision_id: str, digest: bytes) -> bool:
        """Is this decision recorded (or earlier in this file) with the same content? Refused
        where it is with other content: decisions are never rewritten."""
        waiting = self.pending.get(decision_id)  # earlier in this batch: not written yet, so at position 0
        existing = _pending_row(waiting[0]) if waiting is not None else self.stored_rows.get(decision_id)
        if existing is None:
            return False
        if existing.digest == digest:
            return True
        msg = (
            f"decision {decision_id!r} is already recorded (position {existing.position}) with "
            "different content; decisions are never rewritten: record a decision.corrected instead"
        )
        raise ConflictingDecision(msg, field="id")

    def _place_correction(self, record: DecisionRecord) -> tuple[DecisionRecord, Placed]:
        """Where a correction or retraction goes: its target's subject (checked with its keys and competence)."""
        record, target, subject, jurisdiction, original = self._target(record)
        self._check_governing_keys(record, original.by)
        self._check_competence(record, original)
        return record, (subject, self._aggregate_id(subject), jurisdiction, target, None)

    def _place(self, line: Line) -> Placed:
        """Where a decision goes: its subject and jurisdiction (worked out here where ``take`` could not)."""
        record, _, _, codec, _, _, subject, aggregate, fixed, institution, state = line
        kind = codec.kind
        if subject is None or aggregate is None:
            subject = aggregates.subject_of(kind, record.fields)
            aggregate = self._aggregate_id(subject)
            fixed, institution = jurisdiction_source(kind, record.fields)
        if kind == "institution.registered":
            self.jurisdictions[subject] = record.fields["province"]
        jurisdiction = fixed if institution is None else self._jurisdiction(institution)
        return subject, aggregate, jurisdiction, None, state

    def _stage(self, record: DecisionRecord, digest: bytes, codec: KindCodec, placed: Placed) -> None:
        """A checked decision's event and index row, staged for the batch's write; and what it makes known."""
        subject, aggregate, jurisdiction, target, state = placed
        versions = self.versions
        version = versions.get(subject)
        if version is None:  # a subject the batch's prefetch did not ask about (worked out at the check)
            version = self.session.last_version(aggregate[0])
        version = versions[subject] = version + 1
        made: Mapping[str, Any] | bytes
        if state is None:
            event, made = self._event(record, codec, subject, aggregate, version)
        else:
            event, made = (aggregate[1], version, codec.topic, state), state
        # Only a record that might not fit is measured (``leaf_room`` is for its kind's topic: an
        # event a mapper stored under another topic is measured too).
        if len(event[3]) > codec.leaf_room or event[2] != codec.topic:
            _check_leaf_size(record, aggregate[0], event)
        effective = record.effective
        row = (record.id, aggregate[1], version, codec.kind, subject, effective, digest, target, jurisdiction)
        self.events.append(event)
        self.rows.append(row)
        self.pending[record.id] = (row, made)
        if jurisdiction == NATIONAL and (codec.catalogue or target is not None):
            self.file_national[record.id] = record
            self.national_timelines = None
        if codec.kind == "authority.key_registered":
            self.authority_keys[record.fields["authority"]] = record.fields["public_key"]
        if codec.creating:
            key = (subject, codec.kind)
            self.known[key] = min(self.known.get(key, effective), effective)

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
            results = [v(record) for v in validators]
            if not any(results):
                return
        problems = [problem for contributed in results if contributed for problem in contributed]
        if problems:
            name, message = sorted(problems)[0]
            raise MalformedDecision(message, field=name)

    def _state(self, record: DecisionRecord, subject: str, codec: KindCodec) -> dict[str, Any]:
        """The state of a plain event class's event (``plain_event_class``): what its dataclass's
        ``__init__`` builds — the same ``__dict__``, in field order, so the same stored bytes —
        without its per-field ``object.__setattr__`` (``ledger.frozen``), less the two fields the
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
        self, record: DecisionRecord, codec: KindCodec, subject: str, aggregate: tuple[UUID, str], version: int
    ) -> tuple[StagedEvent, Mapping[str, Any]]:
        """The stored form of a checked line's event, and its state (which ``record_from_state``
        reads back), where ``_read`` did not make them: a correction's, or where the mapper is not
        eventsourcing's own or the event class not plain."""
        if codec.plain:
            state = self._state(record, subject, codec)
            if self.pack is not None:
                return (aggregate[1], version, codec.topic, self.pack(state)), state
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
        return (aggregate[1], stored.originator_version, stored.topic, stored.state), state


_CREATING = frozenset(aggregates.CREATING_KINDS.values())
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
