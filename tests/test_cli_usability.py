"""The command line as people use it: a missing ledger refused, names resolved with "did you
mean", institutions and physicians searched, ``import --check``, keys named, Beijing time."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path

import pytest
from click.testing import Result
from conftest import run_cli
from hypothesis import given
from hypothesis import strategies as st
from test_cli import failed, ok

from ledger.errors import NotFound
from projections import localtime, progress
from projections.lookup import Candidate, Lookup, _without_suffix

XIANGJIANG = "44860321X43010211A1001"
HOW_TO_CREATE = "ledger init"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The shipped demo ledger, built once for the module (the tests only read it)."""
    db = str(tmp_path_factory.mktemp("demo") / "demo.sqlite")
    ok(run_cli(["demo"], db))
    return db


def rows(result: Result) -> list[dict[str, object]]:
    found: list[dict[str, object]] = json.loads(ok(result).stdout)
    return found


# --- a ledger that is not there -------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [["log"], ["export"], ["catalog"], ["trail", "--institution", "X"], ["checkpoints"], ["institutions"], ["rebuild"]],
)
def test_read_commands_refuse_a_missing_ledger_and_create_nothing(tmp_path: Path, args: list[str]) -> None:
    for db in (tmp_path / "missing.sqlite", tmp_path / "no-folder" / "ledger.sqlite"):
        stderr = failed(run_cli(args, str(db)), 5)
        assert f"no ledger at {db}" in stderr and HOW_TO_CREATE in stderr and "ledger import" in stderr
        assert not db.exists() and not (tmp_path / "no-folder").exists()


def test_an_unknown_scheme_is_refused_for_reads_and_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for args in (["log"], ["init"], ["import", "-"], ["import", "--check", "-"]):
        stderr = failed(run_cli(args, "mysql://x/y", input=b""), 5)
        assert "unknown database scheme 'mysql'" in stderr
    assert list(tmp_path.iterdir()) == []


def test_writes_still_create_the_ledger(tmp_path: Path) -> None:
    db = tmp_path / "new" / "ledger.sqlite"
    ok(run_cli(["import", "-"], str(db), input=b""))
    assert db.is_file()
    assert ok(run_cli(["log", "--format", "json"], str(db))).stdout.strip() == "[]"


# --- names resolved, or refused with the nearest -----------------------------------------------


def test_names_resolve_wherever_an_option_names_something(demo: str) -> None:
    by_key = rows(run_cli(["trail", "--institution", XIANGJIANG, "--format", "json"], demo))
    assert by_key == rows(run_cli(["trail", "--institution", "湘江示范医院", "--format", "json"], demo))
    assert by_key == rows(run_cli(["trail", "--institution", "湘江", "--format", "json"], demo))
    s14 = rows(run_cli(["trail", "--technology", "hunan:S14", "--format", "json"], demo))
    assert s14["entries"]  # type: ignore[call-overload]
    assert s14 == rows(run_cli(["trail", "--technology", "S14", "--format", "json"], demo))
    assert s14 == rows(run_cli(["trail", "--technology", "人工关节置换技术", "--format", "json"], demo))
    hunan = rows(run_cli(["log", "--jurisdiction", "hunan", "--format", "json"], demo))
    assert hunan
    for spelling in ("湖南", "湖南省", "Hunan"):
        assert rows(run_cli(["log", "--jurisdiction", spelling, "--format", "json"], demo)) == hunan
    assert rows(run_cli(["log", "--province", "湖南", "--format", "json"], demo)) == hunan
    use = rows(run_cli(["log", "--subject", "use:湘江示范医院|S14", "--format", "json"], demo))
    assert use and {r["subject"] for r in use} == {f"use:{XIANGJIANG}|hunan:S14"}
    short = ok(run_cli(["report", "hunan-filing-summary", "--half", "2019H1", "--city", "长沙"], demo)).stdout
    assert short == ok(run_cli(["report", "hunan-filing-summary", "--half", "2019H1", "--city", "长沙市"], demo)).stdout
    assert "湘江示范医院" in short


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["trail", "--institution", "湘江示范医阮"], "did you mean 湘江示范医院 (44860321X43010211A1001)"),
        (["trail", "--technology", "S99"], "no technology 'S99' in the ledger; did you mean"),
        (["log", "--jurisdiction", "guangdong"], "no province 'guangdong' in the ledger (known: national"),
        (["disclosure", "--province", "hunann"], "did you mean hunan (湖南省)?"),
        (["trail", "--physician", "欧阳明"], "did you mean 欧阳敏 (110430102000388)?"),
        (["report", "hunan-filing-summary", "--half", "2019H1", "--city", "长沙县"], "did you mean 长沙市?"),
        (["trail", "--technology", "S1"], "'S1' names 10 technologies: "),
    ],
)
def test_an_unknown_or_ambiguous_name_is_an_error_naming_the_candidates(
    demo: str, args: list[str], expected: str
) -> None:
    stderr = failed(run_cli(args, demo), 4)
    assert expected in stderr, stderr
    assert f"{args[-2]}: " in stderr


# --- institutions and physicians --------------------------------------------------------------


def test_institutions_are_searched_by_name_city_and_level(demo: str) -> None:
    everyone = rows(run_cli(["institutions", "--format", "json"], demo))
    assert len(everyone) == 6
    changsha = rows(run_cli(["institutions", "--city", "长沙", "--level", "3", "--format", "json"], demo))
    assert {r["name"] for r in changsha} == {"湘江示范医院", "星城示范妇幼保健院"}
    assert rows(run_cli(["institutions", "--name", "湘江", "--format", "json"], demo))[0]["institution"] == XIANGJIANG
    assert {r["level"] for r in rows(run_cli(["institutions", "--level", "二级", "--format", "json"], demo))} == {
        "二级"
    }
    csv_text = ok(run_cli(["institutions", "--province", "重庆", "--format", "csv"], demo)).stdout
    assert csv_text.splitlines()[0] == "\ufeffinstitution,name,province,city,category,level"  # CSV carries a BOM
    assert len(csv_text.splitlines()) == 3
    # an institution's level is its grade (医院等级), not a surgery's (手术级别, the privileges' column)
    table = ok(run_cli(["institutions", "--province", "重庆"], demo)).stdout
    assert "医院等级" in table.splitlines()[0] and "手术级别" not in table
    assert "医院等级" in ok(run_cli(["physicians", "--institution", "湘江示范医院"], demo)).stdout.splitlines()[0]


def test_physicians_are_searched_by_name_and_institution(demo: str) -> None:
    at = rows(run_cli(["physicians", "--institution", "湘江示范医院", "--format", "json"], demo))
    assert {r["name"] for r in at} >= {"欧阳敏", "周立衡"} and {r["institution_name"] for r in at} == {"湘江示范医院"}
    assert "谭建华" not in {r["name"] for r in at}  # deregistered in 2021
    assert [r["physician"] for r in rows(run_cli(["physicians", "--name", "欧阳", "--format", "json"], demo))] == [
        "110430102000388"
    ]
    assert "欧阳敏" in ok(run_cli(["physicians", "--city", "长沙"], demo)).stdout


# --- import --check -----------------------------------------------------------------------------

BAD_FILE = (
    '{"id":"X1","kind":"filing.completed","effective":"2019-05-28","by":"长沙市卫生健康委员会",'
    '"institution":"NOPE","technology":"hunan:S14"}\n'
    "not json\n"
    '{"id":"X2","kind":"filing.completed","effective":"2019-13-28","by":"长沙市卫生健康委员会",'
    f'"institution":"{XIANGJIANG}","technology":"hunan:S14"}}\n'
    "\n"
    '{"id":"X3","kind":"nope.kind","effective":"2019-05-28","by":"x"}\n'
)
SECOND_FILE = (
    '{"id":"Y1","kind":"filing.completed","effective":"2019-05-28","by":"长沙市卫生健康委员会",'
    f'"institution":"{XIANGJIANG}","technology":"hunan:S99"}}\n'
)


def _digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_import_check_reports_every_bad_line_of_every_file_and_writes_nothing(demo: str, tmp_path: Path) -> None:
    bad, second = tmp_path / "bad.jsonl", tmp_path / "second.jsonl"
    bad.write_text(BAD_FILE, encoding="utf-8")
    second.write_text(SECOND_FILE, encoding="utf-8")
    before = _digest(demo)
    result = run_cli(["import", "--check", str(bad), str(second)], demo)
    failed(result, 3)
    assert result.stdout.splitlines() == [
        f"{bad}, line 1, field 'institution': no institution 'NOPE' in the ledger or earlier in the files",
        f"{bad}, line 2: malformed JSON: Expecting value: line 1 column 1 (char 0)",
        f"{bad}, line 3, field 'effective': 2019-13-28 is not a real date",
        result.stdout.splitlines()[3],
        f"{second}, line 1, field 'technology': no technology 'hunan:S99' in the ledger or earlier in the files",
    ]
    assert result.stdout.splitlines()[3].startswith(f"{bad}, line 5, field 'kind': unknown kind 'nope.kind'")
    assert "5 bad line(s) in 2 file(s); nothing recorded" in result.stderr
    assert _digest(demo) == before


def test_import_check_of_a_good_file_against_no_ledger_creates_none(tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text(
        '{"id":"I-1","kind":"institution.registered","effective":"2003-09-18","by":"长沙市卫生健康委员会",'
        '"institution":"PDY00001","name":"示范医院","province":"湖南省","city":"长沙市","category":"医院",'
        '"level":"三级","licensing_authority":"长沙市卫生健康委员会"}\n',
        encoding="utf-8",
    )
    db = tmp_path / "none.sqlite"
    result = ok(run_cli(["import", "--check", str(good)], str(db)))
    assert result.stdout == "" and "no bad line; nothing recorded" in result.stderr
    assert not db.exists()


# --- keys -----------------------------------------------------------------------------------------


def test_checkpoint_names_its_key_and_warns_when_it_changes(tmp_path: Path) -> None:
    db = str(tmp_path / "keys.sqlite")
    ok(run_cli(["import", "-"], db, input=b""))
    alpha, beta = tmp_path / "alpha.key", tmp_path / "beta.key"
    ok(run_cli(["keygen", "--name", "alpha", "-o", str(alpha)], db))
    ok(run_cli(["keygen", "--name", "beta", "-o", str(beta)], db))
    first = ok(run_cli(["checkpoint", "--key", str(alpha)], db))
    assert "Warning" not in first.stderr
    rotated = ok(run_cli(["checkpoint", "--key", str(beta), "--rotate-key"], db))
    assert "Warning: signed with beta+" in rotated.stderr and "not the key that signed checkpoint #1 (alpha+" in (
        rotated.stderr
    )
    listed = rows(run_cli(["checkpoints", "--format", "json"], db))
    assert [str(r["signed_by"]).split("+")[0] for r in listed] == ["alpha", "beta"]
    assert all(len(str(r["signed_by"]).split("+")[1]) == 8 for r in listed)
    assert "签名密钥" in ok(run_cli(["checkpoints"], db)).stdout  # signed_by, in Chinese first


def test_checkpoint_says_which_key_it_picks_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ledger import integrity

    key = tmp_path / "default.key"
    monkeypatch.setattr(integrity, "default_key_path", lambda: key)
    monkeypatch.delenv("LEDGER_KEY", raising=False)
    db = str(tmp_path / "k.sqlite")
    ok(run_cli(["import", "-"], db, input=b""))
    ok(run_cli(["keygen", "--name", "house", "-o", str(key)], db))
    done = ok(run_cli(["checkpoint"], db))
    assert f"signing with the default key {key} (house+" in done.stderr


# --- Beijing time ------------------------------------------------------------------------------


def test_today_is_the_day_in_beijing_unless_told_otherwise() -> None:
    try:
        localtime.set_zone(None)
        assert localtime.today() == datetime.now(UTC).astimezone(timezone_of(8)).date()
        assert localtime.shown(datetime(2026, 1, 1, 20, 0, tzinfo=UTC)) == "2026-01-02T04:00:00+08:00"
        localtime.set_zone("UTC")
        assert localtime.today() == datetime.now(UTC).date()
    finally:
        localtime.set_zone(None)


def timezone_of(hours: int) -> tzinfo:
    from datetime import timezone

    return timezone(timedelta(hours=hours))


def test_an_unknown_zone_is_refused(demo: str) -> None:
    result = run_cli(["--tz", "Mars/Base", "institutions"], demo)
    localtime.set_zone(None)
    assert "no time zone 'Mars/Base'" in failed(result, 5)


# --- real processes: the exit codes a script sees ----------------------------------------------


def _ledger(*args: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("ledger")
    return subprocess.run([str(script), *args], capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.slow
def test_exit_codes_in_real_processes(demo: str, tmp_path: Path) -> None:
    missing = _ledger("--db", str(tmp_path / "missing" / "x.sqlite"), "trail", "--institution", "湘江示范医院")
    assert missing.returncode == 5 and "ledger init" in missing.stderr and "Traceback" not in missing.stderr
    assert not (tmp_path / "missing").exists()
    unknown = _ledger("--db", demo, "trail", "--institution", "湘江示范医阮")
    assert unknown.returncode == 4 and "did you mean 湘江示范医院" in unknown.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text(BAD_FILE, encoding="utf-8")
    before = _digest(demo)
    checked = _ledger("--db", demo, "import", "--check", str(bad))
    assert checked.returncode == 3 and len(checked.stdout.splitlines()) == 4
    assert _digest(demo) == before


def test_the_default_as_of_is_today_in_the_chosen_zone(demo: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a UTC machine before 08:00 the machine's date is yesterday in China: the default day is
    ``localtime.today()``, the day in the zone (Beijing unless --tz)."""
    monkeypatch.setattr(localtime, "today", lambda: date(2010, 1, 1))
    then = ok(run_cli(["catalog", "--province", "hunan", "--format", "json"], demo)).stdout
    assert (
        then
        == ok(run_cli(["catalog", "--province", "hunan", "--as-of", "2010-01-01", "--format", "json"], demo)).stdout
    )
    assert (
        then
        != ok(run_cli(["catalog", "--province", "hunan", "--as-of", "2020-01-01", "--format", "json"], demo)).stdout
    )
    assert "today in Beijing" in " ".join(ok(run_cli(["trail", "--help"], demo)).stdout.split())


def test_record_times_print_in_the_chosen_zone(demo: str) -> None:
    beijing = rows(run_cli(["log", "--limit", "1", "--format", "json"], demo))[0]["recorded_at"]
    utc = rows(run_cli(["--tz", "UTC", "log", "--limit", "1", "--format", "json"], demo))[0]["recorded_at"]
    localtime.set_zone(None)
    assert str(beijing).endswith("+08:00") and str(utc).endswith("+00:00")
    assert datetime.fromisoformat(str(beijing)) == datetime.fromisoformat(str(utc))


# --- progress: on a terminal only ---------------------------------------------------------------


def test_long_commands_draw_progress_on_a_terminal_only(demo: str, monkeypatch: pytest.MonkeyPatch) -> None:
    quiet = {args[0]: ok(run_cli(args, demo)).stderr for args in (["rebuild"], ["project"], ["verify"])}
    assert quiet["rebuild"] == (
        "rebuilt cases, catalog, filings, grading_catalogues, institutions, physicians, privileges, trail, "
        "trainees, training_bases from 266 records\n"
    )
    assert quiet["project"].startswith("caught up: 0 records applied") and quiet["project"].count("\n") == 1
    assert all(line.startswith("Warning: ") for line in quiet["verify"].splitlines())
    assert "\r" not in "".join(quiet.values()) and "[" not in quiet["verify"]
    monkeypatch.setattr(progress, "on_terminal", lambda: True)
    drawn = ok(run_cli(["rebuild"], demo)).stderr  # click draws the label alone where it cannot redraw
    assert drawn.startswith("rebuilding\n") and drawn.endswith("from 266 records\n")


def test_a_ticker_shows_the_seconds_on_a_terminal_and_clears_its_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with progress.ticker("verifying", every=0.01):
        time.sleep(0.05)
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(progress, "on_terminal", lambda: True)
    with progress.ticker("verifying", every=0.01):
        time.sleep(0.05)
    err = capsys.readouterr().err
    assert "\rverifying 0 s" in err and err.endswith("\r" + " " * 21 + "\r")
    with progress.bar("nothing to do", 0) as update:
        update(5)
    assert capsys.readouterr().err == ""


@pytest.mark.slow
def test_no_progress_reaches_a_pipe(demo: str, tmp_path: Path) -> None:
    """A real process whose stderr is a pipe: only the command's own lines."""
    done = _ledger("--db", demo, "rebuild")
    assert done.returncode == 0
    assert done.stderr.startswith("rebuilt ") and "[" not in done.stderr and "\r" not in done.stderr


# --- resolution, as a property -------------------------------------------------------------------

CITY_NAMES = st.lists(
    st.text(alphabet="长沙株洲湘潭衡阳邵岳常德张家界益阳郴永怀化娄底", min_size=2, max_size=4),
    min_size=1,
    max_size=8,
    unique=True,
)


@given(CITY_NAMES)
def test_every_city_resolves_by_its_name_and_without_its_suffix_when_that_is_unique(names: list[str]) -> None:
    cities = [f"{n}市" for n in names]
    found = Lookup.__new__(Lookup)
    found._cache = {"city": [Candidate(c, c, (c, *_without_suffix(c))) for c in cities]}
    for city, bare in zip(cities, names, strict=True):
        assert found.resolve("city", city) == city
        if sum(bare in other for other in names) == 1:
            assert found.resolve("city", bare) == city
    with pytest.raises(NotFound, match="no city '上海X' in the ledger"):
        found.resolve("city", "上海X")


def test_import_check_finds_an_id_given_twice_with_other_content(demo: str, tmp_path: Path) -> None:
    line = (
        '{{"id":"D1","kind":"filing.completed","effective":"2019-05-2{day}","by":"长沙市卫生健康委员会",'
        f'"institution":"{XIANGJIANG}","technology":"hunan:S14"}}}}\n'
    )
    twice = tmp_path / "twice.jsonl"
    twice.write_text(line.format(day=8) + line.format(day=8) + line.format(day=9), encoding="utf-8")
    result = run_cli(["import", "--check", str(twice)], demo)
    failed(result, 3)
    assert result.stdout == f"{twice}, line 3, field 'id': 'D1' is given with other content at {twice} line 1\n"


def test_a_search_whose_name_or_level_names_nothing_is_refused(demo: str) -> None:
    """A typo in ``--name`` is not "no such institution": it is refused with the nearest names;
    a level no institution has is refused with the levels there are. A real search that finds
    nothing (长沙 has no 二级 institution) is still an empty list."""
    assert "did you mean 湘江示范医院" in failed(run_cli(["institutions", "--name", "湘江示范医阮"], demo), 4)
    assert "did you mean 欧阳敏" in failed(run_cli(["physicians", "--name", "欧阳x"], demo), 4)
    assert "levels: 三级, 二级" in failed(run_cli(["institutions", "--level", "九级"], demo), 4)
    empty = ok(run_cli(["institutions", "--city", "长沙", "--level", "2", "--format", "json"], demo))
    assert json.loads(empty.stdout) == []
