"""The endpoints: each reads its parameters, asks the same query code as the CLI, and answers
JSON (or JSON Lines, or a signed note) with an ETag. ``create_app`` builds the ASGI app.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ledger import canonical, integrity
from ledger.application import LedgerApplication
from ledger.errors import ConfigurationError, LedgerError, NotFound
from projections import queries
from projections.api.http import (
    DEFAULT_SIZE,
    JSON,
    MAX_SIZE,
    ApiError,
    Params,
    Stream,
    after_cursor,
    answer,
    cursor,
    error,
    etag,
    guarded,
    lines,
    not_modified,
)
from projections.api.schema import docs_page, openapi
from projections.api.store import open_readonly
from projections.views import Views

TIME = ("as_of", "known_at")
LOG_FILTERS = ("subject", "kind", "jurisdiction", "from", "to")
TRAIL_SUBJECTS = ("province", "institution", "physician", "technology")


class Api:
    """One ledger, opened read-only, and the handlers that answer from it."""

    def __init__(self, app: LedgerApplication, views: Views) -> None:
        self.app, self.views = app, views

    # --- what every answer needs ---------------------------------------------------------------

    def generation(self, *, checkpoints: bool = False) -> str:
        """What an answer depends on besides its query: the log's position and each view's
        tracked position (the follower moves them), and for proofs the checkpoints signed."""
        db = self.views.db
        with db.transaction(write=False) as c:
            tracked = c.execute(f"SELECT projection, position FROM {db.table('ledger_tracking')}").fetchall()
        position = self.app.position()
        found = f"{position or 0}|{sorted(tracked)}"
        if checkpoints:
            found += f"|{len(integrity.stored_checkpoints(self.app))}"
        return found

    def cached(self, request: Request, compute: Callable[[], Any], *, checkpoints: bool = False) -> Response:
        tag = etag(self.generation(checkpoints=checkpoints), request)
        if not_modified(request, tag):
            return Response(status_code=304, headers={"ETag": tag, "Cache-Control": "public, no-cache"})
        return answer(compute(), tag)

    def known_at(self, params: Params) -> int | None:
        """``known_at`` as the CLI reads ``--known-at`` (a position or an ISO timestamp),
        resolved here so that a wrong value is refused naming the parameter."""
        value = params.text("known_at")
        if value is None:
            return None
        try:
            return self.views.position_at(value)
        except (LedgerError, ValueError, OverflowError) as e:  # not a position or a timestamp
            raise ApiError(
                400, f"parameter 'known_at' takes a log position or an ISO timestamp, got {value!r}", param="known_at"
            ) from e

    def province(self, params: Params, name: str = "province") -> str | None:
        value = params.text(name)
        if value is not None and self.views.code_of_province(value) is None:
            known = ", ".join(j.code for j in self.views.jurisdictions)
            raise ApiError(400, f"parameter {name!r}: no plugin speaks for {value!r} (known: {known})", param=name)
        return value

    # --- views -------------------------------------------------------------------------------

    def catalog(self, request: Request) -> Response:
        p = Params(request, ("province", *TIME))
        province, as_of, known_at = self.province(p), p.day("as_of"), self.known_at(p)
        return self.cached(
            request,
            lambda: {
                "ok": True,
                "rows": queries.catalog(self.views, province, as_of=as_of, known_at=known_at).to_json(),
            },
        )

    def disclosure(self, request: Request) -> Response:
        p = Params(request, ("province", "institution", *TIME))
        province, institution = self.province(p), p.text("institution")
        as_of, known_at = p.day("as_of"), self.known_at(p)
        return self.cached(
            request,
            lambda: {
                "ok": True,
                **queries.disclosure(self.views, province, institution, as_of=as_of, known_at=known_at).to_json(),
            },
        )

    def trail(self, request: Request) -> Response:
        p = Params(request, (*TRAIL_SUBJECTS, "findings_only", *TIME))
        subject = {name: p.text(name) for name in TRAIL_SUBJECTS}
        self.province(p)
        if not any(subject.values()):
            raise ApiError(400, f"a trail needs one of the parameters {', '.join(TRAIL_SUBJECTS)}", param="institution")
        findings_only, as_of, known_at = p.flag("findings_only"), p.day("as_of"), self.known_at(p)

        def compute() -> dict[str, Any]:
            found = queries.trail(self.views, **subject, findings_only=findings_only, as_of=as_of, known_at=known_at)
            return {"ok": True, **found.to_json()}

        return self.cached(request, compute)

    # --- the log -------------------------------------------------------------------------------

    @staticmethod
    def _log_filters(p: Params) -> dict[str, Any]:
        """The filters as ``queries.log_rows`` takes them."""
        return {
            "subject": p.text("subject"),
            "kinds": p.texts("kind"),
            "jurisdiction": p.text("jurisdiction"),
            "date_from": p.day("from"),
            "date_to": p.day("to"),
        }

    def log(self, request: Request) -> Response:
        p = Params(request, (*LOG_FILTERS, "_size", "_next"), repeatable=("kind",))
        filters = self._log_filters(p)
        size = p.integer("_size", low=1, high=MAX_SIZE, default=DEFAULT_SIZE)
        after = after_cursor(p.text("_next"))
        assert size is not None

        def compute() -> dict[str, Any]:
            rows = list(queries.log_rows(self.app, **filters, from_position=after + 1, limit=size + 1))
            more = len(rows) > size
            rows = rows[:size]
            token = cursor(rows[-1]["position"]) if more else None
            next_url = str(request.url.include_query_params(_next=token)) if token else None
            return {"ok": True, "rows": rows, "next": token, "next_url": next_url}

        return self.cached(request, compute)

    def log_lines(self, request: Request) -> Stream:
        p = Params(request, LOG_FILTERS, repeatable=("kind",))
        filters = self._log_filters(p)
        return Stream(lines(queries.log_rows(self.app, **filters), canonical.dumps), etag(self.generation(), request))

    def export_lines(self, request: Request) -> Stream:
        Params(request, ())
        return Stream(lines(queries.export(self.app), lambda r: r.to_json()), etag(self.generation(), request))

    def decision(self, request: Request) -> Response:
        Params(request, ())
        decision_id = request.path_params["decision_id"]
        return self.cached(request, lambda: {"ok": True, "rows": queries.show(self.app, decision_id).to_json()})

    # --- proofs --------------------------------------------------------------------------------

    def proof(self, request: Request) -> Response:
        """The bundle ``ledger prove`` writes (``verify-proof`` checks it offline), against the
        latest signed checkpoint; none covering the decision yet is a 404 (the server signs nothing)."""
        Params(request, ())
        decision_id = request.path_params["decision_id"]

        def compute() -> bytes:
            position = self.app.decision(decision_id).position
            if position > integrity.tree_state(self.app).last_position:
                msg = f"no signed checkpoint covers {decision_id!r} (position {position}) yet; ask again later"
                raise NotFound(msg)
            return integrity.dump_bundle(integrity.prove(self.app, decision_id, sync_first=False)).encode()

        return self.cached(
            request,
            compute,
            checkpoints=True,
        )

    def checkpoints(self, request: Request) -> Response:
        Params(request, ())

        def compute() -> dict[str, Any]:
            return {"ok": True, "rows": queries.checkpoints(self.app)}

        return self.cached(request, compute, checkpoints=True)

    def checkpoint(self, request: Request) -> Response:
        """The latest signed checkpoint as its C2SP note, as transparency logs serve it."""
        Params(request, ())
        tag = etag(self.generation(checkpoints=True), request)
        if not_modified(request, tag):
            return Response(status_code=304, headers={"ETag": tag, "Cache-Control": "public, no-cache"})
        stored = integrity.stored_checkpoints(self.app)
        if not stored:
            raise NotFound("no checkpoint signed yet: the ledger's keeper runs `ledger checkpoint`")
        latest = max(stored, key=lambda cp: (cp.size, cp.seq))
        return answer(latest.note.encode(), tag, media_type="text/plain; charset=utf-8")

    def consistency(self, request: Request) -> Response:
        """RFC 9162 consistency proof between two tree sizes, hashes in base64 as in a bundle."""
        p = Params(request, ("old", "new"))
        old, new = p.integer("old"), p.integer("new")
        if old is None or new is None:
            raise ApiError(
                400,
                "a consistency proof needs the parameters 'old' and 'new' (tree sizes)",
                param="old" if old is None else "new",
            )
        if old > new:
            raise ApiError(400, f"parameter 'old' ({old}) is larger than 'new' ({new})", param="old")

        def compute() -> dict[str, Any]:
            size = integrity.tree_state(self.app).size
            if new > size:
                raise ApiError(404, f"parameter 'new': the tree has {size} leaves, not {new}", param="new")
            proof = integrity.consistency_proof(self.app, old, new, sync_first=False)
            return {
                "ok": True,
                "old_size": old,
                "new_size": new,
                "old_root": integrity.base64_hash(integrity.root_at(self.app, old, sync_first=False)),
                "new_root": integrity.base64_hash(integrity.root_at(self.app, new, sync_first=False)),
                "proof": [integrity.base64_hash(h) for h in proof],
            }

        return self.cached(request, compute, checkpoints=True)

    # --- plugins, and the API itself ---------------------------------------------------------------

    def plugins(self, request: Request) -> Response:
        Params(request, ())
        return self.cached(request, lambda: {"ok": True, "rows": queries.plugins(self.views.pm)})

    def reports(self, request: Request) -> Response:
        Params(request, ())
        rows = [
            {
                "name": r.name,
                "title": r.title,
                "article": r.article,
                "options": [
                    {"name": o.name, "help": o.help, "required": o.required, "default": o.default} for o in r.options
                ],
            }
            for r in queries.reports(self.views.pm).values()
        ]
        return self.cached(request, lambda: {"ok": True, "rows": rows})

    def report(self, request: Request) -> Response:
        """One report's main table (what ``ledger report NAME`` writes as CSV), its options as
        parameters; an option missing or a value the report refuses is a 400 naming it."""
        name = request.path_params["name"]
        report = queries.reports(self.views.pm).get(name)
        if report is None:
            raise NotFound(
                f"no report {name!r}; known reports: {', '.join(queries.reports(self.views.pm))} (see /reports)"
            )
        p = Params(request, [o.name for o in report.options])
        options: dict[str, str | None] = {}
        for option in report.options:
            options[option.name] = p.text(option.name) or option.default
            if option.required and options[option.name] is None:
                raise ApiError(400, f"report {name!r} needs the parameter {option.name!r}", param=option.name)

        def compute() -> dict[str, Any]:
            table = report.build(self.views, options)
            return {
                "ok": True,
                "title": table.title,
                "columns": [{"name": c.name, "key": c.key} for c in table.columns],
                "rows": [{c.key: row.get(c.key) for c in table.columns} for row in table.rows],
            }

        return self.cached(request, compute)

    def index(self, request: Request) -> Response:
        Params(request, ())
        return answer({"ok": True, "position": self.app.position(), "openapi": "/openapi.json", "docs": "/docs"})


def create_app(
    db: str | None = None, *, app: LedgerApplication | None = None, threads: int = 4, tiles: str | None = None
) -> Starlette:
    """The ASGI app serving the ledger at ``db`` (a SQLite file or a PostgreSQL URL), read-only;
    or, for tests, an ``app`` already open. ``threads``: queries that may run at once. ``tiles``: a
    folder ``ledger tiles`` writes, served as it is under ``/tlog/`` (C2SP tlog-tiles paths)."""
    if app is None:
        app, views = open_readonly(db)
    else:
        views = Views(app, catch_up=False)
    api = Api(app, views)
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="ledger-query")

    def route(path: str, handler: Callable[[Request], Any], name: str) -> Route:
        return Route(path, guarded(handler, pool), methods=["GET", "HEAD"], name=name)

    routes: list[BaseRoute] = [
        route("/", api.index, "index"),
        route("/catalog", api.catalog, "catalog"),
        route("/disclosure", api.disclosure, "disclosure"),
        route("/trail", api.trail, "trail"),
        route("/log", api.log, "log"),
        route("/log.jsonl", api.log_lines, "log_lines"),
        route("/export.jsonl", api.export_lines, "export"),
        route("/decisions/{decision_id:path}", api.decision, "decision"),
        route("/proof/{decision_id:path}", api.proof, "proof"),
        route("/checkpoints", api.checkpoints, "checkpoints"),
        route("/checkpoint", api.checkpoint, "checkpoint"),
        route("/proofs/consistency", api.consistency, "consistency"),
        route("/plugins", api.plugins, "plugins"),
        route("/reports", api.reports, "reports"),
        route("/reports/{name}", api.report, "report"),
        Route("/openapi.json", lambda r: Response(openapi_bytes, media_type=JSON), methods=["GET", "HEAD"]),
        Route("/docs", lambda r: HTMLResponse(docs_html), methods=["GET", "HEAD"]),
    ]
    if tiles is not None:
        if not Path(tiles, "checkpoint").is_file():
            raise ConfigurationError(f"no tlog-tiles in {tiles}: write them with `ledger tiles --out {tiles}`")
        routes.append(Mount("/tlog", app=StaticFiles(directory=tiles), name="tlog"))
    openapi_bytes = canonical.dumps(openapi()).encode()
    docs_html = docs_page()

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        message = {404: f"no endpoint {request.url.path!r}: see /openapi.json", 405: "the API only reads: GET or HEAD"}
        response = error(exc.status_code, message.get(exc.status_code, str(exc.detail)))
        response.headers.update(exc.headers or {})  # Allow, on a 405
        return response

    async def crash(request: Request, exc: Exception) -> Response:
        return error(500, "the server failed to answer; the failure is logged")

    return Starlette(routes=routes, exception_handlers={HTTPException: http_error, Exception: crash})
