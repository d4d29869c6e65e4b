"""``bench/generate.py`` (issue 8): exactly N valid decisions, the same ones for the same seed.

Only correctness: the benchmark's speed is measured by ``bench/run.py``, never asserted in a test.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

from ledger.application import LedgerApplication
from tests.strategies import bench_generator


@pytest.fixture(scope="module")
def generate() -> ModuleType:
    return bench_generator()


def _file(generate: ModuleType, n: int, seed: int) -> str:
    out = io.StringIO()
    assert generate.Generator(n, seed, out).run() == n
    return out.getvalue()


def test_deterministic_per_seed_and_exactly_n_lines(generate: ModuleType) -> None:
    first = _file(generate, 3000, 7)
    assert first == _file(generate, 3000, 7)
    assert first != _file(generate, 3000, 8)
    lines = first.splitlines()
    assert len(lines) == 3000
    ids = [json.loads(line)["id"] for line in lines]
    assert len(set(ids)) == len(ids)


def test_a_generated_file_imports_into_an_empty_ledger(generate: ModuleType, tmp_path: Path) -> None:
    text = _file(generate, 4000, 1)
    kinds = Counter(json.loads(line)["kind"] for line in text.splitlines())
    assert kinds.most_common(1)[0][0] == "case.performed"  # the bulk: case-by-case reports
    for kind in ("institution.registered", "physician.registered", "filing.completed", "privilege.granted"):
        assert kinds[kind] > 0, kind
    provinces = {json.loads(line).get("province") for line in text.splitlines()} - {None}
    assert len(provinces) == 31
    app = LedgerApplication.open(tmp_path / "ledger.sqlite")
    try:
        result = app.import_lines(text.splitlines(keepends=True), source="generated")
        assert result.recorded == 4000
        again = app.import_lines(text.splitlines(keepends=True), source="generated")
        assert (again.recorded, again.unchanged) == (0, 4000)
    finally:
        app.close()
