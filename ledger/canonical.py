"""Canonical JSON: the one way a decision is turned into bytes, for digests, signatures and export.

The same decision must give the same bytes in every process and after every round trip, or
idempotent import ("same id, same content") and signatures would break on a re-ordered key or a
``1.50`` that became ``1.5``. So: UTF-8, no insignificant white space, keys sorted when asked
(digests, signatures) or in the writer's order (export, for people), Decimals written exactly as
they were read, dates as ``YYYY-MM-DD``. No floats ever reach here: the parser reads numbers with
a fraction as ``Decimal``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import msgspec

_encode_str = json.JSONEncoder(ensure_ascii=False).encode


def _isoformat(obj: Any) -> str:
    if type(obj) is date or type(obj) is datetime:
        return obj.isoformat()
    raise TypeError(type(obj).__name__)  # pragma: no cover - _plain lets no other type through


# The C encoder of the standard library writes a *plain* value (see ``_plain``) byte for byte as
# ``_write`` does — same string escaping (``encode_basestring``), ``str`` of ints, no white space,
# ``sorted(items())`` for sorted keys — at a tenth of the cost: it is the digest's fast path.
def _fast_encoder(sort_keys: bool) -> Any:
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - CPython has the C encoder
        fallback = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=sort_keys, default=_isoformat)
        return fallback.encode
    # No circular-reference markers: ``_plain`` has already walked the value (a cycle never ends there).
    encoder = make(None, _isoformat, json.encoder.encode_basestring, None, ":", ",", sort_keys, False, True)
    return lambda obj: "".join(encoder(obj, 0))


_FAST = {sort_keys: _fast_encoder(sort_keys) for sort_keys in (False, True)}
_SCALARS: frozenset[type] = frozenset({str, int, bool, type(None), date, datetime})


_BYTES: dict[bool, Callable[[Any], bytes]] = {
    sorted_: msgspec.json.Encoder(order="sorted" if sorted_ else None).encode for sorted_ in (False, True)
}
"""msgspec's JSON encoder, where it writes what ``_text`` writes, as UTF-8, in a tenth of the
time (the digest of every imported line): the same escapes (``"``, ``\\``, control characters
as ``json.encoder.encode_basestring`` writes them, nothing else), ints in full, no white space,
keys sorted by code point (UTF-8 byte order is code-point order). Not for datetimes (msgspec
writes UTC as ``Z``), Decimals (``_text`` writes their digits) or non-string keys: ``_plain``
with ``_BYTES_SCALARS`` keeps those away. Checked by tests/ledger/test_fast_parse.py."""
_BYTES_SCALARS: frozenset[type] = frozenset({str, int, bool, type(None), date})


_KEYS: frozenset[type] = frozenset({str})


def _plain(obj: Any, scalars: frozenset[type] = _SCALARS) -> bool:
    """Only exact built-in types (of ``scalars``), string keys, no Decimal (written exactly, by
    ``_write``)."""
    t = type(obj)
    if t in scalars:
        return True
    # The types of a container's items first, as a set in C: most containers hold only scalars.
    if t is dict:
        if not _KEYS.issuperset(map(type, obj)):
            return False
        return scalars.issuperset(map(type, obj.values())) or all(
            type(v) in scalars or _plain(v, scalars) for v in obj.values()
        )
    if t is list or t is tuple:
        return scalars.issuperset(map(type, obj)) or all(type(v) in scalars or _plain(v, scalars) for v in obj)
    return False


def dumps(obj: Any, *, sort_keys: bool = False) -> str:
    """Serialise ``obj`` as canonical JSON text (see the module docstring)."""
    fast = _msgspec(obj, sort_keys)
    return fast.decode("utf-8") if fast is not None else _text(obj, sort_keys)


def encode(obj: Any, *, sort_keys: bool = False) -> bytes:
    """``dumps(obj, sort_keys=sort_keys).encode("utf-8")``, without the text in between where it can."""
    fast = _msgspec(obj, sort_keys)
    return fast if fast is not None else _text(obj, sort_keys).encode("utf-8")


def _msgspec(obj: Any, sort_keys: bool) -> bytes | None:
    """msgspec's bytes where they are ``_text``'s (``_BYTES``), else None. A rebuild writes the
    text of every record of the log (the trail's ``record``); this halves its cost."""
    if _plain(obj, _BYTES_SCALARS):
        try:
            return _BYTES[sort_keys](obj)
        except Exception:  # e.g. a lone surrogate: ``_text`` writes it, and encoding it raises, as always
            return None
    return None


def _text(obj: Any, sort_keys: bool) -> str:
    """The reference writer, in the standard library's terms: its C encoder for plain values,
    ``_write`` for the rest (Decimals, datetimes, other mappings)."""
    if _plain(obj):
        text: str = _FAST[sort_keys](obj)
        return text
    parts: list[str] = []
    _write(obj, parts, sort_keys)
    return "".join(parts)


def digest(obj: Any) -> bytes:
    """SHA-256 of the key-sorted canonical form: equal content, equal digest."""
    return hashlib.sha256(encode(obj, sort_keys=True)).digest()


def _write(obj: Any, out: list[str], sort_keys: bool) -> None:
    if obj is None:
        out.append("null")
    elif obj is True:
        out.append("true")
    elif obj is False:
        out.append("false")
    elif isinstance(obj, str):
        out.append(_encode_str(obj))
    elif isinstance(obj, int):
        out.append(str(obj))
    elif isinstance(obj, Decimal):
        if not obj.is_finite():
            msg = f"{obj} is not a JSON number"
            raise ValueError(msg)
        out.append(str(obj))
    elif isinstance(obj, date):  # datetime included
        out.append(_encode_str(obj.isoformat()))
    elif isinstance(obj, Mapping):
        items = sorted(obj.items()) if sort_keys else list(obj.items())
        out.append("{")
        for i, (key, value) in enumerate(items):
            if i:
                out.append(",")
            out.append(_encode_str(str(key)))
            out.append(":")
            _write(value, out, sort_keys)
        out.append("}")
    elif isinstance(obj, (list, tuple)):
        out.append("[")
        for i, value in enumerate(obj):
            if i:
                out.append(",")
            _write(value, out, sort_keys)
        out.append("]")
    else:
        msg = f"cannot write {type(obj).__name__} as JSON"
        raise TypeError(msg)
