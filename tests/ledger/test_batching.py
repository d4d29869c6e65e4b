"""The import's fast paths (issue 8) change nothing but speed.

* A file checked in batches (one query per kind of lookup per batch) records exactly what checking
  one line at a time records, and refuses with the same error at the same line: a line's own
  refusal (bad JSON, a plugin's validator) waits until the earlier lines of its batch are checked.
* A national file (``bench/generate.py``) is stored byte for byte as the slow paths store it: the
  slow parser and ``DecisionRecord.digest``, events built by their classes and encoded by
  eventsourcing's mapper, ``executemany`` of ``StoredEvent`` and ``DecisionRow``, one line a batch.
* SQLite's writes on the session's thread fail as the writes in place failed: the transaction is
  rolled back, the error is the one ``write()`` always gave, and nothing is left running.
* ``canonical.dumps``'s C-encoder path writes the same bytes as the Python writer.
* ``from_trusted_json_dict`` reads back what ``from_json_dict`` reads, for the ledger's own text.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import threading
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import ALL_KINDS, EXAMPLE_FILE, HOSPITAL, bench_generator, decision_files, to_jsonl

from ledger import aggregates, canonical, decisions, sqlite, storage
from ledger import importer as importer_module
from ledger.application import LedgerApplication
from ledger.decisions import from_json_dict, from_trusted_json_dict, parse_line
from ledger.errors import ConcurrencyError, DecisionError, MalformedDecision, UnknownReference
from ledger.storage import WriteSession

# ``monkeypatch`` sets the same attributes for every example, so sharing it across examples is safe.
SETTINGS = settings(max_examples=20, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _import(path: Path, lines: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    app = LedgerApplication.open(path)
    try:
        app.import_lines(to_jsonl(lines).splitlines(keepends=True), source="f")
        return [
            (n.id, n.originator_id, n.originator_version, n.topic, app._decode(n).__dict__ | {"timestamp": None})
            for n in app.store.select_notifications(1, 10_000)
        ]
    finally:
        app.close()


@SETTINGS
@given(lines=decision_files(kinds=ALL_KINDS, max_extra=20))
def test_batches_record_what_one_line_at_a_time_records(
    lines: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path_factory.mktemp("batching")
    whole = _import(folder / "whole.sqlite", lines)
    with monkeypatch.context() as m:
        m.setattr(importer_module, "BATCH", 1)
        one_by_one = _import(folder / "one.sqlite", lines)
    with monkeypatch.context() as m:
        m.setattr(importer_module, "BATCH", 3)
        threes = _import(folder / "three.sqlite", lines)
    assert whole == one_by_one == threes


def _refusal(app: LedgerApplication, text: str) -> DecisionError:
    with pytest.raises(DecisionError) as caught:
        app.import_lines(text.splitlines(keepends=True), source="f")
    return caught.value


def _case(decision_id: str, institution: str) -> str:
    case = next(d for d in EXAMPLE_FILE if d["kind"] == "case.performed")
    return canonical.dumps({**case, "id": decision_id, "institution": institution, "by": institution}) + "\n"


def test_an_earlier_refusal_in_the_same_batch_comes_first(tmp_path: Path) -> None:
    app = LedgerApplication.open(tmp_path / "l.sqlite")
    try:
        good = to_jsonl(EXAMPLE_FILE).decode("utf-8")
        n = good.count("\n")
        # line n+1 names an institution nobody registered; line n+2 is not JSON
        error = _refusal(app, good + _case("X-1", "NOBODY") + "{not json\n")
        assert isinstance(error, UnknownReference)
        assert (error.line, error.field) == (n + 1, "institution")
        # the other way round: the bad JSON is the first refusal
        error = _refusal(app, good + "{not json\n" + _case("X-1", "NOBODY"))
        assert isinstance(error, MalformedDecision)
        assert (error.line, error.field) == (n + 1, None)
        assert app.position() == 0  # nothing written from either file
        # and a later line still sees what an earlier line of its batch registered
        result = app.import_lines((good + _case("X-2", HOSPITAL)).splitlines(keepends=True), source="f")
        assert result.recorded == n + 1
    finally:
        app.close()


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.text(max_size=8),
    st.dates(),
    st.datetimes(timezones=st.just(UTC)),
    st.decimals(allow_nan=False, allow_infinity=False, places=3),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=12,
)


@settings(max_examples=300)
@given(value=_values, sort_keys=st.booleans())
def test_canonical_fast_path_writes_the_same_bytes(value: Any, sort_keys: bool) -> None:
    parts: list[str] = []
    canonical._write(value, parts, sort_keys)
    assert canonical.dumps(value, sort_keys=sort_keys) == "".join(parts)


def test_canonical_refuses_what_it_always_refused() -> None:
    for value in (1.5, {"a": [1.5]}, object()):
        with pytest.raises(TypeError):
            canonical.dumps(value)
    assert canonical.dumps({1: "x", "2": True}) == '{"1":"x","2":true}'  # str() of a key
    assert canonical.dumps({"d": date(2019, 4, 22), "t": datetime(2019, 4, 22, tzinfo=UTC)}) == (
        '{"d":"2019-04-22","t":"2019-04-22T00:00:00+00:00"}'
    )
    assert canonical.dumps(Decimal("1.50")) == "1.50"


@SETTINGS
@given(lines=decision_files(kinds=ALL_KINDS, max_extra=20))
def test_trusted_reading_reads_what_checked_reading_reads(lines: list[dict[str, Any]]) -> None:
    for line in to_jsonl(lines).decode("utf-8").splitlines():
        record = parse_line(line)
        text = record.to_json()
        checked = from_json_dict(json.loads(text, parse_float=Decimal))
        trusted = from_trusted_json_dict(json.loads(text, parse_float=Decimal))
        assert trusted == checked
        assert {k: type(v) for k, v in trusted.fields.items()} == {k: type(v) for k, v in checked.fields.items()}
        assert type(trusted.effective) is type(checked.effective)


class _FixedClock(datetime):
    @classmethod
    def now(cls, tz: Any = None) -> Any:
        return datetime(2026, 11, 26, 10, 0, tzinfo=tz)


def _stored(path: Path, lines: list[str], monkeypatch: pytest.MonkeyPatch, *, slow: bool) -> list[list[Any]]:
    with monkeypatch.context() as m:
        m.setattr(importer_module, "datetime", _FixedClock)
        if slow:
            m.setattr(importer_module, "parse_line_digest", lambda text: (decisions._parse_line(text), None))
            m.setattr(importer_module, "packer_for", lambda mapper: None)
            m.setattr(sqlite._SQLiteWriteSession, "append_staged", WriteSession.append_staged)
            m.setattr(importer_module, "BATCH", 1)
        app = LedgerApplication.open(path)
        try:
            result = app.import_lines(lines, source="generated")
            assert result.recorded == len(lines)
        finally:
            app.close()
    with sqlite3.connect(path) as db:
        return [
            db.execute("SELECT rowid, originator_id, originator_version, topic, state FROM stored_events").fetchall(),
            db.execute(f"SELECT {storage.INDEX_COLUMNS} FROM ledger_decisions ORDER BY position").fetchall(),
        ]


def test_a_national_file_is_stored_as_the_slow_paths_store_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [line + "\n" for line in bench_generator().lines(2500, 11)]
    assert {parse_line(line).kind for line in lines} >= {"case.performed", "physician.registered", "decision.corrected"}
    fast = _stored(tmp_path / "fast.sqlite", lines, monkeypatch, slow=False)
    slow = _stored(tmp_path / "slow.sqlite", lines, monkeypatch, slow=True)
    assert len(fast[0]) == len(fast[1]) == len(lines)
    assert fast == slow


@settings(max_examples=200)
@given(subject=st.text(st.characters(exclude_categories=["Cs"])))
def test_aggregate_ids_are_uuid5s(subject: str) -> None:
    assert aggregates.aggregate_id(subject) == uuid.uuid5(aggregates.NAMESPACE, subject)


def test_a_failed_write_on_the_sessions_thread_fails_the_transaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite, "THREAD_ROWS", 1)  # one row is enough to write on the thread
    app = LedgerApplication.open(tmp_path / "l.sqlite")
    try:
        app.import_lines(to_jsonl(EXAMPLE_FILE).splitlines(keepends=True), source="example")
        before = app.position()
        row = app.store.decision_rows(limit=1)[0]
        taken = (row.originator_id.hex, row.originator_version, "t", b"s")  # that subject's version 1 exists
        index = (
            row.decision_id + "-again",
            row.originator_id.hex,
            row.originator_version,
            row.kind,
            row.subject,
            row.effective,
            row.digest,
            None,
            None,
        )
        interval, threads = sys.getswitchinterval(), threading.active_count()
        with pytest.raises(ConcurrencyError), app.store.write() as session:
            fresh = ("0" * 32, 1, "t", b"s")
            fine = ("FINE-1", "0" * 32, 1, "case.performed", "use:x|y", date(2020, 1, 1), b"d" * 32, None, None)
            assert list(session.append_staged([fresh], [fine])) == [before + 1]
            session.append_staged([taken], [index])  # refused on the thread, raised here or at the end
            session.find_decisions(["FINE-1"])
        assert app.position() == before
        assert not app.store.decision_rows(ids=["FINE-1"])
        assert sys.getswitchinterval() == interval
        assert threading.active_count() == threads
    finally:
        app.close()
