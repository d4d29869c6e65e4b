"""The reference parser: one line of a decision file into a ``DecisionRecord``, with every refusal
(DECISIONS.md, "Refused"). Each refusal is a ``DecisionError`` naming the field; the caller adds file
and line. The fast parser (``ledger.decisions.fast``) accepts only what this one accepts."""

from __future__ import annotations

import dataclasses
import json
import unicodedata
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from functools import cache
from typing import Any, get_args, get_origin

from ledger import canonical
from ledger.decisions.schema import (
    _CONTROL_RE,
    _DATE_RE,
    _EXTENSION_RE,
    _HIDDEN_RE,
    _ID_RE,
    _SIGNATURE_RE,
    ENVELOPE,
    IDENTIFIER_FIELDS,
    MAX_DEPTH,
    SUBJECT_FIELDS,
    DecisionRecord,
    _literal,
    kind_specs,
)
from ledger.errors import InvalidPanel, MalformedDecision, UnknownKind


def _parse_line(text: str | bytes) -> DecisionRecord:
    """The reference parser of a whole line (``parse_line`` asks the fast parser first): every refusal is here."""
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
    on every call, made once (a file has many lines)."""
    return json.JSONDecoder(parse_float=Decimal, parse_constant=_refuse_constant, object_pairs_hook=_unique_keys)


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
    levels deep (they would exhaust the stack of whatever walks them later).
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
