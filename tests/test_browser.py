"""The published site in a real browser: headless Chromium against a local server.

Why a browser and not only string checks: what the public sees is what a browser makes of the
bytes — the charset it decodes with, the language it is told (``lang="zh-CN"``, which picks CJK
glyphs), whether the stylesheet and the search script load over HTTP from relative links, whether
a phone-sized window gets a readable page, what the filters do. Chromium (Debian's ``chromium``)
loads pages from ``http.server`` on 127.0.0.1, driven from its command line only (``--dump-dom``,
``--screenshot``): no driver library to keep in step with the browser's version. To act on a page
the server adds one test-only script after the site's own (``probe.js`` below, never published):
it sets the form's fields as a user would (an ``input`` event), then writes what the page shows —
rows and sections displayed, the count, the address, the ``:target`` and where it scrolled, every
date, code and name laid out on more than one line, horizontal overflow — into the DOM that
``--dump-dom`` returns. Screenshots are checked for content: the stylesheet's header colour, text
on a light page, a filter changing what is drawn, and Chinese drawn as glyphs (two searches that
differ only in their characters give different pixels; boxes for missing glyphs would not).
Every test skips, with the reason, where Chromium is not installed, except in CI (``CI`` set),
where a missing browser fails the module.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from functools import partial
from html import unescape
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from click.testing import CliRunner

from cli import cli
from projections.publish import slug

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None and os.environ.get("CI"):
    # CI installs Chromium (.ci/run): there a missing browser is a broken set-up, not a skip.
    pytest.fail("Chromium is not installed in CI; .ci/run should have installed it", pytrace=False)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Chromium is not installed (Debian: apt-get install chromium); the site's browser tests need it",
)

AS_OF = "2026-06-01"
XIANGJIANG = "44860321X43010211A1001"
XIANGJIANG_PAGE = slug(XIANGJIANG)
LICENCE = re.compile(r"1104\d{11}")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
HEADER_RGB = (0x0B, 0x4F, 0x8A)
"""``header.site`` background in style.css: seen in the screenshot only if the stylesheet loaded."""


PROBE_JS = r"""
(function () {
  "use strict";
  var config = JSON.parse(document.currentScript.getAttribute("data-probe") || "{}");
  var form = document.querySelector("form.filter");
  Object.keys(config.set || {}).forEach(function (name) {
    var field = form.elements.namedItem(name);
    field.value = config.set[name];
    field.dispatchEvent(new Event("input", { bubbles: true }));
  });
  function all(selector) { return Array.prototype.slice.call(document.querySelectorAll(selector)); }
  function shown(el) { return el.getClientRects().length > 0; }
  function lines(el) {
    var range = document.createRange();
    range.selectNodeContents(el);
    var tops = {};
    Array.prototype.forEach.call(range.getClientRects(), function (r) {
      if (r.width > 0) { tops[Math.round(r.top)] = true; }
    });
    return Object.keys(tops).length;
  }
  function report() {
  var target = document.querySelector(":target");
  var found = {
    search: decodeURIComponent(window.location.search),
    form_shown: !!form && shown(form),
    count: form ? form.querySelector(".filter-count").textContent : null,
    rows: all("[data-text]").filter(shown).map(function (r) { return r.getAttribute("data-text"); }),
    sections: all("section[id]").filter(shown).map(function (s) { return s.id; }),
    toc: all("nav.toc a").filter(shown).map(function (a) { return a.hash; }),
    target: target ? target.id : null,
    target_top: target ? target.getBoundingClientRect().top : null,
    scrolled: window.scrollY,
    checked: all("time, .person, .place, .code, td.status").filter(shown).length,
    broken: all("time, .person, .place, .code, td.status").filter(shown).filter(function (e) {
      return lines(e) > 1;
    }).map(function (e) { return e.textContent; }),
    overflow: document.documentElement.scrollWidth - window.innerWidth,
    headings_shown: all("table.rows thead").some(function (t) { return t.getBoundingClientRect().height > 2; })
  };
  var out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify(found);
  document.body.appendChild(out);
  }
  // After the load and the scroll to the address's fragment, which come after deferred scripts.
  window.addEventListener("load", function () { window.setTimeout(report, 50); });
}());
"""
"""Test-only: acts on a page and reports what it shows (see the module's docstring)."""


class _Site(SimpleHTTPRequestHandler):
    """The published folder as a web server serves it, plus the probe for the tests' requests
    (``?probe=<json>``): the page then ends with the probe, run after the site's own script."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/__probe.js":
            self._send(PROBE_JS.encode("utf-8"), "text/javascript; charset=utf-8")
            return
        query = parse_qs(url.query)
        if "probe" not in query and "bare" not in query:
            super().do_GET()
            return
        html = (Path(self.directory) / url.path.lstrip("/")).read_text(encoding="utf-8")
        if "bare" in query:  # as a browser sees the page when the site's script does not run
            html = re.sub(r'<script src="[./]*search\.js" defer></script>\n', "", html)
        if "probe" in query:
            tag = f'<script defer src="/__probe.js" data-probe="{escape_attr(query["probe"][0])}"></script>'
            html = html.replace("</body>", f"{tag}\n</body>")
        self._send(html.encode("utf-8"), "text/html; charset=utf-8")

    def _send(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def escape_attr(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


@pytest.fixture(scope="module")
def site_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``ledger demo && ledger publish --out site``, served on 127.0.0.1 at a free port."""
    root = tmp_path_factory.mktemp("browser")
    for args in (["demo"], ["publish", "--out", str(root / "site"), "--as-of", AS_OF]):
        result = CliRunner().invoke(cli, ["--db", str(root / "l.sqlite"), *args])
        assert result.exit_code == 0, result.output
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Site, directory=str(root / "site")))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    done = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done


class _Cells(HTMLParser):
    """The DOM as the browser built it: the html element's lang, the title, each cell by its label."""

    def __init__(self) -> None:
        super().__init__()
        self.lang: str | None = None
        self.title = ""
        self.cells: list[tuple[str, str]] = []
        self.scripts = 0
        self._label: str | None = None
        self._text: list[str] = []
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "html":
            self.lang = found.get("lang")
        elif tag == "title":
            self._in_title = True
        elif tag == "script":
            self.scripts += 1
        elif tag == "td" and found.get("data-label"):
            self._label, self._text = found["data-label"], []

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag == "td" and self._label is not None:
            self.cells.append((self._label, "".join(self._text).strip()))
            self._label = None

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        if self._label is not None:
            self._text.append(data)

    def column(self, label: str) -> list[str]:
        return [text for name, text in self.cells if name == label]


def _dom(tmp_path: Path, url: str) -> tuple[str, _Cells]:
    html = _chromium(tmp_path, "--dump-dom", url).stdout
    parsed = _Cells()
    parsed.feed(html)
    return html, parsed


def test_filings_page_in_the_browser(site_url: str, tmp_path: Path) -> None:
    """MTM-2018#40 as the public reads it: each institution filed, with date and authority."""
    html, dom = _dom(tmp_path, f"{site_url}/hunan/filings.html")
    assert dom.lang == "zh-CN"
    assert "湖南省" in dom.title and "备案名单" in dom.title  # decoded as UTF-8 from the meta charset
    assert "湘江示范医院" in dom.column("医疗机构")
    assert "2019-01-30" in dom.column("备案日期")
    assert "长沙市卫生健康委员会" in dom.column("备案机关")
    assert "停止" in dom.column("状态")
    assert dom.scripts == 1  # the site's own search.js
    assert not LICENCE.search(html)


def test_institution_page_in_the_browser(site_url: str, tmp_path: Path) -> None:
    """院务公开 (MTM-2018#24): surgical grades by physician name, never by licence number."""
    html, dom = _dom(tmp_path, f"{site_url}/hunan/institutions/{XIANGJIANG_PAGE}.html")
    assert dom.lang == "zh-CN"
    physicians = dom.column("医师")
    assert "周立衡" in physicians and "陈思远" in physicians
    assert "四级手术" in dom.column("手术级别")
    assert any(text == "7" for text in dom.column("累计例数"))
    assert not LICENCE.search(html)
    assert "签名检查点" in html and "ledger verify" in html


def test_index_links_every_jurisdiction_in_the_browser(site_url: str, tmp_path: Path) -> None:
    html, dom = _dom(tmp_path, f"{site_url}/index.html")
    assert dom.lang == "zh-CN"
    for name, href in (
        ("全国", "national/index.html"),
        ("湖南省", "hunan/index.html"),
        ("重庆市", "chongqing/index.html"),
    ):
        assert name in html and f'href="{href}"' in html


def test_phone_screenshot_is_readable(site_url: str, tmp_path: Path) -> None:
    """A 390×844 window (a phone), the list filtered: drawn with its stylesheet, and not blank."""
    _shot(tmp_path, "phone", f"{site_url}/hunan/filings.html?city=长沙市", size=(390, 844))


# --- search, filters, anchors, layout: the page acted on, then read back --------------------------


def _probe(
    tmp_path: Path, url: str, *, fields: dict[str, str] | None = None, size: tuple[int, int] = (1280, 900)
) -> dict[str, Any]:
    """Open ``url`` at ``size``, set the filter's ``fields`` as a user would, report the page."""
    base, _, fragment = url.partition("#")
    config = quote(json.dumps({"set": fields or {}}, ensure_ascii=False))
    address = f"{base}{'&' if '?' in base else '?'}probe={config}" + (f"#{fragment}" if fragment else "")
    html = _chromium(
        tmp_path, f"--window-size={size[0]},{size[1]}", "--virtual-time-budget=5000", "--dump-dom", address
    ).stdout
    found = re.search(r'<pre id="probe">(.*?)</pre>', html, re.S)
    assert found is not None, html[-2000:]
    report: dict[str, Any] = json.loads(unescape(found.group(1)))
    return report


def test_search_by_institution_name(site_url: str, tmp_path: Path) -> None:
    page = _probe(tmp_path, f"{site_url}/hunan/filings.html", fields={"q": "湘东"})
    assert page["form_shown"]
    assert page["rows"] and all("湘东示范医院" in r for r in page["rows"])
    assert page["sections"] == ["hunan-S03"]  # the other technologies' sections are hidden
    assert page["toc"] == ["#hunan-S03"]  # and their links above the list
    assert page["count"] == f"显示 {len(page['rows'])} / 7 条"
    assert page["search"] == "?q=湘东"  # the address holds the search: it can be shared
    assert _probe(tmp_path, f"{site_url}/hunan/filings.html", fields={"q": "不存在的医院"})["rows"] == []
    garbled = _probe(tmp_path, f"{site_url}/hunan/filings.html?q=%E6%B9&city=%ZZ")  # a cut-off address
    assert garbled["form_shown"] and len(garbled["rows"]) == 7


def test_filter_by_technology_and_city_from_the_address(site_url: str, tmp_path: Path) -> None:
    """A shared address restores the filters; technology and city combine."""
    by_tech = _probe(tmp_path, f"{site_url}/hunan/filings.html?tech=hunan-S19")
    assert by_tech["sections"] == ["halted"] and len(by_tech["rows"]) == 2  # both stopped uses of S19
    both = _probe(tmp_path, f"{site_url}/hunan/filings.html?tech=hunan-S19&city=湘潭市")
    assert [r.split()[0] for r in both["rows"]] == ["莲城示范医院"]
    by_city = _probe(tmp_path, f"{site_url}/hunan/filings.html", fields={"city": "长沙市"})
    assert by_city["rows"] and all(" 长沙市 " in f" {r} " for r in by_city["rows"])
    assert "hunan-S03" not in by_city["sections"]  # 株洲's only technology
    institutions = _probe(tmp_path, f"{site_url}/hunan/index.html", fields={"tech": "hunan-S14"})
    assert [r.split()[0] for r in institutions["rows"]] == ["湘江示范医院"]


def test_without_the_script_every_row_is_shown(site_url: str, tmp_path: Path) -> None:
    """Where the script does not run, the whole list is read, and no dead form is shown."""
    page = _probe(tmp_path, f"{site_url}/hunan/filings.html?bare=1&q=湘东")
    assert not page["form_shown"] and page["count"] == ""
    assert len(page["rows"]) == 7 and "halted" in page["sections"]


def test_anchor_by_technology_code_scrolls_to_it(site_url: str, tmp_path: Path) -> None:
    page = _probe(tmp_path, f"{site_url}/hunan/filings.html#hunan-S14", size=(1280, 600))
    assert page["target"] == "hunan-S14" and page["scrolled"] > 0
    assert 0 <= page["target_top"] < 40
    entry = _probe(tmp_path, f"{site_url}/hunan/catalog.html#hunan-S14", size=(1280, 600))
    assert entry["target"] == "hunan-S14" and 0 <= entry["target_top"] < 40


@pytest.mark.parametrize("width", [1280, 390])
def test_dates_codes_and_names_are_never_broken(site_url: str, tmp_path: Path, width: int) -> None:
    """At a desktop width and a phone's: dates, codes, three-character names and statuses each on
    one line, and the page no wider than the window."""
    pages = (
        "hunan/filings.html",
        "hunan/training.html",
        f"hunan/institutions/{XIANGJIANG_PAGE}.html",
        "hunan/index.html",
    )
    for name in pages:
        page = _probe(tmp_path, f"{site_url}/{name}", size=(width, 900))
        assert page["checked"] > 3, name
        assert page["broken"] == [], (name, page["broken"])
        assert page["overflow"] <= 0, (name, page["overflow"])
        assert page["headings_shown"] == (width > 640), name  # a phone gets one card per row


def _shot(tmp_path: Path, name: str, url: str, size: tuple[int, int] = (1280, 900)) -> Any:
    from matplotlib.image import imread

    shot = tmp_path / f"{name}.png"
    _chromium(tmp_path, f"--screenshot={shot}", f"--window-size={size[0]},{size[1]}", url)
    pixels = imread(str(shot))[:, :, :3]
    assert pixels.shape[:2] == (size[1], size[0])
    header = tuple(round(float(c) * 255) for c in pixels[8, 200])
    assert all(abs(a - b) <= 4 for a, b in zip(header, HEADER_RGB, strict=True)), header
    dark = (pixels[120:].mean(axis=2) < 0.5).mean()
    assert 0.005 < dark < 0.5, dark  # text on a light page: neither blank nor a solid block
    return pixels


def test_filtered_screenshot_shows_chinese_glyphs(site_url: str, tmp_path: Path) -> None:
    """Two searches finding nothing, differing only in their two Chinese characters: drawn as
    glyphs they differ, and only inside the search box; as boxes for a missing font they would
    be the same picture."""
    first = _shot(tmp_path, "a", f"{site_url}/hunan/filings.html?q=甲乙")
    second = _shot(tmp_path, "b", f"{site_url}/hunan/filings.html?q=丙丁")
    differ = (abs(first - second).sum(axis=2) > 0.1).nonzero()
    assert len(differ[0]) > 30
    assert differ[0].max() - differ[0].min() < 40 and differ[1].max() - differ[1].min() < 120  # one small box
    whole = _shot(tmp_path, "c", f"{site_url}/hunan/filings.html")
    filtered = _shot(tmp_path, "d", f"{site_url}/hunan/filings.html?city=株洲市")
    assert (abs(whole - filtered).sum(axis=2) > 0.1).mean() > 0.02  # the filter changed what is drawn
