"""Stored topics are looked up in the vocabulary, never imported (ARCHITECTURE.md rules 1 and 11).

eventsourcing resolves a stored event's topic (``module:Class``) by importing the module it names:
a topic written into the database by someone with the file (``this:s``) would run code on every
read. Here a topic is only a key: ``event_class`` looks it up in a table built from
``ledger.events.EVENT_CLASSES`` (each class's topic as eventsourcing's ``get_topic`` spells it,
pinned by tests/ledger/test_events.py), then in the aliases of classes that moved
(``register_alias``, or eventsourcing's ``register_topic`` of an old topic to a vocabulary class).
Anything else is an ``UnreadableRecord``, as is a state that does not decode to exactly the
fields, of exactly the types, its class declares (``checked_state``): what the read side does with
a record after that never meets a value it was not written to handle.

``LedgerMapper`` is eventsourcing's ``Mapper`` with that look-up and check in place of
``resolve_topic``; the projections' runner, which reads stored states without the mapper, and the
offline proof verifier call ``read_state`` (the same steps) themselves.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Annotated, Any, Literal, NoReturn, Union, cast, get_args, get_origin
from uuid import UUID

import eventsourcing.utils
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Mapper, StoredEvent, find_id_convertor
from eventsourcing.utils import get_topic, register_topic

from ledger import events as ev
from ledger.decisions import MAX_DEPTH
from ledger.errors import UnreadableRecord
from ledger.frozen import assemble

__all__ = ["LedgerMapper", "checked_state", "event_class", "kind_of", "read_state", "register_alias", "vocabulary"]

_NOT_STATE = frozenset({"originator_id", "originator_version"})
"""Fields of an event the mapper keeps outside its stored state (they are the row's columns)."""

_aliases: dict[str, type[ev.Decision]] = {}


@cache
def vocabulary() -> Mapping[str, type[ev.Decision]]:
    """Every current topic → its event class (``ledger.events:TechnologyListed`` → the class)."""
    return {get_topic(cls): cls for cls in ev.EVENT_CLASSES.values()}


def register_alias(old_topic: str, cls: type[ev.Decision]) -> None:
    """Keep reading events stored under ``old_topic`` as ``cls`` after the class moved or was
    renamed (ARCHITECTURE.md rule 1). Only a class of the vocabulary can be an alias's target."""
    if cls not in ev.EVENT_CLASSES.values():
        msg = f"{cls!r} is not an event class of ledger.events"
        raise TypeError(msg)
    register_topic(old_topic, cls)  # eventsourcing's own look-ups agree
    _aliases[old_topic] = cls


def event_class(topic: str) -> type[ev.Decision]:
    """The event class a stored topic names, by look-up only; ``UnreadableRecord`` otherwise."""
    cls = vocabulary().get(topic)
    if cls is None:
        cls = _aliases.get(topic)
        if cls is None:
            # An old topic registered with eventsourcing's ``register_topic`` (rule 1), read from its
            # table, never resolved: only a class of the vocabulary is taken.
            registered = getattr(eventsourcing.utils, "_topic_cache", {}).get(topic)
            if registered is None or registered not in ev.EVENT_CLASSES.values():
                msg = f"its topic {_show(topic)} is not a kind of decision in the ledger's vocabulary"
                raise UnreadableRecord(msg)
            cls = registered
    return cls


def kind_of(topic: str) -> str:
    """The kind of decision a stored topic holds (``ledger.events:CasePerformed`` → ``case.performed``)."""
    return event_class(topic).kind


def read_state(topic: str, data: bytes, decode: Callable[[bytes], Any]) -> tuple[type[ev.Decision], dict[str, Any]]:
    """The class and the checked state of a stored record: the topic looked up first (nothing is
    decoded for a topic the vocabulary lacks), then ``decode(data)``, whatever it raises, made an
    ``UnreadableRecord``, then ``checked_state``."""
    cls = event_class(topic)
    try:
        state = decode(data)
    except Exception as e:  # any failure of the decoder on bytes from storage: msgpack, ext types
        msg = f"its state does not decode: {type(e).__name__}: {e}"
        raise UnreadableRecord(msg) from None
    return cls, checked_state(cls, state)


def checked_state(cls: type[ev.Decision], state: Any) -> dict[str, Any]:
    """``state`` if it holds exactly the fields ``cls`` stores, each of its declared type (dates
    as ``date``, times with a zone, Decimals finite, literals among their values, free-form values
    JSON-like and at most ``MAX_DEPTH`` deep); else ``UnreadableRecord`` naming the field."""
    if type(state) is not dict:
        msg = f"its state is {type(state).__name__}, not a map of fields"
        raise UnreadableRecord(msg)
    plan = _plan(cls)
    if state.keys() != plan.fields or not plan.fast(state):
        _refuse(cls, plan, state)
    return state


def _refuse(cls: type[ev.Decision], plan: _Plan, state: dict[Any, Any]) -> NoReturn:
    """Say what ``plan.fast`` refused: a field missing or unexpected, or the first of a wrong type."""
    if state.keys() != plan.fields:
        missing = sorted(plan.fields - state.keys())
        extra = sorted(map(repr, state.keys() - plan.fields))
        msg = (
            f"its state does not hold the fields of {cls.kind}"
            + (f" (missing {', '.join(missing)})" if missing else "")
            + (f" (unexpected {', '.join(extra[:5])})" if extra else "")
        )
        raise UnreadableRecord(msg)
    name = next((name for name, spec in plan.specs if not spec.accepts(state[name])), None)
    msg = f"its field {name!r} is not of the type {cls.kind} declares" if name else f"its state is no {cls.kind}"
    raise UnreadableRecord(msg)


@dataclass(frozen=True)
class _Spec:
    """What a field's annotation accepts: exact types, then (for literals) values, then a deeper
    test (items, finiteness, zones). Flat, so that checking a record costs a few set look-ups."""

    types: frozenset[type]
    values: frozenset[Any] | None = None
    deep: Callable[[Any], bool] | None = None

    def accepts(self, v: Any) -> bool:
        return (
            type(v) in self.types and (self.values is None or v in self.values) and (self.deep is None or self.deep(v))
        )


@dataclass(frozen=True)
class _Plan:
    """How a class's stored state is checked: its fields, each field's ``_Spec``, and ``fast``,
    all of them as one expression (``type(s['by']) is str and …``): a rebuild checks every record,
    and one expression costs a quarter of a loop over the specs."""

    fields: frozenset[str]
    specs: tuple[tuple[str, _Spec], ...]
    fast: Callable[[dict[str, Any]], bool]


@cache
def _plan(cls: type[ev.Decision]) -> _Plan:
    hints = typing.get_type_hints(cls, include_extras=True)
    names = [f.name for f in dataclasses.fields(cls) if f.name not in _NOT_STATE]
    specs = tuple((name, _spec(hints[name])) for name in names)
    return _Plan(frozenset(names), specs, _fast_check(specs))


def _fast_check(specs: tuple[tuple[str, _Spec], ...]) -> Callable[[dict[str, Any]], bool]:
    """``all(spec.accepts(state[name]) for name, spec in specs)`` as one compiled expression. Its
    text is made from the vocabulary's field names and annotations only, never from stored data."""
    namespace: dict[str, Any] = {}
    terms = []
    for i, (name, spec) in enumerate(specs):
        if not name.isidentifier():  # pragma: no cover - dataclass fields are identifiers
            raise TypeError(f"field name {name!r} is not an identifier")
        value = f"s[{name!r}]"
        if spec.values is None and spec.deep is None and len(spec.types) == 1:
            namespace[f"t{i}"] = next(iter(spec.types))
            terms.append(f"type({value}) is t{i}")
        elif spec.values is None and spec.deep is None:
            namespace[f"t{i}"] = spec.types
            terms.append(f"type({value}) in t{i}")
        elif spec.deep is None:  # a literal: its values are hashable once its type is right
            namespace[f"t{i}"], namespace[f"v{i}"] = spec.types, spec.values
            terms.append(f"type({value}) in t{i} and {value} in v{i}")
        elif spec.values is None and len(spec.types) == 1:  # a list, a map, a Decimal, a datetime: empty is fine
            namespace[f"t{i}"], namespace[f"d{i}"] = next(iter(spec.types)), spec.deep
            terms.append(f"type({value}) is t{i} and (not {value} or d{i}({value}))")
        else:  # pragma: no cover - no field of events.py needs more
            namespace[f"a{i}"] = spec.accepts
            terms.append(f"a{i}({value})")
    code = "def fast(s):\n    return " + " and ".join(terms or ["True"]) + "\n"
    exec(compile(code, f"<stored-state check of {len(specs)} fields>", "exec"), namespace)
    fast: Callable[[dict[str, Any]], bool] = namespace["fast"]
    return fast


_NONE = type(None)
_STR = frozenset({str})


def _spec(annotation: Any) -> _Spec:
    """The ``_Spec`` of an annotation (the few forms events.py uses; another fails loudly here)."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _spec(args[0])
    if origin is Union or origin is types.UnionType:
        return _union_spec(args)
    if annotation is _NONE:
        return _Spec(frozenset({_NONE}))
    if origin is Literal:
        return _Spec(frozenset(type(a) for a in args), frozenset(args))
    if origin is list:
        return _list_spec(args[0])
    if origin is dict:
        return _dict_spec(annotation, args[0], args[1])
    if annotation is Decimal:
        return _Spec(frozenset({Decimal}), None, Decimal.is_finite)
    if annotation is datetime:
        return _Spec(frozenset({datetime}), None, _aware)
    if annotation in (str, int, date, bool):
        return _Spec(frozenset({annotation}))
    raise TypeError(f"no stored-state check for {annotation!r}: add one to ledger.topics")  # pragma: no cover


def _union_spec(args: tuple[Any, ...]) -> _Spec:
    """``_spec`` of ``A | B | …``: a set of types (and values) where every part has one."""
    parts = [_spec(a) for a in args]
    allowed = frozenset().union(*(p.types for p in parts))
    if all(p.deep is None for p in parts):
        if all(p.values is None for p in parts):
            return _Spec(allowed)
        if all(p.values is not None or p.types == {_NONE} for p in parts):
            values = frozenset().union(*(p.values if p.values is not None else {None} for p in parts))
            return _Spec(allowed, values)
    return _Spec(allowed, None, lambda v: any(p.accepts(v) for p in parts))


def _list_spec(item_type: Any) -> _Spec:
    item = _spec(item_type)
    if item == _Spec(_STR):
        return _Spec(frozenset({list}), None, lambda v: _STR.issuperset(map(type, v)))
    return _Spec(frozenset({list}), None, lambda v: all(map(item.accepts, v)))  # pragma: no cover


def _dict_spec(annotation: Any, key_type: Any, value_type: Any) -> _Spec:
    if _spec(key_type) != _Spec(_STR):  # pragma: no cover - every map of events.py is keyed by text
        raise TypeError(f"no stored-state check for {annotation!r}: add one to ledger.topics")
    if value_type is Any:
        return _Spec(frozenset({dict}), None, _json_like)
    value = _spec(value_type)
    return _Spec(
        frozenset({dict}),
        None,
        lambda v: _STR.issuperset(map(type, v)) and all(map(value.accepts, v.values())),
    )


_SCALARS = frozenset({str, int, bool, type(None), date})


def _aware(moment: datetime) -> bool:
    return moment.tzinfo is not None


def _json_like(value: Any) -> bool:
    """A free-form value (an extension, a correction's fields) as the parser makes them: JSON
    scalars, finite Decimals, dates, lists and string-keyed maps, nested at most ``MAX_DEPTH`` deep.
    Walked with a stack of its own, so no depth of stored nesting can exhaust Python's."""
    if not value:
        return True
    if type(value) is dict and _STR.issuperset(map(type, value)) and _SCALARS.issuperset(map(type, value.values())):
        return True  # the common case: a flat map of text, numbers, dates
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        v, depth = stack.pop()
        t = type(v)
        if t in _SCALARS:
            continue
        if t is Decimal:
            if not v.is_finite():
                return False
            continue
        if t is datetime:
            if v.tzinfo is None:
                return False
            continue
        if depth > MAX_DEPTH:
            return False
        if t is dict:
            for k, x in v.items():
                if type(k) is not str:
                    return False
                stack.append((x, depth + 1))
        elif t is list or t is tuple:
            stack.extend((x, depth + 1) for x in v)
        else:
            return False
    return True


def _show(topic: Any) -> str:
    text = repr(topic)
    return text if len(text) <= 80 else text[:77] + "..."


class LedgerMapper(Mapper[UUID]):
    """eventsourcing's ``Mapper``, reading topics by look-up (``event_class``) and checking states
    (``checked_state``); writing is eventsourcing's, byte for byte."""

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        try:
            cls, state = read_state(stored_event.topic, stored_event.state, self._state)
        except UnreadableRecord as e:
            raise e.located(subject_id=stored_event.originator_id, version=stored_event.originator_version) from None
        convert = find_id_convertor(cls, cast(Hashable, type(stored_event.originator_id)))
        state["originator_id"] = convert(stored_event.originator_id)
        state["originator_version"] = stored_event.originator_version
        return cast(DomainEventProtocol[UUID], assemble(cls, state))

    def _state(self, data: bytes) -> Any:
        if self.cipher:
            data = self.cipher.decrypt(data)
        if self.compressor:
            data = self.compressor.decompress(data)
        return self.transcoder.decode(data)
