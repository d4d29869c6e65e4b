"""Publishing: the public site, reports as XLSX/CSV, and the filings-over-time plot.

Each test drives ``ledger`` in-process on the demo ledger, as a new user would (``ledger demo &&
ledger publish --out site``). The site implements the disclosure duties — filings per restricted
technology with date and authority (MTM-2018#40), training bases and trainees (#30, #33), each
institution's 院务公开 (#24), Chongqing's public notice (CQ-2017 公示) — and must publish nothing
private: no physician licence number (the demo's match ``1104\\d{11}``) and no case reference.
"""

from __future__ import annotations

import csv
import io
import json
import re
import struct
from collections.abc import Callable, Mapping
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from openpyxl import load_workbook  # type: ignore[import-untyped]

import cli as cli_module
from cli import cli
from projections.publish import slug, write_xlsx
from projections.reports import Column, Option, Report, Table

AS_OF = "2026-06-01"
LICENCE = re.compile(r"1104\d{11}")
DEMO_FILES = sorted(Path(cli_module.__file__).parent.glob("plugins/*/data/demo.jsonl"))
XIANGJIANG = "44860321X43010211A1001"
XIANGJIANG_PAGE = slug(XIANGJIANG)  # 44860321_x43010211a1001: lowercase, reversible

Run = Callable[..., Result]


def _runner(db: Path) -> Run:
    def run(*args: str, code: int = 0) -> Result:
        result = CliRunner().invoke(cli, ["--db", str(db), *args])
        assert result.exit_code == code, (result.output, result.exception)
        return result

    return run


def _demo_values(field: str) -> set[str]:
    """Every value of ``field`` in the shipped demo histories (e.g. each case reference)."""
    out = set()
    for path in DEMO_FILES:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                value = json.loads(line).get(field)
                if isinstance(value, str):
                    out.add(value)
    return out


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, Path]:
    """The demo ledger and its site published as of AS_OF."""
    root = tmp_path_factory.mktemp("publish")
    run = _runner(root / "l.sqlite")
    run("demo")
    run("publish", "--out", str(root / "site"), "--as-of", AS_OF)
    return run, root / "site"


def _pages(site: Path) -> dict[str, str]:
    return {p.relative_to(site).as_posix(): p.read_bytes().decode("utf-8") for p in sorted(site.rglob("*.html"))}


def test_demo_then_publish_writes_every_page(demo: tuple[Run, Path]) -> None:
    _, site = demo
    pages = _pages(site)
    for expected in (
        "index.html",
        "national/index.html",
        "national/catalog.html",
        "hunan/index.html",
        "hunan/catalog.html",
        "hunan/filings.html",
        "hunan/training.html",
        f"hunan/institutions/{XIANGJIANG_PAGE}.html",
        "chongqing/filings.html",
    ):
        assert expected in pages, expected
    assert (site / "style.css").is_file() and (site / "search.js").is_file()
    for name, html in pages.items():
        assert html.startswith("<!DOCTYPE html>"), name
        assert '<html lang="zh-CN">' in html, name
        assert '<meta charset="utf-8">' in html, name
        assert 'name="viewport"' in html, name
        # One script, the site's own (no CDN, nothing inline); the lists are in the HTML itself.
        assert re.findall(r"<script[^>]*>", html) == [f'<script src="{"../" * name.count("/")}search.js" defer>'], name


def test_index_lists_national_first_then_each_province(demo: tuple[Run, Path]) -> None:
    _, site = demo
    html = (site / "index.html").read_text(encoding="utf-8")
    positions = [html.index(f'href="{code}/index.html"') for code in ("national", "chongqing", "hunan")]
    assert positions == sorted(positions)
    assert "全国" in html and "湖南省" in html and "重庆市" in html


def test_filings_list_institutions_per_technology_with_date_and_authority(demo: tuple[Run, Path]) -> None:
    """MTM-2018#40: per restricted technology, the institutions filed, when, and with whom."""
    _, site = demo
    html = (site / "hunan/filings.html").read_text(encoding="utf-8")
    g10 = html[html.index("肿瘤消融治疗技术") :]
    assert "湘江示范医院" in g10 and "2019-01-30" in g10 and "长沙市卫生健康委员会" in g10
    assert "湘东示范医院" in html and "2019-04-15" in html and "株洲市卫生健康委员会" in html
    halted = html[html.index('id="halted"') :]
    assert "冠心病介入治疗" in halted and "停止" in halted  # stopped uses are published too
    assert f'href="institutions/{XIANGJIANG_PAGE}.html"' in html


def test_chongqing_filing_in_public_notice_is_marked(demo: tuple[Run, Path], tmp_path: Path) -> None:
    """CQ-2017: a filing is noticed publicly for 5 working days; the page says so until it ends."""
    run, _ = demo
    run("publish", "--out", str(tmp_path), "--province", "chongqing", "--as-of", "2020-10-09")
    html = (tmp_path / "chongqing/filings.html").read_text(encoding="utf-8")
    assert "公示中（至 2020-10-12）" in html
    assert "鹅岭示范医院" in html
    assert not (tmp_path / "hunan").exists()  # --province publishes that province only
    index = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "重庆市" in index and "湖南省" not in index


def test_institution_page_is_its_yuanwu_gongkai(demo: tuple[Run, Path]) -> None:
    """MTM-2018#24: its restricted technologies, surgical grades by physician name, case counts."""
    _, site = demo
    html = (site / f"hunan/institutions/{XIANGJIANG_PAGE}.html").read_text(encoding="utf-8")
    assert "湘江示范医院" in html and "人工关节置换技术" in html and "2019-05-28" in html
    grades = html[html.index("<h2>手术分级授权</h2>") : html.index("<h2>限制类技术临床应用情况</h2>")]
    assert "周立衡" in grades and "四级手术" in grades and "肿瘤消融治疗技术（G10）" in grades
    assert "谭建华" not in grades  # deregistered in 2021: no longer this institution's to disclose
    cases = html[html.index("<h2>限制类技术临床应用情况</h2>") :]
    assert re.search(r"G10 肿瘤消融治疗技术</td><td[^>]*>7<", cases)


def test_training_bases_and_trainees_by_name(demo: tuple[Run, Path]) -> None:
    """MTM-2018#30, #33: training bases with their dates; certified trainees by name only."""
    _, site = demo
    html = (site / "hunan/training.html").read_text(encoding="utf-8")
    assert "2019-09-27" in html and "2019-10-08" in html  # G10 base: enrolment notice, filing
    assert "星城示范妇幼保健院" in html
    assert "易小兵" in html


def test_nothing_private_is_published(demo: tuple[Run, Path]) -> None:
    _, site = demo
    cases = _demo_values("case")
    assert cases and all(not LICENCE.fullmatch(c) for c in cases)
    for path in sorted(site.rglob("*")):
        if not path.is_file():
            continue
        name = path.relative_to(site).as_posix()
        assert not LICENCE.search(name), name
        text = path.read_text(encoding="utf-8")
        assert not LICENCE.search(text), name
        leaked = sorted(c for c in cases if c in text)
        assert not leaked, (name, leaked)
        assert not re.search(r"\b(?:XJ|XD|XC|LC)20\d{6}-", text), name


def test_same_ledger_same_bytes(demo: tuple[Run, Path], tmp_path: Path) -> None:
    run, site = demo
    run("publish", "--out", str(tmp_path), "--as-of", AS_OF)
    first = {p.relative_to(site): p.read_bytes() for p in site.rglob("*") if p.is_file()}
    second = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert first == second


def test_pages_are_stamped_with_position_and_checkpoint(tmp_path: Path) -> None:
    run = _runner(tmp_path / "l.sqlite")
    found = re.search(r"(\d+) decisions in the ledger", run("demo").output)
    assert found is not None
    position = int(found.group(1))
    result = run("publish", "--out", str(tmp_path / "a"), "--as-of", AS_OF)
    assert "no signed checkpoint yet" in result.output
    page = (tmp_path / "a/hunan/filings.html").read_text(encoding="utf-8")
    assert f'<span class="position">{position}</span>' in page
    assert "尚无签名检查点" in page and "ledger verify" in page
    assert not (tmp_path / "a/checkpoint.txt").exists()

    key = tmp_path / "signer.key"
    run("keygen", "-o", str(key))
    note = run("checkpoint", "--key", str(key)).output
    root = note.splitlines()[2]
    run("publish", "--out", str(tmp_path / "b"), "--as-of", AS_OF)
    page = (tmp_path / "b/hunan/filings.html").read_text(encoding="utf-8")
    assert root in page and "覆盖本页所依据的全部记录" in page
    assert 'href="../checkpoint.txt"' in page
    assert (tmp_path / "b/checkpoint.txt").read_text(encoding="utf-8") == note
    # the published note verifies against the ledger with the verifier key
    run("verify", "--checkpoint", str(tmp_path / "b/checkpoint.txt"), "--key", f"{key}.pub")

    _record_institution(run, "STAMP-1", "44000000000000000A1001", "后来登记的医院")
    result = run("publish", "--out", str(tmp_path / "c"), "--as-of", AS_OF)
    assert "covers" in result.output and "ledger checkpoint" in result.output
    page = (tmp_path / "c/hunan/filings.html").read_text(encoding="utf-8")
    assert "尚未签名" in page


def _record_institution(run: Run, decision_id: str, institution: str, name: str, effective: str = "2020-01-02") -> None:
    run(
        "record",
        "institution.registered",
        "--id",
        decision_id,
        "--effective",
        effective,
        "--by",
        "长沙市卫生局",
        "--field",
        f"institution={institution}",
        "--field",
        f"name={name}",
        "--field",
        "province=湖南省",
        "--field",
        "city=长沙市",
        "--field",
        "category=医院",
        "--field",
        "level=二级",
        "--field",
        "licensing_authority=长沙市卫生健康委员会",
    )


def test_hostile_text_is_escaped_and_ids_do_not_steer_paths(tmp_path: Path) -> None:
    run = _runner(tmp_path / "l.sqlite")
    run("demo")
    _record_institution(run, "EVIL-1", "../../evil", '<script>alert("x")</script>医院')
    site = tmp_path / "site"
    run("publish", "--out", str(site), "--province", "hunan", "--as-of", AS_OF)
    written = {p.resolve() for p in tmp_path.rglob("*") if p.is_file()}
    assert all(site.resolve() in p.parents for p in written if p.suffix == ".html")
    page = site / "hunan/institutions" / f"{slug('../../evil')}.html"
    for html in (page.read_text(encoding="utf-8"), (site / "hunan/index.html").read_text(encoding="utf-8")):
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;医院" in html
        assert len(re.findall(r"<script", html)) == 1  # the site's own search.js only
    assert XIANGJIANG_PAGE == "44860321_x43010211a1001" and slug("../../evil") == "-2e-2e-2f-2e-2e-2fevil"


def test_a_licence_number_typed_as_a_name_is_redacted(tmp_path: Path) -> None:
    """The last guard: a name field that holds a licence number by mistake never reaches a page."""
    run = _runner(tmp_path / "l.sqlite")
    run("demo")
    doctor = "110439999999991"
    run(
        "record", "physician.registered", "--id", "RED-1", "--effective", "2020-01-02", "--by", "长沙市卫生局",
        "--field", f"physician={doctor}", "--field", f"name={doctor}", "--field", f"institution={XIANGJIANG}",
        "--field", "title=主治医师",
    )  # fmt: skip
    run(
        "record", "privilege.granted", "--id", "RED-2", "--effective", "2020-01-03", "--by", XIANGJIANG,
        "--basis", "MTM-2018#20", "--field", f"institution={XIANGJIANG}", "--field", f"physician={doctor}",
        "--field", "level=2", "--field", "procedures=[\"清创缝合术\"]",
    )  # fmt: skip
    run("publish", "--out", str(tmp_path / "site"), "--province", "hunan", "--as-of", AS_OF)
    html = (tmp_path / f"site/hunan/institutions/{XIANGJIANG_PAGE}.html").read_text(encoding="utf-8")
    assert doctor not in html and "（已隐去）" in html and "清创缝合术" in html


# --- reports ----------------------------------------------------------------------------------


def test_report_list_and_unknown_report(demo: tuple[Run, Path]) -> None:
    run, _ = demo
    listed = run("report", "--list").output
    assert "filings-over-time" in listed and "hunan-filing-summary" in listed and "--half (required)" in listed
    result = run("report", "no-such-report", code=2)
    assert "no report 'no-such-report'" in result.output
    assert "filings-over-time" in result.output and "hunan-filing-summary" in result.output
    assert "--province" in run("report", "filings-over-time", "--help").output
    assert "Missing option '--province'" in run("report", "filings-over-time", code=2).output
    assert (
        "'png' is not one of"
        in run("report", "hunan-filing-summary", "--half", "2019H1", "--format", "png", code=2).output
    )


def test_hunan_summary_as_xlsx_has_the_forms_layout(demo: tuple[Run, Path], tmp_path: Path) -> None:
    """HN-2018 附件5 in XLSX: header lines above the form's columns; 备案时间 kept as text."""
    run, _ = demo
    out = tmp_path / "summary.xlsx"
    result = run("report", "hunan-filing-summary", "--half", "2019H1", "--format", "xlsx", "-o", str(out))
    assert "rows written" in result.output
    wb = load_workbook(out)
    assert wb.sheetnames[0].startswith("湖南省限制类医疗机构临床应用备案汇总表")
    assert "长沙市" in wb.sheetnames and "株洲市" in wb.sheetnames
    ws = wb["长沙市"]
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0][0] == "湖南省限制类医疗机构临床应用备案汇总表"
    assert any("长沙市" in str(r[0]) for r in rows[1:3])
    heading = next(i for i, r in enumerate(rows) if r[0] == "医疗机构名称")
    assert rows[heading] == ("医疗机构名称", "技术编号", "技术名称", "备案时间", "备案机关")
    data = rows[heading + 1 :]
    assert ("湘江示范医院", "G10", "肿瘤消融治疗技术", "20190130", "长沙市卫生健康委员会") in data
    date_cell = ws.cell(row=heading + 2, column=4)
    assert date_cell.number_format == "@" and isinstance(date_cell.value, str)
    assert ws.column_dimensions["A"].width >= 20
    assert ws.freeze_panes == f"A{heading + 2}"
    assert any(str(r) == "A1:E1" for r in ws.merged_cells.ranges)


def test_write_xlsx_stores_text_never_formulas(tmp_path: Path) -> None:
    table = Table(
        title="t",
        columns=(Column("名称", "name", width=12), Column("数", "n", number_format="0"), Column("日期", "d")),
        rows=[{"name": '=HYPERLINK("http://x")', "n": 3, "d": date(2019, 5, 14)}, {"name": "a\x01b", "n": None}],
        header_lines=("标题", "第二行"),
    )
    out = tmp_path / "t.xlsx"
    write_xlsx(table, out)
    ws = load_workbook(out).active
    assert ws.cell(row=4, column=1).value == '=HYPERLINK("http://x")'
    assert ws.cell(row=4, column=1).data_type == "s"
    assert ws.cell(row=4, column=2).value == 3 and ws.cell(row=4, column=2).number_format == "0"
    assert ws.cell(row=4, column=3).number_format == "yyyy-mm-dd"
    assert ws.cell(row=5, column=1).value == "ab"
    assert ws.column_dimensions["A"].width == 12


def _hostile_report() -> Report:
    def build(_views: Any, options: Mapping[str, str | None]) -> Table:
        return Table(
            title="hostile",
            columns=(Column("名称", "name"), Column("值", "value")),
            rows=[
                {"name": "=1+1", "value": "+SUM(A1)"},
                {"name": "-2", "value": "@cmd"},
                {"name": options.get("tag") or "", "value": "普通"},
            ],
        )

    return Report("test-hostile", "hostile cells", build, options=(Option("tag", "a value"),))


def test_csv_neutralises_formulas(demo: tuple[Run, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run, _ = demo
    reports = {"test-hostile": _hostile_report()}
    monkeypatch.setattr(cli_module.queries, "reports", lambda pm: reports)
    out = run("report", "test-hostile", "--tag", "=evil()").output
    rows = list(csv.reader(io.StringIO(out)))
    assert rows == [["名称", "值"], ["'=1+1", "'+SUM(A1)"], ["'-2", "'@cmd"], ["'=evil()", "普通"]]
    path = tmp_path / "h.csv"
    run("report", "test-hostile", "-o", str(path))
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")  # BOM: spreadsheets read the Chinese as UTF-8
    assert list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))[1] == ["'=1+1", "'+SUM(A1)"]


def test_hunan_summary_csv_neutralises_a_hostile_institution_name(tmp_path: Path) -> None:
    run = _runner(tmp_path / "l.sqlite")
    run("demo")
    _record_institution(run, "CSV-1", "44999999999999999A1001", '=HYPERLINK("http://evil")', "2020-01-02")
    run(  # the institution's submission: a completion without one is void (MTM-2018#11)
        "record",
        "filing.submitted",
        "--id",
        "CSV-3",
        "--effective",
        "2020-02-17",
        "--by",
        "44999999999999999A1001",
        "--field",
        "institution=44999999999999999A1001",
        "--field",
        "technology=hunan:S14",
        "--field",
        "technical_lead=110430105000061",
        "--field",
        'materials=["临床应用备案表"]',
    )
    run(
        "record",
        "filing.completed",
        "--id",
        "CSV-2",
        "--effective",
        "2020-03-02",
        "--by",
        "长沙市卫生健康委员会",
        "--field",
        "institution=44999999999999999A1001",
        "--field",
        "technology=hunan:S14",
    )
    rows = list(csv.reader(io.StringIO(run("report", "hunan-filing-summary", "--half", "2020H1").output)))
    names = [r[1] for r in rows[1:]]
    assert '\'=HYPERLINK("http://evil")' in names


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_filings_over_time_plots_and_counts(demo: tuple[Run, Path], tmp_path: Path) -> None:
    run, _ = demo
    png, svg = tmp_path / "f.png", tmp_path / "f.svg"
    run("report", "filings-over-time", "--province", "hunan", "--as-of", AS_OF, "--format", "png", "-o", str(png))
    run("report", "filings-over-time", "--province", "hunan", "--as-of", AS_OF, "-o", str(svg))  # format from suffix
    width, height = _png_size(png.read_bytes())
    assert width > 600 and height > 300 and png.stat().st_size > 10_000
    text = svg.read_text(encoding="utf-8")
    assert "<svg" in text and len(text) > 20_000 and "<dc:date>" not in text
    again = tmp_path / "g.svg"
    run("report", "filings-over-time", "--province", "hunan", "--as-of", AS_OF, "-o", str(again))
    assert again.read_bytes() == svg.read_bytes()

    rows = list(
        csv.DictReader(io.StringIO(run("report", "filings-over-time", "--province", "湖南省", "--as-of", AS_OF).output))
    )
    assert rows[0]["月份"] == "2016-04" and rows[-1]["月份"] == "2026-06"
    hunan = DEMO_FILES[[p.parent.parent.name for p in DEMO_FILES].index("hunan")]
    completed = [
        d
        for d in map(json.loads, hunan.read_text(encoding="utf-8").splitlines())
        if d["kind"] == "filing.completed" and d["effective"] <= AS_OF
    ]
    assert sum(int(r["备案"]) for r in rows) == len(completed)
    assert int(next(r for r in rows if r["月份"] == "2020-08")["暂停或停止"]) == 1  # HN-2020-0004 (MTM-2018#25)
    assert sum(int(r["发现问题"]) for r in rows) > 0

    window = run(
        "report",
        "filings-over-time",
        "--province",
        "hunan",
        "--from-month",
        "2019-01",
        "--to-month",
        "2019-12",
        "--as-of",
        AS_OF,
    ).output
    assert len(window.strip().splitlines()) == 13
    assert (
        "--from-month takes a month"
        in run("report", "filings-over-time", "--province", "hunan", "--from-month", "2019/01", code=5).output
    )
