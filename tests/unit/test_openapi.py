"""The OpenAPI document in the package matches the routes the app serves, and is valid OpenAPI 3.1."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import falcon
import falcon.inspect
import pytest
from falcon.testing import TestClient
from openapi_spec_validator import validate

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# Calls that never touch the storage, so that they cannot answer 503.
STORAGE_FREE = {("get", "/"), ("get", "/healthz"), ("get", "/openapi.json")}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    text = resources.files("perfmon.entrypoints.http").joinpath("openapi.json").read_text()
    return json.loads(text)


def _served_operations(app: falcon.App) -> set[tuple[str, str]]:
    """(method, path) of every responder the app's routes define; Falcon's own (OPTIONS, 405s) left out."""
    return {
        (method.method.lower(), route.path)
        for route in falcon.inspect.inspect_app(app).routes
        for method in route.methods
        if not method.internal
    }


def _documented_operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method, path)
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def _follow(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """The node itself, or what its local `$ref` points to."""
    while "$ref" in node:
        target: Any = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _responses(document: dict[str, Any], method: str, path: str) -> dict[str, dict[str, Any]]:
    responses = document["paths"][path][method]["responses"]
    return {status: _follow(document, response) for status, response in responses.items()}


def test_the_document_describes_exactly_the_routes_and_methods_the_app_serves(
    client: TestClient, document: dict[str, Any]
) -> None:
    served, documented = _served_operations(client.app), _documented_operations(document)
    assert served - documented == set(), "served but not documented"
    assert documented - served == set(), "documented but not served"


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1.")
    validate(document)  # raises, saying where, on a broken document or a dangling $ref


def test_every_error_answer_is_the_json_reason_object_and_every_400_requires_a_detail(
    document: dict[str, Any],
) -> None:
    for method, path in _documented_operations(document):
        for status, response in _responses(document, method, path).items():
            if int(status) < 400:
                continue
            assert list(response["content"]) == ["application/json"], (method, path, status)
            schema = response["content"]["application/json"]["schema"]
            expected = "BadRequestError" if status == "400" else "Error"
            assert schema == {"$ref": f"#/components/schemas/{expected}"}, (method, path, status)
    error = _follow(document, {"$ref": "#/components/schemas/Error"})
    assert error["required"] == ["reason"]
    assert set(error["properties"]) == {"reason", "detail"}
    bad_request = _follow(document, {"$ref": "#/components/schemas/BadRequestError"})
    assert bad_request["allOf"] == [{"$ref": "#/components/schemas/Error"}]
    assert bad_request["required"] == ["reason", "detail"]


def test_every_call_documents_500_and_every_storage_call_503_with_retry_after(
    document: dict[str, Any],
) -> None:
    for method, path in _documented_operations(document):
        responses = _responses(document, method, path)
        assert "500" in responses, (method, path)
        if (method, path) in STORAGE_FREE:
            assert "503" not in responses, (method, path)
            continue
        assert "Retry-After" in responses["503"]["headers"], (method, path)


def test_login_documents_429_with_retry_after_and_no_other_call_does(document: dict[str, Any]) -> None:
    for method, path in _documented_operations(document):
        responses = _responses(document, method, path)
        if (method, path) == ("post", "/login"):
            assert "Retry-After" in responses["429"]["headers"]
        else:
            assert "429" not in responses, (method, path)


def test_every_call_with_a_body_documents_413(document: dict[str, Any]) -> None:
    for method, path in _documented_operations(document):
        operation = document["paths"][path][method]
        if "requestBody" in operation:
            assert "413" in operation["responses"], (method, path)


def test_get_openapi_json_serves_the_packaged_document(client: TestClient, document: dict[str, Any]) -> None:
    result = client.simulate_get("/openapi.json")
    assert result.status_code == 200
    assert result.headers["content-type"] == "application/json"
    assert result.json == document
