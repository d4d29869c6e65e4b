"""The national regimes: MTM-2009, the 2015 transition, MTM-2018, EVAL-2026, and the national
catalogue (prohibited, third-class, restricted 2015 and 2022) as reference decisions."""

from __future__ import annotations

from pathlib import Path

from ledger import hookimpl

DATA = Path(__file__).parent / "data"


@hookimpl
def ledger_reference_data() -> list[Path]:
    return [DATA / "catalog.jsonl"]
