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
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cache, cached_property
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from ledger import canonical
from ledger import events as ev
from ledger.errors import InvalidPanel, MalformedDecision, UnknownKind

_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}\Z", re.ASCII)
_ID_RE = re.compile(r"[^\s\x00-\x1f\x7f\ud800-\udfff]{1,200}\Z")
# Control characters, and lone surrogates (a JSON escape like "\ud800" that pairs with nothing:
# not a character, and not writable as UTF-8).
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
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
"""Fields that name a subject the ledger must already know as of ``effective`` (DECISIONS.md)."""

CREATES = {"institution.registered": "institution", "physician.registered": "physician"}
"""The field a creating decision introduces rather than refers to."""

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
        unsigned = self.to_json_dict()
        unsigned.pop("signature", None)
        return canonical.dumps(unsigned, sort_keys=True).encode("utf-8")

    def digest(self) -> bytes:
        """What "the same content" means for idempotent import: the SHA-256 of the canonical form
        without the signature (a decision re-imported unsigned is the same decision)."""
        return hashlib.sha256(self.signing_bytes()).digest()

    def references(self) -> Iterator[tuple[str, str, str]]:
        """``(field, reference kind, value)`` for each field naming a subject that must exist."""
        creates = CREATES.get(self.kind)
        for name, ref_kind in REFERENCE_FIELDS.items():
            value = self.fields.get(name)
            if value is not None and name != creates:
                yield name, ref_kind, value
        if self.kind in ("technology.reclassified", "technology.delisted"):
            yield "code", "technology", f"{self.fields['catalog']}:{self.fields['code']}"


def record_from_state(kind: str, state: Mapping[str, Any]) -> DecisionRecord:
    """The decision a stored event's state holds, in DECISIONS.md's terms (the inverse of
    recording it). Takes the state mapping, so the offline proof verifier needs no database."""
    fields = {}
    for f in kind_specs()[kind].fields:
        value = state.get(f.attr)
        if value is not None or f.required:
            fields[f.name] = value
    return DecisionRecord(
        id=state["decision_id"],
        kind=kind,
        effective=state["effective"],
        by=state["by"],
        basis=state["basis"],
        note=state["note"],
        fields=fields,
        extensions=dict(state["extensions"]),
        signature=state.get("signature"),
    )


def parse_line(text: str | bytes) -> DecisionRecord:
    """Parse one line of a decision file. Raises ``DecisionError`` naming the field."""
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


def from_json_dict(obj: Mapping[str, Any]) -> DecisionRecord:
    """Check and normalise a decision given as a JSON object (already parsed)."""
    decision_id = _require(obj, "id")
    if not isinstance(decision_id, str) or not _ID_RE.match(decision_id):
        msg = "an id is 1–200 characters with no white space or control characters"
        raise MalformedDecision(msg, field="id")
    kind = _require(obj, "kind")
    if not isinstance(kind, str):
        raise MalformedDecision(f"expected a string, got {_json_type(kind)}", field="kind")
    spec = kind_specs().get(kind)
    if spec is None:
        msg = f"unknown kind {kind!r}; known kinds: {', '.join(sorted(kind_specs()))}"
        raise UnknownKind(msg, field="kind")
    effective = parse_date(_require(obj, "effective"), "effective")
    by = _string(_require(obj, "by"), "by")
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
    converters = _trusted_fields(obj["kind"])
    fields: dict[str, Any] = {}
    extensions: dict[str, Any] = {}
    for name, value in obj.items():
        if name in _ENVELOPE:
            continue
        found = converters.get(name)
        if found is None:
            extensions[name] = value
        elif value is not None or found[0]:
            fields[name] = found[1](value)
    basis = obj.get("basis")
    note = obj.get("note")
    return DecisionRecord(
        obj["id"],
        obj["kind"],
        date.fromisoformat(obj["effective"]),
        obj["by"],
        basis,
        note,
        fields,
        extensions,
        obj.get("signature"),
    )


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

        try:
            VerifierKey.parse(f["public_key"])
        except SignatureError as e:
            raise MalformedDecision(f"not a verifier key (name+keyid+base64, `ledger keygen`): {e}",
                                    field="public_key") from None
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
            out[name] = _string(value, where)
        elif name in ("basis", "note"):
            out[name] = _optional_string(value, where, allow_empty=name == "note")
        elif name in spec:
            if value is None and not spec[name].required:
                out[name] = None
            else:
                out[name] = coerce(value, spec[name].type, where)
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
