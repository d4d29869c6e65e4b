"""The time zone people read the ledger in: Beijing time unless told otherwise.

Decisions take effect on Chinese calendar days, so "today" (the default ``--as-of``) is the day in
China, not on the server: on a UTC machine the machine's date is yesterday in China until 08:00.
Record times are stored in UTC and shown in this zone. ``--tz`` or ``LEDGER_TZ`` changes it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ledger.errors import ConfigurationError

TZ_ENV = "LEDGER_TZ"
DEFAULT_TZ = "Asia/Shanghai"
_BEIJING = timezone(timedelta(hours=8), "CST")
"""China has kept UTC+8 without summer time since 1991: where no tz database is installed, the
default zone still reads right."""

_chosen: dict[str, tzinfo] = {}
"""The zone chosen for this process (``set_zone``), under the key ``zone``."""


def zone_named(name: str) -> tzinfo:
    """The zone an IANA name (``Asia/Shanghai``, ``UTC``) means; ``ConfigurationError`` otherwise."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        if name == DEFAULT_TZ:
            return _BEIJING
        msg = f"--tz / {TZ_ENV}: no time zone {name!r}; give an IANA name such as {DEFAULT_TZ} or UTC"
        raise ConfigurationError(msg) from None


def set_zone(name: str | None) -> tzinfo:
    """Use the zone ``name`` (None: Beijing time) for ``today`` and ``shown`` from now on."""
    chosen = _chosen["zone"] = zone_named(name or DEFAULT_TZ)
    return chosen


def zone() -> tzinfo:
    return _chosen.get("zone") or set_zone(None)


def today() -> date:
    """Today in the zone people read the ledger in: the default ``--as-of``."""
    return datetime.now(zone()).date()


def shown(moment: datetime) -> str:
    """A record time as people read it: in the zone, to the second, with its offset."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone()).isoformat(timespec="seconds")
