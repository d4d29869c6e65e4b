"""MsgpackTranscoder: every value an event holds comes back equal, of the same type, exactly."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.transcoder import MsgpackTranscoder

T = MsgpackTranscoder()

# Fixed UTC offsets in whole seconds, strictly inside ±24 h (what ``timezone`` accepts).
offsets = st.integers(min_value=-(24 * 3600) + 1, max_value=24 * 3600 - 1).map(lambda s: timezone(timedelta(seconds=s)))
zones = st.one_of(st.just(UTC), offsets, st.sampled_from([timezone(timedelta(hours=8)), timezone(timedelta(hours=-5))]))
aware_datetimes = st.datetimes(
    # A day away from datetime.min/max, so that the UTC instant exists for every offset.
    min_value=datetime(1, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=zones,
)
decimals = st.one_of(
    st.decimals(allow_nan=False, allow_infinity=False),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.sampled_from(["1.50", "1.5", "0E-7", "-0", "1E+3", "1.000E-10", "123456789012345678901234567890.123"]).map(
        Decimal
    ),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False),
    st.text(),
    st.binary(max_size=20),
    st.dates(),
    aware_datetimes,
    st.uuids(),
    decimals,
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(st.text(max_size=8), inner, max_size=4),
        st.dictionaries(st.integers(-5, 5), inner, max_size=3),
    ),
    max_leaves=20,
)


def round_trip(value: Any) -> Any:
    data = T.encode(value)
    assert isinstance(data, bytes)
    return T.decode(data)


def assert_same(got: Any, want: Any, path: str = "$") -> None:
    """Equal values of the same types all the way down; datetimes keep their offset."""
    assert type(got) is type(want), f"{path}: {type(got).__name__} is not {type(want).__name__}"
    if isinstance(want, datetime):
        assert got == want, path
        assert got.utcoffset() == want.utcoffset(), f"{path}: offset {got.utcoffset()} != {want.utcoffset()}"
        assert got.replace(tzinfo=None) == want.replace(tzinfo=None), f"{path}: wall time changed"
    elif isinstance(want, Decimal):
        # Exactly the same digits and exponent (so 1.50 stays 1.50, NaN stays NaN).
        assert got.as_tuple() == want.as_tuple(), f"{path}: {got!r} != {want!r}"
    elif isinstance(want, (list, tuple)):
        assert len(got) == len(want), path
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_same(g, w, f"{path}[{i}]")
    elif isinstance(want, dict):
        assert list(got) == list(want), f"{path}: keys {list(got)} != {list(want)}"
        for k in want:
            assert_same(got[k], want[k], f"{path}.{k}")
    else:
        assert got == want, path


@given(st.dates())
def test_dates(value: date) -> None:
    assert_same(round_trip(value), value)


@given(aware_datetimes)
def test_aware_datetimes_keep_instant_and_offset(value: datetime) -> None:
    assert_same(round_trip(value), value)


@given(st.uuids())
def test_uuids(value: UUID) -> None:
    assert_same(round_trip(value), value)


@given(decimals)
def test_decimals_exact(value: Decimal) -> None:
    got = round_trip(value)
    assert_same(got, value)
    assert str(got) == str(value)


@pytest.mark.parametrize("text", ["1.50", "1.5", "1E+3", "1.000E-10", "-0.00", "0E-7", "5000"])
def test_decimal_text_preserved(text: str) -> None:
    assert str(round_trip(Decimal(text))) == text


@given(values)
def test_nested_values(value: Any) -> None:
    assert_same(round_trip(value), value)


@given(st.lists(st.integers(min_value=-(2**63), max_value=2**64 - 1), max_size=3))
def test_tuples_and_lists_stay_apart(items: list[int]) -> None:
    value = {"list": list(items), "tuple": tuple(items), "nested": [tuple(items), [tuple(items)]]}
    got = round_trip(value)
    assert type(got["list"]) is list
    assert type(got["tuple"]) is tuple
    assert type(got["nested"][0]) is tuple
    assert type(got["nested"][1]) is list
    assert type(got["nested"][1][0]) is tuple
    assert_same(got, value)


def test_date_is_not_a_datetime() -> None:
    got = round_trip([date(2019, 4, 22), datetime(2019, 4, 22, tzinfo=UTC)])
    assert type(got[0]) is date
    assert type(got[1]) is datetime


def test_china_standard_time_offset_preserved() -> None:
    cst = timezone(timedelta(hours=8))
    value = datetime(2019, 4, 22, 9, 30, 15, 123456, tzinfo=cst)
    got = round_trip(value)
    assert got.utcoffset() == timedelta(hours=8)
    assert got.isoformat() == "2019-04-22T09:30:15.123456+08:00"


@given(st.datetimes())
def test_naive_datetimes_refused(value: datetime) -> None:
    with pytest.raises(TypeError, match="naive datetime"):
        T.encode(value)


@pytest.mark.parametrize(
    "value",
    [
        [datetime(2019, 1, 1)],
        {"at": datetime(2019, 1, 1)},
        (1, (datetime(2019, 1, 1),)),
    ],
)
def test_naive_datetimes_refused_when_nested(value: Any) -> None:
    with pytest.raises(TypeError, match="naive datetime"):
        T.encode(value)


@pytest.mark.parametrize("value", [2**64, -(2**63) - 1])
def test_integers_beyond_64_bits_refused(value: int) -> None:
    # The parser refuses them first (ledger.decisions), so that a decision never reaches here with one.
    with pytest.raises(TypeError):
        T.encode({"n": value})


def test_unknown_types_refused() -> None:
    with pytest.raises(TypeError, match="cannot store an object of type set"):
        T.encode({1, 2})


@pytest.mark.parametrize(
    "value",
    [
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))),
        datetime(9999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-5))),
    ],
)
def test_extreme_datetimes(value: datetime) -> None:
    assert_same(round_trip(value), value)


def test_sub_second_offset() -> None:
    value = datetime(2020, 1, 1, tzinfo=timezone(timedelta(seconds=1, microseconds=5)))
    assert_same(round_trip(value), value)
