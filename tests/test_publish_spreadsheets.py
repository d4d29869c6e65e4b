"""Spreadsheets ready to stamp: the HN-2018 附件5 summary (HN-2018#六(二)) as a city files it.

Why: a 市州 prints the form, signs and stamps it. So every sheet prints on A4 landscape one page
wide with the headings on each page, carries the 填报人 it is filed by and the form's 注, a city
with nothing in the half still gets its sheet (a nil return is a return), sheets follow pinyin
order as official lists do, and ``--known-at`` rebuilds the form as the ledger stood when it was
first filed. Each property is read back from the file with openpyxl.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from openpyxl import load_workbook  # type: ignore[import-untyped]

from cli import cli
from projections import plots
from projections.publish.spreadsheets import NIL_RETURN, write_xlsx
from projections.reports import Column, Table

TITLE = "湖南省限制类医疗机构临床应用备案汇总表"
XIANGDONG = "55063217843020311A1001"

Run = Callable[..., Result]


def _runner(db: Path) -> Run:
    def run(*args: str, code: int = 0) -> Result:
        result = CliRunner().invoke(cli, ["--db", str(db), *args])
        assert result.exit_code == code, (result.output, result.exception)
        return result

    return run


@pytest.fixture
def demo(tmp_path: Path) -> Run:
    run = _runner(tmp_path / "l.sqlite")
    run("demo")
    return run


def _summary(run: Run, out: Path, *extra: str) -> Any:
    run("report", "hunan-filing-summary", "--half", "2019H1", *extra, "-o", str(out))
    return load_workbook(out)


def _values(ws: Any) -> list[tuple[Any, ...]]:
    return list(ws.iter_rows(values_only=True))


def test_every_sheet_prints_a4_landscape_one_page_wide(demo: Run, tmp_path: Path) -> None:
    wb = _summary(demo, tmp_path / "s.xlsx")
    for ws in wb.worksheets:
        assert ws.page_setup.paperSize == 9  # A4 in the ECMA-376 numbering
        assert ws.page_setup.orientation == "landscape"
        assert ws.sheet_properties.pageSetUpPr.fitToPage is True
        assert ws.page_setup.fitToWidth == 1 and ws.page_setup.fitToHeight == 0  # as many pages tall as needed
        heading = next(i for i, r in enumerate(_values(ws), start=1) if r[0] in ("市州", "医疗机构名称"))
        assert ws.print_title_rows == f"${heading}:${heading}"  # the headings on every printed page


def test_sheets_in_pinyin_order_with_a_nil_return_for_a_quiet_city(demo: Run, tmp_path: Path) -> None:
    wb = _summary(demo, tmp_path / "s.xlsx")
    assert wb.sheetnames[1:] == ["长沙市", "湘潭市", "株洲市"]  # changsha, xiangtan, zhuzhou
    main = _values(wb.worksheets[0])
    heading = next(i for i, r in enumerate(main) if r[0] == "市州")
    cities = [r[0] for r in main[heading + 1 :] if r[0] in ("长沙市", "湘潭市", "株洲市")]
    assert cities == sorted(cities, key=["长沙市", "株洲市"].index) and cities[0] == "长沙市"
    xiangtan = _values(wb["湘潭市"])  # no filing completed there in 2019H1
    heading = next(i for i, r in enumerate(xiangtan) if r[0] == "医疗机构名称")
    assert xiangtan[heading + 1][0] == NIL_RETURN
    assert "市州（公章）：湘潭市" in str(xiangtan[1][0])
    one = _summary(demo, tmp_path / "one.xlsx", "--city", "湘潭市")
    assert one.sheetnames[1:] == ["湘潭市"]
    assert NIL_RETURN in [r[0] for r in _values(one.worksheets[0])]


def test_filled_by_and_notes(demo: Run, tmp_path: Path) -> None:
    wb = _summary(demo, tmp_path / "s.xlsx", "--filled-by", "王晓梅")
    for ws in wb.worksheets:
        rows = _values(ws)
        assert "填报人：王晓梅" in str(rows[1][0])
        texts = [str(r[0]) for r in rows if r[0] is not None]
        start = texts.index("注：")
        assert texts[start + 1].startswith("1. 备案时间为备案机关完成备案之日")
        assert re.fullmatch(r"3\. 本表据账本前 \d+ 条记录生成。", texts[-1])
    plain = _summary(demo, tmp_path / "plain.xlsx")
    assert str(_values(plain["长沙市"])[1][0]).endswith("填报人：")


def test_write_xlsx_without_a_filled_by_line_adds_one_and_numbers_no_single_note(tmp_path: Path) -> None:
    table = Table(
        title="t", columns=(Column("名称", "name"),), rows=[{"name": "甲"}], header_lines=("标题",), notes=("唯一",)
    )
    write_xlsx(table, tmp_path / "t.xlsx", filled_by="李四")
    rows = _values(load_workbook(tmp_path / "t.xlsx").active)
    assert rows[:4] == [("标题",), ("填报人：李四",), ("名称",), ("甲",)]
    assert rows[-1] == ("注：唯一",)


def test_known_at_rebuilds_the_form_as_the_ledger_stood(demo: Run, tmp_path: Path) -> None:
    """A filing recorded after the form went out is not on the form rebuilt ``--known-at`` then."""
    first = _summary(demo, tmp_path / "first.xlsx")
    note = str(_values(first.worksheets[0])[-1][0])
    position = re.search(r"本表据账本前 (\d+) 条记录生成", note)
    assert position is not None
    late = [
        {
            "id": "LATE-SUB",
            "kind": "filing.submitted",
            "effective": "2019-05-02",
            "by": XIANGDONG,
            "basis": "MTM-2018#11",
            "institution": XIANGDONG,
            "technology": "hunan:S01",
            "technical_lead": "110430203000095",
            "materials": ["湖南省限制类医疗技术临床应用备案表（附件2）"],
        },
        {
            "id": "LATE-DONE",
            "kind": "filing.completed",
            "effective": "2019-05-20",
            "by": "株洲市卫生健康委员会",
            "basis": "MTM-2018#11",
            "institution": XIANGDONG,
            "technology": "hunan:S01",
        },
    ]
    path = tmp_path / "late.jsonl"
    path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in late), encoding="utf-8")
    demo("import", str(path))

    def zhuzhou(wb: Any) -> list[Any]:
        return [r[1] for r in _values(wb["株洲市"]) if r[0] == "湘东示范医院"]

    assert zhuzhou(_summary(demo, tmp_path / "now.xlsx")) == ["S03", "S01"]
    then = _summary(demo, tmp_path / "then.xlsx", "--known-at", position.group(1))
    assert zhuzhou(then) == ["S03"]
    assert _values(then.worksheets[0])[-1][0] == note  # the same position, said on the form
    assert _values(then["长沙市"]) == _values(first["长沙市"])
    bad = demo("report", "hunan-filing-summary", "--half", "2019H1", "--known-at", "yesterday", code=5)
    assert "--known-at takes a position or an ISO timestamp" in bad.output


def test_plot_warns_when_no_cjk_font_is_installed(
    demo: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Labelled in English then, and said so on stderr: not a silent fallback."""
    monkeypatch.setattr(plots, "cjk_font", lambda: None)
    with caplog.at_level(logging.WARNING, logger="projections.plots"):
        demo("report", "filings-over-time", "--province", "hunan", "-o", str(tmp_path / "p.svg"))
    assert [r.getMessage() for r in caplog.records] == [plots.NO_CJK_FONT]
    assert "fonts-noto-cjk" in plots.NO_CJK_FONT
    caplog.clear()
    monkeypatch.setattr(plots, "cjk_font", lambda: "Noto Sans CJK SC")
    with caplog.at_level(logging.WARNING, logger="projections.plots"):
        demo("report", "filings-over-time", "--province", "hunan", "-o", str(tmp_path / "q.svg"))
    assert caplog.records == []


@pytest.mark.slow
def test_a_bad_known_at_fails_in_a_real_process_and_writes_nothing(demo: Run, tmp_path: Path) -> None:
    """Exit code 5 and one line saying which option and why: no traceback, no half-written form."""
    ledger = Path(sys.executable).parent / "ledger"
    out = tmp_path / "s.xlsx"
    args = ["report", "hunan-filing-summary", "--half", "2019H1", "--known-at", "last tuesday", "-o", str(out)]
    done = subprocess.run(
        [str(ledger), "--db", str(tmp_path / "l.sqlite"), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 5, done.stderr
    assert "--known-at takes a position or an ISO timestamp" in done.stderr
    assert "Traceback" not in done.stderr and not out.exists()
