"""``bench/serve.py`` runs end to end on a small ledger (build, server, load, in-process baseline,
memory samples) and prints its table and JSON. Only that it works: its figures are measured by
running it, never asserted in a test."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_the_serve_benchmark_runs_and_reports(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench/serve.py"),
            "--decisions",
            "3000",
            "--workdir",
            str(tmp_path),
            "--requests",
            "30",
            "--time-limit",
            "5",
            "--subjects",
            "20",
            "--clients",
            "1,4",
            "--workers",
            "1",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr  # 1: a target missed, which a test does not judge
    report = json.loads(done.stdout)
    details = report["details"]
    assert details["decisions"] >= 3000
    assert {c["query"] for c in details["served"]} == set(details["in_process"])
    assert [c["clients"] for c in details["served"]] == [1, 4] * 3
    assert all(c["requests"] > 0 and c["errors"] == 0 for c in details["served"])
    assert details["rss_mb"]
    assert set(report["targets"]) >= {"server memory, last / first after warm-up"}
