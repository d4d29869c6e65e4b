"""The import's guards: the private API of pluggy and eventsourcing it relies on
(``ledger.internals``), the process-wide state it changes while it runs, and the size of a record's
leaf (an entry bundle holds each leaf after a big-endian uint16 length).
"""

from __future__ import annotations

import gc
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pluggy
import pytest
from conftest import run_cli
from strategies import EXAMPLE_FILE, HOSPITAL, SURGEON, to_jsonl

from ledger import importer, internals, sqlite
from ledger.application import LedgerApplication
from ledger.errors import ConfigurationError, LedgerError, MalformedDecision
from ledger.integrity import leaf_bytes


@pytest.fixture
def fresh_guard() -> Iterator[None]:
    """``check_shapes`` asked again, before and after the test (it answers once per process)."""
    internals.check_shapes.cache_clear()
    yield
    internals.check_shapes.cache_clear()


def case(id_: str, **changes: Any) -> dict[str, Any]:
    d = {
        "id": id_,
        "kind": "case.performed",
        "effective": "2019-06-01",
        "by": HOSPITAL,
        "institution": HOSPITAL,
        "technology": "hunan:S14",
        "physician": SURGEON,
        "case": f"ZY{id_}",
    }
    return d | changes


# --- the guard of the private API ---------------------------------------------------------------


def test_the_installed_libraries_have_every_private_name_used(fresh_guard: None) -> None:
    assert internals._missing() == []
    internals.check_shapes()  # does not raise


class _BareMapper:
    """A mapper of a future eventsourcing that keeps no ``compressor`` or ``cipher`` attribute."""

    def __init__(self, transcoder: Any) -> None:
        self.transcoder = transcoder


@pytest.mark.parametrize(
    ("owner", "name", "value", "shown"),
    [
        (pluggy._manager, "_multicall", None, "pluggy._manager._multicall"),
        (internals, "Mapper", _BareMapper, "eventsourcing Mapper.compressor, eventsourcing Mapper.cipher"),
    ],
    ids=["pluggy", "eventsourcing"],
)
def test_a_missing_private_name_fails_with_a_clear_error(
    fresh_guard: None, monkeypatch: pytest.MonkeyPatch, owner: Any, name: str, value: Any, shown: str
) -> None:
    monkeypatch.setattr(owner, name, value)
    with pytest.raises(ConfigurationError, match=re.escape(f"no longer has {shown}")):
        internals.check_shapes()
    with pytest.raises(LedgerError, match=re.escape("install the versions pyproject.toml names")):
        internals.plain_validators(pluggy.PluginManager("ledger"))


def test_an_import_stops_with_the_guards_error(
    fresh_guard: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(pluggy._manager, "_multicall", None)
    app = LedgerApplication.open(tmp_path / "ledger.sqlite")
    try:
        with pytest.raises(ConfigurationError, match=re.escape("pluggy._manager._multicall")):
            app.import_lines(to_jsonl(EXAMPLE_FILE).splitlines(), source="example.jsonl")
        assert app.position() == 0
    finally:
        app.close()


# --- process-wide state, set back after an import ---------------------------------------------


def _watched_import(app: LedgerApplication, lines: list[bytes]) -> list[tuple[bool, float]]:
    """Import ``lines``, noting the collector's state and the switch interval at every line."""
    seen: list[tuple[bool, float]] = []
    app.import_lines(
        lines, source="many.jsonl", progress=lambda _n: seen.append((gc.isenabled(), sys.getswitchinterval()))
    )
    return seen


def _many(count: int) -> list[bytes]:
    return to_jsonl([*EXAMPLE_FILE, *(case(f"MANY-{i}") for i in range(count))]).splitlines()


@pytest.mark.parametrize("fails", [False, True], ids=["recorded", "refused"])
def test_process_state_is_set_back_after_an_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fails: bool
) -> None:
    monkeypatch.setattr(importer, "BATCH", 150)  # so the writer thread runs before the bad line
    lines = _many(400)
    if fails:
        lines.append(b'{"id": "BAD"}')
    interval, enabled = sys.getswitchinterval(), gc.isenabled()
    assert enabled and interval > sqlite.SWITCH_INTERVAL
    app = LedgerApplication.open(tmp_path / "ledger.sqlite")
    seen: list[tuple[bool, float]] = []
    try:
        if fails:
            with pytest.raises(MalformedDecision):
                app.import_lines(
                    lines,
                    source="many.jsonl",
                    progress=lambda _n: seen.append((gc.isenabled(), sys.getswitchinterval())),
                )
            assert app.position() == 0
        else:
            seen = _watched_import(app, lines)
            assert app.position() == len(lines)
    finally:
        app.close()
    assert (sys.getswitchinterval(), gc.isenabled()) == (interval, enabled)
    # While it ran: the collector paused throughout, the short interval once the thread writes.
    assert not any(on for on, _ in seen)
    assert any(not on and interval < 2 * sqlite.SWITCH_INTERVAL for on, interval in seen)


def test_a_switch_interval_set_by_someone_else_meanwhile_is_kept() -> None:
    before = sys.getswitchinterval()
    try:
        with sqlite.short_switch_interval():
            assert sys.getswitchinterval() < 2 * sqlite.SWITCH_INTERVAL
            sys.setswitchinterval(0.002)
        assert sys.getswitchinterval() == 0.002
    finally:
        sys.setswitchinterval(before)


# --- the leaf of every record fits an entry bundle ----------------------------------------------


def _leaf_size(app: LedgerApplication, position: int) -> int:
    row = app.store.select_notifications(position - 1, 1, inclusive_of_start=False)[0]
    return len(leaf_bytes(row.id, row.originator_id, row.originator_version, row.topic, row.state))


def test_a_record_whose_leaf_exceeds_the_bundle_length_is_refused(ledger_url: str) -> None:
    app = LedgerApplication.open(ledger_url)
    try:
        app.import_lines(to_jsonl(EXAMPLE_FILE).splitlines(), source="example.jsonl")
        before = app.position()
        # Just fits: the largest record a bundle holds is recorded.
        fits = case("FITS", note="x" * 1000)  # (a note this long and the edge's have a length of the same width)
        app.import_lines([to_jsonl([fits]).strip()], source="probe.jsonl")
        room = 1000 + importer.MAX_LEAF_BYTES - _leaf_size(app, before + 1)
        edge = case("EDGE", note="x" * room)
        assert app.import_lines([to_jsonl([edge]).strip()], source="edge.jsonl").recorded == 1
        assert _leaf_size(app, before + 2) == importer.MAX_LEAF_BYTES
        # One byte more: refused, naming file, line and field, and nothing of the file written.
        over = case("OVER", note="x" * (room + 1))
        lines = to_jsonl([case("OK-1"), over, case("OK-3")]).splitlines()
        with pytest.raises(MalformedDecision) as info:
            app.import_lines(lines, source="big.jsonl")
        e = info.value
        assert (e.file, e.line, e.field) == ("big.jsonl", 2, "note")
        assert f"more than the {importer.MAX_LEAF_BYTES} a log entry holds" in e.message
        assert app.position() == before + 2
    finally:
        app.close()


def test_the_cli_refuses_an_oversized_record_with_exit_code_3(tmp_path: Path) -> None:
    db = str(tmp_path / "ledger.sqlite")
    path = tmp_path / "big.jsonl"
    path.write_bytes(to_jsonl([*EXAMPLE_FILE, case("HUGE", note="长" * 30_000)]))
    result = run_cli(["import", str(path)], db)
    assert result.exit_code == 3, result.output
    assert f"line {len(EXAMPLE_FILE) + 1}, field 'note'" in result.stderr
    assert "a log entry holds" in result.stderr
    assert "Traceback" not in result.stderr
    app = LedgerApplication.open(db)
    try:
        assert app.position() == 0
    finally:
        app.close()
