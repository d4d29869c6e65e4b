"""Identifiers are plain: ``by``, ``id``, codes and every reference id refuse zero-width, bidi and
control characters and leading or trailing white space (a look-alike of a real id or body would
import beside it, or dodge a registered key); free texts are stored exactly."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ledger import decisions
from ledger.application import LedgerApplication
from ledger.checkpoints import generate_key
from ledger.decisions import parse_line
from ledger.errors import MalformedDecision, UnsignedDecision
from tests.strategies import EXAMPLE_FILE, to_jsonl

HIDDEN = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u202a", "\u202e", "\u2066", "\u2069", "\u200e",
          "\u200f", "\u061c", "\x85", "\x9f", "\x07"]  # fmt: skip

LISTING = {"id": "L-1", "kind": "technology.listed", "effective": "2024-02-01", "by": "湖南省卫生健康委员会",
           "catalog": "hunan", "code": "S01", "name": "示例技术", "class": "restricted", "version": "测试"}  # fmt: skip
CASE = next(d for d in EXAMPLE_FILE if d["kind"] == "case.performed")
RETRACTION = next(d for d in EXAMPLE_FILE if d["kind"] == "decision.retracted")
FILING = next(d for d in EXAMPLE_FILE if d["kind"] == "filing.submitted")
INSTITUTION = next(d for d in EXAMPLE_FILE if d["kind"] == "institution.registered")

WHERE: list[tuple[dict[str, Any], str]] = [
    (LISTING, "id"),
    (LISTING, "by"),
    (LISTING, "code"),
    (LISTING, "catalog"),
    (CASE, "institution"),
    (CASE, "physician"),
    (CASE, "technology"),
    (CASE, "case"),
    (FILING, "technical_lead"),
    (RETRACTION, "retracts"),
    (INSTITUTION, "licensing_authority"),
]


def _both(line: str) -> Any:
    """The refusal of the reference parser, and the same from ``parse_line`` (fast path first)."""
    with pytest.raises(MalformedDecision) as slow:
        decisions._parse_line(line)
    with pytest.raises(MalformedDecision) as fast:
        parse_line(line.encode("utf-8"))
    assert (str(fast.value), fast.value.field) == (str(slow.value), slow.value.field)
    assert decisions.try_parse(line.encode("utf-8")) is None
    return slow.value


@pytest.mark.parametrize("char", HIDDEN, ids=[f"U+{ord(c):04X}" for c in HIDDEN])
@pytest.mark.parametrize(("decision", "name"), WHERE, ids=[f"{d['kind']}.{n}" for d, n in WHERE])
def test_hidden_characters_in_an_identifier_are_refused(decision: dict[str, Any], name: str, char: str) -> None:
    value = decision[name]
    for changed in (value + char, char + value, value[:1] + char + value[1:]):
        line = json.dumps(decision | {name: changed}, ensure_ascii=False)
        error = _both(line)
        assert error.field == name
        # Escaped in JSON it is the same character, and the same refusal.
        assert _both(json.dumps(decision | {name: changed})).field == name


@pytest.mark.parametrize("space", [" ", "\u3000", "\u00a0", "\u2028"])
@pytest.mark.parametrize("name", ["by", "code", "catalog"])
def test_leading_or_trailing_white_space_in_an_identifier_is_refused(name: str, space: str) -> None:
    for changed in (LISTING[name] + space, space + LISTING[name]):
        error = _both(json.dumps(LISTING | {name: changed}, ensure_ascii=False))
        assert error.field == name
        assert "white space" in str(error)


@pytest.mark.parametrize("char", [*HIDDEN[:-3], "\x85"], ids=lambda c: f"U+{ord(c):04X}")
def test_free_texts_are_stored_exactly(char: str) -> None:
    text = f"名{char}称 "
    line = json.dumps(LISTING | {"name": text, "note": f" 备注{char}"}, ensure_ascii=False)
    record = parse_line(line.encode("utf-8"))
    assert record.fields["name"] == text
    assert record.note == f" 备注{char}"
    assert record == decisions._parse_line(line)


def test_a_look_alike_of_a_keyed_body_is_refused_not_let_through_unsigned(app: LedgerApplication) -> None:
    """Issue: ``by`` with a trailing space or U+200B skipped the signature requirement."""
    _, public = generate_key("hunan")
    registration = {"id": "KEY-1", "kind": "authority.key_registered", "effective": "2024-01-01",
                    "by": LISTING["by"], "authority": LISTING["by"], "public_key": public}  # fmt: skip
    app.import_lines(to_jsonl([registration]).splitlines(keepends=True), source="k.jsonl")
    before = app.position()
    for by in (LISTING["by"] + " ", LISTING["by"] + "\u200b", "\u202e" + LISTING["by"]):
        with pytest.raises(MalformedDecision) as refused:
            app.import_lines(to_jsonl([LISTING | {"by": by}]).splitlines(keepends=True), source="f.jsonl")
        assert (refused.value.file, refused.value.line, refused.value.field) == ("f.jsonl", 1, "by")
    # A decomposed spelling of the same name (NFD) is the same body: its key governs it.
    import unicodedata

    decomposed = unicodedata.normalize("NFD", "湖南省卫生健康委员会Å")
    assert decomposed != unicodedata.normalize("NFC", decomposed)
    nfd_key = {"id": "KEY-2", "kind": "authority.key_registered", "effective": "2024-01-01",
               "by": unicodedata.normalize("NFC", decomposed), "authority": unicodedata.normalize("NFC", decomposed),
               "public_key": public}  # fmt: skip
    app.import_lines(to_jsonl([nfd_key]).splitlines(keepends=True), source="k2.jsonl")
    with pytest.raises(UnsignedDecision):
        app.import_lines(to_jsonl([LISTING | {"by": decomposed}]).splitlines(keepends=True), source="f.jsonl")
    assert app.position() == before + 1


def test_ids_with_hidden_characters_do_not_import_beside_their_look_alikes(app: LedgerApplication) -> None:
    app.import_lines(to_jsonl([LISTING]).splitlines(keepends=True), source="a.jsonl")
    for decision_id in ("L-1\u200b", "L\u202e-1"):
        with pytest.raises(MalformedDecision) as refused:
            app.import_lines(to_jsonl([LISTING | {"id": decision_id, "code": "S02"}]).splitlines(keepends=True),
                             source="b.jsonl")  # fmt: skip
        assert refused.value.field == "id"
    assert app.position() == 1


def test_a_correction_cannot_bring_a_hidden_character_into_an_identifier() -> None:
    target = parse_line(json.dumps(FILING, ensure_ascii=False))
    with pytest.raises(MalformedDecision) as refused:
        decisions.check_correction(target, {"technical_lead": FILING["technical_lead"] + "\u200b"})
    assert refused.value.field == "fields.technical_lead"
    with pytest.raises(MalformedDecision):
        decisions.check_correction(target, {"by": target.by + " "})
