"""The API's contract: its OpenAPI 3.1 document, and a page of it for people, served locally.

Written out rather than generated: the answers are the CLI's JSON, so the schema describes those
rows directly (FastAPI would need a second, pydantic, description of the same rows to generate it).
The tests hold the server to this document (schemathesis) and the document to the CLI's output.
"""

from __future__ import annotations

import html
from typing import Any

from ledger.integrity.bundle import REQUIRED_FIELDS

TEXT: dict[str, Any] = {"type": "string"}
MAYBE_TEXT: dict[str, Any] = {"type": ["string", "null"]}
DAY: dict[str, Any] = {"type": "string", "format": "date"}
MAYBE_DAY: dict[str, Any] = {"type": ["string", "null"], "format": "date"}
INT: dict[str, Any] = {"type": "integer"}
TEXTS: dict[str, Any] = {"type": "array", "items": TEXT}


def _object(**properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(properties)}


def _rows(row: dict[str, Any], *, paged: bool = False) -> dict[str, Any]:
    body: dict[str, dict[str, Any]] = {"ok": {"const": True}, "rows": {"type": "array", "items": row}}
    if paged:
        body |= {"next": MAYBE_TEXT, "next_url": MAYBE_TEXT}
    return _object(**body)


CATALOG_ROW = _object(code=TEXT, name=TEXT, **{"class": TEXT}, version=MAYBE_TEXT, since=DAY, decision=TEXT)
FILING_ROW = _object(
    technology=TEXT,
    technology_name=TEXT,
    institution_name=TEXT,
    city=MAYBE_TEXT,
    status=TEXT,
    filed_on=MAYBE_DAY,
    authority=MAYBE_TEXT,
    notice_until=MAYBE_DAY,
)
BASE_ROW = _object(
    technology=TEXT,
    technology_name=TEXT,
    institution_name=TEXT,
    status=TEXT,
    enrolment_notice=MAYBE_DAY,
    filed_on=MAYBE_DAY,
)
TRAINEE_ROW = _object(
    technology=TEXT, technology_name=TEXT, physician_name=TEXT, institution_name=TEXT, certified_on=DAY
)
PRIVILEGE_ROW = _object(
    physician_name=TEXT, level={"type": ["integer", "null"]}, procedures=TEXTS, status=TEXT, since=DAY
)
CASE_ROW = _object(technology=TEXT, technology_name=TEXT, institution=TEXT, cases=INT)
ENTRY_ROW = _object(effective=DAY, position=INT, id=TEXT, kind=TEXT, by=TEXT, basis=MAYBE_TEXT, summary=TEXT)
FINDING_ROW = _object(effective=DAY, severity=TEXT, article=MAYBE_TEXT, rule=TEXT, message=TEXT, decisions=TEXTS)
LOG_ROW = _object(
    position=INT,
    recorded_at={"type": "string", "format": "date-time"},
    effective=DAY,
    id=TEXT,
    kind=TEXT,
    by=TEXT,
    basis=MAYBE_TEXT,
    subject=TEXT,
)
DECISION_ROW: dict[str, Any] = {
    "type": "object",
    "properties": {"id": TEXT, "kind": TEXT, "effective": DAY, "by": TEXT, "_position": INT, "_subject": TEXT},
    "required": ["id", "kind", "effective", "by", "_position", "_recorded_at", "_subject"],
    "description": "The decision as DECISIONS.md writes it, with its record time, position and subject.",
}
PLUGIN_ROW = _object(
    name=TEXT,
    version=MAYBE_TEXT,
    distribution=MAYBE_TEXT,
    hooks=TEXTS,
    contributes={"type": "object", "additionalProperties": TEXTS},
)
REPORT_ROW = _object(
    name=TEXT,
    title=TEXT,
    article=MAYBE_TEXT,
    options={
        "type": "array",
        "items": _object(name=TEXT, help=TEXT, required={"type": "boolean"}, default=MAYBE_TEXT),
    },
)
REPORT = _object(
    ok={"const": True},
    title=TEXT,
    columns={"type": "array", "items": _object(name=TEXT, key=TEXT)},
    rows={"type": "array", "items": {"type": "object"}},
)
CHECKPOINT_ROW = _object(seq=INT, size=INT, time=TEXT, origin=TEXT, root=TEXT, note=TEXT)
BUNDLE = {
    "type": "object",
    "description": "The bundle `ledger prove` writes; `ledger verify-proof` checks it offline.",
    "properties": {
        "format": TEXT,
        "decision": {"type": "object"},
        "position": INT,
        "recorded_at": TEXT,
        "subject": TEXT,
        "leaf_index": INT,
        "leaf": TEXT,
        "tree_size": INT,
        "inclusion_proof": TEXTS,
        "checkpoint": TEXT,
        "tlog_proof": TEXT,
    },
    "required": sorted(REQUIRED_FIELDS),
}
CONSISTENCY = _object(ok={"const": True}, old_size=INT, new_size=INT, old_root=TEXT, new_root=TEXT, proof=TEXTS)
ERROR = {
    "type": "object",
    "properties": {"ok": {"const": False}, "status": INT, "error": TEXT, "param": TEXT},
    "required": ["ok", "status", "error"],
}


def _param(
    name: str, description: str, *, schema: dict[str, Any] | None = None, where: str = "query"
) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "in": where, "description": description, "schema": schema or TEXT}
    if where == "path":
        out["required"] = True
    return out


TIME_PARAMS = [
    _param("as_of", "valid time: what was in force that day (YYYY-MM-DD; default today)", schema=DAY),
    _param(
        "known_at",
        "record time: as the ledger knew it then, a log position or an ISO timestamp (default: now)",
    ),
]
PROVINCE = _param("province", "a province code (hunan) or name (湖南省)")
LOG_PARAMS = [
    _param("subject", "e.g. institution:PDY00001, use:PDY00001|hunan:S14, technology:national:G01"),
    {**_param("kind", "a kind of decision (repeatable)"), "explode": True},
    _param("jurisdiction", "national, a province code (hunan) or name (湖南省)"),
    _param("from", "effective on or after YYYY-MM-DD", schema=DAY),
    _param("to", "effective on or before YYYY-MM-DD", schema=DAY),
]
ERRORS = {
    str(status): {"description": text, "content": {"application/json": {"schema": ERROR}}}
    for status, text in (
        (400, "a parameter is wrong; `param` names it"),
        (404, "no such decision, endpoint or proof"),
        (503, "the database is not answering (restart, outage) or the query ran too long; see Retry-After"),
    )
}


def _get(
    summary: str, params: list[dict[str, Any]], schema: dict[str, Any], media: str = "application/json"
) -> dict[str, Any]:
    ok = {
        "description": "the answer (ETag, Cache-Control; 304 on a matching If-None-Match)",
        "content": {media: {"schema": schema}},
    }
    return {
        "get": {
            "summary": summary,
            "parameters": params,
            "responses": {"200": ok, "304": {"description": "not modified"}, **ERRORS},
        }
    }


def openapi() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the API (served at ``/openapi.json``)."""
    decision_id = _param("decision_id", "the decision's id", where="path")
    disclosure = _object(
        ok={"const": True},
        filings={"type": "array", "items": FILING_ROW},
        cases={"type": "array", "items": CASE_ROW},
    )
    disclosure["properties"] |= {
        "training_bases": {"type": "array", "items": BASE_ROW},
        "trainees": {"type": "array", "items": TRAINEE_ROW},
        "privileges": {"type": "array", "items": PRIVILEGE_ROW},
    }
    trail = _object(
        ok={"const": True},
        entries={"type": "array", "items": ENTRY_ROW},
        findings={"type": "array", "items": FINDING_ROW},
    )
    paths = {
        "/catalog": _get(
            "The catalogue in force: national entries plus the province's own",
            [PROVINCE, *TIME_PARAMS],
            _rows(CATALOG_ROW),
        ),
        "/disclosure": _get(
            "What must be public (MTM-2018#24, #30, #40): filings, suspensions, training bases, trainees, "
            "or for one institution its technologies, physicians' privileges and cases",
            [PROVINCE, _param("institution", "one institution's 院务公开 (MTM-2018#24)"), *TIME_PARAMS],
            disclosure,
        ),
        "/trail": _get(
            "Every decision about a subject in effective-date order, with the findings of the rules",
            [
                PROVINCE,
                _param("institution", "an institution's code"),
                _param("physician", "a physician's licence number"),
                _param("technology", "<catalog>:<code>, e.g. hunan:S14"),
                _param(
                    "findings_only", "only the findings", schema={"type": "string", "enum": ["true", "false", "1", "0"]}
                ),
                *TIME_PARAMS,
            ],
            trail,
        ),
        "/log": _get(
            "The decisions in record order, filtered, a page at a time (follow `next_url`)",
            [
                *LOG_PARAMS,
                _param(
                    "_size",
                    "rows per page (1-1000, default 100)",
                    schema={"type": "integer", "minimum": 1, "maximum": 1000},
                ),
                _param("_next", "the cursor a previous page gave as `next`"),
            ],
            _rows(LOG_ROW, paged=True),
        ),
        "/log.jsonl": _get(
            "The filtered log as JSON Lines, streamed (one log row a line)", LOG_PARAMS, TEXT, "application/jsonl"
        ),
        "/export.jsonl": _get(
            "The whole log as a decision file (what `ledger export` writes), streamed", [], TEXT, "application/jsonl"
        ),
        "/decisions/{decision_id}": _get(
            "One decision, then the decisions that correct it", [decision_id], _rows(DECISION_ROW)
        ),
        "/proof/{decision_id}": _get(
            "An offline proof that the decision is in the signed log (C2SP tlog-proof and the decision)",
            [decision_id],
            BUNDLE,
        ),
        "/checkpoints": _get(
            "The checkpoints the ledger signed, oldest first, with their notes", [], _rows(CHECKPOINT_ROW)
        ),
        "/checkpoint": _get("The latest signed checkpoint (C2SP tlog-checkpoint note)", [], TEXT, "text/plain"),
        "/proofs/consistency": _get(
            "RFC 9162 proof that the tree of size `old` is a prefix of the tree of size `new`",
            [
                {**_param("old", "the smaller tree size", schema={"type": "integer", "minimum": 0}), "required": True},
                {**_param("new", "the larger tree size", schema={"type": "integer", "minimum": 0}), "required": True},
            ],
            CONSISTENCY,
        ),
        "/reports": _get("The reports (built-in and plugins'), with their options", [], _rows(REPORT_ROW)),
        "/reports/{name}": _get(
            "A report's main table (what `ledger report NAME` writes as CSV); its options are parameters",
            [_param("name", "the report's name (see /reports)", where="path")],
            REPORT,
        ),
        "/plugins": _get("Every plugin, its version, the hooks it implements and what it adds", [], _rows(PLUGIN_ROW)),
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "medtech-ledger",
            "version": _version(),
            "description": "A read-only API over an audit ledger of medical-technology regulation in China: "
            "the CLI's views as JSON, on both time axes (as_of, known_at), with proofs. See docs/api.md.",
        },
        "paths": paths,
    }


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("medtech-ledger")
    except PackageNotFoundError:  # pragma: no cover - run from a checkout without installing
        return "0"


def docs_page() -> str:
    """The document as one page for people: every endpoint, its parameters and what it answers;
    no script and nothing fetched from elsewhere."""
    parts = [
        "<!doctype html><meta charset=utf-8><title>medtech-ledger API</title>",
        "<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em}"
        "code{background:#f3f3f3;padding:0 .2em}td{padding:.1em .6em;vertical-align:top}</style>",
        "<h1>medtech-ledger API</h1><p>Read-only. Machine-readable contract: <a href=/openapi.json>/openapi.json</a>. "
        "Every answer carries an ETag; errors are JSON with <code>status</code>, <code>error</code> and "
        "<code>param</code>.</p>",
    ]
    for path, item in openapi()["paths"].items():
        op = item["get"]
        parts.append(f"<h2><code>GET {html.escape(path)}</code></h2><p>{html.escape(op['summary'])}</p>")
        if op["parameters"]:
            rows = "".join(
                f"<tr><td><code>{html.escape(p['name'])}</code></td><td>{html.escape(p['description'])}</td></tr>"
                for p in op["parameters"]
            )
            parts.append(f"<table>{rows}</table>")
    return "\n".join(parts) + "\n"
