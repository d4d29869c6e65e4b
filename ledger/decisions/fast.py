"""The fast parser: ``try_parse`` reads a line with a faster decoder and checks it in small steps
that only *accept*; on anything they do not accept (bad JSON, a bad value, an unknown field, a
duplicate key, an escape sequence) it gives None and the line goes to the reference parser
(``ledger.decisions.reference``), which gives the refusal with its exact message. So a refusal is
always the reference parser's own, and an accepted line is the record it builds
(tests/ledger/test_fast_parse.py checks both on generated and mutated lines).

Duplicate keys (DECISIONS.md refuses them) without an ``object_pairs_hook``: a line with no
backslash has no escapes, so each ``"`` in it opens or closes a string, and the decoded value
holds one ``str`` (key or value) per string of the text unless a repeated key overwrote a pair.
Counting both tells the two apart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cache
from typing import Any

import msgspec

from ledger import canonical
from ledger.decisions.reference import _check_kind_rules, _check_strings, _parse_line, coerce
from ledger.decisions.schema import (
    _CONTROL_RE,
    _DATE_RE,
    _ENVELOPE,
    _EXTENSION_RE,
    _HIDDEN_RE,
    _ID_RE,
    _SIGNATURE_RE,
    IDENTIFIER_FIELDS,
    DecisionRecord,
    _literal,
    kind_specs,
)
from ledger.errors import DecisionError
from ledger.frozen import assemble

_decode: Callable[[str | bytes], Any] = msgspec.json.Decoder(float_hook=Decimal).decode
"""msgspec reads UTF-8 and refuses what ``json`` refuses (and NaN, which ``json`` reads and the
reference parser refuses); numbers with a fraction or exponent become Decimal from their own digits."""

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


def parse_line(text: str | bytes) -> DecisionRecord:
    """Parse one line of a decision file. Raises ``DecisionError`` naming the field."""
    record = try_parse(text)
    return record if record is not None else _parse_line(text)


def parse_line_digest(text: str | bytes) -> tuple[DecisionRecord, bytes | None]:
    """``parse_line(text)``, with the record's ``digest()`` where it comes cheaper from the line's
    own values (None where it does not: then ask the record).

    A line the fast parser accepts holds, once its signature and nulls are left out, the keys and
    values of ``DecisionRecord._unsigned`` as JSON gives them: its dates the very text
    ``isoformat`` writes (``YYYY-MM-DD``, checked), its numbers the same digits (``canonical``
    writes a Decimal's digits, an int's in full), every other value as it is. So the SHA-256 of
    its canonical form is the record's digest, without building that dict again (an import
    digests every line; tests/ledger/test_fast_parse.py compares the two)."""
    found = _read(text)
    if found is None:
        return _parse_line(text), None
    record, obj = found
    if "signature" in obj or None in obj.values():
        return record, None
    return record, canonical.digest(obj)


def try_parse(line: str | bytes) -> DecisionRecord | None:
    """The record the reference parser gives for ``line``, or None: then ask the reference parser
    (it gives the refusal, or the record where this parser was not sure)."""
    found = _read(line)
    return None if found is None else found[0]


def _read(text: str | bytes) -> tuple[DecisionRecord, dict[str, Any]] | None:
    """``try_parse``'s record and the JSON object it was read from (not changed)."""
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
        obj = _decode(text)
    except Exception:  # whatever it is, the reference parser says it
        return None
    if type(obj) is not dict:
        return None
    found = _record(obj, clean=clean)
    if found is None or 2 * found[1] != quotes:
        return None
    return found[0], obj


def _record(obj: dict[str, Any], *, clean: bool = False) -> tuple[DecisionRecord, int] | None:
    """``from_json_dict(obj)`` and the number of strings ``obj`` holds (keys included), or None
    wherever ``from_json_dict`` might refuse. ``clean``: no string of ``obj`` can hold a control
    character or a surrogate (``_read``)."""
    text = _clean_text if clean else _text
    get = obj.get
    kind = get("kind")
    fast = _fast_kinds().get(kind) if type(kind) is str else None
    if fast is None:
        return None
    effective = get("effective")
    day = _DAYS.get(effective) if type(effective) is str else None  # a day read before, most often
    if day is None:
        day = _day(effective)
    basis, note, signature = get("basis"), get("note"), get("signature")
    if day is None or not _envelope(get("id"), get("by"), basis, note, signature, text):
        return None
    read = _fields(obj, fast, text, clean=clean)
    if read is None:
        return None
    fields, extensions, strings = read
    record = assemble(
        DecisionRecord,
        {
            "id": obj["id"],
            "kind": kind,
            "effective": day,
            "by": obj["by"],
            "basis": basis,
            "note": note,
            "fields": fields,
            "extensions": extensions,
            "signature": signature,
        },
    )
    return (record, strings) if _kind_rules(record, fast) else None


def _day(effective: Any) -> date | None:
    """The date ``effective`` writes (``YYYY-MM-DD``, a real day), or None; remembered in ``_DAYS``
    (which ``_record`` asks first)."""
    if type(effective) is not str or not _DATE_RE.match(effective):
        return None
    try:
        day = date.fromisoformat(effective)
    except ValueError:
        return None
    if len(_DAYS) > 100_000:  # a few thousand distinct days in practice
        _DAYS.clear()
    _DAYS[effective] = day
    return day


def _envelope(decision_id: Any, by: Any, basis: Any, note: Any, signature: Any, text: Callable[[Any], bool]) -> bool:
    """Does the reference parser accept this ``id``, ``by``, ``basis``, ``note`` and ``signature``?"""
    return (
        type(decision_id) is str
        and _ID_RE.match(decision_id) is not None
        and (decision_id.isascii() or _plain(decision_id))
        and text(by)
        and (_PLAIN_BY.get(by, False) or _plain_by(by))
        and (basis is None or text(basis))
        and (note is None or note == "" or text(note))
        and (signature is None or (type(signature) is str and _SIGNATURE_RE.match(signature) is not None))
    )


_NO: Any = object()
"""``_typed``'s answer for a value the reference parser might refuse."""
_ABSENT: Any = object()
"""``_typed``'s answer for an optional field given as null: left out of the record."""


def _fields(
    obj: dict[str, Any], fast: _FastKind, text: Callable[[Any], bool], *, clean: bool
) -> tuple[dict[str, Any], dict[str, Any], int] | None:
    """The kind's fields and the plugins' of ``obj``, with the number of strings it holds, or None."""
    strings = len(obj)
    fields: dict[str, Any] = {}
    extensions: dict[str, Any] = {}
    specs, texts, envelope = fast.fields, fast.texts, _ENVELOPE
    try:
        for name, value in obj.items():
            t = type(value)
            if t is str:
                strings += 1
                if name in texts:  # the common case first, inline: it runs for most fields of every line
                    if value == "" or value.isspace() or (not clean and _CONTROL_RE.search(value) is not None):
                        return None
                    if name in IDENTIFIER_FIELDS and (
                        value[0].isspace() or value[-1].isspace() or (not value.isascii() and _HIDDEN_RE.search(value))
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
                typed = _typed(spec, name, value, t, text)
                if typed is _NO:
                    return None
                if typed is not _ABSENT:
                    fields[name] = typed
            elif _EXTENSION_RE.match(name):
                _check_strings(value, name)
                extensions[name] = value
            else:
                return None
    except (DecisionError, ValueError, RecursionError):
        return None
    for name in fast.required:
        if name not in fields:
            return None
    return fields, extensions, strings


def _typed(spec: _FastField, name: str, value: Any, t: type, text: Callable[[Any], bool]) -> Any:
    """The value ``coerce`` gives for a field that is not plain text, ``_ABSENT``, or ``_NO``."""
    if value is None:
        return _NO if spec.required else _ABSENT
    code = spec.code
    if code == _STR:
        return value if text(value) else _NO
    if code == _DATE:
        return date.fromisoformat(value) if t is str and _DATE_RE.match(value) else _NO
    if code == _LITERAL:
        return _NO if t is bool or value not in spec.choices or t not in spec.choice_types else value
    if code == _INT:
        return value if t is int else _NO
    if code == _DECIMAL:
        return Decimal(value) if (t is int or t is Decimal) and value >= 0 else _NO
    return coerce(value, spec.type, name)


def _kind_rules(record: DecisionRecord, fast: _FastKind) -> bool:
    """Does ``record`` satisfy its kind's rules (``_check_kind_rules``)?"""
    if fast.rules:
        try:
            _check_kind_rules(record)
        except (DecisionError, ValueError, RecursionError):
            return False
        return True
    technology = record.fields.get("technology")
    if technology is None:
        return True
    catalog, sep, code = technology.partition(":")
    return bool(sep and catalog and code)


def _plain(value: str) -> bool:
    """No character ``check_identifier`` refuses inside ``value`` (ASCII holds none but controls,
    which the fast parser's own checks leave to the reference parser)."""
    return value.isascii() or _HIDDEN_RE.search(value) is None


_PLAIN_BY: dict[str, bool] = {}
"""``by`` values that ``check_identifier`` accepts, remembered: a file names few bodies, on every line."""


def _plain_by(by: str) -> bool:
    """Would ``check_identifier`` accept ``by`` (of a line the fast parser reads)?"""
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
