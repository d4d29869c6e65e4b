"""Rendering pages: the stamp every page carries, the Jinja2 environment, and ``_Site``, which
renders into the fresh folder, redacts licence numbers as a last guard and lists what it wrote."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup, escape

from ledger import integrity
from ledger.errors import ConfigurationError, LedgerError
from projections.output import visible
from projections.publish.folder import GENERATOR, MANIFEST, _Folder
from projections.publish.naming import slug

if TYPE_CHECKING:
    from ledger.application import LedgerApplication

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent.parent / "templates"
SITE_TITLE = "医疗技术临床应用信息公开"


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
