"""The OpenAPI document is the contract: it is valid OpenAPI 3.1, names every route the app
serves, and a property-based run of it (schemathesis) against the app finds no 500, no answer
outside the document and no traceback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from api_helpers import Served, served
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.routing import Route
from starlette.testclient import TestClient

from projections.api import create_app
from projections.api.schema import openapi

__all__ = ["served"]


@pytest.fixture(scope="module")
def api(served: Served) -> Any:
    return create_app(served.read_db)


@pytest.fixture(scope="module")
def client(api: Any) -> Iterator[TestClient]:
    with TestClient(api) as c:
        yield c


def test_the_document_is_openapi_3_1_and_names_every_route(api: Any, client: TestClient) -> None:
    served_doc = client.get("/openapi.json").json()
    assert served_doc == json.loads(json.dumps(openapi()))
    assert served_doc["openapi"] == "3.1.0"
    loaded = schemathesis.openapi.from_dict(served_doc)  # refuses a document that is not OpenAPI
    assert len(list(loaded.get_all_operations())) == len(served_doc["paths"])
    routes = {r.path.replace(":path", "") for r in api.routes if isinstance(r, Route)}
    assert routes - {"/", "/openapi.json", "/docs"} == set(served_doc["paths"])


def test_the_page_is_local(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "/trail" in page.text
    assert "<script" not in page.text
    assert "http://" not in page.text
    assert "https://" not in page.text


@pytest.fixture(scope="module")
def api_schema(api: Any) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", api)


# Earned: 13 operations, each with valid and invalid parameters; schemathesis compiles an
# operation's strategy on its first draw, which hypothesis would otherwise take for slow generation;
# each example is a request answered from the database (no deadline on a shared machine).
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_app_keeps_to_its_document(api_schema: Any, data: st.DataObject) -> None:
    """No 500, every answer (its status, content type, headers and body) within the document,
    every invalid request refused with a 4xx, and no traceback in any body."""
    modes = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
    case = data.draw(st.one_of(*(api_schema.as_strategy(mode) for mode in modes)))
    # Not ``positive_data_acceptance``: a well-formed value may still name nothing the ledger
    # knows (a province no plugin speaks for, a cursor this API never gave), and that is a 400.
    response = case.call_and_validate(excluded_checks=[schemathesis.checks.positive_data_acceptance])
    assert "Traceback" not in response.text
    assert response.status_code < 500
