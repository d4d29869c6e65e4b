"""Shared fixtures: a fresh ledger on SQLite and on PostgreSQL, and a CLI runner.

``ledger_url`` (and ``app`` built on it) is parametrized over both databases. The PostgreSQL
parameter is marked ``postgres``; each test gets a schema of its own in database ``test`` at
127.0.0.1:5432 (user ``postgres``, trust auth), created before and dropped after. When no server
answers within ~2 s, the PostgreSQL parameter is skipped with the reason, once per session.
``LEDGER_TEST_POSTGRES`` overrides the server's URL (without ``?schema=``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from click.testing import CliRunner, Result

from ledger.application import LedgerApplication

PG_URL = os.environ.get("LEDGER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
_pg = urlparse(PG_URL)
PG_SETTINGS: dict[str, Any] = {
    "dbname": _pg.path.lstrip("/") or "test",
    "host": _pg.hostname or "127.0.0.1",
    "port": _pg.port or 5432,
    "user": _pg.username or "postgres",
    "password": _pg.password or "",
}
"""The test server's settings, as ``eventsourcing.postgres.PostgresDatastore`` takes them."""
PG_WHERE = f"{PG_SETTINGS['host']}:{PG_SETTINGS['port']}"
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(autouse=True)
def _whole_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables as a pipe gets them (whole), whatever width the runner exports (xdist sets COLUMNS=80)."""
    monkeypatch.delenv("COLUMNS", raising=False)


class PostgresServer:
    """Creates and drops throwaway schemas on the test server through one admin connection."""

    def __init__(self) -> None:
        import psycopg

        self._psycopg = psycopg
        self.conn = psycopg.connect(PG_URL, connect_timeout=2, autocommit=True)
        # Never hang a test run on a lock held by a connection a test forgot to close.
        self.conn.execute("SET lock_timeout = '10s'")

    def create_schema(self) -> str:
        from psycopg.sql import SQL, Identifier

        name = f"t_{uuid.uuid4().hex[:16]}"
        self.conn.execute(SQL("CREATE SCHEMA {}").format(Identifier(name)))
        return name

    def drop_schema(self, name: str) -> None:
        from psycopg.sql import SQL, Identifier

        self.conn.execute(SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(Identifier(name)))

    def url(self, schema: str) -> str:
        return f"{PG_URL}?schema={schema}"

    def connect(self) -> Any:
        """A new autocommit connection, for tests that talk to the tables directly."""
        return self._psycopg.connect(PG_URL, connect_timeout=2, autocommit=True)

    def close(self) -> None:
        self.conn.close()


def connect_postgres() -> PostgresServer:
    """The test server, or ``pytest.skip`` with the reason it did not answer."""
    try:
        import psycopg
    except ImportError as e:  # pragma: no cover - the test extra installs it
        pytest.skip(f"PostgreSQL not reachable at {PG_WHERE}: psycopg is not installed ({e})")
    try:
        return PostgresServer()
    except psycopg.Error as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        pytest.skip(f"PostgreSQL not reachable at {PG_WHERE}: {reason}")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One admin connection per session (per xdist worker); skips, once, when there is no server."""
    server = connect_postgres()
    yield server
    server.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """``sqlite`` or ``postgres``."""
    name: str = request.param
    return name


@pytest.fixture
def new_ledger_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[[], str]]:
    """A factory of fresh, empty ledger URLs on ``backend`` (for tests, like hypothesis properties,
    that need several ledgers in one test). Every schema it creates is dropped at teardown."""
    made: list[str] = []
    if backend == "sqlite":

        def new_sqlite() -> str:
            path = tmp_path / f"ledger-{len(made)}.sqlite"
            made.append(str(path))
            return str(path)

        yield new_sqlite
        return

    server: PostgresServer = request.getfixturevalue("postgres_server")

    def new_postgres() -> str:
        schema = server.create_schema()
        made.append(schema)
        return server.url(schema)

    try:
        yield new_postgres
    finally:
        for schema in made:
            server.drop_schema(schema)


@pytest.fixture
def ledger_url(new_ledger_url: Callable[[], str]) -> str:
    """A fresh, empty ledger: a SQLite file in ``tmp_path``, or a PostgreSQL schema of its own."""
    return new_ledger_url()


@pytest.fixture
def app(ledger_url: str) -> Iterator[LedgerApplication]:
    """The ledger application on ``ledger_url``, closed after the test."""
    application = LedgerApplication.open(ledger_url)
    try:
        yield application
    finally:
        application.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return str(tmp_path / "ledger.sqlite")


@pytest.fixture
def sqlite_app(sqlite_url: str) -> Iterator[LedgerApplication]:
    """A ledger on a SQLite file, for tests that do not depend on the database."""
    application = LedgerApplication.open(sqlite_url)
    try:
        yield application
    finally:
        application.close()


def run_cli(args: Sequence[str], db: str, input: str | bytes | None = None) -> Result:
    """Invoke ``ledger --db DB ARGS…`` in-process; stdout and stderr are kept apart."""
    from cli import cli

    return CliRunner().invoke(cli, ["--db", db, *args], input=input, catch_exceptions=False)


@pytest.fixture
def cli_runner() -> Callable[..., Result]:
    """``run_cli`` as a fixture, for tests that prefer fixtures to imports."""
    return run_cli
