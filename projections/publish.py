"""Publishing: the disclosure lists as a static web site, and reports as spreadsheets.

Why a site: the rules say the lists are published to society (向社会公布) — the institutions filed for
each restricted technology with date and authority (MTM-2018#40), the training bases (#30), and each
institution's own 院务公开 (#24) — and Chongqing notices every filing publicly for five working days
(CQ-2017 公示). People read those on a phone, not as a JSON dump. ``publish`` renders the views as
of one day into plain HTML (Jinja2 with autoescape, ``lang="zh-CN"``, UTF-8, no JavaScript):

    index.html                      every jurisdiction a plugin speaks for, national first
    <code>/index.html               a province: summary and its institutions
    <code>/catalog.html             the catalogue in force (national + provincial, MTM-2018#5-#9)
    <code>/filings.html             filed per restricted technology; suspended and stopped (#40, #41-#44)
    <code>/training.html            training bases (#29-#30) and certified trainees, names only (#33)
    <code>/institutions/<id>.html   院务公开 (#24): technologies, surgical grades by name, cases
    checkpoint.txt                  the signed checkpoint the pages were stamped with, if any
    style.css
    manifest.json                   marks the folder as a site this command wrote; lists its files

Publishing is atomic and confined (docs/publishing.md): every run writes a complete new folder
beside ``--out`` (``.<out>.publish-<random>``), created by the run itself and written through
directory descriptors with ``O_NOFOLLOW`` and ``O_EXCL``, so no link planted anywhere is followed;
``--out`` is a symbolic link to it, swapped in one ``rename``; the previous version is then
removed, so a page of a subject that left the lists vanishes. A non-empty ``--out`` that is not
such a link is refused before anything is written. Page names (``slug``) are a lowercase, reversible
encoding of the id: two ids never share a page, even on a case-insensitive file system.

Texts are shown as they are, invisible characters included: control, bidi and zero-width
characters are written as escapes (``\\u202e``) on every page (``output.visible``).

What is never published: physicians' licence numbers (they are not in any page nor in any URL;
pages name physicians only), case references (cases are published as counts), free-text reasons
and notes (they may quote either). As a last guard, every licence number the pages' rows know is
redacted from the rendered text should a name field ever carry one.

Tamper evidence: every page carries the ledger position it was built from, the as-of date and the
latest signed checkpoint (``ledger.integrity``), says whether that checkpoint covers every record
the page reflects, and how to check it (``ledger verify``, ``ledger prove``). Output is
deterministic — no generation timestamp — so anyone holding the same ledger can run ``ledger
publish`` with the same ``--as-of`` and compare the bytes.

``write_xlsx`` writes a report's ``Table`` with the official form's layout (header lines above the
column headings, number formats and widths per column) for regulators who exchange spreadsheets.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import stat
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup, escape

from ledger import integrity
from ledger.errors import ConfigurationError, LedgerError
from ledger.jurisdictions import NATIONAL, Jurisdiction
from projections.grading import grading_catalogue
from projections.output import display_width, visible
from projections.reports import Column, Table

if TYPE_CHECKING:
    from ledger.application import LedgerApplication
    from projections.catalog import CatalogEntry
    from projections.views import FilingRow, PrivilegeRow, Views

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"
SITE_TITLE = "医疗技术临床应用信息公开"

STATUS_LABELS = {
    "filed": "已备案",
    "in public notice": "公示中",
    "suspended": "暂停",
    "stopped": "停止",
    "submitted": "已提交",
    "rejected": "不予备案",
}
CLASS_LABELS = {
    "prohibited": "禁止类",
    "restricted": "限制类",
    "class3": "第三类",
    "class2": "第二类",
    "clinical-research": "临床研究类",
}
LEVEL_LABELS = {1: "一级手术", 2: "二级手术", 3: "三级手术", 4: "四级手术"}
PRIVILEGE_LABELS = {"granted": "有效", "suspended": "暂停"}
"""Surgical grades shown in 院务公开: current ones, and suspended ones marked so; revoked are gone."""

MANIFEST = "manifest.json"
GENERATOR = "medtech-ledger publish"
"""The manifest's mark: a folder (or the version an ``--out`` link points at) holding a manifest
with this generator is a site this command wrote, and may be replaced."""
MAX_NAME = 120
"""Longest encoded page name; a longer id's page is named by the full SHA-256 of the id."""
_RESERVED_NAMES = frozenset(
    {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}
)
"""Device names Windows reserves whatever the extension: never a page name as they are."""
_LOWER = frozenset("abcdefghijklmnopqrstuvwxyz")
_UPPER = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_DIGITS = frozenset("0123456789")


# --- the stamp --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stamp:
    """What every page says it was built from, and how to check it."""

    position: int
    """The ledger position (number of the last record) the views reflected."""
    as_of: date
    checkpoint: integrity.StoredCheckpoint | None = None
    """The latest signed checkpoint stored in the ledger, if any."""
    covers: bool = False
    """Whether ``checkpoint`` covers every record up to ``position``."""
    problem: str | None = None
    """Why no checkpoint could be read (a damaged tree), shown instead of one."""

    @property
    def root(self) -> str | None:
        return integrity.base64_hash(self.checkpoint.root) if self.checkpoint else None


def read_stamp(app: LedgerApplication, as_of: date) -> Stamp:
    """The position and the latest signed checkpoint, and whether it covers the whole position.

    Read-only: ``publish`` never signs (it holds no key). A checkpoint covers the published
    records when the Merkle tree was last synced exactly to this position and the checkpoint
    signed the tree of that size; anything recorded since is not yet under a signature, and
    the page says so instead of implying it is.
    """
    position = app.position()
    try:
        stored = integrity.stored_checkpoints(app)
        tree = integrity.tree_state(app)
    except LedgerError as e:
        return Stamp(position, as_of, problem=str(e))
    if not stored:
        return Stamp(position, as_of)
    latest = stored[-1]
    covers = tree.last_position == position and latest.size == tree.size
    return Stamp(position, as_of, latest, covers)


# --- the site ---------------------------------------------------------------------------------


def environment() -> Environment:
    """Jinja2 over ``projections/templates``: autoescape on for every template, strict names,
    invisible characters shown as escapes."""
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        finalize=_finalize,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _finalize(value: Any) -> Any:
    """Every ``{{ }}`` on a page: a text shows its invisible characters as escapes (a name cannot
    reverse or hide what follows it); the templates' own markup is left as it is."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return visible(value)
    return value


def slug(text: str) -> str:
    """The file name (without ``.html``) of an id's page: lowercase ASCII, and reversible.

    Letters and digits are kept, lowercased; ``_`` switches between lower and upper case (so
    ``44860321X43010211A1001`` is ``44860321_x43010211a1001`` and ``hunan`` stays ``hunan``); any
    other character is ``-`` and the hex of each of its UTF-8 bytes (``.`` is ``-2e``). The name
    decodes back to the id, so two ids never share a name, and it has no upper case, so case
    folding (macOS, Windows) cannot make two names one. A reserved device name (``con``) has its
    first letter escaped; an empty id or one longer than ``MAX_NAME`` once encoded is named
    ``__`` and its full SHA-256 (the encoding never writes ``__``), and ``_Site`` refuses a
    clash in that space.
    """
    out: list[str] = []
    upper = False
    for ch in text:
        if ch in _DIGITS:
            out.append(ch)
        elif ch in _LOWER or ch in _UPPER:
            if (ch in _UPPER) != upper:
                upper = not upper
                out.append("_")
            out.append(ch.lower())
        else:
            out.extend(f"-{b:02x}" for b in ch.encode("utf-8", "surrogatepass"))
    name = "".join(out)
    if name in _RESERVED_NAMES:
        name = f"-{ord(name[0]):02x}{name[1:]}"
    if not name or len(name) > MAX_NAME:
        return "__" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return name


# --- the folder: written fresh, swapped in ----------------------------------------------------

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_MAX_MANIFEST = 64 << 20


def _cannot(what: str, path: Path | str, e: OSError) -> ConfigurationError:
    return ConfigurationError(f"cannot {what} {path}: {e.strerror or e}")


class _Folder:
    """A folder this run created, written only through directory descriptors: every directory on
    the way is opened with ``O_NOFOLLOW`` and every file created with ``O_EXCL``, so a symbolic
    link planted anywhere in it is never followed (an existing name is an error, not a target)."""

    def __init__(self, fd: int, path: Path) -> None:
        self.path = path
        self._dirs: dict[tuple[str, ...], int] = {(): fd}

    def _dir(self, parts: tuple[str, ...]) -> int:
        if parts in self._dirs:
            return self._dirs[parts]
        parent = self._dir(parts[:-1])
        with contextlib.suppress(FileExistsError):
            os.mkdir(parts[-1], 0o777, dir_fd=parent)
        fd = os.open(parts[-1], os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC, dir_fd=parent)
        self._dirs[parts] = fd
        return fd

    def write(self, relative: str, data: bytes) -> None:
        parts = tuple(relative.split("/"))
        if any(p in ("", ".", "..") for p in parts):
            msg = f"not a file name in a site: {relative!r}"
            raise ConfigurationError(msg)
        try:
            fd = os.open(
                parts[-1],
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC,
                0o666,
                dir_fd=self._dir(parts[:-1]),
            )
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
        except OSError as e:
            raise _cannot("write", self.path / relative, e) from e

    def close(self) -> None:
        """Close every directory opened."""
        for fd in self._dirs.values():
            os.close(fd)
        self._dirs.clear()


def _versions(name: str) -> re.Pattern[str]:
    """The names of ``name``'s versions beside it; only the command ever makes or removes these."""
    return re.compile(rf"\.{re.escape(name)}\.publish-[0-9a-f]{{16}}")


def _is_site(parent_fd: int, folder: str) -> bool:
    """Does ``folder`` (in ``parent_fd``) hold a manifest this command wrote? Read without
    following a link: a planted link is not a manifest."""
    try:
        dir_fd = os.open(folder, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC, dir_fd=parent_fd)
    except OSError:
        return False
    try:
        fd = os.open(MANIFEST, os.O_RDONLY | _NOFOLLOW | _CLOEXEC, dir_fd=dir_fd)
    except OSError:
        return False
    finally:
        os.close(dir_fd)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return False
        data = handle.read(_MAX_MANIFEST + 1)
    try:
        manifest = json.loads(data)
    except ValueError:
        return False
    return isinstance(manifest, dict) and manifest.get("generator") == GENERATOR


def _previous(out: Path, parent_fd: int, name: str) -> str:
    """What ``out`` is now — ``absent``, ``empty`` (a folder) or ``link`` (to a version of the site)
    — or a refusal naming why it cannot be replaced. Nothing is written before this answers."""
    try:
        st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    except FileNotFoundError:
        return "absent"
    except OSError as e:
        raise _cannot("read", out, e) from e
    if stat.S_ISLNK(st.st_mode):
        target = os.readlink(name, dir_fd=parent_fd)
        if not _versions(name).fullmatch(target):
            msg = (
                f"--out {out} is a symbolic link to {target}, not a site `ledger publish` wrote: "
                "give a new or empty folder (nothing was written)"
            )
            raise ConfigurationError(msg)
        try:
            os.stat(target, dir_fd=parent_fd, follow_symlinks=False)
        except FileNotFoundError:
            return "link"  # its version was removed by hand: nothing there to lose
        if not _is_site(parent_fd, target):
            msg = f"--out {out} links to {target}, which holds no {MANIFEST} of a published site (nothing was written)"
            raise ConfigurationError(msg)
        return "link"
    if not stat.S_ISDIR(st.st_mode):
        msg = f"--out {out} exists and is not a folder (nothing was written)"
        raise ConfigurationError(msg)
    try:
        empty = not os.listdir(out)
    except OSError as e:
        raise _cannot("read", out, e) from e
    if empty:
        return "empty"
    if _is_site(parent_fd, name):
        msg = (
            f"--out {out} holds a site as a plain folder (a copy?); `ledger publish` keeps --out as a link "
            "to the current version, to swap it atomically: move the folder away or give another --out "
            "(nothing was written)"
        )
    else:
        msg = (
            f"--out {out} is not empty and holds no {MANIFEST} of a site `ledger publish` wrote: give a new "
            "or empty folder, or the --out of an earlier publish (nothing was written)"
        )
    raise ConfigurationError(msg)


@contextlib.contextmanager
def _swapped_in(out: Path) -> Iterator[_Folder]:
    """A fresh folder beside ``out`` to write the site into; when the block ends without error,
    ``out`` becomes (atomically) a link to it and every older version is removed. On error the
    fresh folder is removed and ``out`` is untouched.

    One publisher at a time per parent folder (``flock`` on it): a second waits. Readers that
    follow ``out`` see the old site or the new one, never a mix within one path lookup."""
    if out.name in ("", ".", ".."):
        msg = f"--out must name the site's folder (e.g. site), not {str(out)!r}"
        raise ConfigurationError(msg)
    name = out.name
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        parent_fd = os.open(parent, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
    except OSError as e:
        raise _cannot("write into", parent, e) from e
    try:
        _lock(parent, parent_fd)
        previous = _previous(out, parent_fd, name)
        fresh = _fresh(parent, parent_fd, name)
        try:
            fresh_fd = os.open(fresh, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC, dir_fd=parent_fd)
        except OSError as e:
            raise _cannot("write into", parent / fresh, e) from e
        folder = _Folder(fresh_fd, parent / fresh)
        try:
            yield folder
            folder.close()
            # Everything on disk before the link names it: after a crash, the old site or the new
            # one (one sync: a file-by-file fsync costs a disk round trip per page).
            os.sync()
            _point(out, parent_fd, name, fresh, previous)
        except BaseException:
            folder.close()
            shutil.rmtree(fresh, ignore_errors=True, dir_fd=parent_fd)
            raise
        _sweep(parent_fd, name, keep=fresh)
    finally:
        os.close(parent_fd)  # releases the lock


def _lock(parent: Path, parent_fd: int) -> None:
    """Wait for any other publish into ``parent``: the lock goes with the descriptor's close."""
    try:
        import fcntl
    except ImportError:
        msg = "publishing needs a POSIX system (symbolic links, O_NOFOLLOW, flock): see docs/publishing.md"
        raise ConfigurationError(msg) from None
    try:
        fcntl.flock(parent_fd, fcntl.LOCK_EX)
    except OSError as e:
        raise _cannot("lock", parent, e) from e


def _fresh(parent: Path, parent_fd: int, name: str) -> str:
    """A new version folder beside ``out``, made here: ``mkdir`` fails on any existing name, so a
    planted folder or link is never written into."""
    for _ in range(8):
        fresh = f".{name}.publish-{secrets.token_hex(8)}"
        try:
            os.mkdir(fresh, 0o777, dir_fd=parent_fd)
        except FileExistsError:
            continue
        except OSError as e:
            raise _cannot("write into", parent, e) from e
        return fresh
    msg = f"cannot make a new folder beside {parent / name}"
    raise ConfigurationError(msg)


def _point(out: Path, parent_fd: int, name: str, fresh: str, previous: str) -> None:
    """Make ``out`` a link to ``fresh`` in one ``rename`` of a new link over it (atomic on POSIX);
    an empty folder is removed first (it had nothing to show)."""
    link = f".{name}.link-{secrets.token_hex(8)}"
    try:
        if previous == "empty":
            os.rmdir(name, dir_fd=parent_fd)
        os.symlink(fresh, link, dir_fd=parent_fd)
        try:
            os.replace(link, name, src_dir_fd=parent_fd, dst_dir_fd=parent_fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(link, dir_fd=parent_fd)
            raise
    except OSError as e:
        if e.errno == errno.ENOTEMPTY:
            msg = f"--out {out} was written to while the site was published: nothing was swapped in"
            raise ConfigurationError(msg) from e
        raise _cannot("swap in the site at", out, e) from e
    # The new site is in place: a failure to make the rename durable must not remove it.
    with contextlib.suppress(OSError):
        os.fsync(parent_fd)


def _sweep(parent_fd: int, name: str, keep: str) -> None:
    """Remove every other version of ``name`` (the one just replaced, any a failed run left) and
    stray links: a page that left the lists is then gone from the disk too. Removal never
    follows a link (``shutil.rmtree`` with descriptors)."""
    versions = _versions(name)
    links = re.compile(rf"\.{re.escape(name)}\.link-[0-9a-f]{{16}}")
    try:
        entries = os.listdir(parent_fd)
    except OSError as e:
        log.warning("could not look for old versions of the site: %s", e.strerror or e)
        return
    for entry in entries:
        if entry == keep or not (versions.fullmatch(entry) or links.fullmatch(entry)):
            continue
        try:
            st = os.stat(entry, dir_fd=parent_fd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                shutil.rmtree(entry, dir_fd=parent_fd)
            else:
                os.unlink(entry, dir_fd=parent_fd)
        except OSError as e:
            log.warning("could not remove an old version of the site, %s: %s", entry, e.strerror or e)


# --- the pages ----------------------------------------------------------------------------------


@dataclass
class _Site:
    """Renders pages into a fresh folder and remembers what it wrote."""

    folder: _Folder
    env: Environment
    stamp: Stamp
    secrets: set[str] = field(default_factory=set)
    written: list[str] = field(default_factory=list)
    names: dict[tuple[str, str], str] = field(default_factory=dict)

    def name(self, folder: str, text: str) -> str:
        """``slug(text)``, refused if another id of this run already took that name in ``folder``
        (only ever in the hashed space), so that no page is ever two subjects'."""
        name = slug(text)
        taken = self.names.setdefault((folder, name.casefold()), text)
        if taken != text:
            msg = (
                f"{visible(taken)!r} and {visible(text)!r} would share the page {folder}{name}.html: "
                "nothing was published"
            )
            raise ConfigurationError(msg)
        return name

    def page(self, relative: str, template: str, **context: Any) -> None:
        depth = relative.count("/")
        html = self.env.get_template(template).render(
            root="../" * depth, stamp=self.stamp, site_title=SITE_TITLE, **context
        )
        self.write(relative, self._redact(html, relative))

    def write(self, relative: str, text: str) -> None:
        self.folder.write(relative, text.encode("utf-8"))
        self.written.append(relative)

    def _redact(self, html: str, relative: str) -> str:
        """Last guard: a licence number the rows carried never reaches a page, even through a
        name field that holds one by mistake (as the page shows it: escaped for HTML and for
        invisible characters)."""
        forms = {form for s in self.secrets if s for form in (s, str(escape(visible(s))))}
        found = sorted((s for s in forms if s in html), key=lambda s: (-len(s), s))
        for secret in found:
            html = html.replace(secret, "（已隐去）")
        if found:
            log.warning("%s: %d physician licence number(s) found in published text and redacted", relative, len(found))
        return html

    def manifest(self) -> str:
        """What marks the folder as a site this command wrote, and what it holds: the same bytes
        for the same ledger and day, like every page."""
        content = {
            "generator": GENERATOR,
            "format": 1,
            "position": self.stamp.position,
            "as_of": self.stamp.as_of.isoformat(),
            "checkpoint": self.stamp.checkpoint.seq if self.stamp.checkpoint else None,
            "files": sorted([*self.written, MANIFEST]),
        }
        return json.dumps(content, ensure_ascii=False, indent=1) + "\n"


def publish(views: Views, out_dir: Path, province: str | None = None, as_of: date | None = None) -> list[Path]:
    """Write the public site for every jurisdiction (or ``province`` only) as of ``as_of``.

    The site is written into a new folder and swapped in at ``out_dir`` (a link to it) when
    complete; the previous version is removed, so nothing of it stays online. ``out_dir`` must be
    absent, an empty folder or an earlier site, else it is refused before anything is written.
    Returns the site's files (under ``out_dir``), sorted. The same ledger and ``as_of`` give the
    same bytes.
    """
    day = as_of or date.today()
    chosen = list(views.jurisdictions) if province is None else [views.jurisdiction(province)]
    out = Path(out_dir)
    with _swapped_in(out) as folder:
        site = _Site(folder, environment(), read_stamp(views.app, day))
        names = {j.code: j.name for j in views.jurisdictions}
        # Every licence number the published rows know, before any page is rendered (see _redact).
        privileges: dict[str, list[PrivilegeRow]] = {}
        for j in chosen:
            if j.code == NATIONAL:
                continue
            site.secrets.update(t.physician for t in views.trainees(j.code, as_of=day))
            for inst in views.institutions(j.code, as_of=day):
                privileges[inst.institution] = views.privileges(inst.institution, as_of=day)
                site.secrets.update(p.physician for p in privileges[inst.institution])
        summaries = [_publish_jurisdiction(site, views, j, day, names, privileges) for j in chosen]
        site.page("index.html", "index.html", summaries=summaries, crumbs=[])
        site.write("style.css", (TEMPLATES / "style.css").read_text(encoding="utf-8"))
        if site.stamp.checkpoint is not None:
            site.write("checkpoint.txt", site.stamp.checkpoint.note)
        site.write(MANIFEST, site.manifest())
    return sorted(out / relative for relative in site.written)


def _publish_jurisdiction(
    site: _Site,
    views: Views,
    j: Jurisdiction,
    day: date,
    names: Mapping[str, str],
    privileges_of: Mapping[str, Sequence[PrivilegeRow]],
) -> dict[str, Any]:
    """Every page of one jurisdiction; returns its line on the index."""
    code = site.name("", j.code)
    base = f"{code}/"
    catalog = views.catalog(None if j.code == NATIONAL else j.code, as_of=day)
    techs = {e.ref: e for e in catalog}
    crumbs = [(f"{base}index.html", j.name)]
    site.page(
        f"{base}catalog.html",
        "catalog.html",
        j=j,
        groups=_catalog_groups(catalog, names),
        crumbs=[*crumbs, (f"{base}catalog.html", "目录")],
        national=j.code == NATIONAL,
    )
    if j.code == NATIONAL:
        site.page(f"{base}index.html", "national.html", j=j, entries=len(catalog), crumbs=crumbs)
        return {"j": j, "href": f"{base}index.html", "national": True, "catalog": len(catalog)}

    institutions = views.institutions(j.code, as_of=day)
    filings = views.public_filings(j.code, as_of=day)
    bases = views.training_bases(j.code, as_of=day)
    trainees = views.trainees(j.code, as_of=day)
    cases = views.case_counts(j.code, as_of=day)

    def tech(ref: str) -> dict[str, str]:
        return _tech(ref, techs, names)

    def inst_href(institution: str) -> str:
        return f"institutions/{site.name(f'{base}institutions/', institution)}.html"

    filing_rows = [_filing_row(f, tech, inst_href(f.institution)) for f in filings]
    active = [r for r in filing_rows if r["status"] in ("filed", "in public notice")]
    halted = sorted(
        (r for r in filing_rows if r["status"] in ("suspended", "stopped")),
        key=lambda r: (r["since"], r["code"], r["institution_name"]),
    )
    base_rows = [
        {
            **tech(b.technology),
            "institution": b.institution,
            "institution_name": b.institution_name,
            "href": inst_href(b.institution),
            "status": b.status,
            "status_label": "已备案" if b.status == "filed" else "停止",
            "enrolment_notice": _iso(b.enrolment_notice),
            "filed_on": _iso(b.filed_on),
            "decisions": ", ".join(b.decisions),
        }
        for b in bases
    ]
    trainee_rows = [
        {
            **tech(t.technology),
            "physician_name": t.physician_name or "（姓名未登记）",
            "institution_name": t.institution_name,
            "href": inst_href(t.institution),
            "certified_on": _iso(t.certified_on),
        }
        for t in trainees
    ]
    notice = any(r["notice_until"] for r in filing_rows)
    site.page(
        f"{base}filings.html",
        "filings.html",
        j=j,
        groups=_group(active, lambda r: r["ref"]),
        halted=halted,
        notice=notice,
        crumbs=[*crumbs, (f"{base}filings.html", "备案名单")],
    )
    site.page(
        f"{base}training.html",
        "training.html",
        j=j,
        bases=base_rows,
        trainees=trainee_rows,
        crumbs=[*crumbs, (f"{base}training.html", "培训基地与培训合格人员")],
    )

    per_institution: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in filing_rows:
        per_institution[r["institution"]].append(r)
    cases_of: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for c in cases:
        cases_of[c.institution].append({**tech(c.technology), "cases": c.cases})
    for rows in cases_of.values():
        rows.sort(key=lambda r: r["code_sort"])
    inst_rows = []
    for inst in institutions:
        href = inst_href(inst.institution)
        privileges = [
            p
            for p in privileges_of.get(inst.institution, ())
            if p.status in PRIVILEGE_LABELS and _registered(views, p.physician, inst.institution, day)
        ]
        grade_rows = [
            {
                "physician_name": p.physician_name or "（姓名未登记）",
                "level": LEVEL_LABELS.get(p.level, "—") if p.level is not None else "—",
                "procedures": [_procedure(x, techs) for x in p.procedures],
                "status": p.status,
                "status_label": PRIVILEGE_LABELS[p.status],
                "since": _iso(p.since),
            }
            for p in privileges
        ]
        uses = sorted(per_institution.get(inst.institution, []), key=lambda r: (r["code_sort"], r["filed_on"]))
        own_bases = [b for b in base_rows if b["institution"] == inst.institution]
        site.page(
            f"{base}{href}",
            "institution.html",
            j=j,
            inst=inst,
            uses=uses,
            bases=own_bases,
            grades=grade_rows,
            cases=cases_of.get(inst.institution, []),
            notice=notice,
            catalogue=grading_catalogue(views, inst.institution, as_of=day),  # 手术分级管理目录 (#24)
            levels=LEVEL_LABELS,
            crumbs=[*crumbs, (f"{base}{href}", inst.name)],
        )
        inst_rows.append(
            {
                "name": inst.name,
                "city": inst.city,
                "category": inst.category,
                "level": inst.level,
                "href": href,
                "uses": sum(1 for r in uses if r["status"] in ("filed", "in public notice")),
            }
        )
    summary = {
        "j": j,
        "href": f"{base}index.html",
        "national": False,
        "catalog": len(catalog),
        "institutions": len(institutions),
        "filed": len(active),
        "halted": len(halted),
        "bases": len(base_rows),
        "trainees": len(trainee_rows),
    }
    site.page(f"{base}index.html", "jurisdiction.html", j=j, summary=summary, institutions=inst_rows, crumbs=crumbs)
    return summary


def _registered(views: Views, physician: str, institution: str, day: date) -> bool:
    """Is the physician still registered at the institution on ``day``? A grade granted to someone
    who has since left is no longer the institution's to disclose (院务公开, MTM-2018#24)."""
    entries = views.trail(physician=physician, institution=institution, as_of=day, findings=False).entries
    registrations = [e.kind for e in entries if e.kind in ("physician.registered", "physician.deregistered")]
    return not registrations or registrations[-1] == "physician.registered"


def _filing_row(f: FilingRow, tech: Any, href: str) -> dict[str, Any]:
    label = STATUS_LABELS.get(f.status, f.status)
    if f.status == "in public notice" and f.notice_until:
        label = f"公示中（至 {f.notice_until.isoformat()}）"
    return {
        **tech(f.technology),
        "institution": f.institution,
        "institution_name": f.institution_name,
        "href": href,
        "city": f.city,
        "status": f.status,
        "status_label": label,
        "filed_on": _iso(f.filed_on),
        "authority": f.authority or "",
        "since": _iso(f.since),
        "notice_until": _iso(f.notice_until),
        "decisions": ", ".join(f.decisions),
    }


def _tech(ref: str, techs: Mapping[str, CatalogEntry], names: Mapping[str, str]) -> dict[str, str]:
    """A technology as the pages show it: code, name, catalogue and class in force."""
    catalog, _, code = ref.partition(":")
    entry = techs.get(ref)
    return {
        "ref": ref,
        "code": code or ref,
        "code_sort": f"{catalog != NATIONAL:d}{catalog}:{code}",
        "name": entry.name if entry else "",
        "catalog_label": "国家" if catalog == NATIONAL else names.get(catalog, catalog),
        "class_label": CLASS_LABELS.get(entry.tech_class, entry.tech_class) if entry else "不在现行目录",
    }


def _procedure(text: str, techs: Mapping[str, CatalogEntry]) -> str:
    entry = techs.get(text)
    return f"{entry.name}（{entry.code}）" if entry else text


def _catalog_groups(entries: Sequence[CatalogEntry], names: Mapping[str, str]) -> list[dict[str, Any]]:
    """Catalogue entries grouped by (catalogue, class), in the views' order."""
    groups: list[dict[str, Any]] = []
    for e in entries:
        label = ("国家" if e.catalog == NATIONAL else names.get(e.catalog, e.catalog)) + CLASS_LABELS.get(
            e.tech_class, e.tech_class
        )
        if not groups or groups[-1]["label"] != label:
            groups.append({"label": label, "class": e.tech_class, "entries": []})
        groups[-1]["entries"].append({"code": e.code, "name": e.name, "version": e.version, "since": _iso(e.since)})
    return groups


def _group(rows: Iterable[dict[str, Any]], key: Any) -> list[dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        k = key(r)
        if k not in out:
            out[k] = {
                **{n: r[n] for n in ("ref", "code", "code_sort", "name", "catalog_label", "class_label")},
                "rows": [],
            }
        out[k]["rows"].append(r)
    return sorted(out.values(), key=lambda g: g["code_sort"])


def _iso(value: date | None) -> str:
    return value.isoformat() if value else ""


# --- spreadsheets -----------------------------------------------------------------------------

_SHEET_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")


def _sheet_title(text: str, taken: set[str]) -> str:
    """An Excel sheet name: at most 31 characters, none of []:*?/\\, unique in the workbook."""
    base = _SHEET_FORBIDDEN.sub("_", text).strip("'") or "Sheet"
    name, n = base[:31], 2
    while name.lower() in taken:
        suffix = f"~{n}"
        name, n = base[: 31 - len(suffix)] + suffix, n + 1
    taken.add(name.lower())
    return name


def _xlsx_value(value: Any) -> Any:
    """A cell value openpyxl stores as data: numbers and dates as such, everything else as text."""
    if value is None or isinstance(value, (bool, int, float, Decimal, datetime, date)):
        return float(value) if isinstance(value, Decimal) else value
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


def write_xlsx(table: Table, path: Path | str | IO[bytes]) -> None:
    """Write ``table`` (and its ``sheets``) as an XLSX workbook laid out like the official form.

    Each sheet: the header lines above (the first as the form's title, merged across the
    columns), the column headings, then the rows, with each ``Column``'s number format (``@``
    keeps ``20190514`` as text) and width. Text is always stored as text, never as a formula, so a
    name that starts with ``=`` cannot run in the regulator's spreadsheet.
    """
    from openpyxl import Workbook  # type: ignore[import-untyped]
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE  # type: ignore[import-untyped]
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Side  # type: ignore[import-untyped]
    from openpyxl.utils import get_column_letter  # type: ignore[import-untyped]

    thin = Side(style="thin", color="808080")
    border = Border(left=thin, right=thin, top=thin, bottom=thin)
    taken: set[str] = set()
    wb = Workbook()
    wb.properties.creator = "medtech-ledger"

    def fill(ws: Any, t: Table, title: str) -> None:
        ws.title = _sheet_title(title, taken)
        columns: Sequence[Column] = t.columns
        width = max(len(columns), 1)
        row = 1
        for i, line in enumerate(t.header_lines):
            cell = ws.cell(row=row, column=1, value=ILLEGAL_CHARACTERS_RE.sub("", line))
            cell.data_type = "s"
            if i == 0:
                cell.font = Font(bold=True, size=14)
                cell.alignment = Alignment(horizontal="center", vertical="center")
                ws.row_dimensions[row].height = 24
            if width > 1:
                ws.merge_cells(start_row=row, start_column=1, end_row=row, end_column=width)
            row += 1
        heading_row = row
        for c, column in enumerate(columns, start=1):
            cell = ws.cell(row=row, column=c, value=column.name)
            cell.data_type = "s"
            cell.font = Font(bold=True)
            cell.fill = PatternFill("solid", fgColor="E8ECF2")
            cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
            cell.border = border
        widths = [display_width(c.name) for c in columns]
        for values in t.rows:
            row += 1
            for c, column in enumerate(columns, start=1):
                value = _xlsx_value(values.get(column.key))
                if isinstance(value, str):
                    value = ILLEGAL_CHARACTERS_RE.sub("", value)
                cell = ws.cell(row=row, column=c, value=value)
                if isinstance(value, str):
                    cell.data_type = "s"  # never a formula (openpyxl reads a leading = as one)
                if column.number_format:
                    cell.number_format = column.number_format
                elif isinstance(value, datetime):
                    cell.number_format = "yyyy-mm-dd hh:mm:ss"
                elif isinstance(value, date):
                    cell.number_format = "yyyy-mm-dd"
                cell.border = border
                shown = value.isoformat() if isinstance(value, (date, datetime)) else str(value or "")
                widths[c - 1] = max(widths[c - 1], display_width(shown))
        for c, column in enumerate(columns, start=1):
            ws.column_dimensions[get_column_letter(c)].width = column.width or min(max(widths[c - 1] + 2, 8), 60)
        ws.freeze_panes = ws.cell(row=heading_row + 1, column=1)
        if t.rows and columns:
            ws.auto_filter.ref = f"A{heading_row}:{get_column_letter(len(columns))}{row}"
        ws.print_title_rows = f"{heading_row}:{heading_row}"

    fill(wb.active, table, table.title)
    for name, sheet in table.sheets.items():
        fill(wb.create_sheet(), sheet, name)
    try:
        wb.save(path if not isinstance(path, Path) else str(path))
    except OSError as e:
        msg = f"cannot write {path}: {e.strerror}"
        raise ConfigurationError(msg) from e
