"""Every finding of the shipped demo histories, as of a day in each half-year the regimes span, is
exactly what it was when ``data/demo_findings.json`` was written: rule, article, day, severity,
message, decisions and subject, character for character.

The file was written by the plugins as they stood before their findings were built with
``Finding.of``; a change to a rule that changes what it finds must change this file with it, in the
same commit, so that a reviewer sees every finding it adds, removes or rewords.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from pathlib import Path
from typing import Any

from plugin_testing import demo_log, judge

from projections import Finding

EXPECTED = Path(__file__).parent / "data" / "demo_findings.json"
DAYS = sorted(
    {date(y, m, 1) for y in range(2009, 2028) for m in (1, 7)}
    | {date(2018, 11, 1), date(2019, 2, 1), date(2026, 3, 4)}  # MTM-2018, its grandfather date, EVAL-2026
)


def as_json(finding: Finding) -> dict[str, Any]:
    return {
        k: v.isoformat() if isinstance(v, date) else list(v) if isinstance(v, tuple) else v
        for k, v in dataclasses.asdict(finding).items()
    }


def test_the_demo_findings_are_unchanged() -> None:
    log = demo_log()
    found = {day.isoformat(): [as_json(f) for f in judge(log, as_of=day)] for day in DAYS}
    expected = json.loads(EXPECTED.read_text(encoding="utf-8"))
    assert sorted(found) == sorted(expected)
    for day, findings in expected.items():
        assert found[day] == findings, day
    assert {f["rule"] for fs in expected.values() for f in fs} >= {"national.late-filing", "national.ethics"}
