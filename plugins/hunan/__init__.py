"""Hunan (HN-2018, 湘卫医发〔2018〕11号): the provincial catalogue S01–S29 and Hunan's rules."""

from __future__ import annotations

from pathlib import Path

from ledger import Jurisdiction, hookimpl

DATA = Path(__file__).parent / "data"
HUNAN = Jurisdiction("hunan", "湖南省", aliases=("湖南",))


@hookimpl
def ledger_jurisdictions() -> list[Jurisdiction]:
    return [HUNAN]


@hookimpl
def ledger_reference_data() -> list[Path]:
    return [DATA / "catalog.jsonl"]


@hookimpl
def ledger_demo_data() -> list[Path]:
    return [DATA / "demo.jsonl"]
