"""What the read commands print: whom findings concern, one table per CSV, streamed JSON Lines
with paging, and the query layer's JSON equal to the command line's."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from conftest import run_cli
from hypothesis import given
from hypothesis import strategies as st

from ledger import canonical
from projections import queries
from projections.output import emit

DEMO_HOSPITAL = "44860321X43010211A1001"  # 湘江示范医院 in the demo


def ok(result: Result) -> Result:
    assert result.exit_code == 0, f"exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert "Traceback" not in result.stderr
    return result


def as_json(db: str, *args: str) -> Any:
    return json.loads(ok(run_cli([*args, "--format", "json"], db)).stdout)


def csv_rows(db: str, *args: str) -> list[dict[str, str]]:
    text = ok(run_cli([*args, "--format", "csv"], db)).stdout
    assert text.startswith("\ufeff"), "a CSV starts with a byte-order mark, on stdout too"
    return list(csv.DictReader(io.StringIO(text[1:], newline="")))


@pytest.fixture(scope="module")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "demo.sqlite"
    ok(run_cli(["demo"], str(path)))
    return path


@pytest.fixture
def demo(demo_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "demo.sqlite"
    shutil.copy(demo_template, path)
    return str(path)


# --- whom a finding concerns ------------------------------------------------------------------


def test_every_finding_names_its_institution_technology_and_physician(demo: str) -> None:
    findings = as_json(demo, "trail", "--province", "hunan", "--findings-only")["findings"]
    assert findings
    for f in findings:
        assert f["institution"] and f["institution_name"], f
        assert f["technology"] and f["technology_name"], f
        assert (f["physician"] is None) == (f["physician_name"] is None), f
    assert any(f["physician_name"] for f in findings)
    rows = csv_rows(demo, "trail", "--province", "hunan", "--findings-only")
    assert [r["institution_name"] for r in rows] == [f["institution_name"] for f in findings]
    assert [r["technology_name"] for r in rows] == [f["technology_name"] for f in findings]
    assert [r["physician_name"] for r in rows] == [f["physician_name"] or "" for f in findings]
    table = ok(run_cli(["trail", "--province", "hunan", "--findings-only"], demo)).stdout
    for f in findings:
        assert f["institution_name"] in table and f["technology"] in table


def test_disclosure_names_and_licenses_every_institution_in_every_table(demo: str) -> None:
    for args in (["--province", "hunan"], ["--institution", DEMO_HOSPITAL]):
        shown = as_json(demo, "disclosure", *args)
        assert any(shown.values())
        for name, rows in shown.items():
            for row in rows:
                assert row["institution"] and row["institution_name"], (name, row)


# --- one table per CSV ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "sections"),
    [
        (["disclosure", "--province", "hunan"], ["filings", "training_bases", "trainees", "cases"]),
        (["disclosure", "--institution", DEMO_HOSPITAL], ["filings", "privileges", "cases"]),
        (["trail", "--institution", DEMO_HOSPITAL], ["entries", "findings"]),
    ],
)
def test_a_csv_holds_one_table(demo: str, command: list[str], sections: list[str]) -> None:
    refused = run_cli([*command, "--format", "csv"], demo)
    assert refused.exit_code == 2
    assert "--section" in refused.stderr and all(s in refused.stderr for s in sections)
    assert refused.stdout == ""
    whole = as_json(demo, *command)
    assert list(whole) == sections
    for name in sections:
        rows = csv_rows(demo, *command, "--section", name)
        assert len(rows) == len(whole[name])
        assert as_json(demo, *command, "--section", name) == {name: whole[name]}
    wrong = run_cli([*command, "--section", "nope"], demo)
    assert wrong.exit_code == 2 and all(s in wrong.stderr for s in sections)


def test_findings_only_is_one_table(demo: str) -> None:
    rows = csv_rows(demo, "trail", "--institution", DEMO_HOSPITAL, "--findings-only")
    assert rows and set(rows[0]) == set(queries.FINDING_COLUMNS)


# --- the query layer is what the command line prints ---------------------------------------


def test_queries_json_is_the_command_lines(demo: str) -> None:
    from ledger.application import LedgerApplication
    from projections.views import Views

    app = LedgerApplication.open(demo)
    try:
        views = Views(app)
        cases: list[tuple[list[str], queries.Section | queries.Sections | queries.Shown]] = [
            (["catalog", "--province", "hunan"], queries.catalog(views, "hunan")),
            (["disclosure", "--province", "hunan"], queries.disclosure(views, "hunan")),
            (["trail", "--institution", DEMO_HOSPITAL], queries.trail(views, institution=DEMO_HOSPITAL)),
            (["log", "--limit", "30"], queries.log(app, limit=30)),
            (["show", "HN-2019-0010"], queries.show(app, "HN-2019-0010")),
        ]
        for args, result in cases:
            printed = ok(run_cli([*args, "--format", "json"], demo)).stdout
            assert printed == canonical.dumps(result.to_json()) + "\n", args
    finally:
        app.close()


# --- log and export: streamed, paged by position -------------------------------------------


def jsonl(db: str, *args: str) -> list[dict[str, Any]]:
    text = ok(run_cli([*args, "--format", "jsonl"], db)).stdout
    return [json.loads(line) for line in text.split("\n")[:-1]]


def test_log_jsonl_pages_by_position(demo: str) -> None:
    whole = jsonl(demo, "log")
    positions = [r["position"] for r in whole]
    assert positions == sorted(set(positions)) and len(positions) > 50
    assert whole == as_json(demo, "log"), "json and jsonl: the same rows"
    pages: list[dict[str, Any]] = []
    start = 1
    while page := jsonl(demo, "log", "--from-position", str(start), "--limit", "17"):
        assert len(page) <= 17
        pages.extend(page)
        start = page[-1]["position"] + 1
    assert pages == whole


def test_log_of_the_whole_log_equals_the_filtered_read(demo: str) -> None:
    """Unfiltered, the log reads the notifications in pages; filtered, the decision index: the
    same rows either way."""
    assert jsonl(demo, "log", "--from-position", "40") == jsonl(demo, "log", "--from", "1000-01-01")[39:]
    filtered = jsonl(demo, "log", "--kind", "institution.registered", "--from-position", "100", "--limit", "3")
    assert [r["kind"] for r in filtered] == ["institution.registered"] * len(filtered)
    assert all(r["position"] >= 100 for r in filtered)


def test_export_pages(demo: str) -> None:
    whole = ok(run_cli(["export"], demo)).stdout.splitlines()
    page = ok(run_cli(["export", "--from-position", "11", "--limit", "5"], demo)).stdout.splitlines()
    assert page == whole[10:15]
    assert ok(run_cli(["export", "--format", "jsonl"], demo)).stdout.splitlines() == whole


# --- formatters' invariants -----------------------------------------------------------------

cells = st.one_of(st.none(), st.integers(), st.text(), st.lists(st.text(max_size=5), max_size=3))
columns = st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=6, unique=True)


@given(
    columns.flatmap(lambda cols: st.tuples(st.just(cols), st.lists(st.fixed_dictionaries(dict.fromkeys(cols, cells)))))
)
def test_every_csv_row_has_the_headers_column_count(table: tuple[list[str], list[dict[str, Any]]]) -> None:
    cols, rows = table
    out = io.StringIO()
    emit(iter(rows), cols, "csv", out)
    text = out.getvalue()
    assert text.startswith("\ufeff")
    parsed = list(csv.reader(io.StringIO(text[1:], newline="")))
    assert parsed[0] == cols
    assert len(parsed) == len(rows) + 1
    assert all(len(r) == len(cols) for r in parsed)


@given(
    columns.flatmap(lambda cols: st.tuples(st.just(cols), st.lists(st.fixed_dictionaries(dict.fromkeys(cols, cells)))))
)
def test_streamed_json_is_canonical_and_jsonl_lines_parse(table: tuple[list[str], list[dict[str, Any]]]) -> None:
    cols, rows = table
    array, lines = io.StringIO(), io.StringIO()
    emit(iter(rows), cols, "json", array)
    emit(iter(rows), cols, "jsonl", lines)
    assert array.getvalue() == canonical.dumps([{c: r[c] for c in cols} for r in rows]) + "\n"
    # JSON Lines are separated by LF only (a text may hold U+0085 or U+2028, which str.splitlines splits at).
    assert lines.getvalue().endswith("\n") or not rows
    assert [json.loads(line) for line in lines.getvalue().split("\n")[:-1]] == json.loads(array.getvalue())


# --- exit codes, through real processes ------------------------------------------------------


@pytest.mark.slow
def test_stacked_csv_exits_2_and_a_section_streams_with_a_bom(demo: str) -> None:
    ledger = [sys.executable, "-c", "import sys; from cli import main; sys.argv[0] = 'ledger'; main()", "--db", demo]
    cwd = Path(__file__).resolve().parent.parent
    refused = subprocess.run(
        [*ledger, "disclosure", "--province", "hunan", "--format", "csv"], capture_output=True, cwd=cwd, check=False
    )
    assert refused.returncode == 2
    assert b"--section" in refused.stderr and b"Traceback" not in refused.stderr and refused.stdout == b""
    shown = subprocess.run(
        [*ledger, "disclosure", "--province", "hunan", "--format", "csv", "--section", "filings"],
        capture_output=True,
        cwd=cwd,
        check=False,
    )
    assert shown.returncode == 0 and shown.stdout.startswith(b"\xef\xbb\xbftechnology,")
    log = subprocess.run(
        [*ledger, "log", "--format", "jsonl", "--limit", "3"], capture_output=True, cwd=cwd, check=False
    )
    assert log.returncode == 0
    assert [json.loads(line)["position"] for line in log.stdout.splitlines()] == [1, 2, 3]


# --- tables on a terminal: COLUMNS respected, Chinese first -----------------------------------


def _widest(text: str) -> int:
    from projections.output import display_width

    return max(display_width(line) for line in text.splitlines())


@pytest.mark.parametrize("columns", [80, 200])
@pytest.mark.parametrize(
    "command",
    [
        ["trail", "--province", "hunan", "--findings-only"],
        ["trail", "--institution", DEMO_HOSPITAL],
        ["disclosure", "--province", "hunan"],
        ["disclosure", "--institution", DEMO_HOSPITAL],
        ["catalog", "--province", "hunan"],
        ["log", "--limit", "40"],
    ],
)
def test_tables_fit_the_terminal(demo: str, monkeypatch: pytest.MonkeyPatch, columns: int, command: list[str]) -> None:
    monkeypatch.setenv("COLUMNS", str(columns))
    for lang in ("zh", "en"):
        text = ok(run_cli(["--lang", lang, *command], demo)).stdout
        assert _widest(text) <= columns, (lang, command)
    monkeypatch.delenv("COLUMNS")
    assert _widest(ok(run_cli(command, demo)).stdout) > 80, "a pipe or a file gets the whole table"


def test_a_narrow_findings_table_still_says_whom_and_what_it_left_out(
    demo: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    findings = as_json(demo, "trail", "--province", "hunan", "--findings-only")["findings"]
    zh = ok(run_cli(["--lang", "zh", "trail", "--province", "hunan", "--findings-only"], demo)).stdout
    assert "发现的问题:" in zh and "机构名称" in zh and "因终端宽度省略的列" in zh
    for f in findings:
        assert f["institution_name"] in zh and f["technology"] in zh
    en = ok(run_cli(["--lang", "en", "trail", "--province", "hunan", "--findings-only"], demo)).stdout
    assert "findings:" in en and "institution_name" in en and "columns left out" in en
    monkeypatch.setenv("COLUMNS", "200")
    wide = ok(run_cli(["--lang", "en", "trail", "--province", "hunan", "--findings-only"], demo)).stdout
    assert all(f["institution"] in wide for f in findings), "at 200 columns the licence numbers fit"


def test_chinese_first_english_on_request(demo: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANG", "C.UTF-8")
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LC_MESSAGES", raising=False)
    monkeypatch.delenv("LEDGER_LANG", raising=False)
    zh = ok(run_cli(["disclosure", "--province", "hunan"], demo)).stdout
    assert "备案:" in zh and "技术名称" in zh and "已备案" in zh and "filed" not in zh.split()
    monkeypatch.setenv("LEDGER_LANG", "en")
    en = ok(run_cli(["disclosure", "--province", "hunan"], demo)).stdout
    assert "filings:" in en and "technology_name" in en and "filed" in en.split()
    assert ok(run_cli(["--lang", "zh", "disclosure", "--province", "hunan"], demo)).stdout == zh
    trail = ok(run_cli(["--lang", "zh", "trail", "--province", "hunan", "--findings-only"], demo)).stdout
    assert "伦理委员会尚未批准" in trail and "较重" in trail
    # Programs read the same keys and values whatever the language.
    assert as_json(demo, "--lang", "zh", "disclosure", "--province", "hunan") == as_json(
        demo, "--lang", "en", "disclosure", "--province", "hunan"
    )


@given(st.text(max_size=60), st.integers(min_value=2, max_value=30))
def test_wrapped_lines_fit_and_keep_every_character(text: str, width: int) -> None:
    from projections.output import display_width, wrap

    lines = wrap(text, width)
    assert all(display_width(line) <= width for line in lines)
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")


@given(
    columns.flatmap(lambda cols: st.tuples(st.just(cols), st.lists(st.fixed_dictionaries(dict.fromkeys(cols, cells))))),
    st.integers(min_value=20, max_value=200),
)
def test_every_table_line_fits_columns(table: tuple[list[str], list[dict[str, Any]]], width: int) -> None:
    from projections.output import display_width

    cols, rows = table
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COLUMNS", str(width))
        emit(rows, cols, "table", out, drop=cols[1:2])
    assert all(display_width(line) <= width for line in out.getvalue().split("\n"))


def test_the_demos_findings_all_read_in_chinese(demo: str) -> None:
    """Every finding the demo shows has a message shape the catalogue knows: none falls back to English."""
    from projections import i18n

    findings = as_json(demo, "trail", "--findings-only")["findings"]
    assert findings
    i18n.set_language("zh")
    try:
        for f in findings:
            said = i18n.finding(f["rule"], f["message"])
            assert f["message"] not in said, f
    finally:
        i18n.set_language(None)
