"""What a line is checked against besides itself: the ledger as of its effective date, and this
file's earlier lines. The authorities' keys, who may decide what (``ledger.competence``), the
subjects a decision names, and the decision a correction changes; ``ledger.importer`` reads the
lines, asks these checks in file order, then stages what passed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any, TypeAlias
from uuid import UUID

from ledger import aggregates, authority, competence
from ledger import events as ev
from ledger.competence import normal
from ledger.decisions import DecisionRecord, check_correction, may_name_uncatalogued, record_from_state
from ledger.errors import IncompetentDecision, MalformedDecision, UnknownDecision, UnknownReference, UnsignedDecision
from ledger.jurisdictions import NATIONAL
from ledger.storage import DecisionRow, StagedRow, WriteSession

if TYPE_CHECKING:
    from ledger.application import ImportResult, LedgerApplication

CORRECTION_KINDS = ("decision.corrected", "decision.retracted")
_UNKNOWN: Any = object()
"""A cache's answer for a key it was never asked."""


Reference: TypeAlias = tuple[str, str, str, tuple[str, str]]
"""A reference of a line to a subject the ledger must know: ``(field, ref_kind, value, key)``, where
``key`` is the subject ``value`` names and the kind of decision that creates that subject. Plain
tuples, as ``Pending`` below: an import makes them for every line, and reads them by unpacking."""

Pending: TypeAlias = tuple[StagedRow, Mapping[str, Any] | bytes]
"""A decision of the batch not yet written: ``(row, state)``, its index row and its event's state
(or stored state)."""


@dataclass
class LedgerChecks:
    """The checks of one file's lines against the ledger, with what they have learnt so far."""

    app: LedgerApplication
    session: WriteSession
    result: ImportResult
    pending: dict[str, Pending] = field(default_factory=dict)
    """This batch's decisions by id: their index rows and their events' states (or stored states)."""
    known: dict[tuple[str, str], date] = field(default_factory=dict)
    jurisdictions: dict[str, str | None] = field(default_factory=dict)
    authority_keys: dict[str, str | None] = field(default_factory=dict)
    stored_known: dict[tuple[str, str], date | None] = field(default_factory=dict)
    """What storage (this file's written batches included) answers to ``known_since``."""
    # This batch's answers from storage, read once before its lines are checked.
    stored_rows: dict[str, DecisionRow] = field(default_factory=dict)
    stored_jurisdictions: dict[str, str | None] = field(default_factory=dict)
    stored_keys: dict[str, DecisionRow] = field(default_factory=dict)
    national: dict[str, DecisionRecord] | None = None
    """The national catalogue's decisions (and their corrections) by id, as committed before this
    file, once a provincial listing asks whether the nation prohibits it (``prohibited_nationally``)."""
    file_national: dict[str, DecisionRecord] = field(default_factory=dict)
    """This file's decisions about the national catalogue (bounded by the catalogue's size)."""
    national_timelines: dict[str, list[tuple[date, str | None, str | None]]] | None = None
    """``_national_timelines`` of both, worked out when first asked after either changed."""
    asked_keys: set[str] = field(default_factory=set)
    """The authorities whose keys this batch's prefetch asked storage for (``stored_keys``)."""

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
        for (_, _, _, kind, row_subject, *_), made in self.pending.values():  # ``StagedRow``s
            if row_subject == subject and kind == "technology.listed":
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

    def _check_references(self, record: DecisionRecord, references: Sequence[Reference]) -> None:
        known, stored_known, effective = self.known, self.stored_known, record.effective
        for name, ref_kind, value, key in references:
            stored = stored_known.get(key, _UNKNOWN)
            # Known to storage in time, and not created anew in this batch: nothing more to see.
            if stored is _UNKNOWN or stored is None or stored > effective or key in known:
                self._check_known(record, name, ref_kind, value, key)

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
            if isinstance(state, bytes):  # as ``Importer.take`` stored it
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


_CATALOGUE_KINDS = ("technology.listed", "technology.reclassified", "technology.delisted")


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
