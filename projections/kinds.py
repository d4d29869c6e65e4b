"""Each kind of decision's fields, in words: for ``ledger kinds`` and ``docs/decision-format.md``.

Derived from the schema the parser checks (``ledger.decisions.kind_specs``), never written by
hand, so that what the command line and the documentation say a kind takes is what it accepts.
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Literal, Union, get_args, get_origin

from ledger.decisions import kind_specs

COMMON = (
    ("id", "text", True),
    ("kind", "text", True),
    ("effective", "date", True),
    ("by", "text", True),
    ("basis", "text", False),
    ("note", "text", False),
    ("signature", "text", False),
)
"""The fields every decision has, whatever its kind (the parser's common fields)."""

_NAMES: dict[Any, str] = {
    Any: "any JSON value",
    str: "text",
    date: "date",
    int: "integer",
    Decimal: "decimal",
    bool: "true or false",
}


def type_text(annotation: Any) -> str:
    """A field's type as a reader of the format says it: ``text``, ``date``, ``list of text``,
    ``one of: management, ethics``, ``object of text → text``."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return "one of: " + ", ".join(str(a) for a in args)
    if origin in (list, tuple, set, frozenset):
        return f"list of {type_text(args[0])}" if args else "list"
    if origin is dict:
        return f"object of {type_text(args[0])} → {type_text(args[1])}" if args else "object"
    if origin in (Union, types.UnionType):
        return " or ".join(type_text(a) for a in args if a is not type(None))
    return _NAMES.get(annotation, getattr(annotation, "__name__", str(annotation)))


@dataclass(frozen=True)
class KindField:
    name: str
    type: str
    required: bool


def kind_fields() -> dict[str, list[KindField]]:
    """Every kind's own fields (the common ones aside), in the schema's order, by kind."""
    return {
        kind: [KindField(f.name, type_text(f.type), f.required) for f in spec.fields]
        for kind, spec in sorted(kind_specs().items())
    }
