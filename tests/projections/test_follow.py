"""A projection process of its own (`ledger project --follow`) catches up from its tracked position
while another process writes, on PostgreSQL and on SQLite."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from ledger.application import LedgerApplication
from projections.runner import Runner
from projections.views import Views, all_projections
from tests.strategies import EXAMPLE_FILE, to_jsonl


def _wait_until(condition: object, limit: float = 60.0) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


@pytest.mark.slow
def test_a_follower_process_keeps_up_with_a_writer(ledger_url: str, tmp_path: Path) -> None:
    ledger = str(Path(sys.executable).parent / "ledger")
    writer = LedgerApplication.open(ledger_url)
    half = len(EXAMPLE_FILE) // 2
    writer.import_lines(to_jsonl(EXAMPLE_FILE[:half]).splitlines(keepends=True), source="first")
    follower = subprocess.Popen(
        [ledger, "--db", ledger_url, "project", "--follow", "--poll", "0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        runner = Runner(writer, all_projections(writer.plugins))

        def caught_up() -> bool:
            positions = set(runner.positions().values())
            return positions == {writer.position()}

        assert _wait_until(caught_up), follower.stderr
        writer.import_lines(to_jsonl(EXAMPLE_FILE[half:]).splitlines(keepends=True), source="second")
        assert _wait_until(caught_up)
        assert follower.poll() is None  # still following
    finally:
        follower.terminate()
        follower.wait(timeout=30)
    # What the follower built is what a reader sees, without catching up itself.
    views = Views(writer, catch_up=False)
    assert {e.decision_id for e in views.trail(findings=False).entries} >= {
        d["id"] for d in EXAMPLE_FILE if d["kind"] != "authority.key_registered"
    }
    writer.close()
