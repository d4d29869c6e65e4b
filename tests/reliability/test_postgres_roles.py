"""PostgreSQL roles (issue 6, "append-only by construction"), against the real server.

The role setup of docs/reliability.md — read from that file, so the documentation and the test
cannot drift apart — is run with fresh role and schema names: an owner creates the ledger's
tables, a writer that may only INSERT and SELECT on ``stored_events`` and ``ledger_decisions``
imports, records, rebuilds and verifies through the ledger, and is refused UPDATE, DELETE,
TRUNCATE, ALTER, DROP and LOCK by PostgreSQL's privileges (``InsufficientPrivilege``), not only by
the triggers. Trust authentication lets the test connect as any role.

Passwords: a password in a ``postgresql://`` URL never appears in any output or error.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import PG_SETTINGS, PostgresServer, run_cli
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import EXAMPLE_FILE, HOSPITAL, to_jsonl

from ledger.application import database_env, redact
from ledger.errors import ConfigurationError

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "reliability.md").read_text(encoding="utf-8")
HOST, PORT, DBNAME = PG_SETTINGS["host"], PG_SETTINGS["port"], PG_SETTINGS["dbname"]


def doc_sql() -> tuple[str, str]:
    """The two SQL blocks of the role setup: as a superuser, then as the owner."""
    section = DOC.split("## PostgreSQL: a writer that may only INSERT and SELECT", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sql\n(.+?)\n\s*```", section, flags=re.S)
    assert len(blocks) == 2, "docs/reliability.md: the role setup has two SQL blocks"
    return blocks[0], blocks[1]


@dataclass
class Roles:
    owner: str
    writer: str
    schema: str

    def sql(self, text: str) -> list[str]:
        """The statements of a documented block, with this test's names."""
        text = re.sub(r"\bledger_owner\b", self.owner, text)
        text = re.sub(r"\bledger_writer\b", self.writer, text)
        text = re.sub(r"\baudit\b", self.schema, text)
        text = re.sub(r"--[^\n]*", "", text)
        return [s.strip() for s in text.split(";") if s.strip()]

    def url(self, role: str, password: str = "") -> str:
        secret = f":{password}" if password else ""
        return f"postgresql://{role}{secret}@{HOST}:{PORT}/{DBNAME}?schema={self.schema}"

    def connect(self, role: str) -> Any:
        import psycopg

        return psycopg.connect(host=HOST, port=PORT, dbname=DBNAME, user=role, autocommit=True, connect_timeout=5)


@pytest.fixture
def roles(postgres_server: PostgresServer) -> Iterator[Roles]:
    tag = uuid.uuid4().hex[:10]
    made = Roles(owner=f"ledger_owner_{tag}", writer=f"ledger_writer_{tag}", schema=f"audit_{tag}")
    admin = postgres_server.conn
    as_superuser, _ = doc_sql()
    try:
        for statement in made.sql(as_superuser):
            admin.execute(statement)
        yield made
    finally:
        admin.execute(f'DROP SCHEMA IF EXISTS "{made.schema}" CASCADE')
        for role in (made.writer, made.owner):
            exists = admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
            if exists:
                admin.execute(f'DROP OWNED BY "{role}"')
                admin.execute(f'DROP ROLE "{role}"')


def set_up_as_documented(roles: Roles, monkeypatch: pytest.MonkeyPatch) -> None:
    """Steps 2 and 3 (step 1 is the ``roles`` fixture), then step 4's environment."""
    for name in ("LEDGER_CREATE_TABLE", "CREATE_TABLE", "LEDGER_DB"):
        monkeypatch.delenv(name, raising=False)
    created = run_cli(["log"], roles.url(roles.owner))  # the owner creates the log's tables
    assert created.exit_code == 0, created.stderr
    _, as_owner = doc_sql()
    with roles.connect(roles.owner) as conn:
        for statement in roles.sql(as_owner):
            conn.execute(statement)
    monkeypatch.setenv("LEDGER_CREATE_TABLE", "no")


def test_the_writer_records_through_the_ledger(roles: Roles, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    set_up_as_documented(roles, monkeypatch)
    url = roles.url(roles.writer)
    path = tmp_path / "example.jsonl"
    path.write_bytes(to_jsonl(EXAMPLE_FILE))
    for args in (
        ["import", str(path)],
        ["record", "penalty.imposed", "--id", "ROLE-1", "--effective", "2023-01-02", "--by", "湖南省卫生健康委员会",
         "--field", f"institution={HOSPITAL}", "--field", "amount_yuan=500", "--field", "reason=逾期"],
        ["import", str(path)],  # again: nothing new, nothing refused
        ["rebuild"],
        ["catalog", "--province", "hunan", "--as-of", "2020-01-01"],
        ["keygen", "-o", str(tmp_path / "log.key")],
        ["checkpoint", "--key", str(tmp_path / "log.key")],
        ["verify", "--key", str(tmp_path / "log.key.pub")],
    ):  # fmt: skip
        result = run_cli(args, url)
        assert result.exit_code == 0, f"{args}: {result.stderr}"
        assert "Traceback" not in result.stderr
    with roles.connect(roles.writer) as conn:
        count = conn.execute(f'SELECT COUNT(*) FROM "{roles.schema}".stored_events').fetchone()[0]
        owners = dict(conn.execute(
            "SELECT tablename, tableowner FROM pg_tables WHERE schemaname = %s", (roles.schema,)
        ).fetchall())  # fmt: skip
    assert count == len(EXAMPLE_FILE) + 1
    assert owners["stored_events"] == owners["ledger_decisions"] == owners["ledger_meta"] == roles.owner
    derived = {t: o for t, o in owners.items() if t.startswith(("view_", "ledger_merkle", "ledger_tracking"))}
    assert derived and set(derived.values()) == {roles.writer}, owners


FORBIDDEN = [
    "UPDATE {s}.stored_events SET topic = topic",
    "DELETE FROM {s}.stored_events",
    "TRUNCATE {s}.stored_events",
    "UPDATE {s}.ledger_decisions SET kind = kind",
    "DELETE FROM {s}.ledger_decisions",
    "TRUNCATE {s}.ledger_decisions",
    "ALTER TABLE {s}.stored_events DISABLE TRIGGER ALL",
    "DROP TRIGGER stored_events_append_only ON {s}.stored_events",
    "DROP TABLE {s}.ledger_decisions",
    "UPDATE {s}.ledger_meta SET value = '0'",
    "CREATE OR REPLACE FUNCTION {s}.ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql "
    "AS $$ BEGIN RETURN NULL; END $$",
]


def test_the_writer_may_not_change_the_log(roles: Roles, monkeypatch: pytest.MonkeyPatch) -> None:
    import psycopg

    set_up_as_documented(roles, monkeypatch)
    s = f'"{roles.schema}"'
    with roles.connect(roles.writer) as conn:
        for statement in FORBIDDEN:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement.format(s=s))
        # LOCK TABLE directly needs UPDATE/DELETE/TRUNCATE: only the owner's function takes it.
        with conn.transaction(), pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(f"LOCK TABLE {s}.stored_events IN EXCLUSIVE MODE")
        with conn.transaction():
            conn.execute(f"SELECT {s}.stored_events_lock()")
        privileges = {
            (table, p): conn.execute(
                "SELECT has_table_privilege(%s, %s, %s)", (roles.writer, f"{s}.{table}", p)
            ).fetchone()[0]
            for table in ("stored_events", "ledger_decisions")
            for p in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
        }
    assert {k for k, allowed in privileges.items() if allowed} == {
        (t, p) for t in ("stored_events", "ledger_decisions") for p in ("SELECT", "INSERT")
    }
    # The owner may change the table's rights, but the triggers still refuse it the change itself.
    with roles.connect(roles.owner) as conn, pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        conn.execute(f"DELETE FROM {s}.stored_events")


def test_the_lock_function_is_not_public(
    roles: Roles, monkeypatch: pytest.MonkeyPatch, postgres_server: PostgresServer
) -> None:
    """Any role may be given USAGE on the schema (to read it): it may not take the writers' lock."""
    import psycopg

    set_up_as_documented(roles, monkeypatch)
    stranger = f"ledger_stranger_{uuid.uuid4().hex[:8]}"
    with roles.connect(roles.owner) as conn:
        conn.execute(f'GRANT USAGE ON SCHEMA "{roles.schema}" TO PUBLIC')
    admin = postgres_server.conn
    try:
        admin.execute(f'CREATE ROLE "{stranger}" LOGIN')
        with roles.connect(stranger) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(f'SELECT "{roles.schema}".stored_events_lock()')
    finally:
        admin.execute(f'DROP OWNED BY "{stranger}"')
        admin.execute(f'DROP ROLE IF EXISTS "{stranger}"')


def test_the_writer_must_not_try_to_create_the_owners_tables(roles: Roles, monkeypatch: pytest.MonkeyPatch) -> None:
    set_up_as_documented(roles, monkeypatch)
    monkeypatch.delenv("LEDGER_CREATE_TABLE", raising=False)
    monkeypatch.delenv("CREATE_TABLE", raising=False)
    result = run_cli(["log"], roles.url(roles.writer))
    assert result.exit_code == 6
    assert "Traceback" not in result.stderr
    assert "must be owner of" in result.stderr


# --- passwords --------------------------------------------------------------------------------

SECRET = "s3cr3t-Pa55"


def _cli(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", "import cli; cli.main()", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_a_password_is_never_printed(roles: Roles, postgres_server: PostgresServer) -> None:
    """Real processes: a refused connection, an unknown role, a broken URL, a URL in LEDGER_DB,
    and `init`, which prints the ledger's URL, on a server that accepts any password (trust)."""
    unknown = f"nobody_{uuid.uuid4().hex[:8]}"
    failing = {
        "refused": _cli(["--db", f"postgresql://u:{SECRET}@127.0.0.1:1/x", "log"]),
        "unknown role": _cli(["--db", f"postgresql://{unknown}:{SECRET}@{HOST}:{PORT}/{DBNAME}", "log"]),
        "port out of range": _cli(["--db", f"postgresql://u:{SECRET}@{HOST}:99999/x", "log"]),
        "broken": _cli(["--db", f"postgresql://u:{SECRET}@[::1/x", "log"]),
        "in LEDGER_DB": _cli(["log"], {"LEDGER_DB": f"postgresql://u:{SECRET}@127.0.0.1:1/x"}),
        "@ in the password": _cli(["--db", f"postgresql://u:a@{SECRET}@127.0.0.1:99999/x", "log"]),
    }
    working = _cli(["--db", roles.url(PG_SETTINGS["user"], SECRET), "init"])
    for what, proc in [*failing.items(), ("init", working)]:
        out, err = proc.communicate(timeout=120)
        assert SECRET not in out + err, f"{what}: the password was printed:\n{out}{err}"
        assert "Traceback" not in err, f"{what}:\n{err}"
        if what == "init":
            assert proc.returncode == 0, err
            assert f"{PG_SETTINGS['user']}:***@" in err, err
        else:
            assert proc.returncode in (5, 6), f"{what}: exit {proc.returncode}\n{err}"
            assert err.startswith("Error: "), f"{what}:\n{err}"


passwords = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\n\r\x00"), max_size=40).map(
    lambda p: "ʘ" + p  # a mark no URL or message holds otherwise, then anything
)


@settings(max_examples=300)
@given(
    password=passwords,
    user=st.sampled_from(["u", "ledger_writer", "张三"]),
    rest=st.sampled_from(
        ["127.0.0.1:5432/test", "db.example/medtech?schema=audit", "[::1]:5432/x", "h:99999/x", "[::1/x", "h:port/x"]
    ),
)
def test_redact_and_url_errors_hide_any_password(password: str, user: str, rest: str) -> None:
    url = f"postgresql://{user}:{password}@{rest}"
    assert redact(url) == f"postgresql://{user}:***@{rest}"
    try:
        env = database_env(url)
    except ConfigurationError as e:
        assert password not in str(e)
    else:
        assert env["POSTGRES_DBNAME"]
