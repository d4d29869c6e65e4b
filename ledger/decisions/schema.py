"""The schema of decisions and the checked record: each kind's fields read off its event class
(``ledger.events``), and ``DecisionRecord``, a decision as its author wrote it, checked and normalised."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache, cached_property
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from ledger import canonical
from ledger import events as ev
from ledger.jurisdictions import NATIONAL

_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}\Z", re.ASCII)
_ID_RE = re.compile(r"[^\s\x00-\x1f\x7f\ud800-\udfff]{1,200}\Z")
# Control characters, and lone surrogates (a JSON escape like "\ud800" that pairs with nothing:
# not a character, and not writable as UTF-8).
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_HIDDEN_RE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]"
)
"""What an identifier (``id``, ``by``, codes, reference ids) may not hold: C0 and C1 controls,
zero-width characters, bidi controls and marks. Each makes a look-alike of a real id or body that
reads the same and compares different (it would import beside the real one, or dodge its key)."""
IDENTIFIER_FIELDS = frozenset(
    {
        "catalog",
        "code",
        "institution",
        "physician",
        "technical_lead",
        "technology",
        "case",
        "corrects",
        "retracts",
        "authority",
        "licensing_authority",
        "province",
        "city",
    }
)
"""Fields that name something (a subject, a decision, a body, a place) rather than describe it:
plain, as ``id`` and ``by`` are (``check_identifier``). Free texts (name, note, reason…) are kept exactly."""
MAX_DEPTH = 32
"""How deeply a value may nest lists and objects (a plugin's form nests two or three levels)."""
_EXTENSION_RE = re.compile(r"[a-z][a-z0-9_-]*\.[A-Za-z0-9_\-\u4e00-\u9fff]+\Z")

ENVELOPE = ("id", "kind", "effective", "by", "basis", "note", "signature")
"""Fields every decision has (DECISIONS.md, "Every decision"), in export order (note, then the
authority's signature, go last)."""
_SIGNATURE_RE = re.compile(r"[A-Za-z0-9+/]{86}==\Z")

REFERENCE_FIELDS: dict[str, str] = {
    "institution": "institution",
    "physician": "physician",
    "technical_lead": "physician",
    "technology": "technology",
}
"""Fields that name a subject the ledger must already know as of ``effective`` (DECISIONS.md); a
technology is known once listed, whatever the day, since it is used before a catalogue lists it."""

CREATES = {"institution.registered": "institution", "physician.registered": "physician"}
"""The field a creating decision introduces rather than refers to."""


def may_name_uncatalogued(kind: str, fields: Mapping[str, Any]) -> bool:
    """May this decision's ``technology`` be one no catalogue lists (yet)? An evaluation panel's
    may: EVAL-2026 evaluates technologies in clinical use, most of them in no catalogue
    (MTM-2018#12), and lists them nationally only if it concludes prohibit or restrict (#8). It
    names such a technology by the national ref it has or will have (``national:<code or name>``)."""
    technology = fields.get("technology")
    return (
        kind == "panel.concluded"
        and fields.get("panel") == "evaluation"
        and isinstance(technology, str)
        and technology.startswith(f"{NATIONAL}:")
    )


SUBJECT_FIELDS = frozenset(
    {"catalog", "code", "institution", "physician", "technology", "panel", "authority", "public_key"}
)
"""Fields a correction may not change: they decide which subject a decision is about. A decision
about the wrong subject is retracted and recorded anew, so each subject's history stays true."""


@dataclass(frozen=True)
class FieldSpec:
    """One field of a kind: its JSON name, attribute name, type, and whether it may be absent."""

    name: str
    attr: str
    type: Any
    required: bool


@dataclass(frozen=True)
class KindSpec:
    kind: str
    event_class: type[ev.Decision]
    fields: tuple[FieldSpec, ...]

    @cached_property
    def by_name(self) -> dict[str, FieldSpec]:
        return {f.name: f for f in self.fields}


@cache
def kind_specs() -> dict[str, KindSpec]:
    """The schema of every kind, derived from the event classes."""
    specs = {}
    for kind, cls in ev.EVENT_CLASSES.items():
        hints = typing.get_type_hints(cls, include_extras=True)
        fields = []
        for f in dataclasses.fields(cls):
            if f.name in ev.COMMON_FIELDS or f.name in ("originator_id", "originator_version", "timestamp"):
                continue
            annotation = hints[f.name]
            json_name = f.name
            if get_origin(annotation) is Annotated:
                json_name = next(m.name for m in annotation.__metadata__ if isinstance(m, ev.JsonName))
                annotation = get_args(annotation)[0]
            optional = _is_optional(annotation)
            fields.append(
                FieldSpec(
                    name=json_name,
                    attr=f.name,
                    type=_strip_optional(annotation) if optional else annotation,
                    required=not optional,
                )
            )
        specs[kind] = KindSpec(kind, cls, tuple(fields))
    return specs


def _is_optional(annotation: Any) -> bool:
    return get_origin(annotation) in (Union, types.UnionType) and type(None) in get_args(annotation)


def _strip_optional(annotation: Any) -> Any:
    args = [a for a in get_args(annotation) if a is not type(None)]
    return args[0]


@dataclass(frozen=True)
class DecisionRecord:
    """A decision as its author wrote it, checked and normalised; no ledger-assigned data.

    ``fields`` holds the kind's own fields by JSON name with Python values (``date``,
    ``Decimal``); optional fields that were absent or null are left out, so that export writes
    back exactly what was read. ``extensions`` holds plugin fields (``hunan.form``) verbatim.
    """

    id: str
    kind: str
    effective: date
    by: str
    basis: str | None
    note: str | None
    fields: Mapping[str, Any]
    extensions: Mapping[str, Any]
    signature: str | None = None
    """base64 Ed25519 signature of ``signing_bytes()`` by the ``by`` authority (ledger.authority)."""

    def to_json_dict(self) -> dict[str, Any]:
        """The decision in DECISIONS.md's form, keys in a stable, readable order."""
        out: dict[str, Any] = {"id": self.id, "kind": self.kind, "effective": self.effective, "by": self.by}
        if self.basis is not None:
            out["basis"] = self.basis
        for spec in kind_specs()[self.kind].fields:
            if spec.name in self.fields:
                out[spec.name] = self.fields[spec.name]
        out.update(sorted(self.extensions.items()))
        if self.note is not None:
            out["note"] = self.note
        if self.signature is not None:
            out["signature"] = self.signature
        return out

    def to_json(self) -> str:
        return canonical.dumps(self.to_json_dict())

    def signing_bytes(self) -> bytes:
        """What an authority signs: the key-sorted canonical form, without the signature."""
        return canonical.encode(self._unsigned(), sort_keys=True)

    def _unsigned(self) -> dict[str, Any]:
        """``to_json_dict()`` without the signature, for a key-sorted form: the same keys and values
        (assigned in the same sequence, so a key given twice keeps the same value), not in order;
        the date already as the text canonical JSON writes for it (the digest of every line)."""
        out: dict[str, Any] = {"id": self.id, "kind": self.kind, "effective": self.effective.isoformat(), "by": self.by}
        if self.basis is not None:
            out["basis"] = self.basis
        by_name = kind_specs()[self.kind].by_name
        for name, value in self.fields.items():
            if name in by_name:
                out[name] = value
        out.update(self.extensions)
        if self.note is not None:
            out["note"] = self.note
        return out

    def digest(self) -> bytes:
        """What "the same content" means for idempotent import: the SHA-256 of the canonical form
        without the signature (a decision re-imported unsigned is the same decision)."""
        return hashlib.sha256(self.signing_bytes()).digest()

    def references(self) -> Iterator[tuple[str, str, str]]:
        """``(field, reference kind, value)`` for each field naming a subject that must exist."""
        fields = self.fields
        names, by_code = reference_fields(self.kind)
        for name, ref_kind in names:
            value = fields.get(name)
            if value is not None:
                yield name, ref_kind, value
        if by_code:
            yield "code", "technology", f"{fields['catalog']}:{fields['code']}"


@cache
def reference_fields(kind: str) -> tuple[tuple[tuple[str, str], ...], bool]:
    """The fields of ``kind`` that may name a subject the ledger must know (``REFERENCE_FIELDS``
    less the one a creating decision introduces), as (field, reference kind); and whether its
    ``catalog`` and ``code`` name a listed technology (a reclassification or delisting).
    ``DecisionRecord.references`` in the form the import asks it, once per kind."""
    creates = CREATES.get(kind)
    names = tuple((name, ref_kind) for name, ref_kind in REFERENCE_FIELDS.items() if name != creates)
    return names, kind in ("technology.reclassified", "technology.delisted")


_ENVELOPE = frozenset(ENVELOPE)


_LITERALS: dict[int, tuple[Any, tuple[tuple[Any, ...], frozenset[type]] | None]] = {}


def _literal(annotation: Any) -> tuple[tuple[Any, ...], frozenset[type]] | None:
    """The choices of a ``Literal[...]`` annotation and their types (None for other annotations);
    worked out once per annotation object (kept by identity: hashing a ``Literal`` is slow), as
    parsing asks for every field of every line."""
    cached = _LITERALS.get(id(annotation))
    if cached is not None and cached[0] is annotation:
        return cached[1]
    found = None
    if get_origin(annotation) is Literal:
        choices = get_args(annotation)
        found = (choices, frozenset(type(c) for c in choices))
    _LITERALS[id(annotation)] = (annotation, found)  # holds the annotation: its id stays its own
    return found
