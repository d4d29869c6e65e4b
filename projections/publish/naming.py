"""Page names: a lowercase, reversible encoding of an id, so two ids never share a page, even on a
case-insensitive file system (docs/publishing.md, "Page names")."""

from __future__ import annotations

import hashlib

MAX_NAME = 120
"""Longest encoded page name; a longer id's page is named by the full SHA-256 of the id."""
_RESERVED_NAMES = frozenset(
    {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}
)
"""Device names Windows reserves whatever the extension: never a page name as they are."""
_LOWER = frozenset("abcdefghijklmnopqrstuvwxyz")
_UPPER = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_DIGITS = frozenset("0123456789")


def slug(text: str) -> str:
    """The file name (without ``.html``) of an id's page: lowercase ASCII, and reversible.

    Letters and digits are kept, lowercased; ``_`` switches between lower and upper case (so
    ``44860321X43010211A1001`` is ``44860321_x43010211a1001`` and ``hunan`` stays ``hunan``); any
    other character is ``-`` and the hex of each of its UTF-8 bytes (``.`` is ``-2e``). The name
    decodes back to the id, so two ids never share a name, and it has no upper case, so case
    folding (macOS, Windows) cannot make two names one. A reserved device name (``con``) has its
    first letter escaped; an empty id or one longer than ``MAX_NAME`` once encoded is named
    ``__`` and its full SHA-256 (the encoding never writes ``__``), and the site refuses a
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
