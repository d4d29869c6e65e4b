"""``ledger serve``: the views, the log and the proofs over HTTP, read-only (ARCHITECTURE.md rule
12: a thin ASGI app over the CLI's query code; Starlette and uvicorn are the ``serve`` extra)."""

from projections.api.app import create_app

__all__ = ["create_app"]
