"""Publishing is atomic and confined: the site is written fresh and swapped in, nothing outside is
touched, every subject has its own page, and what a page shows is every character there is.

Each test drives ``ledger`` on the demo ledger (in-process, or as a real process where the exit
code matters). The public lists are the disclosure duties of MTM-2018#24, #30 and #40: a page that
outlives its subject, or shows another institution's data, publishes something false.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import example, given
from hypothesis import strategies as st

from cli import cli
from projections import publish as publish_module
from projections.publish import MANIFEST, MAX_NAME, slug

AS_OF = "2026-06-01"
EARLY = "2019-03-01"
"""A day on which the demo's Hunan has fewer institutions and filings than on AS_OF."""
XIANGJIANG = "44860321X43010211A1001"

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


def _tree(root: Path) -> dict[str, bytes]:
    """Every file of a site as a reader going through ``root`` sees it."""
    out = {}
    for folder, _, files in os.walk(root, followlinks=False):
        for name in files:
            path = Path(folder) / name
            out[path.relative_to(root).as_posix()] = path.read_bytes()
    return out


def _siblings(out: Path) -> set[str]:
    return {p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")}


def _record_institution(run: Run, decision_id: str, institution: str, name: str) -> None:
    run(
        "record", "institution.registered", "--id", decision_id, "--effective", "2020-01-02", "--by", "长沙市卫生局",
        "--field", f"institution={institution}", "--field", f"name={name}", "--field", "province=湖南省",
        "--field", "city=长沙市", "--field", "category=医院", "--field", "level=二级",
        "--field", "licensing_authority=长沙市卫生健康委员会",
    )  # fmt: skip


# --- atomic: a reader sees the old site or the new one ----------------------------------------


def test_readers_see_the_old_site_until_the_new_one_is_complete(
    demo: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a publish writes page after page, the site at --out stays the previous one, byte for
    byte; the new one appears whole, identical to a publish into a fresh folder."""
    site = tmp_path / "site"
    demo("publish", "--out", str(site), "--as-of", EARLY)
    before = _tree(site)
    seen: list[dict[str, bytes]] = []
    write = publish_module._Site.write

    def watched(self: Any, relative: str, text: str) -> None:
        write(self, relative, text)
        seen.append(_tree(site))

    monkeypatch.setattr(publish_module._Site, "write", watched)
    demo("publish", "--out", str(site), "--as-of", AS_OF)
    monkeypatch.undo()
    assert len(seen) > 10 and all(tree == before for tree in seen)
    demo("publish", "--out", str(tmp_path / "fresh"), "--as-of", AS_OF)
    assert _tree(site) == _tree(tmp_path / "fresh") != before


def test_a_publish_that_fails_half_way_leaves_the_old_site(
    demo: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    demo("publish", "--out", str(site), "--as-of", EARLY)
    before, around = _tree(site), _siblings(site)
    write = publish_module._Site.write
    calls = []

    def failing(self: Any, relative: str, text: str) -> None:
        calls.append(relative)
        if len(calls) == 6:
            raise publish_module.ConfigurationError("cannot write: the disk is full")
        write(self, relative, text)

    monkeypatch.setattr(publish_module._Site, "write", failing)
    result = demo("publish", "--out", str(site), "--as-of", AS_OF, code=5)
    assert "the disk is full" in result.output
    assert _tree(site) == before
    assert _siblings(site) == around  # the half-written version was removed


def test_pages_of_subjects_that_left_the_lists_vanish(demo: Run, tmp_path: Path) -> None:
    """A retracted institution, or one not yet registered on the day published, has no page left
    online: re-publishing gives exactly the site a fresh publish gives (MTM-2018#24, #40)."""
    _record_institution(demo, "GONE-1", "44000000000000000A1009", "将被撤回的医院")
    site = tmp_path / "site"
    demo("publish", "--out", str(site), "--as-of", AS_OF)
    gone = f"hunan/institutions/{slug('44000000000000000A1009')}.html"
    assert gone in _tree(site)
    demo("record", "decision.retracted", "--id", "GONE-2", "--effective", "2020-02-01", "--by", "长沙市卫生局",
         "--field", "retracts=GONE-1", "--field", "reason=登记有误")  # fmt: skip
    demo("publish", "--out", str(site), "--as-of", AS_OF)
    assert gone not in _tree(site)
    demo("publish", "--out", str(site), "--as-of", EARLY)
    demo("publish", "--out", str(tmp_path / "fresh"), "--as-of", EARLY)
    assert _tree(site) == _tree(tmp_path / "fresh")
    versions = [p for p in tmp_path.iterdir() if p.name.startswith(".site.")]
    assert [p.name for p in versions] == [os.readlink(site)]  # older versions removed from the disk


@pytest.mark.slow
def test_two_publishers_at_once_leave_one_whole_site(demo: Run, tmp_path: Path) -> None:
    """Two processes publishing into one --out take turns (a lock on its parent folder): both
    succeed, the site is whole and one version of it is left on disk."""
    site = tmp_path / "site"
    ledger = Path(sys.executable).parent / "ledger"
    runs = [
        subprocess.Popen(
            [str(ledger), "--db", str(tmp_path / "l.sqlite"), "publish", "--out", str(site), "--as-of", day],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for day in (EARLY, AS_OF)
    ]
    for process in runs:
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
    published = _tree(site)
    for day in (EARLY, AS_OF):
        demo("publish", "--out", str(tmp_path / day), "--as-of", day)
    assert published in (_tree(tmp_path / EARLY), _tree(tmp_path / AS_OF))
    assert _siblings(site) == {os.readlink(site)}


# --- confined: nothing outside --out is touched, no link is followed --------------------------


def test_a_planted_link_in_the_site_is_never_followed(demo: Run, tmp_path: Path) -> None:
    site = tmp_path / "site"
    demo("publish", "--out", str(site), "--as-of", AS_OF)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious", encoding="utf-8")
    outside = tmp_path / "outside"
    outside.mkdir()
    (site / "style.css").unlink()
    (site / "style.css").symlink_to(victim)
    (site / "national").rename(tmp_path / "national-moved")
    (site / "national").symlink_to(outside, target_is_directory=True)
    demo("publish", "--out", str(site), "--as-of", AS_OF)
    assert victim.read_text(encoding="utf-8") == "precious"
    assert list(outside.iterdir()) == []
    assert not (site / "style.css").is_symlink() and not (site / "national").is_symlink()
    assert (site / "national/index.html").is_file()


def test_the_new_version_is_a_folder_made_by_the_run(demo: Run, tmp_path: Path) -> None:
    """--out is a link to a version folder beside it; that folder holds the manifest."""
    site = tmp_path / "site"
    demo("publish", "--out", str(site), "--as-of", AS_OF)
    target = os.readlink(site)
    assert re.fullmatch(r"\.site\.publish-[0-9a-f]{16}", target)
    manifest = (site / MANIFEST).read_text(encoding="utf-8")
    assert '"generator": "medtech-ledger publish"' in manifest
    assert f'"hunan/institutions/{slug(XIANGJIANG)}.html"' in manifest


# --- refused: a non-empty --out that is not a site --------------------------------------------


def _ledger(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    ledger = Path(sys.executable).parent / "ledger"
    return subprocess.run([str(ledger), "--db", str(db), *args], capture_output=True, text=True, check=False)


@pytest.mark.slow
def test_a_non_empty_out_that_is_not_a_site_is_refused(demo: Run, tmp_path: Path) -> None:
    """Refused before anything is written, with exit code 5 (a configuration error), in a real
    process: a folder with other files, a link to somebody else's folder (and a file, by click)."""
    db = tmp_path / "l.sqlite"
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "notes.txt").write_text("mine", encoding="utf-8")
    plain = tmp_path / "plain.txt"
    plain.write_text("mine", encoding="utf-8")
    elsewhere = tmp_path / "www"
    elsewhere.mkdir()
    (elsewhere / "index.html").write_text("another site", encoding="utf-8")
    link = tmp_path / "link"
    link.symlink_to(elsewhere, target_is_directory=True)
    before = {p: _tree(p) for p in (docs, elsewhere)}
    for out, why in ((docs, "not empty"), (link, "symbolic link")):
        done = _ledger(db, "publish", "--out", str(out), "--as-of", AS_OF)
        assert done.returncode == 5, done.stderr
        assert why in done.stderr and "nothing was written" in done.stderr
        assert "Traceback" not in done.stderr
    done = _ledger(db, "publish", "--out", str(plain), "--as-of", AS_OF)
    assert done.returncode == 2 and "is a file" in done.stderr  # click's own check of --out
    assert {p: _tree(p) for p in (docs, elsewhere)} == before
    assert plain.read_text(encoding="utf-8") == "mine" and os.readlink(link) == str(elsewhere)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_an_empty_folder_and_an_earlier_site_are_accepted(demo: Run, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    demo("publish", "--out", str(empty), "--as-of", AS_OF)
    demo("publish", "--out", str(empty), "--as-of", EARLY)
    assert empty.is_symlink() and (empty / "index.html").is_file()


# --- names: one page per subject, on any file system ------------------------------------------


def _unslug(name: str) -> str:
    """The inverse of ``slug`` (outside the hashed names): that it exists makes ``slug`` injective."""
    out, raw, upper, i = [], bytearray(), False, 0
    while i < len(name):
        ch = name[i]
        if ch == "-":
            raw.append(int(name[i + 1 : i + 3], 16))
            i += 3
            continue
        out.append(raw.decode("utf-8", "surrogatepass"))
        raw.clear()
        if ch == "_":
            upper = not upper
        else:
            out.append(ch.upper() if upper else ch)
        i += 1
    out.append(raw.decode("utf-8", "surrogatepass"))
    return "".join(out)


@given(st.text())
def test_page_names_are_lowercase_and_reversible(text: str) -> None:
    name = slug(text)
    assert re.fullmatch(r"[a-z0-9_-]+", name) and name.casefold() == name
    if name.startswith("__"):
        assert name == "__" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
        assert not text or len(text) * 12 > MAX_NAME  # a character takes at most 12 (4 bytes, -hh)
    else:
        assert _unslug(name) == text and len(name) <= MAX_NAME and "__" not in name


@given(st.text(alphabet="aAzZ0_-.x", max_size=8), st.text(alphabet="aAzZ0_-.x", max_size=8))
@example("PDY1", "pdy1")
def test_two_ids_never_share_a_page_name(a: str, b: str) -> None:
    if a != b:
        assert slug(a).casefold() != slug(b).casefold()


def test_reserved_device_names_are_not_page_names() -> None:
    assert slug("con") == "-63on" and _unslug("-63on") == "con"
    assert slug("CON") == "_con" and slug("Com1") == "_c_om1"


def test_institutions_whose_ids_differ_in_case_or_mimic_a_hash_get_their_own_pages(demo: Run, tmp_path: Path) -> None:
    """Each institution's page is its own: ids that differ only in case (one file on macOS or
    Windows), and an id spelled like another id's hashed name, once gave two subjects one page."""
    mimic = "x" + hashlib.sha256(b"../../evil").hexdigest()[:20]
    institutions = {
        "PDYCASE1": "大写医院",
        "pdycase1": "小写医院",
        "../../evil": "路径医院",
        mimic: "仿冒散列医院",
    }
    for i, (institution, name) in enumerate(institutions.items()):
        _record_institution(demo, f"CASE-{i}", institution, name)
    site = tmp_path / "site"
    demo("publish", "--out", str(site), "--province", "hunan", "--as-of", AS_OF)
    pages = {p.name.casefold() for p in (site / "hunan/institutions").iterdir()}
    assert len(pages) == len(list((site / "hunan/institutions").iterdir()))
    for institution, name in institutions.items():
        html = (site / "hunan/institutions" / f"{slug(institution)}.html").read_text(encoding="utf-8")
        assert f"<h1>{name}</h1>" in html and f"<code>{institution}</code>" in html.replace("&#39;", "'"), institution
        others = [n for i, n in institutions.items() if i != institution]
        assert not any(other in html for other in others), institution


# --- shown: invisible characters escaped on pages ---------------------------------------------


def test_pages_show_invisible_characters_escaped(demo: Run, tmp_path: Path) -> None:
    """A name with a right-to-left override, a zero-width space and a C1 control is stored exactly
    and shown escaped on every page that names it, so it cannot reorder the text around it."""
    hostile = "周\u202e生医\u200b\x85院"
    _record_institution(demo, "INV-1", "44000000000000000A1077", hostile)
    site = tmp_path / "site"
    demo("publish", "--out", str(site), "--province", "hunan", "--as-of", AS_OF)
    shown = "周\\u202e生医\\u200b\\x85院"
    for page in ("hunan/index.html", f"hunan/institutions/{slug('44000000000000000A1077')}.html"):
        html = (site / page).read_text(encoding="utf-8")
        assert shown in html, page
        assert not any(ch in html for ch in "\u202e\u200b\x85"), page
