"""Records from what the ledger wrote itself: an event's stored state, or the canonical text a view
keeps. Not checked again: only for such data; anything else goes through the reference parser."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from decimal import Decimal
from functools import cache
from typing import Any, get_args, get_origin

import msgspec

from ledger.decisions.schema import _ENVELOPE, DecisionRecord, _literal, kind_specs
from ledger.frozen import assemble


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
