"""The ``ledger`` command line through click's CliRunner: import, record, export, log, show."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from conftest import run_cli
from strategies import CLINIC, EXAMPLE_FILE, HOSPITAL, SURGEON, normalise, parse_jsonl, to_jsonl

from ledger.plugins import plugin_manager

N = len(EXAMPLE_FILE)
IDS = [d["id"] for d in EXAMPLE_FILE]


def ok(result: Result) -> Result:
    assert result.exit_code == 0, f"exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert "Traceback" not in result.stderr
    return result


def csv_out(result: Result) -> str:
    """A CSV the command wrote: a byte-order mark first (stdout too), then the table."""
    assert ok(result).stdout.startswith("\ufeff")
    return result.stdout[1:]


def failed(result: Result, exit_code: int) -> str:
    """Assert a clean failure (the exit code, one message, no traceback); return stderr."""
    assert result.exit_code == exit_code, f"exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert "Traceback" not in result.stdout + result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return result.stderr


def write(tmp_path: Path, name: str, decisions: list[dict[str, Any]]) -> str:
    path = tmp_path / name
    path.write_bytes(to_jsonl(decisions))
    return str(path)


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "cli.sqlite")


@pytest.fixture
def loaded_db(db: str, tmp_path: Path) -> str:
    ok(run_cli(["import", write(tmp_path, "example.jsonl", EXAMPLE_FILE)], db))
    return db


def log_json(db: str, *args: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(ok(run_cli(["log", "--format", "json", *args], db)).stdout)
    return rows


# --- import ---------------------------------------------------------------------------------


def test_import_file_and_reimport(db: str, tmp_path: Path) -> None:
    path = write(tmp_path, "example.jsonl", EXAMPLE_FILE)
    first = ok(run_cli(["import", path], db))
    assert first.stderr == f"{path}: {N} recorded at positions 1–{N}, 0 already in the ledger\n"
    assert first.stdout == ""
    again = ok(run_cli(["import", path], db))
    assert again.stderr == f"{path}: 0 recorded, {N} already in the ledger\n"
    assert len(log_json(db)) == N


def test_import_from_stdin(db: str) -> None:
    result = ok(run_cli(["import", "-"], db, input=to_jsonl(EXAMPLE_FILE)))
    assert result.stderr == f"<stdin>: {N} recorded at positions 1–{N}, 0 already in the ledger\n"


def test_import_several_files(db: str, tmp_path: Path) -> None:
    a = write(tmp_path, "a.jsonl", EXAMPLE_FILE[:10])
    b = write(tmp_path, "b.jsonl", EXAMPLE_FILE)
    result = ok(run_cli(["import", a, b], db))
    assert result.stderr.splitlines() == [
        f"{a}: 10 recorded at positions 1–10, 0 already in the ledger",
        f"{b}: {N - 10} recorded at positions 11–{N}, 10 already in the ledger",
    ]


def test_import_needs_a_file(db: str) -> None:
    assert "Missing argument" in failed(run_cli(["import"], db), 2)


def test_import_of_a_missing_file(db: str, tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.jsonl")
    assert failed(run_cli(["import", missing], db), 5) == f"Error: cannot read {missing}: No such file or directory\n"


def test_refused_file_names_file_line_and_field(db: str, tmp_path: Path) -> None:
    bad = {**EXAMPLE_FILE[8], "id": "BAD", "physician": "NOBODY"}
    path = write(tmp_path, "bad.jsonl", [*EXAMPLE_FILE[:5], bad, EXAMPLE_FILE[5]])
    stderr = failed(run_cli(["import", path], db), 3)
    assert stderr == (
        f"Error: {path}, line 6, field 'physician': unknown physician 'NOBODY': "
        "no physician.registered decision for it in the ledger\n"
    )
    assert log_json(db) == []  # nothing from the file


def test_refused_malformed_line_on_stdin(db: str) -> None:
    text = to_jsonl(EXAMPLE_FILE[:1]) + b'{"id": "X", "kind": \n'
    stderr = failed(run_cli(["import", "-"], db, input=text), 3)
    assert stderr.startswith("Error: <stdin>, line 2: malformed JSON: ")
    assert stderr.count("\n") == 1


def test_refused_conflicting_id(loaded_db: str, tmp_path: Path) -> None:
    changed = {**EXAMPLE_FILE[25], "amount_yuan": 1}
    path = write(tmp_path, "conflict.jsonl", [changed])
    stderr = failed(run_cli(["import", path], loaded_db), 3)
    assert stderr.startswith(f"Error: {path}, line 1, field 'id': decision 'EX-26' is already recorded (position 26)")


def test_refused_bad_date_and_unknown_kind(db: str) -> None:
    bad_date = {**EXAMPLE_FILE[0], "effective": "2019-02-30"}
    stderr = failed(run_cli(["import", "-"], db, input=to_jsonl([bad_date])), 3)
    assert stderr == "Error: <stdin>, line 1, field 'effective': 2019-02-30 is not a real date\n"
    unknown = {**EXAMPLE_FILE[0], "kind": "technology.banned"}
    stderr = failed(run_cli(["import", "-"], db, input=to_jsonl([unknown])), 3)
    assert stderr.startswith("Error: <stdin>, line 1, field 'kind': unknown kind 'technology.banned'")


def test_refused_non_utf8(db: str) -> None:
    stderr = failed(run_cli(["import", "-"], db, input=b'{"id": "\xff"}\n'), 3)
    assert stderr == "Error: <stdin>, line 1: not valid UTF-8 (byte 8: invalid start byte)\n"


# --- record ---------------------------------------------------------------------------------


def test_record_one_decision(loaded_db: str) -> None:
    args = [
        "record", "inspection.recorded", "--id", "INSP-1", "--effective", "2024-06-01",
        "--by", "湖南省卫生健康委员会", "--basis", "MTM-2018#36", "--note", "飞行检查",
        "--field", f"institution={HOSPITAL}", "--field", 'findings=["未按规定逐例报送", "病历不全"]',
    ]  # fmt: skip
    result = ok(run_cli(args, loaded_db))
    assert result.stdout == f"recorded INSP-1 at position {N + 1}\n"
    again = ok(run_cli(args, loaded_db))
    assert again.stdout == "INSP-1 is already in the ledger with the same content\n"
    shown = json.loads(ok(run_cli(["show", "INSP-1", "--format", "json"], loaded_db)).stdout)[0]
    assert shown["findings"] == ["未按规定逐例报送", "病历不全"]
    assert (shown["basis"], shown["note"], shown["_position"]) == ("MTM-2018#36", "飞行检查", N + 1)


def test_record_numbers_and_dates(loaded_db: str) -> None:
    ok(run_cli(["record", "penalty.imposed", "--id", "PEN-1", "--effective", "2024-06-02", "--by", "x",
                "--field", f"institution={CLINIC}", "--field", "amount_yuan=1500.50", "--field", "reason=逾期"],
               loaded_db))  # fmt: skip
    ok(run_cli(["record", "correction.ordered", "--id", "ORD-1", "--effective", "2024-06-02", "--by", "x",
                "--field", f"institution={CLINIC}", "--field", "deadline=2024-07-01"], loaded_db))  # fmt: skip
    shown = json.loads(ok(run_cli(["show", "PEN-1", "--format", "json"], loaded_db)).stdout)[0]
    assert shown["amount_yuan"] == 1500.50
    assert '"amount_yuan":1500.50' in run_cli(["show", "PEN-1", "--format", "json"], loaded_db).stdout
    assert json.loads(run_cli(["show", "ORD-1", "--format", "json"], loaded_db).stdout)[0]["deadline"] == "2024-07-01"


def test_record_a_correction_with_an_object_field(loaded_db: str) -> None:
    ok(run_cli(["record", "decision.corrected", "--id", "COR-1", "--effective", "2024-06-03", "--by", "x",
                "--field", "corrects=EX-27", "--field", 'fields={"amount_yuan": 1000}'], loaded_db))  # fmt: skip
    shown = json.loads(ok(run_cli(["show", "EX-27", "--format", "json"], loaded_db)).stdout)
    assert [d["id"] for d in shown] == ["EX-27", "COR-1"]
    assert shown[1]["fields"] == {"amount_yuan": 1000}


def test_record_all_digit_physician_number(loaded_db: str) -> None:
    ok(run_cli(["record", "privilege.suspended", "--id", "PS-1", "--effective", "2024-06-02", "--by", "x",
                "--field", f"institution={HOSPITAL}", "--field", f"physician={SURGEON}", "--field", "reason=停"],
               loaded_db))  # fmt: skip


def test_record_refusals(loaded_db: str) -> None:
    base = ["record", "use.resumed", "--id", "R-1", "--effective", "2024-06-01", "--by", "x"]
    stderr = failed(run_cli([*base, "--field", f"institution={HOSPITAL}"], loaded_db), 3)
    assert stderr == "Error: <record>, field 'technology': required field is missing\n"
    stderr = failed(
        run_cli([*base, "--field", f"institution={HOSPITAL}", "--field", "technology=hunan:S99"], loaded_db), 3
    )
    assert stderr.startswith("Error: <record>, field 'technology': unknown technology 'hunan:S99'")
    stderr = failed(run_cli([*base, "--field", "institution"], loaded_db), 3)
    assert stderr == "Error: <record>: --field takes NAME=VALUE, got 'institution'\n"
    stderr = failed(run_cli([*base, "--field", "by=y"], loaded_db), 3)
    assert stderr == "Error: <record>, field 'by': given twice\n"
    stderr = failed(
        run_cli(["record", "use.paused", "--id", "R", "--effective", "2024-06-01", "--by", "x"], loaded_db), 3
    )
    assert stderr.startswith("Error: <record>, field 'kind': unknown kind 'use.paused'")
    stderr = failed(run_cli([*base[:5], "2024-13-01", *base[6:]], loaded_db), 3)
    assert stderr == "Error: <record>, field 'effective': 2024-13-01 is not a real date\n"
    assert "Missing option '--id'" in failed(run_cli(["record", "use.resumed"], loaded_db), 2)
    assert len(log_json(loaded_db)) == N


# --- export ---------------------------------------------------------------------------------


def test_export_round_trip(ledger_url: str, new_ledger_url: Any, tmp_path: Path) -> None:
    ok(run_cli(["import", write(tmp_path, "example.jsonl", EXAMPLE_FILE)], ledger_url))
    exported = ok(run_cli(["export"], ledger_url)).stdout
    assert [normalise(d) for d in parse_jsonl(exported)] == [normalise(d) for d in EXAMPLE_FILE]
    # The export re-imports to the same ledger (nothing new) and to a fresh one (the same export).
    assert ok(run_cli(["import", "-"], ledger_url, input=exported)).stderr == (
        f"<stdin>: 0 recorded, {N} already in the ledger\n"
    )
    other = new_ledger_url()
    ok(run_cli(["import", "-"], other, input=exported))
    assert ok(run_cli(["export"], other)).stdout == exported


def test_export_to_a_file(loaded_db: str, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    result = ok(run_cli(["export", "-o", str(out)], loaded_db))
    assert result.stdout == ""
    text = out.read_text(encoding="utf-8")
    assert text == ok(run_cli(["export"], loaded_db)).stdout
    assert text.count("\n") == N
    assert "湘江示范医院" in text  # UTF-8, not \\u escapes
    assert '"amount_yuan":1500.50' in text  # decimals exactly as read


def test_export_of_an_empty_ledger(db: str) -> None:
    assert ok(run_cli(["export"], db)).stdout == ""


# --- log ------------------------------------------------------------------------------------


def test_log_json(loaded_db: str) -> None:
    rows = log_json(loaded_db)
    assert [r["id"] for r in rows] == IDS
    assert [r["position"] for r in rows] == list(range(1, N + 1))
    assert list(rows[0]) == ["position", "recorded_at", "effective", "id", "kind", "by", "basis", "subject"]
    assert rows[0]["effective"] == "2018-11-19"
    assert rows[0]["subject"] == "technology:hunan:S14"
    assert rows[1]["basis"] is None


def test_log_csv(loaded_db: str) -> None:
    text = csv_out(run_cli(["log", "--format", "csv"], loaded_db))
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["position", "recorded_at", "effective", "id", "kind", "by", "basis", "subject"]
    assert [r[3] for r in rows[1:]] == IDS
    assert rows[1][6] == "HN-2018#二(二)"
    assert rows[2][6] == ""


def test_log_table(loaded_db: str) -> None:
    lines = ok(run_cli(["--lang", "en", "log", "--limit", "2"], loaded_db)).stdout.splitlines()
    assert lines[0].split() == ["position", "recorded_at", "effective", "id", "kind", "by", "basis", "subject"]
    assert set(lines[1]) <= {"-", " "}
    assert len(lines) == 4
    assert "EX-02" in lines[3]
    empty = ok(run_cli(["--lang", "en", "log", "--kind", "no.such"], loaded_db)).stdout
    assert empty.splitlines()[-1] == "(none)"


def test_log_filters(loaded_db: str) -> None:
    def ids(*args: str) -> list[str]:
        return [r["id"] for r in log_json(loaded_db, *args)]

    assert ids("--kind", "penalty.imposed") == ["EX-26", "EX-27"]
    assert ids("--kind", "penalty.imposed", "--jurisdiction", "hunan") == ["EX-26"]
    assert ids("--kind", "penalty.imposed", "--jurisdiction", "湖南省") == ["EX-26"]
    assert ids("--kind", "penalty.imposed", "--jurisdiction", "chongqing") == ["EX-27"]
    assert ids("--kind", "technology.listed", "--kind", "technology.reclassified", "--jurisdiction", "hunan") == [
        "EX-01",
        "EX-29",
    ]
    assert ids("--jurisdiction", "national") == ["EX-02", "EX-22", "EX-30"]
    assert ids("--from", "2024-01-01") == ["EX-30", "EX-31", "EX-32", "EX-33", "EX-KEY"]
    assert ids("--from", "2020-01-01", "--to", "2020-06-01") == ["EX-14", "EX-15", "EX-16"]
    assert ids("--subject", f"institution:{CLINIC}") == ["EX-04", "EX-27", "EX-GC"]
    assert ids("--limit", "3") == IDS[:3]


def test_log_bad_options(loaded_db: str) -> None:
    assert "Invalid value for --from" in failed(run_cli(["log", "--from", "2019-2-3"], loaded_db), 2)
    assert "Invalid value for '--limit'" in failed(run_cli(["log", "--limit", "0"], loaded_db), 2)
    assert "Invalid value for '--format'" in failed(run_cli(["log", "--format", "xml"], loaded_db), 2)


FORMULAS = ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\t=1", "=1\n=2"]


def formula_decisions(texts: list[str]) -> list[dict[str, Any]]:
    # ``by`` is an identifier, which refuses control characters (tests/ledger/test_identifiers.py):
    # it holds the formula without them; ``basis`` (free text) holds it as written.
    return [
        {**EXAMPLE_FILE[0], "id": f"F-{i}", "code": f"Z{i}", "by": _plain(text), "basis": text}
        for i, text in enumerate(texts)
    ]


def _plain(text: str) -> str:
    return "".join(c for c in text if c >= " ")


def test_csv_cells_that_look_like_formulas_are_neutralised(db: str) -> None:
    decisions = formula_decisions(FORMULAS)
    ok(run_cli(["import", "-"], db, input=to_jsonl(decisions)))
    text = csv_out(run_cli(["log", "--format", "csv"], db))
    rows = list(csv.reader(io.StringIO(text)))[1:]
    assert [r[5] for r in rows] == ["'" + _plain(t) for t in FORMULAS]
    assert [r[6] for r in rows] == ["'" + t for t in FORMULAS]
    # JSON is for programs: values as they are.
    assert [r["by"] for r in log_json(db)] == [_plain(t) for t in FORMULAS]
    shown = ok(run_cli(["show", "F-0", "--format", "csv"], db)).stdout
    assert "'=HYPERLINK" in shown
    assert ",=HYPERLINK" not in shown


def test_csv_carriage_return_cannot_smuggle_a_formula(db: str) -> None:
    ok(run_cli(["import", "-"], db, input=to_jsonl(formula_decisions(["\r=1", "x\r=cmd|' /C calc'!A0"]))))
    text = csv_out(run_cli(["log", "--format", "csv"], db))
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert len(rows) == 3
    assert [r[6] for r in rows[1:]] == ["'\r=1", "x\r=cmd|' /C calc'!A0"]


# --- show -----------------------------------------------------------------------------------


def test_show_table_with_corrections(loaded_db: str) -> None:
    out = ok(run_cli(["--lang", "en", "show", "EX-26"], loaded_db)).stdout
    lines = out.splitlines()
    assert lines[0].split() == ["position", "26"]
    assert any(line.split() == ["id", "EX-26"] for line in lines)
    assert any(line.split() == ["amount_yuan", "30000"] for line in lines)
    assert any(line.split() == ["subject", f"institution:{HOSPITAL}"] for line in lines)
    assert "decision.corrected EX-32 (position 32, effective 2024-04-01): " in out
    assert '"amount_yuan":20000' in out
    retracted = ok(run_cli(["show", "EX-10"], loaded_db)).stdout
    assert 'decision.retracted EX-33 (position 33, effective 2024-04-02): "重复报送"' in retracted


def test_show_json_with_corrections(loaded_db: str) -> None:
    shown = json.loads(ok(run_cli(["show", "EX-26", "--format", "json"], loaded_db)).stdout, parse_float=Decimal)
    original, correction = shown
    assert original["_corrections"] == ["EX-32"]
    assert (original["_position"], original["_subject"]) == (26, f"institution:{HOSPITAL}")
    assert original["_recorded_at"].endswith("+00:00")
    assert normalise({k: v for k, v in original.items() if not k.startswith("_")}) == EXAMPLE_FILE[25]
    assert correction["corrects"] == "EX-26"
    assert correction["fields"] == {"amount_yuan": 20000, "reason": "MTM-2018#46（复核后）"}
    assert correction["_position"] == 32


def test_show_without_corrections(loaded_db: str) -> None:
    shown = json.loads(ok(run_cli(["show", "EX-01", "--format", "json"], loaded_db)).stdout)
    assert len(shown) == 1
    assert "_corrections" not in shown[0]
    assert "\n\n" not in ok(run_cli(["show", "EX-01"], loaded_db)).stdout


def test_show_csv(loaded_db: str) -> None:
    rows = list(csv.DictReader(io.StringIO(csv_out(run_cli(["show", "EX-26", "--format", "csv"], loaded_db)))))
    assert [r["id"] for r in rows] == ["EX-26", "EX-32"]
    assert rows[0]["_corrections"] == "EX-32"


def test_show_unknown_id(loaded_db: str) -> None:
    result = run_cli(["show", "NO-SUCH"], loaded_db)
    assert failed(result, 4) == "Error: no decision with id 'NO-SUCH' in this ledger\n"
    assert result.stdout == ""


# --- what people are shown: invisible characters escaped; the end of time -------------------

HOSTILE_NAME = "周\u202e生医\u200b\x85\u2066红"
"""A physician's name with a right-to-left override, a zero-width space, a C1 control (NEL) and a
left-to-right isolate (C0 controls are refused at import): stored exactly, shown escaped in
tables, exact in JSON and CSV."""
HOSTILE_SHOWN = "周\\u202e生医\\u200b\\x85\\u2066红"
DEMO_HOSPITAL = "44860321X43010211A1001"  # 湘江示范医院 in the demo


@pytest.fixture
def hostile_db(db: str) -> str:
    """The demo, plus a physician at 湘江示范医院 whose name hides characters, granted a grade."""
    ok(run_cli(["demo"], db))
    common = ["--by", "长沙市卫生局", "--field", f"institution={DEMO_HOSPITAL}"]
    ok(run_cli(["record", "physician.registered", "--id", "INV-1", "--effective", "2020-01-02", *common,
                "--field", "physician=110430000000001", "--field", f"name={HOSTILE_NAME}",
                "--field", "title=主治医师"], db))  # fmt: skip
    ok(run_cli(["record", "privilege.granted", "--id", "INV-2", "--effective", "2020-01-03",
                "--by", DEMO_HOSPITAL, "--basis", "MTM-2018#20", "--field", f"institution={DEMO_HOSPITAL}",
                "--field", "physician=110430000000001", "--field", "level=2",
                "--field", 'procedures=["清创缝合术"]'], db))  # fmt: skip
    return db


def test_invisible_characters_are_shown_escaped_in_tables(hostile_db: str) -> None:
    """Stored exactly, but a table shows every character that is there (bidi overrides, zero-width,
    C0 and C1 controls), so a name cannot reorder or hide what follows it."""
    for args in (["disclosure", "--institution", DEMO_HOSPITAL], ["show", "INV-1"]):
        out = ok(run_cli(args, hostile_db)).stdout
        assert HOSTILE_SHOWN in out, args
        assert not any(ch in out for ch in "\u202e\u200b\x85\u2066"), args


def test_invisible_characters_stay_exact_in_json_and_csv(hostile_db: str) -> None:
    """JSON and CSV are for programs: the text as stored (JSON escapes what it must)."""
    shown = json.loads(
        ok(run_cli(["disclosure", "--institution", DEMO_HOSPITAL, "--format", "json"], hostile_db)).stdout
    )
    assert HOSTILE_NAME in [p["physician_name"] for p in shown["privileges"]]
    assert json.loads(ok(run_cli(["show", "INV-1", "--format", "json"], hostile_db)).stdout)[0]["name"] == HOSTILE_NAME
    privileges = ["disclosure", "--institution", DEMO_HOSPITAL, "--section", "privileges", "--format", "csv"]
    text = csv_out(run_cli(privileges, hostile_db))
    assert HOSTILE_NAME in text and HOSTILE_SHOWN not in text


@pytest.mark.parametrize("command", [["catalog"], ["disclosure", "--province", "hunan"]])
def test_the_end_of_time_is_not_a_day_to_ask_for(db: str, command: list[str]) -> None:
    """9999-12-31 is where rows still in force end (``valid_to``): asked for as a day, every view was
    empty. The day before it is a real day and shows what is in force; the end itself is refused."""
    ok(run_cli(["demo"], db))
    before = json.loads(ok(run_cli([*command, "--as-of", "9999-12-30", "--format", "json"], db)).stdout)
    today = json.loads(ok(run_cli([*command, "--format", "json"], db)).stdout)
    assert before and before == today
    message = failed(run_cli([*command, "--as-of", "9999-12-31", "--format", "json"], db), 2)
    assert "--as-of" in message and "end of time" in message
    failed(run_cli(["log", "--to", "9999-12-31"], db), 2)  # every date option: one parser


@pytest.fixture
def plugin_commands() -> Iterator[None]:
    """The plugins' commands on ``cli``, as ``main`` adds them, for this test only."""
    from cli import cli

    before = dict(cli.commands)
    plugin_manager().hook.ledger_register_commands(cli=cli)
    try:
        yield
    finally:
        cli.commands.clear()
        cli.commands.update(before)


@pytest.mark.usefixtures("plugin_commands")
@pytest.mark.parametrize("command", [["hunan", "deadlines"], ["chongqing", "notices"]])
def test_plugins_commands_refuse_the_end_of_time_too(db: str, command: list[str]) -> None:
    """A plugin's ``--as-of`` goes through the same parser (``output.option_day``): asked as of
    9999-12-31, ``hunan deadlines`` (HN-2018#二(二)) lost every institution's name and ``chongqing
    notices`` (CQ-2017#二(二)) every notice; now it is a usage error, and the day before still works."""
    ok(run_cli(["demo"], db))
    before = json.loads(ok(run_cli([*command, "--as-of", "9999-12-30", "--format", "json"], db)).stdout)
    assert before == json.loads(ok(run_cli([*command, "--format", "json"], db)).stdout)
    assert all(row["institution_name"] for row in before)
    if command[0] == "hunan":
        assert {row["institution_name"] for row in before} >= {"湘江示范医院", "星城示范妇幼保健院"}
    message = failed(run_cli([*command, "--as-of", "9999-12-31", "--format", "json"], db), 2)
    assert "--as-of" in message and "end of time" in message
    assert "--as-of" in failed(run_cli([*command, "--as-of", "2019-02-30"], db), 2)


def test_error_messages_show_invisible_characters_escaped(db: str, tmp_path: Path) -> None:
    """An error echoes what it refuses, here a file's name: a bidi override, a zero-width space or a
    C1 control in it is written as its escape (``output.visible``, as in tables), not left to
    reorder or hide the message."""
    path = tmp_path / f"d-{HOSTILE_NAME}.jsonl"
    path.write_text('{"kind": "case.performed"}\n', encoding="utf-8")
    message = failed(run_cli(["import", str(path)], db), 3)
    assert f"d-{HOSTILE_SHOWN}.jsonl, line 1" in message
    assert not any(ch in message for ch in "\u202e\u200b\x85\u2066")


def test_show_escapes_invisible_characters_in_its_corrections_line(hostile_db: str) -> None:
    """``ledger show``'s table writes a correction's fields as JSON, which keeps a bidi override or a
    zero-width space as it is: they are escaped there too; the JSON output stays exact."""
    fields = "fields=" + json.dumps({"name": HOSTILE_NAME}, ensure_ascii=False)
    ok(run_cli(["record", "decision.corrected", "--id", "INV-3", "--effective", "2020-01-04", "--by", "长沙市卫生局",
                "--field", "corrects=INV-1", "--field", fields], hostile_db))  # fmt: skip
    out = ok(run_cli(["show", "INV-1"], hostile_db)).stdout
    [line] = [line for line in out.splitlines() if line.startswith("decision.corrected INV-3")]
    assert HOSTILE_SHOWN in line
    assert not any(ch in out for ch in "\u202e\u200b\x85\u2066")
    shown = json.loads(ok(run_cli(["show", "INV-1", "--format", "json"], hostile_db)).stdout)
    assert shown[1]["fields"] == {"name": HOSTILE_NAME}
