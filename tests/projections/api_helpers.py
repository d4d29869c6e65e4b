"""Shared set-up of the API's tests: a demo ledger with a signed checkpoint, served read-only
(on PostgreSQL through a role that may only SELECT, made with the SQL docs/api.md gives)."""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from conftest import connect_postgres, run_cli

DOC = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text(encoding="utf-8")


def reader_sql(role: str, schema: str) -> list[str]:
    """docs/api.md's SQL for the reader role, read from the page (so the two cannot drift), with
    this test's role and schema names."""
    section = DOC.split("## PostgreSQL: a role that may only SELECT", 1)[1]
    block = re.findall(r"```sql\n(.+?)\n```", section, flags=re.S)[0]
    block = re.sub(r"\bledger_reader\b", role, block)
    block = re.sub(r"\baudit\b", f'"{schema}"', block)
    return [s.strip() for s in block.split(";") if s.strip()]


@dataclass
class Served:
    """A demo ledger: where the writer reaches it (``db``), where the server does (``read_db``)."""

    db: str
    read_db: str
    key: Path
    backend: str
    ids: dict[str, str] = field(default_factory=dict)

    def cli_json(self, *args: str) -> Any:
        result = run_cli(list(args), self.db)
        assert result.exit_code == 0, result.stderr
        return json.loads(result.stdout)


def build_demo(db: str, tmp: Path) -> tuple[Path, dict[str, str]]:
    """The shipped demo history, checkpointed; and ids worth asking about."""
    key = tmp / "signer.key"
    for args in (["demo"], ["keygen", "-o", str(key)], ["checkpoint", "--key", str(key)]):
        result = run_cli(args, db)
        assert result.exit_code == 0, result.stderr
    rows = json.loads(run_cli(["log", "--format", "json"], db).stdout)
    correction = next(r["id"] for r in rows if r["kind"] == "decision.corrected")
    corrected = json.loads(run_cli(["show", correction, "--format", "json"], db).stdout)[0]["corrects"]
    physician = next(r["subject"] for r in rows if r["kind"] == "privilege.granted")
    ids = {
        "institution": "44871105643010521A1001",  # a trail with findings
        "chongqing_institution": "45038217650010611A1001",
        "decision": rows[10]["id"],
        "corrected": corrected,
        "physician": physician.split(":")[-1] if physician.startswith("physician:") else physician,
        "timestamp": rows[150]["recorded_at"],
    }
    return key, ids


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("served")
    if request.param == "sqlite":
        db = str(tmp / "ledger.sqlite")
        key, ids = build_demo(db, tmp)
        yield Served(db, db, key, "sqlite", ids)
        return
    server = connect_postgres()
    schema, role = server.create_schema(), f"ledger_reader_{uuid.uuid4().hex[:12]}"
    try:
        db = server.url(schema)
        key, ids = build_demo(db, tmp)
        for sql in reader_sql(role, schema):
            server.conn.execute(sql)
        yield Served(db, as_role(db, role), key, "postgres", ids)
    finally:
        server.drop_schema(schema)
        with contextlib.suppress(Exception):
            server.conn.execute(f"DROP OWNED BY {role}")
        server.conn.execute(f"DROP ROLE IF EXISTS {role}")
        server.close()


def as_role(url: str, role: str) -> str:
    """``url`` connecting as ``role`` (the test server trusts local connections)."""
    parsed = urlparse(url)
    return parsed._replace(netloc=f"{role}@{parsed.hostname}:{parsed.port or 5432}").geturl()
