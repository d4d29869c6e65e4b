"""msgpack transcoder for eventsourcing: compact, fast, and exact for the types events hold.

eventsourcing's default JSON transcoder is slower and larger; msgpack alone loses type (dates and
datetimes become errors, tuples become lists, Decimals are refused). Each non-native type gets one
*flat* ExtType (NOTES.md: a flat ext costs several times less than a generic nested one):

====  ==========  ==========================================================================
code  type        payload
====  ==========  ==========================================================================
1     UUID        the 16 bytes
2     datetime    int64 local wall-clock microseconds since 1970-01-01T00:00 ‖ int64 UTC offset
                  in microseconds (wall time, not UTC, so every datetime Python can hold decodes)
3     date        int32 proleptic Gregorian ordinal
4     Decimal     its ``str`` in ASCII (exact, including exponent and trailing zeros)
5     tuple       a msgpack array (so tuples come back as tuples, lists as lists)
====  ==========  ==========================================================================

Naive datetimes are refused: a record time without a zone is ambiguous, and an audit ledger does
not guess. These codes are part of the stored format: never renumber them.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

import msgpack
from eventsourcing.persistence import Transcoder

_UUID, _DATETIME, _DATE, _DECIMAL, _TUPLE = 1, 2, 3, 4, 5
_DT = struct.Struct(">qq")
_DATE_S = struct.Struct(">i")
_EPOCH = datetime(1970, 1, 1)  # the origin of *wall-clock* time; the zone is stored beside it
_ZONES: dict[int, timezone] = {0: UTC}


def _zone(offset_micros: int) -> timezone:
    zone = _ZONES.get(offset_micros)
    if zone is None:
        zone = _ZONES[offset_micros] = timezone(timedelta(microseconds=offset_micros))
    return zone


def _micros(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


# The last datetime encoded and decoded: every event of one import carries the same record time,
# so these save its encoding per event written and read. One tuple each, replaced
# whole, so threads sharing a transcoder never see a half-updated pair.
_last_encoded: tuple[Any, msgpack.ExtType | None] = (None, None)
_last_decoded: tuple[bytes, datetime | None] = (b"", None)
_date_exts: dict[date, msgpack.ExtType] = {}
"""Encoded dates, and decoded ones below: decisions name a few thousand distinct days between them.
(Keys are exact ``date`` values: ``datetime`` never reaches here, it is encoded above.)"""
_dates: dict[bytes, date] = {}


def _default(obj: Any) -> msgpack.ExtType:
    global _last_encoded  # noqa: PLW0603 - a one-entry cache (see above)
    # datetime before date: datetime is a subclass of date.
    if isinstance(obj, datetime):
        last = _last_encoded
        if last[0] is obj and last[1] is not None:
            return last[1]
        offset = obj.utcoffset()
        if offset is None:
            msg = f"naive datetime {obj!r} cannot be stored: give it a time zone"
            raise TypeError(msg)
        wall = _micros(obj.replace(tzinfo=None) - _EPOCH)
        ext = msgpack.ExtType(_DATETIME, _DT.pack(wall, _micros(offset)))
        _last_encoded = (obj, ext)
        return ext
    if isinstance(obj, date):
        ext = _date_exts.get(obj)
        if ext is None:
            if len(_date_exts) > 100_000:  # a few thousand distinct days in practice
                _date_exts.clear()
            ext = _date_exts[obj] = msgpack.ExtType(_DATE, _DATE_S.pack(obj.toordinal()))
        return ext
    if isinstance(obj, UUID):
        return msgpack.ExtType(_UUID, obj.bytes)
    if isinstance(obj, Decimal):
        return msgpack.ExtType(_DECIMAL, str(obj).encode("ascii"))
    if isinstance(obj, tuple):
        return msgpack.ExtType(_TUPLE, _pack(list(obj)))
    msg = f"cannot store an object of type {type(obj).__name__}"
    raise TypeError(msg)


def _ext_hook(code: int, data: bytes) -> Any:
    if code == _UUID:
        return UUID(bytes=data)
    if code == _DATETIME:
        global _last_decoded  # noqa: PLW0603 - a one-entry cache (see _last_encoded)
        last = _last_decoded
        if last[0] == data and last[1] is not None:
            return last[1]
        wall, offset = _DT.unpack(data)
        moment = (_EPOCH + timedelta(microseconds=wall)).replace(tzinfo=_zone(offset))
        _last_decoded = (bytes(data), moment)
        return moment
    if code == _DATE:
        day = _dates.get(data)
        if day is None:
            if len(_dates) > 100_000:
                _dates.clear()
            day = _dates[bytes(data)] = date.fromordinal(_DATE_S.unpack(data)[0])
        return day
    if code == _DECIMAL:
        return Decimal(data.decode("ascii"))
    if code == _TUPLE:
        return tuple(_unpack(data))
    return msgpack.ExtType(code, data)


def _pack(obj: Any) -> bytes:
    packed: bytes = msgpack.packb(obj, default=_default, use_bin_type=True, strict_types=True)
    return packed


def _unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, ext_hook=_ext_hook, raw=False, strict_map_key=False)


def packer() -> Callable[[Any], bytes]:
    """``_pack`` as one ``msgpack.Packer``'s ``pack``: the same options, so the same bytes, without
    making a Packer per call (``msgpack.packb`` does). A Packer is not for sharing between threads:
    one per import (``ledger.importer.Importer``)."""
    pack: Callable[[Any], bytes] = msgpack.Packer(default=_default, use_bin_type=True, strict_types=True).pack
    return pack


def unpacker(stream: Any) -> msgpack.Unpacker:
    """``_unpack`` of one object after another as ``stream.read`` gives their bytes (a pipe between
    processes that speak the ledger's encoding: ``ledger.integrity.readahead``)."""
    return msgpack.Unpacker(stream, ext_hook=_ext_hook, raw=False, strict_map_key=False)


class MsgpackTranscoder(Transcoder):
    """The ledger's transcoder; chosen by ``LedgerApplication.construct_transcoder``."""

    def encode(self, obj: Any) -> bytes:
        return _pack(obj)

    def decode(self, data: bytes) -> Any:
        return _unpack(data)
