"""``ledger import --check``: every bad line of every decision file, and nothing written.

An import stops at the first refused line (a file is recorded whole or not at all); a clerk
preparing a file wants the whole list at once. Each line is checked on its own as an import checks
it (the form, each field, the plugins' validators), then its references: every institution,
physician and technology it names must be one the ledger holds or an earlier line introduces.
(Whether it was registered *as of* the line's ``effective`` day, and competence, are left to the
import itself: they need the ledger's history, not just its names.)
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import pluggy

from ledger.application import MAX_LINE_BYTES
from ledger.decisions import CREATES, DecisionRecord, may_name_uncatalogued, parse_line, reference_fields
from ledger.errors import DecisionError


@dataclass(frozen=True)
class BadLine:
    """One refused line: where (file, line, field) and why."""

    file: str
    line: int | None
    field: str | None
    message: str


Known = Callable[[str, str], bool]
"""Does the ledger hold this (reference kind, key): ``institution``, ``physician``, ``technology``."""


class FileChecker:
    """Checks the lines of several files in turn, remembering what earlier lines introduced."""

    def __init__(self, plugins: pluggy.PluginManager, known: Known) -> None:
        self.plugins = plugins
        self.known = known
        self.introduced: set[tuple[str, str]] = set()
        self.ids: dict[str, tuple[str, int, bytes]] = {}
        """Each id seen, where, and a digest of its content: not the decisions themselves, so that
        checking a large file holds a few dozen bytes per line."""

    def check(self, source: str, lines: Iterable[bytes]) -> Iterator[BadLine]:
        for lineno, line in enumerate(lines, 1):
            if len(line) > MAX_LINE_BYTES:
                yield BadLine(source, lineno, None, f"line is longer than {MAX_LINE_BYTES} bytes")
                continue
            if not line.strip():
                continue
            try:
                record = parse_line(line)
            except DecisionError as e:
                yield BadLine(e.file or source, e.line or lineno, e.field, e.message)
                continue
            yield from self._check_record(record, source, lineno)

    def _check_record(self, record: DecisionRecord, source: str, lineno: int) -> Iterator[BadLine]:
        for problems in self.plugins.hook.ledger_validate_decision(decision=record):
            for field, message in problems or ():
                yield BadLine(source, lineno, field, message)
        digest = hashlib.blake2b(record.to_json().encode("utf-8"), digest_size=16).digest()
        earlier = self.ids.setdefault(record.id, (source, lineno, digest))
        if earlier[2] != digest:
            where = f"{earlier[0]} line {earlier[1]}"
            yield BadLine(source, lineno, "id", f"{record.id!r} is given with other content at {where}")
        yield from self._check_references(record, source, lineno)
        created = CREATES.get(record.kind)
        if created and isinstance(record.fields.get(created), str):
            self.introduced.add((created, record.fields[created]))
        if record.kind == "technology.listed":
            self.introduced.add(("technology", f"{record.fields.get('catalog')}:{record.fields.get('code')}"))

    def _check_references(self, record: DecisionRecord, source: str, lineno: int) -> Iterator[BadLine]:
        names, _ = reference_fields(record.kind)
        for field, ref_kind in names:
            value = record.fields.get(field)
            if not isinstance(value, str) or (ref_kind, value) in self.introduced or self.known(ref_kind, value):
                continue
            if ref_kind == "technology" and may_name_uncatalogued(record.kind, record.fields):
                continue
            yield BadLine(source, lineno, field, f"no {ref_kind} {value!r} in the ledger or earlier in the files")
