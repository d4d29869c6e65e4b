"""HN-2018 附件5: 湖南省限制类医疗机构临床应用备案汇总表, the semi-annual filing summary per city.

HN-2018#六(二): each 市州 health authority summarises the filings made in its area and sends the
summary to the province at the end of June (covering January–June) and of December (July–December).
``ledger report hunan-filing-summary --half 2019H1 --format csv|xlsx`` builds it from the
disclosure views as of the last day of the half: every filing the authority completed in the half,
with the form's columns — 医疗机构名称, 技术编号, 技术名称, 备案时间 (YYYYMMDD, kept as text so a
spreadsheet does not turn it into a number), 备案机关 — grouped by city. The main table (what CSV
writes) lists every city with a leading 市州 column; the XLSX has one sheet per city laid out as
the form is, with its header lines (title, 市州（公章）, 填报人).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import TYPE_CHECKING, Any

from ledger import ConfigurationError
from projections import Column, Option, Report, Table, pinyin_key

if TYPE_CHECKING:
    from projections import FilingRow, Views

TITLE = "湖南省限制类医疗机构临床应用备案汇总表"
FORM_COLUMNS = (
    Column("医疗机构名称", "institution_name", width=30),
    Column("技术编号", "code", width=10),
    Column("技术名称", "technology_name", width=36),
    Column("备案时间", "filed_on", number_format="@", width=12),
    Column("备案机关", "authority", width=26),
)
CITY_COLUMN = Column("市州", "city", width=10)
NOTES = (
    "备案时间为备案机关完成备案之日，按YYYYMMDD填写。",
    "本期无备案的市州亦应报送本表，注明本期无备案（零报告）。",
)
_HALF = re.compile(r"\A(\d{4})H([12])\Z")


def half_year(value: str | None) -> tuple[date, date]:
    """``2019H1`` → (2019-01-01, 2019-06-30); ``2019H2`` → (2019-07-01, 2019-12-31)."""
    match = _HALF.match((value or "").strip().upper())
    if match is None:
        msg = f"--half takes a year and a half, e.g. 2019H1 (January–June) or 2019H2, got {value!r}"
        raise ConfigurationError(msg)
    year, half = int(match.group(1)), int(match.group(2))
    return (date(year, 1, 1), date(year, 6, 30)) if half == 1 else (date(year, 7, 1), date(year, 12, 31))


def _option(options: Mapping[str, str | None], name: str) -> str | None:
    for key in (name, f"--{name}", name.replace("-", "_")):
        if options.get(key):
            return options[key]
    return None


def _row(f: FilingRow) -> dict[str, Any]:
    assert f.filed_on is not None
    return {
        "city": f.city,
        "institution_name": f.institution_name,
        "code": f.technology.partition(":")[2],
        "technology": f.technology,
        "technology_name": f.technology_name,
        "filed_on": f.filed_on.strftime("%Y%m%d"),
        "authority": f.authority or "",
    }


def build_filing_summary(views: Views, options: Mapping[str, str | None]) -> Table:
    """The annex-5 summary for ``--half`` (and, with ``--city``, one 市州 only)."""
    start, end = half_year(_option(options, "half"))
    city = _option(options, "city")
    known_at = _option(options, "known-at")
    filings = [
        f
        for f in views.filings(province="hunan", as_of=end, known_at=known_at)
        if f.filed_on is not None and start <= f.filed_on <= end and (city is None or f.city == city)
    ]
    rows = sorted(
        (_row(f) for f in filings),
        key=lambda r: (pinyin_key(r["city"]), r["filed_on"], r["institution_name"], r["code"]),
    )
    # Every 市州 files, a nil return too: one sheet per city with institutions, in pinyin order.
    cities = {city} if city else {i.city for i in views.institutions("hunan", as_of=end, known_at=known_at)}
    period = f"统计期间：{start:%Y年%m月%d日}至{end:%Y年%m月%d日}（{'1-6月' if start.month == 1 else '7-12月'}）"
    sheets = {}
    for name in sorted({r["city"] for r in rows} | cities, key=pinyin_key):
        sheets[name] = Table(
            title=f"{TITLE}（{name}）",
            columns=FORM_COLUMNS,
            rows=[r for r in rows if r["city"] == name],
            header_lines=(TITLE, f"市州（公章）：{name}    填报人：", period),
            notes=NOTES,
        )
    return Table(
        title=TITLE,
        columns=(CITY_COLUMN, *FORM_COLUMNS),
        rows=rows,
        header_lines=(TITLE, f"市州（公章）：{city or '全省各市州'}    填报人：", period),
        sheets=sheets,
        notes=NOTES,
    )


FILING_SUMMARY = Report(
    name="hunan-filing-summary",
    title=f"{TITLE}（HN-2018 附件5，每半年）",
    build=build_filing_summary,
    options=(
        Option("half", "the half-year, e.g. 2019H1 (January–June) or 2019H2 (July–December)", required=True),
        Option("city", "one 市州 only, e.g. 长沙市 (default: every city, one sheet each)"),
    ),
    article="HN-2018#六(二)",
)
