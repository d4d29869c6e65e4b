"""Every reach of the ledger into another library's private parts, in one place, behind one guard.

The import calls the plugins' validators directly rather than through pluggy's dispatch, and
encodes an event's state without making the event, where it can prove that gives what pluggy and
eventsourcing would (``plain_validators``, ``packer_for``, ``plain_event_class``). That needs
names those libraries do not promise to keep: ``check_shapes`` looks for each of them once, on
first use, and fails with a ``ConfigurationError`` naming what is missing rather than letting a
new release change what is recorded (tests/ledger/test_internals.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import cache
from typing import Any, Literal

import pluggy
from eventsourcing.domain import DomainEvent
from eventsourcing.persistence import Mapper, Transcoder

from ledger import events as ev
from ledger.errors import ConfigurationError
from ledger.topics import LedgerMapper
from ledger.transcoder import MsgpackTranscoder, packer

_COMMON_ORDER = (
    "originator_id",
    "originator_version",
    "timestamp",
    "decision_id",
    "effective",
    "by",
    "basis",
    "note",
    "subject",
    "extensions",
    "signature",
)
"""The fields every event class has, in the order eventsourcing's ``__init__`` sets them."""


def _missing() -> list[str]:
    """The private names this module uses that the installed pluggy and eventsourcing lack."""
    missing = []
    if not callable(getattr(getattr(pluggy, "_manager", None), "_multicall", None)):
        missing.append("pluggy._manager._multicall")
    pm = pluggy.PluginManager("ledger-shape-check")
    missing += [f"pluggy.PluginManager.{n}" for n in ("_inner_hookexec", "_hookexec") if not hasattr(pm, n)]
    for cls, names in (
        (pluggy.HookImpl, ("hookwrapper", "wrapper", "argnames", "function")),
        (pluggy.HookCaller, ("_hookexec",)),
    ):
        held = set(getattr(cls, "__slots__", ())) | set(vars(cls))
        missing += [f"pluggy.{cls.__name__}.{n}" for n in names if n not in held]
    mapper: Mapper[Any] = Mapper(transcoder=MsgpackTranscoder())
    missing += [f"eventsourcing Mapper.{n}" for n in ("transcoder", "compressor", "cipher") if not hasattr(mapper, n)]
    if not callable(getattr(DomainEvent, "__post_init__", None)):
        missing.append("eventsourcing DomainEvent.__post_init__")
    return missing


@cache
def check_shapes() -> None:
    """Fail with a clear error, once, where pluggy or eventsourcing lack a name used here."""
    missing = _missing()
    if missing:
        msg = (
            f"the installed pluggy {pluggy.__version__} or eventsourcing no longer has {', '.join(missing)}, "
            "which the ledger's import relies on: install the versions pyproject.toml names"
        )
        raise ConfigurationError(msg)


def plain_event_class(cls: type[ev.Decision]) -> bool:
    """May an event of ``cls`` be stored from its state, built without its ``__init__``? Only if
    its fields are the common ones then the kind's own (``own``), with no checks beyond
    eventsourcing's ``DomainEvent``'s, at class version 1."""
    check_shapes()
    from ledger.decisions import kind_specs

    own = tuple(f.attr for f in kind_specs()[cls.kind].fields)
    return (
        tuple(f.name for f in dataclasses.fields(cls)) == (*_COMMON_ORDER, *own)
        and cls.__post_init__ is DomainEvent.__post_init__
        and getattr(cls, "class_version", 1) == 1
    )


def plain_validators(pm: pluggy.PluginManager) -> list[Callable[[Any], Any]] | Literal[False]:
    """The functions pluggy calls for ``ledger_validate_decision``, in its order, to be called
    directly (pluggy's dispatch costs more per line than the validators); False when pluggy must
    call them itself: a wrapper, a traced or monitored manager. Called directly they get the same
    argument and give the same results in the same order (pluggy calls the last registered first
    and keeps the results that are not None)."""
    check_shapes()
    hook = pm.hook.ledger_validate_decision
    inner = getattr(pm, "_inner_hookexec", None)
    default = getattr(pluggy._manager, "_multicall", None)  # only compared, never called
    if inner is None or inner is not default or getattr(hook, "_hookexec", None) != pm._hookexec:
        return False
    functions = []
    for impl in reversed(hook.get_hookimpls()):
        if impl.hookwrapper or impl.wrapper or impl.argnames not in (("decision",), ()):
            return False
        function = impl.function
        functions.append(function if impl.argnames else (lambda _record, f=function: f()))
    return functions


def packer_for(mapper: Mapper[Any]) -> Callable[[Any], bytes] | None:
    """What eventsourcing's ``Mapper.to_stored_event`` does to an event's state, without the event,
    where that is all it does: the mapper is eventsourcing's (``LedgerMapper`` changes only
    reading), without compression or encryption, its transcoder the ledger's msgpack one (then its
    packer: the same bytes as ``MsgpackTranscoder.encode``). None otherwise: then the mapper is used."""
    check_shapes()
    transcoder: Transcoder | None = getattr(mapper, "transcoder", None)
    if (
        type(mapper) not in (Mapper, LedgerMapper)
        or mapper.compressor is not None
        or mapper.cipher is not None
        or type(transcoder) is not MsgpackTranscoder
    ):
        return None
    return packer()


def state_decoder(mapper: Mapper[Any]) -> Callable[[bytes], Any]:
    """What ``Mapper.to_domain_event`` does to a stored state before it builds the event (decrypt,
    decompress, decode), for readers that want the state without the event."""
    decode, cipher, compressor = mapper.transcoder.decode, mapper.cipher, mapper.compressor
    if cipher is None and compressor is None:
        return decode

    def full(state: bytes) -> Any:
        if cipher is not None:
            state = cipher.decrypt(state)
        if compressor is not None:
            state = compressor.decompress(state)
        return decode(state)

    return full
