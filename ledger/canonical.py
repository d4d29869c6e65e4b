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
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

_encode_str = json.JSONEncoder(ensure_ascii=False).encode


def dumps(obj: Any, *, sort_keys: bool = False) -> str:
    """Serialise ``obj`` as canonical JSON text (see the module docstring)."""
    parts: list[str] = []
    _write(obj, parts, sort_keys)
    return "".join(parts)


def digest(obj: Any) -> bytes:
    """SHA-256 of the key-sorted canonical form: equal content, equal digest."""
    return hashlib.sha256(dumps(obj, sort_keys=True).encode("utf-8")).digest()


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
