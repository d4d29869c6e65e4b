"""China's official working days (工作日), for deadlines the regulations count in them.

Why this exists: the rules the ledger checks count time in working days, not calendar days —

* MTM-2018#11: an institution files a restricted technology within **15 working days** after its
  first case (also HN-2018 §二(二));
* MTM-2018#29: a training base files with the province within **3 working days** of its first
  enrolment notice;
* HN-2018 §五: a training base reports the trainees who passed within **5 working days**;
* CQ-2017: each Chongqing filing is publicly noticed for **5 working days** (公示期).

A 工作日 is not "Monday to Friday": statutory holidays (法定节假日) are off, and the make-up days
(调休) that the State Council announces each year move work onto Saturdays and Sundays. Example:
15 working days after 2019-04-22 is 2019-05-14, because 2019-05-01…04 were off and Sundays
2019-04-28 and 2019-05-05 were working days. The calendar changes every year by announcement
(国务院办公厅关于XXXX年部分节假日安排的通知, usually published in November or December for the
next year), so it cannot be computed: it is data. A finding such as "filed late" is a statement
about someone's conduct, so this module never guesses a year it has no announcement for. It raises
:class:`~ledger.errors.CalendarError` naming the year instead, and the fix is to supply that year's
schedule as a JSON file (see ``ledger/data/calendars/README.md`` and :func:`load_year_files`).

Years known out of the box come from the ``chinese_calendar`` package's tables; extra years (from
``LEDGER_CALENDAR_DIR`` or plugins) are layered on top and **replace** a built-in year of the same
number, so a correction (such as the 2020 Spring Festival extension, announced after the original
notice) can be made without upgrading anything.

Counting is by lookup, not by walking day by day: every known working day is held once as a sorted
array of ordinals, so ``add_workdays`` and ``workdays_between`` are a ``bisect`` each plus a check
that every year the answer depends on is known.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from chinese_calendar import constants as _chinese_calendar_data

from ledger.errors import CalendarError

__all__ = [
    "HOW_TO_ADD_A_YEAR",
    "WorkdayCalendar",
    "YearSchedule",
    "load_year_dir",
    "load_year_files",
]

HOW_TO_ADD_A_YEAR = (
    "add the State Council's 放假调休安排 for that year as data: a JSON file "
    '{"year": …, "source": …, "holidays": [...], "workdays": [...]} in the directory named by '
    "LEDGER_CALENDAR_DIR, or from a plugin (format: ledger/data/calendars/README.md)"
)

_KEYS = ("year", "source", "holidays", "workdays")
_ISO_DATE = re.compile(r"\A\d{4}-\d{2}-\d{2}\Z")
_WEEKDAY_NAMES = (
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
)


def _check_date_arg(value: object, name: str) -> date:
    """Accept a plain ``date`` only.

    A ``datetime`` is refused rather than truncated: the ledger's timestamps are tz-aware, and the
    day that counts is the day in China (``dt.astimezone(ZoneInfo("Asia/Shanghai")).date()``), which
    silently taking ``.date()`` of a UTC timestamp would get wrong for eight hours of every day.
    """
    if isinstance(value, datetime):
        raise TypeError(
            f"{name} must be a date, not a datetime: convert it to the date in China first "
            '(dt.astimezone(ZoneInfo("Asia/Shanghai")).date())'
        )
    if not isinstance(value, date):
        raise TypeError(f"{name} must be a datetime.date, not {type(value).__name__}")
    return value


def _format_years(years: Iterable[int]) -> str:
    """Render ``[2004, …, 2026, 2028]`` as ``2004–2026, 2028`` so an error message stays short."""
    runs: list[tuple[int, int]] = []
    for year in sorted(years):
        if runs and runs[-1][1] == year - 1:
            runs[-1] = (runs[-1][0], year)
        else:
            runs.append((year, year))
    if not runs:
        return "no year at all"
    return ", ".join(str(a) if a == b else f"{a}–{b}" for a, b in runs)


def _check_schedule(
    year: object,
    source: object,
    holidays: Sequence[date],
    workdays: Sequence[date],
    where: str,
) -> None:
    """Refuse a schedule that cannot be what the State Council announced.

    The rules, and why:

    * every date lies in ``year``: a holiday span across New Year (e.g. 2007-12-30…2008-01-01) is
      split between the two years' files, so each year is known or unknown as a whole;
    * ``workdays`` are Saturdays or Sundays: a weekday is a working day anyway, so a weekday listed
      there is a typo for some other date;
    * ``holidays`` may include weekend days: notices state whole spans ("10月1日至7日放假") and
      chinese_calendar's tables list them too; a weekend holiday changes nothing, it is harmless;
    * no date is both, none is listed twice, and ``holidays`` is not empty (元旦 alone guarantees
      one): each of these is a slip of the pen, and a slip here moves a legal deadline;
    * ``source`` names the announcement, because a deadline in an audit must say what it rests on.
    """
    if not isinstance(year, int) or isinstance(year, bool) or not 1 <= year <= 9999:
        raise CalendarError(f"{where}: 'year' must be an integer year, got {year!r}")
    if not isinstance(source, str) or not source.strip():
        raise CalendarError(
            f"{where}: year {year}: 'source' must name the announcement the dates come from "
            f"(e.g. 国务院办公厅关于…年部分节假日安排的通知), got {source!r}"
        )
    prefix = f"{where}: year {year}"
    for field, days in (("holidays", holidays), ("workdays", workdays)):
        seen: set[date] = set()
        for day in days:
            if isinstance(day, datetime) or not isinstance(day, date):
                raise CalendarError(f"{prefix}: {field}: {day!r} is not a date")
            if day.year != year:
                raise CalendarError(
                    f"{prefix}: {field}: {day.isoformat()} is not in {year} (a year's schedule holds "
                    "only its own dates; a span across New Year goes half in each year)"
                )
            if day in seen:
                raise CalendarError(f"{prefix}: {field}: {day.isoformat()} is listed twice")
            seen.add(day)
    for day in workdays:
        if day.weekday() < 5:
            raise CalendarError(
                f"{prefix}: workdays: {day.isoformat()} is a {_WEEKDAY_NAMES[day.weekday()]}; a make-up "
                "working day (调休) must be a Saturday or Sunday, a weekday is a working day anyway"
            )
    both = sorted(set(holidays) & set(workdays))
    if both:
        raise CalendarError(f"{prefix}: {both[0].isoformat()} is listed both as a holiday and as a working day")
    if not holidays:
        raise CalendarError(f"{prefix}: 'holidays' is empty; every year has statutory holidays")


@dataclass(frozen=True)
class YearSchedule:
    """One year's 放假调休安排, as announced: the exceptions to "Monday to Friday".

    ``holidays`` are the days off (weekdays matter; weekend days are allowed and harmless, see
    :func:`_check_schedule`), ``workdays`` the weekend days that are working days (调休), ``source``
    the announcement they come from, kept so a computed deadline can cite it.
    """

    year: int
    holidays: frozenset[date]
    workdays: frozenset[date]
    source: str

    def __post_init__(self) -> None:
        _check_schedule(
            self.year,
            self.source,
            tuple(self.holidays),
            tuple(self.workdays),
            f"YearSchedule({self.year!r})",
        )

    def is_workday(self, day: date) -> bool:
        """Working day by this year's rule: a weekday that is not a holiday, or a 调休 day."""
        if day in self.workdays:
            return True
        return day.weekday() < 5 and day not in self.holidays

    @classmethod
    def from_dict(cls, data: object, *, origin: str = "<dict>") -> YearSchedule:
        """Read the JSON form; ``origin`` (a file name) starts every error message.

        Strict, because these files are written by hand from an announcement: unknown or missing
        keys, dates not written exactly ``YYYY-MM-DD`` and every rule of :func:`_check_schedule`
        are refused with the offending entry named.
        """
        if not isinstance(data, Mapping):
            raise CalendarError(
                f"{origin}: a year's schedule must be a JSON object with keys "
                f"{', '.join(_KEYS)}, got {type(data).__name__}"
            )
        year = data.get("year")
        where = origin
        missing = [key for key in _KEYS if key not in data]
        if missing:
            raise CalendarError(f"{where}: missing key(s) {', '.join(map(repr, missing))}")
        unknown = sorted(str(key) for key in data if key not in _KEYS)
        if unknown:
            raise CalendarError(
                f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; the keys are {', '.join(_KEYS)}"
            )
        if not isinstance(year, int) or isinstance(year, bool):
            raise CalendarError(f"{where}: 'year' must be an integer year, got {year!r}")
        parsed: dict[str, list[date]] = {}
        for field in ("holidays", "workdays"):
            entries = data[field]
            if not isinstance(entries, list):
                raise CalendarError(
                    f"{where}: year {year}: '{field}' must be a list of \"YYYY-MM-DD\" strings, "
                    f"got {type(entries).__name__}"
                )
            days: list[date] = []
            for index, entry in enumerate(entries):
                days.append(_parse_iso_date(entry, f"{where}: year {year}: {field}[{index}]"))
            parsed[field] = days
        _check_schedule(year, data["source"], parsed["holidays"], parsed["workdays"], where)
        return cls(
            year=year,
            holidays=frozenset(parsed["holidays"]),
            workdays=frozenset(parsed["workdays"]),
            source=str(data["source"]),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, dates sorted, so a file written from it diffs cleanly."""
        return {
            "year": self.year,
            "source": self.source,
            "holidays": [day.isoformat() for day in sorted(self.holidays)],
            "workdays": [day.isoformat() for day in sorted(self.workdays)],
        }


def _parse_iso_date(entry: object, where: str) -> date:
    # date.fromisoformat accepts "20270101" and "2027-W01-5" too; a hand-written file should not.
    if not isinstance(entry, str) or not _ISO_DATE.match(entry):
        raise CalendarError(f"{where}: {entry!r} is not a date written YYYY-MM-DD")
    try:
        return date.fromisoformat(entry)
    except ValueError:
        raise CalendarError(f"{where}: {entry!r} is not a real date") from None


def _merge(schedules: Iterable[YearSchedule]) -> dict[int, YearSchedule]:
    """Index by year; two *different* schedules for one year are refused, not silently ordered."""
    merged: dict[int, YearSchedule] = {}
    for schedule in schedules:
        if not isinstance(schedule, YearSchedule):
            raise TypeError(f"expected a YearSchedule, got {type(schedule).__name__}")
        earlier = merged.get(schedule.year)
        if earlier is not None and earlier != schedule:
            raise CalendarError(
                f"two different schedules for {schedule.year} ({earlier.source!r} and {schedule.source!r}); keep one"
            )
        merged[schedule.year] = schedule
    return merged


@lru_cache(maxsize=1)
def _chinese_calendar_years() -> Mapping[int, YearSchedule]:
    """chinese_calendar's tables regrouped by year; the years are whatever its tables hold."""
    try:
        version = metadata.version("chinese_calendar")
    except metadata.PackageNotFoundError:  # pragma: no cover - installed some other way
        version = "unknown version"
    holidays: dict[int, set[date]] = {}
    workdays: dict[int, set[date]] = {}
    for day in _chinese_calendar_data.holidays:
        holidays.setdefault(day.year, set()).add(day)
    for day in _chinese_calendar_data.workdays:
        workdays.setdefault(day.year, set()).add(day)
    return {
        year: YearSchedule(
            year=year,
            holidays=frozenset(holidays.get(year, ())),
            workdays=frozenset(workdays.get(year, ())),
            source=f"chinese_calendar {version} (国务院办公厅 部分节假日安排的通知, {year})",
        )
        for year in sorted(holidays.keys() | workdays.keys())
    }


@lru_cache(maxsize=256)
def _year_ordinals(schedule: YearSchedule) -> tuple[int, ...]:
    """A year's working days as ordinals; cached, since every calendar shares the built-in years."""
    first = date(schedule.year, 1, 1).toordinal()
    last = date(schedule.year, 12, 31).toordinal()
    return tuple(o for o in range(first, last + 1) if schedule.is_workday(date.fromordinal(o)))


class WorkdayCalendar:
    """Counts 工作日 over the years it has a schedule for, and refuses every other year.

    Built from a mapping year → :class:`YearSchedule`; the years need not be contiguous (a gap is
    simply an unknown year). Immutable: :meth:`with_years` returns a new calendar.
    """

    __slots__ = ("_first_unknown_after", "_known", "_ordinals", "_schedules")

    def __init__(self, years: Mapping[int, YearSchedule]) -> None:
        for key, schedule in years.items():
            if not isinstance(schedule, YearSchedule):
                raise TypeError(f"year {key}: expected a YearSchedule, got {type(schedule).__name__}")
            if key != schedule.year:
                raise CalendarError(f"schedule for {schedule.year} filed under year {key}")
        self._schedules: dict[int, YearSchedule] = dict(sorted(years.items()))
        self._known: frozenset[int] = frozenset(self._schedules)
        ordinals: list[int] = []
        for schedule in self._schedules.values():
            ordinals.extend(_year_ordinals(schedule))
        # Every known working day, ascending: counting is bisect_right on this list.
        self._ordinals: list[int] = ordinals
        # For each known year, the first unknown year after it, so the error for "ran off the end
        # of the data" names the right year without a scan.
        self._first_unknown_after: dict[int, int] = {}
        for year in reversed(self._schedules):
            self._first_unknown_after[year] = self._first_unknown_after.get(year + 1, year + 1)

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def china(cls, extra: Iterable[YearSchedule] = ()) -> WorkdayCalendar:
        """chinese_calendar's years plus ``extra``; an extra year **replaces** a built-in one.

        Replacing (not merging day by day) keeps one announcement per year as the source, and lets a
        later correction supersede what the installed chinese_calendar says. Two different extra
        schedules for the same year are refused with :class:`CalendarError`.
        """
        return cls({**_chinese_calendar_years(), **_merge(extra)})

    def with_years(self, schedules: Iterable[YearSchedule]) -> WorkdayCalendar:
        """A new calendar with ``schedules`` added, each replacing a known year of the same number."""
        return type(self)({**self._schedules, **_merge(schedules)})

    # -- what it knows ------------------------------------------------------------------------

    @property
    def known_years(self) -> tuple[int, ...]:
        return tuple(self._schedules)

    def knows(self, year: int) -> bool:
        return year in self._known

    def schedule(self, year: int) -> YearSchedule:
        """The schedule a count in ``year`` rests on (to cite its ``source``)."""
        self._require(year, year, f"the schedule for {year}")
        return self._schedules[year]

    def __iter__(self) -> Iterator[YearSchedule]:
        return iter(self._schedules.values())

    def __repr__(self) -> str:
        return f"WorkdayCalendar(years={_format_years(self._schedules)})"

    # -- questions ----------------------------------------------------------------------------

    def is_workday(self, day: date) -> bool:
        day = _check_date_arg(day, "day")
        self._require(day.year, day.year, f"whether {day.isoformat()} is a working day")
        return self._schedules[day.year].is_workday(day)

    def add_workdays(self, start: date, n: int) -> date:
        """The ``n``-th working day strictly after ``start`` (the last day of an n-working-day term).

        MTM-2018#11: a first case on 2019-04-22 must be filed by ``add_workdays(2019-04-22, 15)``,
        2019-05-14. Only the years after ``start`` up to the answer must be known: ``start``'s own
        year matters only if a day after ``start`` falls in it.
        """
        start = _check_date_arg(start, "start")
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"n must be an int, not {type(n).__name__}")
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        what = f"{n} working day{'s' if n != 1 else ''} after {start.isoformat()}"
        first_year = self._year_after(start)
        index = bisect_right(self._ordinals, start.toordinal()) + n - 1
        if index >= len(self._ordinals):
            raise self._unknown(self._first_unknown_from(first_year), what)
        result = date.fromordinal(self._ordinals[index])
        self._require(first_year, result.year, what)
        return result

    deadline = add_workdays

    def workdays_between(self, start: date, end: date) -> int:
        """How many working days ``d`` with ``start < d <= end``; 0 when ``end <= start``.

        That is the count a lateness check needs: a filing on ``end`` for a first case on ``start``
        is on time under MTM-2018#11 when this is at most 15. Every year from the day after
        ``start`` to ``end`` must be known.
        """
        start = _check_date_arg(start, "start")
        end = _check_date_arg(end, "end")
        if end <= start:
            return 0
        self._require(
            self._year_after(start),
            end.year,
            f"the working days from {start.isoformat()} to {end.isoformat()}",
        )
        return bisect_right(self._ordinals, end.toordinal()) - bisect_right(self._ordinals, start.toordinal())

    # -- internals ----------------------------------------------------------------------------

    @staticmethod
    def _year_after(start: date) -> int:
        """The year of the day after ``start`` (without overflowing at date.max)."""
        return start.year + 1 if (start.month, start.day) == (12, 31) else start.year

    def _first_unknown_from(self, year: int) -> int:
        return self._first_unknown_after.get(year, year) if year in self._known else year

    def _require(self, first_year: int, last_year: int, what: str) -> None:
        for year in range(first_year, last_year + 1):
            if year not in self._known:
                raise self._unknown(year, what)

    def _unknown(self, year: int, what: str) -> CalendarError:
        return CalendarError(
            f"cannot work out {what}: no official working-day schedule (放假调休安排) for {year}. "
            f"This calendar knows {_format_years(self._schedules)}; it does not guess. "
            f"To count in {year}, {HOW_TO_ADD_A_YEAR}."
        )


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    for key in keys:
        if keys.count(key) > 1:
            raise ValueError(f"key {key!r} appears twice in one object")
    return dict(pairs)


def load_year_files(paths: Iterable[Path]) -> list[YearSchedule]:
    """Read year files: each holds one schedule object or a JSON list of them.

    Errors name the file (and the entry, for a list). The same year in two places is allowed only
    if both say exactly the same thing; otherwise which one wins would depend on file order.
    """
    loaded: list[YearSchedule] = []
    origins: dict[int, tuple[str, YearSchedule]] = {}
    for given in paths:
        path = Path(given)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise CalendarError(f"{path}: cannot read calendar file ({exc.strerror or exc})") from None
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise CalendarError(f"{path}: not UTF-8 (byte {exc.start})") from None
        try:
            document = json.loads(text, object_pairs_hook=_reject_duplicate_keys)
        except json.JSONDecodeError as exc:
            raise CalendarError(f"{path}: not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
        except ValueError as exc:
            raise CalendarError(f"{path}: {exc}") from None
        if isinstance(document, list):
            if not document:
                raise CalendarError(f"{path}: an empty list holds no year")
            entries = [(f"{path} (entry {i + 1})", item) for i, item in enumerate(document)]
        else:
            entries = [(str(path), document)]
        for origin, item in entries:
            schedule = YearSchedule.from_dict(item, origin=origin)
            previous = origins.get(schedule.year)
            if previous is not None:
                if previous[1] != schedule:
                    raise CalendarError(
                        f"{origin}: a different schedule for {schedule.year} is already in {previous[0]}; keep one"
                    )
                continue
            origins[schedule.year] = (origin, schedule)
            loaded.append(schedule)
    return loaded


def load_year_dir(directory: Path) -> list[YearSchedule]:
    """Every ``*.json`` year file in ``directory`` (e.g. ``$LEDGER_CALENDAR_DIR``), in name order."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CalendarError(f"{directory}: calendar directory does not exist or is not a directory")
    return load_year_files(sorted(directory.glob("*.json")))
