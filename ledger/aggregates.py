"""The subjects decisions are about: small aggregates keyed by natural ids.

Every decision lands on exactly one aggregate, the thing it is about, so that the history of a
catalogue entry, an institution, an institution's use of a technology, a physician, a training
base or a panel can be read on its own (``ledger log --subject``). An aggregate's id is a UUIDv5
of its natural key (``institution:PDY0001``), so any writer, in any process, on any database, finds
the same aggregate for the same subject without a lookup table; eventsourcing's unique
``(originator_id, originator_version)`` then makes two writers to one subject conflict instead of
interleaving silently.

The aggregates fold their events into the little state that the *write side* needs (does this
subject exist, since when, what it is called). Everything an inspector reads is built by the
projections, not here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from hashlib import sha1
from typing import Any
from uuid import UUID

from ledger import events as ev

NAMESPACE = UUID("6f1c7d2e-3b4a-5c6d-8e9f-0a1b2c3d4e5f")
"""Namespace of the aggregates' UUIDv5 ids. Part of the stored format: never change it."""
_NAMESPACE_BYTES = NAMESPACE.bytes


def aggregate_id(subject: str) -> UUID:
    """The aggregate id of a subject key; the same in every process and on every database.

    ``uuid5(NAMESPACE, subject)``, computed as ``uuid.uuid5`` computes it (RFC 4122 §4.3: the
    SHA-1 of the namespace's bytes then the name's UTF-8, its first 16 bytes, version 5) without
    the ``import`` statement it runs on every call (an import makes one per new subject)."""
    return UUID(bytes=sha1(_NAMESPACE_BYTES + subject.encode()).digest()[:16], version=5)


def technology_subject(ref: str) -> str:
    """Subject key of a catalogue entry from a technology reference ``<catalog>:<code>``."""
    return f"technology:{ref}"


def subject_of(kind: str, fields: Mapping[str, Any]) -> str:
    """The natural key of the aggregate a decision of ``kind`` with ``fields`` is about.

    Corrections and retractions are not covered: they land on the subject of the decision they
    change, which only the ledger knows (``LedgerApplication`` looks it up).
    """
    return _subject_rule(kind)(fields)


@cache
def _subject_rule(kind: str) -> Callable[[Mapping[str, Any]], str]:
    """``subject_of``'s rule for one kind, chosen once per kind (an import asks for every line)."""
    if kind.startswith("technology."):
        return _catalogue_entry
    if kind in ("institution.registered", "inspection.recorded", "penalty.imposed", "grading_catalogue.published"):
        return _institution
    if kind == "correction.ordered":
        return _correction_order
    if kind.startswith(("physician.", "privilege.")) or kind == "trainee.certified":
        return _physician
    if kind.startswith(("review.", "case.", "filing.", "use.")) or kind == "self_assessment.concluded":
        return _use
    if kind.startswith("training_base."):
        return _training_base
    if kind == "authority.key_registered":
        return _authority
    if kind == "panel.concluded":
        return _panel
    msg = f"no subject rule for kind {kind!r}"
    raise KeyError(msg)


def _catalogue_entry(fields: Mapping[str, Any]) -> str:
    return technology_subject(f"{fields['catalog']}:{fields['code']}")


def _institution(fields: Mapping[str, Any]) -> str:
    return f"institution:{fields['institution']}"


def _correction_order(fields: Mapping[str, Any]) -> str:
    if fields.get("technology"):
        return use_subject(fields["institution"], fields["technology"])
    return f"institution:{fields['institution']}"


def _physician(fields: Mapping[str, Any]) -> str:
    return f"physician:{fields['physician']}"


def _use(fields: Mapping[str, Any]) -> str:
    return use_subject(fields["institution"], fields["technology"])


def _training_base(fields: Mapping[str, Any]) -> str:
    return f"training_base:{fields['institution']}|{fields['technology']}"


def _authority(fields: Mapping[str, Any]) -> str:
    return f"authority:{fields['authority']}"


def _panel(fields: Mapping[str, Any]) -> str:
    return f"panel:{fields['panel']}|{fields['technology']}|{fields.get('institution') or ''}"


def use_subject(institution: str, technology: str) -> str:
    """Subject key of one institution's use of one technology (filings, cases, suspensions)."""
    return f"use:{institution}|{technology}"


CREATING_KINDS: dict[str, str] = {
    "institution": "institution.registered",
    "physician": "physician.registered",
    "technology": "technology.listed",
}
"""For each kind of reference, the decision that makes its subject known (DECISIONS.md, Refused)."""


def reference_subject(reference_kind: str, value: str) -> str:
    """Subject key that a field referring to an institution, physician or technology names."""
    return f"{reference_prefix(reference_kind)}{value}"


def reference_prefix(reference_kind: str) -> str:
    """What a reference's subject key puts before its value (``technology_subject`` for a
    technology, ``<kind>:`` otherwise)."""
    return "technology:" if reference_kind == "technology" else f"{reference_kind}:"


@dataclass
class Subject:
    """A subject's write-side state, folded from its decisions in version order."""

    key: str
    version: int = 0
    known_from: date | None = None
    name: str | None = None
    decisions: list[str] = field(default_factory=list)

    def apply(self, event: ev.Decision) -> None:
        self.version = event.originator_version
        self.decisions.append(event.decision_id)
        if event.kind in CREATING_KINDS.values() and (self.known_from is None or event.effective < self.known_from):
            self.known_from = event.effective
            self.name = getattr(event, "name", None)

    @classmethod
    def fold(cls, key: str, history: Iterable[ev.Decision]) -> Subject:
        subject = cls(key)
        for event in history:
            subject.apply(event)
        return subject
