"""Working-day deadlines as the regulations count them (MTM-2018#11, #29, HN-2018 §五, CQ-2017).

Every 2027 schedule in this file is MADE UP for the tests: the official 2027 放假调休安排 is not
known here, and nothing in this file should be mistaken for it.
"""

from __future__ import annotations

import json
import timeit
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import chinese_calendar  # type: ignore[import-untyped]
import pytest
from chinese_calendar import constants as cc_data
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import CalendarError, LedgerError
from ledger.workdays import (
    WorkdayCalendar,
    YearSchedule,
    load_year_dir,
    load_year_files,
)

CAL = WorkdayCalendar.china()
CC_FIRST = min(d.year for d in cc_data.holidays)
CC_LAST = max(d.year for d in cc_data.holidays)

FAKE_2027_SOURCE = "MADE UP FOR TESTS - not the official 2027 schedule"


def fake_2027(**changes: Any) -> dict[str, Any]:
    """A made-up 2027 schedule (New Year's Day off, Saturday 2027-01-09 a make-up day)."""
    data: dict[str, Any] = {
        "year": 2027,
        "source": FAKE_2027_SOURCE,
        "holidays": ["2027-01-01"],
        "workdays": ["2027-01-09"],
    }
    data.update(changes)
    return data


# -- the regulations' own examples ------------------------------------------------------------


def test_mtm_2018_11_filing_within_15_working_days_of_first_case() -> None:
    # MTM-2018#11: first case 2019-04-22; 劳动节 2019-05-01..04 off, Sundays 04-28 and 05-05 worked.
    assert CAL.add_workdays(date(2019, 4, 22), 15) == date(2019, 5, 14)
    assert CAL.deadline(date(2019, 4, 22), 15) == date(2019, 5, 14)
    assert CAL.workdays_between(date(2019, 4, 22), date(2019, 5, 14)) == 15  # on time
    assert CAL.workdays_between(date(2019, 4, 22), date(2019, 5, 15)) == 16  # late


def test_make_up_sundays_of_2019_are_working_days() -> None:
    assert date(2019, 4, 28).weekday() == 6 and date(2019, 5, 5).weekday() == 6
    assert CAL.is_workday(date(2019, 4, 28))
    assert CAL.is_workday(date(2019, 5, 5))
    assert not CAL.is_workday(date(2019, 5, 1))
    assert not CAL.is_workday(date(2019, 5, 4))  # a Saturday inside the holiday
    assert not CAL.is_workday(date(2019, 4, 27))  # an ordinary Saturday


def test_spring_festival_2019_span() -> None:
    # 2019-02-04..10 off; Saturday 02-02 and Sunday 02-03 worked.
    assert CAL.is_workday(date(2019, 2, 2)) and CAL.is_workday(date(2019, 2, 3))
    assert not any(CAL.is_workday(date(2019, 2, d)) for d in range(4, 11))
    assert CAL.is_workday(date(2019, 2, 11))
    assert CAL.add_workdays(date(2019, 2, 1), 3) == date(2019, 2, 11)
    assert CAL.workdays_between(date(2019, 2, 3), date(2019, 2, 10)) == 0


def test_national_day_2019_span_cq_2017_five_working_day_public_notice() -> None:
    # CQ-2017: a filing publicly noticed from Friday 2019-09-27 for 5 working days: Sunday 09-29
    # (make-up), 09-30, then 10-01..07 off, then 10-08, 09, 10.
    assert CAL.add_workdays(date(2019, 9, 27), 5) == date(2019, 10, 10)
    assert not any(CAL.is_workday(date(2019, 10, d)) for d in range(1, 8))
    assert CAL.is_workday(date(2019, 10, 12))  # Saturday make-up day


def test_mtm_2018_29_training_base_files_within_3_working_days() -> None:
    # 2025: 10-01..08 off (National Day with Mid-autumn), Saturday 10-11 a make-up day.
    assert CAL.add_workdays(date(2025, 9, 30), 3) == date(2025, 10, 11)


def test_hn_2018_5_passed_list_within_5_working_days_across_spring_festival() -> None:
    # 2024: 02-10..17 off, Sunday 02-18 a make-up day; Friday 02-09 (除夕) was a working day.
    assert CAL.add_workdays(date(2024, 2, 8), 5) == date(2024, 2, 21)


def test_new_year_span_across_years_2007_2008() -> None:
    # The 2008 元旦 holiday began 2007-12-30; Saturday 2007-12-29 was worked.
    assert CAL.is_workday(date(2007, 12, 29))
    assert not CAL.is_workday(date(2007, 12, 31))
    assert CAL.add_workdays(date(2007, 12, 28), 2) == date(2008, 1, 2)


# -- years without data -----------------------------------------------------------------------


def test_first_case_late_2026_runs_into_unknown_2027() -> None:
    with pytest.raises(CalendarError) as info:
        CAL.add_workdays(date(2026, 12, 20), 15)
    message = str(info.value)
    assert "2027" in message
    assert f"{CC_FIRST}–{CC_LAST}" in message  # what it does know
    assert "LEDGER_CALENDAR_DIR" in message  # how to add a year
    assert isinstance(info.value, LedgerError)


def test_unknown_year_never_leaks_not_implemented_error() -> None:
    for call in (
        lambda: CAL.is_workday(date(2027, 3, 1)),
        lambda: CAL.workdays_between(date(2026, 12, 1), date(2027, 1, 5)),
        lambda: CAL.add_workdays(date(2026, 12, 30), 5),
        lambda: CAL.schedule(2027),
    ):
        with pytest.raises(CalendarError, match="2027"):
            call()
    with pytest.raises(CalendarError, match="2003"):
        CAL.is_workday(date(2003, 6, 2))


def test_days_before_start_need_no_data() -> None:
    # Only the days after `start` are counted, so 2003-12-31's year does not have to be known.
    assert CAL.add_workdays(date(2003, 12, 31), 1) == date(2004, 1, 2)
    assert CAL.workdays_between(date(2003, 12, 31), date(2004, 1, 2)) == 1
    # An empty interval counts nothing and needs nothing.
    assert CAL.workdays_between(date(2030, 1, 1), date(2030, 1, 1)) == 0
    assert CAL.workdays_between(date(2030, 1, 2), date(2029, 1, 1)) == 0
    # The last known day is enough for a count ending on it.
    assert CAL.workdays_between(date(2026, 12, 20), date(2026, 12, 31)) == 9


def test_a_made_up_2027_makes_the_deadline_countable() -> None:
    cal = WorkdayCalendar.china(extra=[YearSchedule.from_dict(fake_2027())])
    assert cal.known_years == tuple(range(CC_FIRST, 2028))
    # 2026-12-21..25, 28..31 (9), made-up 01-01 off, 01-04..08 (14), Saturday 01-09 made up (15).
    assert cal.add_workdays(date(2026, 12, 20), 15) == date(2027, 1, 9)
    assert cal.workdays_between(date(2026, 12, 20), date(2027, 1, 9)) == 15
    assert cal.schedule(2027).source == FAKE_2027_SOURCE
    without_make_up = CAL.with_years([YearSchedule.from_dict(fake_2027(workdays=[]))])
    assert without_make_up.add_workdays(date(2026, 12, 20), 15) == date(2027, 1, 11)
    # The original calendar is unchanged.
    assert not CAL.knows(2027)


def test_a_gap_year_is_unknown_even_when_a_later_year_is_known() -> None:
    fake_2028 = YearSchedule(
        year=2028,
        holidays=frozenset({date(2028, 1, 3)}),
        workdays=frozenset(),
        source="MADE UP FOR TESTS",
    )
    cal = CAL.with_years([fake_2028])
    assert repr(cal) == f"WorkdayCalendar(years={CC_FIRST}–{CC_LAST}, 2028)"
    for n in (15, 400):
        with pytest.raises(CalendarError, match=rf"for 2027\. .*knows {CC_FIRST}–{CC_LAST}, 2028"):
            cal.add_workdays(date(2026, 12, 20), n)
    with pytest.raises(CalendarError, match="2027"):
        cal.workdays_between(date(2026, 12, 20), date(2028, 2, 1))
    assert cal.add_workdays(date(2027, 12, 31), 1) == date(2028, 1, 4)


def test_an_extra_year_replaces_the_built_in_one() -> None:
    # A made-up correction: 2026-12-21 declared a holiday.
    built_in = CAL.schedule(2026)
    corrected = YearSchedule(
        year=2026,
        holidays=built_in.holidays | {date(2026, 12, 21)},
        workdays=built_in.workdays,
        source="MADE UP FOR TESTS: a correction",
    )
    cal = WorkdayCalendar.china(extra=[corrected])
    assert not cal.is_workday(date(2026, 12, 21))
    assert cal.workdays_between(date(2026, 12, 20), date(2026, 12, 31)) == 8
    assert cal.schedule(2026).source.startswith("MADE UP")


def test_two_different_extra_schedules_for_one_year_are_refused() -> None:
    a = YearSchedule.from_dict(fake_2027())
    b = YearSchedule.from_dict(fake_2027(workdays=[]))
    with pytest.raises(CalendarError, match="two different schedules for 2027"):
        WorkdayCalendar.china(extra=[a, b])
    assert WorkdayCalendar.china(extra=[a, a]).knows(2027)


def test_known_years_come_from_chinese_calendar_data() -> None:
    assert CAL.known_years == tuple(range(CC_FIRST, CC_LAST + 1))
    assert CAL.schedule(2019).source.startswith("chinese_calendar")


def test_arguments_are_checked() -> None:
    with pytest.raises(TypeError, match="Asia/Shanghai"):
        CAL.is_workday(datetime(2019, 4, 22, 12))
    with pytest.raises(ValueError, match="at least 1"):
        CAL.add_workdays(date(2019, 4, 22), 0)
    with pytest.raises(TypeError):
        CAL.add_workdays(date(2019, 4, 22), 1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        CAL.workdays_between("2019-04-22", date(2019, 5, 1))  # type: ignore[arg-type]


def test_counting_is_fast() -> None:
    # Microseconds each: bisect over precomputed ordinals, not a walk through the days.
    seconds = timeit.timeit(
        lambda: (
            CAL.add_workdays(date(2019, 4, 22), 15),
            CAL.workdays_between(date(2005, 1, 1), date(2026, 6, 1)),
        ),
        number=10_000,
    )
    assert seconds < 1.0


# -- the data format --------------------------------------------------------------------------


def test_2026_round_trips_through_the_json_format() -> None:
    schedule = CAL.schedule(2026)
    data = schedule.to_dict()
    assert data["workdays"] == [
        "2026-01-04",
        "2026-02-14",
        "2026-02-28",
        "2026-05-09",
        "2026-09-20",
        "2026-10-10",
    ]
    assert json.loads(json.dumps(data, ensure_ascii=False)) == data
    assert YearSchedule.from_dict(data) == schedule


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"workdays": ["2027-01-11"]}, "2027-01-11 is a Monday; a make-up working day"),
        ({"holidays": ["2026-12-31"]}, "holidays: 2026-12-31 is not in 2027"),
        ({"workdays": ["2028-01-08"]}, "workdays: 2028-01-08 is not in 2027"),
        ({"holidays": ["2027-01-01", "2027-01-09"]}, "2027-01-09 is listed both"),
        (
            {"holidays": ["2027-01-01", "2027-01-01"]},
            "holidays: 2027-01-01 is listed twice",
        ),
        (
            {"holidays": ["2027-1-1"]},
            r"holidays\[0\]: '2027-1-1' is not a date written YYYY-MM-DD",
        ),
        ({"holidays": ["20270101"]}, "'20270101' is not a date written YYYY-MM-DD"),
        ({"holidays": ["2027-02-30"]}, "'2027-02-30' is not a real date"),
        ({"holidays": [20270101]}, "20270101 is not a date"),
        ({"holidays": "2027-01-01"}, "'holidays' must be a list"),
        ({"holidays": []}, "'holidays' is empty"),
        ({"year": "2027"}, "'year' must be an integer year, got '2027'"),
        ({"year": True}, "'year' must be an integer year"),
        ({"source": " "}, "'source' must name the announcement.*got ' '"),
        ({"workday": []}, "unknown key.*'workday'"),
    ],
)
def test_malformed_schedules_are_refused_naming_the_entry(changes: dict[str, Any], expected: str) -> None:
    with pytest.raises(CalendarError, match=expected) as info:
        YearSchedule.from_dict(fake_2027(**changes), origin="calendars/2027.json")
    assert str(info.value).startswith("calendars/2027.json: ")


def test_missing_key_and_wrong_shape_are_refused() -> None:
    data = fake_2027()
    del data["workdays"]
    with pytest.raises(CalendarError, match=r"x\.json: missing key.*'workdays'"):
        YearSchedule.from_dict(data, origin="x.json")
    with pytest.raises(CalendarError, match="must be a JSON object"):
        YearSchedule.from_dict(["2027-01-01"], origin="x.json")


def test_holidays_on_weekends_are_accepted_as_harmless() -> None:
    # Notices state whole spans, e.g. "1月1日至3日放假", which include weekend days.
    schedule = YearSchedule.from_dict(fake_2027(holidays=["2027-01-01", "2027-01-02"]))
    assert date(2027, 1, 2) in schedule.holidays
    assert not schedule.is_workday(date(2027, 1, 2))


def test_direct_construction_is_validated_too() -> None:
    with pytest.raises(CalendarError, match="YearSchedule\\(2027\\): year 2027: workdays"):
        YearSchedule(
            year=2027,
            holidays=frozenset({date(2027, 1, 1)}),
            workdays=frozenset({date(2027, 1, 4)}),
            source="MADE UP",
        )


# -- year files -------------------------------------------------------------------------------


def write(path: Path, content: object) -> Path:
    path.write_text(json.dumps(content, ensure_ascii=False), encoding="utf-8")
    return path


def test_load_one_year_per_file_and_a_list_per_file(tmp_path: Path) -> None:
    one = write(tmp_path / "2027.json", fake_2027())
    fake_2028 = {
        "year": 2028,
        "source": "MADE UP FOR TESTS",
        "holidays": ["2028-01-03"],
        "workdays": [],
    }
    many = write(tmp_path / "more.json", [fake_2028])
    schedules = load_year_files([one, many])
    assert [s.year for s in schedules] == [2027, 2028]
    assert [s.year for s in load_year_dir(tmp_path)] == [2027, 2028]
    cal = WorkdayCalendar.china(extra=schedules)
    assert cal.known_years[-2:] == (2027, 2028)


def test_a_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "2027.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(fake_2027()).encode())
    assert load_year_files([path])[0].year == 2027


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    bad_json = tmp_path / "broken.json"
    bad_json.write_text('{"year": 2027,', encoding="utf-8")
    with pytest.raises(CalendarError, match=r"broken\.json: not valid JSON.*line 1"):
        load_year_files([bad_json])

    gbk = tmp_path / "gbk.json"
    gbk.write_bytes(json.dumps(fake_2027(source="国务院"), ensure_ascii=False).encode("gb18030"))
    with pytest.raises(CalendarError, match=r"gbk\.json: not UTF-8"):
        load_year_files([gbk])

    twice = tmp_path / "twice.json"
    twice.write_text(
        '{"year": 2027, "year": 2028, "source": "s", "holidays": [], "workdays": []}',
        encoding="utf-8",
    )
    with pytest.raises(CalendarError, match=r"twice\.json: key 'year' appears twice"):
        load_year_files([twice])

    in_list = write(tmp_path / "list.json", [fake_2027(), fake_2027(workdays=["2027-01-04"])])
    with pytest.raises(CalendarError, match=r"list\.json \(entry 2\): year 2027: workdays"):
        load_year_files([in_list])

    with pytest.raises(CalendarError, match=r"empty\.json: an empty list"):
        load_year_files([write(tmp_path / "empty.json", [])])

    with pytest.raises(CalendarError, match=r"missing\.json: cannot read"):
        load_year_files([tmp_path / "missing.json"])

    with pytest.raises(CalendarError, match="does not exist"):
        load_year_dir(tmp_path / "nowhere")


def test_the_same_year_in_two_files(tmp_path: Path) -> None:
    a = write(tmp_path / "a.json", fake_2027())
    same = write(tmp_path / "same.json", fake_2027())
    other = write(tmp_path / "other.json", fake_2027(workdays=[]))
    assert len(load_year_files([a, same])) == 1
    with pytest.raises(CalendarError, match=r"other\.json: a different schedule for 2027.*a\.json"):
        load_year_files([a, other])


# -- properties, against chinese_calendar's own day-by-day answer -----------------------------

KNOWN_DAYS = st.dates(min_value=date(CC_FIRST, 1, 1), max_value=date(CC_LAST, 6, 30))
# (+ 80 working days from the last start stays inside CC_LAST)
TERMS = st.integers(min_value=1, max_value=40)


def naive_add(start: date, n: int) -> date:
    day = start
    while n:
        day += timedelta(days=1)
        if chinese_calendar.is_workday(day):
            n -= 1
    return day


@settings(max_examples=200)
@given(KNOWN_DAYS, TERMS)
def test_add_workdays_agrees_with_chinese_calendar(start: date, n: int) -> None:
    result = CAL.add_workdays(start, n)
    assert result == naive_add(start, n)
    assert CAL.is_workday(result)
    assert CAL.workdays_between(start, result) == n
    assert CAL.workdays_between(start, result - timedelta(days=1)) == n - 1


@given(KNOWN_DAYS, TERMS, TERMS)
def test_add_workdays_is_monotonic_and_composes(start: date, n: int, m: int) -> None:
    assert CAL.add_workdays(start, n) < CAL.add_workdays(start, n + 1)
    assert CAL.add_workdays(CAL.add_workdays(start, n), m) == CAL.add_workdays(start, n + m)


@given(
    st.dates(min_value=date(CC_FIRST, 1, 1), max_value=date(CC_LAST, 8, 31)),
    st.integers(min_value=-30, max_value=120),
)
def test_workdays_between_agrees_with_chinese_calendar(start: date, span: int) -> None:
    end = start + timedelta(days=span)
    expected = sum(chinese_calendar.is_workday(start + timedelta(days=k)) for k in range(1, span + 1))
    assert CAL.workdays_between(start, end) == expected


@given(st.dates(min_value=date(CC_FIRST, 1, 1), max_value=date(CC_LAST, 12, 31)))
def test_is_workday_agrees_with_chinese_calendar(day: date) -> None:
    assert CAL.is_workday(day) == chinese_calendar.is_workday(day)


@st.composite
def made_up_schedules(draw: st.DrawFn) -> dict[str, Any]:
    year = draw(st.integers(min_value=2027, max_value=2100))
    days = st.dates(min_value=date(year, 1, 1), max_value=date(year, 12, 31))
    holidays = draw(st.sets(days, min_size=1, max_size=30))
    weekend = draw(st.sets(days.filter(lambda d: d.weekday() >= 5), max_size=8))
    return {
        "year": year,
        "source": "MADE UP FOR TESTS",
        "holidays": sorted(d.isoformat() for d in holidays),
        "workdays": sorted(d.isoformat() for d in weekend - holidays),
    }


@given(made_up_schedules(), st.integers(min_value=0, max_value=364), TERMS)
def test_made_up_years_round_trip_and_count(data: dict[str, Any], offset: int, n: int) -> None:
    schedule = YearSchedule.from_dict(data)
    assert schedule.to_dict() == data
    cal = WorkdayCalendar({schedule.year: schedule})
    start = date(schedule.year, 1, 1) + timedelta(days=offset)
    if start.year != schedule.year:
        return
    expected = start
    for _ in range(n):
        expected += timedelta(days=1)
        while expected.year == schedule.year and not schedule.is_workday(expected):
            expected += timedelta(days=1)
    if expected.year == schedule.year:
        assert cal.add_workdays(start, n) == expected
    else:
        with pytest.raises(CalendarError, match=str(schedule.year + 1)):
            cal.add_workdays(start, n)


def test_readme_example_is_chinese_calendars_2026() -> None:
    readme = Path(__file__).parents[2] / "ledger" / "data" / "calendars" / "README.md"
    block = readme.read_text(encoding="utf-8").split("```json\n")[1].split("```")[0]
    example = YearSchedule.from_dict(json.loads(block), origin=str(readme))
    built_in = CAL.schedule(2026)
    assert (example.holidays, example.workdays) == (
        built_in.holidays,
        built_in.workdays,
    )
