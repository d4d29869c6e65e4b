"""The import's per-line fast paths (issue 8) give exactly what the slow paths give.

* ``parse_line``'s fast path (msgspec, a per-kind checker, duplicate keys found by counting
  strings) accepts only what the slow path accepts, as the same record; everything else goes to
  the slow path, so every refusal keeps its message and field. Checked on valid decisions and on
  lines mutated to be wrong in many ways (duplicate keys, escapes, control characters, types).
* ``canonical.encode`` and ``canonical.dumps`` (msgspec's encoder where it can) write what the
  reference writer (``canonical._text``, the standard library's encoder) writes; the digest is
  still the SHA-256 of the key-sorted canonical form without the signature, whether it is taken
  from the record or, by ``parse_line_digest``, from the line's own values.
* the import's own msgpack ``Packer`` writes the transcoder's bytes, and the events the import
  encodes without building them are stored byte for byte as eventsourcing's mapper stores them.
* plugins' validators called directly give what pluggy's call gives, or pluggy is used.
* a ledger whose decision index has the old shape (keyed by id) keeps working.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgpack
import pluggy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import ALL_KINDS, EXAMPLE_FILE, decision_files, to_jsonl

from ledger import canonical, decisions, hookspecs, internals, transcoder
from ledger import importer as importer_module
from ledger.application import LedgerApplication
from ledger.decisions import DecisionRecord, parse_line
from ledger.errors import DecisionError
from ledger.plugins import plugin_manager

SETTINGS = settings(max_examples=60)


def _outcome(parse: Any, line: bytes | str) -> tuple[Any, ...]:
    """What parsing ``line`` gives: the record with its key orders, or the refusal in full."""
    try:
        record = parse(line)
    except DecisionError as e:
        return ("refused", type(e).__name__, str(e), e.field)
    except Exception as e:  # an unexpected error must be the same one too
        return ("raised", type(e).__name__, str(e))
    return ("record", record, list(vars(record)), list(record.fields), list(record.extensions))


def _same(line: bytes | str) -> None:
    outcome = _outcome(parse_line, line)
    assert outcome == _outcome(decisions._parse_line, line)
    # the import's parse: the same record or refusal, and where it has the digest, the record's own
    assert _outcome(lambda text: decisions.parse_line_digest(text)[0], line) == outcome
    if outcome[0] == "record":
        record, digest = decisions.parse_line_digest(line)
        assert digest is None or digest == _old_digest(record) == record.digest()


@SETTINGS
@given(lines=decision_files(kinds=ALL_KINDS, max_extra=10))
def test_valid_lines_parse_to_the_same_record(lines: list[dict[str, Any]]) -> None:
    for line in to_jsonl(lines).splitlines(keepends=True):
        if b"\\" not in line:
            assert decisions.try_parse(line) is not None  # the fast path does take them
        _same(line)
        _same(line.decode("utf-8"))
        _same(json.dumps(json.loads(line, parse_float=Decimal), ensure_ascii=True, default=str))


def _mutations(obj: dict[str, Any]) -> Iterator[bytes]:
    text = canonical.dumps(obj)
    keys = list(obj)
    yield text.encode()
    for key in keys:
        value = canonical.dumps(obj[key])
        # a key written twice, with the same or another value, first or last
        yield text.replace("{", "{" + json.dumps(key, ensure_ascii=False) + ":" + value + ",", 1).encode()
        yield (text[:-1] + "," + json.dumps(key, ensure_ascii=False) + ':"other"}').encode()
        yield (text[:-1] + "," + json.dumps(key, ensure_ascii=False) + ":" + value + "}").encode()
        rest = {k: v for k, v in obj.items() if k != key}
        yield canonical.dumps(rest).encode()  # missing
        for bad in (
            None,
            "",
            " ",
            "\u3000",
            1,
            -1,
            2**64,
            1.5,
            Decimal("-0.5"),  # the fast parser's own sign check of a number with a fraction
            Decimal("0.0"),
            True,
            [],
            {},
            ["x"],
            {"a": 1},
            "x\x7fy",
            "x\\u0001y",
            "\\ud800",
            "x\\ty",
            "2019-02-30",
            "2019-2-3",
            "a:b",
            ":b",
            "湖南",
            "NaN",
            # look-alikes: refused in identifiers, kept exactly in free texts
            "湖南\u200b",
            "\u202e湖南",
            "湖\u2066南",
            "湖南\x85",
            "\ufeff湖南",
            "湖南 ",
            " 湖南",
            "a:b\u200d",
        ):
            body = canonical.dumps({**obj, key: bad}) if not isinstance(bad, float) else text
            if isinstance(bad, float):
                body = text[:-1] + "," + json.dumps(key) + ":1.5}"
            yield body.encode()
            yield body.replace('"x\\\\u0001y"', '"x\\u0001y"').replace('"\\\\ud800"', '"\\ud800"').encode()
    yield (text[:-1] + ',"hunan.x":{"a":1,"a":2}}').encode()
    yield (text[:-1] + ',"hunan.x":[{"b":[1,{"c":"d","c":"e"}]}]}').encode()
    yield (text[:-1] + ',"hunan.x":' + "[" * 40 + "]" * 40 + "}").encode()
    yield (text[:-1] + ',"hunan.x":' + str(2**64) + "}").encode()
    yield (text[:-1] + ',"hunan.x":-' + str(2**63 + 1) + "}").encode()
    yield (text[:-1] + ',"hunan.x":1e400,"hunan.y":-0.0,"hunan.z":NaN}').encode()
    yield (text[:-1] + ',"unknown":1}').encode()
    yield ("\ufeff" + text).encode()
    yield text.encode()[:-1]
    yield text.encode() + b" x"
    yield text.encode().replace(b'"', b"'", 2)
    yield b"[" + text.encode() + b"]"
    yield text.encode("utf-8").replace("湖".encode(), b"\xed\xa0\x80")
    yield text.replace(":", ": ", 3).encode() + b"\r\n"
    for key in keys:  # a hidden character or white space added to each string value, in place
        if isinstance(obj[key], str):
            for extra in ("\u200b", "\u202e", "\u061c", "\x9f", " ", "\u3000"):
                yield canonical.dumps({**obj, key: obj[key] + extra}).encode()
                yield canonical.dumps({**obj, key: extra + obj[key]}).encode()


@settings(max_examples=15)
@given(lines=decision_files(kinds=ALL_KINDS, max_extra=0))
def test_wrong_lines_are_refused_as_the_slow_path_refuses_them(lines: list[dict[str, Any]]) -> None:
    seen: set[str] = set()
    for obj in lines:
        if obj["kind"] in seen:
            continue
        seen.add(obj["kind"])
        for line in _mutations(obj):
            _same(line)
            _same(line.decode("utf-8", errors="surrogatepass"))


def test_a_duplicate_key_is_refused_naming_it() -> None:
    line = to_jsonl([EXAMPLE_FILE[0]]).replace(b"{", b'{"by":"x",', 1)
    with pytest.raises(DecisionError) as caught:
        parse_line(line)
    assert caught.value.field == "by"
    assert "appears twice" in str(caught.value)


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.text()
    | st.dates()
    | st.datetimes(timezones=st.sampled_from([UTC, None]))
    | st.decimals(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


def _bytes_or_error(fn: Any) -> Any:
    try:
        return fn()
    except Exception as e:  # the same error either way
        return (type(e).__name__, str(e))


@settings(max_examples=400)
@given(value=_json, sort_keys=st.booleans())
def test_canonical_encode_and_dumps_write_what_the_reference_writer_does(value: Any, sort_keys: bool) -> None:
    """msgspec's bytes where they can be, the standard library's (``_text``) elsewhere: the same."""
    reference = _bytes_or_error(lambda: canonical._text(value, sort_keys).encode("utf-8"))
    assert _bytes_or_error(lambda: canonical.encode(value, sort_keys=sort_keys)) == reference
    assert _bytes_or_error(lambda: canonical.dumps(value, sort_keys=sort_keys).encode("utf-8")) == reference


@settings(max_examples=300)
@given(keys=st.lists(st.text(st.characters(exclude_categories=["Cs"])), max_size=8))
def test_canonical_encode_sorts_keys_as_python_does(keys: list[str]) -> None:
    value = {k: k for k in keys}
    assert canonical.encode(value, sort_keys=True) == canonical._text(value, True).encode("utf-8")


def _old_digest(record: DecisionRecord) -> bytes:
    unsigned = record.to_json_dict()
    unsigned.pop("signature", None)
    return hashlib.sha256(canonical.dumps(unsigned, sort_keys=True).encode("utf-8")).digest()


@SETTINGS
@given(lines=decision_files(kinds=ALL_KINDS, max_extra=10))
def test_the_digest_is_the_canonical_forms(lines: list[dict[str, Any]]) -> None:
    for line in to_jsonl(lines).splitlines():
        record = parse_line(line)
        assert record.digest() == _old_digest(record)
        odd = DecisionRecord(
            record.id,
            record.kind,
            record.effective,
            record.by,
            "b",
            "",
            {**record.fields, "not-a-field": 1},
            {"z.a": [Decimal("1.50"), date(2020, 1, 2)], "a.b": {"y": 1, "x": None}},
            "sig",
        )
        assert odd.digest() == _old_digest(odd)


@settings(max_examples=200)
@given(value=_json)
def test_the_imports_packer_writes_the_transcoders_bytes(value: Any) -> None:
    pack = transcoder.packer()
    assert _bytes_or_error(lambda: pack(value)) == _bytes_or_error(lambda: transcoder._pack(value))
    state = {"timestamp": datetime(2026, 1, 2, tzinfo=UTC), "v": value}
    assert _bytes_or_error(lambda: pack(state)) == _bytes_or_error(lambda: transcoder._pack(state))


class _FixedClock(datetime):
    @classmethod
    def now(cls, tz: Any = None) -> Any:
        return datetime(2026, 11, 24, 10, 0, tzinfo=tz)


def _stored(path: Path, monkeypatch: pytest.MonkeyPatch, *, direct: bool) -> list[tuple[Any, ...]]:
    with monkeypatch.context() as m:
        m.setattr(importer_module, "datetime", _FixedClock)
        if not direct:
            m.setattr(importer_module, "packer_for", lambda mapper: None)
        app = LedgerApplication.open(path)
        try:
            app.import_lines(to_jsonl(EXAMPLE_FILE).splitlines(keepends=True), source="f")
            return [
                (n.id, n.originator_id, n.originator_version, n.topic, n.state)
                for n in app.store.select_notifications(1, 10_000)
            ]
        finally:
            app.close()


def test_events_encoded_without_the_mapper_are_stored_as_the_mapper_stores_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    direct = _stored(tmp_path / "direct.sqlite", monkeypatch, direct=True)
    mapped = _stored(tmp_path / "mapped.sqlite", monkeypatch, direct=False)
    assert direct == mapped
    assert len(direct) == len(EXAMPLE_FILE)
    assert msgpack.unpackb(direct[0][4], ext_hook=lambda code, data: code, raw=False)["timestamp"] == 2


def test_validators_called_directly_give_what_pluggy_gives() -> None:
    pm = plugin_manager()
    validators = internals.plain_validators(pm)
    assert validators is not False
    for line in to_jsonl(EXAMPLE_FILE).splitlines():
        record = parse_line(line)
        direct = [r for r in (v(record) for v in validators) if r is not None]
        via_pluggy = pm.hook.ledger_validate_decision(decision=record)
        assert [list(r) for r in direct] == [list(r) for r in via_pluggy]
    bad = parse_line(to_jsonl([{**EXAMPLE_FILE[0], "hunan.nonsense": 1}]))
    direct = [list(r) for r in (v(bad) for v in validators) if r is not None]
    assert direct == [list(r) for r in pm.hook.ledger_validate_decision(decision=bad)]
    assert any(direct)


class _Wrapper:
    @pluggy.HookimplMarker(hookspecs.PROJECT)(wrapper=True)
    def ledger_validate_decision(self, decision: DecisionRecord) -> Any:
        return (yield)


def test_pluggy_calls_the_validators_when_it_must() -> None:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    assert internals.plain_validators(pm) == []
    pm.register(_Wrapper())
    assert internals.plain_validators(pm) is False
    traced = pluggy.PluginManager(hookspecs.PROJECT)
    traced.add_hookspecs(hookspecs)
    traced.add_hookcall_monitoring(lambda *a: None, lambda *a: None)
    assert internals.plain_validators(traced) is False


_OLD_INDEX = (
    "CREATE TABLE ledger_decisions ("
    "decision_id TEXT PRIMARY KEY, position INTEGER NOT NULL UNIQUE, "
    "originator_id TEXT NOT NULL, originator_version INTEGER NOT NULL, "
    "kind TEXT NOT NULL, subject TEXT NOT NULL, effective TEXT NOT NULL, "
    "digest BLOB NOT NULL, target TEXT, jurisdiction TEXT) WITHOUT ROWID"
)


def _everything(app: LedgerApplication) -> list[Any]:
    rows = app.store.decision_rows(limit=10**6)
    return [
        rows,
        [r.to_json_dict() | {"_recorded_at": None} for r in app.records()],
        [app.decision(r.decision_id).to_json_dict() | {"_recorded_at": None} for r in rows],
        app.store.decision_rows(kinds=["case.performed"], jurisdictions=["hunan"]),
        app.store.decision_rows(subject=rows[-1].subject),
    ]


def test_a_ledger_with_the_old_index_keeps_working(tmp_path: Path) -> None:
    old_path = tmp_path / "old.sqlite"
    with sqlite3.connect(old_path) as conn:
        conn.execute(_OLD_INDEX)
    half = len(EXAMPLE_FILE) // 2
    answers = []
    for path in (old_path, tmp_path / "new.sqlite"):
        app = LedgerApplication.open(path)
        try:
            app.import_lines(to_jsonl(EXAMPLE_FILE[:half]).splitlines(), source="a")
            app.import_lines(to_jsonl(EXAMPLE_FILE).splitlines(), source="b")  # the first half again, unchanged
            answers.append(_everything(app))
        finally:
            app.close()
    with sqlite3.connect(old_path) as conn:
        (schema,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'ledger_decisions'").fetchone()
    assert "WITHOUT ROWID" in schema
    assert answers[0] == answers[1]


@SETTINGS
@given(lines=decision_files(kinds=ALL_KINDS, max_extra=10))
def test_the_ledgers_own_text_reads_back_as_the_trusted_reader_reads_it(lines: list[dict[str, Any]]) -> None:
    """``record_from_text`` (views read thousands per query) takes the parsed dict apart instead
    of rebuilding it: the same record as ``from_trusted_json_dict`` of ``json``'s parse, with the
    same attribute, field and extension orders, for every kind, with and without extensions."""
    for line in to_jsonl(lines).splitlines():
        text = parse_line(line).to_json()
        fast = decisions.record_from_text(text)
        slow = decisions.from_trusted_json_dict(json.loads(text, parse_float=Decimal))
        assert fast == slow
        assert (list(vars(fast)), list(fast.fields), list(fast.extensions)) == (
            list(vars(slow)),
            list(slow.fields),
            list(slow.extensions),
        )
        with_extension = decisions.record_from_text(text[:-1] + ', "zz.form": {"x": [1, null]}}')
        assert with_extension.extensions == {**slow.extensions, "zz.form": {"x": [1, None]}}
        assert with_extension.fields == slow.fields
