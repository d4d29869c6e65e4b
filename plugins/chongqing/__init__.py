"""Chongqing (CQ-2017, 渝卫发〔2017〕44号): filings with district or city, the 5-working-day notice."""

from __future__ import annotations

from pathlib import Path

from ledger import Jurisdiction, hookimpl

DATA = Path(__file__).parent / "data"
CHONGQING = Jurisdiction("chongqing", "重庆市", aliases=("重庆",))


@hookimpl
def ledger_jurisdictions() -> list[Jurisdiction]:
    return [CHONGQING]


@hookimpl
def ledger_reference_data() -> list[Path]:
    return [DATA / "catalog.jsonl"]


@hookimpl
def ledger_demo_data() -> list[Path]:
    return [DATA / "demo.jsonl"]
