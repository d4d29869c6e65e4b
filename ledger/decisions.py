"""Decision files (DECISIONS.md): parse one line into a checked ``DecisionRecord``, and back.

The schema of each kind is read off its event class in ``ledger.events`` (field names, types,
``Literal`` enumerations, ``| None`` for optional fields), so the vocabulary is written down once.
This module checks everything a single line can show on its own; what needs the ledger (does the
institution exist as of ``effective``? is this id already recorded?) is checked by
``ledger.application`` against storage, in the same pass, before anything is written.

Every refusal is a ``DecisionError`` naming the field; the caller adds file and line.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import types
import typing
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cache, cached_property
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import msgspec

from ledger import canonical
from ledger import events as ev
from ledger.errors import DecisionError, InvalidPanel, MalformedDecision, UnknownKind
from ledger.frozen import assemble
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


def record_from_state(kind: str, state: Mapping[str, Any]) -> DecisionRecord:
    """The decision a stored event's state holds, in DECISIONS.md's terms (the inverse of
    recording it). Takes the state mapping, so the offline proof verifier needs no database.

    A rebuild makes one per record of the log, so the kind's fields are looked up once
    (``_state_fields``) and the record is assembled without ``__init__`` (``ledger.frozen``)."""
    get = state.get
    fields = {}
    for name, attr, required in _state_fields(kind):
        value = get(attr)
        if value is not None or required:
            fields[name] = value
    return assemble(
        DecisionRecord,
        {
            "id": state["decision_id"],
            "kind": kind,
            "effective": state["effective"],
            "by": state["by"],
            "basis": state["basis"],
            "note": state["note"],
            "fields": fields,
            "extensions": dict(state["extensions"]),
            "signature": get("signature"),
        },
    )


@cache
def _state_fields(kind: str) -> tuple[tuple[str, str, bool], ...]:
    """A kind's fields as (JSON name, event attribute, required)."""
    return tuple((f.name, f.attr, f.required) for f in kind_specs()[kind].fields)


def parse_line(text: str | bytes) -> DecisionRecord:
    """Parse one line of a decision file. Raises ``DecisionError`` naming the field."""
    found = _fast_parse(text)
    if found is not None:
        return found[0]
    return _parse_line(text)


def parse_line_digest(text: str | bytes) -> tuple[DecisionRecord, bytes | None]:
    """``parse_line(text)``, with the record's ``digest()`` where it comes cheaper from the line's
    own values (None where it does not: then ask the record).

    A line the fast path accepts holds, once its signature and nulls are left out, the keys and
    values of ``DecisionRecord._unsigned`` as JSON gives them: its dates the very text
    ``isoformat`` writes (``YYYY-MM-DD``, checked), its numbers the same digits (``canonical``
    writes a Decimal's digits, an int's in full), every other value as it is. So the SHA-256 of
    its canonical form is the record's digest, without building that dict again (an import
    digests every line; tests/ledger/test_fast_parse.py compares the two)."""
    found = _fast_parse(text)
    if found is None:
        return _parse_line(text), None
    record, obj = found
    if "signature" in obj or None in obj.values():
        return record, None
    return record, canonical.digest(obj)


def _parse_line(text: str | bytes) -> DecisionRecord:
    """``parse_line`` without its fast path: every refusal is made here."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            msg = f"not valid UTF-8 (byte {e.start}: {e.reason})"
            raise MalformedDecision(msg) from None
    text = text.removeprefix("\ufeff")
    try:
        if text.startswith("\ufeff"):  # as json.loads says it (its decoder is made once, below)
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        obj = _decoder().decode(text)
    except RecursionError:
        msg = "malformed JSON: nested too deeply"
        raise MalformedDecision(msg) from None
    except ValueError as e:
        if isinstance(e, MalformedDecision):
            raise
        msg = f"malformed JSON: {e}"
        raise MalformedDecision(msg) from None
    if not isinstance(obj, dict):
        msg = f"a decision is a JSON object, not {_json_type(obj)}"
        raise MalformedDecision(msg)
    return from_json_dict(obj)


@cache
def _decoder() -> json.JSONDecoder:
    """What ``json.loads(text, parse_float=…, parse_constant=…, object_pairs_hook=…)`` makes anew
    on every call (≈2 µs a line), made once."""
    return json.JSONDecoder(parse_float=Decimal, parse_constant=_refuse_constant, object_pairs_hook=_unique_keys)


# --- the fast path of ``parse_line`` ---------------------------------------------------------
#
# ``parse_line`` is most of an import's time (issue 8). A line is first read by a faster decoder
# and checked by a per-kind checker that only *accepts*: on anything it does not accept (bad JSON,
# a bad value, an unknown field, a duplicate key, an escape sequence) it gives up and the line goes
# through the slow path above, which gives the refusal with its exact message. So a refusal is
# always the slow path's own, and an accepted line is the record the slow path builds
# (tests/ledger/test_fast_parse.py checks both on generated and mutated lines).
#
# Duplicate keys (DECISIONS.md refuses them) without an ``object_pairs_hook``: a line with no
# backslash has no escapes, so each ``"`` in it opens or closes a string, and the decoded value
# holds one ``str`` (key or value) per string of the text unless a repeated key overwrote a pair.
# Counting both tells the two apart.


def _make_fast_decoder() -> Callable[[str | bytes], Any]:
    # msgspec reads UTF-8 and refuses what ``json`` refuses (and NaN, which ``json`` reads and the
    # slow path refuses); numbers with a fraction or exponent become Decimal from their own digits.
    decoder = msgspec.json.Decoder(float_hook=Decimal)
    return decoder.decode


_STR, _DATE, _INT, _DECIMAL, _LITERAL, _OTHER = range(6)


@dataclass(frozen=True)
class _FastField:
    required: bool
    code: int
    type: Any
    choices: tuple[Any, ...] = ()
    choice_types: frozenset[type] = frozenset()


@dataclass(frozen=True)
class _FastKind:
    fields: dict[str, _FastField]
    texts: frozenset[str]
    """The fields whose type is ``str`` (most of them)."""
    required: tuple[str, ...]
    rules: bool
    """Does the kind have rules of ``_check_kind_rules`` beyond its ``technology`` reference?"""


@cache
def _fast_kinds() -> dict[str, _FastKind]:
    out = {}
    for kind, spec in kind_specs().items():
        fields = {}
        for f in spec.fields:
            literal = _literal(f.type)
            if f.type is str:
                fast = _FastField(f.required, _STR, f.type)
            elif f.type is date:
                fast = _FastField(f.required, _DATE, f.type)
            elif f.type is int:
                fast = _FastField(f.required, _INT, f.type)
            elif f.type is Decimal:
                fast = _FastField(f.required, _DECIMAL, f.type)
            elif literal is not None:
                fast = _FastField(f.required, _LITERAL, f.type, *literal)
            else:
                fast = _FastField(f.required, _OTHER, f.type)
            fields[f.name] = fast
        required = tuple(f.name for f in spec.fields if f.required)
        rules = kind in ("panel.concluded", "authority.key_registered", "decision.corrected")
        texts = frozenset(name for name, f in fields.items() if f.code == _STR)
        out[kind] = _FastKind(fields, texts, required, rules)
    return out


def _fast_parse(text: str | bytes) -> tuple[DecisionRecord, dict[str, Any]] | None:
    """The record ``parse_line`` gives for ``text`` and the JSON object it was read from (not
    changed), or None to leave the line to the slow path."""
    if isinstance(text, bytes):
        # ``find``, not ``in``: ``bytes.__contains__`` first tries its argument as an int, and
        # makes and clears a TypeError every time.
        if text.find(b"\\") >= 0 or text.startswith(b"\xef\xbb\xbf"):
            return None
        quotes = text.count(b'"')
        # JSON refuses raw control characters in strings, UTF-8 has no surrogates, and without a
        # backslash there are no escapes: so ``_CONTROL_RE`` can match in a string only at DEL.
        clean = text.find(b"\x7f") < 0
    else:
        if "\\" in text or text.startswith("\ufeff"):
            return None
        quotes = text.count('"')
        clean = False
    try:
        obj = _fast_decode(text)
    except Exception:  # whatever it is, the slow path says it
        return None
    if type(obj) is not dict:
        return None
    found = _fast_record(obj, clean=clean)
    if found is None or 2 * found[1] != quotes:
        return None
    return found[0], obj


def _plain(value: str) -> bool:
    """No character ``check_identifier`` refuses inside ``value`` (ASCII holds none but controls,
    which the fast path's own checks leave to the slow path)."""
    return value.isascii() or _HIDDEN_RE.search(value) is None


_PLAIN_BY: dict[str, bool] = {}
"""``by`` values that ``check_identifier`` accepts, remembered: a file names few bodies, on every line."""


def _plain_by(by: str) -> bool:
    """Would ``check_identifier`` accept ``by`` (of a line the fast path reads)?"""
    plain = _plain(by) and not by[0].isspace() and not by[-1].isspace()
    if plain:
        if len(_PLAIN_BY) > 10_000:
            _PLAIN_BY.clear()
        _PLAIN_BY[by] = True
    return plain


def _text(value: Any) -> bool:
    """What ``_string`` accepts (``isspace`` and ``strip`` know the same white space)."""
    return type(value) is str and value != "" and not value.isspace() and _CONTROL_RE.search(value) is None


def _clean_text(value: Any) -> bool:
    """``_text`` of a value that holds no character ``_CONTROL_RE`` finds."""
    return type(value) is str and value != "" and not value.isspace()


_DAYS: dict[str, date] = {}
"""Effective dates already read, by their text (``YYYY-MM-DD``, checked): a file names a few
thousand distinct days, and ``date.fromisoformat`` behind the pattern costs more than a look-up."""


def _fast_record(obj: dict[str, Any], *, clean: bool = False) -> tuple[DecisionRecord, int] | None:
    """``from_json_dict(obj)`` and the number of strings ``obj`` holds (keys included), or None
    wherever ``from_json_dict`` might refuse. ``clean``: no string of ``obj`` can hold a control
    character or a surrogate (``_fast_parse``)."""
    text = _clean_text if clean else _text
    get = obj.get
    decision_id = get("id")
    if (
        type(decision_id) is not str
        or not _ID_RE.match(decision_id)
        or not (decision_id.isascii() or _plain(decision_id))
    ):
        return None
    kind = get("kind")
    if type(kind) is not str:
        return None
    fast = _fast_kinds().get(kind)
    effective = get("effective")
    if fast is None:
        return None
    day = _DAYS.get(effective) if type(effective) is str else None
    if day is None:
        if type(effective) is not str or not _DATE_RE.match(effective):
            return None
        try:
            day = date.fromisoformat(effective)
        except ValueError:
            return None
        if len(_DAYS) > 100_000:  # a few thousand distinct days in practice
            _DAYS.clear()
        _DAYS[effective] = day
    by: Any = get("by")
    basis = get("basis")
    note = get("note")
    signature = get("signature")
    if (
        not text(by)
        or (not _PLAIN_BY.get(by, False) and not _plain_by(by))
        or (basis is not None and not text(basis))
        or (note is not None and note != "" and not text(note))
        or (signature is not None and (type(signature) is not str or not _SIGNATURE_RE.match(signature)))
    ):
        return None
    strings = len(obj)
    fields: dict[str, Any] = {}
    extensions: dict[str, Any] = {}
    specs = fast.fields
    texts = fast.texts
    identifiers = IDENTIFIER_FIELDS
    hidden = _HIDDEN_RE.search
    envelope = _ENVELOPE
    search = _CONTROL_RE.search
    try:
        for name, value in obj.items():
            t = type(value)
            if t is str:
                strings += 1
                if name in texts:  # the common case first: ``_text`` inline
                    if value == "" or value.isspace() or (not clean and search(value) is not None):
                        return None
                    if name in identifiers and (
                        value[0].isspace() or value[-1].isspace() or (not value.isascii() and hidden(value))
                    ):
                        return None
                    fields[name] = value
                    continue
            elif t is dict or t is list:
                strings += _strings(value)
            if name in envelope:
                continue
            spec = specs.get(name)
            if spec is not None:
                if value is None:
                    if spec.required:
                        return None
                    continue
                code = spec.code
                if code == _STR:
                    if not text(value):
                        return None
                elif code == _DATE:
                    if t is not str or not _DATE_RE.match(value):
                        return None
                    fields[name] = date.fromisoformat(value)
                    continue
                elif code == _LITERAL:
                    if t is bool or value not in spec.choices or t not in spec.choice_types:
                        return None
                elif code == _INT:
                    if t is not int:
                        return None
                elif code == _DECIMAL:
                    if (t is not int and t is not Decimal) or value < 0:
                        return None
                    fields[name] = Decimal(value)
                    continue
                else:
                    fields[name] = coerce(value, spec.type, name)
                    continue
                fields[name] = value
            elif _EXTENSION_RE.match(name):
                _check_strings(value, name)
                extensions[name] = value
            else:
                return None
        for name in fast.required:
            if name not in fields:
                return None
        record = assemble(
            DecisionRecord,
            {
                "id": decision_id,
                "kind": kind,
                "effective": day,
                "by": by,
                "basis": basis,
                "note": note,
                "fields": fields,
                "extensions": extensions,
                "signature": signature,
            },
        )
        if fast.rules:
            _check_kind_rules(record)
        else:
            technology = fields.get("technology")
            if technology is not None:
                catalog, sep, code_ = technology.partition(":")
                if not sep or not catalog or not code_:
                    return None
    except (DecisionError, ValueError, RecursionError):
        return None
    return record, strings


def _strings(value: Any) -> int:
    """How many strings (keys and values) a value decoded from JSON holds."""
    t = type(value)
    if t is str:
        return 1
    if t is dict:
        return len(value) + sum(_strings(v) for v in value.values())
    if t is list:
        return sum(_strings(v) for v in value)
    return 0


def from_json_dict(obj: Mapping[str, Any]) -> DecisionRecord:
    """Check and normalise a decision given as a JSON object (already parsed)."""
    decision_id = _require(obj, "id")
    if not isinstance(decision_id, str) or not _ID_RE.match(decision_id):
        msg = "an id is 1–200 characters with no white space or control characters"
        raise MalformedDecision(msg, field="id")
    check_identifier(decision_id, "id")
    kind = _require(obj, "kind")
    if not isinstance(kind, str):
        raise MalformedDecision(f"expected a string, got {_json_type(kind)}", field="kind")
    spec = kind_specs().get(kind)
    if spec is None:
        msg = f"unknown kind {kind!r}; known kinds: {', '.join(sorted(kind_specs()))}"
        raise UnknownKind(msg, field="kind")
    effective = parse_date(_require(obj, "effective"), "effective")
    by = check_identifier(_string(_require(obj, "by"), "by"), "by")
    basis = _optional_string(obj.get("basis"), "basis")
    note = _optional_string(obj.get("note"), "note", allow_empty=True)
    signature = obj.get("signature")
    if signature is not None and (not isinstance(signature, str) or not _SIGNATURE_RE.match(signature)):
        raise MalformedDecision("a signature is the base64 of a 64-byte Ed25519 signature", field="signature")

    fields: dict[str, Any] = {}
    extensions: dict[str, Any] = {}
    by_name = spec.by_name
    for name, value in obj.items():
        if name in ENVELOPE:
            continue
        field_spec = by_name.get(name)
        if field_spec is not None:
            if value is None and not field_spec.required:
                continue
            fields[name] = coerce(value, field_spec.type, name)
            if name in IDENTIFIER_FIELDS and type(fields[name]) is str:
                check_identifier(fields[name], name)
        elif _EXTENSION_RE.match(name):
            _check_strings(value, name)
            extensions[name] = value
        else:
            msg = (
                f"unknown field for kind {kind!r}; its fields are "
                f"{', '.join(f.name for f in spec.fields)} (a plugin's own fields are prefixed, "
                f"e.g. 'hunan.form')"
            )
            raise MalformedDecision(msg, field=name)
    for field_spec in spec.fields:
        if field_spec.required and field_spec.name not in fields:
            raise MalformedDecision("required field is missing", field=field_spec.name)

    record = DecisionRecord(decision_id, kind, effective, by, basis, note, fields, extensions, signature)
    _check_kind_rules(record)
    return record


def from_trusted_json_dict(obj: Mapping[str, Any]) -> DecisionRecord:
    """``from_json_dict`` of a decision the ledger wrote out itself (``DecisionRecord.to_json``,
    e.g. a view's stored record): the same record, without checking every value again (views
    read thousands per query). Only for such text: anything else goes through ``from_json_dict``."""
    kind = obj["kind"]
    converters = _trusted_fields(kind)
    fields: dict[str, Any] = {}
    extensions: dict[str, Any] = {}
    for name, value in obj.items():
        found = converters.get(name)
        if found is None:
            if name not in _ENVELOPE:
                extensions[name] = value
        elif value is not None or found[0]:
            convert = found[1]
            fields[name] = value if convert is _same else convert(value)
    return _trusted_record(obj, kind, fields, extensions)


def _trusted_record(
    obj: Mapping[str, Any], kind: str, fields: dict[str, Any], extensions: dict[str, Any]
) -> DecisionRecord:
    get = obj.get
    return assemble(
        DecisionRecord,
        {
            "id": obj["id"],
            "kind": kind,
            "effective": date.fromisoformat(obj["effective"]),
            "by": obj["by"],
            "basis": get("basis"),
            "note": get("note"),
            "fields": fields,
            "extensions": extensions,
            "signature": get("signature"),
        },
    )


def _from_trusted_text_dict(obj: dict[str, Any]) -> DecisionRecord:
    """``from_trusted_json_dict`` of a dict just parsed (and so ours to take apart): the
    envelope taken out, what is left is the fields, in the text's order, when every key is one of
    the kind's fields and none is null; only values that are not JSON's own are converted (a
    trail reads thousands of records, most of them cases with nothing to convert)."""
    take = obj.pop
    envelope = {
        "id": take("id"),
        "kind": take("kind"),
        "effective": take("effective"),
        "by": take("by"),
        "basis": take("basis", None),
        "note": take("note", None),
        "signature": take("signature", None),
    }
    kind = envelope["kind"]
    names, converting = _trusted_plan(kind)
    if not names.issuperset(obj) or None in obj.values():
        return from_trusted_json_dict({**envelope, **obj})
    for name, convert in converting:
        if name in obj:
            obj[name] = convert(obj[name])
    return _trusted_record(envelope, kind, obj, {})


@cache
def _trusted_plan(kind: str) -> tuple[frozenset[str], tuple[tuple[str, Any], ...]]:
    """A kind's field names, and the fields whose JSON value must be converted (dates, Decimals)."""
    converters = _trusted_fields(kind)
    return frozenset(converters), tuple((n, c[1]) for n, c in converters.items() if c[1] is not _same)


def record_from_text(text: str | bytes) -> DecisionRecord:
    """A record from the canonical text the ledger wrote itself (``DecisionRecord.to_json``, as
    views store it): ``from_trusted_json_dict`` of msgspec's parse, which gives ``json``'s values
    (numbers with a fraction as ``Decimal``) three times as fast."""
    return _from_trusted_text_dict(_TRUSTED_DECODE(text))


_TRUSTED_DECODE: Callable[[str | bytes], Any] = msgspec.json.Decoder(float_hook=Decimal).decode


_ENVELOPE = frozenset(ENVELOPE)


@cache
def _trusted_fields(kind: str) -> dict[str, tuple[bool, Any]]:
    """A kind's fields by JSON name: (required, what ``coerce`` does to a valid value)."""
    return {f.name: (f.required, _trusted(f.type)) for f in kind_specs()[kind].fields}


_TRUSTED: dict[int, tuple[Any, Any]] = {}


def _trusted(annotation: Any) -> Any:
    """What ``coerce`` does to a valid value of ``annotation``, as one function (kept by identity)."""
    cached = _TRUSTED.get(id(annotation))
    if cached is not None and cached[0] is annotation:
        return cached[1]
    convert: Any
    if annotation is date:
        convert = date.fromisoformat
    elif annotation is Decimal:
        convert = Decimal
    elif annotation in (str, int) or _literal(annotation) is not None:
        convert = _same
    elif get_origin(annotation) is list:
        item = _trusted(get_args(annotation)[0])
        convert = list if item is _same else (lambda v: [item(x) for x in v])
    elif get_origin(annotation) is dict:
        value_type = get_args(annotation)[1]
        inner = _same if value_type is Any else _trusted(value_type)
        convert = dict if inner is _same else (lambda v: {k: inner(x) for k, x in v.items()})
    else:
        msg = f"no coercion for {annotation!r}"
        raise TypeError(msg)
    _TRUSTED[id(annotation)] = (annotation, convert)
    return convert


def _same(value: Any) -> Any:
    return value


def coerce(value: Any, annotation: Any, name: str) -> Any:
    """Check ``value`` against a field's type and return its normalised Python value."""
    if annotation is str:
        return _string(value, name)
    if annotation is date:
        return parse_date(value, name)
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise MalformedDecision(f"expected an integer, got {_json_type(value)}", field=name)
        return value
    if annotation is Decimal:
        if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
            raise MalformedDecision(f"expected a number, got {_json_type(value)}", field=name)
        if value < 0:
            raise MalformedDecision("must not be negative", field=name)
        return Decimal(value)
    literal = _literal(annotation)
    if literal is not None:
        choices, choice_types = literal
        if isinstance(value, bool) or value not in choices or type(value) not in choice_types:
            shown = ", ".join(json.dumps(c, ensure_ascii=False) for c in choices)
            raise MalformedDecision(f"must be one of {shown}, got {_show(value)}", field=name)
        return value
    origin = get_origin(annotation)
    if origin is list:
        if not isinstance(value, list):
            raise MalformedDecision(f"expected a list, got {_json_type(value)}", field=name)
        (item_type,) = get_args(annotation)
        return [coerce(item, item_type, f"{name}[{i}]") for i, item in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise MalformedDecision(f"expected an object, got {_json_type(value)}", field=name)
        _, value_type = get_args(annotation)
        if value_type is Any:
            _check_strings(value, name)
            return dict(value)
        return {_string(k, name): coerce(v, value_type, f"{name}.{k}") for k, v in value.items()}
    msg = f"no coercion for {annotation!r}"
    raise TypeError(msg)


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


def parse_date(value: Any, name: str) -> date:
    """A real calendar date written ``YYYY-MM-DD`` (so ``2019-02-30`` is refused)."""
    if not isinstance(value, str) or not _DATE_RE.match(value):
        raise MalformedDecision(f"expected a date YYYY-MM-DD, got {_show(value)}", field=name)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise MalformedDecision(f"{value} is not a real date", field=name) from None


def parse_technology_ref(value: str, name: str = "technology") -> tuple[str, str]:
    catalog, sep, code = value.partition(":")
    if not sep or not catalog or not code:
        msg = f"a technology is '<catalog>:<code>' (e.g. 'hunan:S14'), got {value!r}"
        raise MalformedDecision(msg, field=name)
    return catalog, code


def _check_kind_rules(record: DecisionRecord) -> None:
    """What a single decision must satisfy on its own, beyond its types."""
    f = record.fields
    for name in ("technology",):
        if name in f:
            parse_technology_ref(f[name], name)
    if record.kind == "panel.concluded":
        _check_panel(record)
    if record.kind == "authority.key_registered":
        from ledger.checkpoints import VerifierKey
        from ledger.errors import SignatureError

        if not unicodedata.is_normalized("NFC", f["authority"]):
            # ``by`` is compared after NFC (ledger.competence.normal): the key's holder is written so.
            raise MalformedDecision("write the authority's name in Unicode normal form NFC", field="authority")
        try:
            VerifierKey.parse(f["public_key"])
        except SignatureError as e:
            raise MalformedDecision(
                f"not a verifier key (name+keyid+base64, `ledger keygen`): {e}", field="public_key"
            ) from None
    if record.kind == "decision.corrected" and not f["fields"]:
        raise MalformedDecision("a correction corrects at least one field", field="fields")


def _check_panel(record: DecisionRecord) -> None:
    """Votes only by members who did not recuse (DECISIONS.md, Refused; MTM-2009#27, EVAL-2026#7).

    Size and majority rules are findings, not refusals: the ledger records a panel that broke
    them and the trail shows it.
    """
    f = record.fields
    members, recused, votes = f["members"], f["recused"], f["votes"]
    if len(set(members)) != len(members):
        raise InvalidPanel("a member is listed twice", field="members")
    for person in recused:
        if person not in members:
            raise InvalidPanel(f"{person!r} recused but is not a member", field="recused")
    for person in votes:
        if person not in members:
            raise InvalidPanel(f"{person!r} voted but is not a member", field="votes")
        if person in recused:
            raise InvalidPanel(f"{person!r} voted but recused", field="votes")
    allowed = {"technical-audit": ("pass", "fail"), "evaluation": ("prohibit", "restrict", "strengthen", "no-change")}
    if f["outcome"] not in allowed[f["panel"]]:
        msg = f"a {f['panel']} panel concludes {' or '.join(allowed[f['panel']])}, not {f['outcome']!r}"
        raise MalformedDecision(msg, field="outcome")
    if f["panel"] == "technical-audit" and "institution" not in f:
        raise MalformedDecision(
            "a technical audit is of an institution: required field is missing", field="institution"
        )


def check_correction(target: DecisionRecord, corrected: Mapping[str, Any]) -> dict[str, Any]:
    """Check a correction's ``fields`` against the kind of the decision it corrects.

    Returns the normalised values. ``id`` and ``kind`` never change; nor do the fields that say
    what the decision is about (``SUBJECT_FIELDS``).
    """
    spec = kind_specs()[target.kind].by_name
    out: dict[str, Any] = {}
    for name, value in corrected.items():
        where = f"fields.{name}"
        if name in ("id", "kind"):
            raise MalformedDecision(f"a correction cannot change '{name}'", field=where)
        if name in SUBJECT_FIELDS:
            msg = f"'{name}' says what the decision is about: retract it and record a new decision instead"
            raise MalformedDecision(msg, field=where)
        if name == "effective":
            out[name] = parse_date(value, where)
        elif name == "by":
            out[name] = check_identifier(_string(value, where), where)
        elif name in ("basis", "note"):
            out[name] = _optional_string(value, where, allow_empty=name == "note")
        elif name in spec:
            if value is None and not spec[name].required:
                out[name] = None
            else:
                out[name] = coerce(value, spec[name].type, where)
                if name in IDENTIFIER_FIELDS and type(out[name]) is str:
                    check_identifier(out[name], where)
        elif _EXTENSION_RE.match(name):
            _check_strings(value, where)
            out[name] = value
        else:
            raise MalformedDecision(f"a {target.kind} decision has no field '{name}'", field=where)
    merged = dict(target.fields) | {k: v for k, v in out.items() if k in spec}
    if target.kind == "panel.concluded":
        probe = dataclasses.replace(target, fields=merged)
        _check_panel(probe)
    return out


def _require(obj: Mapping[str, Any], name: str) -> Any:
    if name not in obj or obj[name] is None:
        raise MalformedDecision("required field is missing", field=name)
    return obj[name]


def _string(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise MalformedDecision(f"expected a string, got {_json_type(value)}", field=name)
    if not value.strip():
        raise MalformedDecision("must not be empty", field=name)
    _check_strings(value, name)
    return value


def check_identifier(value: str, name: str) -> str:
    """Refuse a hidden character (``_HIDDEN_RE``) or leading or trailing white space in an
    identifier: refused rather than stripped or normalised, so what is stored is what was written
    and no two spellings of one id are both in the ledger. Returns ``value``."""
    match = _HIDDEN_RE.search(value)
    if match is not None:
        code = ord(match.group())
        msg = (
            f"invisible or control character U+{code:04X} at offset {match.start()}: an identifier is "
            "plain text (it would be a look-alike of another)"
        )
        raise MalformedDecision(msg, field=name)
    if value[:1].isspace() or value[-1:].isspace():
        raise MalformedDecision("leading or trailing white space in an identifier", field=name)
    return value


def _optional_string(value: Any, name: str, *, allow_empty: bool = False) -> str | None:
    if value is None:
        return None
    if allow_empty and value == "":
        return ""
    return _string(value, name)


def _check_strings(value: Any, name: str, depth: int = 0) -> None:
    """Refuse control characters anywhere in a value: they hide text from readers of a trail.

    Also refuse lone surrogates (not text: no UTF-8 encodes them), integers storage cannot hold
    exactly (msgpack: -2**63 to 2**64 - 1), and lists and objects nested more than ``MAX_DEPTH``
    levels deep (issue 6: they would exhaust the stack of whatever walks them later).
    """
    if isinstance(value, str):
        match = _CONTROL_RE.search(value)
        if match:
            code = ord(match.group())
            what = "lone surrogate" if 0xD800 <= code <= 0xDFFF else "control character"
            msg = f"{what} U+{code:04X} at offset {match.start()}"
            raise MalformedDecision(msg, field=name)
    elif isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        raise MalformedDecision("integer out of range (-2**63 to 2**64 - 1): write it as a string", field=name)
    elif isinstance(value, (dict, list)) and depth >= MAX_DEPTH:
        raise MalformedDecision(f"lists and objects nested more than {MAX_DEPTH} levels deep", field=name)
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_strings(k, name)
            _check_strings(v, f"{name}.{k}", depth + 1)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_strings(v, f"{name}[{i}]", depth + 1)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise MalformedDecision("the field appears twice in one object", field=key)
        out[key] = value
    return out


def _refuse_constant(name: str) -> Any:
    raise MalformedDecision(f"{name} is not a JSON number")


_fast_decode = _make_fast_decoder()


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, Decimal)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _show(value: Any) -> str:
    text = canonical.dumps(value) if isinstance(value, (str, int, Decimal, bool, type(None))) else _json_type(value)
    return text if len(text) <= 60 else text[:57] + "..."
