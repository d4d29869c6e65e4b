"""``ledger serve``'s app through httpx (Starlette's ``TestClient`` is an ``httpx.Client`` on the
ASGI app): every answer equals the CLI's ``--format json`` for the same question on both time
axes, the conventions (errors naming the parameter, cursors, ETags, streams) hold, and the server
cannot write (docs/api.md)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_helpers import Served, served
from conftest import run_cli
from starlette.testclient import TestClient

from ledger import merkle
from ledger.errors import ConfigurationError
from ledger.integrity import load_verifier_keys, verify_proof
from projections.api import create_app

__all__ = ["served"]

TIME_AXES: list[tuple[dict[str, str], list[str]]] = [
    ({}, []),
    ({"as_of": "2019-06-01"}, ["--as-of", "2019-06-01"]),
    ({"known_at": "150"}, ["--known-at", "150"]),
    ({"as_of": "2021-01-01", "known_at": "200"}, ["--as-of", "2021-01-01", "--known-at", "200"]),
]
"""Valid time, record time as a position, both; record time as a timestamp is added per ledger."""


@pytest.fixture(scope="module")
def client(served: Served) -> Iterator[httpx.Client]:
    app = create_app(served.read_db)
    with TestClient(app, base_url="http://ledger") as c:  # type: ignore[arg-type]
        yield c


def axes(served: Served) -> list[tuple[dict[str, str], list[str]]]:
    stamp = served.ids["timestamp"]
    return [*TIME_AXES, ({"known_at": stamp}, ["--known-at", stamp])]


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body.pop("ok") is True
    return body


VIEW_CASES = [
    ("/catalog", {}, ["catalog"]),
    ("/catalog", {"province": "hunan"}, ["catalog", "--province", "hunan"]),
    ("/disclosure", {"province": "hunan"}, ["disclosure", "--province", "hunan"]),
    ("/disclosure", {"province": "重庆市"}, ["disclosure", "--province", "重庆市"]),
    ("/disclosure", {}, ["disclosure"]),
    (
        "/disclosure",
        {"institution": "{chongqing_institution}"},
        ["disclosure", "--institution", "{chongqing_institution}"],
    ),
    ("/trail", {"institution": "{institution}"}, ["trail", "--institution", "{institution}"]),
    (
        "/trail",
        {"institution": "{institution}", "findings_only": "true"},
        ["trail", "--institution", "{institution}", "--findings-only"],
    ),
    ("/trail", {"physician": "{physician}"}, ["trail", "--physician", "{physician}"]),
    ("/trail", {"technology": "hunan:S14"}, ["trail", "--technology", "hunan:S14"]),
    ("/trail", {"province": "hunan"}, ["trail", "--province", "hunan"]),
]


@pytest.mark.parametrize(("path", "params", "args"), VIEW_CASES)
def test_every_view_equals_the_cli_on_both_time_axes(
    client: httpx.Client, served: Served, path: str, params: dict[str, str], args: list[str]
) -> None:
    params = {k: v.format(**served.ids) for k, v in params.items()}
    args = [a.format(**served.ids) for a in args]
    seen = set()
    for time_params, time_args in axes(served):
        body = ok(client.get(path, params={**params, **time_params}))
        cli = served.cli_json(*args, *time_args, "--format", "json")
        assert (body["rows"] if path == "/catalog" else body) == cli
        seen.add(json.dumps(cli, sort_keys=True))
    if path != "/catalog" or params:
        assert len(seen) > 1, "the time axes changed nothing: the cases do not test them"


def test_the_log_pages_equal_the_cli(client: httpx.Client, served: Served) -> None:
    everything = served.cli_json("log", "--format", "json")
    first = ok(client.get("/log", params={"_size": "7"}))
    assert first["rows"] == served.cli_json("log", "--limit", "7", "--format", "json")
    rows, url, pages = [], "/log?_size=50", 0
    while url:
        page = ok(client.get(url))
        rows += page["rows"]
        url, pages = page["next_url"], pages + 1
        assert (page["next"] is None) == (url is None)
    assert rows == everything
    assert pages == -(-len(everything) // 50)
    filtered = {"jurisdiction": "hunan", "kind": ["filing.completed", "use.stopped"], "from": "2019-01-01"}
    cli_args = [
        "--jurisdiction",
        "hunan",
        "--kind",
        "filing.completed",
        "--kind",
        "use.stopped",
        "--from",
        "2019-01-01",
    ]
    assert ok(client.get("/log", params={**filtered, "_size": "1000"}))["rows"] == served.cli_json(
        "log", *cli_args, "--format", "json"
    )
    streamed = client.get("/log.jsonl", params=filtered)
    assert streamed.headers["content-type"].startswith("application/jsonl")
    assert [json.loads(line) for line in streamed.text.splitlines()] == served.cli_json(
        "log", *cli_args, "--format", "json"
    )


def test_a_decision_and_its_corrections_equal_show(client: httpx.Client, served: Served) -> None:
    for key in ("decision", "corrected"):
        decision_id = served.ids[key]
        assert ok(client.get(f"/decisions/{decision_id}"))["rows"] == served.cli_json(
            "show", decision_id, "--format", "json"
        )
    assert len(ok(client.get(f"/decisions/{served.ids['corrected']}"))["rows"]) > 1
    missing = client.get("/decisions/no-such-decision")
    assert missing.status_code == 404
    assert "no-such-decision" in missing.json()["error"]


def test_plugins_and_checkpoints_equal_the_cli(client: httpx.Client, served: Served) -> None:
    assert ok(client.get("/plugins"))["rows"] == served.cli_json("plugins", "--format", "json")
    assert ok(client.get("/checkpoints"))["rows"] == served.cli_json("checkpoints", "--format", "json")
    note = client.get("/checkpoint")
    assert note.headers["content-type"].startswith("text/plain")
    assert note.text == served.cli_json("checkpoints", "--format", "json")[-1]["note"]


def test_the_export_stream_is_the_cli_export(client: httpx.Client, served: Served) -> None:
    exported = run_cli(["export"], served.db).stdout
    assert client.get("/export.jsonl").text == exported


def test_a_proof_is_prove_s_bundle_and_verifies_offline(client: httpx.Client, served: Served, tmp_path: Path) -> None:
    decision_id = served.ids["decision"]
    response = client.get(f"/proof/{decision_id}")
    assert response.status_code == 200, response.text
    assert response.text == run_cli(["prove", decision_id, "-o", "-"], served.db).stdout
    path = tmp_path / "proof.json"
    path.write_bytes(response.content)
    checked = run_cli(["verify-proof", str(path), "--key", f"{served.key}.pub"], served.db)
    assert checked.exit_code == 0, checked.stderr
    keys = load_verifier_keys([f"{served.key}.pub"])
    assert verify_proof(response.json(), keys).ok
    tampered = response.json() | {"position": response.json()["position"] + 1}
    assert not verify_proof(tampered, keys).ok


def test_a_consistency_proof_verifies_against_the_roots(client: httpx.Client) -> None:
    body = ok(client.get("/proofs/consistency", params={"old": "37", "new": "200"}))
    import base64

    proof = [base64.b64decode(h) for h in body["proof"]]
    old_root, new_root = base64.b64decode(body["old_root"]), base64.b64decode(body["new_root"])
    assert merkle.verify_consistency(37, 200, old_root, new_root, proof)
    assert not merkle.verify_consistency(37, 200, new_root, old_root, proof)
    for params, param in (({"old": "5"}, "new"), ({"old": "9", "new": "3"}, "old"), ({"old": "x", "new": "3"}, "old")):
        refused = client.get("/proofs/consistency", params=params)
        assert refused.status_code == 400
        assert refused.json()["param"] == param
    assert client.get("/proofs/consistency", params={"old": "1", "new": "100000"}).status_code == 404


@pytest.mark.parametrize(
    ("path", "param", "words"),
    [
        ("/catalog?as_of=2020-13-01", "as_of", "not a real date"),
        ("/catalog?as_of=9999-12-31", "as_of", "end of time"),
        ("/catalog?known_at=yesterday", "known_at", "position or an ISO timestamp"),
        ("/catalog?province=atlantis", "province", "atlantis"),
        ("/catalog?provinse=hunan", "provinse", "unknown parameter"),
        ("/catalog?province=hunan&province=hunan", "province", "more than once"),
        ("/trail", "institution", "needs one of"),
        ("/trail?institution=x&findings_only=maybe", "findings_only", "true or false"),
        ("/log?_size=0", "_size", "1 to 1000"),
        ("/log?_size=1001", "_size", "1 to 1000"),
        ("/log?_next=garbage", "_next", "cursor"),
        ("/log?from=2019-02-30", "from", "not a real date"),
        ("/decisions/x?as_of=2020-01-01", "as_of", "unknown parameter"),
    ],
)
def test_a_bad_request_is_a_400_naming_the_parameter(client: httpx.Client, path: str, param: str, words: str) -> None:
    response = client.get(path)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["ok"] is False
    assert body["status"] == 400
    assert body["param"] == param
    assert words in body["error"]
    assert response.headers["cache-control"] == "no-store"


def test_what_is_not_an_endpoint_or_a_read_is_refused_as_json(client: httpx.Client) -> None:
    assert client.get("/nowhere").json() == {
        "ok": False,
        "status": 404,
        "error": "no endpoint '/nowhere': see /openapi.json",
    }
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        response = client.request(method, "/catalog", content=b"{}")
        assert response.status_code == 405
        assert response.json()["status"] == 405
        assert "GET" in response.headers["allow"]
    assert client.get("/catalog?province=" + "x" * 300).status_code == 400
    assert client.get("/log?" + "&".join(f"kind=k{i}" for i in range(600))).status_code == 414


def test_etags_follow_the_ledger_and_the_query(client: httpx.Client) -> None:
    first = client.get("/disclosure", params={"province": "hunan"})
    tag = first.headers["etag"]
    assert first.headers["cache-control"] == "public, no-cache"
    again = client.get("/disclosure", params={"province": "hunan"}, headers={"If-None-Match": tag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == tag
    other = client.get("/disclosure", params={"province": "hunan", "as_of": "2019-06-01"})
    assert other.headers["etag"] != tag
    assert client.get("/disclosure", params={"province": "hunan"}, headers={"If-None-Match": '"x"'}).status_code == 200


def test_new_decisions_change_the_etag(tmp_path: Path) -> None:
    db = str(tmp_path / "ledger.sqlite")
    assert run_cli(["init"], db).exit_code == 0
    with TestClient(create_app(db), base_url="http://l") as c:
        before = c.get("/catalog").headers["etag"]
        assert c.get("/catalog").headers["etag"] == before
        assert run_cli(["demo"], db).exit_code == 0  # records the demo history, and catches the views up
        after = c.get("/catalog", headers={"If-None-Match": before})
        assert after.status_code == 200
        assert after.headers["etag"] != before


def test_the_server_cannot_write_the_sqlite_file(tmp_path: Path) -> None:
    db = tmp_path / "ledger.sqlite"
    assert run_cli(["demo"], str(db)).exit_code == 0
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    digest = hashlib.sha256(db.read_bytes()).hexdigest()
    app = create_app(str(db))
    with TestClient(app, base_url="http://l") as c:  # type: ignore[arg-type]
        assert c.get("/disclosure?province=hunan").status_code == 200
        assert c.get("/log.jsonl").status_code == 200
    from projections.api.store import open_readonly

    ledger, views = open_readonly(str(db))
    with pytest.raises(Exception, match="readonly"), views.db.transaction() as cursor:
        cursor.execute("CREATE TABLE intruder (x INTEGER)")
    ledger.close()
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest


def test_a_ledger_that_is_not_there_is_refused(tmp_path: Path) -> None:
    from ledger.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="ledger init"):
        create_app(str(tmp_path / "absent.sqlite"))
    assert not (tmp_path / "absent.sqlite").exists()


def test_a_query_too_long_and_an_outage_are_503_with_retry_after(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from eventsourcing.persistence import OperationalError

    from projections.api import http
    from projections.views import Views

    app = create_app(served.read_db)
    with TestClient(app) as c:
        monkeypatch.setattr(http, "QUERY_SECONDS", 0.05)
        monkeypatch.setattr(Views, "catalog", lambda *a, **k: time.sleep(0.5) or [])
        slow = c.get("/catalog")
        assert slow.status_code == 503
        assert slow.headers["retry-after"] == "5"
        assert "longer than" in slow.json()["error"]
        monkeypatch.setattr(http, "QUERY_SECONDS", 10.0)

        def down(*args: Any, **kwargs: Any) -> Any:
            raise OperationalError("connection refused")

        monkeypatch.setattr(Views, "catalog", down)
        outage = c.get("/catalog")
        assert outage.status_code == 503
        assert outage.json()["error"].startswith("the ledger's database is not answering")
        monkeypatch.setattr(Views, "catalog", lambda *a, **k: 1 / 0)
        crash = c.get("/catalog")
        assert crash.status_code == 500
        assert crash.json() == {
            "ok": False,
            "status": 500,
            "error": "the server failed to answer; the failure is logged",
        }
        assert "Traceback" not in crash.text


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("hunan-filing-summary", {"half": "2019H1"}),
        ("hunan-filing-summary", {"half": "2019H2", "city": "长沙市"}),
        ("filings-over-time", {"province": "hunan"}),
        ("filings-over-time", {"province": "chongqing", "as-of": "2022-01-01"}),
    ],
)
def test_a_report_equals_the_cli_s_csv(client: TestClient, served: Served, name: str, params: dict[str, str]) -> None:
    import csv
    import io

    from projections.output import cell_text, safe_csv

    body = ok(client.get(f"/reports/{name}", params=params))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([safe_csv(c["name"]) for c in body["columns"]])
    for row in body["rows"]:
        writer.writerow([safe_csv(cell_text(row[c["key"]])) for c in body["columns"]])
    args = [a for k, v in params.items() for a in (f"--{k}", v)]
    printed = run_cli(["report", name, *args], served.db)
    assert printed.exit_code == 0, printed.stderr
    assert out.getvalue() == printed.stdout
    assert body["rows"]


def test_the_reports_are_the_cli_s(client: TestClient) -> None:
    from click.testing import CliRunner

    from cli import cli
    from ledger.plugins import plugin_manager
    from projections import queries

    listed = ok(client.get("/reports"))["rows"]
    names = list(queries.reports(plugin_manager()))
    assert [r["name"] for r in listed] == names
    assert all(name in CliRunner().invoke(cli, ["report", "--help"]).output for name in names)
    missing = client.get("/reports/hunan-filing-summary")
    assert missing.status_code == 400
    assert missing.json()["param"] == "half"
    assert client.get("/reports/no-such-report").status_code == 404


def test_the_tiles_are_served_under_tlog(served: Served, tmp_path: Path) -> None:
    """``ledger serve --tiles``: the folder ``ledger tiles`` writes, at the same tlog-tiles paths,
    from which a reader gets back the signed root (C2SP tlog-tiles)."""
    from ledger.checkpoints import parse_checkpoint
    from ledger.cosignature import note_parts
    from ledger.tiles import TileReader

    folder = tmp_path / "log"
    assert run_cli(["tiles", "--out", str(folder)], served.db).exit_code == 0
    with TestClient(create_app(served.read_db, tiles=str(folder)), base_url="http://ledger") as c:  # type: ignore[arg-type]
        note = c.get("/tlog/checkpoint")
        assert note.status_code == 200 and note.content == (folder / "checkpoint").read_bytes()
        checkpoint = parse_checkpoint(note_parts(note.content)[0])

        def fetch(path: str) -> bytes:
            got = c.get(f"/tlog/{path}")
            assert got.status_code == 200, path
            return got.content

        assert TileReader(fetch, checkpoint.size).root() == checkpoint.root
        assert c.get("/tlog/tile/9/999").status_code == 404
    with pytest.raises(ConfigurationError, match="no tlog-tiles"):
        create_app(served.read_db, tiles=str(tmp_path))
