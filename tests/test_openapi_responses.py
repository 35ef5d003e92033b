"""Every operation in ``/openapi.json`` describes its success body with a named model, and its
4xx answers with the uniform error body (the schemathesis run checks the answers against it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from phantomex.api.app import create_app
from phantomex.config import Settings

#: 2xx answers without a JSON body, by (method, path), with the reason. None today: the
#: WebSocket (``/ws``), the Prometheus text (``/metrics``) and the dashboard's page are not
#: API operations and are left out of the schema (``include_in_schema=False``).
NO_BODY: dict[tuple[str, str], str] = {}
NOT_IN_SCHEMA = ("/ws", "/metrics", "/", "/index.html")


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    app = create_app(Settings(data_dir=Path(tmp_path_factory.mktemp("openapi"))))
    resp = TestClient(app).get("/openapi.json")  # no lifespan: the schema needs no kernel
    assert resp.status_code == 200
    return dict(resp.json())


def _named(schema: dict[str, Any]) -> bool:
    """Whether a body schema is a named model (or a list or union of them), not a bare object."""
    if "$ref" in schema:
        return str(schema["$ref"]).startswith("#/components/schemas/")
    if schema.get("type") == "array":
        return _named(schema.get("items", {}))
    options: list[dict[str, Any]] = schema.get("anyOf") or schema.get("oneOf") or []
    return bool(options) and all(_named(o) for o in options)


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, ops in schema["paths"].items()
        for method, op in ops.items()
        if method in {"get", "put", "post", "patch", "delete"}
    ]


def test_every_success_answer_has_a_response_model(schema: dict[str, Any]) -> None:
    missing = []
    for method, path, op in _operations(schema):
        if (method, path) in NO_BODY:
            continue
        successes = {s: r for s, r in op["responses"].items() if s.startswith("2")}
        if not successes:
            missing.append(f"{method} {path}: no 2xx answer documented")
        for status, answer in successes.items():
            body = answer.get("content", {}).get("application/json", {}).get("schema", {})
            if not _named(body):
                missing.append(f"{method} {path} {status}: {body.get('title', body)}")
    assert not missing, f"{len(missing)} answers without a response model:\n" + "\n".join(missing)


def test_every_api_error_answer_is_the_uniform_error_body(schema: dict[str, Any]) -> None:
    wrong = []
    for method, path, op in _operations(schema):
        if not path.startswith("/api/"):
            continue
        for status, answer in op["responses"].items():
            body = answer.get("content", {}).get("application/json", {}).get("schema", {})
            if status.startswith("4") and body != {"$ref": "#/components/schemas/ErrorBody"}:
                wrong.append(f"{method} {path} {status}")
    assert not wrong, "4xx answers without the error body:\n" + "\n".join(wrong)
    error = schema["components"]["schemas"]["ErrorDetail"]
    assert {"code", "message", "field"} <= set(error["properties"])


def test_the_schema_leaves_out_what_is_not_a_json_operation(schema: dict[str, Any]) -> None:
    assert not set(NOT_IN_SCHEMA) & set(schema["paths"])
    assert {path for _, path in NO_BODY} <= set(schema["paths"])
