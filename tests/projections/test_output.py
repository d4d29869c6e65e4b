"""What people are shown: ``projections.output.visible`` escapes what a reader cannot see.

Stored texts are exact; tables (and published pages) write every control, bidi and zero-width
character as an escape, while JSON and CSV keep the text as it is.
"""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.errors import MalformedDecision
from projections.commandline import parse_day
from projections.output import END_OF_TIME, INVISIBLE, emit, visible

HIDDEN_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cs"}


def test_every_control_format_and_separator_character_is_escaped() -> None:
    """The class covers Unicode's Cc, Cf, Zl, Zp and Cs exactly (plus format characters of newer
    Unicode versions, unassigned in this Python's tables), and nothing a reader can see."""
    for cp in range(0x110000):
        ch = chr(cp)
        category = unicodedata.category(ch)
        matched = INVISIBLE.fullmatch(ch) is not None
        if category in HIDDEN_CATEGORIES:
            assert matched, f"U+{cp:04X} ({category}) is not escaped"
        elif matched:
            assert category == "Cn", f"U+{cp:04X} ({category}) is visible but escaped"


def test_visible_writes_python_escapes() -> None:
    assert visible("a\u202eb\u200bc\x85d\u2066e\nf\x00g\ufeff") == "a\\u202eb\\u200bc\\x85d\\u2066e\\nf\\x00g\\ufeff"
    assert visible("湘江示范医院 G10") == "湘江示范医院 G10"
    assert visible("\U000e0041") == "\\U000e0041"  # a tag character


@given(st.text())
def test_visible_leaves_nothing_invisible_and_changes_only_what_is(text: str) -> None:
    shown = visible(text)
    assert INVISIBLE.search(shown) is None
    if INVISIBLE.search(text) is None:
        assert shown == text


def test_tables_escape_while_json_and_csv_stay_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEDGER_LANG", "en")
    rows = [{"name": "医\u202e院", "by\u200b": "x\x85"}]
    columns = ["name", "by\u200b"]
    table = io.StringIO()
    emit(rows, columns, "table", table)
    assert table.getvalue().splitlines()[0].split() == ["name", "by\\u200b"]
    assert "医\\u202e院" in table.getvalue() and "x\\x85" in table.getvalue()
    assert INVISIBLE.search(table.getvalue().replace("\n", "")) is None
    as_json = io.StringIO()
    emit(rows, columns, "json", as_json)
    assert json.loads(as_json.getvalue()) == rows
    as_csv = io.StringIO()
    emit(rows, columns, "csv", as_csv)
    assert as_csv.getvalue().startswith("\ufeff")  # a byte-order mark, for spreadsheets
    assert list(csv.DictReader(io.StringIO(as_csv.getvalue()[1:], newline=""))) == rows


def test_parse_day_refuses_the_end_of_time() -> None:
    """The one parser of a command's day: 9999-12-31 is where rows still in force end, so asked
    as of it every view was empty; the day before is a real day."""
    assert parse_day("9999-12-30", "--as-of") == date(9999, 12, 30)
    assert date(9999, 12, 31) == END_OF_TIME
    with pytest.raises(MalformedDecision, match="end of time") as refused:
        parse_day("9999-12-31", "--as-of")
    assert refused.value.field == "--as-of"
    with pytest.raises(MalformedDecision, match="not a real date"):
        parse_day("2019-02-30", "--as-of")
