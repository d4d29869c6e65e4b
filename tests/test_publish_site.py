"""The public site's structure: anchors by technology code, catalogue and filings linked both ways,
filters' choices, a footer for the public only (MTM-2018#24, #40).

Why: a bookmark to a technology's list must survive the next publish, a reader of the catalogue
must reach the hospitals filed for an entry (and back), and nothing on a public page may be an
instruction to whoever runs the ledger. The browser tests (``test_browser.py``) check what the
script does with these pages; these check the bytes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from posixpath import dirname, normpath
from posixpath import join as urljoin

import pytest
from click.testing import CliRunner, Result

from cli import cli
from projections.publish import slug
from projections.publish.pages import anchor

AS_OF = "2026-06-01"
XIANGJIANG = "44860321X43010211A1001"
XIANGDONG = "55063217843020311A1001"

Run = Callable[..., Result]


def _runner(db: Path) -> Run:
    def run(*args: str, code: int = 0) -> Result:
        result = CliRunner().invoke(cli, ["--db", str(db), *args])
        assert result.exit_code == code, (result.output, result.exception)
        return result

    return run


class _Page(HTMLParser):
    """Ids, links, filter attributes and select options of one page."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.links: list[str] = []
        self.rows: list[dict[str, str | None]] = []
        self.options: dict[str, list[str]] = {}
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if found.get("id"):
            self.ids.append(str(found["id"]))
        if tag == "a" and found.get("href"):
            self.links.append(str(found["href"]))
        if "data-text" in found:
            self.rows.append(found)
        if tag == "select":
            self._select = found.get("name")
            self.options[str(self._select)] = []
        elif tag == "option" and self._select:
            self.options[self._select].append(str(found.get("value")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None


def _page(site: Path, relative: str) -> _Page:
    page = _Page()
    page.feed((site / relative).read_text(encoding="utf-8"))
    return page


def _pages(site: Path) -> dict[str, _Page]:
    return {p.relative_to(site).as_posix(): _page(site, p.relative_to(site).as_posix()) for p in site.rglob("*.html")}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, Path]:
    root = tmp_path_factory.mktemp("site")
    run = _runner(root / "l.sqlite")
    run("demo")
    run("publish", "--out", str(root / "site"), "--as-of", AS_OF)
    return run, root / "site"


def test_technology_anchors_are_catalogue_and_code() -> None:
    assert anchor("hunan:S14") == "hunan-S14"
    assert anchor("national:G10") == "national-G10"
    assert anchor("hunan:S 1<x>") == f"t-{slug('hunan:S 1<x>')}"  # never a space or markup in an id
    assert anchor("hunan:S 1<x>") != anchor("hunan:S 1<y>")


def test_filings_sections_are_anchored_by_code(demo: tuple[Run, Path]) -> None:
    _, site = demo
    page = _page(site, "hunan/filings.html")
    assert {"national-G10", "national-G16", "hunan-S03", "hunan-S14", "hunan-S27", "halted"} <= set(page.ids)
    assert not [i for i in page.ids if re.fullmatch(r"t-\d+", i)]  # no position-numbered anchors
    assert "#hunan-S14" in page.links


def test_anchors_survive_a_technology_added_before_them(demo: tuple[Run, Path], tmp_path: Path) -> None:
    """A new catalogue entry that sorts first, and a filing for it, leave every earlier anchor
    pointing at the same technology (a bookmark keeps working)."""
    _, before_site = demo
    db = tmp_path / "l.sqlite"
    fresh = _runner(db)
    fresh("demo")
    site = tmp_path / "site"
    fresh("publish", "--out", str(site), "--as-of", AS_OF)
    before = _sections(site / "hunan/filings.html")
    assert before == _sections(before_site / "hunan/filings.html")
    decisions = [
        {
            "id": "T-LIST-S00",
            "kind": "technology.listed",
            "effective": "2019-01-02",
            "by": "湖南省卫生健康委员会",
            "basis": "HN-2018#二(二)",
            "catalog": "hunan",
            "code": "S00",
            "name": "测试新增技术",
            "class": "restricted",
            "version": "湖南省限制类医疗技术目录（增补）",
        },
        {
            "id": "T-SUB-S00",
            "kind": "filing.submitted",
            "effective": "2019-02-01",
            "by": XIANGDONG,
            "basis": "MTM-2018#11",
            "institution": XIANGDONG,
            "technology": "hunan:S00",
            "technical_lead": "110430203000095",
            "materials": ["湖南省限制类医疗技术临床应用备案表（附件2）"],
        },
        {
            "id": "T-DONE-S00",
            "kind": "filing.completed",
            "effective": "2019-02-10",
            "by": "株洲市卫生健康委员会",
            "basis": "MTM-2018#11",
            "institution": XIANGDONG,
            "technology": "hunan:S00",
        },
    ]
    added = tmp_path / "added.jsonl"
    added.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in decisions), encoding="utf-8")
    fresh("import", str(added))
    fresh("publish", "--out", str(site), "--as-of", AS_OF)
    after = _sections(site / "hunan/filings.html")
    assert after["hunan-S00"].startswith("S00")
    assert {k: v for k, v in after.items() if k != "hunan-S00"} == before
    assert list(after).index("hunan-S00") < list(after).index("hunan-S03")  # it did sort before them


def _sections(path: Path) -> dict[str, str]:
    """Each technology section's id and the code and name its heading shows."""
    html = path.read_text(encoding="utf-8")
    found = re.findall(
        r'<section class="group" id="([^"]+)" data-filter-group>\s*<h2><span class="code">([^<]+)</span> ([^<]+?) <',
        html,
    )
    return {i: f"{code} {name}" for i, code, name in found}


def test_catalogue_links_to_the_institutions_filed_and_back(demo: tuple[Run, Path]) -> None:
    _, site = demo
    inst = f"institutions/{slug(XIANGJIANG)}.html"
    catalog = (site / "hunan/catalog.html").read_text(encoding="utf-8")
    row = _row(catalog, "hunan-S14")
    assert f'href="{inst}">湘江示范医院</a>' in row  # the hospital filed for it
    assert 'href="filings.html#hunan-S14"' in row  # and the whole list
    unfiled = _row(catalog, "hunan-S01")
    assert "institutions/" not in unfiled and "filings.html" not in unfiled
    assert 'href="catalog.html#hunan-S14"' in (site / "hunan/filings.html").read_text(encoding="utf-8")  # back
    page = (site / "hunan" / inst).read_text(encoding="utf-8")
    assert 'href="../filings.html#hunan-S14"' in page and 'href="../catalog.html#hunan-S14"' in page
    national = (site / "national/catalog.html").read_text(encoding="utf-8")
    g10 = _row(national, "national-G10")
    assert 'href="../hunan/filings.html#national-G10">湖南省 1 家' in g10
    assert 'href="../chongqing/filings.html#national-G10">重庆市 1 家' in g10


def _row(html: str, anchor: str) -> str:
    start = html.index(f'<tr id="{anchor}"')
    return html[start : html.index("</tr>", start)]


def test_every_link_within_the_site_reaches_its_page_and_anchor(demo: tuple[Run, Path]) -> None:
    _, site = demo
    pages = _pages(site)
    checked = 0
    for name, page in pages.items():
        for href in page.links:
            target, _, fragment = href.partition("#")
            resolved = normpath(urljoin(dirname(name), target)) if target else name
            assert resolved in pages or (site / resolved).is_file(), (name, href)
            if fragment:
                assert fragment in pages[resolved].ids, (name, href)
                checked += 1
    assert checked > 50


def test_filters_offer_each_technology_and_city_in_pinyin_order(demo: tuple[Run, Path]) -> None:
    _, site = demo
    filings = _page(site, "hunan/filings.html")
    assert filings.options["city"] == ["", "长沙市", "湘潭市", "株洲市"]  # changsha, xiangtan, zhuzhou
    assert filings.options["tech"][:3] == ["", "national-G10", "national-G16"]
    assert "hunan-S19" in filings.options["tech"]  # halted ones can be filtered too
    for row in filings.rows:
        assert row["data-tech"] in filings.options["tech"] and row["data-city"] in filings.options["city"]
    index = _page(site, "hunan/index.html")
    assert index.options["city"] == ["", "长沙市", "湘潭市", "株洲市"]
    xiangjiang = next(r for r in index.rows if "湘江示范医院" in str(r["data-text"]))
    assert {"national-G10", "hunan-S14"} <= set(str(xiangjiang["data-tech"]).split())
    assert "hunan-S19" not in str(xiangjiang["data-tech"]).split()  # stopped: not filed now
    assert len(_page(site, "hunan/catalog.html").rows) > 40  # every entry searchable


def test_public_pages_carry_no_instruction_to_the_operator(tmp_path: Path) -> None:
    """Without a checkpoint, and with one that does not cover the last records, the footer says
    so to the reader; what the operator should run goes to the publisher's terminal only."""
    run = _runner(tmp_path / "l.sqlite")
    run("demo")
    result = run("publish", "--out", str(tmp_path / "site"), "--as-of", AS_OF)
    assert "ledger checkpoint" in result.output  # told on stderr, to whoever published
    for html in (p.read_text(encoding="utf-8") for p in (tmp_path / "site").rglob("*.html")):
        footer = html[html.index('<footer class="stamp"') :]
        assert "尚无签名检查点" in footer
        assert "ledger checkpoint" not in footer and "运营方" not in footer
        assert "ledger verify" in footer  # how a reader checks the page stays
