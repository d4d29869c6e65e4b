"""The API's conventions, in one place: parameters read and refused by name, answers as JSON
objects with ``ok``, errors as JSON with ``status`` and a message naming the parameter, ETags
from the ledger's position and the query, and the guard that turns every failure into one of them.

Datasette's conventions (``ok``, ``rows``, ``next``, ``next_url``, ``_size``) because the people
who will call this know them; everything else is plain HTTP caching (RFC 9110/9111).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ledger import canonical
from ledger.errors import ConfigurationError, DecisionError, LedgerError, NotFound
from projections.api.store import QUERY_SECONDS, describe_outage, is_outage
from projections.commandline import parse_day

log = logging.getLogger("ledger.serve")

JSON = "application/json"
JSON_LINES = "application/jsonl; charset=utf-8"
MAX_TEXT = 200
"""The longest value a parameter may have: ids, codes and names are far shorter."""
MAX_QUERY = 4096
"""The longest query string a request may have (the rest of a request is refused by uvicorn's limits)."""
DEFAULT_SIZE, MAX_SIZE = 100, 1000
"""Rows a page of the log has unless ``_size`` says otherwise, and the most it may ask for."""
RETRY_AFTER = "5"
CACHE = "public, no-cache"
"""A proxy may keep an answer but asks again (with ``If-None-Match``) before each use: it gets
304 until the ledger's position moves."""


class ApiError(Exception):
    """A request the API refuses: its HTTP status and a message naming what was wrong."""

    def __init__(self, status: int, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param = status, message, param


class Params:
    """A request's query parameters, each read once by name; one this endpoint does not take,
    or one given twice that may be given once, is refused rather than ignored."""

    def __init__(self, request: Request, allowed: Iterable[str], *, repeatable: Iterable[str] = ()) -> None:
        if len(request.url.query) > MAX_QUERY:
            raise ApiError(414, f"the query string is longer than {MAX_QUERY} characters")
        self.items = request.query_params.multi_items()
        allowed, repeatable = set(allowed), set(repeatable)
        seen: set[str] = set()
        for name, value in self.items:
            if name not in allowed:
                takes = ", ".join(sorted(allowed)) or "no parameters"
                raise ApiError(400, f"unknown parameter {name!r}: this endpoint takes {takes}", param=name)
            if name in seen and name not in repeatable:
                raise ApiError(400, f"parameter {name!r} is given more than once", param=name)
            seen.add(name)
            if len(value) > MAX_TEXT or "\x00" in value:
                raise ApiError(
                    400, f"parameter {name!r} is longer than {MAX_TEXT} characters or holds a NUL", param=name
                )

    def text(self, name: str) -> str | None:
        found = [v for k, v in self.items if k == name]
        if found and not found[0]:
            raise ApiError(400, f"parameter {name!r} is empty", param=name)
        return found[0] if found else None

    def texts(self, name: str) -> tuple[str, ...]:
        return tuple(v for k, v in self.items if k == name and v)

    def day(self, name: str) -> date | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            return parse_day(value, name)
        except DecisionError as e:
            raise ApiError(400, f"parameter {name!r}: {e.message}", param=name) from None

    def flag(self, name: str) -> bool:
        value = self.text(name)
        if value is None or value in ("0", "false"):
            return False
        if value in ("1", "true"):
            return True
        raise ApiError(400, f"parameter {name!r} takes true or false, got {value!r}", param=name)

    def integer(self, name: str, *, low: int = 0, high: int = 2**63 - 1, default: int | None = None) -> int | None:
        value = self.text(name)
        if value is None:
            return default
        if not (value.isascii() and value.isdigit()) or not low <= int(value) <= high:
            raise ApiError(
                400, f"parameter {name!r} takes a whole number from {low} to {high}, got {value!r}", param=name
            )
        return int(value)


def cursor(position: int) -> str:
    """An opaque ``next`` token: the position after which the next page starts."""
    return base64.urlsafe_b64encode(f"after:{position}".encode()).decode().rstrip("=")


def after_cursor(token: str | None) -> int:
    if token is None:
        return 0
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii")
        prefix, _, digits = text.partition(":")
        if prefix != "after" or not digits.isdigit() or len(digits) > 18:
            raise ValueError(text)
        return int(digits)
    except ValueError:
        raise ApiError(400, "parameter '_next' is not a cursor this API gave out", param="_next") from None


def etag(generation: str, request: Request) -> str:
    """A strong validator of one answer: the ledger's generation (log and views' positions) and
    the query, so it changes exactly when the answer may."""
    digest = hashlib.sha256(f"{generation}\n{request.url.path}\n{request.url.query}".encode()).hexdigest()
    return f'"{digest[:32]}"'


def not_modified(request: Request, tag: str) -> bool:
    header = request.headers.get("if-none-match")
    return header is not None and (header.strip() == "*" or tag in (t.strip() for t in header.split(",")))


def json_body(value: Any) -> bytes:
    """The bytes of an answer: ``canonical.dumps``, what the CLI's ``--format json`` prints."""
    return canonical.dumps(value).encode()


def answer(value: Any, tag: str | None = None, *, status: int = 200, media_type: str = JSON) -> Response:
    headers = {"Cache-Control": CACHE, "ETag": tag} if tag else {"Cache-Control": "no-store"}
    body = value if isinstance(value, bytes) else json_body(value)
    return Response(body, status_code=status, media_type=media_type, headers=headers)


def error(status: int, message: str, param: str | None = None) -> Response:
    body: dict[str, Any] = {"ok": False, "status": status, "error": message}
    if param is not None:
        body["param"] = param
    headers = {"Cache-Control": "no-store"}
    if status == 503:
        headers["Retry-After"] = RETRY_AFTER
    return Response(json_body(body), status_code=status, media_type=JSON, headers=headers)


def lines(rows: Iterable[Any], encode: Callable[[Any], str]) -> Iterator[bytes]:
    """JSON Lines in chunks of rows: constant memory whatever the log's length."""
    chunk: list[str] = []
    for row in rows:
        chunk.append(encode(row))
        if len(chunk) >= 256:
            yield ("\n".join(chunk) + "\n").encode()
            chunk = []
    if chunk:
        yield ("\n".join(chunk) + "\n").encode()


def failure(e: BaseException) -> Response:
    """Every failure as JSON: the caller's mistakes 4xx, an outage 503 with ``Retry-After``, and
    anything else 500 with no traceback (it is logged on the server)."""
    if isinstance(e, ApiError):
        return error(e.status, e.message, e.param)
    if isinstance(e, NotFound):
        return error(404, str(e))
    if isinstance(e, DecisionError | ConfigurationError):
        return error(400, str(e))
    if is_outage(e):
        log.warning("database outage: %s", e)
        return error(503, describe_outage(e))
    log.error("request failed", exc_info=e)
    message = str(e) if isinstance(e, LedgerError) else "the server failed to answer; the failure is logged"
    return error(500, message)


@dataclass
class Stream:
    """A JSON Lines answer: its chunks, produced lazily, and its ETag."""

    chunks: Iterator[bytes]
    tag: str


Handler = Callable[[Request], "Response | Stream"]


def guarded(handler: Handler, pool: ThreadPoolExecutor) -> Callable[[Request], Any]:
    """An endpoint: ``handler`` on one of ``pool``'s threads (the database calls block; a fixed
    few threads keep their connections and caches warm, where a thread per request would open
    and warm new ones), at most ``QUERY_SECONDS`` long including its wait for a thread, every
    failure answered by ``failure``. A stream's first chunk is read inside the guard, so that an
    outage before any byte is sent is a 503, not a cut stream."""

    async def endpoint(request: Request) -> Response:
        try:
            with anyio.fail_after(QUERY_SECONDS):
                result = await asyncio.wrap_future(pool.submit(_run, handler, request))
        except TimeoutError:
            return error(503, f"the query took longer than {QUERY_SECONDS:g} s; narrow it or try again later")
        except Exception as e:
            return failure(e)
        if isinstance(result, Response):
            return result
        first, rest = result
        headers = {"Cache-Control": CACHE, "ETag": rest.tag}
        return StreamingResponse(_chained(first, rest.chunks), media_type=JSON_LINES, headers=headers)

    return endpoint


def _run(handler: Handler, request: Request) -> Response | tuple[bytes, Stream]:
    result = handler(request)
    if isinstance(result, Stream):
        return next(result.chunks, b""), result
    return result


def _chained(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    try:
        yield from rest
    except Exception as e:  # headers are sent: the stream can only end; the log says why
        log.error("stream cut short", exc_info=e)
