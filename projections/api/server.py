"""Running the app: uvicorn in this process or in ``workers`` processes, each opening the ledger
read-only itself (a connection is never shared across processes)."""

from __future__ import annotations

import os

from starlette.applications import Starlette

from ledger.application import DB_ENV
from ledger.errors import ConfigurationError
from projections.api.store import open_readonly

TILES_ENV = "LEDGER_SERVE_TILES"
"""How ``ledger serve --tiles`` reaches each worker process (uvicorn starts them from a factory)."""

MAX_CONCURRENCY = 256
"""Connections served at once per worker; beyond, uvicorn answers 503 at once instead of queueing."""
MAX_HEADER_BYTES = 16 * 1024
"""The largest request head (line and headers) read; a GET has no body, and one sent is refused."""


def factory() -> Starlette:
    """The app of one worker process: the ledger named in the environment, opened read-only."""
    from projections.api.app import create_app

    return create_app(os.environ.get(DB_ENV), tiles=os.environ.get(TILES_ENV))


def run(db: str | None, host: str, port: int, workers: int, tiles: str | None = None) -> None:
    """Serve until interrupted. The ledger is opened once here first, so that a wrong ``--db``
    is a clear error before any worker starts."""
    try:
        import uvicorn
    except ImportError:  # pragma: no cover - the serve extra is not installed
        msg = "`ledger serve` needs the serve extra: pip install 'medtech-ledger[serve]'"
        raise ConfigurationError(msg) from None
    app, _ = open_readonly(db)
    app.close()
    if db is not None:
        os.environ[DB_ENV] = db
    if tiles is not None:
        os.environ[TILES_ENV] = tiles
    uvicorn.run(
        "projections.api.server:factory",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        limit_concurrency=MAX_CONCURRENCY,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        server_header=False,
        log_level="warning",
    )
