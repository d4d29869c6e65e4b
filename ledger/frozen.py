"""Frozen dataclasses made from values already known to be right, without their ``__init__``.

A frozen dataclass's ``__init__`` sets each field with ``object.__setattr__`` (it must get past
its own ``__setattr__``), which costs a microsecond or more per object of ten fields. The ledger's
hot paths — reading a busy institution's trail, rebuilding the views, importing a national file —
make one such object per decision, from values the ledger wrote or has just checked, so they set
the instance's ``__dict__`` in one step instead. The object is the same: equal, hashable, with the
same ``vars()``; only classes without ``__slots__``, ``__post_init__`` or field defaults that the
caller leaves out may be made this way (the tests of each fast path compare it with ``__init__``'s).
"""

from __future__ import annotations

from typing import Any, TypeVar

T = TypeVar("T")

_new = object.__new__
_set = object.__setattr__


def assemble(cls: type[T], values: dict[str, Any]) -> T:
    """An instance of the frozen dataclass ``cls`` whose ``__dict__`` is ``values`` (every field,
    in field order, as ``__init__`` would set them; ``values`` is taken over, not copied)."""
    obj: T = _new(cls)
    _set(obj, "__dict__", values)
    return obj
