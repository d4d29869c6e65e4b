"""The in-page proof check (``proofs.js``) in headless Chromium, through ``test_browser``'s harness.

A demo site published with a 2-of-2 witness policy shows 已核验 with the checkpoint's size and
its witnesses; a copy of a page with one byte changed in a proof, a leaf hash, the checkpoint or a
cosignature, or with a proof moved to a decision the page does not show, names the failure; with
scripts off the page reads as before and shows no verdict. Skips without Chromium, except in CI
(``test_browser`` fails the run there).
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Callable, Iterator
from functools import partial
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from test_browser import CHROMIUM, _chromium, _Site
from test_publish_proofs import BLOCK, XIANGJIANG_PAGE, build_site, proofs_of

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install chromium)")
STATUS = re.compile(r'<p class="verify-status ([a-z]+)"[^>]*>([^<]*)</p>')


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """The cosigned demo site (``test_publish_proofs.build_site``) on 127.0.0.1 at a free port."""
    root = tmp_path_factory.mktemp("browser-proofs")
    with pytest.MonkeyPatch.context() as monkeypatch:
        folder, _ = build_site(root, monkeypatch)
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Site, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def verdict(tmp_path: Path, url: str, *flags: str) -> tuple[str, str]:
    """The result class and text ``proofs.js`` left in the page."""
    html = _chromium(tmp_path, "--virtual-time-budget=5000", *flags, "--dump-dom", url).stdout
    found = STATUS.search(html)
    assert found is not None, html[-1500:]
    return found.group(1), found.group(2)


def flip(b64: str, at: int = 0) -> str:
    """``b64`` with one byte of what it encodes changed."""
    raw = bytearray(base64.b64decode(b64))
    raw[at] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def tampered(folder: Path, name: str, change: Callable[[dict[str, Any]], None]) -> str:
    """A copy of Xiangjiang's page beside it, its proofs changed by ``change``: its address."""
    page = folder / XIANGJIANG_PAGE
    html = page.read_text(encoding="utf-8")
    data = proofs_of(html)
    change(data)
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")
    start, end = BLOCK.search(html).span(1)  # type: ignore[union-attr]
    (page.parent / f"{name}.html").write_text(html[:start] + text + html[end:], encoding="utf-8")
    return f"{XIANGJIANG_PAGE.rsplit('/', 1)[0]}/{name}.html"


@pytest.mark.parametrize("page", [XIANGJIANG_PAGE, "hunan/filings.html"])
def test_a_published_page_shows_it_is_verified(served: tuple[Path, str], tmp_path: Path, page: str) -> None:
    folder, url = served
    data = proofs_of((folder / page).read_text(encoding="utf-8"))
    result, text = verdict(tmp_path, f"{url}/{page}")
    assert result == "verified", text
    size = data["checkpoint"].split("\n")[1]
    assert text.startswith(f"已核验：本页 {len(data['proofs'])} 条决定")
    assert f"共 {size} 条记录" in text and "见证人：changsha、zhuzhou" in text
    assert re.search(r"日志签名 demo-log\+[0-9a-f]{8}）", text)


def _proof(data: dict[str, Any]) -> None:
    """One byte of the first hash of the first proof's audit path."""
    ref = data["proofs"][0][3][0]
    data["hashes"][ref] = flip(data["hashes"][ref])


def _leaf(data: dict[str, Any]) -> None:
    """One byte of the last proof's leaf hash."""
    ref = data["proofs"][-1][2]
    data["hashes"][ref] = flip(data["hashes"][ref], 31)


def _checkpoint(data: dict[str, Any]) -> None:
    """One byte of the signed root hash."""
    lines = data["checkpoint"].split("\n")
    lines[2] = flip(lines[2], 5)
    data["checkpoint"] = "\n".join(lines)


def _cosignature(data: dict[str, Any]) -> None:
    """One byte of zhuzhou's Ed25519 signature (after its key ID and time)."""
    lines = data["checkpoint"].split("\n")
    at = next(i for i, line in enumerate(lines) if line.startswith("— zhuzhou "))
    name, b64 = lines[at].rsplit(" ", 1)
    lines[at] = f"{name} {flip(b64, 40)}"
    data["checkpoint"] = "\n".join(lines)


def _quorum(data: dict[str, Any]) -> None:
    """zhuzhou's cosignature line removed: one of the two witnesses the quorum needs."""
    data["checkpoint"] = "".join(
        line for line in data["checkpoint"].splitlines(True) if not line.startswith("— zhuzhou ")
    )


def _elsewhere(data: dict[str, Any]) -> None:
    """The first proof claimed for a decision the page does not show."""
    data["proofs"][0][0] = "HN-2099-0001"


@pytest.mark.parametrize(
    ("change", "failure"),
    [
        (_proof, r"核验失败：第 1 条记录（[^）]+）的证明与检查点不符"),
        (_leaf, r"核验失败：第 \d+ 条记录（[^）]+）的证明与检查点不符"),
        (_checkpoint, r"核验失败：检查点的日志签名（demo-log）无效"),
        (_cosignature, r"核验失败：见证人 zhuzhou 的副签无效"),
        (_quorum, r"核验失败：检查点未达到见证法定数（provinces），已副签：changsha"),
        (_elsewhere, r"核验失败：第 1 条证明（HN-2099-0001）不是本页显示的决定"),
    ],
)
def test_one_byte_changed_names_the_failure(
    served: tuple[Path, str], tmp_path: Path, change: Callable[[dict[str, Any]], None], failure: str
) -> None:
    folder, url = served
    page = tampered(folder, change.__name__.strip("_"), change)
    result, text = verdict(tmp_path, f"{url}/{page}")
    assert result == "failed" and re.fullmatch(failure, text), text


def test_without_the_script_the_page_reads_as_before(served: tuple[Path, str], tmp_path: Path) -> None:
    """Where proofs.js does not run (a copy without it, as ``test_browser``'s ``bare`` pages): no
    verdict is shown (the status stays hidden and empty) and every row is there."""
    folder, url = served
    page = folder / XIANGJIANG_PAGE
    html = page.read_text(encoding="utf-8")
    bare = re.sub(r'<script src="[./]*proofs\.js" defer></script>\n', "", html)
    assert bare != html
    (page.parent / "bare.html").write_text(bare, encoding="utf-8")
    shown = _chromium(tmp_path, "--dump-dom", f"{url}/{XIANGJIANG_PAGE.rsplit('/', 1)[0]}/bare.html").stdout
    assert re.search(r'<p class="verify-status" id="proofs-status" role="status" hidden=""></p>', shown)
    assert "周立衡" in shown and "HN-2016-0004" in shown
